"""The feasibility rules, driven by the fixture specs in ``tests/rules/``.

Each fixture states what it must produce in its first lines::

    # expect: UL301 UL405=accepted UL502@first   (the exact set of feasibility codes; `@obj` per objective)
    # claims: removed=cannot_be_met not_generated=supported   (the claim statuses, in spec order)

Every rule has a trigger fixture (``ulNNN-*.unlearn`` naming the code in ``expect``) and a near-miss
(``ulNNN-near-*.unlearn``) that is one change away and does not produce it.
"""

from __future__ import annotations

import re
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest

from unlearnspec.catalog import CODES, DEFAULT_RELEARN_STEPS, METRICS
from unlearnspec.compiler.ast import Objective, Spec
from unlearnspec.compiler.diagnostics import Diagnostic
from unlearnspec.compiler.evidence_defaults import evidence_for, side_effect_evidence
from unlearnspec.compiler.feasibility import (
    ClaimStatusRow,
    analyse,
    claim_statuses,
    concerns,
)
from unlearnspec.compiler.parse import parse_bytes
from unlearnspec.compiler.resolve import resolve
from unlearnspec.compiler.rules import RULES
from unlearnspec.compiler.rules.base import planned_method
from unlearnspec.compiler.rules.governance import states_compliance

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "rules"
FIXTURE_FILES = sorted(FIXTURES.glob("*.unlearn"))
ARCHITECTURE_COPY = FIXTURES / "architecture-example.unlearn"
ARCHITECTURE_MD = ROOT.parent / "shared" / "design" / "ARCHITECTURE.md"
FEASIBILITY_CODES = {r.code for r in RULES} | {"UL213", "UL214"}


def compile_text(text: str, path: Path) -> tuple[Spec, list[Diagnostic], list[Diagnostic]]:
    """Parse and resolve ``text`` as if it were the file ``path``; then the feasibility pass."""
    syntax, pdiags = parse_bytes(text.encode("utf-8"), str(path))
    assert syntax is not None, pdiags
    spec, rdiags = resolve(syntax, path.parent)
    return spec, pdiags + rdiags, analyse(spec)


@cache
def compiled(path: Path) -> tuple[Spec, tuple[Diagnostic, ...], tuple[Diagnostic, ...]]:
    spec, front, feas = compile_text(path.read_text(encoding="utf-8"), path)
    return spec, tuple(front), tuple(feas)


def header(path: Path, key: str) -> str | None:
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith(f"# {key}:"):
            return line.split(":", 1)[1].strip()
    return None


def expected_codes(path: Path) -> set[str]:
    if path == ARCHITECTURE_COPY:  # its six documents cannot show membership within 0.1 of the reference (UL411)
        return {"UL405=accepted", "UL411", "UL505"}
    text = header(path, "expect")
    assert text is not None, f"{path.name}: no `# expect:` line"
    return set(text.split())


def actual_codes(diags: tuple[Diagnostic, ...], per_objective: bool) -> set[str]:
    return {d.code + (f"@{d.objective}" if per_objective else "") + ("=accepted" if d.accepted else "")
            for d in diags}


def by_code(diags: tuple[Diagnostic, ...] | list[Diagnostic], code: str) -> list[Diagnostic]:
    return [d for d in diags if d.code == code]


# -- the fixtures -------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", FIXTURE_FILES, ids=[p.stem for p in FIXTURE_FILES])
def test_fixture_produces_exactly_its_expected_codes(path: Path) -> None:
    spec, front, feas = compiled(path)
    assert not front, f"{path.name} must be a valid spec: {[(d.code, d.message) for d in front]}"
    expected = expected_codes(path)
    assert actual_codes(feas, any("@" in e for e in expected)) == expected
    assert all(d.code in FEASIBILITY_CODES for d in feas)


@pytest.mark.parametrize("path", [p for p in FIXTURE_FILES if header(p, "claims")],
                         ids=[p.stem for p in FIXTURE_FILES if header(p, "claims")])
def test_fixture_claim_statuses(path: Path) -> None:
    spec, _, feas = compiled(path)
    got = [f"{row.claim}={row.status}" for obj in spec.objectives for row in claim_statuses(obj, list(feas))]
    assert got == (header(path, "claims") or "").split()


