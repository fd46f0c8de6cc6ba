"""End-to-end runtime tests: `unlearnspec run` as a user runs it (a subprocess), on builtin:tiny-bios.

Expensive runs are shared through fixtures: one run of the example privacy spec (module-scoped), one
uninterrupted run of a small plan (refusal tuning, 30 fixed steps, one claim; session-scoped, in
conftest.py) that the determinism, resume, multi-process and fault-injection tests compare with.
"""

from __future__ import annotations

import hashlib
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
from fixtures.runs import SMALL_SPEC, cli  # noqa: F401 - SMALL_SPEC: the objective `small`/`small_run` run

ROOT = Path(__file__).resolve().parents[1]
SPECS = ROOT / "specs"

def tree_hash(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def check_values(run_dir: Path) -> dict[str, Any]:
    report = json.loads((run_dir / "report.json").read_text())
    return {c["check_id"]: (c["values"], c["per_item"]) for o in report["objectives"] for c in o["checks"]}


def assert_close(a: Any, b: Any, tol: float = 1e-6) -> None:
    if isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys()
        for k in a:
            assert_close(a[k], b[k], tol)
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            assert_close(x, y, tol)
    elif isinstance(a, float) and isinstance(b, float):
        assert abs(a - b) <= tol, (a, b)
    else:
        assert a == b


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory, builtin_model_dir: Path) -> dict[str, Any]:
    """The README demo: one run of the example privacy spec, shared by the assertions below."""
    before = tree_hash(builtin_model_dir)
    out = tmp_path_factory.mktemp("demo") / "run"
    done = cli("run", str(SPECS / "erase-jane-doe.unlearn"), "--out", str(out), "--quiet")
    return {"done": done, "out": out, "before": before, "after": tree_hash(builtin_model_dir)}


# -- the example privacy spec ------------------------------------------------------------------------


@pytest.mark.slow
def test_demo_reports(demo: dict[str, Any]) -> None:
    from unlearnspec.report.model import Report

    out: Path = demo["out"]
    report = Report.model_validate_json((out / "report.json").read_text())
    assert demo["done"].returncode == report.exit_code, demo["done"].stderr
    assert (out / "report.md").read_text().strip()
    html = (out / "report.html").read_text()
    assert "<svg" in html
    assert not re.search(r"""(src|href)\s*=\s*["']https?://""", html), "the HTML must work offline"
    assert report.audit.process_count == 1
    # which data each role read, counted again here from the files and the plan's holdout split
    from unlearnspec.records import read_records

    plan = json.loads((out / "plan.json").read_text())["objectives"][0]["data"]
    used = {d.role: d for d in report.objectives[0].data}
    assert set(used) == {role for role in ("forget", "retain", "neighbors", "holdout", "test") if plan[role]}
    for role, d in used.items():
        assert d.sources == plan[role]
        if role != "holdout":
            assert d.records == sum(len(read_records(SPECS / p)) for p in plan[role])
    holdout = used["holdout"]
    assert holdout.calibration == len(plan["holdout_calibration"]) and holdout.calibration_stops_training
    assert holdout.evaluation == len(plan["holdout_evaluation"])
    assert holdout.records == len(plan["holdout_calibration"]) + len(plan["holdout_evaluation"])


@pytest.mark.slow
def test_demo_measured_against_retrained_reference(demo: dict[str, Any]) -> None:
    report = json.loads((demo["out"] / "report.json").read_text())
    obj = report["objectives"][0]
    assert obj["reference"] == "retrain"
    checks = {c["metric"]: c for c in obj["checks"]}
    for metric in ("membership_auc", "relearn_recovery"):
        assert checks[metric]["values"]["reference"] is not None, metric
        assert checks[metric]["not_evaluated_reason"] is None
    fq = checks["forget_quality"]  # a KS test *against* the reference's per-item statistics
    assert fq["not_evaluated_reason"] is None and fq["values"]["unlearned"] is not None
    assert "reference" in fq["extra"]["compared_with"]
    drop = checks["retain_utility_drop"]
    assert drop["values"]["unlearned"] is not None
    assert drop["threshold"] == {"op": "<=", "value": 2.0}  # `utility drop <= 2%`
    assert drop["passed"] is not None  # within tolerance or flagged


