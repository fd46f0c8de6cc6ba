"""Rules on the evidence a claim will be decided by: output-only evidence for removal (UL406) and
evidence that no plan can produce (UL410). Both read :func:`evidence_for`, as the lowering does."""

from __future__ import annotations

from collections.abc import Iterator

from unlearnspec.compiler.ast import Objective
from unlearnspec.compiler.codes import CodePage
from unlearnspec.compiler.diagnostics import Diagnostic, Label
from unlearnspec.compiler.evidence_defaults import (
    CLAIM_METRICS,
    NEED_WORDS,
    OUTPUT_METRICS,
    EvidenceItem,
    evidence_for,
)
from unlearnspec.compiler.rules.base import RuleContext, finding, goal_of, label, paper, rule

UL406 = CodePage(
    code="UL406", name="removal-verified-by-outputs-only", severity="warning", category="feasibility",
    summary="Claim `removed` whose evidence (the spec's `evidence` thresholds for it) is output metrics only: "
            "no membership inference, reference comparison or representation probe.",
    why="Output metrics (verbatim and knowledge ROUGE, leak and refusal rates) cannot tell removal from "
        "suppression: simple guardrails score like fine-tuning on output benchmarks (Thaker et al.), paraphrase "
        "and in-context probes reveal residual knowledge (Lynch et al.), and linear probes on hidden states "
        "recover information that output metrics call gone (Gao et al.). A removal claim needs evidence about "
        "the parameters: membership inference against holdout data and comparison with the retrained reference. "
        "Sources: Thaker et al. arXiv:2410.02879; Lynch et al. arXiv:2402.16835; Gao et al. arXiv:2604.08271.",
    example='claims {\n  removed\n}\nevidence {\n  verbatim_rouge <= 0.20\n}',
    instead='claims {\n  removed\n}\nevidence {\n  verbatim_rouge <= 0.20\n  membership_auc <= 0.60\n'
            '  forget_quality >= 0.05\n}',
    references=[
        "P. Thaker et al., \"Position: LLM Unlearning Benchmarks are Weak Measures of Progress\", arXiv:2410.02879",
        "A. Lynch et al., \"Eight Methods to Evaluate Robust Unlearning in LLMs\", arXiv:2402.16835",
        "Gao et al., \"An Illusion of Unlearning?\", AISTATS 2026, arXiv:2604.08271",
    ],
)


@rule(UL406, affects=frozenset({"removed"}))
def removal_verified_by_outputs_only(obj: Objective, ctx: RuleContext) -> Iterator[Diagnostic]:
    c = obj.claim("removed")
    if c is None or goal_of(obj) == "suppression":  # suppression cannot claim removal at all: UL302
        return
    items = evidence_for(obj, c)
    if not items or any(i.source != "spec" for i in items) or not all(i.metric in OUTPUT_METRICS for i in items):
        return
    labels = [Label(span=e.metric_span, message="an output metric") for e in obj.evidence
              if e.metric in CLAIM_METRICS["removed"]]
    yield finding(
        UL406, obj, c.span,
        "claim `removed` is verified only by output metrics, which cannot tell removal from suppression",
        labels=labels, claim=c.name,
        help=["add `membership_auc <= 0.60` and `forget_quality >= 0.05` (comparison with the retrained reference) "
              "to `evidence`"])


UL410 = CodePage(
    code="UL410", name="evidence-cannot-be-produced", severity="warning", category="feasibility",
    summary="A claim none of whose evidence can be computed for this objective, whose `evidence` threshold "
            "names a metric that cannot be, or part of whose default evidence cannot be (every run would report it "
            "not evaluated): e.g. `membership_auc` with no holdout data, the representation probe with no reference "
            "model, knowledge metrics on documents without questions, or `compliant` (no metric at all).",
    why="A claim is verified by its metric checks. Some metrics need more than the forget set: forget quality and "
        "PrivLeak compare with a model retrained without the target (possible for the built-in model, or given "
        "as `reference`); membership inference needs non-members from the same distribution (`holdout`); "
        "knowledge metrics need question-answer records; a representation probe needs a labelled attribute. A "
        "claim whose checks cannot run is not verified, and the compiler says so rather than dropping it. Forget "
        "quality and PrivLeak fall back on holdout data when there is no reference (weaker, and the plan says so); "
        "the representation probe has no such stand-in. "
        "Compliance with a law is decided by no metric at all. Sources: TOFU forget quality (arXiv:2401.06121), "
        "MUSE PrivLeak (arXiv:2407.06460), membership inference (Shi et al., arXiv:2310.16789); Cooper et al. "
        "2024, takeaways (claims as evidence of best effort with stated evaluations).",
    example='model "acme/assistant-7b"\ntarget person "Jane Doe" {\n  forget "data/jane-doe.jsonl"\n}\n'
            'goal removal\nmethod npo\nclaims {\n  removed\n}',
    instead='model "acme/assistant-7b"\nreference "acme/assistant-7b-retrained"\ntarget person "Jane Doe" {\n'
            '  forget    "data/jane-doe.jsonl"\n  holdout   "data/holdout.jsonl"\n  attribute birth_city\n}\n'
            'goal removal\nmethod npo\nclaims {\n  removed\n}',
    references=[
        "P. Maini et al., \"TOFU: A Task of Fictitious Unlearning for LLMs\", arXiv:2401.06121",
        "W. Shi et al., \"MUSE: Machine Unlearning Six-Way Evaluation for Language Models\", arXiv:2407.06460",
        "W. Shi et al., \"Detecting Pretraining Data from Large Language Models\", arXiv:2310.16789",
        paper("takeaways"),
    ],
)

