"""Attacks that undo shallow unlearning: relearning by fine-tuning, and quantization.

Why these two (FRAMEWORK.md §5): a few fine-tuning steps on small, even unrelated, data restore
"unlearned" knowledge (Hu et al. arXiv:2406.13356; Łucki et al. arXiv:2409.18025; Deeb & Roger
arXiv:2410.08827), and 4-bit quantization restored 83% of "forgotten" knowledge where full
precision showed 21% (Zhang et al. arXiv:2410.16454) — unlearning that moves weights by less than
a quantization step disappears when the weights are rounded. So claims of robustness are tested
on an attacked *copy* of the model at the deployment precision; the input model is never mutated.

Quantization backends, honestly labelled in :class:`QuantizeResult` (``backend``; it is in the
evidence of every check measured on the quantized model, report.json and the rendered reports):

- ``fp32``: the model itself (cast to fp32 if it is not).
- ``bf16`` / ``fp16``: a cast copy. When half-precision matmuls are unavailable on the device, fp16
  is simulated by rounding the weights to fp16 and computing in fp32 (``backend`` says so).
- ``int8``: torchao's weight-only int8 (``quantize_(model, Int8WeightOnlyConfig())``: per-channel
  symmetric int8 weights in a quantized tensor subclass, on CPU and GPU) where torchao is installed
  (the ``quant`` extra); else PyTorch's own dynamic quantization
  (``torch.ao.quantization.quantize_dynamic``: int8 weights, activations quantized per batch, CPU);
  else weight-only round-to-nearest int8 dequantised to fp32 (``rtn-int8-simulated``).
- ``int4``: on CUDA, torchao's int4 weight-only kernel (``Int4WeightOnlyConfig``, tinygemm tile
  packing, bf16 activations), then bitsandbytes NF4 (a 4-bit NormalFloat, not an integer grid,
  labelled as such); on any device torchao's int4 weight-only with unpacked storage
  (``IntxWeightOnlyConfig(weight_dtype=torch.int4, granularity=PerGroup(32))``: int4 values and
  per-group scales, dequantised in the matmul); else weight-only round-to-nearest, asymmetric with a
  zero point, group size 32 along the input dimension, dequantised back to fp32
  (``backend="rtn-int4-simulated"``): the numerics of RTN int4, one of the schemes Zhang et al.
  evaluate, without an int4 kernel.

GPT-2's projections are transformers' ``Conv1D`` (``y = x W + b`` with ``W`` stored transposed), so
for every backend but the simulated int4 they are first converted to equivalent ``nn.Linear``
modules (:func:`conv1d_to_linear`): quantizers act on ``nn.Linear``.

The embeddings and the LM head stay in full precision in int8 and int4, as is common in weight-only
deployments (transformers' bitsandbytes integration, for one, keeps the output layer unquantized; in
GPT-2 the LM head is also tied to the input embedding). Anything that cannot be done is returned with
``evaluated=False`` and the reason — never a silently unquantized model: a torchao configuration that leaves
a layer as it was (its int4 kernel skips, with only a log line, a layer whose input size the group size does not
divide) counts as a backend that failed, and the next one is tried. A backend that stands in for one that failed
says so in its ``reason``.
"""

from __future__ import annotations

import copy
import math
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers import (
    DataCollatorForSeq2Seq,
    PreTrainedTokenizerBase,
    Trainer,
    TrainingArguments,
)
from transformers.pytorch_utils import Conv1D
from transformers.trainer_callback import PrinterCallback

from unlearnspec.catalog.vocab import PRECISIONS
from unlearnspec.markdown import code_span
from unlearnspec.records import Record
from unlearnspec.runtime.evaluation.likelihood import context_length
from unlearnspec.runtime.lm_training import LabelledExamples
from unlearnspec.runtime.methods.base import RankSeeds
from unlearnspec.runtime.methods.data import encode_records
from unlearnspec.runtime.prompting import IGNORE_INDEX, PromptFormat, resolve
from unlearnspec.runtime.scaling import marking_repeated_rows, trainer_batch

INT4_GROUP_SIZE = 32


def _unwrap(model: Any) -> Any:
    """A plain copy of ``model``: a PEFT model's adapters are merged into a copy of the base."""
    try:
        from peft import PeftModel
    except ImportError:  # pragma: no cover - peft is a runtime dependency
        PeftModel = ()  # type: ignore[assignment,misc]  # noqa: N806
    if isinstance(model, PeftModel):
        return copy.deepcopy(model).merge_and_unload()
    return copy.deepcopy(model)


