"""Feasibility pass: run every rule on every objective, apply ``accept``, and judge each claim.

``analyse(spec)`` is the compiler pass (after resolve): it returns the UL3xx-UL5xx findings, with
accepted warnings and notes marked, plus UL213 (an ``accept`` of an error: refused, the error
stays) and UL214 (an ``accept`` that matches no finding).

``claim_statuses(obj, diags)`` is the policy reader's view: for each claim, one of

* ``cannot_be_met`` — an error finding concerns it (errors cannot be accepted);
* ``cannot_be_verified`` — a warning concerns it. An *accepted* warning keeps this status: the
  acceptance records a reviewed risk, it does not make the claim verifiable; the row lists the
  accepted codes and the justification beside the reason;
* ``supported`` — nothing stands in the way; the run decides it from its evidence. Notes that
  concern it are listed as cautions and do not change the status.

A finding concerns a claim when it names it (``Diagnostic.claim``), or when it is an
objective-level finding (``claim=None``) of a code whose rule declares it bears on that claim
(:data:`unlearnspec.compiler.rules.AFFECTS`; ``None`` there means every claim of the objective).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from unlearnspec.catalog import CODES, ClaimStatus, vocab
from unlearnspec.compiler.ast import Claim, Objective, Spec
from unlearnspec.compiler.decisions import planned_method
from unlearnspec.compiler.diagnostics import Diagnostic, Label
from unlearnspec.compiler.evidence_defaults import EvidenceItem, evidence_for, is_builtin
from unlearnspec.compiler.rules import AFFECTS, RULES, RuleContext
from unlearnspec.markdown import code_span

META_CODES = ("UL213", "UL214")  # findings about `accept` lines themselves


def acceptable(code: str) -> bool:
    """Whether an `accept` line can accept ``code``: a feasibility warning or note. Errors cannot be accepted
    (UL213), other passes' findings are never matched, and the findings about `accept` lines themselves
    (:data:`META_CODES`) are not acceptable (UL214)."""
    page = CODES.get(code)
    return (page is not None and page.severity != "error" and page.category == "feasibility"
            and code not in META_CODES)


def context_for(spec: Spec, obj: Objective) -> RuleContext:
    """The facts beyond ``obj`` that the rules read: the model's kind and its other objectives."""
    model = obj.model.value if obj.model else None
    siblings = tuple(o for o in spec.objectives
                     if o is not obj and model is not None and o.model is not None and o.model.value == model)
    builtin = is_builtin(obj)
    return RuleContext(spec_path=spec.path, base_dir=spec.base_dir, builtin=builtin,
                       method=planned_method(obj, builtin),
                       objectives_on_model=len(siblings) + 1, siblings=siblings)


def check_objective(obj: Objective, ctx: RuleContext) -> list[Diagnostic]:
    """Every rule's findings for one objective, in code order, before ``accept`` is applied.

    A rule that defers to errors (UL601) reports no claim that another rule's error already concerns:
    the first reason a claim cannot be met is the one worth reading."""
    found = [d for r in RULES if not r.defers_to_errors for d in r(obj, ctx)]
    errors = [d for d in found if d.severity == "error"]
    for r in RULES:
        if r.defers_to_errors:
            found.extend(d for d in r(obj, ctx) if d.claim is None or not any(concerns(e, d.claim) for e in errors))
    return sorted(found, key=lambda d: d.code)


def apply_accepts(obj: Objective, diags: list[Diagnostic]) -> list[Diagnostic]:
    """Mark accepted warnings and notes; report accepts of errors (UL213) and unused accepts (UL214)."""
    out = list(diags)
    extra: list[Diagnostic] = []
    seen: dict[str, Label] = {}
    for a in obj.accepts:
        code = a.code.value
        page = CODES.get(code)
        if page is None:  # resolve reported it (UL212)
            continue
        fired = [i for i, d in enumerate(out) if d.code == code]
        if page.severity == "error":
            first_help = next((out[i].help[0] for i in fired if out[i].help), None)
            extra.append(Diagnostic(
                code="UL213", severity="error", span=a.code.span, objective=obj.name,
                message=f"{code_span(code)} is an error and cannot be accepted: the objective cannot be met as written",
                labels=[Label(span=out[i].span, message=f"the {code_span(code)} finding") for i in fired],
                help=[first_help or f"rewrite the objective as `unlearnspec explain {code}` suggests"]))
            continue
        if code in seen:
            extra.append(Diagnostic(
                code="UL214", severity="warning", span=a.span, objective=obj.name,
                message=f"`accept {code}` is given twice", labels=[seen[code]],
                help=["remove the second `accept` line"]))
            continue
        seen[code] = Label(span=a.span, message="first accepted here")
        if not fired or not acceptable(code):
            help = ["remove the `accept` line: a stale acceptance would hide the risk if it came back in another form"]
            if not acceptable(code):
                help.append("only feasibility findings (UL4xx warnings, UL5xx notes) can be accepted")
            extra.append(Diagnostic(
                code="UL214", severity="warning", span=a.span, objective=obj.name,
                message=f"`accept {code}` matches no finding of objective {code_span(obj.name)}", help=help))
            continue
        for i in fired:
            out[i] = out[i].model_copy(update={"accepted": True, "justification": a.justification.value})
    return out + extra


