"""Plans: golden plans of the example specs, determinism, hashes, refusal, the schema, `show`.

Golden plans live in ``tests/golden/plans/<spec>.plan.json`` (feasible specs) and
``<spec>.infeasible.plan.json`` (specs with errors, planned with ``--allow-infeasible``). After an
intended change to the lowering, the specs or their data, regenerate them and review the diff::

    UNLEARNSPEC_UPDATE_GOLDENS=1 .venv/bin/pytest tests/test_plan.py

The same switch regenerates the two generated tables in ``docs/planning.md``.
"""

from __future__ import annotations

import difflib
import itertools
import json
import os
import re
import shutil
import struct
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from unlearnspec.catalog import ADVERSARIAL_TEMPLATES
from unlearnspec.cli import main
from unlearnspec.compiler.ast import Objective
from unlearnspec.compiler.check import check_file, compile, plan_file
from unlearnspec.compiler.decisions import (
    DECISION_TABLE,
    choose_method,
    decision_table_markdown,
    facts_of,
    method_defaults_markdown,
    planned_method,
)
from unlearnspec.compiler.models import folder_sha256
from unlearnspec.compiler.review import load_plan_or_spec, render_review
from unlearnspec.plan import (
    AttackStage,
    EvaluateStage,
    Plan,
    QuantizeAttack,
    ReferenceStage,
    RelearnAttack,
    UnlearnStage,
)
from unlearnspec.records import sha256_path

ROOT = Path(__file__).resolve().parents[1]
SPECS = ROOT / "specs"
GOLDEN = ROOT / "tests" / "golden" / "plans"
DOC = ROOT / "docs" / "planning.md"
UPDATE = os.environ.get("UNLEARNSPEC_UPDATE_GOLDENS") == "1"
SPEC_FILES = sorted(SPECS.glob("*.unlearn"))
JANE = SPECS / "erase-jane-doe.unlearn"


@cache
def planned(path: Path) -> tuple[str | None, bool]:
    """(canonical plan JSON or None, feasible-without-flag) of a spec."""
    plan, result = plan_file(path)
    if plan is not None:
        return plan.canonical_json(), True
    allowed, _ = plan_file(path, allow_infeasible=True)
    return (allowed.canonical_json() if allowed is not None else None), False


def golden_path(spec: Path, feasible: bool) -> Path:
    return GOLDEN / f"{spec.stem}{'' if feasible else '.infeasible'}.plan.json"


def copy_spec(tmp: Path, spec: Path = JANE, text: str | None = None, name: str | None = None) -> Path:
    """A copy of ``spec`` (optionally with new text) and the example data, in ``tmp``."""
    if not (tmp / "data").exists():
        shutil.copytree(SPECS / "data", tmp / "data")
    dest = tmp / (name or spec.name)
    dest.write_text(spec.read_text(encoding="utf-8") if text is None else text, encoding="utf-8")
    return dest


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# -- golden plans --------------------------------------------------------------------------------------


@pytest.mark.parametrize("spec", SPEC_FILES, ids=[p.stem for p in SPEC_FILES])
def test_golden_plan(spec: Path) -> None:
    text, feasible = planned(spec)
    if text is None:
        pytest.skip(f"{spec.name} has syntax or resolve errors: nothing to plan")
    path = golden_path(spec, feasible)
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        stale = golden_path(spec, not feasible)
        if stale.exists():
            stale.unlink()
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"no golden plan {path.relative_to(ROOT)}; run with UNLEARNSPEC_UPDATE_GOLDENS=1"
    expected = path.read_text(encoding="utf-8")
    if text != expected:
        diff = "".join(itertools.islice(difflib.unified_diff(
            expected.splitlines(keepends=True), text.splitlines(keepends=True), "golden", "now"), 80))
        pytest.fail(f"plan of {spec.name} differs from {path.name} (UNLEARNSPEC_UPDATE_GOLDENS=1 to accept):\n{diff}")


