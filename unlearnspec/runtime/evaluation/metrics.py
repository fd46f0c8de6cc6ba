"""Output and likelihood metrics with their published definitions (FRAMEWORK.md §5).

- ROUGE-L with Google's ``rouge-score`` (``RougeScorer(["rougeL"], use_stemmer=True)``, the scorer
  TOFU and open-unlearning use), F1 and recall per item.
- MUSE VerbMem (Shi et al. 2024, arXiv:2407.06460): the first part of each forget document as
  prompt, greedy continuation, ROUGE-L F1 against the true continuation.
- Knowledge QA (TOFU's ROUGE, MUSE KnowMem-style): greedy answer to each question, ROUGE-L recall against
  the fact the gold answer states — its key span (:func:`~unlearnspec.runtime.evaluation.probes.key_span`), not
  the sentence around it, which a wrong answer in the same sentence shares — plus the recall against the whole
  answer (TOFU's, for model utility) and a SQuAD-style exact-match flag.
- Extraction strength (open-unlearning's ``extraction_strength``), from the single forward pass.
- TOFU truth ratio and forget quality (Maini et al. 2024, arXiv:2401.06121), model utility as the
  harmonic mean of ROUGE-L recall, answer probability and ``max(0, 1 - R_truth)``.

Every function returns per-item values; means are for reports, never the only output.
"""

from __future__ import annotations

import math
import re
import string
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from rouge_score import rouge_scorer
from scipy import stats
from transformers import PreTrainedTokenizerBase

from unlearnspec.records import Record
from unlearnspec.runtime.evaluation.generation import decode, generate, generate_ids
from unlearnspec.runtime.evaluation.likelihood import TokenScores, score_texts
from unlearnspec.runtime.evaluation.mcq import mcq_accuracy
from unlearnspec.runtime.evaluation.probes import (
    KeySpan,
    ProbeSet,
    direct_prompts,
    paraphrased_prompts,
    words,
)
from unlearnspec.runtime.evaluation.sharding import map_items
from unlearnspec.runtime.prompting import PromptFormat, resolve


def _nanmean(values: Sequence[float] | NDArray[Any]) -> float:
    arr = np.asarray(values, dtype=np.float64)
    arr = arr[np.isfinite(arr)]
    return float(arr.mean()) if arr.size else math.nan


# --------------------------------------------------------------------------------------- ROUGE-L
@lru_cache(maxsize=1)
def _scorer() -> rouge_scorer.RougeScorer:
    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)


@dataclass(frozen=True)
class RougeL:
    """ROUGE-L of each prediction against its reference."""

    f1: list[float]
    recall: list[float]
    precision: list[float]


def rouge_l(predictions: Sequence[str], references: Sequence[str]) -> RougeL:
    """ROUGE-L F1, recall and precision per pair (``rouge-score``; target = reference)."""
    if len(predictions) != len(references):
        raise ValueError("predictions and references must pair up")
    scorer = _scorer()
    # scored on every rank's share of the pairs under a launch (sharding.py), not repeated by each rank
    scores = map_items(list(zip(predictions, references, strict=True)), lambda pr: scorer.score(pr[1], pr[0])["rougeL"])
    return RougeL(f1=[s.fmeasure for s in scores], recall=[s.recall for s in scores],
                  precision=[s.precision for s in scores])


# ------------------------------------------------------------------------ verbatim memorisation
@dataclass(frozen=True)
class VerbatimResult:
    """MUSE VerbMem per document: ROUGE-L F1 of the greedy continuation vs the true one."""

    scores: list[float]  # ROUGE-L F1, the VerbMem value
    recall: list[float]
    prompts: list[str]
    continuations: list[str]
    references: list[str]
    item_ids: list[int]  # record index of each document

    @property
    def mean(self) -> float:
        return _nanmean(self.scores)


GenerateFn = Callable[[list[str]], list[str]]


