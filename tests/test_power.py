"""Power before running (UL411): the compiler's exact KS counting and AUC widths against scipy.

The compiler may not import scipy (tests/test_light_imports.py), so it counts the KS distribution
itself; here it is checked against ``scipy.stats.ks_2samp(method="exact")`` on samples built to have
a given statistic, and the AUC half-width against a bootstrap of AUCs at chance.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import roc_auc_score

from unlearnspec.compiler.rules.power import (
    auc_half_width,
    ks_can_only_reject_separation,
    ks_items_needed,
    ks_pvalue_at_least,
)


@pytest.mark.parametrize(("n", "m"), [(5, 5), (6, 6), (4, 7), (10, 8)])
def test_ks_tail_counts_equal_scipys_exact_pvalue(n: int, m: int) -> None:
    a = np.arange(n, dtype=float)
    for shift in range(1, 3):  # b starts inside a: the statistic is about (n - shift)/n
        b = np.arange(m, dtype=float) + n - shift - 0.5
        d = stats.ks_2samp(a, b, method="exact")
        ours = ks_pvalue_at_least(n, m, Fraction(d.statistic).limit_denominator(n * m))
        assert ours == pytest.approx(d.pvalue, rel=1e-9, abs=1e-12)


def test_five_vs_five_can_only_reject_complete_separation() -> None:
    assert ks_pvalue_at_least(5, 5, Fraction(1)) == pytest.approx(2 / math.comb(10, 5))
    assert ks_can_only_reject_separation(5, 5, 0.05)
    assert not ks_can_only_reject_separation(20, 20, 0.05)
    n = ks_items_needed(0.05)
    assert ks_can_only_reject_separation(n - 1, n - 1, 0.05) and not ks_can_only_reject_separation(n, n, 0.05)


def test_auc_half_width_matches_a_bootstrap_at_chance() -> None:
    rng = np.random.default_rng(0)
    n_m, n_n = 3, 40
    m, n = rng.normal(size=(4000, n_m)), rng.normal(size=(4000, n_n))
    aucs = (m[:, :, None] > n[:, None, :]).mean(axis=(1, 2))  # ties have probability 0
    first = roc_auc_score(np.r_[np.ones(n_m), np.zeros(n_n)], np.r_[m[0], n[0]])
    assert aucs[0] == pytest.approx(first)
    lo, hi = np.quantile(aucs, [0.025, 0.975])
    assert auc_half_width(n_m, n_n, 0.95) == pytest.approx((hi - lo) / 2, rel=0.2)
    assert auc_half_width(n_m, n_n, 0.95) > 0.3  # "an AUC interval over 3 members spans about ±0.4"