def test_every_golden_plan_has_its_spec() -> None:
    stems = {p.stem for p in SPEC_FILES}
    orphans = [g.name for g in GOLDEN.glob("*.plan.json")
               if g.name.removesuffix(".plan.json").removesuffix(".infeasible") not in stems]
    assert not orphans, f"golden plans without a spec: {orphans}"


def test_the_architecture_example_plans_without_errors() -> None:
    text, feasible = planned(JANE)
    assert feasible and text is not None
    plan = Plan.model_validate_json(text)
    op = plan.objectives[0]
    assert op.feasible
    unlearn = next(s for s in op.stages if isinstance(s, UnlearnStage))
    assert (unlearn.method, unlearn.chosen_by, unlearn.adapter) == ("npo", "spec", "full")
    assert [s.kind for s in op.stages] == ["prepare", "reference", "unlearn", "evaluate", "attack", "verdict"]
    claims = {c.claim: c for c in op.claims}
    checks = {c.id: c for c in op.checks}
    # The spec's thresholds decide `removed`; the claim's steps size the relearning attack.
    assert {"membership_auc@forget", "forget_quality@forget"} <= set(claims["removed"].checks)
    assert checks["membership_auc@forget"].threshold is not None
    assert checks["membership_auc@forget"].threshold.value == 0.60
    assert checks["membership_auc@forget"].source == "spec"
    attack = next(s for s in op.stages if isinstance(s, AttackStage))
    relearns = [(a.steps, a.data) for a in attack.attacks if isinstance(a, RelearnAttack)]
    assert relearns == [(20, "forget_subset"), (20, "related")]  # A1, and A5: `preserve` gives neighbours
    assert claims["robust_to_finetuning"].checks == ["relearn_recovery@relearn", "relearn_recovery@relearn_related"]
    related = checks["relearn_recovery@relearn_related"]
    # A5 with the claim: the same fine-tune on related data, the claim's threshold, deciding the claim too
    assert related.threshold == checks["relearn_recovery@relearn"].threshold
    assert related.params == {"steps": 20, "data": "related"} and related.model == "attacked"
    # Accepted risk recorded with its justification and a stable location.
    ul405 = next(f for f in op.findings if f.code == "UL405")
    assert ul405.accepted and ul405.justification and ul405.location == "erase-jane-doe.unlearn:14:13"
    evaluate = next(s for s in op.stages if isinstance(s, EvaluateStage))
    assert [p.name for p in evaluate.probes] == ["direct", "paraphrased", "adversarial"]
    assert next(p for p in evaluate.probes if p.name == "adversarial").templates == list(ADVERSARIAL_TEMPLATES)
    assert evaluate.representation_probe == "birth_city"


# -- determinism, hashes, schema -----------------------------------------------------------------------


def test_planning_twice_gives_identical_bytes() -> None:
    a, _ = plan_file(JANE)
    b, _ = plan_file(JANE)
    assert a is not None and b is not None
    assert a.canonical_json() == b.canonical_json()
    assert a.plan_hash == a.compute_hash() and len(a.plan_hash) == 64


