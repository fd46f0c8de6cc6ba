"""The one Markdown escaping function (unlearnspec/markdown.py), checked against an independent
CommonMark parser (markdown-it-py, with GitHub's table and strikethrough extensions): whatever a spec
says, the review documents show it as text — no raw HTML, no link, no heading, no list, no split table
cell — and the text a reader sees is the text the spec wrote.

The hostile spec below goes through `show --format md`, `explain --format md` and report.md; their
output is pinned by golden files (``UNLEARNSPEC_UPDATE_GOLDENS=1`` regenerates them) and each is parsed
to check that it has exactly the structure (headings, tables, rows) the benign example has.
"""

from __future__ import annotations

import difflib
import os
import re
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from fixtures.frontend import EXAMPLE, ROOT, SPECS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt
from markdown_it.token import Token

from unlearnspec.cli import main
from unlearnspec.compiler.check import plan_file
from unlearnspec.compiler.explain import explain_spec
from unlearnspec.compiler.review import render_review
from unlearnspec.markdown import code_span, escape
from unlearnspec.markdown import one_line as on_one_line
from unlearnspec.plan import Plan
from unlearnspec.report import audit_from_plan, build_objective_report, build_report, render_markdown

GOLDEN = ROOT / "tests" / "golden" / "markdown"
UPDATE = os.environ.get("UNLEARNSPEC_UPDATE_GOLDENS") == "1"
PARSER = MarkdownIt("commonmark").enable(["table", "strikethrough"])

#: What a hostile author might write, one per issue-12 case.
HOSTILE = [
    "<!-- hides everything after it",
    "<details><summary>fine</summary>",
    "line one\n# Forged heading",
    "\n\n## Approved by legal",
    "[click](javascript:alert(1))",
    "<javascript:alert(1)>",
    "![x](http://example.invalid/t.png)",
    "a `code` and ``two`` and a lone ` tick",
    "cell | split | three",
    "# leading hash",
    "> leading quote",
    "- leading dash",
    "+ leading plus",
    "1. leading number",
    "12) leading number",
    "   3. indented number",
    "&lt;b&gt; &#x3C;i&#x3E; &amp; &copy;",
    "*em* **strong** _em_ __strong__ ~~struck~~",
    "trailing backslash \\",
    "$math$ and [^note] and <https://example.invalid>",
    "---",
    "===",
    "\ttab\r\ncarriage\u2028separator",
]


def inline_children(doc: str) -> list[Token]:
    """The inline tokens of a one-paragraph document, or of the last cell of a one-column table."""
    tokens = PARSER.parse(doc)
    inline = [t for t in tokens if t.type == "inline"]
    assert inline, doc
    if doc.startswith("| h |"):
        assert [t.type for t in tokens if t.type in ("table_open", "paragraph_open")] == ["table_open"], doc
    else:
        assert [t.type for t in tokens if t.type.endswith("_open")] == ["paragraph_open"], doc
    return list(inline[-1].children or [])


BLANKS = str.maketrans("", "", " \t\r\n")


def one_line(text: str) -> str:
    """What a reader should see: the text with every run of blanks and line breaks one space."""
    return " ".join(text.split())


def seen(children: list[Token]) -> str:
    return one_line("".join(c.content for c in children))


# -- the function, property by property ----------------------------------------------------------------

MARKDOWN_ALPHABET = st.sampled_from(list("ab #>-+=*_~`[]()!<>&;|\\$:.1\n\t\r") + ["&lt;", "<!--", "```", "1. "])


@settings(max_examples=400, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(MARKDOWN_ALPHABET, max_size=30).map("".join))
def test_text_renders_as_exactly_its_text(text: str) -> None:
    """At the start of a line, mid-line and in a table cell: plain text tokens only, the same text."""
    for doc in (escape(text) + "\n", "Before " + escape(text) + " after\n",
                "| h |\n|---|\n| " + escape(text) + " |\n"):
        children = inline_children(doc) if one_line(text) else []
        assert all(c.type in ("text", "softbreak") for c in children), (text, doc, children)
        assert seen(children).removeprefix("Before ").removesuffix(" after") == one_line(text), doc
        if doc.startswith("|"):
            assert len([t for t in PARSER.parse(doc) if t.type == "td_open"]) == 1


