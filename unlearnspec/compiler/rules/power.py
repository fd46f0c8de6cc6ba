"""Power before running: evidence too small to decide (UL411) and bounds that cannot fail (UL412).

Both read :func:`evidence_for`, as the lowering does, and count records the way the runtime will
use them (FRAMEWORK.md §7), each record once (``records.distinct``): forget quality compares per-item
truth ratios of the forget set's QA records (its records' losses when it has none) with the reference's
on the same items, or, with no reference, with the same model's on the holdout's evaluation half;
membership compares each item type of the forget set (documents, QA answers — a record with both is
one item of each —, paraphrased QA) with the same type in the holdout's evaluation half.

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
from unlearnspec.compiler.diagnostics import Diagnostic, Fix
from unlearnspec.compiler.evidence_defaults import evidence_for
from unlearnspec.compiler.rules.base import RuleContext, finding, rule
from unlearnspec.markdown import code_span
from unlearnspec.records import Record, distinct

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


def ks_items_needed(alpha: float, limit: int = 60, other: int | None = None) -> int:
    """The smallest ``n`` for which ``n`` vs ``n`` items (``n`` vs ``other``, when given) can reject more
    than complete separation."""
    for n in range(1 if other else 2, limit + 1):
        if not ks_can_only_reject_separation(n, other or n, alpha):
            return n
    return limit


def _ks_counted(n: int, m: int) -> bool:
    """Whether the exact count is made for ``n`` vs ``m`` items: the runtime's exact range (``n m <= 10000``, where
    scipy counts exactly too) or both sides at most :data:`KS_EXACT_LIMIT`. Beyond it the test rejects far more
    than complete separation at any bound (one item against 10,000 already reaches p = 4e-4)."""
    return n * m <= 10000 or max(n, m) <= KS_EXACT_LIMIT


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
    """The membership items of each type, as the runtime scores them (``SCORED_PARTS = "both"``): a record's
    document is a `documents` item and its answer a `qa` item, so a record with both counts once in each."""
    docs = sum(bool(r.text) for r in records)
    qa = sum(bool(r.is_qa) for r in records)
    para = sum(bool(r.is_qa and r.paraphrases) for r in records)
    return {"documents": docs, "qa": qa, "qa_paraphrased": para}


def ks_sizes(forget: list[Record], holdout: list[Record], reference: bool) -> tuple[int, int, bool]:
    """The two sample sizes of the forget-quality KS test, and whether it compares truth ratios (else losses).

    With a reference: the forget set's truth ratios (QA records with perturbed answers) against the reference's on
    the same items, or every record's loss when there are none. Without one: against the same model's on the
    holdout's evaluation half, truth ratios when both sides have some, else losses (``forget_quality_from``)."""
    ratios = sum(bool(r.is_qa and r.perturbed) for r in forget)
    if reference:
        return (ratios, ratios, True) if ratios else (len(forget), len(forget), False)
    theirs = sum(bool(r.is_qa and r.perturbed) for r in holdout)
    if ratios and theirs:
        return ratios, theirs, True
    return len(forget), len(holdout), False


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
    return distinct(forget), distinct([holdout[i] for i in evaluation])  # the runtime counts each record once


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
        items = evidence_for(obj, c)
        for item in items:
            if item.missing or item.dataset != "forget" or item.attack is not None:
                continue
            key = f"{item.metric}:{item.op}:{item.value}"
            if key in reported:
                continue
            if item.metric == "forget_quality" and item.op.startswith(">") and item.value > 0:
                reference = ctx.builtin or obj.reference is not None
                n, m, ratios = ks_sizes(forget, holdout, reference)
                # the exact count is an n x m table of fractions: past it the test rejects far more than complete
                # separation at any bound, so it is not counted (_ks_counted)
                if n and m and _ks_counted(n, m) and ks_can_only_reject_separation(n, m, item.value):
                    reported.add(key)
                    need = ks_items_needed(item.value, other=None if reference else m)
                    pmin = 2 / math.comb(n + m, n)
                    against = "" if reference else " against the holdout's evaluation half (no reference model)"
                    more = (f"give at least {need} question-answer records with perturbed answers in the forget set "
                            "(TOFU truth ratios)" if reference or ratios else
                            f"give at least {need} records in the forget set")
                    yield finding(
                        UL411, obj, c.span,
                        f"`forget_quality >= {item.value:g}` compares {n} vs {m} items{against}: the KS test rejects "
                        f"only complete separation (smallest p-value {pmin:.2g}), so it cannot decide claim "
                        f"{code_span(c.name)}",
                        claim=c.name,
                        help=[more + ", so that the test can detect less than complete separation"])
            elif item.metric in ("membership_auc", "privleak") and holdout:
                finding_ = _auc_too_wide(obj, c.name, item.metric, item.op, item.value, forget, holdout, conf)
                if finding_ is not None:
                    reported.add(key)
                    message, help, looser = finding_
                    written = next((e for e in obj.evidence if e.metric == item.metric), None)
                    fixes = [Fix.replace(written.span, looser)] if looser and written is not None else []
                    others = sorted({f"`{i.metric} {i.op} {i.value:g}`" for i in items if i.metric != item.metric})
                    if looser and written is None and others:  # a first `evidence` line for the claim replaces
                        # its default checks (docs/language.md, evidence): following the help must not drop them
                        help = [*help[:-1], help[-1] + ", keeping its other checks there: " + ", ".join(others)]
                    yield finding(UL411, obj, c.span, message, claim=c.name, help=help, fixes=fixes)


