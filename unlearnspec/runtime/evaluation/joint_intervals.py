"""Simultaneous intervals for the membership check's AUC gaps (one bootstrap for every item type and attack).

The worst of several gaps decides a membership check (FRAMEWORK.md §7: worst case over item types), so
each gap's interval must hold while all the others do; :func:`joint_gap_estimates` calibrates them together.
:func:`gap_of_aucs_by_record` resamples pooled item types by record (MUSE PrivLeak).
The single-interval machinery (one AUC, one gap, means, KS) is in :mod:`.intervals`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .intervals import (
    DEFAULT_CONFIDENCE,
    N_RESAMPLES,
    Estimate,
    agreeing_pairs,
    auc_statistic,
    degenerate_interval,
    expanded_level,
    hoeffding_union,
    pair_scores,
    undefined_as_misses,
)


def bonferroni(confidence: float, k: int) -> float:
    """The level at which each of ``k`` intervals holds so that all hold together at ``confidence`` whatever
    their dependence (the miss probabilities add up): the most a joint calibration can need."""
    return 1.0 - (1.0 - confidence) / max(1, k)


@dataclass(frozen=True)
class GapPair:
    """One membership comparison of a joint bootstrap: model a's AUC on ``members`` vs ``nonmembers`` minus
    model b's on the same items (``members_b`` None: minus 0.5, chance). Pairs with the same ``group`` and
    the same item counts score the same items (one item type, several attacks) and are resampled together.
    ``records`` names the record behind each member and each non-member: pairs of different groups whose
    items come from the same records in the same order (a QA record's question and its paraphrase) are
    resampled together too, by record, so the bootstrap keeps their dependence."""

    group: str
    members_a: NDArray[Any]
    nonmembers_a: NDArray[Any]
    members_b: NDArray[Any] | None
    nonmembers_b: NDArray[Any] | None
    higher_is_member: bool
    records: tuple[tuple[str, ...], tuple[str, ...]] | None = None


def _weighted_auc(m: NDArray[Any], n: NDArray[Any], wm: NDArray[Any] | None, wn: NDArray[Any] | None) -> Any:
    """The AUC over the items whose weight is 1 (the rest are missing scores; ``None``: none is missing),
    vectorised over leading axes."""
    if wm is None or wn is None:
        return auc_statistic(m, n)
    gt, eq = m[..., :, None] > n[..., None, :], m[..., :, None] == n[..., None, :]
    w = wm[..., :, None] * wn[..., None, :]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.sum((gt + 0.5 * eq) * w, axis=(-2, -1)) / np.sum(w, axis=(-2, -1))


def _agrees(q: tuple[NDArray[Any], NDArray[Any], NDArray[Any], NDArray[Any], NDArray[Any] | None,
                      NDArray[Any] | None]) -> bool:
    """Whether every member–non-member pair with both scores contributes the same to the gap."""
    ma, na, mb, nb, wm, wn = q
    keep_m = slice(None) if wm is None else wm > 0
    keep_n = slice(None) if wn is None else wn > 0
    d = pair_scores(ma[keep_m], na[keep_n])
    if mb.size:
        d = d - pair_scores(mb[keep_m], nb[keep_n])
    return agreeing_pairs(d)


def joint_gap_estimates(pairs: Sequence[GapPair], *, confidence: float = DEFAULT_CONFIDENCE,
                        rng: np.random.Generator, n_resamples: int | None = None
                        ) -> tuple[list[Estimate | None], float]:
    """Intervals for several AUC gaps that hold *together* at ``confidence``, and the level each is at.

    The worst of several gaps decides a membership check, so each gap's interval must hold while all the
    others do. One bootstrap resamples the items once for every pair (each item type's members and
    non-members apart; all attacks and both models on the same drawn items), giving every pair's gap per
    resample; each pair's interval is then its percentile interval at the smallest level at which the
    stated share of the resamples falls inside every interval at once (simultaneous percentile intervals,
    Mandel & Betensky, Computational Statistics & Data Analysis, 2008). Attacks on the same items move
    together, so this level sits between ``confidence`` (pairs that always agree) and the Bonferroni level
    (pairs that never do). ``n_resamples`` defaults to ``N_RESAMPLES`` times the number of pairs, which
    keeps at least as many draws in each tail at the Bonferroni level as one interval at 95% has.
    Point values equal :func:`gap_of_aucs_estimate`'s (missing scores dropped).

    Pairs the bootstrap cannot speak for — a single member or non-member, or items that order every pair
    alike — get distribution-free intervals outside it, each at Bonferroni's share of the miss rate
    (``1 - alpha / k``), and the bootstrapped pairs hold together at the rest (``1 - alpha * k_live / k``), so that
    all ``k`` hold together at ``confidence`` by the union bound. Each bootstrapped pair's percentiles are then
    taken at Hesterberg's expanded level for its smaller side, and fewer than ``FEW`` items there widen to
    Hoeffding's interval. The level returned is the bootstrapped pairs' (each estimate carries its own)."""
    k = len(pairs)
    if k == 0:
        return [], confidence
    B = n_resamples or N_RESAMPLES * k
    prepared: list[tuple[NDArray[Any], NDArray[Any], NDArray[Any], NDArray[Any], NDArray[Any] | None,
                         NDArray[Any] | None] | None] = []
    values: list[float | None] = []
    counts: list[tuple[int, int]] = []
    for p in pairs:
        sign = 1.0 if p.higher_is_member else -1.0
        ma, na = sign * np.asarray(p.members_a, dtype=np.float64), sign * np.asarray(p.nonmembers_a, dtype=np.float64)
        ref = p.members_b is not None and p.nonmembers_b is not None
        # without a reference, model b is chance: its "scores" are an empty stand-in, missing nowhere
        mb = sign * np.asarray(p.members_b, dtype=np.float64) if ref else np.zeros_like(ma)
        nb = sign * np.asarray(p.nonmembers_b, dtype=np.float64) if ref else np.zeros_like(na)
        wm = (np.isfinite(ma) & np.isfinite(mb)).astype(np.float64)
        wn = (np.isfinite(na) & np.isfinite(nb)).astype(np.float64)
        counts.append((int(wm.sum()), int(wn.sum())))
        if not wm.any() or not wn.any():
            prepared.append(None)
            values.append(None)
            continue
        ma, mb, na, nb = (np.nan_to_num(x) for x in (ma, mb, na, nb))
        v = float(_weighted_auc(ma, na, wm, wn)) - (float(_weighted_auc(mb, nb, wm, wn)) if ref else 0.5)
        if wm.all() and wn.all():  # no missing score: the faster unweighted AUC, the same numbers
            wm_, wn_ = None, None
        else:
            wm_, wn_ = wm, wn
        prepared.append((ma, na, mb if ref else np.empty(0), nb if ref else np.empty(0), wm_, wn_))
        values.append(v)
    # one sample of member indices and one of non-member indices per group of pairs that share their items:
    # the same records when the pairs name them, else the same item type and counts
    groups: dict[tuple[Any, ...], int] = {}
    sizes: list[int] = []
    of_pair: list[int] = []
    for p in pairs:
        n_m, n_n = len(p.members_a), len(p.nonmembers_a)
        key: tuple[Any, ...] = (p.group, n_m, n_n)
        if p.records is not None and len(p.records[0]) == n_m and len(p.records[1]) == n_n:
            key = ("records", *p.records)
        if key not in groups:
            groups[key] = len(groups)
            sizes += [n_m, n_n]
        of_pair.append(groups[key])
    # a pair with a single usable member or non-member says nothing of the population on that side: its
    # interval spans nearly the whole range of a gap (degenerate_interval with one item), outside the bootstrap
    thin = [i for i, q in enumerate(prepared) if q is not None and min(counts[i]) < 2]
    # a pair whose items order every member–non-member pair alike (complete separation, say) gives the same
    # gap in every resample: degenerate_interval over its disjoint pairs, outside the bootstrap too
    flat = [i for i, q in enumerate(prepared) if q is not None and i not in thin and _agrees(q)]
    live = [i for i, q in enumerate(prepared) if q is not None and i not in thin and i not in flat]

    def stat(*idx: NDArray[Any]) -> Any:
        out = []
        for i in live:
            ma, na, mb, nb, wm, wn = prepared[i]  # type: ignore[misc]
            g = of_pair[i]
            im, inn = idx[2 * g], idx[2 * g + 1]
            wmi, wni = (None, None) if wm is None or wn is None else (wm[im], wn[inn])
            a = _weighted_auc(ma[im], na[inn], wmi, wni)
            out.append(a - (_weighted_auc(mb[im], nb[inn], wmi, wni) if mb.size else 0.5))
        return np.stack(out)

    estimates: list[Estimate | None] = [None] * k
    # the pairs outside the bootstrap (thin, flat) hold at Bonferroni's share of the miss rate each, and the live
    # ones together at the rest: by the union bound, all of them hold together at `confidence`
    outside = thin + flat
    total = len(outside) + len(live)
    alpha = 1.0 - confidence
    outside_level = 1.0 - alpha / max(1, total)
    live_confidence = 1.0 - alpha * len(live) / max(1, total)

    def span_of(i: int) -> tuple[float, float]:
        q = prepared[i]
        assert q is not None
        return (-1.0, 1.0) if q[2].size else (-0.5, 0.5)  # a gap of two AUCs, or an AUC minus chance

    def wide() -> None:
        for i in outside:
            point = values[i]
            assert point is not None
            pairs_drawn = 1 if i in thin else min(counts[i])
            estimates[i] = Estimate(point, *degenerate_interval(point, pairs_drawn, outside_level, span_of(i)),
                                    counts[i][0], counts[i][1], outside_level)

    wide()
    if not live:
        return estimates, outside_level if outside else confidence
    # The resamples are drawn as scipy.stats.bootstrap draws them (per batch, per sample, ``rng.integers``), but
    # here, so that every pair follows the same drawn items
    cells = sum(2 * counts[i][0] * counts[i][1] for i in live)
    batch = max(1, int(2e7 // max(1, cells)))
    parts = []
    for start in range(0, B, batch):
        b = min(batch, B - start)
        drawn = [rng.integers(0, n, (b, n)) if n else np.empty((b, 0), dtype=np.int64) for n in sizes]
        parts.append(stat(*drawn))
    dist = np.concatenate(parts, axis=-1)
    ordered = np.sort(dist, axis=1)  # NaN last: each row's quantiles read off it (np.quantile's linear rule)
    finite = np.count_nonzero(~np.isnan(dist), axis=1)
    level = _joint_level(dist, ordered, finite, live_confidence)
    # each pair's percentiles at Hesterberg's expanded level for its smaller side (a bootstrap of a few items is
    # too narrow), and few items widened to Hoeffding's interval, as for a single AUC
    each = np.array([expanded_level(level, min(counts[i])) for i in live])
    lo, hi = _row_quantiles(ordered, finite, (1.0 - each) / 2.0), _row_quantiles(ordered, finite, (1.0 + each) / 2.0)
    for j, i in enumerate(live):
        point = values[i]
        assert point is not None
        if math.isfinite(lo[j]) and math.isfinite(hi[j]):
            low, high = hoeffding_union(point, float(lo[j]), float(hi[j]), min(counts[i]), level, span_of(i))
        else:  # no resample could compute it
            low, high = degenerate_interval(point, 1, level, span_of(i))
        estimates[i] = Estimate(point, low, high, counts[i][0], counts[i][1], level)
    return estimates, level


def _row_quantiles(ordered: NDArray[np.float64], finite: NDArray[np.int64], q: Any) -> NDArray[np.float64]:
    """Each row's ``q`` quantile over its finite values, from the row sorted with NaN last: what
    ``np.nanquantile`` gives (linear interpolation), without sorting again for every ``q``; NaN for a row
    with no finite value."""
    pos = q * np.maximum(finite - 1, 0)
    below = np.floor(pos).astype(np.int64)
    above = np.minimum(below + 1, np.maximum(finite - 1, 0))
    rows = np.arange(ordered.shape[0])
    out = ordered[rows, below] + (pos - below) * (ordered[rows, above] - ordered[rows, below])
    return np.where(finite > 0, out, np.nan)


def _joint_level(dist: NDArray[np.float64], ordered: NDArray[np.float64], finite: NDArray[np.int64],
                 confidence: float) -> float:
    """The smallest level at which the per-row percentile intervals of ``dist`` (pairs × resamples) hold
    together for at least ``confidence`` of the resamples (bisection; coverage only grows with the level). When
    that share is out of reach (more undefined resamples than ``1 - confidence``), the level is 1: each
    interval spans every resample it has."""
    def coverage(level: float) -> float:
        lo = _row_quantiles(ordered, finite, (1.0 - level) / 2.0)[:, None]
        hi = _row_quantiles(ordered, finite, (1.0 + level) / 2.0)[:, None]
        # a resample a pair could not compute (it drew no item with a score) counts as a miss: the level
        # errs wide rather than narrow
        inside = (dist >= lo) & (dist <= hi)
        return float(np.mean(np.all(inside, axis=0)))

    low, high = confidence, 1.0
    if coverage(low) >= confidence:
        return low
    for _ in range(30):
        mid = (low + high) / 2.0
        if coverage(mid) >= confidence:
            high = mid
        else:
            low = mid
    return high


def gap_of_aucs_by_record(members_a: NDArray[Any], nonmembers_a: NDArray[Any], members_b: NDArray[Any],
                          nonmembers_b: NDArray[Any], higher_is_member: bool, member_records: Sequence[str],
                          nonmember_records: Sequence[str], *, combine: Callable[[Any, Any], Any],
                          confidence: float = DEFAULT_CONFIDENCE, rng: np.random.Generator,
                          n_resamples: int = N_RESAMPLES) -> Estimate | None:
    """``combine(AUC_a, AUC_b)`` over pooled item types (MUSE PrivLeak) with the items resampled *by record*: a
    record's document, its question and its paraphrase are one draw, not three, on both sides. Each resample
    draws the records with replacement (multinomial counts) and weighs every item by its record's count; the
    AUC of a resample is then ``w_m · S · w_n / (Σ w_m · Σ w_n)`` over the pair scores ``S``. Percentiles at the
    expanded level for the smaller number of records. A combination that a resample cannot compute, or two
    AUCs that never move, spans the box of each AUC's own interval at half the miss rate (the combination is
    monotone in each); ``None`` when that box reaches where it is undefined, or with fewer than two records on
    a side. ``n`` and ``n_other`` count records."""
    ma, mb = np.asarray(members_a, dtype=np.float64), np.asarray(members_b, dtype=np.float64)
    na, nb = np.asarray(nonmembers_a, dtype=np.float64), np.asarray(nonmembers_b, dtype=np.float64)
    okm, okn = np.isfinite(ma) & np.isfinite(mb), np.isfinite(na) & np.isfinite(nb)
    rm = np.asarray(list(member_records), dtype=str)[okm]
    rn = np.asarray(list(nonmember_records), dtype=str)[okn]
    sign = 1.0 if higher_is_member else -1.0
    scores = [pair_scores(sign * ma[okm], sign * na[okn]), pair_scores(sign * mb[okm], sign * nb[okn])]
    if not scores[0].size:
        return None
    _, im = np.unique(rm, return_inverse=True)
    _, inn = np.unique(rn, return_inverse=True)
    r_m, r_n = int(im.max()) + 1, int(inn.max()) + 1
    with np.errstate(divide="ignore", invalid="ignore"):
        value = float(combine(scores[0].mean(), scores[1].mean()))
    if not math.isfinite(value) or min(r_m, r_n) < 2:
        return None
    k = min(r_m, r_n)
    wm = rng.multinomial(r_m, np.full(r_m, 1.0 / r_m), size=n_resamples)[:, im].astype(np.float64)
    wn = rng.multinomial(r_n, np.full(r_n, 1.0 / r_n), size=n_resamples)[:, inn].astype(np.float64)
    norm = wm.sum(axis=1) * wn.sum(axis=1)
    aucs = [np.einsum("bi,ij,bj->b", wm, s, wn) / norm for s in scores]
    level = expanded_level(confidence, k)
    with np.errstate(divide="ignore", invalid="ignore"):
        dist = combine(aucs[0], aucs[1])
    # a resample where the combination is undefined (0/0) counts against both ends; one where it is infinite (the
    # second AUC reached 1) is ordered, and an end that falls on it leaves the interval to the box below
    lo, hi = undefined_as_misses(np.asarray(dist, dtype=np.float64), level)
    # a resample never moves an AUC fixed by complete separation, so its own uncertainty comes from the box
    if not (math.isfinite(lo) and math.isfinite(hi)) or lo == hi or any(agreeing_pairs(s) for s in scores):
        half = (1.0 + confidence) / 2.0
        box = []
        for s, a in zip(scores, aucs, strict=True):
            point = float(s.mean())
            if agreeing_pairs(s):
                box.append(degenerate_interval(point, k, half, (0.0, 1.0)))
            else:
                each = expanded_level(half, k)
                low, high = float(np.quantile(a, (1.0 - each) / 2.0)), float(np.quantile(a, (1.0 + each) / 2.0))
                box.append(hoeffding_union(point, min(low, point), max(high, point), k, half, (0.0, 1.0)))
        with np.errstate(divide="ignore", invalid="ignore"):
            corners = [float(combine(np.float64(x), np.float64(y))) for x in box[0] for y in box[1]]
        if not all(math.isfinite(c) for c in corners):
            return None
        lo, hi = min(corners), max(corners)
    return Estimate(value, min(lo, value), max(hi, value), r_m, r_n, confidence)