@pytest.mark.parametrize("rule_code", sorted(r.code for r in RULES))
def test_every_rule_has_a_trigger_and_a_near_miss(rule_code: str) -> None:
    stem = rule_code.lower()
    triggers = [p for p in FIXTURE_FILES if any(e.split("@")[0].split("=")[0] == rule_code for e in expected_codes(p))]
    assert triggers, f"no fixture triggers {rule_code}"
    for p in triggers:
        assert by_code(compiled(p)[2], rule_code)
    near = sorted(FIXTURES.glob(f"{stem}-near-*.unlearn"))
    assert near, f"no near-miss fixture `{stem}-near-*.unlearn`"
    # A near-miss does not produce the code (UL502's near-miss shows the objective it spares).
    for p in near:
        spared = [d for d in compiled(p)[2] if d.code == rule_code]
        if rule_code == "UL502":
            assert spared and all(d.objective != "elsewhere" for d in spared) or not spared
        else:
            assert not spared, f"{p.name} must not produce {rule_code}"


def test_architecture_example_is_verbatim_and_has_no_errors() -> None:
    if ARCHITECTURE_MD.is_file():
        block = re.search(r"```\n(unlearnspec 1\n.*?)```", ARCHITECTURE_MD.read_text(encoding="utf-8"), re.S)
        assert block is not None
        assert ARCHITECTURE_COPY.read_text(encoding="utf-8") == block.group(1)
    spec, front, feas = compiled(ARCHITECTURE_COPY)
    assert not front
    assert not [d for d in feas if d.blocking]
    (ul405,) = by_code(feas, "UL405")
    (ul411,) = by_code(feas, "UL411")
    assert ul411.claim == "removed" and "membership is too noisy" in ul411.message
    assert ul405.code == "UL405" and ul405.accepted and ul405.severity == "warning"
    assert ul405.justification == "Forget set built from a full-corpus alias search, 2026-11-20."
    rows = {r.claim: r for r in claim_statuses(spec.objectives[0], list(feas))}
    assert rows["robust_to_finetuning"].status == "supported"
    assert rows["removed"].status == "cannot_be_verified" and rows["removed"].accepted == ["UL405"]
    assert rows["removed"].justifications == [ul405.justification]
    assert {e.metric: e.source for e in rows["removed"].evidence} == {
        "verbatim_rouge": "spec", "membership_auc": "spec", "forget_quality": "spec"}


# -- accept ---------------------------------------------------------------------------------------------


def test_accepted_warning_is_marked_and_not_blocking() -> None:
    _, _, feas = compiled(FIXTURES / "accept-warning.unlearn")
    (d,) = by_code(feas, "UL405")
    assert d.code == "UL405" and d.accepted and not d.blocking
    assert d.justification == "Forget set built from a full-corpus alias search."


def test_accepted_note() -> None:
    (d,) = by_code(compiled(FIXTURES / "accept-note.unlearn")[2], "UL501")
    assert d.code == "UL501" and d.severity == "note" and d.accepted


def test_accepting_an_error_is_refused_and_the_error_stays() -> None:
    path = FIXTURES / "accept-error.unlearn"
    _, _, feas = compiled(path)
    (err,) = by_code(feas, "UL301")
    (refusal,) = by_code(feas, "UL213")
    assert err.blocking and not err.accepted
    assert refusal.severity == "error" and refusal.blocking
    line = path.read_text(encoding="utf-8").splitlines()[refusal.span.line - 1]
    assert line.strip().startswith("accept UL301")
    assert refusal.span.column == line.index("UL301") + 1
    assert [lab.span for lab in refusal.labels] == [err.span]
    assert refusal.help and refusal.help[0] == err.help[0]


def test_unused_accept_is_reported_at_the_accept() -> None:
    path = FIXTURES / "accept-unused.unlearn"
    (d,) = by_code(compiled(path)[2], "UL214")
    assert d.code == "UL214" and d.severity == "warning" and "UL404" in d.message
    assert path.read_text(encoding="utf-8").splitlines()[d.span.line - 1].strip().startswith("accept UL404")


def _with_accepts(base: Path, *accepts: str) -> tuple[Spec, list[Diagnostic]]:
    text = base.read_text(encoding="utf-8").rstrip()
    assert text.endswith("}")
    text = text[:-1] + "".join(f"  accept {a}\n" for a in accepts) + "}\n"
    spec, front, feas = compile_text(text, base)
    assert not front, front
    return spec, feas