@settings(max_examples=400, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(MARKDOWN_ALPHABET, max_size=30).map("".join))
def test_code_is_one_code_span_with_exactly_the_text(text: str) -> None:
    """In a paragraph and in a table cell: one code span whose content is the text (a text with a
    pipe: plain text, which shows a pipe in both places)."""
    for doc in (escape(text, "code") + "\n", "| h |\n|---|\n| " + escape(text, "code") + " |\n"):
        children = [c for c in inline_children(doc) if c.content.strip() or c.type == "code_inline"]
        if "|" in text:
            assert all(c.type == "text" for c in children) and seen(children) == one_line(text), doc
            continue
        assert [c.type for c in children] == ["code_inline"], (text, doc, children)
        assert one_line(children[0].content) == one_line(text)


@settings(max_examples=400, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(MARKDOWN_ALPHABET, max_size=30).map("".join))
def test_prose_keeps_code_spans_and_nothing_else(text: str) -> None:
    """A compiler sentence with user input: text and code spans only, the same characters."""
    sentence = f"unknown field `{text}` in an objective"
    for doc in (escape(sentence, "prose") + "\n", "| h |\n|---|\n| " + escape(sentence, "prose") + " |\n"):
        children = inline_children(doc)
        assert all(c.type in ("text", "code_inline", "softbreak") for c in children), (doc, children)
        # which backticks delimit spans may shift with the user's own, but no other character does
        assert seen(children).replace(" ", "").replace("`", "") == sentence.replace("`", "").translate(BLANKS)


def test_compiler_code_spans_stay_code_spans() -> None:
    children = inline_children(escape("use `npo` or `grad_diff`; see `UL405`", "prose") + "\n")
    assert [(c.type, c.content) for c in children if c.type == "code_inline"] == [
        ("code_inline", "npo"), ("code_inline", "grad_diff"), ("code_inline", "UL405")]


@pytest.mark.parametrize("text", HOSTILE)
def test_each_hostile_string_is_shown_as_written(text: str) -> None:
    children = inline_children(escape(text) + "\n")
    assert all(c.type == "text" for c in children), children
    assert seen(children) == one_line(text)
    assert "\n" not in escape(text) and "\r" not in escape(text)


# -- the documents ------------------------------------------------------------------------------------------

HOSTILE_SPEC = r'''unlearnspec 1

objective "erase-<!--x-->|`n`" {
  title  "# Forged title <!-- hide the rest"
  basis  "<details><summary>fine</summary>\n# Forged heading\n> quoted | cell"
  owner  "[click](javascript:alert(1)) ``x`` &lt;b&gt; &#x3C;i&#x3E;"

  model   "builtin:tiny-bios"
  release api precision fp32

  target person "- Jane `Doe` | 1. *bold* _em_" {
    kind    observed
    forget  "data/jane-doe.jsonl"
    aliases "1. J. Doe", "> Jane D.", "+ \\ $x$ ~~s~~"
  }

  goal   removal
  method npo

  preserve {
    retain    "data/retain.jsonl"
    neighbors "data/neighbors.jsonl"
  }

  claims {
    removed
    compliant "GDPR <img src=x onerror=alert(1)> | `x`"
  }

  accept UL405 "</td></tr></table><script>alert(1)</script>\n## Approved"
}
'''

#: The same objective in plain words: the structure every hostile document must keep.
BENIGN_SPEC = HOSTILE_SPEC
for old, new in [('"erase-<!--x-->|`n`"', '"erase-x"'), ('"# Forged title <!-- hide the rest"', '"Title"'),
                 (r'"<details><summary>fine</summary>\n# Forged heading\n> quoted | cell"', '"Basis"'),
                 ('"[click](javascript:alert(1)) ``x`` &lt;b&gt; &#x3C;i&#x3E;"', '"Owner"'),
                 ('"- Jane `Doe` | 1. *bold* _em_"', '"Jane Doe"'),
                 (r'"1. J. Doe", "> Jane D.", "+ \\ $x$ ~~s~~"', '"J. Doe", "Jane D.", "JD"'),
                 ('"GDPR <img src=x onerror=alert(1)> | `x`"', '"GDPR"'),
                 (r'"</td></tr></table><script>alert(1)</script>\n## Approved"', '"Reviewed."')]:
    assert old in BENIGN_SPEC, old
    BENIGN_SPEC = BENIGN_SPEC.replace(old, new)

