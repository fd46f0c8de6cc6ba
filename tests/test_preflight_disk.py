"""RT107: before a run starts, the disk that will hold its folder is compared with an upper bound of what the run
writes there — the unlearned model and the training checkpoints a resume restarts from. The bound is checked
against what the Trainer really writes for a checkpoint, and the warning against a disk made to look small."""

from __future__ import annotations

import shutil
from collections import namedtuple
from pathlib import Path

import pytest

from unlearnspec.catalog.methods import CHECKPOINTS_KEPT
from unlearnspec.compiler.check import plan_file
from unlearnspec.errors import UserError
from unlearnspec.runtime import preflight

SPECS = Path(__file__).resolve().parents[1] / "specs"
Usage = namedtuple("Usage", "total used free")


def _plan(name: str = "erase-jane-doe.unlearn") -> object:
    plan, result = plan_file(SPECS / name, allow_infeasible=True)
    assert plan is not None, result.diagnostics
    return plan


def test_a_checkpoint_the_trainer_writes_fits_the_bound_per_parameter(tmp_path: Path) -> None:
    """The per-parameter bytes of a checkpoint are what the Trainer really writes (weights and Adam's state), within
    the bound and not far below it: an independent measurement of the constant the estimate uses."""
    import torch
    from test_loading import _save_tiny
    from transformers import GPT2LMHeadModel, Trainer, TrainingArguments

    model = GPT2LMHeadModel.from_pretrained(_save_tiny(tmp_path / "tiny"))
    p = sum(t.numel() for t in model.parameters())
    ids = torch.randint(0, model.config.vocab_size, (4, 16))
    data = [{"input_ids": row, "labels": row} for row in ids]
    args = TrainingArguments(output_dir=str(tmp_path / "ck"), max_steps=1, save_strategy="steps", save_steps=1,
                             per_device_train_batch_size=4, use_cpu=True, report_to=[], disable_tqdm=True)
    Trainer(model=model, args=args, train_dataset=data).train()
    (ck,) = (tmp_path / "ck").glob("checkpoint-*")
    weights = sum(f.stat().st_size for f in ck.glob("*.safetensors")) + (ck / "optimizer.pt").stat().st_size
    bound = p * preflight.CHECKPOINT_BYTES_PER_PARAMETER
    assert 0.8 * bound <= weights <= bound + 64 * 1024  # headers and pickling add a few kB, never a second copy


def test_the_estimate_counts_the_model_and_the_checkpoints_of_each_training_objective() -> None:
    plan = _plan()
    (op,) = plan.objectives
    p = op.model.parameters
    assert p is not None and p > 0
    need, parts = preflight.disk_estimate(plan)
    checkpoints = (CHECKPOINTS_KEPT + 1) * p * preflight.CHECKPOINT_BYTES_PER_PARAMETER
    assert need == p * preflight.MODEL_BYTES_PER_PARAMETER + checkpoints
    assert len(parts) == 1 and "unlearned model" in parts[0] and f"{CHECKPOINTS_KEPT + 1} training checkpoints" in parts[0]
    # an output filter writes no weights: nothing to count
    assert preflight.disk_estimate(_plan("glimmerfen-refusal.unlearn"))[0] >= 0
    filtered = _plan("glimmerfen-filter-open-weights.unlearn")
    assert all(s.family == "system_suppression" for o in filtered.objectives for s in o.stages
               if getattr(s, "kind", "") == "unlearn")
    assert preflight.disk_estimate(filtered) == (0, [])


def test_a_disk_with_less_free_space_than_the_estimate_gets_rt107(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    plan = _plan()
    need, _ = preflight.disk_estimate(plan)
    out = tmp_path / "not-yet" / "run"  # the nearest folder that exists is asked
    asked: list[Path] = []

    def usage(free: int):  # type: ignore[no-untyped-def]
        def du(path: Path) -> Usage:
            asked.append(Path(path))
            return Usage(10 * need, 0, free)
        return du

    monkeypatch.setattr(shutil, "disk_usage", usage(need))
    assert preflight.disk_warning(plan, out) is None
    assert asked == [tmp_path]
    monkeypatch.setattr(shutil, "disk_usage", usage(need - 1))
    found = preflight.disk_warning(plan, out)
    assert isinstance(found, UserError) and found.code == "RT107"
    assert "erase-jane-doe" in " ".join(found.help) and "free" in found.message


def test_run_prints_rt107_as_a_warning_and_runs_anyway(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    from unlearnspec.cli import main
    from unlearnspec.cli import run as run_cli

    shutil.copytree(SPECS / "data", tmp_path / "data")
    shutil.copy(SPECS / "erase-jane-doe.unlearn", tmp_path / "erase-jane-doe.unlearn")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(shutil, "disk_usage", lambda path: Usage(1, 1, 0))
    started: list[object] = []

    def execute(plan: object, spec_dir: object, **options: object) -> object:
        started.append(plan)
        raise UserError("UL700", "stopped here by the test")

    monkeypatch.setattr(run_cli, "_execute", execute)
    assert main(["run", "erase-jane-doe.unlearn", "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("warning[RT107]: ") and "= help:" in err and started
