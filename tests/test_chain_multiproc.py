"""A chain of several requests under a launch of several processes, with the results of one process.

Every rank runs each step as a lone objective runs under a launch, from the model the step before it saved (the
main process writes it, the others load it), and re-checks the earlier requests with sharded evaluation. What only
the main process reads — its run state, a saved drift file, the sha256 a resume compares (UL714) — it decides and
tells every rank, so that all take the same branch; what it does alone (a retrained reference) it tells them with its
failure, so that no rank waits in a broadcast for a process that has failed.

The fast tests stand a recording stand-in for the launch's other rank (``FakeDist``); the slow ones launch two CPU
processes (``accelerate launch``, as tests/test_multiproc_resume.py does) on a chain of two requests on
``builtin:tiny-bios`` and compare the report with one process's, resume a two-process run stopped after its
first step, and refuse (UL714, on every rank) a resume whose second step would start from another model.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch")

from fixtures.chains import chain_spec  # noqa: E402
from fixtures.runs import SPECS, cli  # noqa: E402
from test_multiproc_resume import FakeDist, _launch  # noqa: E402

from unlearnspec.runtime.rundir import RunDir, RunError, RunState  # noqa: E402

TOLERANCE = 1e-5
"""How far a value computed by two processes may be from one process's (sharded likelihoods agree to float
rounding: tests/test_sharding.py)."""


def _state() -> RunState:
    return RunState(plan_hash="0" * 64, spec_dir="/nowhere", started_at="2026-01-01T00:00:00Z")


class Helper(FakeDist):
    """A helper rank whose broadcasts are answered, one after another, with what the main process sent."""

    def __init__(self, answers: list[Any]) -> None:
        super().__init__(is_main=False)
        self.answers = list(answers)

    def broadcast(self, obj: Any) -> Any:
        self.sent.append(obj)
        return self.answers.pop(0)


# -- the branches only the main process can decide ---------------------------------------------------------------


def test_a_changed_start_model_is_refused_on_every_rank(tmp_path: Path) -> None:
    """UL714 rests on run.json, which the main process reads and writes: the helper raises it because the main
    process found the change, not from its own copy of the state (which may record nothing)."""
    from unlearnspec.runtime.chain import STARTED_FROM, _keep_start

    rd = RunDir(tmp_path / "run")
    main_state = _state()
    main_state.stage("second/chain").detail[STARTED_FROM] = "a" * 64  # what the step started from then
    main = FakeDist(is_main=True)
    with pytest.raises(RunError) as err:
        _keep_start(rd, main_state, "second", "first", "b" * 64, main)
    assert err.value.code == "UL714" and main.sent == [("a" * 64, None)]
    helper = Helper(main.sent)
    with pytest.raises(RunError) as err:
        _keep_start(rd, _state(), "second", "first", "b" * 64, helper)  # the helper's state records nothing
    assert err.value.code == "UL714"
    assert not (tmp_path / "run").exists()  # the helper wrote nothing


def test_a_first_start_is_recorded_by_the_main_process_alone(tmp_path: Path) -> None:
    from unlearnspec.runtime.chain import STARTED_FROM, _keep_start

    (tmp_path / "run").mkdir()
    rd = RunDir(tmp_path / "run")
    state = _state()
    main = FakeDist(is_main=True)
    _keep_start(rd, state, "second", "first", "b" * 64, main)
    saved = json.loads((tmp_path / "run" / "run.json").read_text())
    assert saved["stages"]["second/chain"]["detail"][STARTED_FROM] == "b" * 64 and main.sent == [(None, None)]
    (tmp_path / "run" / "run.json").unlink()
    _keep_start(rd, _state(), "second", "first", "b" * 64, Helper(main.sent))
    assert not (tmp_path / "run" / "run.json").exists()


def test_helpers_take_the_main_process_record_of_the_stages() -> None:
    """Only the main process finishes the unlearn stage (its model folder and sha256) and the reference stage (its
    path): the chain's next step starts from what those records say, on every rank."""
    from unlearnspec.runtime.chain import _follow

    main_state = _state()
    main_state.stage("first/unlearn").detail.update(model_dir="/run/objectives/first/unlearn/model",
                                                    model_sha256="c" * 64)
    main_state.stage("first/unlearn").status = "done"
    main = FakeDist(is_main=True)
    _follow(main_state, main)
    helper_state = _state()
    helper_state.stage("first/unlearn").status = "running"  # a helper starts the stage, never finishes it
    stages = helper_state.stages
    _follow(helper_state, Helper(main.sent))
    assert helper_state.stages is stages  # in place: every step's run reads this state
    assert helper_state.model_dump() == main_state.model_dump()


