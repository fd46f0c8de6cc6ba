"""The attacks an evaluation runs on the unlearned model, and their defaults."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_RELEARN_STEPS = 20
"""Relearning steps when ``robust_to_finetuning`` gives none, and of the open-weights attack (A2): Hu et al.,
arXiv:2406.13356, recover unlearned knowledge in tens of steps."""

QUANTIZED = ("int8", "int4")
"""Precisions ``robust_to_quantization`` is tested at when the release precision is not below fp32."""


@dataclass(frozen=True)
class MembershipAttack:
    """A membership-inference score: how the runtime tells the forget set (members) from the holdout.

    ``higher_is_member`` is the score's direction; the runtime keys its score functions by ``name``."""

    name: str
    label: str  # in reports
    summary: str  # what it computes, in words a reviewer can check
    higher_is_member: bool
    source: str


MEMBERSHIP_ATTACKS: dict[str, MembershipAttack] = {a.name: a for a in (
    MembershipAttack("loss", "LOSS", "the model's mean negative log-likelihood of the text: members tend to have "
                     "lower loss", False, "Yeom et al., arXiv:1709.01604"),
    MembershipAttack("zlib", "zlib", "the loss divided by the text's zlib-compressed length, so that text that is "
                     "merely easy to predict does not look like a member", False, "Carlini et al., arXiv:2012.07805"),
    MembershipAttack("min_k", "Min-K%", "the mean log-probability of the text's least likely tokens (the lowest "
                     "k fraction): a member has few very unlikely tokens", True, "Shi et al., arXiv:2310.16789"),
    MembershipAttack("min_k_plus_plus", "Min-K%++", "Min-K% on token log-probabilities standardised by the mean "
                     "and standard deviation of log-probability under the model's own next-token distribution at "
                     "that position", True,
                     "Zhang et al., arXiv:2404.02936"),
)}
"""The membership-inference attacks every membership check runs; the worst of them decides (FRAMEWORK.md §5)."""
