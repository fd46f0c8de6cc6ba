"""Rules on the evidence a claim will be decided by: output-only evidence for removal (UL406), evidence that no
plan can produce (UL410), and an `evidence` block that leaves a claim's defaults out (UL505). All read
:func:`evidence_for`, as the lowering does."""

from __future__ import annotations

from collections.abc import Iterator

from unlearnspec.catalog import CLAIMS, CODES, DEFAULT_OUTPUTS, METRICS, NEEDS, OUTPUT_KINDS
from unlearnspec.compiler.ast import Claim, Objective
from unlearnspec.compiler.diagnostics import Diagnostic, Edit, Fix, Label
from unlearnspec.compiler.evidence_defaults import (
    SCOPE_CLAIMS,
    EvidenceItem,
    evidence_for,
    forget_attribute_keys,
    missing_needs,
    named_attribute,
    scope_prompts,
    spec_metrics_for,
)
from unlearnspec.compiler.fmt import MIN_VALUE_COLUMN
from unlearnspec.compiler.rules.base import RuleContext, claim_label, finding, goal_of, label, rule
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
        uncarried = named_attribute(obj) if "attribute" in needs else None  # named, but no forget record has it
        if uncarried is not None and obj.target is not None:
            where = obj.target.attribute.span if obj.target.attribute is not None else obj.target.name.span
            labels += label(where, f"no forget record carries {code_span(uncarried)}")
        absent = [n for n in needs if n == "holdout" or (n == "attribute" and uncarried is None)]
        if absent and obj.target is not None:
            labels += label(obj.target.name.span, "the target has no " + " or ".join(code_span(n) for n in absent))
        bad_metrics = {i.metric for i in bad}
        labels += [Label(span=e.metric_span, message="cannot be computed") for e in obj.evidence
                   if e.metric in bad_metrics]
        # one help line per way out, then what each metric lacks on one line
        ways = [_attribute_fix(obj, uncarried) if n == "attribute" and uncarried else NEEDS[n].fix for n in needs]
        lacks = "; ".join(f"{code_span(m)} needs " + " and ".join(NEEDS[n].short for n in dict.fromkeys(
            n for i in bad if i.metric == m for n in i.missing)) for m in dict.fromkeys(i.metric for i in bad))
        yield finding(UL410, obj, c.span, message, labels=labels, claim=c.name,
                      help=[ways[0], *(f"or {w}" for w in ways[1:]), *extra_help, lacks])


def _attribute_fix(obj: Objective, attribute: str) -> str:
    """UL410's help for a probe attribute the forget records do not carry: the key, and the keys they carry (read
    at resolve: :func:`forget_attribute_keys`), one of which the target's `attribute` could name instead."""
    keys = forget_attribute_keys(obj) or []
    fix = f"label {code_span(attribute)} in the forget records' `attributes` (no forget record carries it; "
    if not keys:
        return fix + "they carry no `attributes`)"
    return (fix + f"they carry {', '.join(code_span(k) for k in keys)}), or name one of those in the target's "
            "`attribute`")


UL505 = CODES["UL505"]


def replaced_defaults(obj: Objective, claim: Claim) -> list[EvidenceItem]:
    """The default checks of ``claim`` that do not decide it because the `evidence` block names other metrics of its
    family (:func:`evidence_for`: spec evidence replaces the defaults), one per metric, in the catalog's order.

    Only defaults that could run are named: one that needs data or a model this objective lacks would not decide the
    claim either way (UL410 reports it when the block is silent). The claims whose defaults come from `scope` never
    lose them (:data:`SCOPE_CLAIMS`)."""
    written = spec_metrics_for(obj, claim.name)
    if not written or claim.name in SCOPE_CLAIMS:
        return []
    defaults = evidence_for(obj.model_copy(update={"evidence": []}), claim)  # what decides it with a silent block
    out: dict[str, EvidenceItem] = {}
    for i in defaults:
        if i.metric not in written and not i.missing:
            out.setdefault(i.metric, i)
    return list(out.values())


