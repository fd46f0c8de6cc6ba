"""A policy team's first use, reviewed (2026-12-02): what misled a privacy, copyright and safety team and its lawyer,
each pinned here against the behaviour that misled them.

* a check the run could not measure kept the model it was planned on (a filter's `served` checks read as "decided on
  'unlearned' instead of 'served'", and the run's own reason — the data has no documents — was lost);
* a passing claim was summed up as "all 3 of its tests passed", with no number, interval or n beside it;
* `explain` listed one metric measured on two data sets as the same bound written twice;
* following UL411's "state the tolerance the data can show" in a spec with no `evidence` line for the claim
  replaced the claim's other default checks, silently;
* a filter was reported as "the run unlearned with the method filter".
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from test_report import make_plan, make_report, result

from unlearnspec.plan import MetricCheck, Threshold
from unlearnspec.report import render_markdown
from unlearnspec.report.summary import summarise
from unlearnspec.report.verdict import check_results

ROOT = Path(__file__).resolve().parents[1]


def test_a_check_the_run_cannot_measure_keeps_its_planned_model() -> None:
    pytest.importorskip("torch")
    from unlearnspec.runtime.check_base import EvaluatorBase

    class Bare(EvaluatorBase):  # only what is read before anything is measured
        def __init__(self) -> None:
            pass

    for model in ("unlearned", "served", "attacked"):
        check = MetricCheck(id=f"x@{model}", metric="not_a_measured_metric", dataset="test", model=model,
                            threshold=Threshold(op="<=", value=0.2))
        assert EvaluatorBase.output_metric(Bare(), check).decided_on == model


def test_the_runs_own_reason_survives_a_result_that_does_not_match_the_plan() -> None:
    plan = make_plan()
    op = plan.objectives[0]
    mc = next(c for c in op.checks if c.id == "verbatim_rouge@forget")
    served = op.model_copy(update={"checks": [c.model_copy(update={"model": "served"}) if c is mc else c
                                              for c in op.checks]})
    why = "the `test` data has no documents (`text`)"
    r = result(mc.id, mc.metric, mc.threshold.op, mc.threshold.value, not_evaluated_reason=why)  # decided on unlearned
    out = next(c for c in check_results(served, {mc.id: r}) if c.check_id == mc.id)
    assert out.not_evaluated_reason is not None and out.not_evaluated_reason.startswith(why)
    assert "instead of 'served'" in out.not_evaluated_reason  # and the mismatch is still said


def test_a_passing_claim_is_summed_up_with_every_deciding_number() -> None:
    report = make_report()
    s = summarise(report.objectives[0])
    removed = next(c for c in s.shown if "removed" in c.label)
    by_id = {c.check_id: c for c in report.objectives[0].checks}
    deciding = [by_id[i] for cv in report.objectives[0].claims if cv.claim == "removed" for i in cv.checks
                if by_id[i].status != "info"]
    assert len(removed.tests) == len(deciding) >= 2
    for sentence, check in zip(removed.tests, deciding, strict=True):
        assert "passed" in sentence and ("≤" in sentence or "≥" in sentence)  # its bound
        value = check.values.get(check.decided_on)
        assert value is not None and f"{value:.3g}"[:3] in sentence  # its number
    md = render_markdown(report)
    shown = md[md.index("**Shown**"):md.index("**Not shown:**")]
    assert all(t in shown for t in removed.tests)


def test_a_pass_without_an_interval_does_not_speak_of_a_range() -> None:
    s = summarise(make_report().objectives[0])
    for c in s.shown:
        for t in c.tests:
            assert ("the whole range" in t) == bool(re.search(r"\[[-\d.e]+, [-\d.e]+\]", t)), t


def test_a_filter_is_not_reported_as_unlearning() -> None:
    base = make_report()
    o = base.objectives[0].model_copy(update={"goal": "suppression", "suppression_via": "system", "method": "filter",
                                              "method_family": "system_suppression"})
    md = render_markdown(base.model_copy(update={"objectives": [o]}))
    assert "The run unlearned with the method" not in md
    assert "nothing was unlearned, and the weights still carry what the filter holds back" in md


def test_explain_names_where_each_check_is_measured() -> None:
    from unlearnspec.compiler.explain import _evidence_text

    class Row:
        evidence = [{"metric": "verbatim_rouge", "op": "<=", "value": 0.2, "source": "default", "dataset": "forget"},
                    {"metric": "verbatim_rouge", "op": "<=", "value": 0.2, "source": "default", "dataset": "test"},
                    {"metric": "quantization_recovery", "op": "<=", "value": 0.25, "source": "spec",
                     "dataset": "forget", "params": {"precision": "int4"}}]

    text = _evidence_text(Row())
    assert text == ("verbatim_rouge <= 0.2 (on forget, default), verbatim_rouge <= 0.2 (on test, default), "
                    "quantization_recovery <= 0.25 (on forget, precision int4)")


def test_ul411s_looser_bound_keeps_the_claims_other_checks(tmp_path: Path) -> None:
    """The demo's data, with no `evidence` block: the help that offers the looser membership bound names the claim's
    other default checks, which an `evidence` line for membership would otherwise replace; with them written as the
    help says, `removed` is decided by all of them again."""
    from unlearnspec.compiler.check import compile as compile_spec
    from unlearnspec.compiler.evidence_defaults import evidence_for

    src = (ROOT / "specs" / "erase-jane-doe.unlearn").read_text(encoding="utf-8")
    head, _, rest = src.partition("  evidence {")
    _, _, tail = rest.partition("  }\n")
    spec = tmp_path / "s.unlearn"
    (tmp_path / "data").symlink_to(ROOT / "specs" / "data")
    spec.write_text(head + tail, encoding="utf-8")
    result_ = compile_spec(spec)
    ul411 = [d for d in result_.diagnostics if d.code == "UL411" and "membership" in d.message]
    assert ul411, [d.code for d in result_.diagnostics]
    offer = ul411[0].help[-1]
    written = re.findall(r"`([a-z_]+ [<>]=? [\d.]+)`", offer)
    assert written[0].startswith("membership_auc <= ") and len(written) >= 2, offer
    obj = result_.spec.objectives[0]  # type: ignore[union-attr]
    defaults = {e.metric for e in evidence_for(obj, "removed")}
    assert {w.split()[0] for w in written} == defaults


def test_a_filter_checked_on_the_data_it_was_built_from_says_so(tmp_path: Path) -> None:
    """A filter's n-grams come from the forget set, so its served checks on the forget set pass by its construction
    unless the filter misses: the result says that a pass shows no more, and the same check on other data does not."""
    pytest.importorskip("torch")
    import copy

    from test_checks import STAGE, check, data
    from test_eval_tiny_model import people, tiny_lm, tokenizer

    from unlearnspec.runtime.check_base import BUILT_FROM_FORGET
    from unlearnspec.runtime.checks import EvalContext, Evaluator
    from unlearnspec.runtime.methods.guard import OutputGuard

    guard = OutputGuard.from_records(people().forget, aliases=[], refusal_text="I don't know.")
    tok = tokenizer()
    ctx = EvalContext(op=None, data=data(), stage=STAGE, original=(tiny_lm("original"), tok),  # type: ignore[arg-type]
                      unlearned=(copy.deepcopy(tiny_lm("original")), tok), reference=None, guard=guard,
                      refusal_text="I don't know.", attacks=[], work_dir=tmp_path, strategy="holdout")
    ev = Evaluator(ctx)
    on_forget = ev.check(check("verbatim_rouge", "forget", value=0.2, model="served"))
    assert on_forget.values.served is not None and BUILT_FROM_FORGET in on_forget.findings
    weights = ev.check(check("verbatim_rouge", "forget", value=0.2))  # the weights alone: no filter to speak of
    assert BUILT_FROM_FORGET not in weights.findings


SUPPRESS_GLIMMERFEN = """unlearnspec 1