def test_cli_plan_is_byte_identical_from_any_working_directory(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    outs = []
    for i, (cwd, spec) in enumerate([(ROOT, "specs/erase-jane-doe.unlearn"), (SPECS, "erase-jane-doe.unlearn"),
                                     (SPECS / "data", "../erase-jane-doe.unlearn")]):
        out = tmp_path / f"p{i}.json"
        proc = subprocess.run([sys.executable, "-m", "unlearnspec", "plan", spec, "-o", str(out), "-q"], cwd=cwd,
                              env=env, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        outs.append(out.read_bytes())
    assert outs[0] == outs[1] == outs[2]
    text = outs[0].decode()
    assert str(ROOT) not in text and "/tmp" not in text  # no absolute paths


def test_plan_records_every_hash(tmp_path: Path) -> None:
    spec = copy_spec(tmp_path)
    plan, _ = plan_file(spec)
    assert plan is not None
    assert plan.spec.path == "erase-jane-doe.unlearn"
    assert plan.spec.sha256 == sha256_path(spec)
    assert {f.path: f.role for f in plan.inputs} == {
        "data/jane-doe.jsonl": "forget", "data/retain.jsonl": "retain", "data/neighbors.jsonl": "neighbors"}
    for f in plan.inputs:
        assert f.sha256 == sha256_path(tmp_path / f.path)
    from unlearnspec.builtin.recipe import recipe_hash

    model = plan.objectives[0].model
    assert model.kind == "builtin" and model.sha256 == recipe_hash()
    assert model.recipe is not None and model.recipe["recipe_hash"] == recipe_hash()
    from unlearnspec import __version__

    assert plan.tool.version == __version__


def test_changed_data_file_changes_its_hash_and_the_plan(tmp_path: Path) -> None:
    spec = copy_spec(tmp_path)
    before, _ = plan_file(spec)
    forget = tmp_path / "data" / "jane-doe.jsonl"
    forget.write_text(forget.read_text(encoding="utf-8") + '{"text": "Jane Doe also keeps bees."}\n',
                      encoding="utf-8")
    after, _ = plan_file(spec)
    assert before is not None and after is not None
    old = {f.path: f.sha256 for f in before.inputs}
    new = {f.path: f.sha256 for f in after.inputs}
    assert old["data/jane-doe.jsonl"] != new["data/jane-doe.jsonl"]
    assert old["data/retain.jsonl"] == new["data/retain.jsonl"]
    assert before.plan_hash != after.plan_hash
    assert before.canonical_json() != after.canonical_json()


def test_plans_validate_against_the_published_schema(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "schema", "--plan")
    assert code == 0
    validator = Draft202012Validator(json.loads(out))
    goldens = sorted(GOLDEN.glob("*.plan.json"))
    assert goldens
    for g in goldens:
        errors = sorted(validator.iter_errors(json.loads(g.read_text(encoding="utf-8"))), key=str)
        assert not errors, f"{g.name}: {errors[0].message}"
        assert Plan.model_validate_json(g.read_text(encoding="utf-8")).plan_hash  # and the model reads it back


# -- refusing, --allow-infeasible, and the lowering's own finding ----------------------------------------

INFEASIBLE = """unlearnspec 1

objective "forget-captain" {
  model "builtin:tiny-bios"
  release api
  target character "Captain Orrin Vale" {
    forget "data/captain-vale.jsonl"
  }
  goal removal
  claims {
    removed
    not_generated
  }
}
"""


def test_plan_refuses_a_spec_with_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = copy_spec(tmp_path, text=INFEASIBLE, name="captain.unlearn")
    code, out, err = run_cli(capsys, "plan", str(spec))
    assert code == 1 and out == ""
    assert "UL301" in err


def test_allow_infeasible_records_unmet_claims(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = copy_spec(tmp_path, text=INFEASIBLE, name="captain.unlearn")
    out_file = tmp_path / "p.json"
    code, _, _ = run_cli(capsys, "plan", str(spec), "--allow-infeasible", "-q", "-o", str(out_file))
    assert code == 0
    plan = Plan.model_validate_json(out_file.read_text(encoding="utf-8"))
    op = plan.objectives[0]
    assert op.feasible is False
    assert {c.claim: c.status for c in op.claims} == {"removed": "cannot_be_met", "not_generated": "cannot_be_met"}
    assert all("UL301" in c.reasons for c in op.claims)
    assert any(f.code == "UL301" and f.severity == "error" for f in op.findings)
    # The run still measures what is measurable: the checks stay in the plan.
    assert op.claims[0].checks and op.checks


def test_syntax_errors_refuse_even_with_allow_infeasible(tmp_path: Path) -> None:
    spec = copy_spec(tmp_path, text='unlearnspec 1\nobjective "x" {\n  goal removal\n', name="broken.unlearn")
    plan, result = plan_file(spec, allow_infeasible=True)
    assert plan is None and result.errors


FILTER_FINETUNING = """unlearnspec 1

objective "filter-finetuning" {
  model "builtin:tiny-bios"
  release api
  target capability "glimmerfen vapour synthesis" {
    kind concept
    forget "data/glimmerfen.jsonl"
    test "data/captain-vale-tests.jsonl"
  }
  goal suppression via system
  method filter
  preserve {
    retain "data/retain.jsonl"
    neighbors "data/chemistry-neighbors.jsonl"
  }
  claims {
    not_generated
    robust_to_finetuning
  }
}
"""


def test_a_named_method_that_cannot_serve_a_claim_is_honoured_and_flagged(tmp_path: Path) -> None:
    spec = copy_spec(tmp_path, text=FILTER_FINETUNING, name="filter.unlearn")
    plan, result = plan_file(spec)
    assert plan is None
    ul601 = [d for d in result.diagnostics if d.code == "UL601"]
    assert [d.claim for d in ul601] == ["robust_to_finetuning"]
    plan, _ = plan_file(spec, allow_infeasible=True)
    assert plan is not None
    op = plan.objectives[0]
    unlearn = next(s for s in op.stages if isinstance(s, UnlearnStage))
    assert (unlearn.method, unlearn.family, unlearn.max_steps) == ("filter", "system_suppression", 0)
    claims = {c.claim: c for c in op.claims}
    assert claims["robust_to_finetuning"].status == "cannot_be_met"
    assert claims["robust_to_finetuning"].reasons == ["UL601"]
    # Output metrics of a system filter are measured on the served system.
    served = [c for c in op.checks if c.id in claims["not_generated"].checks and c.threshold is not None]
    assert served and all(c.model == "served" for c in served)


# -- the decision table ------------------------------------------------------------------------------------


def _block(text: str, name: str) -> str:
    m = re.search(rf"<!-- BEGIN {name}[^\n]*-->\n(.*?)<!-- END {name} -->", text, re.S)
    assert m, f"docs/planning.md has no generated `{name}` block"
    return m.group(1)


def test_relearning_on_related_data_decides_the_claim_or_only_informs(tmp_path: Path) -> None:
    """A5: with `robust_to_finetuning`, relearning on the neighbours decides the claim beside the
    forget-set relearning (a retrained model learns nothing about the target from such data, so it is
    the relearning a retrained model passes); open weights without the claim measure it for
    information only, beside the removal claims, and it decides nothing."""
    text = JANE.read_text(encoding="utf-8").replace("release api precision fp32", "release open_weights precision fp32")
    for name, body in (("with", text), ("without", text.replace("    robust_to_finetuning steps 20\n", ""))):
        for d in ("jane-doe", "retain", "neighbors"):
            (tmp_path / "data").mkdir(exist_ok=True)
            (tmp_path / "data" / f"{d}.jsonl").write_bytes((SPECS / "data" / f"{d}.jsonl").read_bytes())
        spec = tmp_path / f"{name}.unlearn"
        spec.write_text(body, encoding="utf-8")
        plan, _ = plan_file(spec)
        assert plan is not None
        op = plan.objectives[0]
        claims = {c.claim: c.checks for c in op.claims}
        checks = {c.id: c for c in op.checks}
        related = checks["relearn_recovery@relearn_related"]
        assert related.params["data"] == "related" and related.params["steps"] == 20
        if name == "with":
            assert related.threshold == checks["relearn_recovery@relearn"].threshold is not None
            assert claims["robust_to_finetuning"] == ["relearn_recovery@relearn", "relearn_recovery@relearn_related"]
            assert "relearn_recovery@relearn_related" not in claims["removed"]
            # the review names each deciding check by its id: two relearning checks of one metric stay apart
            assert ("| `relearn_recovery@relearn` ≤ 0.5; `relearn_recovery@relearn_related` ≤ 0.5 |"
                    in render_review(plan))
        else:
            assert "robust_to_finetuning" not in claims
            assert related.threshold is None and checks["relearn_recovery@relearn"].threshold is None  # A2, A5
            assert "relearn_recovery@relearn_related" in claims["removed"]


def test_docs_show_the_decision_table_of_the_code() -> None:
    text = DOC.read_text(encoding="utf-8")
    if UPDATE:
        for name, body in (("decision-table", decision_table_markdown()), ("method-defaults", method_defaults_markdown())):
            old = _block(text, name)
            text = text.replace(old, body)
        DOC.write_text(text, encoding="utf-8")
    assert _block(text, "decision-table") == decision_table_markdown()
    assert _block(text, "method-defaults") == method_defaults_markdown()
    for row in DECISION_TABLE:
        assert f"| {row.id} | {row.decides} | {row.when} |" in text


def _objective(source: str, tmp: Path) -> Objective:
    spec = copy_spec(tmp, text=source, name="grid.unlearn")
    result = check_file(spec)
    assert result.spec is not None
    return result.spec.objectives[0]


@pytest.mark.parametrize(("goal", "extra", "method"), [
    ("removal", "", "npo"),
    ("removal", "guarantee exact", "retrain"),
    ("removal", "claims {\n    as_if_never_trained\n  }", "retrain"),
    ("suppression via model", "", "refusal"),
    ("suppression", "", "refusal"),
    ("suppression via system", "", "filter"),
])
def test_the_method_rows_choose_the_method_rules_and_plan_read(tmp_path: Path, goal: str, extra: str,
                                                               method: str) -> None:
    obj = _objective(f"""unlearnspec 1
objective "grid" {{
  model "builtin:tiny-bios"
  target person "Jane Doe" {{
    forget "data/jane-doe.jsonl"
  }}
  goal {goal}
  {extra}
}}
""", tmp_path)
    choice = choose_method(facts_of(obj, "builtin", 1))
    assert choice.method == method and choice.chosen_by == "compiler" and choice.row is not None
    assert choice.row.value == method and planned_method(obj, True) == choice  # the rules read the same choice
    result = compile(tmp_path / "grid.unlearn", "lower", allow_infeasible=True)
    assert result.plan is not None and result.analysis is not None
    assert result.analysis[0].method == choice
    unlearn = next(s for s in result.plan.objectives[0].stages if isinstance(s, UnlearnStage))
    assert unlearn.method == method and unlearn.rationale.startswith(f"{choice.row.id}: ")


# -- models: local folders and hub ids ------------------------------------------------------------------


def _fake_model(folder: Path, shapes: dict[str, list[int]]) -> int:
    """A folder the resolver accepts as a Hugging Face model: config.json and a safetensors file."""
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"model_type": "gpt2", "n_layer": 6, "n_embd": 64,
                                                    "vocab_size": 100}), encoding="utf-8")
    header: dict[str, object] = {}
    offset = 0
    for name, shape in shapes.items():
        n = 4
        for s in shape:
            n *= s
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + n]}
        offset += n
    raw = json.dumps(header).encode()
    (folder / "model.safetensors").write_bytes(struct.pack("<Q", len(raw)) + raw + b"\0" * offset)
    total = 0
    for shape in shapes.values():
        count = 1
        for s in shape:
            count *= s
        total += count
    return total


