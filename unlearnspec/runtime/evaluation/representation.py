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
no input contains the answer) when that text names the record's subject (a prefix such as "Born in"
names nobody, so no model could read the subject's attribute off it), and the feature is the last
token's hidden state — the state from which the model would produce the answer. A test input that is
also a training input is dropped (it would be scored against a label the probe was trained to give it
or to contradict).

Layers: the information can sit in a middle layer and be gone from the last (unlearning can change
the last layers most), so one probe is trained per layer at :data:`PROBE_LAYERS` evenly spaced depths of the
network, the last included (:func:`probe_layers`; the embeddings are not probed: they hold the input
only). Each model's result keeps every layer's predictions; the check compares models layer by layer
and decides on the worst layer with Bonferroni-adjusted intervals, so that looking at several layers
neither hides a leak in one nor finds one by chance (``checks.Evaluator.probe_gap``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
from numpy.typing import NDArray
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from transformers import PreTrainedTokenizerBase

from unlearnspec.catalog.metrics import REPRESENTATION_LAYERS
from unlearnspec.records import Record
from unlearnspec.runtime.evaluation.likelihood import (
    context_length,
    evaluating,
    length_sorted_batches,
    model_device,
    pad_batch,
    pad_id,
)
from unlearnspec.runtime.evaluation.probes import SUBJECT_ATTRIBUTE
from unlearnspec.runtime.evaluation.sharding import forward_cost, map_batches
from unlearnspec.runtime.prompting import PLAIN, PromptFormat, prompt_ids, resolve

Pooling = Literal["mean", "last"]


PROBE_LAYERS = REPRESENTATION_LAYERS
"""How many evenly spaced layers the representation probe reads (:func:`probe_layers`; defined in the catalog)."""


def probe_layers(n_layers: int, k: int = PROBE_LAYERS) -> tuple[int, ...]:
    """``k`` evenly spaced layers of a network of ``n_layers`` (``hidden_states`` indices, 1 = the first layer's
    output, ``n_layers`` = the last), the last always among them; fewer when the network has fewer layers."""
    if n_layers < 1:
        return (-1,)
    return tuple(sorted({max(1, round(n_layers * j / k)) for j in range(1, k + 1)}))


def model_layers(model: Any) -> int:
    """The number of transformer layers of ``model`` (its text config's ``num_hidden_layers``; 0 if unknown)."""
    config = getattr(model, "config", None)
    if config is not None and hasattr(config, "get_text_config"):
        config = config.get_text_config()
    return int(getattr(config, "num_hidden_layers", 0) or 0)


@torch.no_grad()
def hidden_features_by_layer(model: Any, tokenizer: PreTrainedTokenizerBase, texts: Sequence[str],
                             layers: Sequence[int], batch_size: int = 32,
                             pooling: Pooling = "mean") -> dict[int, NDArray[np.float64]]:
    """Pooled hidden states of each of ``layers`` (``output_hidden_states=True``), one row per text, from one pass.

    ``"mean"`` averages over the real (unpadded) tokens; ``"last"`` takes the last real token.
    Right padding with an attention mask, batched, eval mode."""
    ids = [prompt_ids(tokenizer, t)[: context_length(model)] for t in texts]  # a chat prompt: no second BOS
    dev = model_device(model)

    def compute(batch: list[int]) -> dict[int, dict[int, NDArray[np.float64]]]:
        input_ids, attention = pad_batch([ids[i] for i in batch], pad_id(tokenizer), "right")
        out = model(input_ids=input_ids.to(dev), attention_mask=attention.to(dev), output_hidden_states=True)
        found: dict[int, dict[int, NDArray[np.float64]]] = {i: {} for i in batch}
        for layer in layers:
            h = out.hidden_states[layer].float()
            m = attention.to(h.device).unsqueeze(-1).float()
            if pooling == "mean":
                pooled = (h * m).sum(1) / m.sum(1).clamp(min=1.0)
            else:
                last = attention.sum(1).clamp(min=1) - 1
                pooled = h[torch.arange(h.shape[0], device=h.device), last.to(h.device)]
            for row, i in enumerate(batch):
                found[i][layer] = pooled[row].cpu().double().numpy()
        return found

    with evaluating(model):
        # split across the processes of a launch (a no-op for one process): sharding.py
        batches = length_sorted_batches([len(r) for r in ids], batch_size)
        rows = map_batches(batches, compute, [forward_cost(len(b), max(len(ids[i]) for i in b)) for b in batches])
    if not rows:
        return {layer: np.zeros((0, 0)) for layer in layers}
    return {layer: np.stack([rows[i][layer] for i in range(len(ids))]) for layer in layers}


def hidden_features(model: Any, tokenizer: PreTrainedTokenizerBase, texts: Sequence[str], layer: int = -1,
                    batch_size: int = 32, pooling: Pooling = "mean") -> NDArray[np.float64]:
    """Pooled hidden states of one ``layer``, one row per text (:func:`hidden_features_by_layer`)."""
    return hidden_features_by_layer(model, tokenizer, texts, [layer], batch_size=batch_size, pooling=pooling)[layer]


@dataclass(frozen=True)
class ProbeResult:
    """Accuracy of the linear probes on the test (forget) items, with its chance level: ``accuracy`` and
    ``predictions`` at ``layer``, the layer where the probe reads this model best; ``by_layer`` every probed
    layer's predictions (the check compares models layer by layer)."""

    accuracy: float
    chance: float  # 1 / number of distinct labels (train and test)
    n_train: int
    n_test: int
    n_classes: int
    unseen_test_labels: int  # test items whose label never occurs in training (always counted wrong)
    predictions: list[str]
    labels: list[str]
    layer: int | None = None
    by_layer: dict[int, list[str]] = field(default_factory=dict)
    dropped_in_training: int = 0  # test inputs left out because the same text is a training input

    @property
    def accuracy_by_layer(self) -> dict[int, float]:
        return {k: float(np.mean([p == y for p, y in zip(v, self.labels, strict=True)])) if v else math.nan
                for k, v in self.by_layer.items()}


ProbeInput = Literal["auto", "question", "text"]


def _norm(text: str) -> str:
    return " ".join("".join(c.lower() if c.isalnum() else " " for c in text).split())


def _cloze_prefix(text: str, value: str) -> str | None:
    """The document up to the first mention of ``value`` ("Jane Doe grew up in"), or None."""
    at = text.lower().find(value.lower())
    prefix = text[:at].rstrip() if at > 0 else ""
    return prefix or None


def _names(text: str, names: Sequence[str]) -> bool:
    """Whether ``text`` names one of ``names`` (whole words, case and punctuation ignored)."""
    t = f" {_norm(text)} "
    return any(n and f" {n} " in t for n in map(_norm, names))


def probe_texts(records: Sequence[Record], attribute: str, source: ProbeInput = "auto", *, fmt: PromptFormat = PLAIN,
                tokenizer: Any = None, subjects: Sequence[str] = ()) -> tuple[list[str], list[str]]:
    """The ``(texts, labels)`` of the records whose input leads to the attribute's value.

    A record labels *all* of a person's attributes, but only some of its inputs are about this one:
    "Where was Jane Doe born?" leads to her birth city, "What does she do?" does not. So:

    * ``"question"``: the QA prompt, for records whose gold answer states the value;
    * ``"text"``: the whole document (the probe then also reads the value from the input itself —
      only the reference model's accuracy controls for that);
    * ``"auto"`` (default): the QA prompt as above, and for documents without a question the *cloze
      prefix* — the document up to the first mention of the value — so every input ends where the
      model would have to produce the value and none contains it; a prefix is kept only if it names the
      record's subject — its ``person`` attribute, or one of ``subjects`` (the target's name and aliases
      for the forget records) — since "Born in" or "In an interview with the" say nothing of whose
      attribute follows.

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
            if prefix is not None and _names(prefix, [r.attributes.get(SUBJECT_ATTRIBUTE, ""), *subjects]):
                texts.append(prefix)
                labels.append(value)
    return texts, labels


def representation_probe(model: Any, tokenizer: PreTrainedTokenizerBase, train_records: Sequence[Record],
                         test_records: Sequence[Record], attribute: str, *, layers: Sequence[int] | None = None,
                         pooling: Pooling = "last", source: ProbeInput = "auto", batch_size: int = 32,
                         random_state: int = 0, max_iter: int = 2000, fmt: PromptFormat | None = None,
                         subjects: Sequence[str] = ()) -> ProbeResult:
    """Train a linear probe per layer on ``train_records`` (retain) and test it on ``test_records`` (forget).

    ``layers`` defaults to :func:`probe_layers` of the model; ``subjects`` names the test records' subject (the
    target's name and aliases) for their cloze prefixes. Test inputs whose text is also a training input are
    dropped. Test labels never seen in training cannot be predicted and count as wrong; with a single training
    label the probe predicts that label. NaN accuracy when there are no test items."""
    fmt = resolve(fmt, tokenizer)
    train_texts, train_labels = probe_texts(train_records, attribute, source, fmt=fmt, tokenizer=tokenizer)
    test_texts, test_labels = probe_texts(test_records, attribute, source, fmt=fmt, tokenizer=tokenizer,
                                          subjects=subjects)
    trained = set(train_texts)
    kept = [(t, y) for t, y in zip(test_texts, test_labels, strict=True) if t not in trained]
    dropped = len(test_texts) - len(kept)
    test_texts, test_labels = [t for t, _ in kept], [y for _, y in kept]
    classes = sorted(set(train_labels) | set(test_labels))
    chance = 1.0 / len(classes) if classes else math.nan
    seen = set(train_labels)
    unseen = sum(label not in seen for label in test_labels)
    if not test_texts or not train_texts:
        return ProbeResult(math.nan, chance, len(train_texts), len(test_texts), len(classes), unseen, [], test_labels,
                           dropped_in_training=dropped)
    chosen = tuple(layers) if layers else probe_layers(model_layers(model))
    feats = hidden_features_by_layer(model, tokenizer, train_texts + test_texts, chosen, batch_size=batch_size,
                                     pooling=pooling)
    by_layer: dict[int, list[str]] = {}
    for layer in chosen:
        x_train, x_test = feats[layer][: len(train_texts)], feats[layer][len(train_texts):]
        if len(seen) == 1:
            by_layer[layer] = [train_labels[0]] * len(test_texts)
            continue
        clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=max_iter, random_state=random_state))
        clf.fit(x_train, train_labels)
        by_layer[layer] = [str(p) for p in clf.predict(x_test)]
    res = ProbeResult(math.nan, chance, len(train_texts), len(test_texts), len(classes), unseen, [], test_labels,
                      by_layer=by_layer, dropped_in_training=dropped)
    acc = res.accuracy_by_layer
    best = max(chosen, key=lambda k: (acc[k], k))  # the most informative layer; a tie goes to the deeper
    return dataclasses.replace(res, accuracy=acc[best], predictions=by_layer[best], layer=best)
