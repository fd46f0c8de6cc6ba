"""Runtime verbs `run` and `builtin`: they import torch, lazily, only when called."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from unlearnspec.cli.common import EXIT_OK, EXIT_USAGE, Parser


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


def register(sub: argparse._SubParsersAction[Parser]) -> None:
    sp = sub.add_parser("run", help="execute a plan (or plan and run a spec); writes a new run directory")
    sp.add_argument("path", nargs="?", help="plan.json or a spec")
    sp.add_argument("--out", help="run directory (default: runs/<objective>-<plan hash>-<time>)")
    sp.add_argument("--resume", metavar="DIR", help="continue a killed run in DIR")
    sp.add_argument("--allow-infeasible", action="store_true",
                    help="run a spec with errors anyway: its unmet claims stay marked 'cannot be met'")
    sp.add_argument("--ledger", metavar="DIR",
                    help="append the run's requests to the hash-chained ledgers in DIR (default: `ledger/` "
                         "beside the run folder)")
    sp.add_argument("--no-ledger", action="store_true", help="record nothing in a ledger")
    sp.add_argument("--allow-remote-code", action="store_true", help="trust_remote_code for hub models")
    sp.add_argument("-q", "--quiet", action="store_true",
                    help="print only the verdict summary and errors: no progress bars, log lines or library warnings "
                         "(run.log keeps the log)")
    sp.set_defaults(func=cmd_run)

    sp = sub.add_parser("builtin", help="the built-in demo model and corpus")
    bsub = sp.add_subparsers(dest="builtin_cmd", required=True, parser_class=Parser)
    b = bsub.add_parser("export", help="write the corpus splits as JSONL files")
    b.add_argument("dir")
    bsub.add_parser("build", help="build (or find in the cache) the builtin model; print its folder")
    sp.set_defaults(func=cmd_builtin)