def test_local_model_files_are_hashed_and_sized(tmp_path: Path) -> None:
    params = _fake_model(tmp_path / "models" / "tiny", {"w": [64, 64], "b": [64]})
    text = JANE.read_text(encoding="utf-8").replace('"builtin:tiny-bios"', '"./models/tiny"').replace(
        "method npo", 'reference "./models/tiny"\n  method rmu')
    spec = copy_spec(tmp_path, text=text, name="local.unlearn")
    plan, result = plan_file(spec, allow_infeasible=True)
    assert plan is not None, result.diagnostics
    op = plan.objectives[0]
    m = op.model
    assert m.kind == "local" and m.parameters == params
    assert sorted(f.path for f in m.files) == ["models/tiny/config.json", "models/tiny/model.safetensors"]
    assert m.sha256 == sha256_path(tmp_path / "models" / "tiny")
    assert folder_sha256(tmp_path / "models" / "tiny", m.files, tmp_path) == m.sha256
    assert {f.path for f in plan.inputs if f.role == "reference"} == {f.path for f in m.files}
    unlearn = next(s for s in op.stages if isinstance(s, UnlearnStage))
    assert unlearn.adapter == "full" and unlearn.rmu_layer == (6 - 1) // 2  # small model: the middle block of 6 that is not the last, as the runtime steers
    reference = next(s for s in op.stages if isinstance(s, ReferenceStage))
    assert reference.strategy == "model" and reference.model == "./models/tiny"
    assert op.estimate is not None and op.estimate.cpu_seconds > 0


