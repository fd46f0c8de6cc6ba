"""One rank's failure ends a launch promptly, with the error on the main process's output.

Under ``accelerate launch`` every rank runs every stage, and a rank that raises leaves the others in a collective
call it will never join (the stopping rule's all-reduce, DDP's gradient all-reduce, a barrier). The launcher ends
them once the failed process exits, but the main process then died of the broken collective — a gloo "Connection
closed by peer" traceback on CPUs, torn down unexplained on GPUs — while the failure itself was printed by a helper
rank, on one line. Now a failing rank posts its error to the launch's store and the main process prints it, coded
as a single process prints it (exit 2 for a user error, 1 with the traceback for any other), and ends the launch.

The faults are injected by a launched script that patches one rank's runtime before running the command line.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from fixtures.runs import SPECS, cli, make_tiny_local

from unlearnspec.cli.common import print_error

pytest.importorskip("torch")

LIMIT_S = 120  # a launch of the tiny model takes ~15 s on two CPU processes; a hang would take the 6-hour timeout

_SCRIPT = r'''
import os, sys
from unlearnspec.errors import UserError
from unlearnspec.runtime import pipeline
from unlearnspec.runtime.methods import base

where, rank = os.environ["INJECT"].split("@")
if os.environ.get("RANK", "0") == rank:
    if where == "stopping":  # the holdout check of the stopping rule, between two training steps
        def stopping(self, *args, **kwargs):
            raise UserError("UL990", "injected: the stopping check failed on one rank", ["injected help"])
        base.HoldoutStopping.on_step_end = stopping
    elif where == "step":  # a training step: the others wait in DDP's gradient all-reduce
        loss = base.GradDiffTrainer.unlearning_loss
        calls = []
        def unlearning_loss(self, model, inputs):
            calls.append(1)
            if len(calls) == 3:
                raise ValueError("injected: a bad batch")
            return loss(self, model, inputs)
        base.GradDiffTrainer.unlearning_loss = unlearning_loss
    elif where == "relearn":  # a relearning attack's fine-tune: the others wait in its Trainer's collectives
        from unlearnspec.runtime import attacks
        def relearn(*args, **kwargs):
            raise UserError("UL992", "injected: the attack's fine-tune failed on one rank")
        attacks.relearn = relearn
    elif where == "reference":  # made by the main process while the others wait for it
        def reference(self, data):
            raise UserError("UL991", "injected: the reference cannot be made", ["injected help"])
        pipeline.ObjectiveRun._reference = reference
from unlearnspec.cli import main
sys.exit(main(sys.argv[1:]))
'''


@pytest.fixture(scope="module")
def holdout_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny local objective with holdout data (so the stopping rule checks) and grad_diff for 6 steps."""
    d = make_tiny_local(tmp_path_factory.mktemp("ranks"))
    shutil.copy(SPECS / "data" / "holdout.jsonl", d / "data" / "holdout.jsonl")
    spec = (d / "small.unlearn").read_text()
    spec = spec.replace('forget  "data/jane-doe.jsonl"', 'forget  "data/jane-doe.jsonl"\n    holdout "data/holdout.jsonl"')
    spec = spec.replace("goal   suppression\n  method refusal { steps 30 }",
                        "goal   removal\n  method grad_diff {\n    steps 6\n    batch_size 2\n  }")
    (d / "h.unlearn").write_text(spec)
    # the same with a relearning attack of two steps
    (d / "a.unlearn").write_text(spec.replace("    not_generated\n", "    not_generated\n    robust_to_finetuning steps 2\n"))
    for name in ("h", "a"):
        done = cli("plan", f"{name}.unlearn", "-o", f"{name}.json", "--quiet", cwd=d)
        assert done.returncode == 0, done.stderr
    attack = next(s for s in json.loads((d / "a.json").read_text())["objectives"][0]["stages"] if s["kind"] == "attack")
    assert any(a["kind"] == "relearn" for a in attack["attacks"])
    unlearn = next(s for s in json.loads((d / "h.json").read_text())["objectives"][0]["stages"]
                   if s["kind"] == "unlearn")
    assert unlearn["stopping"]["kind"] == "holdout_loss" and unlearn["stopping"]["check_every"] <= 6
    (d / "inject.py").write_text(_SCRIPT)
    return d