# -------------------------------------------------------------------------------- relearning
class _TokenisedTexts(torch.utils.data.Dataset[dict[str, list[int]]]):
    """Plain texts, each ending with one EOS (appended unless the tokenizer put it there), each token its own label:
    the collator pads the labels with the ignore index, so every token of a text is scored — its EOS too, also when
    the tokenizer pads with EOS (GPT-2 has no pad token): masking labels equal to the pad id would teach the attacker
    nowhere to stop."""

    def __init__(self, texts: Sequence[str], tokenizer: PreTrainedTokenizerBase, max_length: int) -> None:
        eos = tokenizer.eos_token_id
        if eos is None:
            raise ValueError("the tokenizer needs an EOS token")
        ids = [list(tokenizer(t)["input_ids"]) for t in texts]
        ids = [(row if row and row[-1] == eos else [*row, eos])[:max_length] for row in ids]  # one EOS, as `encode`
        self.rows = [{"input_ids": row, "labels": list(row)} for row in ids]

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict[str, list[int]]:
        return self.rows[i]


def relearn_data(records: Sequence[Record], tokenizer: PreTrainedTokenizerBase, max_length: int,
                 fmt: PromptFormat) -> tuple[_TokenisedTexts | LabelledExamples, Any]:
    """What the relearning attack fine-tunes on, and the collator that batches it.

    The attacker trains as the model was trained. A plain model: each record's training texts
    (documents, ``Question: …\nAnswer: …``) whole, with EOS, as the GPT-2 built-in was trained. A chat
    model: documents whole and each question–answer record as its conversation scored on the
    assistant's answer and the end-of-turn token (:func:`~unlearnspec.runtime.methods.data.encode_records`,
    the examples the unlearning methods train on), as a chat model is fine-tuned. Training a chat
    model on every token of the conversation instead (headers, the question) was a weaker attack: on
    ``builtin:tiny-bios-chat`` after gradient ascent it brought back none of the forgotten answers in
    20 steps while the answer-scored fine-tune recovered a quarter of them (bench/README.md)."""
    dataset: _TokenisedTexts | LabelledExamples
    collator: Any
    if fmt.kind == "plain":
        texts = [t for r in records for t in r.training_texts()]
        dataset = _TokenisedTexts(texts, tokenizer, max_length)
    else:
        examples = encode_records(records, tokenizer, max_length, fmt=fmt)
        dataset = LabelledExamples((e.input_ids, e.labels) for e in examples)
    collator = DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=IGNORE_INDEX)
    if not len(dataset):
        raise ValueError("no training texts to relearn on")
    return dataset, collator


class RelearnTrainer(Trainer):
    """The Trainer, with the rows accelerate repeats to complete an epoch's last batch on several processes
    given no labels (:func:`unlearnspec.runtime.scaling.marking_repeated_rows`): they add neither loss nor
    tokens to the token-weighted mean, so the step is the one-process step."""

    def get_batch_samples(self, epoch_iterator: Any, num_batches: int, device: Any) -> Any:
        def mark(batch: Any, scale: list[float]) -> Any:
            repeated = torch.tensor([w == 0 for w in scale], device=batch["labels"].device)
            batch["labels"] = batch["labels"].masked_fill(repeated.unsqueeze(-1), IGNORE_INDEX)
            return batch

        return super().get_batch_samples(marking_repeated_rows(epoch_iterator, self, mark), num_batches, device)