def test_a_cache_snapshot_of_links_plans_and_version_control_is_not_pinned(tmp_path: Path) -> None:
    """`hf download` without `--local-dir` leaves a snapshot folder whose files link into a shared `blobs/`; the
    plan pins the files by their names in the snapshot. A `.git/` beside them (a clone) is not the model: it
    changes when the model does not, so it is neither listed nor part of the folder's hash."""
    _fake_model(tmp_path / "store", {"w": [8, 8]})
    blobs = tmp_path / "hub" / "blobs"
    snap = tmp_path / "hub" / "snapshots" / "abc"
    blobs.mkdir(parents=True)
    snap.mkdir(parents=True)
    for name in ("config.json", "model.safetensors"):
        blob = blobs / sha256_path(tmp_path / "store" / name)
        shutil.copy(tmp_path / "store" / name, blob)
        (snap / name).symlink_to(os.path.relpath(blob, snap))
    (snap / ".git").mkdir()
    (snap / ".git" / "index").write_bytes(b"changes on every git status")
    text = JANE.read_text(encoding="utf-8").replace('"builtin:tiny-bios"', '"./hub/snapshots/abc"')
    spec = copy_spec(tmp_path, text=text, name="cache.unlearn")
    plan, result = plan_file(spec, allow_infeasible=True)
    assert plan is not None, result.diagnostics
    m = plan.objectives[0].model
    assert sorted(f.path for f in m.files) == ["hub/snapshots/abc/config.json", "hub/snapshots/abc/model.safetensors"]
    assert m.sha256 == sha256_path(snap) == sha256_path(tmp_path / "store")  # the same names and contents
    (snap / ".git" / "index").write_bytes(b"touched")
    assert sha256_path(snap) == m.sha256


