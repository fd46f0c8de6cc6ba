"""Token likelihoods of a dataset under a causal LM: one batched forward pass feeds every metric.

Why one pass: loss, zlib, Min-K%, Min-K%++, exact memorisation, extraction strength, answer
probability and the truth ratio all read the same per-token quantities — the log-probability of
the actual next token, whether it was the argmax, and the mean and variance of the log-probability
under the model's own next-token distribution. :func:`score_texts` computes them once per dataset
(right padding, attention mask, no grad, eval mode, minibatches of ``batch_size`` sorted by length
to waste little compute on padding) and :class:`TokenScores` derives each metric from them with
vectorised numpy, per item, so reports keep per-item values.

Definitions (FRAMEWORK.md §5):

- ``loss``: mean negative log-likelihood of the scored tokens.
- ``zlib``: ``loss / len(zlib.compress(text))`` — Carlini et al., "Extracting Training Data from
  Large Language Models" (USENIX Security 2021): log-perplexity over zlib entropy, so that texts that
  are merely repetitive do not look memorised. Lower means more likely a member.
- ``min_k``: Min-K% Prob (Shi et al., arXiv:2310.16789): the mean of the ``k`` fraction of lowest
  token log-probabilities (``max(1, int(n * k))`` tokens). Higher means more likely a member.
- ``min_k_plus_plus``: Min-K%++ (Zhang et al. 2024, arXiv:2404.02936): each token's log-probability
  normalised by the mean ``mu = sum_v p_v log p_v`` and standard deviation
  ``sigma = sqrt(sum_v p_v (log p_v)^2 - mu^2)`` of the log-probability under the model's
  next-token distribution, then the mean of the lowest ``k`` fraction. ``sigma^2`` is clamped at
  1e-6 as open-unlearning's implementation does. Higher means more likely a member.
- ``exact_memorisation``: the fraction of scored tokens whose argmax prediction (teacher forcing)
  is the true token (Tirumala et al. 2022; TOFU-style evaluations, open-unlearning's
  ``exact_memorization``).

With a prompt (``prompt_texts[i]``, a prefix of ``texts[i]``) only the tokens after the prompt are
scored, i.e. the answer of a QA pair. A causal LM without BOS cannot predict the first token of a
text, so a text of ``n`` tokens has ``n - 1`` scored tokens; items with none get NaN.

Where these definitions deliberately differ from open-unlearning's (compared on the same items in
issue 11; the numbers are close but not equal, so this project does not claim equality):

- QA items: the scored answer is the tokenizer's full encoding of the answer, including an
  end-of-sequence token when the tokenizer appends one; open-unlearning's answer spans do not
  count it the same way.
- Documents: one token fewer is scored than open-unlearning scores (here the first token has no
  prediction; there a prepended BOS predicts it), which shifts exact memorisation, extraction
  strength and Min-K% slightly on short documents.
- Extraction strength: here ``k`` can reach ``n`` (ES = 0 when the last token is mispredicted);
  open-unlearning's loop stops at ``k = n - 1``, so its smallest ES is ``1/n``.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
from numpy.typing import NDArray
from transformers import PreTrainedTokenizerBase

from unlearnspec.records import Record
from unlearnspec.runtime.evaluation.sharding import forward_cost, map_batches, outermost
from unlearnspec.runtime.prompting import PLAIN, PromptFormat, prompt_ids, resolve

SIGMA2_MIN = 1e-6  # open-unlearning's clamp of the Min-K%++ variance


def model_device(model: Any) -> torch.device:
    """The device a model's inputs go to (its first parameter's; CPU for a parameter-less model)."""
    try:
        return next(model.parameters()).device
    except StopIteration:
        return torch.device("cpu")


_EVALUATING: dict[int, list[Any]] = {}  # id(model) -> [model, depth, was training at the outermost entry]


@contextmanager
def evaluating(model: Any) -> Iterator[None]:
    """``model`` in eval mode for the duration, and put back in training mode after if it was in it.

    Re-entrant per model object (:func:`~unlearnspec.runtime.evaluation.sharding.outermost`): only the outermost
    entry records the mode and only its exit restores it, so a measurement interleaved with another of the same
    model never finds it put back in training mode while its own batches are still to be computed."""
    with outermost(_EVALUATING, model, lambda: bool(getattr(model, "training", False)),
                   lambda was_training: model.train() if was_training else None):
        model.eval()
        yield


def context_length(model: Any, default: int = 1024) -> int:
    """How many positions the model accepts (GPT-2 ``n_positions``, others ``max_position_embeddings``)."""
    cfg = getattr(model, "config", None)
    for name in ("n_positions", "max_position_embeddings"):
        value = getattr(cfg, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return default


def pad_id(tokenizer: PreTrainedTokenizerBase) -> int:
    """The id used for padding: the pad token, else EOS, else 0 (masked out either way)."""
    for tid in (tokenizer.pad_token_id, tokenizer.eos_token_id):
        if isinstance(tid, int):
            return tid
    return 0


def pad_batch(rows: Sequence[Sequence[int]], pad: int, side: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Pad token-id rows to one length on ``side``; returns ``(input_ids, attention_mask)``.

    Done here rather than with ``tokenizer.pad`` so the tokenizer is never mutated (its padding side
    stays what the caller set) and a tokenizer without a pad token still works."""
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        if not r:
            continue
        if side == "left":
            ids[i, width - len(r):] = torch.tensor(list(r), dtype=torch.long)
            mask[i, width - len(r):] = 1
        else:
            ids[i, : len(r)] = torch.tensor(list(r), dtype=torch.long)
            mask[i, : len(r)] = 1
    return ids, mask