def bound_text(item: EvidenceItem, width: int = 0) -> str:
    """An evidence line as the spec writes it: ``probe_accuracy_gap <= 0.1``, ``retain_utility_drop <= 2%``; the
    name padded to ``width`` when its value starts in a column."""
    unit = "%" if METRICS[item.metric].unit == "percent" else ""
    return f"{item.metric.ljust(width)} {item.op} {item.value:g}{unit}"


@rule(UL505, affects=frozenset(), defers_to_errors=True)
def evidence_replaces_defaults(obj: Objective, ctx: RuleContext) -> Iterator[Diagnostic]:
    for c in obj.claims:
        dropped = replaced_defaults(obj, c)
        if not dropped:
            continue
        family = CLAIMS[c.name].evidence
        lines = [e for e in obj.evidence if e.metric in family]
        bounds = [code_span(bound_text(i)) for i in dropped]
        written = _and([code_span(m) for m in dict.fromkeys(e.metric for e in lines)])
        yield finding(
            UL505, obj, lines[0].span,
            f"claim {code_span(c.name)} is decided by the `evidence` bounds on {written} alone: its default "
            f"{'checks' if len(bounds) > 1 else 'check'} {_and(bounds)} will not decide it",
            labels=[*claim_label(c, "decided by the `evidence` block, not by its defaults"),
                    *[Label(span=e.span, message=f"decides claim {code_span(c.name)} too") for e in lines[1:]]],
            claim=c.name, fixes=[_add_defaults_fix(obj, dropped)],
            help=[f"add {', '.join(bounds)} to `evidence` so that {'they decide' if len(bounds) > 1 else 'it decides'} "
                  f"claim {code_span(c.name)} too",
                  "or, if the bounds written are meant to be its whole evidence, say why: `accept UL505 \"...\"`"])


def _and(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def _add_defaults_fix(obj: Objective, dropped: list[EvidenceItem]) -> Fix:
    """UL505's fix: the defaults written as lines of the `evidence` block, after its last line, laid out as `fmt`
    lays out a run of one-line fields (values in one column, max(longest name + 1, 7) after the indent), the lines
    of that run before them moved to the new column when a new name is longer. It assumes the block is in `fmt`'s
    layout (one field a line); another layout gets the lines at the first line's indentation, and `fmt` tidies
    them. The lines go after the last one's value, so a comment at the end of that line ends the last line added."""
    rows = [(e.span, e.metric, e.metric_span) for e in obj.evidence]
    if obj.confidence is not None:  # `confidence 95%`: its value's span; the name is before it
        rows.append((obj.confidence.span, "confidence", obj.confidence.span))
    rows.sort(key=lambda r: (r[0].line, r[0].column))
    last_span = rows[-1][0]
    indent = " " * (obj.evidence[0].metric_span.column - 1)
    one_a_line = len({r[0].line for r in rows}) == len(rows)
    run = [rows[-1]]
    for r in reversed(rows[:-1]):
        if not one_a_line or r[0].end_line != run[0][0].line - 1:  # a blank line or a comment ends a run
            break
        run.insert(0, r)
    old = max(max(len(name) for _, name, _ in run) + 1, MIN_VALUE_COLUMN) if one_a_line else 0
    new = max(old, *(len(i.metric) + 1 for i in dropped), MIN_VALUE_COLUMN)
    edits: list[Edit] = []
    if one_a_line and new > old:
        for _, name, at in run:  # the gap after a metric's name, or before `confidence`'s value, grows
            point = at.end() if name != "confidence" else at.start()
            edits.append(Edit(span=point, text=" " * (new - old)))
    text = "".join(f"\n{indent}{bound_text(i, new - 1)}" for i in dropped)
    edits.append(Edit(span=last_span.end(), text=text))
    return Fix(title="add " + ", ".join(code_span(bound_text(i)) for i in dropped) + " to `evidence`", edits=edits)
