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
    auc_members_needed,
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


@pytest.mark.parametrize("confidence", [0.9, 0.95, 0.99])
@pytest.mark.parametrize("half_width", [0.3, 0.1, 0.05, 0.02])
def test_members_needed_is_the_first_count_a_search_finds(confidence: float, half_width: float) -> None:
    """The closed form against the plain search it replaced (the search cost 10,000 half-widths per finding
    whenever the holdout was too small, 9 of 18 s of a 1,000-spec check)."""
    for n in [1, 2, 3, 5, 12, 40, 100, 400, 3000]:
        search = next((m for m in range(1, 10001) if auc_half_width(m, n, confidence) <= half_width), None)
        assert auc_members_needed(n, confidence, half_width=half_width) == search, n
    assert auc_members_needed(40, 0.95, limit=3, half_width=0.1) is None  # past the limit: none


def test_membership_tolerance_the_data_cannot_show_is_named_with_one_they_can() -> None:
    """`membership_auc <= 0.60` is a tolerance of 0.1 either side of the reference; six documents against the
    built-in holdout's twelve give an AUC interval of about ±0.29 at chance (the same count simulated here),
    so the check can show a leak but not its absence. The help names the tolerance the data can show, and a
    spec that states it has no UL411."""
    import re
    from pathlib import Path

    from unlearnspec.compiler.feasibility import analyse
    from unlearnspec.compiler.parse import parse_bytes
    from unlearnspec.compiler.resolve import resolve

    base = Path(__file__).parent / "rules" / "clean-base.unlearn"

    def ul411(text: str) -> list[str]:
        tree, _ = parse_bytes(text.encode(), str(base))
        assert tree is not None
        spec, _ = resolve(tree, base.parent)
        return [d.message + " | " + " ".join(d.help) for d in analyse(spec) if d.code == "UL411"]

    text = base.read_text(encoding="utf-8")
    (found,) = ul411(text)
    width = float(re.search(r"±(\d\.\d+)", found).group(1))  # type: ignore[union-attr]
    n_m, n_n = (int(x) for x in re.search(r"on (\d+) forget and (\d+) holdout", found).groups())  # type: ignore[union-attr]
    rng = np.random.default_rng(1)
    m, n = rng.normal(size=(4000, n_m)), rng.normal(size=(4000, n_n))
    lo, hi = np.quantile((m[:, :, None] > n[:, None, :]).mean(axis=(1, 2)), [0.025, 0.975])
    assert width == pytest.approx((hi - lo) / 2, rel=0.2) and width > 0.1
    assert "wider than the 0.1 the bound allows" in found and "cannot pass" in found
    suggested = re.search(r"`membership_auc <= (\d\.\d+)`", found.split(" | ", 1)[1])  # in the help
    assert suggested is not None and float(suggested.group(1)) - 0.5 >= width
    stated = text.rstrip()[:-1] + f"  evidence {{\n    membership_auc <= {suggested.group(1)}\n  }}\n}}\n"
    assert ul411(stated) == []


def test_the_exact_ks_count_stops_where_it_cannot_change_the_answer() -> None:
    """Counting is quadratic in the forget set (a 2,000-record set took 30 s to check); at the limit the
    statistic just below complete separation is already far below any bound, so larger sets are not
    counted, and the count agrees with scipy right up to the limit."""
    from unlearnspec.compiler.rules.power import KS_EXACT_LIMIT

    n = KS_EXACT_LIMIT
    d = Fraction(n - 1, n)
    a, b = np.arange(n, dtype=float), np.arange(n, dtype=float) + n - 1.5
    exact = stats.ks_2samp(a, b, method="exact")
    assert Fraction(exact.statistic).limit_denominator(n * n) == d
    assert ks_pvalue_at_least(n, n, d) == pytest.approx(exact.pvalue, rel=1e-6) and exact.pvalue < 1e-30
    assert not ks_can_only_reject_separation(n, n, 1e-12)
