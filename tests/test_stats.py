"""Verdicts the data can stand behind: intervals, three-valued checks, reference-relative membership.

The references are independent: ``scipy.stats.bootstrap`` called directly, ``sklearn.metrics.roc_auc_score``
on the scores report.json keeps, the closed form ``2 / C(n + m, n)`` of the KS test's smallest p-value,
and MUSE's PrivLeak formula written out on the AUCs.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import roc_auc_score

from unlearnspec.plan import (
    ClaimPlan,
    DataSets,
    EvaluateStage,
    MetricCheck,
    ModelRef,
    ObjectiveInfo,
    ObjectivePlan,
    ReleaseInfo,
    TargetInfo,
    Threshold,
)
from unlearnspec.records import Record, split_holdout
from unlearnspec.report.model import EXIT_CODES, EXIT_INCOMPLETE, CheckResult, Decision
from unlearnspec.report.verdict import build_objective_report, claim_verdict
from unlearnspec.runtime import checks as checks_mod
from unlearnspec.runtime.checks import DataBundle, EvalContext, Evaluator, muse_privleak
from unlearnspec.runtime.evaluation import intervals, joint_intervals, metrics, mia

# --- intervals against scipy and closed forms --------------------------------------------------------

FIXED = np.array([0.12, 0.5, 0.33, 0.9, 0.0, 0.41, 0.77, 0.25, 0.6, 0.18])


def hesterberg(confidence: float, n: int) -> float:
    """The expanded percentile level (Hesterberg 2015), written out: the normal quantile equals
    sqrt(n / (n - 1)) times Student's t quantile with n - 1 degrees of freedom."""
    z = np.sqrt(n / (n - 1)) * stats.t.ppf(0.5 + confidence / 2, n - 1)
    return float(1 - 2 * stats.norm.sf(z))


def test_mean_interval_equals_scipy_bootstrap_on_fixed_data() -> None:
    est = intervals.mean_estimate(FIXED, confidence=0.9, rng=intervals.seed_for(7, "c", "unlearned"))
    ref = stats.bootstrap((FIXED,), np.mean, confidence_level=hesterberg(0.9, FIXED.size),
                          n_resamples=intervals.N_RESAMPLES,
                          method="percentile", random_state=intervals.seed_for(7, "c", "unlearned"))
    assert est is not None and est.n == FIXED.size
    assert est.value == pytest.approx(float(np.mean(FIXED)))
    assert (est.low, est.high) == pytest.approx((ref.confidence_interval.low, ref.confidence_interval.high))
    assert est.low < est.value < est.high


def test_auc_interval_resamples_members_and_nonmembers_separately_like_scipy() -> None:
    """Like scipy's bootstrap of the AUC written out, at the expanded level for the smaller side (five
    members), joined with DeLong's logit interval; with four members or fewer the interval widens to Hoeffding's
    (test_intervals_items.py)."""
    members, nonmembers = FIXED[:5] + 0.3, FIXED[5:]
    est = intervals.auc_estimate(members, nonmembers, True, rng=intervals.seed_for(1, "auc"))

    def auc(m: np.ndarray, n: np.ndarray, axis: int = -1) -> np.ndarray:  # written out: P(m > n) + P(m = n) / 2
        m3, n3 = np.moveaxis(m, axis, -1)[..., :, None], np.moveaxis(n, axis, -1)[..., None, :]
        return ((m3 > n3).mean(axis=(-2, -1)) + 0.5 * (m3 == n3).mean(axis=(-2, -1)))

    ref = stats.bootstrap((members, nonmembers), auc, n_resamples=intervals.N_RESAMPLES, method="percentile",
                          confidence_level=hesterberg(0.95, 5), random_state=intervals.seed_for(1, "auc"))
    labels = np.r_[np.ones(5), np.zeros(FIXED.size - 5)]
    a = roc_auc_score(labels, np.r_[members, nonmembers])
    assert est is not None and est.value == pytest.approx(a)
    # widened to DeLong's interval on the logit scale at the same level (the percentile bootstrap sits too high near
    # an AUC of 1, test_stats_review.py): DeLong's structural components written out, each member's share of the
    # non-members it beats and each non-member's share of the members that beat it
    v10 = np.array([np.mean((x > nonmembers) + 0.5 * (x == nonmembers)) for x in members])
    v01 = np.array([np.mean((members > y) + 0.5 * (members == y)) for y in nonmembers])
    se = np.sqrt(v10.var(ddof=1) / v10.size + v01.var(ddof=1) / v01.size) / (a * (1 - a))
    z = stats.norm.ppf((1 + hesterberg(0.95, 5)) / 2)
    logit = np.log(a / (1 - a))
    delong = (1 / (1 + np.exp(-(logit - z * se))), 1 / (1 + np.exp(-(logit + z * se))))
    assert (est.low, est.high) == pytest.approx((min(ref.confidence_interval.low, delong[0]),
                                                 max(ref.confidence_interval.high, delong[1])))
    assert (est.n, est.n_other) == (5, FIXED.size - 5)


