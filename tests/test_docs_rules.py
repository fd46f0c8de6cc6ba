"""docs/rules/ mirrors the diagnostic-code registry: one page per code, an index, nothing stale.

The pages are generated (``unlearnspec.compiler.explain.rule_doc_files``) and checked in; this test
regenerates them in memory and compares. After an intended change of a page:

    UNLEARNSPEC_UPDATE_GOLDENS=1 .venv/bin/pytest tests/test_docs_rules.py
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from unlearnspec.catalog import CODES
from unlearnspec.cli import EXIT_OK, main
from unlearnspec.compiler.explain import code_page_markdown, explain_spec, rule_doc_files

ROOT = Path(__file__).resolve().parent.parent
RULES_DIR = ROOT / "docs" / "rules"
UPDATE = os.environ.get("UNLEARNSPEC_UPDATE_GOLDENS") == "1"


def test_docs_rules_are_current() -> None:
    files = rule_doc_files()
    if UPDATE:
        RULES_DIR.mkdir(parents=True, exist_ok=True)
        for stale in set(p.name for p in RULES_DIR.glob("*.md")) - set(files):
            (RULES_DIR / stale).unlink()
        for name, text in files.items():
            (RULES_DIR / name).write_text(text, encoding="utf-8")
    outdated = [name for name, text in files.items()
                if not (RULES_DIR / name).is_file() or (RULES_DIR / name).read_text(encoding="utf-8") != text]
    assert not outdated, ("docs/rules/ is out of date for " + ", ".join(outdated)
                          + " (UNLEARNSPEC_UPDATE_GOLDENS=1 pytest tests/test_docs_rules.py rewrites it)")


def test_every_registered_code_has_a_page_and_no_page_is_stale() -> None:
    registry = CODES
    on_disk = {p.stem for p in RULES_DIR.glob("*.md")} - {"README"}
    assert set(registry) - on_disk == set(), "codes without a page"
    assert on_disk - set(registry) == set(), "pages for codes that are not registered"
    index = (RULES_DIR / "README.md").read_text(encoding="utf-8")
    for code, page in registry.items():
        assert f"| [{code}]({code}.md) | {page.severity} | {page.category} | `{page.name}` |" in index


def test_registry_includes_planner_and_runtime_codes() -> None:
    registry = CODES
    assert registry["UL601"].category == "feasibility"
    for code in [f"RT10{n}" for n in range(1, 7)] + [f"UL70{n}" for n in range(1, 8)]:
        assert registry[code].category == "runtime", code
        assert registry[code].severity == "error", code


def test_every_runtime_code_raised_is_registered() -> None:
    """Read (not import: the compiler side must stay torch-free) the runtime's sources for the codes it raises."""
    registry = CODES
    runtime = ROOT / "unlearnspec" / "runtime"
    loading = (runtime / "load_errors.py").read_text(encoding="utf-8")
    rt_codes = set(re.findall(r'^E_\w+ = "(RT\d{3})"', loading, flags=re.M))
    sources = [runtime / "rundir.py", ROOT / "unlearnspec" / "plan.py", ROOT / "unlearnspec" / "cli" / "run.py",
               ROOT / "unlearnspec" / "cli" / "provenance.py"]
    run_codes = {c for src in sources
                 for c in re.findall(r'^E_\w+ = "(UL\d{3})"', src.read_text(encoding="utf-8"), flags=re.M)}
    assert len(rt_codes) >= 6 and len(run_codes) >= 11
    assert (rt_codes | run_codes) - set(registry) == set()


def test_feasibility_pages_say_why_and_what_instead() -> None:
    registry = CODES
    feasibility = [p for p in registry.values() if p.category == "feasibility"]
    assert len(feasibility) > 20
    for page in feasibility:
        assert page.why.strip(), page.code
        assert page.instead.strip(), page.code
        text = (RULES_DIR / f"{page.code}.md").read_text(encoding="utf-8")
        assert "## Why it matters" in text and "## Write instead" in text, page.code


@pytest.mark.parametrize("code", ["UL102", "UL211", "UL301", "UL405", "UL601", "RT103", "UL702"])
def test_explain_cli_prints_the_page(code: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", code.lower()]) == EXIT_OK
    out = capsys.readouterr().out
    assert out == code_page_markdown(code)
    assert out == (RULES_DIR / f"{code}.md").read_text(encoding="utf-8")


# -- `explain SPEC`: "Other findings" lists only what the claim table does not already account for --------


def test_explain_other_findings_skip_what_the_table_decides() -> None:
    specs = ROOT / "specs"
    # not_generated cannot be met (UL304); UL409 concerns that claim only, so it is not repeated below it
    text, code = explain_spec(specs / "glimmerfen-filter-open-weights.unlearn")
    assert code == 1 and "UL304" in text
    assert "Other findings" not in text and "UL409" not in text
    # findings about no claim of the objective (UL404: no_side_effects is not claimed) stay listed
    doc = json.loads(explain_spec(specs / "account-closures.unlearn", fmt="json")[0])
    obj = doc["objectives"][0]
    other = {d["code"] for d in obj["other"]}
    assert "UL404" in other
    reasons = {c for row in obj["rows"] for c in row["codes"]}
    assert other.isdisjoint(reasons)


def test_explain_lists_the_claim_that_preserve_implies() -> None:
    specs = ROOT / "specs"
    doc = json.loads(explain_spec(specs / "erase-jane-doe.unlearn", fmt="json")[0])
    rows = {r["claim"]: r for r in doc["objectives"][0]["rows"]}
    tolerance = rows["side_effects_within_tolerance"]  # `preserve { utility drop <= 2% }`, as plan and report carry it
    assert tolerance["status"] == "supported"
    assert tolerance["evidence"] == "retain_utility_drop <= 2 (on retain), neighbor_utility_drop <= 2 (on neighbors)"
    text, _ = explain_spec(specs / "erase-jane-doe.unlearn")
    assert "| side_effects_within_tolerance | supported" in text


def test_explain_adds_no_tolerance_row_where_no_side_effects_is_claimed() -> None:
    doc = json.loads(explain_spec(ROOT / "specs" / "keyboard-pii-certified.unlearn", fmt="json")[0])
    claims = [r["claim"] for o in doc["objectives"] for r in o["rows"]]
    assert "no_side_effects" in claims and "side_effects_within_tolerance" not in claims
