"""Rules on what the claims promise: inputs, downstream use, exactness, open-ended scopes.

UL305 (in-context information), UL306 (downstream use), UL307 (exactness), UL401 (any prompt),
UL403 (certificates), UL407 (substantial similarity).
"""

from __future__ import annotations

from collections.abc import Iterator

from unlearnspec.compiler.ast import Objective
from unlearnspec.compiler.codes import CodePage
from unlearnspec.compiler.diagnostics import Diagnostic
from unlearnspec.compiler.rules.base import (
    OUTPUT_CLAIMS,
    REMOVAL_CLAIMS,
    RuleContext,
    claim_label,
    finding,
    goal_label,
    goal_of,
    label,
    method_label,
    paper,
    planned_method,
    release_of,
    rule,
    word_label,
)

UL305 = CodePage(
    code="UL305", name="in-context-reintroduction", severity="error", category="feasibility",
    summary="`prompts in_context` in scope together with a claim that outputs will not contain the target "
            "(`not_generated`, `not_generated_similar`, `robust_to_prompting`), unless an output filter in a "
            "system you serve (`goal suppression via system`, `release api` or `internal`) stands between.",
    why="Outputs depend on inputs. A user can put the removed information into the prompt and the model will use "
        "it (\"un-unlearning\"), so even exact removal does not bound what the system outputs for such prompts. "
        "Only a filter on the outputs, in a serving system the deployer controls, can. Source: Cooper et al. 2024, "
        "Section 4, mismatch M3 (models are not equivalent to their outputs); Shumailov et al., arXiv:2407.00106.",
    example='scope {\n  prompts direct, in_context\n}\nclaims {\n  not_generated\n}',
    instead='# claim it for the prompts the model alone answers:\nscope {\n  prompts direct, paraphrased\n}\n'
            'claims {\n  not_generated\n}\n\n# or filter outputs where you serve the model:\nrelease api\n'
            'goal suppression via system\nmethod filter',
    references=[paper("Section 4, mismatch M3"),
                "I. Shumailov et al., \"UnUnlearning: Unlearning is not sufficient for content regulation in "
                "advanced generative AI\", arXiv:2407.00106"],
)


@rule(UL305, affects=OUTPUT_CLAIMS)
def in_context_reintroduction(obj: Objective, ctx: RuleContext) -> Iterator[Diagnostic]:
    ic = next((w for w in obj.scope.prompts if w.value == "in_context"), None) if obj.scope else None
    if ic is None:
        return
    family = planned_method(obj, ctx.builtin).family
    if family == "system_suppression" and release_of(obj) in ("api", "internal"):
        return  # an output filter in a served system does bound the outputs
    for c in obj.claims:
        if c.name not in OUTPUT_CLAIMS:
            continue
        yield finding(
            UL305, obj, c.span,
            f"claim `{c.name}` cannot hold for `in_context` prompts: a user can put the information into the "
            "prompt and the model will use it",
            labels=[*label(ic.span, "user-supplied information is in scope"), *goal_label(obj)], claim=c.name,
            help=["drop `in_context` from `prompts` (the evaluation still reports it as a probe), or filter outputs "
                  "in a system you serve: `goal suppression via system` with `release api`"])


UL306 = CodePage(
    code="UL306", name="claim-depends-on-downstream-use", severity="error", category="feasibility",
    summary="A claim whose truth depends on how outputs are used downstream: `prevents_misuse`, "
            "`prevents_infringement`.",
    why="Whether an output infringes a work or causes harm depends on what people do with it (fair use versus "
        "infringement; dual use), which is outside the model developer's technical control. No change to the "
        "model, and no measurement of it, can establish such a claim. A measurable proxy can be claimed instead. "
        "Source: Cooper et al. 2024, Section 4, mismatch M4 (models are not equivalent to how their outputs are "
        "used).",
    example='claims {\n  prevents_infringement\n}',
    instead='scope {\n  outputs verbatim\n}\nclaims {\n  not_generated\n}\nevidence {\n  verbatim_rouge <= 0.20\n}',
    references=[paper("Section 4, mismatch M4")],
)


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
            f"claim `{c.name}` depends on how outputs are used downstream, which the model developer does not "
            "control", claim=c.name, help=help,
            labels=label(obj.target.name.span, "the target") if obj.target else [])


UL307 = CodePage(
    code="UL307", name="exactness-without-exact-method", severity="error", category="feasibility",
    summary="`guarantee exact`, or claim `as_if_never_trained`, with a method that is not exact (any method but "
            "`retrain`; with no method, a model that cannot be retrained).",
    why="Only retraining from scratch without the forget set (or structural schemes such as sharded training "
        "that make retraining cheap) gives a model as if it had never seen the target. Approximate methods "
        "(gradient ascent, gradient difference, NPO, SimNPO, RMU) produce empirical evidence only, by comparison "
        "with a retrained reference and membership inference, never a guarantee; suppression methods leave the "
        "information in the weights. With no method named, the compiler can only choose retraining for a model "
        "whose training corpus and recipe it knows (the built-in one). Source: Cooper et al. 2024 "
        "(families of methods).",
    example='model "models/my-llm"\nmethod npo\nguarantee exact',
    instead='# on a model you can retrain:\nmodel "builtin:tiny-bios"\nmethod retrain\nguarantee exact\n\n'
            '# otherwise, empirical evidence against a reference:\nmethod npo\nguarantee empirical\n'
            'claims {\n  removed\n}\nevidence {\n  forget_quality >= 0.05\n}',
    references=[paper("families of methods: exact and approximate removal"),
                "P. Maini et al., \"TOFU: A Task of Fictitious Unlearning for LLMs\", arXiv:2401.06121"],
)