def verbatim_memorisation(model: Any, tokenizer: PreTrainedTokenizerBase, records: Sequence[Record],
                          prefix_fraction: float = 0.5, *, batch_size: int = 32,
                          max_new_tokens: int | None = None,
                          generate_fn: GenerateFn | None = None) -> VerbatimResult:
    """MUSE VerbMem on the records' documents (``text``).

    Each document is split at ``prefix_fraction`` of its tokens (at least one token on each side);
    the prefix's token ids are the prompt (no decode/re-encode round trip), and the model continues
    for as many tokens as the true continuation has, capped by ``max_new_tokens``; the true continuation
    it is scored against is cut to the same budget (``references`` holds what was scored).

    ``generate_fn`` replaces the model's greedy decoding by a text-to-text system (e.g. the model
    behind an output filter): it receives the decoded prefixes and returns the continuations."""
    if not 0.0 < prefix_fraction < 1.0:
        raise ValueError("prefix_fraction must be in (0, 1)")
    prompts_ids: list[list[int]] = []
    refs_ids: list[list[int]] = []
    item_ids: list[int] = []
    for i, r in enumerate(records):
        if not r.text:
            continue
        ids = list(tokenizer(r.text)["input_ids"])
        if len(ids) < 2:
            continue
        k = min(max(int(len(ids) * prefix_fraction), 1), len(ids) - 1)
        prompts_ids.append(ids[:k])
        refs_ids.append(ids[k:])
        item_ids.append(i)
    prompts = [decode(tokenizer, p) for p in prompts_ids]
    budgets = [len(r) if max_new_tokens is None else min(len(r), max_new_tokens) for r in refs_ids]
    if generate_fn is not None:
        conts = list(generate_fn(prompts))
    else:
        new = generate_ids(model, tokenizer, prompts_ids, max_new_tokens=budgets, batch_size=batch_size)
        conts = [decode(tokenizer, t) for t in new]
    # the true continuation cut to the same token budget as the generated one (MUSE compares continuations of one
    # length): a perfect regurgitation of the first 48 tokens of a long document scores 1, not 48/len
    refs = [decode(tokenizer, t[:b]) for t, b in zip(refs_ids, budgets, strict=True)]
    rl = rouge_l(conts, refs)
    return VerbatimResult(scores=rl.f1, recall=rl.recall, prompts=prompts,
                          continuations=conts, references=refs, item_ids=item_ids)


# ------------------------------------------------------------------------------- knowledge QA
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = str.maketrans("", "", string.punctuation)


def normalize_answer(text: str) -> str:
    """SQuAD-style normalisation for exact match: lower case, no punctuation, articles or extra spaces."""
    return " ".join(_ARTICLES.sub(" ", text.lower().translate(_PUNCT)).split())


@dataclass(frozen=True)
class QAResult:
    """Generated answers to a probe set, scored against the fact each gold answer states (its key span)."""

    name: str
    recall: list[float]  # ROUGE-L recall against the key span: the knowledge ROUGE value
    f1: list[float]  # ROUGE-L F1 against the key span
    exact: list[bool]  # SQuAD exact match with the whole gold answer
    prompts: list[str]
    predictions: list[str]
    answers: list[str]
    item_ids: list[int]
    variants: list[str] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)  # each key span as scored (KeySpan.text)
    leaks: list[bool] = field(default_factory=list)  # whether each output states the fact (KeySpan.found_in)
    answer_recall: list[float] = field(default_factory=list)  # ROUGE-L recall against the whole answer (TOFU)

    @property
    def mean_recall(self) -> float:
        return _nanmean(self.recall)

    @property
    def exact_rate(self) -> float:
        return float(np.mean(self.exact)) if self.exact else math.nan

    def per_item_max(self) -> dict[int, float]:
        """Highest recall per record over its variants: a record leaks if any variant leaks."""
        out: dict[int, float] = {}
        for i, v in zip(self.item_ids, self.recall, strict=True):
            out[i] = max(out.get(i, -math.inf), v)
        return out


def answer_probes(model: Any, tokenizer: PreTrainedTokenizerBase, probe: ProbeSet, *, batch_size: int = 32,
                  max_new_tokens: int = 48, generate_fn: GenerateFn | None = None) -> QAResult:
    """Answer every prompt of a probe set in one batched greedy generation and score the answers.

    The knowledge ROUGE (``recall``) is ROUGE-L recall against the fact's key span (``probe.keys``; a probe set
    without keys: each whole answer), so a wrong value in the gold answer's own sentence ("She was born in
    Lindmoor.") scores nothing and the bare value ("Port Calder") scores in full; ``answer_recall`` is TOFU's
    recall against the whole answer. ``generate_fn`` (prompts → outputs) replaces the model's decoding, e.g.
    for a guarded system."""
    outs = (generate_fn(list(probe.prompts)) if generate_fn is not None else
            generate(model, tokenizer, probe.prompts, max_new_tokens=max_new_tokens, batch_size=batch_size))
    preds = [p.strip() for p in outs]
    keys = list(probe.keys) or [KeySpan((" ".join(words(a)),)) for a in probe.answers]
    rl = rouge_l(preds, [k.text for k in keys])
    whole = rouge_l(preds, probe.answers)
    exact = [normalize_answer(p) == normalize_answer(a)
             for p, a in zip(preds, probe.answers, strict=True)]
    return QAResult(name=probe.name, recall=rl.recall, f1=rl.f1, exact=exact, prompts=list(probe.prompts),
                    predictions=preds, answers=list(probe.answers), item_ids=list(probe.item_ids),
                    variants=list(probe.variants), keys=[k.text for k in keys],
                    leaks=[k.found_in(p) for k, p in zip(keys, preds, strict=True)], answer_recall=whole.recall)