def length_sorted_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices grouped into batches of similar length (longest first), so padding stays small."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    return [order[s: s + batch_size] for s in range(0, len(order), batch_size)]


def encode_scored(tokenizer: PreTrainedTokenizerBase, texts: Sequence[str],
                  prompt_texts: Sequence[str] | None, max_length: int,
                  split: bool = False) -> tuple[list[list[int]], list[int]]:
    """Token ids of each text (truncated to ``max_length``) and the index of its first scored token.

    A token is scored when it holds at least one character after the prompt (character offsets
    from a fast tokenizer), so a token straddling the boundary — e.g. a prompt ending in a space
    merged into the answer's first word — counts as answer. Slow tokenizers fall back to counting
    the prompt's own tokens.

    ``split`` (the chat format): a text with a prompt is the prompt's tokens followed by the rest's
    tokens, encoded apart (:func:`unlearnspec.runtime.prompting.prompt_ids`, no second BOS), as the
    model was trained (:meth:`PromptFormat.encode`): the boundary is on token ids, and every token
    after the prompt — the answer and the end-of-turn token — is scored."""
    if prompt_texts is not None:
        if len(prompt_texts) != len(texts):
            raise ValueError("prompt_texts must have one prompt per text")
        for i, (t, p) in enumerate(zip(texts, prompt_texts, strict=True)):
            if not t.startswith(p):
                raise ValueError(f"prompt_texts[{i}] is not a prefix of texts[{i}]")
    ids_out: list[list[int]] = []
    starts: list[int] = []
    fast = bool(getattr(tokenizer, "is_fast", False))
    enc = tokenizer(list(texts), return_offsets_mapping=fast, truncation=True, max_length=max_length)
    for i in range(len(texts)):
        ids = list(enc["input_ids"][i])
        start = 1  # the first token has no prediction
        if split and prompt_texts is not None and prompt_texts[i]:
            head = prompt_ids(tokenizer, prompt_texts[i])
            tail = list(tokenizer(texts[i][len(prompt_texts[i]):], add_special_tokens=False)["input_ids"])
            ids = (head + tail)[:max_length]
            start = max(len(head), 1)
        elif prompt_texts is not None and prompt_texts[i]:
            plen = len(prompt_texts[i])
            if fast:
                offsets = enc["offset_mapping"][i]
                start = next((j for j, (_, end) in enumerate(offsets) if end > plen), len(ids))
            else:
                start = len(tokenizer(prompt_texts[i])["input_ids"])
            start = max(start, 1)
        ids_out.append(ids)
        starts.append(min(start, len(ids)))
    return ids_out, starts


