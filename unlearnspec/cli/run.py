"""Runtime verbs `run` and `builtin`: they import the runtime (and torch) only when called.

The command line owns everything between the user and the runtime: it turns a spec into a plan (the
compiler) or loads a saved one (:meth:`Plan.load`), re-derives a saved plan from its spec (provenance,
``--trust-plan``), hands the runtime a :class:`~unlearnspec.runtime.engine.RunOptions`, and formats
every :class:`~unlearnspec.errors.UserError` the layers below raise, choosing the exit code: 0 pass,
1 a claim failed, 2 a run that cannot start or continue (the user must act), 3 incomplete evidence.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from unlearnspec.builtin.corpus import export
from unlearnspec.builtin.recipe import RECIPES, recipe_for
from unlearnspec.catalog import vocab
from unlearnspec.cli import launch
from unlearnspec.cli.common import (
    EXIT_FINDINGS,
    EXIT_INCOMPLETE,
    EXIT_OK,
    EXIT_USAGE,
    Parser,
    UsageError,
    os_reason,
    path_arg,
    print_error,
)
from unlearnspec.compiler.check import plan_file
from unlearnspec.compiler.render import render
from unlearnspec.errors import UserError
from unlearnspec.markdown import code_span

if TYPE_CHECKING:
    from unlearnspec.plan import Plan

E_NOTHING_TO_RUN = "UL705"
E_CANNOT_PLAN = "UL706"
E_RESUME_CHANGES_RUN = "UL714"
E_NO_RUNTIME = "UL710"
#: the modules of the `runtime` extra (pyproject.toml) a run imports
RUNTIME_MODULES = ("torch", "transformers", "peft", "accelerate", "safetensors", "numpy", "scipy", "sklearn",
                   "rouge_score")


def missing_runtime() -> list[str]:
    """The runtime extra's modules that cannot be imported here (found without importing them)."""
    missing = []
    for name in RUNTIME_MODULES:
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            missing.append(name)
    return missing


def _no_runtime(verb: str) -> int | None:
    missing = missing_runtime()
    if not missing:
        return None
    sys.stderr.write(f"error[{E_NO_RUNTIME}]: `unlearnspec {verb}` needs the runtime extra (missing: "
                     f"{', '.join(missing)}): install it with `pip install 'unlearnspec[runtime]'`\n")
    return EXIT_USAGE


def _main_rank() -> bool:
    """Under `accelerate launch` every rank runs this command; only the first prints errors."""
    return os.environ.get("RANK", "0") in ("", "0")


def _plan_spec(path: Path, allow_infeasible: bool) -> Plan:
    from unlearnspec.compiler.lower import front_end_errors  # the lowering: `check` never loads it

    made, result = plan_file(path, allow_infeasible=allow_infeasible)
    if made is not None:
        return made
    if _main_rank():
        sys.stderr.write(render([result], "human", sys.stderr))
    if result.spec is None or front_end_errors(result.diagnostics):
        hint = ("the spec itself has errors (syntax, names, values or contradictory fields: UL1xx, "
                "UL2xx): fix them; --allow-infeasible only lets a run go ahead with claims that cannot "
                "be met (UL3xx, UL601)")
    else:
        hint = "fix the errors, or run with --allow-infeasible to measure what is measurable"
    raise UserError(E_CANNOT_PLAN, f"{code_span(path)} cannot be planned (see the errors above)", [hint])


def _run(args: argparse.Namespace) -> Any:
    plan, spec_dir, options = _prepare(args)
    return _execute(plan, spec_dir, **options)


