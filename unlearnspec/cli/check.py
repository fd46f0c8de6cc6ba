"""Verb `check`: syntax, names, data files and feasibility of specs."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from unlearnspec.cli.common import EXIT_FINDINGS, EXIT_OK, EXIT_USAGE, Parser, add_colour, out, path_arg
from unlearnspec.compiler.check import check_paths
from unlearnspec.compiler.render import render


def cmd_check(args: argparse.Namespace) -> int:
    paths = [Path(p) for p in args.paths]
    results = check_paths(paths, keep_syntax=False)
    if not results:
        sys.stderr.write("error: no `*.unlearn` files found in " + ", ".join(args.paths) + "\n")
        return EXIT_USAGE
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
    sp.add_argument("-o", "--output", help="write the report to this file")
    add_colour(sp)
    sp.set_defaults(func=cmd_check)
