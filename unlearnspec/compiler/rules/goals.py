"""Rules on the goal itself: what removal and suppression can reach (UL301-UL304, UL309, UL409).

Removal acts on parameters and needs a forget set; suppression acts on outputs and needs to be
where the outputs are produced. These rules reject objectives whose goal cannot reach the target
or cannot live where the model is released.
"""

from __future__ import annotations

from collections.abc import Iterator

from unlearnspec.catalog import CODES, OUTPUT_CLAIMS, REMOVAL_CLAIMS
from unlearnspec.compiler.ast import Objective
from unlearnspec.compiler.diagnostics import Diagnostic, Fix
from unlearnspec.compiler.rules.base import (
    RuleContext,
    claim_label,
    finding,
    goal_fix,
    goal_label,
    goal_of,
    kind_label,
    label,
    method_label,
    release_label,
    release_of,
    rule,
    weights_leave,
    word_label,
)
from unlearnspec.compiler.syntax import quote
from unlearnspec.markdown import code_span

UL301 = CODES["UL301"]


@rule(UL301)
def removal_of_unobserved_target(obj: Objective, ctx: RuleContext) -> Iterator[Diagnostic]:
    t, g = obj.target, obj.goal
    if g is None or t is None or g.goal.value != "removal" or t.kind_value not in ("latent", "concept"):
        return
    kind, name = t.kind_value, t.name.value
    yield finding(
        UL301, obj, g.goal.span, f"removal of a {code_span(kind)} target cannot be met: no forget set defines {code_span(name)}",
        labels=[*kind_label(obj), *(label(t.name.span, "the target") if t.kind is not None else [])],
        help=[f"write `goal suppression via model` with an operational `test` set of prompts about {code_span(name)}, "
              "or set `kind observed` and remove only the named examples in the forget set",
              "a concept stays producible from the rest of the training data even after exact retraining"],
        fixes=goal_fix(obj, "suppression via model"))


UL302 = CODES["UL302"]


@rule(UL302, affects=REMOVAL_CLAIMS)
def suppression_claims_erasure(obj: Objective, ctx: RuleContext) -> Iterator[Diagnostic]:
    if goal_of(obj) != "suppression":
        return
    g = obj.guarantee
    if g is not None and g.value in ("exact", "certified") and ctx.method.family != "exact":
        # a guarantee of erasure (FRAMEWORK.md §6, UL302): UL307 and UL403 leave suppression goals to this rule
        yield finding(
            UL302, obj, g.span,
            f"suppression cannot support `guarantee {g.value}`: it guarantees what the weights no longer carry, and "
            "suppressed information stays in them",
            labels=[*goal_label(obj), *method_label(obj)],
            help=["write `guarantee empirical`: the claims hold under the stated evaluations; or write `goal removal` "
                  "with `method retrain` if the information must provably leave the weights"],
            fixes=[Fix.replace(g.span, "empirical", "write `guarantee empirical`"), *goal_fix(obj, "removal", "retrain")])
    for c in obj.claims:
        if c.name in ("removed", "as_if_never_trained"):
            yield finding(
                UL302, obj, c.span,
                f"suppression cannot support claim {code_span(c.name)}: suppressed information stays in the weights",
                labels=[*goal_label(obj), *method_label(obj)], claim=c.name,
                help=["claim `not_generated`, which suppression can show; or write `goal removal` with a removal "
                      "method (`npo`, `retrain`) if the information must leave the weights"],
                fixes=goal_fix(obj, "removal"))
        elif c.name == "robust_to_finetuning" and weights_leave(obj):
            yield finding(
                UL302, obj, c.span,
                f"suppression cannot support claim `robust_to_finetuning` on {code_span(release_of(obj))} weights: "
                "holders of the weights can fine-tune the suppression away",
                labels=[*goal_label(obj), *release_label(obj, "the weights leave your control")], claim=c.name,
                help=["release through `api`, where nobody else can fine-tune; or write `goal removal` and claim "
                      "`robust_to_finetuning steps N` with the relearning budget the evaluation attacks with"],
                fixes=goal_fix(obj, "removal"))


