"""Verbs `plan`, `show` and `diff`: lower a spec to a plan, review it, compare two."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from unlearnspec.cli.common import EXIT_FINDINGS, EXIT_OK, EXIT_USAGE, Parser, add_colour, out, path_arg
from unlearnspec.compiler.check import plan_file
from unlearnspec.compiler.render import render
from unlearnspec.errors import UserError
from unlearnspec.markdown import code_span

if TYPE_CHECKING:
    from unlearnspec.plan import Plan


def cmd_plan(args: argparse.Namespace) -> int:
    plan, result = plan_file(Path(args.spec), allow_infeasible=args.allow_infeasible)
    if result.diagnostics and (plan is None or not args.quiet):
        sys.stderr.write(render([result], "human", sys.stderr, args.color))
    if plan is None:
        return EXIT_USAGE if result.unreadable else EXIT_FINDINGS
    out(plan.canonical_json(), args.output, result.read_files, plan.read_only_folders(Path(args.spec).resolve().parent))
    if args.output and args.output != "-" and not args.quiet:
        sys.stderr.write(f"wrote {args.output} (plan {plan.plan_hash[:12]})\n")
    return EXIT_OK


def cmd_show(args: argparse.Namespace) -> int:
    # the plan's models and the review's templates load when a verb needs them: `check` builds no plan
    from unlearnspec.compiler.review import load_for_review, render_review
    from unlearnspec.plan import is_plan_path

    path = Path(args.path)
    plan, err, read = load_for_review(path)
    if plan is None:
        sys.stderr.write(err + "\n")
        # a plan that cannot be read, or a spec path that is no file, is unusable (2); a spec with
        # errors is a finding (1)
        return EXIT_USAGE if is_plan_path(path) or not path.is_file() else EXIT_FINDINGS
    spec_dir = path.resolve().parent
    if is_plan_path(path):
        spec = warn_provenance(plan, path)
        if spec is not None:  # the spec the plan was made from, and the data files the plan pins
            spec_dir = spec.parent
            read += [str(spec), *(str(spec_dir / f.path) for f in plan.inputs)]
    out(render_review(plan, args.format), args.output, read, plan.read_only_folders(spec_dir))
    if err:  # a spec that `plan` refuses: reviewed all the same, but a gate on `show` must not pass it
        sys.stderr.write(err + "\n")
        return EXIT_FINDINGS
    return EXIT_OK


def warn_provenance(plan: Plan, path: Path) -> Path | None:
    """`show` re-derives a saved plan from its spec, as `run` does, but only warns when they differ. Returns the
    spec it compared with (None when none was found)."""
    # the compiler's lowering and the plan's models: loaded by the verbs that plan only
    from unlearnspec.cli import provenance

    try:
        spec = provenance.locate_spec(plan, path)
    except UserError as err:
        sys.stderr.write(f"warning[{err.code}]: the plan cannot be re-derived: {err.message}\n")
        return None
    diffs = provenance.differences(plan, spec)
    if diffs:
        sys.stderr.write(f"warning[{provenance.E_PLAN_NOT_FROM_SPEC}]: the plan is not what the compiler makes of "
                         f"its spec {code_span(plan.spec.path)}; `run` refuses it\n")
        for d in diffs[:6]:
            sys.stderr.write(f"  = note: {d}\n")
    return spec


def cmd_diff(args: argparse.Namespace) -> int:
    from unlearnspec.compiler.semdiff import diff_paths  # the plan's models: not on `check`'s path

    text, errors, code = diff_paths(Path(args.old), Path(args.new), fmt=args.format)
    sys.stderr.write(errors)  # an input that cannot be read or planned: on stderr, whatever the format
    if text:
        out(text)
    return code


def register(sub: argparse._SubParsersAction[Parser]) -> None:
    sp = sub.add_parser("plan", help="lower a spec to a reviewable, hashed plan")
    sp.add_argument("spec", type=path_arg)
    sp.add_argument("-o", "--output", help="plan file to write (default: stdout)")
    sp.add_argument("--allow-infeasible", action="store_true",
                    help="plan despite errors; unmet claims are recorded as `cannot be met`")
    sp.add_argument("-q", "--quiet", action="store_true")
    add_colour(sp)
    sp.set_defaults(func=cmd_plan)

    sp = sub.add_parser("show", help="render a plan (or a spec's plan) for review")
    sp.add_argument("path", type=path_arg, help="plan.json or a spec")
    sp.add_argument("--format", choices=("md", "json"), default="md")
    sp.add_argument("-o", "--output")
    sp.set_defaults(func=cmd_show)

    sp = sub.add_parser("diff", help="semantic diff of two specs or plans; exit 1 when something loosened")
    sp.add_argument("old", type=path_arg)
    sp.add_argument("new", type=path_arg)
    sp.add_argument("--format", choices=("text", "md", "json"), default="text")
    sp.set_defaults(func=cmd_diff)
