"""Verb `explain`: a diagnostic code's page, or a spec's claims in plain words."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from unlearnspec.catalog import CODES
from unlearnspec.cli.common import EXIT_OK, EXIT_USAGE, Parser, out
from unlearnspec.compiler.suggest import did_you_mean
from unlearnspec.markdown import code_span


def cmd_explain(args: argparse.Namespace) -> int:
    # the explanations' jinja2 templates load when the verb runs: `check` never needs them
    from unlearnspec.compiler.explain import error_document, explain_code, explain_document, list_codes

    def fail(message: str, help: str) -> int:  # the error on stderr; `--format json` also gets a JSON document
        sys.stderr.write(f"error: {message}\n  = help: {help}\n")
        if args.format == "json":
            out(error_document(message))
        return EXIT_USAGE

    target = args.target
    if re.fullmatch(r"(?i)(UL|RT)\d{3}", target):
        text = explain_code(target.upper(), args.format)
        if text is None:
            hint = did_you_mean(target.upper(), list(CODES))
            return fail(f"no diagnostic code {code_span(target)}" + (f"; did you mean {code_span(hint)}?" if hint else ""),
                        "`unlearnspec explain codes` lists every code with its name")
        out(text)
        return EXIT_OK
    if target in ("all", "--list", "codes"):
        out(list_codes(args.format))
        return EXIT_OK
    path = Path(target)
    if not path.exists():
        return fail(f"{code_span(target)} is neither a diagnostic code (ULnnn) nor a spec file",
                    "give a code such as `UL301` (`unlearnspec explain codes` lists them) or the path of a spec")
    text, errors, code = explain_document(path, fmt=args.format)
    sys.stderr.write(errors)
    if text:
        out(text)
    return code


def register(sub: argparse._SubParsersAction[Parser]) -> None:
    sp = sub.add_parser("explain", help="explain a diagnostic code (ULnnn), or a spec's claims in plain words")
    sp.add_argument("target", help="a code such as UL301, `all`, or a spec file")
    sp.add_argument("--format", choices=("text", "md", "json"), default="text")
    sp.set_defaults(func=cmd_explain)
