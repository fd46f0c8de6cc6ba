"""Parse pass: bytes → :class:`SpecFile`, or syntax diagnostics (UL1xx) in the language's own words.

Lark LALR parsers built once from the cached grammar. The syntax tree is built while parsing, by
a transformer embedded in the parser, and the lexer hands the comments it skips to ``fmt``. Every
spec is first parsed with a leaner contextual lexer (:class:`_FastContextualLexer`, same tokens as
Lark's); a spec that does not parse cleanly is parsed again with Lark's own contextual lexer, whose
errors are the ones reported. Lark's exceptions never escape: each is translated into a diagnostic saying which keyword
or value was expected. After a syntax error the parser recovers line by line (the offending line is
set aside, keeping its braces balanced, and parsing resumes at the enclosing objective) so that one
run reports every independent error in a file, not only the first.
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Iterator
from importlib import resources
from typing import Any

from lark import Lark, Token, Transformer
from lark.exceptions import LarkError, UnexpectedEOF, UnexpectedInput
from lark.lexer import Lexer

from unlearnspec.compiler.diagnostics import Diagnostic, Span
from unlearnspec.compiler.parse_errors import MAX_DEPTH as MAX_DEPTH  # the limit parse enforces
from unlearnspec.compiler.parse_errors import (
    is_early_close,
    is_stray_field,
    neutralise_line,
    resume_from_objective,
    same_stray_run,
    scan_braces,
    tok_span,
    translate_error,
)
from unlearnspec.compiler.syntax import (
    Block,
    Comment,
    Field,
    ObjectiveNode,
    Pos,
    SpecFile,
    Value,
    ValueKind,
    unquote,
)
from unlearnspec.compiler.unit import CheckResult, CompileOptions

MAX_BYTES = 1_000_000
MAX_SYNTAX_ERRORS = 20
SUPPORTED_VERSIONS = ("1",)


def grammar_text() -> str:
    return resources.files("unlearnspec.grammar").joinpath("unlearn.lark").read_text(encoding="utf-8")


@functools.lru_cache(maxsize=2)
def get_parser(strict: bool = False) -> Lark:
    """The LALR parser, building a plain parse tree. ``strict`` (used by the tests) also proves the
    grammar conflict-free and free of terminal collisions."""
    return Lark(
        grammar_text(),
        parser="lalr",
        lexer="contextual",
        propagate_positions=True,
        maybe_placeholders=False,
        strict=strict,
        cache=not strict,
    )


def _tok_pos(tok: Token) -> Pos:
    """Where a token is; tokens from the lexer are always positioned."""
    return (tok.line, tok.column, tok.end_line, tok.end_column, tok.start_pos, tok.end_pos)  # type: ignore[return-value]


def _through(first: Pos, last: Pos) -> Pos:
    """From the start of ``first`` to the end of ``last``."""
    return (first[0], first[1], last[2], last[3], first[4], last[5])


def _end_pos(item: Any) -> Pos:
    """Where the last token of a built item ends: a block's `}`, a value group's last value."""
    if isinstance(item, Block):
        return item.close_pos
    if isinstance(item, Value):
        return item.pos
    return _end_pos(item[-1])


class _Build(Transformer[Token, Any]):
    """Parse tree → syntax nodes, run by the parser as it reduces (an embedded transformer).

    Positions come from the tokens themselves: a node runs from its first token to the end of its
    last child. ``file`` is set per parse (under ``_PARSE_LOCK``), because the parser and this
    transformer are built once and shared."""

    def __init__(self, file: str = "") -> None:
        super().__init__()
        self.file = file

    def _value(self, kind: ValueKind, tok: Token) -> Value:
        return Value(kind, str(tok), self.file, _tok_pos(tok))

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

    def group(self, c: list[Value]) -> tuple[Value, ...]:
        return tuple(c)

    def values(self, c: list[tuple[Value, ...]]) -> tuple[tuple[Value, ...], ...]:
        return tuple(c)

    def field(self, c: list[Any]) -> Field:
        name: Token = c[0]
        groups: tuple[tuple[Value, ...], ...] = ()
        block: Block | None = None
        for item in c[1:]:
            if isinstance(item, Block):
                block = item
            else:
                groups = item
        name_pos = _tok_pos(name)
        pos = _through(name_pos, _end_pos(c[-1])) if len(c) > 1 else name_pos
        return Field(name=str(name), file=self.file, name_pos=name_pos, pos=pos, groups=groups, block=block)

    def block(self, c: list[Any]) -> Block:
        lbrace: Token = c[0]
        rbrace: Token = c[-1]
        open_pos, close_pos = _tok_pos(lbrace), _tok_pos(rbrace)
        return Block(file=self.file, pos=_through(open_pos, close_pos), open_pos=open_pos, close_pos=close_pos,
                     fields=tuple(x for x in c if isinstance(x, Field)))

    def objective(self, c: list[Any]) -> ObjectiveNode:
        kw, name, block = c
        keyword_pos = _tok_pos(kw)
        return ObjectiveNode(name=unquote(str(name)), file=self.file, name_pos=_tok_pos(name),
                             keyword_pos=keyword_pos, pos=_through(keyword_pos, block.close_pos), block=block)

    def header(self, c: list[Token]) -> tuple[str, Value, Span]:
        kw, num = c
        return ("header", self._value("number", num), tok_span(self.file, kw))

    def start(self, c: list[Any]) -> list[Any]:
        return list(c)

    def __default__(self, data: Any, children: list[Any], meta: Any) -> _Run:
        """The grammar's repetitions (`field*`, `value+`): Lark inlines them into the rule around
        them, reading only their ``children``, so they need no ``Tree`` of their own."""
        return _Run(children)


class _Run:
    __slots__ = ("children",)

    def __init__(self, children: list[Any]) -> None:
        self.children = children


class _Comments:
    """Collects the lexer's COMMENT tokens (ignored by the grammar) for ``fmt``."""

    def __init__(self) -> None:
        self.tokens: list[Token] = []

    def __call__(self, tok: Token) -> Token:
        self.tokens.append(tok)
        return tok


