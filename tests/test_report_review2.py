"""Second review of the documents a reviewer and a lawyer read (report.md, report.html, the model card): a summary in
plain words up top that says what was asked, what was shown and what was not, with every number's interval and n;
finding codes given with words; the same summary in all three documents; hostile values kept as text in it."""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

import pytest
from markdown_it import MarkdownIt
from test_report import make_report, passing_results, result

from unlearnspec.audit.card import render_card
from unlearnspec.catalog import CLAIMS, CODES
from unlearnspec.markdown import code_span, prose_html
from unlearnspec.plan import PlanFinding, TargetInfo, Threshold
from unlearnspec.report import Report, render_html, render_markdown
from unlearnspec.report.model import CheckResult, Decision

HOSTILE = "<script>alert(1)</script> & `tick` | pipe\nnew line # *x* [a](javascript:x) &amp;"


def mixed_report() -> Report:
    """The test report with one claim failing (membership, its whole interval above the bound), one inconclusive
    (forget quality, its interval across the bound, with the items the run estimated would settle it) and the
    others as in ``make_report``."""
    results = passing_results()
    results["membership_auc@forget"] = result(
        "membership_auc@forget", "membership_auc", "<=", 0.60, unlearned=0.91, original=0.97, reference=0.5,
        interval={"unlearned": (0.82, 0.97)}, n={"unlearned": 20}, confidence=0.95)
    results["forget_quality@forget"] = result(
        "forget_quality@forget", "forget_quality", ">=", 0.05, unlearned=0.081,
        interval={"unlearned": (0.0000195, 0.484)}, n={"unlearned": 20}, confidence=0.95,
        decision=Decision(quantity="KS-test p-value", value=0.081, interval=(0.0000195, 0.484),
                          threshold=Threshold(op=">=", value=0.05), n=20, more_items=75))
    return make_report(results=results)


def md_section(md: str, heading: str) -> str:
    return md.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]


class Text(HTMLParser):
    """The text of one element (by id) of an HTML page, tags dropped and entities decoded; and every tag checked
    for balance (void elements aside)."""

    VOID = frozenset({"meta", "br", "hr", "img", "input", "link", "col", "area", "base", "wbr", "source", "track"})

    def __init__(self, element_id: str) -> None:
        super().__init__(convert_charrefs=True)
        self.element_id, self.depth, self.parts = element_id, 0, []
        self.stack: list[str] = []
        self.errors: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.VOID:
            return
        self.stack.append(tag)
        if self.depth and tag in ("li", "p", "ul", "td", "th", "tr"):  # a block starts: a space between its words
            self.parts.append(" ")
        if self.depth:
            self.depth += 1
        elif dict(attrs).get("id") == self.element_id:
            self.depth = 1

    def handle_endtag(self, tag: str) -> None:
        if tag in self.VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:]} at {self.getpos()}")
            return
        self.stack.pop()
        if self.depth:
            self.depth -= 1

    def handle_data(self, data: str) -> None:
        if self.depth:
            self.parts.append(data)

    @property
    def text(self) -> str:
        return re.sub(r"\s+", " ", "".join(self.parts)).strip()


def html_text(page: str, element_id: str) -> str:
    parser = Text(element_id)
    parser.feed(page)
    parser.close()
    assert not parser.errors and not parser.stack, (parser.errors, parser.stack)
    return parser.text


MD = MarkdownIt("commonmark", {"html": True}).enable(["table"])


def md_text(md: str) -> str:
    """Markdown as the text a reader sees: rendered by markdown-it, tags dropped, entities decoded, spaces folded."""
    rendered = MD.render(md)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", rendered))).strip()


def squash(text: str) -> str:
    """Spaces before punctuation dropped (tags between words leave them), for comparing the text of two renderings."""
    return re.sub(r"\s+([,.;:)])", r"\1", re.sub(r"\(\s+", "(", text))


# --- what was asked, shown and not shown, up top ------------------------------------------------------------