def relearn(model: Any, tokenizer: PreTrainedTokenizerBase, records: Sequence[Record], *, steps: int,
            learning_rate: float, batch_size: int, seed: int, out_dir: str | Path | None = None,
            fmt: PromptFormat | None = None) -> Any:
    """Fine-tune a copy of ``model`` on the records for exactly ``steps`` optimizer steps.

    The Hugging Face Trainer (AdamW, constant learning rate, no warmup, seeded data order) on
    :func:`relearn_data` (``fmt``, by default the tokenizer's own format, decides how a question–answer
    record is put to the model). The input model is not touched; a PEFT model is merged into a plain
    copy first, since an attacker with the weights fine-tunes all of them. Returns the attacked copy in
    eval mode."""
    if steps < 1:
        raise ValueError("steps must be at least 1")
    fmt = resolve(fmt, tokenizer)
    tok = tokenizer
    if tok.pad_token_id is None:  # the collator pads; EOS is the usual stand-in
        tok = copy.deepcopy(tokenizer)
        tok.pad_token = tok.eos_token
    dataset, collator = relearn_data(records, tok, context_length(model), fmt)
    attacked = _unwrap(model)
    attacked.requires_grad_(True)  # PEFT froze the base weights; the attacker trains them all
    with tempfile.TemporaryDirectory(prefix="unlearnspec-relearn-") as scratch:
        args = TrainingArguments(
            output_dir=str(out_dir) if out_dir is not None else scratch,
            max_steps=steps,
            **trainer_batch(batch_size, 1)[0],  # the same global batch on any process count: scaling.py
            learning_rate=learning_rate,
            lr_scheduler_type="constant",
            warmup_steps=0,
            weight_decay=0.0,
            save_strategy="no",
            logging_strategy="no",
            report_to=[],
            disable_tqdm=True,
            use_cpu=not torch.cuda.is_available(),
            seed=seed,
            data_seed=seed,
            dataloader_num_workers=0,
            # every weight takes part in the loss: DDP's search for unused ones is an extra graph walk a step,
            # and torch warns on every rank that it found none (which `run --quiet` must not show)
            ddp_find_unused_parameters=False,
        )
        trainer = RelearnTrainer(model=attacked, args=args, train_dataset=dataset, data_collator=collator,
                                 processing_class=tok, callbacks=[RankSeeds()])  # each rank its own dropout
        trainer.remove_callback(PrinterCallback)
        trainer.train()
    attacked.eval()
    return attacked


def recovery(original_value: float, unlearned_value: float, attacked_value: float) -> float:
    """Fraction of the performance lost to unlearning that the attack brought back: 1 is all of it.

    ``(attacked - unlearned) / (original - unlearned)``, for any metric direction (loss or
    accuracy). Signed and not clipped: below 0 the attack took the model further from the original,
    above 1 past it (a fine-tune can teach a model more than it knew), and a gap between two models'
    recoveries is read on these values, as measured. Nothing lost (``|original - unlearned| < 1e-12``)
    means nothing to recover: 0.0 — whether unlearning did anything at all is the efficacy checks'
    question. NaN inputs give NaN."""
    values = (original_value, unlearned_value, attacked_value)
    if not all(math.isfinite(v) for v in values):
        return math.nan
    lost = original_value - unlearned_value
    if abs(lost) < 1e-12:
        return 0.0
    return (attacked_value - unlearned_value) / lost


# ------------------------------------------------------------------------------ quantization
@dataclass(frozen=True)
class QuantizeResult:
    """A quantized copy of the model, or ``model=None, evaluated=False`` with the reason."""

    model: Any | None
    evaluated: bool
    reason: str
    backend: str


NO_TORCHAO = QuantizeResult(None, False, "torchao is not installed (pip install 'unlearnspec[quant]')", "none")
"""What every torchao backend answers where torchao is missing: the next backend runs."""


def conv1d_to_linear(model: nn.Module) -> nn.Module:
    """Replace every transformers ``Conv1D`` in ``model`` (in place) by the equivalent ``nn.Linear``.

    ``Conv1D`` computes ``x @ W + b`` with ``W`` of shape (in, out); ``nn.Linear`` computes
    ``x @ W'.T + b`` with ``W'`` of shape (out, in), so ``W' = W.T``. Needed because PyTorch's
    quantization and weight-only schemes operate on ``nn.Linear``."""
    for module in list(model.modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, Conv1D):
                w = child.weight.detach()
                linear = nn.Linear(w.shape[0], w.shape[1], bias=child.bias is not None,
                                   device=w.device, dtype=w.dtype)
                with torch.no_grad():
                    linear.weight.copy_(w.t())
                    if child.bias is not None:
                        linear.bias.copy_(child.bias.detach())
                setattr(module, child_name, linear)
    return model


def _skip_modules(model: nn.Module) -> set[int]:
    """Modules kept in full precision: the output embedding (LM head)."""
    get_out = getattr(model, "get_output_embeddings", None)
    head = get_out() if callable(get_out) else None
    return {id(head)} if head is not None else set()


