"""The language's closed vocabularies and field names.

The resolve pass checks every word against these (with "did you mean"); a word added here is a language
change. Methods, claims, metrics, output and prompt kinds have entries of their own in the package; their
names are listed here too, so that one module answers "which words may this field hold".
"""

from __future__ import annotations

from typing import get_args

from unlearnspec.catalog.claims import CLAIMS, OUTPUT_KINDS, ClaimStatus
from unlearnspec.catalog.methods import FAMILIES
from unlearnspec.catalog.methods import METHODS as _METHODS
from unlearnspec.catalog.metrics import METRICS
from unlearnspec.catalog.probes import PROBES

TARGET_CATEGORIES = ("person", "work", "character", "capability", "records")
TARGET_KINDS = ("observed", "latent", "concept")
GOALS = ("removal", "suppression")
"""Strongest first: suppression promises less than removal (`unlearnspec diff` reads a later one as a loosening)."""
GOAL_VERBS = {"removal": "Remove", "suppression": "Suppress outputs of"}
"""How the objective's one-sentence summary (``explain``, ``show``) opens for each goal."""
SUPPRESSION_VIA = ("model", "system")
RELEASES = ("api", "open_weights", "on_device", "internal")
PRECISIONS = ("fp32", "bf16", "fp16", "int8", "int4")

#: The references a plan can judge "never trained" by (plan.ReferenceStage.strategy): the short label every report
#: names it by, the sentence a plan review describes it with, and what a chain's re-check judges "now" against. A
#: chain re-checks each earlier request by that request's own strategy (runtime/chain.py): with `retrain`, the
#: recipe retrained without every target so far; with `model`, the reference model the earlier request names;
#: with `holdout`, no reference model.
REFERENCE_STRATEGIES: dict[str, tuple[str, str, str]] = {
    "retrain": ("retrained reference", "retrained from the recipe without the forget set (exact reference)",
                "the reference retrained without every target so far"),
    "model": ("reference model", "a reference model named in the spec",
              "the reference model the earlier request names, the same one as then"),
    "holdout": ("holdout reference", "holdout-calibrated (data the model never saw stands in for a retrained model)",
                "chance, 0.5 (no reference model), as then"),
}
REFERENCE_LABELS = {k: v[0] for k, v in REFERENCE_STRATEGIES.items()}
REFERENCE_WORDS = {k: v[1] for k, v in REFERENCE_STRATEGIES.items()}
RECHECK_REFERENCES = {k: v[2] for k, v in REFERENCE_STRATEGIES.items()}
METHODS = tuple(_METHODS)
GUARANTEES = ("exact", "certified", "empirical")
"""Strongest first: retraining is exact; a certified bound promises more than empirical evidence against a reference
(docs/language.md, `guarantee`; `unlearnspec diff` reads a later one, or none, as a loosening)."""
OUTPUTS = tuple(OUTPUT_KINDS)
PROMPTS = (*PROBES, "any")
ADAPTERS = ("full", "lora")
METHOD_FAMILIES = tuple(FAMILIES)

OBJECTIVE_FIELDS = ("title", "basis", "owner", "model", "system", "unlearned", "reference", "release", "target", "goal",
                    "method", "guarantee", "scope", "preserve", "claims", "evidence", "accept", "seed", "after", "budget")
TARGET_FIELDS = ("kind", "forget", "aliases", "holdout", "test", "attribute")
SCOPE_FIELDS = ("outputs", "prompts")
PRESERVE_FIELDS = ("retain", "neighbors", "utility", "side_effects")
BUDGET_FIELDS = ("utility", "requests")  # a chain's cumulative budget (docs/requests.md)
COUNTED_FAMILIES: tuple[str, ...] = ("approximate", "model_suppression")
"""The method families a chain's `requests K` counts: every method that changes the weights other than exact
retraining (approximate unlearning, and refusal fine-tuning, which suppresses by training). An output filter
(``system_suppression``) changes no weights and is not counted; an exact retrain starts the count again."""
METHOD_FIELDS = ("adapter", "steps", "learning_rate", "batch_size", "beta", "retain_weight", "seed")
EVIDENCE_SETTINGS = ("confidence",)
"""Fields of `evidence` that are not metrics: ``confidence 95%``, the level of every check's interval."""
DEFAULT_CONFIDENCE = 0.95
CONFIDENCE_RANGE = (0.5, 0.999)

GOAL_RANK: dict[str, int] = {g: i for i, g in enumerate(GOALS)}
"""A goal's place in :data:`GOALS`: higher promises less."""
GUARANTEE_RANK: dict[str | None, int] = {g: i for i, g in enumerate((*GUARANTEES, None))}
"""A guarantee's place in :data:`GUARANTEES`, none stated last: higher promises less."""

CLAIM_STATUSES: tuple[ClaimStatus, ...] = get_args(ClaimStatus)
"""A claim's compile-time statuses, best first (``supported``, ``cannot_be_verified``, ``cannot_be_met``)."""
CLAIM_STATUS_WORDS: dict[str, str] = {s: s.replace("_", " ") for s in CLAIM_STATUSES}
"""How a compile status is written in every rendering: ``cannot be verified``."""
CLAIM_STATUS_RANK: dict[str, int] = {s: i for i, s in enumerate(CLAIM_STATUSES)}
"""A compile status's place in :data:`CLAIM_STATUSES`: higher is worse."""

__all__ = ["ADAPTERS", "BUDGET_FIELDS", "CLAIMS", "CLAIM_STATUSES", "CLAIM_STATUS_RANK", "CLAIM_STATUS_WORDS",
           "COUNTED_FAMILIES", "CONFIDENCE_RANGE", "DEFAULT_CONFIDENCE", "EVIDENCE_SETTINGS", "GOALS", "GOAL_RANK", "GOAL_VERBS",
           "GUARANTEES", "GUARANTEE_RANK", "METHODS", "METHOD_FAMILIES", "METHOD_FIELDS", "METRICS",
           "OBJECTIVE_FIELDS", "OUTPUTS", "PRECISIONS", "RECHECK_REFERENCES", "REFERENCE_LABELS", "REFERENCE_STRATEGIES", "REFERENCE_WORDS", "PRESERVE_FIELDS", "PROMPTS", "RELEASES", "SCOPE_FIELDS",
           "SUPPRESSION_VIA", "TARGET_CATEGORIES", "TARGET_FIELDS", "TARGET_KINDS"]
