"""What an interval counts as an item: a question asked several ways is one item (cluster bootstrap), and an
AUC whose items order every pair alike is not known exactly (disjoint pairs, FRAMEWORK.md §7)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from scipy import stats

from unlearnspec.runtime.evaluation import intervals, joint_intervals

ALPHA_HALF = 0.025


def _free(n: int) -> float:
    """The share of a population that can differ from n agreeing draws at 95% (independent closed form)."""
    return float(1.0 - ALPHA_HALF ** (1.0 / n))


def _questions(k: int, per: int) -> list[str]:
    return [f"forget[{q}]" for q in range(k) for _ in range(per)]


def test_a_question_under_six_wrappers_is_one_item() -> None:
    """One question of twenty leaks under all six adversarial templates: 6/120 prompts, but one question in
    twenty. The interval is Clopper and Pearson's over questions (scipy's binomtest on 1 of 20), n = 20."""
    values = np.zeros(120)
    values[18:24] = 1.0  # question 3's six prompts
    e = intervals.mean_estimate(values, rng=np.random.default_rng(0), bounds=intervals.UNIT,
                                clusters=_questions(20, 6))
    ci = stats.binomtest(1, 20).proportion_ci(method="exact")
    assert e is not None and e.n == 20 and e.value == pytest.approx(6 / 120)
    assert (e.low, e.high) == pytest.approx((ci.low, ci.high))
    flat = intervals.mean_estimate(values, rng=np.random.default_rng(0), bounds=intervals.UNIT)
    assert flat is not None and flat.n == 120 and flat.high < 0.11 < e.high  # 120 "independent" prompts: too sure


def test_clustered_leaks_keep_their_level_where_prompt_counting_does_not() -> None:
    """Simulated: each question leaks (under every wrapper) with probability 0.2; twenty questions under six
    wrappers. Intervals over questions cover the true rate at least 95% of the time; treating the 120 prompts
    as independent covers it far less often."""
    rng = np.random.default_rng(5)
    clusters = _questions(20, 6)
    trials, covered, covered_flat = 400, 0, 0
    for _ in range(trials):
        leaks = np.repeat((rng.random(20) < 0.2).astype(float), 6)
        e = intervals.mean_estimate(leaks, rng=rng, bounds=intervals.UNIT, clusters=clusters)
        f = intervals.mean_estimate(leaks, rng=rng, bounds=intervals.UNIT)
        assert e is not None and f is not None
        covered += e.low <= 0.2 <= e.high
        covered_flat += f.low <= 0.2 <= f.high
    assert covered / trials >= 0.95
    assert covered_flat / trials < 0.85


def test_unequal_clusters_resample_questions_and_keep_the_prompt_mean() -> None:
    """Questions with different numbers of paraphrases: the point is the mean over prompts, the interval a
    bootstrap over questions of that mean (a ratio of sums), checked against a hand-written cluster bootstrap."""
    rng = np.random.default_rng(2)
    sizes = [1, 3, 2, 4, 1, 2, 3, 1, 2, 2, 3, 1]
    values = np.concatenate([np.clip(rng.normal(0.2 + 0.05 * i, 0.1, s), 0, 1) for i, s in enumerate(sizes)])
    clusters = [f"q{i}" for i, s in enumerate(sizes) for _ in range(s)]
    e = intervals.mean_estimate(values, rng=np.random.default_rng(0), bounds=intervals.UNIT, clusters=clusters)
    assert e is not None and e.n == len(sizes) and e.value == pytest.approx(values.mean())
    sums = np.array([values[np.array(clusters) == f"q{i}"].sum() for i in range(len(sizes))])
    counts = np.array(sizes, dtype=float)
    draws = np.random.default_rng(9).integers(0, len(sizes), (20000, len(sizes)))
    ratios = sums[draws].sum(axis=1) / counts[draws].sum(axis=1)
    z = np.sqrt(12 / 11) * stats.t.ppf(0.975, 11)  # the expanded percentile level over 12 questions
    level = 1 - 2 * stats.norm.sf(z)
    ref_low, ref_high = np.quantile(ratios, [(1 - level) / 2, (1 + level) / 2])
    assert e.low == pytest.approx(ref_low, abs=0.01) and e.high == pytest.approx(ref_high, abs=0.01)
    gap = intervals.paired_gap_estimate(values, values * 0.5, rng=np.random.default_rng(0), bounds=intervals.UNIT,
                                        clusters=clusters)
    assert gap is not None and (gap.n, gap.n_other) == (len(sizes), len(sizes))
    assert gap.value == pytest.approx(values.mean() * 0.5) and gap.low < gap.value < gap.high


def test_questions_that_all_agree_get_the_distribution_free_interval_over_questions() -> None:
    """Every question leaks in exactly half its prompts: resampling questions always gives 0.5, so the
    interval is degenerate_interval's over the ten questions, not [0.5, 0.5]; the same for a gap."""
    values = np.tile([1.0, 0.0], 10)
    clusters = _questions(10, 2)
    e = intervals.mean_estimate(values, rng=np.random.default_rng(0), bounds=intervals.UNIT, clusters=clusters)
    assert e is not None and e.n == 10
    assert (e.low, e.high) == pytest.approx((0.5 - 0.5 * _free(10), 0.5 + 0.5 * _free(10)))
    g = intervals.paired_gap_estimate(values, np.zeros(20), rng=np.random.default_rng(0), bounds=intervals.UNIT,
                                      clusters=clusters)
    assert g is not None and (g.low, g.high) == pytest.approx((0.5 - 1.5 * _free(10), 0.5 + 0.5 * _free(10)))
    one_each = intervals.mean_estimate(np.r_[np.ones(3), np.zeros(7)], rng=np.random.default_rng(0),
                                       bounds=intervals.UNIT, clusters=[f"q{i}" for i in range(10)])
    plain = intervals.mean_estimate(np.r_[np.ones(3), np.zeros(7)], rng=np.random.default_rng(0),
                                    bounds=intervals.UNIT)
    assert one_each == plain  # one prompt per question: exactly the unclustered rules


