"""One pass list, one analysed objective: `check`, `explain` and `plan` read the same judgement.

For every spec in specs/ and every rule fixture, `check` exits 1 exactly when `plan` (without
`--allow-infeasible`) refuses; UL601 is an ordinary feasibility rule, so a spec whose named method cannot serve
a claim fails `check` and `explain` says the claim cannot be met (it used to pass `check --strict`).
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest

from unlearnspec.cli import main
from unlearnspec.compiler.check import PASS_NAMES, compile

ROOT = Path(__file__).resolve().parents[1]
SPECS = sorted((ROOT / "specs").glob("*.unlearn")) + sorted((ROOT / "tests" / "rules").glob("*.unlearn"))
FILTER_FINETUNING = (ROOT / "tests" / "test_plan.py").read_text(encoding="utf-8").split('FILTER_FINETUNING = """')[1]
FILTER_FINETUNING = FILTER_FINETUNING.split('"""')[0]


def run(*argv: str) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue()


def test_the_passes_are_listed_once_in_order() -> None:
    assert PASS_NAMES == ("parse", "resolve", "analyse", "lower")


@pytest.mark.parametrize("spec", SPECS, ids=[f"{p.parent.name}/{p.stem}" for p in SPECS])
def test_check_fails_exactly_when_plan_refuses(spec: Path) -> None:
    check_code, _ = run("check", "--color", "never", str(spec))
    plan_code, plan_out = run("plan", "--color", "never", "-q", str(spec))
    assert check_code in (0, 1) and plan_code in (0, 1)
    assert (check_code == 1) == (plan_code == 1), (check_code, plan_code)
    assert (plan_code == 0) == bool(plan_out.strip())  # a refused plan writes nothing
    # `show` reviews a spec that `plan` refuses (as with --allow-infeasible), but a gate on it fails the same way
    show_code, review = run("show", str(spec))
    if "# Plan review" in review:
        assert show_code == plan_code, (show_code, plan_code)
    else:  # syntax or resolve errors: nothing to review
        assert show_code == 1 and plan_code == 1


@pytest.mark.parametrize("until", PASS_NAMES)
def test_compile_stops_after_the_pass_it_is_asked_for(until: str) -> None:
    result = compile(ROOT / "specs" / "erase-jane-doe.unlearn", until)  # type: ignore[arg-type]
    assert result.passes == list(PASS_NAMES[:PASS_NAMES.index(until) + 1])
    produced = {"parse": result.syntax, "resolve": result.spec, "analyse": result.analysis, "lower": result.plan}
    for name in PASS_NAMES:
        assert (produced[name] is not None) == (name in result.passes), name


def test_a_method_that_cannot_serve_a_claim_fails_check_and_explain(tmp_path: Path) -> None:
    (tmp_path / "data").symlink_to(ROOT / "specs" / "data")
    spec = tmp_path / "filter.unlearn"
    spec.write_text(FILTER_FINETUNING, encoding="utf-8")
    for argv in (("check", str(spec)), ("check", "--strict", str(spec))):
        code, _ = run(*argv, "--color", "never")
        assert code == 1, argv
    code, out = run("explain", "--format", "json", str(spec))
    rows = {r["claim"]: r for o in json.loads(out)["objectives"] for r in o["rows"]}
    assert rows["robust_to_finetuning"]["status"] == "cannot_be_met"
    assert rows["robust_to_finetuning"]["codes"] == ["UL601"]
    assert rows["not_generated"]["status"] == "supported"
    # the analysed objective is what the lowering reads: the plan records the same status
    result = compile(spec, "lower", allow_infeasible=True)
    assert result.plan is not None and result.analysis is not None
    planned = {c.claim: c.status for c in result.plan.objectives[0].claims}
    analysed = {c.claim: c.status for c in result.analysis[0].claims}
    assert {k: planned[k] for k in analysed} == analysed
    assert result.analysis[0].method.method == "filter" and result.analysis[0].method.chosen_by == "spec"


