"""Training examples for unlearning: tokenised records, forget/retain pairs, and their collator.

Why each choice:

* A QA record trains on its *answer*: the prompt part of the labels is ``-100``, since what is to be
  forgotten is the answer to the question, not the question. A document record trains on all of it.
  Every example ends with EOS, as the builtin model was trained (so a refusal learns to stop). For a
  chat model (:mod:`unlearnspec.runtime.prompting`) a QA example is the chat template's conversation
  and its labels are exactly the answer (or the refusal) and the end-of-turn token
  (:meth:`PromptFormat.encode`), the way the model was trained to answer.
* Each forget example is paired with a retain example. The Trainer's seeded sampler orders (and,
  under DDP, shards) the forget examples; the retain partner of forget example ``i`` is
  ``perm[i mod R]`` for a permutation of the retain set drawn from ``(seed, epoch)``. The draw is a
  pure function of the forget index, so ranks (which hold different forget examples) never see the
  same retain sample sequence (open-unlearning draws retain samples from the global RNG, which is
  seeded identically on every rank), the pairs are the same whatever the process count (the global
  batch is split across processes, ``runtime/scaling.py``), and resuming from a checkpoint
  reproduces the draw with no extra state.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from unlearnspec.records import Record
from unlearnspec.runtime.methods.losses import IGNORE_INDEX
from unlearnspec.runtime.prompting import PromptFormat, resolve

# Bio prefixes a refusal is trained on, as fractions of the document's words: several cut points so
# the refusal does not depend on where an evaluation cuts its prompt.
REFUSAL_PREFIX_FRACTIONS = (0.25, 0.5, 0.75)


@dataclass(frozen=True)
class Example:
    """One tokenised training sequence; ``labels`` is ``-100`` where the token is not scored."""

    input_ids: list[int]
    labels: list[int]


def _eos_id(tokenizer: Any) -> int:
    eos = tokenizer.eos_token_id
    if eos is None:
        raise ValueError("the tokenizer needs an EOS token")
    return int(eos)


def encode(tokenizer: Any, prompt: str, target: str, max_length: int) -> Example:
    """Tokenise ``prompt + target`` with EOS appended; only the target's tokens (and EOS) are scored.

    The boundary is found with the fast tokenizer's character offsets on the whole string, not by
    tokenising the two halves apart, so a merge across the boundary cannot shift the mask.
    """
    text = prompt + target
    offsets = bool(prompt) and bool(getattr(tokenizer, "is_fast", False))
    enc = tokenizer(text, add_special_tokens=True, return_offsets_mapping=offsets)
    ids: list[int] = list(enc["input_ids"])
    if prompt and not offsets:  # a slow tokenizer has no offsets: count the prompt's own tokens
        n_prompt = len(tokenizer(prompt, add_special_tokens=True)["input_ids"])
        labels = [IGNORE_INDEX] * min(n_prompt, len(ids)) + ids[n_prompt:]
    elif prompt:
        cut = len(prompt)
        labels, in_target = [], False
        for tok, (start, end) in zip(ids, enc["offset_mapping"], strict=True):
            # special tokens have empty offsets: scored only once the target has begun (a trailing EOS)
            in_target = in_target or end > cut
            labels.append(tok if in_target and (end > cut or start == end) else IGNORE_INDEX)
    else:
        labels = list(ids)
    eos = _eos_id(tokenizer)
    if not ids or ids[-1] != eos:
        ids.append(eos)
        labels.append(eos)
    return Example(ids[:max_length], labels[:max_length])


def encode_qa(tokenizer: Any, fmt: PromptFormat, question: str, answer: str, max_length: int) -> Example:
    """One QA example in ``fmt``: plain, ``format_prompt`` and `` {answer}`` (:func:`encode`); chat, the
    template's prompt and ``answer`` + end of turn, labels on those tokens only."""
    if fmt.kind == "plain":
        return encode(tokenizer, fmt.prompt(tokenizer, question), " " + answer, max_length)
    ids, labels = fmt.encode(tokenizer, question, answer, max_length=max_length)
    return Example(ids, labels)


def encode_records(records: Iterable[Record], tokenizer: Any, max_length: int = 256, *,
                   fmt: PromptFormat | None = None) -> list[Example]:
    """The examples a model is trained and scored on for ``records``: documents whole, QA on the answer
    (in ``fmt``, by default the tokenizer's own format)."""
    fmt = resolve(fmt, tokenizer)
    out: list[Example] = []
    for r in records:
        if r.text:
            out.append(encode(tokenizer, "", r.text, max_length))
        if r.is_qa:
            assert r.question is not None and r.answer is not None
            out.append(encode_qa(tokenizer, fmt, r.question, r.answer, max_length))
    return out


def _prefixes(text: str) -> list[str]:
    words = text.split()
    cuts = sorted({max(1, round(len(words) * f)) for f in REFUSAL_PREFIX_FRACTIONS if len(words) > 1})
    return [" ".join(words[:c]) for c in cuts if c < len(words)]


