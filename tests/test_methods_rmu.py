"""RMU as WMDP defines it, on tiny models: which tokens it steers and holds, which weights it trains, which block
it steers (one rule for the compiler and the runtime), a deterministic retain target, and the per-sequence
losses that make a batch split across processes give one process's loss. Also LoRA's target fallback, the
steering coefficient as a multiple of the original model's activation norm, the plan's RMU values (the catalog's),
and that RMU at those values moves the forget set's answers on the built-in model."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import torch
from test_methods import (
    FORGET,
    HOLDOUT,
    RETAIN,
    build_tiny_model,
    stage,
)
from transformers import (
    GPT2Config,
    GPT2LMHeadModel,
    LlamaConfig,
    LlamaForCausalLM,
    OPTConfig,
    OPTForCausalLM,
    PhiConfig,
    PhiForCausalLM,
    set_seed,
)

from unlearnspec.catalog import METHODS
from unlearnspec.catalog.methods import RMU_TRAINED_LAYERS, rmu_layer, rmu_trained_layers
from unlearnspec.compiler.check import plan_file
from unlearnspec.plan import LoraConfig, UnlearnStage
from unlearnspec.records import read_records
from unlearnspec.runtime.loading import E_BAD_MODEL, load_model
from unlearnspec.runtime.methods import lora_config, training_arguments, unlearn
from unlearnspec.runtime.methods import losses as L
from unlearnspec.runtime.methods.base import mean_nll
from unlearnspec.runtime.methods.data import ForgetRetainCollator, ForgetRetainDataset, encode_records
from unlearnspec.runtime.methods.rmu import (
    RMUTrainer,
    control_vector,
    mean_activation_norm,
    resolve_layer,
    trained_modules,
)
from unlearnspec.runtime.rundir import RunError

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "specs" / "glimmerfen-mcq.unlearn"  # RMU on builtin:tiny-bios, with a retain set

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny matrices (tests/conftest.py)


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model", steps=40)


def gpt2(tok: Any, layers: int, dropout: float = 0.0) -> GPT2LMHeadModel:
    """An untrained GPT-2 for the fixture's tokenizer, ``layers`` blocks deep."""
    set_seed(0)
    return GPT2LMHeadModel(GPT2Config(vocab_size=len(tok), n_positions=64, n_layer=layers, n_embd=32, n_head=2,
                                      resid_pdrop=dropout, embd_pdrop=dropout, attn_pdrop=dropout,
                                      eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id))


def llama(layers: int) -> LlamaForCausalLM:
    return LlamaForCausalLM(LlamaConfig(num_hidden_layers=layers, hidden_size=32, intermediate_size=64,
                                        num_attention_heads=2, num_key_value_heads=2, vocab_size=97))


# -- the losses: per sequence, then over the batch (item 8) ------------------------------------------------


def test_masked_mse_is_a_per_sequence_mean_and_a_split_batch_gives_the_same_loss() -> None:
    g = torch.Generator().manual_seed(0)
    x, target = torch.randn(4, 10, 8, generator=g), torch.randn(4, 10, 8, generator=g)
    lengths = [2, 10, 3, 0]  # the last sequence has no position in the mask
    mask = torch.arange(10)[None, :] < torch.tensor(lengths)[:, None]
    # the reference, written out: each sequence's mean over its positions and units, then the batch mean
    per_seq = [float(((x[b, :n] - target[b, :n]) ** 2).mean()) if n else 0.0 for b, n in enumerate(lengths)]
    one = L.masked_mse(x, target, mask)
    assert one.item() == pytest.approx(sum(per_seq) / 4, rel=1e-6)
    # two processes, two sequences each, whose losses DDP averages
    two = (L.masked_mse(x[:2], target[:2], mask[:2]) + L.masked_mse(x[2:], target[2:], mask[2:])) / 2
    assert two.item() == pytest.approx(one.item(), rel=1e-6)
    # the token-weighted mean it replaced gave another number on this batch
    token_mean = float((((x - target) ** 2).mean(-1) * mask).sum() / mask.sum())
    assert abs(token_mean - one.item()) > 1e-2


