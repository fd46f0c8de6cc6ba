"""Fault injection: a run killed (SIGKILL, from this parent process) at a stage boundary or in the middle
of a checkpoint write, or stopped by a full disk, resumes to the report an uninterrupted run gives (all
but timestamps equal); two runs started into one folder at once: exactly one proceeds (issue 12: 1, 2, 3, 16).

The faults are injected by running the CLI through a small wrapper (``python -c``) that patches one
Trainer method before calling ``unlearnspec.cli.main``: to pause in the middle of writing checkpoint-20
(after the weights and optimizer state, before ``trainer_state.json``) so that the parent can kill it, or
to raise ENOSPC there. The objective is the small one of test_engine.py on a tiny local model folder
(fixtures/runs.py), so the tests exercise the same stages, checkpoints and resume at a fraction of the
builtin model's cost; ``tiny_run`` is its uninterrupted run.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from fixtures.runs import ROOT, cli, make_tiny_local

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_local(tmp_path_factory.mktemp("tiny-small"))


@pytest.fixture(scope="module")
def small_run(small: Path) -> Path:
    done = cli("run", "plan.json", "--out", "run-a", "--quiet", cwd=small)
    assert done.returncode in (0, 1, 3), done.stderr
    return small / "run-a"

CKPT = Path("objectives") / "small" / "unlearn" / "checkpoints"
MODEL = "objectives/small/unlearn/model"
TIMESTAMPS = ("started_at", "finished_at", "wall_seconds")

# Patch Trainer._save_optimizer_and_scheduler (called while a checkpoint folder is being written) to do
# MODE at the checkpoint of step 20: "pause" writes a marker and sleeps (the parent kills it); "enospc"
# raises the OS error a full disk gives.
WRAPPER = """
import errno, os, sys, time
from pathlib import Path
import transformers
MODE, MARKER = sys.argv[1], Path(sys.argv[2])
original = transformers.Trainer._save_optimizer_and_scheduler
def patched(self, output_dir):
    original(self, output_dir)
    if self.state.global_step == 20:
        if MODE == "enospc":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), os.path.join(output_dir, "scheduler.pt"))
        MARKER.write_text(str(output_dir))
        time.sleep(600)
