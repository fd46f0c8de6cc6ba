"""Loading a source model: sharded safetensors, remote code, broken folders, dtype, the hub cache offline,
and the source folder left exactly as it was however the loaded model is changed.

Every model here is a tiny GPT-2 saved in a temporary folder; nothing reaches the network (the hub case is a
Hugging Face cache folder written here, read with ``HF_HUB_OFFLINE``).
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch
import transformers
from safetensors.torch import load_file
from test_loading import _save_tiny
from transformers import AutoTokenizer, GPT2LMHeadModel

from unlearnspec.records import sha256_path
from unlearnspec.runtime.loading import (
    E_BAD_MODEL,
    E_REMOTE_CODE,
    E_UNAVAILABLE,
    LoadError,
    load_model,
)

transformers.utils.logging.disable_progress_bar()
transformers.utils.logging.set_verbosity_error()


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _save_tiny(tmp_path_factory.mktemp("source") / "model")


def _copy(base: Path, to: Path) -> Path:
    shutil.copytree(base, to)
    return to


def _reference_weights(folder: Path) -> dict[str, torch.Tensor]:
    """The tensors of every safetensors file of ``folder``, read with safetensors itself."""
    out: dict[str, torch.Tensor] = {}
    for f in sorted(folder.glob("*.safetensors")):
        out |= load_file(str(f))
    return out


def _sharded(base: Path, to: Path) -> Path:
    folder = _copy(base, to)
    (folder / "model.safetensors").unlink()
    GPT2LMHeadModel.from_pretrained(base).save_pretrained(folder, max_shard_size="20KB")
    return folder


def test_a_sharded_safetensors_folder_loads_every_shard(base: Path, tmp_path: Path) -> None:
    folder = _sharded(base, tmp_path / "sharded")
    shards = sorted(folder.glob("model-*-of-*.safetensors"))
    assert len(shards) >= 2 and (folder / "model.safetensors.index.json").is_file()
    model, _ = load_model(str(folder))
    want = _reference_weights(base)  # the unsharded original, read by safetensors
    got = model.state_dict()
    for name, tensor in want.items():
        assert torch.equal(got[name], tensor), name


def test_a_missing_shard_is_a_diagnostic_naming_it(base: Path, tmp_path: Path) -> None:
    folder = _sharded(base, tmp_path / "cut")
    gone = sorted(folder.glob("model-*-of-*.safetensors"))[1]
    gone.unlink()
    with pytest.raises(LoadError) as err:
        load_model(str(folder))
    assert err.value.code == E_BAD_MODEL and f"`{gone.name}`" in err.value.message
    assert "lacks 1 of the" in err.value.message and err.value.help
    (folder / "model.safetensors.index.json").write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(LoadError) as err:
        load_model(str(folder))
    assert err.value.code == E_BAD_MODEL and "does not read" in err.value.message


def _with_remote_code(base: Path, to: Path, model_type: str, sentinel: Path) -> Path:
    folder = _copy(base, to)
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    config["model_type"] = model_type
    config["auto_map"] = {"AutoConfig": "configuration_own.OwnConfig", "AutoModelForCausalLM": "modeling_own.OwnModel"}
    (folder / "config.json").write_text(json.dumps(config), encoding="utf-8")
    for module in ("configuration_own.py", "modeling_own.py"):
        (folder / module).write_text(f"open({str(sentinel)!r}, 'w').write('ran')\n", encoding="utf-8")
    return folder


def test_remote_code_is_never_run_unless_allowed(base: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    sentinel = tmp_path / "code-ran"
    own = _with_remote_code(base, tmp_path / "own", "own_arch", sentinel)
    with pytest.raises(LoadError) as err:
        load_model(str(own))
    assert err.value.code == E_REMOTE_CODE and not sentinel.exists()
    # a known architecture that also ships code: loaded with transformers' own class, the code not run, and said
    known = _with_remote_code(base, tmp_path / "known", "gpt2", sentinel)
    with caplog.at_level(logging.WARNING, logger="unlearnspec.runtime.loading"):
        model, _ = load_model(str(known))
    assert type(model) is GPT2LMHeadModel and not sentinel.exists()
    assert "auto_map" in caplog.text and "not run" in caplog.text


def test_a_folder_without_tokenizer_files_is_refused(base: Path, tmp_path: Path) -> None:
    """transformers would make a one-token tokenizer that encodes every text to nothing."""
    folder = _copy(base, tmp_path / "no-tokenizer")
    for f in folder.iterdir():
        if f.name.startswith(("tokenizer", "special_tokens")):
            f.unlink()
    with pytest.raises(LoadError) as err:
        load_model(str(folder))
    assert err.value.code == E_BAD_MODEL and "no tokens" in err.value.message
    assert any("tokenizer.save_pretrained" in h for h in err.value.help)


def test_a_tokenizer_larger_than_the_embeddings_is_refused(base: Path, tmp_path: Path) -> None:
    folder = _copy(base, tmp_path / "grown")
    tok = AutoTokenizer.from_pretrained(folder)
    tok.add_tokens(["<one>", "<two>"])
    tok.save_pretrained(folder)
    rows = GPT2LMHeadModel.from_pretrained(base).get_input_embeddings().num_embeddings
    with pytest.raises(LoadError) as err:
        load_model(str(folder))
    assert err.value.code == E_BAD_MODEL
    assert err.value.message.endswith(f"has {rows + 2} tokens, more than the model's {rows} embedding rows")


def test_a_bf16_checkpoint_loads_in_fp32_unless_asked(base: Path, tmp_path: Path) -> None:
    folder = _copy(base, tmp_path / "bf16")
    (folder / "model.safetensors").unlink()
    GPT2LMHeadModel.from_pretrained(base).to(torch.bfloat16).save_pretrained(folder)
    assert {t.dtype for t in _reference_weights(folder).values()} == {torch.bfloat16}
    model, _ = load_model(str(folder))
    assert {p.dtype for p in model.parameters()} == {torch.float32}
    stored = _reference_weights(folder)["transformer.wte.weight"]
    assert torch.equal(model.get_input_embeddings().weight.detach(), stored.float())  # widened, not re-rounded
    asked, _ = load_model(str(folder), dtype=torch.bfloat16)
    assert {p.dtype for p in asked.parameters()} == {torch.bfloat16}


def _hub_cache(base: Path, cache: Path, repo: str) -> None:
    """``base`` as a snapshot of ``repo`` in a Hugging Face hub cache (the layout ``hf download`` writes)."""
    commit = "0" * 40
    root = cache / f"models--{repo.replace('/', '--')}"
    shutil.copytree(base, root / "snapshots" / commit)
    (root / "refs").mkdir()
    (root / "refs" / "main").write_text(commit, encoding="utf-8")


def test_a_hub_id_loads_from_the_local_cache_and_never_downloads(base: Path, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub.constants

    cache = tmp_path / "hub"
    _hub_cache(base, cache, "unlearnspec-tests/tiny")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    # even with the hub nominally online, loading asks for local files only: any download attempt would fail here
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    seen: list[dict[str, Any]] = []
    real = transformers.AutoModelForCausalLM.from_pretrained

    def spy(*args: Any, **kwargs: Any) -> Any:
        seen.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", spy)
    model, tok = load_model("unlearnspec-tests/tiny")
    assert isinstance(model, GPT2LMHeadModel) and model.unlearnspec_dir is None
    assert seen and all(k.get("local_files_only") is True and k.get("trust_remote_code") is False for k in seen)
    for name, tensor in _reference_weights(base).items():
        assert torch.equal(model.state_dict()[name], tensor), name
    with pytest.raises(LoadError) as err:
        load_model("unlearnspec-tests/not-in-the-cache")
    assert err.value.code == E_UNAVAILABLE and "hf download unlearnspec-tests/not-in-the-cache" in err.value.help[0]


def test_the_source_folder_is_never_written(base: Path, tmp_path: Path) -> None:
    """peft's get_peft_model wraps the loaded model in place and merging rewrites its layers; training and
    in-place edits change its tensors. None of it reaches the folder the weights were read from."""
    peft = pytest.importorskip("peft")
    folder = _copy(base, tmp_path / "source")
    before = sha256_path(folder)
    stamps = {f.name: f.stat().st_mtime_ns for f in folder.iterdir()}
    model, tok = load_model(str(folder))
    lora = peft.get_peft_model(model, peft.LoraConfig(r=4, target_modules=["c_attn"], fan_in_fan_out=True,
                                                      init_lora_weights=False))
    lora.train()
    opt = torch.optim.SGD([p for p in lora.parameters() if p.requires_grad], lr=0.5)
    ids = tok("a tiny corpus for a tiny model", return_tensors="pt")["input_ids"]
    for _ in range(3):
        lora(input_ids=ids, labels=ids).loss.backward()
        opt.step()
        opt.zero_grad()
    merged = lora.merge_and_unload()
    with torch.no_grad():
        for p in merged.parameters():
            p.add_(1.0)  # in place, on every tensor: a weight that shared the file's memory would write through
    assert sha256_path(folder) == before
    assert {f.name: f.stat().st_mtime_ns for f in folder.iterdir()} == stamps
    fresh, _ = load_model(str(folder))
    for name, tensor in _reference_weights(base).items():
        assert torch.equal(fresh.state_dict()[name], tensor), name
