"""The `unlearnspec` command line: one module per verb (group), each with a ``register`` function.

Compiler verbs (check, fmt, explain, schema, plan, show, diff) import only the compiler: they start
fast in a CI job and never load torch. Every verb module is imported at start-up, so each imports at its
top only what `check` loads anyway; inside a verb's function it imports what `check` must not load: the
runtime (torch), the plan's and the report's models, jinja2 templates, the language server
(docs/architecture.md).

Exit codes: 0 success (warnings allowed unless --strict); 1 findings/failure (errors, a failed
verdict, files that need formatting, a loosening diff); 2 usage error; 3 a run that is incomplete.

To add a verb: write ``unlearnspec/cli/<verb>.py`` with ``register(sub)`` (which sets ``func``) and
add the module to :data:`VERBS`.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from unlearnspec import __version__
from unlearnspec.cli import card, check, data, debug, explain, fmt, init, ledger, lsp, plan, run, schema, sign
from unlearnspec.cli.common import (
    EXIT_FINDINGS,
    EXIT_INCOMPLETE,
    EXIT_OK,
    EXIT_USAGE,
    Parser,
    UsageError,
    os_reason,
    print_error,
)
from unlearnspec.cli.launch import EXIT_FILE
from unlearnspec.errors import UserError
from unlearnspec.markdown import code_span

__all__ = ["EXIT_FINDINGS", "EXIT_INCOMPLETE", "EXIT_OK", "EXIT_USAGE", "VERBS", "build_parser", "main"]

#: Every verb module, in the order `unlearnspec --help` lists them.
VERBS = (check, fmt, explain, schema, plan, run, debug, init, lsp, ledger, sign, card, data)


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="unlearnspec", description="Write machine-unlearning objectives down, check them, plan and run them.")
    p.add_argument("--version", action="version", version=f"unlearnspec {__version__}")
    sub = p.add_subparsers(dest="cmd", required=True, parser_class=Parser)
    for verb in VERBS:
        verb.register(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except UsageError as err:
        sys.stderr.write(err.render())
        return EXIT_USAGE
    except UserError as err:  # a coded refusal (UL715: an output inside a folder the plan pins)
        print_error(err)
        return EXIT_USAGE
    except OSError as err:
        # The one error boundary: a path the user gave that cannot be read or written ends here as a
        # usage error (exit 2), never as a traceback or as exit 1, which means that a claim failed.
        if isinstance(err, BrokenPipeError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return EXIT_OK
        where = f" {code_span(err.filename)}" if err.filename else ""
        sys.stderr.write(f"error: cannot use{where}: {os_reason(err)}\n")
        return EXIT_USAGE
    except KeyboardInterrupt:
        if not os.environ.get(EXIT_FILE):  # a process of `run --processes N`: the command that started it says so
            sys.stderr.write("interrupted\n")
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