def rtn_quantize_weight(weight: torch.Tensor, bits: int = 4, group_size: int = INT4_GROUP_SIZE) -> torch.Tensor:
    """Round-to-nearest asymmetric quantization of a (out, in) weight in groups along ``in``, dequantised.

    Per group: ``scale = (max - min) / (2^bits - 1)``, ``zero = round(-min / scale)``,
    ``q = clamp(round(w / scale) + zero, 0, 2^bits - 1)``, ``w' = (q - zero) * scale``."""
    out_f, in_f = weight.shape
    w = weight.detach().float()
    pad = (-in_f) % group_size
    if pad:
        w = torch.cat([w, w[:, -1:].expand(out_f, pad)], dim=1)  # repeat a real value: no range change
    g = w.reshape(out_f, -1, group_size)
    lo = g.amin(dim=-1, keepdim=True)
    hi = g.amax(dim=-1, keepdim=True)
    qmax = 2**bits - 1
    scale = ((hi - lo) / qmax).clamp(min=1e-12)
    zero = torch.round(-lo / scale)
    q = torch.clamp(torch.round(g / scale) + zero, 0, qmax)
    deq = ((q - zero) * scale).reshape(out_f, -1)[:, :in_f]
    return deq.to(weight.dtype)


def _fp16_supported(model: nn.Module) -> bool:
    try:
        dev = next(model.parameters()).device
        lin = nn.Linear(8, 8).to(device=dev, dtype=torch.float16)
        lin(torch.ones(2, 8, device=dev, dtype=torch.float16))
        return True
    except (RuntimeError, StopIteration):
        return False


QUANT_BACKENDS = ("auto", "torchao", "bitsandbytes", "torch", "simulated")


def quantize(model: Any, precision: str, *, backend: str = "auto") -> QuantizeResult:
    """The model as deployed at ``precision`` (one of :data:`PRECISIONS`); see the module doc.

    ``backend="auto"`` takes the first backend that works here, in the module doc's order; naming one
    (``torchao``, ``bitsandbytes``, ``torch``, ``simulated``) tries only that one for int8 and int4."""
    if backend not in QUANT_BACKENDS:
        return QuantizeResult(None, False, f"unknown quantization backend {code_span(backend)}", "none")
    if precision not in PRECISIONS:
        return QuantizeResult(None, False, f"unknown precision {code_span(precision)}", "none")
    if precision == "fp32":
        first = next(model.parameters(), None)
        if first is None or first.dtype == torch.float32:
            return QuantizeResult(model, True, "full precision: the model itself", "identity")
        return QuantizeResult(_unwrap(model).float(), True, "cast to fp32", "torch-fp32")
    if precision == "bf16":
        return QuantizeResult(_unwrap(model).to(torch.bfloat16), True, "weights and compute in bfloat16",
                              "torch-bf16")
    if precision == "fp16":
        m = _unwrap(model)
        if _fp16_supported(m):
            return QuantizeResult(m.to(torch.float16), True, "weights and compute in float16", "torch-fp16")
        with torch.no_grad():
            for p in m.parameters():
                p.copy_(p.to(torch.float16).to(p.dtype))
        return QuantizeResult(m, True, "fp16 matmul unavailable here: weights rounded to fp16, compute in fp32",
                              "fp16-weights-simulated")
    tried: list[str] = []
    for name, fn in _backends(precision):
        if backend not in ("auto", name):
            continue
        res = fn(model)
        if res.evaluated:
            if tried:  # a fallback says what it stands in for, and why
                res = QuantizeResult(res.model, True, f"{res.reason} (in place of {'; '.join(tried)})", res.backend)
            return res
        tried.append(f"{name}: {res.reason}")
    return QuantizeResult(None, False, "; ".join(tried) or f"no {code_span(backend)} backend for {precision}", "none")


def _device(model: Any) -> torch.device:
    first = next(model.parameters(), None)
    return first.device if first is not None else torch.device("cpu")


