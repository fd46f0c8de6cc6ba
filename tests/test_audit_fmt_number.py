"""A number printed beside its bound never reads as the bound it differs from (FRAMEWORK.md §7): three digits,
and more only where three would make 0.04996 read `0.05` beside "is not ≥ 0.05"."""

from __future__ import annotations

from decimal import Decimal

import pytest
from test_report import make_report, passing_results, result

from unlearnspec.audit.card import render_card
from unlearnspec.report.rules import MAX_DIGITS, fmt_estimate, fmt_number

BOUNDS = (0.05, 0.1, 0.6, 2.0, 5.0, 1000.0, -0.2)
OFFSETS = tuple(sign * 10.0 ** -k for k in range(2, 11) for sign in (1, -1))


def _digits(text: str) -> int:
    return len(Decimal(text).normalize().as_tuple().digits)


def test_without_a_bound_it_is_three_significant_digits() -> None:
    for x in (0.04996, 2.0004, 1234.5, -0.0, 1e-7, 0.5):
        assert fmt_number(x) == f"{x + 0.0:.3g}"
    assert fmt_number(None) == "n/a" and fmt_number(None, 0.05) == "n/a"


@pytest.mark.parametrize("bound", BOUNDS)
def test_a_value_near_its_bound_gets_the_fewest_digits_that_tell_them_apart(bound: float) -> None:
    shown_bound = float(fmt_number(bound))
    for offset in OFFSETS:
        x = bound * (1 + offset)
        text = fmt_number(x, bound)
        assert float(text) != shown_bound, (x, bound, text)
        assert abs(Decimal(text) - Decimal(x)) <= Decimal(abs(x)) * Decimal(10) ** (1 - _digits(text)), (x, text)
        if text != f"{x:.3g}":  # more digits only where fewer read as the bound
            assert _digits(text) <= MAX_DIGITS
            for fewer in range(3, _digits(text)):
                assert float(f"{x:.{fewer}g}") == shown_bound, (x, bound, text, fewer)


def test_the_reviewers_examples() -> None:
    assert fmt_number(0.04996, 0.05) == "0.04996"  # not "0.05, which is not ≥ 0.05"
    assert fmt_estimate(2.0004, (2.0003, 2.6), 258, 2.0) == "2.0004 [2.0003, 2.6], n=258"  # not "2 [2, 2.6]"


def test_a_value_equal_to_its_bound_or_a_float_rounding_away_keeps_three_digits() -> None:
    assert fmt_number(0.05, 0.05) == "0.05"
    assert fmt_number(0.1, 0.09999999999999998) == "0.1"  # 0.6 - 0.5: the same number to any reader
    assert fmt_number(0.52, 0.6) == "0.52"  # far from its bound: as without one


def test_the_card_prints_a_value_and_its_interval_apart_from_the_bound() -> None:
    rs = passing_results()
    rs["verbatim_rouge@forget"] = result("verbatim_rouge@forget", "verbatim_rouge", "<=", 0.20, unlearned=0.20004,
                                         interval={"unlearned": (0.20002, 0.26)}, n={"unlearned": 40})
    text = render_card(make_report(results=rs))
    assert "verbatim ROUGE-L on forget: unlearned 0.20004 \\[0.20002, 0.26\\], n=40, threshold ≤ 0.2 (fail)" in text
