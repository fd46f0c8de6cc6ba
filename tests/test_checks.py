"""From models to evidence: the Evaluator decides each kind of check on real (tiny) models.

``original`` is trained on the forget and retain people, ``reference`` on the retain people only (an
exact retraining), so using the reference as the "unlearned" model is what perfect removal looks like,
and using a copy of the original is what an unlearning run that removed nothing looks like.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from unlearnspec.catalog import ADVERSARIAL_TEMPLATES, MEMBERSHIP_ATTACKS
from unlearnspec.plan import EvaluateStage, MetricCheck, QuantizeAttack, RelearnAttack, Threshold
from unlearnspec.runtime.checks import MIN_FORGOTTEN, DataBundle, EvalContext, Evaluator, Measurer, compute
from unlearnspec.runtime.evaluation import intervals, joint_intervals, mia

try:  # pytest puts tests/ on sys.path (rootdir-relative "prepend" import mode)
    from test_eval_tiny_model import _one_torch_thread, people, tiny_lm, tokenizer  # noqa: F401
except ImportError:  # tests/ imported as a package
    from tests.test_eval_tiny_model import _one_torch_thread, people, tiny_lm, tokenizer  # noqa: F401

STAGE = EvaluateStage(max_new_tokens=8, eval_batch_size=16)
RELEARN = RelearnAttack(steps=2, learning_rate=1e-4, batch_size=2)


def data(*, neighbors: bool = True, attribute: str | None = "birth_city") -> DataBundle:
    p = people()
    return DataBundle(forget=p.forget, retain=p.retain[:8], neighbors=p.retain[8:] if neighbors else [],
                      holdout=p.holdout, test=[], attribute=attribute)


def evaluator(unlearned: Any, tmp_path: Path, *, reference: bool = True, bundle: DataBundle | None = None,
              attacks: list[RelearnAttack | QuantizeAttack] | None = None) -> Evaluator:
    tok = tokenizer()
    ctx = EvalContext(op=None,  # type: ignore[arg-type]  # only compute() without explicit checks reads it
                      data=bundle or data(), stage=STAGE, original=(tiny_lm("original"), tok),
                      unlearned=(unlearned, tok), reference=(tiny_lm("reference"), tok) if reference else None,
                      guard=None, refusal_text="I don't know.", attacks=attacks or [], work_dir=tmp_path,
                      strategy="retrain" if reference else "holdout")
    return Evaluator(ctx)


def check(metric: str, dataset: str = "forget", op: str | None = "<=", value: float = 0.5,
          **kw: Any) -> MetricCheck:
    threshold = Threshold(op=op, value=value) if op else None  # type: ignore[arg-type]
    return MetricCheck(id=f"{metric}@{dataset}", metric=metric, dataset=dataset, threshold=threshold, **kw)


def test_removal_shows_in_output_membership_and_quality_checks(tmp_path: Path) -> None:
    ev = evaluator(tiny_lm("reference"), tmp_path)  # perfect removal: the unlearned model is the retrained one
    knowledge = ev.check(check("knowledge_rouge", value=0.05))  # the answers are the birth cities
    assert knowledge.values.original is not None and knowledge.values.original > 0.95
    assert knowledge.values.unlearned == knowledge.values.reference
    assert knowledge.values.unlearned is not None and knowledge.values.unlearned < knowledge.values.original - 0.3
    # a gap of exactly 0, and the original's gap (1 on each of the six questions, whose distribution-free interval
    # reaches down to about 0.08) is shown beyond 0.05: the positive control. Beyond 0.6, six items cannot show it
    assert knowledge.status == "pass"
    loose = ev.check(check("knowledge_rouge", value=0.6))
    assert loose.status == "inconclusive" and "no positive control" in str(loose.decision and loose.decision.cannot_pass)
    assert len(knowledge.item_ids) == len(people().forget) and knowledge.item_ids[0] == "forget[0]:direct"
    verbatim = ev.check(check("verbatim_rouge", value=0.8))  # the documents are mostly template
    assert verbatim.values.unlearned is not None and verbatim.values.original is not None
    assert verbatim.values.unlearned <= verbatim.values.original
    assert set(verbatim.per_item) == {"original", "unlearned", "reference"}
    auc = ev.check(check("membership_auc", value=0.7))
    assert auc.values.original is not None and auc.values.original > 0.9
    assert auc.values.unlearned == auc.values.reference
    assert auc.values.unlearned is not None and auc.values.unlearned < auc.values.original
    # six members against six non-members per type: not even the original (AUC 1 against the reference's 0.56) is
    # shown beyond the tolerance once the twelve pairs hold together, so the measurement has no positive control and
    # the reference's own weights cannot pass it (FRAMEWORK.md §7: a bound that cannot fail is no evidence)
    assert auc.status == "inconclusive" and auc.decision is not None
    assert "no positive control" in str(auc.decision.cannot_pass) and "no power: no positive control" in auc.findings[0]
    # the same weights: every gap is 0 on every item there is, not an estimate (the bootstrap would be no wider)
    assert auc.decision is not None and auc.decision.interval == (0.0, 0.0) and "same weights" in auc.decision.how
    assert set(auc.extra["roc"]) == {"original", "unlearned", "reference"}  # type: ignore[arg-type]
    fq = ev.check(check("forget_quality", op=">=", value=0.05))
    assert fq.values.unlearned == 1.0 and fq.passed is True  # identical per-item statistics: KS p = 1
    assert "retrained reference" in str(fq.extra["compared_with"])


def test_a_question_asked_through_every_adversarial_template_counts_once(tmp_path: Path) -> None:
    """Six wrappers around one question are six prompts but one item: n counts questions, every prompt is kept
    per item, and the interval resamples questions (compared with the same values with each prompt its own
    item, which is narrower)."""
    ev = evaluator(tiny_lm("original"), tmp_path)
    adv = ev.check(check("adversarial_rouge", op=None))
    questions = sum(1 for r in people().forget if r.is_qa)
    templates = len(ADVERSARIAL_TEMPLATES)
    assert adv.n["unlearned"] == questions and len(adv.item_ids) == questions * templates
    assert adv.item_ids[0].endswith(":" + ADVERSARIAL_TEMPLATES[0])
    values = adv.per_item["unlearned"]
    flat = intervals.mean_estimate(values, rng=np.random.default_rng(0), bounds=intervals.UNIT)
    low, high = adv.interval["unlearned"]
    assert flat is not None and flat.n == questions * templates and high - low > flat.high - flat.low
    assert adv.values.unlearned == pytest.approx(float(np.mean(values)))
    # with a bound (a gap to the reference), and with intervals off as in bench/, n still counts questions
    bounded = ev.check(check("adversarial_rouge", value=0.2))
    assert bounded.decision is not None and bounded.decision.n == questions
    ev.ctx.intervals = False
    bare = ev.check(check("adversarial_rouge", value=0.2))
    assert bare.decision is not None and bare.decision.n == questions and bare.n["unlearned"] == questions


def test_each_adversarial_template_is_decided_on_its_own_the_worst_deciding(tmp_path: Path) -> None:
    """The adversarial probe on the tiny models: each template's gap to the reference is recomputed here from the
    per-prompt values, the decision is the worst template's (every template shown), and its interval is at the
    Bonferroni level over the templates."""
    ev = evaluator(copy.deepcopy(tiny_lm("original")), tmp_path)
    r = ev.check(check("adversarial_rouge", value=0.2))
    d = r.decision
    assert d is not None and "worst over templates" in d.quantity and "Bonferroni over the templates" in d.how
    tmpl = [i.rsplit(":", 1)[1] for i in r.item_ids]
    gaps = {t: float(np.mean([u - ref for u, ref, k in zip(r.per_item["unlearned"], r.per_item["reference"], tmpl,
                                                             strict=True) if k == t]))  # type: ignore[operator]
            for t in ADVERSARIAL_TEMPLATES}
    for t, g in gaps.items():
        assert f"{t} {g:.3g}" in d.how
        assert r.extra["by_templates"][t]["unlearned"] == pytest.approx(  # type: ignore[index]
            float(np.mean([u for u, k in zip(r.per_item["unlearned"], tmpl, strict=True) if k == t])))  # type: ignore[arg-type]
    shown = next(t for t in gaps if f"those of {t}" in d.how)
    assert d.value == pytest.approx(gaps[shown]) and d.n == sum(1 for x in people().forget if x.is_qa)


def test_a_pooled_pass_over_templates_is_a_fail_when_one_template_leaks(tmp_path: Path) -> None:
    """The reviewer's case in numbers: one template recalls half the answer on 80% of 120 questions, five recall
    nothing. Pooled, the gap is 0.067 with an interval under the 0.2 bound (a pass); per template, the leaking one
    (0.4) is wholly beyond it at the Bonferroni level, so the check fails, and the original (which leaks alike) is
    its positive control."""
    from unlearnspec.report.model import three_valued
    from unlearnspec.runtime.measure import Series

    ev = evaluator(copy.deepcopy(tiny_lm("original")), tmp_path)
    n, templates = 120, list(ADVERSARIAL_TEMPLATES)
    ids = [f"forget[{i}]:{t}" for i in range(n) for t in templates]
    groups = [f"forget[{i}]" for i in range(n) for _ in templates]
    types = [t for _ in range(n) for t in templates]
    leaky = [0.5 if t == templates[0] and i < 0.8 * n else 0.0 for i in range(n) for t in templates]
    series = {"original": leaky, "unlearned": leaky, "reference": [0.0] * len(ids)}
    ev._output_series = lambda who, c: Series(ids, list(series[who]), groups, types, "templates")  # type: ignore[method-assign]
    c = check("adversarial_rouge", value=0.2)
    per = {who: ev._output_series(who, c) for who in series}
    pooled = ev._gap_decision(c, per, "unlearned")
    assert pooled is not None and pooled.value == pytest.approx(0.5 * 0.8 / len(templates))
    assert three_valued(pooled.threshold, pooled.value, pooled.interval) is True  # what the pool used to decide
    r = ev.check(c)
    assert r.status == "fail" and r.decision is not None and r.decision.value == pytest.approx(0.5 * 0.8)
    assert f"those of {templates[0]}" in r.decision.how and r.decision.cannot_pass is None
    assert r.decision.interval is not None and r.decision.interval[0] > 0.2


def test_an_output_check_without_a_positive_control_cannot_pass(tmp_path: Path) -> None:
    """A knowledge ROUGE gap within its bound is evidence only if the original model, which holds the target, is
    beyond the bound on the same items: otherwise no model could fail it (FRAMEWORK.md §7). With an "original" that
    never learned the forget people (the reference itself), the perfect-removal model's exact gap of 0 is
    inconclusive, and says why; a model that leaks still fails (a fail needs no control)."""
    def with_original(unlearned: Any, original: Any) -> Evaluator:
        ev = evaluator(unlearned, tmp_path)
        ev.m["original"] = Measurer("original", original, tokenizer(), ev.ctx.data, STAGE,
                                    refusal_text="I don't know.", fmt=ev.ctx.fmt)
        return ev

    c = check("knowledge_rouge", value=0.05)  # six questions can show the original's gap of 1 beyond 0.05
    control = evaluator(tiny_lm("reference"), tmp_path).check(c)
    assert control.status == "pass" and control.findings == []  # the real original is beyond the bound
    blind = with_original(tiny_lm("reference"), tiny_lm("reference")).check(c)
    assert blind.decision is not None and blind.decision.interval == (0.0, 0.0)  # the same gap as the control's
    assert blind.values.original == blind.values.reference and blind.status == "inconclusive"
    assert "no positive control" in str(blind.decision.cannot_pass) and blind.decision.more_items is None
    assert [f for f in blind.findings if f.startswith("no power: no positive control")]
    leaking = with_original(copy.deepcopy(tiny_lm("original")), tiny_lm("reference")).check(c)
    assert leaking.status == "fail" and leaking.decision is not None and leaking.decision.cannot_pass is not None
    # without a reference the bound is on the value itself, and the same rule holds
    ev = evaluator(tiny_lm("reference"), tmp_path, reference=False)
    ev.m["original"] = Measurer("original", tiny_lm("reference"), tokenizer(), ev.ctx.data, STAGE,
                                refusal_text="I don't know.", fmt=ev.ctx.fmt)
    alone = ev.check(c)
    assert alone.status == "inconclusive" and "no positive control" in str(alone.decision and alone.decision.cannot_pass)


def test_a_model_far_below_the_reference_gets_an_over_unlearning_finding(tmp_path: Path) -> None:
    """An untrained model reproduces none of the forget documents, which a model retrained without them
    still mostly reproduces (the documents share a template): the gap below the reference is a tell, reported as
    a finding (FRAMEWORK.md §7). On these templated documents the original is no further above the reference than
    the bound either, so the check has no positive control and cannot pass."""
    ev = evaluator(tiny_lm("fresh"), tmp_path)
    r = ev.check(check("verbatim_rouge", value=0.1))
    u, ref = r.per_item["unlearned"], r.per_item["reference"]
    gap = sum(a - b for a, b in zip(u, ref, strict=True) if a is not None and b is not None) / len(u)  # type: ignore[operator]
    assert r.decision is not None and r.decision.value == pytest.approx(gap)
    assert r.decision.interval is not None and r.decision.interval[1] < -0.1  # wholly beyond the tolerance, below
    assert [f for f in r.findings if f.startswith("over-unlearning: the unlearned model's verbatim ROUGE-L")
            and f", n={r.decision.n}," in f]
    o, ref = r.per_item["original"], r.per_item["reference"]
    gap_o = float(np.mean([a - b for a, b in zip(o, ref, strict=True)]))  # type: ignore[operator]
    assert gap_o < 0.1 and r.status == "inconclusive" and "no positive control" in str(r.decision.cannot_pass)
    same = evaluator(tiny_lm("reference"), tmp_path).check(check("verbatim_rouge", value=0.1))
    assert same.decision is not None and same.decision.value == 0.0
    assert [f for f in same.findings if f.startswith("no power:")] and same.status == "inconclusive"


def test_utility_drop_is_relative_to_the_original_and_keeps_its_components(tmp_path: Path) -> None:
    ev = evaluator(copy.deepcopy(tiny_lm("original")), tmp_path)
    drop = ev.check(check("retain_utility_drop", "retain", value=2.0))
    assert drop.values.original == 0.0 and drop.values.unlearned == 0.0 and drop.passed is True
    components = drop.extra["components"]
    assert isinstance(components, dict) and set(components) == {"original", "unlearned", "reference"}
    assert {"rouge_recall", "probability", "verbatim_rouge"} <= set(components["original"])  # type: ignore[arg-type]


def test_utility_drop_has_a_bootstrap_interval_over_records(tmp_path: Path) -> None:
    damaged = copy.deepcopy(tiny_lm("original"))  # the original with noise in its weights: less utility
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in damaged.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * 0.5 * p.std())
    ev = evaluator(damaged, tmp_path)
    drop = ev.check(check("retain_utility_drop", "retain", value=50.0))
    value = drop.values.unlearned
    assert value is not None and value > 0
    low, high = drop.interval["unlearned"]
    assert low <= value <= high and low < high  # records resampled: not a point
    assert drop.n["unlearned"] == len(ev.ctx.data.retain)
    # report.json keeps each component per record: the drop is recomputed from it with statistics.harmonic_mean
    import statistics

    def utility(who: str) -> float:
        cols = [[x for x in xs if x is not None] for name, xs in drop.per_item.items() if name.startswith(f"{who}.")]
        return statistics.harmonic_mean([sum(c) / len(c) for c in cols if c])

    assert len(drop.item_ids) == len(ev.ctx.data.retain)
    assert 100 * (utility("original") - utility("unlearned")) / utility("original") == pytest.approx(value)


def test_a_utility_gain_is_a_negative_drop_with_its_interval_not_a_zero(tmp_path: Path) -> None:
    damaged = copy.deepcopy(tiny_lm("original"))  # a weaker "original": the intact model gains utility on it
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in damaged.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * 0.5 * p.std())
    tok = tokenizer()
    ctx = EvalContext(op=None,  # type: ignore[arg-type]
                      data=data(), stage=STAGE, original=(damaged, tok), unlearned=(tiny_lm("original"), tok),
                      reference=(tiny_lm("reference"), tok), guard=None, refusal_text="I don't know.", attacks=[],
                      work_dir=tmp_path, strategy="retrain")
    drop = Evaluator(ctx).check(check("retain_utility_drop", "retain", value=2.0))
    utility = drop.extra["utility"]
    assert isinstance(utility, dict) and utility["unlearned"] > utility["original"] > 0
    expected = 100.0 * (utility["original"] - utility["unlearned"]) / utility["original"]
    value = drop.values.unlearned
    assert value is not None and value == pytest.approx(expected) and value < 0  # shown as the gain it is
    low, high = drop.interval["unlearned"]
    assert low < 0 and low <= value <= high  # the interval is not cut off at zero
    assert drop.passed is True  # a gain is within any tolerance on a drop


def test_recovery_is_not_evaluated_when_nothing_was_forgotten(tmp_path: Path) -> None:
    ev = evaluator(copy.deepcopy(tiny_lm("original")), tmp_path, attacks=[RELEARN])
    res = ev.check(check("relearn_recovery", "relearn", model="attacked", params={"steps": RELEARN.steps}))
    knowledge = res.extra["knowledge_rouge"]
    assert isinstance(knowledge, dict)
    assert knowledge["original"] - knowledge["unlearned"] < MIN_FORGOTTEN  # type: ignore[operator]
    # a recovery of 0 must not let robust_to_finetuning pass for a model that forgot nothing
    assert res.passed is None and res.status == "not_evaluated"
    assert res.not_evaluated_reason is not None and "nothing for the attack to recover" in res.not_evaluated_reason


def test_recovery_is_measured_when_knowledge_was_removed(tmp_path: Path) -> None:
    ev = evaluator(tiny_lm("reference"), tmp_path, attacks=[RELEARN])
    res = ev.check(check("relearn_recovery", "relearn", model="attacked", params={"steps": RELEARN.steps}))
    knowledge = res.extra["knowledge_rouge"]
    assert isinstance(knowledge, dict)
    assert knowledge["original"] - knowledge["unlearned"] >= MIN_FORGOTTEN  # type: ignore[operator]
    assert res.not_evaluated_reason is None and res.values.attacked is not None
    assert 0.0 <= res.values.attacked <= 1.0


STRONG_RELEARN = RelearnAttack(steps=4, learning_rate=1e-4, batch_size=2)  # more damages the fixture model (not evaluated)


def _recovery(k: dict[str, float], before: str, after: str) -> float:
    """attacks.recovery written out: the share of original − before that after has back, in [0, 1]."""
    lost = k["original"] - k[before]
    return 0.0 if abs(lost) < 1e-12 else (k[after] - k[before]) / lost  # signed, as measured


@pytest.mark.parametrize("unlearned", ["fresh", "reference"])
def test_relearning_is_judged_against_what_the_same_fine_tune_gives_the_reference(unlearned: str,
                                                                                   tmp_path: Path) -> None:
    """A fine-tune on the target's own records teaches its facts to a model never trained on them;
    the check is decided on the recovery above the retrained reference's after the same fine-tune
    (FRAMEWORK.md §7: reference-relative). The reference itself, as the unlearned model, has a gap of
    exactly 0 (the same weights and seed give the same fine-tune)."""
    ev = evaluator(tiny_lm(unlearned), tmp_path, attacks=[STRONG_RELEARN])
    res = ev.check(check("relearn_recovery", "relearn", model="attacked", params={"steps": STRONG_RELEARN.steps}))
    k = res.extra["knowledge_rouge"]
    assert isinstance(k, dict)
    rec_u, rec_r = _recovery(k, "unlearned", "attacked"), _recovery(k, "reference", "reference_attacked")
    assert res.values.attacked == pytest.approx(rec_u) and res.values.reference == pytest.approx(rec_r)
    assert str(res.extra["reference_note"]).startswith("the retrained reference fine-tuned on the same data")
    # the per-question knowledge of all five models is in per_item: the recoveries recomputed from it
    means = {who: sum(xs) / len(xs) for who, xs in res.per_item.items()}  # type: ignore[arg-type]
    assert set(means) == {"original", "unlearned", "attacked", "reference", "reference_attacked"}
    assert _recovery(means, "unlearned", "attacked") == pytest.approx(rec_u)
    assert _recovery(means, "reference", "reference_attacked") == pytest.approx(rec_r)
    d = res.decision
    assert d is not None and d.value == pytest.approx(rec_u - rec_r)
    o, u = k["original"], k["unlearned"]  # the attacked model's knowledge ranges over [0, 1]
    assert d.attainable == pytest.approx((-u / (o - u) - rec_r, (1 - u) / (o - u) - rec_r))
    assert d.interval is not None and d.interval[0] <= d.value <= d.interval[1]
    if unlearned == "reference":
        assert d.value == 0.0 and d.interval == (0.0, 0.0)
    # the reference's own recovery carries its sample size and interval too, like the attacked model's
    assert res.n["reference"] == res.n["attacked"] == d.n
    assert res.interval["reference"][0] <= rec_r <= res.interval["reference"][1]
    # pass only when the gap's interval lies below the bound and the gap could have exceeded it; fail when it lies
    # above; inconclusive otherwise
    bound = res.threshold.value if res.threshold is not None else 0.5
    could_fail = d.attainable is not None and d.attainable[1] > bound
    expected = ("pass" if d.interval[1] <= bound and could_fail else "fail" if d.interval[0] > bound
                else "inconclusive")
    assert res.status == expected
    # A bound the gap cannot exceed (at most (1 − u)/(o − u) − the reference's recovery) is no evidence
    most = (1 - u) / (o - u) - rec_r
    loose = ev.check(check("relearn_recovery", "relearn", model="attacked", value=most + 0.01,
                           params={"steps": STRONG_RELEARN.steps}))
    assert loose.status == "inconclusive" and loose.decision is not None and loose.decision.attainable is not None


def test_what_cannot_be_measured_says_why(tmp_path: Path) -> None:
    ev = evaluator(tiny_lm("reference"), tmp_path, reference=False, bundle=data(neighbors=False, attribute=None))
    results = compute(ev.ctx, [check("neighbor_utility_drop", "neighbors", value=2.0),
                               check("probe_accuracy_gap", value=0.1),
                               check("relearn_recovery", "relearn", model="attacked")])
    reasons = {cid: r.not_evaluated_reason for cid, r in results.items()}
    assert "no `neighbors` data" in str(reasons["neighbor_utility_drop@neighbors"])
    assert "no attribute to probe" in str(reasons["probe_accuracy_gap@forget"])
    assert "no relearning attack" in str(reasons["relearn_recovery@relearn"])
    assert all(r.status == "not_evaluated" for r in results.values())
    # without a reference model, forget quality is calibrated on the model's own holdout statistics
    fq = ev.check(check("forget_quality", op=">=", value=0.05))
    assert fq.not_evaluated_reason is None and "holdout" in str(fq.extra["compared_with"])


@pytest.mark.parametrize("unlearned", ["original", "reference"])
def test_quantization_recovery_follows_the_same_rule(tmp_path: Path, unlearned: str) -> None:
    model = copy.deepcopy(tiny_lm(unlearned))
    ev = evaluator(model, tmp_path, attacks=[QuantizeAttack(precision="int8")])
    res = ev.check(check("quantization_recovery", "forget", op="<=", value=0.25, model="attacked",
                         params={"precision": "int8"}))
    if unlearned == "original":
        assert res.status == "not_evaluated" and "nothing for the attack" in str(res.not_evaluated_reason)
    else:
        assert res.not_evaluated_reason is None and res.values.attacked is not None


def test_the_representation_probe_gap_has_items_an_interval_and_says_when_it_has_no_power(tmp_path: Path) -> None:
    """The probe's accuracy gap is a mean over the forget inputs of paired hits (probe right on this model,
    on the reference), so it carries n and an interval like every other number (FRAMEWORK.md §7); one probe per
    layer, each layer's gap at the Bonferroni level over the layers, the worst layer deciding; a probe that reads the
    attribute off the original no better than off the reference at any layer cannot show removal."""
    from unlearnspec.runtime.evaluation.representation import probe_layers

    ev = evaluator(tiny_lm("reference"), tmp_path)  # perfect removal
    r = ev.check(check("probe_accuracy_gap", value=0.1))
    acc, layers = r.extra["accuracy"], r.extra["layers"]
    assert isinstance(acc, dict) and isinstance(layers, dict)
    assert sorted(int(k) for k in layers) == list(probe_layers(tiny_lm("original").config.n_layer))
    assert str(r.extra["layer"]) in layers and r.extra["layer_confidence"] == pytest.approx(1 - 0.05 / len(layers))
    for who in ("original", "unlearned", "reference"):  # the per-item hits (deciding layer) are the probe's accuracy
        hits = r.per_item[who]
        assert all(h in (0.0, 1.0) for h in hits)
        assert sum(hits) / len(hits) == pytest.approx(acc[who])  # type: ignore[arg-type, operator]
        assert acc[who] == pytest.approx(layers[str(r.extra["layer"])]["accuracy"][who])  # type: ignore[index]
    for row in layers.values():  # each layer's gap is its accuracy difference, the reference's own gap none
        for who, g in row["gap"].items():  # type: ignore[index, union-attr]
            assert g["value"] == pytest.approx(row["accuracy"][who] - row["accuracy"]["reference"])  # type: ignore[index]
            assert g["low"] <= g["value"] <= g["high"]
    n = len(r.item_ids)
    assert n > 0 and r.n["unlearned"] == n and r.n["original"] == n
    gap_o = acc["original"] - acc["reference"]  # type: ignore[operator]
    assert r.values.original == pytest.approx(gap_o) and r.values.unlearned == 0.0
    low, high = r.interval["original"]
    assert low <= gap_o <= high
    assert r.decision is not None and r.decision.value == 0.0 and r.decision.n == n
    # the unlearned model is the reference itself (the same weights): the gap is 0 on every input there is,
    # so its interval is exactly [0, 0], not the distribution-free width n agreeing inputs would otherwise get
    assert r.decision.interval == (0.0, 0.0)
    powerless = [f for f in r.findings if f.startswith("no power:")]
    # no power exactly when the original, trained on the target, is not shown to exceed the bound at any layer
    best_low = max(row["gap"]["original"]["low"] for row in layers.values())  # type: ignore[index]
    assert bool(powerless) is (best_low <= 0.1)
    assert (r.decision.no_evidence is not None) is bool(powerless)
    assert r.status == ("inconclusive" if powerless else "pass")
    # a copy of the reference's weights is the reference too; the original's copy is not
    twin = evaluator(copy.deepcopy(tiny_lm("reference")), tmp_path)
    assert twin.unlearned_is_reference and not evaluator(copy.deepcopy(tiny_lm("original")),
                                                         tmp_path).unlearned_is_reference
    same = evaluator(copy.deepcopy(tiny_lm("original")), tmp_path).check(check("probe_accuracy_gap", op=None))
    assert same.status == "info" and same.decision is None
    gaps = {k: row["gap"]["unlearned"]["value"] for k, row in same.extra["layers"].items()}  # type: ignore[union-attr, index]
    assert same.values.unlearned == pytest.approx(max(gaps.values()))  # no bound: the layer of the largest gap shown
    assert same.values.unlearned == pytest.approx(same.values.original)  # a copy of the original: the original's gap
    # an "original" that never learned the people (an untrained model): the probe reads nothing off it either
    blind = evaluator(tiny_lm("reference"), tmp_path)
    blind.m["original"] = Measurer("original", tiny_lm("fresh"), tokenizer(), blind.ctx.data, STAGE,
                                   refusal_text="I don't know.", fmt=blind.ctx.fmt)
    b = blind.check(check("probe_accuracy_gap", value=0.1))
    assert max(row["gap"]["original"]["low"] for row in b.extra["layers"].values()) <= 0.1  # type: ignore[union-attr, index]
    assert [f for f in b.findings if f.startswith("no power:") and f"n={n};" in f]
    # every number with its sample size: the gap's n and each accuracy's (the same forget inputs)
    (said,) = [f for f in b.findings if f.startswith("no power:")]
    assert said.count(f"n={n}") == 3 and "on the original model, n=" in said and "on the reference, n=" in said


def test_the_probe_finding_quotes_the_attribute_as_a_code_span(tmp_path: Path) -> None:
    """The attribute is the spec's value: it is quoted with `markdown.code_span`, fenced to fit whatever it holds."""
    from unlearnspec.markdown import code_span

    odd = "birth`city"
    p = people()

    def renamed(records: list[Any]) -> list[Any]:
        return [r.model_copy(update={"attributes": {(odd if k == "birth_city" else k): v
                                                    for k, v in r.attributes.items()}}) for r in records]

    bundle = DataBundle(forget=renamed(p.forget), retain=renamed(p.retain[:8]), neighbors=renamed(p.retain[8:]),
                        holdout=p.holdout, test=[], attribute=odd)
    blind = evaluator(tiny_lm("reference"), tmp_path, bundle=bundle)
    blind.m["original"] = Measurer("original", tiny_lm("fresh"), tokenizer(), bundle, STAGE,
                                   refusal_text="I don't know.", fmt=blind.ctx.fmt)
    b = blind.check(check("probe_accuracy_gap", value=0.1))
    (said,) = [f for f in b.findings if f.startswith("no power:")]
    assert f"does not read {code_span(odd)} off the original model" in said
    assert code_span(odd) != f"`{odd}`"  # a plain pair of backticks would have closed inside the name
    missing = evaluator(tiny_lm("reference"), tmp_path, bundle=DataBundle(
        forget=p.forget, retain=p.retain[:8], neighbors=p.retain[8:], holdout=p.holdout, test=[], attribute=odd))
    assert f"carry no {code_span(odd)} attribute" in str(missing.check(check("probe_accuracy_gap")).not_evaluated_reason)
    assert b.status == "inconclusive" and b.decision is not None and b.decision.no_evidence is not None
    assert "no evidence" in b.decision.no_evidence and b.decision.more_items is None


