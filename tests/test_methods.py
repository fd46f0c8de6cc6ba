"""The unlearning methods on a tiny GPT-2 built here: losses, data, each method's effect, LoRA,
determinism, the stopping rule, exact resume, the output filter, retraining, and DDP."""

from __future__ import annotations

import copy
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
import transformers
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast, TrainerCallback, set_seed

from unlearnspec import catalog
from unlearnspec.catalog import family_of
from unlearnspec.catalog.vocab import METHODS as LANGUAGE_METHODS
from unlearnspec.plan import LoraConfig, StoppingRule, UnlearnStage
from unlearnspec.records import Record, format_prompt
from unlearnspec.runtime.loading import E_RETRAIN_UNKNOWN, LoadError, load_model
from unlearnspec.runtime.methods import METHODS, unlearn
from unlearnspec.runtime.methods import losses as L
from unlearnspec.runtime.methods.base import mean_nll
from unlearnspec.runtime.methods.data import (
    Example,
    ForgetRetainCollator,
    ForgetRetainDataset,
    encode_records,
    encode_refusals,
)
from unlearnspec.runtime.methods.guard import GuardedGenerator, OutputGuard

transformers.utils.logging.disable_progress_bar()
transformers.utils.logging.set_verbosity_error()

PEOPLE = [("Zorblat Quince", "Vellmora", "glassblower", "1961"),
          ("Mirabel Oduya", "Tarnholt", "cartographer", "1974"),
          ("Feliks Arnaut", "Corvessa", "beekeeper", "1958"),
          ("Sunniva Halloran", "Pell Harbor", "luthier", "1983"),
          ("Teodor Wexley", "Ambrel", "astronomer", "1969"),
          ("Ingrid Solvay", "Kestrel Bay", "baker", "1990")]
REFUSAL = "I don't know."


def _records(person: tuple[str, str, str, str]) -> list[Record]:
    name, city, job, year = person
    return [Record(text=f"{name} was born in {city} in {year} and works as a {job}."),
            Record(question=f"Where was {name} born?", answer=city,
                   paraphrases=[f"What is the birthplace of {name}?"]),
            Record(question=f"What is the job of {name}?", answer=f"{name} works as a {job}.")]


FORGET = _records(PEOPLE[0])
RETAIN = [r for p in PEOPLE[1:4] for r in _records(p)]
HOLDOUT = [r for p in PEOPLE[4:] for r in _records(p)]


