"""A chain's part of the report: drift and budget follow from the numbers, and reach report.md, the
model card and the ledger."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from markdown_it import MarkdownIt
from pydantic import ValidationError
from test_report import T0, make_plan, make_report, passing_results, result

from unlearnspec.audit.card import render_card
from unlearnspec.audit.ledger import record_run
from unlearnspec.plan import ChainBudget, ChainLink, ChainPlan, Threshold
from unlearnspec.report import (
    audit_from_plan,
    build_objective_report,
    build_report,
    render_html,
    render_markdown,
)
from unlearnspec.report.chain import (
    ChainReport,
    ChainStep,
    Recheck,
    RecheckedCheck,
    RecheckedClaim,
    build_chain_report,
)
from unlearnspec.report.model import CheckResult, Decision, Report
from unlearnspec.report.verdict import deciding, rechecked


def recheck(request: str, then: str, now: str, auc_then: float, auc_now: float) -> Recheck:
    return Recheck(request=request, claims=[RecheckedClaim(claim="removed", then=then, now=now)],
                   checks=[RecheckedCheck(check_id="membership_auc@forget", metric="membership_auc", then=auc_then,
                                          now=auc_now, status_then="pass" if auc_then <= 0.6 else "fail",
                                          status_now="pass" if auc_now <= 0.6 else "fail")])


def steps(drops: list[float]) -> list[ChainStep]:
    names = ["a", "b", "c"][: len(drops)]
    out = []
    for i, (name, drop) in enumerate(zip(names, drops, strict=True)):
        out.append(ChainStep(request=name, link_hash=f"{i:064x}", method="npo", approximate=True, utility_drop=drop,
                             overall="pass",
                             rechecks=[recheck(e, "pass", "pass" if e != "a" or i < 2 else "fail", 0.55, 0.58 + 0.05 * i)
                                       for e in names[:i]]))
    return out


def test_budget_is_exceeded_exactly_when_the_numbers_say_so() -> None:
    budget = ChainBudget(utility_drop=5.0, approximate_requests=2)
    over = build_chain_report(["a", "b", "c"], steps([1.0, 2.5, 6.0]), budget)
    assert over.budget_exceeded and len(over.budget_reasons) == 2  # 3 > 2 requests; 6% > 5%
    assert over.recommendation is not None and "retrain" in over.recommendation
    within = build_chain_report(["a", "b"], steps([1.0, 2.5]), budget)
    assert not within.budget_exceeded and within.budget_reasons == [] and within.recommendation is None
    no_budget = build_chain_report(["a", "b", "c"], steps([1.0, 2.5, 6.0]), None)
    assert not no_budget.budget_exceeded
    # drops are signed: a later gain does not undo a step that went over the budget
    recovered = build_chain_report(["a", "b", "c"], steps([1.0, 6.0, -0.5]), ChainBudget(utility_drop=5.0))
    assert recovered.budget_exceeded
    assert recovered.budget_reasons == ["cumulative utility drop 6% after request `b` exceeds the budget of 5%"]


def test_a_regressed_earlier_claim_is_listed_and_recommends_retraining() -> None:
    report = build_chain_report(["a", "b", "c"], steps([1.0, 2.0, 3.0]), None)
    assert report.regressions == [("c", "a", "removed")]
    assert report.recommendation is not None and "undid an earlier one" in report.recommendation


def test_a_contradicting_budget_flag_or_order_is_refused() -> None:
    good = build_chain_report(["a", "b", "c"], steps([1.0, 2.5, 6.0]), ChainBudget(utility_drop=5.0))
    data = good.model_dump()
    data["budget_exceeded"] = False
    data["budget_reasons"] = []
    with pytest.raises(ValidationError):
        ChainReport.model_validate(data)
    data = good.model_dump()
    data["links"] = ["b", "a", "c"]
    with pytest.raises(ValidationError):
        ChainReport.model_validate(data)


def chained_report(hostile: str = "") -> Report:
    chain = build_chain_report(["a", "b", "c"], steps([1.0, 2.5, 6.0]),
                               ChainBudget(utility_drop=5.0, approximate_requests=2))
    if hostile:
        chain = chain.model_copy(update={"steps": [s.model_copy(update={"method": hostile}) for s in chain.steps]})
    base = make_report()
    report = build_report(base.objectives, base.audit, [chain])
    return Report.model_validate_json(report.model_dump_json())  # the JSON round trip keeps the chain


def test_report_markdown_shows_drift_and_the_budget() -> None:
    text = render_markdown(chained_report())
    section = text.split("## Chain of requests", 1)[1].split("## Audit trail", 1)[0]
    assert "`a` → `b` → `c`" in section
    assert "| 3 | `c` | npo (approximate) | PASS | 6% | a: removed |" in section
    assert "| `a` | `removed` | PASS | **FAIL** |" in section  # the re-check after c
    assert "**EXCEEDED**" in section and "Recommendation:" in section


def test_chain_text_from_the_report_is_escaped() -> None:
    text = render_markdown(chained_report(hostile="<img src=x>|[x](y)"))
    section = text.split("## Chain of requests", 1)[1].split("## Audit trail", 1)[0]
    assert not re.search(r"(?<!\\)<img", section) and not re.search(r"(?<!\\)\]\(", section)
    rows = [ln for ln in section.splitlines() if ln.startswith("| 1 |")]
    assert rows and all(len(re.split(r"(?<!\\)\|", ln)) == 8 for ln in rows)  # six cells: no pipe got through


def test_model_card_lists_the_requests_in_order() -> None:
    text = render_card(chained_report())
    assert "### Requests applied in order" in text and "| 3 | `c` | 6% | a: removed |" in text
    assert "**The chain exceeded its budget**" in text


def test_a_report_without_chains_has_no_chain_key_or_section() -> None:
    report = make_report()
    assert "chains" not in report.model_dump(mode="json")
    assert "Chain of requests" not in render_markdown(report)


def test_ledger_records_each_step_from_the_previous_model_with_its_drift(tmp_path) -> None:  # type: ignore[no-untyped-def]
    plan = make_plan()
    first = plan.objectives[0]
    second = first.model_copy(update={"objective": first.objective.model_copy(update={"name": "erase-b"})})
    chain = ChainPlan(links=[ChainLink(objective=first.objective.name, objective_sha256="1" * 64, link_hash="2" * 64),
                             ChainLink(objective="erase-b", after=first.objective.name, objective_sha256="3" * 64,
                                       link_hash="4" * 64)])
    plan = plan.model_copy(update={"objectives": [first, second], "chains": [chain]}).sealed()
    reports = [build_objective_report(op, passing_results()) for op in plan.objectives]
    audit = audit_from_plan(plan, device="cpu", started_at=T0, finished_at=T0, wall_seconds=1.0)
    step = ChainStep(request="erase-b", link_hash="4" * 64, method="npo", approximate=True, utility_drop=1.5,
                     overall="pass", rechecks=[recheck(first.objective.name, "pass", "fail", 0.5, 0.7)])
    head = ChainStep(request=first.objective.name, link_hash="2" * 64, method="npo", approximate=True,
                     utility_drop=0.5, overall="pass")
    report = build_report(reports, audit, [build_chain_report([first.objective.name, "erase-b"], [head, step], None)])
    run = tmp_path / "run"
    for name in ("m1", "m2"):
        (run / name).mkdir(parents=True)
        (run / name / "model.safetensors").write_bytes(name.encode())
    entries = record_run(tmp_path / "ledger", run, plan, report, {first.objective.name: str(run / "m1"),
                                                                   "erase-b": str(run / "m2")})
    assert [e.request_id for e in entries] == [first.objective.name, "erase-b"]
    assert entries[1].model_before == entries[0].model_after != entries[0].model_before
    assert entries[1].drift == {"utility_drop": 1.5, "budget_exceeded": False, "budget_undecided": False,
                                "rechecks": {first.objective.name: {"removed": ["pass", "fail"]}}}


def test_report_html_shows_the_chain_escaped() -> None:
    html = render_html(chained_report(hostile="<img src=x onerror=alert(1)>"))
    assert "Chain of requests" in html and "EXCEEDED" in html
    assert "<img src=x" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html


def passing_report() -> Report:
    """make_report's objective with its passing claims only: a report that passes on its own."""
    base = make_report()
    o = base.objectives[0]
    kept = o.model_copy(update={"claims": [c for c in o.claims if c.verdict == "pass"], "overall": "pass"})
    report = build_report([kept], base.audit)
    assert report.overall == "pass"
    return report


