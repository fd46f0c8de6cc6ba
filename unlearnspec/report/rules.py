"""The verdict rules, and what every rendering shares, below both the report model and the verdict builder.

The rules (from checks to a claim's verdict, from claims to an objective, to a report: :func:`claim_verdict`,
:func:`objective_overall`, :func:`report_overall`, :func:`exit_code`) are stated in
:mod:`unlearnspec.report.verdict`'s docstring; they read only the ``status``, ``verdict`` and ``overall`` fields of
what they are given. They live here, below the report model (whose validators refuse a report whose verdicts do not
follow from its numbers) and the verdict builder, so that neither imports the other in a circle.

Beside them is what the model, the verdict builder and the chain's re-checks (``report/chain.py``, below the model)
all print or decide alike: how a number is printed beside its bound (:func:`fmt_number`, :func:`fmt_estimate`, and
:data:`OP_SYMBOLS`, the catalog's, re-exported), the rule that a check its statistic cannot fail is no evidence
(:func:`cannot_fail`), and what decided a check besides where its interval lies (:func:`decision_reason`). These
read a check's threshold, attainable range and decision fields, never a report model.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal, Protocol

from unlearnspec.catalog.exits import EXIT_FINDINGS, EXIT_INCOMPLETE, EXIT_OK
from unlearnspec.catalog.metrics import OP_SYMBOLS  # noqa: F401 - re-exported: every rendering prints bounds with it
from unlearnspec.plan import ClaimStatus, Threshold

Verdict = Literal["pass", "fail", "inconclusive", "not_evaluated", "cannot_be_met"]
"""A claim's verdict (and a chain's re-checked claim's, then and now)."""
Overall = Literal["pass", "fail", "incomplete"]
"""An objective's or a report's result (and a chain step's)."""
CheckStatus = Literal["pass", "fail", "inconclusive", "not_evaluated", "info"]
"""A check's outcome (and a chain's re-checked check's, then and now)."""

EXIT_PASS = EXIT_OK
EXIT_FAIL = EXIT_FINDINGS
EXIT_CODES: dict[str, int] = {"pass": EXIT_PASS, "fail": EXIT_FAIL, "incomplete": EXIT_INCOMPLETE}


class _Check(Protocol):
    @property
    def status(self) -> str: ...


class _Claim(Protocol):
    @property
    def verdict(self) -> str: ...


class _Objective(Protocol):
    @property
    def overall(self) -> str: ...


def cannot_fail(threshold: Threshold, attainable: tuple[float, float] | None) -> bool:
    """Whether ``threshold`` holds over the whole range ``attainable`` the statistic can reach: such a
    check cannot fail, so it is no evidence (FRAMEWORK.md §7)."""
    return attainable is not None and threshold.holds(attainable[0]) and threshold.holds(attainable[1])


class _Decision(Protocol):
    @property
    def threshold(self) -> Threshold: ...
    @property
    def attainable(self) -> tuple[float, float] | None: ...
    @property
    def rejects(self) -> bool: ...
    @property
    def cannot_pass(self) -> str | None: ...
    @property
    def no_evidence(self) -> str | None: ...


def decision_reason(status: str, d: _Decision) -> str | None:
    """What decided a check besides where its interval lies, in the words every rendering uses (the report's
    sentences, the chain's re-checks, the card): the test's own rejection of a failed check; for an
    inconclusive one, the part that could not be bounded, why the measurement is no evidence, or the range
    within the bound that is all it can reach. ``None`` when the interval alone decided."""
    if status == "fail" and d.rejects:
        return "the test rejects at that level"
    if status != "inconclusive":
        return None
    if d.cannot_pass:
        return d.cannot_pass
    if d.no_evidence:
        return d.no_evidence
    if cannot_fail(d.threshold, d.attainable):
        assert d.attainable is not None
        bound = d.threshold.value
        reach = f"[{fmt_number(d.attainable[0], bound)}, {fmt_number(d.attainable[1], bound)}]"
        return f"it can only reach {reach} here, all of it within the bound, so the check cannot fail and is no evidence"
    return None


#: The most significant digits :func:`fmt_number` shows a value beside its bound with (a float's 15 are exact).
MAX_DIGITS = 15


def fmt_number(x: float | None, bound: float | None = None) -> str:
    """Three significant digits: enough to compare with a threshold, short enough to read. A negative
    zero (an interval bound computed as ``-0.0``) reads as 0: no reader should see ``-0``.

    ``bound``: the threshold the number is printed beside (itself printed as ``fmt_number(bound)``). When
    the three digits read as that bound while the number differs from it, digits are added until they
    differ: 0.04996 beside a bound of 0.05 reads ``0.04996``, not ``0.05`` (which, beside "is not ≥ 0.05",
    would show a value that looks like it meets its bound). A number equal to its bound, or one that differs
    only by a float's rounding (relative 1e-12), keeps its three digits."""
    if x is None:
        return "n/a"
    x = x + 0.0
    text = f"{x:.3g}"
    if bound is None or not (math.isfinite(x) and math.isfinite(bound)) \
            or math.isclose(x, bound, rel_tol=1e-12):
        return text
    shown = float(fmt_number(bound))
    digits = 3
    while float(text) == shown and digits < MAX_DIGITS:
        digits += 1
        text = f"{x:.{digits}g}"
    return text


def fmt_estimate(value: float | None, interval: tuple[float, float] | None = None, n: int | None = None,
                 bound: float | None = None) -> str:
    """``0.472 [0.108, 1], n=20``: a value with its interval and n, every number through :func:`fmt_number`
    beside ``bound`` (the threshold it is compared with), so that no end reads as the bound it differs from."""
    text = fmt_number(value, bound)
    if interval is not None:
        text += f" [{fmt_number(interval[0], bound)}, {fmt_number(interval[1], bound)}]"
    if n is not None:
        text += f", n={n}"
    return text


def claim_verdict(compile_status: ClaimStatus, checks: Sequence[_Check]) -> Verdict:
    """The verdict of one claim from its compile status and its checks (rules in the module doc)."""
    if compile_status == "cannot_be_met":
        return "cannot_be_met"
    statuses = [c.status for c in checks]
    if "fail" in statuses:
        return "fail"
    deciding = [s for s in statuses if s != "info"]
    if not deciding or "not_evaluated" in deciding:
        return "not_evaluated"
    if "inconclusive" in deciding:  # the burden of proof is on the claim: never a pass
        return "inconclusive"
    return "pass"


def objective_overall(claims: Sequence[_Claim]) -> Overall:
    verdicts = {c.verdict for c in claims}
    if verdicts & {"fail", "cannot_be_met"}:
        return "fail"
    if not claims or verdicts & {"not_evaluated", "inconclusive"}:
        return "incomplete"
    return "pass"


def report_overall(objectives: Sequence[_Objective], chain_outcomes: Sequence[str] = ()) -> Overall:
    """The report's result: its objectives', and what its chains add (``ChainReport.outcomes``: a budget
    exceeded or an earlier claim a later request made fail is ``fail``; one not settled is ``incomplete``)."""
    results = {o.overall for o in objectives} | set(chain_outcomes)
    if "fail" in results:
        return "fail"
    if not objectives or "incomplete" in results:
        return "incomplete"
    return "pass"


def overall(claims: Sequence[_Claim]) -> Overall:
    """An objective's overall result from its claims' verdicts (alias of ``objective_overall``)."""
    return objective_overall(claims)


def exit_code(result: Overall) -> int:
    return EXIT_CODES[result]
