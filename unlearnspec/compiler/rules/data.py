"""Rules on the target's data: the completeness of a forget set for a person (UL405)."""

from __future__ import annotations

from collections.abc import Iterator

from unlearnspec.catalog import CODES
from unlearnspec.compiler.ast import Objective
from unlearnspec.compiler.diagnostics import Diagnostic
from unlearnspec.compiler.rules.base import RuleContext, finding, label, rule
from unlearnspec.markdown import code_span

UL405 = CODES["UL405"]


@rule(UL405, affects=frozenset({"removed", "as_if_never_trained", "not_generated"}))
def forget_set_completeness(obj: Objective, ctx: RuleContext) -> Iterator[Diagnostic]:
    t = obj.target
    if t is None or t.category.value not in ("person", "records") or not t.forget or t.test:
        return
    if t.kind_value != "observed":
        return  # latent targets: UL301 (removal) or UL409 (suppression)
    name = t.name.value
    help = f"add a `test` set of questions about {code_span(name)} written independently of the forget set"
    if not t.aliases:
        help += ", and list the names the corpus uses for them in `aliases`"
    yield finding(
        UL405, obj, t.forget[0].span,
        f"the forget set is the only evidence of what {code_span(name)}'s data is: its completeness is unknown and facts "
        "inferable from other documents are not tested",
        labels=[*label(t.category.span, f"a {code_span(t.category.value)} target"),
                *[lab for p in t.forget[1:] for lab in label(p.span, "forget data")]],
        help=[help, "if the forget set comes from a full-corpus alias search, record that with "
                    "`accept UL405 \"...\"`"])
