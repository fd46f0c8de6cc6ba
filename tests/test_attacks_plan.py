"""The attacks a plan asks for: the relearning learning rate follows the model's size, and quantization is tested
where anyone holding the weights can take them (8 and 4 bits), not only at the release precision."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from unlearnspec.catalog.attacks import RELEARN_LEARNING_RATES, relearn_learning_rate
from unlearnspec.catalog.vocab import PRECISIONS
from unlearnspec.compiler.check import plan_file
from unlearnspec.compiler.models import builtin_parameters
from unlearnspec.plan import AttackStage, ObjectivePlan, QuantizeAttack, RelearnAttack

ROOT = Path(__file__).resolve().parents[1]
SPECS = ROOT / "specs"
OPEN = SPECS / "open-weights-person.unlearn"


def _plan(tmp: Path, release: str, *, quantization_claim: bool = True) -> ObjectivePlan:
    """open-weights-person.unlearn with another ``release`` line, with or without `robust_to_quantization`."""
    if not (tmp / "data").exists():
        shutil.copytree(SPECS / "data", tmp / "data")
    text = OPEN.read_text(encoding="utf-8").replace("release open_weights precision int4", release)
    assert release in text
    if not quantization_claim:
        text = text.replace("    robust_to_quantization\n", "").replace("    quantization_recovery <= 0.25\n", "")
    spec = tmp / "spec.unlearn"
    spec.write_text(text, encoding="utf-8")
    plan, result = plan_file(spec)
    if plan is None:
        plan, result = plan_file(spec, allow_infeasible=True)
    assert plan is not None, [d.message for d in result.diagnostics]
    return plan.objectives[0]


def _attacks(op: ObjectivePlan) -> list[RelearnAttack | QuantizeAttack]:
    return next(s for s in op.stages if isinstance(s, AttackStage)).attacks


def _quantization_checks(op: ObjectivePlan) -> dict[str, bool]:
    """{precision: deciding (has a threshold)} of the plan's quantization-recovery checks."""
    return {str(c.params["precision"]): c.threshold is not None for c in op.checks
            if c.metric == "quantization_recovery"}


def test_the_relearning_rate_falls_with_model_size() -> None:
    sizes = [10**k for k in range(5, 13)]
    rates = [relearn_learning_rate(n) for n in sizes]
    assert rates == sorted(rates, reverse=True) and rates[0] > rates[-1]
    # TOFU and MUSE fine-tune 7B models at 1e-5: the attacker fine-tunes one as it was fine-tuned
    assert relearn_learning_rate(7_000_000_000) == pytest.approx(1e-5)
    assert all(relearn_learning_rate(most) == lr for most, lr in RELEARN_LEARNING_RATES)
    # a model of unknown size (a hub id) is not attacked at a small model's rate
    assert relearn_learning_rate(None) <= relearn_learning_rate(200_000_000)


def test_the_plan_relearns_at_the_rate_for_its_model(tmp_path: Path) -> None:
    op = _plan(tmp_path, "release open_weights precision int4")
    relearns = [a for a in _attacks(op) if isinstance(a, RelearnAttack)]
    assert relearns and {a.data for a in relearns} == {"forget_subset", "related"}
    # the built-in model's size, read as the compiler reads it; 1e-3 (the old fixed rate) damaged it
    want = relearn_learning_rate(builtin_parameters())
    assert all(a.learning_rate == want for a in relearns) and want < 1e-3


@pytest.mark.parametrize(("release", "tested"), [
    ("release open_weights precision bf16", ["bf16", "int8", "int4"]),
    ("release api precision fp32", ["int8", "int4"]),
    ("release on_device precision int8", ["int8", "int4"]),
    ("release open_weights precision int4", ["int4"]),
])
def test_robust_to_quantization_is_tested_at_four_and_eight_bits(tmp_path: Path, release: str,
                                                                 tested: list[str]) -> None:
    """A bf16 open-weights release is quantized to int4 by whoever downloads it: the claim is decided at every
    integer precision at or below the release precision too (Zhang et al. restored knowledge at 4 bits)."""
    op = _plan(tmp_path, release)
    checks = _quantization_checks(op)
    assert sorted(checks, key=PRECISIONS.index) == tested and all(checks.values())
    claim = next(c for c in op.claims if c.claim == "robust_to_quantization")
    assert {f"quantization_recovery@quantize_{p}" for p in tested} <= set(claim.checks)
    planned = [a.precision for a in _attacks(op) if isinstance(a, QuantizeAttack)]
    assert set(tested) <= set(planned) and planned == sorted(planned, key=PRECISIONS.index)


@pytest.mark.parametrize(("release", "informs"), [
    ("release open_weights precision fp32", ["int8", "int4"]),
    ("release open_weights precision bf16", ["bf16", "int8", "int4"]),
    ("release api precision bf16", ["bf16"]),  # the weights stay with the deployer: the release precision only
])
def test_weights_that_leave_are_measured_quantized_without_the_claim(tmp_path: Path, release: str,
                                                                     informs: list[str]) -> None:
    op = _plan(tmp_path, release, quantization_claim=False)
    checks = _quantization_checks(op)
    assert sorted(checks, key=PRECISIONS.index) == informs and not any(checks.values())  # information only
    planned = {a.precision for a in _attacks(op) if isinstance(a, QuantizeAttack)}
    assert set(informs) <= planned