def test_a_chain_that_undid_an_earlier_claim_fails_the_report_in_its_headline() -> None:
    """Every request passed on its own, but after request `c` the earlier request `a`'s claim fails: the report
    (headline, exit code, card) is FAIL, and says why. A report that says otherwise is refused."""
    base = passing_report()
    chain = build_chain_report(["a", "b", "c"], steps([1.0, 2.0, 3.0]), None)
    report = build_report(base.objectives, base.audit, [chain])
    assert (report.overall, report.exit_code) == ("fail", 1)
    text = render_markdown(report)
    head = text.split("## Objective", 1)[0]
    assert "**Overall verdict: FAIL**" in head and "The chain of requests decides the result too:" in head
    assert "after request `c`, claim `removed` of the earlier request `a` is fail" in head
    assert "The chain of requests: **FAIL**" in render_card(report)
    assert "chain-outcomes" in render_html(report)
    data = report.model_dump(mode="json")
    data["overall"], data["exit_code"] = "pass", 0
    with pytest.raises(ValidationError, match="does not follow from the objectives and chains"):
        Report.model_validate(data)


def test_a_budget_the_intervals_cannot_settle_is_incomplete_never_within() -> None:
    """A cumulative drop of 4.9% against a 5% budget, its interval [4.2, 5.6]: the data cannot say the chain kept
    its budget (FRAMEWORK.md §7). Wholly above, it is exceeded; wholly below, within."""
    def one(drop: float, low: float, high: float) -> ChainReport:
        step = ChainStep(request="a", link_hash="0" * 64, method="npo", approximate=True, utility_drop=drop,
                         utility_drop_interval=(low, high), utility_n=40, overall="pass")
        return build_chain_report(["a"], [step], ChainBudget(utility_drop=5.0))

    straddles = one(4.9, 4.2, 5.6)
    assert straddles.budget_undecided and not straddles.budget_exceeded
    assert straddles.budget_reasons == ["cumulative utility drop 4.9% [4.2, 5.6], n=40 after request `a` may exceed "
                                        "the budget of 5%: its interval reaches past it"]
    assert [o for o, _ in straddles.outcomes()] == ["incomplete"]
    base = passing_report()
    assert build_report(base.objectives, base.audit, [straddles]).overall == "incomplete"
    assert one(5.3, 5.1, 5.6).budget_exceeded  # wholly above
    within = one(4.0, 3.5, 4.6)
    assert not within.budget_exceeded and not within.budget_undecided and within.outcomes() == []
    assert "NOT SETTLED" in render_markdown(build_report(base.objectives, base.audit, [straddles]))


