"""What every verb shares: exit codes, the argument parser class, writing output."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from unlearnspec.catalog.exits import EXIT_FINDINGS, EXIT_INCOMPLETE, EXIT_OK, EXIT_USAGE

__all__ = ["EXIT_FINDINGS", "EXIT_INCOMPLETE", "EXIT_OK", "EXIT_USAGE", "Parser", "add_colour", "out"]


class Parser(argparse.ArgumentParser):
    """argparse, with usage errors exiting 2 (the user must fix the command line)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        sys.stderr.write(f"error: {message}\n")
        raise SystemExit(EXIT_USAGE)


def out(text: str, output: str | None = None) -> None:
    """Write ``text`` to ``output`` atomically, or to stdout when no file (or ``-``) is given."""
    if output and output != "-":
        from unlearnspec.io import atomic_write_text

        atomic_write_text(Path(output), text)
    else:
        sys.stdout.write(text)
        sys.stdout.flush()


def add_colour(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("--color", "--colour", choices=("auto", "always", "never"), default="auto",
                    help="colour in human output (default: on a TTY unless NO_COLOR is set)")