# -- which block RMU steers (item 4) --------------------------------------------------------------------------


def test_the_compiler_and_the_runtime_steer_the_same_block_never_the_last(tiny_dir: Path, tmp_path: Path) -> None:
    assert [rmu_layer(n) for n in (1, 2, 3, 4, 5, 32)] == [None, 0, 1, 1, 2, 15]
    assert all(rmu_layer(n) < n - 1 for n in range(2, 80))  # type: ignore[operator]
    assert list(rmu_trained_layers(1)) == [0, 1] and list(rmu_trained_layers(7)) == [5, 6, 7]
    assert RMU_TRAINED_LAYERS == 3
    # the plan of the built-in model (4 blocks) and the runtime on the same model agree: block 1
    from unlearnspec.compiler.check import plan_file

    spec = Path(__file__).parent / "rules" / "ul414-rmu-retain-weight.unlearn"
    plan, _ = plan_file(spec)
    assert plan is not None
    (unlearn_stage,) = [s for o in plan.objectives for s in o.stages if s.kind == "unlearn"]
    from unlearnspec.builtin.recipe import RECIPE

    layers = int(RECIPE["model"]["n_layer"])  # type: ignore[index]
    assert unlearn_stage.rmu_layer == (layers - 1) // 2 == 1
    model = GPT2LMHeadModel(GPT2Config(n_layer=layers, n_embd=16, n_head=2, vocab_size=50))
    assert resolve_layer(model, None) == unlearn_stage.rmu_layer


@pytest.mark.parametrize(("layers", "planned", "words"), [
    (4, 3, "is the model's last block"),
    (4, 7, "is outside the model's 4 blocks"),
    (1, None, "needs a decoder block below the model's last, and the model has 1"),
])
def test_a_planned_last_block_or_a_one_block_model_is_refused(layers: int, planned: int | None, words: str) -> None:
    model = GPT2LMHeadModel(GPT2Config(n_layer=layers, n_embd=16, n_head=2, vocab_size=50))
    with pytest.raises(RunError) as err:
        resolve_layer(model, planned)
    assert err.value.code == E_BAD_MODEL and words in err.value.message and err.value.help


# -- which weights train (item 3) -------------------------------------------------------------------------


def test_the_trained_modules_are_the_mlp_output_projections_of_blocks_l_minus_2_to_l() -> None:
    assert trained_modules(llama(8), 3) == [f"model.layers.{k}.mlp.down_proj" for k in (1, 2, 3)]
    opt = OPTForCausalLM(OPTConfig(num_hidden_layers=4, hidden_size=32, ffn_dim=64, num_attention_heads=2,
                                   vocab_size=97, word_embed_proj_dim=32))
    assert trained_modules(opt, 1) == ["model.decoder.layers.0.fc2", "model.decoder.layers.1.fc2"]
    gpt = GPT2LMHeadModel(GPT2Config(n_layer=6, n_embd=16, n_head=2, vocab_size=50))
    assert trained_modules(gpt, 2) == [f"transformer.h.{k}.mlp.c_proj" for k in (0, 1, 2)]
    # a LoRA configuration's own targets replace the MLP projection, still within those blocks
    assert trained_modules(gpt, 2, only=["c_attn"]) == [f"transformer.h.{k}.attn.c_attn" for k in (0, 1, 2)]