@pytest.mark.slow
def test_demo_never_touches_the_source_model(demo: dict[str, Any]) -> None:
    assert demo["before"] == demo["after"]


def _exact_answer_rate(model: Any, tok: Any, path: Path) -> float:
    import torch

    from unlearnspec.records import format_prompt, read_records

    recs = [r for r in read_records(path) if r.question and r.answer]
    assert recs
    hits = 0
    for r in recs:
        enc = tok(format_prompt(r.question), return_tensors="pt")
        with torch.no_grad():
            out = model.generate(**enc, max_new_tokens=32, do_sample=False,
                                 pad_token_id=tok.pad_token_id or tok.eos_token_id)
        text = tok.decode(out[0, enc["input_ids"].shape[1]:], skip_special_tokens=True)
        hits += text.strip().startswith(str(r.answer).strip())
    return hits / len(recs)


@pytest.mark.slow
def test_demo_forgets_jane_doe_but_keeps_retain_people(demo: dict[str, Any], one_thread: None) -> None:
    from unlearnspec.runtime.loading import load_model

    model_dir = demo["out"] / "objectives" / "erase-jane-doe" / "unlearn" / "model"
    model, tok = load_model(str(model_dir))
    forget_rate = _exact_answer_rate(model, tok, SPECS / "data" / "jane-doe.jsonl")
    retain_rate = _exact_answer_rate(model, tok, SPECS / "data" / "retain.jsonl")
    # Measured on the matched-holdout corpus (2026-11-30): Jane Doe 0.0, retain people 0.66 (the original
    # model: 1.0 and 1.0). NPO at the plan's defaults forgets her and costs the others a third of their exact
    # answers (the report's retain utility drop, 10.5%, is the same damage), which the spec's 2% tolerance fails.
    assert forget_rate <= 0.1
    assert retain_rate >= 0.5
    assert retain_rate - forget_rate >= 0.5


# -- refusing to run -------------------------------------------------------------------------------


def test_stale_plan_is_refused(small: Path, tmp_path: Path) -> None:
    d = tmp_path / "s"
    shutil.copytree(small, d, ignore=shutil.ignore_patterns("run-*"))
    with (d / "data" / "retain.jsonl").open("a") as f:
        f.write(json.dumps({"text": "A new record appended after planning."}) + "\n")
    done = cli("run", "plan.json", "--out", "r", cwd=d)
    assert done.returncode == 2
    assert "UL702" in done.stderr and "retain.jsonl" in done.stderr
    assert not (d / "r").exists()


def test_edited_plan_is_refused(small: Path, tmp_path: Path) -> None:
    d = tmp_path / "s"
    shutil.copytree(small, d, ignore=shutil.ignore_patterns("run-*"))
    plan = json.loads((d / "plan.json").read_text())
    for s in plan["objectives"][0]["stages"]:
        if s["kind"] == "unlearn":
            s["max_steps"] = 1
    (d / "plan.json").write_text(json.dumps(plan))
    done = cli("run", "plan.json", "--out", "r", cwd=d)
    assert done.returncode == 2 and "UL702" in done.stderr
    assert not (d / "r").exists()


def test_run_dir_is_never_overwritten(small: Path, tmp_path: Path) -> None:
    out = tmp_path / "busy"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    done = cli("run", "plan.json", "--out", str(out), cwd=small)
    assert done.returncode == 2 and "UL707" in done.stderr
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


# -- determinism and resume -------------------------------------------------------------------------


@pytest.mark.slow
def test_same_plan_twice_same_numbers(small: Path, small_run: Path) -> None:
    done = cli("run", "plan.json", "--out", "run-b", "--quiet", cwd=small)
    assert done.returncode in (0, 1, 3), done.stderr
    assert check_values(small / "run-b") == check_values(small_run)


