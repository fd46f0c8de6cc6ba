"""Multiple-choice accuracy in the lm-evaluation-harness convention.

Each choice is scored by its log-likelihood as a continuation of the question: the sum of the log
probabilities of the choice's tokens after the prompt, in the project's QA format
(``Question: {question}\\nAnswer:`` then `` {choice}``), all choices of all items in one batched pass
(:func:`unlearnspec.runtime.evaluation.likelihood.score_qa`). An item is answered correctly when the
correct choice has the highest log-likelihood (``acc``), or the highest log-likelihood divided by
the choice's length in characters (``acc_norm``, the harness's length normalisation, which removes
the advantage short choices have). Ties go to the first choice, as ``numpy.argmax`` does in the harness.

A chat model (a tokenizer with a chat template, :mod:`unlearnspec.runtime.prompting`) is asked the
question in its user turn, and each choice is scored as the assistant's whole answer: the choice's
tokens and the end-of-turn token after the template's generation prompt. Scoring the end of turn too
asks "is this choice the complete answer", as a chat model would give it; ``acc_norm`` still divides by
the choice's length in characters, without the end-of-turn token.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from transformers import PreTrainedTokenizerBase

from unlearnspec.records import Record
from unlearnspec.runtime.evaluation.likelihood import score_qa
from unlearnspec.runtime.prompting import PromptFormat


@dataclass(frozen=True)
class MCQResult:
    """Per item: the choices' log-likelihoods, whether ``acc`` and ``acc_norm`` got it right."""

    index: list[int]  # the record index of each multiple-choice item
    loglik: list[NDArray[np.float64]]
    gold: list[int]
    acc: NDArray[np.float64]
    acc_norm: NDArray[np.float64]
    chance: float  # the expected accuracy of guessing: mean over items of 1 / number of choices

    def __len__(self) -> int:
        return len(self.index)

    @property
    def mean_acc(self) -> float:
        return float(self.acc.mean()) if len(self) else float("nan")

    @property
    def mean_acc_norm(self) -> float:
        return float(self.acc_norm.mean()) if len(self) else float("nan")


def mcq_accuracy(model: Any, tokenizer: PreTrainedTokenizerBase, records: Sequence[Record], *,
                 batch_size: int = 32, fmt: PromptFormat | None = None) -> MCQResult:
    """``acc`` and ``acc_norm`` over the multiple-choice records of ``records`` (others are skipped)."""
    items = [(i, r) for i, r in enumerate(records) if r.is_mcq]
    questions: list[str] = []
    choices: list[str] = []
    for _, r in items:
        assert r.question is not None
        questions += [r.question] * len(r.choices)
        choices += r.choices
    totals = score_qa(model, tokenizer, questions, choices, batch_size=batch_size, fmt=fmt).total_logprob() \
        if items else np.zeros(0)
    loglik: list[NDArray[np.float64]] = []
    acc: list[float] = []
    acc_norm: list[float] = []
    gold: list[int] = []
    at = 0
    for _, r in items:
        k = len(r.choices)
        ll = np.asarray(totals[at:at + k], dtype=np.float64)
        at += k
        lengths = np.asarray([float(len(c)) for c in r.choices])
        assert r.answer_index is not None
        gold.append(r.answer_index)
        loglik.append(ll)
        acc.append(float(int(np.argmax(ll)) == r.answer_index))
        acc_norm.append(float(int(np.argmax(ll / lengths)) == r.answer_index))
    chance = float(np.mean([1.0 / len(r.choices) for _, r in items])) if items else float("nan")
    return MCQResult(index=[i for i, _ in items], loglik=loglik, gold=gold, acc=np.asarray(acc, dtype=np.float64),
                     acc_norm=np.asarray(acc_norm, dtype=np.float64), chance=chance)