def test_the_probe_gap_is_decided_on_the_worst_layer(tmp_path: Path) -> None:
    """A leak in one layer is not averaged away by the others: with the probe reading the attribute off a middle
    layer of the unlearned model only, the check fails on that layer (its Bonferroni interval wholly above the
    bound), and every layer is shown."""
    from unlearnspec.runtime.evaluation.representation import ProbeResult

    ev = evaluator(copy.deepcopy(tiny_lm("original")), tmp_path)
    labels = ["a"] * 30
    right, wrong = ["a"] * 30, ["b"] * 30

    def result(by_layer: dict[int, list[str]]) -> ProbeResult:
        return ProbeResult(0.0, 0.5, 60, 30, 2, 0, by_layer[2], labels, layer=2, by_layer=by_layer)

    fake = {"original": result({1: right, 2: right}), "unlearned": result({1: right, 2: wrong}),
            "reference": result({1: wrong, 2: wrong})}
    for who, res in fake.items():
        ev.m[who].representation = lambda attr, res=res: res  # type: ignore[method-assign]
    r = ev.check(check("probe_accuracy_gap", value=0.1))
    assert r.extra["layer"] == 1 and r.status == "fail"  # the last layer alone (gap 0) would pass
    d = r.decision
    assert d is not None and d.value == 1.0 and "layer 1 1" in d.how and "layer 2 0" in d.how
    assert d.interval is not None and d.interval[0] > 0.1
    assert r.extra["layers"]["2"]["gap"]["unlearned"]["value"] == 0.0  # type: ignore[index]


