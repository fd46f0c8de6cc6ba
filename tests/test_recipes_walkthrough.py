"""docs/architecture.md's recipes, followed by an outsider: the places a new name must also reach outside the catalog
are exactly the ones the recipes name, and forgetting one fails here with a message that says where to add it —
not with a `KeyError` at `unlearnspec run`, a rule that silently never runs, or a new metric measured as another.

The runtime's sources are read, not imported (no torch), so these tests stay fast and still answer when the import
itself would fail on the missing entry."""

from __future__ import annotations

import ast
from pathlib import Path

from unlearnspec import catalog
from unlearnspec.compiler.feasibility import META_CODES
from unlearnspec.compiler.rules import RULES

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "unlearnspec"


def _tree(relative: str) -> ast.Module:
    return ast.parse((PKG / relative).read_text(encoding="utf-8"))


def _dict_keys(relative: str, name: str) -> set[str]:
    """The string keys of the module-level dict literal assigned to ``name``."""
    for node in _tree(relative).body:
        targets: list[ast.expr]
        if isinstance(node, ast.AnnAssign):
            targets, value = [node.target], node.value
        elif isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        else:
            continue
        if any(isinstance(t, ast.Name) and t.id == name for t in targets) and isinstance(value, ast.Dict):
            return {k.value for k in value.keys if isinstance(k, ast.Constant) and isinstance(k.value, str)}
    raise AssertionError(f"unlearnspec/{relative} has no dict literal `{name}`")


def test_every_catalog_method_has_its_trainer_entry() -> None:
    """Add a method, step 2: `TRAINERS` is built into the runtime's `METHODS` by indexing it with every catalog name,
    so a method without an entry makes `import unlearnspec.runtime.methods` (every `unlearnspec run`) raise
    `KeyError`; an entry the catalog does not have is a method the language cannot name."""
    trainers = _dict_keys("runtime/methods/__init__.py", "TRAINERS")
    missing, extra = sorted(set(catalog.METHODS) - trainers), sorted(trainers - set(catalog.METHODS))
    assert not missing, (f"add {missing} to TRAINERS in unlearnspec/runtime/methods/__init__.py "
                         "(its trainer class, or None when it trains nothing)")
    assert not extra, f"TRAINERS names {extra}, which unlearnspec/catalog/methods.py does not define"


def test_every_feasibility_page_has_a_registered_rule() -> None:
    """Add a rule: a page in the catalog whose rule is not registered (its theme module not imported by
    `compiler/rules/__init__.py`) would be explained by `unlearnspec explain` and never reported by `check`."""
    pages = {code for code, page in catalog.CODES.items() if page.category == "feasibility"}
    registered = {r.code for r in RULES}
    assert pages - registered - set(META_CODES) == set(), (
        "feasibility pages with no registered rule: register it with @rule(CODES[...]) in a module of "
        "unlearnspec/compiler/rules/ that unlearnspec/compiler/rules/__init__.py imports")
    assert registered <= pages


def test_every_output_metric_has_its_own_measurement() -> None:
    """Add a metric: within the `generation` and `tokens` families the runtime measures a metric by its name, from
    `OUTPUT_SERIES` (runtime/check_base.py: each probe's knowledge ROUGE is there by construction, catalog/probes.py)
    and `TOKEN_VALUES` (runtime/measure.py). A name in neither is reported as not measured at run time
    (`test_a_metric_the_runtime_cannot_measure_is_not_evaluated`); this says so before anyone runs it."""
    probe_metrics = {p.metric for p in catalog.PROBES.values()}
    output = _dict_keys("runtime/check_base.py", "OUTPUT_SERIES") | probe_metrics
    tokens = _dict_keys("runtime/measure.py", "TOKEN_VALUES")
    unmeasured = [f"{m.name} ({m.family})" for m in catalog.METRICS.values()
                  if (m.family == "generation" and m.name not in output)
                  or (m.family == "tokens" and m.name not in tokens)]
    assert not unmeasured, (
        f"{unmeasured}: the runtime has no measurement for these; add a `generation` metric to OUTPUT_SERIES in "
        "unlearnspec/runtime/check_base.py and a `tokens` metric to TOKEN_VALUES in unlearnspec/runtime/measure.py")


def test_a_metric_the_runtime_cannot_measure_is_not_evaluated() -> None:
    """A catalog metric the runtime has no measurement for is a check not evaluated, naming the metric: it was
    measured as knowledge ROUGE (generation) or extraction strength (tokens) under the new label."""
    import pytest

    pytest.importorskip("torch")
    from unlearnspec.plan import MetricCheck, Threshold
    from unlearnspec.runtime.check_base import EvaluatorBase

    class Bare(EvaluatorBase):  # only what the two families read before they measure anything
        def __init__(self) -> None:
            pass

    for family in (EvaluatorBase.output_metric, EvaluatorBase.token_metric):
        check = MetricCheck(id="new_metric@forget", metric="new_metric", dataset="forget",
                            threshold=Threshold(op="<=", value=0.2))
        result = family(Bare(), check)
        assert result.not_evaluated_reason is not None and "`new_metric`" in result.not_evaluated_reason
        assert "no measurement" in result.not_evaluated_reason and result.value is None
