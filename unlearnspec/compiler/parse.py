"""Parse pass: bytes → :class:`SpecFile`, or syntax diagnostics (UL1xx) in the language's own words.

One cached Lark factory (LALR, contextual lexer, grammar cache). Lark's exceptions never escape:
each is translated into a diagnostic saying which keyword or value was expected. After a syntax
error the parser recovers line by line (the offending line is set aside, keeping its braces
balanced) so that one run reports every independent error in a file, not only the first.
"""

from __future__ import annotations

import functools
from importlib import resources
from typing import Any

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from unlearnspec.compiler.diagnostics import Diagnostic, Label, Span
from unlearnspec.compiler.suggest import did_you_mean
from unlearnspec.compiler.syntax import Block, Comment, Field, ObjectiveNode, SpecFile, Value

MAX_BYTES = 1_000_000
MAX_DEPTH = 32
MAX_SYNTAX_ERRORS = 20
SUPPORTED_VERSIONS = ("1",)

_TERMINAL_WORDS = {
    "NAME": "a word",
    "STRING": 'a quoted string (`"..."`)',
    "NUMBER": "a number",
    "PERCENT": "a percentage (`2%`)",
    "OP": "a comparison (`<=`, `>=`)",
    "LBRACE": "`{`",
    "RBRACE": "`}`",
    "COMMA": "`,`",
    "_NL": "the end of the line",
    "OBJECTIVE_KW": "`objective`",
    "VERSION_KW": "`unlearnspec`",
    "$END": "the end of the file",
}


def grammar_text() -> str:
    return resources.files("unlearnspec.grammar").joinpath("unlearn.lark").read_text(encoding="utf-8")


@functools.lru_cache(maxsize=2)
def get_parser(strict: bool = False) -> Lark:
    """The LALR parser. ``strict`` (used by the tests) also proves the grammar conflict-free."""
    return Lark(
        grammar_text(),
        parser="lalr",
        lexer="contextual",
        propagate_positions=True,
        maybe_placeholders=False,
        strict=strict,
        cache=not strict,
    )


def _span(file: str, meta: Any) -> Span:
    return Span(file=file, line=meta.line, column=meta.column, end_line=meta.end_line,
                end_column=meta.end_column, start_pos=meta.start_pos, end_pos=meta.end_pos)


def _tok_span(file: str, tok: Token) -> Span:
    line = tok.line or 1
    col = tok.column or 1
    return Span(file=file, line=line, column=col, end_line=tok.end_line or line,
                end_column=tok.end_column or col + 1, start_pos=tok.start_pos or 0,
                end_pos=tok.end_pos or 0)


class _Build(Transformer[Token, Any]):
    """Parse tree → syntax nodes (``SpecFile`` is assembled by the caller)."""

    def __init__(self, file: str) -> None:
        super().__init__()
        self.file = file

    def _value(self, kind: str, tok: Token) -> Value:
        return Value(kind=kind, raw=str(tok), span=_tok_span(self.file, tok))  # type: ignore[arg-type]

    def word(self, c: list[Token]) -> Value:
        return self._value("word", c[0])

    def string(self, c: list[Token]) -> Value:
        return self._value("string", c[0])

    def number(self, c: list[Token]) -> Value:
        return self._value("number", c[0])

    def percent(self, c: list[Token]) -> Value:
        return self._value("percent", c[0])

    def op(self, c: list[Token]) -> Value:
        return self._value("op", c[0])

    def group(self, c: list[Value]) -> list[Value]:
        return list(c)

    def values(self, c: list[list[Value]]) -> list[list[Value]]:
        return list(c)

    @v_args(meta=True)
    def field(self, meta: Any, c: list[Any]) -> Field:
        name: Token = c[0]
        groups: list[list[Value]] = []
        block: Block | None = None
        for item in c[1:]:
            if isinstance(item, Block):
                block = item
            else:
                groups = item
        return Field(name=str(name), name_span=_tok_span(self.file, name), groups=groups, block=block,
                     span=_span(self.file, meta))

    @v_args(meta=True)
    def block(self, meta: Any, c: list[Any]) -> Block:
        fields = [x for x in c if isinstance(x, Field)]
        start = Span(file=self.file, line=meta.line, column=meta.column, end_line=meta.line,
                     end_column=meta.column + 1, start_pos=meta.start_pos, end_pos=meta.start_pos + 1)
        end = Span(file=self.file, line=meta.end_line, column=meta.end_column - 1, end_line=meta.end_line,
                   end_column=meta.end_column, start_pos=meta.end_pos - 1, end_pos=meta.end_pos)
        return Block(fields=fields, span=_span(self.file, meta), open_span=start, close_span=end)

    @v_args(meta=True)
    def objective(self, meta: Any, c: list[Any]) -> ObjectiveNode:
        kw, name, block = c
        return ObjectiveNode(name=Value(kind="string", raw=str(name), span=_tok_span(self.file, name)).text,
                             name_span=_tok_span(self.file, name), keyword_span=_tok_span(self.file, kw),
                             block=block, span=_span(self.file, meta))

    def header(self, c: list[Token]) -> tuple[str, Value, Span]:
        kw, num = c
        return ("header", self._value("number", num), _tok_span(self.file, kw))

    def start(self, c: list[Any]) -> list[Any]:
        return list(c)


