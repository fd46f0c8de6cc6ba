"""The pages of the feasibility rules (UL3xx errors, UL4xx warnings, UL5xx notes, UL601): what each checks, why,
an example, what to write instead, and the sources. The rules themselves are in
:mod:`unlearnspec.compiler.rules`; each finds its page here by code."""

from __future__ import annotations

from unlearnspec.catalog.attacks import DEFAULT_RELEARN_STEPS
from unlearnspec.catalog.pages import CodePage, paper

_RELEARN_REFS = [
    "S. Hu et al., \"Jogging the Memory of Unlearned LLMs Through Targeted Relearning Attacks\", arXiv:2406.13356",
    "J. Łucki et al., \"An Adversarial Perspective on Machine Unlearning for AI Safety\", arXiv:2409.18025",
    "A. Deeb and F. Roger, \"Do Unlearning Methods Remove Information from Language Model Weights?\", "
    "arXiv:2410.08827",
]
_QUANT_REF = ("Z. Zhang et al., \"Catastrophic Failure of LLM Unlearning via Quantization\", arXiv:2410.16454")


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


UL302 = CodePage(
    code="UL302", name="suppression-claims-erasure", severity="error", category="feasibility",
    summary="A suppression goal with a claim or guarantee about the weights: `removed`, `as_if_never_trained`, "
            "`robust_to_finetuning` when the weights are released (`open_weights`, `on_device`), or `guarantee "
            "exact` / `guarantee certified` (unless the method is `retrain`).",
    why="Suppression (refusal tuning, guardrails, output filters) changes what the model or system outputs; the "
        "targeted information stays in the parameters. Adversarial prompts, or anyone holding the weights, can "
        "get it back: a few fine-tuning steps on small data restore even knowledge that approximate unlearning "
        "removed (Hu et al.), let alone knowledge that was only suppressed. A claim about the weights, or an exact or "
        "certified guarantee that they no longer carry the information, therefore cannot follow from a suppression "
        "objective. Source: Cooper et al. 2024, Section 4, mismatch M1 (output "
        "suppression is not a replacement for removal); relearning: Hu et al. arXiv:2406.13356.",
    example='goal suppression via model\nmethod refusal\nclaims {\n  removed\n}',
    instead='goal suppression via model\nmethod refusal\nclaims {\n  not_generated\n}\n\n'
            '# or, if the information must leave the weights:\ngoal removal\nmethod npo\nclaims {\n  removed\n}',
    references=[paper("Section 4, mismatch M1"),
                "S. Hu et al., \"Jogging the Memory of Unlearned LLMs Through Targeted Relearning Attacks\", "
                "arXiv:2406.13356"],
)


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