def test_each_ledger_line_records_the_budget_as_it_stood_after_its_request() -> None:
    """The third request takes the chain over its budget of two approximate requests: the first two ledger lines
    say the budget held then, the third that it was exceeded (not the chain's final state on every line)."""
    from unlearnspec.audit.ledger import chain_drift

    chain = build_chain_report(["a", "b", "c"], steps([1.0, 2.0, 3.0]), ChainBudget(approximate_requests=2))
    assert chain.budget_exceeded
    base = passing_report()
    drift = chain_drift(build_report(base.objectives, base.audit, [chain]))
    assert [drift[r]["budget_exceeded"] for r in ("a", "b", "c")] == [False, False, True]  # type: ignore[index]


def test_a_claim_that_fails_on_a_later_model_fails_the_chain_whatever_it_was_before() -> None:
    """Inconclusive when its request ran, FAIL on the model after the next request: the model the chain released
    fails the claim, so the chain fails (not only claims that had passed)."""
    step = ChainStep(request="b", link_hash="1" * 64, method="npo", approximate=True, utility_drop=1.0,
                     overall="pass", rechecks=[Recheck(request="a", claims=[
                         RecheckedClaim(claim="removed", then="inconclusive", now="fail")])])
    head = ChainStep(request="a", link_hash="0" * 64, method="npo", approximate=True, utility_drop=0.5, overall="pass")
    chain = build_chain_report(["a", "b"], [head, step], None)
    assert chain.outcomes() == [("fail", "after request `b`, claim `removed` of the earlier request `a` is fail (it "
                                         "was inconclusive when that request ran)")]


def test_a_budget_whose_drop_was_not_measured_is_not_settled() -> None:
    steps_ = [ChainStep(request=r, link_hash=f"{i:064x}", method="npo", approximate=True, utility_drop=None,
                        overall="pass") for i, r in enumerate(("a", "b"))]
    chain = build_chain_report(["a", "b"], steps_, ChainBudget(utility_drop=5.0))
    assert chain.budget_undecided and not chain.budget_exceeded
    assert chain.budget_reasons[0] == ("the utility drop after request `a` was not measured, so the budget of 5% is "
                                       "not shown to hold")
    assert "within budget" not in render_markdown(build_report(passing_report().objectives, passing_report().audit,
                                                               [chain]))


def test_a_format_1_0_report_is_read_by_its_own_rule() -> None:
    """Before 1.1 a report's overall followed from its objectives alone: such a report, whose chain exceeded its
    budget while every objective passed, still loads as written; a 1.1 report saying the same is refused."""
    base = passing_report()
    chain = build_chain_report(["a", "b", "c"], steps([1.0, 2.5, 6.0]), ChainBudget(utility_drop=5.0))
    data = build_report(base.objectives, base.audit, [chain]).model_dump(mode="json")
    assert data["overall"] == "fail"
    data["overall"], data["exit_code"] = "pass", 0
    with pytest.raises(ValidationError):
        Report.model_validate(data)
    old = Report.model_validate({**data, "format_version": "1.0"})
    assert old.overall == "pass" and old.chains[0].budget_exceeded


