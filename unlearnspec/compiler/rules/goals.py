"""Rules on the goal itself: what removal and suppression can reach (UL301-UL304, UL309, UL409).

Removal acts on parameters and needs a forget set; suppression acts on outputs and needs to be
where the outputs are produced. These rules reject objectives whose goal cannot reach the target
or cannot live where the model is released.
"""

from __future__ import annotations

from collections.abc import Iterator

from unlearnspec.compiler.ast import Objective
from unlearnspec.compiler.codes import CodePage
from unlearnspec.compiler.diagnostics import Diagnostic
from unlearnspec.compiler.rules.base import (
    OUTPUT_CLAIMS,
    RuleContext,
    claim_label,
    finding,
    goal_label,
    goal_of,
    kind_label,
    label,
    method_label,
    paper,
    release_label,
    release_of,
    rule,
    weights_leave,
    word_label,
)

UL301 = CodePage(
    code="UL301", name="removal-of-unobserved-target", severity="error", category="feasibility",
    summary="A removal goal for a latent or concept target (a `character` or `capability` target is a concept "
            "unless it says `kind observed`).",
    why="Removal makes the parameters stop carrying information that was present in identifiable training "
        "examples. Latent information (inferred from combinations of examples) and higher-order concepts (a "
        "character, a style, a capability) are not stated in any finite set of examples, so no forget set pins "
        "them down; and even retraining without every example that mentions them does not take away the model's "
        "ability to produce them, because models generalise from the rest of their data (the paper's example: a "
        "model trained only on openly licensed images still draws a recognisable cartoon mouse). "
        "Source: Cooper et al. 2024 (observed, latent and concept targets) and Section 4, mismatch M2.",
    example='target character "Captain Orrin Vale" {\n  forget "data/captain-vale.jsonl"\n}\ngoal removal',
    instead='# suppress the concept, tested on prompts written for it:\n'
            'target character "Captain Orrin Vale" {\n  kind concept\n  test "data/captain-vale-tests.jsonl"\n}\n'
            'goal suppression via model\nclaims { not_generated }\n\n'
            '# or remove only the named examples:\ntarget records "Captain Vale snippets" {\n  kind observed\n'
            '  forget "data/captain-vale.jsonl"\n}\ngoal removal',
    references=[paper("observed, latent and concept targets; Section 4, mismatch M2")],
)


@rule(UL301)
def removal_of_unobserved_target(obj: Objective, ctx: RuleContext) -> Iterator[Diagnostic]:
    t, g = obj.target, obj.goal
    if g is None or t is None or g.goal.value != "removal" or t.kind_value not in ("latent", "concept"):
        return
    kind, name = t.kind_value, t.name.value
    yield finding(
        UL301, obj, g.goal.span, f"removal of a `{kind}` target cannot be met: no forget set defines `{name}`",
        labels=[*kind_label(obj), *(label(t.name.span, "the target") if t.kind is not None else [])],
        help=[f"write `goal suppression via model` with an operational `test` set of prompts about `{name}`, "
              "or set `kind observed` and remove only the named examples in the forget set",
              "a concept stays producible from the rest of the training data even after exact retraining"])


UL302 = CodePage(
    code="UL302", name="suppression-claims-erasure", severity="error", category="feasibility",
    summary="A suppression goal with a claim about the weights: `removed`, `as_if_never_trained`, or "
            "`robust_to_finetuning` when the weights are released (`open_weights`, `on_device`).",
    why="Suppression (refusal tuning, guardrails, output filters) changes what the model or system outputs; the "
        "targeted information stays in the parameters. Adversarial prompts, or anyone holding the weights, can "
        "get it back: a few fine-tuning steps on small data restore even knowledge that approximate unlearning "
        "removed (Hu et al.), let alone knowledge that was only suppressed. A claim about the weights therefore cannot "
        "follow from a suppression objective. Source: Cooper et al. 2024, Section 4, mismatch M1 (output "
        "suppression is not a replacement for removal); relearning: Hu et al. arXiv:2406.13356.",
    example='goal suppression via model\nmethod refusal\nclaims {\n  removed\n}',
    instead='goal suppression via model\nmethod refusal\nclaims {\n  not_generated\n}\n\n'
            '# or, if the information must leave the weights:\ngoal removal\nmethod npo\nclaims {\n  removed\n}',
    references=[paper("Section 4, mismatch M1"),
                "S. Hu et al., \"Jogging the Memory of Unlearned LLMs Through Targeted Relearning Attacks\", "
                "arXiv:2406.13356"],
)