def test_forget_quality_fails_on_the_test_and_passes_only_on_its_interval(tmp_path: Path) -> None:
    """TOFU's forget quality is a KS p-value. Below its bound the test rejects at that level: a fail. At or above
    it the test merely found no difference, which is no evidence that there is none (FRAMEWORK.md §7), so the
    check passes only when the p-value's whole bootstrap interval lies at or above the bound, and only when the
    test tells the original model (trained on the target) from the reference."""
    from scipy import stats

    bound = Threshold(op=">=", value=0.05)
    removed = evaluator(tiny_lm("reference"), tmp_path).check(check("forget_quality", op=">=", value=0.05))
    kept = evaluator(copy.deepcopy(tiny_lm("original")), tmp_path).check(check("forget_quality", op=">=", value=0.05))
    for r in (removed, kept):
        assert r.decision is not None and r.decision.no_evidence is None and r.decision.interval is not None
        assert r.values.unlearned is not None and r.values.original is not None
        assert r.values.original < 0.05  # the positive control: the test rejects the original
    ratios = removed.per_item  # the per-item statistics the test compared, recomputed with scipy
    assert removed.values.unlearned == pytest.approx(stats.ks_2samp(ratios["unlearned"], ratios["reference"]).pvalue)
    # the same weights: every resample compares identical statistics, so the interval is [1, 1]
    assert removed.decision is not None and removed.decision.interval == (1.0, 1.0) and removed.status == "pass"
    assert kept.values.unlearned == kept.values.original and kept.decision is not None and kept.decision.rejects
    assert not bound.holds(kept.values.unlearned) and kept.status == "fail"
    # an "original" that is the reference itself: the test cannot tell a model holding the target from it
    blind = evaluator(tiny_lm("reference"), tmp_path)
    blind.m["original"] = Measurer("original", tiny_lm("reference"), tokenizer(), blind.ctx.data, STAGE,
                                   refusal_text="I don't know.", fmt=blind.ctx.fmt)
    b = blind.check(check("forget_quality", op=">=", value=0.05))
    assert b.values.original == 1.0 and b.status == "inconclusive"
    assert b.decision is not None and "does not tell the original model" in str(b.decision.no_evidence)


