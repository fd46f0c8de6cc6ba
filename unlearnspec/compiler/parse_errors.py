"""Syntax errors a person can act on: Lark's errors translated into UL1xx diagnostics (what was expected, in
the language's words), unbalanced braces found before parsing, and recovery so that one file reports several
errors (the offending line is neutralised, or parsing resumes at the next objective)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from lark import Token
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from unlearnspec.compiler.diagnostics import Diagnostic, Fix, Label, Span
from unlearnspec.compiler.examples import expected_example
from unlearnspec.compiler.suggest import did_you_mean, did_you_mean_fixes
from unlearnspec.compiler.syntax import (
    source_lines,
)
from unlearnspec.markdown import code_span

MAX_DEPTH = 32  # blocks nested deeper than this are refused before parsing (UL105)

TERMINAL_WORDS = {
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


def tok_span(file: str, tok: Token) -> Span:
    line = tok.line or 1
    col = tok.column or 1
    return Span(file=file, line=line, column=col, end_line=tok.end_line or line,
                end_column=tok.end_column or col + 1, start_pos=tok.start_pos or 0,
                end_pos=tok.end_pos or 0)


# A string (closed, or running to the end of its line), a comment, a brace, or a line break: what the
# brace pre-scan needs to see, matched by one regular expression instead of a loop over characters.
_BRACE_SCAN = re.compile(r'"(?:[^"\\\n]|\\[^\n])*"?|#[^\n]*|[{}\n]')


def brace_events(text: str) -> Iterator[tuple[str, int, int, int]]:
    """`{` and `}` outside strings and comments, as (brace, line, column, offset); 1-based."""
    line, line_start = 1, 0
    for m in _BRACE_SCAN.finditer(text):
        ch = m.group()
        if ch == "\n":
            line, line_start = line + 1, m.end()
        elif ch in "{}":
            yield ch, line, m.start() - line_start + 1, m.start()


def scan_braces(text: str, file: str) -> tuple[list[Span], Diagnostic | None]:
    """Track braces outside strings and comments; return unclosed `{` spans or a depth error."""
    stack: list[Span] = []
    for ch, line, col, pos in brace_events(text):
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


def _expected_words(expected: set[str]) -> list[str]:
    words = sorted({TERMINAL_WORDS.get(t, code_span(t)) for t in expected if not t.startswith("__")})
    return words


def _join(words: list[str]) -> str:
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " or " + words[-1]


def _bad_escape(text: str, quote: int) -> tuple[int, str] | None:
    """In the string opening at ``quote``, the first backslash escape the grammar does not know (its offset
    and text), when the string is closed on its line; None otherwise (the string really is unclosed)."""
    i, bad = quote + 1, None
    while i < len(text) and text[i] not in "\n\r":
        c = text[i]
        if c == '"':
            return bad
        if c == "\\":
            nxt = text[i + 1] if i + 1 < len(text) else ""
            if nxt in ("", "\n", "\r"):  # a backslash at the end of the line: the string is unclosed
                return None
            if bad is None and nxt not in ('"', "\\", "n", "t"):
                bad = (i, "\\" + nxt)
            i += 2
            continue
        i += 1
    return None


# a field's line whose value, to the line's end, holds no quote, brace, comma or backslash: `aliases J. Doe`
_FIELD_LINE = re.compile(r'[ \t]*([a-z_]+)[ \t]+([^"#{},\\\n]*[^"#{},\\\s])(?=[ \t\r]*(?:#[^\n]*)?(?:\n|$))')


def _unquoted_string(text: str, pos: int, line: int, column: int, file: str) -> Diagnostic | None:
    """A character the lexer stops at inside the unquoted value of a field that takes quoted strings
    (`aliases J. Doe`, `forget data/x.jsonl`): the value as written, to be quoted."""
    start = pos - (column - 1)
    m = _FIELD_LINE.match(text, start)
    if m is None or not m.start(2) <= pos < m.end(2) or not expected_example(m.group(1)).startswith('"'):
        return None
    value, col = m.group(2), m.start(2) - start + 1
    span = Span(file=file, line=line, column=col, end_line=line, end_column=col + len(value),
                start_pos=m.start(2), end_pos=m.end(2))
    what = "aliases are quoted strings" if m.group(1) == "aliases" else f"{code_span(m.group(1))} takes a quoted string"
    quoted = f'"{value}"'
    return Diagnostic(code="UL101", severity="error", span=span, message=f"{what}, found {code_span(value)}",
                      help=[f"write {code_span(quoted)}"], fixes=[Fix.replace(span, quoted, preferred=True)])


def translate_error(err: UnexpectedInput, text: str, file: str, open_braces: list[Span]) -> Diagnostic:
    lines = source_lines(text)
    if len(lines) > 1 and not lines[-1]:
        lines.pop()  # the file's final line break does not start a line
    if isinstance(err, UnexpectedCharacters):
        pos = err.pos_in_stream or 0
        ch = text[pos] if pos < len(text) else ""
        span = Span.point(file, err.line, err.column, pos)
        if ch == '"':
            bad = _bad_escape(text, pos)
            if bad is not None:  # the string is closed, but an escape inside it is not one the language has
                at, esc = bad
                col = err.column + (at - pos)
                return Diagnostic(code="UL101", severity="error",
                                  span=Span(file=file, line=err.line, column=col, end_line=err.line,
                                            end_column=col + len(esc), start_pos=at, end_pos=at + len(esc)),
                                  message=f"unknown escape {code_span(esc)} in a string",
                                  help=['the escapes are `\\"`, `\\\\`, `\\n` and `\\t`; write `\\\\` for a '
                                        'backslash'])
            return Diagnostic(code="UL104", severity="error", span=span,
                              message="string is not closed before the end of the line",
                              help=['close it with `"`; a string cannot span lines (write `\\n` for a newline)'])
        unquoted = _unquoted_string(text, pos, err.line, err.column, file)
        if unquoted is not None:
            return unquoted
        shown = repr(ch)[1:-1] if ch and not ch.isprintable() else ch
        if ch == "\r":
            advice = "a carriage return that ends no line: save the file with LF (or CRLF) line endings"
        elif ch == "%" and pos > 0 and text[pos - 1] in " \t":
            advice = "write a percentage without a space before `%`, e.g. `2%`"
        else:
            advice = "values are words, quoted strings, numbers, percentages or comparisons"
        return Diagnostic(code="UL101", severity="error", span=span,
                          message=f"unexpected character {code_span(shown)}", help=[advice])
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
            words = _join(_expected_words(expected))
            return Diagnostic(code="UL103", severity="error", span=span,
                              message=f"unexpected end of file, expected {words}",
                              help=[f"the file ends too early: finish the last line with {words}"])
        assert tok is not None
        span = tok_span(file, tok)
        words = _join(_expected_words(expected))
        help: list[str] = []
        last = _last_shifted(err)
        if isinstance(last, Token) and last.type == "COMMA":
            # `outputs verbatim,` then a line break and `}` or a blank line: the list goes on nowhere
            return Diagnostic(code="UL102", severity="error", span=tok_span(file, last),
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
            msg = f"expected `objective` here, found {code_span(tok)}"
            hint = did_you_mean(str(tok), ["objective", "unlearnspec"])
            closed = None if hint else _early_close(text, tok.start_pos or 0)
            if closed is not None:  # `}}`: the second brace closed the objective, and the field fell out of it
                at, line, col, name = closed
                return Diagnostic(code="UL102", severity="error",
                                  span=Span(file=file, line=line, column=col, end_line=line, end_column=col + 1,
                                            start_pos=at, end_pos=at + 1),
                                  message=f"this `}}` closes objective {code_span(name)}, so {code_span(tok)} below "
                                          "is outside it",
                                  labels=[Label(span=span, message="outside any objective")],
                                  help=["remove the extra `}`"])
            help.append(f"did you mean {code_span(hint)}?" if hint else
                        'a file holds `objective "name" { ... }` blocks; fields go inside one')
            return Diagnostic(code="UL102", severity="error", span=span, message=msg, help=help,
                              fixes=did_you_mean_fixes(span, hint))
        if tok.type == "LBRACE" and expected <= {"_NL", "COMMA", "NAME", "STRING", "NUMBER", "PERCENT", "OP", "RBRACE"}:
            help.append("a block opens after a field's values, on the same line")
        if "STRING" in expected and expected <= {"STRING"}:
            help.append('an objective is named by a quoted string: `objective "erase-jane-doe" {`')
        if tok.type == "COMMA":
            help.append("commas separate list items; remove the stray `,`")
        if "NUMBER" in expected and expected <= {"NUMBER"}:
            help.append("the header is `unlearnspec 1`")
        return Diagnostic(code="UL102", severity="error", span=span,
                          message=f"unexpected {code_span(tok)}, expected {words}", help=help)
    return Diagnostic(code="UL102", severity="error", span=Span.point(file), message=str(err).splitlines()[0],
                      help=["look for a missing quote, brace or comma near the start of the file"])


def _last_shifted(err: UnexpectedInput) -> Any:
    """The last token or built value the parser had taken before the error, line breaks skipped (a run of
    them after a comma is an empty repetition once reduced)."""
    stack = getattr(getattr(err, "state", None), "value_stack", None) or []
    for item in reversed(stack):
        if not (isinstance(item, Token) and item.type == "_NL") and getattr(item, "children", None) != []:
            return item
    return None


_OBJECTIVE_NAME = re.compile(r'\s*objective\s+"([^"\\\n]*)"')


def _early_close(text: str, pos: int) -> tuple[int, int, int, str] | None:
    """For a field at ``pos`` outside any objective: the `}` that closed the objective before it (offset, line,
    column, the objective's name), when that looks like a brace too many: no objective starts in between, and
    a `}` after the field closes nothing, so the objective was meant to go on."""
    stack: list[int] = []
    last: tuple[int, int, int, int] | None = None
    for ch, line, col, at in brace_events(text):
        if at >= pos:
            break
        if ch == "{":
            stack.append(at)
        elif stack:
            opened = stack.pop()
            if not stack:
                last = (at, line, col, opened)
    if last is None or any(_OBJECTIVE_LINE.match(ln) for ln in text[last[0] + 1:pos].split("\n")):
        return None
    depth = 0
    for ch, _, _, at in brace_events(text):
        if at > pos:
            depth += 1 if ch == "{" else -1
            if depth < 0 or _OBJECTIVE_LINE.match(text[text.rfind("\n", 0, at) + 1:at]):
                break
    if depth >= 0:
        return None
    name = _OBJECTIVE_NAME.match(text, text.rfind("\n", 0, last[3]) + 1)
    return (last[0], last[1], last[2], name.group(1)) if name else None


def is_early_close(d: Diagnostic) -> bool:
    return d.code == "UL102" and d.message.startswith("this `}` closes objective")


def _depth_at(text: str, pos: int) -> int:
    """How many blocks are open at offset ``pos`` (never below zero)."""
    depth = 0
    for ch, _, _, at in brace_events(text):
        if at >= pos:
            break
        depth = depth + 1 if ch == "{" else max(depth - 1, 0)
    return depth


_OBJECTIVE_LINE = re.compile(r"\s*objective\b")


def neutralise_line(text: str, line: int, stray_field: bool = False, open_quote: int = 0) -> str:
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
    for ch, ln, _, _ in brace_events(text):
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


def resume_from_objective(text: str, line: int) -> str:
    """Blank every line before the top-level block that holds ``line`` (or before ``line`` itself,
    at the top level), keeping line numbers, so that the next attempt parses on from there.

    The objectives before it parsed already; parsing them again after every error made recovery
    quadratic: a 1 MB spec with errors near its end took one full parse per error."""
    start = line
    depth = 0
    opened_at = 1
    for ch, ln, _, _ in brace_events(text):
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


def is_stray_field(d: Diagnostic) -> bool:
    return d.code == "UL102" and d.message.startswith("expected `objective` here")


def same_stray_run(diags: list[Diagnostic], diag: Diagnostic, text: str) -> bool:
    """Whether ``diag`` is one more field outside any objective after another with no objective
    between them: a `}` closed the objective early (or its header line was broken), and every
    field after it says the same thing again. Only the first of such a run is reported."""
    if not (diags and is_stray_field(diag) and is_stray_field(diags[-1])):
        return False
    between = text.split("\n")[diags[-1].span.line:diag.span.line - 1]
    return not any(_OBJECTIVE_LINE.match(ln) for ln in between)