@rule(UL307, affects=REMOVAL_CLAIMS)
def exactness_without_exact_method(obj: Objective, ctx: RuleContext) -> Iterator[Diagnostic]:
    choice = planned_method(obj, ctx.builtin)
    if choice.family in (None, "exact"):
        return
    if obj.method is not None:
        name = obj.method.name.value
        how = f"`{name}`"
        labels = method_label(obj)
    else:
        model = obj.model.value if obj.model else "the model"
        how = f"any method the compiler can run on `{model}` (it cannot be retrained)"
        labels = label(obj.model.span, "not built in: its training data and recipe are unknown") if obj.model else []
    if ctx.builtin:
        help = ["write `method retrain` (the built-in model's corpus and recipe are known), or `guarantee empirical` "
                "with `forget_quality >= 0.05` against the retrained reference"]
    else:
        help = ["write `guarantee empirical` and claim `removed`, with `forget_quality >= 0.05` against a `reference` "
                "model retrained without the forget set"]
    g = obj.guarantee
    if g is not None and g.value == "exact":
        yield finding(UL307, obj, g.span, f"`guarantee exact` cannot be met by {how}: only retraining is exact",
                      labels=labels, help=help)
    c = obj.claim("as_if_never_trained")
    if c is not None and goal_of(obj) != "suppression":  # suppression: UL302 already says why
        yield finding(UL307, obj, c.span,
                      f"claim `as_if_never_trained` cannot be met by {how}: only retraining gives a model as if "
                      "never trained on the target", labels=labels, help=help, claim=c.name)


UL401 = CodePage(
    code="UL401", name="unbounded-prompt-scope", severity="warning", category="feasibility",
    summary="`prompts any`: the objective speaks of every possible prompt.",
    why="The space of prompts is unbounded; no evaluation covers it, and suppressed or partly removed information "
        "comes back under paraphrases, translations, adversarial templates and in-context cues that an evaluation "
        "did not try. A claim about any prompt cannot be verified; a claim about named prompt distributions with a "
        "stated attack budget can. Source: Cooper et al. 2024, Section 4, mismatches M1 and M3; Lynch et al., "
        "arXiv:2402.16835 (paraphrase and in-context probes reveal residual knowledge).",
    example='scope {\n  prompts any\n}',
    instead='scope {\n  prompts direct, paraphrased, adversarial\n}',
    references=[paper("Section 4, mismatches M1 and M3"),
                "A. Lynch et al., \"Eight Methods to Evaluate Robust Unlearning in LLMs\", arXiv:2402.16835"],
)


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


UL403 = CodePage(
    code="UL403", name="certified-guarantee", severity="warning", category="feasibility",
    summary="`guarantee certified` for a method that is not exact retraining.",
    why="Certified unlearning (a provable bound on how far the unlearned model is from a retrained one) exists "
        "only for restricted model classes, such as convex or linear models, not for deep generative models "
        "trained by the approximate methods available here; their evidence is empirical only. With `retrain` "
        "the question does not arise: retraining is exact. Source: Cooper et al. 2024 (approximate "
        "removal: evidence is empirical, never a guarantee).",
    example='method npo\nguarantee certified',
    instead='method npo\nguarantee empirical\nevidence {\n  forget_quality >= 0.05\n  membership_auc <= 0.60\n}',
    references=[paper("families of methods: approximate removal")],
)


@rule(UL403, affects=REMOVAL_CLAIMS)
def certified_guarantee(obj: Objective, ctx: RuleContext) -> Iterator[Diagnostic]:
    g = obj.guarantee
    if g is None or g.value != "certified":
        return
    family = planned_method(obj, ctx.builtin).family
    if family == "exact":
        return
    yield finding(
        UL403, obj, g.span,
        "`guarantee certified` cannot be verified for a deep generative model: certified unlearning exists only "
        "for restricted model classes", labels=method_label(obj),
        help=["write `guarantee empirical` and state its evidence: `forget_quality >= 0.05`, `membership_auc <= 0.60`"])


UL407 = CodePage(
    code="UL407", name="substantial-similarity-scope", severity="warning", category="feasibility",
    summary="A `work` target whose scope covers `similar` outputs or claims `not_generated_similar`.",
    why="Whether an output is \"substantially similar\" to a copyrighted work is a legal judgment made case by "
        "case, not a procedure a test can run; it also turns on use (fair use), outside the model. What can be "
        "measured is near-verbatim regurgitation of named passages. (For a removal goal, UL303 also rejects the "
        "promise, for a technical reason: models generalise.) Source: Cooper et al. 2024, Section 4, mismatch M4.",
    example='target work "The Lantern Keeper\'s Daughter" { ... }\ngoal suppression via model\nscope {\n'
            '  outputs similar\n}',
    instead='target work "The Lantern Keeper\'s Daughter" { ... }\ngoal suppression via model\nscope {\n'
            '  outputs verbatim\n}\nclaims {\n  not_generated\n}\nevidence {\n  verbatim_rouge <= 0.20\n}',
    references=[paper("Section 4, mismatch M4")],
)


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
    name = t.name.value
    if c is not None:
        yield finding(UL407, obj, c.span,
                      f"claim `not_generated_similar` for `{name}` turns on substantial similarity, a legal judgment "
                      "rather than a measurement", labels=labels, help=help, claim=c.name)
    elif similar is not None:
        yield finding(UL407, obj, similar.span,
                      f"`similar` outputs of `{name}` turn on substantial similarity, a legal judgment rather than "
                      "a measurement", labels=labels, help=help)
