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
from unlearnspec.runtime.rundir import RunDir, RunError, RunState, safe_name

ROOT = Path(__file__).resolve().parents[1]
SPECS = ROOT / "specs"


@pytest.fixture
def small(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The small runtime spec, its data and its plan, in a folder that is also the working folder."""
    (tmp_path / "data").mkdir()
    for name in ("jane-doe.jsonl", "retain.jsonl"):
        shutil.copy(SPECS / "data" / name, tmp_path / "data" / name)
    (tmp_path / "small.unlearn").write_text(SPEC, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    assert main(["plan", "small.unlearn", "-o", "plan.json", "--quiet"]) == 0
    return tmp_path


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


def test_run_and_show_read_plans_through_the_same_loader(small: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (small / "bad.json").write_text('{"format_version": "7.1", "objectives": []}', encoding="utf-8")
    code, _, err = run_cli(capsys, "run", "bad.json", "--out", "r")
    assert code == 2 and "error[UL703]: plan format `7.1` is newer than" in err
    code, _, show_err = run_cli(capsys, "show", "bad.json")
    assert code == 2 and "plan format `7.1` is newer than" in show_err  # an unusable plan: exit 2
    assert not (small / "r").exists()


# -- exclusive and sanitised run folders -------------------------------------------------------------------


CLAIM = """
import sys, time
from pathlib import Path
from unlearnspec.runtime.rundir import RunDir, RunError
go = Path(sys.argv[2])
while not go.exists():
    time.sleep(0.001)
try:
    RunDir(Path(sys.argv[1])).create_exclusive()
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


def test_a_second_run_into_a_busy_folder_gets_ul707(small: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Two `run --out same/` (the second sees the folder the first claimed): exit 2, the folder untouched."""
    first = RunDir(small / "same")
    first.create_exclusive()
    try:
        code, _, err = run_cli(capsys, "run", "plan.json", "--out", "same")
    finally:
        first.release()
    assert code == 2 and "error[UL707]" in err
    assert [p.name for p in (small / "same").iterdir()] == ["run.lock"]


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


def test_the_default_run_folder_stays_under_runs(small: Path) -> None:
    plan = Plan.load(small / "plan.json")
    for name in ("../../x", "/abs/olute", "..", "a/../../b"):
        plan.objectives[0].objective.name = name
        out = engine.default_run_dir(plan)
        assert out.parent == Path("runs") and (small / out).resolve().is_relative_to((small / "runs").resolve())


# -- unusable --out: diagnostic, exit 2 (never 1: that means a claim failed) ------------------------------


@pytest.mark.parametrize("where", ["/proc/unlearnspec-run", "/proc/self/status", "file", "file/sub"])
def test_unusable_out_is_a_diagnostic_and_exit_2(small: Path, capsys: pytest.CaptureFixture[str], where: str) -> None:
    (small / "file").write_text("not a folder", encoding="utf-8")
    code, out, err = run_cli(capsys, "run", "plan.json", "--out", where)
    assert code == 2, err
    assert "error[UL709]" in err or "error[UL707]" in err
    no_traceback(err)
    assert (small / "file").read_text(encoding="utf-8") == "not a folder"


@pytest.mark.parametrize(("code_", "words"), [(errno.EROFS, "read-only file system"),
                                              (errno.ENOSPC, "no space left on device"),
                                              (errno.EACCES, "permission denied")])
def test_read_only_or_full_file_system_at_creation(small: Path, capsys: pytest.CaptureFixture[str],
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
    assert not (small / "out").exists()


def test_a_full_disk_while_writing_the_plan_copy(small: Path, capsys: pytest.CaptureFixture[str],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from unlearnspec.runtime import engine as eng

    def full(path: Path, text: str) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(eng, "atomic_write_text", full)
    code, _, err = run_cli(capsys, "run", "plan.json", "--out", "out")
    assert code == 2 and "error[UL709]" in err and "no space left on device" in err
    assert not (small / "out").exists()  # no half-made folder that would then block a retry (UL707)


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
def test_a_resealed_edit_is_refused_by_run(small: Path, capsys: pytest.CaptureFixture[str], edit: object,
                                           said: str) -> None:
    reseal(small / "plan.json", edit)
    code, _, err = run_cli(capsys, "run", "plan.json", "--out", "r")
    assert code == 2 and "error[UL711]: the plan is not what the compiler makes of its spec" in err, err
    assert said in err and "--trust-plan" in err
    assert not (small / "r").exists()


def test_show_warns_about_a_resealed_edit_but_still_renders(small: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "show", "plan.json")
    assert code == 0 and out and "UL711" not in err
    reseal(small / "plan.json", _loosen)
    code, out, err = run_cli(capsys, "show", "plan.json")
    assert code == 0 and out
    assert "warning[UL711]" in err and "loosened" in err


@pytest.mark.parametrize(("edit", "words"), [
    (lambda d: d.update(inputs=[]), "lists no input files"),
    (lambda d: d.update(objectives=[]), "has no objectives"),
])
def test_a_plan_that_runs_nothing_or_checks_no_input_is_refused(small: Path, capsys: pytest.CaptureFixture[str],
                                                                 edit: object, words: str) -> None:
    reseal(small / "plan.json", edit)
    for extra in ([], ["--trust-plan"]):
        code, _, err = run_cli(capsys, "run", "plan.json", "--out", "r", *extra)
        assert code == 2 and "error[UL703]" in err and words in err, err
    assert not (small / "r").exists()


def test_trust_plan_is_recorded_in_the_run_state(small: Path) -> None:
    plan = Plan.load(small / "plan.json")
    rd, state = engine._start(plan, small, engine.RunOptions(out=small / "r", plan_provenance="trusted"))
    rd.release()
    assert RunDir(small / "r").load_state().plan_provenance == "trusted" == state.plan_provenance


# -- resume of something that is not a run ---------------------------------------------------------------


@pytest.mark.parametrize("content", ["{broken", '{"plan_hash": 3}', "", '{"a": ' * 50_000])
def test_resume_with_a_corrupt_run_json_is_ul704(small: Path, capsys: pytest.CaptureFixture[str], content: str) -> None:
    run = small / "r"
    run.mkdir()
    shutil.copy(small / "plan.json", run / "plan.json")
    (run / "run.json").write_text(content, encoding="utf-8")
    code, _, err = run_cli(capsys, "run", "--resume", "r")
    assert code == 2 and "error[UL704]" in err and "run.json" in err, err
    no_traceback(err)


def test_resume_of_a_folder_that_is_not_a_run(small: Path, capsys: pytest.CaptureFixture[str]) -> None:
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
def test_without_the_runtime_extra_one_line_exit_2_nothing_written(small: Path, argv: list[str]) -> None:
    before = sorted(p.name for p in small.iterdir())
    done = subprocess.run([sys.executable, "-c", NO_TORCH, *argv], cwd=small, capture_output=True, text=True,
                          timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)}, check=False)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "pip install 'unlearnspec[runtime]'" in lines[0] and "torch" in lines[0], done.stderr
    assert sorted(p.name for p in small.iterdir()) == before  # no run folder, no runs/


def test_the_run_json_file_is_valid_json_after_start(small: Path) -> None:
    plan = Plan.load(small / "plan.json")
    rd, _ = engine._start(plan, small, engine.RunOptions(out=small / "r"))
    rd.release()
    assert json.loads((small / "r" / "run.json").read_text(encoding="utf-8"))["plan_provenance"] == "rederived"


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
