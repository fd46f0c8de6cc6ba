"""A review of report.md and report.html, finding by finding: closed words are typed and escaped, the charts have
one escaping path (jinja2's), every number has its interval and n or says why not, and the page is accessible.

Independent references: markdown-it-py parses the Markdown, Python's XML parser the SVG, html.parser the page, and
WCAG 2.1's relative-luminance formula (written out here) the colours.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from dataclasses import fields, is_dataclass
from html.parser import HTMLParser
from typing import Any, get_args, get_type_hints

import pytest
from markdown_it import MarkdownIt
from pydantic import ValidationError
from test_chain_report import chained_report
from test_report import make_report, passing_results, result, roc_extra

from unlearnspec.catalog.methods import FamilyName
from unlearnspec.report import Report, plots, render_html, render_markdown
from unlearnspec.report.chain import ChainStep, RecheckedCheck, RecheckedClaim
from unlearnspec.report.interval_kinds import KINDS, interval_kind
from unlearnspec.report.model import CheckResult, ClaimVerdict, ObjectiveReport
from unlearnspec.report.render import VERDICT_TEXT, render_chart, verdict_text

PARSER = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])
SVG = "{http://www.w3.org/2000/svg}"


def markup_tokens(md: str) -> list[str]:
    return [c.type for t in PARSER.parse(md) for c in [t, *(t.children or [])]
            if c.type in ("html_inline", "html_block", "link_open", "image", "heading_open")]


# -- finding 2: the method's family is a closed word, typed and escaped -----------------------------------------

@pytest.mark.parametrize("family", get_args(FamilyName))
def test_every_method_family_renders_as_text_in_its_row(family: str) -> None:
    report = make_report()
    report = report.model_copy(update={"objectives": [report.objectives[0].model_copy(
        update={"method_family": family})]})
    md = render_markdown(Report.model_validate_json(report.model_dump_json()))
    [row] = [ln for ln in md.splitlines() if ln.startswith("| Method |")]
    assert markup_tokens(row + "\n") == []
    cells = [c for t in PARSER.parse("| | |\n|---|---|\n" + row + "\n") if t.type == "inline" for c in [t.content]]
    assert cells[-1].startswith("npo (") and family.replace("_", " ").split()[0] in cells[-1]


def test_a_forged_method_family_is_refused_when_the_report_is_read() -> None:
    data = json.loads(make_report().model_dump_json())
    data["objectives"][0]["method_family"] = "x\n# Forged heading\n<img src=https://evil.example/p.png>"
    with pytest.raises(ValidationError, match="method_family"):
        Report.model_validate(data)
    schema = Report.model_json_schema()
    assert "enum" in json.dumps(schema["$defs"]["ObjectiveReport"]["properties"]["method_family"])


# -- finding 3: a chain's verdicts and statuses are closed words; the filter refuses any other --------------------

@pytest.mark.parametrize(("where", "field"), [("step", "overall"), ("claim", "then"), ("claim", "now"),
                                              ("check", "status_then"), ("check", "status_now")])
def test_a_forged_word_in_a_chain_is_refused(where: str, field: str) -> None:
    data = json.loads(chained_report().model_dump_json())
    step = data["chains"][0]["steps"][2]
    target = {"step": step, "claim": step["rechecks"][0]["claims"][0], "check": step["rechecks"][0]["checks"][0]}
    target[where][field] = "pass ![x](https://evil.example/p.png) <b>b</b>|cell"
    with pytest.raises(ValidationError):
        Report.model_validate(data)


def test_the_chain_models_take_the_report_models_closed_sets() -> None:
    """One set of words per fact: a chain step's result is an objective's, a re-checked claim's a claim's verdict,
    a re-checked check's a check's status."""
    def words(model: Any, name: str) -> set[str]:
        return set(get_args(model.model_fields[name].annotation))

    assert words(ChainStep, "overall") == words(ObjectiveReport, "overall")
    assert words(RecheckedClaim, "then") == words(RecheckedClaim, "now") == words(ClaimVerdict, "verdict")
    status = set(get_args(get_type_hints(CheckResult.status.fget)["return"]))  # type: ignore[attr-defined]
    assert words(RecheckedCheck, "status_then") == words(RecheckedCheck, "status_now") == status


def test_the_verdict_filter_prints_the_closed_words_and_refuses_any_other() -> None:
    assert verdict_text("not_evaluated") == "NOT EVALUATED" and verdict_text("cannot_be_met") == "CANNOT BE MET"
    for word in ("PASS", "pass <b>", "", "fail\n# forged"):
        with pytest.raises(ValueError, match="not a verdict"):
            verdict_text(word)
    assert set(VERDICT_TEXT) >= {"pass", "fail", "inconclusive", "not_evaluated", "cannot_be_met", "incomplete",
                                 "info"}


# -- finding 4: the charts are drawn by an autoescaped template from numbers and plain strings --------------------

def _strings(obj: Any) -> list[str]:
    if isinstance(obj, str):
        return [obj]
    if is_dataclass(obj):
        return [s for f in fields(obj) for s in _strings(getattr(obj, f.name))]
    if isinstance(obj, (list, tuple)):
        return [s for x in obj for s in _strings(x)]
    return []


def hostile_check() -> Any:
    return result("<b>x</b> & \"y\"", "membership_auc", "<=", 0.6, unlearned=0.2, original=0.9, reference=0.5,
                  extra=roc_extra())


def test_a_chart_carries_the_specs_text_as_written_and_the_svg_shows_it_escaped_once() -> None:
    check = hostile_check()
    for chart in (plots.check_bars(check, "t"), plots.roc_chart(check, "t")):
        assert chart is not None
        strings = _strings(chart)
        assert any("<b>x</b> & \"y\"" in s for s in strings)  # raw: plots.py escapes nothing
        assert not any(re.search(r"<(svg|path|rect|text|polyline|circle)\b", s) for s in strings)  # and writes no markup
        svg = render_chart(chart)
        root = ET.fromstring(svg)  # well-formed XML: nothing the spec wrote became an element
        assert {e.tag.removeprefix(SVG) for e in root.iter()} <= {"svg", "title", "desc", "text", "path", "rect",
                                                                  "polyline", "circle"}
        assert root.find(f"{SVG}title") is not None and "<b>x</b> & \"y\"" in root.find(f"{SVG}title").text  # type: ignore[union-attr]
        assert "&amp;lt;" not in svg  # escaped once, not twice


def test_the_charts_keep_their_dash_patterns_titles_and_descriptions() -> None:
    html = render_html(make_report())
    svgs = [ET.fromstring(s) for s in re.findall(r"<svg\b.*?</svg>", html, flags=re.S)]
    assert len(svgs) >= 4
    for svg in svgs:
        ids = svg.get("aria-labelledby", "").split()
        assert [e.tag.removeprefix(SVG) for e in svg if e.get("id") in ids] == ["title", "desc"]
        assert all((e.text or "").strip() for e in svg if e.get("id") in ids)
    roc = next(s for s in svgs if "membership ROC" in (s.find(f"{SVG}title").text or ""))  # type: ignore[union-attr]
    dashes = {p.get("stroke"): p.get("stroke-dasharray") for p in roc.iter(f"{SVG}polyline")}
    assert dashes == {plots.STYLE[m][0]: plots.STYLE[m][1] or None for m in ("original", "unlearned", "reference")}


# -- finding 6: every number with its interval and n, or marked ------------------------------------------------------

def test_context_values_carry_their_intervals_and_zeros_by_definition_say_so() -> None:
    rs = passing_results()
    rs["verbatim_rouge@forget"] = result(
        "verbatim_rouge@forget", "verbatim_rouge", "<=", 0.20, unlearned=0.1, original=1.0, reference=0.05,
        interval={"original": (0.54, 1.0), "unlearned": (0.0, 0.3), "reference": (0.0, 0.2)},
        n={"original": 6, "unlearned": 6, "reference": 6}, confidence=0.95,
        per_item={"original": [1.0] * 6, "unlearned": [0.0, 0.1, 0.2, 0.3, 0.0, 0.0],
                  "reference": [0.05, 0.0, 0.1, 0.1, 0.05, 0.0]}, item_ids=[f"f{i}" for i in range(6)])
    rs["retain_utility_drop@retain"] = result(
        "retain_utility_drop@retain", "retain_utility_drop", "<=", 2.0, unlearned=1.0, original=0.0, reference=0.5,
        interval={"unlearned": (0.5, 1.5), "reference": (0.0, 1.0)}, n={"original": 9, "unlearned": 9, "reference": 9},
        confidence=0.95, extra={"interval": "paired bootstrap over records"})
    report = make_report(results=rs)
    md = render_markdown(report)
    row = next(ln for ln in md.splitlines() if ln.startswith("| `verbatim_rouge@forget` |"))
    assert "(for context: original 1 \\[0.54, 1\\], n=6; retrained reference 0.05 \\[0, 0.2\\], n=6)" in md
    assert "verbatim ROUGE-L 0.1 \\[0, 0.3\\], n=6 (95% percentile-bootstrap interval)" in md
    assert "intervals: original Clopper–Pearson exact; unlearned, reference percentile-bootstrap" in row
    utility = next(ln for ln in md.splitlines() if ln.startswith("| `retain_utility_drop@retain` |"))
    assert "| 0 (by definition) | 1 [0.5, 1.5], n=9 |" in utility
    assert "the bootstrap confidence interval" not in md  # How to read no longer calls every interval one
    glossary = md[md.index("Intervals in this report:"):md.index("Metrics:")]
    assert KINDS["exact_binomial"].term in glossary and KINDS["records_bootstrap"].term in glossary
    assert KINDS["simultaneous"].term not in glossary  # only the kinds this report shows


@pytest.mark.parametrize(("values", "n", "kind"), [
    ([1.0, 0.0, 1.0, 1.0, 0.0, 0.0], 6, "exact_binomial"),  # a share of 0s and 1s: Clopper and Pearson's
    ([0.3] * 6, 6, "agreeing"),  # every item agrees: the distribution-free bound
    ([0.1, 0.4, 0.2], 3, "hoeffding"),  # fewer than five items
    ([0.1, 0.4, 0.2, 0.7, 0.5, 0.3], 6, "bootstrap"),
    ([0.1, 0.4, 0.2, 0.7, 0.5, 0.3, 0.2, 0.1, 0.6, 0.2], 5, "cluster_bootstrap"),  # ten prompts of five questions
    ([0.1, 0.4, 0.2, 0.7, 0.5, 0.3], 3, "hoeffding"),  # six prompts of three questions: fewer than five items
    ([1.0, 0.0, 1.0, 1.0, 0.0, 0.0], 3, "share_of_questions"),
])
def test_an_intervals_kind_is_read_off_what_the_report_records(values: list[float], n: int, kind: str) -> None:
    value = sum(values) / len(values)
    check = result("leak_rate@forget", "leak_rate", "<=", 0.5, unlearned=value, per_item={"unlearned": values},
                   item_ids=[f"i{k}" for k in range(len(values))], interval={"unlearned": (0.0, 1.0)},
                   n={"unlearned": n}, confidence=0.95)
    assert interval_kind(check, "unlearned") == kind
    # values whose mean is not the recorded value are not the sample the interval came from: no claim about it
    other = check.model_copy(update={"values": check.values.model_copy(update={"unlearned": value + 0.01})})
    assert interval_kind(other, "unlearned") is None


def test_a_membership_auc_whose_pairs_all_agree_is_called_distribution_free() -> None:
    scores = {"original": {"loss": [5.0, 6.0, 7.0, 1.0, 2.0, 3.0]}, "unlearned": {"loss": [1.0, 6.0, 2.0, 5.0, 3.0, 2.5]}}
    extra = {"deciding_type": "qa", "deciding_attack": "loss", "member_types": ["qa"] * 3,
             "nonmember_types": ["qa"] * 3, "member_scores": {m: {"loss": v["loss"][:3]} for m, v in scores.items()},
             "nonmember_scores": {m: {"loss": v["loss"][3:]} for m, v in scores.items()}}
    check = result("membership_auc@forget", "membership_auc", "<=", 0.6, unlearned=0.5, original=1.0, extra=extra,
                   interval={"original": (0.6, 1.0), "unlearned": (0.1, 0.9)}, n={"original": 3, "unlearned": 3},
                   confidence=0.95)
    assert interval_kind(check, "original") == "agreeing"  # every member above every non-member
    assert interval_kind(check, "unlearned") == "hoeffding"  # three of each: fewer than five


def test_the_roc_legend_and_the_utility_components_give_their_n() -> None:
    check = result("membership_auc@forget", "membership_auc", "<=", 0.6, unlearned=plots.curve_auc(
        [0.0, 0.4, 0.6, 1.0], [0.0, 0.45, 0.65, 1.0]), original=0.9, reference=0.5, extra=roc_extra(),
        interval={"unlearned": (0.3, 0.7)}, n={"unlearned": 20}, confidence=0.95)
    chart = plots.roc_chart(check)
    assert chart is not None
    labels = [e.label for e in chart.legend]
    assert labels[1].startswith("unlearned: AUC 0.53 [0.3, 0.7], n=20")
    assert "(of the drawn curve, no interval)" in labels[0] and labels[-1] == "chance (AUC 0.5)"
    comps = {m: {"rouge_recall": 1.0, "verbatim_rouge": 0.9} for m in ("original", "unlearned")}
    drop = result("retain_utility_drop@retain", "retain_utility_drop", "<=", 2.0, unlearned=5.0, original=0.0,
                  per_item={"original.rouge_recall": [1.0, 1.0, None], "unlearned.rouge_recall": [1.0, 1.0, None],
                            "original.verbatim_rouge": [None, None, 0.9], "unlearned.verbatim_rouge": [None, None, 0.9]},
                  item_ids=["r0", "r1", "r2"], n={"original": 3, "unlearned": 3},
                  extra={"components": comps, "utility": {"original": 1.0, "unlearned": 0.95}})
    md = render_markdown(make_report(results=passing_results() | {drop.check_id: drop}))
    assert "| answers: ROUGE-L recall of the greedy answer | 1, n=2 | 1, n=2 |" in md
    assert "| documents: verbatim ROUGE-L of the continuation (still reproduced) | 0.9, n=1 | 0.9, n=1 |" in md
    assert "| utility (harmonic mean of the above) | 1, n=3 | 0.95, n=3 |" in md


# -- finding 12: accessibility of report.html ------------------------------------------------------------------------

def luminance(colour: str) -> float:
    """WCAG 2.1 relative luminance of ``#rrggbb``."""
    channels = [int(colour.lstrip("#")[i:i + 2], 16) / 255 for i in (0, 2, 4)]
    lin = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def contrast(a: str, b: str = "#ffffff") -> float:
    hi, lo = sorted((luminance(a), luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def test_colours_keep_wcag_contrast_against_the_white_page() -> None:
    for status, colour in plots.STATUS_COLOUR.items():  # outcome words at 11-12 px: text, 4.5:1
        assert contrast(colour) >= 4.5, (status, colour)
    for model, (colour, _) in plots.STYLE.items():  # bars and lines: graphics, 3:1
        assert contrast(colour) >= 3.0, (model, colour)


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ths: list[dict[str, str | None]] = []
        self.ids: set[str] = set()
        self.nav: list[str] = []
        self._in_nav = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if "id" in a and a["id"]:
            self.ids.add(a["id"])
        if tag == "th":
            self.ths.append(a)
        if tag == "nav":
            self._in_nav = True
        if tag == "a" and self._in_nav and a.get("href"):
            self.nav.append(str(a["href"]))

    def handle_endtag(self, tag: str) -> None:
        if tag == "nav":
            self._in_nav = False


def test_every_header_cell_has_a_scope_and_the_nav_reaches_every_section() -> None:
    page = _Page()
    page.feed(render_html(chained_report()))
    assert page.ths and all(th.get("scope") in ("row", "col") for th in page.ths)
    assert "#chain-1" in page.nav and "#audit" in page.nav and "#objective-1" in page.nav
    assert all(href.removeprefix("#") in page.ids for href in page.nav)


def test_claims_at_a_glance_says_in_words_what_it_draws() -> None:
    report = make_report()
    svg = ET.fromstring(re.findall(r"<svg\b.*?</svg>", render_html(report), flags=re.S)[0])
    desc = svg.find(f"{SVG}desc")
    assert desc is not None and desc.get("id") in svg.get("aria-labelledby", "").split()
    said = desc.text or ""
    for claim in report.objectives[0].claims:
        assert f"{claim.claim}" in said and claim.verdict.replace("_", " ") in said
        for cid in claim.checks:
            check = next(c for c in report.objectives[0].checks if c.check_id == cid)
            if check.threshold is not None:
                assert f"{cid} {check.status.replace('_', ' ')}" in said