def test_the_summary_comes_first_and_sorts_every_claim_by_its_verdict() -> None:
    report = mixed_report()
    md = render_markdown(report)
    assert md.index("## Summary in plain words") < md.index("## Objective")
    summary = md_section(md, "Summary in plain words")
    shown, not_shown = summary.split("- **Not shown:**", 1)
    for cv in report.objectives[0].claims:
        meaning = CLAIMS[cv.claim].summary
        assert meaning in (shown if cv.verdict == "pass" else not_shown), (cv.claim, cv.verdict)
    o = report.objectives[0]
    asked = next(line for line in summary.splitlines() if line.startswith("- **Asked:**"))
    assert all(word in asked for word in (o.target.name, "removed from the model's parameters", str(o.basis),
                                          str(o.owner), "retrained reference"))
    assert "not a proof that the information is gone or of legal compliance" in summary
    assert "Nothing beyond these claims is claimed" in summary


def test_what_was_not_shown_gives_each_deciding_number_with_its_interval_n_and_why() -> None:
    md = render_markdown(mixed_report())
    not_shown = md_section(md, "Summary in plain words").split("- **Not shown:**", 1)[1]
    # the failed membership check: its value, interval and n, and on which side the whole interval lies
    assert "0.91 \\[0.82, 0.97\\], n=20, threshold ≤ 0.6; failed, the whole range on the failing side" in not_shown
    # the inconclusive forget quality: why, in words, and how many items the run estimated would decide it
    assert ("0.081 \\[1.95e-05, 0.484\\], n=20, threshold ≥ 0.05; inconclusive: the range reaches both sides of "
            "the threshold; about 75 items would be needed to decide it") in not_shown
    # the claim that cannot be met is not claimed, whatever its numbers, and the compiler's reason is in words
    assert "not claimed: it cannot be achieved as written" in not_shown
    assert "UL305 (in context reintroduction)" in not_shown
    # and the reader is told once what value [low, high], n=items means
    assert "is inconclusive otherwise" in md_section(md, "Summary in plain words")


def test_a_pass_the_compiler_could_not_fully_verify_is_never_summarised_as_plainly_shown() -> None:
    report = make_report()
    assert {c.claim: c.verdict for c in report.objectives[0].claims}["not_generated"] == "pass"
    shown = md_section(render_markdown(report), "Summary in plain words").split("- **Not shown:**", 1)[0]
    line = next(ln for ln in shown.splitlines() if "(`not_generated`)" in ln)
    assert "cannot fully establish this claim, so a pass covers only what they tested" in line
    assert "UL406 (removal verified by outputs only)" in line


def test_a_claim_with_no_deciding_test_says_so() -> None:
    results = passing_results()
    results["verbatim_rouge@forget"] = result("verbatim_rouge@forget", "verbatim_rouge", None, None, unlearned=0.1)
    report = make_report(results=results)
    md = render_markdown(report)
    not_shown = md_section(md, "Summary in plain words").split("- **Not shown:**", 1)[1]
    assert "(`not_generated`): **not shown: some or all of its tests could not be run**" in not_shown


def test_a_holdout_only_run_is_not_said_to_have_a_reference_model() -> None:
    report = make_report()
    o = report.objectives[0].model_copy(update={"reference": "holdout"})
    md = render_markdown(report.model_copy(update={"objectives": [o]}))
    asked = next(ln for ln in md_section(md, "Summary in plain words").splitlines() if ln.startswith("- **Asked:**"))
    assert "no reference model, only with data the model never saw" in asked and "stand-in" not in asked


# --- codes never stand alone --------------------------------------------------------------------------------


def test_every_finding_code_in_the_claims_tables_comes_with_its_name_in_words() -> None:
    report = make_report()
    md, page = render_markdown(report), render_html(report)
    for cv in report.objectives[0].claims:
        for code in cv.findings:
            words = CODES[code].name.replace("-", " ")
            row = next(ln for ln in md.splitlines() if ln.startswith("| ") and f"**{cv.verdict.upper().replace('_', ' ')}**" in ln
                       and code in ln)
            assert f"{code} ({words})" in row
            assert f"{code} ({words})" in page
    card = render_card(report)
    not_claimed = card.split("#### Not claimed, and why", 1)[1]
    assert "UL405 (forget set completeness), a risk the reviewers accepted" in not_claimed