_PARSE_LOCK = threading.Lock()


@functools.lru_cache(maxsize=1)
def _building_parser() -> tuple[Lark, _Build, _Comments]:
    """The parser with the syntax-tree builder embedded and a comment collector on the lexer.

    Building while parsing skips Lark's intermediate tree and position propagation, which made up
    most of the time spent per spec; the grammar analysis itself comes from Lark's cache. This one
    lexes with Lark's own contextual lexer, and its errors are the ones translated into diagnostics."""
    build, comments = _Build(), _Comments()
    parser = Lark(grammar_text(), parser="lalr", lexer="contextual", maybe_placeholders=False, cache=True,
                  transformer=build, lexer_callbacks={"COMMENT": comments})
    return parser, build, comments


class _NotLexedHere(LarkError):
    """The fast lexer met a character that no terminal the parser accepts here can start with."""


class _FastContextualLexer(Lexer):
    """Lark's contextual lexing, with less work per token: the first pass over every spec.

    It follows the rules of Lark's ``ContextualLexer`` exactly: in each parser state only the
    terminals that state accepts, and the ignored ones, are tried, in Lark's order (priority, then
    longest pattern, then name), and the first that matches wins; lexer callbacks (the comment
    collector) run as in Lark. What it leaves out is the bookkeeping that only error reports use.
    So it never reports an error itself: input it cannot lex, or tokens the parser rejects, send
    the spec back to :func:`_building_parser`, whose errors become the diagnostics. Checking a
    folder of specs spends most of its time in the parser; this lexer takes about a seventh off the
    parse pass (bench/bench_compiler.py). ``tests/test_parse.py`` and ``tests/test_fuzz.py`` pin
    both lexers to the same trees."""

    __future_interface__ = 1  # lex(lexer_state, parser_state): the parser's state picks the terminals

    def __init__(self, conf: Any) -> None:
        self.terminals = sorted(conf.terminals, key=lambda t: (-t.priority, -t.pattern.max_width,
                                                               -len(t.pattern.value), t.name))
        self.ignore = frozenset(conf.ignore)
        self.callbacks = dict(conf.callbacks)
        self.by_state: dict[Any, re.Pattern[str]] = {}

    def _pattern(self, accepts: Iterator[str]) -> re.Pattern[str]:
        names = set(accepts) | self.ignore
        return re.compile("|".join(f"(?P<{t.name}>{t.pattern.to_regexp()})" for t in self.terminals
                                   if t.name in names))

    def lex(self, lexer_state: Any, parser_state: Any) -> Iterator[Token]:
        text = lexer_state.text
        text = getattr(text, "text", text)  # a TextSlice of the whole text from lark 1.3 on
        states, by_state, ignore, callbacks = parser_state.parse_conf.states, self.by_state, self.ignore, self.callbacks
        pos, end, line, line_start = 0, len(text), 1, 0
        while pos < end:
            state = parser_state.position
            pattern = by_state.get(state)
            if pattern is None:
                pattern = by_state[state] = self._pattern(iter(states[state]))
            m = pattern.match(text, pos)
            if m is None:
                raise _NotLexedHere(pos)
            kind, value, stop = m.lastgroup or "", m.group(), m.end()
            column = pos - line_start + 1
            newlines = value.count("\n")
            if newlines:
                end_line, line_start = line + newlines, pos + value.rindex("\n") + 1
            else:
                end_line = line
            if kind not in ignore or kind in callbacks:
                tok = Token(kind, value, pos, line, column, end_line, stop - line_start + 1, stop)
                if kind in callbacks:
                    tok = callbacks[kind](tok)
                if kind not in ignore:
                    yield tok
            pos, line = stop, end_line


