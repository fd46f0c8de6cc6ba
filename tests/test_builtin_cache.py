"""The built-in model cache: an entry is used only when every file matches its manifest and it was built in
this environment; anything else is built again (deterministically: the same bytes), never loaded.

A shrunk copy of the GPT-2 recipe (one layer, one epoch) keeps the builds short; what is checked is the
cache, not the training.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from unlearnspec.builtin.recipe import RECIPE, recipe_hash
from unlearnspec.runtime import builtin_model as B

SMALL = copy.deepcopy(RECIPE)
SMALL["model"].update(n_layer=1, n_embd=32, n_head=2)
SMALL["train"]["epochs"] = 1


def _bytes(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, bytes]]:
    cache = tmp_path_factory.mktemp("builtin-cache")
    path = B.ensure_builtin(cache, recipe=SMALL)
    return path, _bytes(path)


def _restore(path: Path, files: dict[str, bytes]) -> None:
    for name, data in files.items():
        (path / name).write_bytes(data)


def test_the_manifest_lists_every_file_with_its_size_and_sha256(built: tuple[Path, dict[str, bytes]]) -> None:
    path, files = built
    assert path.name == recipe_hash(SMALL)
    manifest = json.loads(files[B.MANIFEST])
    listed = manifest["files"]
    assert set(listed) == set(files) - {B.MANIFEST} >= {"config.json", "model.safetensors", "tokenizer.json"}
    for name, data in files.items():
        if name != B.MANIFEST:
            assert listed[name] == {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}, name
    env = manifest["environment"]
    import accelerate
    import tokenizers
    import transformers

    assert (env["torch"], env["transformers"], env["tokenizers"], env["accelerate"]) == (
        torch.__version__, transformers.__version__, tokenizers.__version__, accelerate.__version__)
    assert (env["device"], env["precision"]) == ("cpu", "fp32")
    assert B.entry_problem(path) is None and B.is_complete(path)


def test_a_weights_file_cut_short_is_built_again_not_loaded(built: tuple[Path, dict[str, bytes]],
                                                            caplog: pytest.LogCaptureFixture) -> None:
    path, files = built
    weights = path / "model.safetensors"
    weights.write_bytes(files["model.safetensors"][: len(files["model.safetensors"]) // 2])
    assert "model.safetensors` is" in (B.entry_problem(path) or "")
    with caplog.at_level(logging.WARNING, logger=B.__name__):
        again = B.ensure_builtin(path.parent.parent, recipe=SMALL)
    assert again == path
    assert "cannot be used" in caplog.text and "bytes, not the" in caplog.text
    assert _bytes(path) == files  # rebuilt, bit for bit the first build
    assert not list(path.parent.glob(".*.tmp-*"))


def test_a_changed_byte_of_the_same_size_is_found_by_its_hash(built: tuple[Path, dict[str, bytes]]) -> None:
    path, files = built
    data = bytearray(files["tokenizer.json"])
    data[len(data) // 2] ^= 0x01
    (path / "tokenizer.json").write_bytes(bytes(data))
    try:
        assert B.entry_problem(path) == "`tokenizer.json` does not have the sha256 it was built with"
    finally:
        _restore(path, files)
    assert B.entry_problem(path) is None


def test_a_missing_file_or_manifest_is_a_problem(built: tuple[Path, dict[str, bytes]]) -> None:
    path, files = built
    try:
        (path / "config.json").unlink()
        assert B.entry_problem(path) is not None
        _restore(path, files)
        (path / B.MANIFEST).unlink()
        assert B.entry_problem(path) == "it has no manifest"
        (path / B.MANIFEST).write_text("{not json", encoding="utf-8")
        assert "does not read" in (B.entry_problem(path) or "")
        old = json.loads(files[B.MANIFEST])
        del old["files"]  # as the manifests written before the files were listed
        (path / B.MANIFEST).write_text(json.dumps(old), encoding="utf-8")
        assert "lists no files" in (B.entry_problem(path) or "")
    finally:
        _restore(path, files)
    assert B.entry_problem(path) is None


def test_an_entry_built_with_other_libraries_is_not_used(built: tuple[Path, dict[str, bytes]]) -> None:
    path, files = built
    manifest = json.loads(files[B.MANIFEST])
    manifest["environment"]["torch"] = "1.0.0"
    (path / B.MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
    try:
        assert B.entry_problem(path) == f"it was built in another environment (torch 1.0.0 → {torch.__version__})"
    finally:
        _restore(path, files)


def test_an_entry_whose_manifest_names_another_recipe_is_not_used(built: tuple[Path, dict[str, bytes]]) -> None:
    path, files = built
    problem = B._problem_for(recipe_hash(SMALL), None)
    assert problem(path) is None
    assert "another recipe" in (B._problem_for(recipe_hash(RECIPE), None)(path) or "")
    assert "another recipe" in (B._problem_for(recipe_hash(SMALL), "0" * 64)(path) or "")


def test_threads_are_pinned_to_the_recipe_not_to_the_cores() -> None:
    """Two threads on a one-core machine are still two: the thread count decides how sums are split."""
    before = torch.get_num_threads()
    n = (os.cpu_count() or 1) + 3
    with B.pinned_threads(n):
        assert torch.get_num_threads() == n
    assert torch.get_num_threads() == before
    assert B.train_threads(RECIPE) == RECIPE["train"]["threads"]


def test_an_entry_is_used_only_under_the_recipe_and_exclusion_its_manifest_names(
        built: tuple[Path, dict[str, bytes]]) -> None:
    """A folder copied or renamed under another recipe hash (or exclusion) is not that recipe's build."""
    path, files = built
    manifest = json.loads(files[B.MANIFEST])
    kept = {"recipe_hash": manifest["recipe_hash"], "excluded_texts_sha256": manifest["excluded_texts_sha256"]}
    assert B.entry_problem(path, kept) is None
    for key in kept:
        other = {**kept, key: "0" * 64}
        assert B.entry_problem(path, other) == "its manifest names another recipe or exclusion than the folder it is in"


