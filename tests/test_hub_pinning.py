"""A hub id the local Hugging Face cache holds is pinned by the plan: the commit its `main` names at plan time and
the sha256 of every file of that snapshot. The run loads that commit (never what `main` names later), and a plan
whose snapshot changed or left the cache is refused before anything runs. Nothing reaches the network: the cache is
a folder written here in the layout `hf download` writes."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from test_loading import _save_tiny
from transformers import GPT2LMHeadModel

from unlearnspec.compiler.check import plan_file
from unlearnspec.compiler.model_files import hub_cache_dir, hub_snapshot
from unlearnspec.errors import UserError
from unlearnspec.records import sha256_path
from unlearnspec.runtime.loading import E_UNAVAILABLE, LoadError, load_model
from unlearnspec.runtime.preflight import verify_inputs

SPECS = Path(__file__).resolve().parents[1] / "specs"
REPO = "unlearnspec-tests/tiny"
FIRST, SECOND = "1" * 40, "2" * 40


def _snapshot(cache: Path, model: Path, commit: str, *, main: bool = True) -> Path:
    root = cache / f"models--{REPO.replace('/', '--')}"
    folder = root / "snapshots" / commit
    shutil.copytree(model, folder)
    if main:
        (root / "refs").mkdir(parents=True, exist_ok=True)
        (root / "refs" / "main").write_text(commit, encoding="utf-8")
    return folder


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty hub cache, named to the compiler (the environment) and to huggingface_hub (its constant, read once
    at import)."""
    import huggingface_hub.constants

    where = tmp_path / "hub"
    where.mkdir()
    monkeypatch.setenv("HF_HUB_CACHE", str(where))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(where))
    return where


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _save_tiny(tmp_path_factory.mktemp("hub") / "model")


@pytest.mark.parametrize("env", [
    {"HF_HUB_CACHE": "{tmp}/explicit"},
    {"HF_HOME": "{tmp}/home"},
    {"XDG_CACHE_HOME": "{tmp}/xdg"},
    {"HF_HOME": "{tmp}/home", "HF_HUB_CACHE": "{tmp}/both"},
    {},
])
def test_the_compiler_finds_the_hub_cache_where_huggingface_hub_does(tmp_path: Path, env: dict[str, str]) -> None:
    """The compiler reads the cache without huggingface_hub (it depends on Lark, pydantic and jinja2 only): its
    folder must be the one the library resolves from the same environment, in a fresh process."""
    clean = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_CACHE", "HF_HOME", "XDG_CACHE_HOME")}
    clean["HOME"] = str(tmp_path / "user")
    clean.update({k: v.format(tmp=tmp_path) for k, v in env.items()})
    code = ("import huggingface_hub.constants as c; from unlearnspec.compiler.model_files import hub_cache_dir; "
            "print(c.HF_HUB_CACHE); print(hub_cache_dir())")
    out = subprocess.run([sys.executable, "-c", code], env=clean, capture_output=True, text=True, check=True)
    library, ours = out.stdout.splitlines()
    assert Path(ours) == Path(library)
    assert str(tmp_path) in ours  # the variable (or HOME) given was the one read


def _spec(tmp_path: Path, model: str) -> Path:
    text = (SPECS / "erase-jane-doe.unlearn").read_text(encoding="utf-8")
    assert 'model   "builtin:tiny-bios"' in text
    shutil.copytree(SPECS / "data", tmp_path / "data")
    spec = tmp_path / "hub.unlearn"
    spec.write_text(text.replace('model   "builtin:tiny-bios"', f'model   "{model}"'), encoding="utf-8")
    return spec


def test_a_cached_hub_id_is_pinned_to_its_commit_and_files(cache: Path, tiny: Path, tmp_path: Path) -> None:
    folder = _snapshot(cache, tiny, FIRST)
    assert hub_cache_dir() == cache and hub_snapshot(REPO) == (folder, FIRST)
    plan, result = plan_file(_spec(tmp_path, REPO), allow_infeasible=True)
    assert plan is not None, result.diagnostics
    m = plan.objectives[0].model
    assert m.kind == "hub" and m.revision == FIRST and FIRST in m.note
    expected = {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
                for p in folder.rglob("*") if p.is_file()}
    assert {f.path: f.sha256 for f in m.files} == expected
    assert m.sha256 == sha256_path(folder)  # the folder hash the run reports for the original, read independently
    assert m.parameters == sum(t.numel() for t in GPT2LMHeadModel.from_pretrained(folder).parameters())
    assert m.prompt_format == "plain"
    assert json.loads(plan.model_dump_json())["objectives"][0]["model"]["revision"] == FIRST
    # the same spec with the model not in the cache: unpinned, and the plan says so (no revision key at all)
    plan2, _ = plan_file(_spec(tmp_path / "other", "unlearnspec-tests/absent"), allow_infeasible=True)
    assert plan2 is not None
    m2 = plan2.objectives[0].model
    assert m2.revision is None and m2.sha256 is None and not m2.files and "not in the local" in m2.note
    assert "revision" not in json.loads(plan2.model_dump_json())["objectives"][0]["model"]


def test_the_run_loads_the_pinned_commit_and_refuses_a_changed_or_missing_one(cache: Path, tiny: Path,
                                                                               tmp_path: Path) -> None:
    first = _snapshot(cache, tiny, FIRST)
    spec = _spec(tmp_path, REPO)
    plan, _ = plan_file(spec, allow_infeasible=True)
    assert plan is not None
    verify_inputs(plan, spec.parent)  # as planned: nothing stale
    # the cache's main moves to a newer commit with other weights: the run still loads the pinned one
    newer = GPT2LMHeadModel.from_pretrained(first)
    with torch.no_grad():
        for p in newer.parameters():
            p.add_(1.0)
    second = tmp_path / "second"
    shutil.copytree(first, second)
    newer.save_pretrained(second, safe_serialization=True)
    _snapshot(cache, second, SECOND)
    assert hub_snapshot(REPO) == (cache / f"models--{REPO.replace('/', '--')}" / "snapshots" / SECOND, SECOND)
    pinned, _ = load_model(REPO, revision=FIRST)
    latest, _ = load_model(REPO)
    original = GPT2LMHeadModel.from_pretrained(first).state_dict()
    assert all(torch.equal(pinned.state_dict()[k], v) for k, v in original.items())
    assert not torch.equal(latest.state_dict()["transformer.wte.weight"], original["transformer.wte.weight"])
    assert pinned.unlearnspec_dir == str(first)  # recorded like a local folder, so the report pins it by content
    verify_inputs(plan, spec.parent)  # the pinned snapshot is untouched by the newer download
    # a file of the pinned snapshot changed: stale, before anything runs
    config = first / "config.json"
    config.write_text(config.read_text(encoding="utf-8").replace("}", ', "x": 1}', 1), encoding="utf-8")
    with pytest.raises(UserError) as stale:
        verify_inputs(plan, spec.parent)
    assert "config.json" in str(stale.value) and REPO in str(stale.value)
    # the pinned commit left the cache: stale, and loading it is the "not in the local cache" error
    shutil.rmtree(first)
    with pytest.raises(UserError) as gone:
        verify_inputs(plan, spec.parent)
    assert FIRST in str(gone.value) and "no longer in the local Hugging Face cache" in str(gone.value)
    with pytest.raises(LoadError) as err:
        load_model(REPO, revision=FIRST)
    assert err.value.code == E_UNAVAILABLE and f"--revision {FIRST}" in err.value.help[0]