@functools.lru_cache(maxsize=1)
def _fast_parser() -> tuple[Lark, _Build, _Comments]:
    """The same parser as :func:`_building_parser`, lexing with :class:`_FastContextualLexer`."""
    build, comments = _Build(), _Comments()
    parser = Lark(grammar_text(), parser="lalr", lexer=_FastContextualLexer, maybe_placeholders=False,
                  cache=True, transformer=build, lexer_callbacks={"COMMENT": comments})
    return parser, build, comments


def _parse_with(parsers: tuple[Lark, _Build, _Comments], text: str, file: str) -> tuple[list[Any], list[Token]]:
    """A spec's top-level items and its comment tokens, from one of the two parsers; Lark's
    exceptions propagate."""
    parser, build, collected = parsers
    with _PARSE_LOCK:
        build.file = file
        collected.tokens = []
        items: list[Any] = parser.parse(text)  # type: ignore[assignment]  # the embedded _Build.start
        return items, collected.tokens


def _parse_fast(text: str, file: str) -> tuple[list[Any], list[Token]] | None:
    """:func:`_parse_with` the fast parser, or ``None`` when the spec does not parse cleanly (the
    caller then parses it again with the reporting parser)."""
    try:
        return _parse_with(_fast_parser(), text, file)
    except (UnexpectedInput, _NotLexedHere):
        return None


# ---------------------------------------------------------------------------------------------
# decoding and pre-scan


def _char_position(data: bytes, pos: int) -> tuple[int, int, int]:
    """(line, column, offset) of byte ``pos`` counted in characters, as every other diagnostic is: the text before
    it decoded (each byte that is not UTF-8 as one replacement character), so a column after ``é`` or an emoji is
    where an editor shows it."""
    before = data[:pos].decode("utf-8", errors="replace")
    line_start = before.rfind("\n") + 1
    return before.count("\n") + 1, len(before) - line_start + 1, len(before)