def _torchao_quantize(model: Any, config: Any, label: str, dtype: torch.dtype = torch.float32) -> QuantizeResult:
    """``torchao.quantization.quantize_`` on the ``nn.Linear`` layers of a copy (the LM head excepted)."""
    try:
        from torchao.quantization import quantize_
    except ImportError:
        return NO_TORCHAO
    dev = _device(model)
    m = conv1d_to_linear(_unwrap(model).to(dtype))
    skip = _skip_modules(m)
    count = sum(1 for mod in m.modules() if isinstance(mod, nn.Linear) and id(mod) not in skip)
    if count == 0:
        return QuantizeResult(None, False, "the model has no linear layers to quantize", "none")
    try:
        quantize_(m, config, filter_fn=lambda mod, _fqn: isinstance(mod, nn.Linear) and id(mod) not in skip)
    except (RuntimeError, NotImplementedError, ImportError, AssertionError, ValueError) as exc:
        return QuantizeResult(None, False, f"torchao {label} failed: {str(exc).splitlines()[0] if str(exc) else exc}",
                              "none")
    # torchao leaves a layer it cannot quantize as it was and only logs it (the int4 kernel: an input size that is
    # not a multiple of the group size): a model with full-precision layers is not the quantized model
    left = [(name, mod.in_features) for name, mod in m.named_modules()
            if isinstance(mod, nn.Linear) and id(mod) not in skip and not _torchao_quantized(mod.weight)]
    if left:
        name, width = left[0]
        return QuantizeResult(None, False, f"torchao {label} left {len(left)} of {count} linear layers unquantized "
                                           f"(e.g. {code_span(name)}, input size {width})", "none")
    m.eval()
    import torchao

    return QuantizeResult(m, True, f"{count} linear layers quantized by torchao ({label}); embeddings and LM head "
                                   f"in {str(dtype).removeprefix('torch.')}",
                          f"torchao-{torchao.__version__} {label} ({dev.type})")


def _int8_torchao(model: Any) -> QuantizeResult:
    try:
        from torchao.quantization import Int8WeightOnlyConfig
    except ImportError:
        return NO_TORCHAO
    return _torchao_quantize(model, Int8WeightOnlyConfig(), "int8 weight-only, per channel")


def _torchao_quantized(weight: Any) -> bool:
    """Whether a weight is one of torchao's quantized tensors (not a plain floating-point tensor left as it was)."""
    try:
        from torchao.utils import TorchAOBaseTensor
    except ImportError:  # pragma: no cover - an older torchao: any tensor subclass is its work
        return type(weight) not in (torch.Tensor, nn.Parameter)
    return isinstance(weight, TorchAOBaseTensor)


def _int4_tinygemm(model: Any) -> QuantizeResult:
    """torchao's int4 weight-only CUDA kernel (tinygemm tile packing, bf16 activations); CUDA only."""
    if _device(model).type != "cuda":
        return QuantizeResult(None, False, "the tinygemm int4 kernel needs a CUDA device", "none")
    try:
        from torchao.quantization import Int4WeightOnlyConfig
    except ImportError:
        return NO_TORCHAO
    return _torchao_quantize(model, Int4WeightOnlyConfig(group_size=INT4_GROUP_SIZE,
                                                         int4_packing_format="tile_packed_to_4d"),
                             f"int4 weight-only, tinygemm kernel, group size {INT4_GROUP_SIZE}", torch.bfloat16)


def _int4_intx(model: Any) -> QuantizeResult:
    """torchao's int4 weight-only with unpacked storage: int4 values and per-group scales, on any device."""
    try:
        from torchao.quantization import IntxWeightOnlyConfig
        from torchao.quantization.granularity import PerGroup
    except ImportError:
        return NO_TORCHAO
    int4 = torch.int4  # type: ignore[attr-defined]  # a torch dtype missing from torch's stubs
    return _torchao_quantize(model, IntxWeightOnlyConfig(weight_dtype=int4, granularity=PerGroup(INT4_GROUP_SIZE)),
                             f"int4 weight-only, group size {INT4_GROUP_SIZE}, unpacked int8 storage")