def analyse(spec: Spec) -> list[Diagnostic]:
    """The feasibility findings (UL3xx-UL5xx, UL213, UL214) of every objective in ``spec``."""
    out: list[Diagnostic] = []
    for obj in spec.objectives:
        out.extend(apply_accepts(obj, check_objective(obj, context_for(spec, obj))))
    return out


# -- the policy reader's view --------------------------------------------------------------------


class ClaimStatusRow(BaseModel):
    """One claim of one objective as the compiler judges it before anything runs."""

    model_config = ConfigDict(frozen=True)

    claim: str
    args: dict[str, object] = Field(default_factory=dict)  # {"steps": 20} or {"law": "GDPR"}
    status: ClaimStatus
    reasons: list[str] = Field(default_factory=list)  # codes of the errors/warnings behind the status
    why: str  # plain language: what stands in the way, or that nothing does
    instead: str = ""  # the weaker, achievable claim/objective to write (the first finding's first help)
    evidence: list[EvidenceItem] = Field(default_factory=list)  # the checks that will decide it
    accepted: list[str] = Field(default_factory=list)  # codes accepted for this claim
    justifications: list[str] = Field(default_factory=list)  # the accept texts, in `accepted` order
    notes: list[str] = Field(default_factory=list)  # codes of notes (cautions) that concern it

    @property
    def label(self) -> str:
        """The status in words (``cannot be verified``), as every rendering writes it."""
        return vocab.CLAIM_STATUS_WORDS[self.status]


def concerns(d: Diagnostic, claim: str) -> bool:
    """Whether finding ``d`` bears on ``claim`` (see the module docstring)."""
    if d.claim is not None:
        return d.claim == claim
    if d.code in META_CODES or d.code not in AFFECTS:
        return False
    affected = AFFECTS[d.code]
    return affected is None or claim in affected


def _args(c: Claim) -> dict[str, object]:
    if c.steps is not None:
        return {"steps": c.steps.as_int}
    if c.law is not None:
        return {"law": c.law.value}
    return {}


def _unique(xs: list[str]) -> list[str]:
    return list(dict.fromkeys(xs))


def _instead(d: Diagnostic) -> str:
    """What to write instead, from a finding's help: its first line, and the alternatives after it (the help lines
    that begin "or ..."), so that the weaker objective the data can carry is offered beside "give more data". A
    claim held back by several findings gets each one's, marked with its code: each must be answered."""
    return "; ".join([d.help[0], *(h for h in d.help[1:] if h.startswith("or "))])


def claim_status(obj: Objective, c: Claim, diags: list[Diagnostic]) -> ClaimStatusRow:
    mine = [d for d in diags if (d.objective in (None, obj.name)) and concerns(d, c.name)]
    errors = [d for d in mine if d.severity == "error" and not d.accepted]
    warnings = [d for d in mine if d.severity == "warning"]
    notes = [d for d in mine if d.severity == "note"]
    accepted = [d for d in mine if d.accepted]
    status: ClaimStatus
    if errors:
        status, behind = "cannot_be_met", errors
    elif warnings:
        status, behind = "cannot_be_verified", warnings
    else:
        status, behind = "supported", []
    if behind:
        parts = []
        for d in behind:
            text = f"{d.message} ({d.code})"
            if d.accepted:
                text += f"; accepted: {d.justification}"
            parts.append(text)
        why = "; ".join(parts)
        helped = [d for d in behind if d.help and not d.accepted] or [d for d in behind if d.help]
        insteads = dict.fromkeys((_instead(d), d.code) for d in helped)
        instead = next(iter(insteads))[0] if len(insteads) == 1 else "; ".join(
            f"{text} ({code})" for text, code in insteads)
    else:
        why = "nothing in the objective stands in the way; the run decides it from the evidence below"
        if notes:
            why += "; caution: " + "; ".join(f"{d.message} ({d.code})" for d in notes)
        instead = ""
    acc_codes = _unique([d.code for d in accepted])
    return ClaimStatusRow(
        claim=c.name, args=_args(c), status=status, reasons=_unique([d.code for d in behind]), why=why,
        instead=instead, evidence=evidence_for(obj, c), accepted=acc_codes,
        justifications=[next(d.justification or "" for d in accepted if d.code == code) for code in acc_codes],
        notes=_unique([d.code for d in notes]))


def claim_statuses(obj: Objective, diags: list[Diagnostic]) -> list[ClaimStatusRow]:
    """Each claim of ``obj``, in spec order, with its compile-time status (see the module docstring)."""
    return [claim_status(obj, c, diags) for c in obj.claims]