def test_complete_separation_is_not_an_exact_auc() -> None:
    """Five members all above five non-members give an AUC of 1.0 in every resample; the interval is the
    distribution-free one over five disjoint (member, non-member) pairs, which covers an AUC of 0.9 — a
    separation that five against five show about a third of the time — where [1, 1] never does."""
    rng = np.random.default_rng(1)
    e = intervals.auc_estimate(np.arange(5.0) + 10, np.arange(8.0), True, rng=np.random.default_rng(0))
    assert e is not None and e.value == 1.0 and (e.low, e.high) == pytest.approx((1 - _free(5), 1.0))
    shift = stats.norm.ppf(0.9) * np.sqrt(2)  # two unit normals this far apart: P(member > non-member) = 0.9
    separated = 0
    for _ in range(300):
        m, n = rng.normal(shift, 1, 5), rng.normal(0, 1, 5)
        a = intervals.auc_estimate(m, n, True, rng=rng)
        assert a is not None
        if a.value == 1.0:
            separated += 1
            assert a.low <= 0.9
    assert separated > 30
    tied = intervals.auc_estimate(np.zeros(6), np.zeros(9), True, rng=np.random.default_rng(0))
    assert tied is not None and (tied.low, tied.high) == pytest.approx((0.5 - 0.5 * _free(6), 0.5 + 0.5 * _free(6)))


def test_two_models_that_order_every_pair_alike_have_an_uncertain_gap() -> None:
    """The unlearned and the reference model order every member–non-member pair the same way (different
    scores, same ranks): the gap is 0 in every resample, yet other items could order differently, so the gap
    gets degenerate_interval over [-1, 1] with min(members, non-members) pairs — alone and in the joint."""
    rng = np.random.default_rng(3)
    m, n = rng.normal(1, 1, 7), rng.normal(0, 1, 9)
    g = intervals.gap_of_aucs_estimate(m, n, m * 2 + 1, n * 2 + 1, True, rng=np.random.default_rng(0))
    assert g is not None and g.value == 0.0 and (g.low, g.high) == pytest.approx((-_free(7), _free(7)))
    other = joint_intervals.GapPair("qa", rng.normal(1, 1, 12), rng.normal(0, 1, 12), rng.normal(0, 1, 12),
                                    rng.normal(0, 1, 12), True)
    est, level = joint_intervals.joint_gap_estimates(
        [joint_intervals.GapPair("documents", m, n, m * 2 + 1, n * 2 + 1, True), other], rng=np.random.default_rng(0))
    flat = est[0]
    p = float(1 - ((1 - level) / 2) ** (1 / 7))
    assert flat is not None and (flat.low, flat.high) == pytest.approx((-p, p)) and flat.confidence == level
    assert est[1] is not None and est[1].low < est[1].value < est[1].high