def test_accept_twice_and_accepts_of_front_end_codes() -> None:
    base = FIXTURES / "ul405-person-forget-only.unlearn"
    _, feas = _with_accepts(base, 'UL405 "a"', 'UL405 "b"', 'UL107 "c"', 'UL207 "d"')
    assert [d.accepted for d in by_code(feas, "UL405")] == [True]
    unused = by_code(feas, "UL214")
    assert len(unused) == 2
    assert any("twice" in d.message and d.labels for d in unused)
    assert any("UL107" in d.message and any("feasibility" in h for h in d.help) for d in unused)
    (refused,) = by_code(feas, "UL213")
    assert "UL207" in refused.message and not refused.labels


def test_accepted_warning_keeps_the_claim_unverifiable_but_marked() -> None:
    spec, _, feas = compiled(FIXTURES / "accept-warning.unlearn")
    for row in claim_statuses(spec.objectives[0], list(feas)):
        assert row.status == "cannot_be_verified"
        assert row.accepted == ["UL405"]
        # `removed` also rests on membership that six documents cannot show within the default tolerance (UL411)
        assert row.reasons == (["UL405", "UL411"] if row.claim == "removed" else ["UL405"])
        assert "accepted: Forget set built" in row.why


# -- labels, help, pages ----------------------------------------------------------------------------


LABELLED = [
    ("ul304-filter-open-weights.unlearn", "UL304", {"the weights leave your serving system", "an output filter"}),
    ("ul305-in-context.unlearn", "UL305", {"user-supplied information is in scope", "the goal is removal"}),
    ("ul301-character-removal.unlearn", "UL301", {"a `character` target is a `concept` by default"}),
    ("ul301-latent-person.unlearn", "UL301", {"the target is `latent` information", "the target"}),
    ("ul302-suppression-finetuning-open.unlearn", "UL302",
     {"the goal is suppression via the model", "the weights leave your control"}),
    ("ul303-removal-similar-claim.unlearn", "UL303", {"the goal is removal"}),
    ("ul307-exact-npo.unlearn", "UL307", {"`npo` is an approximate method"}),
    ("ul307-never-trained-hub.unlearn", "UL307", {"not built in: its training data and recipe are unknown"}),
    ("ul309-retrain-hub.unlearn", "UL309", {"not built in: its training data and recipe are unknown"}),
    ("ul406-output-only.unlearn", "UL406", {"an output metric"}),
    ("ul407-work-similar.unlearn", "UL407", {"a copyrighted work"}),
    ("ul410-spec-metric-uncomputable.unlearn", "UL410",
     {"not built in: it cannot be retrained as a reference", "cannot be computed"}),
    ("ul502-two-approximate.unlearn", "UL502", {"also approximate unlearning on this model"}),
    ("ul308-zero-side-effects.unlearn", "UL308", {"claimed here too"}),
]


@pytest.mark.parametrize(("name", "code", "messages"), LABELLED, ids=[f"{c}-{n}" for n, c, _ in LABELLED])
def test_multi_span_findings_label_every_contributing_span(name: str, code: str, messages: set[str]) -> None:
    found = by_code(compiled(FIXTURES / name)[2], code)
    assert found
    got = {lab.message for d in found for lab in d.labels}
    assert messages <= got, got


@pytest.mark.parametrize("path", FIXTURE_FILES, ids=[p.stem for p in FIXTURE_FILES])
def test_findings_are_well_formed(path: Path) -> None:
    spec, _, feas = compiled(path)
    names = {o.name for o in spec.objectives}
    claims = {c.name for o in spec.objectives for c in o.claims}
    for d in feas:
        assert d.message and not d.message[0].isupper() and not d.message.endswith("."), d.message
        assert d.help and d.help[0], f"{d.code} gives no achievable alternative"
        assert d.objective in names
        assert d.claim is None or d.claim in claims
        assert d.severity == CODES[d.code].severity
        assert d.span.file == str(path)
        primary = (d.span.line, d.span.column, d.span.end_line, d.span.end_column)
        spans = [(lab.span.line, lab.span.column, lab.span.end_line, lab.span.end_column) for lab in d.labels]
        assert primary not in spans and len(set(spans)) == len(spans)