def _launch(d: Path, inject: str, out: str, plan: str = "h.json") -> tuple[int, str, float]:
    accelerate = Path(sys.executable).with_name("accelerate")
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "UNLEARNSPEC_THREADS": "1", "INJECT": inject}
    t0 = time.monotonic()
    launch = subprocess.Popen([str(accelerate), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
                               "--mixed_precision", "no", "--dynamo_backend", "no", "inject.py", "run", plan,
                               "--out", out, "--quiet", "--no-ledger"], cwd=d, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        _, err = launch.communicate(timeout=LIMIT_S)
    except subprocess.TimeoutExpired:
        os.killpg(launch.pid, signal.SIGKILL)  # the launcher and its workers, started in their own session
        launch.communicate()
        pytest.fail(f"the launch with a failure injected at {inject} hung")
    return launch.returncode, err, time.monotonic() - t0


def _exit_code(err: str, rank: int) -> int | None:
    """A rank's exit code in the launcher's failure table (``None``: the rank did not fail)."""
    found = re.search(rf"rank\s*: {rank} \(local_rank: {rank}\)\s*\n\s*exitcode\s*: (-?\d+)", err)
    return int(found.group(1)) if found else None


def _main_lines(err: str) -> str:
    """What the main process wrote: not a helper's own line, not a line of the launcher's."""
    return "\n".join(line for line in err.splitlines() if not line.startswith(("[rank1]", "[rank 1]")))


@pytest.mark.slow
def test_a_helper_user_error_in_the_stopping_check_is_the_main_process_error(holdout_run: Path) -> None:
    code, err, took = _launch(holdout_run, "stopping@1", "r-stopping")
    assert code != 0 and took < LIMIT_S
    main = _main_lines(err)
    assert re.search(r"^error\[UL990\]: injected: the stopping check failed on one rank", main, re.M), err[-4000:]
    assert "  = help: injected help" in main
    assert "Connection closed by peer" not in main, err[-4000:]  # not a death in the broken collective
    assert _exit_code(err, 0) == 2, err[-3000:]  # a user error: exit 2, as one process exits
    state = json.loads((holdout_run / "r-stopping" / "run.json").read_text())
    assert state["stages"]["small/unlearn"]["status"] == "running"  # stopped mid-stage: resumable, as after a kill


@pytest.mark.slow
def test_a_helper_crash_in_a_training_step_is_shown_by_the_main_process(holdout_run: Path) -> None:
    code, err, took = _launch(holdout_run, "step@1", "r-step")
    assert code != 0 and took < LIMIT_S
    main = _main_lines(err)
    assert "rank 1" in main and "ValueError: injected: a bad batch" in main, err[-4000:]
    assert "Connection closed by peer" not in main, err[-4000:]
    assert _exit_code(err, 0) == 1, err[-3000:]  # not a user error: 1, with the traceback, as one process


@pytest.mark.slow
def test_a_helper_failing_in_an_attack_fine_tune_is_the_main_process_error(holdout_run: Path) -> None:
    code, err, took = _launch(holdout_run, "relearn@1", "r-relearn", plan="a.json")
    assert code != 0 and took < LIMIT_S
    main = _main_lines(err)
    assert re.search(r"^error\[UL992\]: injected: the attack's fine-tune failed on one rank", main, re.M), err[-4000:]
    assert _exit_code(err, 0) == 2, err[-3000:]
    state = json.loads((holdout_run / "r-relearn" / "run.json").read_text())
    assert state["stages"]["small/attack"]["status"] == "running"


@pytest.mark.slow
def test_the_main_process_failing_while_the_helpers_wait_ends_the_launch(holdout_run: Path) -> None:
    code, err, took = _launch(holdout_run, "reference@0", "r-reference")
    assert code != 0 and took < LIMIT_S
    assert re.search(r"^error\[UL991\]: injected: the reference cannot be made", err, re.M), err[-4000:]
    assert _exit_code(err, 0) == 2, err[-3000:]


# -- the protocol, on a store of this process's own (fast) ------------------------------------------------------


class _Store:
    """The few calls of torch's key-value store the protocol makes, on a dict."""

    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}

    def set(self, key: str, value: str) -> None:
        self.data[key] = value.encode()

    def get(self, key: str) -> bytes:
        return self.data[key]

    def check(self, keys: list[str]) -> bool:
        return all(k in self.data for k in keys)


