"""Membership inference on the forget set: can an attacker still tell it was trained on?

Convention (MUSE, arXiv:2407.06460): the AUC of distinguishing forget items (members) from holdout
items (non-members, same distribution, never trained on) by an attack score; 0.5 means
indistinguishable. Each attack is a per-item score from the shared forward pass
(:class:`~unlearnspec.runtime.evaluation.likelihood.TokenScores`); the attacks, their direction and
their sources are the catalog's :data:`~unlearnspec.catalog.MEMBERSHIP_ATTACKS`.

PrivLeak, which compares the unlearned model's AUC with the retrained reference's, is defined once, in
MUSE's sign: :func:`unlearnspec.runtime.measure.muse_privleak`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sklearn.metrics import roc_auc_score, roc_curve

from unlearnspec.catalog import MEMBERSHIP_ATTACKS
from unlearnspec.runtime.evaluation.likelihood import TokenScores


@dataclass(frozen=True)
class MIAResult:
    """An attack's AUC and ROC curve points (for plots)."""

    auc: float
    fpr: list[float]
    tpr: list[float]
    higher_is_member: bool
    n_members: int
    n_nonmembers: int


def _labelled(member_scores: Sequence[float] | NDArray[Any], nonmember_scores: Sequence[float] | NDArray[Any],
              higher_is_member: bool) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    m = np.asarray(member_scores, dtype=np.float64)
    n = np.asarray(nonmember_scores, dtype=np.float64)
    m, n = m[np.isfinite(m)], n[np.isfinite(n)]
    labels = np.concatenate([np.ones(m.size, dtype=np.int64), np.zeros(n.size, dtype=np.int64)])
    scores = np.concatenate([m, n])
    return labels, scores if higher_is_member else -scores


def auc(member_scores: Sequence[float] | NDArray[Any], nonmember_scores: Sequence[float] | NDArray[Any],
        higher_is_member: bool) -> float:
    """ROC AUC (``sklearn.metrics.roc_auc_score``) of members vs non-members; NaN scores are
    dropped, and the AUC is NaN when either side is empty."""
    labels, scores = _labelled(member_scores, nonmember_scores, higher_is_member)
    if labels.sum() == 0 or labels.sum() == labels.size:
        return math.nan
    return float(roc_auc_score(labels, scores))


def mia_result(member_scores: Sequence[float] | NDArray[Any], nonmember_scores: Sequence[float] | NDArray[Any],
               higher_is_member: bool) -> MIAResult:
    """AUC plus the ROC curve (``sklearn.metrics.roc_curve``) of one attack."""
    labels, scores = _labelled(member_scores, nonmember_scores, higher_is_member)
    n_m, n_n = int(labels.sum()), int(labels.size - labels.sum())
    if n_m == 0 or n_n == 0:
        return MIAResult(math.nan, [], [], higher_is_member, n_m, n_n)
    fpr, tpr, _ = roc_curve(labels, scores)
    return MIAResult(float(roc_auc_score(labels, scores)), fpr.tolist(), tpr.tolist(), higher_is_member, n_m, n_n)


# how each of the catalog's membership attacks scores an item (the catalog holds its name, label,
# direction and source)
_SCORES: dict[str, Callable[[TokenScores, float], NDArray[np.float64]]] = {
    "loss": lambda s, k: s.loss(),
    "zlib": lambda s, k: s.zlib(),
    "min_k": lambda s, k: s.min_k(k),
    "min_k_plus_plus": lambda s, k: s.min_k_plus_plus(k),
}
# name -> (score function, higher score means member), in the catalog's order
ATTACKS: dict[str, tuple[Callable[[TokenScores, float], NDArray[np.float64]], bool]] = {
    name: (_SCORES[name], attack.higher_is_member) for name, attack in MEMBERSHIP_ATTACKS.items()
}


def membership_inference(forget_scores: TokenScores, holdout_scores: TokenScores,
                         k: float = 0.2) -> dict[str, MIAResult]:
    """Every attack of :data:`ATTACKS` on forget (members) vs holdout (non-members)."""
    out: dict[str, MIAResult] = {}
    for name, (fn, higher) in ATTACKS.items():
        out[name] = mia_result(fn(forget_scores, k), fn(holdout_scores, k), higher)
    return out
