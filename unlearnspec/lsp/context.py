"""Where the cursor is in a spec, read from the text alone.

Completion and hover must answer while the spec is half written and does not parse, so they do not
wait for a syntax tree: a small lexer (the grammar's token shapes, plus unclosed strings and stray
characters) finds the token under the cursor, the field whose values it is among, and the blocks
around it, counted by their braces.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass

TOKEN = re.compile(r"""
    (?P<comment>\#[^\n]*)
  | (?P<string>"(?:[^"\\\n\r]|\\.)*"?)
  | (?P<lbrace>\{)
  | (?P<rbrace>\})
  | (?P<percent>-?[0-9]+(?:\.[0-9]+)?%)
  | (?P<number>-?[0-9]+(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?)
  | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op><=|>=|==|<|>)
  | (?P<comma>,)
  | (?P<other>\S)
""", re.VERBOSE)
CLOSED_STRING = re.compile(r'"(?:[^"\\\n\r]|\\.)*"')


@dataclass(frozen=True)
class Token:
    kind: str  # comment | string | lbrace | rbrace | percent | number | word | op | comma | other
    text: str
    line: int  # 0-based
    start: int  # character columns, 0-based, end exclusive
    end: int

    @property
    def closed(self) -> bool:
        """A string with its closing quote (``"a\\"`` is not: its last quote is escaped)."""
        return self.kind == "string" and CLOSED_STRING.fullmatch(self.text) is not None


def split_lines(text: str) -> list[str]:
    """Lines as the editor counts them (``\\r\\n`` and ``\\n``)."""
    return [ln[:-1] if ln.endswith("\r") else ln for ln in text.split("\n")]


def tokenize_line(line: str, lineno: int) -> list[Token]:
    out = []
    for m in TOKEN.finditer(line):
        kind = m.lastgroup or "other"
        out.append(Token(kind, m.group(), lineno, m.start(), m.end()))
    return out


@dataclass
class Cursor:
    """What surrounds a position: enclosing blocks (outermost first, ``objective``, ``target``...),
    the field whose values the cursor is among (``None`` where a field name goes), and the token
    under the cursor."""

    blocks: list[str] = dataclasses.field(default_factory=list)
    field: str | None = None
    token: Token | None = None
    prefix: str = ""  # the part of the token before the cursor
    before: list[Token] = dataclasses.field(default_factory=list)  # this field's tokens before the cursor
    in_comment: bool = False

    @property
    def block(self) -> str:
        return self.blocks[-1] if self.blocks else ""

    @property
    def in_string(self) -> bool:
        """Between a string's quotes: after the opening one (not on it) and before the closing one, or
        anywhere after the opening quote of a string not closed yet (``forget "da``)."""
        tok = self.token
        return (tok is not None and tok.kind == "string" and self.prefix != ""
                and (self.prefix != tok.text or not tok.closed))


def _head(tokens: list[Token]) -> str:
    first = next((t for t in tokens if t.kind != "comment"), None)
    return first.text if first is not None and first.kind == "word" else "?"


def _content(lines: list[str], i: int) -> list[Token]:
    return [t for t in tokenize_line(lines[i], i) if t.kind != "comment"]


def cursor_at(text: str, line: int, column: int) -> Cursor:
    """The :class:`Cursor` at 0-based ``line`` and character ``column``."""
    lines = split_lines(text)
    line = max(0, min(line, len(lines) - 1))
    blocks: list[str] = []

    def braces(toks: list[Token], head: str, upto: int | None = None) -> None:
        for t in toks:
            if upto is not None and t.end > upto:
                break
            if t.kind == "lbrace":
                blocks.append(head)
            elif t.kind == "rbrace" and blocks:
                blocks.pop()

    for i in range(line):
        toks = tokenize_line(lines[i], i)
        braces(toks, _head(toks))
    toks = tokenize_line(lines[line], line)
    braces(toks, _head(toks), upto=column)
    cur = Cursor(blocks=blocks)
    if any(t.kind == "comment" and t.start < column for t in toks):
        cur.in_comment = True
        return cur
    under = [t for t in toks if t.start <= column <= t.end and t.kind not in ("comma", "lbrace", "rbrace")]
    inside = [t for t in under if t.start < column]
    cur.token = inside[0] if inside else (under[0] if under else None)
    if cur.token is not None:
        cur.prefix = cur.token.text[: column - cur.token.start]
    content = [t for t in toks if t.kind != "comment"]
    first = content[0] if content else None
    k = line - 1
    if k < 0 or not (prev := _content(lines, k)) or prev[-1].kind != "comma":
        if first is not None and first.kind == "word" and first.end < column:
            cur.field = first.text
            cur.before = [t for t in content[1:] if t.end <= column and t is not cur.token]
        return cur
    # a list continued after a comma: the field of the line the list started on
    while k > 0 and (earlier := _content(lines, k - 1)) and earlier[-1].kind == "comma":
        k -= 1
    start = _content(lines, k)
    if start and start[0].kind == "word":
        cur.field = start[0].text
        # the list so far: the rest of its first line, the lines between, and this line up to the cursor
        cur.before = start[1:] + [t for i in range(k + 1, line) for t in _content(lines, i)] + \
            [t for t in content if t.end <= column and t is not cur.token]
    return cur
