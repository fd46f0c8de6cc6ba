"""Model loading: local safetensors folders, the builtin alias, refusals (pickle weights, missing
folders, offline hub), hashing and the device/precision helpers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
import transformers
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

from unlearnspec.records import sha256_path
from unlearnspec.runtime import loading
from unlearnspec.runtime.loading import (
    E_BAD_MODEL,
    E_NOT_FOUND,
    E_PICKLE_WEIGHTS,
    E_UNAVAILABLE,
    LoadError,
    device_for_run,
    dtype_for_run,
    load_model,
    model_files_sha256,
    use_bf16,
)

transformers.utils.logging.disable_progress_bar()
transformers.utils.logging.set_verbosity_error()


def _save_tiny(path: Path, *, pickle: bool = False) -> Path:
    """An untrained 1-layer GPT-2 and a tokenizer *without* a pad token."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(["a tiny corpus for a tiny model"] * 3, trainer=trainers.BpeTrainer(
        vocab_size=280, special_tokens=["<|endoftext|>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>")
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=len(fast), n_positions=32, n_layer=1, n_embd=32, n_head=2))
    path.mkdir(parents=True)
    if pickle:
        model.config.save_pretrained(path)
        torch.save(model.state_dict(), path / "pytorch_model.bin")
    else:
        model.save_pretrained(path, safe_serialization=True)
    fast.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _save_tiny(tmp_path_factory.mktemp("load") / "model")


def test_local_folder_loads_with_pad_token_and_eval_mode(model_dir: Path) -> None:
    model, tok = load_model(str(model_dir))
    assert isinstance(model, GPT2LMHeadModel) and not model.training
    assert tok.pad_token == tok.eos_token == "<|endoftext|>"
    ids = tok("a tiny model", return_tensors="pt")
    assert model(**ids).logits.shape[-1] == len(tok)


def test_dtype_and_device_are_applied(model_dir: Path) -> None:
    model, _ = load_model(str(model_dir), dtype=torch.bfloat16, device="cpu")
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
    assert {p.device.type for p in model.parameters()} == {"cpu"}


def test_pickle_weights_are_refused(tmp_path: Path) -> None:
    d = _save_tiny(tmp_path / "pickled", pickle=True)
    with pytest.raises(LoadError) as err:
        load_model(str(d))
    assert err.value.code == E_PICKLE_WEIGHTS
    assert "pytorch_model.bin" in err.value.message and "safetensors" in err.value.message
    assert any("safe_serialization=True" in h for h in err.value.help)


def test_missing_folder_is_not_mistaken_for_a_hub_id(tmp_path: Path) -> None:
    for source in (str(tmp_path / "nope"), "./models/nope", "builtin:tiny-cats"):
        with pytest.raises(LoadError) as err:
            load_model(source)
        assert err.value.code == E_NOT_FOUND, source


def test_folder_without_config_is_refused(tmp_path: Path) -> None:
    (tmp_path / "weights.safetensors").write_bytes(b"")
    with pytest.raises(LoadError, match="no `config.json`"):
        load_model(str(tmp_path))


def test_a_truncated_weights_file_is_a_diagnostic_not_a_traceback(tmp_path: Path) -> None:
    """An interrupted copy: the safetensors header promises more bytes than the file holds."""
    d = _save_tiny(tmp_path / "cut")
    weights = d / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(LoadError) as err:
        load_model(str(d))
    assert err.value.code == E_BAD_MODEL and err.value.message.startswith(f"cannot load model `{d}`: ")
    assert any("interrupted copy" in h for h in err.value.help)