def test_a_combination_of_two_fixed_aucs_spans_the_box_of_their_intervals() -> None:
    """PrivLeak-like combinations (over pooled types, by record): when both AUCs are fixed by complete
    separation, the combination's interval is its range over each AUC's distribution-free interval at half the
    miss rate (monotone combination)."""
    m, n = np.arange(6.0) + 10, np.arange(6.0)
    ids_m, ids_n = [f"f{i}" for i in range(6)], [f"h{i}" for i in range(6)]

    def by_record(mb: np.ndarray, nb: np.ndarray, combine: Any) -> intervals.Estimate | None:
        return joint_intervals.gap_of_aucs_by_record(m, n, mb, nb, True, ids_m, ids_n, combine=combine,
                                                     rng=np.random.default_rng(0))

    e = by_record(-m, -n, lambda a, b: a + b)
    p = float(1 - (0.025 / 2) ** (1 / 6))
    assert e is not None and e.value == 1.0  # AUC 1 (a) + AUC 0 (b)
    assert (e.low, e.high) == pytest.approx((1 - p, 1 + p))

    def privleak(a: Any, b: Any) -> Any:
        return 100 * (b - a) / (1 - b)

    fixed = by_record(-m, -n, privleak)
    assert fixed is not None and fixed.value == pytest.approx(-100.0)
    assert (fixed.low, fixed.high) == pytest.approx((privleak(1, 0), privleak(1 - p, p)))
    # a reference whose AUC reaches 1 in some resamples: PrivLeak is undefined there, and so is its interval
    assert by_record(np.r_[np.arange(5.0) + 10, 2.5], n, privleak) is None
    # one record on a side: no population to speak of, and PrivLeak has no bounded range to widen to
    assert joint_intervals.gap_of_aucs_by_record(m[:1], n, m[:1], n, True, ids_m[:1], ids_n, combine=privleak,
                                                 rng=np.random.default_rng(0)) is None


def test_a_mean_over_few_items_takes_its_percentiles_at_the_expanded_level() -> None:
    """Hesterberg's expanded percentile interval: the level whose normal quantile is sqrt(n / (n - 1)) times
    Student's t quantile. Simulated on skewed per-item scores (beta(2, 5), mean 2/7) at six items, it covers
    the true mean more often than the plain 95% percentile interval (94% against 89% in this simulation;
    bench/bench_coverage.py measures both over more draws and sizes)."""
    for n in (2, 6, 20, 200):
        z = np.sqrt(n / (n - 1)) * stats.t.ppf(0.975, n - 1)
        assert intervals.expanded_level(0.95, n) == pytest.approx(1 - 2 * stats.norm.sf(z))
    assert intervals.expanded_level(0.95, 6) > 0.99 and intervals.expanded_level(0.95, 5000) == pytest.approx(0.95, abs=1e-3)
    rng = np.random.default_rng(0)
    truth, trials = 2 / 7, 300
    covered = plain = 0
    for _ in range(trials):
        x = rng.beta(2, 5, 6)
        e = intervals.mean_estimate(x, rng=rng, bounds=intervals.UNIT)
        assert e is not None
        covered += e.low <= truth <= e.high
        ref = stats.bootstrap((x,), np.mean, confidence_level=0.95, method="percentile", random_state=rng)
        plain += ref.confidence_interval.low <= truth <= ref.confidence_interval.high
    assert covered / trials >= 0.9 and (covered - plain) / trials >= 0.04


