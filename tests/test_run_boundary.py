"""`unlearnspec run` at its boundary: every way a run can be refused is a diagnostic and exit 2, never a
traceback, and nothing is written. Fast: no test here trains or loads a model (issue 12: 3, 4, 6, 8, 10, 15).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from fixtures.runs import SMALL_SPEC as SPEC

from unlearnspec.cli import main
from unlearnspec.plan import Plan, PlanLoadError
from unlearnspec.runtime import engine
from unlearnspec.runtime.rundir import RunDir, RunError, RunState, default_run_dir, safe_name

ROOT = Path(__file__).resolve().parents[1]


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def reseal(path: Path, edit: object) -> None:
    """Edit a plan and seal it again with a valid hash, as a forger would."""
    plan = Plan.load(path)
    data = plan.model_dump(mode="json")
    edit(data)  # type: ignore[operator]
    path.write_text(Plan.model_validate(data).sealed().canonical_json(), encoding="utf-8")


def no_traceback(err: str) -> None:
    assert "Traceback" not in err


# -- Plan.load: one loader, one typed error ------------------------------------------------------------


@pytest.mark.parametrize(("content", "message"), [
    ("{not json", "is not valid JSON"),
    ('{"hello": 1}', "is not an unlearnspec plan"),
    ('{"format_version": "9.0", "objectives": []}', "newer than this unlearnspec reads"),
    ('{"format_version": "abc", "objectives": []}', "is not a version number"),
    ('{"format_version": "1.0", "objectives": [{}]}', "is not a valid plan"),
    ("[" * 100_000 + "]" * 100_000, "nested deeper than"),
])
def test_plan_load_raises_one_typed_error(tmp_path: Path, content: str, message: str) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(content, encoding="utf-8")
    with pytest.raises(PlanLoadError) as info:
        Plan.load(bad)
    assert info.value.code == "UL703" and message in info.value.message


def test_run_and_show_read_plans_through_the_same_loader(small_here: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (small_here / "bad.json").write_text('{"format_version": "7.1", "objectives": []}', encoding="utf-8")
    code, _, err = run_cli(capsys, "run", "bad.json", "--out", "r")
    assert code == 2 and "error[UL703]: plan format `7.1` is newer than" in err
    code, _, show_err = run_cli(capsys, "show", "bad.json")
    assert code == 2 and "plan format `7.1` is newer than" in show_err  # an unusable plan: exit 2
    assert not (small_here / "r").exists()


# -- exclusive and sanitised run folders -------------------------------------------------------------------


CLAIM = """
import sys, time
from pathlib import Path
from unlearnspec.runtime.rundir import RunDir, RunError
go = Path(sys.argv[2])
while not go.exists():
    time.sleep(0.001)
try:
    rd = RunDir(Path(sys.argv[1]))  # held, as a run holds it: a lock nobody holds is a start cut short
    rd.create_exclusive()
    print("won", flush=True)
    time.sleep(2)
except RunError as err:
    print(err.code, flush=True)
"""


@pytest.mark.parametrize("exists", [False, True], ids=["new-folder", "empty-folder"])
def test_of_concurrent_runs_into_one_folder_exactly_one_proceeds(tmp_path: Path, exists: bool) -> None:
    target = tmp_path / "runs" / "same"
    if exists:
        target.mkdir(parents=True)
    go = tmp_path / "go"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen([sys.executable, "-c", CLAIM, str(target), str(go)], stdout=subprocess.PIPE,
                              text=True, env=env) for _ in range(4)]
    go.touch()
    results = sorted(p.communicate(timeout=60)[0].strip() for p in procs)
    assert results == ["UL707", "UL707", "UL707", "won"]


def test_a_second_run_into_a_busy_folder_gets_ul707(small_here: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Two `run --out same/` (the second sees the folder the first claimed): exit 2, the folder untouched."""
    first = RunDir(small_here / "same")
    first.create_exclusive()
    try:
        code, _, err = run_cli(capsys, "run", "plan.json", "--out", "same")
    finally:
        first.release()
    assert code == 2 and "error[UL707]" in err
    assert [p.name for p in (small_here / "same").iterdir()] == ["run.lock"]