def _recheck_on(dist: Any, folder: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[list[str], Any]:
    """``_recheck`` of an earlier request ``first`` on ``dist``, in ``folder``: what it did (read the saved file,
    computed) and the re-check. The checks and the report built of them are stand-ins: what is under test is who
    decides, computes and writes."""
    from types import SimpleNamespace

    from unlearnspec.plan import EvaluateStage
    from unlearnspec.report.model import CheckResult
    from unlearnspec.runtime import chain

    did: list[str] = []
    real_saved = chain._saved

    def saved(out: Path, key: dict[str, Any], earlier: str) -> Any:
        did.append("read")
        return real_saved(out, key, earlier)

    def compute(ctx: Any) -> dict[str, CheckResult]:
        did.append("computed")
        return {}

    monkeypatch.setattr(chain, "_saved", saved)
    monkeypatch.setattr(chain.checks, "compute", compute)
    monkeypatch.setattr(chain, "build_objective_report", lambda op, results: SimpleNamespace(checks=[], claims=[]))
    basis = chain.Basis(strategy="holdout", reference=None, reference_path=None, guard=None, guard_sha256=None,
                        confidence=0.95, seed=0, same_reference=False)
    earlier = SimpleNamespace(objective=SimpleNamespace(name="first"), stages=[EvaluateStage()])
    earlier_run = SimpleNamespace(data=None, original=("original", "tok"))
    earlier_report = SimpleNamespace(checks=[], claims=[])
    rc = chain._recheck(folder, earlier, earlier_run, earlier_report, ("model", "tok"),  # type: ignore[arg-type]
                        "objectives/second/unlearn/model", basis, "d" * 64, dist)
    return did, rc


def test_a_saved_recheck_is_reused_or_computed_on_every_rank_as_the_main_process_finds_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The main process reads the saved drift file and tells the helpers what it found: a helper never reads it (its
    own reading could differ, and one rank computing in gathers while another reuses would hang), computes when the
    main process computes, and writes nothing."""
    main = FakeDist(is_main=True)
    did, rc = _recheck_on(main, tmp_path / "main", monkeypatch)
    drift = tmp_path / "main" / "drift" / "first.json"
    assert did == ["read", "computed"] and drift.is_file() and main.sent == [(None, None)]
    assert rc.request == "first"
    did, _ = _recheck_on(Helper(main.sent), tmp_path / "helper", monkeypatch)
    assert did == ["computed"] and not (tmp_path / "helper").exists()
    # run again: the main process finds its file computed on the same basis and reuses it, and so does the helper
    main = FakeDist(is_main=True)
    did, _ = _recheck_on(main, tmp_path / "main", monkeypatch)
    assert did == ["read"] and main.sent == [({}, None)]
    did, _ = _recheck_on(Helper(main.sent), tmp_path / "helper", monkeypatch)
    assert did == [] and not (tmp_path / "helper").exists()


def test_what_the_main_process_does_alone_fails_on_every_rank_with_its_code() -> None:
    from unlearnspec.runtime.distributed import on_main
    from unlearnspec.runtime.load_errors import LoadError

    def fails() -> str:
        raise LoadError("the retrained reference cannot be loaded", code="RT103")

    main = FakeDist(is_main=True)
    with pytest.raises(LoadError):
        on_main(main, fails)
    assert main.sent == [(None, ("RT103", "the retrained reference cannot be loaded"))]
    with pytest.raises(RunError) as err:
        on_main(Helper(main.sent), fails)
    assert err.value.code == "RT103" and "the retrained reference cannot be loaded" in err.value.message
    # an error without a code of its own: the code the engine gives a main process that could not go on
    main = FakeDist(is_main=True)
    with pytest.raises(ZeroDivisionError):
        on_main(main, lambda: 1 // 0)
    with pytest.raises(RunError) as err:
        on_main(Helper(main.sent), lambda: "never on a helper")
    assert err.value.code == "UL704" and "division" in err.value.message


def test_the_retrained_reference_of_a_recheck_is_made_by_the_main_process_alone(monkeypatch: pytest.MonkeyPatch,
                                                                                 tmp_path: Path) -> None:
    """An earlier request re-checked by a retrained reference the step did not make: the main process retrains it
    (under the cache's lock), the other ranks load the folder it names."""
    from types import SimpleNamespace

    from unlearnspec.plan import ReferenceStage
    from unlearnspec.runtime import chain

    retrained: list[list[str]] = []
    monkeypatch.setattr(chain, "ensure_retrained", lambda targets, recipe: retrained.append(targets) or "/cache/r")
    loaded: list[str] = []

    class Refs(chain._References):
        def get(self, path: str) -> tuple[Any, Any]:
            loaded.append(path)
            return ("model", "tok")

    earlier = SimpleNamespace(stages=[ReferenceStage(strategy="retrain")], model=SimpleNamespace(source="builtin:x"))
    step = SimpleNamespace(op=SimpleNamespace(stages=[ReferenceStage(strategy="holdout")]))
    earlier_run = SimpleNamespace(detail=lambda stage: {"strategy": "retrain", "path": "/cache/r"},
                                  dir=tmp_path / "first")
    plan = SimpleNamespace(seed=3)
    main = FakeDist(is_main=True)
    basis = chain._basis(plan, step, None, earlier, earlier_run, ["t1", "t2"], Refs(False, main))  # type: ignore[arg-type]
    assert retrained == [["t1", "t2"]] and main.sent == [("/cache/r", None)]
    helper = Helper(main.sent)
    twin = chain._basis(plan, step, None, earlier, earlier_run, ["t1", "t2"], Refs(False, helper))  # type: ignore[arg-type]
    assert retrained == [["t1", "t2"]]  # the helper retrained nothing
    assert loaded == ["/cache/r", "/cache/r"] and twin == basis


# -- two processes, launched -------------------------------------------------------------------------------------


STEPS = (("first", "Jane Doe", "data/jane-doe.jsonl", "grad_ascent { steps 2 }"),
         ("second", "Barnaby Caldrow", "data/people/barnaby-caldrow.jsonl", "grad_ascent { steps 2 }"))
"""Two requests on the built-in, two training steps each: a removal goal, so each step's reference is the built-in
retrained without every target so far (the first request's re-check reuses the second step's)."""


@pytest.fixture(scope="module")
def chain_runs(builtin_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The chain's folder with one uninterrupted run on one process (``one``) and one on two (``two``)."""
    d = tmp_path_factory.mktemp("chain")
    (d / "data" / "people").mkdir(parents=True)
    for name in ("jane-doe.jsonl", "retain.jsonl", "holdout.jsonl", "people/barnaby-caldrow.jsonl"):
        shutil.copy(SPECS / "data" / name, d / "data" / name)
    (d / "chain.unlearn").write_text(chain_spec(STEPS, model="builtin:tiny-bios", holdout="data/holdout.jsonl"),
                                     encoding="utf-8")
    done = cli("plan", "chain.unlearn", "-o", "plan.json", "--quiet", cwd=d)
    assert done.returncode == 0, done.stderr
    assert [len(c["links"]) for c in json.loads((d / "plan.json").read_text())["chains"]] == [2]
    one = cli("run", "plan.json", "--out", "one", "--quiet", "--no-ledger", cwd=d, env={"UNLEARNSPEC_THREADS": "1"})
    assert one.returncode in (0, 1, 3), one.stderr[-3000:]
    two = _launch(d, "run", "plan.json", "--out", "two", "--quiet", "--no-ledger", timeout=900)
    assert "UL712" not in two.stderr
    assert (d / "two" / "report.json").is_file(), two.stderr[-3000:]
    return d


def _close(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return math.isclose(a, b, rel_tol=0.0, abs_tol=TOLERANCE) or (math.isnan(a) and math.isnan(b))


def _checks(checks: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [(c["check_id"], c["passed"], c["decided_on"], c["not_evaluated_reason"]) for c in checks]


def _same_values(c1: dict[str, Any], c2: dict[str, Any]) -> bool:
    """Each model's value of a check, and each item's, within :data:`TOLERANCE`."""
    if c1["values"].keys() != c2["values"].keys() or not all(_close(v, c2["values"][k]) for k, v in c1["values"].items()):
        return False
    items1, items2 = c1.get("per_item") or {}, c2.get("per_item") or {}
    return items1.keys() == items2.keys() and all(
        len(v) == len(items2[k]) and all(_close(a, b) for a, b in zip(v, items2[k], strict=True))
        for k, v in items1.items())


def _assert_same_report(r1: dict[str, Any], r2: dict[str, Any]) -> None:
    """The verdicts, every check's status and value, the chain's steps, re-checks and budget: the same, values within
    :data:`TOLERANCE`."""
    assert r2["exit_code"] == r1["exit_code"]
    assert [o["name"] for o in r1["objectives"]] == [o["name"] for o in r2["objectives"]]
    for o1, o2 in zip(r1["objectives"], r2["objectives"], strict=True):
        assert o1["overall"] == o2["overall"], o1["name"]
        assert [(c["claim"], c["verdict"]) for c in o1["claims"]] == [(c["claim"], c["verdict"]) for c in o2["claims"]]
        assert _checks(o1["checks"]) == _checks(o2["checks"]), o1["name"]
        for c1, c2 in zip(o1["checks"], o2["checks"], strict=True):
            assert _same_values(c1, c2), (o1["name"], c1["check_id"], c1["values"], c2["values"])
    (k1,), (k2,) = r1["chains"], r2["chains"]
    for key in ("links", "budget_exceeded", "budget_undecided", "budget_reasons", "recommendation"):
        assert k1[key] == k2[key], key
    for s1, s2 in zip(k1["steps"], k2["steps"], strict=True):
        assert (s1["request"], s1["overall"], s1["utility_set"]) == (s2["request"], s2["overall"], s2["utility_set"])
        assert _close(s1["utility_drop"], s2["utility_drop"]), s1["request"]
        assert [rc["request"] for rc in s1["rechecks"]] == [rc["request"] for rc in s2["rechecks"]]
        for rc1, rc2 in zip(s1["rechecks"], s2["rechecks"], strict=True):
            assert rc1["claims"] == rc2["claims"], (s1["request"], rc1["request"])
            for c1, c2 in zip(rc1["checks"], rc2["checks"], strict=True):
                assert (c1["check_id"], c1["status_then"], c1["status_now"]) == \
                    (c2["check_id"], c2["status_then"], c2["status_now"])
                assert _close(c1["then"], c2["then"]) and _close(c1["now"], c2["now"]), (rc1["request"], c1)


@pytest.mark.slow
def test_a_chain_of_two_requests_on_two_processes_gives_the_one_process_report(chain_runs: Path) -> None:
    r1, r2 = (json.loads((chain_runs / name / "report.json").read_text()) for name in ("one", "two"))
    assert (r1["audit"]["process_count"], r2["audit"]["process_count"]) == (1, 2)
    assert [[rc["request"] for rc in s["rechecks"]] for s in r2["chains"][0]["steps"]] == [[], ["first"]]
    _assert_same_report(r1, r2)
    # the second step unlearned from the model the first saved, on every rank (one model, one hash) ...
    state = json.loads((chain_runs / "two" / "run.json").read_text())
    first_sha = state["stages"]["first/unlearn"]["detail"]["model_sha256"]
    assert state["stages"]["second/chain"]["detail"]["started_from"] == first_sha
    # ... and the re-check of the first request is on disk, written once, with what it was computed on
    drift = json.loads((chain_runs / "two" / "objectives" / "second" / "drift" / "first.json").read_text())
    assert drift["basis"]["model_sha256"] == state["stages"]["second/unlearn"]["detail"]["model_sha256"]


@pytest.mark.slow
def test_a_two_process_chain_stopped_after_its_first_step_resumes_to_the_same_report(chain_runs: Path) -> None:
    """The two-process run as a kill after the first step leaves it: the first request's stages done, nothing of the
    second (its folder, its stages, its record of the model it starts from), no report. Resumed as two processes,
    the first step is read back, not redone, and the report is the uninterrupted run's."""
    d = chain_runs
    shutil.copytree(d / "two", d / "killed", ignore=shutil.ignore_patterns("report.*"))
    shutil.rmtree(d / "killed" / "objectives" / "second")
    state = json.loads((d / "killed" / "run.json").read_text())
    state["stages"] = {k: v for k, v in state["stages"].items() if not k.startswith("second/")}
    state["finished_at"] = None
    (d / "killed" / "run.json").write_text(json.dumps(state), encoding="utf-8")
    first_model = d / "killed" / "objectives" / "first" / "unlearn" / "model" / "model.safetensors"
    before = first_model.stat().st_mtime_ns
    again = _launch(d, "run", "--resume", "killed", "--quiet", timeout=900)
    assert (d / "killed" / "report.json").is_file(), again.stderr[-3000:]
    assert first_model.stat().st_mtime_ns == before  # the first step's model was read back, not made again
    r2, resumed = (json.loads((d / name / "report.json").read_text()) for name in ("two", "killed"))
    _assert_same_report(r2, resumed)
    _assert_same_report(json.loads((d / "one" / "report.json").read_text()), resumed)


@pytest.mark.slow
def test_a_refused_resume_of_a_two_process_chain_ends_every_rank_with_its_code(chain_runs: Path) -> None:
    """UL714 is found by the main process alone (its run.json records what the second step started from): every
    rank stops with it, the helper too, on its own line, instead of waiting for the main process in a broadcast."""
    d = chain_runs
    shutil.copytree(d / "two", d / "changed", ignore=shutil.ignore_patterns("report.*"))
    state = json.loads((d / "changed" / "run.json").read_text())
    state["stages"]["second/chain"]["detail"]["started_from"] = "0" * 64  # another model than the first step saved
    state["finished_at"] = None
    (d / "changed" / "run.json").write_text(json.dumps(state), encoding="utf-8")
    refused = _launch(d, "run", "--resume", "changed", "--quiet", timeout=600)
    assert refused.returncode != 0
    assert "error[UL714]" in refused.stderr and "[rank 1] error[UL714]" in refused.stderr, refused.stderr[-3000:]
    assert not (d / "changed" / "report.json").exists()
