"""The model and data files a plan pins: how a model string is loaded, file hashes, safetensors headers and
config.json (the model size), the built-in recipe. The records of a data file are read by
:mod:`unlearnspec.compiler.datafiles`."""

from __future__ import annotations

import functools
import hashlib
import math
import os
import struct
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from unlearnspec.builtin.recipe import RECIPE, RECIPES, recipe_with_hash
from unlearnspec.builtin.training import training_items
from unlearnspec.compiler.ast import Objective
from unlearnspec.compiler.decisions import model_kind
from unlearnspec.compiler.model_files import hub_snapshot, prompt_fields
from unlearnspec.inputs import load_json, open_regular, read_regular, spec_path
from unlearnspec.plan import (
    FileHash,
    GivenStage,
    ModelRef,
)
from unlearnspec.records import folder_files, sha256_path


@functools.lru_cache(maxsize=8)
def builtin_recipe(name: str = str(RECIPE["name"])) -> dict[str, object]:
    """A built-in's recipe with the corpus hash and the overall hash (built once per process and model)."""
    return recipe_with_hash(RECIPES[name])


@functools.lru_cache(maxsize=8)
def recipe_steps(name: str = str(RECIPE["name"])) -> int:
    """Optimizer steps of a built-in recipe over its full corpus (an upper bound for the retrain)."""
    recipe = RECIPES[name]
    train = recipe["train"]
    return int(train["epochs"]) * math.ceil(len(training_items(recipe)) / int(train["batch_size"]))


def local_dir(value: str, base: Path) -> Path:
    """A local model folder as the spec names it (:func:`unlearnspec.inputs.spec_path`)."""
    return spec_path(value, base)


def _folder_files(folder: Path, base: Path) -> list[FileHash]:
    """The plan's entry for each of :func:`unlearnspec.records.folder_files`, its path relative to ``base``
    (the spec's folder) as written, never through a link's target."""
    out = []
    for f in folder_files(folder):
        try:
            rel = Path(os.path.relpath(f, base)).as_posix()
        except ValueError:
            rel = f.as_posix()
        out.append(FileHash(path=rel, sha256=sha256_path(f), role="model"))
    return out


def folder_sha256(folder: Path, files: Sequence[FileHash], base: Path) -> str:
    """:func:`unlearnspec.records.sha256_path` of ``folder``, from its files' hashes (each file read once): a
    file's name is its path inside the folder as listed, so links into a cache's ``blobs/`` do not move it."""
    h = hashlib.sha256()
    for fh in files:
        f = (base / fh.path) if not Path(fh.path).is_absolute() else Path(fh.path)
        h.update(Path(os.path.relpath(f, folder)).as_posix().encode() + b"\0")
        h.update(bytes.fromhex(fh.sha256))
    return h.hexdigest()


def model_ref(obj: Objective, base: Path) -> ModelRef:
    ref = _model_ref(obj, base)
    return ref.model_copy(update={"system": obj.system.value}) if obj.system is not None else ref


def _model_ref(obj: Objective, base: Path) -> ModelRef:
    value = obj.model.value if obj.model else "builtin:tiny-bios"
    kind = model_kind(value, base)
    if kind == "builtin":
        recipe = builtin_recipe(value)
        fmt, template_sha = builtin_prompt_fields(value)
        return ModelRef(source=value, kind="builtin", sha256=str(recipe["recipe_hash"]), recipe=recipe,
                        parameters=builtin_parameters(value), prompt_format=fmt, chat_template_sha256=template_sha,
                        note="the built-in model is pinned by its recipe and corpus; the runtime builds it from them")
    if kind == "local":
        folder = local_dir(value, base)
        if not folder.is_dir():  # only reachable under --allow-infeasible with a broken spec
            return ModelRef(source=value, kind="local", note="model folder not found at plan time")
        files = _folder_files(folder, base)
        fmt, template_sha = prompt_fields(folder)
        return ModelRef(source=value, kind="local", sha256=folder_sha256(folder, files, base), files=files,
                        parameters=local_parameters(folder), prompt_format=fmt, chat_template_sha256=template_sha)
    snapshot = hub_snapshot(value)
    if snapshot is not None:  # pinned to what the local cache holds: the run loads this commit and checks its files
        folder, commit = snapshot
        files = _folder_files(folder, folder)
        fmt, template_sha = prompt_fields(folder)
        return ModelRef(source=value, kind="hub", sha256=folder_sha256(folder, files, folder), files=files,
                        revision=commit, parameters=local_parameters(folder), prompt_format=fmt,
                        chat_template_sha256=template_sha,
                        note=f"pinned to commit {commit} of the local Hugging Face cache (its `main` at plan time); "
                             "file paths are inside that snapshot")
    return ModelRef(source=value, kind="hub", sha256=None,
                    note="a hub id not in the local Hugging Face cache cannot be pinned offline at plan time: the plan "
                         "records no hash for it; download it (`hf download`) before planning, or name a local folder, "
                         "to pin its files")