# ---------------------------------------------------------------------------------------------
# decoding and pre-scan


def decode(data: bytes, file: str) -> tuple[str | None, list[Diagnostic]]:
    """Bytes → text, or UL100/UL106 for binary, non-UTF-8 or oversized input. A BOM is dropped."""
    if len(data) > MAX_BYTES:
        return None, [Diagnostic(
            code="UL106", severity="error", span=Span.point(file),
            message=f"spec file is too large ({len(data):,} bytes; the limit is {MAX_BYTES:,})",
            help=["a spec is a short reviewed document; put data in data files and refer to them by path"])]
    if b"\x00" in data:
        pos = data.index(b"\x00")
        line = data[:pos].count(b"\n") + 1
        col = pos - (data.rfind(b"\n", 0, pos) + 1) + 1
        return None, [Diagnostic(code="UL100", severity="error", span=Span.point(file, line, col, pos),
                                 message="file is binary, not a text spec (it contains NUL bytes)",
                                 help=["spec files are UTF-8 text; check that the right file was given"])]
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8"), []
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        col = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        return None, [Diagnostic(code="UL100", severity="error", span=Span.point(file, line, col, exc.start),
                                 message=f"file is not valid UTF-8 (byte 0x{data[exc.start]:02x})",
                                 help=["save the spec as UTF-8"])]


def _scan_braces(text: str, file: str) -> tuple[list[Span], Diagnostic | None]:
    """Track braces outside strings and comments; return unclosed `{` spans or a depth error."""
    stack: list[Span] = []
    line, col, i, n = 1, 1, 0, len(text)
    in_str = in_comment = False
    while i < n:
        ch = text[i]
        if ch == "\n":
            in_str = in_comment = False
            line, col = line + 1, 1
            i += 1
            continue
        if in_comment:
            pass
        elif in_str:
            if ch == "\\":
                i += 2
                col += 2
                continue
            if ch == '"':
                in_str = False
        elif ch == "#":
            in_comment = True
        elif ch == '"':
            in_str = True
        elif ch == "{":
            stack.append(Span.point(file, line, col, i))
            if len(stack) > MAX_DEPTH:
                return stack, Diagnostic(
                    code="UL105", severity="error", span=stack[-1],
                    message=f"blocks are nested more than {MAX_DEPTH} deep",
                    help=["an objective's blocks nest two levels at most (`target { ... }` inside `objective`)"])
        elif ch == "}" and stack:
            stack.pop()
        i += 1
        col += 1
    return stack, None


# ---------------------------------------------------------------------------------------------
# error translation


def _expected_words(expected: set[str]) -> list[str]:
    words = sorted({_TERMINAL_WORDS.get(t, f"`{t}`") for t in expected if not t.startswith("__")})
    return words


def _join(words: list[str]) -> str:
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " or " + words[-1]


def _translate(err: UnexpectedInput, text: str, file: str, open_braces: list[Span]) -> Diagnostic:
    lines = text.splitlines()
    if isinstance(err, UnexpectedCharacters):
        ch = text[err.pos_in_stream] if err.pos_in_stream < len(text) else ""
        span = Span.point(file, err.line, err.column, err.pos_in_stream)
        if ch == '"':
            return Diagnostic(code="UL104", severity="error", span=span,
                              message="string is not closed before the end of the line",
                              help=['close it with `"`; a string cannot span lines (write `\\n` for a newline)'])
        shown = repr(ch)[1:-1] if ch and not ch.isprintable() else ch
        return Diagnostic(code="UL101", severity="error", span=span,
                          message=f"unexpected character `{shown}`",
                          help=["values are words, quoted strings, numbers, percentages or comparisons"])
    if isinstance(err, UnexpectedToken | UnexpectedEOF):
        tok = getattr(err, "token", None)
        expected = set(err.expected) if hasattr(err, "expected") else set()
        at_end = tok is None or tok.type == "$END"
        if at_end:
            line = max(len(lines), 1)
            col = len(lines[-1]) + 1 if lines else 1
            span = Span.point(file, line, col, len(text))
            if open_braces:
                return Diagnostic(code="UL103", severity="error", span=span,
                                  message="unexpected end of file: a block is never closed",
                                  labels=[Label(span=open_braces[-1], message="this `{` has no matching `}`")],
                                  help=["add `}` to close the block"])
            return Diagnostic(code="UL103", severity="error", span=span,
                              message=f"unexpected end of file, expected {_join(_expected_words(expected))}")
        assert tok is not None
        span = _tok_span(file, tok)
        found = {"_NL": "the end of the line", "$END": "the end of the file"}.get(tok.type, f"`{tok}`")
        help: list[str] = []
        if tok.type == "RBRACE" and "RBRACE" not in expected and not open_braces:
            return Diagnostic(code="UL102", severity="error", span=span, message="unmatched `}`",
                              help=["remove it, or open the block it closes with `{`"])
        if tok.type == "NAME" and "OBJECTIVE_KW" in expected:
            msg = f"expected `objective` here, found `{tok}`"
            hint = did_you_mean(str(tok), ["objective", "unlearnspec"])
            help.append(f"did you mean `{hint}`?" if hint else
                        'a file holds `objective "name" { ... }` blocks; fields go inside one')
            return Diagnostic(code="UL102", severity="error", span=span, message=msg, help=help)
        if tok.type == "LBRACE" and expected <= {"_NL", "COMMA", "NAME", "STRING", "NUMBER", "PERCENT", "OP", "RBRACE"}:
            help.append("a block opens after a field's values, on the same line")
        if "STRING" in expected and expected <= {"STRING"}:
            help.append('an objective is named by a quoted string: `objective "erase-jane-doe" {`')
        if tok.type == "COMMA":
            help.append("commas separate list items; remove the stray `,`")
        if tok.type in ("NAME", "STRING", "NUMBER", "PERCENT", "OP") and "_NL" in expected and "RBRACE" in expected:
            pass
        if "NUMBER" in expected and expected <= {"NUMBER"}:
            help.append("the header is `unlearnspec 1`")
        return Diagnostic(code="UL102", severity="error", span=span,
                          message=f"unexpected {found}, expected {_join(_expected_words(expected))}",
                          help=help)
    return Diagnostic(code="UL102", severity="error", span=Span.point(file), message=str(err).splitlines()[0])