@pytest.mark.slow
def test_a_repeated_forget_record_is_one_item_of_the_evidence(small: Path, small_run: Path, tmp_path: Path) -> None:
    """The forget set given twice over (UL222 warns) trains on both copies but is evaluated on each record once: every
    check counts the same items, with the same ids, as the run on the set given once, and the report says how many
    different records the set held."""
    d = tmp_path / "twice"
    shutil.copytree(small, d, ignore=shutil.ignore_patterns("run-*"))
    forget = d / "data" / "jane-doe.jsonl"
    once = forget.read_text()
    forget.write_text(once + once)
    warned = cli("check", "small.unlearn", cwd=d)
    assert warned.returncode == 0 and "UL222" in warned.stdout + warned.stderr, warned.stderr
    done = cli("plan", "small.unlearn", "-o", "plan.json", "--quiet", cwd=d)
    assert done.returncode == 0, done.stderr
    done = cli("run", "plan.json", "--out", "r", "--quiet", cwd=d)
    assert done.returncode in (0, 1, 3), done.stderr
    report = json.loads((d / "r" / "report.json").read_text())
    given = len(once.splitlines())
    (row,) = [u for u in report["objectives"][0]["data"] if u["role"] == "forget"]
    assert (row["records"], row["distinct"]) == (2 * given, given)
    assert f"{2 * given} records, {given} different" in (d / "r" / "report.md").read_text()
    base = json.loads((small_run / "report.json").read_text())
    counted = {c["check_id"]: (c["item_ids"], c["n"]) for c in report["objectives"][0]["checks"]}
    assert counted == {c["check_id"]: (c["item_ids"], c["n"]) for c in base["objectives"][0]["checks"]}
    assert any(n for _, n in counted.values())


def _folder_digest(folder: Path) -> str:
    """The content hash docs/reports.md describes, computed here from the files: each file's path under the
    folder and the sha256 of its bytes, in sorted order."""
    h = hashlib.sha256()
    for path, digest in sorted(tree_hash(folder).items()):
        h.update(Path(path).as_posix().encode() + b"\0" + bytes.fromhex(digest))
    return h.hexdigest()


