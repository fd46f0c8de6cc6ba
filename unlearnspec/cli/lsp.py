"""Verb `lsp`: the language server, over stdio, for editors (see docs/editors.md)."""

from __future__ import annotations

import argparse
import sys

from unlearnspec.cli.common import EXIT_OK, EXIT_USAGE, Parser


def cmd_lsp(args: argparse.Namespace) -> int:
    try:
        from unlearnspec.lsp.server import serve
    except ImportError as err:  # pygls is the `lsp` extra
        sys.stderr.write(f"error: the language server needs pygls ({err.name or err}); "
                         "install it with `pip install 'unlearnspec[lsp]'`\n")
        return EXIT_USAGE
    serve()
    return EXIT_OK


def register(sub: argparse._SubParsersAction[Parser]) -> None:
    sp = sub.add_parser("lsp", help="run the language server over stdio (for editors)",
                        description="Speak the Language Server Protocol over stdin/stdout: diagnostics as you "
                                    "type, hover, completion, formatting, quick fixes. Editors start it; see "
                                    "docs/editors.md.")
    sp.add_argument("--stdio", action="store_true", help="accepted for editors that pass it; stdio is the only transport")
    sp.set_defaults(func=cmd_lsp)
