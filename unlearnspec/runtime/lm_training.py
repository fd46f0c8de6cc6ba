"""Train a small causal LM from scratch with the Hugging Face Trainer, and its BPE tokenizer.

Why here and reusable: the builtin demo model and its exact-retraining reference must come out of
the *same* code path — the reference is "the same recipe on the corpus minus the forget texts" —
so both call :func:`train_causal_lm`. The Trainer (not a hand-written loop) keeps the recipe
runnable under ``accelerate launch`` and gives seeded data order for free.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (
    DataCollatorForLanguageModeling,
    DataCollatorForSeq2Seq,
    GPT2Config,
    GPT2LMHeadModel,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedTokenizerBase,
    PreTrainedTokenizerFast,
    Trainer,
    TrainerCallback,
    TrainingArguments,
    set_seed,
)
from transformers.trainer_callback import PrinterCallback
from transformers.utils import logging as hf_logging

log = logging.getLogger(__name__)


def train_bpe_tokenizer(texts: Iterable[str], config: Mapping[str, Any],
                        padding_side: str = "right") -> PreTrainedTokenizerFast:
    """Fit a byte-level BPE tokenizer on ``texts`` and wrap it for transformers.

    Byte-level so that any string (an adversarial prompt, an unseen name) is encodable with no
    unknown token. The wrapped tokenizer adds no BOS/EOS by itself: training code appends EOS.
    A dedicated pad token (not EOS) keeps the EOS labels when the collator masks padding.
    """
    eos = str(config.get("eos_token", "<|endoftext|>"))
    pad = str(config.get("pad_token", "<pad>"))
    bos = str(config.get("bos_token", eos))
    # A chat recipe adds its BOS and the template's header and end-of-turn tokens as special tokens
    # (never split or merged); the GPT-2 recipe has none, and its vocabulary is unchanged.
    extra = [t for t in [bos, *config.get("extra_special_tokens", ())] if t not in (eos, pad)]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=int(config.get("vocab_size", 1024)),
        min_frequency=int(config.get("min_frequency", 2)),
        special_tokens=[eos, pad, *extra],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(list(texts), trainer=trainer)
    wrapped = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=eos, bos_token=bos, unk_token=None,
                                      pad_token=pad, padding_side=padding_side)
    if config.get("chat_template"):
        wrapped.chat_template = str(config["chat_template"])
    return wrapped


class _Examples(torch.utils.data.Dataset[dict[str, list[int]]]):
    """One example per text: its token ids with EOS appended, truncated to ``max_length``."""

    def __init__(self, texts: Sequence[str], tokenizer: PreTrainedTokenizerBase, max_length: int) -> None:
        eos = tokenizer.eos_token_id
        assert eos is not None, "the tokenizer needs an EOS token"
        self.rows = [{"input_ids": (tokenizer(t, add_special_tokens=False)["input_ids"] + [eos])[:max_length]}
                     for t in texts]

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict[str, list[int]]:
        return self.rows[i]


class _LogToLogging(TrainerCallback):
    """Send the Trainer's loss logs to ``logging`` (the default PrinterCallback prints to stdout)."""

    def on_log(self, args: TrainingArguments, state: Any, control: Any, logs: dict[str, float] | None = None,
               **kwargs: Any) -> None:
        if logs:
            log.info("step %d/%d: %s", state.global_step, state.max_steps,
                     ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in logs.items()))


def gpt2_config(model: Mapping[str, Any], tokenizer: PreTrainedTokenizerBase) -> GPT2Config:
    """A GPT-2 config from the recipe's ``model`` part, with the tokenizer's special ids."""
    if model.get("architecture", "gpt2") != "gpt2":
        raise ValueError(f"unsupported architecture `{model.get('architecture')}`")
    dropout = float(model.get("dropout", 0.0))
    return GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=int(model["n_positions"]),
        n_embd=int(model["n_embd"]),
        n_layer=int(model["n_layer"]),
        n_head=int(model["n_head"]),
        resid_pdrop=dropout, embd_pdrop=dropout, attn_pdrop=dropout,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )


def train_causal_lm(texts: Sequence[str], tokenizer: PreTrainedTokenizerBase, config: Mapping[str, Any],
                    out_dir: Path, seed: int, callbacks: Sequence[TrainerCallback] = ()) -> Path:
    """Train a fresh GPT-2 on ``texts`` and save it (safetensors) with its tokenizer into ``out_dir``.

    ``config`` is the recipe's ``{"model": ..., "train": ...}``. Each text is its own example with
    EOS appended, so the model learns where an answer ends. Training runs on CPU when
    ``train.device`` is ``"cpu"`` or no CUDA device exists. Threads are the caller's to pin.
    """
    model_cfg: Mapping[str, Any] = config["model"]
    train_cfg: Mapping[str, Any] = config["train"]
    if not texts:
        raise ValueError("no training texts")
    set_seed(seed)
    model = GPT2LMHeadModel(gpt2_config(model_cfg, tokenizer))
    # GPT2LMHeadModel's class name does not say "ForCausalLM", so transformers would warn that it
    # guesses the loss; name it.
    model.loss_type = "ForCausalLM"
    max_length = min(int(train_cfg.get("max_length", model_cfg["n_positions"])), int(model_cfg["n_positions"]))
    dataset = _Examples(texts, tokenizer, max_length)
    use_cpu = train_cfg.get("device") == "cpu" or not torch.cuda.is_available()
    log.info("training GPT-2 (%d parameters) on %d texts for %s epochs on %s", model.num_parameters(),
             len(dataset), train_cfg["epochs"], "cpu" if use_cpu else "cuda")
    _fit(model, dataset, DataCollatorForLanguageModeling(tokenizer, mlm=False), tokenizer, train_cfg, seed, callbacks)
    return _save(model, tokenizer, out_dir)