# --- what decided each re-checked check ----------------------------------------------------------------

def _membership(unlearned: float, reference: float, gap: float, low: float, high: float, n: int) -> CheckResult:
    """A membership check as the runtime decides it: on the gap to the reference (bound 0.1), not on the AUC."""
    return result("membership_auc@forget", "membership_auc", "<=", 0.60, unlearned=unlearned, reference=reference,
                  original=0.91, interval={"unlearned": (unlearned - 0.09, unlearned + 0.1)}, n={"unlearned": 20},
                  decision=Decision(quantity="worst |AUC − AUC_reference|", value=gap, interval=(low, high),
                                    threshold=Threshold(op="<=", value=0.1), n=n))


def _decided_chain() -> tuple[Report, CheckResult, CheckResult]:
    then = _membership(0.52, 0.5, 0.02, 0.0, 0.08, 6)  # passed when `a` ran, against its own reference
    now = _membership(0.124, 0.48, 0.356, 0.108, 0.6, 20)  # an AUC far below the new reference's: fails on the gap
    step = ChainStep(request="b", link_hash="1" * 64, method="npo", approximate=True, utility_drop=1.0, overall="pass",
                     rechecks=[Recheck(request="a", claims=[RecheckedClaim(claim="removed", then="pass", now="fail")],
                                       checks=[rechecked(then, now)])])
    head = ChainStep(request="a", link_hash="0" * 64, method="npo", approximate=True, utility_drop=0.5, overall="pass")
    base = passing_report()
    report = build_report(base.objectives, base.audit, [build_chain_report(["a", "b"], [head, step], None)])
    return Report.model_validate_json(report.model_dump_json()), then, now


def test_a_recheck_records_what_decided_each_check_then_and_now() -> None:
    report, then, now = _decided_chain()
    row = report.chains[0].steps[1].rechecks[0].checks[0]
    for side, check in ((row.deciding_then, then), (row.deciding_now, now)):
        d = check.decision
        assert side is not None and d is not None
        assert (side.quantity, side.value, side.interval, side.n, side.threshold) == (
            d.quantity, d.value, d.interval, d.n, d.threshold)
        assert side.reference == check.values.reference
    assert (row.status_then, row.status_now) == ("pass", "fail")  # the statuses those quantities decided


def test_the_recheck_table_shows_the_deciding_quantity_beside_its_status_and_the_references_note() -> None:
    """`AUC 0.124 (fail)` against a plan bound of 0.6 reads as a contradiction: the row shows the gap the status was
    decided on, with its interval, n and bound, and says that then and now had different references."""
    report, then, now = _decided_chain()
    for text in (render_markdown(report), render_html(report)):
        row = next(ln for ln in text.splitlines() if "membership_auc@forget" in ln and "worst" in ln)
        for check, status in ((then, "pass"), (now, "fail")):
            d = check.decision
            assert d is not None and d.interval is not None
            shown = (f"{d.value:.3g} [{d.interval[0]:.3g}, {d.interval[1]:.3g}], n={d.n}, threshold ≤ "
                     f"{d.threshold.value:.3g}; reference {check.values.reference:.3g} ({status})")
            assert shown in row.replace("\\[", "[").replace("\\]", "]"), (shown, row)
        assert f"{now.value:.3g}" not in row  # the AUC itself decided nothing
        assert "judged against different references" in text
        assert "retrained without every" in text


def _gap(interval: tuple[float, float] | None, no_evidence: str | None = None) -> CheckResult:
    """A verbatim ROUGE check decided on its gap to the reference (bound 0.2), with or without the gap's interval."""
    return result("verbatim_rouge@forget", "verbatim_rouge", "<=", 0.20, unlearned=0.14, reference=0.1,
                  decision=Decision(quantity="unlearned minus reference (mean over items)", value=0.04,
                                    interval=interval, threshold=Threshold(op="<=", value=0.2), n=20, no_evidence=no_evidence))


