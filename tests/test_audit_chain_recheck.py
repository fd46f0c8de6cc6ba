"""The run's re-check of an earlier request (runtime/chain.py): each check's row carries what decided it then (the
earlier request's report) and now (computed again on the later model), not only the decided model's raw value.
Read from a step's saved drift results, as a resumed run reads them, so no model is loaded."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

from test_report import make_plan, passing_results, result

from unlearnspec.plan import Threshold
from unlearnspec.report import build_objective_report
from unlearnspec.report.model import Decision
from unlearnspec.runtime.chain import _recheck
from unlearnspec.runtime.rundir import safe_name


def test_a_recheck_carries_the_deciding_quantity_then_and_now(tmp_path: Path) -> None:
    op = make_plan().objectives[0]
    earlier = build_objective_report(op, passing_results())  # membership decided on the AUC itself, no decision
    now = passing_results()
    gap = Decision(quantity="worst |AUC − AUC_reference|", value=0.356, interval=(0.108, 0.6), n=20,
                   threshold=Threshold(op="<=", value=0.1))
    now["membership_auc@forget"] = result("membership_auc@forget", "membership_auc", "<=", 0.60, unlearned=0.124,
                                          reference=0.48, interval={"unlearned": (0.03, 0.23)}, n={"unlearned": 20},
                                          decision=gap)
    drift = tmp_path / "drift" / f"{safe_name(op.objective.name)}.json"
    drift.parent.mkdir()
    drift.write_text(json.dumps({k: v.model_dump(mode="json") for k, v in now.items()}), encoding="utf-8")
    step = SimpleNamespace(op=op, dir=tmp_path)

    recheck = _recheck(step, op, None, earlier, None, None)  # type: ignore[arg-type]

    row = next(c for c in recheck.checks if c.check_id == "membership_auc@forget")
    assert (row.status_then, row.status_now) == ("pass", "fail")
    assert row.deciding_now is not None and row.deciding_now.quantity == gap.quantity
    assert (row.deciding_now.value, row.deciding_now.interval, row.deciding_now.n) == (gap.value, gap.interval, gap.n)
    assert row.deciding_now.threshold == gap.threshold
    then = next(c for c in earlier.checks if c.check_id == "membership_auc@forget")
    assert row.deciding_then is not None and row.deciding_then.quantity is None  # decided on the model's own value
    assert (row.deciding_then.model, row.deciding_then.value, row.deciding_then.threshold) == (
        then.decided_on, then.value, then.threshold)
    assert [c.now for c in recheck.claims if c.claim == "removed"] == ["fail"]
