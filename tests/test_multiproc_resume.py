"""A multi-process launch agrees on how a run starts before any rank returns or raises.

``--resume`` of a run that has already finished: the main process finds it finished and has nothing to
do, but the helper ranks are waiting to hear which run folder to read. The main process must tell them
(one broadcast) before it returns, or they wait in that broadcast for a process that has gone (on CPU,
gloo then fails with "connection closed by peer"; on GPUs, NCCL hangs until its timeout). The same holds
for a main process that fails to start: every rank learns it and stops. A chain of one request (a lone
budget) runs under a launch like any objective, and so does a chain of several (UL712, which refused it, is
retired: tests/test_chain_multiproc.py runs one on two processes).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from fixtures.runs import cli, make_tiny_local

pytest.importorskip("torch")


class FakeDist:
    """A rank of a two-process launch whose broadcasts are recorded (main) or answered (helper)."""

    def __init__(self, is_main: bool, answer: Any = None) -> None:
        self.world_size, self.active, self.is_main = 2, True, is_main
        self.answer, self.sent, self.left = answer, [], False

    def broadcast(self, obj: Any) -> Any:
        self.sent.append(obj)
        return obj if self.is_main else self.answer

    def barrier(self) -> None:
        pass

    def leave(self) -> None:
        self.left = True


def _engine(monkeypatch: pytest.MonkeyPatch, dist: FakeDist) -> Any:
    from unlearnspec.runtime import engine

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setattr(engine, "Distributed", lambda: dist)
    return engine


def test_main_tells_the_helpers_a_resumed_run_has_finished(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    dist = FakeDist(is_main=True)
    engine = _engine(monkeypatch, dist)
    report = object()
    monkeypatch.setattr(engine, "_reopen", lambda root, options: ("plan", engine.RunDir(root), "state", report))
    outcome = engine.run(None, None, engine.RunOptions(resume=tmp_path))
    assert dist.sent == [((str(tmp_path), True), None)]  # told before returning: this folder, finished, no failure
    assert outcome.already_finished and outcome.report is report and outcome.root == tmp_path
    assert dist.left  # out of the process group: the helpers have left it too


def test_a_helper_returns_when_the_main_process_finds_the_run_finished(monkeypatch: pytest.MonkeyPatch,
                                                                         tmp_path: Path) -> None:
    dist = FakeDist(is_main=False, answer=((str(tmp_path), True), None))
    engine = _engine(monkeypatch, dist)

    def must_not_read(root: Path) -> Any:
        raise AssertionError("a helper of a finished run reads nothing")

    monkeypatch.setattr(engine, "read_run", must_not_read)
    outcome = engine.run(None, None, engine.RunOptions(resume=tmp_path))
    assert (outcome.report, outcome.already_finished, outcome.root) == (None, True, tmp_path)
    assert len(dist.sent) == 1 and dist.left


def test_any_failure_of_the_main_process_at_the_start_reaches_every_rank(monkeypatch: pytest.MonkeyPatch,
                                                                        tmp_path: Path) -> None:
    from unlearnspec.runtime.load_errors import E_BAD_MODEL, LoadError

    dist = FakeDist(is_main=True)
    engine = _engine(monkeypatch, dist)

    def fails(root: Path, options: Any) -> Any:  # not a RunError: the model of the run cannot be loaded
        raise LoadError("the model folder is unreadable")

    monkeypatch.setattr(engine, "_reopen", fails)
    with pytest.raises(LoadError):
        engine.run(None, None, engine.RunOptions(resume=tmp_path))
    assert dist.sent == [(None, (E_BAD_MODEL, "the model folder is unreadable"))]
    helper = FakeDist(is_main=False, answer=dist.sent[0])
    engine = _engine(monkeypatch, helper)
    with pytest.raises(engine.RunError) as err:  # the helper stops with the main process's code and message
        engine.run(None, None, engine.RunOptions(resume=tmp_path))
    assert err.value.code == E_BAD_MODEL and "the model folder is unreadable" in err.value.message
    assert len(helper.sent) == 1


def test_a_chain_of_several_requests_is_no_longer_refused_under_a_launch() -> None:
    """UL712 is retired, not deleted: its page stays (codes are public API) and says so, and nothing raises it."""
    from unlearnspec.catalog import CODES

    assert CODES["UL712"].summary.startswith("Retired, no longer raised")
    runtime = Path(__file__).resolve().parents[1] / "unlearnspec" / "runtime"
    assert not [f.name for f in runtime.rglob("*.py") if '"UL712"' in f.read_text(encoding="utf-8")]


BUDGET = "  budget {\n    utility  drop <= 50%\n    requests 2\n  }\n}\n"


def _launch(cwd: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    accelerate = Path(sys.executable).with_name("accelerate")
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "UNLEARNSPEC_THREADS": "1"}
    return subprocess.run([str(accelerate), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
                           "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "unlearnspec", *args],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
def test_a_lone_budget_runs_on_two_processes_and_its_finished_run_resumes(tmp_path: Path) -> None:
    d = make_tiny_local(tmp_path)
    spec = (d / "small.unlearn").read_text()
    assert spec.rstrip().endswith("}")
    (d / "budget.unlearn").write_text(spec.rstrip()[:-1] + BUDGET)
    done = cli("plan", "budget.unlearn", "-o", "budget.json", "--quiet", cwd=d)
    assert done.returncode == 0, done.stderr
    assert [len(c["links"]) for c in json.loads((d / "budget.json").read_text())["chains"]] == [1]
    one = cli("run", "budget.json", "--out", "one", "--quiet", "--no-ledger", cwd=d, env={"UNLEARNSPEC_THREADS": "1"})
    assert one.returncode in (0, 1, 3), one.stderr[-3000:]
    two = _launch(d, "run", "budget.json", "--out", "two", "--quiet", "--no-ledger")
    assert "UL712" not in two.stderr
    r1, r2 = (json.loads((d / name / "report.json").read_text()) for name in ("one", "two"))
    assert (r1["audit"]["process_count"], r2["audit"]["process_count"]) == (1, 2)
    assert r2["exit_code"] == r1["exit_code"] and (two.returncode == 0) == (r2["exit_code"] == 0), two.stderr[-3000:]
    verdicts = [[(c["claim"], c["verdict"]) for c in r["objectives"][0]["claims"]] for r in (r1, r2)]
    assert verdicts[0] == verdicts[1]
    chains = [[(s["request"], s["overall"]) for s in r["chains"][0]["steps"]] for r in (r1, r2)]
    assert chains[0] == chains[1] == [("small", r1["objectives"][0]["overall"])]
    # the finished two-process run, resumed as two processes: the main process says so, every rank ends
    state = (d / "two" / "run.json").read_bytes()
    again = _launch(d, "run", "--resume", "two", "--quiet")
    assert "had already finished" in again.stderr, again.stderr[-3000:]
    assert "[rank1]" not in again.stderr, again.stderr[-3000:]  # no helper left in a broadcast, then torn down
    assert (again.returncode == 0) == (r2["exit_code"] == 0), again.stderr[-3000:]
    assert (d / "two" / "run.json").read_bytes() == state  # nothing rewritten


@pytest.mark.parametrize("rank", ["0", "1"])
def test_a_helper_rank_that_fails_says_why_on_its_own_line(rank: str, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    """Every rank of a launch runs the command; the first prints the whole diagnostic, any other its own failure on
    one line marked with its rank (a launcher shows only an exit code for it otherwise)."""
    from unlearnspec.cli import main

    monkeypatch.setenv("RANK", rank)
    monkeypatch.chdir(tmp_path)
    code = main(["run", "missing.unlearn"])
    err = capsys.readouterr().err
    assert code == 2
    if rank == "0":
        assert err.startswith("error[") and "[rank" not in err
    else:
        assert err.startswith("[rank 1] error[") and err.count("\n") == 1 and "= help" not in err