def test_a_live_run_cannot_be_resumed_twice(tmp_path: Path) -> None:
    rd = RunDir(tmp_path / "r")
    rd.create_exclusive()
    try:
        with pytest.raises(RunError) as info:
            RunDir(tmp_path / "r").hold()
        assert info.value.code == "UL707" and "in use" in info.value.message
    finally:
        rd.release()
    other = RunDir(tmp_path / "r")
    other.hold()  # released: a killed run's lock goes with its process
    other.release()


@pytest.mark.parametrize("name", ["../../x", "/etc/passwd", "..", ".hidden", "a/b\\c", "x" * 300, "é\n\x00"])
def test_objective_names_become_one_folder_inside_the_run(tmp_path: Path, name: str) -> None:
    component = safe_name(name)
    assert "/" not in component and "\\" not in component and component not in ("", ".", "..")
    assert not component.startswith(".") and len(component) <= 80
    folder = RunDir(tmp_path / "run").objective_dir(name)
    assert folder.resolve().parent == (tmp_path / "run" / "objectives").resolve()


def test_names_that_sanitise_alike_get_two_folders() -> None:
    assert safe_name("a/b") != safe_name("a_b") and safe_name("a_b") == "a_b"
    assert safe_name("erase-jane-doe") == "erase-jane-doe"