_FIX: dict[str, str] = {
    "reference": 'give a `reference "models/retrained"` model trained without the forget set',
    "holdout": 'add `holdout "data/holdout.jsonl"` to the target: examples from the same source the model never saw',
    "qa": 'add question-answer records (`{"question": "...", "answer": "..."}`) to the data',
    "attribute": "add `attribute <name>` to the target: a fact labelled in every record's `attributes`",
    "retain": 'add `retain "data/retain.jsonl"` to `preserve`',
    "neighbors": 'add `neighbors "data/neighbors.jsonl"` to `preserve`',
}


def _needs_of(items: list[EvidenceItem]) -> list[str]:
    seen: list[str] = []
    for i in items:
        for n in i.missing:
            if n not in seen:
                seen.append(n)
    return seen


@rule(UL410, affects=frozenset())
def evidence_cannot_be_produced(obj: Objective, ctx: RuleContext) -> Iterator[Diagnostic]:
    for c in obj.claims:
        if c.name in ("prevents_misuse", "prevents_infringement"):
            continue  # UL306: cannot be met at all
        if c.name == "compliant":
            law = c.law.value if c.law else ""
            yield finding(
                UL410, obj, c.span, f"no measurement can decide claim `compliant \"{law}\"`: compliance is a legal "
                "judgment", claim=c.name,
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
            message = (f"no evidence for claim `{c.name}` can be produced: "
                       + ", ".join(f"`{m}`" for m in dict.fromkeys(i.metric for i in items)) + " cannot be computed")
        elif spec_missing:
            bad = spec_missing
            metrics = ", ".join(f"`{m}`" for m in dict.fromkeys(i.metric for i in bad))
            message = f"{metrics} in `evidence` cannot be computed for claim `{c.name}`"
        elif default_missing:
            # Part of the default evidence cannot run: every run would report the claim *not evaluated*.
            bad = default_missing
            metrics = ", ".join(f"`{m}`" for m in dict.fromkeys(i.metric for i in bad))
            message = (f"{metrics}, default evidence of claim `{c.name}`, cannot be computed here: every run "
                       "would report the claim not evaluated")
            can = ", ".join(f"`{i.metric} {i.op} {i.value:g}`" for i in items if not i.missing)
            extra_help = [f"or decide it with what can be measured: write its evidence in `evidence` ({can})"]
        else:
            continue
        needs = _needs_of(bad)
        labels: list[Label] = []
        if "reference" in needs and obj.model is not None:
            labels += label(obj.model.span, "not built in: it cannot be retrained as a reference")
        if ("holdout" in needs or "attribute" in needs) and obj.target is not None:
            labels += label(obj.target.name.span, "the target has no " + " or ".join(
                f"`{n}`" for n in needs if n in ("holdout", "attribute")))
        bad_metrics = {i.metric for i in bad}
        labels += [Label(span=e.metric_span, message="cannot be computed") for e in obj.evidence
                   if e.metric in bad_metrics]
        yield finding(
            UL410, obj, c.span, message, labels=labels, claim=c.name,
            help=["; or ".join(_FIX[n] for n in needs),
                  *[f"`{m}` needs " + "; ".join(NEED_WORDS[n] for n in dict.fromkeys(
                      n for i in bad if i.metric == m for n in i.missing))
                    for m in dict.fromkeys(i.metric for i in bad)], *extra_help])