T0 = datetime(2026, 1, 13, 9, 0, 0, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def specs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("hostile")
    shutil.copytree(SPECS / "data", folder / "data")
    out = {}
    for name, text in (("hostile", HOSTILE_SPEC), ("benign", BENIGN_SPEC)):
        (folder / f"{name}.unlearn").write_text(text, encoding="utf-8")
        out[name] = folder / f"{name}.unlearn"
    return out


def planned(path: Path) -> Plan:
    plan, result = plan_file(path)
    assert plan is not None, [d.message for d in result.diagnostics]
    return plan


def documents(path: Path) -> dict[str, str]:
    plan = planned(path)
    report = build_report([build_objective_report(plan.objectives[0], {}, None)],
                          audit_from_plan(plan, device="cpu", libraries={"torch": "2.13.0"}, started_at=T0,
                                          finished_at=T0 + timedelta(seconds=1), wall_seconds=1.0))
    explained, code = explain_spec(path, fmt="md")
    assert code == 0
    return {"show": render_review(plan, "md"), "explain": explained, "report": render_markdown(report)}


def structure(md: str) -> list[tuple[str, ...]]:
    """The block structure a reader sees: headings with their level, tables with their shape, lists."""
    out: list[tuple[str, ...]] = []
    tokens = PARSER.parse(md)
    for i, t in enumerate(tokens):
        if t.type in ("heading_open", "blockquote_open", "bullet_list_open", "ordered_list_open", "hr",
                      "html_block", "code_block", "fence", "tr_open"):
            out.append((t.type, t.tag))
        if t.type == "td_open" and tokens[i - 1].type in ("tr_open",):
            cells = 0
            for u in tokens[i:]:
                if u.type == "tr_close":
                    break
                cells += u.type == "td_open"
            out.append(("cells", str(cells)))
    return out


def inline_kinds(md: str) -> set[str]:
    return {c.type for t in PARSER.parse(md) if t.type == "inline" for c in t.children or []}


@pytest.mark.parametrize("kind", ["show", "explain", "report"])
def test_hostile_documents_match_their_goldens(specs: dict[str, Path], kind: str) -> None:
    text = documents(specs["hostile"])[kind]
    path = GOLDEN / f"hostile.{kind}.md"
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"no golden {path.relative_to(ROOT)}; run with UNLEARNSPEC_UPDATE_GOLDENS=1"
    expected = path.read_text(encoding="utf-8")
    if text != expected:
        diff = "".join(difflib.unified_diff(expected.splitlines(True), text.splitlines(True), "golden", "now"))
        pytest.fail(f"{kind} of the hostile spec differs from {path.name} (UNLEARNSPEC_UPDATE_GOLDENS=1 to accept):\n"
                    + diff)


@pytest.mark.parametrize("kind", ["show", "explain", "report"])
def test_hostile_documents_keep_the_benign_structure(specs: dict[str, Path], kind: str) -> None:
    """Same headings, tables (rows and cells), lists and quotes as the benign objective: nothing the spec
    says adds, hides or splits a block; and no raw HTML, link or image anywhere."""
    hostile, benign = documents(specs["hostile"])[kind], documents(specs["benign"])[kind]
    assert structure(hostile) == structure(benign)
    kinds = inline_kinds(hostile)
    assert not kinds & {"html_inline", "link_open", "image"}, kinds
    assert not any(t.type == "html_block" for t in PARSER.parse(hostile))
    rendered = PARSER.render(hostile)
    for needle in ("<script", "<details", "<!--", "<img", 'href="javascript'):
        assert needle not in rendered, needle
    # and the reader sees what the spec says, as text (entities shown as written, not decoded)
    texts = " ".join(c.content for t in PARSER.parse(hostile) if t.type == "inline" for c in t.children or [])
    for needle in ("# Forged title <!-- hide the rest", "<details><summary>fine</summary> # Forged heading",
                   "&lt;b&gt; &#x3C;i&#x3E;"):
        if kind != "explain" or needle.startswith("# Forged title"):  # explain shows no basis or owner
            assert needle in texts, needle


@pytest.mark.parametrize("verb", [["show", "--format", "md"], ["explain", "--format", "md"]])
def test_the_verbs_print_the_escaped_documents(specs: dict[str, Path], capsys: pytest.CaptureFixture[str],
                                               verb: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(specs["hostile"].parent)
    assert main([verb[0], "hostile.unlearn", *verb[1:]]) == 0
    out: Any = capsys.readouterr().out
    assert out == documents(Path("hostile.unlearn"))["show" if verb[0] == "show" else "explain"]
    assert "<!--" not in out.replace("`` erase-<!--x-->", "")  # only inside a code span, where it is literal


def test_example_documents_render_as_before() -> None:
    """The example's review keeps its code spans (compiler words stay `code`), nothing is double-escaped."""
    md = render_review(planned(EXAMPLE), "md")
    assert "`npo` (approximate removal, named in the spec)" in md
    assert "&amp;" not in md and "\\\\" not in md


# -- every value in a Markdown template goes through the function --------------------------------------------

MD_TEMPLATES = [ROOT / "unlearnspec" / "compiler" / "templates" / "plan_review.md.j2",
                ROOT / "unlearnspec" / "compiler" / "templates" / "explain_spec.md.j2",
                ROOT / "unlearnspec" / "compiler" / "templates" / "diff.md.j2",
                ROOT / "unlearnspec" / "compiler" / "templates" / "sarif_help.md.j2",
                ROOT / "unlearnspec" / "compiler" / "templates" / "rules_index.md.j2",
                ROOT / "unlearnspec" / "report" / "templates" / "report.md.j2",
                ROOT / "unlearnspec" / "report" / "templates" / "chain.md.j2",
                ROOT / "unlearnspec" / "report" / "templates" / "summary.md.j2",
                ROOT / "unlearnspec" / "audit" / "templates" / "card.md.j2"]
ESCAPED = re.compile(r"\|\s*(md|mdcode|mdprose|mdblock)\b|map\(\"md(code|prose)?\"\)|\bcell\(|\bshort\(|\brechecked\(")
#: Expressions printed unescaped on purpose: numbers, fixed words, literals the plan's model already
#: restricts to a closed set (goal, verdict, severity, stage kind), and the templates' own constants.
#: A new unescaped expression fails this test: escape it, or add it here after checking it carries no
#: text from a spec.
TRUSTED = {
    '" (matches the content)" if plan_hash_ok else " (does **not** match the content)"',
    '"" if audit.process_count == 1 else "es"', '"" if n_claims == 1 else "s"',
    '"" if objectives | length == 1 else "s"', '"" if t.n_steps == 1 else "s"', '"%.1f" | format(audit.wall_seconds)',
    '", " if not loop.last', '"s" if obj.counts.cannot_be_met != 1 else ""',
    '(", " ~ obj.model.files ~ " files") if obj.model.files else ""', 'audit.finished_at.isoformat(timespec="seconds")',
    '(", " ~ "{:,}".format(obj.model.parameters) ~ " parameters") if obj.model.parameters else ""',
    "audit.process_count", 'audit.started_at.isoformat(timespec="seconds")', 'c.claim.compile_status | replace("_", " ")',
    "c.claim.verdict | verdict", "c.label", "code", "d.severity", "f.severity", "line", "loop.index", "n", "n_claims",
    "o.goal", "o.overall | verdict", "o.suppression_via",
    "obj.counts.cannot_be_met", "objectives | length", 'ov.reference_label if m == "reference" else m',
    "ov.reference_label", "report.exit_code", "report.overall | verdict", "row.check.decided_on",
    "row.status | verdict", "row.threshold", 'row["values"][m]', "s.kind", "t.forget[0]", "t.forget[1]",
    "t.last_step", "t.log.stop_threshold | num", "t.n_steps", "t.retain[0]", "t.retain[1]", "text",
    "v | verdict | lower", "v",
    # numbers from a chain's budget (the plan model types them as float / int), and a fixed phrase per
    # plan provenance (a closed set of three words in the run state)
    "chain.budget.approximate_requests", "chain.budget.utility_drop", '"," if chain.budget.utility_drop is not none',
    '{"planned": "planned from the spec by this run", "rederived": "re-derived from the spec and equal to the '
    'compiler\'s plan", "trusted": "**not re-derived** (`--trust-plan`): the plan was run as given"}'
    '[audit.plan_provenance]',
    # "Membership in detail": numbers formatted by fmt_number, a fixed outcome phrase per pair status, a fixed
    # phrase for what the gap is taken against, and the marker of the largest gap
    "row.aucs[m]", "row.gap", "row.n", "row.outcome", "mv.tolerance", "ov.membership[0].pair_confidence",
    "ov.membership[0].against", '"▶ " if row.deciding',
    # the chain section and the model card: fixed words and punctuation, verdicts (a closed set), numbers the
    # report's models type as float or int (printed through fmt_number, or as `ChainStep.drop_text` / the card's
    # evidence strings, which format numbers only), a date, and the card's goal phrase (a constant per goal)
    '" (approximate)" if s.approximate', '" → " if not loop.last', '"; " if not loop.last', '"; " if not loop.last else "."',
    '"EXCEEDED" if chain.budget_exceeded else "NOT SETTLED" if chain.budget_undecided else "within budget"',
    '"s" if chain.budget.approximate_requests != 1', "c.now | verdict", "c.status | claim_status",
    "c.then | verdict", "c.verdict | verdict", "chain.order_text", "chain.budget.utility_drop | num", "e.status | verdict | lower",
    "ov.what", 'report.audit.finished_at.strftime("%Y-%m-%d")', "result | verdict",
    "s.drop_text_beside(chain.budget.utility_drop if chain.budget else none)", "s.overall | verdict",
    # the chain's `rechecked` macro (its call escapes like `cell(`: the macro sends the deciding text through `md`
    # and why through `mdprose`): a number, and a re-checked status (a closed set)
    "d.reference | num", "value | num", "status | verdict | lower",
    # the model card: how many more files a signature covers (a count)
    "signature.others", '"" if signature.others == 1 else "s"',
    # `diff --format md`: the change's kind (a closed set of three words) and the summary's counts
    '("**" ~ c.kind ~ "**") if c.kind == "loosened" else c.kind', '" **Something loosened: review before merging.**" '
    'if summary.loosened', "summary.changed", "summary.loosened", "summary.tightened",
    # docs/rules/README.md: the registry's codes, severities and categories (closed sets), and the page's intro
    "p.severity", "p.category", "intro",
}


def test_every_markdown_template_value_is_escaped_or_trusted() -> None:
    unescaped = {m.group(1).strip() for path in MD_TEMPLATES
                 for m in re.finditer(r"\{\{(.*?)\}\}", path.read_text(encoding="utf-8"))
                 if not ESCAPED.search(m.group(1))}
    assert unescaped <= TRUSTED, sorted(unescaped - TRUSTED)


# -- review findings: a user's backtick, a trailing `#`, autolinks, a chain's names ----------------------------

CMARK = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])  # raw HTML on: would show it