# --- the same summary in report.md, report.html and the card ------------------------------------------------


def test_the_summary_reads_the_same_in_markdown_html_and_the_card() -> None:
    report = mixed_report()
    md_summary = md_section(render_markdown(report), "Summary in plain words")
    md_items = md_summary.split("\n\n", 1)[1].split("\n\nEach number", 1)[0]  # the objective's list
    html_summary = html_text(render_html(report), "summary")
    card = render_card(report)
    card_items = card.split("In plain words (the same summary as the run's report):\n\n", 1)[1].split("\n\n|", 1)[0]
    assert card_items == md_items  # one template: the card carries the report's very text
    seen_md, seen_html = squash(md_text(md_items)), squash(html_text(render_html(report), "summary"))
    assert seen_md in squash(html_summary) and seen_md in seen_html


def test_the_summarys_numbers_are_the_evidence_tables_numbers() -> None:
    """Every interval the summary gives is one the evidence shows for the same check (report.md and report.html)."""
    report = mixed_report()
    md = render_markdown(report)
    summary = md_section(md, "Summary in plain words")
    by_id: dict[str, CheckResult] = {c.check_id: c for c in report.objectives[0].checks}
    page = html.unescape(render_html(report))
    for c in by_id.values():
        if c.status not in ("fail", "inconclusive"):
            continue
        d = c.decision
        low, high = d.interval if d is not None and d.interval else c.interval[c.decided_on]
        shown = f"\\[{low:.3g}, {high:.3g}\\]"
        assert shown in summary, c.check_id
        assert f"[{low:.3g}, {high:.3g}]" in page
        assert f"{c.check_id}" in md_section(md, "Objective `erase-jane-doe`: FAIL")


# --- hostile values stay text -------------------------------------------------------------------------------


def hostile_report() -> Report:
    report = mixed_report()
    o = report.objectives[0]
    o = o.model_copy(update={"name": "erase" + HOSTILE, "title": "T" + HOSTILE, "basis": "B" + HOSTILE,
                             "owner": "O" + HOSTILE, "method": "npo" + HOSTILE,
                             "target": TargetInfo(category="person", name="Jane" + HOSTILE, kind="observed",
                                                  aliases=["A" + HOSTILE]),
                             "checks": [c.model_copy(update={"dataset": "ds" + HOSTILE}) for c in o.checks]})
    audit = report.audit.model_copy(update={"device": "dev" + HOSTILE})
    return Report.model_validate(report.model_copy(update={"objectives": [o], "audit": audit}).model_dump())


def test_hostile_values_in_the_summary_stay_text_in_markdown_html_and_the_card() -> None:
    report = hostile_report()
    md, page, card = render_markdown(report), render_html(report), render_card(report)
    assert "<script>" not in page and "<script" not in md and "<script" not in card
    for doc in (md, card):
        tokens = [t for t in MD.parse(doc) for t in [t, *(t.children or [])]]
        assert not [t for t in tokens if t.type in ("html_inline", "html_block", "link_open")], doc[:200]
    summary_html = html_text(page, "summary")  # balanced tags, and the values read as written
    assert "Jane" + HOSTILE.replace("\n", " ") in summary_html
    assert "B" + HOSTILE.replace("\n", " ") in summary_html
    seen = md_text(md_section(md, "Summary in plain words"))
    assert ("Jane" + HOSTILE.replace("\n", " ")) in seen and ("O" + HOSTILE.replace("\n", " ")) in seen


def table_widths(md: str) -> list[tuple[int, int]]:
    """(header cells, row cells) for every table row whose count differs from its header's (unescaped pipes)."""
    bad = []
    lines = md.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("|") and i + 1 < len(lines) and re.fullmatch(r"\|(-+\|)+", lines[i + 1]):
            width = len(re.findall(r"(?<!\\)\|", line))
            for row in lines[i + 2:]:
                if not row.startswith("|"):
                    break
                if len(re.findall(r"(?<!\\)\|", row)) != width:
                    bad.append((width, len(re.findall(r"(?<!\\)\|", row))))
    return bad


