"""What each interval of a report is, derived from what ``report.json`` records, and what each kind means.

The runtime does not give every interval by one method (``runtime/evaluation/intervals.py``): a share of items
scored 0 or 1 gets Clopper and Pearson's exact interval, a sample whose items all agree a distribution-free one,
fewer than five items at least Hoeffding's, a membership check's pairs simultaneous percentile intervals, most
other figures a percentile bootstrap. ``report.json`` does not name the method of each interval, so a report says
which it is only where the recorded numbers show it: :func:`interval_kind` reads a check's per-item values (only when
their mean reproduces the recorded value, so that they are the sample the interval was computed from), its ``n`` and
its ``extra``; where they do not settle it, it says so (``None``) rather than guess. :data:`KINDS` says what each kind
is, for the sentence beside an interval and for the glossary.

Light module: the catalog and the report model only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from unlearnspec.catalog import METRICS
from unlearnspec.report.model import CheckResult

Kind = Literal["exact_binomial", "share_of_questions", "agreeing", "hoeffding", "bootstrap", "cluster_bootstrap",
               "auc_bootstrap", "paired_bootstrap", "records_bootstrap", "pvalue_bootstrap", "simultaneous"]

FEW = 5
"""Below this many items the runtime widens an interval to at least Hoeffding's (``intervals.FEW``)."""


@dataclass(frozen=True)
class IntervalKind:
    name: str  # as the sentence beside an interval says it: "(95% {name} interval)"
    term: str  # the glossary's entry
    meaning: str
    source: str = ""


KINDS: dict[Kind, IntervalKind] = {
    "exact_binomial": IntervalKind(
        "Clopper–Pearson exact", "Clopper–Pearson exact interval", "for a share of items each scored 0 or 1 (a leak, a refusal, a right "
        "answer): the exact binomial interval, which keeps its level at any n", "Clopper & Pearson, Biometrika 26(4), 1934"),
    "share_of_questions": IntervalKind(
        "exact-bounded", "exact-bounded interval (a share over questions)", "for a share over questions asked several ways: a bootstrap of the "
        "questions, never narrower than the exact (Clopper–Pearson) bounds on the share of questions that leaked at "
        "all and that leaked under every prompt"),
    "agreeing": IntervalKind(
        "distribution-free", "distribution-free interval (all items agree)", "when every item gives the same value (or one item, or an AUC whose "
        "member–non-member pairs all order alike), resampling never moves; if a share q of the population differed, "
        "n draws would all agree with probability (1 − q)^n, which bounds q and so the mean"),
    "hoeffding": IntervalKind(
        "Hoeffding", "Hoeffding interval (fewer than 5 items)", "below five items no bootstrap holds its level, so the interval is at "
        "least Hoeffding's for values in a known range: wide, which is what so few items can show",
        "Hoeffding, JASA 58(301), 1963"),
    "bootstrap": IntervalKind(
        "percentile-bootstrap", "percentile-bootstrap interval", "the items resampled with replacement (1000 times), the middle share of the "
        "recomputed means kept, taken at Hesterberg's expanded level so that few items do not make it too narrow",
        "Efron, Annals of Statistics 7(1), 1979; Hesterberg, The American Statistician 69(4), 2015"),
    "cluster_bootstrap": IntervalKind(
        "cluster-bootstrap", "cluster-bootstrap interval (questions asked several ways)", "a question asked several ways (paraphrases, adversarial wrappers) is "
        "one item: the questions are resampled, each with all its prompts"),
    "auc_bootstrap": IntervalKind(
        "two-sample bootstrap", "two-sample bootstrap interval (an AUC)", "members and non-members resampled apart, the AUC recomputed each time",
        "Efron, Annals of Statistics 7(1), 1979"),
    "paired_bootstrap": IntervalKind(
        "paired-bootstrap", "paired-bootstrap interval", "the items resampled once for every model compared on them, so that each item's values "
        "stay together; distribution-free where the resamples never move, at least Hoeffding's under five items"),
    "records_bootstrap": IntervalKind(
        "record-bootstrap", "record-bootstrap interval (a utility drop)", "records resampled (the same ones for the original and the other model), "
        "each component of utility the mean over the drawn records it is measured on, and the drop recomputed"),
    "pvalue_bootstrap": IntervalKind(
        "p-value bootstrap", "p-value bootstrap interval (forget quality)", "the questions resampled in pairs and the KS test's p-value recomputed: how "
        "much the test's answer depends on which questions were asked"),
    "simultaneous": IntervalKind(
        "simultaneous", "simultaneous intervals (membership pairs)", "the intervals of every item type and attack of a membership check, at the level at which "
        "all of them hold together at the report's confidence (one bootstrap resamples the items for every pair)",
        "Mandel & Betensky, Computational Statistics & Data Analysis 52(4), 2008"),
}