def html_tags(md: str) -> list[str]:
    """Every raw HTML and link token markdown-it finds, with raw HTML allowed (as GitHub allows some)."""
    out = []
    for t in CMARK.parse(md):
        for c in [t, *(t.children or [])]:
            if c.type in ("html_inline", "html_block", "link_open", "image"):
                out.append(c.type)
    return out


def test_a_chain_of_hostile_names_stays_text_in_the_plan_review(tmp_path: Path) -> None:
    """Finding 1: the chain table wrapped an escaped name in the template's own backticks, so a backtick in the
    name closed the span and raw HTML followed. Each name is now one code span holding exactly the name."""
    shutil.copytree(SPECS / "data", tmp_path / "data")
    name = "a` <img src=https://evil.example/p.png> `b"
    text = (SPECS / "erasure-chain.unlearn").read_text(encoding="utf-8").replace('"erase-barnaby-caldrow"',
                                                                                f'"{name}"')
    spec = tmp_path / "chain.unlearn"
    spec.write_text(text, encoding="utf-8")
    md = render_review(planned(spec), "md")
    assert not html_tags(md), [ln for ln in md.splitlines() if "img" in ln]
    rows = [t for t in CMARK.parse(md[md.index("## Chain of requests"):].split("\n\n##")[0]) if t.type == "inline"]
    codes = [c.content for t in rows for c in t.children or [] if c.type == "code_inline"]
    assert codes.count(name) == 2  # step 1's objective, and step 2's `after`