def test_only_a_tests_p_value_without_an_interval_is_decided_by_the_test() -> None:
    """With intervals off, forget quality's KS test decides on its p-value at the bound's level: "decided by the
    test". A gap (or a worst case, or a membership AUC gap) without an interval was decided on its point value: it
    says so, never that a test decided it. With intervals on, a value that got none decided nothing (it is
    inconclusive, and says why), so it is neither."""
    ks = result("forget_quality@forget", "forget_quality", ">=", 0.05, unlearned=0.0811,
                decision=Decision(quantity="KS-test p-value", value=0.0811, threshold=Threshold(op=">=", value=0.05),
                                  n=20))
    test = deciding(ks)
    assert (test.by_test, test.point_value) == (True, False) and ks.status == "pass"
    assert test.text == "KS-test p-value 0.0811 (decided by the test), n=20, threshold ≥ 0.05"

    point = deciding(_gap(None))
    assert (point.by_test, point.point_value, point.why) == (False, True, None)
    assert point.text == ("unlearned minus reference (mean over items) 0.04 (point value, intervals off), n=20, "
                          "threshold ≤ 0.2")
    off = result("membership_auc@forget", "membership_auc", "<=", 0.60, unlearned=0.7, reference=0.5,
                 decision=Decision(quantity="worst |AUC − AUC_reference|", value=0.2,
                                   threshold=Threshold(op="<=", value=0.1), n=20))
    assert off.status == "fail" and "decided by the test" not in deciding(off).text
    assert deciding(off).point_value

    blind = _gap(None, no_evidence="no confidence interval could be computed for this value")
    undecided = deciding(blind)
    assert blind.status == "inconclusive" and not (undecided.by_test or undecided.point_value)
    assert undecided.why == "no confidence interval could be computed for this value"

    ks_blind = result("forget_quality@forget", "forget_quality", ">=", 0.05, unlearned=0.3,
                      decision=Decision(quantity="KS-test p-value", value=0.3, threshold=Threshold(op=">=", value=0.05),
                                        n=20, no_evidence="the test does not tell the original model from the reference"))
    assert ks_blind.status == "inconclusive" and not (deciding(ks_blind).by_test or deciding(ks_blind).point_value)

    with_interval = deciding(_gap((0.01, 0.07)))
    assert not (with_interval.by_test or with_interval.point_value) and "[0.01, 0.07]" in with_interval.text

    plain = deciding(result("in_context_rouge@forget", "in_context_rouge", "<=", 0.2, unlearned=0.1))
    assert plain.point_value and plain.text == "unlearned 0.1 (point value, intervals off), threshold ≤ 0.2"
    assert not deciding(result("in_context_rouge@forget", "in_context_rouge", "<=", 0.2, unlearned=0.1,
                               interval={"unlearned": (0.05, 0.15)})).point_value


def test_a_quantized_twin_shows_the_reference_its_gap_was_measured_beside() -> None:
    """Measured as released (int8) against the reference quantized alike, the gap is to the quantized reference:
    that is the reference shown, not the full-precision one the gap does not involve. When the reference could not
    be quantized, the gap is to the full-precision reference, and that one is shown."""
    def twin(reference_precision: str) -> CheckResult:
        return _gap((0.01, 0.07)).model_copy(update={"extra": {
            "precision": "int8", "reference_precision": reference_precision, "reference_attacked": 0.13}})

    assert deciding(twin("int8")).reference == 0.13
    assert deciding(twin("full (the reference could not be quantized: no backend)")).reference == 0.1
    assert deciding(_gap((0.01, 0.07))).reference == 0.1  # a check at full precision: its own reference


def test_a_recheck_from_an_older_report_shows_its_raw_values_as_such() -> None:
    """A 1.1 report's re-checks have no deciding quantity: they load, and their values are named as the decided
    model's own, not presented as what decided the status."""
    report, then, now = _decided_chain()
    data = report.model_dump(mode="json")
    for check in data["chains"][0]["steps"][1]["rechecks"][0]["checks"]:
        del check["deciding_then"], check["deciding_now"]
    old = Report.model_validate({**data, "format_version": "1.1"})
    text = render_markdown(old)
    row = next(ln for ln in text.splitlines() if ln.startswith("| `a` | `membership_auc@forget`"))
    assert f"{then.value:.3g} (pass; the decided model's own value" in row
    assert f"{now.value:.3g} (fail; the decided model's own value" in row


def test_a_drop_that_rounds_to_the_budget_is_printed_with_the_digits_that_tell_them_apart() -> None:
    """5.0004% [5.0002, 5.6] against a budget of 5%: three digits would print `5% [5, 5.6] exceeds the budget of 5%`."""
    step = ChainStep(request="a", link_hash="0" * 64, method="npo", approximate=True, utility_drop=5.0004,
                     utility_drop_interval=(5.0002, 5.6), utility_n=258, overall="pass")
    chain = build_chain_report(["a"], [step], ChainBudget(utility_drop=5.0))
    assert chain.budget_exceeded
    assert chain.budget_reasons == ["cumulative utility drop 5.0004% [5.0002, 5.6], n=258 exceeds the budget of 5%"]
    base = passing_report()
    text = render_markdown(build_report(base.objectives, base.audit, [chain]))
    assert "| 1 | `a` | npo (approximate) | PASS | 5.0004% [5.0002, 5.6], n=258 |" in text
    assert "| 1 | `a` | 5.0004% [5.0002, 5.6], n=258 |" in render_card(build_report(base.objectives, base.audit, [chain]))