def _gap_pair(group: str, rng: np.random.Generator, n: int = 30) -> joint_intervals.GapPair:
    return joint_intervals.GapPair(group, rng.normal(0.5, 1, n), rng.normal(0, 1, n), rng.normal(0, 1, n),
                             rng.normal(0, 1, n), True)


def test_joint_intervals_need_no_widening_for_pairs_that_always_agree_and_sidak_for_independent_ones() -> None:
    """The level at which k intervals hold together depends on how the pairs move: k copies of one pair
    (resampled together, they always agree) need the plain level; k pairs on independent items need
    Šidák's conf^(1/k) (independent misses multiply), below Bonferroni's 1 - (1 - conf)/k."""
    rng = np.random.default_rng(3)
    one = _gap_pair("qa", rng)
    est, level = joint_intervals.joint_gap_estimates([one] * 4, rng=np.random.default_rng(0), n_resamples=4000)
    assert level == pytest.approx(0.95, abs=0.002)
    alone = intervals.gap_of_aucs_estimate(one.members_a, one.nonmembers_a, one.members_b, one.nonmembers_b, True,
                                           rng=np.random.default_rng(0), n_resamples=4000)
    assert alone is not None and all(e is not None and e.value == pytest.approx(alone.value) for e in est)
    first = est[0]
    assert first is not None and first.low == pytest.approx(alone.low, abs=0.03) \
        and first.high == pytest.approx(alone.high, abs=0.03)  # the same percentile interval, other resamples
    k = 4
    _, level = joint_intervals.joint_gap_estimates([_gap_pair(g, rng) for g in "abcd"], rng=np.random.default_rng(0),
                                             n_resamples=8000)
    assert level == pytest.approx(0.95 ** (1 / k), abs=0.002)
    assert 0.95 < level < joint_intervals.bonferroni(0.95, k)


def test_joint_intervals_resample_types_scored_on_the_same_records_together() -> None:
    """A QA record's question and its paraphrase are two item types on one record: named by their records,
    the two types' pairs are drawn together (one record, both items), so two copies of one pair under two
    type names need the plain level, as copies within one type do; unnamed, they are drawn apart and need
    Šidák's level for two independent pairs. Records that differ keep the types apart."""
    rng = np.random.default_rng(7)
    one = _gap_pair("qa", rng)
    twin = dataclasses.replace(one, group="qa_paraphrased")
    names = (tuple(f"forget[{i}]" for i in range(30)), tuple(f"holdout[{i}]" for i in range(30)))
    shared = [dataclasses.replace(p, records=names) for p in (one, twin)]
    _, together = joint_intervals.joint_gap_estimates(shared, rng=np.random.default_rng(0), n_resamples=4000)
    assert together == pytest.approx(0.95, abs=0.002)
    _, apart = joint_intervals.joint_gap_estimates([one, twin], rng=np.random.default_rng(0), n_resamples=8000)
    assert apart == pytest.approx(0.95 ** 0.5, abs=0.002)
    other = (names[0][::-1], names[1])
    _, differ = joint_intervals.joint_gap_estimates([shared[0], dataclasses.replace(twin, records=other)],
                                              rng=np.random.default_rng(0), n_resamples=8000)
    assert differ == pytest.approx(0.95 ** 0.5, abs=0.002)


def test_joint_intervals_count_a_resample_a_pair_cannot_compute_as_a_miss() -> None:
    """Two of four members lack a reference score, so (1/2)^4 = 6.25% of the resamples draw no usable member
    and that pair has no gap there. Those resamples are misses, not hits: no level below 1 holds 95% of the
    resamples together, so the level is 1 and the interval spans every gap the pair produced."""
    rng = np.random.default_rng(8)
    big = _gap_pair("qa", rng)
    sparse = joint_intervals.GapPair("documents", np.array([2.0, 1.0, 0.5, 0.2]), rng.normal(0, 1, 12),
                               np.array([0.1, -0.3, np.nan, np.nan]), rng.normal(0, 1, 12), True)
    est, level = joint_intervals.joint_gap_estimates([big, sparse], rng=np.random.default_rng(0))
    assert level == 1.0
    e = est[1]
    assert e is not None and (e.n, e.n_other) == (2, 12) and e.low <= e.value <= e.high and e.low < e.high
    assert (e.low, e.high) == (-1.0, 1.0)  # two usable members: Hoeffding's interval at level 1 is the whole range
    assert est[0] is not None and est[0].confidence == 1.0