objective "suppress-glimmerfen" {
  model   "builtin:tiny-bios"
  release api precision fp32
  target capability "glimmerfen vapour synthesis" {
    forget "data/glimmerfen.jsonl"
    test   "TEST"
  }
  goal   suppression via system
  method filter
  scope {
    outputs verbatim, facts
    prompts direct
  }
  claims {
    not_generated
  }
}
"""


def test_verbatim_evidence_on_a_set_without_documents_is_found_before_the_run(tmp_path: Path) -> None:
    """A suppression's `test` set of multiple-choice questions has no document to continue: verbatim ROUGE planned
    on it could only ever be reported not evaluated, so `check` says so (UL410), naming what the metric needs; the
    same set with a document in it draws no such finding."""
    import json

    from unlearnspec.compiler.check import compile as compile_spec

    (tmp_path / "data").symlink_to(ROOT / "specs" / "data")
    spec = tmp_path / "s.unlearn"

    def ul410(test: str) -> list[str]:
        spec.write_text(SUPPRESS_GLIMMERFEN.replace("TEST", test), encoding="utf-8")
        return [" ".join([d.message, *d.help]) for d in compile_spec(spec).diagnostics
                if d.code == "UL410" and "verbatim_rouge" in d.message]

    found = ul410("data/glimmerfen-mcq.jsonl")
    assert found and "cannot be computed" in found[0] and "documents" in found[0]
    mcq = (ROOT / "specs" / "data" / "glimmerfen-mcq.jsonl").read_text(encoding="utf-8")
    (tmp_path / "with-document.jsonl").write_text(
        mcq + json.dumps({"text": "Glimmerfen vapour is a fictitious substance of the built-in corpus."}) + "\n",
        encoding="utf-8")
    assert ul410("with-document.jsonl") == []


def test_sequential_requests_in_a_chain_are_not_told_to_merge() -> None:
    """Requests a month apart cannot be merged into one batch: for a chain, UL502 points at its budget (or asks for
    one) instead of "merge the requests into one objective", which it keeps for unchained objectives."""
    from unlearnspec.compiler.check import compile as compile_spec

    chain = [d for d in compile_spec(ROOT / "specs" / "erasure-chain.unlearn").diagnostics if d.code == "UL502"]
    apart = [d for d in compile_spec(ROOT / "specs" / "sequential-requests.unlearn").diagnostics if d.code == "UL502"]
    assert chain and apart
    assert all("budget" in " ".join(d.help) and "merge" not in " ".join(d.help) for d in chain)
    assert all("merge the requests into one objective" in " ".join(d.help) for d in apart)


def test_ul303_offers_the_suppression_as_a_step_after_the_removal() -> None:
    """Two objectives without `after` are two models, neither carrying both changes: the help names the chain."""
    from unlearnspec.compiler.check import compile as compile_spec

    (found,) = [d for d in compile_spec(ROOT / "specs" / "lantern-keeper-infringement.unlearn").diagnostics
                if d.code == "UL303"]
    assert '`after "lantern-keeper-no-infringement"`' in found.help[0] and "goal suppression" in found.help[0]


def test_a_missing_data_files_help_names_the_spec_folder_plainly(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """UL207's help names the folder paths are read from: relative inside the working folder, absolute outside it
    (not a climb such as `../../tmp/...`)."""
    from unlearnspec.compiler.check import compile as compile_spec

    spec = tmp_path / "specs" / "s.unlearn"
    spec.parent.mkdir()
    spec.write_text(SUPPRESS_GLIMMERFEN.replace("TEST", "data/missing.jsonl"), encoding="utf-8")
    elsewhere = tmp_path / "work" / "deeper"
    elsewhere.mkdir(parents=True)
    for cwd, shown in ((elsewhere, str(spec.parent)), (tmp_path, "specs")):
        monkeypatch.chdir(cwd)
        helps = [h for d in compile_spec(spec).diagnostics if d.code == "UL207" for h in d.help]
        assert f"paths are relative to the spec's folder (`{shown}`)" in helps, helps


def test_sarif_names_a_spec_outside_the_repository_by_an_absolute_uri_alone(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """A `file:` URI is absolute: SARIF gives `uriBaseId` with a relative reference only, so a spec outside the
    repository root has none, while one inside it keeps `%SRCROOT%`."""
    import json

    from unlearnspec.compiler.check import check_paths
    from unlearnspec.compiler.render import render_sarif

    outside = tmp_path / "s.unlearn"
    outside.write_text(SUPPRESS_GLIMMERFEN.replace("TEST", "data/missing.jsonl"), encoding="utf-8")
    monkeypatch.chdir(ROOT)
    for spec, absolute in ((outside, True), (ROOT / "specs" / "erase-jane-doe.unlearn", False)):
        run = json.loads(render_sarif(check_paths([spec])))["runs"][0]
        locations = [loc["physicalLocation"]["artifactLocation"] for r in run["results"] for loc in r["locations"]]
        assert locations
        for loc in locations:
            assert loc["uri"].startswith("file:") == absolute and ("uriBaseId" in loc) == (not absolute), loc