def test_one_leak_never_gives_a_tighter_bound_than_none() -> None:
    """Twenty questions under six wrappers: with no leak the upper limit is the rule of three over questions
    (0.168); one leaked prompt must not bring it down (a bootstrap of the questions said [0, 0.033], a pass of
    `leak_rate <= 0.05`). The exact bound on the share of questions that leaked at all keeps it up. The same for
    a gap of two shares on the same items (a probe's hits, unlearned minus reference)."""
    clusters = _questions(20, 6)
    none = intervals.mean_estimate(np.zeros(120), rng=np.random.default_rng(0), bounds=intervals.UNIT,
                                   clusters=clusters)
    one = np.zeros(120)
    one[7] = 1.0
    once = intervals.mean_estimate(one, rng=np.random.default_rng(0), bounds=intervals.UNIT, clusters=clusters)
    assert none is not None and once is not None
    assert none.high == pytest.approx(_free(20)) and once.high >= none.high
    assert once.high >= stats.binomtest(1, 20).proportion_ci(method="exact").high  # 1 of 20 questions leaked at all
    hits = np.zeros(20)
    hits[3] = 1.0
    gap0 = intervals.paired_gap_estimate(np.zeros(20), np.zeros(20), rng=np.random.default_rng(0),
                                         bounds=intervals.UNIT)
    gap1 = intervals.paired_gap_estimate(hits, np.zeros(20), rng=np.random.default_rng(0), bounds=intervals.UNIT)
    assert gap0 is not None and gap1 is not None and gap1.high > gap0.high and gap1.low <= gap0.low / 2
    cp = stats.binomtest(1, 20).proportion_ci(confidence_level=0.975, method="exact").high
    assert gap1.high >= cp  # at most the share of items ahead at all, at half the miss rate


def test_a_few_items_get_at_least_hoeffdings_interval() -> None:
    """Below five items (or clusters) a percentile bootstrap covers far less than it states; the interval is then
    at least Hoeffding's, (hi - lo) * sqrt(log(2 / alpha) / (2 n)) either side, clipped to the range. Simulated:
    three questions of two prompts each, per-question means spread over [0, 1], cover the truth at 95%."""
    x = np.array([0.2, 0.35, 0.5])
    e = intervals.mean_estimate(x, rng=np.random.default_rng(0), bounds=intervals.UNIT)
    half = np.sqrt(np.log(2 / 0.05) / 6)
    assert e is not None and e.low <= max(0.0, x.mean() - half) and e.high >= min(1.0, x.mean() + half)
    rng = np.random.default_rng(4)
    covered, trials = 0, 300
    for _ in range(trials):
        values = np.repeat(rng.beta(2, 5, 3), 2) + rng.normal(0, 0.01, 6)
        values = np.clip(values, 0, 1)
        c = intervals.mean_estimate(values, rng=rng, bounds=intervals.UNIT, clusters=_questions(3, 2))
        assert c is not None and c.n == 3
        covered += c.low <= 2 / 7 <= c.high
    assert covered / trials >= 0.95


def test_a_statistic_with_a_known_range_is_never_exact_from_one_item() -> None:
    """paired_estimate (relearning recoveries, utility drops) on one item, or on items that give the same value
    in every resample, spans degenerate_interval over the statistic's range when the caller knows it."""
    def first(a: np.ndarray, axis: int = -1) -> np.ndarray:
        return np.mean(a, axis=axis)

    one = intervals.paired_estimate([[0.4]], first, rng=np.random.default_rng(0), span=(0.0, 1.0))
    assert one is not None and (one.low, one.high) == pytest.approx(intervals.degenerate_interval(0.4, 1, 0.95, (0, 1)))
    same = intervals.paired_estimate([[0.4] * 8], first, rng=np.random.default_rng(0), span=(0.0, 1.0))
    assert same is not None and (same.low, same.high) == pytest.approx((0.4 - 0.4 * _free(8), 0.4 + 0.6 * _free(8)))
    bare = intervals.paired_estimate([[0.4] * 8], first, rng=np.random.default_rng(0))
    assert bare is not None and bare.low == bare.high == pytest.approx(0.4)  # no range known: no honest widening


def test_a_value_past_its_range_by_rounding_keeps_the_range() -> None:
    """A ROUGE of 1 + 1e-12 is 1 with rounding noise: the [0, 1] rules still apply (not a zero-width bootstrap)."""
    e = intervals.mean_estimate(np.full(10, 1.0 + 1e-12), rng=np.random.default_rng(0), bounds=intervals.UNIT)
    assert e is not None and e.low == pytest.approx(1 - _free(10)) and e.high == pytest.approx(1.0)