def _prepare(args: argparse.Namespace, *, warn: bool = True) -> tuple[Plan | None, Path | None, dict[str, Any]]:
    """Everything a run checks before the runtime loads: the plan (made, loaded or the resumed run's), its
    inputs and provenance, a resume's flags; the arguments of :func:`_execute`, or the :class:`UserError` that
    refuses the run. ``warn``: print the disk warning (RT107) here."""
    # loaded when a run starts, not when the CLI does: the compiler's lowering and the plan model; the
    # runtime engine (which loads torch) only once the plan is known to be runnable, so refusals are quick
    from unlearnspec.cli import provenance
    from unlearnspec.plan import Plan, is_plan_path
    from unlearnspec.runtime import preflight

    flags: dict[str, Any] = {"quiet": args.quiet, "allow_remote_code": args.allow_remote_code,
                             "inputs_verified": True}
    if args.resume:
        root = Path(args.resume)
        if (root / "plan.json").is_file() and not (root / "run.json").exists():  # killed between the two writes
            raise UserError("UL704", f"{code_span(root)} holds a plan.json but no run.json: its run was stopped before it "
                            "began, so there is nothing to resume",
                            [f"start it again into the same folder: `unlearnspec run PLAN --out {root}` (the plan "
                             "or spec it was started from); the folder is taken over, nothing of a run was in it"])
        plan, state = preflight.read_run(root)
        _resume_keeps_the_run(args, state)
        spec_dir = Path(state.spec_dir)
        preflight.verify_inputs(plan, spec_dir)
        if state.plan_provenance != "trusted":  # a run started with --trust-plan is resumed trusting it, as recorded
            provenance.check(plan, preflight.spec_file(plan, spec_dir))
        return None, None, {"resume": root, **flags}
    if not args.path:
        raise UserError(E_NOTHING_TO_RUN, "give a plan (plan.json) or a spec to run, or --resume DIR")
    path = Path(args.path)
    out = Path(args.out) if args.out else None
    if is_plan_path(path):
        plan = Plan.load(path)
        spec = provenance.locate_spec(plan, path)
        preflight.verify_inputs(plan, spec.parent)
        if not args.trust_plan:
            provenance.check(plan, spec)
        if warn:
            _warn_disk(plan, out)
        return plan, spec.parent, {"out": out, "plan_provenance": "trusted" if args.trust_plan else "rederived",
                                   **flags, **_ledger_options(args)}
    plan = _plan_spec(path, args.allow_infeasible)
    if warn:
        _warn_disk(plan, out)
    return plan, path.resolve().parent, {"out": out, "plan_provenance": "planned", **flags, **_ledger_options(args)}


def _warn_disk(plan: Plan, out: Path | None) -> None:
    """RT107 before a run starts, when its disk looks too small for what it will write (a warning: it runs)."""
    from unlearnspec.runtime import preflight

    found = preflight.disk_warning(plan, out if out is not None else Path("runs"))
    if found is not None and _main_rank():
        sys.stderr.write(f"warning[{found.code}]: {found.message}\n")
        for h in found.help:
            sys.stderr.write(f"  = help: {h}\n")


def _ledger_options(args: argparse.Namespace) -> dict[str, Any]:
    return {"ledger": Path(args.ledger) if args.ledger else None, "no_ledger": bool(args.no_ledger)}


def _resume_keeps_the_run(args: argparse.Namespace, state: Any) -> None:
    """UL714 for a flag that would change the run ``--resume`` continues (its plan, folder or ledger)."""
    changed = [f"`{flag}`" for flag, given in (("PATH", args.path), ("--out", args.out),
                                                ("--allow-infeasible", args.allow_infeasible)) if given]
    if args.trust_plan and state.plan_provenance != "trusted":  # the run re-derived (or made) its plan: its report
        changed.append("`--trust-plan`")  # says so, and a resume that skipped the re-derivation would not be it
    started = "--no-ledger" if state.no_ledger else f"--ledger {state.ledger}" if state.ledger else None
    if started is not None:
        if args.no_ledger and not state.no_ledger:
            changed.append("`--no-ledger`")
        if args.ledger and (state.no_ledger or os.path.abspath(args.ledger) != state.ledger):
            changed.append(f"`--ledger {args.ledger}`")
    if changed:
        raise UserError(E_RESUME_CHANGES_RUN, f"`--resume` continues the run as it was started; {', '.join(changed)} "
                        "would change it", [f"the run was started with {code_span(started)}" if started else
                                            "run `unlearnspec run --resume DIR` alone",
                                            "to run again with other settings, start a new run (`--out` another "
                                            "folder)"])


def _execute(plan: Plan | None, spec_dir: Path | None, **options: Any) -> Any:
    from unlearnspec.runtime import engine  # torch and transformers come with it

    return engine.run(plan, spec_dir, engine.RunOptions(**options, show_error=print_error))