@rule(UL302)
def suppression_claims_erasure(obj: Objective, ctx: RuleContext) -> Iterator[Diagnostic]:
    if goal_of(obj) != "suppression":
        return
    for c in obj.claims:
        if c.name in ("removed", "as_if_never_trained"):
            yield finding(
                UL302, obj, c.span,
                f"suppression cannot support claim `{c.name}`: suppressed information stays in the weights",
                labels=[*goal_label(obj), *method_label(obj)], claim=c.name,
                help=["claim `not_generated`, which suppression can show; or write `goal removal` with a removal "
                      "method (`npo`, `retrain`) if the information must leave the weights"])
        elif c.name == "robust_to_finetuning" and weights_leave(obj):
            yield finding(
                UL302, obj, c.span,
                f"suppression cannot support claim `robust_to_finetuning` on `{release_of(obj)}` weights: "
                "holders of the weights can fine-tune the suppression away",
                labels=[*goal_label(obj), *release_label(obj, "the weights leave your control")], claim=c.name,
                help=["release through `api`, where nobody else can fine-tune; or write `goal removal` and claim "
                      "`robust_to_finetuning steps N` with the relearning budget the evaluation attacks with"])


UL303 = CodePage(
    code="UL303", name="removal-promises-no-similar-outputs", severity="error", category="feasibility",
    summary="A removal goal that promises no similar or derived outputs (`outputs similar` in scope, or claim "
            "`not_generated_similar`).",
    why="Removing every observed example of something does not stop a model from producing outputs like it: "
        "models generalise from the rest of their training data, and even the gold standard, retraining from "
        "scratch without the forget set, does not meet such output goals. Similar-output promises need a separate "
        "suppression objective with its own evaluation. Source: Cooper et al. 2024, Section 4, mismatch M2 "
        "(removal does not guarantee meaningful output suppression).",
    example='goal removal\nscope {\n  outputs verbatim, similar\n}\nclaims {\n  not_generated_similar\n}',
    instead='# this objective: remove the examples, judged on verbatim and factual outputs\ngoal removal\n'
            'scope {\n  outputs verbatim, facts\n}\nclaims {\n  removed\n  not_generated\n}\n\n'
            '# a second objective: suppress similar outputs, tested on an operational test set\n'
            'goal suppression via model\nclaims {\n  not_generated_similar\n}',
    references=[paper("Section 4, mismatch M2")],
)


@rule(UL303, affects=OUTPUT_CLAIMS)
def removal_promises_no_similar_outputs(obj: Objective, ctx: RuleContext) -> Iterator[Diagnostic]:
    if goal_of(obj) != "removal":
        return
    similar = next((w for w in obj.scope.outputs if w.value == "similar"), None) if obj.scope else None
    c = obj.claim("not_generated_similar")
    help = ["keep `outputs verbatim, facts` in this removal objective and add a separate `goal suppression` "
            "objective that claims `not_generated_similar` against an operational `test` set",
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


UL304 = CodePage(
    code="UL304", name="filter-without-serving-system", severity="error", category="feasibility",
    summary="System-level suppression (`goal suppression via system` or `method filter`) for weights released "
            "as `open_weights` or `on_device`.",
    why="An input/output filter lives in the serving system, not in the model. Once the weights are released, "
        "whoever runs them serves the model without the filter, so the suppression does not exist where the "
        "outputs are produced, and the information is still in the weights. Source: Cooper et al. 2024 "
        "(system-level suppression only works where the deployer controls the serving system) and "
        "Section 4, mismatch M1.",
    example='release open_weights\ngoal suppression via system\nmethod filter',
    instead='# serve the model yourself:\nrelease api\ngoal suppression via system\nmethod filter\n\n'
            '# or suppress in the model and document what remains:\nrelease open_weights\n'
            'goal suppression via model\nmethod refusal',
    references=[paper("families of methods; Section 4, mismatch M1")],
)


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
        f"a system-level filter does not ship with `{release_of(obj)}` weights: whoever runs them serves the model "
        "without it",
        labels=[*release_label(obj, "the weights leave your serving system"), *word_label(via, "suppression in the system"),
                *word_label(method, "an output filter")],
        help=["release through `api` (you serve the model and its filter), or write `goal suppression via model` "
              "with `method refusal` and document that the information remains in the weights"])