def test_the_report_pins_the_models_it_is_about(small_run: Path, builtin_model_dir: Path) -> None:
    report = json.loads((small_run / "report.json").read_text())
    models = {m["role"]: m for m in report["objectives"][0]["models"]}
    assert models["original"]["path"] == "builtin:tiny-bios"
    assert models["original"]["sha256"] == _folder_digest(builtin_model_dir)  # the weights, not the recipe's hash
    assert models["original"]["sha256"] != report["audit"]["model_sha256"]
    unlearned = models["unlearned"]
    assert unlearned["path"] == "objectives/small/unlearn/model"
    assert unlearned["sha256"] == _folder_digest(small_run / unlearned["path"])
    assert unlearned["sha256"] != models["original"]["sha256"]
    md = (small_run / "report.md").read_text()
    assert f"| `small` | unlearned | objectives/small/unlearn/model | `{unlearned['sha256']}` |" in md
    assert unlearned["sha256"] in (small_run / "report.html").read_text()


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_numbers(small: Path, small_run: Path) -> None:
    out = small / "run-killed"
    proc = subprocess.Popen([sys.executable, "-m", "unlearnspec", "run", "plan.json", "--out", str(out), "--quiet"],
                            cwd=small, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    marker = out / "objectives" / "small" / "unlearn" / "checkpoints" / "checkpoint-10" / "trainer_state.json"
    deadline = time.monotonic() + 300
    while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be killed mid-training"
    assert marker.exists()
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    state = json.loads((out / "run.json").read_text())
    assert state["stages"]["small/unlearn"]["status"] == "running"
    assert not (out / "report.json").exists()
    done = cli("run", "--resume", str(out), "--quiet", cwd=small)
    assert done.returncode in (0, 1, 3), done.stderr
    state = json.loads((out / "run.json").read_text())
    assert state["resumed"] == 1 and state["finished_at"]
    assert_close(check_values(out), check_values(small_run))


# -- infeasible objectives and multi-process launches --------------------------------------------------


@pytest.mark.slow
def test_infeasible_concept_removal_keeps_cannot_be_met(tmp_path: Path, builtin_model_dir: Path) -> None:
    done = cli("run", str(SPECS / "captain-vale-removal.unlearn"), "--allow-infeasible", "--out", str(tmp_path / "r"),
               "--quiet")
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert done.returncode == report["exit_code"] == 1, done.stderr
    claims = {c["claim"]: c for c in report["objectives"][0]["claims"]}
    for name in ("removed", "not_generated"):
        assert claims[name]["verdict"] == "cannot_be_met"
    measured = [c for c in report["objectives"][0]["checks"] if c["not_evaluated_reason"] is None]
    assert measured, "what is measurable is still measured"


@pytest.mark.slow
def test_accelerate_launch_two_cpu_processes(small: Path, small_run: Path) -> None:
    accelerate = Path(sys.executable).with_name("accelerate")
    out = small / "run-ddp"
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run([str(accelerate), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
                           "--mixed_precision", "no", "--dynamo_backend", "no",
                           "-m", "unlearnspec", "run", "plan.json", "--out", str(out), "--quiet"],
                          cwd=small, env=env, capture_output=True, text=True, timeout=600)
    report = json.loads((out / "report.json").read_text())
    # accelerate's launcher keeps only success or failure of rank 0 (a failed verdict, 1, and an incomplete one,
    # 3, both exit 1; docs/running.md): the verdict is report.json's, and a crash would have written none
    assert (done.returncode == 0) == (report["exit_code"] == 0), done.stderr[-3000:]
    assert done.returncode in (0, 1), done.stderr[-3000:]
    assert report["audit"]["process_count"] == 2
    state = json.loads((out / "run.json").read_text())
    assert state["stages"]["small/unlearn"]["detail"]["steps"] == 30
    assert state["finished_at"]
    assert check_values(out).keys() == check_values(small_run).keys()


# -- a model from a local Hugging Face folder ---------------------------------------------------------

LOCAL_SPEC = """unlearnspec 1

objective "local-jane" {
  title  "Erase Jane Doe from a model in a local folder"
  basis  "test"
  owner  "tests"

  model   "model"
  release api precision fp32

  target person "Jane Doe" {
    kind      observed
    forget    "data/jane-doe.jsonl"
    holdout   "data/holdout.jsonl"
    attribute birth_city
  }

  goal   removal
  method npo

  preserve {
    retain    "data/retain.jsonl"
    neighbors "data/neighbors.jsonl"
    utility   drop <= 10%
  }

  claims {
    removed
    not_generated
  }

  accept UL405 "test"
}
"""


@pytest.mark.slow
def test_a_local_folder_model_runs_holdout_calibrated(tmp_path: Path, builtin_model_dir: Path) -> None:
    """Not the builtin: no recipe to retrain, so no reference model; the plan says what that costs."""
    model = tmp_path / "model"
    shutil.copytree(builtin_model_dir, model)
    for marker in model.glob("unlearnspec-builtin*.json"):
        marker.unlink()  # a plain Hugging Face folder now
    shutil.copytree(SPECS / "data", tmp_path / "data")
    (tmp_path / "local.unlearn").write_text(LOCAL_SPEC)
    before = tree_hash(model)
    checked = cli("check", "local.unlearn", cwd=tmp_path)
    assert checked.returncode == 0 and "warning[UL410]" in checked.stdout  # the probe needs a reference
    done = cli("run", "local.unlearn", "--out", "run", "--quiet", cwd=tmp_path)
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert done.returncode == report["exit_code"] == 1, done.stderr[-2000:]
    obj = report["objectives"][0]
    assert obj["reference"] == "holdout"
    checks = {c["metric"]: c for c in obj["checks"]}
    assert "holdout" in checks["forget_quality"]["extra"]["compared_with"]
    assert checks["forget_quality"]["values"]["unlearned"] is not None
    assert "no retrained reference" in checks["probe_accuracy_gap"]["not_evaluated_reason"]
    claims = {c["claim"]: c for c in obj["claims"]}
    # the probe cannot be computed (UL410), so `removed` can never pass; a check measured against the holdout
    # that fails decides it as failed, else it stays not evaluated
    removed = claims["removed"]
    assert "UL410" in removed["findings"]
    failed = [c for c in obj["checks"] if c["check_id"] in removed["checks"] and c["passed"] is False]
    assert removed["verdict"] == ("fail" if failed else "not_evaluated")
    assert tree_hash(model) == before  # the source folder is only read
