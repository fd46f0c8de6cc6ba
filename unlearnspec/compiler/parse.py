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
from lark.exceptions import LarkError, UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken
from lark.lexer import Lexer

from unlearnspec.compiler.diagnostics import Diagnostic, Label, Span
from unlearnspec.compiler.suggest import did_you_mean
from unlearnspec.compiler.syntax import (
    Block,
    Comment,
    Field,
    ObjectiveNode,
    Pos,
    SpecFile,
    Value,
    ValueKind,
    source_lines,
    unquote,
)
from unlearnspec.compiler.unit import CheckResult, CompileOptions

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


def _tok_span(file: str, tok: Token) -> Span:
    line = tok.line or 1
    col = tok.column or 1
    return Span(file=file, line=line, column=col, end_line=tok.end_line or line,
                end_column=tok.end_column or col + 1, start_pos=tok.start_pos or 0,
                end_pos=tok.end_pos or 0)


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
        return ("header", self._value("number", num), _tok_span(self.file, kw))

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


# A string (closed, or running to the end of its line), a comment, a brace, or a line break: what the
# brace pre-scan needs to see, matched by one regular expression instead of a loop over characters.
_BRACE_SCAN = re.compile(r'"(?:[^"\\\n]|\\[^\n])*"?|#[^\n]*|[{}\n]')


def _brace_events(text: str) -> Iterator[tuple[str, int, int, int]]:
    """`{` and `}` outside strings and comments, as (brace, line, column, offset); 1-based."""
    line, line_start = 1, 0
    for m in _BRACE_SCAN.finditer(text):
        ch = m.group()
        if ch == "\n":
            line, line_start = line + 1, m.end()
        elif ch in "{}":
            yield ch, line, m.start() - line_start + 1, m.start()


def _scan_braces(text: str, file: str) -> tuple[list[Span], Diagnostic | None]:
    """Track braces outside strings and comments; return unclosed `{` spans or a depth error."""
    stack: list[Span] = []
    for ch, line, col, pos in _brace_events(text):
        if ch == "{":
            stack.append(Span.point(file, line, col, pos))
            if len(stack) > MAX_DEPTH:
                return stack, Diagnostic(
                    code="UL105", severity="error", span=stack[-1],
                    message=f"blocks are nested more than {MAX_DEPTH} deep",
                    help=["an objective's blocks nest two levels at most (`target { ... }` inside `objective`)"])
        elif stack:
            stack.pop()
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
    lines = source_lines(text)
    if len(lines) > 1 and not lines[-1]:
        lines.pop()  # the file's final line break does not start a line
    if isinstance(err, UnexpectedCharacters):
        pos = err.pos_in_stream or 0
        ch = text[pos] if pos < len(text) else ""
        span = Span.point(file, err.line, err.column, pos)
        if ch == '"':
            return Diagnostic(code="UL104", severity="error", span=span,
                              message="string is not closed before the end of the line",
                              help=['close it with `"`; a string cannot span lines (write `\\n` for a newline)'])
        shown = repr(ch)[1:-1] if ch and not ch.isprintable() else ch
        if ch == "\r":
            advice = "a carriage return that ends no line: save the file with LF (or CRLF) line endings"
        elif ch == "%" and pos > 0 and text[pos - 1] in " \t":
            advice = "write a percentage without a space before `%`, e.g. `2%`"
        else:
            advice = "values are words, quoted strings, numbers, percentages or comparisons"
        return Diagnostic(code="UL101", severity="error", span=span,
                          message=f"unexpected character `{shown}`", help=[advice])
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
        words = _join(_expected_words(expected))
        help: list[str] = []
        last = _last_shifted(err)
        if isinstance(last, Token) and last.type == "COMMA":
            # `outputs verbatim,` then a line break and `}` or a blank line: the list goes on nowhere
            return Diagnostic(code="UL102", severity="error", span=_tok_span(file, last),
                              message="a list ends with `,`: expected another value after it",
                              help=["remove the trailing `,`, or write the next item after it"])
        if tok.type == "RBRACE" and "RBRACE" not in expected and _depth_at(text, tok.start_pos or 0) == 0:
            return Diagnostic(code="UL102", severity="error", span=span, message="unmatched `}`",
                              help=["remove it, or open the block it closes with `{`"])
        if tok.type == "VERSION_KW":
            return Diagnostic(code="UL102", severity="error", span=span,
                              message="the header `unlearnspec ...` can only be the first line of the file",
                              help=["keep one header, before the objectives"])
        if tok.type in ("_NL", "$END"):
            end = "the end of the line" if tok.type == "_NL" else "the end of the file"
            if expected == {"LBRACE"}:
                help.append('a block opens on the line of its field: `objective "x" {`, `target person "x" {`')
            return Diagnostic(code="UL102", severity="error", span=span,
                              message=f"expected {words}, found {end}", help=help)
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
        if "NUMBER" in expected and expected <= {"NUMBER"}:
            help.append("the header is `unlearnspec 1`")
        return Diagnostic(code="UL102", severity="error", span=span,
                          message=f"unexpected `{tok}`, expected {words}", help=help)
    return Diagnostic(code="UL102", severity="error", span=Span.point(file), message=str(err).splitlines()[0])


