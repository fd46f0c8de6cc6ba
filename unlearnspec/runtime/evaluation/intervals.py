"""Uncertainty on every number: bootstrap confidence intervals over items, and KS-test power.

A verdict is a claim about a population of possible probes made from a handful of items
(FRAMEWORK.md §7), so every metric is reported with its sample size ``n`` and a confidence
interval at the plan's confidence level. The intervals are Efron's bootstrap over items, computed
by :func:`scipy.stats.bootstrap` (percentile method; ``n_resamples`` resamples) with a generator
seeded from the plan's seed, the check id and the model, so the same plan gives the same
intervals on every run:

* a mean over items (ROUGE, exact memorisation, leak rate, ...): one sample, resampled;
* a gap between two models on the same items (unlearned − reference ROUGE): the items are
  resampled once and both models' values follow them (``paired=True``);
* a membership AUC: members and non-members resampled separately (two independent samples), the
  statistic being the Mann–Whitney form of the ROC AUC (equal to
  :func:`sklearn.metrics.roc_auc_score`, ties counted one half);
* a KS-test p-value (TOFU forget quality): resampled like the AUC (or paired when both sides are
  the same items), with the exact p-value of the observed data and the smallest p-value the test
  can reach at these sample sizes (complete separation): ``2 / C(n + m, n)`` for 5 vs 5 items is
  0.0079, so such a test can only ever reject complete separation.

Why the percentile method: BCa is undefined on degenerate samples (every ROUGE equal to 1.0, a
perfectly separated AUC), which unlearning produces routinely. Such samples get a distribution-free
interval instead (:func:`degenerate_interval`), never the zero-width one a bootstrap gives. A
percentile interval of a mean is too narrow at small ``n`` (it covers about 85% instead of 95% at six
items), so means and paired statistics take their percentiles at Hesterberg's expanded level
(:func:`expanded_level`).
"""

from __future__ import annotations

import math
import warnings
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import numpy as np
from numpy.typing import NDArray
from scipy import special, stats

N_RESAMPLES = 1000
DEFAULT_CONFIDENCE = 0.95
K = TypeVar("K")


def seed_for(plan_seed: int, *parts: str) -> np.random.Generator:
    """A generator seeded from the plan's seed and stable names (check id, model): reproducible
    across runs and processes (``zlib.crc32``, not Python's salted ``hash``)."""
    return np.random.default_rng([int(plan_seed) & 0xFFFFFFFF, *(zlib.crc32(p.encode()) for p in parts)])


@dataclass(frozen=True)
class Estimate:
    """A statistic, its interval at ``confidence`` and the sample sizes behind it."""

    value: float
    low: float
    high: float
    n: int
    n_other: int | None = None  # the second sample's size (non-members, reference items)
    confidence: float = DEFAULT_CONFIDENCE
    point: bool = False  # a value without an interval (low = high = value stand in): never shown as one

    @property
    def interval(self) -> tuple[float, float]:
        return (self.low, self.high)


def _floats(values: Sequence[float | None] | NDArray[Any]) -> NDArray[np.float64]:
    """Per-item values as floats, a missing one (``None``) as NaN."""
    return np.asarray([np.nan if v is None else v for v in values], dtype=np.float64)


def _finite(values: Sequence[float | None] | NDArray[Any]) -> NDArray[np.float64]:
    arr = _floats(values)
    return arr[np.isfinite(arr)]


def clopper_pearson(successes: int, n: int, confidence: float) -> tuple[float, float]:
    """Clopper and Pearson's exact binomial interval for ``successes`` of ``n`` (``scipy.stats.binomtest``)."""
    ci = stats.binomtest(int(successes), int(n)).proportion_ci(confidence_level=confidence, method="exact")
    return float(ci.low), float(ci.high)


def expanded_level(confidence: float, n: int) -> float:
    """The percentile level that corrects a bootstrap of a mean over ``n`` items for its narrowness at small ``n``
    (Hesterberg's *expanded percentile interval*, The American Statistician 69(4), 2015): the level whose normal
    quantile is ``sqrt(n / (n - 1))`` times Student's t quantile at ``confidence`` with ``n - 1`` degrees of
    freedom. It is 99.5% for 6 items, 96.8% for 20 and tends to ``confidence`` as ``n`` grows."""
    if n < 2:
        return confidence
    z = math.sqrt(n / (n - 1)) * float(stats.t.ppf((1.0 + confidence) / 2.0, n - 1))
    return float(2.0 * stats.norm.cdf(z) - 1.0)