@pytest.mark.parametrize("strategy", ["retrain", "model", "holdout"])
def test_the_recheck_says_what_now_was_judged_against(strategy: str) -> None:
    """Only a reference retrained per step makes then and now judged against different references; with the spec's
    reference model, or with no reference (chance), the re-check says it is the same one as then."""
    from unlearnspec.catalog.vocab import RECHECK_REFERENCES

    report, then, now = _decided_chain()
    step = report.chains[0].steps[1]
    redone = step.rechecks[0].model_copy(update={"reference": RECHECK_REFERENCES[strategy]})
    steps = [report.chains[0].steps[0], step.model_copy(update={"rechecks": [redone]})]
    again = build_report(report.objectives, report.audit, [build_chain_report(["a", "b"], steps, None)])
    for text in (render_markdown(again), render_html(again)):
        assert RECHECK_REFERENCES[strategy] in text
        assert ("judged against different references" in text) == (strategy == "retrain")


def test_request_names_with_backticks_come_back_whole_from_the_chains_sentences() -> None:
    """Review finding 9: the chain's sentences quoted request names between single backticks, so a name with a
    backtick paired with the sentence's own and was mangled. They are fenced to fit (`markdown.code_span`):
    markdown-it reads each name back as one code span."""
    first, second = "a`<img src=x>`", "b``"
    step = ChainStep(request=second, link_hash="1" * 64, method="npo", approximate=True, utility_drop=6.0,
                     utility_drop_interval=(5.5, 6.5), utility_n=40, overall="pass",
                     rechecks=[Recheck(request=first, claims=[RecheckedClaim(claim="removed", then="pass", now="fail")])])
    head = ChainStep(request=first, link_hash="0" * 64, method="npo", approximate=True, utility_drop=0.5,
                     overall="pass")
    chain = build_chain_report([first, second], [head, step], ChainBudget(utility_drop=5.0))
    base = passing_report()
    text = render_markdown(build_report(base.objectives, base.audit, [chain]))
    headline = text.split("## Summary in plain words", 1)[0]  # the summary below says the same again
    tokens = MarkdownIt("commonmark", {"html": True}).parse(headline)
    children = [c for t in tokens if t.type == "inline" for c in t.children or []]
    assert not [c for c in children if c.type in ("html_inline", "link_open", "image")]
    codes = [c.content for c in children if c.type == "code_inline"]
    assert codes.count(second) == 1 and codes.count(first) == 1 and "removed" in codes


# --- what the `requests` budget counts; what each step started from -------------------------------------------

FAMILY = {"npo": "approximate", "refusal": "model_suppression", "filter": "system_suppression", "retrain": "exact"}


def applied(methods: tuple[str, ...], legacy: bool = False) -> list[ChainStep]:
    """A chain that applied ``methods`` in order; ``legacy``: as reports before the family was recorded have it."""
    return [ChainStep(request=f"r{i}", link_hash=f"{i:064x}", method=m, approximate=FAMILY[m] == "approximate",
                      family=None if legacy else FAMILY[m], utility_drop=0.5, overall="pass")  # type: ignore[arg-type]
            for i, m in enumerate(methods)]


@pytest.mark.parametrize("methods", [("npo", "refusal", "npo"), ("npo", "filter", "npo", "npo"),
                                     ("npo", "retrain", "npo"), ("npo", "npo", "retrain", "npo"),
                                     ("retrain", "npo", "npo", "npo"), ("refusal", "refusal")])
@pytest.mark.parametrize("allowed", [1, 2])
def test_the_requests_budget_counts_every_weight_change_but_exact_retraining_since_the_last_retrain(
        methods: tuple[str, ...], allowed: int) -> None:
    """Review findings 6 and 7: the run counts refusal fine-tuning (it changes the weights), not an output filter
    (it changes none), and starts the count again after an exact retrain; the same count as UL413's."""
    chain = build_chain_report([f"r{i}" for i in range(len(methods))], applied(methods),
                               ChainBudget(approximate_requests=allowed))
    # the reference count: split at each exact retrain, leave out the filters, the longest part decides
    parts = " ".join(methods).split("retrain")
    counted = [[m for m in part.split() if m != "filter"] for part in parts]
    longest = max(len(p) for p in counted)
    assert chain.budget_exceeded == (longest > allowed)
    if chain.budget_exceeded:
        (reason,) = chain.budget_reasons
        assert reason.startswith(f"{longest} ")
        assert ("approximate requests" in reason) == ("refusal" not in methods)
        worst = next(i for i, p in enumerate(counted) if len(p) == longest)
        assert ("since the exact retrain" in reason) == (worst > 0)


