"""`run --processes N` stopped from outside: Ctrl-C, `kill` of the command, or its death by SIGKILL.

The launch's processes run in sessions of their own (torch's elastic agent starts them so); only the launcher
can stop them. The command passes a stop signal on to the launcher once and waits for it (cli/launch.py), and
the launcher ends when the command dies (cli/launcher.py), so nothing of the run keeps writing its folder.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fixtures.runs import make_small

from unlearnspec.cli import build_parser, launch, launcher, main

# a stand-in for the launcher: says it is ready, then records the signal that stops it
_CHILD = """
import signal, sys, time
from pathlib import Path
seen = Path(sys.argv[1])
def stop(signum, frame):
    seen.write_text(str(signum))
    sys.exit(128 + signum)
for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
    signal.signal(s, stop)
{follow}
(seen.parent / "ready").write_text("")
time.sleep(60)
"""

# the command's side: `_spawn` as `launch` calls it, exiting with what `launch` would return when stopped
_PARENT = """
import sys
from unlearnspec.cli import launch
try:
    sys.exit(launch._spawn([sys.executable, sys.argv[1], sys.argv[2]], {"PATH": ""}))
except launch.Stopped as stop:
    sys.exit(128 + stop.signum)
"""


def _start(tmp_path: Path, follow: str, parent: str) -> tuple[subprocess.Popen[str], Path]:
    (tmp_path / "child.py").write_text(_CHILD.format(follow=follow))
    (tmp_path / "parent.py").write_text(parent)
    seen = tmp_path / "seen"
    proc = subprocess.Popen([sys.executable, str(tmp_path / "parent.py"), str(tmp_path / "child.py"), str(seen)],
                            text=True, start_new_session=True)
    deadline = time.monotonic() + 30
    while not (tmp_path / "ready").exists():
        assert time.monotonic() < deadline and proc.poll() is None, "the stand-in launcher never started"
        time.sleep(0.05)
    return proc, seen


def _wait_for(path: Path, seconds: float) -> str | None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if path.exists() and path.read_text():
            return path.read_text()
        time.sleep(0.05)
    return None


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_a_stop_signal_to_the_command_is_passed_to_the_launcher_which_ends_first(tmp_path: Path,
                                                                                  sig: signal.Signals) -> None:
    proc, seen = _start(tmp_path, "", _PARENT)
    os.kill(proc.pid, sig)  # the command alone: `kill PID`, or Ctrl-C as the terminal sends it (not to the launcher)
    assert proc.wait(timeout=30) == 128 + sig
    assert seen.read_text() == str(int(sig))  # the launcher got it, and had ended when the command did


def test_the_launcher_ends_when_the_command_is_killed(tmp_path: Path) -> None:
    follow = "from unlearnspec.cli.launcher import follow_parent\nfollow_parent()"
    parent = ("import os, subprocess, sys\nsubprocess.run([sys.executable, sys.argv[1], sys.argv[2]], "
              "env={**os.environ, 'UNLEARNSPEC_LAUNCH_PARENT': str(os.getpid())})\n")
    proc, seen = _start(tmp_path, follow, parent)
    os.kill(proc.pid, signal.SIGKILL)  # nothing to pass on: the launcher learns it from the kernel
    proc.wait(timeout=30)
    assert _wait_for(seen, 20) == str(int(signal.SIGTERM))


def _processes_with(marker: str) -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            args = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if entry.name.isdigit() and marker in args:
            found.append(f"{entry.name}: {args}")
    return found


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_killed_two_process_run_leaves_no_process_running_and_says_how_to_resume(tmp_path: Path) -> None:
    d = make_small(tmp_path)
    out = "killed-run"
    log = tmp_path / "stderr.txt"
    with log.open("w") as sink:
        proc = subprocess.Popen([sys.executable, "-m", "unlearnspec", "run", "small.unlearn", "--processes", "2",
                                 "--out", out, "--no-ledger"], cwd=d, env={**os.environ, "CUDA_VISIBLE_DEVICES": ""},
                                stdout=subprocess.DEVNULL, stderr=sink, text=True, start_new_session=True)
    deadline = time.monotonic() + 120
    while "[small] unlearn" not in log.read_text():  # the processes are training: the run folder has a run.json
        assert time.monotonic() < deadline and proc.poll() is None, log.read_text()[-3000:]
        time.sleep(0.1)
    try:
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)
        deadline = time.monotonic() + 20
        while _processes_with(f"--out {out}") and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _processes_with(f"--out {out}"), log.read_text()[-3000:]
    finally:
        for left in _processes_with(f"--out {out}"):
            os.kill(int(left.split(":")[0]), signal.SIGKILL)
    text = log.read_text()
    assert proc.returncode == 128 + signal.SIGTERM, text[-3000:]
    assert "interrupted (SIGTERM)" in text and "Traceback" not in text, text[-3000:]
    assert f"`unlearnspec run --resume {out} --processes 2`" in text


@pytest.mark.parametrize("case,code", [("no-folder", "UL704"), ("path-and-resume", "UL714"),
                                       ("edited-spec", "UL702")])
def test_a_run_that_would_be_refused_is_refused_once_before_any_process_starts(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], case: str, code: str) -> None:
    # refused by every process instead, the first to fail ended the launch: often a helper (`[rank 1] error`),
    # the main process stopped before it said anything, and the status the launcher's (1), not 2
    d = make_small(tmp_path)
    monkeypatch.chdir(d)
    monkeypatch.setattr(launch, "launch", lambda *a, **k: pytest.fail("a launch started for a run it refuses"))
    if case == "path-and-resume":
        run = d / "runs" / "started"
        run.mkdir(parents=True)
        (run / "plan.json").write_text((d / "plan.json").read_text())
        (run / "run.json").write_text(json.dumps({  # what a run writes when it starts, from its own reader's model
            "format_version": "1.1", "plan_hash": json.loads((d / "plan.json").read_text())["plan_hash"],
            "spec_dir": str(d), "started_at": "2026-01-01T00:00:00Z", "stages": {}}))
        argv = ["small.unlearn", "--resume", str(run)]
    elif case == "edited-spec":
        (d / "small.unlearn").write_text((d / "small.unlearn").read_text().replace("steps 30", "steps 40"))
        argv = ["plan.json"]
    else:
        argv = ["--resume", "runs/none"]
    assert main(["run", *argv, "--processes", "2"]) == 2
    err = capsys.readouterr().err
    assert err.count(f"error[{code}]") == 1 and "[rank" not in err, err


@pytest.mark.parametrize("main_reported", [True, False])
def test_a_helpers_error_is_shown_only_when_the_main_process_reported_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], main_reported: bool) -> None:
    # every process refuses a resume in another environment (UL714): the main process's error, then the helper's
    # `[rank 1] error[UL714]` with the same words, then a launcher line for each process
    line = "[rank 1] error[UL714]: the run was started in another environment\n"

    def stand_in(argv: list[str], env: dict[str, str]) -> int:
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        monkeypatch.setenv("RANK", "1")
        assert launch.record_helper_error(line)
        monkeypatch.setenv("RANK", "0")
        assert not launch.record_helper_error(line)  # the main process prints its own errors
        if main_reported:
            Path(env[launch.EXIT_FILE]).write_text("2\n")
        assert launcher.failure_lines({0: _Failed(2), 1: _Failed(2)}, launcher._main_reported()) == (
            [] if main_reported else ["process 0 of the launch exited with status 2\n",
                                      "process 1 of the launch exited with status 2\n"])
        return 1

    monkeypatch.setattr(launch, "cpu_cores", lambda: 2)
    args = build_parser().parse_args(["run", "--resume", str(tmp_path), "--processes", "2"])
    assert launch.launch(args, None, gpus=0, spawn=stand_in) == (2 if main_reported else 1)
    err = capsys.readouterr().err
    assert (line in err) == (not main_reported), err


class _Failed:
    def __init__(self, exitcode: int) -> None:
        self.exitcode = exitcode


def test_a_process_stopped_by_a_signal_is_named_by_it() -> None:
    lines = launcher.failure_lines({1: _Failed(-int(signal.SIGTERM)), 0: _Failed(1)}, main_reported=False)
    assert lines == ["process 0 of the launch exited with status 1\n",
                     "process 1 of the launch was stopped by signal SIGTERM\n"]
