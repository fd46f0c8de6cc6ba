"""A chain's part of the report: what each request did to the model, and what it did to the requests
before it (drift), against the chain's budget.

After each step of a chain the run re-checks every earlier request's claims on the new model, each by its own
reference strategy: with a retrained reference, against the recipe retrained without every target so far (then
and now are judged against different references); with a reference model, against that request's own (the same
one as then); with none, against chance, as then. :class:`Recheck` records each earlier claim's verdict then (when
its own step finished) and now, and with each check what decided it then and now (:class:`Deciding`: the deciding
quantity, a gap to the reference or a worst case, with its interval, its confidence level, n and bound), and
whether the reference changed between then and now (``same_reference``, from the reference's strategy and path).
``utility_drop`` is the cumulative drop against the original model, in percent, on the set (``utility_set``:
retain or neighbours) whose drop is the worse by the budget's burden of proof. ``budget_exceeded`` is derived
from the numbers and the budget, never asserted: a report whose flag contradicts them is refused.

The plan's chain links are hashed here too (:func:`objective_digest`, :func:`link_digest`): the compiler
records them (``compiler/chain_plan.py``) and the run checks them before a chain runs (:func:`link_problems`),
by the one definition.

Light module: pydantic and the standard library only.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from unlearnspec.catalog.methods import FamilyName
from unlearnspec.catalog.vocab import COUNTED_FAMILIES, RECHECK_REFERENCES
from unlearnspec.markdown import code_span
from unlearnspec.plan import ChainBudget, ChainPlan, ObjectivePlan, Plan, Threshold
from unlearnspec.report.rules import OP_SYMBOLS, CheckStatus, Overall, Verdict, fmt_estimate, fmt_number


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Deciding(_Model):
    """What decided a check, in the terms its outcome rests on (FRAMEWORK.md §7): the decision's quantity (a gap
    to the reference, a worst case over item types, a p-value) with its interval, n and the bound it was held
    to; or, for a check decided on a model's own value, that value (``quantity`` is ``None``, ``model`` names
    it) with the plan's threshold. Built from a check by :func:`unlearnspec.report.verdict.deciding`.

    ``by_test``: a hypothesis test's p-value with no interval (forget quality's KS test with intervals off), decided
    by the test at the bound's level. ``point_value``: any other value with no interval that was decided (passed or
    failed) on the point value itself, as a run with intervals off decides. ``why``: what decided it besides where
    the interval lies (the test's rejection, a part that could not be bounded, a measurement that cannot fail).
    ``reference``: the reference model's own value, beside which a gap was measured (for a model measured as
    released, quantized, the reference quantized alike when the gap is to that one). ``confidence``: the level of
    ``interval`` (the plan's `evidence { confidence }`), where it was recorded (a chain's re-checks record it)."""

    model: str
    quantity: str | None = None
    value: float | None = None
    interval: tuple[float, float] | None = None
    n: int | None = None
    threshold: Threshold | None = None
    by_test: bool = Field(default=False, exclude_if=lambda v: not v)
    point_value: bool = Field(default=False, exclude_if=lambda v: not v)
    why: str | None = Field(default=None, exclude_if=lambda v: v is None)
    reference: float | None = Field(default=None, exclude_if=lambda v: v is None)
    confidence: float | None = Field(default=None, exclude_if=lambda v: v is None)

    @property
    def text(self) -> str:
        """``worst |AUC − AUC_reference| over item types and attacks 0.472 [0.108, 1] at 95% confidence, n=20,
        threshold ≤ 0.1`` (the level where it was recorded);
        ``KS-test p-value 0.0811 (decided by the test), n=20, threshold ≥ 0.05``; ``unlearned minus reference (mean
        over items) 0.031 (point value, intervals off), n=20, threshold ≤ 0.2``: every number beside the bound it is
        held to (:func:`fmt_estimate`)."""
        bound = self.threshold.value if self.threshold is not None else None
        said = "decided by the test" if self.by_test else "point value, intervals off" if self.point_value else None
        if said:
            shown = f"{fmt_number(self.value, bound)} ({said})" + (f", n={self.n}" if self.n else "")
        else:
            shown = fmt_estimate(self.value, self.interval, None, bound)
            if self.interval is not None and self.confidence is not None:
                shown += f" at {level_text(self.confidence)} confidence"
            shown += f", n={self.n}" if self.n else ""
        limit = (f"threshold {OP_SYMBOLS[self.threshold.op]} {fmt_number(self.threshold.value)}"
                 if self.threshold is not None else "no threshold")
        return f"{self.quantity or self.model} {shown}, {limit}"


class RecheckedCheck(_Model):
    """One check of an earlier request, computed again on the model after a later step. ``then`` and ``now`` are
    the decided model's own values; ``deciding_then`` and ``deciding_now`` what the status was decided on then and
    now (reports from before they were recorded lack them, and show the raw values only). Then was judged against
    the earlier request's own reference, now against what its :class:`Recheck` names (``reference``)."""

    check_id: str
    metric: str
    then: float | None = None
    now: float | None = None
    status_then: CheckStatus
    status_now: CheckStatus
    deciding_then: Deciding | None = Field(default=None, exclude_if=lambda v: v is None)
    deciding_now: Deciding | None = Field(default=None, exclude_if=lambda v: v is None)


