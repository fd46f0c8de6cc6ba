"""The one error type a user acts on: a stable code, a one-sentence message and ``help`` lines.

Every layer below the command line raises a subclass (a plan that cannot be loaded, a run that
cannot start, a model that cannot be loaded); only the CLI prints them (as ``error[CODE]: message``
with ``= help:`` lines) and decides the exit code. Standard library only.
"""

from __future__ import annotations

from collections.abc import Sequence


class UserError(Exception):
    """Something the user must fix (a path, a file, an option); never a bug, never a traceback."""

    def __init__(self, code: str, message: str, help: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.help = list(help)

    def __str__(self) -> str:
        return "\n".join([f"{self.code}: {self.message}", *(f"help: {h}" for h in self.help)])