def test_no_table_breaks_on_a_pipe_and_every_device_cell_reads_as_one_sentence() -> None:
    report = hostile_report()
    md, card = render_markdown(report), render_card(report)
    assert table_widths(md) == [] and table_widths(card) == []
    device = next(ln for ln in md.splitlines() if ln.startswith("| Device |"))
    assert device.endswith("; 1 process |") and ") (" not in device


# --- no model value is printed beside a bound it was not held to; extra facts in words ------------------------


def test_a_check_decided_on_another_quantity_says_which_bound_that_quantity_was_held_to() -> None:
    results = passing_results()
    results["membership_auc@forget"] = result(
        "membership_auc@forget", "membership_auc", "<=", 0.60, unlearned=0.124, reference=0.48,
        interval={"unlearned": (0.0347, 0.233)}, n={"unlearned": 20}, confidence=0.95,
        decision=Decision(quantity="|AUC − AUC_reference|", value=0.356, interval=(0.108, 0.6),
                          threshold=Threshold(op="<=", value=0.1), n=20))
    report = make_report(results=results)
    md, page = render_markdown(report), html.unescape(render_html(report))
    row = next(ln for ln in md.splitlines() if ln.startswith("| `membership_auc@forget` |"))
    cells = re.split(r"(?<!\\)\|", row)
    assert cells[4].strip() == "≤ 0.6 as written; applied as ≤ 0.1 to \\|AUC − AUC\\_reference\\|"
    assert "≤ 0.6 as written; applied as ≤ 0.1 to |AUC − AUC_reference|" in page
    assert "FAIL" in cells[-2]  # 0.124 ≤ 0.6, yet a fail: the cell says why the model's value is not what was held


def test_the_html_details_name_each_fact_in_words_and_print_a_level_as_the_markdown_does() -> None:
    results = passing_results()
    results["membership_auc@forget"] = results["membership_auc@forget"].model_copy(update={"extra": {
        **results["membership_auc@forget"].extra, "pair_confidence": 0.994, "deciding_attack": "min_k",
        "deciding_type": "qa_paraphrased"}})
    report = Report.model_validate(make_report(results=results).model_dump())
    page = render_html(report)
    details = re.search(r"<td>compared with:.*?</td>|<td>backend:.*?</td>", page)
    assert details is not None
    cell = details.group(0)
    assert "pair confidence: 99.40%" in cell and "deciding attack: Min-K%" in cell and "deciding type: qa paraphrased" in cell
    assert "_" not in re.sub(r"<[^>]+>", "", cell)


def test_scientific_notation_is_explained_when_and_only_when_the_report_prints_it() -> None:
    with_small = render_markdown(mixed_report())  # forget quality's interval starts at 1.95e-05
    assert "1.95e-05" in with_small and "1.95e-05 is in scientific notation" in with_small
    plain = render_markdown(make_report())
    assert not re.search(r"\d\.?\d*e[-+]\d", plain.split("## Audit trail", 1)[0])
    assert "scientific notation" not in plain


def test_the_wide_tables_scroll_inside_the_page_not_the_page_itself() -> None:
    """The claims, evidence and membership tables are wider than a page at many columns: each sits in a block that
    scrolls on its own (CSS only, no script), so the summary and the text around them keep the page's width."""
    page = render_html(make_report())
    assert re.search(r"\.wide\s*\{[^}]*overflow-x:\s*auto", page)
    for heading in ("<h3>Claims</h3>", "<h3>Evidence</h3>"):
        assert page.split(heading, 1)[1].lstrip().startswith('<div class="wide"><table>')
    assert "<script" not in page


# --- the worst case over item types, every type shown with its interval --------------------------------------