def test_a_p_value_above_its_bound_with_an_interval_below_it_is_inconclusive() -> None:
    """The reviewer's case from the README demo: p = 0.081 against 0.05 with an interval [2e-5, 0.48] used to
    pass on the point value. The interval straddles the bound: inconclusive. A rejection is a fail whatever its
    interval, and `rejects` may only mark a p-value below its bound."""
    from pydantic import ValidationError

    from unlearnspec.report.model import CheckResult, Decision

    bound = Threshold(op=">=", value=0.05)

    def result(p: float, low: float, high: float, rejects: bool) -> CheckResult:
        d = Decision(quantity="KS-test p-value", value=p, interval=(low, high), threshold=bound, rejects=rejects)
        return CheckResult(check_id="fq", metric="forget_quality", dataset="forget", threshold=bound,
                           values={"unlearned": p}, decision=d)

    assert result(0.0811, 1.95e-5, 0.484, False).status == "inconclusive"
    assert result(0.40, 0.06, 0.97, False).status == "pass"
    assert result(0.01, 1e-4, 0.30, True).status == "fail"
    with pytest.raises(ValidationError, match="rejects"):
        result(0.40, 0.06, 0.97, True)


def test_membership_pairs_hold_together_and_each_is_shown_with_its_counts_and_outcome(tmp_path: Path) -> None:
    """The worst of k (item type, attack) gaps decides, so the pairs' intervals are computed to hold together
    at 95%: one bootstrap of the items for all pairs, each interval at the level that makes them hold jointly
    (between 95%, for pairs that always agree, and Bonferroni's 1 - 0.05/k; test_stats.py pins both ends);
    each pair keeps its own interval, member and non-member counts and outcome, and the decision names the
    pairs beyond the tolerance."""
    ev = evaluator(copy.deepcopy(tiny_lm("original")), tmp_path)  # nothing removed: membership shows
    r = ev.check(check("membership_auc", value=0.6))
    by = r.extra["gap_by_type"]
    assert isinstance(by, dict)
    k = sum(len(v) for v in by.values())
    assert r.extra["pairs"] == k and k == len(by) * len(mia.ATTACKS)
    level = r.extra["pair_confidence"]
    assert isinstance(level, float) and 0.95 < level <= joint_intervals.bonferroni(0.95, k) + 0.002
    # the four attacks score the same items, so they move together: the joint level is well below Bonferroni's
    assert level < joint_intervals.bonferroni(0.95, k) - 0.005
    t = next(iter(by))
    a = "loss"
    sc = ev._membership_scores("forget", ev.ctx.stage.mink_fraction)
    um, un = sc["unlearned"]["member"][t][1][a], sc["unlearned"]["non"][t][1][a]
    rm, rn = sc["reference"]["member"][t][1][a], sc["reference"]["non"][t][1][a]
    alone = intervals.gap_of_aucs_estimate(um, un, rm, rn, mia.ATTACKS[a][1], rng=np.random.default_rng(0))
    pair = by[t][a]
    assert alone is not None and pair["gap"] == pytest.approx(alone.value)
    assert pair["high"] - pair["low"] >= (alone.high - alone.low) - 1e-9  # wider than one pair alone at 95%
    assert (pair["n"], pair["n_other"]) == (len(um), len(un))
    tol = 0.1
    for ty, row in by.items():
        for att, g in row.items():
            lo, hi = intervals.abs_interval(g["low"], g["high"])
            expect = "within" if hi <= tol else "beyond" if lo > tol else "straddles"
            assert g["status"] == expect, (ty, att)
    named = {st: [f"{ty.replace('_', ' ')} / {MEMBERSHIP_ATTACKS[att].label}" for ty, row in by.items()
                  for att, g in row.items()
                  if g["status"] == st] for st in ("beyond", "straddles", "within")}
    assert r.decision is not None and f"at {level:.2%}, the level at which all of them" in r.decision.how
    # the worst pair decides: fail when one pair is wholly beyond, pass when all are within
    assert r.status == ("fail" if named["beyond"] else "pass" if not named["straddles"] else "inconclusive")
    if named["beyond"]:
        assert f"beyond the tolerance: {', '.join(named['beyond'])}" in r.decision.how
    else:
        assert f"undecided: {', '.join(named['straddles'])}" in r.decision.how
    # 6 members against 6 non-members per type: even the original (every AUC 0.83-1 against the reference's
    # 0.5-0.61) is not shown beyond a 0.1 tolerance on all pairs at once, so the check does not fail it
    assert r.status == "inconclusive"
    # the pair shown as deciding is the one the outcome rests on: inconclusive, the one whose interval reaches
    # furthest from the reference (its headline AUCs, ROC and counts are that pair's)
    ends = {(ty, att): intervals.abs_interval(g["low"], g["high"])[1] for ty, row in by.items()
            for att, g in row.items()}
    deciding = (r.extra["deciding_type"], r.extra["deciding_attack"])
    assert ends[deciding] == max(ends.values()) and by[deciding[0]][deciding[1]]["status"] == "straddles"
    assert r.decision.n == by[deciding[0]][deciding[1]]["n"] and r.n["unlearned"] == r.decision.n


