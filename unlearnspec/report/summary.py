"""The summary in plain words at the top of a report (and in the model card): what was asked, what the run showed,
and what it did not show, for a reader who is not an engineer (a reviewer, a lawyer).

Every sentence is built from the report itself: the claims' verdicts, the catalog's one-line meaning of each claim
(:data:`~unlearnspec.catalog.CLAIMS`), the deciding numbers with their intervals and sample sizes
(:func:`~unlearnspec.report.verdict.deciding`), and the compiler's findings named by their code *and* in words
(:func:`~unlearnspec.report.verdict.code_words`). The summary never says more than the verdicts: a pass is "shown,
within the tests listed", a claim the compiler found cannot be fully verified says so beside its pass, and a failed,
inconclusive or untested claim is listed with what was not shown and why. Plain strings only; each template escapes them (``mdprose`` in Markdown,
autoescaping in HTML).

Light module: the catalog and the report model only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from unlearnspec.catalog import CLAIMS, TOLERANCE_CLAIM, TOLERANCE_SUMMARY
from unlearnspec.catalog.vocab import REFERENCE_LABELS
from unlearnspec.report.model import CheckResult, ClaimVerdict, ObjectiveReport, Report
from unlearnspec.report.verdict import FAR_MORE, claim_label, code_words, deciding, metric_label, where_text

#: What the objective asks for, by goal (and, for suppression, by what suppresses): the card and the summary say it so.
GOAL_TEXT: dict[tuple[str, str | None], str] = {
    ("removal", None): "removed from the model's parameters",
    ("suppression", "model"): "suppressed in the model's outputs (the information may remain in the weights)",
    ("suppression", "system"): "suppressed by a filter around the model (the weights are unchanged)",
}

#: A claim's verdict in plain words: what it means for what the claim says.
OUTCOME_WORDS: dict[str, str] = {
    "pass": "shown, within the tests listed",
    "fail": "not shown: at least one of its tests failed",
    "inconclusive": "not shown either way: the tests could not decide it",
    "not_evaluated": "not shown: some or all of its tests could not be run",
    "cannot_be_met": "not claimed: it cannot be achieved as written, whatever the measurements show",
}

#: The sentence that explains, once, the notation every number of the summary is written in.
NOTATION = ("Each number is given as value [low, high], n=items: [low, high] is the range the figure plausibly "
            "takes (its confidence interval) given that only n items (questions, documents, records) were tested. "
            "A test passes only when that whole range is on the passing side of its threshold, fails when the whole "
            "range is on the failing side, and is inconclusive otherwise: the items tested are too few, or the result "
            "too close to the threshold, to decide; an inconclusive test is never counted as a pass.")
COMPILER_NOTE = ("The compiler is the part of this tool that checks a request before anything runs; each of its findings "
                 "is named by a code (UL and three digits) and a few words.")
"""Said once beside the summary: what "the compiler" and a code such as UL405 are."""

EXPONENT = ("A number written like 1.95e-05 is in scientific notation: 1.95 × 10⁻⁵, that is 0.0000195 (e-05 moves the "
            "decimal point five places to the left).")
"""Said after :data:`NOTATION` when the report prints a number that way (:func:`uses_exponent`)."""


def uses_exponent(checks: list[CheckResult]) -> bool:
    """Whether any value, interval end or deciding quantity of ``checks`` prints in scientific notation (three
    significant digits, as :func:`~unlearnspec.report.rules.fmt_number` prints it)."""
    numbers: list[float | None] = []
    for c in checks:
        numbers += [c.values.get(m) for m in ("original", "unlearned", "reference", "attacked", "served")]
        numbers += [x for iv in c.interval.values() for x in iv]
        if c.decision is not None:
            numbers += [c.decision.value, *(c.decision.interval or ())]
    return any("e" in f"{x:.3g}" for x in numbers if x is not None)


def notation(report: Report) -> str:
    """:data:`NOTATION`, and :data:`EXPONENT` where the report prints a number in scientific notation."""
    return NOTATION + (" " + EXPONENT if uses_exponent([c for o in report.objectives for c in o.checks]) else "")


def goal_text(o: ObjectiveReport) -> str:
    """``removed from the model's parameters``: what the objective asks be done with its target."""
    return GOAL_TEXT.get((o.goal, o.suppression_via if o.goal == "suppression" else None), f"{o.goal} of the target")


def claim_meaning(claim: str) -> str:
    """What a claim says, in the catalog's words (``the model does not output the targeted information``)."""
    if claim == TOLERANCE_CLAIM:
        return TOLERANCE_SUMMARY.replace("`preserve` block's", "request's")
    known = CLAIMS.get(claim)
    return known.summary if known is not None else claim.replace("_", " ")


