"""Verb `check`: syntax, names, data files and feasibility of specs."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from unlearnspec.cli.common import EXIT_FINDINGS, EXIT_OK, EXIT_USAGE, Parser, add_colour, out, path_arg
from unlearnspec.compiler.check import CheckResult, check_paths
from unlearnspec.compiler.fixes import fixed_source
from unlearnspec.compiler.render import render
from unlearnspec.io import atomic_write_bytes
from unlearnspec.markdown import code_span


def _fix(results: list[CheckResult]) -> bool:
    """Apply each file's preferred fixes (``compiler/fixes.py``) and say what was fixed, on stderr (stdout holds the
    report); False when a file could not be written. A file changed on disk since it was checked is left alone."""
    ok = True
    for r in results:
        if r.unreadable or not r.source:
            continue
        new, fixed = fixed_source(r.source, r.diagnostics, r.path)
        if not fixed:
            continue
        path = Path(r.path)
        try:
            if path.read_bytes() != r.source:
                sys.stderr.write(f"not fixed: {code_span(r.path)} changed while it was checked\n")
                continue
            atomic_write_bytes(path, new)
        except OSError as err:
            sys.stderr.write(f"error: cannot write {code_span(r.path)}: {err.strerror or err}\n")
            ok = False
            continue
        for d in fixed:
            sys.stderr.write(f"fixed {d.span.location()}: {d.code} {next(f for f in d.fixes if f.preferred).title}\n")
    return ok


def cmd_check(args: argparse.Namespace) -> int:
    paths = [Path(p) for p in args.paths]
    results = check_paths(paths, keep_syntax=False)
    if not results:
        sys.stderr.write("error: no `*.unlearn` files found in " + ", ".join(args.paths) + "\n")
        return EXIT_USAGE
    if args.fix:  # the report is of the files as fixed: what is left to do
        if not _fix(results):
            return EXIT_USAGE
        results = check_paths(paths, keep_syntax=False)
    out(render(results, args.format, sys.stdout, args.color), args.output,
        [f for r in results for f in r.read_files])
    if any(r.unreadable for r in results):
        return EXIT_USAGE
    errors = sum(r.errors for r in results)
    warnings = sum(r.warnings for r in results)
    if errors or (args.strict and warnings):
        return EXIT_FINDINGS
    return EXIT_OK


def register(sub: argparse._SubParsersAction[Parser]) -> None:
    sp = sub.add_parser("check", help="check specs: syntax, resolve, feasibility")
    sp.add_argument("paths", nargs="+", type=path_arg, help="spec files or folders (searched for *.unlearn)")
    sp.add_argument("--format", choices=("human", "json", "sarif", "github"), default="human")
    sp.add_argument("--strict", action="store_true", help="warnings fail the check too")
    sp.add_argument("--fix", action="store_true",
                    help="apply the fixes a finding marks as meant without a choice (a misspelt word's one candidate, "
                         "a word listed twice) to the files, then report what is left")
    sp.add_argument("-o", "--output", help="write the report to this file")
    add_colour(sp)
    sp.set_defaults(func=cmd_check)