def test_privleak_counts_records_not_pooled_items(tmp_path: Path) -> None:
    """PrivLeak pools each record's document, question and paraphrase; its interval resamples records, and its
    n counts them (the forget records), not the pooled items."""
    ev = evaluator(copy.deepcopy(tiny_lm("original")), tmp_path)
    r = ev.check(check("privleak", value=50.0))
    forget = people().forget
    assert r.n["unlearned"] == len(forget)  # each record once, though it gives a document and a question
    assert sum(1 for x in forget if x.text) + sum(1 for x in forget if x.is_qa) > len(forget)
    low, high = r.interval["unlearned"]
    assert r.values.unlearned is not None and low <= r.values.unlearned <= high and low < high
    # the positive control: a value within the bound passes only where the original itself is shown beyond it — the
    # original's own check at that bound fails. (Whether the original over six records clears 10% depends on the
    # processor's rounding, so the test reads it from the original's check rather than assume it.)
    same = evaluator(tiny_lm("reference"), tmp_path).check(check("privleak", value=10.0))  # the reference itself
    assert same.values.unlearned == 0.0 and same.interval["unlearned"] == (0.0, 0.0)
    control = evaluator(copy.deepcopy(tiny_lm("original")), tmp_path).check(check("privleak", value=10.0))
    if control.status == "fail":
        assert same.status == "pass"
    else:
        assert same.status == "inconclusive"
        assert "no positive control" in str(same.decision and same.decision.cannot_pass)