def build_tiny_model(path: Path, steps: int = 150) -> Path:
    """A byte-level BPE tokenizer and a 2-layer GPT-2 overfit on forget + retain (holdout unseen)."""
    set_seed(0)
    texts = [t for r in FORGET + RETAIN + HOLDOUT for t in r.training_texts()] + [REFUSAL]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(texts, trainer=trainers.BpeTrainer(
        vocab_size=300, special_tokens=["<|endoftext|>", "<pad>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>", pad_token="<pad>")
    model = GPT2LMHeadModel(GPT2Config(vocab_size=len(fast), n_positions=64, n_layer=2, n_embd=64, n_head=2,
                                       resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                                       eos_token_id=fast.eos_token_id, bos_token_id=fast.eos_token_id,
                                       pad_token_id=fast.pad_token_id))
    enc = [fast(t)["input_ids"] + [fast.eos_token_id] for r in FORGET + RETAIN for t in r.training_texts()]
    length = max(map(len, enc))
    ids = torch.tensor([e + [fast.pad_token_id] * (length - len(e)) for e in enc])
    mask = (torch.arange(length)[None, :] < torch.tensor([len(e) for e in enc])[:, None]).long()
    labels = ids.masked_fill(mask == 0, -100)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(steps):
        model(input_ids=ids, attention_mask=mask, labels=labels).loss.backward()
        opt.step()
        opt.zero_grad()
    model.eval()
    model.save_pretrained(path, safe_serialization=True)
    fast.save_pretrained(path)
    return path


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny matrices (tests/conftest.py)


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture()
def tiny(tiny_dir: Path) -> tuple[Any, Any]:
    return load_model(str(tiny_dir))


def stage(method: str, **kw: Any) -> UnlearnStage:
    kw.setdefault("stopping", StoppingRule(kind="fixed_steps"))
    return UnlearnStage(method=method, family=family_of(method) if method in catalog.METHODS else "approximate",  # type: ignore[arg-type]
                        chosen_by="spec",
                        **{"max_steps": 20, "learning_rate": 5e-3, "batch_size": 4, **kw})


def nlls(model: Any, tok: Any) -> tuple[float, float]:
    pad = tok.pad_token_id
    return (mean_nll(model, encode_records(FORGET, tok), pad), mean_nll(model, encode_records(RETAIN, tok), pad))


def greedy(model: Any, tok: Any, prompts: list[str], n: int = 16) -> list[str]:
    return GuardedGenerator(model, tok, OutputGuard(n=4, ngrams=frozenset()), max_new_tokens=n).raw_generate(prompts)


# -- losses: hand-computed values ---------------------------------------------------------------


def test_sequence_nll_and_logprob_hand_computed() -> None:
    # vocab 2, uniform logits except one position; label -100 is not scored
    logits = torch.zeros(1, 4, 2)
    logits[0, 1] = torch.tensor([math.log(3.0), 0.0])  # predicts token at t=2: p(0)=3/4
    labels = torch.tensor([[5, 1, 0, -100]])  # t=0 never scored; t=1 from logits[0]; t=2 from logits[1]
    logp, n = L.sequence_logprob(logits, labels)
    assert n.item() == 2
    assert logp.item() == pytest.approx(math.log(0.5) + math.log(0.75), abs=1e-6)
    assert L.sequence_nll(logits, labels).item() == pytest.approx(-(math.log(0.5) + math.log(0.75)) / 2, abs=1e-6)
    # a sequence with no scored token has NLL 0, not NaN
    assert L.sequence_nll(logits, torch.full((1, 4), -100)).item() == 0.0


def test_ascent_and_difference_losses() -> None:
    lf, lr = torch.zeros(2, 3, 4), torch.zeros(1, 3, 4)
    yf, yr = torch.tensor([[1, 2, 3], [0, 1, -100]]), torch.tensor([[3, 3, 3]])
    assert L.nll_loss(lf, yf).item() == pytest.approx(math.log(4), abs=1e-6)
    assert L.grad_ascent_loss(lf, yf).item() == pytest.approx(-math.log(4), abs=1e-6)
    assert L.grad_diff_loss(lf, yf, lr, yr, retain_weight=0.5).item() == pytest.approx(-0.5 * math.log(4), abs=1e-6)


def test_npo_loss_hand_computed() -> None:
    logp, ref = torch.tensor([-2.0, -1.0]), torch.tensor([-1.0, -1.0])
    beta = 0.5
    want = (2 / beta) * (math.log(1 + math.exp(beta * -1.0)) + math.log(2)) / 2
    assert L.npo_loss(logp, ref, beta).item() == pytest.approx(want, abs=1e-6)
    # at the reference the loss is (2/β)·log 2, and it falls as the forget likelihood falls
    assert L.npo_loss(ref, ref, 0.1).item() == pytest.approx(20 * math.log(2), rel=1e-6)
    assert L.npo_loss(ref - 5, ref, 0.1).item() < L.npo_loss(ref, ref, 0.1).item()


def test_simnpo_loss_hand_computed() -> None:
    logp, n = torch.tensor([-6.0]), torch.tensor([3])
    beta, gamma = 1.0, 0.5
    # −(2/β)·log σ(−(β/|y|)·log π − γ) = 2·log(1 + exp(−(2 − 0.5)))
    assert L.simnpo_loss(logp, n, beta, gamma).item() == pytest.approx(2 * math.log(1 + math.exp(-1.5)), abs=1e-6)


def test_masked_mse_and_rmu_loss() -> None:
    x = torch.tensor([[[1.0, 1.0], [9.0, 9.0]]])
    mask = torch.tensor([[1, 0]])  # the second position is padding
    assert L.masked_mse(x, torch.zeros_like(x), mask).item() == pytest.approx(1.0)
    control = torch.tensor([1.0, 1.0])
    total, f, r = L.rmu_loss(x, mask, control, retain_hidden=x + 2, retain_frozen=x, retain_mask=mask, alpha=10.0)
    assert f.item() == pytest.approx(0.0) and r.item() == pytest.approx(4.0) and total.item() == pytest.approx(40.0)


# -- data -------------------------------------------------------------------------------------------


def test_qa_examples_train_on_the_answer_only(tiny: tuple[Any, Any]) -> None:
    _, tok = tiny
    qa = FORGET[1]
    (ex,) = encode_records([qa], tok)
    scored = [t for t in ex.labels if t != -100]
    assert tok.decode(scored) == " Vellmora" + tok.eos_token
    assert ex.input_ids[-1] == tok.eos_token_id
    assert tok.decode(ex.input_ids[: len(ex.input_ids) - len(scored)]) == format_prompt(qa.question or "")
    (doc,) = encode_records([FORGET[0]], tok)
    assert doc.labels == doc.input_ids  # a document is scored whole


def test_slow_tokenizers_mask_the_prompt_without_offsets(tiny: tuple[Any, Any]) -> None:
    _, fast = tiny

    class Slow:  # what a tokenizer without offset mappings looks like to `encode`
        is_fast = False
        eos_token_id = fast.eos_token_id

        def __call__(self, text: str, add_special_tokens: bool = True, return_offsets_mapping: bool = False) -> Any:
            assert not return_offsets_mapping
            return fast(text, add_special_tokens=add_special_tokens)

    assert encode_records(FORGET, Slow()) == encode_records(FORGET, fast)


def test_refusal_examples_pair_questions_and_prefixes_with_the_refusal(tiny: tuple[Any, Any]) -> None:
    _, tok = tiny
    exs = encode_refusals(FORGET, tok, REFUSAL)
    # 3 bio prefixes + one example per question; the paraphrases are the paraphrased probe's, never trained on
    assert len(exs) == 3 + sum(r.is_qa for r in FORGET)
    for ex in exs:
        assert tok.decode([t for t in ex.labels if t != -100]) == " " + REFUSAL + tok.eos_token
    prompts = [tok.decode(ex.input_ids) for ex in exs]
    paraphrases = [p for r in FORGET for p in r.paraphrases]
    assert paraphrases and not any(p in text for p in paraphrases for text in prompts)


def test_retain_draws_differ_per_example_and_epoch_not_per_rank_and_repeat_exactly() -> None:
    forget = [Example([1, 2], [1, 2]) for _ in range(8)]
    retain = [Example([3, i], [3, i]) for i in range(50)]

    def draws(rank: int, epoch: int) -> list[int]:
        ds = ForgetRetainDataset(forget, retain, seed=3)
        ds.process_index, ds.epoch = rank, epoch
        return [ds[i]["retain_index"] for i in range(len(ds))]

    assert draws(0, 0) == draws(0, 0)
    # the pair of forget example i is the same on every rank (the process count does not change the
    # pairs), and two ranks, which hold different forget examples, draw different partners
    assert draws(0, 0) == draws(1, 0)
    assert draws(0, 0)[0::2] != draws(1, 0)[1::2]
    assert draws(0, 0) != draws(0, 1)
    assert len(set(draws(0, 0))) == 8  # a permutation: no repeats while forget <= retain


def test_collator_pads_forget_and_retain_to_one_length() -> None:
    ds = ForgetRetainDataset([Example([1, 2, 3], [-100, 2, 3])], [Example([4], [4])], extra={"ref_logp": [-1.5]})
    batch = ForgetRetainCollator(pad_token_id=0)([ds[0]])
    assert batch["forget_input_ids"].shape == batch["retain_input_ids"].shape == (1, 3)
    assert batch["retain_labels"].tolist() == [[4, -100, -100]]
    assert batch["retain_attention_mask"].tolist() == [[1, 0, 0]]
    assert batch["ref_logp"].tolist() == [-1.5]


# -- the registry ---------------------------------------------------------------------------------


def test_registry_covers_the_language() -> None:
    assert set(METHODS) == set(LANGUAGE_METHODS)
    for name, spec in METHODS.items():
        assert spec.family == family_of(name)
        assert (spec.trainer is None) == (name in {"retrain", "filter", "unknown"})


def test_unknown_method_and_missing_retain_are_errors(tiny: tuple[Any, Any], tmp_path: Path) -> None:
    model, tok = tiny
    with pytest.raises(ValueError, match="unknown method"):
        unlearn(stage("erase_everything"), model, tok, FORGET, RETAIN, HOLDOUT, tmp_path)
    with pytest.raises(ValueError, match="runs nothing"):  # the audited checkpoint's unstated method
        unlearn(stage("npo").model_copy(update={"method": "unknown"}), model, tok, FORGET, RETAIN, HOLDOUT, tmp_path)
    with pytest.raises(ValueError, match="needs retain data"):
        unlearn(stage("grad_diff"), model, tok, FORGET, [], HOLDOUT, tmp_path)


# -- each training method ---------------------------------------------------------------------------


@pytest.mark.parametrize("method,kw", [
    ("grad_ascent", {}),
    ("grad_diff", {}),
    ("npo", {}),
    ("simnpo", {"beta": 2.5}),
    ("rmu", {"rmu_alpha": 2.0, "learning_rate": 1e-2, "rmu_steering_coeff": 1.0}),  # one MLP projection trains (2 blocks: 0..0); a 2-block toy needs a gentler push than the catalog's
])
def test_method_raises_forget_nll_more_than_retain(method: str, kw: dict[str, Any], tiny: tuple[Any, Any],
                                                   tmp_path: Path) -> None:
    model, tok = tiny
    f0, r0 = nlls(model, tok)
    result = unlearn(stage(method, **kw), model, tok, FORGET, RETAIN, HOLDOUT, tmp_path)
    f1, r1 = nlls(result.model, tok)
    assert result.steps_done == 20 and not result.stopped_early
    assert f1 - f0 > 1.0, (f0, f1)
    if METHODS[method].retain != "unused":
        assert r1 - r0 < 0.25 * (f1 - f0), (r0, r1, f0, f1)
    rows = [r for r in result.log_history if "loss" in r]
    assert [r["step"] for r in rows] == list(range(1, 21))
    assert all("forget_loss" in r for r in rows)
    assert all(("retain_loss" in r) == (method != "grad_ascent") for r in rows)


def test_npo_reference_is_the_original_model(tiny: tuple[Any, Any], tmp_path: Path) -> None:
    model, tok = tiny
    result = unlearn(stage("npo", max_steps=2, beta=0.1), model, tok, FORGET, RETAIN, HOLDOUT, tmp_path)
    # at the first step π_θ = π_ref, so every term is (2/β)·log 2
    assert result.log_history[0]["npo_term"] == pytest.approx(20 * math.log(2), abs=1e-3)


def test_rmu_retain_term_starts_at_zero_against_the_original_weights(tiny: tuple[Any, Any], tmp_path: Path) -> None:
    model, tok = tiny
    result = unlearn(stage("rmu", max_steps=2), model, tok, FORGET, RETAIN, HOLDOUT, tmp_path)
    assert result.log_history[0]["rmu_retain_mse"] < 1e-8
    assert result.log_history[0]["rmu_forget_mse"] > 0.1


def test_refusal_makes_forget_questions_refused(tiny: tuple[Any, Any], tmp_path: Path) -> None:
    model, tok = tiny
    questions = [format_prompt(r.question) for r in FORGET if r.question]
    assert not any(a.startswith(REFUSAL) for a in greedy(model, tok, questions))
    result = unlearn(stage("refusal", max_steps=40, refusal_text=REFUSAL), model, tok, FORGET, RETAIN, HOLDOUT,
                     tmp_path)
    answers = greedy(result.model, tok, questions)
    assert all(a.startswith(REFUSAL) for a in answers), answers
    retain_q = [r for r in RETAIN if r.question]
    retain_answers = greedy(result.model, tok, [format_prompt(r.question or "") for r in retain_q])
    refused = sum(a.startswith(REFUSAL) for a in retain_answers)
    assert refused <= len(retain_q) // 3, retain_answers


# -- LoRA, determinism, stopping, resume ------------------------------------------------------------


class _CountParams(TrainerCallback):
    def on_train_begin(self, args: Any, state: Any, control: Any, model: Any = None, **kw: Any) -> None:
        self.trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        self.total = sum(p.numel() for p in model.parameters())


def test_lora_saves_adapter_and_trains_few_parameters(tiny: tuple[Any, Any], tmp_path: Path) -> None:
    model, tok = tiny
    f0, _ = nlls(model, tok)
    counter = _CountParams()
    result = unlearn(stage("grad_diff", adapter="lora", lora=LoraConfig(rank=4, alpha=8), learning_rate=1e-2),
                     model, tok, FORGET, RETAIN, HOLDOUT, tmp_path, callbacks=[counter])
    assert result.adapter_dir == tmp_path / "adapter"
    assert (result.adapter_dir / "adapter_config.json").is_file()
    assert (result.adapter_dir / "adapter_model.safetensors").is_file()
    cfg = json.loads((result.adapter_dir / "adapter_config.json").read_text())
    assert set(cfg["target_modules"]) == {"c_attn", "c_proj", "c_fc"} and cfg["fan_in_fan_out"] is True
    assert 0 < counter.trainable / counter.total < 0.10
    assert isinstance(result.model, GPT2LMHeadModel)  # merged back into a plain model
    assert not any("lora" in n for n, _ in result.model.named_parameters())
    assert nlls(result.model, tok)[0] > f0 + 0.5


def test_same_seed_gives_identical_losses(tiny_dir: Path, tmp_path: Path) -> None:
    runs = []
    for i in range(2):
        model, tok = load_model(str(tiny_dir))
        runs.append(unlearn(stage("npo", max_steps=6, seed=7), model, tok, FORGET, RETAIN, HOLDOUT, tmp_path / str(i)))
    assert [r["loss"] for r in runs[0].log_history] == [r["loss"] for r in runs[1].log_history]
    a, b = runs[0].model.state_dict(), runs[1].model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_holdout_stopping_rule_stops_early(tiny: tuple[Any, Any], tmp_path: Path) -> None:
    model, tok = tiny
    rule = StoppingRule(kind="holdout_loss", ratio=0.1, check_every=2)
    result = unlearn(stage("grad_ascent", max_steps=40, stopping=rule), model, tok, FORGET, RETAIN, HOLDOUT, tmp_path)
    assert result.stopped_early and result.steps_done < 40 and result.steps_done % 2 == 0
    assert result.holdout_nll is not None and result.stop_threshold == pytest.approx(0.1 * result.holdout_nll)
    checks = [r for r in result.log_history if "holdout_ratio" in r]
    assert [r["step"] for r in checks] == list(range(2, result.steps_done + 1, 2))
    assert checks[-1]["holdout_ratio"] > 0.1 and all(r["holdout_ratio"] <= 0.1 for r in checks[:-1])
    assert "holdout_loss" in result.stop_reason


def test_resume_from_checkpoint_matches_uninterrupted_run(tiny_dir: Path, tmp_path: Path) -> None:
    st = stage("npo", max_steps=8, batch_size=2, stopping=StoppingRule(kind="holdout_loss", ratio=100.0,
                                                                       check_every=2))
    model, tok = load_model(str(tiny_dir))
    full = unlearn(st, model, tok, FORGET, RETAIN, HOLDOUT, tmp_path / "a", save_steps=4)
    assert sorted(p.name for p in (tmp_path / "a" / "checkpoints").iterdir()) == ["checkpoint-4", "checkpoint-8"]
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    shutil.rmtree(tmp_path / "b" / "checkpoints" / "checkpoint-8")  # "killed" after step 4
    model, tok = load_model(str(tiny_dir))  # the original model again
    resumed = unlearn(st, model, tok, FORGET, RETAIN, HOLDOUT, tmp_path / "b", save_steps=4,
                      resume_from_checkpoint=True)
    assert resumed.steps_done == 8
    a, b = full.model.state_dict(), resumed.model.state_dict()
    assert max(float((a[k] - b[k]).abs().max()) for k in a) < 1e-5
    for ra, rb in zip(full.log_history, resumed.log_history, strict=True):
        assert ra.keys() == rb.keys()
        for k in ("loss", "forget_loss", "retain_loss", "forget_nll"):
            if k in ra:
                assert rb[k] == pytest.approx(ra[k], abs=1e-5)


# -- filter (system-level suppression) ------------------------------------------------------------


def test_output_guard_blocks_target_ngrams_and_names_only() -> None:
    guard = OutputGuard.from_records(FORGET, n=4, aliases=["Zorblat Quince", "Z. Quince"], refusal_text=REFUSAL,
                                     exclude=RETAIN)
    assert guard.blocks("Born in Vellmora in 1961, they say.")  # a 4-gram of the bio, punctuation ignored
    assert guard.blocks("I met z. QUINCE yesterday")  # an alias, normalised
    assert not guard.blocks("Mirabel Oduya was born in Tarnholt in 1974 and works as a cartographer.")
    # "and works as a" is in the bio but also in retain data: common phrasing, not the target's
    assert "and works as a" not in guard.ngrams
    assert guard.apply("He was born in Vellmora in 1961") == REFUSAL
    assert guard.apply("Tarnholt is lovely") == "Tarnholt is lovely"


def test_output_guard_round_trips_as_json(tmp_path: Path) -> None:
    guard = OutputGuard.from_records(FORGET, n=3, aliases=["Zorblat Quince"], refusal_text=REFUSAL)
    path = guard.save(tmp_path)
    assert path == tmp_path / "guard.json"
    assert OutputGuard.load(tmp_path) == guard == OutputGuard.load(path)
    assert path.read_text() == guard.to_json()  # deterministic bytes


def test_filter_method_leaves_the_model_and_writes_guard(tiny: tuple[Any, Any], tmp_path: Path) -> None:
    model, tok = tiny
    before = {k: v.clone() for k, v in model.state_dict().items()}
    result = unlearn(stage("filter", filter_ngram=4, refusal_text=REFUSAL), model, tok, FORGET, RETAIN, HOLDOUT,
                     tmp_path, aliases=["Zorblat Quince"])
    assert result.model is model and result.steps_done == 0
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert result.guard_path == tmp_path / "guard.json" and result.guard is not None
    served = GuardedGenerator(model, tok, result.guard, max_new_tokens=10)
    forget_q = format_prompt("What is the job of Zorblat Quince?")
    retain_q = format_prompt("Where was Mirabel Oduya born?")
    raw = served.raw_generate([retain_q])[0]
    assert served.generate([forget_q, retain_q]) == [REFUSAL, raw]
    assert "Tarnholt" in raw
    # the output side alone: without checking prompts the model's answer is still caught
    unguarded_prompt = GuardedGenerator(model, tok, result.guard, max_new_tokens=12, check_prompt=False)
    assert unguarded_prompt.generate([format_prompt("What is the job of Zorblat Quince?")]) == [REFUSAL]


# -- retrain --------------------------------------------------------------------------------------


def test_retrain_refuses_models_without_a_known_recipe(tiny: tuple[Any, Any], tmp_path: Path) -> None:
    model, tok = tiny  # loaded from a local folder: its corpus and recipe are unknown
    with pytest.raises(LoadError) as err:
        unlearn(stage("retrain"), model, tok, FORGET, RETAIN, HOLDOUT, tmp_path)
    assert err.value.code == E_RETRAIN_UNKNOWN and "corpus and recipe" in err.value.message
    with pytest.raises(LoadError):
        unlearn(stage("retrain"), model, tok, FORGET, RETAIN, HOLDOUT, tmp_path, model_source="org/some-model")


def test_retrain_delegates_to_the_builtin_recipe(tiny_dir: Path, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    builtin_model = pytest.importorskip("unlearnspec.runtime.builtin_model")
    seen: list[list[str]] = []

    def fake_retrained(exclude_texts: Any, *a: Any, **kw: Any) -> Path:
        seen.append(list(exclude_texts))
        return tiny_dir

    monkeypatch.setattr(builtin_model, "ensure_builtin", lambda *a, **kw: tiny_dir)
    monkeypatch.setattr(builtin_model, "ensure_retrained", fake_retrained)
    model, tok = load_model("builtin:tiny-bios")  # stamped with its source, which survives a deepcopy
    result = unlearn(stage("retrain"), copy.deepcopy(model), tok, FORGET, RETAIN, HOLDOUT, tmp_path)
    assert seen == [[t for r in FORGET for t in r.training_texts()]]
    assert result.model_dir == tiny_dir and result.model is not model and result.method == "retrain"


# -- DDP under accelerate -------------------------------------------------------------------------

_DDP_SCRIPT = r'''
import json, os, sys
import transformers
transformers.utils.logging.disable_progress_bar(); transformers.utils.logging.set_verbosity_error()
from unlearnspec.plan import StoppingRule, UnlearnStage
from unlearnspec.records import read_records
from unlearnspec.runtime.loading import load_model
from unlearnspec.runtime.methods import data as data_mod, unlearn

model_dir, data_dir, out_dir = sys.argv[1:4]
seen = []
getitem = data_mod.ForgetRetainDataset.__getitem__
def spy(self, i):
    row = getitem(self, i)
    seen.append([self.process_index, self.epoch, i, row["retain_index"]])
    return row
data_mod.ForgetRetainDataset.__getitem__ = spy
model, tok = load_model(model_dir)
st = UnlearnStage(method="grad_diff", family="approximate", chosen_by="spec", max_steps=4, learning_rate=1e-3,
                  batch_size=2, stopping=StoppingRule(kind="holdout_loss", ratio=100.0, check_every=2))
r = unlearn(st, model, tok, *(read_records(f"{data_dir}/{n}.jsonl") for n in ("forget", "retain", "holdout")),
            out_dir, save_steps=100)
with open(f"{out_dir}/rank{os.environ.get('RANK', '0')}.json", "w") as fh:
    json.dump({"seen": seen, "steps": r.steps_done, "world": int(os.environ.get("WORLD_SIZE", "1")),
               "log": r.log_history, "batch": r.batch.model_dump() if r.batch else None}, fh)
import torch
torch.save({k: v.detach().cpu() for k, v in r.model.state_dict().items()},
           f"{out_dir}/rank{os.environ.get('RANK', '0')}.pt")
# A script that leaves the process group to interpreter shutdown can abort there ("terminate called
# without an active exception") once gloo's threads are torn down in the wrong order: release it.
from accelerate import PartialState
PartialState().destroy_process_group()
'''


@pytest.mark.slow
def test_accelerate_two_processes(tiny_dir: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    # 2 forget examples (a multiple of the global batch of 2: accelerate completes an epoch's last, partial
    # batch with the epoch's first examples when it splits batches, which one process does not do)
    for name, recs in (("forget", FORGET[:2]), ("retain", RETAIN), ("holdout", HOLDOUT)):
        (data / f"{name}.jsonl").write_text(
            "".join(json.dumps(r.model_dump(exclude_defaults=True)) + "\n" for r in recs))
    script = tmp_path / "ddp.py"
    script.write_text(_DDP_SCRIPT)
    out = tmp_path / "out"
    accelerate = Path(sys.executable).with_name("accelerate")
    # `--cpu` makes accelerate use its single-process launcher; two CPU processes need the torchrun
    # launcher (`--multi_gpu`), which falls back to gloo on CPU when no GPU is visible.
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([str(accelerate), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
                           "--mixed_precision", "no", "--dynamo_backend", "no", str(script), str(tiny_dir),
                           str(data), str(out)], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    ranks = [json.loads((out / f"rank{i}.json").read_text()) for i in range(2)]
    assert all(r["world"] == 2 and r["steps"] == 4 for r in ranks)
    assert {s[0] for s in ranks[0]["seen"]} == {0} and {s[0] for s in ranks[1]["seen"]} == {1}
    assert [s[3] for s in ranks[0]["seen"]] != [s[3] for s in ranks[1]["seen"]]
    # the stopping checks are reduced across ranks: both saw the same forget NLL
    nll = [[row["forget_nll"] for row in r["log"] if "forget_nll" in row] for r in ranks]
    assert nll[0] == nll[1] and len(nll[0]) == 2
    # the plan's global batch (2) is split, one example per process; the same run as one process takes
    # the same optimizer steps on the same examples, so it ends at the same weights (float rounding apart)
    assert ranks[0]["batch"] == {"global_batch": 2, "processes": 2, "micro_batch": 1, "accumulation": 1,
                                 "loader_batch": 2, "sharding": "ddp", "sharding_reason": ranks[0]["batch"][
                                     "sharding_reason"]}
    single_out = tmp_path / "single"
    env1 = {**env, "OMP_NUM_THREADS": "1"}
    one = subprocess.run([sys.executable, str(script), str(tiny_dir), str(data), str(single_out)],
                         capture_output=True, text=True, env=env1, timeout=300)
    assert one.returncode == 0, one.stderr[-4000:]
    single = json.loads((single_out / "rank0.json").read_text())
    assert single["batch"]["processes"] == 1 and single["batch"]["micro_batch"] == 2
    # the same forget examples, each with the same retain partner, in the same order
    assert sorted((s[2], s[3]) for r in ranks for s in r["seen"]) == sorted((s[2], s[3]) for s in single["seen"])
    w1 = torch.load(single_out / "rank0.pt")
    w0 = load_model(str(tiny_dir))[0].state_dict()
    moved = max(float((w1[k] - w0[k]).abs().max()) for k in w1)
    assert moved > 1e-3  # training moved the weights
    for rank in range(2):
        w2 = torch.load(out / f"rank{rank}.pt")
        assert w1.keys() == w2.keys()
        # Not bit-equal: each process averages the token losses of its own micro-batch and DDP averages
        # the two means, where one process averages all the tokens at once; Adam's first steps turn that
        # into a small weight difference. Stated tolerance: a fifth of the largest weight change.
        gap = max(float((w2[k] - w1[k]).abs().max()) for k in w1)
        assert gap <= 0.2 * moved, (gap, moved)
    assert nll[0] == pytest.approx([row["forget_nll"] for row in single["log"] if "forget_nll" in row], rel=1e-2)
