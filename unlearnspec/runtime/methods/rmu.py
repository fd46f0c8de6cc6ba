"""RMU — Representation Misdirection for Unlearning (Li et al. 2024, WMDP, arXiv:2403.03218).

RMU works on activations, not on likelihoods: at one decoder layer it pushes the forget tokens'
hidden states towards a fixed random direction scaled by ``steering_coeff`` (so later layers receive
noise where the forget knowledge was), and holds the retain tokens' hidden states where the frozen
original model had them (weighted by ``alpha``).

Memory: the retain target needs the original model's activations. With LoRA we get them from the
same weights with the adapter disabled (no extra memory). With full fine-tuning we keep a frozen
copy of the original model beside the trained one — one extra set of weights (no gradients, no
optimiser state): about +1× model size, against the ≈4× that training itself holds (weights,
gradients and two AdamW moments).
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch

from unlearnspec.runtime.methods.base import UnlearnTrainer
from unlearnspec.runtime.methods.losses import rmu_loss, sequence_nll


def num_layers(model: Any) -> int:
    cfg = model.config
    n = getattr(cfg, "num_hidden_layers", None) or getattr(cfg, "n_layer", None)
    if not n:
        raise ValueError("cannot tell the model's number of layers for RMU")
    return int(n)


def resolve_layer(model: Any, layer: int | None) -> int:
    """The decoder block RMU steers: the plan's ``rmu_layer``, or the middle block.

    The middle is ``(n_layers - 1) // 2`` so that it is never the last block, whose output some
    architectures (GPT-2) report after the final norm.
    """
    n = num_layers(model)
    chosen = (n - 1) // 2 if layer is None else layer
    if not 0 <= chosen < n:
        raise ValueError(f"rmu_layer {chosen} is outside the model's {n} layers")
    return chosen


def control_vector(hidden_size: int, steering_coeff: float, seed: int) -> torch.Tensor:
    """``c · u``: a random vector uniform in ``[0, 1)^H``, normalised, times the steering coefficient
    (the construction of the reference implementation), drawn from its own seeded generator."""
    g = torch.Generator().manual_seed(seed)
    u = torch.rand(hidden_size, generator=g)
    return u / u.norm() * steering_coeff


class RMUTrainer(UnlearnTrainer):
    """RMU on the output of decoder block ``layer`` (``hidden_states[layer + 1]``)."""

    def __init__(self, *args: Any, layer: int, control: torch.Tensor, frozen: Any | None = None,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.layer = layer
        self.control_vec = control  # not `control`: the Trainer's TrainerControl lives there
        self.frozen = frozen
        if frozen is not None:
            frozen.to(self.args.device).eval()
            frozen.requires_grad_(False)

    @torch.no_grad()
    def _original_hidden(self, model: Any, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if self.frozen is not None:
            net, ctx = self.frozen, contextlib.nullcontext()
        else:  # LoRA: the same weights without the adapter are the original model
            net = self.accelerator.unwrap_model(model)
            ctx = net.disable_adapter()
        with ctx:
            out = net(input_ids=ids, attention_mask=mask, output_hidden_states=True, use_cache=False)
        return out.hidden_states[self.layer + 1]

    def unlearning_loss(self, model: Any, inputs: dict[str, torch.Tensor]
                        ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        with_r = self.has_retain(inputs)
        out = self.forward_pair(model, inputs, with_retain=with_r, output_hidden_states=True)
        assert out.hidden_states is not None
        h = out.hidden_states[self.layer + 1]
        nf = out.n_forget
        control = self.control_vec.to(h.device)
        parts: dict[str, torch.Tensor] = {}
        if with_r:
            r_ids, r_mask = inputs["retain_input_ids"], inputs["retain_attention_mask"]
            frozen_h = self._original_hidden(model, r_ids, r_mask)
            loss, f_term, r_term = rmu_loss(h[:nf], inputs["forget_attention_mask"], control, h[nf:], frozen_h,
                                            r_mask, alpha=self.stage.rmu_alpha)
            parts["rmu_retain_mse"] = r_term
            assert out.retain_logits is not None
            parts["retain_loss"] = sequence_nll(out.retain_logits, inputs["retain_labels"]).mean()
        else:
            loss, f_term, _ = rmu_loss(h[:nf], inputs["forget_attention_mask"], control)
        parts["rmu_forget_mse"] = f_term
        parts["forget_loss"] = sequence_nll(out.forget_logits, inputs["forget_labels"]).mean()
        return loss, parts