def test_an_objective_that_does_not_resolve_gets_no_follow_on_warnings(tmp_path: Path) -> None:
    # a misspelt forget path: the analysis would see no forget data and say the data "holds documents only",
    # and that `accept UL405` matches nothing (advising to delete a line that is right once the path is)
    (tmp_path / "data").symlink_to(ROOT / "specs" / "data")
    text = (ROOT / "specs" / "erase-jane-doe.unlearn").read_text(encoding="utf-8")
    spec = tmp_path / "typo.unlearn"
    spec.write_text(text.replace('"data/jane-doe.jsonl"', '"data/jane-do.jsonl"'), encoding="utf-8")
    result = compile(spec, "analyse")
    codes = sorted({d.code for d in result.diagnostics})
    assert [c for c in codes if c.startswith("UL2")] and all(
        d.severity == "error" for d in result.diagnostics), codes
    assert "UL214" not in codes and "UL410" not in codes
    fixed = compile(ROOT / "specs" / "erase-jane-doe.unlearn", "analyse")  # the same spec, path right
    assert any(d.code == "UL405" and d.accepted for d in fixed.diagnostics)


@pytest.mark.parametrize("spec", SPECS, ids=[f"{p.parent.name}/{p.stem}" for p in SPECS])
def test_check_json_explain_and_the_plan_list_the_same_claims(spec: Path) -> None:
    # the claim `preserve` implies (side_effects_within_tolerance) is decided by the run: every view lists it
    code, out = run("check", "--format", "json", str(spec))
    doc = json.loads(out)
    if not doc["files"][0]["objectives"]:
        return  # nothing resolved to analyse
    checked = {o["objective"]: [c["claim"] for c in o["claims"]] for o in doc["files"][0]["objectives"]}
    _, out = run("explain", "--format", "json", str(spec))
    explained = {o["name"]: [r["claim"] for r in o["rows"]] for o in json.loads(out)["objectives"]}
    assert checked == explained
    plan_code, plan_out = run("plan", "--allow-infeasible", "-q", str(spec))
    if plan_code == 0 and plan_out.strip():
        planned = {op["objective"]["name"]: [c["claim"] for c in op["claims"]] for op in json.loads(plan_out)["objectives"]}
        assert {k: sorted(v) for k, v in planned.items()} == {k: sorted(v) for k, v in checked.items()}


@pytest.mark.parametrize("spec", SPECS, ids=[f"{p.parent.name}/{p.stem}" for p in SPECS])
def test_explain_names_the_scope_probes_the_plan_measures_for_information_only(spec: Path) -> None:
    """A prompt kind the scope names that no claim reads is measured and decides nothing (decision row E6):
    `explain` says so, for exactly the probes whose plan checks carry no threshold and an E6 note."""
    plan_code, plan_out = run("plan", "--allow-infeasible", "-q", str(spec))
    if plan_code != 0 or not plan_out.strip():
        return
    _, out = run("explain", "--format", "json", str(spec))
    explained = {o["name"]: sorted(i["probe"] for i in o["information_only"]) for o in json.loads(out)["objectives"]
                 if o["rows"]}
    planned = {op["objective"]["name"]: sorted(c["probe"] for c in op["checks"] if c["threshold"] is None
                                               and (c["note"] or "").startswith("E6:"))
               for op in json.loads(plan_out)["objectives"] if op["claims"]}
    assert explained == planned
    _, text = run("explain", str(spec))
    assert ("Measured for information only" in text) == any(planned.values())
    flat = " ".join(text.split())
    for op in json.loads(plan_out)["objectives"]:  # what would make each probe decide
        claimed = {c["claim"] for c in op["claims"]}
        for mc in op["checks"]:
            if mc["threshold"] is not None or not (mc["note"] or "").startswith("E6:"):
                continue
            claim = "not_generated" if mc["probe"] == "direct" else "robust_to_prompting"
            expect = ("(UL305)" if mc["probe"] == "in_context" else
                      f"add a `{mc['metric']}` bound to `evidence`" if claim in claimed else f"claim `{claim}`")
            assert expect in flat, (op["objective"]["name"], mc["probe"])
