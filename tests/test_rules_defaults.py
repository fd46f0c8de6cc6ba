"""UL505: an `evidence` block that names some of a claim's metrics replaces all of the claim's default checks.

A claim is decided by the `evidence` bounds of its evidence family or, when the block names none of them, by
its documented defaults (docs/language.md, "Claims"). The note says which defaults will not decide the claim,
at the evidence lines, with a fix that writes them back as `fmt` would lay them out. The expected defaults and
their bounds below are the ones docs/language.md's claim table states, written out by hand.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from unlearnspec.compiler.ast import Spec
from unlearnspec.compiler.diagnostics import Diagnostic
from unlearnspec.compiler.evidence_defaults import evidence_for
from unlearnspec.compiler.explain import explain_spec
from unlearnspec.compiler.feasibility import analyse, claim_statuses
from unlearnspec.compiler.fixes import apply_edits
from unlearnspec.compiler.fmt import format_spec
from unlearnspec.compiler.parse import parse_bytes
from unlearnspec.compiler.resolve import resolve

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "rules"

# The built-in model (it can be retrained as the reference, its corpus has holdout people and labelled
# attributes), so every default of `removed` can be computed: membership_auc, forget_quality, probe_accuracy_gap.
BASE = """unlearnspec 1

objective "o" {
  model   "builtin:tiny-bios"
  release api precision fp32
  target person "Jane Doe" {
    kind   observed
    forget "data/forget.jsonl"
    test   "data/test.jsonl"
  }
  goal   removal
  method npo
  preserve {
    retain    "data/retain.jsonl"
    neighbors "data/neighbors.jsonl"
    utility   drop <= 2%
  }
  claims {
CLAIMS
  }
  evidence {
EVIDENCE
  }
}
"""


def spec_text(claims: list[str], evidence: list[str], base: str = BASE) -> str:
    return base.replace("CLAIMS", "\n".join("    " + c for c in claims)).replace(
        "EVIDENCE", "\n".join("    " + e if e else "" for e in evidence))


def compile_text(text: str) -> tuple[Spec, list[Diagnostic]]:
    path = FIXTURES / "ul505-test.unlearn"  # never written: the data paths resolve against tests/rules/
    syntax, pdiags = parse_bytes(text.encode("utf-8"), str(path))
    assert syntax is not None, pdiags
    spec, rdiags = resolve(syntax, path.parent)
    assert not [d for d in pdiags + rdiags if d.severity == "error"], [(d.code, d.message) for d in pdiags + rdiags]
    return spec, analyse(spec)


def notes(text: str) -> list[Diagnostic]:
    return [d for d in compile_text(text)[1] if d.code == "UL505"]


def line_of(text: str, needle: str) -> int:
    return next(i for i, ln in enumerate(text.split("\n"), 1) if needle in ln)


# -- when it fires, and what it says --------------------------------------------------------------------


def test_one_metric_of_removed_drops_its_other_defaults() -> None:
    text = spec_text(["removed"], ["membership_auc <= 0.55"])
    (d,) = notes(text)
    assert d.severity == "note" and d.claim == "removed" and d.objective == "o"
    # at the evidence line, which is what narrows the claim
    assert (d.span.line, d.span.column) == (line_of(text, "membership_auc <= 0.55"), 5)
    assert "`forget_quality >= 0.05`" in d.message and "`probe_accuracy_gap <= 0.1`" in d.message
    assert "membership_auc >= " not in d.message and "membership_auc <= 0.6" not in d.message
    assert any(lab.span.line == line_of(text, "    removed") for lab in d.labels)
    assert d.help and "forget_quality >= 0.05" in d.help[0] and "probe_accuracy_gap <= 0.1" in d.help[0]


def test_each_narrowed_claim_gets_its_own_note() -> None:
    # membership_auc serves both removal claims: `as_if_never_trained` (defaults forget_quality, privleak) loses
    # both of its defaults, `removed` loses forget_quality and the probe
    base = BASE.replace("method npo", "method retrain")  # only retraining can claim `as_if_never_trained` (UL307)
    text = spec_text(["removed", "as_if_never_trained"], ["membership_auc <= 0.55"], base)
    found = {d.claim: d for d in notes(text)}
    assert set(found) == {"removed", "as_if_never_trained"}
    aint = found["as_if_never_trained"].message
    # privleak is a percentage (docs/language.md: `privleak <= 10`, percent), written with its sign as resolve takes it
    assert "`forget_quality >= 0.05`" in aint and "`privleak <= 10%`" in aint and "probe_accuracy_gap" not in aint
    (fix,) = found["as_if_never_trained"].fixes
    spec, diags = compile_text(apply_edits(text, fix.edits))
    assert not [d for d in diags if d.code == "UL505" and d.claim == "as_if_never_trained"]
    assert {(i.metric, i.value) for i in evidence_for(spec.objectives[0], "as_if_never_trained")} == {
        ("membership_auc", 0.55), ("forget_quality", 0.05), ("privleak", 10)}


def test_other_evidence_lines_of_the_claim_are_labelled() -> None:
    text = spec_text(["removed"], ["verbatim_rouge <= 0.20", "membership_auc <= 0.55"])
    (d,) = notes(text)
    assert d.span.line == line_of(text, "verbatim_rouge <= 0.20")
    assert line_of(text, "membership_auc <= 0.55") in {lab.span.line for lab in d.labels}


def test_not_generated_similar_loses_the_defaults_the_block_leaves_out() -> None:
    base = BASE.replace("goal   removal\n  method npo", "goal   suppression via model\n  method refusal")
    text = spec_text(["not_generated_similar"], ["leak_rate <= 0.05"], base)
    (d,) = notes(text)
    for default in ("verbatim_rouge <= 0.2", "knowledge_rouge <= 0.2", "paraphrase_rouge <= 0.2"):
        assert f"`{default}`" in d.message


# -- when it does not ---------------------------------------------------------------------------------------


def test_silent_when_the_block_writes_every_default_even_with_other_bounds() -> None:
    text = spec_text(["removed"], ["verbatim_rouge <= 0.10", "membership_auc <= 0.55", "forget_quality >= 0.10",
                                   "probe_accuracy_gap <= 0.05"])
    assert notes(text) == []


def test_silent_when_the_block_names_no_metric_of_the_claim() -> None:
    text = spec_text(["removed"], ["neighbor_utility_drop <= 5%"])
    assert notes(text) == []


def test_silent_for_claims_whose_defaults_come_from_the_scope() -> None:
    # spec evidence never drops a scope-derived check (evidence_defaults.evidence_for keeps them)
    text = spec_text(["not_generated"], ["leak_rate <= 0.05"])
    assert notes(text) == []


def test_silent_for_claims_whose_family_is_their_defaults() -> None:
    text = spec_text(["robust_to_finetuning steps 20"], ["relearn_recovery <= 0.40"])
    assert notes(text) == []


def test_silent_when_the_defaults_left_out_could_not_be_computed_anyway() -> None:
    # A hub model with holdout data but no reference: the representation probe cannot run (UL410 says so when the
    # block is silent), so the two bounds UL410's help suggests writing are the whole evidence that can run.
    partly = (FIXTURES / "ul410-default-partly-uncomputable.unlearn").read_text(encoding="utf-8")
    text = partly.replace("  claims {\n    removed\n  }",
                          "  claims {\n    removed\n  }\n  evidence {\n    membership_auc <= 0.60\n"
                          "    forget_quality >= 0.05\n  }")
    assert "evidence {" in text
    spec, diags = compile_text(text)
    assert not [d for d in diags if d.code in ("UL505", "UL410")]
    # ... and where only some of the defaults left out are uncomputable, only the others are named
    text = text.replace("    forget_quality >= 0.05\n", "")
    (d,) = [d for d in compile_text(text)[1] if d.code == "UL505"]
    assert "forget_quality >= 0.05" in d.message and "probe_accuracy_gap" not in d.message


def test_the_probe_is_not_offered_where_the_plan_has_no_attribute_for_it() -> None:
    # The built-in records label a person's birth city; a `work` target's records carry no labelled attribute, so
    # the plan marks the representation probe "not measurable as planned" (docs/language.md: it needs a labelled
    # `attribute`): the note names forget quality only, which the retrained built-in model can compute.
    work = (BASE.replace('target person "Jane Doe" {', 'target work "The Lantern Keeper\'s Daughter" {')
            .replace('    test   "data/test.jsonl"\n', ""))
    (d,) = notes(spec_text(["removed"], ["membership_auc <= 0.55"], work))
    assert "`forget_quality >= 0.05`" in d.message and "probe_accuracy_gap" not in d.message
    # ... and a `work` target that names its labelled attribute gets it offered again
    labelled = work.replace('    forget "data/forget.jsonl"\n', '    forget "data/forget.jsonl"\n    attribute birth_city\n')
    (d,) = notes(spec_text(["removed"], ["membership_auc <= 0.55"], labelled))
    assert "`probe_accuracy_gap <= 0.1`" in d.message


def test_silent_for_a_claim_that_cannot_be_met() -> None:
    # a suppression objective cannot claim removal (UL302): the missing defaults are not what is wrong with it
    base = BASE.replace("goal   removal\n  method npo", "goal   suppression via model\n  method refusal")
    diags = compile_text(spec_text(["removed"], ["membership_auc <= 0.55"], base))[1]
    assert {d.code for d in diags if d.claim == "removed"} >= {"UL302"}
    assert not [d for d in diags if d.code == "UL505"]


# -- the fix ----------------------------------------------------------------------------------------------------


def fixed(text: str) -> str:
    (d,) = notes(text)
    (fix,) = d.fixes
    assert not fix.preferred  # it adds checks the claim must pass: a person applies it
    return apply_edits(text, fix.edits)


def test_fix_writes_the_defaults_into_the_block_aligned_as_fmt_would() -> None:
    text = format_spec(parse_bytes(spec_text(["removed"], ["membership_auc <= 0.55"]).encode(), "x")[0])  # type: ignore[arg-type]
    new = fixed(text)
    block = new[new.index("  evidence {"):new.index("  }\n}")]
    assert block == ("  evidence {\n"
                     "    membership_auc     <= 0.55\n"
                     "    forget_quality     >= 0.05\n"
                     "    probe_accuracy_gap <= 0.1\n")
    syntax, _ = parse_bytes(new.encode(), "x")
    assert syntax is not None and format_spec(syntax) == new
    spec, diags = compile_text(new)
    assert not [d for d in diags if d.code == "UL505"]
    # the claim is now decided by the bound written and both defaults
    got = {(i.metric, i.op, i.value, i.source) for i in evidence_for(spec.objectives[0], "removed")}
    assert got == {("membership_auc", "<=", 0.55, "spec"), ("forget_quality", ">=", 0.05, "spec"),
                   ("probe_accuracy_gap", "<=", 0.1, "spec")}


def test_fix_keeps_a_run_split_by_a_blank_line_and_aligns_confidence() -> None:
    # the lines after the blank line are their own run: only they are realigned (`confidence` among them)
    text = format_spec(parse_bytes(spec_text(["removed"], ["knowledge_rouge <= 0.20", "", "confidence 95%",
                                                           "membership_auc <= 0.55"]).encode(), "x")[0])  # type: ignore[arg-type]
    new = fixed(text)
    block = new[new.index("  evidence {"):new.index("  }\n}")]
    assert block == ("  evidence {\n"
                     "    knowledge_rouge <= 0.20\n"
                     "\n"
                     "    confidence         95%\n"
                     "    membership_auc     <= 0.55\n"
                     "    forget_quality     >= 0.05\n"
                     "    probe_accuracy_gap <= 0.1\n")
    syntax, _ = parse_bytes(new.encode(), "x")
    assert syntax is not None and format_spec(syntax) == new


def test_fix_in_a_block_on_one_line_still_parses_and_resolves_the_note() -> None:
    text = spec_text(["removed"], ["membership_auc <= 0.55"]).replace(
        "  evidence {\n    membership_auc <= 0.55\n  }", "  evidence { membership_auc <= 0.55 }")
    new = fixed(text)
    spec, diags = compile_text(new)
    assert not [d for d in diags if d.code == "UL505"]
    assert {i.metric for i in evidence_for(spec.objectives[0], "removed")} == {
        "membership_auc", "forget_quality", "probe_accuracy_gap"}


# -- severity, accept, explain ----------------------------------------------------------------------------------


def test_a_note_does_not_change_the_claims_status_and_can_be_accepted() -> None:
    text = spec_text(["removed"], ["membership_auc <= 0.55"])
    spec, diags = compile_text(text)
    row = next(r for r in claim_statuses(spec.objectives[0], diags) if r.claim == "removed")
    assert "UL505" not in row.reasons and "UL505" in row.notes
    accepted = text.replace("  evidence {", '  accept UL505 "Membership alone is the agreed evidence."\n  evidence {')
    spec, diags = compile_text(accepted)
    (d,) = [d for d in diags if d.code == "UL505"]
    assert d.accepted and not [d for d in diags if d.code == "UL214"]


def test_check_strict_passes_with_the_note_alone(tmp_path: Path) -> None:
    text = spec_text(["removed"], ["membership_auc <= 0.55"]).replace(
        "  evidence {", '  accept UL411 "The fixture data are small on purpose."\n  evidence {')
    (tmp_path / "data").symlink_to(FIXTURES / "data")
    spec = tmp_path / "note.unlearn"
    spec.write_text(text, encoding="utf-8")
    run = subprocess.run([sys.executable, "-m", "unlearnspec", "check", "--strict", str(spec)],
                         capture_output=True, text=True, cwd=tmp_path)
    assert "UL505" in run.stdout + run.stderr
    assert run.returncode == 0, run.stdout + run.stderr


def test_explain_lists_the_defaults_that_no_longer_decide(tmp_path: Path) -> None:
    (tmp_path / "data").symlink_to(FIXTURES / "data")
    spec = tmp_path / "note.unlearn"
    spec.write_text(spec_text(["removed", "not_generated"], ["membership_auc <= 0.55"]), encoding="utf-8")
    text, _ = explain_spec(spec)
    listing = text[text.index("Evidence that will decide each claim"):]
    removed = re.search(r"^  removed: (.*)$", listing, re.M)
    assert removed is not None
    assert "membership_auc <= 0.55" in removed.group(1)
    assert "forget_quality >= 0.05" in removed.group(1) and "probe_accuracy_gap <= 0.1" in removed.group(1)
    assert "UL505" in removed.group(1)
    not_generated = re.search(r"^  not_generated: (.*)$", listing, re.M)
    assert not_generated is not None and "UL505" not in not_generated.group(1)


def test_the_editor_offers_the_fix_on_the_example_spec() -> None:
    """The example spec (in `fmt`'s layout) decides `removed` on three bounds and leaves the representation probe
    out; the editor's quick fix writes it back, realigning the block, and the spec stays canonical."""
    pytest.importorskip("pygls")
    from unlearnspec.lsp import features
    from unlearnspec.lsp.features import Document

    path = ROOT / "specs" / "erase-jane-doe.unlearn"
    doc = Document(uri=path.resolve().as_uri(), text=path.read_text(encoding="utf-8"), rules_base="x/")
    doc.check()
    assert doc.outcome is not None
    (d,) = [d for d in doc.outcome.diagnostics if d.code == "UL505"]
    action = next(a for a in features.code_actions(doc, doc.span_range(d.span)) if a.title.startswith("add "))
    assert action.edit is not None and action.edit.changes is not None
    lines = doc.text.split("\n")
    for e in sorted(action.edit.changes[doc.uri], key=lambda e: (e.range.start.line, e.range.start.character),
                    reverse=True):
        (a, b) = (e.range.start, e.range.end)
        assert a.line == b.line
        lines[a.line] = lines[a.line][:a.character] + e.new_text + lines[a.line][b.character:]
    new = "\n".join(lines)
    assert ("  evidence {\n    verbatim_rouge     <= 0.20\n    membership_auc     <= 0.60\n"
            "    forget_quality     >= 0.05\n    probe_accuracy_gap <= 0.1\n  }") in new
    syntax, _ = parse_bytes(new.encode(), str(path))
    assert syntax is not None and format_spec(syntax) == new
    after = Document(uri=path.resolve().as_uri(), text=new, rules_base="x/")
    after.check()
    assert after.outcome is not None and not [d for d in after.outcome.diagnostics if d.code == "UL505"]
