"""The report: verdict rules, the JSON contract, and the Markdown/HTML a reviewer reads."""

from __future__ import annotations

import html
import json
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from pydantic import ValidationError

from unlearnspec.catalog import MEMBERSHIP_ATTACKS, METRICS, TERMS
from unlearnspec.markdown import escape
from unlearnspec.plan import (
    ClaimPlan,
    DataSets,
    FileHash,
    MetricCheck,
    ModelRef,
    ObjectiveInfo,
    ObjectivePlan,
    Plan,
    PlanFinding,
    ReferenceStage,
    ReleaseInfo,
    TargetInfo,
    Threshold,
    ToolInfo,
    UnlearnStage,
)
from unlearnspec.report import (
    CheckResult,
    ClaimVerdict,
    ModelValue,
    Report,
    TrainingLog,
    audit_from_plan,
    build_objective_report,
    build_report,
    claim_verdict,
    decide,
    plots,
    render_html,
    render_markdown,
    report_schema,
    write_reports,
)
from unlearnspec.report.model import FORMAT_VERSION, Decision
from unlearnspec.report.render import render_chart

T0 = datetime(2026, 1, 13, 9, 0, 0, tzinfo=timezone.utc)


# --- builders --------------------------------------------------------------------------------------

def _check(cid: str, metric: str, op: str, value: float, model: str = "unlearned",
           probe: str | None = None, dataset: str = "forget") -> MetricCheck:
    return MetricCheck(id=cid, metric=metric, dataset=dataset, threshold=Threshold(op=op, value=value),  # type: ignore[arg-type]
                       model=model, probe=probe)  # type: ignore[arg-type]


def make_plan(title: str = "Right-to-erasure request for Jane Doe",
              extra_claims: list[ClaimPlan] | None = None) -> Plan:
    checks = [
        _check("membership_auc@forget", "membership_auc", "<=", 0.60),
        _check("verbatim_rouge@forget", "verbatim_rouge", "<=", 0.20),
        _check("forget_quality@forget", "forget_quality", ">=", 0.05),
        _check("verbatim_rouge@relearn", "verbatim_rouge", "<=", 0.30, model="attacked", probe="relearn"),
        _check("in_context_rouge@forget", "in_context_rouge", "<=", 0.2, probe="in_context"),
    ]
    claims = [
        ClaimPlan(claim="removed", status="supported", checks=["membership_auc@forget", "forget_quality@forget"]),
        ClaimPlan(claim="not_generated", status="cannot_be_verified", reasons=["UL406"],
                  checks=["verbatim_rouge@forget"]),
        ClaimPlan(claim="robust_to_finetuning", args={"steps": 20}, status="supported",
                  checks=["verbatim_rouge@relearn"]),
        ClaimPlan(claim="robust_to_prompting", status="cannot_be_met", reasons=["UL305"],
                  checks=["in_context_rouge@forget"]),
        *(extra_claims or []),
    ]
    findings = [
        PlanFinding(code="UL405", severity="warning", message="completeness of the forget set is unknown",
                    accepted=True, justification="Forget set built from a full-corpus alias search, 2026-11-20."),
        PlanFinding(code="UL305", severity="error", message="outputs depend on inputs", claim="robust_to_prompting",
                    help=["use system-level filtering where the deployer serves the model"]),
        PlanFinding(code="UL406", severity="warning", message="removal verified only by output metrics",
                    claim="not_generated"),
    ]
    objective = ObjectivePlan(
        objective=ObjectiveInfo(
            name="erase-jane-doe", title=title, basis="GDPR Art. 17, request 2026-0113",
            owner="privacy-office", goal="removal",
            target=TargetInfo(category="person", name="Jane Doe", kind="observed", aliases=["J. Doe"]),
            release=ReleaseInfo(mode="api", precision="fp32"), outputs=["verbatim", "facts"],
            prompts=["direct", "paraphrased"]),
        model=ModelRef(source="builtin:tiny-bios", kind="builtin", sha256="b" * 64),
        data=DataSets(forget=["data/jane-doe.jsonl"], retain=["data/retain.jsonl"]),
        claims=claims, checks=checks, findings=findings,
        stages=[ReferenceStage(strategy="retrain"),
                UnlearnStage(method="npo", family="approximate", chosen_by="spec")],
    )
    return Plan(tool=ToolInfo(version="0.1.0"), spec=FileHash(path="spec.unlearn", sha256="a" * 64),
                inputs=[FileHash(path="data/jane-doe.jsonl", sha256="c" * 64, role="forget")],
                objectives=[objective]).sealed()


def result(cid: str, metric: str, op: str | None, bound: float | None, *, unlearned: float | None = None,
           original: float | None = None, reference: float | None = None, attacked: float | None = None,
           decided_on: str = "unlearned", probe: str | None = None, attack: str | None = None,
           **kw: object) -> CheckResult:
    return CheckResult(
        check_id=cid, metric=metric, dataset="forget", probe=probe, attack=attack,
        threshold=Threshold(op=op, value=bound) if op is not None and bound is not None else None,  # type: ignore[arg-type]
        values=ModelValue(original=original, unlearned=unlearned, reference=reference, attacked=attacked),
        decided_on=decided_on, **kw)  # type: ignore[arg-type]