def _finite(values: list[float | None]) -> list[float]:
    return [v for v in values if v is not None and math.isfinite(v)]


def _of_mean(check: CheckResult, model: str, n: int | None) -> Kind | None:
    """A mean over items (ROUGE, a leak rate, a right answer): its per-item values decide which interval it got."""
    values = _finite(check.per_item.get(model, []))
    value = check.values.get(model)  # type: ignore[arg-type]
    if not values or value is None or n is None or not math.isclose(sum(values) / len(values), value, abs_tol=1e-9):
        return None  # not the sample the interval was computed from: say nothing rather than guess
    metric = METRICS.get(check.metric)
    unit = metric is not None and (metric.lower, metric.upper) == (0.0, 1.0)
    binary = unit and all(v in (0.0, 1.0) for v in values)
    if len(values) > n:  # several prompts per question: the questions are the items
        if all(v == values[0] for v in values):
            return "agreeing"
        return "share_of_questions" if binary else "hoeffding" if n < FEW else "cluster_bootstrap"
    if binary:
        return "exact_binomial"
    if n == 1 or all(v == values[0] for v in values):
        return "agreeing"
    return "hoeffding" if n < FEW else "bootstrap"


def _deciding_scores(check: CheckResult, model: str) -> tuple[list[float], list[float]] | None:
    """The member and non-member scores of the pair a membership check shows (its deciding item type and attack)."""
    kind, attack = check.extra.get("deciding_type"), check.extra.get("deciding_attack")
    sm, sn = check.extra.get("member_scores"), check.extra.get("nonmember_scores")
    tm, tn = check.extra.get("member_types"), check.extra.get("nonmember_types")
    if not (isinstance(sm, dict) and isinstance(sn, dict) and isinstance(tm, list) and isinstance(tn, list)):
        return None
    m, nm = sm.get(model), sn.get(model)
    if not (isinstance(m, dict) and isinstance(nm, dict) and isinstance(attack, str)):
        return None
    ms, ns = m.get(attack), nm.get(attack)
    if not (isinstance(ms, list) and isinstance(ns, list) and len(ms) == len(tm) and len(ns) == len(tn)):
        return None
    return ([float(s) for s, t in zip(ms, tm, strict=True) if t == kind and isinstance(s, (int, float))],
            [float(s) for s, t in zip(ns, tn, strict=True) if t == kind and isinstance(s, (int, float))])


def _of_auc(check: CheckResult, model: str) -> Kind | None:
    scores = _deciding_scores(check, model)
    if scores is None:
        return None
    members, nonmembers = scores
    if len(members) < 2 or len(nonmembers) < 2:
        return "agreeing"
    pairs = {(m > n) - (m < n) for m in members for n in nonmembers}
    if len(pairs) == 1:  # complete separation, or every score tied: every resample gives the same AUC
        return "agreeing"
    return "hoeffding" if min(len(members), len(nonmembers)) < FEW else "auc_bootstrap"


def interval_kind(check: CheckResult, model: str | None = None) -> Kind | None:
    """What ``check``'s interval for ``model`` is (``None``: its decision's interval), as far as the recorded numbers
    show; ``None`` when they do not (no interval, or nothing recorded that tells)."""
    metric = METRICS.get(check.metric)
    family = metric.family if metric is not None else None
    if model is None:
        d = check.decision
        if d is None or d.interval is None:
            return None
        if family == "membership" and isinstance(check.extra.get("pair_confidence"), float):
            return "simultaneous"
        if family == "forget_quality":
            return "pvalue_bootstrap"
        return "hoeffding" if 0 < d.n < FEW else "paired_bootstrap"
    if model not in check.interval:
        return None
    n = check.n.get(model)
    if family in ("generation", "tokens", "mcq"):
        return _of_mean(check, model, n)
    if family == "membership":
        return _of_auc(check, model)
    if family == "forget_quality":
        return "pvalue_bootstrap"
    if family == "utility" and isinstance(check.extra.get("interval"), str):
        return "hoeffding" if n is not None and n < FEW else "records_bootstrap"
    if family in ("relearn", "quantize", "representation", "privleak"):
        return "hoeffding" if n is not None and n < FEW else "paired_bootstrap"
    return None


def kinds_in(checks: list[CheckResult]) -> list[Kind]:
    """Every kind of interval ``checks`` show, in :data:`KINDS` order (the glossary lists them)."""
    seen = {k for c in checks for k in [interval_kind(c), *(interval_kind(c, m) for m in c.interval)] if k}
    return [k for k in KINDS if k in seen]


def kind_name(check: CheckResult, model: str | None = None) -> str:
    """``Clopper–Pearson exact``: the kind of interval as the sentence beside it names it; empty where nothing
    recorded tells."""
    kind = interval_kind(check, model)
    return KINDS[kind].name if kind is not None else ""
