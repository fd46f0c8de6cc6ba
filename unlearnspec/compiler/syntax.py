"""The syntax tree: what the parser builds, with a source span on every node.

It is generic (fields, values, blocks), as the grammar is; the resolve pass turns it into the typed
objective model of :mod:`unlearnspec.compiler.ast`. ``fmt`` prints this tree back in the canonical
layout, with the comments the lexer collected.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict
from pydantic import Field as PydField

from unlearnspec.compiler.diagnostics import Span

ValueKind = Literal["word", "string", "number", "percent", "op"]


class _Node(BaseModel):
    model_config = ConfigDict(frozen=True)


def unquote(raw: str) -> str:
    body = raw[1:-1]
    out: list[str] = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch == "\\" and i + 1 < len(body):
            nxt = body[i + 1]
            out.append({"n": "\n", "t": "\t"}.get(nxt, nxt))
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


class Value(_Node):
    kind: ValueKind
    raw: str
    span: Span

    @property
    def text(self) -> str:
        """The value as the user meant it: strings unquoted, percentages without `%`."""
        if self.kind == "string":
            return unquote(self.raw)
        if self.kind == "percent":
            return self.raw[:-1]
        return self.raw

    @property
    def number(self) -> float | None:
        if self.kind in ("number", "percent"):
            return float(self.text)
        return None


class Field(_Node):
    name: str
    name_span: Span
    groups: list[list[Value]] = PydField(default_factory=list)
    block: Block | None = None
    span: Span

    @property
    def values(self) -> list[Value]:
        return [v for g in self.groups for v in g]


class Block(_Node):
    fields: list[Field] = PydField(default_factory=list)
    span: Span
    open_span: Span
    close_span: Span


class ObjectiveNode(_Node):
    name: str
    name_span: Span
    keyword_span: Span
    block: Block
    span: Span


class Comment(_Node):
    text: str
    line: int
    column: int


class SpecFile(_Node):
    path: str
    source: str
    version: Value | None = None
    header_span: Span | None = None
    objectives: list[ObjectiveNode] = PydField(default_factory=list)
    comments: list[Comment] = PydField(default_factory=list)


Field.model_rebuild()
