"""Atomic Trainer checkpoints and the choice of the one to resume from (issue 12, defects 1-2).

A tiny GPT-2 (tests/test_methods.py's) trains a few steps, so these run in seconds; the end-to-end kill
and full-disk tests are in test_run_faults.py.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch
import transformers
from test_methods import FORGET, HOLDOUT, RETAIN, build_tiny_model, stage

from unlearnspec.plan import LoraConfig, StoppingRule
from unlearnspec.runtime.loading import load_model
from unlearnspec.runtime.methods import unlearn
from unlearnspec.runtime.methods.checkpoints import (
    CHECKSUMS,
    FSDP_WEIGHTS,
    FSDP_WEIGHTS_DCP,
    OPTIMIZER_DCP,
    OPTIMIZER_FILES,
    SCHEDULER,
    STAGING,
    checksums,
    last_usable_checkpoint,
    problem,
    rng_files,
)


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model", steps=60)
    finally:
        torch.set_num_threads(threads)


def train(tiny_dir: Path, out: Path, **kw: Any) -> Any:
    st = stage("npo", max_steps=4, batch_size=2, stopping=StoppingRule(kind="fixed_steps"))
    model, tok = load_model(str(tiny_dir))
    return unlearn(st, model, tok, FORGET, RETAIN, HOLDOUT, out, save_steps=2, **kw)


def names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.fixture(scope="module")
def trained(tiny_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any, list[tuple[str, list[str]]]]:
    """One uninterrupted 4-step run, recording where each checkpoint was being written and what was in place."""
    out = tmp_path_factory.mktemp("trained")
    seen: list[tuple[str, list[str]]] = []
    original = transformers.Trainer._save_optimizer_and_scheduler

    def spy(self: Any, output_dir: str) -> None:
        original(self, output_dir)
        seen.append((output_dir, names(out / "checkpoints")))

    transformers.Trainer._save_optimizer_and_scheduler = spy  # type: ignore[method-assign]
    try:
        result = train(tiny_dir, out)
    finally:
        transformers.Trainer._save_optimizer_and_scheduler = original  # type: ignore[method-assign]
    return out, result, seen


def test_a_checkpoint_is_written_aside_and_renamed_into_place(trained: tuple[Path, Any, list[Any]]) -> None:
    out, _, seen = trained
    assert [Path(d).name for d, _ in seen] == ["checkpoint-2", "checkpoint-4"]
    for output_dir, in_place in seen:
        assert Path(output_dir).parent.name == STAGING  # half-written: never under checkpoints/ itself
        assert Path(output_dir).name not in in_place
    assert names(out / "checkpoints") == ["checkpoint-2", "checkpoint-4"]  # no staging left behind
    for name in ("checkpoint-2", "checkpoint-4"):
        assert problem(out / "checkpoints" / name) is None


def resum(checkpoint: Path) -> None:
    """The checksums ``publish`` writes, for a checkpoint whose files a test laid out as another layout writes them."""
    (checkpoint / CHECKSUMS).write_text(json.dumps(checksums(checkpoint)), encoding="utf-8")


def _copy(trained: tuple[Path, Any, list[Any]], dest: Path) -> Path:
    shutil.copytree(trained[0], dest)
    return dest / "checkpoints"


@pytest.mark.parametrize(("damage", "why"), [
    (lambda c: (c / "trainer_state.json").unlink(), "no readable trainer_state.json"),
    (lambda c: (c / "trainer_state.json").write_text("{"), "no readable trainer_state.json"),
    (lambda c: (c / "trainer_state.json").write_text(json.dumps({"global_step": 2})), "trainer_state.json is not at the checkpoint's step"),
    (lambda c: (c / "model.safetensors").write_bytes((c / "model.safetensors").read_bytes()[:5000]),
     "truncated model weights"),
    (lambda c: (c / "model.safetensors").unlink(), "no model weights"),
    (lambda c: (c / "optimizer.pt").unlink(), "no optimizer state"),
    (lambda c: (c / "optimizer.pt").write_bytes((c / "optimizer.pt").read_bytes()[:-100]), "truncated optimizer state"),
    # without scheduler.pt the Trainer skips the optimizer state too (fresh AdamW moments, said nowhere)
    (lambda c: (c / "scheduler.pt").unlink(),
     "no readable scheduler.pt (the Trainer would resume without the optimizer state)"),
    (lambda c: (c / "scheduler.pt").write_bytes(b""),
     "no readable scheduler.pt (the Trainer would resume without the optimizer state)"),
    (lambda c: (c / "rng_state.pth").unlink(),
     "no readable RNG state rng_state.pth for 1 process(es) (damaged, or written by another process count)"),
])
def test_an_unusable_checkpoint_is_named_and_skipped(trained: tuple[Path, Any, list[Any]], tmp_path: Path,
                                                     caplog: pytest.LogCaptureFixture, damage: Any, why: str) -> None:
    ckpts = _copy(trained, tmp_path / "run")
    damage(ckpts / "checkpoint-4")
    assert problem(ckpts / "checkpoint-4") == why
    with caplog.at_level(logging.INFO, logger="unlearnspec.unlearn"):
        chosen = last_usable_checkpoint(ckpts)
    assert chosen == str(ckpts / "checkpoint-2")
    assert f"checkpoint checkpoint-4 is unusable ({why}): skipped" in caplog.text
    assert "resuming from checkpoint-2, the last complete checkpoint" in caplog.text
    assert not (ckpts / "checkpoint-4").exists()  # never again preferred over a complete one


def test_resume_after_an_unusable_newest_checkpoint_equals_the_uninterrupted_run(
        trained: tuple[Path, Any, list[Any]], tiny_dir: Path, tmp_path: Path) -> None:
    out, full, _ = trained
    ckpts = _copy(trained, tmp_path / "run")
    (ckpts / "checkpoint-4" / "trainer_state.json").unlink()  # what a kill mid-write left before this fix
    (ckpts / STAGING / "checkpoint-6").mkdir(parents=True)  # and what a kill mid-write leaves now
    resumed = train(tiny_dir, tmp_path / "run", resume_from_checkpoint=True)
    assert resumed.steps_done == 4 and not (ckpts / STAGING).exists()
    a, b = full.model.state_dict(), resumed.model.state_dict()
    assert max(float((a[k] - b[k]).abs().max()) for k in a) < 1e-5


def test_with_no_usable_checkpoint_the_stage_restarts_from_step_0(
        trained: tuple[Path, Any, list[Any]], tiny_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    ckpts = _copy(trained, tmp_path / "run")
    for name in ("checkpoint-2", "checkpoint-4"):
        (ckpts / name / "optimizer.pt").unlink()
    with caplog.at_level(logging.INFO, logger="unlearnspec.unlearn"):
        assert last_usable_checkpoint(ckpts) is None
    assert "no usable checkpoint: the stage restarts from step 0" in caplog.text
    assert last_usable_checkpoint(tmp_path / "nothing-here") is None


def test_the_scheduler_and_every_rngs_state_are_required(trained: tuple[Path, Any, list[Any]], tmp_path: Path) -> None:
    """What the Trainer writes besides the weights and the optimizer state, and reads back on resume: the
    scheduler's state (its presence decides whether the optimizer state is loaded at all) and the RNG state of
    each process of the launch that wrote it."""
    import transformers.trainer as hf

    assert hf.SCHEDULER_NAME == SCHEDULER
    ckpts = _copy(trained, tmp_path / "run")
    one = ckpts / "checkpoint-4"
    assert sorted(p.name for p in one.iterdir() if p.suffix in (".pt", ".pth")) == [
        "optimizer.pt", "rng_state.pth", "scheduler.pt"]
    assert problem(one) is None and problem(one, processes=1) is None
    # a launch of two processes needs rng_state_0.pth and rng_state_1.pth: a one-process checkpoint has neither
    assert problem(one, processes=2) == ("no readable RNG state rng_state_0.pth, rng_state_1.pth for 2 process(es) "
                                         "(damaged, or written by another process count)")
    for k in range(2):
        shutil.copy(one / "rng_state.pth", one / f"rng_state_{k}.pth")
    assert problem(one, processes=2) is None
    (one / "rng_state_1.pth").unlink()  # one rank's file never written
    assert "rng_state_1.pth for 2 process(es)" in (problem(one, processes=2) or "")
    assert last_usable_checkpoint(ckpts, processes=2) is None  # checkpoint-2 has no rank files either
    assert rng_files(1) == ["rng_state.pth"] and rng_files(3) == [f"rng_state_{k}.pth" for k in range(3)]


@pytest.mark.filterwarnings("ignore:torch.distributed is disabled:UserWarning")  # dcp.save in one process
def test_the_fsdp_layouts_are_accelerates_and_resumable(trained: tuple[Path, Any, list[Any]], tmp_path: Path) -> None:
    """Under FSDP the Trainer saves through accelerate's ``save_fsdp_model``/``save_fsdp_optimizer``: a
    full state dict as ``pytorch_model_fsdp.bin`` and ``optimizer.bin``, a sharded one as DCP folders.
    Such a checkpoint used to be rejected for want of ``optimizer.pt``, so an FSDP run restarted at step 0."""
    import torch.distributed.checkpoint as dcp
    from accelerate.utils.constants import FSDP_MODEL_NAME, OPTIMIZER_NAME

    # the names are accelerate's own (utils/fsdp_utils.py builds them from these constants)
    assert f"{FSDP_MODEL_NAME}.bin" == FSDP_WEIGHTS and f"{FSDP_MODEL_NAME}_0" == FSDP_WEIGHTS_DCP
    assert f"{OPTIMIZER_NAME}.bin" in OPTIMIZER_FILES and f"{OPTIMIZER_NAME}_0" == OPTIMIZER_DCP
    ckpts = _copy(trained, tmp_path / "run")
    full = ckpts / "checkpoint-4"
    optimizer = torch.load(full / "optimizer.pt", weights_only=True)
    (full / "optimizer.pt").rename(full / f"{OPTIMIZER_NAME}.bin")  # FULL_STATE_DICT, as rank 0 writes it
    torch.save({"w": torch.ones(3)}, full / FSDP_WEIGHTS)
    assert problem(full) == "optimizer.pt is missing"  # not the files publish summed: laid out again, summed again
    resum(full)
    assert problem(full) is None
    assert last_usable_checkpoint(ckpts) == str(full)
    data = (full / FSDP_WEIGHTS).read_bytes()
    (full / FSDP_WEIGHTS).write_bytes(data[: len(data) // 2])  # killed while rank 0 wrote it
    assert problem(full) == "truncated FSDP model state"
    (full / FSDP_WEIGHTS).write_bytes(data)
    data = (full / f"{OPTIMIZER_NAME}.bin").read_bytes()
    (full / f"{OPTIMIZER_NAME}.bin").write_bytes(data[:-64])
    assert problem(full) == "truncated optimizer state"

    sharded = ckpts / "checkpoint-2"  # SHARDED_STATE_DICT: torch.distributed.checkpoint folders
    (sharded / "optimizer.pt").unlink()
    dcp.save({"optimizer": optimizer["state"]}, checkpoint_id=str(sharded / OPTIMIZER_DCP))
    dcp.save({"w": torch.ones(3)}, checkpoint_id=str(sharded / FSDP_WEIGHTS_DCP))
    resum(sharded)
    assert problem(sharded) is None
    (sharded / OPTIMIZER_DCP / ".metadata").unlink()  # the shards are written, the metadata is not yet
    assert problem(sharded) == "incomplete optimizer state"
    (sharded / FSDP_WEIGHTS_DCP / ".metadata").unlink()
    assert problem(sharded) == "incomplete FSDP model state"


def test_a_stop_on_a_checkpoint_step_still_holds_after_a_resume(tiny_dir: Path, tmp_path: Path) -> None:
    """The stopping rule fires at step 2, which is also a checkpoint: a kill after that save and a resume must
    stop there too (the Trainer forgets a stop across a restart and would train on to the step budget)."""
    st = stage("npo", max_steps=6, batch_size=2, stopping=StoppingRule(kind="holdout_loss", ratio=0.01, check_every=2))
    model, tok = load_model(str(tiny_dir))
    full = unlearn(st, model, tok, FORGET, RETAIN, HOLDOUT, tmp_path / "run", save_steps=2)
    assert full.stopped_early and full.steps_done == 2
    assert names(tmp_path / "run" / "checkpoints") == ["checkpoint-2"]
    model, tok = load_model(str(tiny_dir))
    resumed = unlearn(st, model, tok, FORGET, RETAIN, HOLDOUT, tmp_path / "run", save_steps=2,
                      resume_from_checkpoint=True)
    assert resumed.stopped_early and resumed.steps_done == 2 and resumed.stop_reason == full.stop_reason
    a, b = full.model.state_dict(), resumed.model.state_dict()
    assert max(float((a[k] - b[k]).abs().max()) for k in a) == 0.0


def test_the_lora_adapter_is_written_aside_fsynced_and_renamed_into_place(tiny_dir: Path, tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """A kill while the adapter is saved leaves the old adapter/ or the new one, never half of one: it is written into
    adapter.partial, every file fsynced, then renamed; what a killed save left (adapter.partial, a stale adapter/)
    does not survive into the new one."""
    out = tmp_path / "out"
    (out / "adapter.partial").mkdir(parents=True)
    (out / "adapter.partial" / "half.bin").write_bytes(b"a killed save")
    (out / "adapter").mkdir()
    (out / "adapter" / "stale.bin").write_bytes(b"an earlier attempt's")
    events: list[tuple[str, str]] = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}"))),
                                                  real_fsync(fd))[1])
    monkeypatch.setattr(os, "replace", lambda a, b, **kw: (events.append(("rename", str(b))), real_replace(a, b, **kw))[1])
    st = stage("grad_diff", adapter="lora", lora=LoraConfig(rank=4, alpha=8), max_steps=2, batch_size=2)
    model, tok = load_model(str(tiny_dir))
    result = unlearn(st, model, tok, FORGET, RETAIN, HOLDOUT, out, save_steps=2)
    assert result.adapter_dir == out / "adapter"
    renamed = events.index(("rename", str(out / "adapter")))
    flushed = {p for kind, p in events[:renamed] if kind == "fsync"}
    assert str(out / "adapter.partial" / "adapter_model.safetensors") in flushed
    assert str(out / "adapter.partial") in flushed and ("fsync", str(out)) in events[renamed:]
    assert names(out / "adapter") == ["README.md", "adapter_config.json", "adapter_model.safetensors"]
    assert not (out / "adapter.partial").exists()
