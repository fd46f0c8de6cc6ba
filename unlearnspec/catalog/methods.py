"""Every unlearning method: its family, its default hyperparameters, the knobs a review shows; and every
method family: how it is described and which claims it cannot serve (UL601).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, Literal

UNKNOWN: Final = "unknown"
"""The method and family an audited checkpoint has when its vendor did not say how it was unlearned."""

FamilyName = Literal["exact", "approximate", "model_suppression", "system_suppression", "unknown"]


@dataclass(frozen=True)
class MethodDefaults:
    """Starting hyperparameters of one method (each is overridden by the spec's method block)."""

    max_steps: int
    lr_full: float  # full fine-tuning of a small model (<= 100M parameters)
    lr_full_large: float  # full fine-tuning of a larger model (only when the spec asks for it)
    lr_lora: float
    batch_size: int = 8
    beta: float = 0.1
    gamma: float = 0.0
    retain_weight: float = 1.0
    rmu_steering_coeff: float | None = None  # RMU only: the control vector's norm, × the mean activation norm
    rmu_alpha: float | None = None  # RMU only: the weight of its retain term


@dataclass(frozen=True)
class MethodFamily:
    name: FamilyName
    article: str  # "an exact method": in a diagnostic's label
    review: str  # "exact removal": in a plan review
    cannot_serve: dict[str, str] = field(default_factory=dict)  # claim -> why (UL601)


FAMILIES: dict[str, MethodFamily] = {f.name: f for f in (
    MethodFamily("exact", "an exact method", "exact removal"),
    MethodFamily("approximate", "an approximate method", "approximate removal"),
    MethodFamily("model_suppression", "model-level suppression", "model-level suppression", {
        "removed": "refusal tuning changes what the model says, not what its weights carry (M1)",
        "as_if_never_trained": "refusal tuning leaves the information in the weights (M1)",
    }),
    MethodFamily("system_suppression", "a system-level filter", "system-level suppression", {
        "removed": "an output filter leaves the weights untouched (M1)",
        "as_if_never_trained": "an output filter leaves the weights untouched (M1)",
        "robust_to_finetuning": "whoever can fine-tune the weights runs them without the filter (M1)",
        "robust_to_quantization": "whoever can quantize the weights runs them without the filter (M1)",
    }),
    # An audited checkpoint whose vendor did not say how it was unlearned (`method unknown`, docs/models.md).
    # The conservative reading assumes nothing: it is not exact (UL307, UL403 fire as for an approximate
    # method), not a system filter (a checkpoint is weights), and no claim is ruled out in advance — the
    # measurements decide every claim, and output-only evidence for a removal claim draws UL406.
    MethodFamily(UNKNOWN, "a method that is not stated", "an unstated method"),
)}

KNOB_FIELDS: Final[dict[str, str]] = {"steps": "max_steps", "lora_rank": "adapter"}
"""The plan field a method-block knob sets, where its name differs (``adapter lora rank N`` sets ``adapter``)."""

_TRAINED = ("adapter", "max_steps", "learning_rate", "batch_size")
_TAIL = ("stopping", "train_precision", "seed")


@dataclass(frozen=True)
class Method:
    name: str
    family: FamilyName
    summary: str
    review: tuple[str, ...]  # the plan's hyperparameters that mean something for it (what a review shows)
    defaults: MethodDefaults | None = None  # None: its hyperparameters come from elsewhere (a recipe, none)
    retain: Literal["required", "optional", "unused"] = "unused"  # the retain set: needed, used when given, unused
    reference_logp: bool = False  # its loss compares with the original model's log-probabilities
    source: str = ""

    def reads(self, knob: str) -> bool:
        """Whether the spec's method-block ``knob`` (docs/language.md) changes what this method does: a knob is
        read when the plan field it sets is one this method's :attr:`review` shows, and only by a method whose
        hyperparameters are its :attr:`defaults` (``retrain`` follows the recipe; ``filter`` and ``unknown``
        train nothing). What a method does not read is left out of the plan and drawn as UL414."""
        return self.defaults is not None and KNOB_FIELDS.get(knob, knob) in self.review


STANDARD_DEFAULTS: Final = MethodDefaults(max_steps=60, lr_full=1e-4, lr_full_large=1e-5, lr_lora=1e-4)
"""The defaults most trained methods take, and what a plan's unlearn stage holds for a value it does not state
(``unlearnspec.plan.UnlearnStage``)."""
REFUSAL_TEXT: Final = "I don't know."
"""What the refusal method trains the forget prompts to answer and the output filter answers instead, unless the
method block says otherwise (`refusal_text`)."""
FILTER_NGRAM: Final = 4
"""The output filter's n-gram length (`filter_ngram`): an answer holding a sequence of this many words from the
forget set's documents and answers that no retain record holds is withheld (``runtime/methods/guard.py``)."""
STOPPING_RATIO: Final = 1.0
"""The stopping rule's bound: training stops once the mean forget loss exceeds the original model's mean holdout
loss times this."""
STOPPING_CHECK_EVERY: Final = 5
"""Steps between two checks of the stopping rule."""

#: Per-method defaults. TOFU/MUSE fine-tune 7B models fully at 1e-5; small models and LoRA adapters
#: take larger steps. On the built-in model at 1e-4, NPO and gradient difference reach the stopping
#: bound (forget loss = holdout loss) after about 15 steps, within one 5-step check of it (2e-4
#: overshot to 1.5× the bound at the second check); the stopping rule, not the step budget, is what
#: keeps approximate methods from overshooting. RMU's steering coefficient is a multiple of the original
#: model's mean activation norm at the steered block (runtime/methods/rmu.py), so one value suits every model;
#: at 8 × that norm, alpha 100 and 3e-3 it reaches the stopping bound in 35–40 steps on the GPT-2 and Llama
#: built-ins (WMDP's absolute 6.5, a third of their norm, with alpha 100 at 1e-4 moved nothing in 60 steps).
METHODS: dict[str, Method] = {m.name: m for m in (
    Method("retrain", "exact", "retrain from scratch without the forget set (needs corpus and recipe)",
           ("max_steps", "learning_rate", "batch_size", "seed")),
    Method("grad_ascent", "approximate", "gradient ascent on the forget set", (*_TRAINED, *_TAIL),
           MethodDefaults(max_steps=40, lr_full=1e-4, lr_full_large=1e-5, lr_lora=1e-4, retain_weight=0.0)),
    Method("grad_diff", "approximate", "gradient ascent on forget, descent on retain",
           (*_TRAINED, "retain_weight", *_TAIL), STANDARD_DEFAULTS, retain="required"),
    Method("npo", "approximate", "negative preference optimisation against the original model",
           (*_TRAINED, "beta", "retain_weight", *_TAIL),
           MethodDefaults(max_steps=60, lr_full=1e-4, lr_full_large=1e-5, lr_lora=1e-4, beta=0.1),
           retain="optional", reference_logp=True, source="Zhang et al. 2024, arXiv:2404.05868"),
    Method("simnpo", "approximate", "reference-free, length-normalised NPO",
           (*_TRAINED, "beta", "gamma", "retain_weight", *_TAIL),
           MethodDefaults(max_steps=60, lr_full=1e-4, lr_full_large=1e-5, lr_lora=1e-4, beta=2.5, gamma=0.0),
           retain="optional", source="Fan et al. 2024, arXiv:2410.07163"),
    Method("rmu", "approximate", "misdirect one layer's activations on the forget answers' tokens, training the "
           "MLP output projections of that layer and the two below it",
           (*_TRAINED, "rmu_layer", "rmu_steering_coeff", "rmu_alpha", *_TAIL),
           MethodDefaults(max_steps=60, lr_full=3e-3, lr_full_large=5e-5, lr_lora=3e-3, rmu_steering_coeff=8.0,
                          rmu_alpha=100.0),
           retain="optional", source="Li et al. 2024, arXiv:2403.03218"),
    Method("refusal", "model_suppression", "fine-tune forget prompts to the refusal text",
           (*_TRAINED, "refusal_text", "retain_weight", *_TAIL), STANDARD_DEFAULTS, retain="optional"),
    Method("filter", "system_suppression", "output filter from the forget set's n-grams and aliases",
           ("filter_ngram", "refusal_text"), source="Thaker et al. 2024, arXiv:2410.02879"),
    Method(UNKNOWN, UNKNOWN, "not stated: an audited checkpoint (`unlearned`) whose vendor did not say how it "
           "was unlearned; nothing runs", ()),
)}


WEIGHT_BYTES_PER_PARAMETER: Final = 4
"""A model's weights in memory and on disk: fp32 (models load and train in fp32 unless a run asks otherwise,
``runtime/loading.py``). The cost estimate's load time and the disk check before a run count with it."""

CHECKPOINTS_KEPT: Final = 2
"""Training checkpoints an unlearning run keeps in its folder (the Trainer's ``save_total_limit``): what a resume
restarts from. Each holds the weights and the optimizer's state; the disk check before a run counts them."""

UNUSED_RMU_STEERING_COEFF: Final = 6.5
UNUSED_RMU_ALPHA: Final = 100.0
"""What the plan's ``rmu_steering_coeff`` and ``rmu_alpha`` hold in a stage of another method, which nothing reads:
the values every plan held before RMU's defaults came here, kept so that the plans of the other methods, and their
hashes, stay as they were. They are not RMU's defaults (``METHODS["rmu"].defaults``), which an RMU stage holds."""


@dataclass(frozen=True)
class LoraDefaults:
    rank: int = 8
    alpha: int = 16
    dropout: float = 0.0


DEFAULT_LORA = LoraDefaults()
LORA_MIN_PARAMETERS = 100_000_000
"""Above this many parameters (or when the size is unknown), LoRA instead of full fine-tuning."""


RMU_TRAINED_LAYERS: Final = 3
"""RMU trains the decoder blocks ℓ−2..ℓ up to the block ℓ it steers (WMDP's reference ``unlearn.py``: ``layer_id``
7, ``layer_ids`` 5,6,7, ``param_ids`` 6, the MLP down-projection), and nothing else."""


def rmu_layer(n_layers: int) -> int | None:
    """The decoder block RMU steers on a model of ``n_layers`` blocks: the middle one, ``(n_layers - 1) // 2``.

    Never the last block: Hugging Face models report the last block's hidden state after the final norm
    (GPT-2's ``ln_f``, Llama's ``norm``), so its activations are normalised and a steering coefficient means
    something else there. ``None`` for a model of fewer than two blocks, which has no block below its last.
    The compiler plans with it (the depth known at plan time) and the runtime resolves a ``null`` layer with it.
    """
    return (n_layers - 1) // 2 if n_layers >= 2 else None


def rmu_trained_layers(layer: int) -> range:
    """The decoder blocks RMU trains when it steers block ``layer``: ``layer − 2 .. layer`` (fewer near the input)."""
    return range(max(0, layer - RMU_TRAINED_LAYERS + 1), layer + 1)


def family_of(method: str) -> FamilyName:
    return METHODS[method].family
