"""Every diagnostic the compiler emits for user input follows the message style (STYLE.md, after Cedar).

The specs checked are the examples in ``specs/``, every rule fixture and near miss in ``tests/rules/``,
and the broken specs in ``tests/fixtures/messages/`` (one mistake each: syntax errors at many positions,
misspelt fields and words, values of the wrong kind, bad data files, duplicates, headers, chains), plus a
binary file made here. For each diagnostic the rules are checked mechanically: the message is one
sentence on one line, starts lower case (unless it starts with quoted input or a name listed below), has
no final period and no unbalanced backticks; every error says in a ``help:`` line what to do; help and
label texts follow the same case and period rules; the span and every label lie inside the file; a
misspelt word or field gets a "did you mean"; the JSON form carries the same diagnostics as the model.

Messages known to be bad but not yet improved live in ``tests/known_bad_messages/`` instead.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path

import pytest
from fixtures.frontend import ROOT, run_cli

from unlearnspec.catalog.codes import CODES
from unlearnspec.compiler.check import CheckResult, check_file
from unlearnspec.compiler.diagnostics import Diagnostic, Span
from unlearnspec.compiler.render import render_human

MESSAGES = ROOT / "tests" / "fixtures" / "messages"
SPEC_FILES = [*sorted((ROOT / "specs").glob("*.unlearn")), *sorted((ROOT / "tests" / "rules").glob("*.unlearn")),
              *sorted(MESSAGES.glob("*.unlearn"))]
# Words a message may start with in capitals: proper nouns and acronyms a policy author knows.
PROPER_STARTS = ("AUC", "CSV", "GDPR", "JSON", "JSONL", "PII", "UTF-8", "LoRA", "MCQ")
# Broken specs in tests/fixtures/messages/ whose one finding is a warning, not an error.
WARNING_ONLY = {"header-missing", "model-hub"}
CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1")


def without_code(text: str) -> str:
    """``text`` with its code spans (user input, quoted) blanked out."""
    return CODE_SPAN.sub("X", text)


def style_problems(text: str, what: str) -> list[str]:
    problems = []
    if not text.strip():
        return [f"{what} is empty"]
    if "\n" in text:
        problems.append(f"{what} spans more than one line")
    if text.rstrip().endswith("."):
        problems.append(f"{what} ends with a period")
    if text[0].isupper() and not text.startswith(PROPER_STARTS):
        problems.append(f"{what} starts with a capital letter")
    plain = without_code(text)
    if "`" in plain:
        problems.append(f"{what} has an unbalanced backtick")
    if re.search(r"[.!?] [A-Z][a-z]", plain.replace("e.g. ", "").replace("i.e. ", "")):
        problems.append(f"{what} holds more than one sentence")
    return problems


def span_problems(span: Span, lines: list[str], file: str, what: str) -> list[str]:
    if span.file != file:
        return [f"{what} is in {span.file}, not {file}"]
    last = max(len(lines), 1)
    if not (1 <= span.line <= span.end_line <= last):
        return [f"{what} lines {span.line}-{span.end_line} are outside the file's {last} lines"]
    if span.column < 1 or (span.line == span.end_line and span.end_column < span.column):
        return [f"{what} columns {span.column}-{span.end_column} are not a region"]
    text = lines[span.line - 1] if lines else ""
    if span.column > len(text) + 1:
        return [f"{what} starts at column {span.column}, past the end of line {span.line}"]
    return []


def problems(d: Diagnostic, lines: list[str], file: str) -> list[str]:
    out = [f"unknown code {d.code}"] if d.code not in CODES else []
    out += style_problems(d.message, "message")
    if d.severity == "error" and not d.help:
        out.append("an error without a help line saying what to write instead")
    for h in d.help:
        out += style_problems(h, "help line")
    for lab in d.labels:
        out += style_problems(lab.message, "label")
        out += span_problems(lab.span, lines, file, "label span")
    out += span_problems(d.span, lines, file, "span")
    for fix in d.fixes:
        for e in fix.edits:
            out += span_problems(e.span, lines, file, "fix edit span")
    return out


@cache
def checked(path: Path) -> CheckResult:
    return check_file(path)


def source_lines(path: Path) -> list[str]:
    return path.read_bytes().decode("utf-8", errors="replace").splitlines()


@pytest.mark.parametrize("path", SPEC_FILES, ids=[f"{p.parent.name}/{p.stem}" for p in SPEC_FILES])
def test_every_diagnostic_follows_the_message_style(path: Path) -> None:
    result = checked(path)
    lines = source_lines(path)
    found = {f"{d.code}: {d.message}": problems(d, lines, result.path) for d in result.diagnostics}
    assert {k: v for k, v in found.items() if v} == {}


BROKEN = sorted(MESSAGES.glob("*.unlearn"))


@pytest.mark.parametrize("path", BROKEN, ids=[p.stem for p in BROKEN])
def test_each_broken_spec_is_diagnosed_where_the_mistake_is(path: Path) -> None:
    diags = checked(path).diagnostics
    if path.stem in WARNING_ONLY:
        assert any(d.severity == "warning" for d in diags), diags
        return
    errors = [d for d in diags if d.severity == "error"]
    assert errors, [d.message for d in diags]
    rendered = render_human([checked(path)], summary=False)
    assert f"error[{errors[0].code}]" in rendered and errors[0].span.location() in rendered


@pytest.mark.parametrize("path", [p for p in BROKEN if p.stem.startswith(("unknown-word-", "unknown-field-"))],
                         ids=lambda p: p.stem)
def test_a_misspelling_gets_a_did_you_mean(path: Path) -> None:
    diags = [d for d in checked(path).diagnostics if d.code in ("UL203", "UL204")]
    assert diags
    for d in diags:
        assert any(h.startswith("did you mean `") for h in d.help), d.help
        assert any(f.preferred for f in d.fixes), d.fixes
        # the span is the misspelt word alone, not its field or block
        assert d.span.line == d.span.end_line
        word = source_lines(path)[d.span.line - 1][d.span.column - 1:d.span.end_column - 1]
        assert word and " " not in word.strip('"'), word


def test_a_value_of_the_wrong_shape_is_pointed_at_not_its_field_name() -> None:
    d = next(d for d in checked(MESSAGES / "syntax-extra-word.unlearn").diagnostics if d.code == "UL210")
    line = source_lines(MESSAGES / "syntax-extra-word.unlearn")[d.span.line - 1]
    assert line[d.span.column - 1:d.span.end_column - 1] == "observed observed"
    assert "`observed`, `latent`, `concept`" in d.message


def test_a_binary_file_is_diagnosed_in_style(tmp_path: Path) -> None:
    path = tmp_path / "binary.unlearn"
    path.write_bytes(b"\xff\xfe\x00bin")
    result = check_file(path)
    assert [d.code for d in result.diagnostics] == ["UL100"]
    assert problems(result.diagnostics[0], source_lines(path), result.path) == []


def test_a_missing_spec_file_says_what_to_check(tmp_path: Path) -> None:
    result = check_file(tmp_path / "nope.unlearn")
    (d,) = result.diagnostics
    assert d.code == "UL207" and d.help and problems(d, [], result.path) == []


def test_the_json_form_carries_the_same_diagnostics() -> None:
    r = run_cli(["check", "--format", "json", *[str(p.relative_to(ROOT)) for p in BROKEN]], cwd=ROOT, timeout=60)
    assert "Traceback" not in r.stderr, r.stderr[-2000:]
    diagnostics = json.loads(r.stdout)["diagnostics"]
    for path in BROKEN:
        rendered = [(d["code"], d["message"], d["help"]) for d in diagnostics if d["file"] == str(path.relative_to(ROOT))]
        assert rendered == [(d.code, d.message, d.help) for d in checked(path).diagnostics], path.name


def test_a_quoted_word_is_told_to_lose_its_quotes() -> None:
    (d,) = checked(MESSAGES / "wrong-kind-quoted-word.unlearn").diagnostics
    assert d.message == 'a target kind is written without quotes, found `"observed"`'
    assert d.help == ["remove the quotes: write `observed`"]
    assert [(e.text, f.preferred) for f in d.fixes for e in f.edits] == [("observed", True)]


def test_help_examples_reuse_what_the_author_wrote() -> None:
    (d,) = checked(MESSAGES / "accept-no-reason.unlearn").diagnostics
    assert d.help == ['write it as `accept UL404 "reviewed by ..."`']  # the code written, not another
    (d,) = [d for d in checked(MESSAGES / "syntax-missing-comparison.unlearn").diagnostics if d.code == "UL210"]
    assert d.message == "cannot read utility tolerance `drop 2%`"  # the input as written, `%` included
    line = source_lines(MESSAGES / "syntax-missing-comparison.unlearn")[d.span.line - 1]
    assert line[d.span.column - 1:d.span.end_column - 1] == "drop 2%"