def _save(model: Any, tokenizer: PreTrainedTokenizerBase, out_dir: Path) -> Path:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with _quiet_progress_bars():
        model.save_pretrained(out_dir)  # transformers 5 always writes safetensors
    tokenizer.save_pretrained(out_dir)
    return out_dir


def llama_config(model: Mapping[str, Any], tokenizer: PreTrainedTokenizerBase) -> LlamaConfig:
    """A Llama config (RoPE, RMSNorm, SwiGLU, grouped-query attention) from the recipe's ``model`` part."""
    if model.get("architecture") != "llama":
        raise ValueError(f"unsupported architecture `{model.get('architecture')}`")
    heads, kv_heads = int(model["num_attention_heads"]), int(model["num_key_value_heads"])
    if heads % kv_heads:
        raise ValueError("num_attention_heads must be a multiple of num_key_value_heads")
    return LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=int(model["hidden_size"]),
        intermediate_size=int(model["intermediate_size"]),
        num_hidden_layers=int(model["num_hidden_layers"]),
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        max_position_embeddings=int(model["max_position_embeddings"]),
        rms_norm_eps=float(model.get("rms_norm_eps", 1e-5)),
        rope_parameters={"rope_type": "default", "rope_theta": float(model.get("rope_theta", 10000.0))},
        hidden_act="silu",
        attention_dropout=float(model.get("dropout", 0.0)),
        tie_word_embeddings=bool(model.get("tie_word_embeddings", False)),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )


class LabelledExamples(torch.utils.data.Dataset[dict[str, list[int]]]):
    """Pre-encoded ``(input_ids, labels)`` rows, ``-100`` where a token is not trained on, for a collator
    that pads ``labels`` with ``-100`` (transformers' ``DataCollatorForSeq2Seq``): the built-in Llama
    recipes' items (documents: every token; chat items: the answer and end of turn) and the relearning
    attack's chat data (runtime/attacks.py)."""

    def __init__(self, rows: Iterable[tuple[Sequence[int], Sequence[int]]]) -> None:
        self.rows = [{"input_ids": list(ids), "labels": list(labels)} for ids, labels in rows]

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict[str, list[int]]:
        return self.rows[i]


def encode_items(items: Sequence[Any], tokenizer: PreTrainedTokenizerBase, max_length: int) -> list[tuple[list[int], list[int]]]:
    """Token ids and labels of the recipe's items (:class:`unlearnspec.builtin.training.TrainItem`).

    A whole text (a document, a plain QA pair) gets EOS appended and is scored on every token, as the
    GPT-2 recipe trains; a chat item is the tokenizer's chat template around the question, scored on
    the answer and the end-of-turn token only (:meth:`PromptFormat.encode`).
    """
    from unlearnspec.runtime.prompting import PromptFormat

    fmt = PromptFormat.of(tokenizer)
    eos = tokenizer.eos_token_id
    assert eos is not None, "the tokenizer needs an EOS token"
    rows = []
    for item in items:
        if item.is_chat:
            if fmt.kind != "chat":
                raise ValueError("a chat item needs a tokenizer with a chat template")
            rows.append(fmt.encode(tokenizer, item.question, item.answer, max_length=max_length))
        else:
            ids = (tokenizer(item.text, add_special_tokens=False)["input_ids"] + [eos])[:max_length]
            rows.append((ids, list(ids)))
    return rows


def train_llama_lm(items: Sequence[Any], tokenizer: PreTrainedTokenizerBase, config: Mapping[str, Any],
                   out_dir: Path, seed: int, callbacks: Sequence[TrainerCallback] = ()) -> Path:
    """Train a fresh ``LlamaForCausalLM`` on the recipe's items and save it with its tokenizer.

    Same Trainer setup as :func:`train_causal_lm`; the collator pads ``labels`` with ``-100`` so each
    example's own mask survives batching.
    """
    model_cfg: Mapping[str, Any] = config["model"]
    train_cfg: Mapping[str, Any] = config["train"]
    if not items:
        raise ValueError("no training items")
    set_seed(seed)
    model = LlamaForCausalLM(llama_config(model_cfg, tokenizer))
    max_length = min(int(train_cfg.get("max_length", model_cfg["max_position_embeddings"])),
                     int(model_cfg["max_position_embeddings"]))
    dataset = LabelledExamples(encode_items(items, tokenizer, max_length))
    log.info("training Llama (%d parameters) on %d items for %s epochs", model.num_parameters(), len(dataset),
             train_cfg["epochs"])
    collator = DataCollatorForSeq2Seq(tokenizer, label_pad_token_id=-100)
    _fit(model, dataset, collator, tokenizer, train_cfg, seed, callbacks)
    return _save(model, tokenizer, out_dir)