def roc_extra() -> dict[str, object]:
    return {"statistic": "min_k", "backend": "cpu", "roc": {
        "original": {"fpr": [0.0, 0.1, 0.3, 1.0], "tpr": [0.0, 0.6, 0.9, 1.0]},
        "unlearned": {"fpr": [0.0, 0.4, 0.6, 1.0], "tpr": [0.0, 0.45, 0.65, 1.0]},
        "reference": {"fpr": [0.0, 0.5, 1.0], "tpr": [0.0, 0.5, 1.0]},
    }}


def passing_results() -> dict[str, CheckResult]:
    rs = [
        result("membership_auc@forget", "membership_auc", "<=", 0.60, unlearned=0.52, original=0.91,
               reference=0.50, per_item={"unlearned": [0.1, 0.2, 0.3], "original": [0.5, 0.6, 0.7]},
               item_ids=["f1", "f2", "h1"], extra=roc_extra()),
        result("verbatim_rouge@forget", "verbatim_rouge", "<=", 0.20, unlearned=0.12, original=0.95,
               reference=0.10),
        result("forget_quality@forget", "forget_quality", ">=", 0.05, unlearned=0.41),
        result("verbatim_rouge@relearn", "verbatim_rouge", "<=", 0.30, unlearned=0.12, attacked=0.25,
               original=0.95, decided_on="attacked", attack="relearn"),
        result("in_context_rouge@forget", "in_context_rouge", "<=", 0.2, unlearned=0.1, probe="in_context"),
    ]
    return {r.check_id: r for r in rs}


def make_report(title: str = "Right-to-erasure request for Jane Doe",
                results: dict[str, CheckResult] | None = None) -> Report:
    plan = make_plan(title)
    training = TrainingLog(steps=[0, 5, 10, 15, 20], forget_loss=[2.1, 2.6, 3.2, None, 3.9],
                           retain_loss=[1.9, 1.95, 2.0, 2.05, 2.1], stop_reason="forget loss exceeded holdout loss",
                           stop_threshold=3.8)
    objective = build_objective_report(plan.objectives[0], results or passing_results(), training)
    audit = audit_from_plan(plan, device="cpu", libraries={"torch": "2.13.0", "transformers": "5.0"},
                            started_at=T0, finished_at=T0 + timedelta(seconds=42.5), wall_seconds=42.5)
    return build_report([objective], audit)


def verdicts(report: Report) -> dict[str, str]:
    return {c.claim: c.verdict for c in report.objectives[0].claims}


# --- verdict rules ---------------------------------------------------------------------------------

def test_supported_claims_pass_when_every_check_passes() -> None:
    v = verdicts(make_report())
    assert v["removed"] == "pass"
    assert v["robust_to_finetuning"] == "pass"


def test_cannot_be_verified_claim_gets_numeric_verdict_and_keeps_its_status() -> None:
    claim = next(c for c in make_report().objectives[0].claims if c.claim == "not_generated")
    assert claim.verdict == "pass"
    assert claim.compile_status == "cannot_be_verified"
    assert "UL406" in claim.findings
    assert "cannot be fully verified" in claim.explanation


def test_cannot_be_met_claim_never_passes_even_with_passing_numbers() -> None:
    report = make_report()
    claim = next(c for c in report.objectives[0].claims if c.claim == "robust_to_prompting")
    assert claim.verdict == "cannot_be_met"
    assert claim.findings == ["UL305"]
    # its check is still shown, and it passed numerically
    check = next(c for c in report.objectives[0].checks if c.check_id == "in_context_rouge@forget")
    assert check.passed is True
    assert report.overall == "fail" and report.exit_code == 1


def test_a_failed_check_fails_the_claim_and_the_explanation_gives_the_numbers() -> None:
    rs = passing_results()
    rs["membership_auc@forget"] = result("membership_auc@forget", "membership_auc", "<=", 0.60,
                                         unlearned=0.85, original=0.91, reference=0.50)
    report = make_report(results=rs)
    claim = next(c for c in report.objectives[0].claims if c.claim == "removed")
    assert claim.verdict == "fail"
    # a check measured without intervals says so beside its value, once, and its context values are marked too
    assert "membership AUC 0.85 (point value, no interval) is not ≤ 0.6 on forget" in claim.explanation
    assert "(for context, point values: original 0.91; retrained reference 0.5)" in claim.explanation


def test_a_failed_claims_sentence_names_every_deciding_check_whatever_its_outcome() -> None:
    # `removed` rests on membership (fails here) and forget quality (its interval straddles the bound): the
    # sentence beside FAIL must not drop the inconclusive check, or it reads as if nothing else was measured
    rs = passing_results()
    rs["membership_auc@forget"] = result("membership_auc@forget", "membership_auc", "<=", 0.60,
                                         unlearned=0.85, original=0.91, reference=0.50)
    rs["forget_quality@forget"] = result("forget_quality@forget", "forget_quality", ">=", 0.05, unlearned=0.4,
                                         interval={"unlearned": (0.01, 0.9)}, n={"unlearned": 20}, confidence=0.95)
    report = make_report(results=rs)
    claim = next(c for c in report.objectives[0].claims if c.claim == "removed")
    checks = {c.check_id: c for c in report.objectives[0].checks}
    assert claim.verdict == "fail" and checks["forget_quality@forget"].status == "inconclusive"
    fails, _, rest = claim.explanation.partition(" Inconclusive: ")
    assert "membership AUC 0.85 (point value, no interval) is not ≤ 0.6" in fails and "forget quality" not in fails
    assert rest.startswith("forget quality (KS-test p-value) 0.4 [0.01, 0.9], n=20")
    md = render_markdown(report)
    assert "Inconclusive: forget quality" in md


