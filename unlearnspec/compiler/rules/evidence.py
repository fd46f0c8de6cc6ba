"""Rules on the evidence a claim will be decided by: output-only evidence for removal (UL406) and
evidence that no plan can produce (UL410). Both read :func:`evidence_for`, as the lowering does."""

from __future__ import annotations

from collections.abc import Iterator

from unlearnspec.catalog import CLAIMS, CODES, DEFAULT_OUTPUTS, METRICS, NEEDS, OUTPUT_KINDS
from unlearnspec.compiler.ast import Objective
from unlearnspec.compiler.diagnostics import Diagnostic, Label
from unlearnspec.compiler.evidence_defaults import (
    SCOPE_CLAIMS,
    EvidenceItem,
    evidence_for,
    missing_needs,
    scope_prompts,
)
from unlearnspec.compiler.rules.base import RuleContext, finding, goal_of, label, rule
from unlearnspec.markdown import code_span

UL406 = CODES["UL406"]


@rule(UL406, affects=frozenset({"removed"}))
def removal_verified_by_outputs_only(obj: Objective, ctx: RuleContext) -> Iterator[Diagnostic]:
    c = obj.claim("removed")
    if c is None or goal_of(obj) == "suppression":  # suppression cannot claim removal at all: UL302
        return
    items = evidence_for(obj, c)
    if not items or any(i.source != "spec" for i in items) or not all(METRICS[i.metric].outputs_only for i in items):
        return
    labels = [Label(span=e.metric_span, message="an output metric") for e in obj.evidence
              if e.metric in CLAIMS["removed"].evidence]
    yield finding(
        UL406, obj, c.span,
        "claim `removed` is verified only by output metrics, which cannot tell removal from suppression",
        labels=labels, claim=c.name, help=_parameter_evidence(obj))


def _parameter_evidence(obj: Objective) -> list[str]:
    """UL406's help: the evidence about the parameters to add (the claim's default evidence: membership inference,
    comparison with the retrained reference, a representation probe, FRAMEWORK.md §5), each with what it still
    needs here, so that what the help offers can be computed once written."""
    ready: list[str] = []
    blocked: list[str] = []
    for metric in CLAIMS["removed"].defaults:
        t = METRICS[metric].threshold
        bound = f"`{metric} {t.op} {t.value:g}`"
        missing, _ = missing_needs(obj, metric)
        if missing:
            blocked.append(f"{bound} needs " + "; ".join(NEEDS[n].words for n in missing) + ": "
                           + "; ".join(NEEDS[n].fix for n in missing))
        else:
            ready.append(bound)
    what = ("evidence about the parameters: membership inference against holdout data, comparison with the "
            "retrained reference, a representation probe")
    first = (f"add {', '.join(ready)} to `evidence`: {what}" if ready else
             f"add {what}, which needs more data here:")
    return [first, *blocked]


UL410 = CODES["UL410"]



def _needs_of(items: list[EvidenceItem]) -> list[str]:
    seen: list[str] = []
    for i in items:
        for n in i.missing:
            if n not in seen:
                seen.append(n)
    return seen


def _narrower(obj: Objective, claim: str, items: list[EvidenceItem], bad: list[EvidenceItem]) -> list[str]:
    """The weaker claim the data can decide, when part of its default evidence cannot run: its evidence written
    in `evidence` (which then replaces the defaults), or, for a claim whose defaults come from `scope` (spec
    evidence never drops scope coverage, see :func:`evidence_for`), the scope narrowed to what can be measured."""
    if claim in SCOPE_CLAIMS:
        if CLAIMS[claim].from_scope == "outputs":
            scope = obj.scope
            outputs = [w.value for w in scope.outputs] if scope and scope.outputs else list(DEFAULT_OUTPUTS)
            lost = {i.metric for i in bad}
            keep = [o for o in outputs if not lost & set(OUTPUT_KINDS[o].metrics)]
            field = "outputs"
        else:
            lost = {str(i.probe) for i in bad}
            keep = [p for p in scope_prompts(obj) if p not in lost]
            field = "prompts"
        if not keep:
            return []
        return [f"or claim it for what can be measured here: `scope {{ {field} {', '.join(keep)} }}`"]
    can = ", ".join(dict.fromkeys(f"`{i.metric} {i.op} {i.value:g}`" for i in items if not i.missing))
    return [f"or decide it with what can be measured: write its evidence in `evidence` ({can})"]


@rule(UL410, affects=frozenset())
def evidence_cannot_be_produced(obj: Objective, ctx: RuleContext) -> Iterator[Diagnostic]:
    for c in obj.claims:
        if c.name in ("prevents_misuse", "prevents_infringement"):
            continue  # UL306: cannot be met at all
        if c.name == "compliant":
            law = c.law.value if c.law else ""
            yield finding(
                UL410, obj, c.span, f"no measurement can decide claim `compliant \"{law}\"`: compliance is a legal "
                "judgment, so every run reports it not evaluated and the objective's result is at best incomplete "
                "(exit 3)", claim=c.name,
                help=["claim what the run measures (`removed`, `not_generated`) and name the law the request rests "
                      "on in `basis`"])
            continue
        items = evidence_for(obj, c)
        if not items:
            continue
        spec_missing = [i for i in items if i.source == "spec" and i.missing]
        default_missing = [i for i in items if i.source == "default" and i.missing]
        extra_help: list[str] = []
        if all(i.missing for i in items):
            bad = items
            message = (f"no evidence for claim {code_span(c.name)} can be produced: "
                       + ", ".join(code_span(m) for m in dict.fromkeys(i.metric for i in items)) + " cannot be computed")
        elif spec_missing:
            bad = spec_missing
            metrics = ", ".join(code_span(m) for m in dict.fromkeys(i.metric for i in bad))
            message = f"{metrics} in `evidence` cannot be computed for claim {code_span(c.name)}"
        elif default_missing:
            # Part of the default evidence cannot run: every run would report the claim *not evaluated*.
            bad = default_missing
            metrics = ", ".join(code_span(m) for m in dict.fromkeys(i.metric for i in bad))
            message = (f"{metrics}, default evidence of claim {code_span(c.name)}, cannot be computed here: every run "
                       "would report the claim not evaluated")
            extra_help = _narrower(obj, c.name, items, bad)
        else:
            continue
        needs = _needs_of(bad)
        labels: list[Label] = []
        if "reference" in needs and obj.model is not None:
            labels += label(obj.model.span, "not built in: it cannot be retrained as a reference")
        if ("holdout" in needs or "attribute" in needs) and obj.target is not None:
            labels += label(obj.target.name.span, "the target has no " + " or ".join(
                code_span(n) for n in needs if n in ("holdout", "attribute")))
        bad_metrics = {i.metric for i in bad}
        labels += [Label(span=e.metric_span, message="cannot be computed") for e in obj.evidence
                   if e.metric in bad_metrics]
        yield finding(
            UL410, obj, c.span, message, labels=labels, claim=c.name,
            help=["; or ".join(NEEDS[n].fix for n in needs),
                  *[f"{code_span(m)} needs " + "; ".join(NEEDS[n].words for n in dict.fromkeys(
                      n for i in bad if i.metric == m for n in i.missing))
                    for m in dict.fromkeys(i.metric for i in bad)], *extra_help])
