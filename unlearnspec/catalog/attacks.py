"""The attacks an evaluation runs on the unlearned model, and their defaults."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_RELEARN_STEPS = 20
"""Relearning steps when ``robust_to_finetuning`` gives none, and of the open-weights attack (A2): Hu et al.,
arXiv:2406.13356, recover unlearned knowledge in tens of steps."""

RETAIN_SAMPLE = 64
"""Retain records (else neighbour records) a relearned model is scored on to tell a fine-tune that damaged the model
from a model that resists relearning; drawn with the attack's seed. The plan's cost estimate counts them."""

QUANTIZED = ("int8", "int4")
"""Precisions ``robust_to_quantization`` is always tested at (those at or below the release precision): anyone holding
the weights can quantize them to 8 or 4 bits, and 4-bit quantization is where Zhang et al., arXiv:2410.16454, saw
"forgotten" knowledge come back. Open weights are measured at them for information without the claim."""


def quantized_below(precision: str | None) -> list[str]:
    """The precisions of :data:`QUANTIZED` at or below a release precision (all of them when it is none, fp32 or a
    16-bit float): what anyone holding the released weights can quantize them to."""
    if precision not in QUANTIZED:
        return list(QUANTIZED)
    return list(QUANTIZED[QUANTIZED.index(precision):])


RELEARN_LEARNING_RATES: tuple[tuple[int, float], ...] = (
    (10_000_000, 3e-4),
    (200_000_000, 1e-4),
    (2_000_000_000, 3e-5),
    (20_000_000_000, 1e-5),
)
"""The relearning attack's learning rate by model size (parameters up to the first value: the second): an attacker's
full fine-tune at the rate such a model is fine-tuned at. Small GPT-2-scale models at 1e-4 (the unlearning methods'
own full fine-tuning rate here), 7B models at 1e-5 (TOFU and MUSE fine-tune them at that rate), the built-in models
(about 1M parameters) at 3e-4: at 1e-3 the fine-tune already lowered the original model's knowledge of facts it was
not fine-tuned on and took up to 42% of a model's probability of retain answers (docs/running.md). Larger models get
:data:`RELEARN_LEARNING_RATE_LARGEST`, a model of unknown size (a hub id) :data:`RELEARN_LEARNING_RATE_UNKNOWN`. A
rate too high for the model shows at run time (the fine-tune's loss does not fall, or the model loses its retain
answers), and the check is then not evaluated."""

RELEARN_LEARNING_RATE_LARGEST = 3e-6
RELEARN_LEARNING_RATE_UNKNOWN = 1e-5


def relearn_learning_rate(parameters: int | None) -> float:
    """The relearning attack's learning rate for a model of ``parameters`` (None: unknown); see
    :data:`RELEARN_LEARNING_RATES`."""
    if parameters is None:
        return RELEARN_LEARNING_RATE_UNKNOWN
    return next((lr for most, lr in RELEARN_LEARNING_RATES if parameters <= most), RELEARN_LEARNING_RATE_LARGEST)


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