class RecheckedClaim(_Model):
    """An earlier request's claim, its verdict when its own step finished (``then``) and on the later model (``now``)."""

    claim: str
    then: Verdict
    now: Verdict

    @property
    def regressed(self) -> bool:
        return self.then == "pass" and self.now != "pass"


class Recheck(_Model):
    """An earlier request re-checked on the model after a later step. ``reference`` says what *now* was judged
    against (reports from before it was recorded: the reference retrained without every target so far);
    ``same_reference`` whether that is the reference *then* was judged against: the same strategy and the same
    model folder (none, for a holdout-calibrated check). Reports from before it was recorded lack it."""

    request: str
    claims: list[RecheckedClaim] = Field(default_factory=list)
    checks: list[RecheckedCheck] = Field(default_factory=list)
    reference: str | None = Field(default=None, exclude_if=lambda v: v is None)
    same_reference: bool | None = Field(default=None, exclude_if=lambda v: v is None)

    @property
    def reference_text(self) -> str:
        return self.reference or RECHECK_REFERENCES["retrain"]

    @property
    def reference_changed(self) -> bool:
        """Whether *now* is judged against another reference than *then*: as recorded, or, in reports from before it
        was, where the reference was retrained per step."""
        if self.same_reference is not None:
            return not self.same_reference
        return self.reference_text == RECHECK_REFERENCES["retrain"]

    @property
    def regressed(self) -> bool:
        return any(c.regressed for c in self.claims)


CHANGED_REFERENCE = ("then and now are judged against different references, so a gap to the reference can change "
                     "because the reference did, not only the model")
"""What the reports say of an earlier request re-checked against another reference than its own run's."""


def quoted(name: str) -> str:
    """A request's name set apart in plain text, for an autoescaped HTML page: “name”."""
    return f"“{name}”"


UtilitySet = Literal["retain", "neighbors"]
UTILITY_SET_WORDS: dict[str, str] = {"retain": "the retain set", "neighbors": "the neighbours"}

def level_text(confidence: float) -> str:
    """``95%``, ``99.9%``: a confidence level as the reports print it."""
    return f"{confidence * 100:.10g}%"