def test_one_item_on_a_side_says_nothing_of_its_population() -> None:
    """A small forget set can hold one document beside twenty questions. One member is no sample of the
    members' distribution, so that pair's gap spans :func:`degenerate_interval` over [-1, 1] with one item
    (at the joint level), outside the bootstrap, which then calibrates the other pairs alone; the point
    value is still sklearn's. The two hold together by the union bound: each at 97.5% (Bonferroni's share of
    the 5% miss rate), the big pair calibrated alone at that level. A single AUC and a KS test with one item on
    a side do the same (and no longer raise, as scipy.stats.bootstrap does on a one-item sample)."""
    rng = np.random.default_rng(5)
    big = _gap_pair("qa", rng)
    lone = joint_intervals.GapPair("documents", np.array([2.0]), rng.normal(0, 1, 5), np.array([0.1]), rng.normal(0, 1, 5),
                             True)
    est, level = joint_intervals.joint_gap_estimates([big, lone], rng=np.random.default_rng(0), n_resamples=2000)
    [alone], level_alone = joint_intervals.joint_gap_estimates([big], confidence=0.975, rng=np.random.default_rng(0),
                                                               n_resamples=2000)
    assert level == level_alone == 0.975 and est[0] == alone  # the same draws for the big pair, first in each batch
    assert est[1] is not None and est[1].confidence == 0.975
    labels = np.r_[1.0, np.zeros(5)]
    expected = roc_auc_score(labels, np.r_[lone.members_a, lone.nonmembers_a]) \
        - roc_auc_score(labels, np.r_[lone.members_b, lone.nonmembers_b])  # type: ignore[arg-type]
    e = est[1]
    assert e is not None and e.value == pytest.approx(expected) and (e.n, e.n_other) == (1, 5)
    p = (1 + 0.975) / 2  # the share of a population one draw misses, at its Bonferroni level
    assert (e.low, e.high) == pytest.approx((expected - (expected + 1) * p, expected + (1 - expected) * p))
    a = intervals.auc_estimate([2.0], rng.normal(0, 1, 8), True, rng=np.random.default_rng(0))
    assert a is not None and a.value == 1.0 and a.low == pytest.approx(1 - 0.975) and a.high == 1.0
    one, others = np.array([2.0]), rng.normal(0, 1, 8)
    g = intervals.gap_of_aucs_estimate(one, others, np.array([0.0]), rng.normal(0, 1, 8), True,
                                       rng=np.random.default_rng(0))
    assert g is not None and g.low < 0 < g.high
    ks = intervals.ks_estimate([0.3], rng.normal(0, 1, 8), rng=np.random.default_rng(0))
    assert ks is not None and ks.high == 1.0 and ks.low <= ks.pvalue


def test_joint_intervals_against_chance_and_with_missing_scores() -> None:
    """Without a reference each pair's gap is its AUC minus 0.5 (the AUC is sklearn's); an item whose score is
    missing for either model is dropped from that pair, as gap_of_aucs_estimate drops it."""
    rng = np.random.default_rng(4)
    m, n = rng.normal(1, 1, 20), rng.normal(0, 1, 25)
    est, level = joint_intervals.joint_gap_estimates([joint_intervals.GapPair("docs", m, n, None, None, True)],
                                               rng=np.random.default_rng(0))
    labels = np.r_[np.ones(m.size), np.zeros(n.size)]
    assert level == 0.95 and est[0] is not None
    assert est[0].value == pytest.approx(roc_auc_score(labels, np.r_[m, n]) - 0.5)
    assert est[0].low < est[0].value < est[0].high and (est[0].n, est[0].n_other) == (20, 25)
    mb, nb = rng.normal(0, 1, 20), rng.normal(0, 1, 25)
    mb[3], n[5] = np.nan, np.nan
    [e], _ = joint_intervals.joint_gap_estimates([joint_intervals.GapPair("docs", m, n, mb, nb, False)],
                                           rng=np.random.default_rng(0))
    ref = intervals.gap_of_aucs_estimate(m, n, mb, nb, False, rng=np.random.default_rng(0))
    assert e is not None and ref is not None and e.value == pytest.approx(ref.value) and (e.n, e.n_other) == (19, 24)