def test_privleak_without_a_reference_resamples_records_too(tmp_path: Path) -> None:
    """Without a reference PrivLeak is taken against the ideal AUC 0.5; its interval still resamples records (n
    counts them), and it sits where MUSE's formula, written out here, puts the Min-K% AUC the run reports."""
    r = evaluator(copy.deepcopy(tiny_lm("original")), tmp_path, reference=False).check(check("privleak", value=50.0))
    forget = people().forget
    assert r.n["unlearned"] == len(forget) and r.extra["reference_basis"].startswith("ideal AUC 0.5")
    auc = r.extra["auc"]["unlearned"]
    assert r.values.unlearned == pytest.approx(100.0 * (0.5 - auc) / 0.5)
    low, high = r.interval["unlearned"]
    assert low <= r.values.unlearned <= high and low < high
    # an AUC in [0, 1] puts PrivLeak against chance in [-100, 100]
    assert low >= -100.0 and high <= 100.0


def test_privleak_over_a_single_member_is_not_evaluated_and_says_why(tmp_path: Path) -> None:
    """One forget record is no sample of the members' population; an AUC over it could be anything, and
    PrivLeak divides by 1 - AUC_reference, so no bounded interval exists: the check says so, not a number."""
    p = people()
    question = p.forget[0].model_copy(update={"text": None, "paraphrases": []})  # one item: its question
    one = DataBundle(forget=[question], retain=p.retain[:8], neighbors=[], holdout=p.holdout, test=[])
    r = evaluator(tiny_lm("reference"), tmp_path, bundle=one).check(check("privleak", value=10.0))
    assert r.status == "not_evaluated" and "single member or non-member" in str(r.not_evaluated_reason)


def test_at_release_precision_the_reference_is_quantized_alike(tmp_path: Path) -> None:
    """A check measured on the model as released (int8) compares it with the never-trained model released the
    same way: quantization moves both models' scores, and a full-precision reference would credit its effect to
    the unlearning. The gap is the quantized unlearned model's minus the quantized reference's, item by item."""
    from unlearnspec.runtime.attacks import quantize

    ev = evaluator(copy.deepcopy(tiny_lm("original")), tmp_path)
    res = ev.check(check("knowledge_rouge", op="<=", value=0.6, model="attacked", probe="quantize",
                         params={"precision": "int8"}))
    assert res.not_evaluated_reason is None, res.not_evaluated_reason
    assert res.extra["reference_precision"] == "int8"
    assert set(res.per_item) >= {"attacked", "reference_attacked"}
    # independently: the reference quantized by the same function, measured on the same items
    q_ref = quantize(tiny_lm("reference"), "int8")
    assert q_ref.evaluated and q_ref.backend == res.extra["backend"]
    measured = Measurer("q", q_ref.model, tokenizer(), data(), STAGE).knowledge("forget", "direct")
    assert res.per_item["reference_attacked"] == pytest.approx(measured.values)
    assert res.extra["reference_attacked"] == pytest.approx(np.mean(measured.values))
    assert res.decision is not None and "reference quantized to int8" in res.decision.quantity
    gaps = np.array(res.per_item["attacked"], dtype=float) - np.array(measured.values)
    assert res.decision.value == pytest.approx(float(np.mean(gaps)))


@pytest.mark.parametrize("documents", [40, 6])
def test_privleak_is_decided_on_the_worst_item_type_not_the_pool(tmp_path: Path, documents: int) -> None:
    """The reviewer's case: the unlearned model separates the target's documents from the holdout's completely
    while its 400 questions sit at chance. Pooled, MUSE's PrivLeak is a few percent and would pass |PrivLeak| <= 10;
    per type, the documents' PrivLeak is -100% and decides: over 40 documents the check fails, and every type is
    shown. Over six, the reference's AUC may reach 1 (where PrivLeak divides by 0), so the documents' PrivLeak
    cannot be bounded: the check cannot pass on the questions alone and is inconclusive, never a pass."""
    from sklearn.metrics import roc_auc_score

    from unlearnspec.runtime.measure import muse_privleak

    rng = np.random.default_rng(0)

    def typed(doc_m: Any, doc_n: Any, qa_m: Any, qa_n: Any) -> dict[str, Any]:
        def side(docs: Any, qas: Any, tag: str) -> dict[str, Any]:
            return {"documents": ([f"{tag}[{i}]" for i in range(len(docs))], {"min_k": docs}),
                    "qa": ([f"{tag}[{100 + i}]" for i in range(len(qas))], {"min_k": qas})}
        return {"member": side(doc_m, qa_m, "forget"), "non": side(doc_n, qa_n, "holdout")}

    # higher min_k score = member (the catalog's direction for Min-K%)
    higher = mia.ATTACKS["min_k"][1]
    sign = 1.0 if higher else -1.0
    unlearned = typed(sign * (5 + rng.normal(size=documents)), sign * rng.normal(size=documents),
                      rng.normal(size=400), rng.normal(size=400))
    reference = typed(rng.normal(size=documents), rng.normal(size=documents), rng.normal(size=400),
                      rng.normal(size=400))
    ev = evaluator(copy.deepcopy(tiny_lm("original")), tmp_path)
    scores = {"original": unlearned, "unlearned": unlearned, "reference": reference}
    ev._membership_scores = lambda dataset, k: scores  # type: ignore[method-assign]
    r = ev.check(check("privleak", value=10.0))

    def leak(t: str, pool: bool = False) -> float:
        def auc(d: dict[str, Any]) -> float:
            kinds = ["documents", "qa"] if pool else [t]
            m = np.concatenate([d["member"][k][1]["min_k"] for k in kinds])
            n = np.concatenate([d["non"][k][1]["min_k"] for k in kinds])
            return float(roc_auc_score(np.r_[np.ones(len(m)), np.zeros(len(n))], sign * np.r_[m, n]))
        return float(muse_privleak(auc(unlearned), auc(reference)))

    assert abs(leak("", pool=True)) < 10  # the pool alone would look fine
    assert r.extra["pooled"]["privleak"]["unlearned"] == pytest.approx(leak("", pool=True))
    by_type = r.extra["privleak_by_type"]
    if documents == 6:
        assert r.extra["unbounded_types"] == ["documents"] and r.status == "inconclusive"
        assert r.decision is not None and "documents" in str(r.decision.cannot_pass)
        assert by_type["qa"]["value"] == pytest.approx(leak("qa"))
        return
    assert by_type["documents"]["value"] == pytest.approx(leak("documents"))
    assert by_type["qa"]["value"] == pytest.approx(leak("qa"))
    assert r.extra["deciding_type"] == "documents" and r.status == "fail"
    assert r.decision is not None and r.decision.value == pytest.approx(abs(leak("documents")))
    assert r.extra["type_confidence"] == pytest.approx(1 - 0.05 / 2)


