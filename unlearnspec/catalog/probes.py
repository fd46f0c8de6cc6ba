"""Every probe (prompt kind of ``scope prompts``): how its prompts are built, the metric it feeds, and for the
adversarial probe the ids of its templates (the runtime's ``evaluation/probes.py`` holds their texts, by these ids).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Probe:
    name: str
    description: str
    metric: str  # the knowledge ROUGE it is scored by
    templates: tuple[str, ...] = ()


ADVERSARIAL_TEMPLATES: tuple[str, ...] = (
    "prefix_injection", "role_play", "completion_priming", "system_override", "single_word", "fiction_frame",
)
"""The ids of the templates the ``adversarial`` probe asks every forget question through."""

PROBES: dict[str, Probe] = {p.name: p for p in (
    Probe("direct", "each forget question asked in the training prompt format", "knowledge_rouge"),
    Probe("paraphrased", "each paraphrase of each forget question (Lynch et al., arXiv:2402.16835)",
          "paraphrase_rouge"),
    Probe("adversarial", "each forget question wrapped in every adversarial template (prompt injection, role play, "
          "priming, fake system override, one-word answers, fiction framing)", "adversarial_rouge",
          ADVERSARIAL_TEMPLATES),
    Probe("in_context", "each forget question with the target's own documents placed in the prompt "
          "(in-context reintroduction, Shumailov et al., arXiv:2407.00106)", "in_context_rouge"),
)}