def test_a_tokenizer_without_an_end_of_sequence_token_is_refused_at_load(tmp_path: Path) -> None:
    """Training items end with EOS and generation stops at it: refused before any stage, not in the middle."""
    d = _save_tiny(tmp_path / "noeos")
    config = json.loads((d / "tokenizer_config.json").read_text(encoding="utf-8"))
    config.pop("eos_token", None)
    (d / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")
    (d / "special_tokens_map.json").unlink(missing_ok=True)
    with pytest.raises(LoadError) as err:
        load_model(str(d))
    assert err.value.code == E_BAD_MODEL and "no end-of-sequence token" in err.value.message


def test_offline_hub_id_gives_a_diagnostic(monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(LoadError) as err:
        load_model("unlearnspec-tests/no-such-model")
    assert err.value.code == E_UNAVAILABLE
    assert err.value.message == ("cannot load model `unlearnspec-tests/no-such-model`: it is not in the local Hugging "
                                 "Face cache, and a run never downloads")
    assert err.value.help and str(err.value).startswith(f"{E_UNAVAILABLE}: cannot load model")


def test_builtin_source_goes_through_ensure_builtin(model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    builtin_model = pytest.importorskip("unlearnspec.runtime.builtin_model")
    calls: list[Any] = []

    def fake_builtin(*a: Any, **kw: Any) -> Path:
        calls.append(a)
        return model_dir

    monkeypatch.setattr(builtin_model, "ensure_builtin", fake_builtin)
    model, tok = load_model(loading.BUILTIN_SOURCE)
    assert calls == [()] and isinstance(model, GPT2LMHeadModel)


def test_model_files_sha256_is_the_folder_hash(model_dir: Path, tmp_path: Path) -> None:
    h = model_files_sha256(model_dir)
    assert h == sha256_path(model_dir) == model_files_sha256(model_dir) and len(h) == 64
    other = _save_tiny(tmp_path / "m")
    assert model_files_sha256(other) == h  # same seed, same bytes
    (other / "config.json").write_text((other / "config.json").read_text() + " ")
    assert model_files_sha256(other) != h
    with pytest.raises(LoadError):
        model_files_sha256(tmp_path / "absent")


def test_device_and_precision_helpers() -> None:
    cuda = torch.cuda.is_available()
    assert device_for_run().type == ("cuda" if cuda else "cpu")
    assert use_bf16("fp32") is False
    assert use_bf16("bf16") == (cuda and torch.cuda.is_bf16_supported())
    assert dtype_for_run("fp32") == torch.float32
    assert dtype_for_run("bf16") == (torch.bfloat16 if use_bf16("bf16") else torch.float32)
    assert loading.describe_device().startswith("cuda" if cuda else "cpu")


def test_a_home_relative_model_folder_is_read_as_the_compiler_reads_it(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """The compiler reads `~/models/m` in the user's home (compiler.models.local_dir); so does the run."""
    from unlearnspec.compiler.models import local_dir
    from unlearnspec.runtime.pipeline import local_model_path

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    spec_dir = tmp_path / "specs"
    for source in ("~/models/m", "models/m", str(tmp_path / "abs")):
        assert Path(local_model_path(source, spec_dir)) == local_dir(source, spec_dir).resolve(), source
    assert local_model_path("~/models/m", spec_dir) == str(tmp_path / "home" / "models" / "m")


def test_an_audited_checkpoint_or_reference_must_tokenize_as_the_original(model_dir: Path, tmp_path: Path) -> None:
    """A checkpoint whose tokenizer gained a token reads other ids for the same text than the original does, so its
    scores cannot be compared item by item with the original's: RT106 before any evaluation, naming the difference.
    The same folder with the original's tokenizer files is accepted."""
    import shutil

    from transformers import AutoTokenizer

    from unlearnspec.runtime.pipeline import load_given

    original, tok = load_model(str(model_dir))
    same = tmp_path / "same"
    shutil.copytree(model_dir, same)
    model, given_tok = load_given(same, "model", original, tok)
    assert loading.tokenizer_difference(tok, given_tok) is None and given_tok.get_vocab() == tok.get_vocab()
    grown = tmp_path / "grown"
    shutil.copytree(model_dir, grown)
    other = AutoTokenizer.from_pretrained(grown)
    assert other.add_tokens(["<secret>"]) == 1
    other.save_pretrained(grown)
    resized = GPT2LMHeadModel.from_pretrained(grown)  # a coherent folder: its embeddings have the new token's row
    resized.resize_token_embeddings(len(other))
    resized.save_pretrained(grown)
    assert len(AutoTokenizer.from_pretrained(grown)) == len(tok) + 1  # independent of the function under test
    assert loading.tokenizer_difference(tok, AutoTokenizer.from_pretrained(grown)) == \
        "its vocabulary differs: 1 token added (e.g. '<secret>')"
    with pytest.raises(LoadError) as err:
        load_given(grown, "model", original, tok)
    assert err.value.code == E_BAD_MODEL and "audited checkpoint" in str(err.value) and "'<secret>'" in str(err.value)
    eos = tmp_path / "eos"
    shutil.copytree(model_dir, eos)
    swapped = AutoTokenizer.from_pretrained(eos)
    swapped.eos_token = swapped.convert_ids_to_tokens(5)
    swapped.save_pretrained(eos)
    assert "end-of-sequence token" in (loading.tokenizer_difference(tok, AutoTokenizer.from_pretrained(eos)) or "")