def test_a_worst_case_with_an_unbounded_part_can_fail_but_never_pass() -> None:
    """PrivLeak per item type: a type whose interval cannot be bounded at this size (the reference's AUC may reach
    1) cannot be shown within the bound, so the types that were bounded can fail the check but not pass it."""
    from unlearnspec.report.model import CheckResult, Decision

    bound = Threshold(op="<=", value=10.0)

    def result(low: float, high: float, unbounded: str | None) -> CheckResult:
        d = Decision(quantity="worst |PrivLeak| over item types (percent)", value=(low + high) / 2,
                     interval=(low, high), threshold=bound, cannot_pass=unbounded)
        return CheckResult(check_id="p", metric="privleak", dataset="forget", threshold=bound,
                           values={"unlearned": -(low + high) / 2}, decision=d)

    assert result(1.0, 5.0, None).status == "pass"
    assert result(1.0, 5.0, "documents unbounded").status == "inconclusive"
    assert result(20.0, 60.0, "documents unbounded").status == "fail"
    assert result(5.0, 60.0, "documents unbounded").status == "inconclusive"


def _split_types(records: list[Any]) -> list[Any]:
    """Each record as two: its document alone and its question alone (the likelihood pass scores a record that has
    a document as a document only, so the types are separate records here)."""
    return ([r.model_copy(update={"question": None, "answer": None, "paraphrases": [], "perturbed": []})
             for r in records] + [r.model_copy(update={"text": None}) for r in records])


def test_token_metrics_are_decided_on_the_worst_item_type(tmp_path: Path) -> None:
    """Exact memorisation over documents and answers: each type's gap to the reference at the Bonferroni level,
    the worst deciding; the value is the shown type's mean gap, recomputed here from the per-item values."""
    p = people()
    bundle = DataBundle(forget=_split_types(p.forget), retain=p.retain[:8], neighbors=[], holdout=p.holdout, test=[])
    r = evaluator(copy.deepcopy(tiny_lm("original")), tmp_path, bundle=bundle).check(
        check("exact_memorisation", value=0.2))
    d = r.decision
    assert d is not None and "worst over item types" in d.quantity and d.interval is not None
    kinds = ["documents" if x.text else "qa" for x in bundle.forget]
    gaps = {k: float(np.mean([u - ref for u, ref, kk in zip(r.per_item["unlearned"], r.per_item["reference"], kinds,
                                                              strict=True) if kk == k and u is not None and ref is not None]))
            for k in ("documents", "qa")}
    shown = next(k for k in gaps if f"those of {k}" in d.how)
    assert d.value == pytest.approx(gaps[shown]) and d.n == kinds.count(shown)
    for k, g in gaps.items():
        assert f"{k} {g:.3g}" in d.how  # every type is shown
    assert "Bonferroni" in d.how


def test_a_value_without_an_interval_decides_nothing(tmp_path: Path) -> None:
    """With intervals on, a value for which no interval could be computed is reported and never decided on: the
    check is inconclusive and says why, and no zero-width interval is shown as a 95% one."""
    from unlearnspec.runtime.measure import _point_est

    ev = evaluator(copy.deepcopy(tiny_lm("original")), tmp_path)
    c = check("retain_utility_drop", "retain", value=5.0)
    r = ev._result(c, {"original": 0.0, "unlearned": 0.0008}, est={"unlearned": _point_est(0.0008, 13)})
    assert r.status == "inconclusive" and "unlearned" not in r.interval and r.n["unlearned"] == 13
    assert r.decision is not None and "no confidence interval" in str(r.decision.no_evidence)


def test_a_settled_check_carries_no_items_to_settle_it() -> None:
    from unlearnspec.report.model import CheckResult, Decision

    bound = Threshold(op="<=", value=0.1)
    d = Decision(quantity="gap", value=0.01, interval=(0.0, 0.05), threshold=bound, more_items=7)
    r = CheckResult(check_id="x", metric="knowledge_rouge", dataset="forget", threshold=bound,
                    values={"unlearned": 0.3}, decision=d)
    assert r.status == "pass" and r.decision is not None and r.decision.more_items is None
    open_ = CheckResult(check_id="x", metric="knowledge_rouge", dataset="forget", threshold=bound,
                        values={"unlearned": 0.3}, decision=d.model_copy(update={"interval": (0.0, 0.2)}))
    assert open_.status == "inconclusive" and open_.decision is not None and open_.decision.more_items == 7


def test_a_filter_that_blocks_benign_answers_costs_the_served_system_utility(tmp_path: Path) -> None:
    """Behind a system filter the people asking get the served system, whose filter also blocks benign answers
    that share its phrases: the utility drop is measured on it, while the weights' own drop stays 0. The served
    system's answers are the weights' with every blocked one replaced by the refusal."""
    from unlearnspec.runtime.methods.guard import OutputGuard

    p = people()
    retain = p.retain[:8]
    blocked_city = retain[0].answer or ""
    guard = OutputGuard.from_records(p.forget, aliases=[blocked_city], refusal_text="I don't know.")
    tok = tokenizer()
    model = copy.deepcopy(tiny_lm("original"))
    ctx = EvalContext(op=None, data=data(), stage=STAGE, original=(tiny_lm("original"), tok),  # type: ignore[arg-type]
                      unlearned=(model, tok), reference=(tiny_lm("reference"), tok), guard=guard,
                      refusal_text="I don't know.", attacks=[], work_dir=tmp_path, strategy="retrain")
    r = Evaluator(ctx).check(check("retain_utility_drop", "retain", value=5.0, model="served"))
    assert r.values.unlearned == 0.0 and r.values.served is not None and r.values.served > 0
    weights, served = r.per_item["unlearned.rouge_recall"], r.per_item["served.rouge_recall"]
    hit = [blocked_city.lower() in (rec.answer or "").lower() for rec in retain]
    assert any(hit)
    for w, s, h in zip(weights, served, hit, strict=True):
        if w is None:
            continue
        if h and w > 0:  # the weights say the blocked city: the served system refuses instead
            assert s is not None and s < w
        if not h:
            assert s == pytest.approx(w)


def test_a_utility_at_release_precision_names_the_quantized_models_as_attacked(tmp_path: Path) -> None:
    """The twin of a utility check measured at the release precision: its per-item components and its per-model
    dictionaries call the quantized unlearned model `attacked` (and the quantized reference `reference_attacked`),
    so that report.json can be recomputed; the attacked utility is the quantized model's, measured here again."""
    from unlearnspec.runtime.attacks import quantize
    from unlearnspec.runtime.evaluation import metrics

    ev = evaluator(copy.deepcopy(tiny_lm("original")), tmp_path)
    res = ev.check(check("retain_utility_drop", "retain", value=5.0, model="attacked", probe="quantize",
                         params={"precision": "int8"}))
    assert res.not_evaluated_reason is None
    utility = res.extra["utility"]
    assert isinstance(utility, dict) and set(utility) == {"original", "attacked", "reference_attacked"}
    assert not [k for k in res.per_item if k.startswith("unlearned.")]
    assert [k for k in res.per_item if k.startswith("attacked.")]
    q = quantize(tiny_lm("original"), "int8")
    again = metrics.utility(q.model, tokenizer(), data().retain, batch_size=STAGE.eval_batch_size,
                            max_new_tokens=STAGE.max_new_tokens)
    assert utility["attacked"] == pytest.approx(again.value)