def reference_files(obj: Objective, base: Path) -> list[FileHash]:
    if obj.reference is None:
        return []
    value = obj.reference.value
    if model_kind(value, base) != "local":
        return []
    folder = local_dir(value, base)
    if not folder.is_dir():
        return []
    return [f.model_copy(update={"role": "reference"}) for f in _folder_files(folder, base)]


def given_files(obj: Objective, base: Path) -> list[FileHash]:
    """The files of the checkpoint an audit names (``unlearned``), role ``unlearned``; [] without one."""
    if obj.unlearned is None:
        return []
    folder = Path(obj.unlearned.resolved)
    if not folder.is_dir():
        return []
    return [f.model_copy(update={"role": "unlearned"}) for f in _folder_files(folder, base)]


def given_stage(obj: Objective, base: Path, method: str, family: str) -> GivenStage:
    """The stage that stands for unlearning in an audit: the given checkpoint, pinned by its folder's hash."""
    assert obj.unlearned is not None
    folder = Path(obj.unlearned.resolved)
    files = given_files(obj, base)
    return GivenStage(source=obj.unlearned.raw, form=obj.unlearned.form, sha256=folder_sha256(folder, files, base),
                      files=files, method=method, family=family)  # type: ignore[arg-type]


def builtin_prompt_fields(name: str) -> tuple[Literal["plain", "chat"] | None, str | None]:
    """The prompt format of a built-in with a chat template (its sha256, as for a local folder).

    The GPT-2 built-in records neither field, as before (its plans and the goldens are unchanged).
    """
    template = RECIPES[name]["tokenizer"].get("chat_template")
    if not template:
        return None, None
    return "chat", hashlib.sha256(str(template).encode("utf-8")).hexdigest()


def builtin_parameters(name: str = str(RECIPE["name"])) -> int:
    recipe = RECIPES[name]
    m, tok = recipe["model"], recipe["tokenizer"]
    if m.get("architecture", "gpt2") == "llama":
        d, layers, vocab_size = int(m["hidden_size"]), int(m["num_hidden_layers"]), int(tok["vocab_size"])
        kv = d * int(m["num_key_value_heads"]) // int(m["num_attention_heads"])
        attention = 2 * d * d + 2 * d * kv  # q and o full, k and v shared across query groups
        mlp = 3 * d * int(m["intermediate_size"])  # SwiGLU: gate, up, down
        embeddings = vocab_size * d * (1 if m.get("tie_word_embeddings") else 2)
        return layers * (attention + mlp + 2 * d) + d + embeddings
    d, layers, vocab_size, pos = int(m["n_embd"]), int(m["n_layer"]), int(tok["vocab_size"]), int(m["n_positions"])
    return _transformer_parameters(d, layers, vocab_size, 4 * d) + pos * d


def _transformer_parameters(d: int, layers: int, vocab_size: int, ff: int) -> int:
    """Weights of a decoder-only transformer: attention 4d², MLP 2·d·ff, tied embeddings V·d (biases ignored)."""
    return layers * (4 * d * d + 2 * d * ff) + vocab_size * d


def local_parameters(folder: Path) -> int | None:
    """Parameter count from the safetensors headers (exact), else from config.json (approximate)."""
    total = 0
    found = False
    for f in sorted(folder.glob("*.safetensors")):
        try:  # a FIFO or a hostile header is skipped, never waited on or trusted (issue 12)
            with open_regular(f) as fh:
                (n,) = struct.unpack("<Q", fh.read(8))
                if n > 100_000_000:
                    continue
                header = load_json(fh.read(n).decode("utf-8"))
        except (OSError, ValueError, struct.error):
            continue
        for name, t in header.items() if isinstance(header, dict) else ():
            shape = t.get("shape") if isinstance(t, dict) and name != "__metadata__" else None
            if isinstance(shape, list) and all(type(s) is int and 0 <= s < 2**40 for s in shape):
                total += math.prod(shape)
                found = True
    if found:
        return total
    cfg = _config(folder)
    d = _first_int(cfg, "hidden_size", "n_embd", "d_model")
    layers = _first_int(cfg, "num_hidden_layers", "n_layer", "num_layers")
    v = _first_int(cfg, "vocab_size")
    if not (d and layers and v):
        return None
    ff = _first_int(cfg, "intermediate_size", "n_inner", "ffn_dim") or 4 * d
    return _transformer_parameters(d, layers, v, ff)


def model_layers(obj: Objective, model: ModelRef, base: Path) -> int | None:
    """Decoder layers of the model when the plan can know them (RMU steers the middle one)."""
    if model.kind == "builtin":
        m = RECIPES.get(model.source, RECIPE)["model"]
        return int(m.get("n_layer", m.get("num_hidden_layers", 0)))
    if model.kind == "local" and obj.model is not None:
        return _first_int(_config(local_dir(obj.model.value, base)), "num_hidden_layers", "n_layer", "num_layers")
    return None


def _config(folder: Path) -> dict[str, Any]:
    try:
        data = load_json(read_regular(folder / "config.json").decode("utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _first_int(cfg: dict[str, Any], *keys: str) -> int | None:
    for k in keys:
        v = cfg.get(k)
        if isinstance(v, int) and not isinstance(v, bool) and v > 0:
            return v
    return None
