"""Rules on chains of requests: a chain that would exceed its own budget as written (UL413).

`requests K` counts the requests that change the weights other than by exact retraining (approximate unlearning
and refusal fine-tuning; an output filter changes none), from the chain's start or its last exact retrain: the same
count the run's report makes (``report.chain.counted_runs``)."""

from __future__ import annotations

from collections.abc import Iterator

from unlearnspec.catalog import CODES
from unlearnspec.catalog.vocab import COUNTED_FAMILIES
from unlearnspec.compiler.ast import Objective
from unlearnspec.compiler.diagnostics import Diagnostic, Label
from unlearnspec.compiler.rules.base import RuleContext, finding, planned_method, rule
from unlearnspec.markdown import code_span

UL413 = CODES["UL413"]


def _chain(head: Objective, ctx: RuleContext) -> list[Objective]:
    """``head`` and the objectives that follow it in this file, in order."""
    line, cur = [head], head
    others = list(ctx.siblings)
    while len(line) <= len(others) + 1:
        nxt = next((o for o in others if o.after is not None and o.after.value == cur.name and o not in line), None)
        if nxt is None:
            break
        line.append(nxt)
        cur = nxt
    return line


def _tolerance(obj: Objective) -> float | None:
    """The utility drop a request may cost: its general `utility drop` bound, else its largest specific one."""
    if obj.preserve is None or not obj.preserve.utility:
        return None
    general = [t.percent for t in obj.preserve.utility if t.applies_to == "all"]
    return max(general) if general else max(t.percent for t in obj.preserve.utility)


def _counted(line: list[Objective], ctx: RuleContext) -> tuple[Objective | None, list[Objective]]:
    """The longest run of counted requests (the first such), with the exact retrain it follows (None: the start)."""
    runs: list[tuple[Objective | None, list[Objective]]] = [(None, [])]
    for o in line:
        family = planned_method(o, ctx.builtin).family
        if family == "exact":
            runs.append((o, []))
        elif family in COUNTED_FAMILIES:
            runs[-1][1].append(o)
    return max(runs, key=lambda run: len(run[1]))


@rule(UL413, affects=frozenset())
def chain_exceeds_budget(obj: Objective, ctx: RuleContext) -> Iterator[Diagnostic]:
    budget = obj.budget
    if budget is None or obj.after is not None:
        return
    line = _chain(obj, ctx)
    after, counted = _counted(line, ctx)
    if budget.requests is not None and len(counted) > budget.requests.as_int:
        families = [planned_method(o, ctx.builtin).family for o in counted]
        what = ("approximate requests" if all(f == "approximate" for f in families) else
                "requests that change the weights other than by exact retraining")
        since = f" after the exact retrain {code_span(after.name)}" if after is not None else ""
        yield finding(
            UL413, obj, budget.requests.span,
            f"the chain applies {len(counted)} {what}{since}, more than its budget of "
            f"{budget.requests.as_int} before retraining",
            labels=[Label(span=o.name_span, message="an approximate request" if f == "approximate" else
                          "a request that fine-tunes the weights")
                    for o, f in list(zip(counted, families, strict=True))[budget.requests.as_int:]],
            help=["retrain once the budget is spent and start a new chain from the retrained model, or raise the "
                  "budget if the evaluations show the model holds up"])
    if budget.utility is not None:
        tolerances = [(o, _tolerance(o)) for o in line]
        open_ended = [o for o, t in tolerances if t is None]
        if open_ended:
            yield finding(
                UL413, obj, budget.utility.span,
                f"the chain's utility budget cannot hold: {code_span(open_ended[0].name)} states no utility tolerance",
                labels=[Label(span=o.name_span, message="no `utility drop` bound") for o in open_ended],
                help=["give every request in the chain a `preserve { utility drop <= N% }` bound"])
            return
        # each request's utility check measures the drop against the original model, so its tolerance bounds the
        # chain's cumulative drop at that step: a request whose tolerance is above the budget can pass its own
        # check on a model that spends more than the whole chain may
        over = [(o, t) for o, t in tolerances if t is not None and t > budget.utility.percent]
        if over:
            yield finding(
                UL413, obj, budget.utility.span,
                f"{code_span(over[0][0].name)} tolerates a cumulative utility drop of up to {over[0][1]:g}%, more than the "
                f"chain's budget of {budget.utility.percent:g}%",
                labels=[Label(span=o.preserve.span, message=f"up to {t:g}% against the original model")  # type: ignore[union-attr]
                        for o, t in over],
                help=["each request's `utility drop` is measured against the original model, so it bounds the "
                      "chain's cumulative drop: keep every request's bound within the budget, or raise the budget"])