def _nf4_bitsandbytes(model: Any) -> QuantizeResult:
    """bitsandbytes 4-bit NormalFloat (NF4) linear layers; CUDA only."""
    if _device(model).type != "cuda":
        return QuantizeResult(None, False, "bitsandbytes NF4 needs a CUDA device", "none")
    try:
        import bitsandbytes as bnb
    except ImportError:
        return QuantizeResult(None, False, "bitsandbytes is not installed", "none")
    m = conv1d_to_linear(_unwrap(model).float())
    skip = _skip_modules(m)
    count = 0
    for module in list(m.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, nn.Linear) and id(child) not in skip:
                q = bnb.nn.Linear4bit(child.in_features, child.out_features, bias=child.bias is not None,
                                      compute_dtype=torch.bfloat16, quant_type="nf4")
                q.weight = bnb.nn.Params4bit(child.weight.detach().cpu(), requires_grad=False, quant_type="nf4")
                if child.bias is not None:
                    q.bias = nn.Parameter(child.bias.detach().cpu(), requires_grad=False)
                setattr(module, name, q.to("cuda"))  # moving to CUDA quantizes the weight
                count += 1
    if count == 0:
        return QuantizeResult(None, False, "the model has no linear layers to quantize", "none")
    m.to("cuda").eval()
    return QuantizeResult(m, True, f"{count} linear layers in bitsandbytes NF4 (4-bit NormalFloat, not an integer "
                                   "grid); embeddings and LM head in fp32",
                          f"bitsandbytes-{bnb.__version__} nf4 (cuda)")


def _int8_rtn(model: Any) -> QuantizeResult:
    m = conv1d_to_linear(_unwrap(model).float())
    skip = _skip_modules(m)
    count = 0
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, nn.Linear) and id(mod) not in skip:
                mod.weight.copy_(rtn_quantize_weight(mod.weight, bits=8, group_size=mod.weight.shape[1]))
                count += 1
    if count == 0:
        return QuantizeResult(None, False, "the model has no linear layers to quantize", "none")
    m.eval()
    return QuantizeResult(m, True, f"{count} linear layers rounded to 8-bit per output channel (RTN, asymmetric), "
                                   "dequantised to fp32; embeddings and LM head in fp32", "rtn-int8-simulated")


def _int8(model: Any) -> QuantizeResult:
    engine = torch.backends.quantized.engine
    if engine in (None, "none") or not torch.backends.quantized.supported_engines:
        return QuantizeResult(None, False, "no quantized CPU engine in this PyTorch build", "none")
    from torch.ao.quantization import default_dynamic_qconfig, quantize_dynamic

    m = conv1d_to_linear(_unwrap(model).float().to("cpu"))
    skip = _skip_modules(m)
    spec = {name: default_dynamic_qconfig for name, mod in m.named_modules()
            if isinstance(mod, nn.Linear) and id(mod) not in skip}
    if not spec:
        return QuantizeResult(None, False, "the model has no linear layers to quantize", "none")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch.ao.quantization announces its move to torchao
            q = quantize_dynamic(m, qconfig_spec=spec, dtype=torch.qint8)
    except (RuntimeError, NotImplementedError) as exc:
        return QuantizeResult(None, False, f"dynamic int8 quantization failed: {exc}", "none")
    q.eval()
    return QuantizeResult(q, True, f"{len(spec)} linear layers with int8 weights (dynamic activation "
                                   "quantization); embeddings and LM head in fp32",
                          f"torch-dynamic-int8 ({engine}, cpu)")


def _int4(model: Any) -> QuantizeResult:
    m = _unwrap(model).float()
    skip = _skip_modules(m)
    count = 0
    with torch.no_grad():
        for mod in m.modules():
            if id(mod) in skip:
                continue
            if isinstance(mod, nn.Linear):
                mod.weight.copy_(rtn_quantize_weight(mod.weight))
                count += 1
            elif isinstance(mod, Conv1D):  # weight is (in, out): quantize along ``in``
                mod.weight.copy_(rtn_quantize_weight(mod.weight.t()).t())
                count += 1
    if count == 0:
        return QuantizeResult(None, False, "the model has no linear layers to quantize", "none")
    m.eval()
    return QuantizeResult(m, True, f"{count} linear layers rounded to 4-bit (RTN, group size {INT4_GROUP_SIZE}, "
                                   "asymmetric), dequantised to fp32; embeddings and LM head in fp32",
                          "rtn-int4-simulated")


def _backends(precision: str) -> tuple[tuple[str, Any], ...]:
    """The backends tried for ``int8`` or ``int4``, in the module doc's order, each under its ``backend`` name (looked
    up when called). int4: on CUDA the tinygemm kernel, then NF4, then torchao's unpacked int4 (any device), then RTN."""
    if precision == "int8":
        return (("torchao", _int8_torchao), ("torch", _int8), ("simulated", _int8_rtn))
    return (("torchao", _int4_tinygemm), ("bitsandbytes", _nf4_bitsandbytes), ("torchao", _int4_intx),
            ("simulated", _int4))
