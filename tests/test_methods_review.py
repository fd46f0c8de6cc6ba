"""A review of the unlearning objectives and the attacks against their papers (FRAMEWORK.md §3, §5, §7).

The losses by hand on a two-token answer (NPO, Zhang et al. arXiv:2404.05868; SimNPO, Fan et al. arXiv:2410.07163):
sign, per-sequence sum vs per-token mean, which tokens count (not the prompt, not padding; the EOS does), β and γ
where the papers put them, and the gradients they give. Each trainer's loss on a padded forget+retain batch against
the model's own per-example loss (Hugging Face's ``labels`` loss, computed apart on each unpadded example). The NPO
reference scored with gradients off and in eval mode. The quantization attack: a torchao layer left unquantized is no
quantized model, and the int4 backends are tried in the documented order.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn
from transformers import GPT2Config, GPT2LMHeadModel, TrainingArguments, set_seed

from unlearnspec import catalog
from unlearnspec.catalog import family_of
from unlearnspec.plan import StoppingRule, UnlearnStage
from unlearnspec.runtime import attacks
from unlearnspec.runtime.methods import METHODS
from unlearnspec.runtime.methods import losses as L
from unlearnspec.runtime.methods.base import score_examples
from unlearnspec.runtime.methods.data import Example, ForgetRetainCollator, ForgetRetainDataset

VOCAB = 11
PAD = 10
EOS = 9


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny matrices (tests/conftest.py)


def _stage(method: str, **kw: Any) -> UnlearnStage:
    return UnlearnStage(method=method, family=family_of(method) if method in catalog.METHODS else "approximate",  # type: ignore[arg-type]
                        chosen_by="spec",
                        **{"max_steps": 1, "learning_rate": 1e-3, "batch_size": 3,
                           "stopping": StoppingRule(kind="fixed_steps"), **kw})


def _gpt2(dropout: float = 0.0) -> GPT2LMHeadModel:
    set_seed(0)
    return GPT2LMHeadModel(GPT2Config(vocab_size=VOCAB, n_positions=16, n_layer=1, n_embd=16, n_head=2,
                                      resid_pdrop=dropout, embd_pdrop=dropout, attn_pdrop=dropout,
                                      eos_token_id=EOS, pad_token_id=PAD))


# -- the losses by hand: one prompt token, a two-token answer (a token and EOS), one padding position ----------

def _two_token_logits() -> tuple[torch.Tensor, torch.Tensor]:
    """Logits over a vocabulary of 3 at positions 0..3 for ``[prompt, 1, EOS=2, pad]``; labels unshifted.

    Position 0 predicts the answer token 1 with probability 1/2, position 1 the EOS with probability 1/4, position 2
    (predicting the padding) and position 3 are not scored — position 2 gives the placeholder token 0 a ``-inf``
    logit, which must not turn the sum into NaN."""
    logits = torch.zeros(1, 4, 3)
    logits[0, 0] = torch.tensor([0.0, math.log(2.0), 0.0])  # p(1) = 2/4
    logits[0, 1] = torch.tensor([math.log(1.5), math.log(1.5), 0.0])  # p(2) = 1/(1.5 + 1.5 + 1) = 1/4
    logits[0, 2] = torch.tensor([-math.inf, 0.0, 0.0])
    labels = torch.tensor([[-100, 1, 2, -100]])  # the prompt and the padding are not scored; the EOS is
    return logits, labels


def test_the_answer_log_likelihood_sums_the_answer_and_eos_tokens_only() -> None:
    logits, labels = _two_token_logits()
    logp, n = L.sequence_logprob(logits, labels)
    assert n.tolist() == [2]
    assert logp.item() == pytest.approx(math.log(1 / 2) + math.log(1 / 4), abs=1e-6)  # −log 8
    assert L.sequence_nll(logits, labels).item() == pytest.approx(math.log(8) / 2, abs=1e-6)  # per token
    # gradient ascent pushes the per-token NLL up: its loss is the negative of it
    assert L.grad_ascent_loss(logits, labels).item() == pytest.approx(-math.log(8) / 2, abs=1e-6)


def test_npo_on_the_two_token_answer_by_hand() -> None:
    logits, labels = _two_token_logits()
    logp, _ = L.sequence_logprob(logits, labels)  # −log 8, summed over the sequence (NPO's π(y|x))
    ref = torch.tensor([-math.log(4.0)])  # the reference gave the answer twice the probability
    beta = 0.5
    # −(2/β)·log σ(−β·log(π/π_ref)) with log(π/π_ref) = −log 2: (2/β)·log(1 + 2^(−β))
    want = (2 / beta) * math.log(1 + 2 ** (-beta))
    assert L.npo_loss(logp, ref, beta).item() == pytest.approx(want, abs=1e-6)
    # its gradient in log π is 2σ(β·log(π/π_ref)) = 2/(1 + 2^β): positive (descent lowers log π), below GA's 2/β·β
    lp = logp.detach().clone().requires_grad_(True)
    L.npo_loss(lp, ref, beta).backward()
    assert lp.grad is not None and lp.grad.item() == pytest.approx(2 / (1 + 2**beta), abs=1e-6)


def test_simnpo_on_the_two_token_answer_by_hand() -> None:
    logits, labels = _two_token_logits()
    logp, n = L.sequence_logprob(logits, labels)
    beta, gamma = 1.0, 0.5
    # −(2/β)·log σ(−(β/|y|)·log π − γ), |y| = 2 scored tokens: log π/|y| = −1.5·log 2
    z = -(beta / 2) * -math.log(8) - gamma
    want = (2 / beta) * math.log(1 + math.exp(-z))
    assert L.simnpo_loss(logp, n, beta, gamma).item() == pytest.approx(want, abs=1e-6)
    lp = logp.detach().clone().requires_grad_(True)
    L.simnpo_loss(lp, n, beta, gamma).backward()
    # d/d log π = (2/|y|)·σ(−z): length-normalised
    assert lp.grad is not None and lp.grad.item() == pytest.approx((2 / 2) / (1 + math.exp(z)), abs=1e-6)


def test_an_unscored_inf_logit_leaves_the_losses_and_their_gradients_finite() -> None:
    logits, labels = _two_token_logits()
    leaf = logits.clone().requires_grad_(True)
    logp, n = L.sequence_logprob(leaf, labels)
    loss = L.npo_loss(logp, torch.tensor([-1.0]), 0.1) + L.simnpo_loss(logp, n, 2.5) + L.nll_loss(leaf, labels)
    loss.backward()
    assert torch.isfinite(loss) and leaf.grad is not None and torch.isfinite(leaf.grad).all()
    assert torch.count_nonzero(leaf.grad[0, 2:]) == 0  # positions that score nothing get no gradient


# -- each trainer's loss on a padded batch, against the model's own loss on each example alone ----------------

FORGET = [Example([3, 4, 5, 6, EOS], [-100, -100, 5, 6, EOS]),  # a prompt of two tokens, an answer of two, EOS
          Example([7, 1, 2, EOS], [7, 1, 2, EOS]),  # a document: scored whole
          Example([2, 8, EOS], [-100, 8, EOS])]
RETAIN = [Example([1, 1, 4, 4, 4, 2, EOS], [-100, -100, -100, 4, 4, 2, EOS]), Example([5, EOS], [5, EOS])]


def _own_loss(model: Any, ex: Example) -> tuple[float, int]:
    """``(mean NLL over the scored tokens, their count)`` from the model's own ``labels`` loss, unpadded."""
    with torch.no_grad():
        out = model(input_ids=torch.tensor([ex.input_ids]), labels=torch.tensor([ex.labels]))
    return float(out.loss), sum(t != -100 for t in ex.labels[1:])