def _auc_tolerance(metric: str, op: str, value: float) -> float | None:
    """The AUC gap to the reference a bound tolerates either side, or None when it is not an upper bound.

    ``membership_auc <= b``: ``b - 0.5`` (the runtime's reading). ``privleak <= b`` (percent, by magnitude):
    ``|100 (AUC_ref - AUC) / (1 - AUC_ref)| <= b`` is a gap of ``b / 100 * (1 - AUC_ref)``, which is ``b / 200``
    for a reference at chance and narrower for any reference above it."""
    if not op.startswith("<"):
        return None
    if metric == "membership_auc":
        return value - 0.5 if value > 0.5 else None
    return value / 200 if value > 0 else None


def _auc_too_wide(obj: Objective, claim: str, metric: str, op: str, value: float, forget: list[Record],
                  holdout: list[Record], conf: float) -> tuple[str, list[str], str | None] | None:
    """UL411's message and help for a membership AUC or PrivLeak check whose worst item type is too small to
    decide it, with the looser bound the help offers (None: none can be decisive), or None. PrivLeak's runtime
    skips a type with fewer than two records on a side."""
    mine, theirs = _types(forget), _types(holdout)
    least = 2 if metric == "privleak" else 1
    worst = [(auc_half_width(mine[k], theirs[k], conf), k) for k in mine if min(mine[k], theirs[k]) >= least]
    if not worst:
        return None
    width, kind = max(worst)
    # the bound is read as a tolerance either side of the reference: the gap's interval must fit inside it to
    # pass, and a gap between two models is at least about as uncertain as one AUC (the runtime widens it further,
    # so that every type and attack holds together)
    tol = _auc_tolerance(metric, op, value)
    limit = MAX_AUC_HALF_WIDTH if tol is None else min(MAX_AUC_HALF_WIDTH, tol)
    if width <= limit:
        return None
    members = auc_members_needed(theirs[kind], conf, half_width=limit)
    what = kind.replace("_", " ")
    items = what if kind == "documents" else f"{what} items"  # "holdout documents", "holdout qa items"
    bound = f"`{metric} {op} {value:g}`"
    label = "membership" if metric == "membership_auc" else "`privleak`"
    sizes = f"{mine[kind]} forget and {theirs[kind]} holdout {items}"
    spread = f"at {conf:.0%} confidence these counts give an AUC interval of about ±{width:.2f}"
    if limit == MAX_AUC_HALF_WIDTH:
        message = f"claim {code_span(claim)} cannot be decided on {sizes}: {label} is too noisy to decide {bound}"
        spread += f", wider than the ±{limit:g} any decision needs"
    else:
        message = f"claim {code_span(claim)} cannot pass on {sizes}: {label} is too noisy to show {bound}"
        spread += f", wider than the {'AUC gap of ' if metric == 'privleak' else ''}{limit:g} the bound allows"
    more = (f"give at least {members} forget {items}, or more holdout {items}: {spread}" if members is not None
            else f"give more holdout {items}: {spread}")
    # a looser bound is offered only where one can be decisive: past ±0.3 none is
    shown = (f"{0.5 + math.ceil(width * 100) / 100:g}" if metric == "membership_auc"
             else f"{math.ceil(width * 200):g}")
    looser = f"{metric} <= {shown}" if tol is not None and width <= MAX_AUC_HALF_WIDTH else None
    offer = [f"or loosen the bound to `{looser}` in `evidence`"] if looser else []
    return message, [more, *offer], looser


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