@pytest.mark.parametrize("code", sorted(r.code for r in RULES))
def test_every_rule_has_a_complete_page(code: str) -> None:
    page = CODES[code]
    assert page.category == "feasibility"
    assert page.severity == {"3": "error", "4": "warning", "5": "note", "6": "error"}[code[2]]
    assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)+", page.name)
    for field in ("summary", "why", "example", "instead"):
        assert getattr(page, field).strip(), f"{code}: empty {field}"
    assert page.references and all(r.strip() for r in page.references)
    assert "arXiv:" in page.why or "Cooper et al." in page.why, f"{code}: the why names no source"
    assert page.example != page.instead


def test_rules_run_in_code_order_and_codes_are_unique() -> None:
    codes = [r.code for r in RULES]
    assert codes == sorted(codes) and len(set(codes)) == len(codes)
    assert {"UL301", "UL302", "UL303", "UL304", "UL305", "UL306", "UL307", "UL308", "UL401", "UL402", "UL403",
            "UL404", "UL405", "UL406", "UL407", "UL501", "UL502", "UL503", "UL504"} <= set(codes)


# -- claim statuses -------------------------------------------------------------------------------------


def _all_specs() -> list[Path]:
    return FIXTURE_FILES + sorted((ROOT / "specs").glob("*.unlearn"))


def _check_rows(obj: Objective, diags: list[Diagnostic], rows: list[ClaimStatusRow]) -> None:
    assert [r.claim for r in rows] == [c.name for c in obj.claims]
    for row in rows:
        mine = [d for d in diags if d.objective == obj.name and concerns(d, row.claim)]
        errors = [d for d in mine if d.severity == "error" and not d.accepted]
        warnings = [d for d in mine if d.severity == "warning"]
        if errors:
            assert row.status == "cannot_be_met"
        elif warnings:
            assert row.status == "cannot_be_verified"
        else:
            assert row.status == "supported"
        assert (row.status == "supported") == (not row.reasons)
        assert (row.status == "supported") == (not row.instead)
        assert set(row.accepted) <= {d.code for d in mine if d.accepted}
        for d in diags:  # a finding that names this claim always counts against it
            if d.claim == row.claim and d.objective == obj.name and d.severity == "error":
                assert row.status == "cannot_be_met"


@pytest.mark.parametrize("path", _all_specs(), ids=[f"{p.parent.name}/{p.stem}" for p in _all_specs()])
def test_no_claim_is_both_supported_and_cannot_be_met(path: Path) -> None:
    spec, front, feas = compile_text(path.read_text(encoding="utf-8"), path)
    diags = list(feas)
    for obj in spec.objectives:
        rows = claim_statuses(obj, diags)
        _check_rows(obj, diags, rows)
        by_claim: dict[str, set[str]] = {}
        for row in rows:
            by_claim.setdefault(row.claim, set()).add(row.status)
        assert all(not {"supported", "cannot_be_met"} <= s for s in by_claim.values())


def test_analysis_is_deterministic() -> None:
    for path in FIXTURE_FILES[:20]:
        spec, _, first = compile_text(path.read_text(encoding="utf-8"), path)
        assert analyse(spec) == list(first)


def test_rules_survive_objectives_with_fields_missing() -> None:
    """After resolve errors the objective is partial; every rule must still run without raising."""
    for name in ("architecture-example", "ul305-in-context", "ul410-no-reference-no-holdout", "ul308-zero-side-effects",
                 "ul304-filter-open-weights", "ul502-two-approximate"):
        path = FIXTURES / f"{name}.unlearn"
        lines = path.read_text(encoding="utf-8").splitlines()
        for i in range(len(lines)):
            if lines[i].strip() in ("", "}") or lines[i].rstrip().endswith("{"):
                continue
            text = "\n".join(lines[:i] + lines[i + 1:]) + "\n"
            syntax, pdiags = parse_bytes(text.encode(), str(path))
            if syntax is None:
                continue
            spec, _ = resolve(syntax, path.parent)
            for obj in spec.objectives:
                claim_statuses(obj, analyse(spec))


# -- evidence ---------------------------------------------------------------------------------------------


def _objective(name: str) -> Objective:
    return compiled(FIXTURES / name)[0].objectives[0]


def test_default_evidence_when_the_spec_gives_none() -> None:
    obj = _objective("clean-base.unlearn")
    removed = evidence_for(obj, "removed")
    assert [(e.metric, e.op, e.value, e.source) for e in removed] == [
        ("membership_auc", "<=", 0.60, "default"), ("forget_quality", ">=", 0.05, "default"),
        ("probe_accuracy_gap", "<=", 0.10, "default")]
    assert all(e.available and e.note for e in removed)
    not_generated = evidence_for(obj, "not_generated")
    assert {(e.metric, e.dataset) for e in not_generated} == {
        ("verbatim_rouge", "forget"), ("knowledge_rouge", "forget"), ("verbatim_rouge", "test"),
        ("knowledge_rouge", "test")}


