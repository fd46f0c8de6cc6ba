"""The run's re-check of an earlier request (runtime/chain.py): each check's row carries what decided it then (the
earlier request's report) and now (computed again on the later model), not only the decided model's raw value.
Read from a step's saved drift results, as a resumed run reads them, so no model is loaded; a saved file is reused
only when it was computed on what the run would compute it on now."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from test_report import make_plan, passing_results, result

from unlearnspec.plan import Threshold
from unlearnspec.report import build_objective_report
from unlearnspec.report.model import CheckResult, Decision
from unlearnspec.runtime import chain
from unlearnspec.runtime.chain import DRIFT_FORMAT, Basis, _recheck
from unlearnspec.runtime.rundir import safe_name


def basis(**kw: Any) -> Basis:
    values: dict[str, Any] = {"strategy": "holdout", "reference": None, "reference_path": None, "guard": None,
                              "guard_sha256": None, "confidence": 0.95, "seed": 0, "same_reference": True}
    return Basis(**{**values, **kw})


def dump(results: dict[str, CheckResult]) -> dict[str, Any]:
    return {k: v.model_dump(mode="json") for k, v in results.items()}


def gap_results() -> dict[str, CheckResult]:
    now = passing_results()
    gap = Decision(quantity="worst |AUC − AUC_reference|", value=0.356, interval=(0.108, 0.6), n=20,
                   threshold=Threshold(op="<=", value=0.1))
    now["membership_auc@forget"] = result("membership_auc@forget", "membership_auc", "<=", 0.60, unlearned=0.124,
                                          reference=0.48, interval={"unlearned": (0.03, 0.23)}, n={"unlearned": 20},
                                          decision=gap, confidence=0.99)
    return now


def test_a_recheck_carries_the_deciding_quantity_then_and_now(tmp_path: Path) -> None:
    op = make_plan().objectives[0]
    earlier = build_objective_report(op, passing_results())  # membership decided on the AUC itself, no decision
    now = gap_results()
    gap = now["membership_auc@forget"].decision
    assert gap is not None
    b = basis()
    drift = tmp_path / "drift" / f"{safe_name(op.objective.name)}.json"
    drift.parent.mkdir()
    drift.write_text(json.dumps({"format": DRIFT_FORMAT, "basis": b.key("m"), "results": dump(now)}), encoding="utf-8")

    recheck = _recheck(tmp_path, op, None, earlier, None, "m", b)  # type: ignore[arg-type]

    row = next(c for c in recheck.checks if c.check_id == "membership_auc@forget")
    assert (row.status_then, row.status_now) == ("pass", "fail")
    assert row.deciding_now is not None and row.deciding_now.quantity == gap.quantity
    assert (row.deciding_now.value, row.deciding_now.interval, row.deciding_now.n) == (gap.value, gap.interval, gap.n)
    assert row.deciding_now.threshold == gap.threshold
    # the level of the interval it was decided on, as the check recorded it, is shown beside the interval
    assert row.deciding_now.confidence == now["membership_auc@forget"].confidence == 0.99
    assert "[0.108, 0.6] at 99% confidence, n=20" in row.deciding_now.text
    then = next(c for c in earlier.checks if c.check_id == "membership_auc@forget")
    assert row.deciding_then is not None and row.deciding_then.quantity is None  # decided on the model's own value
    assert (row.deciding_then.model, row.deciding_then.value, row.deciding_then.threshold) == (
        then.decided_on, then.value, then.threshold)
    assert row.deciding_then.confidence is None and " confidence" not in row.deciding_then.text  # none recorded
    assert [c.now for c in recheck.claims if c.claim == "removed"] == ["fail"]
    assert recheck.same_reference is True and not recheck.reference_changed


@pytest.mark.parametrize("saved", ["format 1", "another confidence", "another output filter", "another model"])
def test_a_saved_recheck_on_another_basis_is_computed_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            saved: str) -> None:
    """A drift file written by an older unlearnspec (the results alone: computed without the earlier request's output
    filter, reference, confidence or seed), or on another basis, is not reused on resume: the re-check is computed
    again, on what the run computes it on now, and saved with it."""
    op = make_plan().objectives[0]
    earlier = build_objective_report(op, passing_results())
    b = basis(confidence=0.99, guard_sha256="ab" * 32, guard=object())
    stale = gap_results()
    body: dict[str, Any] = {
        "format 1": dump(stale),
        "another confidence": {"format": DRIFT_FORMAT, "basis": {**b.key("m"), "confidence": 0.95}, "results": dump(stale)},
        "another output filter": {"format": DRIFT_FORMAT, "basis": {**b.key("m"), "guard_sha256": None},
                                  "results": dump(stale)},
        "another model": {"format": DRIFT_FORMAT, "basis": b.key("other"), "results": dump(stale)},
    }[saved]
    drift = tmp_path / "drift" / f"{safe_name(op.objective.name)}.json"
    drift.parent.mkdir()
    drift.write_text(json.dumps(body), encoding="utf-8")
    seen: list[Any] = []

    def compute(ctx: Any) -> dict[str, CheckResult]:
        seen.append(ctx)
        return passing_results()

    monkeypatch.setattr(chain.checks, "compute", compute)
    earlier_run = type("Run", (), {"data": None, "original": (None, None), "fmt": None})()
    recheck = _recheck(tmp_path, op, earlier_run, earlier, ("model", "tok"), "m", b)  # type: ignore[arg-type]

    (ctx,) = seen
    assert (ctx.confidence, ctx.seed, ctx.guard, ctx.strategy) == (b.confidence, b.seed, b.guard, b.strategy)
    assert ctx.unlearned == ("model", "tok")
    assert all(c.now == "pass" for c in recheck.claims if c.claim == "removed")  # the new results, not the stale
    written = json.loads(drift.read_text(encoding="utf-8"))
    assert written["format"] == DRIFT_FORMAT and written["basis"] == b.key("m")
    assert written["results"] == dump(passing_results())
    # and a resume now reuses it
    seen.clear()
    _recheck(tmp_path, op, earlier_run, earlier, None, "m", b)  # type: ignore[arg-type]
    assert seen == []