class ChainStep(_Model):
    """One request of the chain: how it was applied, where utility stands, and the re-checks after it.

    ``family``: the method's family (reports from before it was recorded lack it, and count ``approximate`` steps
    toward `requests K`, with no reset). ``utility_set``: the set whose drop is ``utility_drop``, the worse of
    retain and neighbours (reports from before it was recorded: retain, else neighbours)."""

    request: str
    link_hash: str
    method: str
    approximate: bool
    family: FamilyName | None = Field(default=None, exclude_if=lambda v: v is None)
    utility_drop: float | None = None  # cumulative, percent, against the original model
    utility_drop_interval: tuple[float, float] | None = None  # its interval (the step's utility check's)
    utility_n: int | None = None  # the items it was measured on
    utility_set: UtilitySet | None = Field(default=None, exclude_if=lambda v: v is None)
    step_utility_drop: float | None = None  # this step's part of it (on the same set)
    overall: Overall  # the step's own report's result
    rechecks: list[Recheck] = Field(default_factory=list)

    @model_validator(mode="after")
    def _family_follows(self) -> ChainStep:
        if self.family is not None and self.approximate != (self.family == "approximate"):
            raise ValueError(f"approximate={self.approximate} does not follow from the method family {self.family!r}")
        return self

    @property
    def exact(self) -> bool:
        """An exact retrain: the recipe retrained without every target so far, which starts `requests K` again."""
        return self.family == "exact"

    @property
    def counted(self) -> bool:
        """Whether the step counts toward the chain's `requests K` (:data:`COUNTED_FAMILIES`)."""
        return self.family in COUNTED_FAMILIES if self.family is not None else self.approximate

    def against_text(self, code: Callable[[str], str] = code_span) -> str:
        """What the re-checks after this step judged *now* against, per earlier request: ``, against the reference
        retrained without every target so far: then and now ...`` when they share one reference, else grouped by it,
        ``: for `a` and `b`, against ... (then and now ...); for `c`, against ...``. Earlier requests are re-checked
        by their own reference strategy, so they can be judged against different references. ``code`` sets a request's
        name apart (a Markdown code span, or the name as it is for an autoescaped HTML page)."""
        groups: dict[tuple[str, bool], list[str]] = {}
        for r in self.rechecks:
            groups.setdefault((r.reference_text, r.reference_changed), []).append(r.request)
        if len(groups) == 1:
            ((ref, changed),) = groups
            return f", against {ref}" + (f": {CHANGED_REFERENCE}" if changed else "")

        def names(requests: list[str]) -> str:
            shown = [code(n) for n in requests]
            return shown[0] if len(shown) == 1 else f"{', '.join(shown[:-1])} and {shown[-1]}"

        return ": " + "; ".join(f"for {names(requests)}, against {ref}" + (f" ({CHANGED_REFERENCE})" if changed else "")
                                for (ref, changed), requests in groups.items())

    @property
    def against_plain(self) -> str:
        """:meth:`against_text` in plain text (the HTML report escapes it)."""
        return self.against_text(quoted)

    @property
    def drop_text(self) -> str:
        """``6.9% [5.69, 8.28], n=258 on the neighbours``: the cumulative drop as the reports print it, with its
        interval, n and the set it was measured on."""
        return self.drop_text_beside(None)

    def drop_text_beside(self, budget: float | None) -> str:
        """:attr:`drop_text`, printed beside the chain's utility ``budget`` (percent): a number that reads as the
        budget while it differs from it gets the digits that tell them apart (:func:`fmt_number`)."""
        where = f" on {UTILITY_SET_WORDS[self.utility_set]}" if self.utility_set is not None else ""
        if self.utility_drop is None:
            return "not measured" + where
        iv = self.utility_drop_interval
        return (f"{fmt_number(self.utility_drop, budget)}%"
                + (f" [{fmt_number(iv[0], budget)}, {fmt_number(iv[1], budget)}]" if iv else "")
                + (f", n={self.utility_n}" if self.utility_n is not None else "") + where)


def counted_runs(steps: list[ChainStep]) -> list[tuple[ChainStep | None, list[ChainStep]]]:
    """The steps `requests K` counts, in runs: each run with the exact retrain it follows (``None``: the chain's
    start). An exact retrain starts the count again."""
    runs: list[tuple[ChainStep | None, list[ChainStep]]] = [(None, [])]
    for s in steps:
        if s.exact:
            runs.append((s, []))
        elif s.counted:
            runs[-1][1].append(s)
    return runs


def requests_budget_text(k: int) -> str:
    """A chain's `requests K` as the reports and the plan review say it: every request that changes the weights other
    than by exact retraining counts (:data:`COUNTED_FAMILIES`: approximate unlearning and refusal fine-tuning; an
    output filter changes no weights), and an exact retrain starts the count again."""
    return (f"{k} request{'s' if k != 1 else ''} changing the weights other than by exact retraining (approximate "
            "unlearning or refusal fine-tuning) before retraining")