@dataclass(frozen=True)
class TokenScores:
    """Per-token quantities of a scored dataset, left-aligned in ``(items, max_scored)`` arrays.

    Row ``i`` holds ``n_tokens[i]`` scored tokens in columns ``0..n_tokens[i]-1``; the rest is
    padding (``mask`` False). Every derived metric is a vector with one value per item."""

    texts: list[str]
    scored_texts: list[str]  # the part of each text that was scored (the answer under a prompt)
    logprobs: NDArray[np.float64]  # log p(true next token)
    mu: NDArray[np.float64]  # E_v[log p_v] under the model's next-token distribution
    sigma2: NDArray[np.float64]  # Var_v[log p_v]
    correct: NDArray[np.bool_]  # argmax prediction == true token
    n_tokens: NDArray[np.int64]
    mask: NDArray[np.bool_] = field(repr=False)

    def __len__(self) -> int:
        return len(self.texts)

    def per_item(self, name: str) -> list[NDArray[Any]]:
        """One array of a per-token quantity (``logprobs``, ``mu``, ``sigma2``, ``correct``) per item."""
        arr = getattr(self, name)
        return [arr[i, : self.n_tokens[i]].copy() for i in range(len(self))]

    def _mean(self, values: NDArray[Any]) -> NDArray[np.float64]:
        total = np.where(self.mask, values, 0.0).sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            out = total / self.n_tokens
        return np.where(self.n_tokens > 0, out, np.nan).astype(np.float64)

    def loss(self) -> NDArray[np.float64]:
        """Mean negative log-likelihood per item (LOSS attack score: lower = more likely member)."""
        return -self._mean(self.logprobs)

    def total_logprob(self) -> NDArray[np.float64]:
        """Sum of scored token log-probabilities, log P(scored part | preceding tokens)."""
        return np.where(self.mask, self.logprobs, 0.0).sum(axis=1)

    def answer_probability(self) -> NDArray[np.float64]:
        """Length-normalised probability ``P(a|q)^(1/|a|) = exp(-loss)`` (TOFU's probability)."""
        return np.exp(-self.loss())

    def zlib(self) -> NDArray[np.float64]:
        """Carlini et al. 2021 zlib score: loss over the zlib-compressed length of the scored text."""
        sizes = np.array([len(zlib.compress(t.encode("utf-8"))) for t in self.scored_texts], dtype=np.float64)
        return self.loss() / sizes

    def _mean_lowest(self, values: NDArray[np.float64], k: float) -> NDArray[np.float64]:
        if not 0.0 < k <= 1.0:
            raise ValueError("k must be in (0, 1]")
        width = values.shape[1]
        kk = np.maximum(1, (self.n_tokens * k).astype(np.int64))
        ranked = np.sort(np.where(self.mask, values, np.inf), axis=1)
        take = np.arange(width)[None, :] < kk[:, None]
        out = np.where(take, ranked, 0.0).sum(axis=1) / kk
        return np.where(self.n_tokens > 0, out, np.nan)

    def min_k(self, k: float = 0.2) -> NDArray[np.float64]:
        """Min-K% Prob: mean of the ``k`` fraction of lowest token log-probs (higher = member)."""
        return self._mean_lowest(self.logprobs, k)

    def min_k_plus_plus(self, k: float = 0.2) -> NDArray[np.float64]:
        """Min-K%++: mean of the ``k`` fraction of lowest ``(logp - mu) / sigma`` (higher = member)."""
        z = (self.logprobs - self.mu) / np.sqrt(np.maximum(self.sigma2, SIGMA2_MIN))
        return self._mean_lowest(z, k)

    def exact_memorisation(self) -> NDArray[np.float64]:
        """Fraction of scored tokens predicted exactly by argmax under teacher forcing."""
        return self._mean(self.correct.astype(np.float64))

    def extraction_strength(self) -> NDArray[np.float64]:
        """Extraction strength ``ES = 1 - k/n`` (open-unlearning's ``extraction_strength``).

        ``k`` is the smallest number of scored tokens to give (after the prompt) such that greedy
        decoding reproduces the remaining ``n - k`` exactly. Greedy decoding from a true prefix
        reproduces the suffix exactly iff every teacher-forced argmax prediction in the suffix is
        correct: by induction, while all predictions are correct the generated context equals the
        true one, and the first wrong prediction is a wrong generated token. So ``k`` is one past
        the last wrong prediction, read from the single forward pass — no generation needed (a test
        pins this to generation). ``n = 0`` gives NaN."""
        width = self.correct.shape[1]
        wrong = self.mask & ~self.correct
        any_wrong = wrong.any(axis=1)
        last_wrong = width - 1 - np.argmax(wrong[:, ::-1], axis=1) if width else np.zeros(len(self), int)
        k = np.where(any_wrong, last_wrong + 1, 0)
        with np.errstate(invalid="ignore", divide="ignore"):
            es = 1.0 - k / self.n_tokens
        return np.where(self.n_tokens > 0, es, np.nan)


