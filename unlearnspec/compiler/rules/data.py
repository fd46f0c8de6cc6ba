"""Rules on the target's data: the completeness of a forget set for a person (UL405)."""

from __future__ import annotations

from collections.abc import Iterator

from unlearnspec.compiler.ast import Objective
from unlearnspec.compiler.codes import CodePage
from unlearnspec.compiler.diagnostics import Diagnostic
from unlearnspec.compiler.rules.base import RuleContext, finding, label, paper, rule

UL405 = CodePage(
    code="UL405", name="forget-set-completeness", severity="warning", category="feasibility",
    summary="A `person` or `records` target whose only data is its forget set: no `test` set written "
            "independently of it.",
    why="A forget set lists the training examples someone found. Whether it is complete (every document, every "
        "alias) is unknown, and facts about a person can also be inferred from other documents (latent "
        "information). An evaluation that reads only the forget set measures forgetting of what was found, not of "
        "the person's data. A test set of questions about the person, written independently of the forget set, "
        "and a corpus-wide alias search make the gap measurable; if the forget set comes from such a search, the "
        "risk can be accepted with that justification. Source: Cooper et al. 2024 (observed versus "
        "latent information) and Section 4, mismatch M2.",
    example='target person "Jane Doe" {\n  kind   observed\n  forget "data/jane-doe.jsonl"\n}',
    instead='target person "Jane Doe" {\n  kind    observed\n  forget  "data/jane-doe.jsonl"\n'
            '  aliases "J. Doe", "Jane D."\n  test    "data/jane-doe-questions.jsonl"\n}\n\n'
            '# or, after a full-corpus alias search:\naccept UL405 "Forget set built from a full-corpus alias search."',
    references=[paper("observed and latent information; Section 4, mismatch M2")],
)


@rule(UL405, affects=frozenset({"removed", "as_if_never_trained", "not_generated"}))
def forget_set_completeness(obj: Objective, ctx: RuleContext) -> Iterator[Diagnostic]:
    t = obj.target
    if t is None or t.category.value not in ("person", "records") or not t.forget or t.test:
        return
    if t.kind_value != "observed":
        return  # latent targets: UL301 (removal) or UL409 (suppression)
    name = t.name.value
    help = f"add a `test` set of questions about `{name}` written independently of the forget set"
    if not t.aliases:
        help += ", and list the names the corpus uses for them in `aliases`"
    yield finding(
        UL405, obj, t.forget[0].span,
        f"the forget set is the only evidence of what `{name}`'s data is: its completeness is unknown and facts "
        "inferable from other documents are not tested",
        labels=[*label(t.category.span, f"a `{t.category.value}` target"),
                *[lab for p in t.forget[1:] for lab in label(p.span, "forget data")]],
        help=[help, "if the forget set comes from a full-corpus alias search, record that with "
                    "`accept UL405 \"...\"`"])
