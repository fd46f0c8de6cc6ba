"""The attack checks on real (tiny) models: relearning measured on facts the fine-tune never saw, a fine-tune that
failed or wrecked the model not read as robustness, quantization compared like with like, and every attacked model's
answers in the generations. ``original`` knows the forget people, ``reference`` never saw them (tests/
test_eval_tiny_model.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from unlearnspec.plan import EvaluateStage, MetricCheck, QuantizeAttack, RelearnAttack, Threshold
from unlearnspec.records import Record
from unlearnspec.runtime import attacks
from unlearnspec.runtime.checks import DataBundle, EvalContext, Evaluator, compute
from unlearnspec.runtime.evaluation.likelihood import score_records
from unlearnspec.runtime.evaluation.metrics import knowledge_qa

try:  # pytest puts tests/ on sys.path (rootdir-relative "prepend" import mode)
    from test_eval_tiny_model import _one_torch_thread, people, tiny_lm, tokenizer  # noqa: F401
except ImportError:  # tests/ imported as a package
    from tests.test_eval_tiny_model import _one_torch_thread, people, tiny_lm, tokenizer  # noqa: F401

STAGE = EvaluateStage(max_new_tokens=8, eval_batch_size=16)
GENTLE = RelearnAttack(steps=4, learning_rate=1e-4, batch_size=2)


def _evaluator(unlearned: Any, tmp_path: Path, attack: RelearnAttack | QuantizeAttack,
               forget: list[Record] | None = None) -> Evaluator:
    p, tok = people(), tokenizer()
    data = DataBundle(forget=forget if forget is not None else p.forget, retain=p.retain[:8],
                      neighbors=p.retain[8:], holdout=p.holdout, test=[])
    ctx = EvalContext(op=None,  # type: ignore[arg-type]  # only compute() without explicit checks reads it
                      data=data, stage=STAGE, original=(tiny_lm("original"), tok), unlearned=(unlearned, tok),
                      reference=(tiny_lm("reference"), tok), guard=None, refusal_text="I don't know.",
                      attacks=[attack], work_dir=tmp_path, strategy="retrain")
    return Evaluator(ctx)


def _relearn_check(attack: RelearnAttack) -> MetricCheck:
    return MetricCheck(id="relearn_recovery@relearn", metric="relearn_recovery", dataset="forget", probe="relearn",
                       model="attacked", threshold=Threshold(op="<=", value=0.5), params={"steps": attack.steps})


def _quant_check(precision: str, dataset: str = "forget") -> MetricCheck:
    return MetricCheck(id=f"quantization_recovery@quantize_{precision}", metric="quantization_recovery",
                       dataset=dataset, probe="quantize", model="attacked", threshold=Threshold(op="<=", value=0.25),
                       params={"precision": precision})


def _recall(model: Any, records: list[Record]) -> list[float]:
    return [float(x) for x in knowledge_qa(model, tokenizer(), records, max_new_tokens=STAGE.max_new_tokens,
                                           batch_size=STAGE.eval_batch_size).recall]


def _index(ids: list[str]) -> list[int]:
    return [int(i.split("[")[1].split("]")[0]) for i in ids]


def test_relearning_is_measured_on_facts_it_never_saw_under_their_forget_ids(tmp_path: Path) -> None:
    unlearned = tiny_lm("reference")  # removed everything: something to recover
    ev = _evaluator(unlearned, tmp_path, GENTLE)
    rows: list[dict[str, Any]] = []
    res = compute(ev.ctx, [_relearn_check(GENTLE)], generations=rows)["relearn_recovery@relearn"]
    assert res.not_evaluated_reason is None, res.not_evaluated_reason
    split = res.extra["split"]
    forget = people().forget
    trained, measured = _index(split["relearned_items"]), _index(split["measured_items"])
    # facts, not strings: no measured answer is an answer, or in a text, that the fine-tune saw
    taught = " ".join(t for i in trained for t in forget[i].training_texts()).lower()
    assert measured and not any(str(forget[i].answer).lower() in taught for i in measured)
    # the forget set's own indices, not positions in the measured subset
    assert res.item_ids == [f"forget[{i}]:direct" for i in measured]
    assert res.extra["attack"] == {"data": "forget_subset", "steps": 4, "learning_rate": 1e-4, "batch_size": 2,
                                   "seed": 0, "fraction": 0.5}
    # every number recomputed independently: the original on those questions, the same seeded fine-tune
    assert res.per_item["original"] == _recall(tiny_lm("original"), [forget[i] for i in measured])
    again = attacks.relearn(unlearned, tokenizer(), [forget[i] for i in trained], steps=4, learning_rate=1e-4,
                            batch_size=2, seed=0)
    assert res.per_item["attacked"] == _recall(again, [forget[i] for i in measured])
    lost = np.mean(res.per_item["original"]) - np.mean(res.per_item["unlearned"])  # type: ignore[arg-type]
    back = np.mean(res.per_item["attacked"]) - np.mean(res.per_item["unlearned"])  # type: ignore[arg-type]
    assert res.values.attacked == pytest.approx(back / lost)
    # the relearned models' answers are in the generations, labelled, under the forget ids they were asked as
    for who in ("unlearned", "reference"):
        mine = [r for r in rows if r["model"] == f"{who}@relearn_4"]
        assert [r["item"] for r in mine] == [f"forget[{i}]" for i in measured]
    assert [r["output"] for r in rows if r["model"] == "unlearned@relearn_4"] == \
        [o.strip() for o in knowledge_qa(again, tokenizer(), [forget[i] for i in measured],
                                         max_new_tokens=STAGE.max_new_tokens).predictions]


def test_a_fine_tune_that_did_not_fit_is_not_read_as_robustness(tmp_path: Path) -> None:
    """At learning rate 0 the 'attacked' model is the unlearned one: recovery 0, which used to pass the claim."""
    stuck = RelearnAttack(steps=2, learning_rate=0.0, batch_size=2)
    res = _evaluator(tiny_lm("reference"), tmp_path, stuck).check(_relearn_check(stuck))
    assert res.values.attacked == 0.0 and res.passed is None and res.status == "not_evaluated"
    assert "did not fall" in str(res.not_evaluated_reason)
    fit = res.extra["fit"]["attacked"]["relearn_loss"]
    assert fit["after"] == pytest.approx(fit["before"])


def test_data_the_model_already_fits_is_no_failed_fine_tune(tmp_path: Path) -> None:
    """The reference was trained on the neighbours: relearning on them cannot lower its loss, and that is no sign
    that the fine-tune failed."""
    related = RelearnAttack(steps=2, learning_rate=1e-4, batch_size=2, data="related")
    ev = _evaluator(tiny_lm("reference"), tmp_path, related)
    check = _relearn_check(related).model_copy(update={"params": {"steps": 2, "data": "related"}})
    res = ev.check(check)
    fit = res.extra["fit"]["reference_attacked"]["relearn_loss"]
    # independently: the reference's loss on the neighbours is already that of a model that fits them
    loss = float(np.mean(score_records(tiny_lm("reference"), tokenizer(), ev.ctx.data.neighbors).loss()))
    assert fit["before"] == pytest.approx(loss) and np.exp(-loss) > 0.9
    assert "did not fall" not in str(res.not_evaluated_reason)


def test_a_fine_tune_that_wrecks_the_model_is_not_evaluated(tmp_path: Path) -> None:
    wreck = RelearnAttack(steps=30, learning_rate=1e-2, batch_size=2)
    ev = _evaluator(tiny_lm("reference"), tmp_path, wreck)
    res = ev.check(_relearn_check(wreck))
    assert res.status == "not_evaluated" and "damaged" in str(res.not_evaluated_reason)
    # independently: the same fine-tune of the reference, scored on the retain answers (all 8: fewer than the sample)
    tok, retain = tokenizer(), ev.ctx.data.retain
    trained = [people().forget[i] for i in _index(res.extra["split"]["relearned_items"])]
    after = attacks.relearn(tiny_lm("reference"), tok, trained, steps=30, learning_rate=1e-2, batch_size=2, seed=0)

    def prob(model: Any) -> float:
        return float(np.mean(np.exp(-score_records(model, tok, retain, part="qa").loss())))

    ratio = prob(after) / prob(tiny_lm("reference"))
    assert ratio < 0.75
    figures = res.extra["fit"]["reference_attacked"]["retain_probability"]
    assert figures["after"] / figures["before"] == pytest.approx(ratio, rel=1e-4)


def test_a_forget_set_of_one_fact_stated_everywhere_has_nothing_to_relearn_on(tmp_path: Path) -> None:
    forget = [Record(text="Alma Varga was born in Lisbon.", attributes={"birth_city": "Lisbon"}),
              Record(question="Where was Alma Varga born?", answer="Lisbon", attributes={"birth_city": "Lisbon"}),
              Record(question="What is the birthplace of Alma Varga?", answer="In Lisbon.",
                     attributes={"birth_city": "Lisbon"})]
    res = _evaluator(tiny_lm("reference"), tmp_path, GENTLE, forget=forget).check(_relearn_check(GENTLE))
    assert res.status == "not_evaluated" and "held-out fact's answer" in str(res.not_evaluated_reason)


def test_quantization_recovery_compares_like_with_like(tmp_path: Path) -> None:
    q = QuantizeAttack(precision="int8")
    unlearned = tiny_lm("reference")
    ev = _evaluator(unlearned, tmp_path, q)
    rows: list[dict[str, Any]] = []
    res = compute(ev.ctx, [_quant_check("int8")], generations=rows)["quantization_recovery@quantize_int8"]
    forget = people().forget
    # independently: the original and the unlearned model quantized by the same function, asked the same questions
    k = {who: float(np.mean(_recall(m, forget))) for who, m in (
        ("q_original", attacks.quantize(tiny_lm("original"), "int8").model), ("unlearned", unlearned),
        ("q_unlearned", attacks.quantize(unlearned, "int8").model))}
    assert res.extra["knowledge_rouge"]["original_attacked"] == pytest.approx(k["q_original"])
    if res.not_evaluated_reason is None:
        assert res.values.attacked == pytest.approx(attacks.recovery(k["q_original"], k["unlearned"], k["q_unlearned"]))
    assert set(res.per_item) >= {"original_attacked", "attacked", "reference_attacked"}
    labels = {r["model"] for r in rows}
    assert {"original@quantize_int8", "unlearned@quantize_int8", "reference@quantize_int8"} <= labels


def test_quantization_recovery_is_not_measured_on_another_data_set(tmp_path: Path) -> None:
    ev = _evaluator(tiny_lm("reference"), tmp_path, QuantizeAttack(precision="int8"))
    res = ev.check(_quant_check("int8", dataset="test"))  # no test set: no silent fall-back to the forget set
    assert res.status == "not_evaluated" and "`test`" in str(res.not_evaluated_reason)


def test_a_precision_that_erases_the_original_too_measures_no_recovery(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """When quantizing takes the original's knowledge down to the unlearned model's, a recovery cannot be measured
    against it; here the 'quantized original' is a model that never saw the forget people."""
    ev = _evaluator(tiny_lm("reference"), tmp_path, QuantizeAttack(precision="int8"))
    real = attacks.quantize

    def quantize(model: Any, precision: str, **kw: Any) -> attacks.QuantizeResult:
        if model is ev.ctx.original[0]:
            return attacks.QuantizeResult(tiny_lm("fresh"), True, "stands in for an erasing precision", "test")
        return real(model, precision, **kw)

    monkeypatch.setattr(attacks, "quantize", quantize)
    res = ev.check(_quant_check("int8"))
    assert res.status == "not_evaluated" and "the precision itself" in str(res.not_evaluated_reason)
