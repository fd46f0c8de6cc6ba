"""Every claim an objective can make: its summary, arguments, group, evidence family and default evidence.

The evidence family is which metrics of an ``evidence`` block serve the claim; the default evidence is
what decides it when the block names none of them (the thresholds are the metrics' own, see
:mod:`unlearnspec.catalog.metrics`; docs/language.md and docs/reports.md explain each choice). ``not_generated`` and
``robust_to_prompting`` take their defaults from the ``scope`` (:data:`OUTPUT_KINDS`,
:data:`unlearnspec.catalog.probes.PROBES`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Group = Literal["removal", "output", "robustness", "side_effects", "governance"]
ClaimStatus = Literal["supported", "cannot_be_verified", "cannot_be_met"]
"""A claim as the compiler judges it before anything runs (docs/planning.md; `unlearnspec explain SPEC`)."""


@dataclass(frozen=True)
class Claim:
    name: str
    summary: str
    group: Group
    evidence: tuple[str, ...] = ()  # the metrics that can serve as its evidence (its evidence family)
    defaults: tuple[str, ...] = ()  # the metrics that decide it when the spec's evidence names none
    args: tuple[str, ...] = ()  # "steps" (an integer) or "string" (a quoted string)
    from_scope: Literal["outputs", "prompts"] | None = None  # defaults chosen by this `scope` field


CLAIMS: dict[str, Claim] = {c.name: c for c in (
    Claim("removed", "the targeted information is no longer carried by the model's parameters", "removal",
          evidence=("membership_auc", "forget_quality", "privleak", "probe_accuracy_gap", "verbatim_rouge",
                    "knowledge_rouge", "paraphrase_rouge", "adversarial_rouge", "exact_memorisation",
                    "extraction_strength", "leak_rate", "refusal_rate"),
          defaults=("membership_auc", "forget_quality", "probe_accuracy_gap")),
    Claim("as_if_never_trained", "the model is as if it had never been trained on the target", "removal",
          evidence=("forget_quality", "privleak", "membership_auc", "probe_accuracy_gap"),
          defaults=("forget_quality", "privleak")),
    Claim("not_generated", "the model does not output the targeted information", "output",
          evidence=("verbatim_rouge", "knowledge_rouge", "exact_memorisation", "extraction_strength", "leak_rate",
                    "refusal_rate", "mcq_accuracy"),
          from_scope="outputs"),
    Claim("not_generated_similar", "the model does not output anything similar to the target", "output",
          evidence=("verbatim_rouge", "knowledge_rouge", "paraphrase_rouge", "leak_rate"),
          defaults=("verbatim_rouge", "knowledge_rouge", "paraphrase_rouge")),
    Claim("robust_to_prompting", "no prompt brings the targeted information back", "output",
          evidence=("paraphrase_rouge", "adversarial_rouge", "in_context_rouge", "leak_rate"),
          from_scope="prompts"),
    Claim("robust_to_finetuning", "fine-tuning does not bring the targeted information back", "robustness",
          evidence=("relearn_recovery",), defaults=("relearn_recovery",), args=("steps",)),
    Claim("robust_to_quantization", "quantizing the model does not bring the information back", "robustness",
          evidence=("quantization_recovery",), defaults=("quantization_recovery",)),
    Claim("no_side_effects", "nothing else about the model changed", "side_effects",
          evidence=("retain_utility_drop", "neighbor_utility_drop"),
          defaults=("retain_utility_drop", "neighbor_utility_drop")),
    Claim("compliant", "the objective satisfies a named law or policy", "governance", args=("string",)),
    Claim("prevents_misuse", "the model cannot be used to cause the harm in question", "governance"),
    Claim("prevents_infringement", "the model's outputs do not infringe the work", "governance"),
)}

REMOVAL_CLAIMS = frozenset(c.name for c in CLAIMS.values() if c.group == "removal")
"""Claims about the parameters."""
OUTPUT_CLAIMS = frozenset(c.name for c in CLAIMS.values() if c.group == "output")
"""Claims about what the model outputs."""


TOLERANCE_CLAIM = "side_effects_within_tolerance"
"""The implicit claim a `preserve { utility drop <= N% }` tolerance decides (not a spec word): plans and
reports carry it beside the spec's claims."""
TOLERANCE_SUMMARY = "the model's utility on the retain and neighbour data stays within the `preserve` block's tolerance"
"""What the implicit claim says, where a claim's summary is shown."""


@dataclass(frozen=True)
class OutputKind:
    """A word of ``scope outputs``: what kind of output is in scope, and the metrics `not_generated` checks it by."""

    name: str
    metrics: tuple[str, ...]


OUTPUT_KINDS: dict[str, OutputKind] = {o.name: o for o in (
    OutputKind("verbatim", ("verbatim_rouge",)),
    OutputKind("facts", ("knowledge_rouge",)),
    OutputKind("similar", ("verbatim_rouge", "knowledge_rouge")),
    OutputKind("pii", ("leak_rate",)),
)}
DEFAULT_OUTPUTS = ("verbatim", "facts")
"""What `not_generated` checks when the spec's scope names no outputs."""
