"""docs/architecture.md's recipe "add a metric", followed for real: take an existing metric
(`in_context_rouge`) out of the catalog, then add it back the way the recipe says — one entry in
catalog/metrics.py and its name in the evidence family of the claims it serves (catalog/claims.py) —
and every pass and the runtime's dispatch pick it up; no other module names it."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import pytest

from unlearnspec import catalog
from unlearnspec.catalog.metrics import Metric, Threshold
from unlearnspec.compiler.check import compile

ROOT = Path(__file__).resolve().parents[1]
SPEC = """unlearnspec 1

objective "prompting" {
  model "builtin:tiny-bios"
  release api
  target person "Jane Doe" {
    forget "data/jane-doe.jsonl"
  }
  goal removal
  scope {
    prompts direct, paraphrased
  }
  claims {
    robust_to_prompting
  }
  evidence {
    in_context_rouge <= 0.15
  }
}
"""


def test_the_metric_is_named_only_in_the_catalog() -> None:
    """No module outside the catalog holds the name as a value (prose in docstrings may mention it)."""
    hits = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "unlearnspec").rglob("*.py")
                  if any(isinstance(n, ast.Constant) and n.value == "in_context_rouge"
                         for n in ast.walk(ast.parse(p.read_text(encoding="utf-8")))))
    assert hits == ["unlearnspec/catalog/claims.py", "unlearnspec/catalog/metrics.py", "unlearnspec/catalog/probes.py"]


def test_add_a_metric_recipe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "data").symlink_to(ROOT / "specs" / "data")
    spec = tmp_path / "prompting.unlearn"
    spec.write_text(SPEC, encoding="utf-8")
    served = catalog.CLAIMS["robust_to_prompting"]

    # without the entry the word is unknown: the language and the claim do not know it
    monkeypatch.delitem(catalog.METRICS, "in_context_rouge")
    monkeypatch.setitem(catalog.CLAIMS, "robust_to_prompting", dataclasses.replace(
        served, evidence=tuple(m for m in served.evidence if m != "in_context_rouge")))
    assert "UL204" in {d.code for d in compile(spec, "resolve").diagnostics}

    # the recipe: one catalog entry, and the claim's evidence family
    monkeypatch.setitem(catalog.METRICS, "in_context_rouge", Metric(
        "in_context_rouge", "knowledge ROUGE with the target's facts placed in the prompt", "in-context ROUGE-L",
        0.0, 1.0, "lower", Threshold("<=", 0.20, "same bound as knowledge_rouge, with the facts in the prompt"),
        "generation", needs=("qa",), probe="in_context", source="Shumailov et al., arXiv:2407.00106"))
    monkeypatch.setitem(catalog.CLAIMS, "robust_to_prompting", served)
    result = compile(spec, "lower")
    assert result.errors == 0 and result.plan is not None, [d.code for d in result.diagnostics]
    op = result.plan.objectives[0]
    [claim] = [c for c in op.claims if c.claim == "robust_to_prompting"]
    checks = {c.id: c for c in op.checks}
    [check] = [checks[i] for i in claim.checks if checks[i].metric == "in_context_rouge"]
    assert (check.threshold.op, check.threshold.value, check.probe, check.source) == ("<=", 0.15, "in_context", "spec")
    assert "in_context" in {p.name for stage in op.stages for p in getattr(stage, "probes", [])}


def test_the_runtime_measures_every_family_of_the_catalog() -> None:
    from unlearnspec.runtime.checks import Evaluator

    assert {m.family for m in catalog.METRICS.values()} <= set(Evaluator._measure)