def test_pass_explanation_reads_as_a_sentence_with_context() -> None:
    claim = next(c for c in make_report().objectives[0].claims if c.claim == "removed")
    assert ("membership AUC 0.52 (point value, no interval) ≤ 0.6 on forget (for context, point values: original "
            "0.91; retrained reference 0.5)") in claim.explanation


def _gap_decision(value: float, interval: tuple[float, float], bound: float) -> Decision:
    return Decision(quantity="unlearned minus reference (mean over items)", value=value, interval=interval,
                    threshold=Threshold(op="<=", value=bound), n=6, more_items=9,
                    how=f"the bound <= {bound} is read as at most {bound} above the retrained reference")


@pytest.mark.parametrize(("gap", "interval", "verdict"), [(-0.12, (-0.28, 0.07), "pass"),
                                                           (0.31, (0.25, 0.4), "fail"),
                                                           (0.15, (0.05, 0.3), "inconclusive")])
def test_a_reference_relative_check_states_its_bound_only_beside_the_gap(
        gap: float, interval: tuple[float, float], verdict: str) -> None:
    """A ROUGE check decided on its gap to the reference: the unlearned model's own 0.44 is above the
    spec's 0.2 whatever the verdict, so no sentence may read ``0.44 ≤ 0.2`` (as one did: the bound was
    printed after the model's value while the gap decided). The bound stands beside the gap, and the
    report says how the spec's bound became the gap's."""
    rs = passing_results()
    rs["verbatim_rouge@forget"] = result("verbatim_rouge@forget", "verbatim_rouge", "<=", 0.20, unlearned=0.44,
                                         original=1.0, reference=0.56, decision=_gap_decision(gap, interval, 0.2))
    report = make_report(results=rs)
    claim = next(c for c in report.objectives[0].claims if c.claim == "not_generated")
    assert claim.verdict == verdict
    assert "0.44 ≤ 0.2" not in claim.explanation and "0.44 is not ≤ 0.2" not in claim.explanation
    assert "verbatim ROUGE-L on forget: unlearned 0.44 (point value, no interval); decided on unlearned minus " \
           f"reference (mean over items) {gap:g} [{interval[0]:g}, {interval[1]:g}]" in claim.explanation
    shown = f"{interval[1]:g}] (paired-bootstrap interval)"  # the kind of the decision's interval (interval_kinds)
    outcome = {"pass": f"{shown} ≤ 0.2 (", "fail": f"{shown}, which is not ≤ 0.2 (",
               "inconclusive": f"{shown}, inconclusive against ≤ 0.2: the interval straddles the bound; "
                               "about 9 items would settle it (as a pass, if the estimate holds) ("}[verdict]
    assert outcome in claim.explanation
    assert "(for context, point values: original 1; retrained reference 0.56)" in claim.explanation
    how = "the bound <= 0.2 is read as at most 0.2 above the retrained reference"
    assert f"({escape(how)})" in render_markdown(report)  # the one Markdown escaping function
    assert f"({html.escape(how, quote=False)})" in render_html(report)


def test_a_check_that_cannot_fail_says_so_not_that_its_interval_straddles() -> None:
    """Relearning whose reference recovers 0.9: the gap can reach only [-0.9, 0.1], all within <= 0.5, so
    the check is inconclusive although its interval lies below the bound — and the sentence says why."""
    rs = passing_results()
    d = Decision(quantity="recovery minus the retrained reference's after the same fine-tune", value=-0.2,
                 interval=(-0.45, 0.05), threshold=Threshold(op="<=", value=0.5), attainable=(-0.9, 0.1), n=11,
                 more_items=12)
    rs["verbatim_rouge@relearn"] = result("verbatim_rouge@relearn", "verbatim_rouge", "<=", 0.30, unlearned=0.12,
                                          attacked=0.7, reference=0.9, decided_on="attacked", attack="relearn",
                                          decision=d)
    claim = next(c for c in make_report(results=rs).objectives[0].claims if c.claim == "robust_to_finetuning")
    assert claim.verdict == "inconclusive"
    assert ("-0.2 [-0.45, 0.05] (paired-bootstrap interval), inconclusive against ≤ 0.5: it can only reach "
            "[-0.9, 0.1] here, all of it within "
            "the bound, so the check cannot fail and is no evidence") in claim.explanation
    assert "straddles" not in claim.explanation and "items would settle it" not in claim.explanation


