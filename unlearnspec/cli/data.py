"""Verb group `data`: `data import {tofu,muse,wmdp} SRC --out DIR` converts benchmark files to records.

It imports no framework (the importers read parquet and `save_to_disk` folders lazily), and a source
in the wrong layout is a diagnostic (code, path, help) with exit 2, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from unlearnspec.cli.common import EXIT_OK, EXIT_USAGE, Parser, os_reason, path_arg
from unlearnspec.compiler.render import printable, printable_lines
from unlearnspec.compiler.syntax import UnquotableError
from unlearnspec.inputs import json_lines
from unlearnspec.markdown import code_span

if TYPE_CHECKING:
    from unlearnspec.importers import ImportFailure


def _print_failure(err: ImportFailure) -> None:
    """An import failure as a diagnostic. Everything from the source (the offending line, a value quoted in the
    message) goes through :func:`~unlearnspec.compiler.render.printable`: an ESC or BEL in a benchmark's file
    shows as U+FFFD, one column each, so the caret still points at its column."""
    sys.stderr.write(f"error[{err.code}]: {printable_lines(err.message)}\n")
    if err.path is not None:
        where = str(err.path) + (f":{err.line}:{err.column or 1}" if err.line else "")
        sys.stderr.write(f"  --> {printable(where)}\n")
        if err.line and err.path.is_file():
            try:
                source = json_lines(err.path.read_text(encoding="utf-8", errors="replace"))[err.line - 1]
            except (OSError, IndexError):
                source = None
            if source is not None:
                shown = printable(source if len(source) <= 100 else source[:97] + "...")
                gutter = " " * len(str(err.line))
                sys.stderr.write(f"{gutter} |\n{err.line} | {shown}\n{gutter} | "
                                 f"{' ' * ((err.column or 1) - 1)}^\n")
    for h in err.help:
        sys.stderr.write(f"  = help: {printable_lines(h)}\n")


def cmd_import(args: argparse.Namespace) -> int:
    from unlearnspec.importers import IMPORTERS, ImportFailure, write_import  # jinja2: not on `check`'s path

    src, out = Path(args.src), Path(args.out)
    if not src.is_dir():
        sys.stderr.write(f"error: {code_span(args.src)} is not a folder\n  = help: give the folder the benchmark's files are in\n")
        return EXIT_USAGE
    if os.path.lexists(out) and not out.is_dir():  # a file (the source's own, even), a link to none: never written over
        sys.stderr.write(f"error[UL824]: `--out` {printable(code_span(args.out))} is a file, not a folder\n"
                         "  = help: `--out DIR` names the folder the records and the starter spec are written into; "
                         "give a folder (it is made when missing); nothing was written\n")
        return EXIT_USAGE
    model = args.model
    if not model.startswith("builtin:") and Path(model).expanduser().is_dir():
        # the starter spec resolves a path from its own folder, not from where this command ran
        model = os.path.relpath(Path(model).expanduser().resolve(), out.resolve())
        model = model if model.startswith(".") else f"./{model}"  # a bare `a/b` would read as a hub id
    try:
        model.encode("utf-8")
    except UnicodeEncodeError:  # bytes that are not UTF-8 on the command line arrive as lone surrogates
        sys.stderr.write("error: `--model` is not UTF-8 text\n  = help: give the model's path or name as UTF-8; "
                         "nothing was written\n")
        return EXIT_USAGE
    options: dict[str, Any] = {"model": model}
    if args.benchmark == "tofu":
        options["split"] = args.split
    elif args.benchmark == "muse":
        options["corpus"] = args.corpus
    elif args.subsets is not None:
        subsets = tuple(dict.fromkeys(s.strip() for s in args.subsets.split(",") if s.strip()))
        if not subsets:
            sys.stderr.write(f"error: `--subsets {args.subsets}` names no subset\n  = help: name one or more of "
                             "`bio`, `cyber` and `chem`, comma-separated, or leave `--subsets` out for every subset "
                             "the folder has\n")
            return EXIT_USAGE
        options["subsets"] = subsets
    if args.corpora is not None:
        if args.benchmark != "wmdp":
            sys.stderr.write("error: `--corpora` is for `wmdp`\n  = help: it names a `cais/wmdp-corpora` folder, "
                             "imported beside WMDP's questions\n")
            return EXIT_USAGE
        if not Path(args.corpora).is_dir():
            sys.stderr.write(f"error: `--corpora` {printable(code_span(args.corpora))} is not a folder\n  = help: give "
                             "the folder `cais/wmdp-corpora`'s files are in\n")
            return EXIT_USAGE
        options["corpora"] = Path(args.corpora)
    try:
        try:
            imported = IMPORTERS[args.benchmark](src, **options)
        except OSError as err:  # a folder or file of the source that cannot be listed or read
            where = printable(f" {code_span(err.filename)}") if err.filename else ""
            sys.stderr.write(f"error: cannot read{where}: {os_reason(err)}\n  = help: nothing was written; make "
                             "the benchmark's files readable and run the import again\n")
            return EXIT_USAGE
        try:
            written = write_import(imported, out, force=args.force)
        except OSError as err:  # failed part-way (a full disk, a read-only folder): what was there is put back
            where = f" {code_span(err.filename)}" if err.filename else ""
            sys.stderr.write(f"error: cannot write{where}: {os_reason(err)}\n  = help: nothing was imported; the "
                             "output folder is as it was before\n")
            return EXIT_USAGE
    except ImportFailure as err:
        _print_failure(err)
        return EXIT_USAGE
    except UnquotableError as err:  # `--model` or `--subsets` with a character a spec string cannot hold
        sys.stderr.write(f"error: a value for the starter spec {err}\n"
                         "  = help: give `--model` and `--subsets` without control characters; nothing was written\n")
        return EXIT_USAGE
    for path in written:
        records = imported.files.get(path.name)
        count = (f"{len(records):6d} records" if records is not None
                 else "     provenance" if path.name == imported.manifest_name else "   starter spec")
        origin = f"  <- {imported.describe(path.name)}" if path.name in imported.sources else ""
        sys.stdout.write(printable(f"{count}  {path}{origin}") + "\n")
    for note in imported.notes:
        sys.stdout.write(f"note: {printable_lines(note)}\n")
    for warning in imported.warnings:
        sys.stdout.write(f"warning: {printable_lines(warning)}\n")
    return EXIT_OK


def register(sub: argparse._SubParsersAction[Parser]) -> None:
    sp = sub.add_parser("data", help="benchmark data: import TOFU, MUSE or WMDP files as records")
    dsub = sp.add_subparsers(dest="data_cmd", required=True, parser_class=Parser)
    imp = dsub.add_parser("import", help="convert a benchmark's local files to JSONL records and a starter spec")
    imp.add_argument("benchmark", choices=("tofu", "muse", "wmdp"))
    imp.add_argument("src", type=path_arg, help="folder holding the benchmark's files (json, jsonl, parquet or save_to_disk), a hub cache "
                     "folder, or the dataset's folder in the `datasets` cache")
    imp.add_argument("--out", required=True, type=path_arg, help="folder to write the records and the starter spec into")
    imp.add_argument("--model", default="builtin:tiny-bios", help="the model the starter spec names")
    imp.add_argument("--split", default="forget10", choices=("forget01", "forget05", "forget10"),
                     help="TOFU: the forget split (its retain and holdout splits follow)")
    imp.add_argument("--corpus", choices=("news", "books"), help="MUSE: News or Books (default: from the folder name)")
    imp.add_argument("--subsets", help="WMDP: comma-separated subsets, each of which must be present "
                     "(default: bio, cyber, chem, those present)")
    imp.add_argument("--corpora", type=path_arg, metavar="DIR",
                     help="WMDP: a `cais/wmdp-corpora` folder; the subsets' forget and retain corpora become the "
                     "forget and retain sets (the bio forget corpus is not public: it is given on request)")
    imp.add_argument("--force", action="store_true", help="replace files an earlier import wrote in --out")
    imp.set_defaults(func=cmd_import)