def decode(data: bytes, file: str) -> tuple[str | None, list[Diagnostic]]:
    """Bytes → text, or UL100/UL106 for binary, non-UTF-8 or oversized input. A BOM is dropped."""
    if len(data) > MAX_BYTES:
        size = f"{len(data):,} bytes" if len(data) > MAX_BYTES + 1 else f"more than {MAX_BYTES:,} bytes"
        return None, [Diagnostic(
            code="UL106", severity="error", span=Span.point(file),
            message=f"spec file is too large ({size}; the limit is {MAX_BYTES:,})",
            help=["a spec is a short reviewed document; put data in data files and refer to them by path"])]
    if b"\x00" in data:
        pos = data.index(b"\x00")
        line, col, offset = _char_position(data, pos)
        return None, [Diagnostic(code="UL100", severity="error", span=Span.point(file, line, col, offset),
                                 message="file is binary, not a text spec (it contains NUL bytes)",
                                 help=["spec files are UTF-8 text; check that the right file was given"])]
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8"), []
    except UnicodeDecodeError as exc:
        line, col, offset = _char_position(data, exc.start)
        return None, [Diagnostic(code="UL100", severity="error", span=Span.point(file, line, col, offset),
                                 message=f"file is not valid UTF-8 (byte 0x{data[exc.start]:02x})",
                                 help=["save the spec as UTF-8"])]


def parse_text(text: str, file: str) -> tuple[SpecFile | None, list[Diagnostic]]:
    """Text → syntax tree; every syntax error found (up to a limit) as a diagnostic."""
    open_braces, depth_error = scan_braces(text, file)
    if depth_error is not None:
        return None, [depth_error]
    fast = _parse_fast(text, file)
    if fast is not None:
        return _spec_file(text, file, *fast), []
    diags: list[Diagnostic] = []
    seen_lines: set[int] = set()
    current = text
    for _ in range(MAX_SYNTAX_ERRORS):
        try:
            items, comment_tokens = _parse_with(_building_parser(), current, file)
        except UnexpectedInput as err:
            diag = translate_error(err, current, file, open_braces)
            if diag.span.line in seen_lines:
                break
            seen_lines.add(diag.span.line)
            if not same_stray_run(diags, diag, text):
                diags.append(diag)
            if diag.code in ("UL103",) or isinstance(err, UnexpectedEOF):
                break
            if diag.message.startswith("expected `{`, found the end of the line"):
                break  # the `{` on the next line would only repeat this error
            if is_early_close(diag):  # parse on without the brace too many
                at = diag.span.start_pos
                current = current[:at] + " " + current[at + 1:]
                continue
            current = neutralise_line(current, diag.span.line, stray_field=is_stray_field(diag),
                                       open_quote=diag.span.column if diag.code == "UL104" else 0)
            current = resume_from_objective(current, diag.span.line)
            continue
        if diags:
            return None, diags
        return _spec_file(text, file, items, comment_tokens), diags
    return None, diags


def _spec_file(text: str, file: str, items: list[Any], comment_tokens: list[Token]) -> SpecFile:
    comments = [Comment(text=str(t).rstrip(), line=t.line or 1, column=t.column or 1) for t in comment_tokens]
    version: Value | None = None
    header_span: Span | None = None
    objectives: list[ObjectiveNode] = []
    for item in items:
        if isinstance(item, tuple) and item[0] == "header":
            version, header_span = item[1], item[2]
        elif isinstance(item, ObjectiveNode):
            objectives.append(item)
    return SpecFile(path=file, source=text, version=version, header_span=header_span,
                    objectives=tuple(objectives), comments=tuple(comments))


def parse_bytes(data: bytes, file: str) -> tuple[SpecFile | None, list[Diagnostic]]:
    text, diags = decode(data, file)
    if text is None:
        return None, diags
    if not text.strip():
        return None, [Diagnostic(code="UL109", severity="error", span=Span.point(file),
                                 message="spec file is empty",
                                 help=['start with `unlearnspec 1`, then one or more `objective "name" { ... }` blocks'])]
    spec, diags = parse_text(text, file)
    if spec is not None and not spec.objectives and spec.readable:  # another version: resolve says so (UL108)
        diags.append(Diagnostic(code="UL109", severity="error", span=spec.header_span or Span.point(file),
                                message="spec file holds no objective",
                                help=['add an `objective "name" { ... }` block']))
    return spec, diags


def parse_pass(unit: CheckResult, opts: CompileOptions) -> bool:
    """Pass ``parse``: the syntax tree and UL1xx; later passes run only on a tree without errors."""
    syntax, diags = parse_bytes(unit.source, unit.path)
    unit.syntax = syntax
    unit.diagnostics.extend(diags)
    return syntax is not None and not any(d.severity == "error" for d in diags)
