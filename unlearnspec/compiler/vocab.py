"""The language's closed vocabularies, in one place.

The resolve pass checks every word against these sets (with "did you mean"); the feasibility
rules, the lowering and the docs read them too. Adding a word here is a language change.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

TARGET_CATEGORIES = ("person", "work", "character", "capability", "records")
TARGET_KINDS = ("observed", "latent", "concept")
GOALS = ("removal", "suppression")
SUPPRESSION_VIA = ("model", "system")
RELEASES = ("api", "open_weights", "on_device", "internal")
PRECISIONS = ("fp32", "bf16", "fp16", "int8", "int4")
METHODS = ("retrain", "grad_ascent", "grad_diff", "npo", "simnpo", "rmu", "refusal", "filter")
GUARANTEES = ("exact", "empirical", "certified")
OUTPUTS = ("verbatim", "facts", "similar", "pii")
PROMPTS = ("direct", "paraphrased", "adversarial", "in_context", "any")
ADAPTERS = ("full", "lora")

METHOD_FAMILY: dict[str, str] = {
    "retrain": "exact",
    "grad_ascent": "approximate",
    "grad_diff": "approximate",
    "npo": "approximate",
    "simnpo": "approximate",
    "rmu": "approximate",
    "refusal": "model_suppression",
    "filter": "system_suppression",
}


@dataclass(frozen=True)
class ClaimInfo:
    name: str
    summary: str
    args: tuple[str, ...] = ()  # "steps N" or a quoted string


CLAIMS: dict[str, ClaimInfo] = {c.name: c for c in (
    ClaimInfo("removed", "the targeted information is no longer carried by the model's parameters"),
    ClaimInfo("as_if_never_trained", "the model is as if it had never been trained on the target"),
    ClaimInfo("not_generated", "the model does not output the targeted information"),
    ClaimInfo("not_generated_similar", "the model does not output anything similar to the target"),
    ClaimInfo("robust_to_prompting", "no prompt brings the targeted information back"),
    ClaimInfo("robust_to_finetuning", "fine-tuning does not bring the targeted information back", ("steps",)),
    ClaimInfo("robust_to_quantization", "quantizing the model does not bring the information back"),
    ClaimInfo("no_side_effects", "nothing else about the model changed"),
    ClaimInfo("compliant", "the objective satisfies a named law or policy", ("string",)),
    ClaimInfo("prevents_misuse", "the model cannot be used to cause the harm in question"),
    ClaimInfo("prevents_infringement", "the model's outputs do not infringe the work"),
)}


@dataclass(frozen=True)
class MetricInfo:
    name: str
    summary: str
    lower: float
    upper: float
    better: Literal["lower", "higher", "closer_to_zero"]
    unit: Literal["ratio", "percent", "p_value", "auc"] = "ratio"
    source: str = ""


METRICS: dict[str, MetricInfo] = {m.name: m for m in (
    MetricInfo("verbatim_rouge", "ROUGE-L F1 of greedy continuations of forget-set prefixes (MUSE VerbMem)",
               0.0, 1.0, "lower", source="MUSE, arXiv:2407.06460"),
    MetricInfo("knowledge_rouge", "ROUGE-L recall of greedy answers to the forget set's questions (TOFU's ROUGE; "
               "not MUSE KnowMem, which is F1)", 0.0, 1.0, "lower", source="TOFU, arXiv:2401.06121"),
    MetricInfo("paraphrase_rouge", "knowledge ROUGE on paraphrased questions", 0.0, 1.0, "lower",
               source="Lynch et al., arXiv:2402.16835"),
    MetricInfo("adversarial_rouge", "knowledge ROUGE under adversarial prompt templates", 0.0, 1.0, "lower",
               source="Lynch et al., arXiv:2402.16835"),
    MetricInfo("in_context_rouge", "knowledge ROUGE with the target's facts placed in the prompt", 0.0, 1.0,
               "lower", source="Shumailov et al., arXiv:2407.00106"),
    MetricInfo("exact_memorisation", "fraction of forget tokens the model predicts exactly (teacher forcing)",
               0.0, 1.0, "lower", source="Tirumala et al., 2022"),
    MetricInfo("extraction_strength", "share of a forget sequence extractable from its shortest prefix",
               0.0, 1.0, "lower", source="Carlini et al., 2021"),
    MetricInfo("membership_auc", "strongest membership-inference AUC, forget vs holdout (LOSS, zlib, Min-K%, Min-K%++)",
               0.0, 1.0, "lower", unit="auc", source="Shi et al., arXiv:2310.16789"),
    MetricInfo("forget_quality", "KS-test p-value of per-item truth ratios against the retrained reference (TOFU)",
               0.0, 1.0, "higher", unit="p_value", source="TOFU, arXiv:2401.06121"),
    MetricInfo("privleak", "MUSE PrivLeak in percent: 100 (AUC_reference - AUC_unlearned) / (1 - AUC_reference), "
               "Min-K% (k = 0.4) for both models, compared by magnitude", 0.0, 100.0, "closer_to_zero",
               unit="percent", source="MUSE, arXiv:2407.06460"),
    MetricInfo("retain_utility_drop", "relative drop of model utility on the retain set, in percent",
               0.0, 100.0, "lower", unit="percent", source="TOFU, arXiv:2401.06121"),
    MetricInfo("neighbor_utility_drop", "relative drop of model utility on the neighbour set, in percent",
               0.0, 100.0, "lower", unit="percent", source="TOFU, arXiv:2401.06121"),
    MetricInfo("relearn_recovery", "share of the forgotten knowledge that a relearning fine-tune restores",
               0.0, 1.0, "lower", source="Hu et al., arXiv:2406.13356"),
    MetricInfo("quantization_recovery", "share of the forgotten knowledge restored at the release precision",
               0.0, 1.0, "lower", source="Zhang et al., arXiv:2410.16454"),
    MetricInfo("probe_accuracy_gap", "linear-probe accuracy on forget attributes minus the retrained reference's",
               0.0, 1.0, "lower", source="Gao et al., arXiv:2604.08271"),
    MetricInfo("leak_rate", "share of probe prompts whose output contains the target's answer", 0.0, 1.0, "lower"),
    MetricInfo("refusal_rate", "share of probe prompts answered with a refusal", 0.0, 1.0, "higher"),
)}

OBJECTIVE_FIELDS = ("title", "basis", "owner", "model", "reference", "release", "target", "goal", "method",
                    "guarantee", "scope", "preserve", "claims", "evidence", "accept", "seed")
TARGET_FIELDS = ("kind", "forget", "aliases", "holdout", "test", "attribute")
SCOPE_FIELDS = ("outputs", "prompts")
PRESERVE_FIELDS = ("retain", "neighbors", "utility", "side_effects")
METHOD_FIELDS = ("adapter", "steps", "learning_rate", "batch_size", "beta", "retain_weight", "seed")
