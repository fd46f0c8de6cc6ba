"""RMU — Representation Misdirection for Unlearning (Li et al. 2024, WMDP, arXiv:2403.03218).

RMU works on activations, not on likelihoods: at one decoder block ℓ it pushes the forget tokens'
hidden states towards a fixed random vector ``c·u`` (so later layers receive noise where the forget
knowledge was), and holds the retain tokens' hidden states where the original model had them (weighted by
``alpha``).

How long the vector is. WMDP fixes ``c`` per model (6.5 for Zephyr-7B's layer 7) and says it must be tuned
to the model; Dang et al. (arXiv:2408.06223, Adaptive RMU) tie it to the norm of the frozen model's forget
activations. Here the plan's ``rmu_steering_coeff`` is that ratio: ``c`` = the coefficient × the original
model's mean activation norm at block ℓ over the steered forget positions (:func:`mean_activation_norm`),
measured once, before training, so the vector stays fixed as in WMDP and one plan value means the same push on
a 1M-parameter built-in and on a 7B model.

Which tokens. The forget term steers only the *scored* positions of a forget example: those whose
output the loss scores, position ``t`` where token ``t + 1`` has a label (labels are unshifted,
losses.py) — for a question–answer pair the prompt's last token and the answer's tokens, for a document
every token but the last. What is forgotten is the answer, not the question, the chat template or the
system prompt (``data.py``), which retain examples share token for token; and an activation is what the
next token is predicted from, so these are the positions the answer comes out of (the answer's own
positions miss its first token: steering them measurably disrupted the answers less at the same retain
cost). The retain term holds every attended retain token (question, template and answer): nothing of a
retain example is to be forgotten, and since the forget side no longer steers the prompt positions the
two share, the two terms never pull the same input in opposite directions.

What trains. Only the blocks ℓ−2..ℓ (``catalog.methods.rmu_trained_layers``), and in them the MLP output
projection (the reference implementation's ``layer_ids`` 5,6,7 and ``param_ids`` 6, Llama's
``down_proj``; GPT-2's ``mlp.c_proj``, OPT's ``fc2``, ...); an architecture whose MLP output projection
is not recognised trains every linear layer of those blocks. Full fine-tuning freezes every other
parameter; LoRA puts its adapters on those modules only. ℓ is never the last block
(``catalog.methods.rmu_layer``): its hidden state is reported after the final norm.

The retain target, the original model's activations: with LoRA, the same weights with the adapter
disabled; with full fine-tuning, the same model with the trained parameters' original values swapped in
for the duration of one no-grad forward pass: one copy of those few matrices (on Llama-3-8B three 4096 ×
14336 down-projections, about 2% of the weights), held like the parameters themselves (each rank keeps its
shard under FSDP), instead of a second model. Either way the target is computed in eval mode (no dropout),
and the model's mode is restored afterwards.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import torch

from unlearnspec.catalog.methods import rmu_layer, rmu_trained_layers
from unlearnspec.runtime.load_errors import E_BAD_MODEL
from unlearnspec.runtime.methods.base import UnlearnTrainer
from unlearnspec.runtime.methods.data import Example, batches
from unlearnspec.runtime.methods.losses import IGNORE_INDEX, rmu_loss, sequence_nll
from unlearnspec.runtime.rundir import RunError

# The MLP output projection inside a decoder block, by architecture: Llama/Mistral/Qwen/Gemma, GPT-2, Phi,
# GPT-J, GPT-NeoX/Falcon, Mixtral-style ``w2``, OPT (at the block's top level).
MLP_OUT = ("mlp.down_proj", "mlp.c_proj", "mlp.fc2", "mlp.fc_out", "mlp.dense_4h_to_h", "mlp.w2", "fc2")


def num_layers(model: Any) -> int:
    cfg = model.config
    n = getattr(cfg, "num_hidden_layers", None) or getattr(cfg, "n_layer", None)
    if not n:
        raise ValueError("cannot tell the model's number of layers for RMU")
    return int(n)


def resolve_layer(model: Any, layer: int | None) -> int:
    """The decoder block RMU steers: the plan's ``rmu_layer``, or (``null``: a hub model whose depth the plan could
    not know) the one the compiler would have planned, :func:`unlearnspec.catalog.methods.rmu_layer`.

    Refused (RT106) when it is outside the model or is its last block, whose hidden state the model reports after
    its final norm; a model of one block has no block RMU can steer."""
    n = num_layers(model)
    chosen = rmu_layer(n) if layer is None else layer
    middle = rmu_layer(n)
    if chosen is None or middle is None:
        raise RunError(E_BAD_MODEL, f"RMU needs a decoder block below the model's last, and the model has {n}",
                       help=["RMU steers a block's residual stream, which the last block reports only after the "
                             "final norm: choose another method (`method npo`) for a one-block model"])
    if not 0 <= chosen < n - 1:
        where = "the model's last block" if chosen == n - 1 else f"outside the model's {n} blocks"
        raise RunError(E_BAD_MODEL, f"the plan's rmu_layer {chosen} is {where}: RMU steers a block below the last",
                       help=[f"plan the middle block, {middle} (`rmu_layer` null: the runtime takes (n - 1) // 2)",
                             "the last block's hidden state is reported after the final norm, so a steering "
                             "coefficient means something else there"])
    return chosen


def decoder_blocks(model: Any) -> tuple[str, torch.nn.ModuleList]:
    """The name and the list of the model's decoder blocks: the ``ModuleList`` of ``num_layers`` modules whose
    class is one the model will not split (``_no_split_modules``), else the first of that length."""
    n = num_layers(model)
    unsplit = set(getattr(model, "_no_split_modules", None) or [])
    lists = [(name, m) for name, m in model.named_modules() if isinstance(m, torch.nn.ModuleList) and len(m) == n]
    for name, blocks in lists:
        if unsplit and type(blocks[0]).__name__ in unsplit:
            return name, blocks
    if not lists:
        raise RunError(E_BAD_MODEL, f"RMU cannot find the model's {n} decoder blocks",
                       help=["choose another method (`method npo`): RMU trains and steers named decoder blocks"])
    return lists[0]


def _linear(module: Any) -> bool:
    return isinstance(module, torch.nn.Linear) or type(module).__name__ == "Conv1D"  # GPT-2's transposed linear


def trained_modules(model: Any, layer: int, only: Sequence[str] = ()) -> list[str]:
    """The modules RMU trains when steering block ``layer``: the MLP output projection of each block ℓ−2..ℓ
    (every linear layer of the block when none is recognised). ``only``: a LoRA configuration's own target
    names, which replace the MLP output projection (still within those blocks). Full module names."""
    prefix, blocks = decoder_blocks(model)
    out: list[str] = []
    for k in rmu_trained_layers(layer):
        inside = {name: m for name, m in blocks[k].named_modules() if name}
        if only:
            picked = [n for n in inside if any(n == t or n.endswith("." + t) or f"{prefix}.{k}.{n}" == t
                                               for t in only)]
        else:
            picked = next(([n] for suffix in MLP_OUT for n in inside if n == suffix), [])
            picked = picked or [n for n, m in inside.items() if _linear(m)]
        out.extend(f"{prefix}.{k}.{n}" for n in picked)
    return out


def train_only(model: Any, modules: Sequence[str]) -> int:
    """Freeze every parameter of ``model`` but those of ``modules``; returns how many parameters train."""
    model.requires_grad_(False)
    named = dict(model.named_modules())
    for name in modules:
        named[name].requires_grad_(True)
    return sum(int(p.numel()) for p in model.parameters() if p.requires_grad)


def original_weights(model: Any, modules: Sequence[str]) -> dict[str, torch.Tensor]:
    """A copy of the parameters of ``modules`` as they are now (before training): the retain target's weights."""
    named = dict(model.named_modules())
    return {f"{name}.{p_name}": p.detach().clone() for name in modules
            for p_name, p in named[name].named_parameters(recurse=True)}