transformers.Trainer._save_optimizer_and_scheduler = patched
from unlearnspec.cli import main
raise SystemExit(main(sys.argv[3:]))
"""


def start(cwd: Path, *args: str, wrapper: tuple[str, Path] | None = None) -> subprocess.Popen[str]:
    head = [sys.executable, "-c", WRAPPER, wrapper[0], str(wrapper[1])] if wrapper else [sys.executable, "-m",
                                                                                        "unlearnspec"]
    return subprocess.Popen([*head, *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})


def wait_for(condition: Any, proc: subprocess.Popen[str], what: str, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert proc.poll() is None, f"the run ended before {what}: {proc.communicate()[1][-2000:]}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def kill(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.communicate()


def stage(run: Path, name: str) -> str:
    try:
        return str(json.loads((run / "run.json").read_text())["stages"].get(f"small/{name}", {}).get("status"))
    except (OSError, ValueError):
        return "unreadable"


def report_without_timestamps(run: Path) -> dict[str, Any]:
    report = json.loads((run / "report.json").read_text())
    for key in TIMESTAMPS:
        report["audit"].pop(key)
    return report  # type: ignore[no-any-return]


def assert_same_report(a: Any, b: Any, where: str = "report") -> None:
    """Equal, floats within 1e-6 (a resumed Trainer replays the same steps from the same state)."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), where
        for k in a:
            assert_same_report(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same_report(x, y, f"{where}.{i}")
    elif isinstance(a, float) and isinstance(b, float):
        assert abs(a - b) <= 1e-6, (where, a, b)
    else:
        assert a == b, (where, a, b)


def resume(small: Path, run: Path) -> subprocess.CompletedProcess[str]:
    done = cli("run", "--resume", str(run), "--quiet", cwd=small)
    assert done.returncode in (0, 1, 3), done.stderr
    assert "Traceback" not in done.stderr
    return done


def test_killed_at_a_stage_boundary_resumes_to_the_same_report(small: Path, small_run: Path) -> None:
    run = small / "run-boundary"
    proc = start(small, "run", "plan.json", "--out", str(run), "--quiet")
    wait_for(lambda: stage(run, "unlearn") == "done", proc, "the unlearn stage finished")
    kill(proc)
    assert not (run / "report.json").exists()
    resume(small, run)
    state = json.loads((run / "run.json").read_text())
    assert state["resumed"] == 1 and state["finished_at"]
    assert state["stages"]["small/unlearn"]["detail"]["steps"] == 30  # not trained again
    assert_same_report(report_without_timestamps(run), report_without_timestamps(small_run))


def test_full_disk_then_kill_mid_checkpoint_then_resume(small: Path, small_run: Path, tmp_path: Path) -> None:
    """ENOSPC while writing checkpoint-20: diagnostic, exit 2, resumable. The resumed run is then killed in
    the middle of writing checkpoint-20: only complete checkpoints are ever in place, the resume says which
    one it continues from, and the final report equals the uninterrupted run's."""
    run = small / "run-faults"
    marker = tmp_path / "paused"
    proc = start(small, "run", "plan.json", "--out", str(run), "--quiet", wrapper=("enospc", marker))
    out, err = proc.communicate(timeout=900)
    assert proc.returncode == 2, err
    assert "error[UL709]: cannot write" in err and "no space left on device" in err
    assert f"unlearnspec run --resume {run}" in err and "Traceback" not in err
    assert stage(run, "unlearn") == "running"
    assert sorted(p.name for p in (run / CKPT).iterdir() if p.name.startswith("checkpoint-")) == ["checkpoint-10"]

    proc = start(small, "run", "--resume", str(run), "--quiet", wrapper=("pause", marker))
    wait_for(marker.exists, proc, "checkpoint-20 was half written")
    kill(proc)
    half = Path(marker.read_text())
    assert half.parent.name == ".staging" and not (half / "trainer_state.json").exists()
    assert sorted(p.name for p in (run / CKPT).iterdir() if p.name.startswith("checkpoint-")) == ["checkpoint-10"]

    resume(small, run)
    log = (run / "run.log").read_text()
    assert log.count("resuming from checkpoint-10, the last complete checkpoint") == 2
    assert not (run / CKPT / ".staging").exists() or not any((run / CKPT / ".staging").iterdir())
    state = json.loads((run / "run.json").read_text())
    assert state["resumed"] == 2 and state["stages"]["small/unlearn"]["detail"]["steps"] == 30
    assert_same_report(report_without_timestamps(run), report_without_timestamps(small_run))


def test_resuming_a_finished_run_changes_nothing(small: Path, small_run: Path) -> None:
    before = {p.name: p.read_bytes() for p in small_run.iterdir() if p.is_file() and p.name != "run.log"}
    done = cli("run", "--resume", str(small_run), "--quiet", cwd=small)
    report = json.loads(before["report.json"])
    assert done.returncode == report["exit_code"], done.stderr
    assert "had already finished" in done.stderr and "verdict:" in done.stdout
    after = {p.name: p.read_bytes() for p in small_run.iterdir() if p.is_file() and p.name != "run.log"}
    assert after == before  # wall_seconds, run.json and the reports untouched
    assert report["audit"]["plan_provenance"] == "rederived"


def test_two_runs_started_into_one_folder_at_once(small: Path) -> None:
    run = small / "run-twice"
    procs = [start(small, "run", "plan.json", "--out", str(run), "--quiet") for _ in range(2)]
    deadline = time.monotonic() + 300
    while all(p.poll() is None for p in procs):
        assert time.monotonic() < deadline, "neither run stopped"
        time.sleep(0.05)
    loser = next(p for p in procs if p.poll() is not None)
    winner = next(p for p in procs if p is not loser)
    _, err = loser.communicate()
    assert loser.returncode == 2 and "error[UL707]" in err, err
    assert winner.poll() is None, "the other run proceeds"
    kill(winner)
    state = json.loads((run / "run.json").read_text())
    assert state["resumed"] == 0  # one run's state, written by the one that proceeded


def _digest(folder: Path) -> str:
    """The folder content hash docs/reports.md describes, from the files: path and sha256 of each, sorted."""
    import hashlib

    h = hashlib.sha256()
    for p in sorted(x for x in folder.rglob("*") if x.is_file()):
        h.update(p.relative_to(folder).as_posix().encode() + b"\0" + hashlib.sha256(p.read_bytes()).digest())
    return h.hexdigest()


def test_a_local_models_report_hash_is_its_folder_and_sees_a_file_added_after_planning(small: Path,
                                                                                       small_run: Path) -> None:
    plan = json.loads((small / "plan.json").read_text())
    report = json.loads((small_run / "report.json").read_text())
    original = next(m for m in report["objectives"][0]["models"] if m["role"] == "original")
    folder = small / plan["objectives"][0]["model"]["source"]
    assert original["sha256"] == plan["objectives"][0]["model"]["sha256"] == _digest(folder)
    (folder / "NOTES.txt").write_text("added after the plan was made\n")  # not one of the plan's files
    try:
        refused = cli("run", "plan.json", "--out", "run-refused", "--quiet", cwd=small)
        assert refused.returncode == 2 and "model changed" in refused.stderr  # re-derived from the spec: refused
        done = cli("run", "plan.json", "--trust-plan", "--out", "run-added", "--quiet", cwd=small)
        assert done.returncode in (0, 1, 3), done.stderr
        again = json.loads((small / "run-added" / "report.json").read_text())
        seen = next(m for m in again["objectives"][0]["models"] if m["role"] == "original")
        assert seen["sha256"] == _digest(folder) != original["sha256"]  # the report pins what was loaded
    finally:
        (folder / "NOTES.txt").unlink()


def test_a_copied_run_folder_resumes_with_its_own_model_and_a_lost_one_is_made_again(small: Path, small_run: Path,
                                                                                    tmp_path: Path) -> None:
    """run.json names the unlearned model relative to the run folder: a copy (or a moved folder), resumed from
    another working folder, continues with its own model and never touches the original's, even where that is now
    another valid model. A model lost after its stage was marked done (the disk kept run.json, not the weights) is
    found by the sizes and hash run.json records, and the stage is done again from its checkpoints. Both reports equal
    the uninterrupted run's."""
    run = small / "run-copied"
    proc = start(small, "run", "plan.json", "--out", str(run), "--quiet")
    wait_for(lambda: stage(run, "unlearn") == "done", proc, "the unlearn stage finished")
    kill(proc)
    detail = json.loads((run / "run.json").read_text())["stages"]["small/unlearn"]["detail"]
    assert detail["model_dir"] == MODEL and detail["model_sha256"] == _digest(run / MODEL)
    copy, lost = tmp_path / "elsewhere" / "copy", tmp_path / "lost"
    shutil.copytree(run, copy)
    shutil.copytree(run, lost)
    shutil.rmtree(run / MODEL)  # the original folder's model is now another, valid model
    shutil.copytree(small / "model", run / MODEL)
    theirs = _digest(run / MODEL)

    resume(tmp_path, copy)
    assert "done again" not in (copy / "run.log").read_text()  # its own model, whole: not made again
    assert _digest(run / MODEL) == theirs  # the original folder untouched
    report = report_without_timestamps(copy)
    unlearned = next(m for m in report["objectives"][0]["models"] if m["role"] == "unlearned")
    assert unlearned["path"] == MODEL and unlearned["sha256"] == _digest(copy / MODEL)
    assert_same_report(report, report_without_timestamps(small_run))

    weights = lost / MODEL / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:4096])  # what a power loss leaves of a file that was not flushed
    resume(small, lost)
    log = (lost / "run.log").read_text()
    assert "the unlearn stage is done again, from its last complete checkpoint" in log
    assert "resuming from checkpoint-" in log
    assert_same_report(report_without_timestamps(lost), report_without_timestamps(small_run))
