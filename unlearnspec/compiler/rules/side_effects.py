"""Rules on side effects: zero tolerance (UL308), unmeasured side effects (UL404), dual use (UL504)."""

from __future__ import annotations

from collections.abc import Iterator

from unlearnspec.compiler.ast import Objective
from unlearnspec.compiler.codes import CodePage
from unlearnspec.compiler.diagnostics import Diagnostic
from unlearnspec.compiler.rules.base import RuleContext, finding, label, paper, rule

SIDE_EFFECT_CLAIMS = frozenset({"no_side_effects"})

UL308 = CodePage(
    code="UL308", name="zero-side-effects", severity="error", category="feasibility",
    summary="Zero tolerance for side effects: claim `no_side_effects`, `preserve { side_effects none }`, or "
            "`utility drop <= 0%`.",
    why="Removing targeted information degrades related, and sometimes unrelated, behaviour: the knowledge that "
        "is unlearnt is entangled with knowledge that is kept. \"No side effects\" is therefore not a meetable "
        "objective; a tolerance measured on named retain and neighbour sets is. Source: Cooper et al. 2024, "
        "Section 4 (side effects of unlearning); measured in TOFU (arXiv:2401.06121) and MUSE (arXiv:2407.06460) "
        "as utility loss on retain sets.",
    example='preserve {\n  side_effects none\n}\nclaims {\n  no_side_effects\n}',
    instead='preserve {\n  retain    "data/retain.jsonl"\n  neighbors "data/neighbors.jsonl"\n'
            '  utility   drop <= 2%\n}',
    references=[paper("Section 4 (side effects)"),
                "W. Shi et al., \"MUSE: Machine Unlearning Six-Way Evaluation for Language Models\", arXiv:2407.06460"],
)

_HELP_308 = ("state a measured tolerance on named sets instead: `preserve { retain \"...\"  neighbors \"...\"  "
             "utility drop <= 2% }`")
_WHY_308 = "unlearning changes related and sometimes unrelated behaviour"


@rule(UL308, affects=SIDE_EFFECT_CLAIMS)
def zero_side_effects(obj: Objective, ctx: RuleContext) -> Iterator[Diagnostic]:
    c = obj.claim("no_side_effects")
    if c is not None:
        yield finding(UL308, obj, c.span, f"claim `no_side_effects` cannot be met: {_WHY_308}", claim=c.name,
                      help=[_HELP_308 + ", and drop the claim `no_side_effects`"])
    p = obj.preserve
    if p is None:
        return
    if p.side_effects_none is not None:
        yield finding(UL308, obj, p.side_effects_none.span, f"`side_effects none` cannot be met: {_WHY_308}",
                      help=[_HELP_308], labels=label(c.name_span, "claimed here too") if c else [])
    for tol in p.utility:
        if tol.percent == 0:
            yield finding(UL308, obj, tol.span, f"a utility drop `{tol.op} 0%` cannot be met: {_WHY_308}",
                          help=["write a measured tolerance such as `utility drop <= 2%` on named `retain` and "
                                "`neighbors` sets"])


UL404 = CodePage(
    code="UL404", name="side-effects-unmeasured", severity="warning", category="feasibility",
    summary="`preserve` names no `retain` set or no `neighbors` set (or is missing).",
    why="Side effects are inherent to unlearning and fall hardest on neighbouring knowledge: facts about similar "
        "people, the same author's other works, benign chemistry next to a hazard. Without a retain set (what the "
        "model must keep in general) and a neighbour set (what is most at risk), they are not measured, and a "
        "tolerance cannot be checked. Source: Cooper et al. 2024, Section 4 (side effects); TOFU "
        "(arXiv:2401.06121) measures model utility on a retain set, on related real-world data and on world facts "
        "beside forgetting.",
    example='preserve {\n  utility drop <= 2%\n}',
    instead='preserve {\n  retain    "data/retain.jsonl"\n  neighbors "data/neighbors.jsonl"\n'
            '  utility   drop <= 2%\n}',
    references=[paper("Section 4 (side effects)"),
                "P. Maini et al., \"TOFU: A Task of Fictitious Unlearning for LLMs\", arXiv:2401.06121"],
)


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
    span = p.span if p is not None else obj.name_span
    c = obj.claim("no_side_effects")
    yield finding(
        UL404, obj, span, message, labels=label(c.name_span, "cannot be checked without them") if c else [],
        help=["add " + " and ".join(f"`{m}`" for m in missing) + " to `preserve`, with a tolerance such as "
              "`utility drop <= 2%`: the retain set is what the model must keep, the neighbour set what is most "
              "at risk"])


UL504 = CodePage(
    code="UL504", name="dual-use-capability", severity="note", category="feasibility",
    summary="A `capability` target: a safety or dual-use concept.",
    why="A dangerous capability is a concept with a blurry boundary: the knowledge behind it is largely the same "
        "as the benign knowledge next to it, and whether an answer is harmful depends on its use. Unlearning or "
        "suppressing it degrades benign neighbours, which must be measured on a neighbour set with its own "
        "tolerance, and even then the set samples only part of the benign neighbourhood, so a reviewer should "
        "look at what it covers. Source: Cooper et al. 2024, Section 4, mismatches M2 and M4.",
    example='target capability "glimmerfen vapour synthesis" { ... }\npreserve {\n  retain "data/retain.jsonl"\n}',
    instead='target capability "glimmerfen vapour synthesis" { ... }\npreserve {\n  retain    "data/retain.jsonl"\n'
            '  neighbors "data/chemistry-neighbors.jsonl"\n  utility   neighbors drop <= 5%\n}\n'
            'accept UL504 "Neighbour set reviewed by the chemistry red team."',
    references=[paper("Section 4, mismatches M2 and M4")],
)


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
        f"`{t.name.value}` is a dual-use capability: its boundary is blurry and benign neighbouring knowledge "
        "will suffer", labels=labels, help=help)