def _requests_text(counted: list[ChainStep]) -> str:
    if all(s.approximate for s in counted):
        return f"{len(counted)} approximate requests"
    approximate = sum(s.approximate for s in counted)
    return (f"{len(counted)} requests that changed the weights other than by exact retraining ({approximate} "
            f"approximate, {len(counted) - approximate} suppression fine-tuning)")


def budget_problems(budget: ChainBudget | None, steps: list[ChainStep],
                    code: Callable[[str], str] = code_span) -> list[str]:
    """Why the chain exceeded its budget (empty: within it, or no budget). A step's cumulative utility drop
    exceeds it when its interval lies wholly above the budget (its value, when it has no interval); the requests
    counted (:attr:`ChainStep.counted`) exceed it when more than K of them follow the chain's start, or an exact
    retrain, before the next exact retrain: every model of the chain is one it released. ``code`` sets a request's
    name apart (a Markdown code span, or :func:`quoted` for an autoescaped HTML page)."""
    if budget is None:
        return []
    out = []
    if budget.approximate_requests is not None:
        start, counted = max(counted_runs(steps), key=lambda run: len(run[1]))  # the first of the longest
        if len(counted) > budget.approximate_requests:
            since = f" since the exact retrain {code(start.request)}" if start is not None else ""
            out.append(f"{_requests_text(counted)} applied{since}, the budget allows {budget.approximate_requests} "
                       "before retraining")
    # every step's model is one the chain released, and a later gain (the drop is signed) does not undo an
    # earlier step over budget: the step whose drop is shown highest decides
    over = [s for s in steps if s.utility_drop is not None and budget.utility_drop is not None
            and (s.utility_drop_interval[0] if s.utility_drop_interval else s.utility_drop) > budget.utility_drop]
    if over and budget.utility_drop is not None:
        worst = max(over, key=lambda s: s.utility_drop or 0.0)
        after = "" if worst is steps[-1] else f" after request {code(worst.request)}"
        out.append(f"cumulative utility drop {worst.drop_text_beside(budget.utility_drop)}{after} exceeds the budget of "
                   f"{budget.utility_drop:g}%")
    return out


def budget_undecided(budget: ChainBudget | None, steps: list[ChainStep],
                     code: Callable[[str], str] = code_span) -> list[str]:
    """Steps whose utility-drop interval straddles the budget, or whose drop was not measured: the data cannot say
    whether the chain kept it (FRAMEWORK.md §7: inconclusive, never within), unless another step already exceeds
    it."""
    if budget is None or budget.utility_drop is None or budget_problems(budget, steps):
        return []
    return [f"the utility drop{' on ' + UTILITY_SET_WORDS[s.utility_set] if s.utility_set else ''} after request "
            f"{code(s.request)} was not measured, so the budget of "
            f"{budget.utility_drop:g}% is not shown to hold" if s.utility_drop is None else
            f"cumulative utility drop {s.drop_text_beside(budget.utility_drop)} after request {code(s.request)} may exceed "
            f"the budget of {budget.utility_drop:g}%: its interval reaches past it"
            for s in steps if s.utility_drop is None
            or (s.utility_drop_interval is not None and s.utility_drop_interval[1] > budget.utility_drop)]