def test_a_share_gets_clopper_pearsons_exact_interval() -> None:
    """Per-item values in {0, 1} (a leak, a refusal, a correct choice) get the exact binomial interval, here
    against its beta-quantile form (Clopper & Pearson 1934), at any n; 0 of n is the rule of three."""
    for k, n in ((0, 5), (3, 20), (20, 20), (7, 9)):
        x = np.r_[np.ones(k), np.zeros(n - k)]
        e = intervals.mean_estimate(x, rng=np.random.default_rng(0), bounds=intervals.UNIT)
        low = stats.beta.ppf(0.025, k, n - k + 1) if k else 0.0
        high = stats.beta.ppf(0.975, k + 1, n - k) if k < n else 1.0
        assert e is not None and e.value == pytest.approx(k / n) and (e.low, e.high) == pytest.approx((low, high))
    e = intervals.mean_estimate(np.zeros(20), rng=np.random.default_rng(0), bounds=intervals.UNIT)
    assert e is not None and e.high == pytest.approx(1 - 0.025 ** (1 / 20))  # 0.168: 20 clean prompts


def test_a_small_sample_cannot_pass_a_leak_bound_it_does_not_support() -> None:
    """A model that leaks on 20% of prompts, probed five times, must not pass `leak_rate <= 0.05` more
    often than the interval's 2.5% allows. A bootstrap passes it whenever the five prompts leak nothing
    (an interval [0, 0]): 0.8^5 = 33% of the time."""
    rng = np.random.default_rng(11)
    trials = 2000
    passed = 0
    for _ in range(trials):
        x = (rng.random(5) < 0.2).astype(float)
        e = intervals.mean_estimate(x, rng=rng, bounds=intervals.UNIT)
        assert e is not None
        passed += e.high <= 0.05
    assert passed == 0  # 0 of 5 already has an upper limit of 0.52
    boot = sum(bool(np.all(x == 0)) for x in ((rng.random(5) < 0.2) for _ in range(trials))) / trials
    assert boot > 0.25  # what the zero-width interval would have passed


def test_all_equal_items_get_a_distribution_free_interval() -> None:
    """All n items equal v, of a quantity in [lo, hi]: at most a share p = 1 - (alpha/2)^(1/n) of the
    population can differ from v and still give such a sample at the stated level, so the mean lies within
    p times the room to either bound; a paired gap's differences range over [lo - hi, hi - lo]."""
    p10 = 1 - 0.025 ** (1 / 10)
    e = intervals.mean_estimate(np.full(10, 0.3), rng=np.random.default_rng(0), bounds=intervals.UNIT)
    assert e is not None and (e.low, e.high) == pytest.approx((0.3 - 0.3 * p10, 0.3 + 0.7 * p10))
    unbounded = intervals.mean_estimate(np.full(10, 0.3), rng=np.random.default_rng(0))
    assert unbounded is not None and unbounded.low == unbounded.high == pytest.approx(0.3)  # no range known
    g = intervals.paired_gap_estimate([0.5] * 10, [0.2] * 10, rng=np.random.default_rng(0), bounds=intervals.UNIT)
    assert g is not None and (g.low, g.high) == pytest.approx((0.3 - 1.3 * p10, 0.3 + 0.7 * p10))
    # values outside the stated range are bootstrapped, as without a range, not bounded wrongly (nor a crash)
    stray = intervals.mean_estimate([0.5, 1.5, 1.5], rng=np.random.default_rng(0), bounds=intervals.UNIT)
    plain = intervals.mean_estimate([0.5, 1.5, 1.5], rng=np.random.default_rng(0))
    assert stray == plain


def test_ks_smallest_attainable_pvalue_is_two_over_binomial() -> None:
    assert intervals.ks_min_pvalue(5, 5) == pytest.approx(2 / math.comb(10, 5))  # 0.0079: only complete separation
    assert intervals.ks_min_pvalue(20, 20) == pytest.approx(2 / math.comb(40, 20))
    r = intervals.ks_estimate(FIXED[:5], FIXED[5:], rng=intervals.seed_for(0, "ks"))
    assert r is not None
    assert r.pvalue == pytest.approx(stats.ks_2samp(FIXED[:5], FIXED[5:], method="exact").pvalue)
    assert r.low <= r.pvalue <= r.high and r.min_pvalue == pytest.approx(2 / 252)


