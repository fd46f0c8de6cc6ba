"""Rules on what the claims promise: inputs, downstream use, exactness, open-ended scopes.

UL305 (in-context information), UL306 (downstream use), UL307 (exactness), UL401 (any prompt),
UL403 (certificates), UL407 (substantial similarity).
"""

from __future__ import annotations

from collections.abc import Iterator

from unlearnspec.catalog import CODES, OUTPUT_CLAIMS, REMOVAL_CLAIMS, UNKNOWN
from unlearnspec.compiler.ast import Objective
from unlearnspec.compiler.diagnostics import Diagnostic, Edit, Fix
from unlearnspec.compiler.rules.base import (
    RuleContext,
    claim_label,
    finding,
    goal_label,
    goal_of,
    label,
    method_label,
    release_of,
    rule,
    word_label,
)
from unlearnspec.markdown import code_span

UL305 = CODES["UL305"]


@rule(UL305, affects=OUTPUT_CLAIMS)
def in_context_reintroduction(obj: Objective, ctx: RuleContext) -> Iterator[Diagnostic]:
    ic = next((w for w in obj.scope.prompts if w.value == "in_context"), None) if obj.scope else None
    if ic is None:
        return
    family = ctx.method.family
    if family == "system_suppression" and release_of(obj) in ("api", "internal"):
        return  # an output filter in a served system does bound the outputs
    for c in obj.claims:
        if c.name not in OUTPUT_CLAIMS:
            continue
        yield finding(
            UL305, obj, c.span,
            f"claim {code_span(c.name)} cannot hold for `in_context` prompts: a user can put the information into the "
            "prompt and the model will use it",
            labels=[*label(ic.span, "user-supplied information is in scope"), *goal_label(obj)], claim=c.name,
            help=["drop `in_context` from `prompts` (the evaluation still reports it as a probe), or filter outputs "
                  "in a system you serve: `goal suppression via system` with `release api`"])


UL306 = CODES["UL306"]


@rule(UL306, affects=frozenset())
def claim_depends_on_downstream_use(obj: Objective, ctx: RuleContext) -> Iterator[Diagnostic]:
    for c in obj.claims:
        if c.name == "prevents_infringement":
            help = ["claim `not_generated` with `verbatim_rouge <= 0.20` on passages of the named work "
                    "(a bound on near-verbatim regurgitation)"]
        elif c.name == "prevents_misuse":
            help = ["claim `not_generated` on an operational `test` set of hazardous requests, with a `neighbors` "
                    "set of benign ones and a `utility neighbors drop` tolerance"]
        else:
            continue
        yield finding(
            UL306, obj, c.span,
            f"claim {code_span(c.name)} depends on how outputs are used downstream, which the model developer does not "
            "control", claim=c.name, help=help,
            labels=label(obj.target.name.span, "the target") if obj.target else [])


UL307 = CODES["UL307"]


@rule(UL307, affects=REMOVAL_CLAIMS)
def exactness_without_exact_method(obj: Objective, ctx: RuleContext) -> Iterator[Diagnostic]:
    choice = ctx.method
    if choice.family in (None, "exact"):
        return
    if choice.family == UNKNOWN:  # an audited checkpoint whose method is not stated: assume nothing
        how = "a method that is not stated"
        if obj.method is not None:
            labels = method_label(obj)
        else:
            labels = label(obj.unlearned.span, "audited as given") if obj.unlearned else []
    elif obj.method is not None:
        name = obj.method.name.value
        how = code_span(name)
        labels = method_label(obj)
    else:
        model = obj.model.value if obj.model else "the model"
        how = f"any method the compiler can run on {code_span(model)} (it cannot be retrained)"
        labels = label(obj.model.span, "not built in: its training data and recipe are unknown") if obj.model else []
    if choice.family == UNKNOWN:
        help = ["write `guarantee empirical` and claim `removed`, decided by its default checks (membership "
                "inference, forget quality against a model retrained without the forget set, the representation "
                "probe: no `evidence` line for them, which would replace the others): measurements of a checkpoint "
                "cannot show how it was made, and only retraining is exact"]
    elif ctx.builtin:
        help = ["write `method retrain` (the built-in model's corpus and recipe are known), or `guarantee empirical`, "
                "judged against the retrained reference"]
    else:
        help = ["write `guarantee empirical` and claim `removed`, decided by its default checks against a "
                "`reference` model retrained without the forget set"]
    g = obj.guarantee
    if g is not None and g.value == "exact" and goal_of(obj) != "suppression":  # suppression: UL302
        retrain = ([Fix.replace(obj.method.name.span, "retrain", "write `method retrain`")]
                   if ctx.builtin and choice.family != UNKNOWN and obj.method is not None else [])
        yield finding(UL307, obj, g.span, f"`guarantee exact` cannot be met by {how}: only retraining is exact",
                      labels=labels, help=help,
                      fixes=[*retrain, Fix.replace(g.span, "empirical", "write `guarantee empirical`")])
    c = obj.claim("as_if_never_trained")
    if c is not None and goal_of(obj) != "suppression":  # suppression: UL302 already says why
        yield finding(UL307, obj, c.span,
                      f"claim `as_if_never_trained` cannot be met by {how}: only retraining gives a model as if "
                      "never trained on the target", labels=labels, help=help, claim=c.name)


