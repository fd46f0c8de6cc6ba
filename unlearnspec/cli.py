"""The `unlearnspec` command line.

Compiler verbs (check, fmt, explain, schema, plan, show, diff) import only the compiler: they start
fast in a CI job and never load torch. Runtime verbs (run, builtin) import the runtime lazily.

Exit codes: 0 success (warnings allowed unless --strict); 1 findings/failure (errors, a failed
verdict, files that need formatting, a loosening diff); 2 usage error; 3 a run that is incomplete.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from unlearnspec import __version__

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE, EXIT_INCOMPLETE = 0, 1, 2, 3


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        sys.stderr.write(f"error: {message}\n")
        raise SystemExit(EXIT_USAGE)


def _out(text: str, output: str | None = None) -> None:
    if output and output != "-":
        from unlearnspec.io import atomic_write_text

        atomic_write_text(Path(output), text)
    else:
        sys.stdout.write(text)
        sys.stdout.flush()


# -- check --------------------------------------------------------------------------------------


def cmd_check(args: argparse.Namespace) -> int:
    from unlearnspec.compiler.check import check_paths
    from unlearnspec.compiler.render import render

    paths = [Path(p) for p in args.paths]
    results = check_paths(paths, keep_syntax=False)
    if not results:
        sys.stderr.write("error: no `*.unlearn` files found in " + ", ".join(args.paths) + "\n")
        return EXIT_USAGE
    _out(render(results, args.format, sys.stdout, args.color), args.output)
    errors = sum(r.errors for r in results)
    warnings = sum(r.warnings for r in results)
    if errors or (args.strict and warnings):
        return EXIT_FINDINGS
    return EXIT_OK


# -- fmt ------------------------------------------------------------------------------------------


def cmd_fmt(args: argparse.Namespace) -> int:
    import difflib

    from unlearnspec.compiler.check import display_path, expand_paths, read_spec_bytes
    from unlearnspec.compiler.fmt import format_spec
    from unlearnspec.compiler.parse import parse_bytes
    from unlearnspec.compiler.render import render_human
    from unlearnspec.io import atomic_write_bytes

    status = EXIT_OK
    files = list(expand_paths(Path(p) for p in args.paths))
    if not files:
        sys.stderr.write("error: no `*.unlearn` files found\n")
        return EXIT_USAGE
    from unlearnspec.compiler.check import CheckResult

    changed = 0
    for path in files:
        display = display_path(path)
        try:
            data = read_spec_bytes(path)
        except OSError as err:
            sys.stderr.write(f"error: cannot read `{display}`: {err.strerror or err}\n")
            status = EXIT_FINDINGS
            continue
        syntax, diags = parse_bytes(data, display)
        if syntax is None or any(d.severity == "error" for d in diags):
            sys.stderr.write(render_human([CheckResult(path=display, source=data, diagnostics=diags)],
                                          summary=False))
            status = EXIT_FINDINGS
            continue
        new = format_spec(syntax)
        old = data.decode("utf-8").lstrip("\ufeff")
        if new == old:
            continue
        changed += 1
        if args.check or args.diff:
            if args.diff:
                sys.stdout.writelines(difflib.unified_diff(
                    old.splitlines(keepends=True), new.splitlines(keepends=True),
                    fromfile=f"a/{display}", tofile=f"b/{display}"))
            else:
                sys.stdout.write(f"would reformat {display}\n")
            status = max(status, EXIT_FINDINGS)
        else:
            atomic_write_bytes(path, new.encode("utf-8"))
            sys.stdout.write(f"formatted {display}\n")
    if args.check and not changed and status == EXIT_OK:
        sys.stdout.write(f"{len(files)} file{'s' * (len(files) != 1)} already formatted\n")
    return status


# -- explain ------------------------------------------------------------------------------------


def cmd_explain(args: argparse.Namespace) -> int:
    import re

    from unlearnspec.compiler.explain import explain_code, explain_spec

    target = args.target
    if re.fullmatch(r"(?i)(UL|RT)\d{3}", target):
        text = explain_code(target.upper())
        if text is None:
            from unlearnspec.compiler.codes import REGISTRY, ensure_registered
            from unlearnspec.compiler.suggest import did_you_mean

            ensure_registered()
            hint = did_you_mean(target.upper(), list(REGISTRY))
            sys.stderr.write(f"error: no diagnostic code `{target}`" + (f"; did you mean `{hint}`?" if hint else "") + "\n")
            return EXIT_USAGE
        _out(text)
        return EXIT_OK
    if target in ("all", "--list", "codes"):
        from unlearnspec.compiler.explain import list_codes

        _out(list_codes())
        return EXIT_OK
    path = Path(target)
    if not path.exists():
        sys.stderr.write(f"error: `{target}` is neither a diagnostic code (ULnnn) nor a spec file\n")
        return EXIT_USAGE
    text, code = explain_spec(path, fmt=args.format)
    _out(text)
    return code


# -- schema ---------------------------------------------------------------------------------------


def cmd_schema(args: argparse.Namespace) -> int:
    if args.plan:
        from unlearnspec.plan import plan_schema

        schema = plan_schema()
    elif args.report:
        from unlearnspec.report.model import Report

        schema = Report.model_json_schema()
    else:
        from unlearnspec.compiler.ast import Spec

        schema = Spec.model_json_schema()
    _out(json.dumps(schema, indent=2, sort_keys=True) + "\n", args.output)
    return EXIT_OK


# -- plan / show / diff ---------------------------------------------------------------------------


def cmd_plan(args: argparse.Namespace) -> int:
    from unlearnspec.compiler.lower import plan_file
    from unlearnspec.compiler.render import render

    plan, result = plan_file(Path(args.spec), allow_infeasible=args.allow_infeasible)
    if result.diagnostics and (plan is None or not args.quiet):
        sys.stderr.write(render([result], "human", sys.stderr, args.color))
    if plan is None:
        return EXIT_FINDINGS
    _out(plan.canonical_json(), args.output)
    if args.output and args.output != "-" and not args.quiet:
        sys.stderr.write(f"wrote {args.output} (plan {plan.plan_hash[:12]})\n")
    return EXIT_OK


def cmd_show(args: argparse.Namespace) -> int:
    from unlearnspec.compiler.review import load_plan_or_spec, render_review

    plan, err = load_plan_or_spec(Path(args.path))
    if plan is None:
        sys.stderr.write(err + "\n")
        return EXIT_FINDINGS
    _out(render_review(plan, args.format), args.output)
    return EXIT_OK


def cmd_diff(args: argparse.Namespace) -> int:
    from unlearnspec.compiler.semdiff import diff_paths

    text, code = diff_paths(Path(args.old), Path(args.new), fmt=args.format)
    _out(text)
    return code


# -- run / builtin (runtime) ------------------------------------------------------------------------


def cmd_run(args: argparse.Namespace) -> int:
    from unlearnspec.runtime.engine import run_command
    from unlearnspec.runtime.loading import LoadError

    try:
        return run_command(args)
    except LoadError as err:  # a model that cannot be loaded: a diagnostic, never a traceback
        sys.stderr.write(f"error[{err.code}]: {err.message}\n")
        for h in err.help:
            sys.stderr.write(f"  = help: {h}\n")
        return EXIT_USAGE


def cmd_builtin(args: argparse.Namespace) -> int:
    if args.builtin_cmd == "export":
        from unlearnspec.builtin.corpus import export

        files = export(Path(args.dir))
        for role, path in sorted(files.items()):
            sys.stdout.write(f"{role:24} {path}\n")
        return EXIT_OK
    if args.builtin_cmd == "build":
        from unlearnspec.runtime.builtin_model import ensure_builtin

        sys.stdout.write(f"{ensure_builtin()}\n")
        return EXIT_OK
    return EXIT_USAGE


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="unlearnspec", description="Write machine-unlearning objectives down, check them, plan and run them.")
    p.add_argument("--version", action="version", version=f"unlearnspec {__version__}")
    sub = p.add_subparsers(dest="cmd", required=True, parser_class=_Parser)

    def common_colour(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--color", "--colour", choices=("auto", "always", "never"), default="auto",
                        help="colour in human output (default: on a TTY unless NO_COLOR is set)")

    sp = sub.add_parser("check", help="check specs: syntax, resolve, feasibility")
    sp.add_argument("paths", nargs="+", help="spec files or folders (searched for *.unlearn)")
    sp.add_argument("--format", choices=("human", "json", "sarif", "github"), default="human")
    sp.add_argument("--strict", action="store_true", help="warnings fail the check too")
    sp.add_argument("-o", "--output", help="write the report to this file")
    common_colour(sp)
    sp.set_defaults(func=cmd_check)

    sp = sub.add_parser("fmt", help="format specs in the canonical layout")
    sp.add_argument("paths", nargs="+")
    g = sp.add_mutually_exclusive_group()
    g.add_argument("--check", action="store_true", help="exit 1 if a file would change; write nothing")
    g.add_argument("--diff", action="store_true", help="print a unified diff; write nothing")
    sp.set_defaults(func=cmd_fmt)

    sp = sub.add_parser("explain", help="explain a diagnostic code (ULnnn), or a spec's claims in plain words")
    sp.add_argument("target", help="a code such as UL301, `all`, or a spec file")
    sp.add_argument("--format", choices=("text", "md", "json"), default="text")
    sp.set_defaults(func=cmd_explain)

    sp = sub.add_parser("schema", help="print the JSON Schema of the spec model (or --plan, --report)")
    g = sp.add_mutually_exclusive_group()
    g.add_argument("--plan", action="store_true")
    g.add_argument("--report", action="store_true")
    sp.add_argument("-o", "--output")
    sp.set_defaults(func=cmd_schema)

    sp = sub.add_parser("plan", help="lower a spec to a reviewable, hashed plan")
    sp.add_argument("spec")
    sp.add_argument("-o", "--output", help="plan file to write (default: stdout)")
    sp.add_argument("--allow-infeasible", action="store_true",
                    help="plan despite errors; unmet claims are recorded as `cannot be met`")
    sp.add_argument("-q", "--quiet", action="store_true")
    common_colour(sp)
    sp.set_defaults(func=cmd_plan)

    sp = sub.add_parser("show", help="render a plan (or a spec's plan) for review")
    sp.add_argument("path", help="plan.json or a spec")
    sp.add_argument("--format", choices=("md", "json"), default="md")
    sp.add_argument("-o", "--output")
    sp.set_defaults(func=cmd_show)

    sp = sub.add_parser("diff", help="semantic diff of two specs or plans; exit 1 when something loosened")
    sp.add_argument("old")
    sp.add_argument("new")
    sp.add_argument("--format", choices=("text", "md", "json"), default="text")
    sp.set_defaults(func=cmd_diff)

    sp = sub.add_parser("run", help="execute a plan (or plan and run a spec); writes a new run directory")
    sp.add_argument("path", nargs="?", help="plan.json or a spec")
    sp.add_argument("--out", help="run directory (default: runs/<objective>-<plan hash>-<time>)")
    sp.add_argument("--resume", metavar="DIR", help="continue a killed run in DIR")
    sp.add_argument("--allow-infeasible", action="store_true",
                    help="run a spec with errors anyway: its unmet claims stay marked 'cannot be met'")
    sp.add_argument("--allow-remote-code", action="store_true", help="trust_remote_code for hub models")
    sp.add_argument("-q", "--quiet", action="store_true",
                    help="print only the verdict summary and errors: no progress bars, log lines or library warnings "
                         "(run.log keeps the log)")
    sp.set_defaults(func=cmd_run)

    sp = sub.add_parser("builtin", help="the built-in demo model and corpus")
    bsub = sp.add_subparsers(dest="builtin_cmd", required=True, parser_class=_Parser)
    b = bsub.add_parser("export", help="write the corpus splits as JSONL files")
    b.add_argument("dir")
    bsub.add_parser("build", help="build (or find in the cache) the builtin model; print its folder")
    sp.set_defaults(func=cmd_builtin)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return 130
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
