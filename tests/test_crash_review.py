"""Crash safety review of a run folder: what a kill at each write leaves, links planted where the run writes, a full
disk in the middle of a folder's write, checkpoints damaged in place, evidence damaged between a crash and its
resume, and what is fsynced on the way.

Each test names the defect it pins; the fast ones need no training. The end-to-end one (a run killed just before
each of its renames, then resumed, against an uninterrupted run) is slow.
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
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import save_file

from unlearnspec import io as uio
from unlearnspec.cli import main
from unlearnspec.plan import Plan
from unlearnspec.runtime import engine
from unlearnspec.runtime import rundir as rundir_mod
from unlearnspec.runtime.methods import checkpoints as ck
from unlearnspec.runtime.pipeline import ObjectiveRun
from unlearnspec.runtime.rundir import RunDir, RunError, RunState, now

ROOT = Path(__file__).resolve().parents[1]


def started(small_here: Path, out: str = "r") -> RunDir:
    """A run folder as `run` starts one (plan.json, run.json), released as a killed run leaves it."""
    plan = Plan.load(small_here / "plan.json")
    rd, _ = engine._start(plan, small_here, engine.RunOptions(out=small_here / out, no_ledger=True))
    rd.release()
    return rd


def victim(folder: Path) -> Path:
    """A file the run must never write: what a planted link points at (a source model's config, say)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "config.json"
    path.write_text("precious\n", encoding="utf-8")
    return path


# -- a kill between the temporary run.json and its rename ---------------------------------------------------------


def test_a_start_killed_before_run_json_got_its_name_is_taken_over(small_here: Path) -> None:
    """A kill after run.json's temporary file was written, before its rename, left a folder no start could take
    over (UL707: the temporary file was not one of a start's files) while `--resume` said to start it again."""
    rd = started(small_here)
    rd.state_path.rename(rd.root / ".run.json.k1ll3d.tmp")  # what the kill leaves: the state never got its name
    again = RunDir(rd.root)
    again.create_exclusive()  # taken over: no stage ran
    try:
        assert sorted(p.name for p in rd.root.iterdir()) == ["run.lock"]
    finally:
        again.release()


# -- links planted where the run writes ---------------------------------------------------------------------------


def test_a_link_planted_at_the_lock_is_never_opened_let_alone_truncated(tmp_path: Path) -> None:
    """A start cut short is taken over by truncating its lock and writing the new pid: through a planted link that
    truncated the file it named (a model's config)."""
    precious = victim(tmp_path / "model")
    root = tmp_path / "run"
    root.mkdir()
    (root / "plan.json").write_text("{}", encoding="utf-8")
    (root / rundir_mod.LOCK_NAME).symlink_to(precious)
    with pytest.raises(RunError) as err:
        RunDir(root).create_exclusive()
    assert err.value.code == rundir_mod.E_NOT_A_RUN_DIR and "symbolic link" in err.value.message
    with pytest.raises(RunError):
        RunDir(root).hold()
    assert precious.read_text(encoding="utf-8") == "precious\n"


def test_a_run_file_replaces_a_planted_link_and_never_writes_through_it(small_here: Path, tmp_path: Path) -> None:
    """`atomic_write_bytes` followed a link at the name: a link planted at run.json (or checks.json) between a kill
    and the resume made the run write into the file it named. A run's own file now replaces the link."""
    precious = victim(tmp_path / "model")
    rd = started(small_here)
    state = rd.load_state()
    rd.state_path.unlink()
    rd.state_path.symlink_to(precious)
    rd.save_state(state)
    assert precious.read_text(encoding="utf-8") == "precious\n"
    assert not rd.state_path.is_symlink() and rd.load_state().plan_hash == state.plan_hash
    # a FIFO planted there is replaced too (written into, it would block or feed a reader)
    fifo = rd.root / "objectives" / "fifo.json"
    fifo.parent.mkdir()
    os.mkfifo(fifo)
    uio.atomic_write_text(fifo, "{}\n", within=rd.root)
    assert fifo.is_file() and fifo.read_text(encoding="utf-8") == "{}\n"


def test_a_write_through_a_planted_folder_link_out_of_the_run_is_refused(tmp_path: Path) -> None:
    """A link planted for a folder on the way (`objectives/small -> the source model`) would put the run's files in
    the model folder: refused (ELOOP), nothing written there; a folder missing on the way is made."""
    model = tmp_path / "model"
    precious = victim(model)
    root = tmp_path / "run"
    (root / "objectives").mkdir(parents=True)
    (root / "objectives" / "small").symlink_to(model)
    with pytest.raises(OSError) as err:
        uio.atomic_write_text(root / "objectives" / "small" / "checks.json", "{}", within=root)
    assert err.value.errno == errno.ELOOP
    with pytest.raises(OSError):
        uio.replace_folder(root / "objectives" / "small" / "unlearn" / "model",
                           lambda tmp: (tmp.mkdir(), (tmp / "w").write_text("x")), within=root)
    assert sorted(p.name for p in model.iterdir()) == ["config.json"] and precious.read_text() == "precious\n"
    with pytest.raises(RunError):
        RunDir(root).objective_dir("small")
    # a path the user typed still writes through a link (`-o link`, `fmt link.unlearn`), as a shell would
    link = tmp_path / "link.json"
    link.symlink_to(precious)
    uio.atomic_write_text(link, "new\n")
    assert link.is_symlink() and precious.read_text() == "new\n"


def test_run_log_is_never_appended_through_a_planted_link(tmp_path: Path) -> None:
    """The log handler opened run.log following links: every log line went into the file a planted link named."""
    precious = victim(tmp_path / "model")
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.log").symlink_to(precious)
    with pytest.raises(OSError) as err:
        engine._setup_logging(run, quiet=True)
    assert err.value.errno == errno.ELOOP
    logging.getLogger("unlearnspec.run").info("a line of the run")
    assert precious.read_text(encoding="utf-8") == "precious\n"
    (run / "run.log").unlink()
    engine._setup_logging(run, quiet=True)  # the run's own log: appended to
    logging.getLogger("unlearnspec.run").info("a line of the run")
    assert "a line of the run" in (run / "run.log").read_text(encoding="utf-8")
    for h in list(logging.getLogger("unlearnspec").handlers):
        if getattr(h, "_unlearnspec", False):
            logging.getLogger("unlearnspec").removeHandler(h)
            h.close()


def test_a_resume_refuses_a_folder_with_a_planted_link(small_here: Path, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """A link planted in the run folder since the kill (`objectives/small` into the source model) is refused with a
    diagnostic naming it: the run never writes through it."""
    model = tmp_path / "model"
    victim(model)
    rd = started(small_here)
    (rd.root / "objectives").mkdir()
    (rd.root / "objectives" / "small").symlink_to(model)
    code = main(["run", "--resume", str(rd.root), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "error[UL704]" in err and "objectives/small" in err and "symbolic link" in err
    assert "Traceback" not in err and sorted(p.name for p in model.iterdir()) == ["config.json"]


# -- what killed writes leave --------------------------------------------------------------------------------------


def test_a_resume_removes_what_the_killed_runs_writes_left(small_here: Path) -> None:
    """Each kill in the middle of a write left its temporary file (`.run.json.XXXX.tmp`, a half-saved
    `model.partial/`) in the run folder for good; the resume removes them under the lock."""
    rd = started(small_here)
    obj = rd.root / "objectives" / "small"
    (obj / "unlearn" / "model.partial").mkdir(parents=True)
    (obj / "unlearn" / "model.partial" / "model.safetensors").write_bytes(b"half")
    left = [rd.root / ".run.json.a1b2c3.tmp", obj / ".checks.json.d4e5f6.tmp"]
    for p in left:
        p.write_text("half", encoding="utf-8")
    named = rd.root / "objectives" / "v1.old"  # an objective's own folder: its name is the objective's, kept
    named.mkdir()
    (named / "checks.json").write_text("{}", encoding="utf-8")
    plan, again, state, done = engine._reopen(rd.root, engine.RunOptions(resume=rd.root, inputs_verified=True))
    try:
        assert done is None and state.plan_hash == plan.plan_hash
        assert not any(p.exists() for p in left) and not (obj / "unlearn" / "model.partial").exists()
        assert (obj / "unlearn").is_dir() and rd.state_path.is_file() and rd.plan_path.is_file()
        assert (named / "checks.json").is_file()
    finally:
        again.release()


def test_a_folder_write_cut_short_by_a_full_disk_leaves_nothing_and_keeps_the_old_folder(tmp_path: Path) -> None:
    """`replace_folder` left `DEST.partial` (up to a model's size) behind when the write failed: on a full disk the
    space the user must free was the run's own leftover. The old folder stays until the new one is whole."""
    dest = tmp_path / "model"
    dest.mkdir()
    (dest / "model.safetensors").write_text("old")

    def write(tmp: Path) -> None:
        tmp.mkdir()
        (tmp / "model.safetensors").write_text("half of the new")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with pytest.raises(OSError):
        uio.replace_folder(dest, write)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]
    assert (dest / "model.safetensors").read_text() == "old"


def test_a_folder_replaces_links_at_its_names_and_never_follows_them(tmp_path: Path) -> None:
    """A link at `DEST.partial` (or at `DEST`) into another folder stopped the save (rmtree refuses a link) and was
    kept; it is removed, the folder it names untouched."""
    other = tmp_path / "other"
    precious = victim(other)
    dest = tmp_path / "run" / "model"
    dest.parent.mkdir()
    dest.with_name("model.partial").symlink_to(other)
    dest.symlink_to(other)
    uio.replace_folder(dest, lambda tmp: (tmp.mkdir(), (tmp / "w.txt").write_text("new")), within=tmp_path / "run")
    assert not dest.is_symlink() and (dest / "w.txt").read_text() == "new"
    assert sorted(p.name for p in dest.parent.iterdir()) == ["model"]
    assert sorted(p.name for p in other.iterdir()) == ["config.json"] and precious.read_text() == "precious\n"


def test_a_folder_made_for_a_file_is_fsynced_into_its_parent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A run file written into a folder made on the way (`objectives/small/`) was fsynced with its folder, but the
    new folders' names in their parents were not: after a power cut the path could be gone while run.json, which
    is fsynced, said the stage was done."""
    synced: list[str] = []
    real = uio.fsync_dir
    monkeypatch.setattr(uio, "fsync_dir", lambda folder: (synced.append(str(folder)), real(folder)))
    path = tmp_path / "run" / "objectives" / "small" / "checks.json"
    (tmp_path / "run").mkdir()
    uio.atomic_write_text(path, "{}", within=tmp_path / "run")
    assert {str(tmp_path / "run"), str(tmp_path / "run" / "objectives"), str(path.parent)} <= set(synced)


# -- damage the checks of a size or a header cannot see ---------------------------------------------------------


def fake_checkpoint(root: Path, step: int) -> Path:
    """A checkpoint folder with every file :func:`ck.problem` requires, published through the staging area."""
    staged = root / ck.STAGING / f"checkpoint-{step}"
    staged.mkdir(parents=True)
    (staged / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    save_file({"w": torch.arange(4096, dtype=torch.float32)}, str(staged / "model.safetensors"))
    torch.save({"state": {0: {"exp_avg": torch.ones(512)}}}, staged / "optimizer.pt")
    torch.save({"last_epoch": step}, staged / ck.SCHEDULER)
    torch.save({"python": 1}, staged / "rng_state.pth")
    return ck.publish(staged, root)


def flip(path: Path, at: int) -> None:
    data = bytearray(path.read_bytes())
    data[at] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("name", ["model.safetensors", "optimizer.pt"])
def test_a_checkpoint_damaged_in_place_is_found_and_the_older_one_resumed(tmp_path: Path, name: str) -> None:
    """A byte flipped inside a checkpoint's weights or optimizer state kept every size, header and zip directory:
    the damaged checkpoint was resumed from. Its files' sha256 are written before it gets its name."""
    root = tmp_path / "checkpoints"
    older, newer = fake_checkpoint(root, 10), fake_checkpoint(root, 20)
    assert ck.problem(newer) is None and json.loads((newer / ck.CHECKSUMS).read_text()).keys() == {
        "trainer_state.json", "model.safetensors", "optimizer.pt", ck.SCHEDULER, "rng_state.pth"}
    f = newer / name
    flip(f, f.stat().st_size // 2)
    assert ck.problem(newer) == f"{name} is not what was saved (its sha256 differs: damaged on the disk)"
    assert ck.last_usable_checkpoint(root) == str(older) and not newer.exists()


def test_a_planted_staging_link_is_removed_not_written_through(tmp_path: Path) -> None:
    """`clear_staging` ignored the error rmtree gives for a link, so the next checkpoint was saved through it."""
    other = tmp_path / "model"
    precious = victim(other)
    root = tmp_path / "checkpoints"
    root.mkdir()
    (root / ck.STAGING).symlink_to(other)
    ck.clear_staging(root)
    assert not (root / ck.STAGING).exists() and not (root / ck.STAGING).is_symlink()
    assert precious.read_text() == "precious\n"


# -- evidence damaged between a crash and the resume ------------------------------------------------------------


def finished_evaluation(tmp_path: Path, written: dict[str, str]) -> ObjectiveRun:
    """An objective whose evaluate and attack stages are done, its checks.json and generations.jsonl written."""
    run = ObjectiveRun.__new__(ObjectiveRun)
    run.key, run.dir = "small", tmp_path
    run.state = RunState(plan_hash="x", spec_dir=str(tmp_path), started_at=now())
    for stage in ("evaluate", "attack"):
        run.state.stage(f"small/{stage}").status = "done"
    run.state.stage("small/attack").detail["written"] = written
    return run


def test_damaged_evaluation_results_are_evaluated_again_not_trusted_or_a_traceback(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A checks.json cut short made the resume end in a JSONDecodeError traceback; one changed (or a changed
    generations.jsonl, which the report names by its hash) was read back as the evaluation's results."""
    from unlearnspec.records import sha256_path

    (tmp_path / "checks.json").write_text("{}\n")
    (tmp_path / "generations.jsonl").write_text('{"model": "original"}\n')
    written = {n: sha256_path(tmp_path / n) for n in ("checks.json", "generations.jsonl")}
    run = finished_evaluation(tmp_path, written)
    assert run._finished_results(tmp_path / "checks.json") == {}  # as written: read back
    (tmp_path / "generations.jsonl").write_text('{"model": "edited"}\n')
    with caplog.at_level(logging.WARNING, logger="unlearnspec.run"):
        assert run._finished_results(tmp_path / "checks.json") is None
    assert "generations.jsonl is not what the stage wrote" in caplog.text
    run = finished_evaluation(tmp_path, {})  # a run.json from before the hashes were kept
    (tmp_path / "checks.json").write_text('{"not_generated": {"verd')
    assert run._finished_results(tmp_path / "checks.json") is None


# -- end to end: a kill just before each rename of a run, then its resume ---------------------------------------

KILL_AT_RENAME = """
import os, signal, sys
N, real = int(sys.argv[1]), os.replace
count = [0]
def replace(src, dst, *a, **k):
    count[0] += 1
    if count[0] == N:
        os.kill(os.getpid(), signal.SIGKILL)
    return real(src, dst, *a, **k)
os.replace = replace
from unlearnspec.cli import main
raise SystemExit(main(sys.argv[2:]))
"""


def report_numbers(run: Path) -> dict[str, Any]:
    report = json.loads((run / "report.json").read_text())
    for key in ("started_at", "finished_at", "wall_seconds"):
        report["audit"].pop(key)
    return report  # type: ignore[no-any-return]


@pytest.mark.slow
def test_a_run_killed_before_each_kind_of_rename_resumes_to_the_uninterrupted_report(tmp_path: Path) -> None:
    """Killed just before the rename of run.json at the start, of a checkpoint, of the unlearned model, of
    checks.json, of report.md and of the ledger's head, the run (resumed, or started again where no stage had
    begun) gives the uninterrupted run's report, hashes and all, records its request in the ledger once, and
    leaves no temporary file in the run folder."""
    from fixtures.runs import cli, make_tiny_local

    small = make_tiny_local(tmp_path)
    env = {"PYTHONPATH": str(ROOT)}
    whole = cli("run", "plan.json", "--out", "whole", "--ledger", "L-whole", "--quiet", cwd=small, env=env)
    assert whole.returncode in (0, 1, 3), whole.stderr
    reference = report_numbers(small / "whole")
    # the renames of a run into a new ledger folder: 1 plan.json, 2 run.json at the start, 3-8 run.json, 9-11 the
    # checkpoints, 12 the model, 17 generations.jsonl, 18 checks.json, 22-24 the reports, 25 run.json finished, 26-28
    # the ledger's head, its line, its head, 29 the run's ledger receipt
    renames = [2, 9, 12, 18, 23, 28]
    for n in renames:
        out, ledger = f"k{n}", f"L{n}"
        killed = subprocess.run([sys.executable, "-c", KILL_AT_RENAME, str(n), "run", "plan.json", "--out", out,
                                 "--ledger", ledger, "--quiet"], cwd=small, capture_output=True, text=True,
                                env={**os.environ, **env})
        assert killed.returncode == -signal.SIGKILL, (n, killed.stderr[-2000:])
        again = (("run", "--resume", out) if (small / out / "run.json").exists() else
                 ("run", "plan.json", "--out", out, "--ledger", ledger))
        done = cli(*again, "--quiet", cwd=small, env=env)
        assert done.returncode in (0, 1, 3) and "Traceback" not in done.stderr, (n, done.stderr[-2000:])
        assert report_numbers(small / out) == reference, n
        left = [p for p in (small / out).rglob("*") if uio.leftover(p.name)]
        assert not left, (n, left)
        assert len((small / ledger / "model.jsonl").read_text().splitlines()) == 1, n
        shutil.rmtree(small / out)


def test_a_run_folder_moved_into_a_folder_the_plan_pins_is_not_resumed_there(small_here: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """A start refused a run folder inside a model or data folder the plan pins (UL715); a resume did not look, so
    a run folder moved into the source model's folder wrote its checkpoints and model there."""
    rd = started(small_here)
    pinned = rd.root.parent  # as if the folder holding the run were the source model's
    monkeypatch.setattr(Plan, "read_only_folders", lambda self, spec_dir: [pinned])
    with pytest.raises(RunError) as err:
        engine._reopen(rd.root, engine.RunOptions(resume=rd.root, inputs_verified=True))
    assert err.value.code == "UL715" and "move the run folder" in err.value.help[0]
    RunDir(rd.root).hold()  # the refusal released the lock


def test_a_resume_of_a_start_killed_before_plan_json_says_to_start_it_again(small_here: Path,
                                                                          capsys: pytest.CaptureFixture[str]) -> None:
    """Killed before plan.json got its name, a start leaves its lock and a temporary file: `--resume` said only
    "not a run directory", not that the same start takes the folder over."""
    rd = started(small_here)
    rd.state_path.unlink()
    rd.plan_path.rename(rd.root / ".plan.json.k1ll3d.tmp")
    code = main(["run", "--resume", str(rd.root), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "error[UL704]" in err and f"--out {rd.root}" in err and "taken over" in err
    again = RunDir(rd.root)
    again.create_exclusive()  # as it says: the same start takes it over
    again.release()


def test_a_ledger_append_clears_the_temporary_files_a_killed_append_left(tmp_path: Path) -> None:
    """An append killed before its rename leaves `.NAME.XXXX.tmp` beside the ledger (the ledger itself stays whole);
    the next append, under the lock, removes it and nothing else."""
    from unlearnspec.audit.hashchain import append, ledger_path, verify_file

    folder = tmp_path / "ledger"
    append(folder, {"model": "m", "request_id": "a", "plan_hash": "p" * 64, "overall": "pass"})
    left = [folder / ".m.jsonl.k1ll.tmp", folder / ".m.head.json.k1ll.tmp"]
    for p in left:
        p.write_text("half", encoding="utf-8")
    keep = folder / "notes.txt"
    keep.write_text("the user's", encoding="utf-8")
    append(folder, {"model": "m", "request_id": "b", "plan_hash": "p" * 64, "overall": "pass"})
    assert not any(p.exists() for p in left) and keep.read_text(encoding="utf-8") == "the user's"
    checked = verify_file(ledger_path(folder, "m"))
    assert checked.ok and [e.request_id for e in checked.entries] == ["a", "b"]