def test_an_estimate_on_the_bound_is_not_given_a_count_in_the_millions() -> None:
    """A gap of 0.201 against a bound of 0.2, interval [0.096, 0.332] over 20 questions: the rough 1/sqrt(n) rule
    says about 810,000 items; the sentence says only that far more items than these 20 could settle it."""
    from unlearnspec.runtime.evaluation.intervals import items_to_settle

    more = items_to_settle(20, 0.096, 0.332, 0.201, 0.2)
    assert more is not None and more > 100 * 20
    rs = passing_results()
    d = Decision(quantity="unlearned minus reference (mean over items)", value=0.201, interval=(0.096, 0.332),
                 threshold=Threshold(op="<=", value=0.2), n=20, more_items=more, how="gap")
    rs["verbatim_rouge@forget"] = result("verbatim_rouge@forget", "verbatim_rouge", "<=", 0.20, unlearned=0.58,
                                         original=1.0, reference=0.38, decision=d)
    claim = next(c for c in make_report(results=rs).objectives[0].claims if c.claim == "not_generated")
    assert claim.verdict == "inconclusive"
    assert ("the estimate sits almost on the bound, so only far more items than these 20 (over 100 times as many) "
            "could settle it") in claim.explanation
    assert str(more) not in claim.explanation


@pytest.mark.parametrize("how", ["missing", "no_value", "nan", "mismatched_threshold"])
def test_missing_evidence_is_not_evaluated_never_pass(how: str) -> None:
    rs = passing_results()
    cid = "forget_quality@forget"
    if how == "missing":
        del rs[cid]
    elif how == "no_value":
        rs[cid] = result(cid, "forget_quality", ">=", 0.05, unlearned=None, original=0.9)
    elif how == "nan":
        rs[cid] = result(cid, "forget_quality", ">=", 0.05, unlearned=float("nan"))
    else:  # the runtime used a looser threshold than the reviewed plan: not counted
        rs[cid] = result(cid, "forget_quality", ">=", 0.0001, unlearned=0.01)
    report = make_report(results=rs)
    claim = next(c for c in report.objectives[0].claims if c.claim == "removed")
    assert claim.verdict == "not_evaluated"
    assert claim.explanation.startswith("Not evaluated, so not a pass")
    check = next(c for c in report.objectives[0].checks if c.check_id == cid)
    assert check.passed is None and check.not_evaluated_reason
    # robust_to_prompting still cannot be met, so the objective fails; without it, it is incomplete
    assert report.overall == "fail"


def test_incomplete_objective_has_exit_code_3() -> None:
    plan = make_plan()
    op = plan.objectives[0]
    op = op.model_copy(update={"claims": [c for c in op.claims if c.status != "cannot_be_met"]})
    rs = passing_results()
    del rs["verbatim_rouge@relearn"]  # the relearning attack did not run
    obj = build_objective_report(op, rs)
    report = build_report([obj], audit_from_plan(plan, device="cpu", started_at=T0, finished_at=T0,
                                                 wall_seconds=0.0))
    assert {c.claim: c.verdict for c in obj.claims}["robust_to_finetuning"] == "not_evaluated"
    assert (obj.overall, report.overall, report.exit_code) == ("incomplete", "incomplete", 3)


def test_all_pass_gives_exit_code_0() -> None:
    plan = make_plan()
    op = plan.objectives[0]
    op = op.model_copy(update={"claims": [c for c in op.claims if c.status != "cannot_be_met"]})
    obj = build_objective_report(op, passing_results())
    report = build_report([obj], audit_from_plan(plan, device="cpu", started_at=T0, finished_at=T0,
                                                 wall_seconds=0.0))
    assert (report.overall, report.exit_code) == ("pass", 0)


def test_claim_without_deciding_check_is_not_evaluated() -> None:
    plan = make_plan(extra_claims=[ClaimPlan(claim="no_side_effects", status="supported", checks=[])])
    v = {c.claim: c for c in decide(plan.objectives[0], passing_results())}
    assert v["no_side_effects"].verdict == "not_evaluated"
    assert "no check with a threshold" in v["no_side_effects"].explanation


def test_informational_check_does_not_decide() -> None:
    info = result("mia@forget", "membership_auc", None, None, unlearned=0.7)
    assert info.status == "info" and info.passed is None
    assert claim_verdict("supported", [info]) == "not_evaluated"
    ok = result("x", "verbatim_rouge", "<=", 0.2, unlearned=0.1)
    assert claim_verdict("supported", [info, ok]) == "pass"


verdict_checks = st.lists(
    st.tuples(st.sampled_from(["<=", ">=", "<", ">"]), st.floats(-2, 2),
              st.one_of(st.none(), st.floats(-2, 2), st.just(float("nan")))),
    max_size=5)


@settings(max_examples=200, deadline=None)
@given(status=st.sampled_from(["supported", "cannot_be_verified", "cannot_be_met"]), specs=verdict_checks)
def test_property_no_claim_is_both_pass_and_cannot_be_met(status: str, specs: list) -> None:
    checks = [result(f"c{i}", "m", op, bound, unlearned=v) for i, (op, bound, v) in enumerate(specs)]
    verdict = claim_verdict(status, checks)  # type: ignore[arg-type]
    if status == "cannot_be_met":
        assert verdict == "cannot_be_met"
    else:
        assert verdict != "cannot_be_met"
    if verdict == "pass":
        assert checks and all(c.passed is True for c in checks)
        assert status != "cannot_be_met"
    # and the model refuses the contradiction outright
    with pytest.raises(ValidationError):
        ClaimVerdict(claim="x", compile_status="cannot_be_met", verdict="pass", explanation="")