@pytest.mark.parametrize("release", ["api", "open_weights"])
def test_the_released_twin_of_a_filtered_check_is_measured_as_the_release_is_run(tmp_path: Path, release: str) -> None:
    """A check of the served system measured again at the release precision: behind an API the quantized model is
    still served through the filter; open weights are run by whoever downloads them, without it."""
    from types import SimpleNamespace

    from unlearnspec.runtime.methods.guard import OutputGuard

    p = people()
    guard = OutputGuard.from_records(p.forget, aliases=["Lisbon", "Oslo", "Nairobi", "Lima"],
                                     refusal_text="I don't know.")
    tok = tokenizer()
    op = SimpleNamespace(objective=SimpleNamespace(release=SimpleNamespace(mode=release)))
    ctx = EvalContext(op=op, data=data(), stage=STAGE, original=(tiny_lm("original"), tok),  # type: ignore[arg-type]
                      unlearned=(copy.deepcopy(tiny_lm("original")), tok), reference=None, guard=guard,
                      refusal_text="I don't know.", attacks=[], work_dir=tmp_path, strategy="holdout")
    r = Evaluator(ctx).check(check("leak_rate", op="<=", value=0.1, model="attacked", probe="quantize",
                                   params={"precision": "int8", "served": True, "probe": "direct"}))
    assert r.values.attacked is not None
    if release == "api":
        assert r.values.attacked == 0.0 and "filter applied" in str(r.extra["filter"])  # every city is blocked
    else:
        assert r.values.attacked > 0.5 and "without the system's filter" in str(r.extra["filter"])


def test_a_filter_that_blocks_nothing_gets_a_distribution_free_bound_not_a_point(tmp_path: Path) -> None:
    """The served system of a filter that blocks no retained answer has the weights' utility on every record, so
    no resample moves its drop: instead of a zero-width interval (or none, which would leave an ideal filter
    unable to pass), the drop gets the exact bound for "no record differed": at most the share Clopper and
    Pearson allow at 0 of n, times the whole room to a drop of 100%."""
    from scipy import stats

    from unlearnspec.runtime.methods.guard import OutputGuard

    tok = tokenizer()
    nothing = OutputGuard(n=4, ngrams=frozenset(), phrases=(), refusal_text="I don't know.")
    ctx = EvalContext(op=None, data=data(), stage=STAGE, original=(tiny_lm("original"), tok),  # type: ignore[arg-type]
                      unlearned=(copy.deepcopy(tiny_lm("original")), tok), reference=None, guard=nothing,
                      refusal_text="I don't know.", attacks=[], work_dir=tmp_path, strategy="holdout")
    r = Evaluator(ctx).check(check("retain_utility_drop", "retain", value=5.0, model="served"))
    n = len(data().retain)
    assert r.values.served == 0.0 and r.n["served"] == n
    low, high = r.interval["served"]
    share = stats.beta.ppf(1 - 0.025, 1, n)  # Clopper-Pearson's upper limit at 0 of n, 95% two-sided
    assert high == pytest.approx(100 * share, rel=1e-9) and low < 0 < high
    assert r.status == ("pass" if high <= 5 else "inconclusive")


def test_a_record_with_a_document_and_a_question_gives_an_item_of_each_type(tmp_path: Path) -> None:
    """Membership decides on the worst item type, so a record that holds both a document and a question-answer pair
    must give both: before, only its document was scored, and its answer never entered the questions' type. The two
    items of one record are one record when resampled (and n counts records)."""
    ev = evaluator(copy.deepcopy(tiny_lm("original")), tmp_path)
    forget = people().forget
    assert all(r.text and r.is_qa for r in forget)
    typed = ev.m["unlearned"].typed_attack_scores("forget", 0.2)
    assert typed["documents"][0] == [f"forget[{i}]" for i in range(len(forget))]
    assert typed["qa"][0] == [f"forget[{i}]:answer" for i in range(len(forget))]
    r = ev.check(check("membership_auc", value=0.7))
    by = r.extra["gap_by_type"]
    assert isinstance(by, dict) and {"documents", "qa", "qa_paraphrased"} <= set(by)
    qa = by["qa"]
    assert isinstance(qa, dict) and all(g["n"] == len(forget) for g in qa.values())  # type: ignore[index]


@pytest.mark.parametrize("metric", ["leak_rate", "exact_memorisation", "extraction_strength"])
def test_leak_rate_and_token_metrics_pass_only_with_a_positive_control(tmp_path: Path, metric: str) -> None:
    """Like the ROUGE checks, the leak rate (a bound on the model's own rate) and the token metrics (bounds on the gap
    to the reference) can pass only when the original model, trained on the target, is shown beyond the bound on the
    same items: a measurement that an untrained "original" passes as well cannot tell removal from never having
    known (FRAMEWORK.md §7). The unlearned model here is the retrained reference: perfect removal."""
    bound = 0.5 if metric == "leak_rate" else 0.2
    ev = evaluator(tiny_lm("reference"), tmp_path)
    real = ev.check(check(metric, value=bound))
    original = [x for x in real.per_item["original"] if x is not None]
    # the original, trained on the forget people, leaks (memorises) them: its own interval lies beyond the bound
    assert min(original) == 1.0 if metric == "leak_rate" else sum(original) / len(original) > 0.9
    blind = evaluator(tiny_lm("reference"), tmp_path)
    blind.m["original"] = Measurer("original", tiny_lm("fresh"), tokenizer(), blind.ctx.data, STAGE,
                                   refusal_text="I don't know.", fmt=blind.ctx.fmt)
    b = blind.check(check(metric, value=bound))
    assert b.values.original == 0.0  # an untrained model states and memorises none of it
    assert b.values.unlearned == real.values.unlearned  # the same unlearned model, measured alike
    assert b.status == "inconclusive" and b.decision is not None and b.decision.cannot_pass
    assert [f for f in b.findings if f.startswith("no power: no positive control")]
    if metric != "exact_memorisation":  # six answers cannot show the original's answer tokens 0.2 above the reference
        assert real.status == "pass" and not [f for f in real.findings if f.startswith("no power")]


def _refusing(ev: Evaluator, who: str) -> None:
    """``who`` answers every probe prompt with a refusal: its refusal series, all ones, on the same items."""
    import dataclasses

    real = ev.m[who].refusal

    def refuses(dataset: str, probe: str) -> Any:
        s = real(dataset, probe)
        return dataclasses.replace(s, values=[1.0] * len(s.values))

    ev.m[who].refusal = refuses  # type: ignore[method-assign]


def test_a_refusal_rate_passes_only_when_the_original_was_shown_short_of_it(tmp_path: Path) -> None:
    """The refusal rate is bounded from below: a pass needs the original model, before unlearning, shown short of
    the bound on the same prompts — otherwise the check cannot tell what unlearning did from what the model already
    did (FRAMEWORK.md §7: a bound that no model can fail carries no verdict)."""
    ev = evaluator(tiny_lm("reference"), tmp_path, reference=False)
    _refusing(ev, "unlearned")
    taught = ev.check(check("refusal_rate", op=">=", value=0.5))
    assert taught.values.unlearned == 1.0 and taught.values.original == 0.0  # the untaught original never refuses
    assert taught.status == "pass" and not [f for f in taught.findings if f.startswith("no power")]
    # the same unlearned model, but an original that already refused: nothing shows what unlearning changed
    both = evaluator(tiny_lm("reference"), tmp_path, reference=False)
    _refusing(both, "unlearned")
    _refusing(both, "original")
    b = both.check(check("refusal_rate", op=">=", value=0.5))
    assert b.values.original == 1.0 and b.values.unlearned == 1.0
    assert b.status == "inconclusive" and b.decision is not None and b.decision.cannot_pass
    (said,) = [f for f in b.findings if f.startswith("no power: no positive control")]
    assert "short of the bound ≥ 0.5" in said and "before unlearning" in said
    # a fail needs no control: a model that does not refuse fails whatever the original did
    plain = evaluator(tiny_lm("reference"), tmp_path, reference=False)
    _refusing(plain, "original")
    assert plain.check(check("refusal_rate", op=">=", value=0.5)).status == "fail"
