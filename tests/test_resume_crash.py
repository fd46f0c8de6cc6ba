"""Crash safety and resume of a run folder, without training: what run.json records of a stage's outputs (relative to
the run folder, checked on resume), the lock taken before the state is read, a start cut short between plan.json and
run.json, a full disk as the lock is written, the user's own --out folder, a finished run on a read-only disk, the
environment a run was started in, and the modes and fsyncs of what a run writes.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from test_report import make_plan, make_report
from transformers import GPT2Config, GPT2LMHeadModel

from unlearnspec import io as uio
from unlearnspec.audit.ledger import LedgerError, record_run
from unlearnspec.cli import main
from unlearnspec.plan import Plan
from unlearnspec.records import sha256_path
from unlearnspec.report import write_reports
from unlearnspec.runtime import builtin_model, engine, execute, pipeline
from unlearnspec.runtime import rundir as rundir_mod
from unlearnspec.runtime.methods.guard import OutputGuard
from unlearnspec.runtime.rundir import RunDir, RunError, RunState, model_problem, model_record, now

ROOT = Path(__file__).resolve().parents[1]
MODEL_REL = "objectives/small/unlearn/model"


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def tiny_model(folder: Path) -> Path:
    GPT2LMHeadModel(GPT2Config(n_layer=1, n_head=2, n_embd=8, vocab_size=32, n_positions=16)).save_pretrained(folder)
    return folder


def started(small_here: Path, out: str = "r", **state: Any) -> RunDir:
    """A run folder as `run` starts one (plan.json, run.json), released as a killed run leaves it."""
    plan = Plan.load(small_here / "plan.json")
    rd, st = engine._start(plan, small_here, engine.RunOptions(out=small_here / out, no_ledger=True))
    for key, value in state.items():
        setattr(st, key, value)
    rd.save_state(st)
    rd.release()
    return rd


# -- 1. stage outputs are stored relative to the run folder and resolved against the folder read ---------------------


def test_a_stage_output_is_stored_relative_and_a_copied_folder_resumes_with_its_own_model(tmp_path: Path) -> None:
    rd = RunDir(tmp_path / "a")
    rd.root.mkdir()
    model = tiny_model(rd.root / MODEL_REL)
    state = RunState(plan_hash="h", spec_dir="/spec", started_at=now())
    state.stage("small/unlearn").status = "done"
    state.stage("small/unlearn").detail.update(model_dir=str(model), **model_record(model))
    state.stage("small/reference").detail["path"] = "/cache/retrained/x"  # outside the run: not a run output
    rd.save_state(state)
    stored = json.loads(rd.state_path.read_text())
    assert stored["format_version"] == "1.1"
    assert stored["stages"]["small/unlearn"]["detail"]["model_dir"] == MODEL_REL  # not the absolute path
    assert stored["stages"]["small/reference"]["detail"]["path"] == "/cache/retrained/x"
    assert state.stage("small/unlearn").detail["model_dir"] == str(model)  # in memory: still absolute
    shutil.copytree(rd.root, tmp_path / "b")
    (model / "model.safetensors").write_bytes(b"the original folder's model, changed since")
    copy = RunDir(tmp_path / "b").load_state().stage("small/unlearn").detail
    assert copy["model_dir"] == str(tmp_path / "b" / MODEL_REL)
    assert model_problem(Path(copy["model_dir"]), copy) is None  # the copy's own model, as it was saved
    assert model_problem(model, copy) is not None  # the original's, changed, would not pass


def test_an_old_run_json_with_absolute_paths_is_read_only_where_they_lie_inside_it(tmp_path: Path,
                                                                                   small_here: Path,
                                                                                   capsys: pytest.CaptureFixture[str]
                                                                                   ) -> None:
    """run.json of format 1.0 recorded the model whole: accepted where the path is inside the folder being resumed
    (or outside every run folder: the cache), refused (UL704, with the folder it came from) where it names another
    run folder's model, since the resume would take that model."""
    rd = started(small_here, "old")
    state = json.loads(rd.state_path.read_text())
    state["format_version"] = "1.0"
    state["stages"] = {"small/unlearn": {"status": "done", "detail": {"model_dir": str(rd.root / MODEL_REL)}},
                       "small/reference": {"status": "done", "detail": {"model_dir": "/cache/retrained/a/b"}}}
    rd.state_path.write_text(json.dumps(state), encoding="utf-8")
    got = RunDir(rd.root).load_state()
    assert got.stage("small/unlearn").detail["model_dir"] == str(rd.root / MODEL_REL)
    assert got.stage("small/reference").detail["model_dir"] == "/cache/retrained/a/b"
    moved = small_here / "moved"
    shutil.move(rd.root, moved)
    with pytest.raises(RunError) as info:
        RunDir(moved).load_state()
    assert info.value.code == "UL704" and f"moved or copied from `{rd.root}`" in info.value.message
    code, _, err = run_cli(capsys, "run", "--resume", "moved")
    assert code == 2 and "error[UL704]" in err and str(rd.root / MODEL_REL) in err, err
    state["stages"]["small/unlearn"]["detail"]["model_dir"] = "../../elsewhere/model"  # relative, but climbs out
    (moved / "run.json").write_text(json.dumps(state), encoding="utf-8")
    with pytest.raises(RunError, match="outside the run folder"):
        RunDir(moved).load_state()