def test_check_result_refuses_a_passed_flag_contradicting_its_numbers() -> None:
    with pytest.raises(ValidationError, match="contradicts"):
        result("x", "verbatim_rouge", "<=", 0.2, unlearned=0.5, passed=True)
    with pytest.raises(ValidationError, match="has no value"):
        result("x", "verbatim_rouge", "<=", 0.2, unlearned=None, passed=True)
    assert result("x", "verbatim_rouge", "<=", 0.2, unlearned=0.5).passed is False
    # the attacked value decides an attack check, not the unlearned one
    r = result("x", "verbatim_rouge", "<=", 0.2, unlearned=0.1, attacked=0.5, decided_on="attacked")
    assert r.passed is False


def test_check_result_validates_per_item_and_roc_shapes() -> None:
    with pytest.raises(ValidationError, match="per_item"):
        result("x", "m", "<=", 1, unlearned=0.1, per_item={"unlearned": [1.0]}, item_ids=["a", "b"])
    with pytest.raises(ValidationError, match="roc"):
        result("x", "m", "<=", 1, unlearned=0.1, extra={"roc": {"unlearned": {"fpr": [0, 1], "tpr": [0]}}})


# --- the JSON contract -----------------------------------------------------------------------------

def test_report_json_round_trips_and_schema_is_valid() -> None:
    report = make_report()
    text = report.model_dump_json(indent=2)
    again = Report.model_validate_json(text)
    assert again == report
    assert again.format_version == FORMAT_VERSION == "1.3"
    schema = report_schema()
    Draft202012Validator.check_schema(schema)
    Draft202012Validator(schema).validate(json.loads(text))


def test_tampered_report_json_is_refused() -> None:
    data = json.loads(make_report().model_dump_json())
    claims = data["objectives"][0]["claims"]
    claims[0]["verdict"] = "fail"  # "removed" passed
    with pytest.raises(ValidationError, match="does not follow"):
        Report.model_validate(data)
    data = json.loads(make_report().model_dump_json())
    data["exit_code"] = 0
    with pytest.raises(ValidationError, match="exit_code"):
        Report.model_validate(data)


# --- markdown --------------------------------------------------------------------------------------

def test_markdown_has_headline_claims_evidence_findings_risks_audit_and_guide() -> None:
    md = render_markdown(make_report())
    assert md.startswith("# Unlearning report: FAIL")
    assert "**Overall verdict: FAIL** (exit code 1)" in md
    assert "## Objective `erase-jane-doe`: FAIL" in md
    assert "| `robust_to_finetuning (steps 20)` | supported | **PASS** |" in md
    assert "| `robust_to_prompting` | cannot be met | **CANNOT BE MET** |" in md
    assert ("membership AUC 0.52 (point value, no interval) ≤ 0.6 on forget (for context, point values: original "
            "0.91; retrained reference 0.5)") in md
    assert "**UL305** (error, claim `robust_to_prompting`)" in md
    assert "Forget set built from a full-corpus alias search, 2026-11-20." in md  # accepted risk
    assert "## Audit trail" in md and make_plan().plan_hash in md
    # both times to the second, alike (the finish, 42.5 s in, had microseconds; report.json keeps them)
    assert "| Started | 2026-01-13T09:00:00+00:00 |" in md and "| Finished | 2026-01-13T09:00:42+00:00 |" in md
    assert "## How to read this report" in md and "not a proof of legal compliance" in md
    assert "Stop reason: forget loss exceeded holdout loss." in md
    # every table row has the same number of cells as its header
    for block in re.findall(r"((?:^\|.*\|\n)+)", md, flags=re.M):
        rows = [r for r in block.splitlines() if not re.fullmatch(r"\|(?:-+\|)+", r)]
        counts = {len(re.split(r"(?<!\\)\|", r)) for r in rows}
        assert len(counts) == 1, block


def test_markdown_neutralises_user_markup() -> None:
    md = render_markdown(make_report(title="Erase <script>alert(1)</script> | [x](javascript:y)"))
    assert "<script>" not in md
    assert "&lt;script&gt;" in md and "\\|" in md and "\\[x\\]" in md  # unlearnspec/markdown.py


# --- html ------------------------------------------------------------------------------------------

def test_html_escapes_user_text() -> None:
    html = render_html(make_report(title="<script>alert('x')</script>"))
    assert "<script>" not in html
    assert "&lt;script&gt;" in html


def test_html_is_self_contained() -> None:
    html = render_html(make_report())
    for bad in ('src="http', "src='http", 'href="http', "href='http", "@import", "url(", "<script", "<link"):
        assert bad not in html, bad
    # the only absolute URI is the SVG namespace, which is a name, not a fetched resource
    assert set(re.findall(r"https?://[^\s\"'<>]+", html)) == {"http://www.w3.org/2000/svg"}


def test_html_has_one_svg_per_plot_with_lines_and_accessible_titles() -> None:
    report = make_report()
    html = render_html(report)
    svgs = re.findall(r"<svg\b.*?</svg>", html, flags=re.S)
    n_checks = len(report.objectives[0].checks)
    # claims at a glance first, then the loss chart, a bar chart per check, one ROC chart
    assert len(svgs) == 1 + 1 + n_checks + 1
    assert "Claims at a glance" in svgs[0]
    for svg in svgs:
        assert re.search(r"<(polyline|path)\b", svg)
        assert re.search(r'<title id="[^"]+">[^<]+</title>', svg)
        assert 'role="img"' in svg
    loss = next(s for s in svgs if "forget and retain loss" in s)
    # forget breaks at the missing step (a line, then a lone point), retain is one line
    assert loss.count("<polyline") == 2 and loss.count("<circle") == 1
    assert "training step" in loss and "stop bound 3.8" in loss
    roc = next(s for s in svgs if "membership ROC" in s)
    assert roc.count("<polyline") == 3 and "chance" in roc and "false positive rate" in roc
    bars = next(s for s in svgs[1:] if "verbatim_rouge@relearn" in s)
    assert "threshold ≤ 0.3" in bars and "compared: attacked" in bars


