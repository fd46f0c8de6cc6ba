"""The plan's cost estimate counts the work the runtime does: the quantization attack quantizes the original and the
reference alike with the unlearned model, relearning fine-tunes the unlearned model and the reference and scores each
before and after (the damage check), checks at the release precision evaluate the quantized models again, and the
representation probe fits a probe per layer for every evaluated model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from unlearnspec.catalog.metrics import REPRESENTATION_LAYERS
from unlearnspec.compiler.check import plan_file
from unlearnspec.compiler.estimate import _Workload, estimate, workload
from unlearnspec.plan import (
    AttackStage,
    EvaluateStage,
    MetricCheck,
    ObjectivePlan,
    QuantizeAttack,
    ReferenceStage,
    RelearnAttack,
)

SPECS = Path(__file__).resolve().parents[1] / "specs"
SPEC = SPECS / "open-weights-person.unlearn"


def _lines(name: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in (SPECS / "data" / name).read_text(encoding="utf-8").splitlines() if line]


FORGET_QUESTIONS = sum(bool(r.get("question")) for r in _lines("jane-doe.jsonl"))


@pytest.fixture(scope="module")
def op() -> ObjectivePlan:
    plan, result = plan_file(SPEC)
    assert plan is not None, result.diagnostics
    return plan.objectives[0]


def _with(op: ObjectivePlan, attacks: list[RelearnAttack | QuantizeAttack], checks: list[MetricCheck] | None = None,
          strategy: str | None = None) -> ObjectivePlan:
    """``op`` with these attacks (and only these attacked checks, when given), optionally another reference."""
    stages = [s.model_copy(update={"attacks": attacks}) if isinstance(s, AttackStage) else
              s.model_copy(update={"strategy": strategy}) if isinstance(s, ReferenceStage) and strategy else s
              for s in op.stages]
    if strategy == "holdout":
        stages = [s.model_copy(update={"models": ["original", "unlearned"]}) if isinstance(s, EvaluateStage) else s
                  for s in stages]
    kept = [c for c in op.checks if c.model != "attacked"] + list(checks or [])
    return op.model_copy(update={"stages": stages, "checks": kept})


def _work(op: ObjectivePlan) -> _Workload:
    return workload(op, SPEC.parent)[1]


def test_the_spec_has_questions_to_ask() -> None:
    assert FORGET_QUESTIONS > 0


def test_quantization_quantizes_the_original_and_the_reference_alike(op: ObjectivePlan) -> None:
    bare = _work(_with(op, []))
    q = _work(_with(op, [QuantizeAttack(precision="int8")]))
    # three quantized copies (original, unlearned, reference), each asked every forget question
    assert q.loads - bare.loads == 3
    assert sorted(q.generate) == sorted(bare.generate + [FORGET_QUESTIONS] * 3)
    both = _work(_with(op, [QuantizeAttack(precision="int8"), QuantizeAttack(precision="int4")]))
    assert both.loads - bare.loads == 6  # int8 and int4 (a bf16 release's A6): each model at each precision
    holdout = _work(_with(op, [QuantizeAttack(precision="int8")], strategy="holdout"))
    holdout_bare = _work(_with(op, [], strategy="holdout"))
    assert holdout.loads - holdout_bare.loads == 2  # no reference to quantize


def test_relearning_fine_tunes_the_unlearned_model_and_the_reference_and_checks_the_damage(op: ObjectivePlan) -> None:
    attack = RelearnAttack(steps=30, batch_size=4, learning_rate=3e-4)
    bare = _work(_with(op, []))
    r = _work(_with(op, [attack]))
    new = [t for t in r.train if t not in bare.train]
    assert [(s, b) for s, b, _, _ in new] == [(30, 4), (30, 4)]  # the unlearned model and the reference
    # the damage check: the records fine-tuned on and a retain sample, each scored before and after, per model
    assert len(r.forward) - len(bare.forward) == 2 * 4
    assert sorted(r.generate) == sorted(bare.generate + [FORGET_QUESTIONS] * 2)
    holdout = _work(_with(op, [attack], strategy="holdout"))
    assert len(holdout.train) - len(_work(_with(op, [], strategy="holdout")).train) == 1


def test_checks_at_the_release_precision_evaluate_the_quantized_models_again(op: ObjectivePlan) -> None:
    at_release = MetricCheck(id="knowledge_rouge@forget@quantize_int4", metric="knowledge_rouge", dataset="forget",
                             probe="quantize", model="attacked", params={"precision": "int4", "probe": "direct"})
    bare = _work(_with(op, []))
    rel = _work(_with(op, [], [at_release]))
    # the quantized unlearned model and the quantized reference, each evaluated as an evaluated model is
    evaluated = len(next(s for s in op.stages if isinstance(s, EvaluateStage)).models)
    assert rel.loads - bare.loads == 2
    assert len(rel.generate) - len(bare.generate) == 2 * (len(bare.generate) // evaluated)
    assert len(rel.fits) - len(bare.fits) == 2 * REPRESENTATION_LAYERS


def test_the_representation_probe_fits_a_probe_per_layer_for_every_model(op: ObjectivePlan) -> None:
    ev = next(s for s in op.stages if isinstance(s, EvaluateStage))
    assert ev.representation_probe
    bare = _work(_with(op, []))
    assert len(bare.fits) == REPRESENTATION_LAYERS * len(ev.models) and all(f > 0 for f in bare.fits)
    without = _with(op, []).model_copy(update={"stages": [
        s.model_copy(update={"representation_probe": None}) if isinstance(s, EvaluateStage) else s
        for s in _with(op, []).stages]})
    assert _work(without).fits == []


def test_more_work_takes_longer(op: ObjectivePlan) -> None:
    bare = estimate(_with(op, []), None, SPEC.parent)  # type: ignore[arg-type]
    attacked = estimate(_with(op, [RelearnAttack(steps=30), QuantizeAttack(precision="int4")]), None,  # type: ignore[arg-type]
                        SPEC.parent)
    assert bare is not None and attacked is not None
    assert attacked.cpu_seconds > bare.cpu_seconds and attacked.gpu_seconds > bare.gpu_seconds
    assert "reference alike" in attacked.basis and "reference alike" not in bare.basis
