"""The verdict rules: from checks to a claim's verdict, from claims to an objective, to a report.

The rules are stated in :mod:`unlearnspec.report.verdict`'s docstring. They live here, below both the
report model (whose validators refuse a report whose verdicts do not follow from its numbers) and
the verdict builder, so that neither imports the other in a circle. They read only the ``status``,
``verdict`` and ``overall`` fields of what they are given.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Protocol

from unlearnspec.catalog.exits import EXIT_FINDINGS, EXIT_INCOMPLETE, EXIT_OK
from unlearnspec.plan import ClaimStatus

Verdict = Literal["pass", "fail", "inconclusive", "not_evaluated", "cannot_be_met"]
Overall = Literal["pass", "fail", "incomplete"]

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


def fmt_number(x: float | None) -> str:
    """Three significant digits: enough to compare with a threshold, short enough to read. A negative
    zero (an interval bound computed as ``-0.0``) reads as 0: no reader should see ``-0``."""
    if x is None:
        return "n/a"
    return f"{x + 0.0:.3g}"


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
