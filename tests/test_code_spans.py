"""A user's value quoted in a diagnostic is one code span fenced to fit it (``markdown.code_span``), whatever
backticks it holds: an objective name, a data file path or a model name with a backtick (or two) reads back
exactly, as one code element, in the terminal text, in SARIF and JSON, and in the Markdown documents that
render messages through ``mdprose`` (``explain --format md``, the plan review). Before, ``f"`{value}`"`` let
the value's own backtick close the span early and shift which words read as code.

Two independent CommonMark parsers read the messages back: markdown-it-py and GitHub's cmark-gfm."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import cmarkgfm
import pytest
from fixtures.frontend import MINIMAL_BODY, write_data
from markdown_it import MarkdownIt

from unlearnspec.compiler.check import CheckResult, check_bytes
from unlearnspec.compiler.diagnostics import Diagnostic
from unlearnspec.compiler.explain import explain_document
from unlearnspec.compiler.render import render_human, render_json, render_sarif
from unlearnspec.compiler.review import load_for_review, render_review
from unlearnspec.markdown import code_span, escape

#: A backtick inside, two in a row, and backticks at the ends (CommonMark then needs a space of padding).
TICKED = ["jane`doe", "jane``doe`x", "`jane`"]
_PARSER = MarkdownIt("commonmark")
_CODE = re.compile(r"<code>(.*?)</code>", re.S)


def code_elements(markdown: str) -> tuple[list[str], str]:
    """The contents of the code spans markdown-it finds in one line of Markdown, and the rest of its text."""
    [para] = [t for t in _PARSER.parse(markdown) if t.type == "inline"]
    kids = para.children or []
    return [c.content for c in kids if c.type == "code_inline"], "".join(c.content for c in kids if c.type == "text")


def gfm_code_elements(markdown: str) -> list[str]:
    """The same read by cmark-gfm, GitHub's parser: the text of each ``<code>`` element."""
    return [html.unescape(m) for m in _CODE.findall(cmarkgfm.github_flavored_markdown_to_html(markdown))]


def assert_one_span(message: str, value: str) -> None:
    """``message`` quotes ``value`` as exactly one code span holding exactly it, and no backtick is left over
    as text (a span closed early leaves one behind)."""
    assert message.count(code_span(value)) == 1, message
    codes, text = code_elements(message)
    assert codes.count(value) == 1, (message, codes)
    assert "`" not in text, (message, text)
    assert gfm_code_elements(message).count(value) == 1, message


def spec(name: str = "x", forget: str = "data/jane-doe.jsonl", model: str = "builtin:tiny-bios",
         extra: str = "") -> bytes:
    body = MINIMAL_BODY.replace("data/jane-doe.jsonl", forget).replace("builtin:tiny-bios", model)
    return f'unlearnspec 1\nobjective "{name}" {{\n{body}{extra}}}\n'.encode()


def checked(folder: Path, data: bytes) -> CheckResult:
    write_data(folder)
    return check_bytes(data, "t.unlearn", folder)


def one(result: CheckResult, code: str) -> Diagnostic:
    found = [d for d in result.diagnostics if d.code == code]
    assert len(found) == 1, [(d.code, d.message) for d in result.diagnostics]
    return found[0]


def human_message(result: CheckResult, code: str) -> str:
    """The message as the terminal shows it: the text after ``error[CODE]: `` on its heading line."""
    [line] = [ln for ln in render_human([result]).splitlines() if ln.startswith(f"error[{code}]: ")]
    return line.split(": ", 1)[1]


def sarif_message(result: CheckResult, code: str) -> str:
    [item] = [r for r in json.loads(render_sarif([result]))["runs"][0]["results"] if r["ruleId"] == code]
    return item["message"]["text"].split("\nhelp: ")[0]


def assert_rendered(result: CheckResult, code: str, value: str) -> None:
    d = one(result, code)
    assert_one_span(d.message, value)
    assert_one_span(human_message(result, code), value)
    assert_one_span(sarif_message(result, code), value)
    [j] = [x for x in json.loads(render_json([result]))["diagnostics"] if x["code"] == code]
    assert_one_span(j["message"], value)
    # every Markdown document puts a message through `mdprose`: the span survives it, re-fenced to fit
    assert_one_span(escape(d.message, "prose"), value)


@pytest.mark.parametrize("name", TICKED)
def test_an_objective_name_with_backticks_is_one_code_span(tmp_path: Path, name: str) -> None:
    result = checked(tmp_path, spec(name) + spec(name)[len("unlearnspec 1\n"):])
    d = one(result, "UL201")
    assert d.message == f"objective {code_span(name)} is defined twice"
    assert_rendered(result, "UL201", name)


@pytest.mark.parametrize(("field", "value", "code", "said"), [
    ("forget", "data/{}.jsonl", "UL207", "data file {} does not exist"),
    ("model", "./models/{}", "UL207", "model folder {} does not exist"),
    ("model", "builtin:{}", "UL204", "unknown built-in model {}"),
])
@pytest.mark.parametrize("name", TICKED)
def test_a_path_or_model_with_backticks_is_one_code_span(tmp_path: Path, name: str, field: str, value: str,
                                                          code: str, said: str) -> None:
    """A data path, a model folder and a built-in model's name, each holding backticks, quoted whole."""
    given = value.format(name)
    result = checked(tmp_path, spec(**{field: given}))
    assert one(result, code).message == said.format(code_span(given))
    assert_rendered(result, code, given)


def test_the_fence_grows_with_the_values_backticks() -> None:
    """The reference the tests compare with, checked on its own: a fence one backtick longer than the longest
    run in the value, a space of padding where the value starts or ends with a backtick."""
    assert code_span("a`b") == "``a`b``"
    assert code_span("a``b`c") == "```a``b`c```"
    assert code_span("`a`") == "`` `a` ``"
    for value in TICKED:
        assert code_elements(code_span(value))[0] == [value]


@pytest.mark.parametrize("name", TICKED)
def test_markdown_documents_show_the_objective_name_whole(tmp_path: Path, name: str) -> None:
    """`explain --format md` and the plan review render a finding's message through `mdprose`: an `accept`
    that matches nothing (UL214, a warning, so the spec still plans) names the objective, which reads back as
    one code span in both documents."""
    write_data(tmp_path)
    path = tmp_path / "s.unlearn"
    path.write_bytes(spec(name, extra='  accept UL411 "reviewed by the privacy team: nothing to accept"\n'))
    explained, errors, code = explain_document(path, "md")
    assert code == 0 and errors == ""
    [line] = [ln for ln in explained.splitlines() if "UL214" in ln]
    finding = line.split("UL214 (warning): ", 1)[1].split("; UL")[0].rstrip(".")
    assert_one_span(finding, name)
    plan, message, _ = load_for_review(path)
    assert plan is not None, message
    [line] = [ln for ln in render_review(plan, "md").splitlines() if "**UL214**" in ln]
    finding = line.split(": ", 1)[1].split(". Instead: ")[0]
    assert_one_span(finding, name)