def test_the_ledger_never_records_the_weights_as_unchanged_when_the_model_made_is_gone(tmp_path: Path) -> None:
    plan, report = make_plan(), make_report()  # records no hash of an unlearned model: the folder is hashed
    run = tmp_path / "run"
    run.mkdir()
    (run / "report.json").write_text(report.model_dump_json(), encoding="utf-8")
    with pytest.raises(LedgerError) as info:
        record_run(tmp_path / "ledger", run, plan, report, {"erase-jane-doe": str(run / MODEL_REL)})
    assert info.value.code == "UL805" and "is not at" in info.value.message
    assert not (run / "ledger.json").exists() and not list((tmp_path / "ledger").glob("*.jsonl"))
    tiny_model(run / MODEL_REL)
    [entry] = record_run(tmp_path / "ledger", run, plan, report, {"erase-jane-doe": str(run / MODEL_REL)})
    assert entry.model_after == sha256_path(run / MODEL_REL) != entry.model_before


# -- 2. a saved model is fsynced before its rename, recorded, and checked on resume --------------------------------


@pytest.fixture
def disk_log(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """Every fsync (with the path it flushed) and rename, in order."""
    events: list[tuple[str, str]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def replace(src: Any, dst: Any, **kw: Any) -> None:
        events.append(("rename", str(dst)))
        real_replace(src, dst, **kw)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    return events


def _flushed_before_rename(events: list[tuple[str, str]], dest: Path) -> None:
    renamed = events.index(("rename", str(dest)))
    flushed = {p for kind, p in events[:renamed] if kind == "fsync"}
    files = {str(dest.with_name(dest.name + ".partial") / f.relative_to(dest)) for f in dest.rglob("*") if f.is_file()}
    assert files and files <= flushed, files - flushed
    assert str(dest.with_name(dest.name + ".partial")) in flushed  # the folder's entries too
    assert ("fsync", str(dest.parent)) in events[renamed:]  # and the rename itself


def test_the_unlearned_model_is_on_the_disk_before_its_name(tmp_path: Path, disk_log: list[tuple[str, str]]) -> None:
    model = GPT2LMHeadModel(GPT2Config(n_layer=1, n_head=2, n_embd=8, vocab_size=32, n_positions=16))
    dest = tmp_path / "unlearn" / "model"
    dest.parent.mkdir()
    pipeline._save_model_atomically(model, None, dest)
    _flushed_before_rename(disk_log, dest)
    assert not dest.with_name("model.partial").exists()


def test_a_built_model_is_on_the_disk_before_its_name_in_the_cache(tmp_path: Path,
                                                                   disk_log: list[tuple[str, str]]) -> None:
    B = builtin_model

    def build(tmp: Path) -> None:
        for name in B._REQUIRED_FILES:
            (tmp / name).write_text(name)

    final = B.build_atomically(tmp_path / "cache" / "abc", build)
    renamed = next(i for i, e in enumerate(disk_log) if e == ("rename", str(final)))
    staged = {p for kind, p in disk_log[:renamed] if kind == "fsync"}
    assert {n for n in B._REQUIRED_FILES} <= {Path(p).name for p in staged}
    assert ("fsync", str(final.parent)) in disk_log[renamed:]


def test_the_guard_is_written_through_the_atomic_writer(tmp_path: Path, disk_log: list[tuple[str, str]]) -> None:
    guard = OutputGuard(n=2, ngrams=frozenset({"jane doe"}), phrases=("jane doe",), refusal_text="no")
    path = guard.save(tmp_path / "unlearn")
    renamed = disk_log.index(("rename", str(path)))
    assert any(kind == "fsync" and Path(p).name.startswith(".guard.json.") for kind, p in disk_log[:renamed])
    assert [p.name for p in path.parent.iterdir()] == ["guard.json"]  # no fixed-name temporary file left
    assert OutputGuard.load(path).to_json() == guard.to_json()


def test_a_damaged_saved_model_is_found(tmp_path: Path) -> None:
    folder = tiny_model(tmp_path / "m")
    record = model_record(folder)
    weights = folder / "model.safetensors"
    assert record["model_files"]["model.safetensors"] == weights.stat().st_size
    assert record["model_sha256"] == sha256_path(folder) and model_problem(folder, record) is None
    data = weights.read_bytes()
    weights.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))  # same size, other bytes
    assert "no longer hashes" in str(model_problem(folder, record))
    weights.write_bytes(data[: len(data) // 2])  # cut short, as a power loss leaves an unsynced file
    assert "model.safetensors" in str(model_problem(folder, record))
    assert "cut short" in str(model_problem(folder, {}))  # a stage recorded before 1.1: its header is checked
    weights.write_bytes(data)
    assert model_problem(folder, record) is None
    shutil.rmtree(folder)
    assert model_problem(folder, record) == "is missing"


class _Result(SimpleNamespace):
    pass


def _objective(small_here: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, list[str], list[str]]:
    """The small objective's run, with training and loading replaced by stand-ins that say when they ran."""
    plan = Plan.load(small_here / "plan.json")
    rd = RunDir(tmp_path / "run")
    rd.root.mkdir()
    state = RunState(plan_hash=plan.plan_hash, spec_dir=str(small_here), started_at=now())
    orun = pipeline.ObjectiveRun(plan, plan.objectives[0], rd, state, quiet=True, allow_remote_code=False)
    orun.fmt = None
    trained: list[str] = []
    loaded: list[str] = []

    def train(stage: Any, model: Any, tok: Any, *_: Any, **kw: Any) -> _Result:
        trained.append(str(kw.get("resume_from_checkpoint")))
        return _Result(model=GPT2LMHeadModel(GPT2Config(n_layer=1, n_head=2, n_embd=8, vocab_size=32, n_positions=16)),
                       steps_done=30, stop_reason="fixed_steps", log_history=[])

    monkeypatch.setattr(pipeline, "run_method", train)
    monkeypatch.setattr(pipeline, "load_model", lambda path, **_: (loaded.append(path), None))
    return orun, trained, loaded


@pytest.fixture
def run_log() -> Iterator[list[str]]:
    """What the run logs (``unlearnspec.run``), whatever handlers an earlier run in this process left."""
    lines: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage())

    logger = logging.getLogger("unlearnspec.run")
    handler = Keep(logging.DEBUG)
    logger.addHandler(handler)
    yield lines
    logger.removeHandler(handler)


def test_a_model_damaged_after_its_stage_was_done_is_made_again_on_resume(
        small_here: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run_log: list[str]) -> None:
    orun, trained, loaded = _objective(small_here, tmp_path, monkeypatch)
    data = SimpleNamespace(for_training=lambda role: [], holdout_calibration=[], aliases=[])
    orun._unlearn(data, None, None)  # the stage runs: the model is saved and recorded
    det = orun.detail("unlearn")
    model_dir = orun.rd.root / MODEL_REL
    assert trained == ["None"] and det["model_dir"] == str(model_dir) and det["model_sha256"] == sha256_path(model_dir)
    stored = json.loads(orun.rd.state_path.read_text())["stages"]["small/unlearn"]
    assert stored["status"] == "done" and stored["detail"]["model_dir"] == MODEL_REL
    orun.state = orun.rd.load_state()  # a resume: the stage is done and its model whole: loaded, not made again
    orun._unlearn(data, None, None)
    assert trained == ["None"] and loaded == [str(model_dir)]
    (model_dir / "model.safetensors").write_bytes(b"\0" * 64)  # the disk lost what was not flushed
    (orun.rd.root / "objectives/small/unlearn/checkpoints/checkpoint-30").mkdir(parents=True)
    orun.state = orun.rd.load_state()
    for later in ("evaluate", "attack", "verdict"):  # measured on the model that was lost
        orun.state.stage(f"small/{later}").status = "done"
    orun._unlearn(data, None, None)
    # what was measured on the lost model is measured again on the one made now, not read back from checks.json
    assert not any(orun._done(later) for later in ("evaluate", "attack", "verdict"))
    assert trained == ["None", "True"], trained  # done again, resumed from its checkpoints
    said = next(line for line in run_log if "the unlearn stage is done again, from its last complete checkpoint" in line)
    assert "model.safetensors" in said and str(model_dir) in said
    assert loaded == [str(model_dir)] and model_problem(model_dir, orun.detail("unlearn")) is None
    assert json.loads(orun.rd.state_path.read_text())["stages"]["small/unlearn"]["status"] == "done"


# -- 4, 5. the lock file on a full disk; the user's own empty --out folder --------------------------------------------


def test_a_full_disk_as_the_lock_is_written_leaves_no_lock_behind(small_here: Path, monkeypatch: pytest.MonkeyPatch,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with monkeypatch.context() as m:
        m.setattr(rundir_mod, "_write_pid", full)
        code, _, err = run_cli(capsys, "run", "plan.json", "--out", "out")
        assert code == 2 and "error[UL709]" in err and "no space left on device" in err, err
        assert not (small_here / "out").exists()  # made by the run: removed, lock and all
        (small_here / "mine").mkdir()
        code, _, err = run_cli(capsys, "run", "plan.json", "--out", "mine")
        assert code == 2 and "error[UL709]" in err
        assert (small_here / "mine").is_dir() and not any((small_here / "mine").iterdir())  # no empty run.lock left in it
    rd = RunDir(small_here / "mine")
    rd.create_exclusive()  # the retry, space freed: no UL707
    rd.release()


def test_a_start_that_fails_leaves_the_users_own_out_folder(small_here: Path, monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    def full(path: Path, text: str, **kw: Any) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(engine, "atomic_write_text", full)
    (small_here / "mine").mkdir()
    code, _, err = run_cli(capsys, "run", "plan.json", "--out", "mine")
    assert code == 2 and "error[UL709]" in err
    assert (small_here / "mine").is_dir() and list((small_here / "mine").iterdir()) == []  # the user's folder, as it was
    code, _, err = run_cli(capsys, "run", "plan.json", "--out", "made")
    assert code == 2 and not (small_here / "made").exists()  # the one the run made is removed


# -- 8. a kill between plan.json and run.json -------------------------------------------------------------------------


KILLED_START = """
import sys, time
from pathlib import Path
from unlearnspec.plan import Plan
from unlearnspec.runtime import engine
from unlearnspec.runtime.rundir import RunDir
RunDir.save_state = lambda self, state: (print("plan written", flush=True), time.sleep(600))
engine._start(Plan.load(Path("plan.json")), Path.cwd(), engine.RunOptions(out=Path(sys.argv[1])))
"""


def test_a_start_killed_between_plan_and_run_json_is_taken_over_by_the_next_start(
        small_here: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    proc = subprocess.Popen([sys.executable, "-c", KILLED_START, "cut"], cwd=small_here, stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.stdout is not None and proc.stdout.readline().strip() == "plan written"
    code, _, err = run_cli(capsys, "run", "plan.json", "--out", "cut")  # while it lives: its folder
    assert code == 2 and "error[UL707]" in err
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert sorted(p.name for p in (small_here / "cut").iterdir()) == ["plan.json", "run.lock"]
    code, _, err = run_cli(capsys, "run", "--resume", "cut")
    assert code == 2 and "error[UL704]" in err and "stopped before it began" in err
    assert "unlearnspec run PLAN --out cut" in err

    def interrupted(*_: object, **__: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(engine, "execute", interrupted)
    assert main(["run", "plan.json", "--out", "cut", "--no-ledger"]) == 130  # started: taken over, not UL707
    state = json.loads((small_here / "cut" / "run.json").read_text())
    assert state["plan_hash"] == Plan.load(small_here / "plan.json").plan_hash and state["resumed"] == 0
    assert (small_here / "cut" / "run.lock").read_text().strip() == str(os.getpid())


def test_a_plan_json_without_our_lock_is_never_taken_over(small_here: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (small_here / "mine").mkdir()
    shutil.copy(small_here / "plan.json", small_here / "mine" / "plan.json")
    before = (small_here / "mine" / "plan.json").read_bytes()
    code, _, err = run_cli(capsys, "run", "plan.json", "--out", "mine")
    assert code == 2 and "error[UL707]" in err
    assert [p.name for p in (small_here / "mine").iterdir()] == ["plan.json"]
    assert (small_here / "mine" / "plan.json").read_bytes() == before


def test_an_empty_lock_is_a_start_in_progress_and_is_not_taken_over(tmp_path: Path) -> None:
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "run.lock").write_bytes(b"")  # created, not yet locked and written by its run
    with pytest.raises(RunError) as info:
        RunDir(tmp_path / "r").create_exclusive()
    assert info.value.code == "UL707"
    (tmp_path / "r" / "run.lock").write_text("123456\n")  # written, and no process holds it: a start cut short
    rd = RunDir(tmp_path / "r")
    rd.create_exclusive()
    rd.release()


# -- 9, 11. the lock before the state; a finished run is only read ------------------------------------------------------


def test_a_resume_reads_the_state_only_once_it_holds_the_lock(small_here: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rd = started(small_here)
    real_hold = RunDir.hold

    def hold(self: RunDir) -> None:  # the run that held the lock until now wrote its last state as we waited
        real_hold(self)
        state = json.loads(self.state_path.read_text())
        state["resumed"] = 7
        self.state_path.write_text(json.dumps(state), encoding="utf-8")

    monkeypatch.setattr(RunDir, "hold", hold)
    _, held, state, done = engine._reopen(rd.root, engine.RunOptions(resume=rd.root, inputs_verified=True))
    try:
        assert done is None and state.resumed == 7  # what that run left, not what was read before the lock
    finally:
        held.release()


@pytest.fixture
def read_only_lock(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Opening run.lock for writing fails as on a read-only file system (tests may run as root, who may write)."""
    tried: list[str] = []

    def open_(path: Any, *args: Any, **kw: Any) -> Any:
        if Path(path).name == "run.lock":
            tried.append(str(path))
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        return open(path, *args, **kw)

    monkeypatch.setattr(rundir_mod, "open", open_, raising=False)
    yield tried


def test_a_finished_run_on_a_read_only_disk_resumes_to_its_verdict(
        small_here: Path, read_only_lock: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    report = make_report()
    plan = Plan.load(small_here / "plan.json")
    report = report.model_copy(update={"audit": report.audit.model_copy(update={"plan_hash": plan.plan_hash})})
    rd = started(small_here, finished_at=now())
    (rd.root / "report.json").write_text(report.model_dump_json(), encoding="utf-8")
    before = {p.name: p.read_bytes() for p in rd.root.iterdir()}
    code, out, err = run_cli(capsys, "run", "--resume", "r")
    assert code == report.exit_code and "had already finished" in err and "verdict:" in out, err
    assert read_only_lock == [] and {p.name: p.read_bytes() for p in rd.root.iterdir()} == before
    unfinished = started(small_here, "u")
    code, _, err = run_cli(capsys, "run", "--resume", "u")
    assert code == 2 and "error[UL709]" in err and read_only_lock == [str(unfinished.lock_path)]
    assert "--out" not in err and "copy the run folder" in err  # `--resume` takes no --out (UL714)


# -- 7. the environment --------------------------------------------------------------------------------------------------


@pytest.fixture
def keep_threads() -> Iterator[None]:
    import torch

    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.mark.usefixtures("keep_threads")
def test_the_environment_is_recorded_at_the_start_and_a_resume_elsewhere_is_refused(
        small_here: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(execute, "_original_weights", lambda op, hashed: "a" * 64 if hashed else None)
    monkeypatch.setenv("UNLEARNSPEC_THREADS", "2")
    reached: list[str] = []

    class Stop(Exception):
        pass

    def stages(*_: object, **__: object) -> None:
        reached.append("stages")
        raise Stop

    monkeypatch.setattr(execute, "ObjectiveRun", stages)
    plan = Plan.load(small_here / "plan.json")
    with pytest.raises(Stop):
        engine.run(plan, small_here, engine.RunOptions(out=small_here / "env", no_ledger=True, inputs_verified=True))
    env = json.loads((small_here / "env" / "run.json").read_text())["environment"]
    assert env["threads"] == 2 and env["processes"] == 1 and env["original_weights"] == {"small": "a" * 64}
    assert env["libraries"]["torch"] and env["libraries"]["unlearnspec"]
    before = (small_here / "env" / "run.json").read_bytes()
    assert reached == ["stages"]

    monkeypatch.setenv("UNLEARNSPEC_THREADS", "1")
    code, _, err = run_cli(capsys, "run", "--resume", "env")
    assert code == 2 and "error[UL714]" in err and "threads 2 → 1" in err and "UNLEARNSPEC_THREADS" in err, err
    assert (small_here / "env" / "run.json").read_bytes() == before and reached == ["stages"]  # nothing ran or changed
    monkeypatch.setenv("UNLEARNSPEC_THREADS", "2")
    monkeypatch.setattr(execute, "_original_weights", lambda op, hashed: "b" * 64 if hashed else None)
    code, _, err = run_cli(capsys, "run", "--resume", "env")
    assert code == 2 and "the original weights of `small` aaaaaaaaaaaa… → bbbbbbbbbbbb…" in err
    monkeypatch.setattr(execute, "_original_weights", lambda op, hashed: "a" * 64 if hashed else None)
    with pytest.raises(Stop):  # the same environment: the stages go on
        engine.run(None, None, engine.RunOptions(resume=small_here / "env", inputs_verified=True))
    assert reached == ["stages", "stages"]


def test_environment_changes_name_what_computes_and_nothing_else() -> None:
    then = {"libraries": {"torch": "2.5.1", "jinja2": "3.1", "peft": "0.13"}, "threads": 2, "processes": 1,
            "device": "cpu", "original_weights": {"a": "1" * 64, "b": None}}
    same = json.loads(json.dumps(then))
    assert execute.environment_changes(then, same) == []
    here = {**same, "libraries": {"torch": "2.6.0", "jinja2": "3.2"}, "device": "cuda (H200, 1 visible)",
            "original_weights": {"a": "2" * 64, "b": "3" * 64}}
    assert execute.environment_changes(then, here) == [
        "peft 0.13 → absent", "torch 2.5.1 → 2.6.0", "device cpu → cuda (H200, 1 visible)",
        f"the original weights of `a` {'1' * 12}… → {'2' * 12}…"]


def test_a_local_models_original_weights_are_its_pinned_hash(small_here: Path) -> None:
    op = Plan.load(small_here / "plan.json").objectives[0]
    local = op.model_copy(update={"model": op.model.model_copy(update={"kind": "local", "sha256": "c" * 64})})
    hub = op.model_copy(update={"model": op.model.model_copy(update={"kind": "hub", "sha256": None})})
    assert execute._original_weights(local, True) == "c" * 64 and execute._original_weights(hub, True) is None


# -- 12. file modes ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mask", [0o022, 0o027])
def test_reports_get_the_mode_of_the_other_run_files(tmp_path: Path, mask: int) -> None:
    old = os.umask(mask)
    try:
        uio.atomic_write_text(tmp_path / "run.json", "{}\n")
        paths = write_reports(make_report(), tmp_path)
    finally:
        os.umask(old)
    want = 0o666 & ~mask
    assert {p.name: p.stat().st_mode & 0o777 for p in [*paths.values(), tmp_path / "run.json"]} == {
        "report.json": want, "report.md": want, "report.html": want, "run.json": want}
    os.chmod(paths["md"], 0o600)  # a file the user restricted keeps its mode when written again
    write_reports(make_report(), tmp_path)
    assert paths["md"].stat().st_mode & 0o777 == 0o600


def test_umask_is_read_without_changing_it() -> None:
    old = os.umask(0o027)
    try:
        assert uio.umask() == 0o027 and uio.new_file_mode() == 0o640
        assert os.umask(0o027) == 0o027  # unchanged by the read
    finally:
        os.umask(old)


def test_nothing_waits_for_the_lock_of_a_folder_that_is_not_a_run(tmp_path: Path) -> None:
    """A resume of a folder that is not a run is refused before anything is written into it (no run.lock)."""
    (tmp_path / "data").mkdir()
    with pytest.raises(RunError) as info:
        engine._reopen(tmp_path / "data", engine.RunOptions(resume=tmp_path / "data"))
    assert info.value.code == "UL704" and list((tmp_path / "data").iterdir()) == []


def test_a_filters_rules_are_named_by_their_hash_among_what_the_results_are_about(
        small_here: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A system filter leaves the weights as they were: the served results are about the model behind its
    guard.json, so the report names that file by its sha256 (role `filter`), as it names an unlearned model."""
    orun, _, _ = _objective(small_here, tmp_path, monkeypatch)
    assert [h for h in orun._model_hashes(None) if h.role == "filter"] == []
    guard = OutputGuard(n=2, ngrams=frozenset({"jane doe"}), phrases=("jane doe",), refusal_text="no")
    path = guard.save(orun.dir / "unlearn")
    (named,) = [h for h in orun._model_hashes(None) if h.role == "filter"]
    assert named.sha256 == sha256_path(path) and named.path == path.relative_to(orun.rd.root).as_posix()