@torch.no_grad()
def score_texts(model: Any, tokenizer: PreTrainedTokenizerBase, texts: Sequence[str], *,
                prompt_texts: Sequence[str] | None = None, batch_size: int = 32,
                device: torch.device | str | None = None, max_length: int | None = None,
                fmt: PromptFormat | None = None) -> TokenScores:
    """Score ``texts`` in one batched pass and return the per-token quantities (see module doc).

    ``prompt_texts[i]`` must be a prefix of ``texts[i]``; its tokens are not scored (an empty
    prompt scores the whole text). The model is put in eval mode; logits are upcast to float32 so
    half-precision models are scored with the same arithmetic. Texts longer than the model's
    context are truncated on the right. ``fmt`` (default: the tokenizer's own) decides where a
    prompt ends: on the prompt's own token ids in the chat format (see :func:`encode_scored`)."""
    texts = list(texts)
    if not texts:
        empty = np.zeros((0, 0))
        return TokenScores(texts=[], scored_texts=[], logprobs=empty, mu=empty, sigma2=empty,
                           correct=empty.astype(bool), n_tokens=np.zeros(0, dtype=np.int64),
                           mask=empty.astype(bool))
    dev = torch.device(device) if device is not None else model_device(model)
    limit = max_length or context_length(model)
    ids, starts = encode_scored(tokenizer, texts, prompt_texts, limit,
                                split=resolve(fmt, tokenizer).kind == "chat")
    n_scored = [max(len(r) - s, 0) for r, s in zip(ids, starts, strict=True)]
    width = max(n_scored, default=0)
    n = len(texts)
    logprobs = np.zeros((n, width), dtype=np.float64)
    mu = np.zeros((n, width), dtype=np.float64)
    sigma2 = np.zeros((n, width), dtype=np.float64)
    correct = np.zeros((n, width), dtype=bool)
    Row = tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64], NDArray[np.bool_]]

    def compute(batch: list[int]) -> dict[int, Row]:
        out: dict[int, Row] = {}
        if max(len(ids[i]) for i in batch) < 2:
            return out
        input_ids, attention = pad_batch([ids[i] for i in batch], pad_id(tokenizer), "right")
        logits = model(input_ids=input_ids.to(dev), attention_mask=attention.to(dev)).logits
        logp = torch.log_softmax(logits[:, :-1].float(), dim=-1)
        targets = input_ids[:, 1:].to(dev)
        tok_lp = logp.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
        hit = logp.argmax(dim=-1) == targets
        p = logp.exp()
        m = (p * logp).sum(-1)
        var = (p * logp.square()).sum(-1) - m.square()
        tok_lp_np, hit_np = tok_lp.cpu().double().numpy(), hit.cpu().numpy()
        m_np, var_np = m.cpu().double().numpy(), var.cpu().double().numpy()
        for row, i in enumerate(batch):
            c = n_scored[i]
            if c == 0:
                continue
            # position j predicts token j + 1: scored tokens starts[i]..len-1
            sl = slice(starts[i] - 1, starts[i] - 1 + c)
            out[i] = (tok_lp_np[row, sl].copy(), m_np[row, sl].copy(), var_np[row, sl].copy(), hit_np[row, sl].copy())
        return out

    with evaluating(model):
        # split across the processes of a launch (a no-op for one process): sharding.py
        batches = length_sorted_batches([len(r) for r in ids], batch_size)
        rows = map_batches(batches, compute, [forward_cost(len(b), max(len(ids[i]) for i in b)) for b in batches])
    for i, (lp_i, mu_i, var_i, hit_i) in rows.items():
        c = n_scored[i]
        logprobs[i, :c], mu[i, :c], sigma2[i, :c], correct[i, :c] = lp_i, mu_i, var_i, hit_i
    counts = np.asarray(n_scored, dtype=np.int64)
    if prompt_texts is not None:
        scored = [t[len(p):] for t, p in zip(texts, prompt_texts, strict=True)]
    else:
        scored = list(texts)
    return TokenScores(texts=texts, scored_texts=scored, logprobs=logprobs, mu=mu, sigma2=sigma2,
                       correct=correct, n_tokens=counts, mask=np.arange(width)[None, :] < counts[:, None])