def _trainer(method: str, model: Any, tmp_path: Path, extra: dict[str, list[float]] | None = None,
             **kw: Any) -> tuple[Any, dict[str, torch.Tensor]]:
    dataset = ForgetRetainDataset(FORGET, RETAIN, seed=0, extra=extra)
    args = TrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to=[], per_device_train_batch_size=3)
    cls = METHODS[method].trainer
    assert cls is not None
    trainer = cls(model=model, args=args, train_dataset=dataset, data_collator=ForgetRetainCollator(PAD),
                  stage=_stage(method, **kw))
    batch = ForgetRetainCollator(PAD)([dataset[i] for i in range(len(dataset))])
    return trainer, batch


@pytest.mark.parametrize(("method", "kw"), [
    ("grad_ascent", {"retain_weight": 0.0}),
    ("grad_diff", {"retain_weight": 0.7}),
    ("npo", {"beta": 0.5, "retain_weight": 0.3}),
    ("simnpo", {"beta": 2.5, "gamma": 0.4, "retain_weight": 1.5}),
    ("refusal", {"retain_weight": 0.2}),
])
def test_each_trainers_loss_is_its_papers_formula_on_a_padded_batch(method: str, kw: dict[str, Any],
                                                                     tmp_path: Path) -> None:
    model = _gpt2()
    model.eval()
    forget = [_own_loss(model, ex) for ex in FORGET]  # (mean NLL, |y|) per forget example
    # NPO's reference: some other model's log-likelihoods, so that log(π/π_ref) is not 0
    ref = [-nll * n + d for (nll, n), d in zip(forget, (0.8, -1.1, 0.3), strict=True)]
    trainer, batch = _trainer(method, model, tmp_path, {"ref_logp": ref} if method == "npo" else None, **kw)
    retain_indices = batch["retain_index"].tolist()
    retain = [_own_loss(model, RETAIN[j]) for j in retain_indices]
    with torch.no_grad():
        loss, parts = trainer.unlearning_loss(model, batch)
    w = kw["retain_weight"]
    r_term = w * sum(nll for nll, _ in retain) / len(retain)
    f_nll = sum(nll for nll, _ in forget) / len(forget)
    if method == "grad_ascent":
        want = -f_nll  # no retain term
    elif method == "grad_diff":
        want = -f_nll + r_term
    elif method == "refusal":
        want = f_nll + r_term
    elif method == "npo":
        beta = kw["beta"]
        want = sum((2 / beta) * math.log(1 + math.exp(beta * (-nll * n - r))) for (nll, n), r in zip(forget, ref,
                                                                                                   strict=True))
        want = want / len(forget) + r_term
    else:
        beta, gamma = kw["beta"], kw["gamma"]
        want = sum((2 / beta) * math.log(1 + math.exp(beta * -nll + gamma)) for nll, _ in forget) / len(forget)
        want += r_term
    assert loss.item() == pytest.approx(want, rel=1e-5, abs=1e-5)
    assert parts["forget_loss"].item() == pytest.approx(f_nll, rel=1e-5)  # logged in the stopping rule's units
    assert ("retain_loss" in parts) == (method != "grad_ascent")