def test_muse_privleak_matches_the_formula_in_muses_own_convention() -> None:
    # MUSE: (AUC'_unlearn - AUC'_retrain) / AUC'_retrain * 100 with its inverted AUC' = 1 - AUC.
    for auc_u, auc_r in [(0.9, 0.5), (0.5, 0.5), (0.3, 0.45), (0.62, 0.256)]:
        muse_u, muse_r = 1 - auc_u, 1 - auc_r
        assert muse_privleak(auc_u, auc_r) == pytest.approx(100 * (muse_u - muse_r) / muse_r)
    assert muse_privleak(1.0, 0.5) == pytest.approx(-100.0)  # the original model: a complete leak


def test_holdout_halves_are_disjoint_cover_everything_and_keep_people_together() -> None:
    recs = [Record(text=f"t{i}", attributes={"person": f"p{i // 3}"}) for i in range(30)]
    cal, ev = split_holdout(recs, seed=3)
    assert not set(cal) & set(ev) and sorted(cal + ev) == list(range(30))
    assert abs(len(cal) - len(ev)) <= 3
    people_cal = {recs[i].attributes["person"] for i in cal}
    assert not people_cal & {recs[i].attributes["person"] for i in ev}
    assert split_holdout(recs, seed=3) == (cal, ev)  # deterministic


def test_copies_of_one_holdout_record_fall_in_one_half() -> None:
    """Five questions, each given twice and without a person: a copy in each half would put one item in both the
    stopping rule's data and the verdict's; a record that has no copy is still its own group."""
    recs = [Record(question=f"q{i % 5}?", answer="a") for i in range(10)] + [Record(text="alone")]
    cal, ev = split_holdout(recs, seed=0)
    assert sorted(cal + ev) == list(range(11))
    texts = {side: {recs[i].question for i in idx} for side, idx in (("cal", cal), ("ev", ev))}
    assert not texts["cal"] & texts["ev"] and texts["cal"] | texts["ev"] == {f"q{i}?" for i in range(5)} | {None}


@pytest.mark.parametrize("seed", range(8))
def test_copies_that_name_different_people_still_fall_in_one_half(seed: int) -> None:
    """The reviewer's case: one record given twice, once naming a person and once not (or naming another). The
    copies, and with them every record of those people, are one group in every seed, so no text is both the
    stopping rule's and the verdict's."""
    recs = [Record(text="the same words", attributes={"person": "Ann"}), Record(text="the same words"),
            Record(text="Ann again", attributes={"person": "Ann"}), Record(text="the same words", attributes={"person": "Bo"}),
            Record(text="Bo again", attributes={"person": "Bo"})] + [Record(text=f"other {i}") for i in range(6)]
    cal, ev = split_holdout(recs, seed=seed)
    assert sorted(cal + ev) == list(range(len(recs)))
    for side in (cal, ev):
        other = ev if side is cal else cal
        assert not {recs[i].text for i in side} & {recs[i].text for i in other}
        assert not {recs[i].attributes.get("person") for i in side} & {recs[i].attributes.get("person") for i in other} - {None}
    linked = {0, 1, 2, 3, 4}
    assert linked <= set(cal) or linked <= set(ev)


# --- three-valued checks --------------------------------------------------------------------------


def _check(interval: tuple[float, float], value: float = 0.5, op: str = "<=", bound: float = 0.6) -> CheckResult:
    return CheckResult(check_id="c", metric="knowledge_rouge", dataset="forget",
                       threshold=Threshold(op=op, value=bound),  # type: ignore[arg-type]
                       values={"unlearned": value}, interval={"unlearned": interval}, n={"unlearned": 20})


def test_a_check_passes_or_fails_only_when_its_interval_is_on_one_side() -> None:
    assert _check((0.3, 0.55)).status == "pass"
    assert _check((0.62, 0.9), value=0.7).status == "fail"
    straddling = _check((0.4, 0.7))
    assert straddling.status == "inconclusive" and straddling.passed is None
    with pytest.raises(ValueError, match="straddles"):
        CheckResult.model_validate(straddling.model_dump() | {"passed": True, "inconclusive": False})


def test_a_test_that_cannot_fail_is_inconclusive() -> None:
    d = Decision(quantity="KS-test p-value", value=1.0, interval=(0.4, 1.0), threshold=Threshold(op=">=", value=0.05),
                 attainable=(2 / 252 * 10, 1.0))  # at this size p never goes below 0.079
    c = CheckResult(check_id="fq", metric="forget_quality", dataset="forget", threshold=Threshold(op=">=", value=0.05),
                    values={"unlearned": 1.0}, decision=d)
    assert c.status == "inconclusive"


