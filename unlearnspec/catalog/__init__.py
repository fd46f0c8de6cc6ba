"""The catalog: one entry per claim, metric, method, probe, attack and diagnostic code.

Plain frozen data, free of torch and of every other unlearnspec package: the compiler, the runtime, the
reports and the docs all read their facts from here, and no other module keeps a table of these names.
See docs/architecture.md for the recipes (add a metric, a method, a claim, a rule).
"""

from __future__ import annotations

from unlearnspec.catalog.attacks import DEFAULT_RELEARN_STEPS, MEMBERSHIP_ATTACKS, QUANTIZED, MembershipAttack
from unlearnspec.catalog.claims import (
    CLAIMS,
    DEFAULT_OUTPUTS,
    OUTPUT_CLAIMS,
    OUTPUT_KINDS,
    REMOVAL_CLAIMS,
    TOLERANCE_CLAIM,
    TOLERANCE_SUMMARY,
    Claim,
    ClaimStatus,
    OutputKind,
)
from unlearnspec.catalog.codes import CODES, page
from unlearnspec.catalog.methods import (
    DEFAULT_LORA,
    FAMILIES,
    LORA_MIN_PARAMETERS,
    METHODS,
    UNKNOWN,
    Method,
    MethodDefaults,
    MethodFamily,
    family_of,
)
from unlearnspec.catalog.metrics import METRICS, NEEDS, Fallback, Metric, Need, Threshold, label
from unlearnspec.catalog.pages import CodePage, Severity, paper
from unlearnspec.catalog.probes import ADVERSARIAL_TEMPLATES, PROBES, Probe
from unlearnspec.catalog.terms import TERMS, Term

__all__ = [
    "UNKNOWN",
    "ADVERSARIAL_TEMPLATES", "CLAIMS", "CODES", "DEFAULT_LORA", "DEFAULT_OUTPUTS", "DEFAULT_RELEARN_STEPS",
    "FAMILIES", "LORA_MIN_PARAMETERS", "MEMBERSHIP_ATTACKS", "METHODS", "METRICS", "NEEDS", "OUTPUT_CLAIMS", "OUTPUT_KINDS", "PROBES",
    "QUANTIZED", "REMOVAL_CLAIMS", "TERMS", "TOLERANCE_CLAIM", "TOLERANCE_SUMMARY",
    "Claim", "ClaimStatus", "CodePage", "Fallback", "MembershipAttack", "Method", "MethodDefaults", "MethodFamily",
    "Metric", "Need", "OutputKind", "Probe", "Severity", "Term", "Threshold", "family_of", "label", "page", "paper",
]