RecordPart = Literal["auto", "text", "qa", "both"]


def record_parts(records: Sequence[Record], part: RecordPart = "auto") -> list[tuple[int, str]]:
    """The items a dataset of records is scored on, as ``(record index, "text" | "qa")``.

    ``"text"``: each record's document; ``"qa"``: each QA record's answer given its question; ``"auto"``:
    the document when the record has one, else its QA answer; ``"both"``: a record's document and its
    answer, each an item (two for a record that has both: they are different item types, FRAMEWORK.md §7).
    Records without the requested part are skipped."""
    out: list[tuple[int, str]] = []
    for i, r in enumerate(records):
        has_text, has_qa = bool(r.text), r.is_qa
        if has_text and part in ("auto", "text", "both"):
            out.append((i, "text"))
        if has_qa and (part in ("qa", "both") or (part == "auto" and not has_text)):
            out.append((i, "qa"))
    return out


def record_texts(records: Sequence[Record], part: RecordPart = "auto", *, fmt: PromptFormat = PLAIN,
                 tokenizer: Any = None) -> tuple[list[str], list[str], list[int]]:
    """The ``(texts, prompt_texts, record_indices)`` the items of :func:`record_parts` are scored on: a
    document all of it; a QA answer given its question (:meth:`PromptFormat.qa_text`: ``format_qa`` text and
    ``format_prompt`` prompt in the plain format, the chat template's prompt and the answer with its
    end-of-turn token in the chat format, which needs ``tokenizer``). The record index of each item is
    returned because records without the part are skipped."""
    texts: list[str] = []
    prompts: list[str] = []
    index: list[int] = []
    for i, kind in record_parts(records, part):
        r = records[i]
        if kind == "text":
            assert r.text is not None
            texts.append(r.text)
            prompts.append("")
        else:
            assert r.question is not None and r.answer is not None
            prompt, text = fmt.qa_text(tokenizer, r.question, r.answer)
            texts.append(text)
            prompts.append(prompt)
        index.append(i)
    return texts, prompts, index


def score_records(model: Any, tokenizer: PreTrainedTokenizerBase, records: Sequence[Record], *,
                  part: RecordPart = "auto", batch_size: int = 32, fmt: PromptFormat | None = None) -> TokenScores:
    """:func:`score_texts` over :func:`record_texts` (the items of :func:`record_parts`)."""
    fmt = resolve(fmt, tokenizer)
    texts, prompts, _ = record_texts(records, part, fmt=fmt, tokenizer=tokenizer)
    return score_texts(model, tokenizer, texts, prompt_texts=prompts, batch_size=batch_size, fmt=fmt)


def score_qa(model: Any, tokenizer: PreTrainedTokenizerBase, questions: Sequence[str], answers: Sequence[str],
             *, batch_size: int = 32, fmt: PromptFormat | None = None) -> TokenScores:
    """Score answers given their questions in the model's QA format (answer tokens only; in the chat
    format the answer and the end-of-turn token)."""
    fmt = resolve(fmt, tokenizer)
    pairs = [fmt.qa_text(tokenizer, q, a) for q, a in zip(questions, answers, strict=True)]
    return score_texts(model, tokenizer, [t for _, t in pairs], prompt_texts=[p for p, _ in pairs],
                       batch_size=batch_size, fmt=fmt)