def test_pooled_item_types_are_resampled_by_record() -> None:
    """PrivLeak pools documents, questions and paraphrases; a record's items are one draw. Giving every record
    two identical items must not narrow the interval (it is the same evidence), where resampling items as if
    independent does; with one item a record it agrees with the item bootstrap (the same statistic, other draws)."""
    rng = np.random.default_rng(12)
    m, n = rng.normal(0.8, 1, 15), rng.normal(0, 1, 15)
    mb, nb = rng.normal(0.2, 1, 15), rng.normal(0, 1, 15)
    ids_m, ids_n = [f"f{i}" for i in range(15)], [f"h{i}" for i in range(15)]

    def minus(a: object, b: object) -> object:
        return a - b  # type: ignore[operator]

    once = joint_intervals.gap_of_aucs_by_record(m, n, mb, nb, True, ids_m, ids_n, combine=minus,
                                                 rng=np.random.default_rng(0), n_resamples=4000)
    twice = joint_intervals.gap_of_aucs_by_record(np.repeat(m, 2), np.repeat(n, 2), np.repeat(mb, 2), np.repeat(nb, 2),
                                                  True, np.repeat(ids_m, 2).tolist(), np.repeat(ids_n, 2).tolist(),
                                                  combine=minus, rng=np.random.default_rng(0), n_resamples=4000)
    items = intervals.gap_of_aucs_estimate(np.repeat(m, 2), np.repeat(n, 2), np.repeat(mb, 2), np.repeat(nb, 2), True,
                                           rng=np.random.default_rng(0), n_resamples=4000)
    plain = intervals.gap_of_aucs_estimate(m, n, mb, nb, True, rng=np.random.default_rng(0), n_resamples=4000)
    assert once is not None and twice is not None and items is not None and plain is not None
    assert (once.n, once.n_other, twice.n, twice.n_other) == (15, 15, 15, 15)
    assert twice.value == pytest.approx(once.value) == pytest.approx(plain.value)
    assert (twice.low, twice.high) == pytest.approx((once.low, once.high), abs=0.03)
    assert (once.low, once.high) == pytest.approx((plain.low, plain.high), abs=0.05)
    assert items.high - items.low < 0.85 * (twice.high - twice.low)  # duplicates counted twice: too narrow


def _smallest_n(clears: Any, start: int) -> int:
    n = start
    while not clears(n):
        n += 1
    return n


def test_items_to_settle_an_exact_share_of_none_grows_as_one_over_n() -> None:
    """No leak in 20 questions: Clopper and Pearson's upper limit is 0.168, inconclusive on ``<= 0.05``. The number
    of questions at which 0 of n would clear 0.05 (scipy's binomtest, searched independently) is 72; the estimate
    is within 10% of it, where a 1/sqrt(n) rule says about three times as many."""
    e = intervals.mean_estimate(np.zeros(20), rng=np.random.default_rng(0), bounds=intervals.UNIT)
    assert e is not None and e.low == 0.0
    exact = _smallest_n(lambda n: stats.binomtest(0, n).proportion_ci(method="exact").high <= 0.05, 21)
    guess = intervals.items_to_settle(e.n, e.low, e.high, e.value, 0.05)
    assert guess is not None and abs(guess - exact) <= 0.1 * exact
    assert exact * (e.high / 0.05) > 2.5 * guess  # the square-root rule's figure


def test_items_to_settle_a_two_sided_interval_grows_as_one_over_root_n() -> None:
    """A mean of 0.3 with a normal-looking interval of half-width h at n items: the t interval of the same spread
    clears a bound 0.1 away at the n where t_{n-1} * sd / sqrt(n) = 0.1 (closed form, searched); the estimate is
    within 10% of it."""
    sd, n = 0.25, 20
    half = float(stats.t.ppf(0.975, n - 1)) * sd / np.sqrt(n)
    guess = intervals.items_to_settle(n, 0.3 - half, 0.3 + half, 0.3, 0.4)
    exact = _smallest_n(lambda m: float(stats.t.ppf(0.975, m - 1)) * sd / np.sqrt(m) <= 0.1, n + 1)
    assert guess is not None and abs(guess - exact) <= 0.1 * exact
    assert intervals.items_to_settle(n, 0.2, 0.4, 0.3, 0.3) is None  # on the bound: no sample settles it