@pytest.mark.parametrize("adapter", ["full", "lora"])
def test_rmu_changes_only_the_mlp_output_projections_of_blocks_l_minus_2_to_l(tiny_dir: Path, tmp_path: Path,
                                                                              adapter: str) -> None:
    _, tok = load_model(str(tiny_dir))
    model = gpt2(tok, layers=8)  # RMU steers block 3 and trains blocks 1, 2 and 3
    before = {k: v.clone() for k, v in model.state_dict().items()}
    lora = {"lora": LoraConfig(rank=4, alpha=8)} if adapter == "lora" else {}
    result = unlearn(stage("rmu", max_steps=3, learning_rate=1e-2, adapter=adapter, **lora), model, tok,
                     FORGET, RETAIN, HOLDOUT, tmp_path)
    after = result.model.state_dict()
    changed = sorted(k for k in before if not torch.equal(before[k], after[k]))
    trained = [f"transformer.h.{k}.mlp.c_proj.{p}" for k in (1, 2, 3) for p in ("bias", "weight")]
    if adapter == "full":
        assert changed == sorted(trained)
        assert all(p.requires_grad for p in result.model.parameters())  # handed back whole
    else:  # LoRA adapts the weights only (no bias), and only there
        assert changed == sorted(k for k in trained if k.endswith("weight"))
        from safetensors import safe_open

        with safe_open(str(result.adapter_dir / "adapter_model.safetensors"), "pt") as f:  # type: ignore[operator]
            keys = list(f.keys())
        assert keys and all(any(f"h.{k}.mlp.c_proj.lora_" in key for k in (1, 2, 3)) for key in keys)


def test_the_memory_estimate_counts_what_rmu_trains_and_its_original_weights(
        tiny_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import unlearnspec.runtime.methods as methods_mod

    seen: dict[str, Any] = {}
    real = methods_mod.trainer_batch

    def spy(*args: Any, **kw: Any) -> Any:
        seen.update(kw)
        return real(*args, **kw)

    monkeypatch.setattr(methods_mod, "trainer_batch", spy)
    model, tok = load_model(str(tiny_dir))  # 2 blocks: RMU steers block 0 and trains its MLP projection only
    proj = model.transformer.h[0].mlp.c_proj
    size = proj.weight.numel() + proj.bias.numel()
    unlearn(stage("rmu", max_steps=1), model, tok, FORGET, RETAIN, HOLDOUT, tmp_path)
    assert seen["trainable"] == size and seen["frozen"] == size


# -- which tokens it steers and holds (item 2), and a deterministic retain target (item 5) --------------------


def _trainer(model: Any, tok: Any, st: Any, out: Path, **kw: Any) -> RMUTrainer:
    forget, retain = encode_records(FORGET, tok), encode_records(RETAIN, tok)
    data = ForgetRetainDataset(forget, retain, seed=0)
    layer = resolve_layer(model, None)
    return RMUTrainer(model=model, args=training_arguments(st, out), train_dataset=data,
                      data_collator=ForgetRetainCollator(tok.pad_token_id), stage=st, layer=layer,
                      control=control_vector(int(model.config.hidden_size), st.rmu_steering_coeff, 0), **kw)


def test_rmu_steers_the_scored_forget_positions_and_holds_every_attended_retain_token(tiny_dir: Path,
                                                                                   tmp_path: Path) -> None:
    model, tok = load_model(str(tiny_dir))
    st = stage("rmu", rmu_alpha=3.0)
    original = copy.deepcopy(model).eval()
    with torch.no_grad():  # move the weights off the original, so that the retain term is not zero
        for p in model.transformer.h[0].mlp.c_proj.parameters():
            p.add_(0.05)
    trainer = _trainer(model, tok, st, tmp_path, originals={
        f"transformer.h.0.mlp.c_proj.{n}": p.detach().clone()
        for n, p in original.transformer.h[0].mlp.c_proj.named_parameters()})
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(len(trainer.train_dataset))])
    model.eval()
    loss, parts = trainer.unlearning_loss(model, batch)
    # the reference, position by position: steered = the tokens whose label is scored, held = every attended one
    control = trainer.control_vec
    with torch.no_grad():
        h_f = model(input_ids=batch["forget_input_ids"], output_hidden_states=True).hidden_states[1]
        h_r = model(input_ids=batch["retain_input_ids"], output_hidden_states=True).hidden_states[1]
        o_r = original(input_ids=batch["retain_input_ids"], output_hidden_states=True).hidden_states[1]
    forget_terms, retain_terms, prompt_tokens = [], [], 0
    for b in range(h_f.shape[0]):
        labels = batch["forget_labels"][b].tolist()
        scored = [t for t in range(len(labels) - 1) if labels[t + 1] != -100]  # the output at t predicts t + 1
        prompt_tokens += sum(1 for t, m in enumerate(batch["forget_attention_mask"][b].tolist()) if m and t not in scored)
        forget_terms.append(sum(float(((h_f[b, t] - control) ** 2).mean()) for t in scored) / len(scored))
    for b in range(h_r.shape[0]):
        attended = [t for t, m in enumerate(batch["retain_attention_mask"][b].tolist()) if m]
        retain_terms.append(sum(float(((h_r[b, t] - o_r[b, t]) ** 2).mean()) for t in attended) / len(attended))
    assert prompt_tokens > 0  # the QA prompts are there, and not steered (but for their last token)
    assert parts["rmu_forget_mse"].item() == pytest.approx(sum(forget_terms) / len(forget_terms), rel=1e-4)
    assert parts["rmu_retain_mse"].item() == pytest.approx(sum(retain_terms) / len(retain_terms), rel=1e-4)
    assert parts["rmu_retain_mse"].item() > 1e-6
    assert loss.item() == pytest.approx(parts["rmu_forget_mse"].item() + 3.0 * parts["rmu_retain_mse"].item(),
                                        rel=1e-5)
    # and the trained values are back in place after the target was computed with the original ones
    assert torch.allclose(model.transformer.h[0].mlp.c_proj.bias, original.transformer.h[0].mlp.c_proj.bias + 0.05)