def test_a_relative_run_folder_is_held_as_an_absolute_one(small_here: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What a stage records (the model it made) is below the run folder; a resume from another working folder must
    find it there, never in another folder of the same relative name. The cache root is absolute for the same
    reason (the reference model's path)."""
    from unlearnspec.runtime.builtin_model import cache_root

    rd = RunDir(Path("runs") / "r1")
    assert rd.root == small_here / "runs" / "r1" and rd.state_path.is_absolute()
    monkeypatch.setenv("UNLEARNSPEC_CACHE", "cache-here")
    assert cache_root() == small_here / "cache-here"
    monkeypatch.chdir(small_here.parent)
    assert RunDir(rd.root).root == small_here / "runs" / "r1"


def test_the_default_run_folder_stays_under_runs(small_here: Path) -> None:
    plan = Plan.load(small_here / "plan.json")
    for name in ("../../x", "/abs/olute", "..", "a/../../b"):
        plan.objectives[0].objective.name = name
        out = default_run_dir(plan)
        assert out.parent == Path("runs") and (small_here / out).resolve().is_relative_to((small_here / "runs").resolve())


# -- unusable --out: diagnostic, exit 2 (never 1: that means a claim failed) ------------------------------


@pytest.mark.parametrize("where", ["/proc/unlearnspec-run", "/proc/self/status", "file", "file/sub"])
def test_unusable_out_is_a_diagnostic_and_exit_2(small_here: Path, capsys: pytest.CaptureFixture[str], where: str) -> None:
    (small_here / "file").write_text("not a folder", encoding="utf-8")
    code, out, err = run_cli(capsys, "run", "plan.json", "--out", where)
    assert code == 2, err
    assert "error[UL709]" in err or "error[UL707]" in err
    no_traceback(err)
    assert (small_here / "file").read_text(encoding="utf-8") == "not a folder"


@pytest.mark.parametrize(("code_", "words"), [(errno.EROFS, "read-only file system"),
                                              (errno.ENOSPC, "no space left on device"),
                                              (errno.EACCES, "permission denied")])
def test_read_only_or_full_file_system_at_creation(small_here: Path, capsys: pytest.CaptureFixture[str],
                                                   monkeypatch: pytest.MonkeyPatch, code_: int, words: str) -> None:
    """The OS error a read-only, full or forbidden place gives (injected: tests may run as root)."""
    real_mkdir = os.mkdir

    def failing_mkdir(path: object, *args: object, **kwargs: object) -> None:
        if str(path).endswith("out"):
            raise OSError(code_, os.strerror(code_), str(path))
        real_mkdir(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "mkdir", failing_mkdir)
    code, _, err = run_cli(capsys, "run", "plan.json", "--out", "out")
    assert code == 2 and "error[UL709]" in err and words in err, err
    assert not (small_here / "out").exists()


def test_a_full_disk_while_writing_the_plan_copy(small_here: Path, capsys: pytest.CaptureFixture[str],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from unlearnspec.runtime import engine as eng

    def full(path: Path, text: str) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(eng, "atomic_write_text", full)
    code, _, err = run_cli(capsys, "run", "plan.json", "--out", "out")
    assert code == 2 and "error[UL709]" in err and "no space left on device" in err
    assert not (small_here / "out").exists()  # no half-made folder that would then block a retry (UL707)


def _safetensors_full() -> Exception:
    from safetensors import SafetensorError

    return SafetensorError('Error while serializing: IoError(Os { code: 28, kind: StorageFull, message: '
                           '"No space left on device" })')


@pytest.mark.parametrize("error", [
    _safetensors_full,  # save_pretrained of the weights: neither a RuntimeError nor a ValueError
    lambda: RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 4210112 vs 4210000"),  # optimizer.pt
], ids=["safetensors", "torch-zip-writer"])
def test_a_full_disk_inside_a_stage_is_ul709_and_resumable(small_here: Path, capsys: pytest.CaptureFixture[str],
                                                           monkeypatch: pytest.MonkeyPatch, error: object) -> None:
    """The libraries wrap ENOSPC in their own errors; each reads as a full disk: exit 2, how to resume, no traceback."""
    from unlearnspec.runtime import engine as eng

    def stage_fails(*_: object, **__: object) -> None:
        raise error()  # type: ignore[operator]

    monkeypatch.setattr(eng, "execute", stage_fails)
    code, _, err = run_cli(capsys, "run", "plan.json", "--out", "out")
    assert code == 2 and "error[UL709]" in err and "no space left on device" in err, err
    assert "unlearnspec run --resume" in err
    no_traceback(err)


def test_a_resume_keeps_the_ledger_its_run_was_started_with(small_here: Path, capsys: pytest.CaptureFixture[str],
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """The ledger is chosen when the run starts and kept in run.json; a resume that names another, or a plan, or
    `--out`, would change the run it continues (UL714, exit 2, before anything runs)."""
    import argparse

    from unlearnspec.cli.run import ledger_folder
    from unlearnspec.runtime import engine as eng
    from unlearnspec.runtime.preflight import read_run

    def killed(*_: object, **__: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(eng, "execute", killed)
    assert main(["run", "plan.json", "--out", "out", "--no-ledger"]) != 0  # interrupted: the CLI says so
    state = json.loads((small_here / "out" / "run.json").read_text(encoding="utf-8"))
    assert state["no_ledger"] is True and state["ledger"] is None
    for extra, named in ((["--ledger", "elsewhere"], "`--ledger elsewhere`"), (["--out", "x"], "`--out`"),
                         (["plan.json"], "`PATH`"),
                         # started re-deriving its plan: a resume that trusted it instead would not be the run
                         (["--trust-plan"], "`--trust-plan`")):
        code, _, err = run_cli(capsys, "run", "--resume", "out", *extra)
        assert code == 2 and "error[UL714]" in err and named in err and "`--no-ledger`" in err, err
        no_traceback(err)
    args = argparse.Namespace(no_ledger=False, ledger=None)
    assert ledger_folder(args, small_here / "out", read_run(small_here / "out")[1]) is None  # as started: nothing
    assert main(["run", "plan.json", "--out", "out2", "--ledger", "books"]) != 0
    assert ledger_folder(args, small_here / "out2", read_run(small_here / "out2")[1]) == small_here / "books"
    code, _, err = run_cli(capsys, "run", "--resume", "out2", "--no-ledger")
    assert code == 2 and "error[UL714]" in err and f"--ledger {small_here / 'books'}" in err


def test_a_retrained_reference_cleared_from_the_cache_is_retrained_on_resume(
        small_here: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A finished reference stage names a folder in the cache; cleared since, the resume does the stage again
    (retraining is deterministic and keyed by what it excludes) instead of failing on a missing folder."""
    from types import SimpleNamespace

    from unlearnspec.runtime import pipeline
    from unlearnspec.runtime.rundir import now

    plan = Plan.load(small_here / "plan.json")
    op = plan.objectives[0]
    assert next(s for s in op.stages if s.kind == "reference").strategy == "retrain"
    rd = RunDir(tmp_path / "run")
    rd.root.mkdir()
    state = RunState(plan_hash=plan.plan_hash, spec_dir=str(small_here), started_at=now())
    orun = pipeline.ObjectiveRun(plan, op, rd, state, quiet=True, allow_remote_code=False)
    gone, rebuilt = tmp_path / "cache" / "gone", tmp_path / "cache" / "rebuilt"
    orun._finish("reference", strategy="retrain", path=str(gone))
    loaded: list[str] = []
    retrained: list[list[str]] = []

    def fake_retrain(exclude: list[str], **_: object) -> Path:
        retrained.append(exclude)
        rebuilt.mkdir(parents=True, exist_ok=True)
        return rebuilt

    monkeypatch.setattr(pipeline, "ensure_retrained", fake_retrain)
    monkeypatch.setattr(pipeline, "load_model", lambda path, **_: (loaded.append(path), None))
    orun._reference(SimpleNamespace(forget=[]))
    assert loaded == [str(rebuilt)] and len(retrained) == 1 and orun.detail("reference")["path"] == str(rebuilt)
    orun._reference(SimpleNamespace(forget=[]))  # now it is there: loaded, not retrained again
    assert loaded == [str(rebuilt)] * 2 and len(retrained) == 1


def test_a_run_or_its_ledger_inside_the_model_folder_is_refused(small_here: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The source model is only read: a run folder or a ledger inside it would change the folder the plan pins
    (and the report's hash of it would include the run's own output). UL715, exit 2, nothing written."""
    import numpy as np
    from safetensors.numpy import save_file

    model = small_here / "models" / "tiny"
    model.mkdir(parents=True)
    (model / "config.json").write_text(json.dumps({"model_type": "gpt2", "n_layer": 1, "n_embd": 8}), encoding="utf-8")
    save_file({"w": np.zeros((8, 8), dtype=np.float32)}, str(model / "model.safetensors"))
    (small_here / "local.unlearn").write_text(SPEC.replace('"builtin:tiny-bios"', '"./models/tiny"'), encoding="utf-8")
    code, _, err = run_cli(capsys, "plan", "local.unlearn", "-o", "local.json", "--allow-infeasible", "-q")
    assert code == 0, err
    before = sorted(p.name for p in model.iterdir())
    for extra in (["--out", "models/tiny/run1"], ["--out", "elsewhere", "--ledger", "models/tiny/ledger"],
                  ["--out", str(model)]):
        code, _, err = run_cli(capsys, "run", "local.json", *extra)
        assert code == 2 and "error[UL715]" in err, err
        no_traceback(err)
    assert sorted(p.name for p in model.iterdir()) == before and not (small_here / "elsewhere").exists()


def test_only_a_short_write_of_torchs_checkpoint_writer_reads_as_a_full_disk() -> None:
    """torch's zip writer says `unexpected pos` without the cause; the same words from elsewhere are no full disk."""
    full = RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 4210112 vs 4210000")
    assert engine._out_of_space(full)
    assert not engine._out_of_space(ValueError("parser: unexpected pos 3 in the template"))
    assert engine._out_of_space(OSError(errno.ENOSPC, "No space left on device"))


# -- provenance: a re-sealed edit is caught --------------------------------------------------------------


def _loosen(data: dict) -> None:  # type: ignore[type-arg]
    for check in data["objectives"][0]["checks"]:
        if check["threshold"]:
            check["threshold"]["value"] = 0.99 if check["threshold"]["op"] in ("<=", "<") else 0.0


@pytest.mark.parametrize(("edit", "said"), [
    (_loosen, "loosened"),
    (lambda d: d["objectives"][0]["claims"].pop(), "claim"),
    (lambda d: d["objectives"][0]["stages"][2].update(max_steps=1), "max_steps 30 → 1"),
    (lambda d: d["objectives"][0]["stages"][0].update(description="x"),
     "fields that differ: `objectives.0.stages.0.description`"),
])
def test_a_resealed_edit_is_refused_by_run(small_here: Path, capsys: pytest.CaptureFixture[str], edit: object,
                                           said: str) -> None:
    reseal(small_here / "plan.json", edit)
    code, _, err = run_cli(capsys, "run", "plan.json", "--out", "r")
    assert code == 2 and "error[UL711]: the plan is not what the compiler makes of its spec" in err, err
    assert said in err and "--trust-plan" in err
    assert not (small_here / "r").exists()


def test_show_warns_about_a_resealed_edit_but_still_renders(small_here: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "show", "plan.json")
    assert code == 0 and out and "UL711" not in err
    reseal(small_here / "plan.json", _loosen)
    code, out, err = run_cli(capsys, "show", "plan.json")
    assert code == 0 and out
    assert "warning[UL711]" in err and "loosened" in err


@pytest.mark.parametrize(("edit", "words"), [
    (lambda d: d.update(inputs=[]), "lists no input files"),
    (lambda d: d.update(objectives=[]), "has no objectives"),
])
def test_a_plan_that_runs_nothing_or_checks_no_input_is_refused(small_here: Path, capsys: pytest.CaptureFixture[str],
                                                                 edit: object, words: str) -> None:
    reseal(small_here / "plan.json", edit)
    for extra in ([], ["--trust-plan"]):
        code, _, err = run_cli(capsys, "run", "plan.json", "--out", "r", *extra)
        assert code == 2 and "error[UL703]" in err and words in err, err
    assert not (small_here / "r").exists()


def test_trust_plan_is_recorded_in_the_run_state(small_here: Path) -> None:
    plan = Plan.load(small_here / "plan.json")
    rd, state = engine._start(plan, small_here, engine.RunOptions(out=small_here / "r", plan_provenance="trusted"))
    rd.release()
    assert RunDir(small_here / "r").load_state().plan_provenance == "trusted" == state.plan_provenance


# -- resume of something that is not a run ---------------------------------------------------------------


@pytest.mark.parametrize("content", ["{broken", '{"plan_hash": 3}', "", '{"a": ' * 50_000])
def test_resume_with_a_corrupt_run_json_is_ul704(small_here: Path, capsys: pytest.CaptureFixture[str], content: str) -> None:
    run = small_here / "r"
    run.mkdir()
    shutil.copy(small_here / "plan.json", run / "plan.json")
    (run / "run.json").write_text(content, encoding="utf-8")
    code, _, err = run_cli(capsys, "run", "--resume", "r")
    assert code == 2 and "error[UL704]" in err and "run.json" in err, err
    no_traceback(err)


def test_resume_of_a_folder_that_is_not_a_run(small_here: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "run", "--resume", "data")
    assert code == 2 and "error[UL704]" in err


def test_run_state_round_trips(tmp_path: Path) -> None:
    rd = RunDir(tmp_path)
    rd.save_state(RunState(plan_hash="h", spec_dir="/x", started_at="t", plan_provenance="planned"))
    assert rd.load_state().plan_provenance == "planned"


# -- without the runtime extra ------------------------------------------------------------------------------


NO_TORCH = textwrap.dedent("""
    import sys
    sys.modules["torch"] = None  # as if `pip install unlearnspec` had no runtime extra
    from unlearnspec.cli import main
    raise SystemExit(main(sys.argv[1:]))
""")


@pytest.mark.parametrize("argv", [["run", "plan.json", "--out", "r"], ["run", "small.unlearn"], ["builtin", "build"]])
def test_without_the_runtime_extra_one_line_exit_2_nothing_written(small_here: Path, argv: list[str]) -> None:
    before = sorted(p.name for p in small_here.iterdir())
    done = subprocess.run([sys.executable, "-c", NO_TORCH, *argv], cwd=small_here, capture_output=True, text=True,
                          timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)}, check=False)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "pip install 'unlearnspec[runtime]'" in lines[0] and "torch" in lines[0], done.stderr
    assert sorted(p.name for p in small_here.iterdir()) == before  # no run folder, no runs/


def test_the_run_json_file_is_valid_json_after_start(small_here: Path) -> None:
    plan = Plan.load(small_here / "plan.json")
    rd, _ = engine._start(plan, small_here, engine.RunOptions(out=small_here / "r"))
    rd.release()
    assert json.loads((small_here / "r" / "run.json").read_text(encoding="utf-8"))["plan_provenance"] == "rederived"


@pytest.mark.parametrize(("provenance", "words"), [("trusted", "not re-derived"), ("rederived", "re-derived from the spec"),
                                                    ("planned", "planned from the spec by this run")])
def test_the_audit_trail_says_how_the_plan_was_vouched_for(provenance: str, words: str) -> None:
    from test_report import make_report

    from unlearnspec.report import render_html, render_markdown

    report = make_report()
    assert report.audit.plan_provenance is None and "Plan provenance" not in render_markdown(report)
    report = report.model_copy(update={"audit": report.audit.model_copy(update={"plan_provenance": provenance})})
    md = render_markdown(report)
    line = next(x for x in md.splitlines() if x.startswith("| Plan provenance |"))
    assert words in line and ("--trust-plan" in line) is (provenance == "trusted")
    assert words in render_html(report)