def privleak_check() -> CheckResult:
    by_type = {"documents": {"value": -42.0, "low": -80.5, "high": -9.25, "n": 6, "n_other": 12},
               "qa": {"value": 3.5, "low": -20.0, "high": 25.0, "n": 20, "n_other": 40}}
    aucs = {"documents": {"original": 0.99, "unlearned": 0.71, "reference": 0.5},
            "qa": {"original": 0.97, "unlearned": 0.49, "reference": 0.51}}
    return result("privleak@forget", "privleak", "<=", 10.0, unlearned=-42.0, reference=0.0,
                  interval={"unlearned": (-80.5, -9.25)}, n={"unlearned": 6}, confidence=0.95,
                  decision=Decision(quantity="worst |PrivLeak| over item types (percent)", value=42.0,
                                    interval=(20.0, 80.5), threshold=Threshold(op="<=", value=10.0), n=6),
                  extra={"privleak_by_type": by_type, "auc_by_type": aucs, "deciding_type": "documents",
                         "type_confidence": 0.975})


def test_privleak_shows_every_item_type_with_its_interval_and_counts_in_markdown_and_html() -> None:
    results = passing_results()
    results["privleak@forget"] = privleak_check()
    report = make_report(results=results)
    md, page = render_markdown(report), html.unescape(render_html(report))
    table = md.split("### PrivLeak by item type", 1)[1].split("\n### ", 1)[0]
    assert "each interval at 97.50%" in table
    rows = {ln.split("|")[1].strip(): ln for ln in table.splitlines() if ln.startswith("| ") and " / " in ln and "Item type" not in ln}
    assert set(rows) == {"▶ documents", "qa"}  # every type, the deciding one marked
    assert "-42 \\[-80.5, -9.25\\]%" in rows["▶ documents"] and "6 / 12" in rows["▶ documents"]
    assert "3.5 \\[-20, 25\\]%" in rows["qa"] and "20 / 40" in rows["qa"] and "0.49" in rows["qa"]
    for shown in ("-42 [-80.5, -9.25]%", "3.5 [-20, 25]%", "6 / 12", "20 / 40", "each interval at 97.50%"):
        assert shown in page


def test_a_chain_that_decides_the_result_is_in_the_summary_of_every_rendering() -> None:
    """An objective can pass on its own while a later request undid it: the summary, not only the headline, says so."""
    from test_chain_report import _decided_chain

    report = _decided_chain()[0]
    assert report.overall == "fail" and report.objectives[0].overall == "pass"
    summary = md_section(render_markdown(report), "Summary in plain words")
    assert "**Requests applied in order, `a` → `b`:**" in summary
    assert "- **FAIL**: after request `b`, claim `removed` of the earlier request `a` is fail" in summary
    page = html_text(render_html(report), "summary")
    assert "Requests applied in order, a → b:" in page and "FAIL after request “b”, claim" in page


def test_the_html_names_requests_in_quotes_not_in_markdown_backticks() -> None:
    """The chain's sentences set a request's name apart as a Markdown code span for report.md; the HTML page, which
    renders no Markdown, quotes it instead (a reader would otherwise see stray backticks)."""
    from test_chain_report import passing_report

    from unlearnspec.plan import ChainBudget
    from unlearnspec.report import build_report
    from unlearnspec.report.chain import ChainStep, build_chain_report

    steps = [ChainStep(request=name, link_hash=f"{i:064x}", method="npo", approximate=True, utility_drop=drop,
                       utility_drop_interval=(drop - 0.5, drop + 0.5), utility_n=40, overall="pass")
             for i, (name, drop) in enumerate([("first", 1.0), ("second", 7.0), ("third", 6.5)])]
    chain = build_chain_report(["first", "second", "third"], steps, ChainBudget(utility_drop=5.0, approximate_requests=1))
    assert chain.budget_exceeded
    base = passing_report()
    report = build_report(base.objectives, base.audit, [chain])
    md, page = render_markdown(report), html.unescape(render_html(report))
    assert "after request `second` exceeds the budget" in md  # the worst step, named as code in Markdown
    text = re.sub(r"<[^>]+>", "", page)
    assert "after request “second” exceeds the budget" in text  # and in quotes in HTML, in the headline and summary
    assert text.count("after request “second” exceeds the budget") >= 3  # headline, summary, chain section
    assert "`" not in text.split("How to read this report", 1)[0]