def test_spec_evidence_replaces_the_defaults_for_the_claims_it_serves() -> None:
    obj = _objective("ul406-near-membership.unlearn")
    assert [(e.metric, e.source) for e in evidence_for(obj, "removed")] == [
        ("verbatim_rouge", "spec"), ("membership_auc", "spec"), ("forget_quality", "spec")]
    # ... but never drops scope coverage: the facts in scope keep their default check beside the spec's
    not_generated = {(e.metric, e.source) for e in evidence_for(obj, "not_generated")}
    assert ("verbatim_rouge", "spec") in not_generated and ("knowledge_rouge", "default") in not_generated
    assert ("verbatim_rouge", "default") not in not_generated  # the spec's bound replaces that default


def test_relearning_budget_default_is_stated() -> None:
    (item,) = evidence_for(_objective("ul402-open-no-budget.unlearn"), "robust_to_finetuning")
    assert item.metric == "relearn_recovery" and item.attack == "relearn"
    assert item.params == {"steps": DEFAULT_RELEARN_STEPS} and f"{DEFAULT_RELEARN_STEPS} relearning steps" in item.note
    (item,) = evidence_for(_objective("ul402-near-open-budget.unlearn"), "robust_to_finetuning")
    assert item.params == {"steps": 50} and "steps" not in item.note


def test_quantization_evidence_follows_the_release_precision() -> None:
    unstated = evidence_for(_objective("ul408-quantization-unstated.unlearn"), "robust_to_quantization")
    assert [e.params for e in unstated] == [{"precision": "int8"}, {"precision": "int4"}]
    (int4,) = evidence_for(_objective("ul408-near-int4.unlearn"), "robust_to_quantization")
    assert int4.params == {"precision": "int4"} and int4.attack == "quantize"


def test_side_effect_evidence_uses_the_preserve_tolerances() -> None:
    items = side_effect_evidence(_objective("ul308-near-tolerance.unlearn"))
    assert [(e.metric, e.value, e.source) for e in items] == [
        ("retain_utility_drop", 2.0, "spec"), ("neighbor_utility_drop", 5.0, "spec")]
    assert side_effect_evidence(_objective("ul404-no-preserve.unlearn")) == []


def test_missing_needs_are_named_for_a_model_that_cannot_be_retrained() -> None:
    obj = _objective("ul410-no-reference-no-holdout.unlearn")
    missing = {e.metric: e.missing for e in evidence_for(obj, "removed")}
    assert missing == {"membership_auc": ["holdout"], "forget_quality": ["reference"],
                       "probe_accuracy_gap": ["reference", "attribute"]}
    obj = _objective("ul410-near-reference-holdout.unlearn")
    assert all(e.available for e in evidence_for(obj, "removed"))


def test_evidence_of_claims_no_metric_decides() -> None:
    obj = _objective("ul410-compliant.unlearn")
    assert evidence_for(obj, "compliant") == []
    assert evidence_for(obj, "prevents_misuse") == []


# -- method choice and helpers --------------------------------------------------------------------------


def test_planned_method_table() -> None:
    assert planned_method(_objective("ul307-near-retrain.unlearn"), builtin=True).method == "retrain"
    choice = planned_method(_objective("ul307-never-trained-hub.unlearn"), builtin=False)
    assert (choice.family, choice.chosen_by) == ("approximate", "compiler") and "recipe" in choice.rationale
    assert planned_method(_objective("ul305-near-served-filter.unlearn"), builtin=True).method == "filter"
    assert planned_method(_objective("clean-base.unlearn"), builtin=True).chosen_by == "spec"


@pytest.mark.parametrize(("text", "states"), [
    ("GDPR Art. 17, request 2026-0113", False),
    ("Complies with GDPR Art. 17", True),
    ("Ensures compliance with the EU AI Act", True),
    ("Frontier safety policy FSP-2, hazardous-capability section", False),
    ("Compliance team request 42", False),
])
def test_basis_states_compliance(text: str, states: bool) -> None:
    assert states_compliance(text) is states