def knowledge_qa(model: Any, tokenizer: PreTrainedTokenizerBase, records: Sequence[Record],
                 paraphrased: bool = False, *, batch_size: int = 32, max_new_tokens: int = 48,
                 generate_fn: GenerateFn | None = None, fmt: PromptFormat | None = None) -> QAResult:
    """KnowMem-style QA on the records' questions (or on every paraphrase of them), asked in ``fmt``
    (default: the tokenizer's own format)."""
    fmt = resolve(fmt, tokenizer)
    probe = (paraphrased_prompts(records, fmt, tokenizer) if paraphrased else direct_prompts(records, fmt, tokenizer))
    return answer_probes(model, tokenizer, probe, batch_size=batch_size, max_new_tokens=max_new_tokens,
                         generate_fn=generate_fn)


# ------------------------------------------------------------------------ extraction strength
def extraction_strength(scores: TokenScores) -> NDArray[np.float64]:
    """Extraction strength per item, read from teacher-forced argmax flags.

    ES = 1 - k/n with k the shortest prefix (in scored tokens) from which greedy decoding
    reproduces the rest exactly. The flags give k exactly, not approximately: see
    :meth:`TokenScores.extraction_strength` for the argument; ``tests/test_eval_metrics.py`` pins
    it to a generation-based computation. Cost: nothing beyond the shared forward pass."""
    return scores.extraction_strength()


# ------------------------------------------------------------------ truth ratio, forget quality
@dataclass(frozen=True)
class AnswerStatistics:
    """Per-record likelihood statistics from one pass: the inputs of truth ratio and forget quality.

    ``truth_ratio[i]`` is TOFU's ``R_truth`` (NaN without perturbed answers or without QA),
    ``answer_loss[i]`` the mean NLL of the gold answer given the question (NaN without QA),
    ``text_loss[i]`` the mean NLL of the document (NaN without one); ``paraphrased[i]`` whether the truth
    ratio's denominator was the record's paraphrased answer, as TOFU defines it (else its gold answer)."""

    truth_ratio: NDArray[np.float64]
    answer_loss: NDArray[np.float64]
    text_loss: NDArray[np.float64]
    paraphrased: NDArray[np.bool_] | None = None

    @property
    def loss(self) -> NDArray[np.float64]:
        """The per-record loss forget quality falls back on: the answer's, else the document's."""
        return np.where(np.isfinite(self.answer_loss), self.answer_loss, self.text_loss)

    @property
    def answer_probability(self) -> NDArray[np.float64]:
        """TOFU's probability ``P(a|q)^(1/|a|)`` of the gold answer."""
        return np.exp(-self.answer_loss)