def scored_positions(labels: torch.Tensor) -> torch.Tensor:
    """The positions whose output is scored (``[B, T]``, bool): position ``t`` where token ``t + 1`` is scored
    (labels are unshifted, losses.py: token ``t`` is predicted from position ``t − 1``). For a QA pair, the
    prompt's last token and the answer's tokens but the last; for a document, every token but the last."""
    out = torch.zeros_like(labels, dtype=torch.bool)
    out[:, :-1] = labels[:, 1:].ne(IGNORE_INDEX)
    return out


def control_vector(hidden_size: int, norm: float, seed: int) -> torch.Tensor:
    """``c · u``: a random vector uniform in ``[0, 1)^H``, normalised, times ``norm`` (the construction of the
    reference implementation, whose ``steering_coeff`` is ``norm``), drawn from its own seeded generator."""
    g = torch.Generator().manual_seed(seed)
    u = torch.rand(hidden_size, generator=g)
    return u / u.norm() * norm


@torch.no_grad()
def mean_activation_norm(model: Any, examples: Sequence[Example], layer: int, pad_token_id: int,
                         batch_size: int = 32) -> float:
    """The mean L2 norm of ``model``'s hidden state after block ``layer`` at the positions the forget term steers
    (:func:`scored_positions`): per example the mean over its steered positions, then the mean over the examples
    (each weighs the same, as in the losses). Computed in eval mode; the model's mode is restored. The steering
    coefficient is a multiple of it, taken from the untrained model (module doc)."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    per_example: list[torch.Tensor] = []
    try:
        for ids, mask, labels in batches(examples, batch_size, pad_token_id):
            out = model(input_ids=ids.to(device), attention_mask=mask.to(device), output_hidden_states=True,
                        use_cache=False)
            at = scored_positions(labels).to(device)
            n = at.sum(-1)
            norms = out.hidden_states[layer + 1].float().norm(dim=-1) * at
            per_example.append((norms.sum(-1)[n > 0] / n[n > 0]).cpu())
    finally:
        model.train(was_training)
    values = torch.cat(per_example) if per_example else torch.zeros(0)
    if values.numel() == 0:
        raise ValueError("RMU needs a forget example with a scored token to measure its steering coefficient")
    return float(values.mean())


def _local(t: torch.Tensor) -> torch.Tensor:
    """The values this process holds of a parameter: its shard under FSDP (a ``DTensor``), else the tensor."""
    data = t.data
    to_local = getattr(data, "to_local", None)
    return to_local() if callable(to_local) else data


def _reshard(net: Any) -> None:
    """Drop every FSDP2 unit's gathered weights, so that the next pass gathers the values the shards hold now.

    A safeguard: FSDP2 may keep the root unit's weights gathered after a forward pass that a backward pass
    follows; after a no-grad pass torch 2.13 reshards every unit itself (tests/test_fsdp.py passes without this
    call, with the trained weights in the root unit), so here it is a no-op, as it is without FSDP."""
    try:
        from torch.distributed.fsdp import FSDPModule
    except ImportError:  # pragma: no cover - a torch without FSDP2 cannot have sharded the model either
        return
    for m in net.modules():
        if isinstance(m, FSDPModule):
            m.reshard()


class OriginalWeights:
    """The original values of the parameters RMU trains (full fine-tuning), and a way to run the model with them.

    Built from the untrained model (:func:`original_weights`: full tensors, by parameter name), before the
    Trainer places, wraps or shards it and before a checkpoint is loaded into it. At first use each copy is
    moved to its parameter's device and, for a parameter FSDP has sharded (a ``DTensor``), cut to this rank's
    shard (``distribute_tensor`` with ``src_data_rank=None``: every rank cuts its own piece, no communication);
    the full copies are dropped then."""

    def __init__(self, originals: dict[str, torch.Tensor]) -> None:
        self._full: dict[str, torch.Tensor] | None = dict(originals)
        self._here: dict[str, torch.Tensor] = {}

    def _placed(self, params: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        if self._full is not None:
            for name, full in self._full.items():
                p: Any = params[name].data
                here = _local(params[name])
                if hasattr(p, "device_mesh"):  # an FSDP shard (DTensor)
                    from torch.distributed.tensor import distribute_tensor

                    full = distribute_tensor(full.to(here.device), p.device_mesh, p.placements,
                                             src_data_rank=None).to_local()
                self._here[name] = full.to(device=here.device, dtype=here.dtype)
            self._full = None
        return self._here

    @contextlib.contextmanager
    def swapped_in(self, net: Any) -> Iterator[None]:
        """``net`` (unwrapped from DDP; under FSDP the sharded module itself) with the original values in place
        of the trained ones, which are put back on leaving. Use under ``torch.no_grad()``, and outside any
        forward pass whose graph is still to be differentiated."""
        params = dict(net.named_parameters())
        saved: list[tuple[torch.Tensor, torch.Tensor]] = []
        try:
            for name, value in self._placed(params).items():
                here = _local(params[name])
                saved.append((here, here.clone()))
                here.copy_(value)
            yield
        finally:
            for here, value in saved:
                here.copy_(value)
            _reshard(net)


class RMUTrainer(UnlearnTrainer):
    """RMU on the output of decoder block ``layer`` (``hidden_states[layer + 1]``).

    ``originals`` (full fine-tuning with a retain set): the trained parameters' values before training, by
    name (:func:`original_weights`); ``None`` with LoRA, whose disabled adapter gives the original model."""

    def __init__(self, *args: Any, layer: int, control: torch.Tensor,
                 originals: dict[str, torch.Tensor] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.layer = layer
        self.control_vec = control  # not `control`: the Trainer's TrainerControl lives there
        self.originals = OriginalWeights(originals) if originals is not None else None

    def _original_model(self, net: Any) -> Any:
        """``net`` as the original model: the adapter disabled (LoRA), or the original values of the trained
        parameters swapped in (full fine-tuning)."""
        return net.disable_adapter() if self.originals is None else self.originals.swapped_in(net)

    @torch.no_grad()
    def _original_hidden(self, model: Any, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The original model's hidden state after block ``layer``, in eval mode (no dropout); the mode is
        restored afterwards."""
        net = self.accelerator.unwrap_model(model)
        was_training = net.training
        net.eval()
        try:
            with self._original_model(net):
                out = net(input_ids=ids, attention_mask=mask, output_hidden_states=True, use_cache=False)
            return out.hidden_states[self.layer + 1].detach()
        finally:
            net.train(was_training)

    def unlearning_loss(self, model: Any, inputs: dict[str, torch.Tensor]
                        ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        with_r = self.has_retain(inputs)
        frozen_h = None
        if with_r:  # before the training pass, so that no weight changes while its graph is alive
            frozen_h = self._original_hidden(model, inputs["retain_input_ids"], inputs["retain_attention_mask"])
        out = self.forward_pair(model, inputs, with_retain=with_r, output_hidden_states=True)
        assert out.hidden_states is not None
        h = out.hidden_states[self.layer + 1]
        nf = out.n_forget
        control = self.control_vec.to(h.device)
        steered = scored_positions(inputs["forget_labels"])  # where the answer comes out (module doc)
        parts: dict[str, torch.Tensor] = {}
        if with_r:
            loss, f_term, r_term = rmu_loss(h[:nf], steered, control, h[nf:], frozen_h,
                                            inputs["retain_attention_mask"], alpha=self.stage.rmu_alpha,
                                            scale=inputs.get("row_scale"))
            parts["rmu_retain_mse"] = r_term
            assert out.retain_logits is not None
            parts["retain_loss"] = self.mean(sequence_nll(out.retain_logits, inputs["retain_labels"]), inputs)
        else:
            loss, f_term, _ = rmu_loss(h[:nf], steered, control, alpha=self.stage.rmu_alpha,
                                       scale=inputs.get("row_scale"))
        parts["rmu_forget_mse"] = f_term
        parts["forget_loss"] = self.mean(sequence_nll(out.forget_logits, inputs["forget_labels"]), inputs)
        return loss, parts
