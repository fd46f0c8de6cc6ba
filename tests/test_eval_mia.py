"""Membership inference AUCs and PrivLeak."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from unlearnspec.runtime.evaluation.likelihood import score_records
from unlearnspec.runtime.evaluation.mia import ATTACKS, auc, membership_inference, mia_result
from unlearnspec.runtime.measure import muse_privleak

try:  # pytest puts tests/ on sys.path (rootdir-relative "prepend" import mode)
    from test_eval_tiny_model import _one_torch_thread, people, tiny_lm, tokenizer  # noqa: F401
except ImportError:  # tests/ imported as a package
    from tests.test_eval_tiny_model import _one_torch_thread, people, tiny_lm, tokenizer  # noqa: F401


def _mann_whitney_auc(members: np.ndarray, nonmembers: np.ndarray) -> float:
    """AUC = P(member score > non-member score) + 0.5 P(tie): the definition, by brute force."""
    diff = members[:, None] - nonmembers[None, :]
    return float(((diff > 0) + 0.5 * (diff == 0)).mean())


def test_auc_matches_sklearn_and_the_pairwise_definition() -> None:
    rng = np.random.default_rng(1)
    m, n = rng.normal(0.5, size=50), rng.normal(size=70)
    n[:5] = m[:5]  # ties
    got = auc(m, n, higher_is_member=True)
    labels = np.r_[np.ones(50), np.zeros(70)]
    assert got == pytest.approx(roc_auc_score(labels, np.r_[m, n]))
    assert got == pytest.approx(_mann_whitney_auc(m, n))
    assert auc(m, n, higher_is_member=False) == pytest.approx(1 - got)


def test_identical_distributions_are_indistinguishable() -> None:
    rng = np.random.default_rng(2)
    values = [auc(rng.normal(size=400), rng.normal(size=400), True) for _ in range(5)]
    assert abs(np.mean(values) - 0.5) < 0.03
    same = rng.normal(size=100)
    assert auc(same, same, True) == 0.5


def test_nan_scores_are_dropped_and_empty_sides_give_nan() -> None:
    assert auc([1.0, 2.0, np.nan], [0.0, 0.5], True) == 1.0
    assert math.isnan(auc([], [0.0], True))
    res = mia_result([1.0, np.nan], [np.nan], True)
    assert math.isnan(res.auc) and res.n_members == 1 and res.n_nonmembers == 0


def test_roc_curve_points_span_zero_to_one() -> None:
    res = mia_result([3.0, 2.0, 0.5], [1.0, 0.0, 2.5, -1.0], higher_is_member=True)
    assert res.fpr[0] == 0.0 and res.tpr[0] == 0.0 and res.fpr[-1] == 1.0 and res.tpr[-1] == 1.0
    assert np.trapezoid(res.tpr, res.fpr) == pytest.approx(res.auc)


def test_overfit_model_leaks_membership_and_a_fresh_one_does_not() -> None:
    tok, p = tokenizer(), people()
    results = {}
    for variant in ("original", "reference", "fresh"):
        model = tiny_lm(variant)
        results[variant] = membership_inference(score_records(model, tok, p.forget),
                                                score_records(model, tok, p.holdout))
    assert set(results["original"]) == set(ATTACKS) == {"loss", "zlib", "min_k", "min_k_plus_plus"}
    for attack in ATTACKS:
        assert results["original"][attack].auc >= 0.9
        assert results["original"][attack].auc > results["fresh"][attack].auc
        # the retrained reference never saw the forget set: roughly chance on 6 vs 6 items
        assert 0.2 <= results["reference"][attack].auc <= 0.8
    # MUSE's sign: the original model leaks, so its PrivLeak against the reference is negative (near -100%)
    leak = muse_privleak(results["original"]["min_k_plus_plus"].auc, results["reference"]["min_k_plus_plus"].auc)
    assert leak < -20