def test_vacuous_bound_message_states_the_edge_of_the_catalog_range() -> None:
    """UL412 names the edge the bound sits at, from the catalog: a drop is signed (a gain is below 0), so the
    message may not claim a drop lies between 0 and 100, only that it never exceeds 100."""
    path = FIXTURES / "ul412-bound-cannot-fail.unlearn"
    text = path.read_text(encoding="utf-8").replace(
        "    forget_quality >= 0.0\n", "    forget_quality >= 0.0\n    retain_utility_drop <= 100\n")
    _, _, feas = compile_text(text, path)
    messages = {d.message.split("`")[1].split()[0]: d.message for d in by_code(feas, "UL412")}
    assert set(messages) == {"membership_auc", "forget_quality", "retain_utility_drop"}
    for metric in ("membership_auc", "retain_utility_drop"):
        assert f"is never above {METRICS[metric].upper:g}," in messages[metric]
    assert f"is never below {METRICS['forget_quality'].lower:g}," in messages["forget_quality"]
    assert not any("between" in m for m in messages.values())


def test_feasibility_imports_no_ml_framework() -> None:
    code = ("import sys, unlearnspec.compiler.feasibility, unlearnspec.compiler.evidence_defaults\n"
            "bad = [m for m in ('torch', 'transformers', 'peft', 'numpy', 'accelerate') if m in sys.modules]\n"
            "assert not bad, bad\n")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, timeout=60)


@pytest.mark.parametrize(("fixture", "values", "sets"), [
    ("ul414-knob-not-read", {"beta": 0.1, "retain_weight": 0.0, "max_steps": 30}, "max_steps"),
    ("ul414-rmu-retain-weight", {"beta": 0.1, "retain_weight": 1.0, "max_steps": 60}, None),
    ("ul414-near-npo-reads-them", {"beta": 0.5, "retain_weight": 3.0, "max_steps": 30}, "max_steps, beta, retain_weight"),
])
def test_a_knob_the_method_does_not_read_stays_out_of_the_plan(fixture: str, values: dict[str, float],
                                                                sets: str | None) -> None:
    """UL414's other half: the plan (and its rationale) keeps the method's own value of a knob it does not read,
    and a knob it reads is applied as before. The defaults are the catalog's."""
    from unlearnspec.catalog import METHODS as CATALOG_METHODS
    from unlearnspec.compiler.check import plan_file

    plan, _ = plan_file(FIXTURES / f"{fixture}.unlearn")
    assert plan is not None
    (stage,) = [s for o in plan.objectives for s in o.stages if s.kind == "unlearn"]
    defaults = CATALOG_METHODS[stage.method].defaults
    assert defaults is not None
    for name, value in values.items():
        assert getattr(stage, name) == value, name
    if fixture.startswith("ul414-near"):
        assert (stage.beta, stage.retain_weight) != (defaults.beta, defaults.retain_weight)
    else:
        assert (stage.beta, stage.retain_weight) == (defaults.beta, defaults.retain_weight)
    said = re.search(r"the spec sets ([a-z_, ]+)", stage.rationale)
    assert (said.group(1).rstrip(", ") if said else None) == sets
    for knob in ("beta", "retain_weight"):
        assert (knob in stage.rationale) == (sets is not None and knob in sets)


def test_the_knobs_each_method_reads_agree_with_the_language_reference() -> None:
    """The catalog's `Method.reads` (what UL414 and the plan follow) against docs/language.md's knob table, which
    names the methods `beta` and `retain_weight` apply to."""
    from unlearnspec.catalog import METHODS as CATALOG_METHODS
    from unlearnspec.catalog.vocab import METHOD_FIELDS

    table = (ROOT / "docs" / "language.md").read_text(encoding="utf-8")
    for knob in ("beta", "retain_weight"):
        row = next(line for line in table.splitlines() if line.startswith(f"| `{knob}` |"))
        documented = {m for m in CATALOG_METHODS if f"`{m}`" in row.split("|")[3]}
        assert {m.name for m in CATALOG_METHODS.values() if m.reads(knob)} == documented, knob
    for name in ("retrain", "filter", "unknown"):
        assert not any(CATALOG_METHODS[name].reads(k) for k in METHOD_FIELDS), name
    trained = [m for m in CATALOG_METHODS.values() if m.defaults is not None]
    assert all(m.reads(k) for m in trained for k in ("adapter", "steps", "learning_rate", "batch_size", "seed"))
