"""Rules on side effects: zero tolerance (UL308), unmeasured side effects (UL404), dual use (UL504)."""

from __future__ import annotations

from collections.abc import Iterator

from unlearnspec.catalog import CLAIMS, CODES
from unlearnspec.compiler.ast import Objective
from unlearnspec.compiler.diagnostics import Diagnostic
from unlearnspec.compiler.rules.base import RuleContext, finding, label, rule
from unlearnspec.markdown import code_span

SIDE_EFFECT_CLAIMS = frozenset({"no_side_effects"})
UTILITY_DROPS = CLAIMS["no_side_effects"].evidence  # the utility-drop metrics an `evidence` bound may name

UL308 = CODES["UL308"]

_HELP_308 = ("state a measured tolerance on named sets instead: `preserve { retain \"...\"  neighbors \"...\"  "
             "utility drop <= 2% }`")
_WHY_308 = "unlearning changes related and sometimes unrelated behaviour"


@rule(UL308, affects=SIDE_EFFECT_CLAIMS)
def zero_side_effects(obj: Objective, ctx: RuleContext) -> Iterator[Diagnostic]:
    c = obj.claim("no_side_effects")
    if c is not None:
        yield finding(UL308, obj, c.span, f"claim `no_side_effects` cannot be met: {_WHY_308}", claim=c.name,
                      help=[_HELP_308 + ", and drop the claim `no_side_effects`"])
    for e in obj.evidence:  # the same zero tolerance, written as an `evidence` bound on a utility drop
        if e.metric in UTILITY_DROPS and e.op in ("<=", "<") and e.value <= 0:
            yield finding(UL308, obj, e.span, f"`{e.metric} {e.op} {e.value:g}` cannot be met: {_WHY_308}; the check "
                          "would pass only if utility measurably rose (the whole interval of the drop below 0)",
                          help=[f"write a measured tolerance such as `{e.metric} <= 2%`, or "
                                "`preserve { utility drop <= 2% }` on named `retain` and `neighbors` sets"])
    p = obj.preserve
    if p is None:
        return
    if p.side_effects_none is not None:
        yield finding(UL308, obj, p.side_effects_none.span, f"`side_effects none` cannot be met: {_WHY_308}",
                      help=[_HELP_308], labels=label(c.name_span, "claimed here too") if c else [])
    for tol in p.utility:
        if tol.percent == 0:
            yield finding(UL308, obj, tol.span, f"a utility drop `{tol.op} 0%` cannot be met: {_WHY_308}; "
                          "the check would pass only if utility measurably rose (the whole interval of the "
                          "drop below 0)",
                          help=["write a measured tolerance such as `utility drop <= 2%` on named `retain` and "
                                "`neighbors` sets"])


UL404 = CODES["UL404"]


@rule(UL404, affects=SIDE_EFFECT_CLAIMS)
def side_effects_unmeasured(obj: Objective, ctx: RuleContext) -> Iterator[Diagnostic]:
    p = obj.preserve
    retain, neighbors = bool(p and p.retain), bool(p and p.neighbors)
    if retain and neighbors:
        return
    if not retain and not neighbors:
        message = "side effects are unmeasured: no `retain` or `neighbors` set is named in `preserve`"
    elif not neighbors:
        message = "side effects on related knowledge are unmeasured: `preserve` names no `neighbors` set"
    else:
        message = "side effects on general knowledge are unmeasured: `preserve` names no `retain` set"
    missing = [x for x, ok in (('retain "data/retain.jsonl"', retain), ('neighbors "data/neighbors.jsonl"', neighbors))
               if not ok]
    # the `preserve` keyword, not the whole block: the finding is about what the block lacks
    span = p.span.model_copy(update={"end_line": p.span.line, "end_column": p.span.column + len("preserve"),
                                     "end_pos": p.span.start_pos + len("preserve")}) if p is not None else obj.name_span
    c = obj.claim("no_side_effects")
    yield finding(
        UL404, obj, span, message, labels=label(c.name_span, "cannot be checked without them") if c else [],
        help=["add " + " and ".join(code_span(m) for m in missing) + " to `preserve`, with a tolerance such as "
              "`utility drop <= 2%`: the retain set is what the model must keep, the neighbour set what is most "
              "at risk"])


UL504 = CODES["UL504"]


@rule(UL504)
def dual_use_capability(obj: Objective, ctx: RuleContext) -> Iterator[Diagnostic]:
    t = obj.target
    if t is None or t.category.value != "capability":
        return
    p = obj.preserve
    covered = p is not None and p.neighbors and any(tol.applies_to in ("all", "neighbors") for tol in p.utility)
    if covered:
        assert p is not None
        labels = [lab for n in p.neighbors for lab in label(n.span, "the benign neighbours that are measured")]
        help = ["have domain experts review that the `neighbors` set covers the benign uses next to the capability, "
                "and record it with `accept UL504 \"...\"`"]
    else:
        labels = label(p.span, "no neighbour set with a tolerance") if p else []
        help = ["add a `neighbors` set of benign questions from the same field and a `utility neighbors drop <= 5%` "
                "tolerance to `preserve`"]
    yield finding(
        UL504, obj, t.category.span,
        f"{code_span(t.name.value)} is a dual-use capability: its boundary is blurry and benign neighbouring knowledge "
        "will suffer", labels=labels, help=help)