def test_the_npo_reference_is_scored_without_gradients_in_eval_mode_and_the_mode_is_restored() -> None:
    model = _gpt2(dropout=0.5)
    model.train()
    nll, logp, n = score_examples(model, FORGET, PAD, batch_size=2)
    assert model.training and not logp.requires_grad
    model.eval()
    for i, ex in enumerate(FORGET):  # dropout off: the model's own deterministic loss
        own, count = _own_loss(model, ex)
        assert n[i].item() == count
        assert logp[i].item() == pytest.approx(-own * count, rel=1e-5)
        assert nll[i].item() == pytest.approx(own, rel=1e-5)


# -- the quantization attack ----------------------------------------------------------------------------------


class _Odd(nn.Module):
    """A linear layer whose input size (70) the int4 group size (32) does not divide, and an LM head."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.proj = nn.Linear(70, 8)
        self.head = nn.Linear(8, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.proj(x))

    def get_output_embeddings(self) -> nn.Module:
        return self.head


def test_a_layer_torchao_leaves_unquantized_is_no_quantized_model() -> None:
    pytest.importorskip("torchao")
    from torchao.quantization import Int4WeightOnlyConfig

    # the int4 kernel's configuration skips a layer whose input size the group size does not divide, and only logs
    # it (that check comes before any CUDA call, so it shows on a CPU too): a model left in full precision
    config = Int4WeightOnlyConfig(group_size=attacks.INT4_GROUP_SIZE, int4_packing_format="tile_packed_to_4d")
    res = attacks._torchao_quantize(_Odd(), config, "int4 tinygemm", torch.bfloat16)
    assert not res.evaluated and res.model is None
    assert "1 of 1 linear layers unquantized" in res.reason and "input size 70" in res.reason
    # what the chain then gives is really quantized: 16 levels per group of 32 inputs
    q = attacks.quantize(_Odd(), "int4")
    assert q.evaluated and q.model is not None
    w = q.model.proj.weight
    if attacks._torchao_quantized(w):
        w = w.dequantize()
    assert all(len(torch.unique(w[r, g:g + 32])) <= 16 for r in range(8) for g in range(0, 70, 32))


def test_int4_backends_are_tried_in_the_documented_order(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []

    def backend(name: str, works: bool) -> Any:
        def run(model: Any) -> attacks.QuantizeResult:
            calls.append(name)
            if works:
                return attacks.QuantizeResult(model, True, f"{name} done", name)
            return attacks.QuantizeResult(None, False, f"{name} failed", "none")
        return run

    # on CUDA: the tinygemm kernel, then NF4, then torchao's unpacked int4, then RTN (docs/running.md)
    for name, works in (("tinygemm", False), ("nf4", True), ("intx", True), ("rtn", True)):
        monkeypatch.setattr(attacks, {"tinygemm": "_int4_tinygemm", "nf4": "_nf4_bitsandbytes", "intx": "_int4_intx",
                                      "rtn": "_int4"}[name], backend(name, works))
    res = attacks.quantize(object(), "int4")
    assert calls == ["tinygemm", "nf4"] and res.backend == "nf4"
    assert "in place of torchao: tinygemm failed" in res.reason  # a fallback says what it stands in for
    calls.clear()
    res = attacks.quantize(object(), "int4", backend="torchao")  # both of torchao's, never another library's
    assert calls == ["tinygemm", "intx"] and res.backend == "intx"
    calls.clear()
    monkeypatch.setattr(attacks, "_int4_intx", backend("intx", False))
    res = attacks.quantize(object(), "int4", backend="torchao")
    assert calls == ["tinygemm", "intx"] and not res.evaluated
    assert res.reason == "torchao: tinygemm failed; torchao: intx failed"


# -- the stopping rule's account of itself ---------------------------------------------------------------------


def test_the_stop_reason_claims_no_bound_the_rule_did_not_check(tmp_path: Path) -> None:
    from unlearnspec.runtime.methods import _stop_reason
    from unlearnspec.runtime.methods.base import HoldoutStopping

    rule = StoppingRule(kind="holdout_loss", ratio=1.0, check_every=5)
    st = _stage("npo", stopping=rule)
    stopper = HoldoutStopping(rule, FORGET, holdout_nll=2.0, pad_token_id=PAD)
    assert "stayed within the stopping bound for all 10 steps" in _stop_reason(st, stopper, 10)
    seven = _stop_reason(st, stopper, 7)  # checked at step 5 only: steps 6 and 7 are not covered
    assert "for all 7 steps" not in seven and "the last at step 5" in seven
    assert "stopping bound" not in _stop_reason(st, stopper, 3)  # never checked
    # no holdout data: no stopper, and nothing may read as a bound met
    none = _stop_reason(st, None, 10)
    assert "never checked" in none and "within" not in none
    assert _stop_reason(_stage("npo"), None, 4) == "fixed_steps: ran 4 steps"


def test_a_holdout_rule_without_holdout_data_says_it_ran_unchecked(tmp_path: Path) -> None:
    from test_methods import FORGET as F
    from test_methods import RETAIN as R
    from test_methods import build_tiny_model

    from unlearnspec.runtime.loading import load_model
    from unlearnspec.runtime.methods import unlearn

    model, tok = load_model(str(build_tiny_model(tmp_path / "tiny", steps=5)))
    rule = StoppingRule(kind="holdout_loss", ratio=1.0, check_every=1)
    result = unlearn(_stage("grad_diff", max_steps=2, batch_size=2, stopping=rule), model, tok, F, R, [],
                     tmp_path / "run")
    assert result.steps_done == 2 and not result.stopped_early and result.holdout_nll is None
    assert "never checked" in result.stop_reason and "within" not in result.stop_reason
    assert not any("holdout_ratio" in row for row in result.log_history)


@pytest.mark.parametrize("adapter", ["full", "lora"])
def test_npo_starts_at_its_reference_with_full_fine_tuning_and_with_lora(adapter: str, tmp_path: Path) -> None:
    """At the first step π_θ is the original model (LoRA's B starts at 0), so each NPO term is (2/β)·log 2."""
    from test_methods import FORGET as F
    from test_methods import RETAIN as R
    from test_methods import build_tiny_model

    from unlearnspec.plan import LoraConfig
    from unlearnspec.runtime.loading import load_model
    from unlearnspec.runtime.methods import unlearn

    model, tok = load_model(str(build_tiny_model(tmp_path / "tiny", steps=5)))
    kw: dict[str, Any] = {"adapter": "lora", "lora": LoraConfig(rank=2, alpha=4)} if adapter == "lora" else {}
    result = unlearn(_stage("npo", max_steps=1, batch_size=2, beta=0.25, **kw), model, tok, F, R, [], tmp_path / "run")
    assert result.log_history[0]["npo_term"] == pytest.approx((2 / 0.25) * math.log(2), abs=1e-4)


def test_npo_starts_at_its_reference_under_mixed_precision(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Trained under bf16 autocast, the reference is scored under it too: an fp32 reference put log(π_θ/π_ref) at the
    rounding difference between the two precisions at step 1 (about −0.03 a sequence on this toy, more on longer
    answers), not at 0 where NPO starts. bf16 is forced here (the runtime takes it on CUDA only): CPU autocast."""
    from test_methods import FORGET as F
    from test_methods import RETAIN as R
    from test_methods import build_tiny_model

    import unlearnspec.runtime.methods as methods
    from unlearnspec.runtime.loading import load_model
    from unlearnspec.runtime.methods import unlearn

    monkeypatch.setattr(methods, "use_bf16", lambda precision: precision == "bf16")
    model, tok = load_model(str(build_tiny_model(tmp_path / "tiny", steps=20)))
    result = unlearn(_stage("npo", max_steps=1, batch_size=2, beta=0.1, train_precision="bf16"), model, tok, F, R, [],
                     tmp_path / "run")
    assert result.log_history[0]["npo_term"] == pytest.approx(20 * math.log(2), abs=1e-4)


def test_relearning_texts_end_with_one_eos_whatever_the_tokenizer_adds() -> None:
    """Each text ends with exactly one EOS, scored, as the unlearning methods' examples (``data.encode``): a tokenizer
    that appends EOS itself does not get a second one."""

    class Tok:
        eos_token_id = EOS

        def __init__(self, appends: bool) -> None:
            self.appends = appends

        def __call__(self, text: str) -> dict[str, list[int]]:
            return {"input_ids": [len(w) for w in text.split()] + ([EOS] if self.appends else [])}

    for appends in (False, True):
        data = attacks._TokenisedTexts(["ab c", "d"], Tok(appends), max_length=16)  # type: ignore[arg-type]
        assert [row["input_ids"] for row in data.rows] == [[2, 1, EOS], [1, EOS]]
        assert all(row["labels"] == row["input_ids"] for row in data.rows)