def test_the_card_says_once_how_to_read_its_numbers_and_codes() -> None:
    card = render_card(mixed_report())
    head = card.split("### Request", 1)[0]
    assert "Each number is given as value \\[low, high\\], n=items" in head
    assert "1.95e-05 is in scientific notation" in head  # the card prints forget quality's 1.95e-05 too
    assert "named by a code (UL and three digits) and a few words" in head and '"Not claimed, and why"' in head


def test_an_estimate_on_the_threshold_is_not_given_a_count_in_the_summary() -> None:
    results = passing_results()
    results["forget_quality@forget"] = result(
        "forget_quality@forget", "forget_quality", ">=", 0.05, unlearned=0.0501,
        interval={"unlearned": (0.01, 0.4)}, n={"unlearned": 20}, confidence=0.95,
        decision=Decision(quantity="KS-test p-value", value=0.0501, interval=(0.01, 0.4),
                          threshold=Threshold(op=">=", value=0.05), n=20, more_items=4_000_000))
    summary = md_section(render_markdown(make_report(results=results)), "Summary in plain words")
    assert "only far more items than these 20 could decide it" in summary and "4000000" not in summary


class _Code(HTMLParser):
    """The text of every ``<code>`` element of a page, and whether any other element or a script appears."""

    def __init__(self) -> None:
        super().__init__()
        self.codes: list[str] = []
        self.other: list[str] = []
        self._in = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "code":
            self._in = True
            self.codes.append("")
        else:
            self.other.append(tag)

    def handle_endtag(self, tag: str) -> None:
        self._in = self._in and tag != "code"

    def handle_data(self, data: str) -> None:
        if self._in:
            self.codes[-1] += data


@pytest.mark.parametrize("value", ["jane-doe", "a`b", "``x``", "<script>alert(1)</script>", "a & b | c", " pad "])
def test_a_code_span_in_a_message_is_one_code_element_in_html_holding_exactly_the_value(value: str) -> None:
    """The HTML report showed compiler and runtime messages with their Markdown backticks; a quoted value is now
    a `<code>` element, its text exactly the value, and nothing in it becomes markup."""
    message = f"objective {code_span(value)} & {code_span('x')} said <b>no</b>"
    parser = _Code()
    parser.feed(str(prose_html(message)))
    assert parser.codes == [value, "x"] and parser.other == []
    assert html.unescape(re.sub(r"</?code>", "", str(prose_html(message)))) == f"objective {value} & x said <b>no</b>"


def test_the_html_reports_findings_show_quoted_values_as_code() -> None:
    report = make_report()
    o = report.objectives[0]
    finding = PlanFinding(code="UL405", severity="warning", message=f"the forget set of {code_span('a`b<c')} may be "
                          "incomplete", help=[f"add {code_span('x.jsonl')}"])
    o = o.model_copy(update={"findings": [finding]})
    page = render_html(report.model_copy(update={"objectives": [o]}))
    assert "<code>a`b&lt;c</code>" in page and "<code>x.jsonl</code>" in page
    assert "``a`b" not in page and "`x.jsonl`" not in page


def test_a_not_evaluated_reason_quoting_a_value_shows_it_as_code_in_markdown_and_html() -> None:
    """A check's reason quotes the data set or attribute through `code_span`; report.md escaped it as text (the
    backticks shown literally) and report.html printed the backticks."""
    value = "a`b<script>"
    results = passing_results()
    results["probe_accuracy_gap@forget"] = result(
        "probe_accuracy_gap@forget", "probe_accuracy_gap", "<=", 0.2,
        not_evaluated_reason=f"the forget records carry no {code_span(value)} attribute")
    report = make_report(results=results)
    md, page = render_markdown(report), render_html(report)
    codes = [t.content for t in MD.parse(md) for t in [t, *(t.children or [])] if t.type == "code_inline"]
    assert value in codes
    assert f"<code>{html.escape(value, quote=False)}</code>" in page and "<script>" not in page
