"""`unlearnspec debug {syntax,ast,analysis,plan} SPEC` prints each pass's output as JSON."""

from __future__ import annotations

import contextlib
import io
import json
import re
from pathlib import Path

import pytest

from unlearnspec.cli import main
from unlearnspec.compiler.check import plan_file

ROOT = Path(__file__).resolve().parents[1]
JANE = ROOT / "specs" / "erase-jane-doe.unlearn"


def debug(stage: str, spec: Path) -> tuple[int, dict[str, object]]:
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = main(["debug", stage, str(spec)])
    return code, json.loads(buf.getvalue())


def test_syntax_is_the_parse_tree_of_the_source() -> None:
    code, doc = debug("syntax", JANE)
    assert code == 0 and doc["passes"] == ["parse"]
    tree = doc["output"]
    assert isinstance(tree, dict) and tree["node"] == "SpecFile"
    source = JANE.read_text(encoding="utf-8")
    assert [o["name"] for o in tree["objectives"]] == re.findall(r'^objective "([^"]+)"', source, re.M)
    # every field of the first objective's block, by name, in source order
    fields = [f["name"] for f in tree["objectives"][0]["block"]["fields"]]
    assert fields == [m for m in re.findall(r"^  ([a-z_]+)\b", source, re.M)]


def test_ast_is_the_typed_spec() -> None:
    code, doc = debug("ast", JANE)
    assert code == 0 and doc["passes"] == ["parse", "resolve"]
    ast = doc["output"]
    assert isinstance(ast, dict)
    [obj] = ast["objectives"]
    assert obj["name"] == "erase-jane-doe"
    assert obj["model"]["value"] == "builtin:tiny-bios"
    assert [c["name"] for c in obj["claims"]] == ["removed", "not_generated", "robust_to_finetuning"]


def test_analysis_has_the_method_and_statuses_the_plan_records() -> None:
    code, doc = debug("analysis", JANE)
    assert code == 0 and doc["passes"] == ["parse", "resolve", "analyse"]
    [analysed] = doc["output"]  # type: ignore[misc]
    plan, _ = plan_file(JANE)
    assert plan is not None
    op = plan.objectives[0]
    unlearn = next(s for s in op.stages if getattr(s, "kind", "") == "unlearn")
    assert analysed["method"]["method"] == unlearn.method  # type: ignore[attr-defined]
    assert analysed["method"]["row"] and unlearn.rationale.startswith(analysed["method"]["row"] + ": ")  # type: ignore[attr-defined]
    planned = {c.claim: c.status for c in op.claims}
    assert {c["claim"]: c["status"] for c in analysed["claims"]} == {k: planned[k] for k in
                                                                       [c["claim"] for c in analysed["claims"]]}


def test_plan_is_the_sealed_plan() -> None:
    code, doc = debug("plan", JANE)
    assert code == 0 and doc["passes"] == ["parse", "resolve", "analyse", "lower"]
    plan, _ = plan_file(JANE)
    assert plan is not None
    assert doc["output"] == json.loads(plan.canonical_json())


@pytest.mark.parametrize("stage", ["syntax", "ast", "analysis", "plan"])
def test_a_stage_an_error_never_reaches_prints_null_and_the_diagnostics(tmp_path: Path, stage: str) -> None:
    broken = tmp_path / "broken.unlearn"
    broken.write_text('unlearnspec 1\n\nobjective "x" {\n  goal removal\n', encoding="utf-8")
    code, doc = debug(stage, broken)
    assert code == 1 and doc["output"] is None
    assert doc["passes"] == ["parse"]
    assert [d["code"] for d in doc["diagnostics"]] == ["UL103"]  # type: ignore[index]
