"""Power before running: evidence too small to decide (UL411) and bounds that cannot fail (UL412).

Both read :func:`evidence_for`, as the lowering does, and count records the way the runtime will
use them (FRAMEWORK.md §7): forget quality compares per-item truth ratios of the forget set's QA
records (its documents' losses when it has none) with the reference's on the same items; membership
compares each item type of the forget set (documents, QA, paraphrased QA) with the same type in the
holdout's evaluation half.

This runs in the compiler, which never imports numpy or scipy (tests/test_light_imports.py), so the
exact two-sample KS distribution is counted here with the classic lattice-path recursion (Hodges
1957); ``tests/test_power.py`` checks it against ``scipy.stats.ks_2samp(method="exact")``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from fractions import Fraction
from functools import lru_cache
from pathlib import Path
from statistics import NormalDist

from unlearnspec.catalog import CODES, METRICS, vocab
from unlearnspec.compiler.ast import Evidence, Objective
from unlearnspec.compiler.datafiles import BUILTIN_HOLDOUT, holdout_split, records_of
from unlearnspec.compiler.diagnostics import Diagnostic
from unlearnspec.compiler.evidence_defaults import evidence_for
from unlearnspec.compiler.rules.base import RuleContext, finding, rule
from unlearnspec.markdown import code_span
from unlearnspec.records import Record

UL411 = CODES["UL411"]
UL412 = CODES["UL412"]

KS_EXACT_LIMIT = 60
"""Forget sets up to this many truth ratios get the exact KS count (at 60 vs 60 the next-to-largest statistic
already has a p-value of 2.5e-33); beyond it the count would cost seconds and cannot change the answer."""

MAX_AUC_HALF_WIDTH = 0.3
"""An AUC interval at chance wider than ±0.3 cannot tell chance (0.5) from a strong leak (0.8)."""


@lru_cache(maxsize=256)
def ks_pvalue_at_least(n: int, m: int, d: Fraction) -> float:
    """Exact ``P(D >= d)`` of the two-sample KS statistic with ``n`` and ``m`` items under the null:
    one minus the share of the ``C(n + m, n)`` monotone lattice paths from (0, 0) to (n, m) that keep
    ``|i/n - j/m| < d`` at every point."""
    inside = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n + 1):
        for j in range(m + 1):
            if abs(Fraction(i, n) - Fraction(j, m)) >= d:
                continue
            if i == 0 and j == 0:
                inside[i][j] = 1
            else:
                inside[i][j] = (inside[i - 1][j] if i else 0) + (inside[i][j - 1] if j else 0)
    paths = math.comb(n + m, n)
    return (paths - inside[n][m]) / paths  # in integers first: 1 - a ratio near 1 loses tiny p-values


def ks_can_only_reject_separation(n: int, m: int, alpha: float) -> bool:
    """Whether a KS test of ``n`` vs ``m`` items rejects at ``alpha`` only for completely separated
    samples (D = 1): the next largest statistic, ``1 - 1/max(n, m)``, already has ``p >= alpha``."""
    if n < 1 or m < 1:
        return False
    below_one = Fraction(max(n, m) - 1, max(n, m))
    if below_one == 0:
        return True
    return ks_pvalue_at_least(n, m, below_one) >= alpha


def ks_items_needed(alpha: float, limit: int = 60) -> int:
    """The smallest ``n`` for which ``n`` vs ``n`` items can reject more than complete separation."""
    for n in range(2, limit + 1):
        if not ks_can_only_reject_separation(n, n, alpha):
            return n
    return limit


@lru_cache(maxsize=16)
def _z(confidence: float) -> float:
    return NormalDist().inv_cdf(0.5 + confidence / 2)


def auc_half_width(n_members: int, n_nonmembers: int, confidence: float) -> float:
    """Half-width of an AUC confidence interval at chance (Hanley & McNeil 1982):
    ``z * sqrt((n_m + n_n + 1) / (12 n_m n_n))``."""
    return _z(confidence) * math.sqrt((n_members + n_nonmembers + 1) / (12 * n_members * n_nonmembers))


def auc_members_needed(n_nonmembers: int, confidence: float, limit: int = 10000,
                       half_width: float = MAX_AUC_HALF_WIDTH) -> int | None:
    """The fewest members (at most ``limit``) whose AUC interval at chance is at most ``half_width`` either
    side against ``n_nonmembers``; ``None`` when no number of members will do (the non-members alone are too
    few).

    Solved in closed form: with ``q = (half_width / z)^2`` the condition ``(m + n + 1) / (12 m n) <= q`` is
    ``m (12 q n - 1) >= n + 1``, so ``m = ceil((n + 1) / (12 q n - 1))`` when ``12 q n > 1`` and no ``m``
    otherwise; the answer is then nudged against :func:`auc_half_width` itself, so that rounding in the
    division can never disagree with the half-width the finding prints."""
    n = n_nonmembers
    q = (half_width / _z(confidence)) ** 2
    slope = 12 * q * n - 1
    if n < 1 or slope <= 0:
        return None
    m = max(1, math.ceil((n + 1) / slope))
    while m > 1 and auc_half_width(m - 1, n, confidence) <= half_width:
        m -= 1
    while m <= limit and auc_half_width(m, n, confidence) > half_width:
        m += 1
    return m if m <= limit else None


def _types(records: list[Record]) -> dict[str, int]:
    docs = sum(bool(r.text) for r in records)
    qa = sum(bool(r.is_qa and not r.text) for r in records)
    para = sum(bool(r.is_qa and r.paraphrases) for r in records)
    return {"documents": docs, "qa": qa, "qa_paraphrased": para}


def _records(obj: Objective, ctx: RuleContext) -> tuple[list[Record], list[Record]] | None:
    t = obj.target
    if t is None:
        return None
    base = Path(ctx.base_dir)
    forget = [r for p in t.forget for r in records_of(p.resolved, base)]
    holdout_paths = [p.resolved for p in t.holdout] or ([BUILTIN_HOLDOUT] if ctx.builtin else [])
    if not forget:
        return None
    holdout = [r for p in holdout_paths for r in records_of(p, base)]
    seed = obj.seed.as_int if obj.seed is not None else 0
    _, evaluation = holdout_split(holdout_paths, base, seed)
    return forget, [holdout[i] for i in evaluation]


def _confidence(obj: Objective) -> float:
    return float(obj.confidence.value) if obj.confidence is not None else vocab.DEFAULT_CONFIDENCE


@rule(UL411, affects=frozenset())
def underpowered_evidence(obj: Objective, ctx: RuleContext) -> Iterator[Diagnostic]:
    data = _records(obj, ctx)
    if data is None:
        return
    forget, holdout = data
    conf = _confidence(obj)
    reported: set[str] = set()
    for c in obj.claims:
        for item in evidence_for(obj, c):
            if item.missing or item.dataset != "forget" or item.attack is not None:
                continue
            key = f"{item.metric}:{item.op}:{item.value}"
            if key in reported:
                continue
            if item.metric == "forget_quality" and item.op.startswith(">") and item.value > 0:
                qa = [r for r in forget if r.is_qa and r.perturbed]
                n = len(qa) or len(forget)
                # the exact count is an n x n table of fractions: past KS_EXACT_LIMIT items the test rejects
                # far more than complete separation at any bound, so it is not counted
                if n <= KS_EXACT_LIMIT and ks_can_only_reject_separation(n, n, item.value):
                    reported.add(key)
                    need = ks_items_needed(item.value)
                    pmin = 2 / math.comb(2 * n, n)
                    yield finding(
                        UL411, obj, c.span,
                        f"`forget_quality >= {item.value:g}` compares {n} vs {n} items: the KS test rejects only "
                        f"complete separation (smallest p-value {pmin:.2g}), so it cannot decide claim {code_span(c.name)}",
                        claim=c.name,
                        help=[f"give at least {need} question-answer records with perturbed answers in the forget "
                              "set (TOFU truth ratios), so that the test can detect less than complete separation"])
            elif item.metric == "membership_auc" and holdout:
                mine, theirs = _types(forget), _types(holdout)
                worst = [(auc_half_width(mine[k], theirs[k], conf), k) for k in mine if mine[k] and theirs[k]]
                if not worst:
                    continue
                width, kind = max(worst)
                # the bound `AUC <= b` is read as a tolerance of b - 0.5 either side of the reference: the gap's
                # interval must fit inside it to pass, and a gap between two models is at least about as uncertain
                # as one AUC (the runtime widens it further, so that every type and attack holds together)
                tol = item.value - 0.5 if item.op.startswith("<") and item.value > 0.5 else None
                limit = MAX_AUC_HALF_WIDTH if tol is None else min(MAX_AUC_HALF_WIDTH, tol)
                if width > limit:
                    reported.add(key)
                    members = auc_members_needed(theirs[kind], conf, half_width=limit)
                    what = kind.replace('_', ' ')
                    items = what if kind == "documents" else f"{what} items"  # "holdout documents", "holdout qa items"
                    too_wide = (f"too wide for `membership_auc` to decide claim {code_span(c.name)}" if limit == MAX_AUC_HALF_WIDTH
                                else f"wider than the tolerance of {limit:g} either side of the reference that "
                                     f"`membership_auc {item.op} {item.value:g}` allows, so the check can show a leak "
                                     f"but not its absence: claim {code_span(c.name)} cannot be expected to pass on it")
                    more = (f"give at least {members} forget {items} (against {theirs[kind]} in the holdout's "
                            "evaluation half), or more holdout items" if members is not None else
                            f"give more holdout {items}: against {theirs[kind]} no number of forget items will do")
                    shown = 0.5 + math.ceil(width * 100) / 100  # the tolerance these items can show, if any
                    yield finding(
                        UL411, obj, c.span,
                        f"membership on {what} compares {mine[kind]} forget items with {theirs[kind]} holdout items: "
                        f"a {conf:.0%} interval of the AUC spans about ±{width:.2f} around chance, {too_wide}",
                        claim=c.name,
                        help=[more] + ([f"or state the tolerance the data can show: `membership_auc <= {shown:g}`"]
                                       if tol is not None and shown < 1.0 else []))


def _vacuous(e: Evidence) -> bool:
    m = METRICS.get(e.metric)
    if m is None:
        return False
    if e.op.startswith("<"):
        upper = m.upper
        if e.metric == "membership_auc":
            upper = 1.0  # read as a tolerance of (bound - 0.5) around the reference: 0.5 is the most a gap can be
        return e.value >= upper if e.op == "<=" else e.value > upper
    return e.value <= m.lower if e.op == ">=" else e.value < m.lower


@rule(UL412, affects=frozenset())
def bound_cannot_fail(obj: Objective, ctx: RuleContext) -> Iterator[Diagnostic]:
    for e in obj.evidence:
        if not _vacuous(e):
            continue
        m = METRICS[e.metric]
        yield finding(
            UL412, obj, e.span,
            f"`{e.metric} {e.op} {e.value:g}` cannot fail: "
            + (f"{m.label} is never above {m.upper:g}" if e.op.startswith("<")
               else f"{m.label} is never below {m.lower:g}")
            + ", so every model meets it and it is no evidence",
            help=[f"use the default bound `{e.metric} {m.threshold.op} {m.threshold.value:g}` ({m.threshold.why}), "
                  "or a tighter one"])