def _bootstrap(data: tuple[NDArray[np.float64], ...], statistic: Callable[..., Any], *, confidence: float,
               rng: np.random.Generator, paired: bool = False, vectorized: bool = True,
               n_resamples: int = N_RESAMPLES, cells: int = 1, expand: int | None = None) -> tuple[float, float]:
    """``scipy.stats.bootstrap`` (percentile); ``cells`` is the memory one resample's statistic
    needs (``n_m * n_n`` for an AUC), so resamples are batched to about 2e7 cells at a time. ``expand``: the
    number of items of a mean-like statistic, whose interval is widened by :func:`expanded_level`."""
    batch = max(1, int(2e7 // max(1, cells))) if vectorized else None
    if expand is not None:
        confidence = expanded_level(confidence, expand)
    with warnings.catch_warnings():  # undefined resamples are handled below, not warned about
        warnings.simplefilter("ignore", stats.DegenerateDataWarning)
        res = stats.bootstrap(data, statistic, confidence_level=confidence, n_resamples=n_resamples,
                              method="percentile", paired=paired, vectorized=vectorized, random_state=rng,
                              batch=batch)
    lo, hi = float(res.confidence_interval.low), float(res.confidence_interval.high)
    if math.isnan(lo) or math.isnan(hi):
        return undefined_as_misses(np.asarray(res.bootstrap_distribution, dtype=float).ravel(), confidence)
    return lo, hi


def undefined_as_misses(resamples: NDArray[np.float64], confidence: float) -> tuple[float, float]:
    """A percentile interval from resamples some of which the statistic could not compute (NaN: a resample that
    drew no record of one of a utility's components, say). Each undefined resample counts against both ends, as
    if it lay beyond the lower end and beyond the upper end, so the interval errs wide, never narrow: with a share
    ``f`` of them below ``a = (1 - confidence) / 2``, the ends are the defined resamples' quantiles at
    ``(a - f) / (1 - f)`` and ``(1 - a) / (1 - f)``; from ``f >= a`` on, the interval spans every defined resample
    (the rule :mod:`joint_intervals` follows). An infinite resample (a ratio whose denominator reached 0) is
    defined and ordered: an end that falls on one is infinite. NaN, NaN when none is defined."""
    defined = np.sort(resamples[~np.isnan(resamples)])
    if defined.size == 0:
        return math.nan, math.nan
    f = 1.0 - defined.size / resamples.size
    a = (1.0 - confidence) / 2.0
    if f >= a:
        return float(defined[0]), float(defined[-1])

    def at(q: float) -> float:  # numpy's linear interpolation; next to an infinite resample, the outer neighbour
        pos = q * (defined.size - 1)
        i, j = math.floor(pos), math.ceil(pos)
        if not (math.isfinite(defined[i]) and math.isfinite(defined[j])):
            return float(defined[i] if q <= 0.5 else defined[j])
        return float(defined[i] + (defined[j] - defined[i]) * (pos - i))

    return at((a - f) / (1.0 - f)), at((1.0 - a) / (1.0 - f))


def _mean(x: NDArray[np.float64], axis: int = -1) -> Any:
    return np.mean(x, axis=axis)


Bounds = tuple[float, float]
UNIT: Bounds = (0.0, 1.0)
"""The range of a per-item value that is a share or a score in [0, 1] (ROUGE, a leak, a correct choice)."""


def degenerate_interval(value: float, n: int, confidence: float, bounds: Bounds) -> tuple[float, float]:
    """An interval for the mean of a quantity known to lie in ``bounds`` when all ``n`` items gave ``value``.

    Resampling such a sample gives ``value`` every time, an interval of width zero that would decide any
    bound: five prompts that leaked nothing do not show a leak rate under 5%. Without assuming a
    distribution: if a share ``q`` of the population differs from ``value``, ``n`` draws all equal it with
    probability ``(1 - q)^n``, which falls below ``(1 - confidence) / 2`` once ``q`` exceeds
    ``p = 1 - ((1 - confidence) / 2)^(1/n)``; those items can move the mean by at most ``p`` times the room
    to either bound. For a share of 0 out of ``n`` this is Clopper and Pearson's exact upper limit (the
    "rule of three": about 3.7/n at 95%)."""
    low, high = bounds
    p = 1.0 - ((1.0 - confidence) / 2.0) ** (1.0 / max(1, n))
    return (value - (value - low) * p, value + (high - value) * p)


FEW = 5
"""Below this many items (or clusters, or disjoint member–non-member pairs) a percentile bootstrap covers far
less than it states (about 49% at two clusters, 75% at three): such intervals are widened to Hoeffding's."""


def hoeffding_union(value: float, low: float, high: float, n: int, confidence: float,
                    span: Bounds) -> tuple[float, float]:
    """``[low, high]`` widened, when ``n < FEW``, to Hoeffding's interval for the mean of ``n`` independent values in
    ``span`` (half-width ``(hi - lo) * sqrt(log(2 / alpha) / (2 n))``, Hoeffding 1963; for an AUC, ``n`` is the
    number of disjoint member–non-member pairs, his bound for U-statistics). It holds at any ``n`` without
    assuming a distribution, so the union does too; it is wide, which is what so few items can show."""
    if n >= FEW:
        return low, high
    if confidence >= 1.0:
        return min(low, span[0]), max(high, span[1])
    half = (span[1] - span[0]) * math.sqrt(math.log(2.0 / (1.0 - confidence)) / (2.0 * max(1, n)))
    return min(low, max(span[0], value - half)), max(high, min(span[1], value + half))


def share_floors(low: float, high: float, any_of: int, all_of: int, n: int, confidence: float) -> tuple[float, float]:
    """A share's interval kept at least as wide as two exact bounds that hold whatever the items' dependence: the
    mean of values in [0, 1] is at most the share of items with any positive value (``any_of`` of ``n``) and at
    least the share whose values are all 1 (``all_of``), each bounded by Clopper and Pearson. So one leak can
    never give a tighter bound than none, as a bootstrap of one leaking question among twenty does."""
    return min(low, clopper_pearson(all_of, n, confidence)[0]), max(high, clopper_pearson(any_of, n, confidence)[1])


def _within(x: NDArray[np.float64], bounds: Bounds | None) -> tuple[NDArray[np.float64], Bounds | None]:
    """Values outside ``bounds`` by rounding only (1 + 1e-12) are clipped; further out, the bounds are not the
    range the caller said, and are dropped (a bootstrap, as without them, rather than a wrong bound)."""
    if bounds is None:
        return x, None
    tol = 1e-9 * max(1.0, bounds[1] - bounds[0])
    if np.any(x < bounds[0] - tol) or np.any(x > bounds[1] + tol):
        return x, None
    return np.clip(x, bounds[0], bounds[1]), bounds


def _by_cluster(x: NDArray[np.float64], clusters: Sequence[str] | None) -> tuple[NDArray[np.float64], NDArray[np.float64]] | None:
    """Per-cluster sums and counts of ``x`` (finite values, in order), or ``None`` when every value is its own
    cluster. A cluster is the unit that was sampled: a question asked through six adversarial templates is one
    question, not six independent ones, so its prompts are resampled together (a cluster bootstrap)."""
    if clusters is None:
        return None
    _, inverse = np.unique(np.asarray(list(clusters), dtype=str), return_inverse=True)
    if int(inverse.max(initial=-1)) + 1 == x.size:
        return None
    return np.bincount(inverse, weights=x).astype(np.float64), np.bincount(inverse).astype(np.float64)


def _ratio(sums: NDArray[np.float64], counts: NDArray[np.float64], axis: int = -1) -> Any:
    return np.sum(sums, axis=axis) / np.sum(counts, axis=axis)


def _clustered_mean(value: float, sums: NDArray[np.float64], counts: NDArray[np.float64], *, confidence: float,
                    rng: np.random.Generator, bounds: Bounds | None, span: Bounds | None,
                    binary: bool = False, gap: bool = False) -> tuple[float, float]:
    """The interval of a mean over prompts grouped in clusters, the clusters being the items: each rule of
    :func:`mean_estimate` applied to the clusters' means (``span``: the range of one value; ``bounds`` only for
    Clopper and Pearson's interval, which needs values in [0, 1] and clusters of one size), else clusters
    resampled with the mean over their prompts as the statistic (a ratio of sums), kept at least as wide as
    :func:`share_floors` for a share (``binary``: every value 0 or 1) and :func:`hoeffding_union` for few clusters."""
    means = sums / counts
    c = int(sums.size)
    if bounds == UNIT and np.all(counts == counts[0]) and np.all((means == 0.0) | (means == 1.0)):
        return clopper_pearson(int(np.sum(means)), c, confidence)
    if c == 1 or np.all(means == means[0]):
        return degenerate_interval(value, c, confidence, span) if span is not None else (value, value)
    lo, hi = _bootstrap((sums, counts), _ratio, confidence=confidence, rng=rng, paired=True, expand=c)
    if binary and gap:  # a gap of two shares over questions: never tighter than the exact bounds on them
        lo, hi = _gap_floors(lo, hi, means, c, confidence)
    elif binary and bounds == UNIT:  # a share over questions: likewise
        lo, hi = share_floors(lo, hi, int(np.sum(sums > 0)), int(np.sum(sums == counts)), c, confidence)
    return hoeffding_union(value, lo, hi, c, confidence, span) if span is not None else (lo, hi)


def _finite_with(values: Sequence[float | None] | NDArray[Any], clusters: Sequence[str] | None
                 ) -> tuple[NDArray[np.float64], list[str] | None]:
    arr = _floats(values)
    ok = np.isfinite(arr)
    kept = None if clusters is None else [c for c, k in zip(clusters, ok, strict=True) if k]
    return arr[ok], kept


def mean_estimate(values: Sequence[float | None] | NDArray[Any], *, confidence: float = DEFAULT_CONFIDENCE,
                  rng: np.random.Generator, bounds: Bounds | None = None,
                  clusters: Sequence[str] | None = None) -> Estimate | None:
    """The mean of the finite values with its interval; ``None`` when there are none.

    With ``bounds`` (the range a per-item value can take): a share of items in {0, 1} gets Clopper and
    Pearson's exact binomial interval (``scipy.stats.binomtest``), which keeps its level at any ``n``
    where a bootstrap of a few items covers less; a sample whose items are all equal gets
    :func:`degenerate_interval`. Otherwise, and without ``bounds``, Efron's percentile bootstrap.

    ``clusters`` names the item each value belongs to (a question's record, for its paraphrases or its
    adversarial wrappers): values of one item are not independent, so the rules apply to the items, the
    interval's ``n`` is the number of items, and the point is still the mean over every value."""
    x, kept = _finite_with(values, clusters)
    if x.size == 0:
        return None
    x, bounds = _within(x, bounds)
    value = float(np.mean(x))
    grouped = _by_cluster(x, kept)
    if grouped is not None:
        lo, hi = _clustered_mean(value, *grouped, confidence=confidence, rng=rng, bounds=bounds, span=bounds,
                                 binary=bool(np.all((x == 0.0) | (x == 1.0))))
        return Estimate(value, lo, hi, int(grouped[0].size), confidence=confidence)
    n = int(x.size)
    if bounds == UNIT and np.all((x == 0.0) | (x == 1.0)):
        return Estimate(value, *clopper_pearson(int(np.sum(x)), n, confidence), n, confidence=confidence)
    if n == 1 or np.all(x == x[0]):
        lo, hi = degenerate_interval(value, n, confidence, bounds) if bounds is not None else (value, value)
        return Estimate(value, lo, hi, n, confidence=confidence)
    lo, hi = _bootstrap((x,), _mean, confidence=confidence, rng=rng, expand=n)
    if bounds is not None:
        lo, hi = hoeffding_union(value, lo, hi, n, confidence, bounds)
    return Estimate(value, lo, hi, n, confidence=confidence)


def _diff(a: NDArray[np.float64], b: NDArray[np.float64], axis: int = -1) -> Any:
    return np.mean(a, axis=axis) - np.mean(b, axis=axis)


def paired_gap_estimate(a: Sequence[float | None], b: Sequence[float | None], *,
                        confidence: float = DEFAULT_CONFIDENCE, rng: np.random.Generator,
                        bounds: Bounds | None = None, clusters: Sequence[str] | None = None) -> Estimate | None:
    """``mean(a) - mean(b)`` over the items where both are finite, items resampled in pairs. With ``bounds``
    (the range of each per-item value), items whose differences are all equal get
    :func:`degenerate_interval` over the range of a difference instead of an interval of width zero.
    ``clusters`` groups values of one item as :func:`mean_estimate` does."""
    pa, pb = _floats(a), _floats(b)
    ok = np.isfinite(pa) & np.isfinite(pb)
    kept = None if clusters is None else [c for c, k in zip(clusters, ok, strict=True) if k]
    pa, pb = pa[ok], pb[ok]
    if pa.size == 0:
        return None
    pa, bounds = _within(pa, bounds)
    pb, bounds = _within(pb, bounds)
    value = float(np.mean(pa) - np.mean(pb))
    d = pa - pb
    span = None if bounds is None else (bounds[0] - bounds[1], bounds[1] - bounds[0])
    binary = bounds == UNIT and bool(np.all(np.isin(pa, (0.0, 1.0))) and np.all(np.isin(pb, (0.0, 1.0))))
    grouped = _by_cluster(d, kept)
    if grouped is not None:
        lo, hi = _clustered_mean(value, *grouped, confidence=confidence, rng=rng, bounds=None, span=span,
                                 binary=binary, gap=True)
        c = int(grouped[0].size)
        return Estimate(value, lo, hi, c, c, confidence)
    if pa.size == 1 or np.all(d == d[0]):
        lo, hi = (value, value) if span is None else degenerate_interval(value, int(pa.size), confidence, span)
        return Estimate(value, lo, hi, int(pa.size), int(pb.size), confidence)
    lo, hi = _bootstrap((pa, pb), _diff, confidence=confidence, rng=rng, paired=True, expand=int(pa.size))
    if span is not None:
        lo, hi = hoeffding_union(value, lo, hi, int(pa.size), confidence, span)
    if binary:
        lo, hi = _gap_floors(lo, hi, d, int(pa.size), confidence)
    return Estimate(value, lo, hi, int(pa.size), int(pb.size), confidence)


def _gap_floors(low: float, high: float, d: NDArray[np.float64], n: int, confidence: float) -> tuple[float, float]:
    """:func:`share_floors` for a gap of two shares on the same items (``d``: each item's difference, or each
    question's mean difference, in [-1, 1]). The gap is at most the share of items where the first is ahead at
    all minus the share where it is behind on every prompt, and at least the share wholly ahead minus the share
    behind at all; each share bounded by Clopper and Pearson at half the miss rate (two per side)."""
    level = 1.0 - (1.0 - confidence) / 2.0
    ahead_any, ahead_all = (clopper_pearson(int(np.sum(c)), n, level) for c in (d > 0, d == 1.0))
    behind_any, behind_all = (clopper_pearson(int(np.sum(c)), n, level) for c in (d < 0, d == -1.0))
    return min(low, ahead_all[0] - behind_any[1]), max(high, ahead_any[1] - behind_all[0])


def auc_statistic(members: NDArray[np.float64], nonmembers: NDArray[np.float64], axis: int = -1) -> Any:
    """ROC AUC of members (higher score = member) vs non-members, vectorised over leading axes:
    the Mann–Whitney U statistic over ``n_m * n_n`` with ties counted one half."""
    m = np.moveaxis(np.asarray(members), axis, -1)[..., :, None]
    n = np.moveaxis(np.asarray(nonmembers), axis, -1)[..., None, :]
    # counted on the boolean comparisons (no float array of the pairs): the bootstraps' hot loop
    return (np.count_nonzero(m > n, axis=(-2, -1)) + 0.5 * np.count_nonzero(m == n, axis=(-2, -1))) \
        / (m.shape[-2] * n.shape[-1])


def pair_scores(members: NDArray[Any], nonmembers: NDArray[Any]) -> NDArray[np.float64]:
    """Each member–non-member pair's contribution to the AUC (1: the member scores higher, 1/2: a tie, 0: lower),
    members along the rows."""
    m, n = members[:, None], nonmembers[None, :]
    return (m > n) + 0.5 * (m == n)  # type: ignore[no-any-return]


def agreeing_pairs(scores: NDArray[Any]) -> bool:
    """Whether every pair scored the same: complete separation (an AUC of 0 or 1), every score tied, or two
    models that order every pair alike. Resampling such items gives the same AUC every time, an interval of
    width zero; :func:`degenerate_interval` over ``min(members, non-members)`` disjoint pairs is the one to use,
    since those pairs are independent draws whose mean is the population AUC (or gap of AUCs)."""
    return bool(scores.size) and bool(np.all(scores == scores.flat[0]))


def auc_estimate(member_scores: Sequence[float] | NDArray[Any], nonmember_scores: Sequence[float] | NDArray[Any],
                 higher_is_member: bool, *, confidence: float = DEFAULT_CONFIDENCE,
                 rng: np.random.Generator, n_resamples: int = N_RESAMPLES) -> Estimate | None:
    """The membership AUC with members and non-members resampled separately."""
    m, n = _finite(member_scores), _finite(nonmember_scores)
    if m.size == 0 or n.size == 0:
        return None
    if not higher_is_member:
        m, n = -m, -n
    value = float(auc_statistic(m, n))
    if m.size < 2 or n.size < 2:  # one item says nothing of the population on its side
        return Estimate(value, *degenerate_interval(value, 1, confidence, UNIT), int(m.size), int(n.size), confidence)
    k = min(m.size, n.size)
    if agreeing_pairs(pair_scores(m, n)):
        return Estimate(value, *degenerate_interval(value, k, confidence, UNIT), int(m.size), int(n.size), confidence)
    lo, hi = _bootstrap((m, n), auc_statistic, confidence=confidence, rng=rng, cells=m.size * n.size,
                        n_resamples=n_resamples, expand=k)
    lo, hi = delong_union(m, n, lo, hi, expanded_level(confidence, k))
    return Estimate(value, *hoeffding_union(value, lo, hi, k, confidence, UNIT), int(m.size), int(n.size), confidence)


def delong_union(m: NDArray[np.float64], n: NDArray[np.float64], low: float, high: float,
                 confidence: float) -> tuple[float, float]:
    """``[low, high]`` widened to DeLong's AUC interval (variance from the pair scores' row and column means, DeLong et
    al. 1988) on the logit scale (Qin & Hotilovac 2008): near an AUC of 1 a percentile bootstrap sits too high (88%
    coverage at 40 items a side and an AUC of 0.98, tests/test_stats_review.py); the union holds where either does."""
    a, s = float(auc_statistic(m, n)), pair_scores(m, n)
    var = float(np.var(s.mean(axis=1), ddof=1) / m.size + np.var(s.mean(axis=0), ddof=1) / n.size)
    if not (0.0 < a < 1.0 and var > 0.0):
        return low, high
    logit, half = math.log(a / (1.0 - a)), float(stats.norm.ppf((1.0 + confidence) / 2.0)) * math.sqrt(var) / (a - a * a)
    return min(low, float(special.expit(logit - half))), max(high, float(special.expit(logit + half)))


def gap_of_aucs_estimate(members_a: NDArray[Any], nonmembers_a: NDArray[Any], members_b: NDArray[Any],
                         nonmembers_b: NDArray[Any], higher_is_member: bool, *,
                         confidence: float = DEFAULT_CONFIDENCE, rng: np.random.Generator,
                         n_resamples: int = N_RESAMPLES) -> Estimate | None:
    """``AUC_a - AUC_b`` where both models scored the same member and non-member items: the members are
    resampled (both models' scores of an item follow it), the non-members apart. A single member (or
    non-member) says nothing of the population on its side, and two models that order every pair alike
    (:func:`agreeing_pairs`) give the same gap in every resample: both get :func:`degenerate_interval` over
    [-1, 1]; fewer than ``FEW`` items on a side, :func:`hoeffding_union`. (A combination such as MUSE PrivLeak,
    over pooled item types, is :func:`.joint_intervals.gap_of_aucs_by_record`.)"""
    ma, mb = np.asarray(members_a, dtype=np.float64), np.asarray(members_b, dtype=np.float64)
    na, nb = np.asarray(nonmembers_a, dtype=np.float64), np.asarray(nonmembers_b, dtype=np.float64)
    okm = np.isfinite(ma) & np.isfinite(mb)
    okn = np.isfinite(na) & np.isfinite(nb)
    ma, mb, na, nb = ma[okm], mb[okm], na[okn], nb[okn]
    if ma.size == 0 or na.size == 0:
        return None
    sign = 1.0 if higher_is_member else -1.0
    m2 = np.stack([sign * ma, sign * mb])  # (2, n_members): one item = one column
    n2 = np.stack([sign * na, sign * nb])

    def stat(mi: NDArray[Any], ni: NDArray[Any], axis: int = -1) -> Any:
        # indices into items, so that both models' scores of an item stay together
        idx_m, idx_n = mi.astype(np.int64), ni.astype(np.int64)
        return auc_statistic(m2[0][idx_m], n2[0][idx_n]) - auc_statistic(m2[1][idx_m], n2[1][idx_n])

    value = float(auc_statistic(m2[0], n2[0]) - auc_statistic(m2[1], n2[1]))
    k = min(ma.size, na.size)
    if k < 2 or agreeing_pairs(pair_scores(m2[0], n2[0]) - pair_scores(m2[1], n2[1])):
        return Estimate(value, *degenerate_interval(value, int(k), confidence, (-1.0, 1.0)), int(ma.size),
                        int(na.size), confidence)
    idx = (np.arange(ma.size, dtype=np.float64), np.arange(na.size, dtype=np.float64))
    lo, hi = _bootstrap(idx, stat, confidence=confidence, rng=rng, cells=2 * ma.size * na.size,
                        n_resamples=n_resamples, expand=int(k))
    return Estimate(value, *hoeffding_union(value, lo, hi, int(k), confidence, (-1.0, 1.0)), int(ma.size),
                    int(na.size), confidence)


def paired_estimate(arrays: Sequence[Sequence[float | None] | NDArray[Any]], statistic: Callable[..., Any], *,
                    confidence: float = DEFAULT_CONFIDENCE, rng: np.random.Generator,
                    keep_missing: bool = False, span: Bounds | None = None) -> Estimate | None:
    """A statistic of several models' values on the same items (e.g. the share of forgotten
    knowledge a relearning attack restores, from original, unlearned and attacked ROUGE), items
    resampled together. ``statistic(*arrays, axis=-1)`` must be vectorised. Items with a missing
    value in any array are dropped, unless ``keep_missing`` (the statistic then handles NaN itself,
    e.g. a NaN-mean per component of a utility whose components are measured on different items).
    ``span``, the range the statistic can take: one item, resamples that never move or that the statistic
    cannot compute get :func:`degenerate_interval` over it, and fewer than ``FEW`` items
    :func:`hoeffding_union`, rather than an interval of width zero."""
    data = [_floats(a) for a in arrays]
    if not keep_missing:
        ok = np.all([np.isfinite(d) for d in data], axis=0)
        data = [d[ok] for d in data]
    if data[0].size == 0:
        return None
    with np.errstate(divide="ignore", invalid="ignore"):
        value = float(statistic(*data, axis=-1))
    if not math.isfinite(value):
        return None
    n = int(data[0].size)
    known = span if span is not None and span[0] <= value <= span[1] else None  # the range, if it holds the value
    if n > 1:
        with np.errstate(divide="ignore", invalid="ignore"):
            lo, hi = _bootstrap(tuple(data), statistic, confidence=confidence, rng=rng, paired=True, expand=n)
        if math.isfinite(lo) and math.isfinite(hi) and lo != hi:
            lo, hi = min(lo, value), max(hi, value)
            if known is not None:
                lo, hi = hoeffding_union(value, lo, hi, n, confidence, known)
            return Estimate(value, lo, hi, n, confidence=confidence)
    # one item, resamples that never move, or ones the statistic cannot compute: without a known range there is
    # no interval to give (a width of zero would decide any bound), so the value stands alone
    if known is None:
        return Estimate(value, value, value, n, confidence=confidence, point=True)
    lo, hi = degenerate_interval(value, n, confidence, known)
    return Estimate(value, lo, hi, n, confidence=confidence)


@dataclass(frozen=True)
class WorstPart(Generic[K]):
    """The worst of several parts measured on their own (item types, attacks): the part the outcome rests on and the
    decision interval of the worst case."""

    key: K
    low: float  # the largest of the parts' lower ends
    high: float  # the largest of their upper ends
    fails: bool  # the bound fails even at the largest lower end: some part is wholly beyond it


def worst_part(parts: Mapping[K, tuple[float, float, float]], holds: Callable[[float], bool] | None,
               use_intervals: bool) -> WorstPart[K]:
    """The worst case over ``parts`` (key -> value, low, high) of a quantity bounded from above (a magnitude, a metric
    read with ``<=``), each part's interval at a level at which all of them hold together (Bonferroni, a joint
    bootstrap): the bound holds for every part when it holds at the largest upper end, and fails for one when it fails
    at the largest lower end (FRAMEWORK.md §7: a pool could average a complete failure of one part with nothing on
    another). The part shown as deciding is the one the outcome rests on: the one furthest beyond the bound when one
    is wholly beyond it, else the one coming closest to it (its upper end: the one keeping the check from passing when
    it is undecided); without intervals, or without a bound, the one of largest value. Ties go to the first part."""
    if not parts:
        raise ValueError("the worst of no parts")
    low = max(p[1] for p in parts.values())
    high = max(p[2] for p in parts.values())
    ranked = use_intervals and holds is not None
    fails = ranked and holds is not None and not holds(low)
    col = (1 if fails else 2) if ranked else 0
    return WorstPart(key=max(parts, key=lambda k: parts[k][col]), low=low, high=high, fails=fails)


def abs_interval(low: float, high: float) -> tuple[float, float]:
    """The interval of ``|x|`` given the interval of ``x``."""
    if low <= 0.0 <= high:
        return (0.0, max(-low, high))
    return (min(abs(low), abs(high)), max(abs(low), abs(high)))


@dataclass(frozen=True)
class KSResult:
    """A two-sample KS test with its interval and its power at these sample sizes."""

    pvalue: float
    statistic: float
    low: float
    high: float
    n: int
    n_other: int
    min_pvalue: float  # the smallest p-value attainable at (n, n_other): complete separation
    method: str
    confidence: float = DEFAULT_CONFIDENCE


def ks_min_pvalue(n: int, m: int) -> float:
    """The smallest two-sided KS p-value reachable with ``n`` vs ``m`` items: the exact p-value of
    two completely separated samples (``2 / C(n + m, n)`` when it is exact)."""
    if n == 0 or m == 0:
        return math.nan
    a = np.arange(n, dtype=np.float64)
    b = np.arange(n, n + m, dtype=np.float64)
    return float(stats.ks_2samp(a, b, method="exact" if n * m <= 10000 else "auto").pvalue)


def ks_statistic(a: NDArray[Any], b: NDArray[Any], axis: int = -1) -> Any:
    """The two-sample KS statistic ``D = sup |F_a - F_b|``, vectorised over leading axes (ties
    handled: the ECDF difference is read only after the last of equal values)."""
    a, b = np.moveaxis(np.asarray(a, dtype=np.float64), axis, -1), np.moveaxis(np.asarray(b, dtype=np.float64), axis, -1)
    n, m = a.shape[-1], b.shape[-1]
    a, b = np.broadcast_arrays(a, b[..., :1]) [0], np.broadcast_arrays(b, a[..., :1])[0]
    c = np.concatenate([a, b], axis=-1)
    w = np.concatenate([np.full(n, 1.0 / n), np.full(m, -1.0 / m)])
    order = np.argsort(c, axis=-1, kind="stable")
    cs = np.take_along_axis(c, order, axis=-1)
    cum = np.cumsum(w[order], axis=-1)
    last = np.ones(cs.shape, dtype=bool)
    last[..., :-1] = cs[..., 1:] != cs[..., :-1]
    return np.max(np.where(last, np.abs(cum), 0.0), axis=-1)


def ks_asymp_pvalue(a: NDArray[Any], b: NDArray[Any], axis: int = -1) -> Any:
    """The KS p-value as ``scipy.stats.ks_2samp(method="asymp")`` computes it (``kstwo`` with
    ``n*m/(n+m)`` rounded), vectorised: the bootstrap's statistic for forget quality."""
    n, m = np.shape(a)[axis], np.shape(b)[axis]
    en = round(n * m / (n + m))
    return stats.kstwo.sf(ks_statistic(a, b, axis=axis), en)


def ks_estimate(a: Sequence[float] | NDArray[Any], b: Sequence[float] | NDArray[Any], *, paired: bool = False,
                confidence: float = DEFAULT_CONFIDENCE, rng: np.random.Generator) -> KSResult | None:
    """TOFU forget quality: the KS-test p-value of ``a`` vs ``b`` (exact where scipy can), its
    bootstrap interval (items resampled; together when ``paired``), and the smallest attainable
    p-value."""
    xa, xb = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if paired and xa.size == xb.size:
        ok = np.isfinite(xa) & np.isfinite(xb)
        xa, xb = xa[ok], xb[ok]
    else:
        paired = False
        xa, xb = xa[np.isfinite(xa)], xb[np.isfinite(xb)]
    if xa.size == 0 or xb.size == 0:
        return None
    method = "exact" if xa.size * xb.size <= 10000 else "auto"
    res = stats.ks_2samp(xa, xb, method=method)
    p = float(res.pvalue)

    min_p = ks_min_pvalue(int(xa.size), int(xb.size))
    if xa.size < 2 or xb.size < 2:  # one item says nothing of its side's distribution: any attainable p-value
        lo, hi = min(min_p, p), 1.0
    else:
        lo, hi = _bootstrap((xa, xb), ks_asymp_pvalue, confidence=confidence, rng=rng, paired=paired,
                            cells=xa.size + xb.size)
        lo, hi = min(lo, p), max(hi, p)
    return KSResult(pvalue=p, statistic=float(res.statistic), low=lo, high=hi, n=int(xa.size), n_other=int(xb.size),
                    min_pvalue=min_p, method=method, confidence=confidence)


def items_to_settle(n: int, low: float, high: float, value: float, bound: float) -> int | None:
    """Roughly how many items would make an interval clear ``bound`` if the estimate holds (None when it
    sits on the bound: no finite sample settles it). A two-sided interval's half-width shrinks as
    ``1/sqrt(n)``, so ``n * (half-width / distance to the bound)^2``; an interval that ends at the
    estimate itself -- an exact one at a share of 0 or 1 (Clopper-Pearson at 0 of n, agreeing pairs)
    -- shrinks as ``1/n`` (its open end is about ``log(2/alpha) / n``), so ``n * width / distance``."""
    margin = abs(value - bound)
    half = max(abs(high - value), abs(value - low), (high - low) / 2)
    if n <= 0 or margin <= 1e-12 or not math.isfinite(half):
        return None
    edge = min(abs(value - low), abs(high - value)) <= 1e-9 * max(1.0, half)
    ratio = half / margin
    return max(n + 1, math.ceil(n * (ratio if edge else ratio ** 2)))
