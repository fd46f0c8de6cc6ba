"""The syntax tree: what the parser builds, with a source span on every node.

It is generic (fields, values, blocks), as the grammar is; the resolve pass turns it into the typed
objective model of :mod:`unlearnspec.compiler.ast`. ``fmt`` prints this tree back in the canonical
layout, with the comments the lexer collected.

The nodes are immutable named tuples rather than pydantic models, and each keeps its position as a
plain tuple of ints (``Pos``), making its :class:`Span` only when asked (``.span``, ``.name_span``...):
the parser builds several hundred nodes per spec, and building them and their spans was the largest
cost of checking a folder of specs after Lark's own parsing (bench/bench_compiler.py). Nothing
validates them — the parser is their only producer — and the typed AST that the rest of the
compiler reads is pydantic as before. ``_asdict()`` dumps one.
"""

from __future__ import annotations

import unicodedata
from typing import Literal, NamedTuple

from unlearnspec.compiler.diagnostics import Span

ValueKind = Literal["word", "string", "number", "percent", "op"]


def unquote(raw: str) -> str:
    body = raw[1:-1]
    if "\\" not in body:
        return body
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


ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t"}
"""The characters a spec string writes escaped (the grammar's ``STRING``), and how."""


class UnquotableError(ValueError):
    """Text no spec string can hold: it has a control character the language has no escape for (a carriage
    return, an ESC, a NUL...). Writing it raw would end the string (``\\r``) or hide in the file."""

    def __init__(self, char: str) -> None:
        self.char = char
        super().__init__(f"contains the control character U+{ord(char):04X}, which a spec string cannot hold "
                         "(the language escapes only `\\\\`, `\\\"`, `\\n` and `\\t`)")


def unquotable(text: str) -> str | None:
    """The first character of ``text`` that :func:`quote` refuses, or None."""
    return next((ch for ch in text if ch not in ESCAPES and unicodedata.category(ch) == "Cc"), None)


def quote(text: str) -> str:
    """``text`` as a spec string literal: the inverse of :func:`unquote`; the one quoting function (``init`` and
    the importers' starter specs use it). Raises :class:`UnquotableError` for a control character other than
    a line break or a tab: the grammar has no escape for it."""
    bad = unquotable(text)
    if bad is not None:
        raise UnquotableError(bad)
    return '"' + "".join(ESCAPES.get(ch, ch) for ch in text) + '"'


def source_lines(text: str) -> list[str]:
    """The lines of a spec as the lexer counts them: split at `\\n` only (a form feed or U+2028
    inside a line is not a line break for the grammar), without the `\\r` of a CRLF ending."""
    return [ln[:-1] if ln.endswith("\r") else ln for ln in text.split("\n")]


# Where a node is, as the lexer counted it: (line, column, end_line, end_column, start_pos,
# end_pos), 1-based lines and columns, end exclusive. A plain tuple of ints, not a named tuple:
# the garbage collector stops tracking those once it has seen them, and a folder of specs leaves
# a hundred thousand of them alive (bench/bench_compiler.py).
Pos = tuple[int, int, int, int, int, int]


def pos_span(pos: Pos, file: str) -> Span:
    """The :class:`Span` of a position in ``file``."""
    line, column, end_line, end_column, start_pos, end_pos = pos
    return Span(file=file, line=line, column=column, end_line=end_line, end_column=end_column,
                start_pos=start_pos, end_pos=end_pos)


class Value(NamedTuple):
    kind: ValueKind
    raw: str
    file: str
    pos: Pos

    @property
    def span(self) -> Span:
        return pos_span(self.pos, self.file)

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


class Field(NamedTuple):
    name: str
    file: str
    name_pos: Pos
    pos: Pos
    groups: tuple[tuple[Value, ...], ...] = ()
    block: Block | None = None

    @property
    def name_span(self) -> Span:
        return pos_span(self.name_pos, self.file)

    @property
    def span(self) -> Span:
        return pos_span(self.pos, self.file)

    @property
    def values(self) -> list[Value]:
        return [v for g in self.groups for v in g]


class Block(NamedTuple):
    file: str
    pos: Pos
    open_pos: Pos
    close_pos: Pos
    fields: tuple[Field, ...] = ()

    @property
    def span(self) -> Span:
        return pos_span(self.pos, self.file)

    @property
    def open_span(self) -> Span:
        return pos_span(self.open_pos, self.file)

    @property
    def close_span(self) -> Span:
        return pos_span(self.close_pos, self.file)


class ObjectiveNode(NamedTuple):
    name: str
    file: str
    name_pos: Pos
    keyword_pos: Pos
    pos: Pos
    block: Block

    @property
    def name_span(self) -> Span:
        return pos_span(self.name_pos, self.file)

    @property
    def keyword_span(self) -> Span:
        return pos_span(self.keyword_pos, self.file)

    @property
    def span(self) -> Span:
        return pos_span(self.pos, self.file)


class Comment(NamedTuple):
    text: str
    line: int
    column: int


LANGUAGE_VERSIONS = ("1",)
"""The language versions this compiler reads (the header `unlearnspec 1`)."""


class SpecFile(NamedTuple):
    path: str
    source: str
    version: Value | None = None
    header_span: Span | None = None
    objectives: tuple[ObjectiveNode, ...] = ()
    comments: tuple[Comment, ...] = ()

    @property
    def readable(self) -> bool:
        """Whether the header (or its absence) names a language version this compiler reads."""
        return self.version is None or self.version.text in LANGUAGE_VERSIONS


def to_json(node: object) -> object:
    """A syntax tree as plain JSON (what `unlearnspec debug syntax` prints): each node a dict of its fields,
    positions as ``[line, column, end_line, end_column]``; the file name and the source text are left out."""
    if isinstance(node, tuple) and hasattr(node, "_fields"):
        out: dict[str, object] = {"node": type(node).__name__}
        for name in node._fields:
            if name in ("file", "source"):
                continue
            value = getattr(node, name)
            out[name] = list(value[:4]) if name.endswith("pos") and isinstance(value, tuple) else to_json(value)
        return out
    if isinstance(node, tuple | list):
        return [to_json(x) for x in node]
    if isinstance(node, Span):
        return [node.line, node.column, node.end_line, node.end_column]
    return node