@pytest.mark.parametrize("adapter", ["full", "lora"])
def test_the_retain_target_is_the_original_model_in_eval_mode(tiny_dir: Path, tmp_path: Path, adapter: str,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    _, tok = load_model(str(tiny_dir))
    model = gpt2(tok, layers=2, dropout=0.5)
    original = copy.deepcopy(model).eval()  # dropout off: the reference
    calls: list[tuple[torch.Tensor, torch.Tensor, bool, torch.Tensor, torch.Tensor]] = []
    real = RMUTrainer._original_hidden

    def spy(self: RMUTrainer, net: Any, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        first, second = real(self, net, ids, mask), real(self, net, ids, mask)
        calls.append((first, second, self.accelerator.unwrap_model(net).training, ids, mask))
        return first

    monkeypatch.setattr(RMUTrainer, "_original_hidden", spy)
    lora = {"lora": LoraConfig(rank=4, alpha=8, dropout=0.5)} if adapter == "lora" else {}
    unlearn(stage("rmu", max_steps=3, learning_rate=1e-2, adapter=adapter, **lora), model, tok, FORGET, RETAIN,
            HOLDOUT, tmp_path)
    assert len(calls) == 3
    for first, second, training, ids, mask in calls:  # every step, after updates too
        assert torch.equal(first, second)  # no dropout drew anything
        assert training  # the model is back in train mode for the training pass
        with torch.no_grad():
            expected = original(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states[1]
        assert torch.allclose(first, expected, atol=1e-5)


# -- LoRA's targets (item 10) ---------------------------------------------------------------------------------


def test_lora_targets_llama_names_only_when_all_are_there_else_every_linear_layer() -> None:
    st = stage("npo", adapter="lora", lora=LoraConfig())
    assert lora_config(st, llama(2)).target_modules == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj",
                                                       "up_proj", "down_proj"}
    from peft import get_peft_model

    opt = OPTForCausalLM(OPTConfig(num_hidden_layers=2, hidden_size=32, ffn_dim=64, num_attention_heads=2,
                                   vocab_size=97, word_embed_proj_dim=32))
    phi = PhiForCausalLM(PhiConfig(num_hidden_layers=2, hidden_size=32, intermediate_size=64, num_attention_heads=2,
                                   vocab_size=97))
    for model, mlp in ((opt, ("fc1", "fc2")), (phi, ("mlp.fc1", "mlp.fc2", "dense"))):
        cfg = lora_config(st, model)
        assert cfg.target_modules == "all-linear"  # q_proj is there, Llama's MLP names are not
        adapted = {n.rsplit(".lora_A", 1)[0] for n, _ in get_peft_model(model, cfg).named_parameters()
                   if ".lora_A" in n}
        for name in mlp:  # the MLP (and Phi's attention output) is adapted too, in every block
            assert sum(1 for a in adapted if a.endswith("." + name)) == 2, (name, sorted(adapted))


def test_the_lora_config_of_rmu_names_its_modules(tiny_dir: Path) -> None:
    model, _ = load_model(str(tiny_dir))
    modules = trained_modules(model, 0)
    cfg = lora_config(stage("rmu", adapter="lora", lora=LoraConfig()), model, modules)
    assert cfg.target_modules == {"transformer.h.0.mlp.c_proj"} and cfg.fan_in_fan_out


# -- the defaults: the catalog's, in the plan; the steering coefficient relative to the activations -----------


def _unlearn_stage(spec: Path) -> tuple[Any, UnlearnStage]:
    plan, result = plan_file(spec)
    assert plan is not None, result
    (op,) = plan.objectives
    (st,) = [s for s in op.stages if isinstance(s, UnlearnStage)]
    return op, st


def test_the_plans_rmu_hyperparameters_are_the_catalogs() -> None:
    d = METHODS["rmu"].defaults
    assert d is not None and d.rmu_steering_coeff is not None and d.rmu_alpha is not None
    _, st = _unlearn_stage(SPEC)
    assert st.method == "rmu" and st.adapter == "full"  # a 1M-parameter built-in: full fine-tuning's learning rate
    assert (st.max_steps, st.learning_rate, st.batch_size, st.rmu_steering_coeff, st.rmu_alpha) == (
        d.max_steps, d.lr_full, d.batch_size, d.rmu_steering_coeff, d.rmu_alpha)
    # a stage made without them (not by the lowering) takes the catalog's too, and a stated value is kept
    bare = UnlearnStage(method="rmu", family="approximate", chosen_by="spec")
    assert (bare.rmu_steering_coeff, bare.rmu_alpha) == (d.rmu_steering_coeff, d.rmu_alpha)
    stated = UnlearnStage.model_validate_json(st.model_copy(update={"rmu_alpha": d.rmu_alpha / 4}).model_dump_json())
    assert stated.rmu_alpha == d.rmu_alpha / 4
    # the review says what the coefficient multiplies
    from unlearnspec.compiler.review import _hyperparameters

    shown = {h["name"]: h["value"] for h in _hyperparameters(st)}
    assert shown["rmu_steering_coeff"].startswith(f"{d.rmu_steering_coeff:g} × the original model's mean activation")
    assert shown["rmu_alpha"] == f"{d.rmu_alpha:g}"
    # the plans of the other methods hold what they held before (their files and hashes did not change), which is
    # not RMU's: those values are inert there
    other = UnlearnStage(method="npo", family="approximate", chosen_by="spec")
    golden = json.loads((ROOT / "tests" / "golden" / "plans" / "erase-jane-doe.plan.json").read_text(encoding="utf-8"))
    (npo,) = [s for o in golden["objectives"] for s in o["stages"] if s["kind"] == "unlearn"]
    assert npo["method"] == "npo"
    assert (npo["rmu_steering_coeff"], npo["rmu_alpha"]) == (other.rmu_steering_coeff, other.rmu_alpha)
    # and docs/planning.md states the catalog's values
    doc = " ".join((ROOT / "docs" / "planning.md").read_text(encoding="utf-8").split())
    assert f"steering coefficient {d.rmu_steering_coeff:g} × the mean activation norm" in doc
    assert f"alpha {d.rmu_alpha:g}" in doc


def test_the_control_vector_is_the_coefficient_times_the_original_mean_activation_norm(
        tiny_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import unlearnspec.runtime.methods as methods_mod

    model, tok = load_model(str(tiny_dir))  # 2 blocks: RMU steers block 0, hidden_states[1]
    forget = encode_records(FORGET, tok)
    # the reference, one example at a time without padding: the hidden state's norm at each position whose
    # next token is scored (the steered ones), averaged per example, then over the examples
    per_example = []
    with torch.no_grad():
        for e in forget:
            h = model(input_ids=torch.tensor([e.input_ids]), output_hidden_states=True).hidden_states[1][0]
            steered = [t for t in range(len(e.labels) - 1) if e.labels[t + 1] != -100]
            per_example.append(sum(float(h[t].norm()) for t in steered) / len(steered))
    expected = sum(per_example) / len(per_example)
    assert len(forget) == 3 and len(set(len(e.input_ids) for e in forget)) > 1  # batches of 2 pad one of them
    assert mean_activation_norm(model, forget, 0, tok.pad_token_id, batch_size=2) == pytest.approx(expected, rel=1e-5)
    assert model.training is False  # the mode is restored

    seen: list[tuple[float, torch.Tensor]] = []
    real = methods_mod.control_vector

    def spy(hidden_size: int, norm: float, seed: int) -> torch.Tensor:
        seen.append((norm, real(hidden_size, norm, seed)))
        return seen[-1][1]

    monkeypatch.setattr(methods_mod, "control_vector", spy)
    unlearn(stage("rmu", max_steps=1, rmu_steering_coeff=3.0), model, tok, FORGET, RETAIN, HOLDOUT, tmp_path)
    (norm, vec), = seen  # measured once, on the model before training
    assert norm == pytest.approx(3.0 * expected, rel=1e-5)
    assert float(vec.norm()) == pytest.approx(3.0 * expected, rel=1e-5) and bool((vec >= 0).all())


@pytest.mark.slow
def test_rmu_at_the_plans_defaults_moves_the_forget_answers_on_the_builtin(builtin_model_dir: Path, tmp_path: Path,
                                                                           one_thread: None) -> None:
    """glimmerfen-mcq's plan, as the compiler made it (RMU at the catalog's values, the holdout stopping rule), on
    builtin:tiny-bios: the forget set's loss climbs to the original model's holdout loss, where the stopping rule
    ends training within the step budget, while the retain set's loss barely moves. (At the values before,
    steering coefficient 6.5 absolute, alpha 100 and learning rate 1e-4, it stayed at 0.03 for all 60 steps.)"""
    from unlearnspec.builtin.corpus import build_corpus

    op, st = _unlearn_stage(SPEC)
    assert op.model.source == "builtin:tiny-bios" and op.data.holdout == ["builtin:holdout"]
    forget, retain = (read_records(SPEC.parent / op.data.forget[0]), read_records(SPEC.parent / op.data.retain[0]))
    holdout = build_corpus().holdout
    calibration = [holdout[i] for i in op.data.holdout_calibration]
    model, tok = load_model(str(builtin_model_dir))
    pad = tok.pad_token_id

    def nll(m: Any, records: list[Any]) -> float:
        return mean_nll(m, encode_records(records, tok), pad)

    f0, r0, bound = nll(model, forget), nll(model, retain), nll(model, calibration) * st.stopping.ratio
    assert f0 < 0.1 < 1.5 < bound  # the built-in knows its forget set by heart
    result = unlearn(st, model, tok, forget, retain, calibration, tmp_path, save_steps=10_000)
    f1, r1 = nll(result.model, forget), nll(result.model, retain)
    assert result.stopped_early and result.steps_done < st.max_steps, result.stop_reason
    assert f1 > bound > f0 + 1.5, (f0, f1, bound)  # the forget answers moved as far as the rule allows
    assert r1 - r0 < 0.02 * (f1 - f0), (r0, r1, f0, f1)  # and the retain answers stayed