UL309 = CodePage(
    code="UL309", name="retrain-without-recipe", severity="error", category="feasibility",
    summary="`method retrain` for a model whose training corpus and recipe the compiler does not know (anything "
            "but the built-in model).",
    why="Exact removal retrains from scratch without the forget set; that needs the full training data and the "
        "training recipe, and costs a training run. For a local folder or a hub id neither is known, so the plan "
        "cannot retrain; what it can run is approximate, with empirical evidence against a reference model. "
        "Source: Cooper et al. 2024 (families of methods: exact removal requires the training data and recipe).",
    example='model "models/my-llm"\nmethod retrain',
    instead='model "models/my-llm"\nreference "models/my-llm-retrained-without-jane"\nmethod npo\nguarantee empirical',
    references=[paper("families of methods: exact removal")],
)


@rule(UL309)
def retrain_without_recipe(obj: Objective, ctx: RuleContext) -> Iterator[Diagnostic]:
    if obj.method is None or obj.method.name.value != "retrain" or ctx.builtin or obj.model is None:
        return
    yield finding(
        UL309, obj, obj.method.name.span,
        f"`retrain` needs the training corpus and recipe of `{obj.model.value}`, which the compiler does not know",
        labels=label(obj.model.span, "not built in: its training data and recipe are unknown"),
        help=["use an approximate method (`method npo`) with `guarantee empirical`, and give a `reference` model "
              "retrained without the forget set by whoever owns the training pipeline"])


UL409 = CodePage(
    code="UL409", name="suppression-without-test-set", severity="warning", category="feasibility",
    summary="Suppression of a latent or concept target with no operational `test` set.",
    why="A latent fact or a concept is not defined by any finite set of examples, so the forget examples do not "
        "say which outputs must not appear; evaluated on them alone, suppression can look complete while prompts "
        "nobody wrote down still produce the target. The objective becomes checkable only against an operational "
        "definition: a test set of prompts, written for the target, that the model must not answer. Source: "
        "Cooper et al. 2024 (latent information and concepts) and the achievable objective it implies "
        "for concepts (suppression judged on stated evaluations).",
    example='target character "Captain Orrin Vale" {\n  forget "data/captain-vale.jsonl"\n}\n'
            'goal suppression via model',
    instead='target character "Captain Orrin Vale" {\n  forget "data/captain-vale.jsonl"\n'
            '  test   "data/captain-vale-tests.jsonl"\n}\ngoal suppression via model',
    references=[paper("latent information and concepts; takeaways")],
)


@rule(UL409, affects=OUTPUT_CLAIMS)
def suppression_without_test_set(obj: Objective, ctx: RuleContext) -> Iterator[Diagnostic]:
    t = obj.target
    if goal_of(obj) != "suppression" or t is None or t.test or t.kind_value not in ("latent", "concept"):
        return
    name = t.name.value
    yield finding(
        UL409, obj, t.name.span,
        f"suppression of `{t.kind_value}` target `{name}` has no operational `test` set: the forget examples do "
        "not define what must not be generated",
        labels=[*kind_label(obj), *goal_label(obj),
                *[lab for c in obj.claims if c.name in OUTPUT_CLAIMS for lab in claim_label(c)]],
        help=[f'add `test "data/<prompts>.jsonl"` to the target: prompts about `{name}`, written independently of '
              "the forget set, that the model must not answer"])

