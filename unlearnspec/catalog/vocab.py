"""The language's closed vocabularies and field names.

The resolve pass checks every word against these (with "did you mean"); a word added here is a language
change. Methods, claims, metrics, output and prompt kinds have entries of their own in the package; their
names are listed here too, so that one module answers "which words may this field hold".
"""

from __future__ import annotations

from unlearnspec.catalog.claims import CLAIMS, OUTPUT_KINDS
from unlearnspec.catalog.methods import FAMILIES
from unlearnspec.catalog.methods import METHODS as _METHODS
from unlearnspec.catalog.metrics import METRICS
from unlearnspec.catalog.probes import PROBES

TARGET_CATEGORIES = ("person", "work", "character", "capability", "records")
TARGET_KINDS = ("observed", "latent", "concept")
GOALS = ("removal", "suppression")
SUPPRESSION_VIA = ("model", "system")
RELEASES = ("api", "open_weights", "on_device", "internal")
PRECISIONS = ("fp32", "bf16", "fp16", "int8", "int4")
METHODS = tuple(_METHODS)
GUARANTEES = ("exact", "empirical", "certified")
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
METHOD_FIELDS = ("adapter", "steps", "learning_rate", "batch_size", "beta", "retain_weight", "seed")
EVIDENCE_SETTINGS = ("confidence",)
"""Fields of `evidence` that are not metrics: ``confidence 95%``, the level of every check's interval."""
DEFAULT_CONFIDENCE = 0.95
CONFIDENCE_RANGE = (0.5, 0.999)

__all__ = ["ADAPTERS", "BUDGET_FIELDS", "CLAIMS", "CONFIDENCE_RANGE", "DEFAULT_CONFIDENCE", "EVIDENCE_SETTINGS", "GOALS",
           "GUARANTEES", "METHODS", "METHOD_FAMILIES", "METHOD_FIELDS", "METRICS",
           "OBJECTIVE_FIELDS", "OUTPUTS", "PRECISIONS", "PRESERVE_FIELDS", "PROMPTS", "RELEASES", "SCOPE_FIELDS",
           "SUPPRESSION_VIA", "TARGET_CATEGORIES", "TARGET_FIELDS", "TARGET_KINDS"]