def _objective(checks: list[CheckResult]) -> ObjectivePlan:
    info = ObjectiveInfo(name="o", goal="removal", target=TargetInfo(category="person", name="X", kind="observed"),
                         release=ReleaseInfo(mode="api"))
    mcs = [MetricCheck(id=c.check_id, metric=c.metric, dataset=c.dataset, threshold=c.threshold) for c in checks]
    return ObjectivePlan(objective=info, model=ModelRef(source="builtin:tiny-bios", kind="builtin"), data=DataSets(),
                         claims=[ClaimPlan(claim="not_generated", status="supported", checks=[c.check_id for c in checks])],
                         checks=mcs, findings=[], stages=[])


def test_an_inconclusive_claim_is_not_a_pass_and_exits_3() -> None:
    ok = _check((0.3, 0.55)).model_copy(update={"check_id": "ok"})
    unsure = _check((0.4, 0.7)).model_copy(update={"check_id": "unsure"})
    assert claim_verdict("supported", [ok, unsure]) == "inconclusive"
    report = build_objective_report(_objective([ok, unsure]), {"ok": ok, "unsure": unsure})
    assert report.claims[0].verdict == "inconclusive" and report.overall == "incomplete"
    assert EXIT_CODES[report.overall] == EXIT_INCOMPLETE == 3
    assert "inconclusive" in report.claims[0].explanation.lower()


# --- membership: per type, reference-relative, two-sided ------------------------------------------


def _typed(docs: np.ndarray, qa: np.ndarray) -> dict[str, tuple[list[str], dict[str, Any]]]:
    """Scores where every attack sees the same "higher = member" signal (LOSS/zlib negated)."""
    out = {}
    for name, arr in (("documents", docs), ("qa", qa)):
        out[name] = ([f"{name}[{i}]" for i in range(arr.size)],
                     {a: (arr if higher else -arr) for a, (_, higher) in mia.ATTACKS.items()})
    return out


def _membership_evaluator(monkeypatch: pytest.MonkeyPatch, scores: dict[str, dict[str, Any]],
                          tmp_path: Path) -> Evaluator:
    bundle = DataBundle(forget=[Record(text="a")], retain=[], neighbors=[], holdout=[Record(text="b")], test=[])
    ctx = EvalContext(op=None, data=bundle, stage=EvaluateStage(), original=(None, None),  # type: ignore[arg-type]
                      unlearned=(None, None), reference=(None, None) if "reference" in scores else None,
                      guard=None, refusal_text="", attacks=[], work_dir=tmp_path, seed=5)
    ev = Evaluator(ctx)
    monkeypatch.setattr(ev, "_membership_scores", lambda dataset, k: scores)
    monkeypatch.setattr(checks_mod.Measurer, "_ids", lambda self, ds: ["forget[0]"])
    monkeypatch.setattr(checks_mod.Measurer, "scores", lambda self, ds: _Loss())
    return ev


class _Loss:
    def loss(self) -> list[float]:
        return [1.0]


RNG = np.random.default_rng(11)
CHANCE = {kind: RNG.normal(0, 1, 40) for kind in ("md", "mq", "nd", "nq", "rmd", "rmq")}


def _models(unl_member_docs: np.ndarray, unl_member_qa: np.ndarray) -> dict[str, dict[str, Any]]:
    ref = {"member": _typed(CHANCE["rmd"], CHANCE["rmq"]), "non": _typed(CHANCE["nd"], CHANCE["nq"])}
    return {
        "original": {"member": _typed(CHANCE["md"] + 5, CHANCE["mq"] + 5), "non": _typed(CHANCE["nd"], CHANCE["nq"])},
        "unlearned": {"member": _typed(unl_member_docs, unl_member_qa), "non": _typed(CHANCE["nd"], CHANCE["nq"])},
        "reference": ref,
    }


MEMBERSHIP = MetricCheck(id="membership_auc@forget", metric="membership_auc", dataset="forget",
                         threshold=Threshold(op="<=", value=0.6))


