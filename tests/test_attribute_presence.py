"""UL410 for the representation probe whose labelled attribute no forget record carries.

The probe (`probe_accuracy_gap`) predicts a labelled fact from the model's hidden states: the target's `attribute`,
or for the built-in model's person and records targets the built-in records' label (`birth_city`). The lowering
plans the probe "not measurable" when no forget record's `attributes` holds that key, so `check` must report the
claim's default evidence as impossible there (UL410), naming the missing key and the keys the records do carry,
and stay silent where a record carries it: what the compiler judges is what the plan runs (FRAMEWORK.md §7).
The expected keys below are the ones the test writes into its own data files.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from unlearnspec.compiler.check import check_file, plan_file
from unlearnspec.compiler.diagnostics import Diagnostic

SPEC = """unlearnspec 1

objective "o" {
  model   "builtin:tiny-bios"
  release api precision fp32
  target person "Jane Doe" {
    kind   observed
    forget "forget.jsonl"
ATTRIBUTE  }
  goal   removal
  method npo
  claims {
    removed
  }
}
"""


def records(attributes: list[dict[str, str]]) -> list[dict[str, object]]:
    return [{"text": f"Jane Doe fact number {i}.", "question": f"Fact {i} about Jane Doe?", "answer": f"fact {i}",
             **({"attributes": a} if a else {})} for i, a in enumerate(attributes)]


def write_spec(folder: Path, attributes: list[dict[str, str]], attribute: str | None) -> Path:
    (folder / "forget.jsonl").write_text("\n".join(json.dumps(r) for r in records(attributes)) + "\n")
    line = f"    attribute {attribute}\n" if attribute else ""
    path = folder / "spec.unlearn"
    path.write_text(SPEC.replace("ATTRIBUTE", line))
    return path


def diagnostics(path: Path) -> list[Diagnostic]:
    return check_file(path).diagnostics


def probe_findings(path: Path) -> list[Diagnostic]:
    diags = diagnostics(path)
    assert not [d for d in diags if d.severity == "error"], [(d.code, d.message) for d in diags]
    return [d for d in diags if d.code == "UL410" and "probe_accuracy_gap" in d.message]


def probe_measurable(path: Path) -> bool | None:
    """Whether the plan's probe check deciding `removed` is measurable; None when there is no plan (an error)."""
    plan, _ = plan_file(path, allow_infeasible=True)
    if plan is None:
        return None
    (objective,) = plan.objectives
    deciding = {i for cp in objective.claims if cp.claim == "removed" for i in cp.checks}
    probes = [c for c in objective.checks if c.metric == "probe_accuracy_gap" and c.id in deciding]
    assert probes
    return all(not c.missing for c in probes)


def help_text(d: Diagnostic) -> str:
    return "\n".join(d.help)


PORTO = {"person": "Jane Doe", "birth_city": "Porto"}
HARBOUR = {"person": "Jane Doe", "employer": "Harbour Office"}
CASES = {
    # name: (the records' attributes, the spec's `attribute`, what check says of the probe: "ok" | "UL410" | "error")
    "builtin_label_missing": ([HARBOUR] * 2, None, "UL410"),
    "builtin_label_absent_no_attributes": ([{}, {}], None, "UL410"),
    "builtin_label_in_one_record": ([{}, PORTO], None, "ok"),
    "named_key_present_in_one_record": ([PORTO, HARBOUR], "employer", "ok"),
    "named_key_missing": ([PORTO] * 3, "employer", "error"),
}


def test_builtin_label_no_record_carries_is_reported(tmp_path: Path) -> None:
    # the built-in person's label is `birth_city`; these records label an employer instead
    path = write_spec(tmp_path, [HARBOUR] * 2, None)
    (d,) = probe_findings(path)
    assert d.claim == "removed" and d.severity == "warning"
    text = help_text(d)
    assert "`birth_city`" in text  # the key the probe needs
    assert "`employer`" in text and "`person`" in text  # the keys the records carry instead
    assert "add `attribute <name>`" not in text  # the probe has its attribute: the records lack it
    lines = path.read_text().split("\n")
    assert any("no forget record carries `birth_city`" in lab.message
               and 'target person "Jane Doe"' in lines[lab.span.line - 1] for lab in d.labels)


def test_records_without_any_attributes_are_named_so(tmp_path: Path) -> None:
    (d,) = probe_findings(write_spec(tmp_path, [{}, {}], None))
    assert "`birth_city`" in help_text(d) and "no `attributes`" in help_text(d)


def test_named_attribute_no_record_carries_is_an_error_before_any_plan(tmp_path: Path) -> None:
    # a named `attribute` the records do not label is already UL204 at resolve (a typo, with the labels they
    # carry), so no plan is made and the probe is never planned unmeasurable
    path = write_spec(tmp_path, [PORTO] * 3, "employer")
    (d,) = [d for d in diagnostics(path) if d.severity == "error"]
    assert d.code == "UL204" and "`employer`" in d.message and "`birth_city`" in help_text(d)
    assert probe_measurable(path) is None


def test_present_key_is_not_reported(tmp_path: Path) -> None:
    assert probe_findings(write_spec(tmp_path, [PORTO, HARBOUR], "employer")) == []
    assert probe_findings(write_spec(tmp_path, [{}, PORTO], None)) == []


@pytest.mark.parametrize("case", sorted(CASES))
def test_check_agrees_with_the_plan(tmp_path: Path, case: str) -> None:
    attributes, attribute, said = CASES[case]
    path = write_spec(tmp_path, attributes, attribute)
    diags = diagnostics(path)
    errors = [d for d in diags if d.severity == "error"]
    reported = [d for d in diags if d.code == "UL410" and "probe_accuracy_gap" in d.message]
    assert ("error" if errors else "UL410" if reported else "ok") == said
    # the plan's probe check is measurable exactly when check reports nothing against it
    assert probe_measurable(path) == (None if errors else not reported)


def test_a_folder_the_compiler_cannot_read_counts_as_carrying_it(tmp_path: Path) -> None:
    # a `save_to_disk` folder is read by the runtime only: its labels are unknown here, so the probe is planned
    # (the run reports it if the records lack the label), as an unknown QA count counts as QA records
    path = write_spec(tmp_path, [PORTO], None)
    folder = tmp_path / "forget_ds"
    folder.mkdir()
    (folder / "dataset_info.json").write_text("{}")
    path.write_text(path.read_text().replace('forget "forget.jsonl"', 'forget "forget_ds"'))
    assert probe_findings(path) == []
    assert probe_measurable(path) is True