class ChainReport(_Model):
    """A chain of requests as run: its steps in order, drift, and the budget verdict."""

    links: list[str]
    steps: list[ChainStep]
    budget: ChainBudget | None = None
    budget_exceeded: bool = False
    budget_undecided: bool = False  # no step shown over the budget, but one whose interval reaches past it
    budget_reasons: list[str] = Field(default_factory=list)
    recommendation: str | None = None

    @model_validator(mode="after")
    def _budget_follows(self) -> ChainReport:
        reasons = budget_problems(self.budget, self.steps)
        if self.budget_exceeded != bool(reasons):
            raise ValueError(f"budget_exceeded={self.budget_exceeded} does not follow from the steps and budget")
        if self.budget_undecided != bool(budget_undecided(self.budget, self.steps)):
            raise ValueError(f"budget_undecided={self.budget_undecided} does not follow from the steps and budget")
        # every step: a chain with one left out would be decided, budget and drift, on less than it reads as
        if [s.request for s in self.steps] != self.links:
            raise ValueError("the chain's steps are not its links, in order")
        return self

    @property
    def requests_budget(self) -> str | None:
        """The budget's `requests K` in words (:func:`requests_budget_text`), None without one."""
        if self.budget is None or self.budget.approximate_requests is None:
            return None
        return requests_budget_text(self.budget.approximate_requests)

    @property
    def order_text(self) -> str:
        """What each step started from (:func:`order_text`), for the reports' chain section."""
        return order_text(self.steps)

    @property
    def order_plain(self) -> str:
        """:attr:`order_text` in plain text (the HTML report escapes it)."""
        return order_text(self.steps, code=quoted)

    @property
    def regressions(self) -> list[tuple[str, str, str]]:
        """(step, earlier request, claim) for every claim that passed and no longer does."""
        return [(s.request, r.request, c.claim) for s in self.steps for r in s.rechecks for c in r.claims
                if c.regressed]

    @property
    def budget_reasons_plain(self) -> list[str]:
        """:attr:`budget_reasons` in plain text, each request's name in quotes (the HTML report escapes it)."""
        if self.budget_exceeded:
            return budget_problems(self.budget, self.steps, quoted)
        return budget_undecided(self.budget, self.steps, quoted)

    @property
    def outcomes_plain(self) -> list[tuple[str, str]]:
        """:meth:`outcomes` in plain text, each name in quotes rather than a code span (the HTML report escapes it)."""
        return self.outcomes(quoted)

    def outcomes(self, code: Callable[[str], str] = code_span) -> list[tuple[str, str]]:
        """What the chain adds to the report's overall result, with why: ``fail`` for a budget exceeded or an
        earlier claim that a later request made fail; ``incomplete`` for a budget the intervals cannot settle or
        an earlier claim that no longer passes but has not failed (inconclusive, not evaluated). A chain is one
        model released request after request: the headline reads the chain, not only each request on its own. ``code``
        sets a name apart (a Markdown code span, or :func:`quoted` in plain text)."""
        out: list[tuple[str, str]] = []
        plain = code is not code_span
        if self.budget_exceeded:
            out.append(("fail", "the chain exceeded its budget: "
                        + "; ".join(self.budget_reasons_plain if plain else self.budget_reasons)))
        elif self.budget_undecided:
            out.append(("incomplete", "the chain's budget is not settled: "
                        + "; ".join(budget_undecided(self.budget, self.steps, code))))
        failed = ("fail", "cannot_be_met")
        for s in self.steps:
            for r in s.rechecks:
                for c in r.claims:
                    # a claim that fails on a later model fails the chain, whatever it was when its request ran
                    # (then it already failed, and so did the report); one that passed and no longer does and has
                    # not failed leaves the chain incomplete
                    if c.now in failed and c.then not in failed or c.regressed:
                        out.append(("fail" if c.now in failed else "incomplete",
                                    f"after request {code(s.request)}, claim {code(c.claim)} of the "
                                    f"earlier request {code(r.request)} is {c.now.replace('_', ' ')} ("
                                    + ("it passed" if c.then == "pass" else f"it was {c.then.replace('_', ' ')}")
                                    + " when that request ran)"))
        return out


def order_text(steps: list[ChainStep], code: Callable[[str], str] = code_span) -> str:
    """What each step started from, as the reports say it: the previous step's model, except an exact retrain, which
    retrained the recipe without every target so far (docs/requests.md). ``code`` sets a request's name apart: a
    Markdown code span, or the name as it is for an autoescaped HTML page."""
    exact = [s.request for s in steps if s.exact]
    text = "Each request started from the model the previous one produced (the first from the original model)"
    if exact:
        names = ", ".join(code(n) for n in exact)
        text += (f", except {names}: an exact retrain starts from no model, it retrains the recipe without every "
                 "target so far (its own and every earlier request's)")
    return text + ". After each step every earlier request was re-checked on the new model."


