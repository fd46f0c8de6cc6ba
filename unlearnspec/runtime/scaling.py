"""How a training stage spreads over the processes of a launch: the effective batch and the sharding.

Why (issue 16): a plan must give the same verdict on one process and on eight. The plan fixes the
*global* batch of an optimizer step (``batch_size × gradient_accumulation_steps`` examples, drawn in
the Trainer's seeded order); how that batch is split is decided here, at run time, from the process
count. The data loader draws one loader batch of ``loader_batch`` examples in the one-process order
and accelerate splits it across the ``processes`` ranks (``split_batches=True``, so every rank sees
``micro_batch`` consecutive examples of it); ``accumulation`` loader batches make an optimizer step.
So every full optimizer step averages the gradient of the same examples whatever the process count, and
with the same weights: the unlearning losses are means over sequences, and a rank's micro-batch is an
equal share of the loader batch, so DDP's mean of the ranks' means is the loader batch's mean; the
Trainer's own language-model loss (the relearning attack) divides the summed token losses by the token
count of all ranks (``average_tokens_across_devices``). The gradients agree to float rounding
(``tests/test_sharding_review.py`` measures it with plain SGD); AdamW's first steps magnify the rounding
of gradients near zero, which is what the weight tolerances of the 2-process tests allow for.

An epoch whose examples are not a whole number of loader batches ends with a partial one, which one
process trains as it is while several complete it with the epoch's first examples (accelerate's
``even_batches``: every rank needs a micro-batch of the same size). Those repeated rows are weighed out
(:func:`row_scale`, :func:`marking_repeated_rows`): the unlearning losses weigh each row of the completed
batch so that DDP's mean over the ranks is the mean over the real rows alone (the one-process step), and the
relearning attack's Trainer masks the repeated rows' labels, so they add neither loss nor tokens. What
still differs (``tests/test_sharding_review.py``): where the plan's own ``batch_size`` does not split
(below), the accumulation changes, which changes how the examples of an epoch's partial step are weighted
(a mean of the loader batches' means on one process). Dropout, where a model has it, draws other masks on
each rank (``methods.base.RankSeeds``: the seed plus the rank, as accelerate's ``set_seed(device_specific=True)``
gives), as the one process draws other masks for the rows of its batch.

And which data-parallel scheme: DDP keeps a full copy of the weights, gradients and AdamW state on
every device; when that does not fit the device memory seen at run time, FSDP (through accelerate,
``FULL_SHARD``, one unit per transformer block) shards them across the processes.
:func:`choose_sharding` decides from the parameter count, the training precision, the adapter (LoRA
trains a small fraction: only its weights carry gradients and optimizer state) and the memory.
``UNLEARNSPEC_SHARDING=ddp|fsdp`` overrides the choice.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

from unlearnspec.report.model import EffectiveBatch
from unlearnspec.runtime.rundir import RunError

E_BATCH_PROCESSES = "UL720"

Sharding = Literal["single", "ddp", "fsdp"]

# Bytes per trained parameter besides its weight: the gradient (in the training precision) and AdamW's
# two fp32 moments; mixed precision keeps an fp32 master copy too.
_ADAM_STATE_BYTES = 8
_HEADROOM = 0.7  # the share of device memory the weights and optimizer may take; activations need the rest


def effective_batch(batch_size: int, accumulation: int, processes: int) -> EffectiveBatch:
    """How the plan's global batch (``batch_size × accumulation``) runs on ``processes`` processes.

    Keeps the plan's accumulation when its ``batch_size`` splits evenly; otherwise takes the largest loader
    batch that splits evenly, the plan's accumulation first if it still works (the same examples per full
    optimizer step, in the same order, and the same number of steps per epoch; only an epoch's last, partial
    step weighs its examples otherwise: module docstring). A global batch that the process count does not
    divide is refused (UL720)."""
    if batch_size < 1 or accumulation < 1 or processes < 1:
        raise ValueError("batch size, accumulation and process count must be positive")
    total = batch_size * accumulation
    if total % processes:
        raise RunError(E_BATCH_PROCESSES,
                       f"the plan's global batch of {total} examples cannot be split evenly across {processes} "
                       "processes",
                       help=[f"launch a number of processes that divides {total}",
                             "or plan a batch size that the process count divides (`batch` in the method's "
                             "block), so every process count gives the same optimizer steps"])
    choices = [accumulation] + [a for a in range(1, total + 1) if total % a == 0]
    acc = next(a for a in choices if total % a == 0 and (total // a) % processes == 0)
    loader = total // acc
    return EffectiveBatch(global_batch=total, processes=processes, micro_batch=loader // processes,
                          accumulation=acc, loader_batch=loader)


def row_scale(rows: int, remainder: int, process_index: int, processes: int) -> list[float] | None:
    """How much each of a rank's ``rows`` counts in the epoch's last loader batch, or None when all are real.

    accelerate completes the last, partial loader batch with the epoch's first examples and splits it across
    the ranks (``split_batches``): its first ``remainder`` rows, in rank order, are the real ones. A rank's loss
    is the mean of ``scale · loss`` over its rows and DDP averages the ranks, so a real row gets
    ``rows × processes / remainder`` and a repeated one 0: the step's gradient is the mean over the real rows,
    the one-process step's."""
    if remainder <= 0 or remainder >= rows * processes:  # no repeated row in the whole loader batch
        return None
    weight = rows * processes / remainder  # on every rank, also one whose rows are all real
    return [weight if process_index * rows + i < remainder else 0.0 for i in range(rows)]