def cmd_run(args: argparse.Namespace) -> int:
    refused = _no_runtime("run")
    if refused is not None:
        return refused
    if args.processes is not None and args.processes > 1 and not launch.under_launch():
        return _launched(args)
    code = _run_here(args)
    if launch.record_exit(code) and code in (EXIT_FINDINGS, EXIT_INCOMPLETE):
        # the main process of `run --processes N` told the command that started it: a verdict is no failure of
        # the launch (accelerate would end it with a traceback); a coded error still ends it (the others stop)
        return EXIT_OK
    return code


def _launched(args: argparse.Namespace) -> int:
    """`run --processes N`: the folder named here (every process must write to the same one, and the default
    name has a timestamp), and a run that would be refused (a spec that cannot be planned, a plan that is not
    its spec's, a folder that cannot be resumed as asked) refused here once: refused by N processes, the first
    to fail ended the launch, often a helper, its error prefixed by its rank, the status the launcher's."""
    from unlearnspec.runtime.rundir import default_run_dir

    try:
        plan, _, _ = _prepare(args, warn=False)  # the main process of the launch warns
    except UserError as err:
        print_error(err)
        return EXIT_USAGE
    out = args.out
    if out is None and args.resume is None and plan is not None:
        out = str(default_run_dir(plan))
    return launch.launch(args, out, gpus=launch.visible_gpus())


def _run_here(args: argparse.Namespace) -> int:
    try:
        outcome = _run(args)
    except UserError as err:  # a plan, run directory or model the user must fix: never a traceback
        if _main_rank():
            print_error(err)
        else:  # a helper's own failure would otherwise show only as the launcher's exit code
            line = f"[rank {os.environ.get('RANK')}] error[{err.code}]: {err.message}\n"
            if not launch.record_helper_error(line):  # `run --processes` shows it if the main process did not
                sys.stderr.write(line)
        return EXIT_USAGE
    report = outcome.report
    if report is None:  # a helper rank of a launch: its part (training) is done
        return EXIT_OK
    if outcome.already_finished:
        sys.stderr.write(f"the run in {code_span(outcome.root)} had already finished; nothing was rerun or rewritten\n")
    record_in_ledger(args, Path(outcome.root), report)
    sys.stdout.write(summary_text(report, outcome.root))
    return int(report.exit_code)


def ledger_folder(args: argparse.Namespace, root: Path, state: Any) -> Path | None:
    """Where the run records its requests, as chosen when it started (``state``, the run's ``run.json``):
    ``--ledger DIR``, else ``ledger/`` beside the run folder (``runs/ledger`` for the default ``runs/<name>``);
    ``--no-ledger`` records nothing. A run folder from before the choice was kept takes this command's flags."""
    if state.no_ledger:  # the choice made when the run started
        return None
    if state.ledger:
        return Path(state.ledger)
    if getattr(args, "no_ledger", False):
        return None
    given = getattr(args, "ledger", None)
    return Path(given) if given else root.resolve().parent / "ledger"


def record_in_ledger(args: argparse.Namespace, root: Path, report: Any) -> None:
    """Append a finished run's requests to its model's ledger (once: the run folder keeps a receipt).

    A ledger that refuses to grow (its chain is already broken, or it cannot be written) is reported,
    but the run's evidence stands and its exit code is the verdict's."""
    from unlearnspec.audit.ledger import record_run
    from unlearnspec.runtime.preflight import read_run

    try:
        plan, state = read_run(root)  # stage outputs resolved against this run folder
    except UserError as err:
        print_error(err)
        return
    folder = ledger_folder(args, root, state)
    if folder is None:
        return
    dirs = {op.objective.name: state.stage(f"{op.objective.name}/unlearn").detail.get("model_dir")
            for op in plan.objectives}
    try:
        record_run(folder, root, plan, report, dirs)
    except UserError as err:
        print_error(err)
    except OSError as err:
        print_error(UserError("UL805", f"the run could not be recorded in the ledger {code_span(folder)}: "
                                       f"{err.strerror or err}",
                              ["the run's reports are complete; give a writable `--ledger DIR`"]))


def status_note(compile_status: str | None) -> str:
    """`` (cannot be verified)``: the claim's compile status beside its verdict, in the catalog's words
    (:data:`~unlearnspec.catalog.vocab.CLAIM_STATUS_WORDS`), as every rendering shows it (report/verdict.py, rule 5);
    nothing for a supported claim, or where no status was recorded."""
    if not compile_status or compile_status == vocab.CLAIM_STATUSES[0]:
        return ""
    return f" ({vocab.CLAIM_STATUS_WORDS.get(compile_status, compile_status)})"


