"""Verb `fmt`: one canonical layout for specs, comments kept."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from unlearnspec.cli.common import EXIT_FINDINGS, EXIT_OK, EXIT_USAGE, Parser, path_arg
from unlearnspec.compiler.check import CheckResult, display_path, expand_paths, read_spec_bytes
from unlearnspec.compiler.fmt import format_spec
from unlearnspec.compiler.parse import parse_bytes
from unlearnspec.compiler.render import render_human
from unlearnspec.io import atomic_write_bytes
from unlearnspec.markdown import code_span


def cmd_fmt(args: argparse.Namespace) -> int:
    import difflib  # only for `--diff`: `check` never loads it

    status = EXIT_OK
    files = list(expand_paths(Path(p) for p in args.paths))
    if not files:
        sys.stderr.write("error: no `*.unlearn` files found\n")
        return EXIT_USAGE
    changed = 0
    for path in files:
        display = display_path(path)
        try:
            data = read_spec_bytes(path)
        except OSError as err:  # missing, a folder, a FIFO or a device: an unusable path, exit 2
            sys.stderr.write(f"error: cannot read {code_span(display)}: {err.strerror or err}\n")
            status = EXIT_USAGE
            continue
        syntax, diags = parse_bytes(data, display)
        if syntax is None or any(d.severity == "error" for d in diags):
            sys.stderr.write(render_human([CheckResult(path=display, source=data, diagnostics=diags)],
                                          summary=False))
            status = max(status, EXIT_FINDINGS)
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
            try:
                atomic_write_bytes(path, new.encode("utf-8"))
            except OSError as err:
                sys.stderr.write(f"error: cannot write {code_span(display)}: {err.strerror or err}\n")
                status = EXIT_USAGE
                continue
            sys.stdout.write(f"formatted {display}\n")
    if args.check and not changed and status == EXIT_OK:
        sys.stdout.write(f"{len(files)} file{'s' * (len(files) != 1)} already formatted\n")
    return status


def register(sub: argparse._SubParsersAction[Parser]) -> None:
    sp = sub.add_parser("fmt", help="format specs in the canonical layout")
    sp.add_argument("paths", nargs="+", type=path_arg)
    g = sp.add_mutually_exclusive_group()
    g.add_argument("--check", action="store_true", help="exit 1 if a file would change; write nothing")
    g.add_argument("--diff", action="store_true", help="print a unified diff; write nothing")
    sp.set_defaults(func=cmd_fmt)
