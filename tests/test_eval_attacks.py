"""Relearning and quantization attacks: they act on copies, and do what they say."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
from torch import nn
from transformers.pytorch_utils import Conv1D

from unlearnspec.runtime.attacks import (
    INT4_GROUP_SIZE,
    conv1d_to_linear,
    quantize,
    recovery,
    relearn,
    rtn_quantize_weight,
)
from unlearnspec.runtime.evaluation.likelihood import score_records
from unlearnspec.runtime.evaluation.metrics import knowledge_qa

try:  # pytest puts tests/ on sys.path (rootdir-relative "prepend" import mode)
    from test_eval_tiny_model import _one_torch_thread, people, tiny_lm, tokenizer  # noqa: F401
except ImportError:  # tests/ imported as a package
    from tests.test_eval_tiny_model import _one_torch_thread, people, tiny_lm, tokenizer  # noqa: F401


def _state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _same_state(model: nn.Module, state: dict[str, torch.Tensor]) -> bool:
    now = model.state_dict()
    return now.keys() == state.keys() and all(torch.equal(now[k], state[k]) for k in state)


def _logits(model: nn.Module, text: str = "Alma Varga was born in Lisbon and works as a pilot.") -> torch.Tensor:
    ids = tokenizer()(text, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        return model(input_ids=ids).logits.float()


# ------------------------------------------------------------------------------------ relearn
def test_relearn_restores_forget_knowledge_on_a_copy() -> None:
    tok, p = tokenizer(), people()
    model = tiny_lm("reference")  # never saw the forget people
    before = _state(model)
    forget_loss = score_records(model, tok, p.forget).loss().mean()
    attacked = relearn(model, tok, p.forget[:3], steps=8, learning_rate=3e-3, batch_size=4, seed=0)
    assert attacked is not model and _same_state(model, before)
    assert not attacked.training
    assert score_records(attacked, tok, p.forget).loss().mean() < forget_loss
    again = relearn(model, tok, p.forget[:3], steps=8, learning_rate=3e-3, batch_size=4, seed=0)
    assert _same_state(again, _state(attacked))  # seeded: same attack, same weights
    longer = relearn(model, tok, p.forget[:3], steps=16, learning_rate=3e-3, batch_size=4, seed=0)
    assert score_records(longer, tok, p.forget[:3]).loss().mean() < score_records(attacked, tok, p.forget[:3]).loss().mean()


def test_relearn_takes_exactly_the_requested_optimizer_steps(monkeypatch: pytest.MonkeyPatch) -> None:
    import unlearnspec.runtime.attacks as attacks

    seen: list[int] = []

    class CountingTrainer(attacks.RelearnTrainer):
        def train(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            out = super().train(*args, **kwargs)
            seen.append(self.state.global_step)
            return out

    monkeypatch.setattr(attacks, "RelearnTrainer", CountingTrainer)
    # 3 records of 2 texts each with batch size 4: 5 steps span more than one epoch
    relearn(tiny_lm("fresh"), tokenizer(), people().forget[:3], steps=5, learning_rate=1e-3, batch_size=4, seed=0)
    assert seen == [5]


def test_relearn_merges_a_peft_model_and_leaves_it_untouched() -> None:
    from peft import LoraConfig, PeftModel, get_peft_model

    tok, p = tokenizer(), people()
    base = copy.deepcopy(tiny_lm("reference"))
    lora = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules=["c_attn"], fan_in_fan_out=True))
    before = _state(lora)
    attacked = relearn(lora, tok, p.forget[:2], steps=3, learning_rate=1e-3, batch_size=2, seed=0)
    assert isinstance(lora, PeftModel) and not isinstance(attacked, PeftModel)
    assert _same_state(lora, before)
    assert not any("lora" in k for k in attacked.state_dict())


def test_relearn_rejects_empty_work() -> None:
    with pytest.raises(ValueError):
        relearn(tiny_lm("fresh"), tokenizer(), people().forget, steps=0, learning_rate=1e-3, batch_size=2, seed=0)
    with pytest.raises(ValueError):
        relearn(tiny_lm("fresh"), tokenizer(), [], steps=1, learning_rate=1e-3, batch_size=2, seed=0)


def test_recovery_fraction() -> None:
    assert recovery(0.9, 0.1, 0.5) == pytest.approx(0.5)  # accuracy-like metric
    assert recovery(1.0, 5.0, 2.0) == pytest.approx(0.75)  # loss-like metric: lower is "knows"
    # signed, not clipped: past the original, and further from it than the unlearned model
    assert recovery(0.9, 0.1, 1.5) == pytest.approx(1.75) and recovery(0.9, 0.1, 0.0) == pytest.approx(-0.125)
    assert recovery(0.5, 0.5, 0.9) == 0.0  # nothing was lost
    assert math.isnan(recovery(math.nan, 0.1, 0.2))


# ---------------------------------------------------------------------------------- quantize
def test_fp32_is_the_model_itself_and_half_precisions_are_cast_copies() -> None:
    model = tiny_lm("original")
    before = _state(model)
    assert quantize(model, "fp32").model is model
    for precision, dtype in (("bf16", torch.bfloat16), ("fp16", torch.float16)):
        res = quantize(model, precision)
        assert res.evaluated and res.model is not model
        if res.backend == "fp16-weights-simulated":
            assert next(res.model.parameters()).dtype == torch.float32
        else:
            assert next(res.model.parameters()).dtype == dtype
        torch.testing.assert_close(_logits(res.model), _logits(model), atol=0.5, rtol=0.05)
        assert np.isfinite(score_records(res.model, tokenizer(), people().forget).loss()).all()
    assert _same_state(model, before)
    assert not quantize(model, "int3").evaluated


def test_conv1d_to_linear_keeps_logits() -> None:
    model = tiny_lm("original")
    converted = conv1d_to_linear(copy.deepcopy(model))
    assert not any(isinstance(m, Conv1D) for m in converted.modules())
    assert any(isinstance(m, Conv1D) for m in model.modules())
    torch.testing.assert_close(_logits(converted), _logits(model), rtol=1e-5, atol=1e-5)


def test_int8_is_real_dynamic_quantization_with_close_logits() -> None:
    from torch.ao.nn.quantized.dynamic import Linear as DynamicQuantizedLinear

    model = tiny_lm("original")
    before = _state(model)
    res = quantize(model, "int8", backend="torch")
    assert res.evaluated and res.backend.startswith("torch-dynamic-int8"), res.reason
    q = res.model
    quantized = [m for m in q.modules() if isinstance(m, DynamicQuantizedLinear)]
    assert len(quantized) == 4 * model.config.n_layer  # c_attn, attn c_proj, c_fc, mlp c_proj
    assert type(q.lm_head) is nn.Linear  # LM head (tied to the embedding) stays fp32
    # the weights really are int8: dequantised they differ from fp32, by at most half a step
    w8 = q.transformer.h[0].attn.c_attn.weight()
    deq = w8.dequantize()
    w32 = model.transformer.h[0].attn.c_attn.weight.detach().t()
    assert not torch.equal(deq, w32)
    assert (deq - w32).abs().max() <= w8.q_scale() / 2 + 1e-7
    base, ql = _logits(model), _logits(q)
    assert (ql - base).abs().max() < 0.1 * base.abs().max()
    assert torch.equal(ql.argmax(-1), base.argmax(-1))
    # the evaluation stack runs on the quantized model: likelihoods and generation
    p = people()
    np.testing.assert_allclose(score_records(q, tokenizer(), p.forget).loss(),
                               score_records(model, tokenizer(), p.forget).loss(), atol=0.05)
    assert knowledge_qa(q, tokenizer(), p.forget).mean_recall == 1.0
    assert _same_state(model, before)


def test_rtn_int4_weight_numerics() -> None:
    torch.manual_seed(0)
    w = torch.randn(5, 70)  # 70 is not a multiple of the group size
    q = rtn_quantize_weight(w)
    assert q.shape == w.shape and not torch.equal(q, w)
    for g in range(0, 70, INT4_GROUP_SIZE):
        block, qblock = w[:, g: g + INT4_GROUP_SIZE], q[:, g: g + INT4_GROUP_SIZE]
        for row in range(5):
            assert len(torch.unique(qblock[row])) <= 16
            step = (block[row].max() - block[row].min()) / 15
            assert (qblock[row] - block[row]).abs().max() <= step / 2 + 1e-6
    torch.testing.assert_close(rtn_quantize_weight(q), q, atol=1e-5, rtol=0)  # on the grid: idempotent


def test_int4_simulation_rounds_linear_weights_only() -> None:
    model = tiny_lm("original")
    before = _state(model)
    res = quantize(model, "int4", backend="simulated")
    assert res.evaluated and res.backend == "rtn-int4-simulated"
    q = res.model
    w_before = model.transformer.h[1].mlp.c_fc.weight
    w_after = q.transformer.h[1].mlp.c_fc.weight
    assert not torch.equal(w_after, w_before)
    assert len(torch.unique(w_after[:INT4_GROUP_SIZE, 0])) <= 16  # one group of one output column
    assert torch.equal(q.transformer.wte.weight, model.transformer.wte.weight)
    assert torch.isfinite(_logits(q)).all()
    assert _same_state(model, before)


def test_torchao_int8_and_int4_are_real_weight_only_quantization() -> None:
    pytest.importorskip("torchao")
    model = tiny_lm("original")
    before = _state(model)
    base = _logits(model)
    w32 = model.transformer.h[0].mlp.c_fc.weight.detach().t()  # Conv1D stores (in, out)
    for precision, levels in (("int8", 256), ("int4", 16)):
        res = quantize(model, precision)  # auto: torchao comes first where it is installed
        assert res.evaluated and res.backend.startswith("torchao-"), res.reason
        assert precision in res.backend and "(cpu)" in res.backend
        w = res.model.transformer.h[0].mlp.c_fc.weight
        assert w.qdata.dtype == torch.int8  # stored as integers, not floats
        q = w.qdata.int()
        assert int(q.min()) >= -levels // 2 and int(q.max()) <= levels // 2 - 1
        deq = w.dequantize().float()
        assert deq.shape == w32.shape and not torch.equal(deq, w32)
        # round to nearest on a symmetric grid: the error is at most half a step of the row's
        # (int8) or the 32-wide group's (int4) largest magnitude
        groups = w32.shape[1] if precision == "int8" else 32
        amax = w32.reshape(w32.shape[0], -1, groups).abs().amax(-1, keepdim=True)
        err = (deq - w32).reshape(w32.shape[0], -1, groups).abs()
        assert bool((err <= amax / (levels / 2 - 0.5) / 2 + 1e-6).all())
        assert type(res.model.lm_head) is nn.Linear and res.model.lm_head.weight.dtype == torch.float32
        ql = _logits(res.model)
        assert (ql - base).abs().max() < 0.2 * base.abs().max()
    assert _same_state(model, before)


def test_a_named_backend_that_is_missing_is_reported_not_replaced() -> None:
    model = tiny_lm("original")
    res = quantize(model, "int4", backend="bitsandbytes")  # CUDA only
    if not torch.cuda.is_available():
        assert not res.evaluated and res.model is None and "CUDA" in res.reason
    assert not quantize(model, "int4", backend="torch").evaluated
    assert not quantize(model, "int8", backend="nonsense").evaluated


@pytest.mark.parametrize(("docs", "facts", "asked"), [(5, 1, 1), (0, 2, 1), (6, 7, 2), (0, 10, 2), (3, 3, 3), (10, 0, 1)])
@pytest.mark.parametrize("fraction", [0.1, 0.5, 1.0])
def test_relearning_never_measures_a_fact_it_fine_tuned_on(docs: int, facts: int, asked: int, fraction: float) -> None:
    """The relearning attack fine-tunes on part of the forget set and measures recovered knowledge on forget
    questions. A question whose fact the fine-tune saw (the same question, another question with the same answer, a
    document that states the answer) would count what the attack taught. Each fact here is asked ``asked`` ways, and
    the documents state the even-numbered facts' answers."""
    from unlearnspec.records import Record
    from unlearnspec.runtime.attack_checks import relearn_split

    answers = [f"Value{i} Place" for i in range(facts)]
    forget = [Record(text=f"Document {d} about the target, who lives in {answers[2 * d % facts]}." if facts
                     else f"Document {d} about the target.") for d in range(docs)]
    forget += [Record(question=f"Question {j} about fact {i}?", answer=f"It is {answers[i]}.")
               for i in range(facts) for j in range(asked)]

    for seed in range(8):
        split = relearn_split(forget, fraction, seed)
        train, measure = [forget[i] for i in split.train], [forget[i] for i in split.measure]
        held = {r.answer for r in measure}
        taught = " ".join(t for r in train for t in r.training_texts()).lower()
        # no fact measured is stated anywhere in the fine-tune (the bare value, not only the whole answer)
        assert not any(a.removeprefix("It is ").removesuffix(".").lower() in taught for a in held if a)
        assert all(r.is_qa for r in measure) and not set(split.train) & set(split.measure)
        assert not set(split.left_out) & set(split.train)
        if facts:
            # at least one fact held out, its every question measured; never all facts relearned
            n_held = len(held)
            assert n_held >= 1 and len(measure) == n_held * asked
            assert len({r.answer for r in train if r.is_qa}) == min(facts - 1, max(1, math.ceil(facts * fraction)))
        else:
            assert not measure
        assert relearn_split(forget, fraction, seed) == split  # the seed fixes the split