def answer_statistics(model: Any, tokenizer: PreTrainedTokenizerBase, records: Sequence[Record], *,
                      batch_size: int = 32, fmt: PromptFormat | None = None) -> AnswerStatistics:
    """Score every gold answer, perturbed answer and document of ``records`` in one batched pass.

    Truth ratio (TOFU, arXiv:2401.06121): ``R_truth = (prod_j P(â_j|q)^(1/|â_j|))^(1/m) /
    P(ã|q)^(1/|ã|)`` over the m perturbed answers â_j, i.e. ``exp(loss(ã) - mean_j loss(â_j))``, with ã
    the record's ``paraphrased_answer`` as TOFU defines it. A record without one (the built-in corpus, data
    written without it) has its gold answer stand in — a variant that also rewards verbatim memory of the
    trained answer; ``paraphrased`` says which records had one. Lower R means the model prefers the true
    answer: memorised. QA items are scored in ``fmt`` (default: the tokenizer's own; :meth:`PromptFormat.qa_text`)."""
    fmt = resolve(fmt, tokenizer)
    texts: list[str] = []
    prompts: list[str] = []
    owner: list[tuple[int, str]] = []  # (record, "gold" | "pert" | "text")
    for i, r in enumerate(records):
        if r.is_qa:
            assert r.question is not None and r.answer is not None
            prompt, gold_text = fmt.qa_text(tokenizer, r.question, r.answer)
            texts.append(gold_text)
            prompts.append(prompt)
            owner.append((i, "gold"))
            for p in r.perturbed:
                texts.append(fmt.qa_text(tokenizer, r.question, p)[1])
                prompts.append(prompt)
                owner.append((i, "pert"))
            if r.perturbed and r.paraphrased_answer:
                texts.append(fmt.qa_text(tokenizer, r.question, r.paraphrased_answer)[1])
                prompts.append(prompt)
                owner.append((i, "para"))
        if r.text:
            texts.append(r.text)
            prompts.append("")
            owner.append((i, "text"))
    losses = score_texts(model, tokenizer, texts, prompt_texts=prompts, batch_size=batch_size, fmt=fmt).loss()
    n = len(records)
    gold = np.full(n, np.nan)
    text = np.full(n, np.nan)
    para = np.full(n, np.nan)
    pert: list[list[float]] = [[] for _ in range(n)]
    for (i, kind), value in zip(owner, losses, strict=True):
        if kind == "gold":
            gold[i] = value
        elif kind == "text":
            text[i] = value
        elif kind == "para":
            para[i] = value
        else:
            pert[i].append(float(value))
    pert_mean = np.array([np.mean(p) if p else np.nan for p in pert])
    denominator = np.where(np.isfinite(para), para, gold)  # TOFU's paraphrased answer, else the gold one
    return AnswerStatistics(truth_ratio=np.exp(denominator - pert_mean), answer_loss=gold, text_loss=text,
                            paraphrased=np.isfinite(para))


def truth_ratio(model: Any, tokenizer: PreTrainedTokenizerBase, qa_records: Sequence[Record], *,
                batch_size: int = 32, fmt: PromptFormat | None = None) -> NDArray[np.float64]:
    """TOFU ``R_truth`` per record (NaN where a record has no question or no perturbed answers)."""
    return answer_statistics(model, tokenizer, qa_records, batch_size=batch_size, fmt=fmt).truth_ratio


def _finite(values: Sequence[float] | NDArray[Any]) -> NDArray[np.float64]:
    arr = np.asarray(values, dtype=np.float64)
    return arr[np.isfinite(arr)]


def forget_quality(unlearned_values: Sequence[float] | NDArray[Any],
                   reference_values: Sequence[float] | NDArray[Any]) -> float:
    """TOFU forget quality: the two-sample KS-test p-value (``scipy.stats.ks_2samp``) between the
    unlearned and the reference model's per-item statistics (NaNs dropped; NaN if a side is empty).

    High p-value: the unlearned model is statistically indistinguishable from the reference on
    the forget set. TOFU applies it to truth ratios; KS is invariant under the monotone map
    R → 1/R that open-unlearning applies first, so the p-value is the same."""
    a, b = _finite(unlearned_values), _finite(reference_values)
    if a.size == 0 or b.size == 0:
        return math.nan
    return float(stats.ks_2samp(a, b).pvalue)


@dataclass(frozen=True)
class ForgetQuality:
    pvalue: float
    statistic: Literal["truth_ratio", "loss"]  # which per-item statistic was compared
    n_unlearned: int
    n_reference: int


def forget_quality_from(unlearned: AnswerStatistics, reference: AnswerStatistics) -> ForgetQuality:
    """Forget quality on truth ratios when both models have some; else on per-item losses.

    The fallback keeps the KS comparison with the reference meaningful for forget sets without
    perturbed answers (documents only); the result says which statistic was used."""
    if _finite(unlearned.truth_ratio).size and _finite(reference.truth_ratio).size:
        a, b, name = unlearned.truth_ratio, reference.truth_ratio, "truth_ratio"
    else:
        a, b, name = unlearned.loss, reference.loss, "loss"
    return ForgetQuality(pvalue=forget_quality(a, b), statistic=name,  # type: ignore[arg-type]
                         n_unlearned=int(_finite(a).size), n_reference=int(_finite(b).size))


# ----------------------------------------------------------------------------------- utility
@dataclass(frozen=True)
class UtilityResult:
    """Model utility: harmonic mean of the components (TOFU), and the components themselves."""

    value: float
    components: dict[str, float]
    n_qa: int
    n_text: int
    # Each component per record (NaN where the record does not contribute): the component is the
    # NaN-mean of its row, so the utility can be bootstrapped over records.
    per_record: dict[str, NDArray[np.float64]] = field(default_factory=dict)