def test_no_markdown_template_wraps_a_filters_output_in_its_own_backticks() -> None:
    """The pattern behind finding 1, in every Markdown template: a code span is made by `mdcode` (whose fence fits
    the value), never by backticks around an expression."""
    folders = [ROOT / "unlearnspec" / part / "templates" for part in ("compiler", "report", "audit")]
    for path in (p for folder in folders for p in sorted(folder.glob("*.md.j2"))):
        for m in re.finditer(r"`\{\{(.*?)\}\}`", path.read_text(encoding="utf-8")):
            assert m.group(1).strip() == "code", (path.name, m.group(0))  # report.md.j2's exit codes: numbers


@pytest.mark.parametrize("title", ["Approved ##", "Request #", "C# # #"])
def test_a_trailing_hash_in_a_heading_is_shown(title: str, tmp_path: Path) -> None:
    """Finding 7: CommonMark drops a heading's closing sequence of `#`; escaped, every `#` stays."""
    heading = f"## Objective `x`: {escape(title)}\n"
    [inline] = [t for t in PARSER.parse(heading) if t.type == "inline"]
    assert seen(inline.children or []) == f"Objective x: {title}"
    [raw] = [t for t in PARSER.parse(f"## Objective `x`: {title}\n") if t.type == "inline"]
    assert seen(raw.children or []) != f"Objective x: {title}"  # unescaped, the closing `#`s were dropped
    shutil.copytree(SPECS / "data", tmp_path / "data")
    spec = tmp_path / "t.unlearn"
    spec.write_text(BENIGN_SPEC.replace('"Title"', f'"{title}"'), encoding="utf-8")
    explained, _ = explain_spec(spec, fmt="md")
    [head] = [i for i, t in enumerate(PARSER.parse(explained)) if t.type == "heading_open"]
    assert PARSER.parse(explained)[head + 1].content.endswith(f": {escape(title)}")
    assert seen(PARSER.parse(explained)[head + 1].children or []) == f"Objective erase-x: {title}"


