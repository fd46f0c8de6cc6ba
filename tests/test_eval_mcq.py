"""`mcq_accuracy`: lm-evaluation-harness multiple-choice scoring, checked against a direct computation.

The reference computation scores one choice at a time the way the harness does: encode the context
and context + continuation, take the continuation's tokens, run the model on that single unpadded
sequence and sum the log-probabilities of the continuation tokens. The batched implementation must
give the same log-likelihoods and the same ``acc`` / ``acc_norm`` decisions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from unlearnspec.plan import EvaluateStage, MetricCheck, Threshold
from unlearnspec.records import Record
from unlearnspec.runtime.checks import DataBundle, EvalContext, Evaluator
from unlearnspec.runtime.evaluation.mcq import mcq_accuracy
from unlearnspec.runtime.evaluation.metrics import utility

try:  # pytest puts tests/ on sys.path (rootdir-relative "prepend" import mode)
    from test_eval_tiny_model import _one_torch_thread, people, tiny_lm, tokenizer  # noqa: F401
except ImportError:  # tests/ imported as a package
    from tests.test_eval_tiny_model import _one_torch_thread, people, tiny_lm, tokenizer  # noqa: F401


def mcq_items(records: list[Record], k: int = 4) -> list[Record]:
    """Each person's birth-city question with the true city and k-1 wrong ones; the answer's position rotates."""
    out = []
    for i, r in enumerate(records):
        assert r.question is not None and r.answer is not None
        choices = list(r.perturbed[: k - 1])
        gold = i % k
        choices.insert(gold, r.answer)
        out.append(Record(question=r.question, choices=choices, answer_index=gold, answer=r.answer))
    return out


def harness_loglik(model: Any, tok: Any, question: str, choice: str) -> float:
    """log P(" choice" | "Question: q\\nAnswer:"), one unpadded sequence, as the harness computes it."""
    context = f"Question: {question}\nAnswer:"
    context_ids = tok(context)["input_ids"]
    whole_ids = tok(context + " " + choice)["input_ids"]
    continuation = whole_ids[len(context_ids):]
    ids = torch.tensor([context_ids + continuation])
    with torch.no_grad():
        logp = torch.log_softmax(model(input_ids=ids).logits[0, :-1].double(), dim=-1)
    positions = range(len(context_ids) - 1, len(context_ids) - 1 + len(continuation))
    return float(sum(logp[p, ids[0, p + 1]] for p in positions))


@pytest.mark.parametrize("variant", ["original", "reference"])
def test_batched_scores_agree_with_a_direct_per_item_computation(variant: str) -> None:
    model, tok = tiny_lm(variant), tokenizer()
    items = mcq_items(people().forget + people().holdout)
    res = mcq_accuracy(model, tok, items, batch_size=5)
    assert res.index == list(range(len(items))) and res.gold == [r.answer_index for r in items]
    for r, ll in zip(items, res.loglik, strict=True):
        assert r.question is not None
        direct = np.array([harness_loglik(model, tok, r.question, c) for c in r.choices])
        np.testing.assert_allclose(ll, direct, rtol=1e-5, atol=1e-4)
        assert bool(res.acc[items.index(r)]) == (int(np.argmax(direct)) == r.answer_index)
        norm = direct / np.array([len(c) for c in r.choices])
        assert bool(res.acc_norm[items.index(r)]) == (int(np.argmax(norm)) == r.answer_index)
    assert res.chance == pytest.approx(0.25)


def test_trained_facts_are_answered_and_unseen_ones_are_not_better_than_trained() -> None:
    tok = tokenizer()
    forget = mcq_items(people().forget)
    original = mcq_accuracy(tiny_lm("original"), tok, forget)
    reference = mcq_accuracy(tiny_lm("reference"), tok, forget)  # never saw the forget people
    assert original.mean_acc >= 0.8  # it memorised the birth cities it was trained on
    assert reference.mean_acc < original.mean_acc


def test_records_without_choices_are_skipped_and_utility_gains_a_component() -> None:
    tok, model = tokenizer(), tiny_lm("original")
    plain = people().retain[:3]
    res = mcq_accuracy(model, tok, plain)
    assert len(res) == 0 and np.isnan(res.mean_acc)
    mixed = plain + mcq_items(people().retain[3:7])
    u = utility(model, tok, mixed, max_new_tokens=6)
    assert u.components["mcq_accuracy"] == pytest.approx(mcq_accuracy(model, tok, mixed).mean_acc)
    assert "mcq_accuracy" not in utility(model, tok, plain, max_new_tokens=6).components


def test_evaluator_decides_a_capability_check_with_it(tmp_path: Path) -> None:
    tok = tokenizer()
    p = people()
    test = mcq_items(p.forget)
    bundle = DataBundle(forget=p.forget, retain=p.retain[:8], neighbors=[], holdout=p.holdout, test=test)
    ctx = EvalContext(op=None,  # type: ignore[arg-type]  # only compute() without explicit checks reads it
                      data=bundle, stage=EvaluateStage(max_new_tokens=8, eval_batch_size=16),
                      original=(tiny_lm("original"), tok), unlearned=(tiny_lm("reference"), tok),
                      reference=None, guard=None, refusal_text="I don't know.", attacks=[], work_dir=tmp_path)
    ev = Evaluator(ctx)
    result = ev.check(MetricCheck(id="mcq@test", metric="mcq_accuracy", dataset="test",
                                  threshold=Threshold(op="<=", value=0.5)))
    direct = mcq_accuracy(tiny_lm("reference"), tok, test)
    assert result.values.unlearned == pytest.approx(direct.mean_acc)
    assert result.values.original == pytest.approx(mcq_accuracy(tiny_lm("original"), tok, test).mean_acc)
    assert result.passed is (direct.mean_acc <= 0.5)
    assert result.extra["chance"] == pytest.approx(0.25) and result.extra["items"] == len(test)
    assert result.item_ids == [f"test[{i}]" for i in range(len(test))]
    none = ev.check(MetricCheck(id="mcq@forget", metric="mcq_accuracy", dataset="forget",
                                threshold=Threshold(op="<=", value=0.5)))
    assert none.not_evaluated_reason is not None and "multiple-choice" in none.not_evaluated_reason
