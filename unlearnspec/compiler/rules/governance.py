"""Rules on how objectives are framed and combined: sequential requests (UL502), compliance (UL503)."""

from __future__ import annotations

import re
from collections.abc import Iterator

from unlearnspec.catalog import CODES
from unlearnspec.compiler.ast import Objective
from unlearnspec.compiler.diagnostics import Diagnostic, Label
from unlearnspec.compiler.rules.base import RuleContext, finding, planned_method, rule
from unlearnspec.markdown import code_span

UL502 = CODES["UL502"]


@rule(UL502)
def sequential_approximate_unlearning(obj: Objective, ctx: RuleContext) -> Iterator[Diagnostic]:
    if obj.model is None or ctx.method.family != "approximate" or obj.unlearned is not None:
        return  # an audit (`unlearned`) unlearns nothing here, so it adds no request to the sequence
    others = [o for o in ctx.siblings
              if o.unlearned is None and planned_method(o, ctx.builtin).family == "approximate"]
    if not others:
        return
    chained = obj.after is not None or any(o.after is not None and o.after.value == obj.name for o in others)
    budgeted = any(o.budget is not None for o in (obj, *others))
    if chained:  # requests that arrive over time cannot be merged into one batch: a budget says when to retrain
        help = ["the chain's `budget` says when its cumulative cost calls for retraining (docs/requests.md)"
                if budgeted else
                "give the chain a `budget { utility drop <= N%  requests K }` on its first objective, so the run "
                "says when retraining is due (docs/requests.md)"]
    else:
        help = ["merge the requests into one objective (several forget files in one target) and run them as one "
                "batch; plan periodic retraining"]
    yield finding(
        UL502, obj, obj.name_span,
        f"{len(others) + 1} objectives unlearn from {code_span(obj.model.value)} with approximate methods: sequential "
        "requests degrade approximate unlearning",
        labels=[Label(span=o.name_span, message="also approximate unlearning on this model") for o in others],
        help=help)


UL503 = CODES["UL503"]

_COMPLIANCE = re.compile(r"\b(complian(?:t|ce)|compl(?:y|ies)|conform(?:s|ity|ant)?|satisf(?:y|ies|ied)|"
                         r"fulfil(?:l|s|ls)?|meets|guarantee[sd]?)\b", re.IGNORECASE)
_LAW = re.compile(r"(\b(GDPR|CCPA|CPRA|DMCA|HIPAA|COPPA|PIPEDA|LGPD|EU AI Act)\b|\bArt(?:icle)?\.?\s*\d|§|"
                  r"\b(Act|Law|Regulation|Directive|Code|copyright)\b)", re.IGNORECASE)


def states_compliance(text: str) -> bool:
    """A basis text that states compliance with a law, not merely the law a request rests on."""
    return bool(_COMPLIANCE.search(text) and _LAW.search(text))


@rule(UL503)
def compliance_framing(obj: Objective, ctx: RuleContext) -> Iterator[Diagnostic]:
    help = ['state the law in `basis` as the reason for the request (e.g. `basis "GDPR Art. 17, request '
            '2026-0113"`), and claim what the run measures (`removed`, `not_generated`)']
    for c in obj.claims:
        if c.name == "compliant":
            law = c.law.value if c.law else ""
            yield finding(UL503, obj, c.span,
                          f"claim `compliant \"{law}\"` states compliance: unlearning gives evidence of best effort, "
                          "not proof of compliance", claim=c.name, help=help)
    if obj.basis is not None and states_compliance(obj.basis.value):
        yield finding(UL503, obj, obj.basis.span,
                      f"`basis` states compliance ({code_span(obj.basis.value)}): unlearning gives evidence of best effort, "
                      "not proof of compliance", help=help)