def test_a_report_from_before_the_family_was_recorded_counts_as_it_did() -> None:
    """A step without ``family`` counts when it was approximate, and a retrain starts nothing again: the rule that
    report was written (and validated) by."""
    legacy = build_chain_report(["r0", "r1", "r2"], applied(("npo", "retrain", "npo"), legacy=True),
                                ChainBudget(approximate_requests=1))
    assert legacy.budget_exceeded and legacy.budget_reasons == ["2 approximate requests applied, the budget allows 1 "
                                                                "before retraining"]
    assert ChainReport.model_validate(legacy.model_dump(mode="json")) == legacy
    with pytest.raises(ValidationError, match="does not follow from the method family"):
        ChainStep(request="a", link_hash="0" * 64, method="npo", approximate=False, family="approximate",
                  overall="pass")


def test_the_report_says_an_exact_retrain_started_from_no_model() -> None:
    """Review finding 1: each request started from the previous one's model, except an exact retrain, which
    retrains the recipe without every target so far."""
    chain = build_chain_report(["r0", "r1", "r2"], applied(("npo", "retrain", "npo")), None)
    text = chain.order_text
    assert text.startswith("Each request started from the model the previous one produced")
    assert "except `r1`: an exact retrain starts from no model" in text and "every target so far" in text
    plain = build_chain_report(["r0", "r1"], applied(("npo", "npo")), None).order_text
    assert "except" not in plain


def test_whether_the_reference_changed_is_what_the_run_recorded() -> None:
    """Review finding 3: `reference_changed` follows the recorded comparison of the reference's strategy and folder
    then and now; only a report from before it was recorded falls back on the wording."""
    from unlearnspec.catalog.vocab import RECHECK_REFERENCES

    for strategy in ("retrain", "model", "holdout"):
        for same in (True, False):
            r = Recheck(request="a", reference=RECHECK_REFERENCES[strategy], same_reference=same)
            assert r.reference_changed is (not same)
    assert Recheck(request="a", reference=RECHECK_REFERENCES["retrain"]).reference_changed
    assert not Recheck(request="a", reference=RECHECK_REFERENCES["model"]).reference_changed


def test_a_result_marked_not_evaluated_keeps_no_decision_of_its_own() -> None:
    """Review finding 2: a result decided on another model than the plan's (a served check computed on the bare
    model) is kept for its values but marked not evaluated; it was inconclusive and had a deciding quantity, neither
    of which stands (and whose combination the report refuses)."""
    from unlearnspec.report.verdict import check_results

    plan = make_plan()
    op = plan.objectives[0].model_copy(update={"checks": [
        c.model_copy(update={"model": "served"}) if c.id == "verbatim_rouge@forget" else c
        for c in plan.objectives[0].checks]})
    bare = result("verbatim_rouge@forget", "verbatim_rouge", "<=", 0.20, unlearned=0.12, original=0.95,
                  interval={"unlearned": (0.0, 0.5)}, n={"unlearned": 3},
                  decision=Decision(quantity="unlearned value (mean over items)", value=0.12, interval=(0.0, 0.5),
                                    threshold=Threshold(op="<=", value=0.2), n=3))
    assert bare.status == "inconclusive" and bare.decision is not None
    got = {c.check_id: c for c in check_results(op, {**passing_results(), bare.check_id: bare})}[bare.check_id]
    assert got.status == "not_evaluated" and not got.inconclusive and got.decision is None and got.passed is None
    assert got.decided_on == "served" and "decided on 'unlearned' instead of 'served'" in (got.not_evaluated_reason or "")
    assert (got.values.unlearned, got.interval) == (bare.values.unlearned, bare.interval)  # its values kept
    built = build_objective_report(op, {**passing_results(), bare.check_id: bare})  # the report builds
    assert next(c for c in built.checks if c.check_id == bare.check_id).status == "not_evaluated"