def test_a_document_only_leak_is_caught_although_the_pooled_auc_looks_fine(monkeypatch: pytest.MonkeyPatch,
                                                                             tmp_path: Path) -> None:
    leak_docs, forgot_qa = CHANCE["md"] + 6, CHANCE["mq"] - 0.6  # documents fully separated, QA a little below
    ev = _membership_evaluator(monkeypatch, _models(leak_docs, forgot_qa), tmp_path)
    pooled = roc_auc_score(np.r_[np.ones(80), np.zeros(80)],
                           np.r_[leak_docs, forgot_qa, CHANCE["nd"], CHANCE["nq"]])
    assert pooled <= 0.8  # pooled over both types, the leak is diluted
    r = ev.check(MEMBERSHIP)
    assert r.status == "fail" and r.extra["deciding_type"] == "documents"
    assert r.values.unlearned == pytest.approx(1.0)
    # recomputable from the scores report.json keeps, with scikit-learn
    member = np.array(r.extra["member_scores"]["unlearned"]["min_k"])  # type: ignore[index]
    non = np.array(r.extra["nonmember_scores"]["unlearned"]["min_k"])  # type: ignore[index]
    mt, nt = np.array(r.extra["member_types"]), np.array(r.extra["nonmember_types"])
    docs = roc_auc_score(np.r_[np.ones((mt == "documents").sum()), np.zeros((nt == "documents").sum())],
                         np.r_[member[mt == "documents"], non[nt == "documents"]])
    assert docs == pytest.approx(r.extra["auc_by_type"]["documents"]["min_k"]["unlearned"])  # type: ignore[index]
    assert docs == pytest.approx(r.values.unlearned)


