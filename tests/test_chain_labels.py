"""What a run's report calls its retrained reference: in a chain, the recipe retrained without every target so far
(runtime/chain.py), not only without this request's forget set."""

from __future__ import annotations

from pathlib import Path

import pytest

from unlearnspec.plan import Plan, ReferenceStage
from unlearnspec.runtime import engine
from unlearnspec.runtime.pipeline import ObjectiveRun


@pytest.mark.parametrize("earlier", [[], ["Vesna Gantrell was born in Orlen."]])
def test_a_chains_retrained_reference_is_labelled_without_every_target_so_far(small_here: Path,
                                                                             earlier: list[str]) -> None:
    plan = Plan.load(small_here / "plan.json")
    op = plan.objectives[0]
    assert next(s for s in op.stages if isinstance(s, ReferenceStage)).strategy == "retrain"
    rd, state = engine._start(plan, small_here, engine.RunOptions(out=small_here / "r", no_ledger=True))
    try:
        orun = ObjectiveRun(plan, op, rd, state, quiet=True, allow_remote_code=False, exclude_texts=list(earlier))
        reference = small_here / "retrained"
        reference.mkdir()
        (reference / "config.json").write_text("{}\n", encoding="utf-8")
        orun.detail("reference").update(strategy="retrain", path=str(reference))
        (row,) = [h for h in orun._model_hashes(object()) if h.role == "reference"]
    finally:
        rd.release()
    if earlier:  # a later step of a chain: its reference leaves out the earlier requests' targets too
        assert row.path == (f"{op.model.source} retrained without every target so far (this request's forget set "
                            "and every earlier request's)")
    else:
        assert row.path == f"{op.model.source} retrained without the forget set"
