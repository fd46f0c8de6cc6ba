"""Auditing a given checkpoint: `unlearned "folder"` and `method unknown` (docs/models.md, auditing a checkpoint).

Fast: the compiler's side (resolve, rules, plan), the runtime's hash check before anything is loaded, and the
report's wording, on small folders made here. The end-to-end audit of the built-in model (the retrained reference
passes the removal claims, the original fails them) is in tests/test_audit_run.py (slow).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from unlearnspec.cli import main
from unlearnspec.compiler.check import check_bytes, plan_file
from unlearnspec.compiler.fmt import format_spec
from unlearnspec.compiler.parse import parse_bytes
from unlearnspec.plan import GivenStage, Plan, UnlearnStage
from unlearnspec.records import sha256_path
from unlearnspec.report.render import render_html, render_markdown
from unlearnspec.report.verdict import audit_from_plan, build_objective_report, build_report
from unlearnspec.runtime.preflight import verify_inputs
from unlearnspec.runtime.rundir import RunError

ROOT = Path(__file__).resolve().parents[1]
SPECS = ROOT / "specs"

SPEC = """unlearnspec 1

objective "audit" {
  model     "builtin:tiny-bios"
  unlearned "vendor/ckpt"
  target person "Jane Doe" {
    forget "data/jane-doe.jsonl"
  }
  goal   removal
  METHOD
  preserve {
    retain  "data/retain.jsonl"
    utility drop <= 5%
  }
  claims {
    removed
  }
}
"""


def spec_text(method: str = "method unknown", **swap: str) -> str:
    text = SPEC.replace("METHOD", method)
    for old, new in swap.items():
        text = text.replace(old.replace("_", " "), new)
    return text


@pytest.fixture()
def work(tmp_path: Path) -> Path:
    (tmp_path / "data").mkdir()
    for name in ("jane-doe.jsonl", "retain.jsonl"):
        shutil.copy(SPECS / "data" / name, tmp_path / "data" / name)
    ckpt = tmp_path / "vendor" / "ckpt"
    ckpt.mkdir(parents=True)
    (ckpt / "config.json").write_text('{"model_type": "gpt2"}\n')
    (ckpt / "model.safetensors").write_bytes(b"weights-v1")
    adapter = tmp_path / "vendor" / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text('{"peft_type": "LORA"}\n')
    (adapter / "adapter_model.safetensors").write_bytes(b"lora-v1")
    return tmp_path


def write(work: Path, text: str, name: str = "audit.unlearn") -> Path:
    path = work / name
    path.write_text(text, encoding="utf-8")
    return path


def codes(path: Path) -> dict[str, str]:
    result = check_bytes(path.read_bytes(), path.name, path.parent)
    return {d.code: d.severity for d in result.diagnostics}


def planned(path: Path) -> Plan:
    plan, result = plan_file(path)
    assert plan is not None, [d.message for d in result.diagnostics]
    return plan


# -- the plan ---------------------------------------------------------------------------------------


def test_the_plan_has_no_unlearn_stage_and_pins_the_checkpoint(work: Path) -> None:
    plan = planned(write(work, spec_text()))
    op = plan.objectives[0]
    kinds = [s.kind for s in op.stages]
    assert "unlearn" not in kinds and not any(isinstance(s, UnlearnStage) for s in op.stages)
    assert kinds[:4] == ["prepare", "reference", "given", "evaluate"]
    given = next(s for s in op.stages if isinstance(s, GivenStage))
    assert (given.source, given.form, given.method, given.family) == ("vendor/ckpt", "model", "unknown", "unknown")
    # the folder hash is the one the runtime computes, and every file is an input with its own sha256
    assert given.sha256 == sha256_path(work / "vendor" / "ckpt")
    inputs = {f.path: f for f in plan.inputs}
    for name in ("config.json", "model.safetensors"):
        f = inputs[f"vendor/ckpt/{name}"]
        assert f.role == "unlearned"
        assert f.sha256 == hashlib.sha256((work / "vendor" / "ckpt" / name).read_bytes()).hexdigest()
    # the rest is planned as for a model unlearned here: the same reference, evidence and verdict stages
    same = planned(write(work, spec_text("method npo").replace('  unlearned "vendor/ckpt"\n', ""), "here.unlearn"))
    here = same.objectives[0]
    assert [c.model_dump() for c in op.checks] == [c.model_dump() for c in here.checks]
    assert [(c.claim, c.checks) for c in op.claims] == [(c.claim, c.checks) for c in here.claims]
    assert op.stages[1] == here.stages[1]  # the reference: the built-in recipe retrained without the forget set


def test_a_stated_method_is_recorded_as_stated(work: Path) -> None:
    given = next(s for s in planned(write(work, spec_text("method npo"))).objectives[0].stages
                 if isinstance(s, GivenStage))
    assert (given.method, given.family) == ("npo", "approximate")
    # no method at all reads as unknown: the conservative reading
    none = planned(write(work, spec_text(""), "none.unlearn")).objectives[0]
    assert next(s for s in none.stages if isinstance(s, GivenStage)).method == "unknown"


def test_an_adapter_folder(work: Path) -> None:
    plan = planned(write(work, spec_text().replace("vendor/ckpt", "vendor/adapter")))
    given = next(s for s in plan.objectives[0].stages if isinstance(s, GivenStage))
    assert given.form == "adapter" and given.sha256 == sha256_path(work / "vendor" / "adapter")


def test_formatting_keeps_the_new_field(work: Path) -> None:
    messy = spec_text().replace('  unlearned "vendor/ckpt"', 'unlearned    "vendor/ckpt"   # from the vendor')
    syntax, _ = parse_bytes(messy.encode(), "x.unlearn")
    assert syntax is not None
    once = format_spec(syntax)
    assert '  unlearned "vendor/ckpt"  # from the vendor' in once
    again, _ = parse_bytes(once.encode(), "x.unlearn")
    assert again is not None and format_spec(again) == once


# -- diagnostics ------------------------------------------------------------------------------------


def test_a_missing_folder_is_a_diagnostic_with_a_caret(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(work, spec_text().replace("vendor/ckpt", "vendor/gone"))
    assert main(["check", str(path)]) == 1
    out = capsys.readouterr().out
    assert "error[UL207]: unlearned model folder `vendor/gone` does not exist" in out
    line = next(i for i, t in enumerate(spec_text().splitlines(), 1) if "unlearned" in t)
    assert f"audit.unlearn:{line}:13" in out
    assert '|             ^^^^^^^^^^^^^' in out  # under the quoted path
    assert main(["run", str(path), "--out", str(work / "run")]) == 2
    assert not (work / "run").exists()


@pytest.mark.parametrize(("swap", "message"), [
    ("empty", "is neither a model folder"), ("noweights", "has no safetensors weights"),
    ("builtin", "`unlearned` names a local folder"),
])
def test_folders_that_are_not_checkpoints(work: Path, swap: str, message: str) -> None:
    (work / "empty").mkdir()
    (work / "noweights").mkdir()
    (work / "noweights" / "config.json").write_text("{}")
    target = {"empty": "empty", "noweights": "noweights", "builtin": "builtin:tiny-bios"}[swap]
    path = write(work, spec_text().replace("vendor/ckpt", target))
    result = check_bytes(path.read_bytes(), path.name, work)
    found = [d for d in result.diagnostics if d.code == "UL207"]
    assert found and message in found[0].message


def test_method_unknown_needs_a_checkpoint(work: Path) -> None:
    path = write(work, spec_text().replace('  unlearned "vendor/ckpt"\n', ""))
    assert codes(path).get("UL219") == "error"
    assert "UL219" not in codes(write(work, spec_text(), "ok.unlearn"))


@pytest.mark.parametrize("method", ["method npo {\n    steps 40\n  }", "method filter"])
def test_an_audit_trains_nothing(work: Path, method: str) -> None:
    assert codes(write(work, spec_text(method))).get("UL220") == "error"


def test_an_audit_is_not_a_chain(work: Path) -> None:
    text = spec_text() + SPEC.replace('"audit"', '"second"').replace("METHOD", 'after "audit"').split("\n", 1)[1]
    assert codes(write(work, text)).get("UL220") == "error"


def test_an_unknown_method_cannot_claim_exactness(work: Path) -> None:
    exact = codes(write(work, spec_text().replace("goal   removal", "goal   removal\n  guarantee exact")))
    assert exact.get("UL307") == "error"
    never = codes(write(work, spec_text().replace("    removed", "    as_if_never_trained"), "never.unlearn"))
    assert never.get("UL307") == "error"
    certified = codes(write(work, spec_text().replace("goal   removal", "goal   removal\n  guarantee certified"),
                            "cert.unlearn"))
    assert certified.get("UL403") == "warning"
    # nothing is assumed the other way either: `removed` is left to the measurements, not ruled out (UL601)
    assert not {"UL307", "UL601", "UL309"} & set(codes(write(work, spec_text(), "plain.unlearn")))


def test_a_stated_retraining_is_not_judged_by_what_the_compiler_could_retrain(work: Path) -> None:
    text = spec_text("method retrain").replace('"builtin:tiny-bios"', '"acme/helpdesk-7b"')
    found = codes(write(work, text))
    assert "UL309" not in found  # the vendor retrained; nothing is retrained here
    assert "UL309" in codes(write(work, text.replace('  unlearned "vendor/ckpt"\n', ""), "here.unlearn"))


# -- the runtime refuses a changed checkpoint -----------------------------------------------------------


@pytest.mark.parametrize("change", ["edit", "add", "remove"])
def test_a_changed_folder_is_refused_before_use(work: Path, change: str) -> None:
    plan = planned(write(work, spec_text()))
    verify_inputs(plan, work)  # unchanged: accepted
    ckpt = work / "vendor" / "ckpt"
    if change == "edit":
        (ckpt / "model.safetensors").write_bytes(b"weights-v2")
    elif change == "add":
        (ckpt / "extra.safetensors").write_bytes(b"more")
    else:
        shutil.rmtree(ckpt)
    with pytest.raises(RunError) as err:
        verify_inputs(plan, work)
    assert err.value.code == "UL702"
    assert "unlearned model folder `vendor/ckpt`" in " ".join(err.value.help)


# -- the report says the model was given -------------------------------------------------------------


def test_the_report_says_the_model_was_given(work: Path) -> None:
    plan = planned(write(work, spec_text()))
    op = plan.objectives[0]
    given = next(s for s in op.stages if isinstance(s, GivenStage))
    obj = build_objective_report(op, {})
    assert obj.given is not None and obj.given.sha256 == given.sha256 and obj.given.method == "unknown"
    import datetime as dt

    t = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    report = build_report([obj], audit_from_plan(plan, device="cpu", started_at=t, finished_at=t, wall_seconds=0.0,
                                                 libraries={}, seeds={}))
    md, html = render_markdown(report), render_html(report)
    for text in (md, html):
        assert "given, not produced by this run" in text and given.sha256 in text
        assert "unknown (not stated)" in text and "vendor/ckpt" in text
    data = json.loads(report.model_dump_json())
    assert data["objectives"][0]["given"]["source"] == "vendor/ckpt"
    # a report of a model unlearned here has no `given` entry at all
    here = planned(write(work, spec_text("method npo").replace('  unlearned "vendor/ckpt"\n', ""), "here.unlearn"))
    assert "given" not in json.loads(build_objective_report(here.objectives[0], {}).model_dump_json())


# -- editor support ------------------------------------------------------------------------------------


def test_the_language_server_knows_the_audit_words(work: Path) -> None:
    pytest.importorskip("pygls")
    from lsprotocol import types as lsp

    from unlearnspec.lsp import features

    path = write(work, spec_text())
    text = path.read_text()
    doc = features.Document(uri=path.as_uri(), text=text)

    def at(needle: str, offset: int = 0) -> lsp.Position:
        line = next(i for i, t in enumerate(text.splitlines()) if needle in t)
        return lsp.Position(line=line, character=text.splitlines()[line].index(needle) + offset)

    fields = {i.label for i in features.completion(doc, at("goal"))}
    assert "unlearned" in fields
    methods = {i.label for i in features.completion(doc, at("unknown", len("unknown")))}
    assert "unknown" in methods
    folders = {i.label: i.detail for i in features.completion(doc, at('"vendor/ckpt"', 1))}
    assert folders == {"vendor/ckpt": "model folder", "vendor/adapter": "peft adapter"}
    hover = features.hover(doc, at("unknown", 1))
    assert hover is not None and "nothing runs" in str(hover.contents)
    field_hover = features.hover(doc, at("unlearned", 1))
    assert field_hover is not None and "unlearned" in str(field_hover.contents)


def test_no_request_continues_an_audit(work: Path) -> None:
    second = SPEC.replace('"audit"', '"next"').replace('  unlearned "vendor/ckpt"\n', "").replace(
        "METHOD", 'method npo\n  after  "audit"').split("\n", 1)[1]
    result = check_bytes((spec_text() + second).encode(), "chain.unlearn", work)
    found = [d for d in result.diagnostics if d.code == "UL220"]
    assert [(d.objective, d.severity) for d in found] == [("next", "error")]


def test_diff_reports_a_changed_checkpoint(work: Path) -> None:
    from unlearnspec.compiler.semdiff import diff_plans

    before = planned(write(work, spec_text()))
    (work / "vendor" / "ckpt" / "model.safetensors").write_bytes(b"weights-v2")
    after = planned(write(work, spec_text()))
    changes = diff_plans(before, after)
    assert [(c.what, c.subject) for c in changes if c.what == "unlearned"] == [("unlearned", "unlearned")]
    assert [(c.what, c.subject) for c in changes if c.what == "checkpoint file"] == [
        ("checkpoint file", "vendor/ckpt/model.safetensors")]
    here = planned(write(work, spec_text("method npo").replace('  unlearned "vendor/ckpt"\n', "")))
    assert any(c.what == "unlearned" and c.new is None for c in diff_plans(before, here))


def test_the_model_card_names_the_audited_checkpoint(work: Path) -> None:
    import datetime as dt

    from unlearnspec.audit.card import render_card

    plan = planned(write(work, spec_text("method retrain")))
    t = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    report = build_report([build_objective_report(plan.objectives[0], {})],
                          audit_from_plan(plan, device="cpu", started_at=t, finished_at=t, wall_seconds=0.0,
                                          libraries={}, seeds={}))
    card = render_card(report)
    sha = sha256_path(work / "vendor" / "ckpt")
    assert f"given, not produced by this run: `vendor/ckpt`, sha256 `{sha}`" in card
    assert "as stated by whoever made it" in card
    assert "exact retraining without the forgotten data" not in card  # the vendor's word, not this run's


def test_a_file_that_cannot_be_hashed_is_refused(work: Path) -> None:
    import os

    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs here")
    os.mkfifo(work / "vendor" / "ckpt" / "pipe")  # reading it would wait forever: never opened
    path = write(work, spec_text())
    found = [d for d in check_bytes(path.read_bytes(), path.name, work).diagnostics if d.code == "UL207"]
    assert found and found[0].message == "`pipe` in unlearned model folder `vendor/ckpt` is not a readable file"


def test_run_refuses_a_plan_whose_checkpoint_changed(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(work, spec_text())
    assert main(["plan", str(path), "-o", str(work / "plan.json")]) == 0
    (work / "vendor" / "ckpt" / "model.safetensors").write_bytes(b"weights-v2")
    capsys.readouterr()
    assert main(["run", str(work / "plan.json"), "--out", str(work / "run")]) == 2
    err = capsys.readouterr()
    assert "UL702" in err.out + err.err and "vendor/ckpt" in err.out + err.err
    assert not (work / "run").exists()


def test_a_checkpoint_is_never_a_serving_filter(work: Path) -> None:
    """UL305's exemption is for an output filter in a served system; an unknown method gets none of it."""
    text = spec_text().replace("  claims {\n    removed", "  release api\n  scope {\n    prompts in_context\n  }\n"
                               "  claims {\n    not_generated")
    assert codes(write(work, text)).get("UL305") == "error"


def test_audits_add_no_sequential_request(work: Path) -> None:
    """UL502 counts requests applied one after another to one model; audits apply none."""
    second = SPEC.replace('"audit"', '"other"').replace('  unlearned "vendor/ckpt"\n', "").replace(
        "METHOD", "method npo").split("\n", 1)[1]
    third = second.replace('"other"', '"third"')
    assert "UL502" not in codes(write(work, spec_text("method npo") + second))
    assert codes(write(work, spec_text("method npo") + second + third, "three.unlearn")).get("UL502") == "note"