def marking_repeated_rows(batches: Iterator[dict[str, Any]], trainer: Any,
                          mark: Callable[[dict[str, Any], list[float]], dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """``batches`` (a Trainer's epoch iterator) with ``mark(batch, scale)`` applied to an epoch's last batch
    when accelerate completed it with repeated rows (:func:`row_scale`). accelerate flags the last batch
    (``end_of_dataloader``) as it hands it out, and knows how many of its rows are real (``remainder``).

    A Trainer applies it in ``get_batch_samples``, so a batch is marked before the Trainer counts its label
    tokens; this draws one batch per request, never ahead of the Trainer."""
    state = trainer.accelerator.gradient_state
    for batch in batches:
        if state.end_of_dataloader:
            first = next(v for v in batch.values() if hasattr(v, "shape"))
            scale = row_scale(int(first.shape[0]), int(state.remainder), trainer.accelerator.process_index,
                              trainer.accelerator.num_processes)
            if scale is not None:
                batch = mark(batch, scale)
        yield batch


def pin_threads(processes: int, threads: int | None = None) -> int:
    """Pin this process's CPU threads for a launch of ``processes`` processes; returns torch's thread count.

    torch's intra-op threads: ``threads``, else ``UNLEARNSPEC_THREADS``, else the machine's cores (at
    most 2, the reproducible default) shared among the processes — two processes on two cores with two
    threads each would oversubscribe the CPU. Under several processes, torch's inter-op pool gets one
    thread and the tokenizers' Rust thread pool is switched off (``TOKENIZERS_PARALLELISM``, unless
    set): each would otherwise start a thread per core in every process."""
    import torch

    n = threads or int(os.environ.get("UNLEARNSPEC_THREADS", "0") or "0") \
        or max(1, min(2, os.cpu_count() or 1) // max(processes, 1))
    torch.set_num_threads(n)
    if processes > 1:
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        with contextlib.suppress(RuntimeError):  # settable once, before the pool starts; a second call keeps it
            torch.set_num_interop_threads(1)
    return n


def world_size() -> int:
    """The process count of the current launch (``WORLD_SIZE``; 1 without a launch)."""
    return int(os.environ.get("WORLD_SIZE", "1") or "1")


# -- sharding -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ShardingChoice:
    """DDP or FSDP for a training stage, and why."""

    strategy: Sharding
    reason: str
    bytes_per_device_ddp: int  # estimated weights + gradients + optimizer state of one full replica
    device_memory: int | None  # bytes available per device, as seen at run time (None: unknown)


def training_bytes(n_params: int, precision: str, adapter: str, trainable: int | None = None,
                   frozen: int = 0) -> int:
    """Estimated bytes of weights, gradients and AdamW state for full fine-tuning or LoRA.

    Weights: 2 bytes a parameter in bf16/fp16, 4 in fp32. Each *trained* parameter also has a gradient
    (same width), two fp32 Adam moments (8 bytes) and, in mixed precision, an fp32 master copy (4).
    ``trainable``: the parameters that train, when known (RMU's full fine-tuning trains a few MLP
    projections); otherwise every parameter with full fine-tuning and 1% of the model with LoRA (a rank-16
    adapter on the attention and MLP projections of a 7B model is about 0.6%). ``frozen``: parameters of
    which a second, untrained copy is held (RMU's original values of what it trains, its retain target),
    sharded like the weights under FSDP."""
    width = 2 if precision in ("bf16", "fp16") else 4
    trained = trainable if trainable is not None else (n_params if adapter == "full" else n_params // 100)
    master = 4 if width == 2 else 0
    return (n_params + frozen) * width + trained * (width + _ADAM_STATE_BYTES + master)


def device_memory() -> int | None:
    """Free bytes on this process's accelerator, or the machine's physical memory on CPU."""
    try:
        import torch

        if torch.cuda.is_available():
            free, _total = torch.cuda.mem_get_info()
            return int(free)
    except (ImportError, RuntimeError):
        pass
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return None


def choose_sharding(n_params: int, precision: str, adapter: str, processes: int, memory: int | None, *,
                    trainable: int | None = None, frozen: int = 0, override: str | None = None) -> ShardingChoice:
    """DDP while a full replica fits ``_HEADROOM`` of the device memory, FSDP when it does not (or when
    ``override`` — ``UNLEARNSPEC_SHARDING`` — says so). One process never shards. ``trainable`` and
    ``frozen``: :func:`training_bytes`."""
    need = training_bytes(n_params, precision, adapter, trainable, frozen)
    gib = 1024 ** 3
    if processes <= 1:
        return ShardingChoice("single", "one process", need, memory)
    if override in ("ddp", "fsdp"):
        return ShardingChoice(override, f"UNLEARNSPEC_SHARDING={override}", need, memory)  # type: ignore[arg-type]
    if memory is None or need <= _HEADROOM * memory:
        have = "unknown device memory" if memory is None else f"{memory / gib:.1f} GiB per device"
        return ShardingChoice("ddp", f"a full replica ({need / gib:.2f} GiB of weights, gradients and optimizer "
                                     f"state) fits {have}", need, memory)
    reason = (f"a full replica needs {need / gib:.2f} GiB, more than {_HEADROOM:.0%} of {memory / gib:.1f} GiB per "
              f"device: weights, gradients and optimizer state are sharded across {processes} processes (about "
              f"{need / processes / gib:.2f} GiB each)")
    if need / processes > _HEADROOM * memory:
        reason += "; that still exceeds the device: launch more processes, or train a LoRA adapter"
    return ShardingChoice("fsdp", reason, need, memory)


FSDP_ON_CPU = ("accelerate enables FSDP only for accelerator launches (MULTI_GPU, MULTI_XPU, ...), "
               "never for MULTI_CPU")


def fsdp_available() -> bool:
    """Whether accelerate will shard with FSDP here: only on an accelerator (CUDA here).

    accelerate 1.x sets its FSDP distributed type only when the launch is ``MULTI_GPU`` (or another
    accelerator type), in ``AcceleratorState.__init__``; on a CPU launch (``MULTI_CPU``, gloo) an FSDP
    plugin is silently ignored and the model trains with DDP. So this runtime asks for FSDP on CUDA
    only and says so in the effective batch otherwise."""
    try:
        import torch

        return bool(torch.cuda.is_available())
    except ImportError:
        return False


def block_classes(model: Any) -> list[str]:
    """The transformer block classes FSDP wraps one by one (``_no_split_modules`` of a HF model)."""
    names = getattr(model, "_no_split_modules", None) or []
    return [str(n) for n in names]


def fsdp_arguments(model: Any, adapter: str) -> dict[str, Any]:
    """``TrainingArguments`` keywords for FSDP through accelerate: FSDP2, full sharding, one unit per block.

    FSDP2 (``torch.distributed.fsdp.fully_shard``, transformers' default ``version``) shards every
    parameter on its own, so LoRA's frozen and trained weights share a block's unit without FSDP1's
    ``use_orig_params``; ``reshard_after_forward`` is FSDP1's ``FULL_SHARD``. ``FULL_STATE_DICT`` is
    what the Trainer's own saves gather; the unlearned model itself is gathered whole by
    :func:`full_state_dict` and rebuilt unsharded (:func:`unsharded_model`) before the main process
    saves it, so it is written as one safetensors model as with DDP (``adapter`` is accepted for the
    record: full fine-tuning and LoRA are sharded alike)."""
    config: dict[str, Any] = {"version": 2, "reshard_after_forward": True, "state_dict_type": "FULL_STATE_DICT",
                              "cpu_ram_efficient_loading": False}
    blocks = block_classes(model)
    if blocks:
        config["auto_wrap_policy"] = "TRANSFORMER_BASED_WRAP"
        config["transformer_layer_cls_to_wrap"] = blocks
    return {"fsdp": True, "fsdp_config": config}


def full_state_dict(model: Any) -> dict[str, Any]:
    """The whole weights of a sharded (FSDP) model as CPU tensors on the main process; ``{}`` on the others.

    A collective call: every rank of the launch must make it. ``get_model_state_dict`` with
    ``full_state_dict`` and ``cpu_offload`` (``torch.distributed.checkpoint.state_dict``, what
    accelerate's ``get_state_dict`` uses for FSDP2) gathers each unit's shards in turn, so no device
    ever holds more than one unit unsharded; the gathered copy lives only in the main process's memory.
    For an unsharded model it is the plain state dict."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    return get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))


def unsharded_model(trained: Any, state: dict[str, Any]) -> Any:
    """A plain CPU copy of an FSDP-trained model, built from its configuration (a LoRA run: the base model
    with the same adapter configuration) and loaded with :func:`full_state_dict`'s weights.

    Why not the trained object itself: after FSDP its parameters are shards (``DTensor``), so saving
    it from the main process alone would write a fraction of each weight or wait forever for the
    other ranks. Every key must load; tied weights (GPT-2's LM head) may appear once."""
    from transformers import AutoModelForCausalLM

    peft_config = getattr(trained, "peft_config", None)
    base = trained.get_base_model() if peft_config else trained
    fresh = AutoModelForCausalLM.from_config(base.config, dtype=base.dtype)
    if peft_config:
        from peft import get_peft_model

        fresh = get_peft_model(fresh, peft_config["default"])
    where = {k: v.data_ptr() for k, v in fresh.state_dict().items()}
    missing, unexpected = fresh.load_state_dict(state, strict=False)
    loaded = {where[k] for k in state if k in where}
    untied = sorted(k for k in missing if where.get(k) not in loaded)  # a tied weight loads with its twin
    if unexpected or untied:
        raise RuntimeError(f"the gathered weights do not fit the model: missing {untied[:5]}, "
                           f"unexpected {sorted(unexpected)[:5]}")
    fresh_base = fresh.get_base_model() if peft_config else fresh
    fresh_base.tie_weights()
    for attr in ("unlearnspec_source", "loss_type"):
        if getattr(base, attr, None) is not None:
            setattr(fresh_base, attr, getattr(base, attr))
    fresh.eval()
    return fresh


def trainer_batch(batch_size: int, accumulation: int, *, model: Any = None, precision: str = "fp32",
                  adapter: str = "full", trainable: int | None = None,
                  frozen: int = 0) -> tuple[dict[str, Any], EffectiveBatch]:
    """``TrainingArguments`` keywords for the plan's batch on this launch, and the effective batch.

    One process: the plan's numbers as they are. Several: accelerate splits each loader batch across
    the processes (``split_batches``), and, given the model, DDP or FSDP is chosen by :func:`choose_sharding`
    (``trainable``, ``frozen``: what the method trains and keeps a copy of, :func:`training_bytes`)."""
    processes = world_size()
    eb = effective_batch(batch_size, accumulation, processes)
    kw: dict[str, Any] = {"per_device_train_batch_size": eb.loader_batch,
                          "gradient_accumulation_steps": eb.accumulation}
    if processes > 1:
        kw["accelerator_config"] = {"split_batches": True}
        strategy, reason = "ddp", "several processes"
        if model is not None:
            n_params = sum(int(p.numel()) for p in model.parameters())
            choice = choose_sharding(n_params, precision, adapter, processes, device_memory(), trainable=trainable,
                                     frozen=frozen, override=os.environ.get("UNLEARNSPEC_SHARDING"))
            strategy, reason = choice.strategy, choice.reason
            if strategy == "fsdp" and not fsdp_available():
                strategy, reason = "ddp", f"{reason}; but FSDP needs an accelerator ({FSDP_ON_CPU}): ran DDP"
            if strategy == "fsdp":
                kw.update(fsdp_arguments(model, adapter))
        eb = eb.model_copy(update={"sharding": strategy, "sharding_reason": reason})
    return kw, eb
