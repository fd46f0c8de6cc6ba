"""What a model load can fail with: the runtime's load error codes and :class:`LoadError`.

Apart from :mod:`unlearnspec.runtime.loading` so that modules it imports (the prompt format, which checks a
tokenizer's chat template) can raise them too.
"""

from __future__ import annotations

from collections.abc import Sequence

from unlearnspec.errors import UserError

# Runtime error codes (stable: scripts match on them; catalog/codes_front.py). The compiler owns UL1xx-UL5xx.
E_NOT_FOUND = "RT101"
E_PICKLE_WEIGHTS = "RT102"
E_UNAVAILABLE = "RT103"
E_REMOTE_CODE = "RT104"
E_RETRAIN_UNKNOWN = "RT105"
E_BAD_MODEL = "RT106"


class LoadError(UserError):
    """A model or artefact that cannot be loaded; the CLI turns it into a diagnostic."""

    def __init__(self, message: str, *, code: str = E_BAD_MODEL, help: Sequence[str] = ()) -> None:
        super().__init__(code, message, help)


def describe_error(exc: BaseException) -> str:
    """A library's exception in one line: its type and the first line of its message."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__
