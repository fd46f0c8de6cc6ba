"""`unlearnspec run --processes N` (cli/launch.py): the launcher's line, the run folder named once, and the
run's own exit status rather than the launcher's.

The launcher's command line is checked against accelerate's own argument parser; the arguments each process
gets against the CLI's parser; the exit status through a stand-in for the launcher. A real 2-process run
through `--processes 2` is `tests/test_scale_run.py` (slow).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path

import pytest
from accelerate.commands.launch import launch_command_parser
from fixtures.runs import cli, make_small

from unlearnspec.cli import build_parser, launch, main
from unlearnspec.cli.common import UsageError


@pytest.fixture(autouse=True)
def _cores(monkeypatch: pytest.MonkeyPatch) -> None:
    """The stand-in launches ask for 2 CPU processes: whatever the cores of the machine running the tests."""
    monkeypatch.setattr(launch, "cpu_cores", lambda: 4)


def _parsed(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["run", *argv])


def _comparable(ns: argparse.Namespace) -> dict[str, object]:
    return {k: v for k, v in vars(ns).items() if k not in ("processes", "out", "func")}


@pytest.mark.parametrize("argv", [
    ("small.unlearn", "--processes", "2"),
    ("plan.json", "--processes", "3", "--trust-plan", "--no-ledger", "-q", "--allow-remote-code"),
    ("small.unlearn", "--processes", "2", "--allow-infeasible", "--ledger", "books", "--out", "runs/x"),
    ("--resume", "runs/old", "--processes", "2", "--quiet"),
])
def test_every_process_gets_this_commands_run_arguments(argv: tuple[str, ...]) -> None:
    given = _parsed(*argv)
    forwarded = launch.run_arguments(given, given.out or (None if given.resume else "runs/chosen"))
    again = _parsed(*forwarded)
    assert _comparable(again) == _comparable(given)
    assert again.processes is None  # a process of the launch runs the run itself, never another launch
    if given.resume:
        assert again.out is None and again.resume == given.resume
    else:
        assert again.out == (given.out or "runs/chosen")


@pytest.mark.parametrize("gpus", [0, 2, 8])
def test_the_launch_line_is_one_accelerate_reads_as_asked(gpus: int) -> None:
    argv, env = launch.launch_command(2, ["small.unlearn", "--out", "runs/x"], gpus=gpus, port=29611, cpus=2)
    assert argv[:3] == [sys.executable, "-m", "unlearnspec.cli.launcher"]
    seen = launch_command_parser().parse_args(argv[3:])
    assert (seen.num_processes, seen.num_machines, seen.main_process_port) == (2, 1, 29611)
    assert seen.multi_gpu and seen.module and seen.training_script == "unlearnspec"
    assert seen.training_script_args == ["run", "small.unlearn", "--out", "runs/x"]
    assert seen.mixed_precision == "no"  # the plan's own precision decides; the launcher adds none
    # no GPU: the GPUs stay hidden from the processes, which then use gloo (accelerate's `--cpu` would start one)
    assert env == ({"CUDA_VISIBLE_DEVICES": ""} if gpus == 0 else {})


def test_more_processes_than_gpus_is_a_usage_error() -> None:
    with pytest.raises(UsageError) as err:
        launch.launch_command(4, ["small.unlearn"], gpus=2, port=29612)
    assert "`--processes 4`" in err.value.message and any("--processes 2" in h for h in err.value.help)


def test_more_cpu_processes_than_cores_is_a_usage_error() -> None:
    # each process loads the runtime and the models: 64 of them on 2 cores share the cores and run out of memory
    with pytest.raises(UsageError) as err:
        launch.launch_command(64, ["small.unlearn"], gpus=0, port=29613, cpus=2)
    assert "`--processes 64`" in err.value.message and "2 CPU core(s)" in err.value.message
    assert any("`--processes 2`" in h for h in err.value.help)
    launch.launch_command(2, ["small.unlearn"], gpus=0, port=29613, cpus=2)  # one a core is what a launch is for
    launch.launch_command(4, ["small.unlearn"], gpus=8, port=29613, cpus=2)  # GPU processes: the GPUs count


def test_too_many_processes_is_refused_before_the_launcher_starts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    d = make_small(tmp_path)
    monkeypatch.chdir(d)
    monkeypatch.setattr(launch, "visible_gpus", lambda: 0)
    monkeypatch.setattr(launch, "_spawn", lambda *a: pytest.fail("the launcher started"))
    monkeypatch.setattr(launch, "cpu_cores", lambda: 2)
    assert main(["run", "small.unlearn", "--processes", "64"]) == 2
    err = capsys.readouterr().err
    assert "error: `--processes 64` asks for more CPU processes" in err and "Traceback" not in err


@pytest.mark.parametrize("written,launcher,expected", [
    (3, 1, 3),  # incomplete evidence: the launcher says only "failed"
    (1, 1, 1),  # a claim failed
    (2, 1, 2),  # the user must act (a coded error on the main process)
    (0, 0, 0),
    (None, 1, 1),  # the main process died before it wrote anything
    (None, -9, 1),  # the launcher itself was killed
])
def test_the_exit_status_is_the_main_processs(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                              written: int | None, launcher: int, expected: int) -> None:
    seen: dict[str, object] = {}

    def stand_in(argv: list[str], env: dict[str, str]) -> int:
        seen["argv"], seen["env"] = argv, env
        if written is not None:
            Path(env[launch.EXIT_FILE]).write_text(f"{written}\n")
        return launcher

    args = _parsed("small.unlearn", "--processes", "2")
    assert launch.launch(args, str(tmp_path / "run"), gpus=0, spawn=stand_in) == expected
    env = seen["env"]
    assert isinstance(env, dict) and env["CUDA_VISIBLE_DEVICES"] == "" and not Path(env[launch.EXIT_FILE]).exists()
    err = capsys.readouterr().err
    assert ("before the main process reported" in err) == (written is None and launcher != 0)


def test_a_launch_that_died_after_the_run_started_says_how_to_resume(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text("{}")
    args = _parsed("small.unlearn", "--processes", "2")
    assert launch.launch(args, str(run), gpus=0, spawn=lambda argv, env: 1) == 1
    assert f"unlearnspec run --resume {run} --processes 2" in capsys.readouterr().err


def test_only_the_main_process_of_a_launch_writes_its_status(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    where = tmp_path / "exit"
    launch.record_exit(1)  # outside a launch: nothing to tell
    monkeypatch.setenv(launch.EXIT_FILE, str(where))
    monkeypatch.setenv("RANK", "1")
    launch.record_exit(1)
    assert not where.exists()
    monkeypatch.setenv("RANK", "0")
    launch.record_exit(3)
    assert launch.read_exit(where) == 3


@pytest.mark.parametrize("count", ["0", "-1", "two", "1.5"])
def test_a_process_count_must_be_a_whole_number_from_one(count: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:  # argparse's usage error, as for any other bad option
        main(["run", "x.unlearn", f"--processes={count}"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "--processes" in err and "a whole number, 1 or more" in err and "Traceback" not in err


def test_a_spec_that_cannot_be_planned_is_refused_once_before_any_process_starts(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "bad.unlearn").write_text('unlearnspec 1\nobjective "x" {\n  goal removel\n}\n')
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(launch, "launch", lambda *a, **k: pytest.fail("a launch started for a spec with errors"))
    assert main(["run", "bad.unlearn", "--processes", "2"]) == 2
    err = capsys.readouterr().err
    assert "UL706" in err and err.count("error[UL706]") == 1


def test_the_run_folder_is_named_once_for_every_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    d = make_small(tmp_path)
    plan_hash = json.loads((d / "plan.json").read_text())["plan_hash"]
    seen: dict[str, object] = {}

    def captured(args: argparse.Namespace, out: str | None, *, gpus: int) -> int:
        seen["out"], seen["argv"] = out, launch.run_arguments(args, out)
        return 0

    monkeypatch.chdir(d)
    monkeypatch.setattr(launch, "launch", captured)
    monkeypatch.setattr(launch, "visible_gpus", lambda: 0)
    for given in ("small.unlearn", "plan.json"):
        assert main(["run", given, "--processes", "2"]) == 0
        out = str(seen["out"])
        assert re.fullmatch(rf"runs/small-{plan_hash[:8]}-\d{{8}}T\d{{6}}Z", out), out
        argv = seen["argv"]
        assert isinstance(argv, list) and argv[argv.index("--out") + 1] == out
    # inside a launch (accelerate sets these), `--processes` does not start another one
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert launch.under_launch()


def test_run_help_names_the_option() -> None:
    done = cli("run", "--help", env={"COLUMNS": "200"})
    assert done.returncode == 0 and "--processes N" in done.stdout
    assert os.environ.get(launch.EXIT_FILE) is None


@pytest.mark.slow
def test_a_coded_error_under_two_processes_exits_2_without_a_traceback(tmp_path: Path) -> None:
    d = make_small(tmp_path)
    (d / "taken").mkdir()
    (d / "taken" / "notes.txt").write_text("someone else's folder")
    done = cli("run", "small.unlearn", "--processes", "2", "--out", "taken", "--no-ledger", "--quiet", cwd=d,
               env={"CUDA_VISIBLE_DEVICES": ""}, timeout=300)
    assert done.returncode == 2, done.stderr[-3000:]  # the run's status, where `accelerate launch` exits 1
    assert "error[UL707]" in done.stderr and "Traceback" not in done.stderr
    assert (d / "taken" / "notes.txt").read_text() == "someone else's folder"  # nothing of it was touched
