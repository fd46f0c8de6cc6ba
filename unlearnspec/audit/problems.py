"""What the audit checks find: a code, a place, a message and help, with no compiler import (the
runtime appends to the ledger and must not import the compiler). The CLI turns them into diagnostics."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """A finding about a file: a code, a 1-based line (0: the file as a whole), a message, help lines.

    ``file`` names the file when the finder checks several (a run's report, plan and signature)."""

    code: str
    line: int
    message: str
    help: tuple[str, ...] = ()
    file: str | None = None
