"""Representation-level evidence: is the "forgotten" attribute still linearly readable inside?

Why: output metrics cannot tell removal from suppression. A model can stop *saying* a fact while
its hidden states still encode it; linear probes on hidden features recover information that
output metrics call gone (Gao et al., "An Illusion of Unlearning?", arXiv:2604.08271; Ong et al.,
"Erased, but Not Gone", arXiv:2606.25001). Both use the retrained model as the reference for true
forgetting, and so should a report: run :func:`representation_probe` on the original, the unlearned
and the reference model with the same data — a removal claim needs the unlearned model's accuracy
near the reference's, not near the original's. The absolute accuracy alone means little: a probe
can read an attribute from the input itself, and the reference controls for that.

The probe is a logistic regression (scikit-learn, fixed ``random_state``) trained to predict
``record.attributes[attribute]`` from retain items' features and tested on forget items: it can
only succeed on the forget items if the model places them where it places retain items with the
same attribute value, i.e. if it still knows the fact. By default the inputs are the questions
whose answer is the attribute and, for documents, the text up to the attribute's first mention (so
no input contains the answer), and the feature is the last token's hidden state — the state from
which the model would produce the answer.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from numpy.typing import NDArray
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from transformers import PreTrainedTokenizerBase

from unlearnspec.records import Record
from unlearnspec.runtime.evaluation.likelihood import (
    context_length,
    length_sorted_batches,
    model_device,
    pad_batch,
    pad_id,
)
from unlearnspec.runtime.evaluation.sharding import forward_cost, map_batches
from unlearnspec.runtime.prompting import PLAIN, PromptFormat, prompt_ids, resolve

Pooling = Literal["mean", "last"]


@torch.no_grad()
def hidden_features(model: Any, tokenizer: PreTrainedTokenizerBase, texts: Sequence[str], layer: int = -1,
                    batch_size: int = 32, pooling: Pooling = "mean") -> NDArray[np.float64]:
    """Pooled hidden states of ``layer`` (``output_hidden_states=True``), one row per text.

    ``"mean"`` averages over the real (unpadded) tokens; ``"last"`` takes the last real token.
    Right padding with an attention mask, batched, eval mode."""
    ids = [prompt_ids(tokenizer, t)[: context_length(model)] for t in texts]  # a chat prompt: no second BOS
    dev = model_device(model)

    def compute(batch: list[int]) -> dict[int, NDArray[np.float64]]:
        input_ids, attention = pad_batch([ids[i] for i in batch], pad_id(tokenizer), "right")
        out = model(input_ids=input_ids.to(dev), attention_mask=attention.to(dev), output_hidden_states=True)
        h = out.hidden_states[layer].float()
        m = attention.to(h.device).unsqueeze(-1).float()
        if pooling == "mean":
            pooled = (h * m).sum(1) / m.sum(1).clamp(min=1.0)
        else:
            last = attention.sum(1).clamp(min=1) - 1
            pooled = h[torch.arange(h.shape[0], device=h.device), last.to(h.device)]
        return {i: pooled[row].cpu().double().numpy() for row, i in enumerate(batch)}

    was_training = bool(getattr(model, "training", False))
    model.eval()
    try:
        # split across the processes of a launch (a no-op for one process): sharding.py
        batches = length_sorted_batches([len(r) for r in ids], batch_size)
        rows = map_batches(batches, compute, [forward_cost(len(b), max(len(ids[i]) for i in b)) for b in batches])
    finally:
        if was_training:
            model.train()
    if not rows:
        return np.zeros((0, 0))
    return np.stack([rows[i] for i in range(len(ids))])


@dataclass(frozen=True)
class ProbeResult:
    """Accuracy of the linear probe on the test (forget) items, with its chance level."""

    accuracy: float
    chance: float  # 1 / number of distinct labels (train and test)
    n_train: int
    n_test: int
    n_classes: int
    unseen_test_labels: int  # test items whose label never occurs in training (always counted wrong)
    predictions: list[str]
    labels: list[str]


ProbeInput = Literal["auto", "question", "text"]


def _norm(text: str) -> str:
    return " ".join("".join(c.lower() if c.isalnum() else " " for c in text).split())


def _cloze_prefix(text: str, value: str) -> str | None:
    """The document up to the first mention of ``value`` ("Jane Doe grew up in"), or None."""
    at = text.lower().find(value.lower())
    prefix = text[:at].rstrip() if at > 0 else ""
    return prefix or None


def probe_texts(records: Sequence[Record], attribute: str, source: ProbeInput = "auto", *, fmt: PromptFormat = PLAIN,
                tokenizer: Any = None) -> tuple[list[str], list[str]]:
    """The ``(texts, labels)`` of the records whose input leads to the attribute's value.

    A record labels *all* of a person's attributes, but only some of its inputs are about this one:
    "Where was Jane Doe born?" leads to her birth city, "What does she do?" does not. So:

    * ``"question"``: the QA prompt, for records whose gold answer states the value;
    * ``"text"``: the whole document (the probe then also reads the value from the input itself —
      only the reference model's accuracy controls for that);
    * ``"auto"`` (default): the QA prompt as above, and for documents without a question the *cloze
      prefix* — the document up to the first mention of the value — so every input ends where the
      model would have to produce the value and none contains it.

    The QA prompt is in ``fmt`` (the chat template's prompt up to the assistant's turn for a chat model)."""
    texts: list[str] = []
    labels: list[str] = []
    for r in records:
        value = r.attributes.get(attribute)
        if value is None:
            continue
        if r.question is not None and source in ("auto", "question"):
            if r.answer is not None and f" {_norm(value)} " in f" {_norm(r.answer)} ":
                texts.append(fmt.prompt(tokenizer, r.question))
                labels.append(value)
            continue
        if not r.text:
            continue
        if source == "text":
            texts.append(r.text)
            labels.append(value)
        elif source == "auto":
            prefix = _cloze_prefix(r.text, value)
            if prefix is not None:
                texts.append(prefix)
                labels.append(value)
    return texts, labels


def representation_probe(model: Any, tokenizer: PreTrainedTokenizerBase, train_records: Sequence[Record],
                         test_records: Sequence[Record], attribute: str, *, layer: int = -1,
                         pooling: Pooling = "last", source: ProbeInput = "auto", batch_size: int = 32,
                         random_state: int = 0, max_iter: int = 2000, fmt: PromptFormat | None = None) -> ProbeResult:
    """Train a linear probe on ``train_records`` (retain) and test it on ``test_records`` (forget).

    Test labels never seen in training cannot be predicted and count as wrong; with a single
    training label the probe predicts that label. NaN accuracy when there are no test items."""
    fmt = resolve(fmt, tokenizer)
    train_texts, train_labels = probe_texts(train_records, attribute, source, fmt=fmt, tokenizer=tokenizer)
    test_texts, test_labels = probe_texts(test_records, attribute, source, fmt=fmt, tokenizer=tokenizer)
    classes = sorted(set(train_labels) | set(test_labels))
    chance = 1.0 / len(classes) if classes else math.nan
    seen = set(train_labels)
    unseen = sum(label not in seen for label in test_labels)
    if not test_texts or not train_texts:
        return ProbeResult(math.nan, chance, len(train_texts), len(test_texts), len(classes), unseen, [], test_labels)
    feats = hidden_features(model, tokenizer, train_texts + test_texts, layer=layer, batch_size=batch_size,
                            pooling=pooling)
    x_train, x_test = feats[: len(train_texts)], feats[len(train_texts):]
    if len(seen) == 1:
        preds = [train_labels[0]] * len(test_texts)
    else:
        clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=max_iter, random_state=random_state))
        clf.fit(x_train, train_labels)
        preds = [str(p) for p in clf.predict(x_test)]
    accuracy = float(np.mean([p == y for p, y in zip(preds, test_labels, strict=True)]))
    return ProbeResult(accuracy, chance, len(train_texts), len(test_texts), len(classes), unseen, preds, test_labels)