def test_svg_text_is_escaped() -> None:
    r = result("<b>x</b>", "m<i>", "<=", 0.5, unlearned=0.2, extra=roc_extra())
    for chart in (plots.check_bars(r), plots.roc_chart(r)):
        assert chart is not None
        svg = render_chart(chart)
        assert "<b>" not in svg and "<i>" not in svg and "&lt;b&gt;" in svg
        assert re.search(r'id="c-[A-Za-z0-9_-]+-title"', svg)


def test_nice_ticks_cover_the_range_with_round_steps() -> None:
    ticks = plots.nice_ticks(0.03, 0.87)
    assert ticks[0] <= 0.03 and ticks[-1] >= 0.87
    steps = {round(b - a, 9) for a, b in zip(ticks[:-1], ticks[1:], strict=True)}
    assert len(steps) == 1 and steps.pop() in {0.1, 0.2, 0.25, 0.5}
    assert plots.nice_ticks(2.0, 2.0)[0] < 2.0 < plots.nice_ticks(2.0, 2.0)[-1]


def test_curve_auc_matches_known_areas() -> None:
    assert plots.curve_auc([0.0, 1.0], [0.0, 1.0]) == pytest.approx(0.5)
    assert plots.curve_auc([0.0, 0.0, 1.0], [0.0, 1.0, 1.0]) == pytest.approx(1.0)
    assert plots.curve_auc([0.5], [1.0]) == pytest.approx(0.75)  # ends are added


# --- files -----------------------------------------------------------------------------------------

def test_write_reports_writes_three_files_atomically(tmp_path: Path) -> None:
    report = make_report()
    out = tmp_path / "run" / "report"
    paths = write_reports(report, out)
    assert sorted(p.name for p in out.iterdir()) == ["report.html", "report.json", "report.md"]
    assert Report.model_validate_json(paths["json"].read_text(encoding="utf-8")) == report
    assert paths["md"].read_text(encoding="utf-8") == render_markdown(report)
    # a rewrite replaces the files and leaves no temporary files behind
    write_reports(report, out)
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


def test_rendering_is_deterministic() -> None:
    assert render_html(make_report()) == render_html(make_report())
    assert render_markdown(make_report()) == render_markdown(make_report())


def test_utility_components_are_shown_per_model_in_md_and_html() -> None:
    comps = {"original": {"rouge_recall": 1.0, "verbatim_rouge": 1.0},
             "unlearned": {"rouge_recall": 0.9, "verbatim_rouge": 0.95},
             "reference": {"rouge_recall": 1.0, "verbatim_rouge": 1.0}}
    util = {"original": 1.0, "unlearned": 0.924, "reference": 1.0}
    results = passing_results() | {"retain_utility_drop@retain": result(
        "retain_utility_drop@retain", "retain_utility_drop", "<=", 2.0, unlearned=7.6, original=0.0, reference=0.0,
        extra={"components": comps, "utility": util, "unit": "percent drop from the original model"})}
    report = make_report(results=results)
    assert any(c.check_id == "retain_utility_drop@retain" for c in report.objectives[0].checks)
    md = render_markdown(report)
    section = md[md.index("### Side effects in detail"):md.index("### Compiler findings")]
    assert "| Component | original | unlearned | retrained reference |" in section
    assert "| answers: ROUGE-L recall of the greedy answer | 1 | 0.9 | 1 |" in section
    assert "| documents: verbatim ROUGE-L of the continuation (still reproduced) | 1 | 0.95 | 1 |" in section
    assert "| utility (harmonic mean of the above) | 1 | 0.924 | 1 |" in section
    html = render_html(report)
    assert "<h3>Side effects in detail</h3>" in html and '<td class="num">0.924</td>' in html
    # a report without utility checks has no such section
    assert "Side effects in detail" not in render_markdown(make_report())


def test_glance_figure_keeps_every_outcome_word_inside_its_width() -> None:
    """The outcome word at the end of each row ("inconclusive", "not evaluated") fits in the figure:
    its start plus its length at the figure's 11 px (about 0.6 em a character, a generous average for
    sans-serif) stays within the SVG's width, and no row's marks leave the plotting area."""
    svg = re.findall(r"<svg\b.*?</svg>", render_html(make_report()), flags=re.S)[0]
    width = float(re.search(r'width="([0-9.]+)"', svg).group(1))  # type: ignore[union-attr]
    words = re.findall(r'<text x="([0-9.]+)"[^>]*font-size="11">([^<]+)</text>', svg)
    assert words
    for x, word in words + [("0", "inconclusive"), ("0", "not evaluated")]:
        if x == "0":  # the longest words, placed where the others are
            x = words[0][0]
        assert float(x) + len(word) * 11 * 0.6 <= width, (x, word, width)
    marks = [float(v) for v in re.findall(r'<circle cx="([0-9.]+)"', svg)]
    assert marks and max(marks) < float(words[0][0])