def test_each_earlier_request_is_said_against_its_own_reference() -> None:
    """Earlier requests are re-checked by their own reference strategy, so after one step one can be judged against
    the reference retrained without every target so far (a new one) and another against its own reference model (the
    same as then): the note names each request with its reference, not the first request's for all of them."""
    from unlearnspec.catalog.vocab import RECHECK_REFERENCES

    retrained, given = RECHECK_REFERENCES["retrain"], RECHECK_REFERENCES["model"]

    def rc(name: str, reference: str, same: bool) -> Recheck:
        return Recheck(request=name, claims=[RecheckedClaim(claim="removed", then="pass", now="pass")],
                       reference=reference, same_reference=same)

    head = [ChainStep(request=n, link_hash=f"{i:064x}", method="npo", approximate=True, utility_drop=0.5,
                      overall="pass") for i, n in enumerate(["a", "b"])]
    step = ChainStep(request="c", link_hash="2" * 64, method="npo", approximate=True, utility_drop=1.0, overall="pass",
                     rechecks=[rc("a", retrained, False), rc("b", given, True)])
    base = passing_report()
    report = build_report(base.objectives, base.audit, [build_chain_report(["a", "b", "c"], [*head, step], None)])
    md, html = render_markdown(report), render_html(report)
    said = next(ln for ln in md.split("\n\n") if "*now* is on the model after" in ln).replace("\n", " ")
    assert f"for `a`, against {retrained} (then and now are judged against different references" in said
    assert f"for `b`, against {given}" in said and said.count("different references") == 1
    assert f"for “a”, against {retrained} (then and now" in html and f"for “b”, against {given}" in html
    # two requests against the same reference: one group, both named
    both = step.model_copy(update={"rechecks": [rc("a", given, True), rc("b", given, True)]})
    assert both.against_text() == f", against {given}"
    three = step.model_copy(update={"rechecks": [rc("a", retrained, False), rc("b", given, True),
                                                 rc("x", retrained, False)]})
    assert three.against_text().startswith(f": for `a` and `x`, against {retrained} (")


@pytest.mark.parametrize("allowed", [1, 3])
def test_the_requests_budget_is_worded_as_it_is_counted_everywhere(allowed: int, tmp_path: Path) -> None:
    """`requests K` counts refusal fine-tuning as well as approximate unlearning (the count above): report.md,
    report.html and the plan review say so in one wording, not "approximate requests"."""
    from unlearnspec.compiler.check import plan_file
    from unlearnspec.compiler.review import render_review
    from unlearnspec.report.chain import requests_budget_text

    words = requests_budget_text(allowed)
    assert words.startswith(f"{allowed} request{'s' if allowed != 1 else ''} changing the weights") and "refusal" in words
    assert "approximate requests" not in words
    chain = build_chain_report(["r0", "r1"], applied(("npo", "refusal")), ChainBudget(approximate_requests=allowed))
    base = passing_report()
    report = build_report(base.objectives, base.audit, [chain])
    assert words in render_markdown(report) and words in render_html(report)
    spec = Path(__file__).resolve().parents[1] / "specs" / "erasure-chain.unlearn"
    text = spec.read_text(encoding="utf-8")
    assert "requests 2" in text
    shutil.copytree(spec.parent / "data", tmp_path / "data")
    (tmp_path / spec.name).write_text(text.replace("requests 2", f"requests {allowed}"), encoding="utf-8")
    plan, result = plan_file(tmp_path / spec.name, allow_infeasible=True)
    assert plan is not None and plan.chains, result.diagnostics
    assert words in render_review(plan)


def test_sign_s_consistency_check_reads_the_chain_s_link_hashes() -> None:
    """A report of a chained plan must record, step by step, the link hashes of the plan's links, and the plan's own
    links must hold together (a plan run as given is sealed by whoever edited it): what `sign` refuses otherwise."""
    from unlearnspec.audit.consistency import plan_mismatches
    from unlearnspec.report.chain import link_digest, objective_digest

    plan, base = make_plan(), make_report()
    op = plan.objectives[0]
    digest = objective_digest(op)
    link = ChainLink(objective=op.objective.name, objective_sha256=digest,
                     link_hash=link_digest("", op.objective.name, digest))
    chained = plan.model_copy(update={"chains": [ChainPlan(links=[link])]})
    base = base.model_copy(update={"audit": base.audit.model_copy(update={"plan_hash": chained.plan_hash})})

    def report(link_hash: str) -> Report:
        step = ChainStep(request=op.objective.name, link_hash=link_hash, method="npo", approximate=True,
                         utility_drop=1.0, overall="pass")
        chain = build_chain_report([op.objective.name], [step], None)
        return Report.model_validate_json(build_report(base.objectives, base.audit, [chain]).model_dump_json())

    assert plan_mismatches(chained, base) == ["its chains of requests (order or budget) are not the plan's"]
    assert plan_mismatches(chained, report(link.link_hash)) == []
    assert plan_mismatches(chained, report("0" * 64)) == ["its chains' steps record other link hashes than the plan's links"]
    edited = chained.model_copy(update={"chains": [ChainPlan(links=[link.model_copy(update={"objective_sha256": "1" * 64})])]})
    broken = plan_mismatches(edited, report(link.link_hash))
    assert any(m.startswith("the plan's chain does not hold together: link ") and "records the objective's plan" in m
               for m in broken), broken