def _settle(check: CheckResult) -> str:
    """How many items would settle an inconclusive check, where the run estimated it (and the count means something)."""
    d = check.decision
    if d is None or not d.more_items:
        return ""
    if d.n and d.more_items > FAR_MORE * d.n:
        return f"; the result sits almost on the threshold, so only far more items than these {d.n} could decide it"
    return f"; about {d.more_items} items would be needed to decide it"


def check_sentence(check: CheckResult) -> str:
    """One deciding test in words, with its number, interval, n and threshold, and why it came out as it did."""
    what = f"{metric_label(check.metric)} {where_text(check)}"
    status = check.status
    if status == "not_evaluated":
        return f"{what}: not measured ({check.not_evaluated_reason or 'no value'})"
    d = deciding(check)
    reason = d.why
    if status == "pass":
        return f"{what}: {d.text}; passed, " + ("the whole range on the passing side" if d.interval is not None
                                                 else "the value on the passing side")
    if status == "fail":
        if reason:
            return f"{what}: {d.text}; failed: {reason}"
        return f"{what}: {d.text}; failed, " + ("the whole range on the failing side" if d.interval is not None
                                                 else "the value on the failing side")
    if reason:
        return f"{what}: {d.text}; inconclusive: {reason}"
    if d.interval is not None:
        return f"{what}: {d.text}; inconclusive: the range reaches both sides of the threshold" + _settle(check)
    return f"{what}: {d.text}; inconclusive"


@dataclass
class ClaimSummary:
    """One claim in plain words: what it says, its verdict, what that means, the tests that decided it so, and
    the compiler's caveat when it cannot be fully verified."""

    label: str
    meaning: str
    verdict: str
    outcome: str
    tests: list[str] = field(default_factory=list)  # a pass: the tests that showed it; else those that did not
    caveat: str | None = None
    passed: int = 0  # how many of its deciding tests passed (the rest are in ``tests``)

    @property
    def passed_text(self) -> str:
        """``both its tests passed``."""
        n = self.passed
        return ("its test" if n == 1 else "both its tests" if n == 2 else f"all {n} of its tests") + " passed"


@dataclass
class ObjectiveSummary:
    """What one objective asked (its goal in words; the templates add the spec's own words, each escaped), the
    reference its results were compared with, and its claims split into those shown and those not."""

    goal: str
    reference: str | None
    given: bool
    shown: list[ClaimSummary]
    not_shown: list[ClaimSummary]


def _claim(cv: ClaimVerdict, by_id: dict[str, CheckResult]) -> ClaimSummary:
    checks = [by_id[i] for i in cv.checks if i in by_id]
    deciding_checks = [c for c in checks if c.status != "info"]
    # a pass: every test that showed it, each with its number, interval, n and bound (a pass is only as wide as
    # they are); otherwise the tests that kept the claim from passing (for a claim that cannot be met the
    # measurements do not matter)
    tests = ([] if cv.verdict == "cannot_be_met"
             else [check_sentence(c) for c in deciding_checks] if cv.verdict == "pass"
             else [check_sentence(c) for c in deciding_checks if c.status != "pass"])
    if cv.verdict == "not_evaluated" and not deciding_checks:
        tests = ["no test with a threshold decides this claim"]
    caveat = None
    codes = ", ".join(code_words(c) for c in cv.findings)
    if cv.compile_status == "cannot_be_verified" and cv.verdict == "pass":  # what the pass does not cover
        caveat = ("the compiler warned before the run that these tests cannot fully establish this claim, so a pass "
                  "covers only what they tested" + (f"; its findings: {codes}" if codes else ""))
    elif cv.compile_status == "cannot_be_verified":
        caveat = ("the compiler warned before the run that its tests could not fully establish this claim"
                  + (f"; its findings: {codes}" if codes else ""))
    elif cv.compile_status == "cannot_be_met" and codes:
        caveat = f"the compiler's reasons: {codes}"
    return ClaimSummary(label=claim_label(cv.claim, cv.args), meaning=claim_meaning(cv.claim), verdict=cv.verdict,
                        outcome=OUTCOME_WORDS[cv.verdict], tests=tests, caveat=caveat,
                        passed=sum(c.status == "pass" for c in deciding_checks))


def summarise(o: ObjectiveReport) -> ObjectiveSummary:
    """The objective in plain words: what it asked, what its results were compared with, each claim shown or not."""
    by_id = {c.check_id: c for c in o.checks}
    claims = [_claim(cv, by_id) for cv in o.claims]
    # a holdout-calibrated run has no reference model: data the model never saw stands in for one
    reference = REFERENCE_LABELS[o.reference] if o.reference in ("retrain", "model") else None
    return ObjectiveSummary(goal=goal_text(o), reference=reference,
                            given=o.given is not None, shown=[c for c in claims if c.verdict == "pass"],
                            not_shown=[c for c in claims if c.verdict != "pass"])