def test_the_report_shows_the_prompt_format_and_escapes_the_system_prompt() -> None:
    from unlearnspec.report.model import PromptInfo

    report = make_report()
    assert "Prompt format" not in render_markdown(report)  # a report built without one says nothing about it
    sha = "ab" * 32
    obj = report.objectives[0].model_copy(update={"prompt": PromptInfo(
        prompt_format="chat", chat_template_sha256=sha, system="Be <b>brief</b> | `terse`")})
    chat = report.model_copy(update={"objectives": [obj]})
    md, html = render_markdown(chat), render_html(chat)
    row = next(line for line in md.splitlines() if line.startswith("| Prompt format |"))
    assert sha in row and "chat template" in row and "<b>" not in row
    assert sha in html and "&lt;b&gt;brief&lt;/b&gt;" in html and "<b>brief" not in html
    assert json.loads(chat.model_dump_json())["objectives"][0]["prompt"]["system"] == "Be <b>brief</b> | `terse`"
    plain = report.model_copy(update={"objectives": [obj.model_copy(update={"prompt": PromptInfo(
        prompt_format="plain")})]})
    assert "| Prompt format | plain" in render_markdown(plain)


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_numbers_read_as_python_rounds_them_and_never_as_negative_zero(x: float) -> None:
    from unlearnspec.report.verdict import fmt_number

    shown = fmt_number(x)
    assert shown != "-0"
    assert float(shown) == float(f"{x:.3g}")  # the same value as Python's own three-digit rounding
    assert fmt_number(-0.0) == "0" and fmt_number(None) == "n/a"


def test_membership_is_shown_for_every_item_type_and_attack_with_counts_and_outcome() -> None:
    # FRAMEWORK.md §7: decide on the worst type *and show every type*
    by_type = {"documents": {"loss": {"gap": 0.39, "low": 0.05, "high": 0.7, "n": 6, "n_other": 12,
                                      "status": "straddles"}},
               "qa": {"min_k": {"gap": -0.34, "low": -0.55, "high": -0.15, "n": 20, "n_other": 26,
                                "status": "beyond"}}}
    aucs = {"documents": {"loss": {"original": 1.0, "unlearned": 0.82, "reference": 0.43}},
            "qa": {"min_k": {"original": 0.9, "unlearned": 0.14, "reference": 0.48}}}
    rs = passing_results()
    rs["membership_auc@forget"] = result(
        "membership_auc@forget", "membership_auc", "<=", 0.60, unlearned=0.82, original=1.0, reference=0.43,
        extra={"gap_by_type": by_type, "auc_by_type": aucs, "deciding_type": "documents", "deciding_attack": "loss",
               "compared_with": "retrained reference", "pair_confidence": 1 - 0.05 / 2, "pairs": 2},
        decision=Decision(quantity="worst |AUC − AUC_reference| over item types and attacks", value=0.39,
                          interval=(0.15, 0.7), threshold=Threshold(op="<=", value=0.1), n=6),
        interval={"unlearned": (0.5, 1.0)}, n={"unlearned": 6}, confidence=0.95)
    report = make_report(results=rs)
    md = render_markdown(report)
    assert "### Membership in detail" in md and "tolerance 0.1 either side, each interval at 97.50%:" in md
    # each attack by its catalog label, which the report's glossary defines
    # the deciding pair's AUCs are the check's own: with their interval where it has one; the others are context
    assert (f"| ▶ documents | {MEMBERSHIP_ATTACKS['loss'].label} | 1 | 0.82 [0.5, 1], n=6 | 0.43 | 0.39 [0.05, 0.7] | "
            "6 / 12 | undecided |") in md
    assert "the others are point values, for context (report.json records no interval for them)" in md
    assert (f"| qa | {escape(MEMBERSHIP_ATTACKS['min_k'].label)} | 0.9 | 0.14 | 0.48 | -0.34 [-0.55, -0.15] | 20 / 26 | "
            "beyond the tolerance |") in md
    page = render_html(report)
    assert "Membership in detail" in page and "<td class=\"num\">20 / 26</td>" in page


def _glossary_entries(md: str) -> dict[str, str]:
    """``- **term**: meaning`` lines of the report's glossary, unescaped."""
    section = md[md.index("## Terms used in this report"):]
    entries = {}
    for line in section.splitlines():
        if line.startswith("- **"):
            term, _, meaning = line[4:].partition("**: ")
            entries[term.replace("\\", "")] = meaning.replace("\\", "")
    return entries