def encode_refusals(records: Iterable[Record], tokenizer: Any, refusal_text: str,
                    max_length: int = 256, *, fmt: PromptFormat | None = None) -> list[Example]:
    """Forget prompts paired with the refusal as target (model-level suppression).

    QA records give their question (in ``fmt``: a chat model learns the refusal as its answer); documents
    give prefixes of their words. A record's paraphrases are never trained on: they are the paraphrased
    probe's prompts, so a refusal that covers them must have generalised to them (FRAMEWORK.md §7:
    what the verdict is measured on is not what training used).
    """
    fmt = resolve(fmt, tokenizer)
    out: list[Example] = []
    target = " " + refusal_text
    for r in records:
        if r.is_qa:
            assert r.question is not None
            out.append(encode_qa(tokenizer, fmt, r.question, refusal_text, max_length))
        if r.text:
            for p in _prefixes(r.text):
                out.append(encode(tokenizer, p, target, max_length))
    return out


def _seed_for(seed: int, epoch: int, process_index: int) -> int:
    digest = hashlib.sha256(f"retain:{seed}:{epoch}:{process_index}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


class ForgetRetainDataset(torch.utils.data.Dataset[dict[str, Any]]):
    """Forget example ``i`` with a retain partner drawn per ``(seed, epoch)``.

    ``extra`` holds per-forget-example columns (e.g. NPO's reference log-likelihoods), so values that
    need the original model are computed once before training and travel with the batch.
    ``epoch`` and ``process_index`` are set by :class:`EpochCallback` (the Trainer knows them); the
    process index is recorded, not drawn from, so the pairs do not depend on the process count.
    """

    def __init__(self, forget: Sequence[Example], retain: Sequence[Example] = (), *, seed: int = 0,
                 extra: Mapping[str, Sequence[float]] | None = None) -> None:
        if not forget:
            raise ValueError("the forget set is empty")
        for name, col in (extra or {}).items():
            if len(col) != len(forget):
                raise ValueError(f"column `{name}` has {len(col)} values for {len(forget)} forget examples")
        self.forget = list(forget)
        self.retain = list(retain)
        self.seed = seed
        self.extra = {k: list(v) for k, v in (extra or {}).items()}
        self.epoch = 0
        self.process_index = 0
        self._perm_key: tuple[int, int] | None = None
        self._perm: list[int] = []

    def __len__(self) -> int:
        return len(self.forget)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def retain_index(self, i: int) -> int:
        key = (self.epoch, 0)  # the seed string keeps its old form (process 0): one-process runs are unchanged
        if key != self._perm_key:
            g = torch.Generator().manual_seed(_seed_for(self.seed, *key))
            self._perm = torch.randperm(len(self.retain), generator=g).tolist()
            self._perm_key = key
        return self._perm[i % len(self.retain)]

    def __getitem__(self, i: int) -> dict[str, Any]:
        f = self.forget[i]
        row: dict[str, Any] = {"forget_input_ids": f.input_ids, "forget_labels": f.labels, "forget_index": i}
        for k, col in self.extra.items():
            row[k] = col[i]
        if self.retain:
            j = self.retain_index(i)
            r = self.retain[j]
            row.update(retain_input_ids=r.input_ids, retain_labels=r.labels, retain_index=j)
        return row


def pad_examples(seqs: Sequence[Sequence[int]], length: int, value: int) -> torch.Tensor:
    return torch.tensor([list(s) + [value] * (length - len(s)) for s in seqs], dtype=torch.long)


@dataclass(frozen=True)
class ForgetRetainCollator:
    """Right-pads forget and retain sequences to one common length.

    One length for both halves lets a method run forget and retain through the model in a single
    forward pass (concatenated on the batch axis): faster, and DDP sees one forward per backward.
    """

    pad_token_id: int

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        parts = [p for p in ("forget", "retain") if f"{p}_input_ids" in rows[0]]
        length = max(len(r[f"{p}_input_ids"]) for r in rows for p in parts)
        batch: dict[str, torch.Tensor] = {}
        for p in parts:
            ids = [r[f"{p}_input_ids"] for r in rows]
            batch[f"{p}_input_ids"] = pad_examples(ids, length, self.pad_token_id)
            batch[f"{p}_labels"] = pad_examples([r[f"{p}_labels"] for r in rows], length, IGNORE_INDEX)
            batch[f"{p}_attention_mask"] = pad_examples([[1] * len(s) for s in ids], length, 0)
            batch[f"{p}_index"] = torch.tensor([r[f"{p}_index"] for r in rows], dtype=torch.long)
        for k in rows[0]:
            if k not in batch and not any(k.startswith(f"{p}_") for p in parts):
                batch[k] = torch.tensor([float(r[k]) for r in rows], dtype=torch.float32)
        return batch


def batches(examples: Sequence[Example], batch_size: int, pad_token_id: int,
            ) -> Iterable[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """``(input_ids, attention_mask, labels)`` right-padded batches in order, for scoring."""
    for s in range(0, len(examples), batch_size):
        chunk = examples[s:s + batch_size]
        length = max(len(e.input_ids) for e in chunk)
        yield (pad_examples([e.input_ids for e in chunk], length, pad_token_id),
               pad_examples([[1] * len(e.input_ids) for e in chunk], length, 0),
               pad_examples([e.labels for e in chunk], length, IGNORE_INDEX))
