"""Batched greedy decoding, the one generation path every output metric and probe shares.

Why greedy and batched: verbatim memorisation, knowledge QA and every probe ask "what does the
model say?", which must give the same answer on every run (greedy, no sampling) and must not cost
one ``generate`` call per prompt. Prompts are left-padded (a causal LM continues from the last
position, so padding must sit on the left; the attention mask and the position ids transformers
derives from it keep padded and unpadded runs equal — a test pins batched to unbatched output),
grouped by length so batches carry little padding, and returned in the caller's order.

Why a clean generation config: transformers fills every field a passed ``GenerationConfig`` leaves unset from the
model's own ``generation_config`` (the one a checkpoint ships), so a shipped ``repetition_penalty``,
``no_repeat_ngram_size``, ``suppress_tokens``, ``min_new_tokens``, ``bad_words_ids``… would change what greedy
decoding says, and with it every output metric: the same weights with another ``generation_config.json`` would give
other evidence. While generating, every module's ``generation_config`` is set aside for transformers' defaults
(:func:`_shipped_config_set_aside`), so decoding is greedy, one beam, the stop tokens and the budget, nothing else.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch
from transformers import GenerationConfig, PreTrainedTokenizerBase

from unlearnspec.runtime.evaluation.likelihood import (
    context_length,
    evaluating,
    length_sorted_batches,
    model_device,
    pad_batch,
    pad_id,
)
from unlearnspec.runtime.evaluation.sharding import forward_cost, map_batches, outermost
from unlearnspec.runtime.prompting import prompt_ids, stop_ids


class _PaddedFinishedRowsWarning(logging.Filter):
    """Drop one false alarm. We always pass the attention mask; for a batch without padding
    transformers drops the all-ones mask itself, and once a row has finished its next input is the pad
    token, so the model warns that padding may be unmasked. Only finished rows are affected, and their
    later tokens are discarded (``test_left_padded_batch_equals_unbatched_generation`` pins the outputs)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("We strongly recommend passing in an `attention_mask`")


logging.getLogger("transformers.modeling_utils").addFilter(_PaddedFinishedRowsWarning())


_SET_ASIDE: dict[int, list[Any]] = {}  # id(model) -> [model, depth, the shipped configurations saved]


@contextmanager
def _shipped_config_set_aside(model: Any) -> Iterator[None]:
    """Every module's own ``generation_config`` (the model's, a PEFT wrapper's base model's) replaced by a default
    ``GenerationConfig`` for the duration, and put back after: nothing the checkpoint ships reaches decoding.

    Re-entrant per model object (:func:`~unlearnspec.runtime.evaluation.sharding.outermost`): only the outermost
    entry saves the shipped configurations and only its exit puts them back, so an interleaved measurement of the
    same model never saves the other's stand-in and leaves it on the model for good."""

    def save() -> list[tuple[Any, GenerationConfig]]:
        modules = list(model.modules()) if hasattr(model, "modules") else [model]
        saved = [(m, vars(m)["generation_config"]) for m in modules
                 if isinstance(vars(m).get("generation_config"), GenerationConfig)]
        for m, _ in saved:
            m.generation_config = GenerationConfig()
        return saved

    def restore(saved: list[tuple[Any, GenerationConfig]]) -> None:
        for m, config in saved:
            m.generation_config = config

    with outermost(_SET_ASIDE, model, save, restore):
        yield


@torch.no_grad()
def generate_ids(model: Any, tokenizer: PreTrainedTokenizerBase, prompt_ids: Sequence[Sequence[int]], *,
                 max_new_tokens: int | Sequence[int] = 48, batch_size: int = 32) -> list[list[int]]:
    """Greedy continuations (new token ids only, cut before the first stop token) of tokenised prompts.

    The stop tokens are EOS and, for a tokenizer with a chat template, the template's end-of-turn
    token (:func:`unlearnspec.runtime.prompting.stop_ids`). Decoding is greedy whatever the model's own
    ``generation_config`` says (module docstring).

    ``max_new_tokens`` may be one budget per prompt (verbatim memorisation continues each text for
    as many tokens as its true continuation has); a batch decodes to its largest budget and each
    output is cut to its own, which under greedy decoding equals decoding it alone. Prompts longer
    than the context minus the budget keep their last tokens."""
    n = len(prompt_ids)
    budgets = [int(max_new_tokens)] * n if isinstance(max_new_tokens, int) else [int(b) for b in max_new_tokens]
    if len(budgets) != n:
        raise ValueError("max_new_tokens must be an int or one budget per prompt")
    if any(b < 0 for b in budgets):
        raise ValueError("max_new_tokens must be non-negative")
    ctx = context_length(model)
    stops = list(stop_ids(tokenizer))  # EOS, and a chat template's end-of-turn token
    pad = pad_id(tokenizer)
    dev = model_device(model)
    rows: list[list[int]] = []
    for p, b in zip(prompt_ids, budgets, strict=True):
        keep = max(ctx - b, 1)
        rows.append(list(p)[-keep:])
    if any(not rows[i] and budgets[i] > 0 for i in range(n)):  # checked before the batches are shared out
        raise ValueError("cannot generate from an empty prompt (the model has no BOS to start from)")

    def compute(batch: list[int]) -> dict[int, list[int]]:
        done: dict[int, list[int]] = {}
        budget = max(budgets[i] for i in batch)
        if budget == 0:
            return done
        input_ids, attention = pad_batch([rows[i] for i in batch], pad, "left")
        config = GenerationConfig(max_new_tokens=budget, do_sample=False, num_beams=1,
                                  eos_token_id=stops or None, pad_token_id=pad)
        generated = model.generate(input_ids=input_ids.to(dev), attention_mask=attention.to(dev),
                                   generation_config=config)
        new = generated[:, input_ids.shape[1]:].cpu().tolist()
        for row, i in enumerate(batch):
            toks = new[row][: budgets[i]]
            cut = next((j for j, t in enumerate(toks) if t in stops), None)
            done[i] = toks[:cut] if cut is not None else toks
        return done

    with evaluating(model), _shipped_config_set_aside(model):
        # split across the processes of a launch (a no-op for one process): sharding.py
        batches = length_sorted_batches([len(r) for r in rows], batch_size)
        costs = [forward_cost(len(b), max(len(rows[i]) for i in b), max(budgets[i] for i in b)) for b in batches]
        found = map_batches(batches, compute, costs)
    out = [found.get(i, []) for i in range(n)]
    return out


def decode(tokenizer: PreTrainedTokenizerBase, ids: Sequence[int]) -> str:
    """Token ids to text without special tokens."""
    return str(tokenizer.decode(list(ids), skip_special_tokens=True))


def generate(model: Any, tokenizer: PreTrainedTokenizerBase, prompts: Sequence[str], *,
             max_new_tokens: int | Sequence[int] = 48, batch_size: int = 32) -> list[str]:
    """Greedy continuations of ``prompts`` as text, prompt stripped, stopped at EOS, deterministic."""
    enc = [prompt_ids(tokenizer, p) for p in prompts]  # a chat prompt that starts with BOS gets no second one
    new = generate_ids(model, tokenizer, enc, max_new_tokens=max_new_tokens, batch_size=batch_size)
    return [decode(tokenizer, t) for t in new]