UL307 = CodePage(
    code="UL307", name="exactness-without-exact-method", severity="error", category="feasibility",
    summary="`guarantee exact`, or claim `as_if_never_trained`, with a method that is not exact (any method but "
            "`retrain`; with no method, a model that cannot be retrained). On a suppression goal it is UL302.",
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


UL308 = CodePage(
    code="UL308", name="zero-side-effects", severity="error", category="feasibility",
    summary="Zero tolerance for side effects: claim `no_side_effects`, `preserve { side_effects none }`, "
            "`utility drop <= 0%`, or an `evidence` bound of 0 on a utility drop (`retain_utility_drop <= 0%`).",
    why="Removing targeted information degrades related, and sometimes unrelated, behaviour: the knowledge that "
        "is unlearnt is entangled with knowledge that is kept. \"No side effects\" is therefore not a meetable "
        "objective; a tolerance measured on named retain and neighbour sets is. Source: Cooper et al. 2024, "
        "Section 4 (side effects of unlearning); measured in TOFU (arXiv:2401.06121) and MUSE (arXiv:2407.06460) "
        "as utility loss on retain sets.",
    example='preserve {\n  side_effects none\n}\nclaims {\n  no_side_effects\n}',
    instead='preserve {\n  retain    "data/retain.jsonl"\n  neighbors "data/neighbors.jsonl"\n'
            '  utility   drop <= 2%\n}',
    references=[paper("Section 4 (side effects)"),
                "W. Shi et al., \"MUSE: Machine Unlearning Six-Way Evaluation for Language Models\", arXiv:2407.06460"],
)


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


UL402 = CodePage(
    code="UL402", name="relearning-budget-missing", severity="warning", category="feasibility",
    summary="Claim `robust_to_finetuning` without `steps N` when the weights are released (`open_weights`, "
            "`on_device`).",
    why="Whoever holds the weights can fine-tune them, and a few fine-tuning steps on small, even unrelated, data "
        "restore \"unlearned\" knowledge: ten unrelated examples recover RMU-unlearned knowledge (Łucki et al.), "
        "and relearning recovers 88% of pre-unlearning accuracy (Deeb & Roger). Robustness to fine-tuning can "
        "only be shown for a stated attack budget; without one the claim speaks of any fine-tuning. (The "
        f"evaluation then attacks with {DEFAULT_RELEARN_STEPS} steps by default.) Sources: Hu et al. arXiv:2406.13356; "
        "Łucki et al. arXiv:2409.18025; Deeb & Roger arXiv:2410.08827; Cooper et al. 2024, Section 4, mismatch M1.",
    example='release open_weights precision fp32\nclaims {\n  robust_to_finetuning\n}',
    instead='release open_weights precision fp32\nclaims {\n  robust_to_finetuning steps 50\n}',
    references=[*_RELEARN_REFS, paper("Section 4, mismatch M1")],
)


UL403 = CodePage(
    code="UL403", name="certified-guarantee", severity="warning", category="feasibility",
    summary="`guarantee certified` for a method that is not exact retraining (on a suppression goal it is "
            "UL302, an error).",
    why="Certified unlearning (a provable bound on how far the unlearned model is from a retrained one) exists "
        "only for restricted model classes, such as convex or linear models, not for deep generative models "
        "trained by the approximate methods available here; their evidence is empirical only. With `retrain` "
        "the question does not arise: retraining is exact. Source: Cooper et al. 2024 (approximate "
        "removal: evidence is empirical, never a guarantee).",
    example='method npo\nguarantee certified',
    instead='method npo\nguarantee empirical\nevidence {\n  forget_quality >= 0.05\n  membership_auc <= 0.60\n}',
    references=[paper("families of methods: approximate removal")],
)


UL404 = CodePage(
    code="UL404", name="side-effects-unmeasured", severity="warning", category="feasibility",
    summary="`preserve` names no `retain` set or no `neighbors` set (or is missing).",
    why="Side effects are inherent to unlearning and fall hardest on neighbouring knowledge: facts about similar "
        "people, the same author's other works, benign chemistry next to a hazard. Without a retain set (what the "
        "model must keep in general) and a neighbour set (what is most at risk), they are not measured, and a "
        "tolerance cannot be checked. Source: Cooper et al. 2024, Section 4 (side effects); TOFU "
        "(arXiv:2401.06121) measures model utility on a retain set, on related real-world data and on world facts "
        "beside forgetting.",
    example='preserve {\n  utility drop <= 2%\n}',
    instead='preserve {\n  retain    "data/retain.jsonl"\n  neighbors "data/neighbors.jsonl"\n'
            '  utility   drop <= 2%\n}',
    references=[paper("Section 4 (side effects)"),
                "P. Maini et al., \"TOFU: A Task of Fictitious Unlearning for LLMs\", arXiv:2401.06121"],
)


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


UL406 = CodePage(
    code="UL406", name="removal-verified-by-outputs-only", severity="warning", category="feasibility",
    summary="Claim `removed` whose evidence (the spec's `evidence` thresholds for it) is output metrics only: "
            "no membership inference, reference comparison or representation probe.",
    why="Output metrics (verbatim and knowledge ROUGE, leak and refusal rates) cannot tell removal from "
        "suppression: simple guardrails score like fine-tuning on output benchmarks (Thaker et al.), paraphrase "
        "and in-context probes reveal residual knowledge (Lynch et al.), and linear probes on hidden states "
        "recover information that output metrics call gone (Gao et al.; Ong et al.). A removal claim needs evidence "
        "about the parameters: membership inference against holdout data, comparison with the retrained reference, "
        "and a representation-level probe compared with that reference; the help says which of them this objective "
        "can compute and what the others need. Sources: Thaker et al. arXiv:2410.02879; Lynch et al. "
        "arXiv:2402.16835; Gao et al. arXiv:2604.08271; Ong et al. arXiv:2606.25001.",
    example='claims {\n  removed\n}\nevidence {\n  verbatim_rouge <= 0.20\n}',
    instead='claims {\n  removed\n}\nevidence {\n  verbatim_rouge <= 0.20\n  membership_auc <= 0.60\n'
            '  forget_quality >= 0.05\n  probe_accuracy_gap <= 0.10\n}',
    references=[
        "P. Thaker et al., \"Position: LLM Unlearning Benchmarks are Weak Measures of Progress\", arXiv:2410.02879",
        "A. Lynch et al., \"Eight Methods to Evaluate Robust Unlearning in LLMs\", arXiv:2402.16835",
        "Gao et al., \"An Illusion of Unlearning?\", AISTATS 2026, arXiv:2604.08271",
        "Ong et al., \"Erased, but Not Gone\", arXiv:2606.25001",
    ],
)


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


UL408 = CodePage(
    code="UL408", name="quantization-precision-unstated", severity="warning", category="feasibility",
    summary="Claim `robust_to_quantization` while the release names no precision.",
    why="Quantization can restore \"forgotten\" knowledge: 4-bit quantization restored 83% of it against 21% at "
        "full precision (Zhang et al.). Robustness to quantization means something only at a stated precision; "
        "without one the claim covers every precision someone might choose, and the evaluation can only test "
        "documented defaults (int8 and int4). Source: Zhang et al. arXiv:2410.16454.",
    example='release open_weights\nclaims {\n  robust_to_quantization\n}',
    instead='release open_weights precision int4\nclaims {\n  robust_to_quantization\n}',
    references=[_QUANT_REF],
)


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


UL501 = CodePage(
    code="UL501", name="deployment-precision", severity="note", category="feasibility",
    summary="The release names no precision (or there is no `release` at all), or ships below fp32 (`bf16`, "
            "`fp16`, `int8`, `int4`).",
    why="Quantizing an unlearned model can bring forgotten knowledge back: 4-bit quantization restored 83% of it, "
        "against 21% at full precision (Zhang et al.). Evidence must therefore be produced at the precision the "
        "model is deployed at. When the release states a precision below fp32, the plan evaluates at it as well "
        "as at fp32 (the note says so, so that a reviewer knows the numbers that matter); when it states none, "
        "the evaluation runs at fp32 only and may not describe the deployed model. Source: Zhang et al. "
        "arXiv:2410.16454.",
    example='release open_weights',
    instead='release open_weights precision int4   # the plan evaluates at int4 as well',
    references=[_QUANT_REF],
)


UL502 = CodePage(
    code="UL502", name="sequential-approximate-unlearning", severity="note", category="feasibility",
    summary="Several objectives in one file unlearn from the same model with approximate methods.",
    why="Each approximate unlearning run perturbs the model a little more; sequential and large requests degrade "
        "approximate methods in utility and in how well earlier removals hold (MUSE's scalability and "
        "sustainability criteria). Requests batched into one run, and periodic exact retraining, avoid the "
        "accumulation. Source: Shi et al., MUSE, arXiv:2407.06460.",
    example='objective "erase-a" { model "models/my-llm"  method npo ... }\n'
            'objective "erase-b" { model "models/my-llm"  method npo ... }',
    instead='objective "erase-a-and-b" {\n  model "models/my-llm"\n  target records "requests 2026-01" {\n'
            '    forget "data/a.jsonl", "data/b.jsonl"\n  }\n  ...\n}',
    references=["W. Shi et al., \"MUSE: Machine Unlearning Six-Way Evaluation for Language Models\", "
                "arXiv:2407.06460"],
)


UL503 = CodePage(
    code="UL503", name="compliance-framing", severity="note", category="feasibility",
    summary="A `compliant \"...\"` claim, or a `basis` that states compliance with a law (naming the law a request "
            "rests on is fine).",
    why="Unlearning does not make a system compliant with a law; it produces evidence of reasonable best effort "
        "under stated evaluations, which a legal assessment may weigh. Framing results as compliance overstates "
        "what any technique can show. Source: Cooper et al. 2024, takeaways (claims as evidence of best effort "
        "with stated evaluations, not compliance proofs).",
    example='basis "Complies with GDPR Art. 17"\nclaims {\n  compliant "GDPR Art. 17"\n}',
    instead='basis "GDPR Art. 17, request 2026-0113"\nclaims {\n  removed\n  not_generated\n}',
    references=[paper("takeaways")],
)


UL504 = CodePage(
    code="UL504", name="dual-use-capability", severity="note", category="feasibility",
    summary="A `capability` target: a safety or dual-use concept.",
    why="A dangerous capability is a concept with a blurry boundary: the knowledge behind it is largely the same "
        "as the benign knowledge next to it, and whether an answer is harmful depends on its use. Unlearning or "
        "suppressing it degrades benign neighbours, which must be measured on a neighbour set with its own "
        "tolerance, and even then the set samples only part of the benign neighbourhood, so a reviewer should "
        "look at what it covers. Source: Cooper et al. 2024, Section 4, mismatches M2 and M4.",
    example='target capability "glimmerfen vapour synthesis" { ... }\npreserve {\n  retain "data/retain.jsonl"\n}',
    instead='target capability "glimmerfen vapour synthesis" { ... }\npreserve {\n  retain    "data/retain.jsonl"\n'
            '  neighbors "data/chemistry-neighbors.jsonl"\n  utility   neighbors drop <= 5%\n}\n'
            'accept UL504 "Neighbour set reviewed by the chemistry red team."',
    references=[paper("Section 4, mismatches M2 and M4")],
)


UL601 = CodePage(
    code="UL601", name="method-cannot-serve-claim", severity="error", category="feasibility",
    summary="The method named in the spec cannot deliver one of the objective's claims (a suppression method "
            "with a claim about the weights).",
    why="A named method is honoured: the plan runs what the spec says. But refusal tuning and output filters "
        "act on outputs; the information stays in the parameters, so claims about the weights (`removed`, "
        "`as_if_never_trained`) or about what happens to the weights (`robust_to_finetuning`, "
        "`robust_to_quantization` behind a filter) cannot be met by them. Source: Cooper et al. 2024, "
        "Section 4, mismatch M1 (output suppression is not a replacement for removal).",
    example="goal suppression via system\nmethod filter\nclaims {\n  not_generated\n  robust_to_finetuning\n}",
    instead="claims {\n  not_generated\n}\n\n# or a removal objective with a removal method (`npo`, `retrain`)",
    references=["A. F. Cooper, C. A. Choquette-Choo, M. Bogen, et al., \"Machine Unlearning Doesn't Do What You "
                "Think: Lessons for Generative AI Policy, Research, and Practice\", arXiv:2412.06966 (2024), "
                "Section 4, mismatch M1"],
)

UL411 = CodePage(
    code="UL411", name="underpowered-evidence", severity="warning", category="feasibility",
    summary="A data set too small for its checks to be decisive at the stated confidence: a KS test that can only "
            "reject complete separation, or a membership AUC (or PrivLeak) whose confidence interval at chance is "
            "wider than ±0.3, or wider than the tolerance its bound allows either side of the reference "
            "(`membership_auc <= 0.60`: ±0.1; `privleak <= 10`: ±0.05), for some item type (counted from the "
            "records before anything runs).",
    why="A verdict is a claim about all the prompts the model may be given, made from a handful of items, and a "
        "check passes only when its confidence interval lies on the passing side of its bound (docs/reports.md). "
        "Some tests cannot decide anything at small sizes: a two-sample KS test with 5 vs 5 items has a smallest "
        "attainable p-value of 2/C(10,5) ≈ 0.0079 and rejects at the 5% level only when the two samples do not "
        "overlap at all; an AUC over 3 members has an interval of about ±0.4 around chance (Hanley and McNeil "
        "1982), wider than any useful bound. A membership bound `AUC <= b` is read as a tolerance of b - 0.5 either "
        "side of the retrained reference, and the gap between two models' AUCs is at least about as uncertain as "
        "one AUC, so an item type whose AUC interval is wider than that tolerance can show a leak but not its "
        "absence. PrivLeak is the same gap in MUSE's units: `|PrivLeak| <= b` percent is an AUC gap of b/100 times "
        "(1 - AUC_reference), b/200 for a reference at chance and less for any reference above it. Such a check "
        "ends inconclusive (or can never fail, or never pass) whatever the model does, and "
        "the run is spent for nothing. The compiler counts the records as the runtime will use them (each record "
        "once; with no reference model, forget quality compares the forget set with the holdout's evaluation half) "
        "and says how many items would make the check decisive (and, where one exists, the looser membership or "
        "PrivLeak bound these items can decide). Sources: FRAMEWORK.md §7; TOFU forget quality (arXiv:2401.06121); "
        "MUSE PrivLeak (arXiv:2407.06460); Hanley & McNeil, Radiology 143 (1982).",
    example='target person "Jane Doe" {\n  forget  "data/jane-doe-5-questions.jsonl"\n}\n'
            'claims {\n  removed\n}',
    instead='target person "Jane Doe" {\n  forget  "data/jane-doe.jsonl"  # 80 documents and 80 questions\n'
            '  holdout "data/never-trained.jsonl"  # 400 of each, about people the model never saw\n}\n'
            'claims {\n  removed\n}',  # (UL411 is silent on these counts with the default bounds)
    references=[
        "P. Maini et al., \"TOFU: A Task of Fictitious Unlearning for LLMs\", arXiv:2401.06121",
        "W. Shi et al., \"MUSE: Machine Unlearning Six-Way Evaluation for Language Models\", arXiv:2407.06460",
        "J. A. Hanley and B. J. McNeil, \"The meaning and use of the area under a receiver operating "
        "characteristic (ROC) curve\", Radiology 143 (1982)",
    ],
)


UL412 = CodePage(
    code="UL412", name="bound-cannot-fail", severity="warning", category="feasibility",
    summary="An `evidence` bound that no measurement can miss: at or past the edge of the metric's range "
            "(`membership_auc <= 1.0`, `forget_quality >= 0.0`, `verbatim_rouge <= 1.0`), so it is no evidence.",
    why="A check is evidence only if it could have failed. A bound at the edge of the metric's range holds for "
        "every model, the original one included, so a claim decided by it passes whether or not anything was "
        "unlearned. Membership and ROUGE bounds are read relative to the retrained reference (the gap to it), "
        "so a bound is also vacuous when it is looser than the largest gap the metric allows. Source: "
        "FRAMEWORK.md §7 (bounds that cannot fail are not evidence); Cooper et al. 2024, takeaways (claims as "
        "evidence of best effort under stated evaluations).",
    example='evidence {\n  membership_auc <= 1.0\n  forget_quality >= 0.0\n}',
    instead='evidence {\n  membership_auc <= 0.60\n  forget_quality >= 0.05\n}',
    references=[paper("takeaways")],
)


UL413 = CodePage(
    code="UL413", name="chain-exceeds-budget", severity="warning", category="feasibility",
    summary="A chain of requests, as written, would exceed the `budget` stated on its first objective: more "
            "approximate requests than it allows, or a request whose utility tolerance is above its cumulative "
            "utility drop (each request's utility is measured against the original model, so its tolerance "
            "bounds the chain's drop at that step), or a request with no tolerance at all.",
    why="Each approximate unlearning step degrades the model a little more and can undo earlier removals "
        "(MUSE's sustainability criterion); a budget says how much of that the chain may accumulate before the "
        "model is retrained. A chain written to exceed it will end in a recommendation to retrain. "
        "Source: Shi et al., MUSE, arXiv:2407.06460.",
    example='objective "a" {\n  ...\n  method npo\n  preserve { retain "data/retain.jsonl"  utility drop <= 3% }\n'
            '  budget {\n    utility  drop <= 5%\n    requests 1\n  }\n}\n'
            'objective "b" {\n  after "a"\n  ...\n  method npo\n'
            '  preserve { retain "data/retain.jsonl"  utility drop <= 6% }\n}',
    instead='budget {\n  utility  drop <= 6%\n  requests 2\n}\n\n# or: keep each request\'s `utility drop` '
            'within the budget, and retrain once the budget is spent',
    references=["W. Shi et al., \"MUSE: Machine Unlearning Six-Way Evaluation for Language Models\", "
                "arXiv:2407.06460"],
)

UL505 = CodePage(
    code="UL505", name="evidence-replaces-defaults", severity="note", category="feasibility",
    summary="An `evidence` block that names some of a claim's metrics but leaves out defaults of the claim that "
            "could be computed here: those defaults then do not decide it (`membership_auc <= 0.55` alone makes "
            "`removed` rest on membership, without `forget_quality >= 0.05` and `probe_accuracy_gap <= 0.1`).",
    why="A claim is decided by the `evidence` bounds of its evidence family or, when the block names none of them, "
        "by its documented defaults (docs/language.md, Claims). Writing one bound of the family therefore replaces "
        "every default, not only the one written, and nothing in the spec shows it: a reviewer reads a tighter "
        "membership bound, not that the comparison with the retrained reference and the representation probe no "
        "longer decide the claim. A verdict says no more than the checks behind it (FRAMEWORK.md §7), and for a "
        "removal claim the defaults are the evidence about the parameters: output metrics cannot tell removal from "
        "suppression (Thaker et al.), and a representation probe compared with the retrained reference finds what "
        "output metrics call gone (Gao et al.). The note names the defaults that will not decide the claim (one may "
        "still be measured for information, deciding nothing) and offers to write them back; when the narrower "
        "evidence is intended, accept the note with the reason. Defaults that could not be computed here anyway "
        "(UL410) are not named, and the claims whose defaults come from `scope` (`not_generated`, "
        "`robust_to_prompting`) keep them whatever the block says. Sources: FRAMEWORK.md §5 and §7; Thaker et al. "
        "arXiv:2410.02879; Gao et al. arXiv:2604.08271.",
    example='claims {\n  removed\n}\nevidence {\n  membership_auc <= 0.55\n}',
    instead='claims {\n  removed\n}\nevidence {\n  membership_auc     <= 0.55\n  forget_quality     >= 0.05\n'
            '  probe_accuracy_gap <= 0.1\n}\n\n# or keep the narrower evidence, and say why:\n'
            'accept UL505 "Membership is the evidence the privacy office asked for."',
    references=[
        "P. Thaker et al., \"Position: LLM Unlearning Benchmarks are Weak Measures of Progress\", arXiv:2410.02879",
        "Gao et al., \"An Illusion of Unlearning?\", AISTATS 2026, arXiv:2604.08271",
    ],
)


PAGES: tuple[CodePage, ...] = (
    UL301, UL302, UL303, UL304, UL305, UL306, UL307, UL308, UL309, UL401, UL402, UL403, UL404, UL405,
    UL406, UL407, UL408, UL409, UL410, UL411, UL412, UL413, UL501, UL502, UL503, UL504, UL505, UL601,
)


UL414 = CodePage(
    code="UL414", name="knob-not-read", severity="warning", category="feasibility",
    summary="A knob in the method block that the named method does not read (each method's knobs are the catalog's, "
            "and the finding names them): e.g. `beta` on `grad_ascent` (only NPO and SimNPO have an inverse "
            "temperature), `retain_weight` on `grad_ascent` (it uses no retain data) or on `rmu` (it weighs its "
            "retain term by its own alpha), any knob on `retrain` (the recipe decides) or `filter` (nothing is "
            "trained).",
    why="A knob that changes nothing reads as a decision that was made: a reviewer of the plan or of its rationale "
        "would believe the run was tuned as the spec says. The compiler leaves such a knob out of the plan (the "
        "plan and its rationale show what will run: the method's own value) and says so here, naming the knobs the "
        "method does read (the catalog's list for each method, `unlearnspec/catalog/methods.py`). Sources: the "
        "methods' definitions — NPO's and SimNPO's inverse temperature β (Zhang et al. arXiv:2404.05868; Fan et "
        "al. arXiv:2410.07163), RMU's retain coefficient α (Li et al. arXiv:2403.03218); docs/language.md, "
        "method knobs.",
    example='method grad_ascent {\n  beta          0.5\n  retain_weight 3\n}',
    instead='method grad_diff {\n  retain_weight 3\n}\n\n# or `method npo { beta 0.5 }`, or drop the knobs',
    references=[
        "R. Zhang et al., \"Negative Preference Optimization: From Catastrophic Collapse to Effective Unlearning\", "
        "arXiv:2404.05868",
        "C. Fan et al., \"Simplicity Prevails: Rethinking Negative Preference Optimization for LLM Unlearning\", "
        "arXiv:2410.07163",
        "N. Li et al., \"The WMDP Benchmark: Measuring and Reducing Malicious Use With Unlearning\", arXiv:2403.03218",
    ],
)

PAGES = (*PAGES, UL414)