def summary_text(report: Any, root: Path) -> str:
    lines = [f"\nverdict: {report.overall.upper()}  (exit {report.exit_code})"]
    for obj in report.objectives:
        lines.append(f"  objective {obj.name}: {obj.overall}")
        for c in obj.claims:
            lines.append(f"    {c.verdict:<14} {c.claim}{status_note(c.compile_status)}")
    for chain in report.chains:
        for result, why in chain.outcomes():
            lines.append(f"  chain: {result}: {why}")
    lines.append(f"reports: {root / 'report.md'}  {root / 'report.html'}  {root / 'report.json'}")
    return "\n".join(lines) + "\n"


def cmd_builtin(args: argparse.Namespace) -> int:
    if args.builtin_cmd == "export":
        try:
            files = export(Path(args.dir), force=args.force)
        except FileExistsError as err:
            raise UsageError(f"{code_span(args.dir)} already holds files with other content: {err.filename}",
                             help=["nothing was written; give an empty or new folder, or `--force` to replace "
                                   "them with the built-in corpus"]) from err
        except OSError as err:
            raise UsageError(f"cannot write the corpus to {code_span(args.dir)}: {os_reason(err)}",
                             help=["give a folder you can write to (it is created when missing)"]) from err
        for role, path in sorted(files.items()):
            sys.stdout.write(f"{role:24} {path}\n")
        return EXIT_OK
    if args.builtin_cmd == "build":
        refused = _no_runtime("builtin build")
        if refused is not None:
            return refused
        from unlearnspec.runtime.builtin_model import ensure_builtin  # torch and transformers come with it

        sys.stdout.write(f"{ensure_builtin(recipe=recipe_for(args.model))}\n")
        return EXIT_OK
    return EXIT_USAGE


def _process_count(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of processes (a whole number, 1 or more)")
    return n


def register(sub: argparse._SubParsersAction[Parser]) -> None:
    sp = sub.add_parser("run", help="execute a plan (or plan and run a spec); writes a new run directory")
    sp.add_argument("path", nargs="?", type=path_arg, help="plan.json or a spec")
    sp.add_argument("--out", help="run directory (default: runs/<objective>-<plan hash>-<time>)")
    sp.add_argument("--resume", metavar="DIR", help="continue a killed run in DIR")
    sp.add_argument("--allow-infeasible", action="store_true",
                    help="run a spec with errors anyway: its unmet claims stay marked 'cannot be met'")
    sp.add_argument("--trust-plan", action="store_true",
                    help="run a saved plan without re-deriving it from its spec (the report records this)")
    sp.add_argument("--ledger", metavar="DIR",
                    help="append the run's requests to the hash-chained ledgers in DIR (default: `ledger/` "
                         "beside the run folder)")
    sp.add_argument("--no-ledger", action="store_true", help="record nothing in a ledger")
    sp.add_argument("--allow-remote-code", action="store_true", help="trust_remote_code for hub models")
    sp.add_argument("-q", "--quiet", action="store_true",
                    help="print only the verdict summary and errors: no progress bars, log lines or library warnings "
                         "(run.log keeps the log)")
    sp.add_argument("--processes", type=_process_count, metavar="N",
                    help="run on N processes through `accelerate launch`: one per GPU, or N CPU processes where no "
                         "GPU is visible; the exit status is the run's (default: one process)")
    sp.set_defaults(func=cmd_run)

    sp = sub.add_parser("builtin", help="the built-in demo model and corpus")
    bsub = sp.add_subparsers(dest="builtin_cmd", required=True, parser_class=Parser)
    b = bsub.add_parser("export", help="write the corpus splits as JSONL files")
    b.add_argument("dir", type=path_arg)
    b.add_argument("--force", action="store_true",
                   help="replace files already there with other content (they are kept otherwise)")
    b = bsub.add_parser("build", help="build (or find in the cache) a built-in model; print its folder")
    b.add_argument("--model", default="builtin:tiny-bios", choices=list(RECIPES), help="which built-in (default: %(default)s)")
    sp.set_defaults(func=cmd_builtin)
