"""The parse pass: decoding, syntax errors in the language's words (UL1xx), recovery after an error, and
the spans on every syntax node."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from fixtures.frontend import EXAMPLE, ROOT, line_col
from lark.exceptions import UnexpectedInput

from unlearnspec.compiler import parse as parse_mod
from unlearnspec.compiler.parse import MAX_BYTES, MAX_DEPTH, parse_bytes, parse_text
from unlearnspec.compiler.syntax import source_lines

# ---------------------------------------------------------------------------------------------------
# decoding


def test_bom_is_dropped_and_positions_are_unchanged() -> None:
    plain, _ = parse_bytes(EXAMPLE.read_bytes(), "e.unlearn")
    bom, diags = parse_bytes(b"\xef\xbb\xbf" + EXAMPLE.read_bytes(), "e.unlearn")
    assert not diags and plain is not None and bom is not None
    assert bom.source == plain.source
    assert bom.objectives[0].name_span == plain.objectives[0].name_span


def test_nul_byte_is_binary_with_its_location() -> None:
    data = b'unlearnspec 1\nobjective "x" {\n  ti\x00tle "a"\n}\n'
    syntax, [d] = parse_bytes(data, "b.unlearn")
    assert syntax is None
    assert (d.code, d.severity, d.span.line, d.span.column) == ("UL100", "error", 3, 5)
    assert "binary" in d.message


def test_invalid_utf8_names_the_byte_and_its_place() -> None:
    data = 'unlearnspec 1\nobjective "é" {\n'.encode() + b'  title "\xff"\n}\n'
    syntax, [d] = parse_bytes(data, "u.unlearn")
    assert syntax is None
    assert (d.code, d.span.line, d.span.column) == ("UL100", 3, 10)
    assert "0xff" in d.message
    # after non-ASCII text on its own line the column counts characters, as an editor shows them
    data = 'unlearnspec 1\n# café 🦀 '.encode() + b"\xff\n"
    _, [d] = parse_bytes(data, "u.unlearn")
    assert (d.span.line, d.span.column) == (2, len("# café 🦀 ") + 1) == (2, 10)


def test_too_large_is_refused_before_parsing() -> None:
    data = b"unlearnspec 1\n" + b"#" * MAX_BYTES
    syntax, [d] = parse_bytes(data, "big.unlearn")
    assert syntax is None
    assert d.code == "UL106" and f"{MAX_BYTES:,}" in d.message


@pytest.mark.parametrize("data", [b"", b"   \n\t\n", b"\xef\xbb\xbf"])
def test_empty_file(data: bytes) -> None:
    syntax, [d] = parse_bytes(data, "empty.unlearn")
    assert syntax is None and d.code == "UL109" and "empty" in d.message
    assert (d.span.line, d.span.column) == (1, 1)


@pytest.mark.parametrize("text", ["# only a comment\n", "unlearnspec 1\n", "unlearnspec 1\n# and a comment"])
def test_no_objective(text: str) -> None:
    syntax, diags = parse_bytes(text.encode(), "n.unlearn")
    assert syntax is not None
    assert [d.code for d in diags] == ["UL109"]
    assert "no objective" in diags[0].message


# ---------------------------------------------------------------------------------------------------
# syntax errors in the language's words

H = "unlearnspec 1\n"


@pytest.mark.parametrize("name,text,code,where,message,help_part", [
    ("unquoted name", H + 'objective erase {\n  goal removal\n}\n', "UL102", "erase",
     "unexpected `erase`, expected a quoted string", 'objective "erase-jane-doe" {'),
    ("misspelled keyword", H + 'objectve "x" {\n  goal removal\n}\n', "UL102", "objectve",
     "expected `objective` here, found `objectve`", "did you mean `objective`?"),
    ("unterminated string", H + 'objective "x" {\n  title "Erase Jane\n}\n', "UL104", '"Erase',
     "string is not closed before the end of the line", 'close it with `"`'),
    ("keyword with a tail", H + 'objectives "x" {\n  goal removal\n}\n', "UL102", "objectives",
     "expected `objective` here, found `objectives`", "did you mean `objective`?"),
    ("header glued to its version", 'unlearnspec1\nobjective "x" {\n  goal removal\n}\n', "UL102", "unlearnspec1",
     "found `unlearnspec1`", "did you mean `unlearnspec`?"),
    ("unknown escape", H + 'objective "x" {\n  owner "privacy\\qoffice"\n}\n', "UL101", "\\q",
     "unknown escape `\\q` in a string", "write `\\\\` for a backslash"),
    ("unexpected character", H + 'objective "x" {\n  title @"x"\n}\n', "UL101", "@",
     "unexpected character `@`", "values are words"),
    ("space before percent", H + 'objective "x" {\n  utility drop <= 2 %\n}\n', "UL101", "%",
     "unexpected character `%`", "`2%`"),
    ("stray comma", H + 'objective "x" {\n  goal , removal\n}\n', "UL102", ",",
     "unexpected `,`", "remove the stray `,`"),
    ("trailing comma", H + 'objective "x" {\n  outputs verbatim,\n}\n', "UL102", ",",
     "a list ends with `,`", "remove the trailing `,`"),
    ("unmatched close", H + 'objective "x" {\n  goal removal\n}\n}\n', "UL102", "}\n}",
     "unmatched `}`", "remove it"),
    ("block on next line", H + 'objective "x"\n{\n  goal removal\n}\n', "UL102", '"x"\n',
     "expected `{`, found the end of the line", "a block opens on the line of its field"),
    ("second header", H + H + 'objective "x" {}\n', "UL102", "unlearnspec 1\nobjective",
     "the header `unlearnspec ...` can only be the first line", "keep one header"),
    ("version not a number", 'unlearnspec one\nobjective "x" {}\n', "UL102", "one",
     "unexpected `one`, expected a number", "the header is `unlearnspec 1`"),
    ("lone carriage return", 'unlearnspec 1\robjective "x" {}\n', "UL101", "\r",
     "unexpected character `\\r`", "line endings"),
])
def test_syntax_error_is_translated(name: str, text: str, code: str, where: str, message: str,
                                    help_part: str) -> None:
    syntax, diags = parse_bytes(text.encode(), "s.unlearn")
    assert syntax is None
    d = diags[0]
    assert d.code == code and d.severity == "error"
    assert message in d.message
    assert any(help_part in h for h in d.help), d.help
    line, col = line_col(text, where)
    if name == "block on next line":
        col += len('"x"')  # the end of the line after the name
    if name == "unmatched close":
        line, col = line + 1, 1
    if name == "second header":
        line, col = 2, 1
    assert (d.span.line, d.span.column) == (line, col)
    assert "Lark" not in d.message and "Token" not in d.message and "$END" not in d.message


def test_unclosed_block_points_at_its_brace() -> None:
    text = H + 'objective "x" {\n  target person "J" {\n    forget "a.jsonl"\n  }\n  goal removal\n'
    syntax, [d] = parse_bytes(text.encode(), "u.unlearn")
    assert syntax is None
    assert d.code == "UL103" and "never closed" in d.message
    [label] = d.labels
    assert (label.span.line, label.span.column) == (2, 15)
    assert "no matching `}`" in label.message
    assert d.span.line == 6 or d.span.line == 5


def test_nesting_too_deep_is_refused_before_parsing() -> None:
    text = H + 'objective "x" {\n' + "a {\n" * MAX_DEPTH + "}\n" * (MAX_DEPTH + 1)
    syntax, [d] = parse_bytes(text.encode(), "d.unlearn")
    assert syntax is None and d.code == "UL105"
    assert d.span.line == MAX_DEPTH + 2  # the (MAX_DEPTH + 1)-th `{`


def test_braces_in_strings_and_comments_do_not_nest() -> None:
    text = H + 'objective "x" {\n  title "{{{{{{{{"  # }}}}}}}}}\n  goal removal\n}\n'
    syntax, diags = parse_bytes(text.encode(), "b.unlearn")
    assert syntax is not None and diags == []


# ---------------------------------------------------------------------------------------------------
# recovery: several errors in one run


def test_several_independent_errors_are_all_reported() -> None:
    text = (H + 'objective "a" {\n  title "unclosed\n}\n'
            + 'objective "b" {\n  goal @removal\n}\n'
            + 'objective "c" {\n  outputs verbatim,\n\n}\n')
    syntax, diags = parse_bytes(text.encode(), "r.unlearn")
    assert syntax is None
    assert [(d.code, d.span.line) for d in diags] == [("UL104", 3), ("UL101", 6), ("UL102", 9)]


def test_recovery_after_a_broken_objective_header() -> None:
    text = H + 'objective x {\n  goal removal\n}\n' + 'objective "y" {\n  title @\n}\nstray\n'
    syntax, diags = parse_bytes(text.encode(), "r.unlearn")
    assert syntax is None
    assert [(d.code, d.span.line) for d in diags] == [("UL102", 2), ("UL101", 6), ("UL102", 8)]
    assert "found `stray`" in diags[2].message


def test_a_run_of_stray_fields_is_reported_once() -> None:
    """An early `}` closes the objective; the fields after it all sit outside it. One error says so,
    and the fields after it are still parsed: their own errors are found too."""
    text = H + 'objective "x" {\n  goal removal }\n  method npo\n  seed 1\n  title @\n}\n'
    syntax, diags = parse_bytes(text.encode(), "r.unlearn")
    assert syntax is None
    assert [(d.code, d.span.line) for d in diags] == [("UL102", 3), ("UL101", 6)]
    assert "so `method` below is outside it" in diags[0].message


def test_a_run_of_stray_fields_without_a_closing_brace_is_reported_once() -> None:
    text = H + 'objective "x" {\n  goal removal }\n  method npo\n  seed 1\n  title "t"\n'
    syntax, diags = parse_bytes(text.encode(), "r.unlearn")
    assert syntax is None
    assert [(d.code, d.span.line) for d in diags] == [("UL102", 4)]


def test_stray_fields_before_another_objective_are_reported_per_run() -> None:
    text = H + 'objective "a" {\n  goal removal }\n  seed 1\n  title "t"\nobjective "b" {\n}\nstray 2\n'
    _, diags = parse_bytes(text.encode(), "r.unlearn")
    assert [(d.code, d.span.line) for d in diags] == [("UL102", 4), ("UL102", 8)]


def test_unterminated_string_keeps_the_brace_after_it() -> None:
    """`objective "name {` most likely opens a block: the fields below are parsed inside it, not
    reported one by one as outside an objective."""
    text = H + 'objective "x {\n  goal removal\n  method npo\n}\nobjective "y" {\n  title @\n}\n'
    _, diags = parse_bytes(text.encode(), "r.unlearn")
    assert [(d.code, d.span.line) for d in diags] == [("UL104", 2), ("UL101", 7)]


def test_error_count_is_bounded() -> None:
    text = H + 'objective "x" {\n' + "".join(f"  f{i} @\n" for i in range(200)) + "}\n"
    _, diags = parse_text(text, "many.unlearn")
    assert 2 <= len(diags) <= 20


# ---------------------------------------------------------------------------------------------------
# spans


def test_every_node_has_the_span_of_its_text() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    syntax, _ = parse_bytes(text.encode(), "e.unlearn")
    assert syntax is not None
    [obj] = syntax.objectives
    assert text[obj.name_span.start_pos:obj.name_span.end_pos] == '"erase-jane-doe"'
    assert text[obj.keyword_span.start_pos:obj.keyword_span.end_pos] == "objective"
    assert text[obj.span.start_pos:obj.span.end_pos].startswith('objective "erase-jane-doe" {')
    assert text[obj.span.start_pos:obj.span.end_pos].endswith("}")
    lines = text.splitlines()  # the objective's braces: its first line, and the last line that is just `}`
    assert (obj.block.open_span.line, obj.block.close_span.line) == (
        next(i for i, ln in enumerate(lines, 1) if ln.startswith("objective ")),
        max(i for i, ln in enumerate(lines, 1) if ln == "}"))

    def walk(fields):  # every field and value, recursively
        for f in fields:
            yield f
            if f.block is not None:
                yield from walk(f.block.fields)

    lines = source_lines(text)
    for f in walk(obj.block.fields):
        assert text[f.name_span.start_pos:f.name_span.end_pos] == f.name
        assert lines[f.name_span.line - 1][f.name_span.column - 1:].startswith(f.name)
        whole = text[f.span.start_pos:f.span.end_pos]
        assert whole.startswith(f.name)
        if f.block is not None:
            assert whole.endswith("}") and f.span.end_line == f.block.close_span.line
            assert text[f.block.open_span.start_pos] == "{" and text[f.block.close_span.start_pos] == "}"
        for v in f.values:
            assert text[v.span.start_pos:v.span.end_pos] == v.raw
            assert lines[v.span.line - 1][v.span.column - 1:v.span.end_column - 1] == v.raw
            assert v.span.file == "e.unlearn"


def test_positions_with_tabs_and_crlf() -> None:
    text = 'unlearnspec 1\r\nobjective "x" {\r\n\tgoal\t\tremoval   # c\r\n\tmethod npo\r\n}\r\n'
    syntax, diags = parse_bytes(text.encode(), "t.unlearn")
    assert syntax is not None and diags == []
    goal, method = syntax.objectives[0].block.fields
    assert (goal.name_span.line, goal.name_span.column) == (3, 2)
    assert (goal.values[0].span.line, goal.values[0].span.column) == (3, 8)
    assert (method.values[0].span.line, method.values[0].span.column) == (4, 9)
    [comment] = syntax.comments
    assert (comment.line, comment.column, comment.text) == (3, 18, "# c")


def test_form_feed_and_line_separator_do_not_shift_lines() -> None:
    """Only `\\n` ends a line for the grammar; `str.splitlines` would also split at these."""
    text = 'unlearnspec 1\nobjective "x" {\n  title "a\u2028b"\n  goal\x0cremoval # c\n}\n'
    syntax, diags = parse_bytes(text.encode(), "f.unlearn")
    assert syntax is not None and diags == []
    [comment] = syntax.comments
    assert comment.line == 4
    assert syntax.objectives[0].block.close_span.line == 5


def test_parsing_from_threads_keeps_each_files_name() -> None:
    texts = {f"file{i}.unlearn": EXAMPLE.read_text().replace("erase-jane-doe", f"obj-{i}") for i in range(16)}

    def one(item: tuple[str, str]) -> tuple[str, set[str]]:
        name, text = item
        syntax, _ = parse_text(text, name)
        assert syntax is not None
        files = {v.span.file for f in syntax.objectives[0].block.fields for v in f.values}
        return name, files | {syntax.objectives[0].name_span.file}

    with ThreadPoolExecutor(4) as pool:
        for name, files in pool.map(one, texts.items()):
            assert files == {name}


def _both_parsers(text: str) -> tuple[object, object]:
    """The spec as the fast parser and as the reporting parser (Lark's own contextual lexer) read
    it: a ``SpecFile``, or ``None`` where that parser rejects it."""
    fast = parse_mod._parse_fast(text, "x.unlearn")
    try:
        slow: object = parse_mod._parse_with(parse_mod._building_parser(), text, "x.unlearn")
    except UnexpectedInput:
        slow = None
    return (None if fast is None else parse_mod._spec_file(text, "x.unlearn", *fast),
            None if slow is None else parse_mod._spec_file(text, "x.unlearn", *slow))  # type: ignore[misc]


# tests/fixtures/messages/ and tests/known_bad_messages/ hold specs broken on purpose, some of them in their syntax
BROKEN_ON_PURPOSE = (ROOT / "tests" / "fixtures" / "messages", ROOT / "tests" / "known_bad_messages")


@pytest.mark.parametrize("path", sorted([*ROOT.glob("specs/*.unlearn"),
                                         *(p for p in ROOT.glob("tests/**/*.unlearn") if p.parent not in BROKEN_ON_PURPOSE)]),
                         ids=lambda p: p.name)
def test_fast_lexer_reads_every_spec_exactly_as_lark_does(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    fast, slow = _both_parsers(text)
    assert slow is not None, "the example and fixture specs are all syntactically valid"
    assert fast == slow  # every node, position and comment


@pytest.mark.parametrize("text", [
    'objective "a" {\n  model "m" # objective unlearnspec\n  objectives unlearnspecs objective\n}\n',
    'unlearnspec 1\n\n\n# c\r\n  \t\nobjective "a" {\r\n  x 5% 5 -1.5e3 <= "s\\"q" , y\n\n  b { c 1 }\n}',
    'unlearnspec 1%\nobjective "a" { }\n',            # a percentage where the header wants a number
    'objective "a" {\n  x @\n}\n',                      # a character no terminal starts with
    'objective "a" {\n  x "open\n}\n',                  # an unterminated string
    'objective objective {\n}\n',
])
def test_fast_lexer_agrees_on_context_dependent_words_and_errors(text: str) -> None:
    fast, slow = _both_parsers(text)
    if slow is not None:
        assert fast == slow
    else:
        assert fast is None  # and parse_text reports the reporting parser's errors
        assert parse_text(text, "x.unlearn")[1]