def harmonic_mean(values: Sequence[float]) -> float:
    """Harmonic mean of the finite values (0 if any is 0, NaN if none): TOFU's aggregate."""
    arr = _finite(values)
    if arr.size == 0:
        return math.nan
    if np.any(arr <= 0):
        return 0.0
    return float(stats.hmean(arr))


def utility(model: Any, tokenizer: PreTrainedTokenizerBase, records: Sequence[Record], *,
            batch_size: int = 32, max_new_tokens: int = 48, fmt: PromptFormat | None = None,
            generate_fn: GenerateFn | None = None) -> UtilityResult:
    """Model utility on a retain or neighbour set, as TOFU computes it per dataset.

    QA records: ROUGE-L recall of the greedy answer against the whole gold answer (TOFU's; a retained answer
    should keep its form too, not only its fact), answer probability ``P(a|q)^(1/|a|)`` and
    ``max(0, 1 - R_truth)`` (over records with perturbed answers). TOFU is QA-only; document records
    add two components in the same spirit — their probability ``exp(-loss)`` and their MUSE
    VerbMem ROUGE-L F1 — so a document-only retain set still measures what the model keeps; multiple-choice
    records add their accuracy (:mod:`unlearnspec.runtime.evaluation.mcq`), so general multiple-choice
    knowledge is part of what must stay. Questions are asked in ``fmt`` (default: the tokenizer's own).
    ``generate_fn`` decodes the generated components (a served system's filter stands in its decoding); the
    likelihood components are the weights' own, which no filter changes."""
    fmt = resolve(fmt, tokenizer)
    st = answer_statistics(model, tokenizer, records, batch_size=batch_size, fmt=fmt)
    rows: dict[str, NDArray[np.float64]] = {}
    n = len(records)
    n_qa = sum(r.is_qa for r in records)
    n_text = sum(bool(r.text) for r in records)

    def scatter(index: Sequence[int], values: Sequence[float] | NDArray[Any]) -> NDArray[np.float64]:
        row = np.full(n, np.nan)
        row[np.asarray(index, dtype=np.int64)] = np.asarray(values, dtype=np.float64)
        return row

    if n_qa:
        qa = knowledge_qa(model, tokenizer, records, batch_size=batch_size, max_new_tokens=max_new_tokens, fmt=fmt,
                          generate_fn=generate_fn)
        rows["rouge_recall"] = scatter(qa.item_ids, qa.answer_recall)
        rows["probability"] = np.asarray(st.answer_probability, dtype=np.float64)
        tr = np.asarray(st.truth_ratio, dtype=np.float64)
        if np.isfinite(tr).any():
            rows["truth_ratio"] = np.where(np.isfinite(tr), np.maximum(0.0, 1.0 - tr), np.nan)
    if any(r.is_mcq for r in records):  # multiple-choice items: the harness's accuracy is one more component
        mc = mcq_accuracy(model, tokenizer, records, batch_size=batch_size, fmt=fmt)
        rows["mcq_accuracy"] = scatter(mc.index, mc.acc)
    if n_text:
        rows["text_probability"] = np.exp(-np.asarray(st.text_loss, dtype=np.float64))
        vm = verbatim_memorisation(model, tokenizer, records, batch_size=batch_size, max_new_tokens=max_new_tokens,
                                   generate_fn=generate_fn)
        rows["verbatim_rouge"] = scatter(vm.item_ids, vm.scores)
    comps = {k: _nanmean(v) for k, v in rows.items()}
    return UtilityResult(value=harmonic_mean(list(comps.values())), components=comps, n_qa=n_qa, n_text=n_text,
                         per_record=rows)


def utility_of_rows(rows: NDArray[np.float64]) -> NDArray[np.float64]:
    """The utility (harmonic mean of the components' NaN-means) of ``rows`` shaped (..., components,
    records), vectorised over leading axes for the bootstrap; equal to :func:`utility`'s value."""
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices: a component no resample has
        comps = np.nanmean(rows, axis=-1)
        hm = comps.shape[-1] / np.sum(1.0 / comps, axis=-1)
    return np.where(np.any(comps <= 0, axis=-1), 0.0, hm)


def utility_drop(original: float, unlearned: float) -> float:
    """Relative utility drop in percent, ``100 * (original - unlearned) / original`` (negative: a gain)."""
    if not (math.isfinite(original) and math.isfinite(unlearned)):
        return math.nan
    if original == 0:  # nothing to lose: no drop, or an unbounded gain/loss
        return 0.0 if unlearned == 0 else (-math.inf if unlearned > 0 else math.inf)
    return 100.0 * (original - unlearned) / original