def test_over_unlearning_is_not_a_pass(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    gibberish = (CHANCE["rmd"] - 6, CHANCE["rmq"] - 6)  # far more surprised by the forget set than the reference
    ev = _membership_evaluator(monkeypatch, _models(*gibberish), tmp_path)
    r = ev.check(MEMBERSHIP)
    assert r.values.unlearned is not None and r.values.unlearned < 0.05  # an AUC near 0 would pass "<= 0.6"
    assert r.status == "fail"
    assert any("over-unlearning" in f for f in r.findings)


def test_the_reference_passes_its_own_membership_check(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    ev = _membership_evaluator(monkeypatch, _models(CHANCE["rmd"], CHANCE["rmq"]), tmp_path)
    r = ev.check(MEMBERSHIP)
    assert r.status == "pass" and r.decision is not None and r.decision.value == 0.0
    assert r.n["unlearned"] == 40 and r.interval["unlearned"][0] <= r.values.unlearned <= r.interval["unlearned"][1]  # type: ignore[operator]


def test_vectorised_ks_equals_scipy_on_tied_data() -> None:
    rng = np.random.default_rng(3)
    a, b = np.round(rng.normal(size=(4, 26)), 1), np.round(rng.normal(0.4, 1, size=(4, 52)), 1)  # ties
    for i in range(4):
        ref = stats.ks_2samp(a[i], b[i], method="asymp")
        assert intervals.ks_statistic(a, b)[i] == pytest.approx(ref.statistic)
        assert intervals.ks_asymp_pvalue(a, b)[i] == pytest.approx(ref.pvalue)


def test_utility_of_rows_is_the_harmonic_mean_of_component_means() -> None:
    gen = np.random.default_rng(3)
    rows = gen.uniform(0.05, 1.0, size=(4, 30))
    rows[0, ::3] = np.nan  # components are measured on different records
    rows[2, 1::2] = np.nan
    expected = stats.hmean([float(np.mean(r[np.isfinite(r)])) for r in rows])
    assert metrics.utility_of_rows(rows) == pytest.approx(expected, rel=1e-12)
    rows[1, :] = 0.0  # a zero component makes the harmonic mean zero (TOFU)
    assert metrics.utility_of_rows(rows) == 0.0


def test_utility_drop_interval_is_a_paired_bootstrap_over_records_like_scipy() -> None:
    gen = np.random.default_rng(5)
    base = gen.uniform(0.4, 1.0, size=(3, 40))
    base[2, :20] = np.nan
    after = np.clip(base - gen.uniform(0.0, 0.3, size=base.shape), 0.01, None)

    def drop(*rows: np.ndarray, axis: int = -1) -> np.ndarray:
        u0 = metrics.utility_of_rows(np.stack(rows[:3], axis=-2))
        u1 = metrics.utility_of_rows(np.stack(rows[3:], axis=-2))
        return np.maximum(100.0 * (u0 - u1) / u0, 0.0)

    e = intervals.paired_estimate([*base, *after], drop, confidence=0.95, rng=np.random.default_rng(11),
                                  keep_missing=True)
    ref = stats.bootstrap((*base, *after), drop, n_resamples=intervals.N_RESAMPLES, method="percentile",
                          confidence_level=hesterberg(0.95, 40), paired=True, vectorized=True,
                          random_state=np.random.default_rng(11))
    point = 100.0 * (1 - stats.hmean([np.nanmean(r) for r in after]) / stats.hmean([np.nanmean(r) for r in base]))
    assert e is not None and e.n == 40
    assert e.value == pytest.approx(point, rel=1e-9)
    assert e.low == pytest.approx(min(ref.confidence_interval.low, point), rel=1e-9)
    assert e.high == pytest.approx(max(ref.confidence_interval.high, point), rel=1e-9)
    assert e.low < e.value < e.high


def test_a_utility_drop_resample_missing_a_component_widens_its_interval_never_collapses_it() -> None:
    """Thirteen records, five of them questions: about 0.2% of resamples draw no question, where the utility (a
    harmonic mean of per-component means) is undefined. Those used to make the percentile NaN and the interval
    collapse to the point value (width 0). Now each undefined resample counts against both ends: the interval
    holds the central resamples of a plain numpy bootstrap over the defined ones."""
    rng = np.random.default_rng(3)
    qa = np.r_[np.full(8, np.nan), rng.uniform(0.3, 0.9, 5)]      # component 1: questions only
    doc = np.r_[rng.uniform(0.2, 0.8, 8), np.full(5, np.nan)]     # component 2: documents only
    qa_u, doc_u = qa * rng.uniform(0.5, 1.0, 13), doc * rng.uniform(0.5, 1.0, 13)

    def drop(a: Any, b: Any, c: Any, d: Any, axis: int = -1) -> Any:
        u0 = metrics.utility_of_rows(np.stack([a, b], axis=-2))
        u1 = metrics.utility_of_rows(np.stack([c, d], axis=-2))
        with np.errstate(invalid="ignore", divide="ignore"):
            return 100.0 * (u0 - u1) / u0

    e = intervals.paired_estimate([qa, doc, qa_u, doc_u], drop, confidence=0.95, rng=np.random.default_rng(0),
                                  keep_missing=True)
    assert e is not None and e.low < e.value < e.high
    # an independent bootstrap: resample record indices, drop undefined resamples, take the central 95%
    idx = np.random.default_rng(1).integers(0, 13, size=(4000, 13))
    boot = drop(qa[idx], doc[idx], qa_u[idx], doc_u[idx])
    assert np.isnan(boot).any()  # the case this is about: some resamples drew no question
    central = np.nanpercentile(boot, [10, 90])
    assert e.low <= central[0] and e.high >= central[1]


@pytest.mark.parametrize("undefined", [0.0, 0.01, 0.1])
def test_undefined_resamples_count_against_both_ends(undefined: float) -> None:
    rng = np.random.default_rng(0)
    values = rng.normal(size=10000)
    values[: int(undefined * values.size)] = np.nan
    lo, hi = intervals.undefined_as_misses(values, 0.95)
    defined = values[np.isfinite(values)]
    below, above = np.mean(values < lo), np.mean(values > hi)  # NaN compares False: defined resamples only
    if undefined < 0.025:
        # the share outside each end plus the undefined share is (at most) the 2.5% each end may miss
        assert below + undefined == pytest.approx(0.025, abs=2e-3) and above + undefined == pytest.approx(0.025, abs=2e-3)
    else:
        assert (lo, hi) == (defined.min(), defined.max())


def test_the_worst_part_decides_and_shows_the_part_the_outcome_rests_on() -> None:
    """One rule for every worst case over parts (item types, attacks): the decision interval is the largest lower
    end to the largest upper end; the part shown is the one furthest beyond the bound when one is wholly beyond it,
    else the one coming closest to it; without intervals the largest value."""
    from unlearnspec.runtime.evaluation.intervals import worst_part

    def at_most(b: float):  # type: ignore[no-untyped-def]
        return lambda x: x <= b

    parts = {"documents": (0.30, 0.25, 0.35), "qa": (0.05, 0.00, 0.50), "qa_paraphrased": (0.20, 0.15, 0.28)}
    beyond = worst_part(parts, at_most(0.10), use_intervals=True)  # documents is wholly beyond 0.10
    assert (beyond.low, beyond.high, beyond.fails, beyond.key) == (0.25, 0.50, True, "documents")
    undecided = worst_part(parts, at_most(0.30), use_intervals=True)  # none wholly beyond; qa reaches furthest
    assert (undecided.fails, undecided.key) == (False, "qa")
    assert worst_part(parts, at_most(0.10), use_intervals=False).key == "documents"
    assert worst_part(parts, None, use_intervals=True).key == "documents"
    tie = worst_part({"a": (0.1, 0.0, 0.2), "b": (0.1, 0.0, 0.2)}, at_most(1.0), use_intervals=True)
    assert tie.key == "a"
    with pytest.raises(ValueError):
        worst_part({}, None, use_intervals=True)