UL303 = CODES["UL303"]


@rule(UL303, affects=OUTPUT_CLAIMS)
def removal_promises_no_similar_outputs(obj: Objective, ctx: RuleContext) -> Iterator[Diagnostic]:
    if goal_of(obj) != "removal":
        return
    similar = next((w for w in obj.scope.outputs if w.value == "similar"), None) if obj.scope else None
    c = obj.claim("not_generated_similar")
    help = [f"keep `outputs verbatim, facts` in this removal objective and add a `goal suppression` objective "
            f"with {code_span('after ' + quote(obj.name))} (a chain, so one model carries both changes: docs/requests.md) that claims "
            "`not_generated_similar` against an operational `test` set",
            "models generalise: similar content comes back from other data even after exact retraining"]
    if c is not None:
        yield finding(UL303, obj, c.span,
                      "removal cannot support claim `not_generated_similar`: models produce similar content "
                      "from other data", claim=c.name,
                      labels=[*goal_label(obj), *word_label(similar, "similar outputs are in scope")], help=help)
    elif similar is not None:
        yield finding(UL303, obj, similar.span,
                      "removal cannot keep `similar` outputs away: models produce similar content from other data",
                      labels=goal_label(obj), help=help)


UL304 = CODES["UL304"]


@rule(UL304)
def filter_without_serving_system(obj: Objective, ctx: RuleContext) -> Iterator[Diagnostic]:
    if not weights_leave(obj):
        return
    via = obj.goal.via if obj.goal and obj.goal.via and obj.goal.via.value == "system" else None
    method = obj.method.name if obj.method and obj.method.name.value == "filter" else None
    primary = via or method
    if primary is None:
        return
    yield finding(
        UL304, obj, primary.span,
        f"a system-level filter does not ship with {code_span(release_of(obj))} weights: whoever runs them serves the model "
        "without it",
        labels=[*release_label(obj, "the weights leave your serving system"), *word_label(via, "suppression in the system"),
                *word_label(method, "an output filter")],
        help=["release through `api` (you serve the model and its filter), or write `goal suppression via model` "
              "with `method refusal` and document that the information remains in the weights"],
        fixes=goal_fix(obj, "suppression via model", "refusal"))


UL309 = CODES["UL309"]


@rule(UL309)
def retrain_without_recipe(obj: Objective, ctx: RuleContext) -> Iterator[Diagnostic]:
    if obj.method is None or obj.method.name.value != "retrain" or ctx.builtin or obj.model is None:
        return
    if obj.unlearned is not None:  # an audit: the vendor retrained; nothing is retrained here
        return
    yield finding(
        UL309, obj, obj.method.name.span,
        f"`retrain` needs the training corpus and recipe of {code_span(obj.model.value)}, which the compiler does not know",
        labels=label(obj.model.span, "not built in: its training data and recipe are unknown"),
        help=["use an approximate method (`method npo`) with `guarantee empirical`, and give a `reference` model "
              "retrained without the forget set by whoever owns the training pipeline"])


UL409 = CODES["UL409"]


@rule(UL409, affects=OUTPUT_CLAIMS)
def suppression_without_test_set(obj: Objective, ctx: RuleContext) -> Iterator[Diagnostic]:
    t = obj.target
    if goal_of(obj) != "suppression" or t is None or t.test or t.kind_value not in ("latent", "concept"):
        return
    name = t.name.value
    yield finding(
        UL409, obj, t.name.span,
        f"suppression of {code_span(t.kind_value)} target {code_span(name)} has no operational `test` set: the forget examples do "
        "not define what must not be generated",
        labels=[*kind_label(obj), *goal_label(obj),
                *[lab for c in obj.claims if c.name in OUTPUT_CLAIMS for lab in claim_label(c)]],
        help=[f'add `test "data/<prompts>.jsonl"` to the target: prompts about {code_span(name)}, written independently of '
              "the forget set, that the model must not answer"])