def _last_shifted(err: UnexpectedInput) -> Any:
    """The last token or built value the parser had taken before the error, line breaks skipped."""
    stack = getattr(getattr(err, "state", None), "value_stack", None) or []
    for item in reversed(stack):
        if not (isinstance(item, Token) and item.type == "_NL"):
            return item
    return None


def _depth_at(text: str, pos: int) -> int:
    """How many blocks are open at offset ``pos`` (never below zero)."""
    depth = 0
    for ch, _, _, at in _brace_events(text):
        if at >= pos:
            break
        depth = depth + 1 if ch == "{" else max(depth - 1, 0)
    return depth


_OBJECTIVE_LINE = re.compile(r"\s*objective\b")


def _neutralise_line(text: str, line: int, stray_field: bool = False, open_quote: int = 0) -> str:
    """Replace one line by a stand-in with the same net braces, so parsing can go on after it.

    Inside a block the stand-in opens `__recovered__ {` fields (the resolve pass never sees them:
    a file with syntax errors is not resolved); at the top level it opens an objective, so that the
    objectives after a broken header line are still parsed and their errors reported too.

    A ``stray_field`` (a field at the top level) usually means that a `}` closed its objective too
    early, and then a `}` further down has nothing to close. There (when no other objective starts
    in between) the line is kept and an objective opened in front of it, which that `}` closes: the
    fields after it are parsed, and their own errors found, instead of each being reported as
    outside an objective.

    A string left open at column ``open_quote`` runs to the end of its line, hiding the braces after
    it; they count as written (`objective "name {` most likely meant to open a block)."""
    lines = text.split("\n")
    if not 1 <= line <= len(lines):
        return text
    if open_quote:
        bad = lines[line - 1]
        unquoted = bad[: open_quote - 1] + bad[open_quote:]
        text = "\n".join(lines[: line - 1] + [unquoted] + lines[line:])
    depth_before = 0
    net = 0
    after = 0  # depth relative to the start of the line, from the line on
    unmatched_at = 0  # the line of the first `}` below it that closes nothing
    for ch, ln, _, _ in _brace_events(text):
        step = 1 if ch == "{" else -1
        if ln < line:
            depth_before = max(depth_before + step, 0)
            continue
        if ln == line:
            net += step
        after += step
        if after < 0 and not unmatched_at:
            unmatched_at = ln
    if (stray_field and depth_before == 0 and net >= 0 and unmatched_at
            and not any(_OBJECTIVE_LINE.match(ln) for ln in lines[line:unmatched_at])):
        lines[line - 1] = 'objective "__recovered__" { ' + lines[line - 1]
        return "\n".join(lines)
    if net > 0:
        first = 'objective "__recovered__" {' if depth_before == 0 else "__recovered__ {"
        stand_in = " ".join([first] + ["__recovered__ {"] * (net - 1))
    elif net < 0:
        stand_in = "}" * (-net)
    else:
        stand_in = ""
    lines[line - 1] = stand_in
    return "\n".join(lines)


def _resume_from_objective(text: str, line: int) -> str:
    """Blank every line before the top-level block that holds ``line`` (or before ``line`` itself,
    at the top level), keeping line numbers, so that the next attempt parses on from there.

    The objectives before it parsed already; parsing them again after every error made recovery
    quadratic: a 1 MB spec with errors near its end took one full parse per error."""
    start = line
    depth = 0
    opened_at = 1
    for ch, ln, _, _ in _brace_events(text):
        if ln >= line:
            break
        if ch == "{":
            if depth == 0:
                opened_at = ln
            depth += 1
        else:
            depth = max(depth - 1, 0)
    if depth > 0:
        start = opened_at
    if start <= 1:
        return text
    cut = 0
    for _ in range(start - 1):
        cut = text.index("\n", cut) + 1
    return "\n" * (start - 1) + text[cut:]


def _is_stray_field(d: Diagnostic) -> bool:
    return d.code == "UL102" and d.message.startswith("expected `objective` here")


def _same_stray_run(diags: list[Diagnostic], diag: Diagnostic, text: str) -> bool:
    """Whether ``diag`` is one more field outside any objective after another with no objective
    between them: a `}` closed the objective early (or its header line was broken), and every
    field after it says the same thing again. Only the first of such a run is reported."""
    if not (diags and _is_stray_field(diag) and _is_stray_field(diags[-1])):
        return False
    between = text.split("\n")[diags[-1].span.line:diag.span.line - 1]
    return not any(_OBJECTIVE_LINE.match(ln) for ln in between)


def parse_text(text: str, file: str) -> tuple[SpecFile | None, list[Diagnostic]]:
    """Text → syntax tree; every syntax error found (up to a limit) as a diagnostic."""
    open_braces, depth_error = _scan_braces(text, file)
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
            diag = _translate(err, current, file, open_braces)
            if diag.span.line in seen_lines:
                break
            seen_lines.add(diag.span.line)
            if not _same_stray_run(diags, diag, text):
                diags.append(diag)
            if diag.code in ("UL103",) or isinstance(err, UnexpectedEOF):
                break
            if diag.message.startswith("expected `{`, found the end of the line"):
                break  # the `{` on the next line would only repeat this error
            current = _neutralise_line(current, diag.span.line, stray_field=_is_stray_field(diag),
                                       open_quote=diag.span.column if diag.code == "UL104" else 0)
            current = _resume_from_objective(current, diag.span.line)
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
    if spec is not None and not spec.objectives:
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