def _neutralise_line(text: str, line: int) -> str:
    """Replace one line by a stand-in with the same net braces, so parsing can go on after it."""
    lines = text.split("\n")
    if not 1 <= line <= len(lines):
        return text
    original = lines[line - 1]
    depth = 0
    in_str = False
    for i, ch in enumerate(original):
        if ch == '"' and (i == 0 or original[i - 1] != "\\"):
            in_str = not in_str
        elif not in_str and ch == "#":
            break
        elif not in_str and ch == "{":
            depth += 1
        elif not in_str and ch == "}":
            depth -= 1
    if depth > 0:
        stand_in = " ".join(["__recovered__ {"] * depth)
    elif depth < 0:
        stand_in = "}" * (-depth)
    else:
        stand_in = ""
    lines[line - 1] = stand_in
    return "\n".join(lines)


def parse_text(text: str, file: str) -> tuple[SpecFile | None, list[Diagnostic]]:
    """Text → syntax tree; every syntax error found (up to a limit) as a diagnostic."""
    open_braces, depth_error = _scan_braces(text, file)
    if depth_error is not None:
        return None, [depth_error]
    parser = get_parser()
    diags: list[Diagnostic] = []
    seen_lines: set[int] = set()
    current = text
    for _ in range(MAX_SYNTAX_ERRORS):
        comments: list[Comment] = []
        try:
            tree = parser.parse(current)
        except UnexpectedInput as err:
            diag = _translate(err, current, file, open_braces)
            if diag.span.line in seen_lines:
                break
            diags.append(diag)
            seen_lines.add(diag.span.line)
            if diag.code in ("UL103",) or isinstance(err, UnexpectedEOF):
                break
            current = _neutralise_line(current, diag.span.line)
            continue
        if diags:
            return None, diags
        comments = _collect_comments(text)
        items = _Build(file).transform(tree)
        version: Value | None = None
        header_span: Span | None = None
        objectives: list[ObjectiveNode] = []
        for item in items:
            if isinstance(item, tuple) and item[0] == "header":
                version, header_span = item[1], item[2]
            elif isinstance(item, ObjectiveNode):
                objectives.append(item)
        return SpecFile(path=file, source=text, version=version, header_span=header_span,
                        objectives=objectives, comments=comments), diags
    return None, diags


def _collect_comments(text: str) -> list[Comment]:
    """Comments with their positions (a `#` inside a string is not a comment).

    Called on text that parsed, so every string is closed on its own line."""
    out: list[Comment] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        in_str = False
        i = 0
        while i < len(line):
            ch = line[i]
            if in_str and ch == "\\":
                i += 2
                continue
            if ch == '"':
                in_str = not in_str
            elif ch == "#" and not in_str:
                out.append(Comment(text=line[i:].rstrip(), line=lineno, column=i + 1))
                break
            i += 1
    return out


def parse_bytes(data: bytes, file: str) -> tuple[SpecFile | None, list[Diagnostic]]:
    text, diags = decode(data, file)
    if text is None:
        return None, diags
    if not text.strip():
        return None, [Diagnostic(code="UL109", severity="error", span=Span.point(file),
                                 message="spec file is empty",
                                 help=['start with `unlearnspec 1`, then one or more `objective "name" { ... }` blocks'])]
    spec, diags = parse_text(text, file)
    if spec is not None and not spec.objectives:
        diags.append(Diagnostic(code="UL109", severity="error", span=spec.header_span or Span.point(file),
                                message="spec file holds no objective",
                                help=['add an `objective "name" { ... }` block']))
    return spec, diags