def test_the_glossary_defines_every_metric_and_attack_the_report_names_with_its_source() -> None:
    """A reader who is not a statistician finds every metric label of the evidence table and every attack of
    the membership table defined at the end, with the source the catalog gives (FRAMEWORK.md §5)."""
    rs = passing_results()
    rs["membership_auc@forget"] = result(
        "membership_auc@forget", "membership_auc", "<=", 0.60, unlearned=0.55, original=1.0, reference=0.5,
        extra={"gap_by_type": {"qa": {"zlib": {"gap": 0.05, "low": -0.02, "high": 0.08, "n": 20, "n_other": 40,
                                               "status": "within"}}},
               "auc_by_type": {"qa": {"zlib": {"original": 1.0, "unlearned": 0.55, "reference": 0.5}}},
               "compared_with": "retrained reference"})
    report = make_report(results=rs)
    md, page = render_markdown(report), render_html(report)
    entries = _glossary_entries(md)
    shown = {c.metric for o in report.objectives for c in o.checks}
    for name in shown:
        m = METRICS[name]
        assert entries[m.label].startswith(m.summary) and f"Source: {m.source}." in entries[m.label], name
        assert f"<dt>{escape(m.label)}</dt>" in page
    for a in MEMBERSHIP_ATTACKS.values():  # every attack is run on every type, so every one is defined
        assert entries[a.label].startswith(a.summary) and a.source in entries[a.label]
    for t in TERMS:
        assert t.term in entries and f"<dt>{escape(t.term)}</dt>" in page
    defined = {METRICS[n].label for n in shown} | {a.label for a in MEMBERSHIP_ATTACKS.values()} | {t.term for t in TERMS}
    assert set(entries) == defined  # nothing else, and nothing twice under another name
    # a report without a membership check lists no attacks
    quiet = passing_results()
    quiet.pop("membership_auc@forget", None)
    plain = _glossary_entries(render_markdown(make_report(results=quiet)))
    assert not {a.label for a in MEMBERSHIP_ATTACKS.values()} & set(plain)


def test_a_chart_draws_the_bound_where_the_gap_to_the_reference_puts_it() -> None:
    """A ROUGE check decided on its gap: the dashed line stands at the reference's value plus the bound, not at
    the spec's raw bound, so a passing bar is never drawn above its own line (and membership gets a band)."""
    from unlearnspec.report.plots import bound_lines, check_bars

    rouge = result("verbatim_rouge@forget", "verbatim_rouge", "<=", 0.20, unlearned=0.44, original=1.0,
                   reference=0.56, decision=_gap_decision(-0.12, (-0.28, 0.07), 0.2))
    assert bound_lines(rouge, "retrained reference") == ([pytest.approx(0.76)], "bound: retrained reference + 0.2")
    auc = result("membership_auc@forget", "membership_auc", "<=", 0.60, unlearned=0.82, original=1.0, reference=0.43,
                 decision=Decision(quantity="worst |AUC − AUC_reference| over item types and attacks", value=0.39,
                                   interval=(0.15, 0.7), threshold=Threshold(op="<=", value=0.1), n=6))
    band = bound_lines(auc)
    assert band is not None and band[0] == [pytest.approx(0.33), pytest.approx(0.53)] and "± 0.1" in band[1]
    plain = result("retain_utility_drop@retain", "retain_utility_drop", "<=", 2.0, unlearned=10.5, original=0.0)
    assert bound_lines(plain) == ([2.0], "threshold ≤ 2")
    chart = check_bars(auc, "t")
    assert chart is not None
    svg = render_chart(chart)
    assert svg.count('stroke-dasharray="6 4" />') == 2 + 1  # two lines of the band, and the legend's sample


def test_the_report_says_which_data_each_role_read_and_how_the_holdout_was_split() -> None:
    from unlearnspec.report.model import DataUse

    report = make_report()
    data = [DataUse(role="forget", sources=["data/jane-doe.jsonl"], records=26),
            DataUse(role="holdout", sources=["builtin:holdout"], records=104, calibration=40, evaluation=64,
                    calibration_stops_training=True)]
    report = report.model_copy(update={"objectives": [report.objectives[0].model_copy(update={"data": data})]})
    md, page = render_markdown(report), render_html(report)
    # the stopping rule reads the forget set's own loss: its row says so whenever the calibration half is used
    assert "| Forget set | `data/jane-doe.jsonl`, 26 records (its mean loss is also what the stopping rule read) |" \
        in md
    assert "| Holdout | `builtin:holdout`, 104 records (40 set when training stops; 64 are the non-members the " \
           "verdicts use) |" in md
    assert '<th scope="row">Holdout</th><td><code>builtin:holdout</code>, 104 records (40 set' in page
    assert "| Forget set |" not in render_markdown(make_report())  # a report without the facts shows no rows
    audit = [DataUse(role="holdout", sources=["h.jsonl"], records=10, calibration=5, evaluation=5)]  # no training
    shown = render_markdown(report.model_copy(update={"objectives": [
        report.objectives[0].model_copy(update={"data": audit})]}))
    assert "| Holdout | `h.jsonl`, 10 records (5 held apart, unused by this run; 5 are the non-members" in shown
    with_forget = [DataUse(role="forget", sources=["f.jsonl"], records=3), *audit]
    assert "| Forget set | `f.jsonl`, 3 records |" in render_markdown(report.model_copy(update={"objectives": [
        report.objectives[0].model_copy(update={"data": with_forget})]}))  # no stopping rule: nothing read it
    with pytest.raises(ValidationError):
        DataUse(role="forget", sources=["f.jsonl"], records=3, calibration=1, evaluation=2)  # only the holdout
    with pytest.raises(ValidationError):
        DataUse(role="holdout", sources=["h.jsonl"], records=3, calibration=2, evaluation=2)  # more than it holds
    with pytest.raises(ValidationError):
        DataUse(role="holdout", sources=["h.jsonl"], records=3, calibration=2)  # half a split