LINKS = ["see https://evil.example.com/x now", "http://a.co", "HTTPS://A.CO/x", "ftp://files.example.org/a",
         "go to www.evil.com today", "(www.evil.com/a)", "write to someone@evil.com", "mailto:a@b.com"]


@pytest.mark.parametrize("text", [t for t in LINKS if "www." not in t])  # linkify-it links www. only as fuzzy
def test_user_text_starts_no_autolink_in_markdown_it_with_linkify(text: str) -> None:
    """Finding 8, against markdown-it's linkify (linkify-it-py), set up as GFM's autolinks are (no bare domains
    without `www.`, no `//` links): the same text, as text, and no link."""
    pytest.importorskip("linkify_it")
    md = MarkdownIt("commonmark", {"linkify": True}).enable(["table", "linkify"])
    md.linkify.set({"fuzzy_link": False})
    md.linkify.add("//", None)
    assert any(t.type == "link_open" for b in md.parse(text) for t in b.children or [])  # it does link the raw text
    children = [t for b in md.parse(escape(text)) for t in b.children or []]
    assert all(c.type == "text" for c in children), children
    assert seen(children) == text


@pytest.mark.parametrize("text", [t for t in LINKS if "@" not in t])
def test_user_text_starts_no_autolink_in_github_flavored_markdown(text: str) -> None:
    """Finding 8, against GitHub's own parser (cmark-gfm, through cmarkgfm): URL and `www.` autolinks are broken.
    An e-mail address is not (cmark-gfm joins the text before it looks for one), which docs/reports.md says."""
    cmarkgfm = pytest.importorskip("cmarkgfm")
    assert "<a " in cmarkgfm.github_flavored_markdown_to_html(text)
    html = cmarkgfm.github_flavored_markdown_to_html(escape(text))
    assert "<a " not in html and html.strip().removeprefix("<p>").removesuffix("</p>") == text.replace("&", "&amp;")


@settings(max_examples=300, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(MARKDOWN_ALPHABET, min_size=1, max_size=30).map("".join))
def test_a_value_quoted_with_code_span_comes_back_exactly_from_prose(text: str) -> None:
    """Finding 9: a compiler sentence that quotes a user's value through `code_span` (a fence longer than its runs
    of backticks) renders it as one code span holding exactly the value, whatever backticks it holds."""
    value = on_one_line(text)
    sentence = f"objective {code_span(value)} continues {code_span('first')}"
    for doc in (escape(sentence, "prose") + "\n", "| h |\n|---|\n| " + escape(sentence, "prose") + " |\n"):
        children = inline_children(doc)
        assert all(c.type in ("text", "code_inline", "softbreak") for c in children), (doc, children)
        codes = [c.content for c in children if c.type == "code_inline"]
        if "|" in value:  # a pipe: escaped text, not a code span (see `code`)
            assert codes == ["first"] and one_line(value) in seen(children)
        else:
            assert codes == [value, "first"], (value, doc)


def test_a_fenced_block_holds_any_text_as_written() -> None:
    text = "model \"x\"  # a ``` fence\n````\n<script>"
    [block] = [t for t in PARSER.parse(escape(text, "block") + "\n") if t.type == "fence"]
    assert block.content == text + "\n"