RETRAIN_ADVICE = ("retrain the model without every target so far (exact unlearning) and start a new chain from "
                  "the retrained model")


def build_chain_report(links: list[str], steps: list[ChainStep], budget: ChainBudget | None) -> ChainReport:
    reasons = budget_problems(budget, steps)
    undecided = budget_undecided(budget, steps)
    regressed = any(r.regressed for s in steps for r in s.rechecks)
    advice = None
    if reasons:
        advice = "the chain exceeded its budget: " + RETRAIN_ADVICE
    elif regressed:
        advice = "a later request undid an earlier one's evidence: " + RETRAIN_ADVICE
    elif undecided:
        advice = ("the utility measurements cannot show the chain within its budget: measure utility on more items, "
                  "or " + RETRAIN_ADVICE)
    return ChainReport(links=links, steps=steps, budget=budget, budget_exceeded=bool(reasons),
                       budget_undecided=bool(undecided), budget_reasons=reasons or undecided, recommendation=advice)


# -- the plan's links ------------------------------------------------------------------------------------------


def _sha(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def objective_digest(op: ObjectivePlan) -> str:
    """A chain link's ``objective_sha256``: the sha256 of the objective's plan (compact, sorted JSON)."""
    return _sha(op.model_dump(mode="json"))


def link_digest(prev: str, objective: str, digest: str) -> str:
    """A chain link's ``link_hash``: over the previous link's (``""`` for the first; :func:`start_digest` for a chain
    that continues another file), the objective's name and its ``objective_sha256``."""
    return _sha({"prev": prev, "objective": objective, "sha256": digest})


def start_digest(starts_after: dict[str, str]) -> str:
    """What a chain that continues another file's objective chains its first link to: that file, objective and hash."""
    return _sha(starts_after)


def link_problems(plan: Plan) -> list[str]:
    """Why the plan's chains do not hold together (empty: they do): a link naming no objective of the plan, an
    objective in two places, a link whose `after` is not the link before it, or an ``objective_sha256`` or
    ``link_hash`` that the plan's own objectives do not give. A plan run as given (`run --trust-plan`) is sealed by
    whoever edited it; its chain must still be the one its links record, or a reordered chain or an edited request
    would run, and be reported, under the hashes of another."""
    ops = {op.objective.name: op for op in plan.objectives}
    out: list[str] = []
    placed: set[str] = set()
    for chain in plan.chains:
        out += _chain_problems(chain, ops, placed)
    return out


def _chain_problems(chain: ChainPlan, ops: dict[str, ObjectivePlan], placed: set[str]) -> list[str]:
    out: list[str] = []
    if not chain.links:
        return ["a chain has no links"]
    start = chain.starts_after
    prev = start_digest(start) if start is not None else ""
    before = f"{start.get('file')}#{start.get('objective')}" if start is not None else None
    for link in chain.links:
        name = code_span(link.objective)
        if link.after != before:
            out.append(f"link {name} continues {code_span(link.after) if link.after else 'nothing'}, but "
                       + (f"follows {code_span(before)} in its chain" if before else "starts its chain"))
        before = link.objective
        if link.objective in placed:
            out.append(f"{name} is in a chain twice")
        placed.add(link.objective)
        op = ops.get(link.objective)
        if op is None:
            out.append(f"link {name} names no objective of the plan")
            prev = link.link_hash
            continue
        digest = objective_digest(op)
        if link.objective_sha256 != digest:
            out.append(f"link {name} records the objective's plan as {link.objective_sha256[:12]}…, and the plan's "
                       f"objective hashes to {digest[:12]}…")
        expected = link_digest(prev, link.objective, link.objective_sha256)
        if link.link_hash != expected:
            out.append(f"link {name} has the link hash {link.link_hash[:12]}…, and the links before it give "
                       f"{expected[:12]}…")
        prev = link.link_hash
    return out