def _rank(monkeypatch: pytest.MonkeyPatch, store: _Store, rank: int) -> Any:
    from types import SimpleNamespace

    from unlearnspec.runtime import distributed

    monkeypatch.setattr(distributed, "_store", lambda: store)
    monkeypatch.setattr(distributed, "POLL_S", 0.01)
    monkeypatch.setattr(distributed, "GRACE_S", 0.01)
    monkeypatch.setattr(distributed, "SHOWN_WAIT_S", 5.0)
    dist = distributed.Distributed()  # WORLD_SIZE unset: no process group; a launch's rank is stood in for
    dist.world_size = 2
    dist.state = SimpleNamespace(process_index=rank, is_main_process=rank == 0)
    return dist


def test_the_main_process_shows_a_helper_user_error_coded_and_exits_2(monkeypatch: pytest.MonkeyPatch,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    import threading

    from unlearnspec.errors import UserError
    from unlearnspec.runtime import distributed

    store = _Store()
    main, helper = _rank(monkeypatch, store, 0), _rank(monkeypatch, store, 1)
    exited: list[int] = []
    done = threading.Event()

    def _exit(code: int) -> None:  # the watcher then finds the process failing and ends
        exited.append(code)
        done.set()

    monkeypatch.setattr(distributed.os, "_exit", _exit)
    main.watch(print_error)  # what the command line hands the runtime (RunOptions.show_error)
    err = UserError("UL990", "the check failed", ["a help line"])
    t0 = time.monotonic()
    assert helper.fail(err) is err  # it waited until the main process showed it
    assert done.wait(5) and exited == [2] and time.monotonic() - t0 < 5
    assert store.check([distributed.SHOWN])
    shown = capsys.readouterr().err
    assert shown.splitlines() == ["error[UL990]: the check failed", "  = help: a help line",
                                  "  = help: raised on rank 1 of 2 of the launch"]


def test_a_helper_crash_is_shown_with_its_traceback_and_exit_1(monkeypatch: pytest.MonkeyPatch) -> None:
    import json as json_

    from unlearnspec.runtime import distributed

    store = _Store()
    helper = _rank(monkeypatch, store, 1)
    monkeypatch.setattr(distributed, "SHOWN_WAIT_S", 0.05)  # no main process here to show it
    try:
        raise ValueError("a bad batch")
    except ValueError as exc:
        err = exc
    assert helper.fail(err) is err
    posted = json_.loads(store.get(f"{distributed.FAILED}1"))
    assert posted["code"] is None and posted["message"] == "ValueError: a bad batch"
    assert "Traceback" in posted["trace"] and "test_a_helper_crash_is_shown" in posted["trace"]
    text = distributed.shown_text(posted, 2)
    assert text.startswith("error: rank 1 of 2 failed: ValueError: a bad batch\nTraceback")


def test_the_main_process_raises_a_helper_error_over_the_broken_collective(monkeypatch: pytest.MonkeyPatch) -> None:
    """The main process's own error is the broken collective (not a user error) and a helper posted its failure
    first: the helper's error is the run's. A user error of the main process's own stays its error."""
    from unlearnspec.errors import UserError

    store = _Store()
    main = _rank(monkeypatch, store, 0)
    store.set("unlearnspec/failed/1", json.dumps({"rank": 1, "code": "UL990", "message": "m", "help": ["h"]}))
    raised = main.fail(RuntimeError("Connection closed by peer"))
    assert isinstance(raised, UserError) and (raised.code, raised.message) == ("UL990", "m")
    assert raised.help == ["h", "raised on rank 1 of 2 of the launch"]
    own = UserError("UL703", "its own")
    assert _rank(monkeypatch, _Store(), 0).fail(own) is own


def test_one_process_posts_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    from unlearnspec.runtime import distributed

    def no_store() -> None:
        raise AssertionError("one process has no store to post to")

    monkeypatch.setattr(distributed, "_store", no_store)
    dist = distributed.Distributed()
    err = ValueError("x")
    dist.watch(print_error)
    assert dist.fail(err) is err and dist._watcher is None
