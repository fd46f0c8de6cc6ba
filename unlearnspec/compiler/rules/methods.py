"""Rules on the method that will run: a method whose family cannot serve a claim (UL601)."""

from __future__ import annotations

from collections.abc import Iterator

from unlearnspec.catalog import CODES, FAMILIES
from unlearnspec.compiler.ast import Objective
from unlearnspec.compiler.diagnostics import Diagnostic, Label
from unlearnspec.compiler.rules.base import RuleContext, rule
from unlearnspec.markdown import code_span

UL601 = CODES["UL601"]
_SERVES_NOT = frozenset(c for f in FAMILIES.values() for c in f.cannot_serve)


@rule(UL601, affects=_SERVES_NOT, defers_to_errors=True)
def method_cannot_serve_claim(obj: Objective, ctx: RuleContext) -> Iterator[Diagnostic]:
    """Each claim the method's family cannot serve (a claim another error already concerns is left to it)."""
    choice = ctx.method
    table = FAMILIES[choice.family].cannot_serve if choice.family else {}
    for c in obj.claims:
        why = table.get(c.name)
        if why is None:
            continue
        labels = [Label(span=obj.method.name.span, message=f"{code_span(choice.method)} is named here")] if obj.method else []
        how = code_span(choice.method) + (" (chosen by the compiler)" if choice.chosen_by == "compiler" else "")
        yield Diagnostic(
            code=UL601.code, severity=UL601.severity, span=c.span, labels=labels, objective=obj.name, claim=c.name,
            message=f"method {how} cannot serve claim {code_span(c.name)}: {why}",
            help=[f"drop claim {code_span(c.name)}, or write a removal objective (`goal removal`, `method npo`) if the "
                  "information must leave the weights"])