def test_an_entry_built_by_other_training_code_is_not_used(built: tuple[Path, dict[str, bytes]],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """An edit to the training code changes the bits a recipe builds: the entry built before it is not served."""
    path, _ = built
    recorded = json.loads((path / B.MANIFEST).read_text(encoding="utf-8"))["environment"]["training_code"]
    source = Path(B.lm_training.__file__).read_bytes()
    assert recorded == hashlib.sha256(source).hexdigest()
    edited = hashlib.sha256(source + b"\n# an edit\n").hexdigest()
    monkeypatch.setattr(B, "training_code_sha256", lambda: edited)
    assert B.entry_problem(path) == f"it was built in another environment (training_code {recorded[:12]} → {edited[:12]})"


def test_the_environment_names_the_device_the_recipe_trains_on_here(monkeypatch: pytest.MonkeyPatch) -> None:
    gpu = copy.deepcopy(RECIPE)
    gpu["train"].update(device="cuda", precision="bf16")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert B.build_environment(gpu)["device"] == "cpu" and B.build_environment(gpu)["precision"] == "fp32"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda i=0: "Test GPU")
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: True)
    env = B.build_environment(gpu)
    assert (env["device"], env["precision"]) == ("cuda (Test GPU)", "bf16")
    assert B.build_environment(RECIPE)["device"] == "cpu"  # a CPU recipe stays on the CPU


_BUILD = """
import json, logging, sys
logging.basicConfig(level=logging.INFO, format="%(name)s %(message)s")
from unlearnspec.runtime.builtin_model import ensure_builtin
print(ensure_builtin(sys.argv[1], recipe=json.loads(sys.argv[2])))
"""


def _builds(caches: list[Path], seeds: list[int]) -> list[tuple[int, str, str]]:
    procs = [subprocess.Popen([sys.executable, "-c", _BUILD, str(c), json.dumps(SMALL)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONHASHSEED": str(s)})
             for c, s in zip(caches, seeds, strict=True)]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=600)
        results.append((p.returncode, out, err))
    return results


@pytest.mark.slow
def test_builds_are_bit_identical_across_processes_and_a_damaged_entry_is_rebuilt_once(tmp_path: Path) -> None:
    """Two processes with different hash seeds build the same bytes; then two processes that find the same
    entry damaged at once rebuild it once (the other waits and reuses it), again to the same bytes."""
    a, b = tmp_path / "a", tmp_path / "b"
    first = _builds([a, b], [1, 2])
    assert [code for code, _, _ in first] == [0, 0], first
    entry = a / "builtin" / recipe_hash(SMALL)
    reference = _bytes(entry)
    assert reference == _bytes(b / "builtin" / recipe_hash(SMALL))
    (entry / "model.safetensors").write_bytes(reference["model.safetensors"][:100])
    second = _builds([a, a], [3, 4])
    logs = "".join(err for _, _, err in second)
    assert [code for code, _, _ in second] == [0, 0], logs
    assert {out.strip().splitlines()[-1] for _, out, _ in second} == {str(entry)}, logs
    assert logs.count("cannot be used") == 1 and logs.count("reusing") == 1, logs
    assert _bytes(entry) == reference


def test_the_recipe_hash_covers_what_changes_the_bits_and_not_the_spelling() -> None:
    """Threads, device, precision, seed and every hyperparameter are in the key (the folder's name); the
    order the recipe's keys are written in is not."""
    base = recipe_hash(RECIPE)
    for part, key, value in (("train", "threads", 4), ("train", "device", "cuda"), ("train", "precision", "bf16"),
                             ("train", "seed", 1), ("model", "n_layer", 5), ("tokenizer", "vocab_size", 2048)):
        changed = copy.deepcopy(RECIPE)
        changed[part][key] = value
        assert recipe_hash(changed) != base, (part, key)
    reordered = {k: dict(reversed(list(v.items()))) if isinstance(v, dict) else v
                 for k, v in reversed(list(RECIPE.items()))}
    assert list(reordered) != list(RECIPE) and recipe_hash(reordered) == base


def test_a_recipe_naming_another_corpus_is_refused_not_given_this_one() -> None:
    """The corpus generator has one version and seed; a recipe asking for others would get a new hash and the
    same corpus."""
    for key, value in (("seed", 1), ("version", "2")):
        changed = copy.deepcopy(RECIPE)
        changed["corpus"][key] = value
        with pytest.raises(ValueError, match=f"corpus generator here is {key}"):
            recipe_hash(changed)
