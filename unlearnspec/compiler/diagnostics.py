"""One diagnostic model for every finding the compiler reports.

Syntax errors (UL1xx), resolve errors (UL2xx) and feasibility findings (UL3xx-UL5xx) are all
``Diagnostic`` objects: a code, a severity, a one-sentence message (lower case, no final period,
each value from the user or a data file quoted through :func:`unlearnspec.markdown.code_span`, a code span
fenced to fit whatever backticks it holds), a primary span, labelled secondary spans, and ``help:`` lines. The
renderers in :mod:`unlearnspec.compiler.render` turn them into human text, JSON, SARIF or GitHub
workflow annotations.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from unlearnspec.markdown import code_span

Severity = Literal["error", "warning", "note"]
SEVERITY_ORDER: dict[str, int] = {"error": 0, "warning": 1, "note": 2}


class Span(BaseModel):
    """A region of a source file: 1-based lines and columns, end exclusive, byte-free offsets."""

    model_config = ConfigDict(frozen=True)

    file: str
    line: int
    column: int
    end_line: int
    end_column: int
    start_pos: int = 0
    end_pos: int = 0

    @classmethod
    def point(cls, file: str, line: int = 1, column: int = 1, pos: int = 0) -> Span:
        return cls(file=file, line=line, column=column, end_line=line, end_column=column + 1,
                   start_pos=pos, end_pos=pos + 1)

    def location(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"

    def start(self) -> Span:
        """The empty span where this one starts: an edit there inserts before it."""
        return self.model_copy(update={"end_line": self.line, "end_column": self.column, "end_pos": self.start_pos})

    def end(self) -> Span:
        """The empty span where this one ends: an edit there inserts after it."""
        return self.model_copy(update={"line": self.end_line, "column": self.end_column, "start_pos": self.end_pos})

    def through(self, last: Span) -> Span:
        """The span from the start of this one to the end of ``last`` (several values as one)."""
        return self.model_copy(update={"end_line": last.end_line, "end_column": last.end_column, "end_pos": last.end_pos})


class Label(BaseModel):
    """A secondary span with a short message: every position that contributes to a finding."""

    model_config = ConfigDict(frozen=True)

    span: Span
    message: str


class Edit(BaseModel):
    """Replace what ``span`` covers with ``text`` (an empty span inserts ``text`` there)."""

    model_config = ConfigDict(frozen=True)

    span: Span
    text: str


class Fix(BaseModel):
    """A mechanical change that resolves a finding the way its help says: an editor's quick fix, a SARIF
    ``fix``. Made by whoever reports the finding, who knows what the spec holds there (a quoted string is
    replaced by a quoted string), so no reader has to recover an edit from the help's prose. ``preferred``
    marks the one fix an editor may apply without asking which (a "did you mean" of a misspelt word)."""

    model_config = ConfigDict(frozen=True)

    title: str
    edits: list[Edit]
    preferred: bool = False

    @classmethod
    def replace(cls, span: Span, text: str, title: str | None = None, *, preferred: bool = False) -> Fix:
        """One edit: ``text`` written where ``span`` is; titled "write `text`" unless told otherwise."""
        return cls(title=title or f"write {code_span(text)}", edits=[Edit(span=span, text=text)], preferred=preferred)


class Diagnostic(BaseModel):
    model_config = ConfigDict(frozen=True)

    code: str
    severity: Severity
    message: str
    span: Span
    labels: list[Label] = Field(default_factory=list)
    help: list[str] = Field(default_factory=list)
    fixes: list[Fix] = Field(default_factory=list)
    objective: str | None = None
    claim: str | None = None  # the claim the finding concerns, when it concerns one
    accepted: bool = False
    justification: str | None = None

    @property
    def blocking(self) -> bool:
        return self.severity == "error" and not self.accepted

    def sort_key(self) -> tuple[str, int, int, str]:
        return (self.span.file, self.span.line, self.span.column, self.code)


def sort_diagnostics(diags: list[Diagnostic]) -> list[Diagnostic]:
    return sorted(diags, key=Diagnostic.sort_key)


def count(diags: list[Diagnostic], severity: Severity, *, include_accepted: bool = False) -> int:
    return sum(d.severity == severity and (include_accepted or not d.accepted) for d in diags)
