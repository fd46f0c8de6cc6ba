"""What every verb shares: exit codes, the argument parser class, writing output, the usage error, printing errors."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from unlearnspec.catalog import CODES
from unlearnspec.catalog.exits import EXIT_FINDINGS, EXIT_INCOMPLETE, EXIT_OK, EXIT_USAGE
from unlearnspec.errors import UserError
from unlearnspec.io import atomic_write_text
from unlearnspec.markdown import code_span

#: The user gave up at a prompt (Ctrl-C, which `unlearnspec.cli.main` answers with it, or Ctrl-D): 128 + SIGINT.
EXIT_INTERRUPTED = 130

__all__ = ["EXIT_FINDINGS", "EXIT_INCOMPLETE", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_USAGE", "Parser", "UsageError",
           "add_colour", "os_reason", "out", "print_error"]


class Parser(argparse.ArgumentParser):
    """argparse, with usage errors exiting 2 (the user must fix the command line)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        sys.stderr.write(f"error: {message}\n")
        raise SystemExit(EXIT_USAGE)


class UsageError(Exception):
    """A path, file or value given on the command line that cannot be used (an output folder that
    cannot be written, a FIFO given as a spec): :func:`unlearnspec.cli.main` prints it as one
    ``error:`` line with ``help:`` lines and exits 2, never with a traceback."""

    def __init__(self, message: str, help: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.help = list(help)

    def render(self) -> str:
        return f"error: {self.message}\n" + "".join(f"  = help: {h}\n" for h in self.help)


def os_reason(err: OSError) -> str:
    """What went wrong, in the operating system's words, lower case (`permission denied`)."""
    reason = err.strerror or str(err) or type(err).__name__
    return reason[:1].lower() + reason[1:]


def path_arg(text: str) -> str:
    """The argparse type of every path a verb takes: an empty one (an unset shell variable, `fmt "$SPECS"`)
    would read as the current folder and act on everything in it, so it is refused (exit 2)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty path would mean the current folder; give a path")
    return text


def inside(path: str | Path, folder: str | Path) -> bool:
    """Whether ``path`` is ``folder`` or lies below it, links followed on both sides."""
    return Path(os.path.realpath(path)).is_relative_to(os.path.realpath(folder))


def out(text: str, output: str | None = None, inputs: Sequence[str | Path] = (),
        read_only: Sequence[Path] = ()) -> None:
    """Write ``text`` to ``output`` atomically, or to stdout when no file (or ``-``) is given. An ``output`` that
    is one of the command's ``inputs`` (the spec, a data file it names, the run's report), through a link or
    not, is refused: the output would replace what the user gave. So is one inside a ``read_only`` folder (a
    model folder the plan pins: UL715)."""
    if output and output != "-":
        for folder in read_only:
            if inside(output, folder):
                raise UserError(CODES["UL715"].code, f"{code_span(output)} is inside {code_span(folder)}, a folder the plan pins and a run only "
                                "reads: writing there would change it", ["give a path outside it with `-o`"])

        for given in inputs:
            with contextlib.suppress(OSError):
                if os.path.samefile(output, given):
                    raise UsageError(f"{code_span(output)} is an input of this command ({code_span(given)}): writing the output there "
                                     "would replace it", help=["give another path with `-o`, or `-` for stdout"])

        try:
            atomic_write_text(Path(output), text, make_parents=False)
        except OSError as err:
            raise UsageError(f"cannot write {code_span(output)}: {os_reason(err)}",
                             help=["give a file path in a folder you can write to (`-` prints to stdout)"]) from err
    else:
        sys.stdout.write(text)
        sys.stdout.flush()


def add_colour(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("--color", "--colour", choices=("auto", "always", "never"), default="auto",
                    help="colour in human output (default: on a TTY unless NO_COLOR is set)")


def print_error(err: UserError) -> None:
    """A :class:`UserError` as a diagnostic: ``error[CODE]: message`` and its ``= help:`` lines."""
    sys.stderr.write(f"error[{err.code}]: {err.message}\n")
    for h in err.help:
        sys.stderr.write(f"  = help: {h}\n")