def test_nothing_is_written_inside_a_model_folder_the_plan_pins(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """Spec, data and model in one folder (`model "."` style): a plan written there would be pinned by the next
    plan and stale at once; a run or its ledger written there would change the model it measures (UL715, 2)."""
    _fake_model(tmp_path / "models" / "tiny", {"w": [8, 8]})
    text = JANE.read_text(encoding="utf-8").replace('"builtin:tiny-bios"', '"./models/tiny"')
    spec = copy_spec(tmp_path, text=text, name="local.unlearn")
    inside = tmp_path / "models" / "tiny" / "plan.json"
    code, _, err = run_cli(capsys, "plan", str(spec), "-o", str(inside), "--allow-infeasible")
    assert code == 2 and "error[UL715]" in err and not inside.exists(), err
    code, _, err = run_cli(capsys, "plan", str(spec), "-o", str(tmp_path / "plan.json"), "--allow-infeasible", "-q")
    assert code == 0, err
    plan = Plan.load(tmp_path / "plan.json")
    assert plan.read_only_folders(tmp_path) == [tmp_path / "models" / "tiny"]


def test_hub_model_has_no_hash_and_gets_lora(tmp_path: Path) -> None:
    text = JANE.read_text(encoding="utf-8").replace('"builtin:tiny-bios"', '"example-org/example-7b"').replace(
        '  release api precision fp32', '  release open_weights precision int4')
    spec = copy_spec(tmp_path, text=text, name="hub.unlearn")
    plan, _ = plan_file(spec, allow_infeasible=True)
    assert plan is not None
    op = plan.objectives[0]
    assert op.model.kind == "hub" and op.model.sha256 is None and op.model.note
    assert op.estimate is None
    unlearn = next(s for s in op.stages if isinstance(s, UnlearnStage))
    assert unlearn.adapter == "lora" and unlearn.lora is not None and unlearn.lora.rank == 8
    assert unlearn.learning_rate == 1e-4 and unlearn.stopping.kind == "fixed_steps"  # no holdout data
    reference = next(s for s in op.stages if isinstance(s, ReferenceStage))
    assert reference.strategy == "holdout" and op.data.holdout == []
    # Checks that need a reference or non-members are kept and marked not measurable.
    missing = {c.id: c.missing for c in op.checks if c.missing}
    assert "reference" in missing["forget_quality@forget"]
    assert "holdout" in missing["membership_auc@forget"]
    attacks = next(s for s in op.stages if isinstance(s, AttackStage)).attacks
    assert any(isinstance(a, QuantizeAttack) and a.precision == "int4" for a in attacks)
    assert any(isinstance(a, RelearnAttack) and a.steps == 20 for a in attacks)


def test_release_precision_below_fp32_decides_claims_at_that_precision(tmp_path: Path) -> None:
    text = JANE.read_text(encoding="utf-8").replace("release api precision fp32", "release api precision int8")
    plan, _ = plan_file(copy_spec(tmp_path, text=text, name="int8.unlearn"))
    assert plan is not None
    op = plan.objectives[0]
    checks = {c.id: c for c in op.checks}
    removed = next(c for c in op.claims if c.claim == "removed")
    deciding = [checks[i] for i in removed.checks if checks[i].threshold is not None and checks[i].model == "unlearned"]
    assert deciding
    for mc in deciding:
        twin = checks[f"{mc.id}@quantize_int8"]
        assert twin.id in removed.checks and twin.threshold == mc.threshold
        assert (twin.model, twin.probe, twin.params["precision"]) == ("attacked", "quantize", "int8")
    assert checks["quantization_recovery@quantize_int8"].threshold is None
    attacks = next(s for s in op.stages if isinstance(s, AttackStage)).attacks
    assert [a.precision for a in attacks if isinstance(a, QuantizeAttack)] == ["int8"]


# -- show ----------------------------------------------------------------------------------------------------


def test_show_renders_a_markdown_review(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_file = tmp_path / "p.json"
    assert main(["plan", str(JANE), "-q", "-o", str(out_file)]) == 0
    capsys.readouterr()
    code, md, _ = run_cli(capsys, "show", str(out_file))
    assert code == 0
    for needle in ("# Plan review: `erase-jane-doe`", "Remove observed information about the person “Jane Doe”",
                   "### Claims and the evidence that will decide them", "`membership_auc@forget` | ≤ 0.6 | spec",
                   "### What the compiler flagged", "Accepted risks", "UL405", "Forget set built from a full-corpus",
                   "### What will run", "`npo` (approximate removal, named in the spec)", "relearn: 20 fine-tuning",
                   "prefix_injection", "### How long", "on CPU", "on one GPU", "## Hashes", "data/jane-doe.jsonl"):
        assert needle in md, needle
    assert "\n\n\n" not in md


def test_show_renders_json_and_reads_specs(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "show", str(JANE), "--format", "json")
    assert code == 0
    doc = json.loads(out)
    assert doc["format_version"] == "1" and doc["plan_hash_ok"] is True
    obj = doc["objectives"][0]
    # the spec's claims in order, then the implicit one decided by the `preserve` block's tolerances
    assert [c["claim"] for c in obj["claims"]] == ["removed", "not_generated", "robust_to_finetuning",
                                                   "side_effects_within_tolerance"]
    removed = obj["claims"][0]
    assert removed["status"] == "cannot_be_verified" and removed["accepted"] == ["UL405", "UL411"]
    assert any(c["id"] == "membership_auc@forget" and c["threshold"] == "≤ 0.6" for c in removed["checks"])
    assert obj["estimate"]["cpu_seconds"] > 0 and obj["estimate"]["gpu_seconds"] > 0


@pytest.mark.parametrize("spec", SPEC_FILES, ids=[p.stem for p in SPEC_FILES])
def test_show_renders_every_example(spec: Path) -> None:
    text, _ = planned(spec)
    if text is None:
        pytest.skip(f"{spec.name} cannot be planned")
    plan = Plan.model_validate_json(text)
    md = render_review(plan, "md")
    doc = json.loads(render_review(plan, "json"))
    for op, obj in zip(plan.objectives, doc["objectives"], strict=True):
        assert f"`{op.objective.name}`" in md or len(plan.objectives) == 1
        for c in op.claims:
            assert f"#### `{c.claim}`" in md
        assert [c["claim"] for c in obj["claims"]] == [c.claim for c in op.claims]
        if not op.feasible:
            assert "--allow-infeasible" in md


def test_show_flags_a_plan_edited_after_planning(tmp_path: Path) -> None:
    plan, _ = plan_file(JANE)
    assert plan is not None
    data = json.loads(plan.canonical_json())
    data["objectives"][0]["checks"][0]["threshold"]["value"] = 0.99
    edited = tmp_path / "edited.json"
    edited.write_text(json.dumps(data), encoding="utf-8")
    loaded, err = load_plan_or_spec(edited)
    assert loaded is not None and not err
    assert "does not match its `plan_hash`" in render_review(loaded, "md")


@pytest.mark.parametrize(("content", "message"), [
    ("{not json", "is not valid JSON"),
    ('{"hello": 1}', "is not an unlearnspec plan"),
    ('{"format_version": "9.0", "objectives": []}', "newer than this unlearnspec reads"),
    ('{"format_version": "1.0", "objectives": [{}]}', "is not a valid plan"),
    ('{"format_version": "abc", "objectives": []}', "plan format `\"abc\"` is not a version number"),
    ('{"format_version": 2, "objectives": []}', "plan format `2` is not a version number"),
    ('{"format_version": "0.9", "objectives": []}', "plan format `0.9` is not one this unlearnspec reads"),
    ('{"format_version": "1.0", "objectives": ' + "[" * 5000 + "]" * 5000 + "}",
     "nested deeper than 64 levels"),
])
def test_show_refuses_what_is_not_a_plan(tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str,
                                         message: str) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(content, encoding="utf-8")
    code, out, err = run_cli(capsys, "show", str(bad))
    assert code == 2 and out == ""  # an unusable input, not a finding
    assert message in err and "Traceback" not in err
    if "newer" not in message:  # `abc` or `0.9` is not a version from the future
        assert "newer" not in err


def test_show_of_a_broken_spec_prints_its_diagnostics(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = copy_spec(tmp_path, text='unlearnspec 1\nobjective "x" {\n  goal removal\n', name="broken.unlearn")
    code, out, err = run_cli(capsys, "show", str(spec))
    assert code == 1 and out == "" and "UL103" in err


# -- the compiler verbs never load torch ------------------------------------------------------------------


def test_plan_show_diff_do_not_import_torch(tmp_path: Path) -> None:
    spec = copy_spec(tmp_path)
    other = copy_spec(tmp_path, text=spec.read_text(encoding="utf-8").replace("<= 0.60", "<= 0.70"), name="b.unlearn")
    script = f"""
import contextlib, io, sys
from unlearnspec.cli import main
with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
    codes = [main(["plan", {str(spec)!r}, "-o", {str(tmp_path / "p.json")!r}]),
             main(["show", {str(tmp_path / "p.json")!r}]),
             main(["show", {str(spec)!r}, "--format", "json"]),
             main(["diff", {str(spec)!r}, {str(other)!r}])]
heavy = sorted(m for m in ("torch", "transformers", "peft", "accelerate", "numpy") if m in sys.modules)
print(codes, heavy)
"""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[0, 0, 0, 1] []"