UL401 = CODES["UL401"]


@rule(UL401, affects=OUTPUT_CLAIMS)
def unbounded_prompt_scope(obj: Objective, ctx: RuleContext) -> Iterator[Diagnostic]:
    w = next((w for w in obj.scope.prompts if w.value == "any"), None) if obj.scope else None
    if w is None:
        return
    yield finding(
        UL401, obj, w.span, "`prompts any` cannot be verified: the space of prompts is unbounded",
        labels=[lab for c in obj.claims if c.name in OUTPUT_CLAIMS
                for lab in claim_label(c, "judged against every possible prompt")],
        help=["name the prompt distributions the evaluation runs, e.g. `prompts direct, paraphrased, adversarial`, "
              "and claim robustness for those only"])


UL403 = CODES["UL403"]


@rule(UL403, affects=REMOVAL_CLAIMS)
def certified_guarantee(obj: Objective, ctx: RuleContext) -> Iterator[Diagnostic]:
    g = obj.guarantee
    if g is None or g.value != "certified" or goal_of(obj) == "suppression":  # suppression: UL302
        return
    family = ctx.method.family
    if family == "exact":
        return
    yield finding(
        UL403, obj, g.span,
        "`guarantee certified` cannot be verified for a deep generative model: certified unlearning exists only "
        "for restricted model classes", labels=method_label(obj),
        help=["write `guarantee empirical` and state its evidence: `forget_quality >= 0.05`, `membership_auc <= 0.60`"],
        fixes=[Fix.replace(g.span, "empirical", "write `guarantee empirical`")])


UL407 = CODES["UL407"]


@rule(UL407, affects=OUTPUT_CLAIMS)
def substantial_similarity_scope(obj: Objective, ctx: RuleContext) -> Iterator[Diagnostic]:
    t = obj.target
    if t is None or t.category.value != "work":
        return
    similar = next((w for w in obj.scope.outputs if w.value == "similar"), None) if obj.scope else None
    c = obj.claim("not_generated_similar")
    labels = [*label(t.category.span, "a copyrighted work"), *word_label(similar, "similar outputs are in scope")]
    help = ["write `outputs verbatim` and claim `not_generated` with `verbatim_rouge <= 0.20` on passages of the "
            "work (a near-verbatim regurgitation bound)"]
    words = obj.scope.outputs if obj.scope else []
    fixes = [Fix.replace(words[0].span.through(words[-1].span), "verbatim", "write `outputs verbatim`")] if words else []
    name = t.name.value
    if c is not None:
        yield finding(UL407, obj, c.span,
                      f"claim `not_generated_similar` for {code_span(name)} turns on substantial similarity, a legal judgment "
                      "rather than a measurement", labels=labels, help=help, claim=c.name,
                      fixes=[Fix(title="write `outputs verbatim` and claim `not_generated`",
                                 edits=[*fixes[0].edits, Edit(span=c.name_span, text="not_generated")])] if fixes else [])
    elif similar is not None:
        yield finding(UL407, obj, similar.span,
                      f"`similar` outputs of {code_span(name)} turn on substantial similarity, a legal judgment rather than "
                      "a measurement", labels=labels, help=help, fixes=fixes)
