"""The Llama-architecture built-ins: ``builtin:tiny-bios-chat`` and the GPU recipe ``builtin:bios-100m``.

Fast tests check the registry, the recipes (pure data), the chat tokenizer the recipe builds, the
training items (documents, and each QA pair in chat form; what exact retraining drops), the plan the
compiler writes (prompt format, template sha256, parameter count against a model instantiated from the
recipe) and the LoRA targets. The slow ones train a shrunk copy of the chat recipe (same architecture,
tokenizer and corpus; fewer epochs and a smaller width) and run every unlearning method on it, and run
the example privacy spec end to end on the real ``builtin:tiny-bios-chat``.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from unlearnspec.builtin import corpus as C
from unlearnspec.builtin.llama_recipes import BIOS_100M_RECIPE, CHAT_RECIPE, CHAT_TEMPLATE
from unlearnspec.builtin.recipe import RECIPE, RECIPES, recipe_for, recipe_hash
from unlearnspec.builtin.scaled import corpus_for, scaled_corpus
from unlearnspec.builtin.training import training_items

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "specs" / "erase-jane-doe.unlearn"
CHAT = "builtin:tiny-bios-chat"


def _forget_texts() -> list[str]:
    return [t for r in C.build_corpus().forget for t in r.training_texts()]


# -- registry and recipes ---------------------------------------------------------------------------


def test_registry_maps_each_name_to_its_recipe_and_the_compiler_reads_it() -> None:
    from unlearnspec.compiler.resolve_values import BUILTIN_MODELS

    assert {"builtin:tiny-bios", CHAT, "builtin:bios-100m"} <= set(RECIPES)  # (a new built-in is added, not swapped)
    assert all(recipe_for(name)["name"] == name for name in RECIPES)
    assert tuple(RECIPES) == BUILTIN_MODELS
    assert recipe_for("builtin:tiny-bios") is RECIPE
    hashes = {recipe_hash(r) for r in RECIPES.values()}
    assert len(hashes) == len(RECIPES)  # each built-in has its own cache entry


def test_the_pages_that_list_the_built_ins_name_every_one() -> None:
    """RT101 and RT105 tell a user which built-ins exist (the catalog cannot import the registry, so it names them in
    its prose): a built-in added to the registry must be named there too (docs/architecture.md, adding a built-in)."""
    from unlearnspec.catalog import CODES

    for code in ("RT101", "RT105"):
        page = CODES[code]
        text = " ".join(str(getattr(page, f, "") or "") for f in ("summary", "why", "instead"))
        missing = [name for name in RECIPES if f"`{name}`" not in text]
        assert not missing, f"{code} (unlearnspec/catalog/codes_front.py) does not name {missing}"


def test_chat_recipe_is_a_llama_with_grouped_query_attention() -> None:
    m = CHAT_RECIPE["model"]
    assert m["architecture"] == "llama"
    assert m["num_key_value_heads"] < m["num_attention_heads"] and m["num_attention_heads"] % m["num_key_value_heads"] == 0
    assert CHAT_RECIPE["tokenizer"]["chat_template"] == CHAT_TEMPLATE
    assert "<|eot_id|>" in CHAT_RECIPE["tokenizer"]["extra_special_tokens"]
    assert CHAT_RECIPE["corpus"] == RECIPE["corpus"]  # the same corpus as the GPT-2 built-in


def test_recipe_hash_covers_the_chat_template() -> None:
    changed = copy.deepcopy(CHAT_RECIPE)
    changed["tokenizer"]["chat_template"] = CHAT_TEMPLATE.replace("<|eot_id|>", "<|end|>")
    assert recipe_hash(changed) != recipe_hash(CHAT_RECIPE)


# -- the corpus and the training items ----------------------------------------------------------------


def test_chat_items_train_each_qa_pair_in_chat_form_only() -> None:
    corpus = C.build_corpus()
    records = C.training_records(corpus)
    docs = [r.text for r in records if r.text]
    qa = [(r.question, r.answer) for r in records if r.is_qa]
    items = training_items(CHAT_RECIPE)
    chat = [(i.question, i.answer) for i in items if i.is_chat]
    texts = [i.text for i in items if not i.is_chat]
    assert chat == qa
    assert texts == docs  # documents only: no plain `Question: ...` copy of a QA pair
    assert len(items) == len(docs) + len(qa)
    assert CHAT_RECIPE["qa_formats"] == ["chat"] and BIOS_100M_RECIPE["qa_formats"] == ["chat"]
    # the GPT-2 recipe's items are exactly its training texts
    assert [i.text for i in training_items(RECIPE)] == C.training_texts()
    # a recipe may still train both forms (a recipe change: another hash)
    both = {**CHAT_RECIPE, "qa_formats": ["chat", "plain"]}
    assert len(training_items(both)) == len(docs) + 2 * len(qa) and recipe_hash(both) != recipe_hash(CHAT_RECIPE)


def test_excluding_the_forget_set_drops_its_qa_pairs_and_documents() -> None:
    forget = C.build_corpus().forget
    forget_q = {r.question for r in forget if r.is_qa}
    forget_docs = {r.text for r in forget if r.text}
    kept = training_items(CHAT_RECIPE, exclude=_forget_texts())
    assert not any(i.is_chat and i.question in forget_q for i in kept)
    assert not any(i.text in forget_docs for i in kept)
    n_qa = sum(r.is_qa for r in forget)
    n_docs = sum(bool(r.text) for r in forget)
    assert len(training_items(CHAT_RECIPE)) - len(kept) == n_qa + n_docs


def test_scaled_corpus_adds_retain_people_and_keeps_every_other_split() -> None:
    base = C.build_corpus()
    big = scaled_corpus(300, 7)
    for split in ("forget", "neighbors", "holdout", "character", "work", "hazard", "hazard_neighbors"):
        assert big.split(split) == base.split(split)
    assert big.retain[: len(base.retain)] == base.retain
    extra = big.people["retain"][len(base.people["retain"]):]
    assert len(extra) == 300
    names = [p.name for ps in big.people.values() for p in ps]
    assert len(set(names)) == len(names)  # no extra person shares a name with anyone
    assert len(big.retain) - len(base.retain) == 300 * (1 + len(C.FACTS))  # a bio and five QA pairs each
    assert corpus_for(BIOS_100M_RECIPE).people["retain"][-1].name == scaled_corpus(3000, C.CORPUS_SEED + 100).people["retain"][-1].name
    assert len(corpus_for(BIOS_100M_RECIPE).people["retain"]) >= 3000


def test_scaled_corpus_hash_is_the_corpus_hash() -> None:
    from unlearnspec.builtin.scaled import _scaled_sha256

    assert _scaled_sha256(40, 3) == C.corpus_sha256(scaled_corpus(40, 3))


# -- the tokenizer the chat recipe builds -----------------------------------------------------------------


@pytest.fixture(scope="module")
def chat_tokenizer() -> Any:
    from unlearnspec.runtime.lm_training import train_bpe_tokenizer

    return train_bpe_tokenizer(C.tokenizer_texts(), CHAT_RECIPE["tokenizer"])


def test_chat_tokenizer_renders_the_template_and_masks_the_answer(chat_tokenizer: Any) -> None:
    from unlearnspec.runtime.prompting import IGNORE_INDEX, PromptFormat

    tok = chat_tokenizer
    fmt = PromptFormat.of(tok)
    assert fmt.kind == "chat" and fmt.template_sha256 == hashlib.sha256(CHAT_TEMPLATE.encode()).hexdigest()
    assert fmt.end_of_turn(tok) == "<|eot_id|>"
    prompt = fmt.prompt(tok, "Where was Jane Doe born?")
    assert prompt == ("<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nWhere was Jane Doe born?<|eot_id|>"
                      "<|start_header_id|>assistant<|end_header_id|>\n\n")
    for special in ("<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"):
        assert len(tok(special, add_special_tokens=False)["input_ids"]) == 1  # never split
    ids, labels = fmt.encode(tok, "Where was Jane Doe born?", "She was born in Port Calder.")
    scored = [i for i, lab in zip(ids, labels, strict=True) if lab != IGNORE_INDEX]
    assert tok.decode(scored) == "She was born in Port Calder.<|eot_id|>"
    eot = tok.convert_tokens_to_ids("<|eot_id|>")
    assert eot in fmt.stop_token_ids(tok) and tok.eos_token_id in fmt.stop_token_ids(tok)


def test_encode_items_scores_documents_whole_and_chat_items_on_the_answer(chat_tokenizer: Any) -> None:
    from unlearnspec.builtin.training import TrainItem
    from unlearnspec.runtime.lm_training import encode_items

    tok = chat_tokenizer
    (doc_ids, doc_labels), (chat_ids, chat_labels) = encode_items(
        [TrainItem(text="Jane Doe is a marine biologist."), TrainItem(question="Who?", answer="Jane.")], tok, 256)
    assert doc_ids == doc_labels and doc_ids[-1] == tok.eos_token_id
    assert tok.decode([t for t, lab in zip(chat_ids, chat_labels, strict=True) if lab != -100]) == "Jane.<|eot_id|>"


# -- the plan ----------------------------------------------------------------------------------------------


def _plan(tmp_path: Path, model: str) -> dict[str, Any]:
    text = re.sub(r'(?m)^(\s*)model\s+"[^"]*"', rf'\1model   "{model}"', SPEC.read_text(encoding="utf-8"), count=1)
    spec = tmp_path / "spec.unlearn"
    spec.write_text(text, encoding="utf-8")
    (tmp_path / "data").symlink_to(SPEC.parent / "data")
    out = tmp_path / "plan.json"
    done = subprocess.run([sys.executable, "-m", "unlearnspec", "plan", str(spec), "-o", str(out)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return dict(json.loads(out.read_text()))


def test_plan_records_the_chat_builtin_prompt_format_and_size(tmp_path: Path) -> None:
    from unlearnspec.runtime.lm_training import llama_config

    plan = _plan(tmp_path, CHAT)
    obj = plan["objectives"][0]
    model = obj["model"]
    assert model["kind"] == "builtin" and model["source"] == CHAT
    assert model["prompt_format"] == "chat"
    assert model["chat_template_sha256"] == hashlib.sha256(CHAT_TEMPLATE.encode()).hexdigest()
    assert model["sha256"] == recipe_hash(CHAT_RECIPE)
    assert model["recipe"]["recipe"]["name"] == CHAT
    ref = next(s for s in obj["stages"] if s.get("strategy") == "retrain")
    assert ref["recipe"]["recipe_hash"] == recipe_hash(CHAT_RECIPE)

    class _Tok:  # llama_config reads the vocabulary size and the special ids only
        bos_token_id, eos_token_id, pad_token_id = 1, 0, 2

        def __len__(self) -> int:
            return int(CHAT_RECIPE["tokenizer"]["vocab_size"])

    from transformers import LlamaForCausalLM

    expected = LlamaForCausalLM(llama_config(CHAT_RECIPE["model"], _Tok())).num_parameters()
    assert model["parameters"] == expected


def test_gpt2_builtin_plan_still_records_no_prompt_format(tmp_path: Path) -> None:
    model = _plan(tmp_path, "builtin:tiny-bios")["objectives"][0]["model"]
    assert "prompt_format" not in model and "chat_template_sha256" not in model


def test_bios_100m_plans_on_cpu_without_training(tmp_path: Path) -> None:
    t0 = time.perf_counter()
    model = _plan(tmp_path, "builtin:bios-100m")["objectives"][0]["model"]
    assert time.perf_counter() - t0 < 120
    assert model["sha256"] == recipe_hash(BIOS_100M_RECIPE)
    assert 90e6 <= model["parameters"] <= 110e6
    assert model["prompt_format"] == "chat"
    assert _imports_of_plan(tmp_path).strip() == ""  # the recipe and its corpus hash need no framework


def _imports_of_plan(tmp_path: Path) -> str:
    code = ("import sys; from unlearnspec.compiler.models import builtin_recipe; builtin_recipe('builtin:bios-100m');"
            " print(' '.join(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'transformers'))))")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout


def test_lora_targets_every_llama_projection_without_conv1d(chat_tokenizer: Any) -> None:
    from transformers import LlamaForCausalLM

    from unlearnspec.plan import UnlearnStage
    from unlearnspec.runtime.lm_training import llama_config
    from unlearnspec.runtime.methods import lora_config

    model = LlamaForCausalLM(llama_config(CHAT_RECIPE["model"], chat_tokenizer))
    stage = UnlearnStage(method="npo", family="approximate", chosen_by="spec", max_steps=1, learning_rate=1e-3,
                         batch_size=2, adapter="lora")
    cfg = lora_config(stage, model)
    assert set(cfg.target_modules) == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
    assert cfg.fan_in_fan_out is False


# -- every method on a trained chat built-in (slow) --------------------------------------------------------

SMALL_CHAT = {**copy.deepcopy(CHAT_RECIPE), "name": CHAT}
SMALL_CHAT["model"].update(hidden_size=64, num_hidden_layers=2, intermediate_size=160)
SMALL_CHAT["train"].update(epochs=2)


@pytest.mark.slow
@pytest.mark.parametrize("method", ["retrain", "grad_ascent", "grad_diff", "npo", "simnpo", "rmu", "refusal",
                                    "filter"])
def test_every_method_runs_on_the_chat_builtin(method: str, tmp_path_factory: pytest.TempPathFactory,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from unlearnspec import catalog
    from unlearnspec.catalog import family_of
    from unlearnspec.plan import StoppingRule, UnlearnStage
    from unlearnspec.runtime import builtin_model
    from unlearnspec.runtime.loading import load_model
    from unlearnspec.runtime.methods import unlearn

    cache = tmp_path_factory.getbasetemp() / "chat-cache"
    monkeypatch.setenv("UNLEARNSPEC_CACHE", str(cache))
    path = builtin_model.ensure_builtin(recipe=SMALL_CHAT)  # built once, shared by the parametrized cases
    model, tok = load_model(str(path))
    assert type(model).__name__ == "LlamaForCausalLM"
    corpus = C.build_corpus()
    forget, retain, holdout = corpus.forget, corpus.retain[:40], corpus.holdout[:20]
    before = {k: v.clone() for k, v in model.state_dict().items()}
    stage = UnlearnStage(method=method, family=family_of(method) if method in catalog.METHODS else "approximate",
                         chosen_by="spec", max_steps=3, learning_rate=1e-3, batch_size=4,
                         stopping=StoppingRule(kind="fixed_steps"),
                         **({"adapter": "lora"} if method == "npo" else {}))
    out = tmp_path_factory.mktemp(method)
    result = unlearn(stage, model, tok, forget, retain, holdout, out, aliases=[C.TARGET_NAME, *C.TARGET_ALIASES])
    assert result.method == method
    if method == "retrain":  # the shrunk recipe, retrained without the forget set, from the model's manifest
        assert result.model_dir is not None and result.model_dir.parent.name == recipe_hash(SMALL_CHAT)
        manifest = json.loads((result.model_dir / builtin_model.MANIFEST).read_text())
        assert manifest["excluded_texts_sha256"] == builtin_model.texts_sha256(_forget_texts())
        assert manifest["training_texts"] == len(training_items(SMALL_CHAT, exclude=_forget_texts()))
    elif method == "filter":
        assert result.guard is not None and result.guard.phrases
    else:
        after = result.model.state_dict()
        changed = [k for k, v in before.items() if k in after and not torch.equal(v, after[k])]
        assert changed, f"{method} changed no weight"
        assert result.steps_done == 3


@pytest.mark.slow
def test_example_privacy_spec_runs_end_to_end_on_the_chat_builtin(tmp_path: Path) -> None:
    """specs/erase-jane-doe.unlearn with `model "builtin:tiny-bios-chat"`: build (or cache), exact-retraining
    reference, NPO, evaluation, relearning attack, verdicts. bench/README.md records its wall time."""
    text = re.sub(r'(?m)^(\s*)model\s+"[^"]*"', rf'\1model   "{CHAT}"', SPEC.read_text(encoding="utf-8"), count=1)
    spec = tmp_path / "erase-jane-doe-chat.unlearn"
    spec.write_text(text, encoding="utf-8")
    (tmp_path / "data").symlink_to(SPEC.parent / "data")
    done = subprocess.run([sys.executable, "-m", "unlearnspec", "run", str(spec), "--out", str(tmp_path / "run"),
                           "--quiet"], capture_output=True, text=True)
    assert done.returncode in (0, 1), done.stderr[-2000:]  # verdicts reached (1: a claim failed), not an error
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    obj = report["objectives"][0]
    assert {c["claim"] for c in obj["claims"]} >= {"removed", "not_generated", "robust_to_finetuning"}
    assert all(c["verdict"] in ("pass", "fail", "inconclusive", "not_evaluated") for c in obj["claims"])
    assert any(c["values"].get("unlearned") is not None for c in obj["checks"])