LAUNCH_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "GROUP_RANK", "ROLE_RANK",
                    "ROLE_WORLD_SIZE", "GROUP_WORLD_SIZE")
"""What a launcher (``torchrun``, ``accelerate launch``) tells each process about its place in the launch."""


@contextlib.contextmanager
def alone() -> Iterator[None]:
    """Inside a multi-process launch, let the Trainer train as a single process for the duration.

    Why: a recipe's model (the built-in, or its exact-retraining reference) is built by one process of a launch,
    under the cache's lock, while the other processes wait for it. A Trainer started there would read the
    launch's ``WORLD_SIZE`` and accelerate's shared state, wrap the model in DDP and wait forever in DDP's first
    collective call for processes that are not training (the run hangs). Its bits must not depend on the process
    count either: the cache keys a build by its recipe alone. So the launcher's rank variables are set aside and
    accelerate's shared state is emptied (``PartialState`` and the others keep one class-level dictionary,
    mutated here in place so that objects already made see it restored), and both are put back afterwards. The
    launch's process group itself stays: nothing here uses it. Outside a launch, nothing changes."""
    import torch.distributed as torch_dist

    if not (torch_dist.is_available() and torch_dist.is_initialized()):
        yield
        return
    from accelerate.state import AcceleratorState, GradientState, PartialState

    env = {k: os.environ.pop(k) for k in LAUNCH_VARIABLES if k in os.environ}
    shared = [(cls._shared_state, dict(cls._shared_state)) for cls in (PartialState, AcceleratorState, GradientState)]
    for state, _ in shared:
        state.clear()
    args_log = logging.getLogger("transformers.training_args")
    args_log.addFilter(_single_by_design)
    try:
        yield
    finally:
        args_log.removeFilter(_single_by_design)
        for state, kept in shared:
            state.clear()
            state.update(kept)
        os.environ.update(env)


def _single_by_design(record: logging.LogRecord) -> bool:
    """Drop ``TrainingArguments``' advice to launch with DDP when a process group exists: here one process trains
    alone on purpose (:func:`alone`)."""
    return "parallel_mode != ParallelMode.DISTRIBUTED" not in record.getMessage()


def _fit(model: Any, dataset: Any, collator: Any, tokenizer: PreTrainedTokenizerBase, train_cfg: Mapping[str, Any],
         seed: int, callbacks: Sequence[TrainerCallback] = ()) -> None:
    """Train ``model`` in place with the Trainer, as the recipe's ``train`` part says, as one process (:func:`alone`)."""
    with alone():
        _fit_here(model, dataset, collator, tokenizer, train_cfg, seed, callbacks)


def _fit_here(model: Any, dataset: Any, collator: Any, tokenizer: PreTrainedTokenizerBase,
              train_cfg: Mapping[str, Any], seed: int, callbacks: Sequence[TrainerCallback]) -> None:
    use_cpu = train_cfg.get("device") == "cpu" or not torch.cuda.is_available()
    bf16 = not use_cpu and train_cfg.get("precision") == "bf16" and torch.cuda.is_bf16_supported()
    with tempfile.TemporaryDirectory(prefix="unlearnspec-train-") as scratch:
        args = TrainingArguments(
            output_dir=scratch,
            num_train_epochs=float(train_cfg["epochs"]),
            per_device_train_batch_size=int(train_cfg["batch_size"]),
            learning_rate=float(train_cfg["learning_rate"]),
            warmup_steps=float(train_cfg.get("warmup_ratio", 0.0)),
            weight_decay=float(train_cfg.get("weight_decay", 0.0)),
            lr_scheduler_type=str(train_cfg.get("lr_scheduler", "linear")),
            train_sampling_strategy=str(train_cfg.get("sampling", "random")),
            logging_strategy="epoch",
            save_strategy="no",
            report_to=[],
            disable_tqdm=True,
            use_cpu=use_cpu,
            bf16=bf16,
            seed=seed,
            data_seed=seed,
            dataloader_num_workers=0,
        )
        trainer = Trainer(
            model=model,
            args=args,
            train_dataset=dataset,
            data_collator=collator,
            processing_class=tokenizer,
            callbacks=[_LogToLogging(), *callbacks],
        )
        trainer.remove_callback(PrinterCallback)
        trainer.train()


@contextlib.contextmanager
def _quiet_progress_bars() -> Iterator[None]:
    """Hide transformers' shard-writing bar for one save, leaving the global setting as it was."""
    was_disabled = hf_logging.is_progress_bar_enabled() is False
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if not was_disabled:
            hf_logging.enable_progress_bar()
