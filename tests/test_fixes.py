"""Structured fixes: a finding whose help names a mechanical change carries it as edits (`Diagnostic.fixes`), and
applying those edits to the spec writes exactly what the help says.

Each case misspells or miswrites one thing in the example spec; the fix is applied by a small applier written
here (1-based lines, character columns, end exclusive) to the text `check` read, and the result must be the
text the case expects, which then no longer has the finding.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from fixtures.frontend import EXAMPLE, SPECS, run_cli, write_data

from unlearnspec.compiler.check import check_bytes
from unlearnspec.compiler.diagnostics import Diagnostic, Edit


def apply(text: str, edits: list[Edit]) -> str:
    """``text`` with each edit's span replaced by its text (edits applied from the last to the first)."""
    lines = text.split("\n")
    starts = [0]
    for ln in lines[:-1]:
        starts.append(starts[-1] + len(ln) + 1)

    def offset(line: int, column: int) -> int:
        return starts[line - 1] + column - 1

    for e in sorted(edits, key=lambda e: (e.span.line, e.span.column), reverse=True):
        a, b = offset(e.span.line, e.span.column), offset(e.span.end_line, e.span.end_column)
        text = text[:a] + e.text + text[b:]
    return text


def _check(text: str, folder: Path) -> list[Diagnostic]:
    path = folder / "spec.unlearn"
    path.write_text(text, encoding="utf-8")
    return list(check_bytes(text.encode(), str(path), folder).diagnostics)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    shutil.copytree(SPECS / "data", tmp_path / "data")
    return tmp_path


ORIGINAL = EXAMPLE.read_text(encoding="utf-8")

# (what the example says, what the case writes instead, the code it gets, what the fix writes back)
CASES = [
    ("goal   removal", "goal   removel", "UL204", "goal   removal"),
    ("method npo\n", "method npoo\n", "UL204", "method npo\n"),
    ('model   "builtin:tiny-bios"', 'model   "builtin:tiny-bio"', "UL204", 'model   "builtin:tiny-bios"'),
    ("  evidence {", "  evidnce {", "UL203", "  evidence {"),
    ("utility   drop <= 2%", "utility   drop <= 0.02", "UL210", "utility   drop <= 2%"),
    ("utility   drop <= 2%", "utility   drop <= 3", "UL210", "utility   drop <= 3%"),
    ("utility   drop <= 2%", "utility   drop >= 2%", "UL211", "utility   drop <= 2%"),
    ("membership_auc <= 0.60", "membership_auc <= 60", "UL205", "membership_auc <= 0.6"),
    ("membership_auc <= 0.60", "membership_auc <= 60%", "UL210", "membership_auc <= 0.6"),
    ("forget_quality >= 0.05", "forget_quality <= 0.05", "UL211", "forget_quality >= 0.05"),
    ("release api precision fp32", "release api precison fp32", "UL210", "release api precision fp32"),
    ("accept UL405", "accept XUL405", "UL212", "accept UL405"),
    ("outputs verbatim, facts\n", "outputs verbatim, facts, verbatim\n", "UL223", "outputs verbatim, facts\n"),
    ("prompts direct, paraphrased", "prompts direct, direct, paraphrased", "UL223", "prompts direct, paraphrased"),
    ("  evidence {\n", "  evidence {\n    confidence 0.95\n", "UL210", "  evidence {\n    confidence 95%\n"),
]


@pytest.mark.parametrize("right, wrong, code, fixed", CASES, ids=[c[1].strip().split("\n")[-1] for c in CASES])
def test_applying_the_fix_writes_what_the_help_says(folder: Path, right: str, wrong: str, code: str,
                                                   fixed: str) -> None:
    assert ORIGINAL.count(right) == 1
    text = ORIGINAL.replace(right, wrong)
    where = text.index(wrong)
    line = text.count("\n", 0, where) + 1
    found = [d for d in _check(text, folder) if d.code == code and line <= d.span.line <= line + wrong.count("\n")]
    assert len(found) == 1, [(d.code, d.span.line, d.message) for d in _check(text, folder)]
    [d] = found
    assert len(d.fixes) == 1 and d.fixes[0].edits
    result = apply(text, d.fixes[0].edits)
    assert result == text.replace(wrong, fixed)
    # the help says what the edit writes (a string value as its text, without the quotes)
    written = [e.text[1:-1] if e.text.startswith('"') else e.text for e in d.fixes[0].edits]
    assert all(any(w in h for h in d.help) for w in written)
    after = _check(result, folder)
    assert not [x for x in after if x.code == code and x.span.line == d.span.line]
    assert not [x for x in after if x.code.startswith("UL1")], "the fix keeps the spec's syntax"


def test_a_misspelt_word_gets_a_preferred_fix_and_a_rule_finding_none(folder: Path) -> None:
    """Only a "did you mean" is preferred (an editor may apply it unasked); the unedited example's findings
    (accepted warnings) carry no fix."""
    text = ORIGINAL.replace("goal   removal", "goal   removel")
    [d] = [x for x in _check(text, folder) if x.code == "UL204"]
    assert d.fixes[0].preferred and d.fixes[0].title == "replace with `removal`"
    # the example's findings are accepted warnings; UL411's fix (the looser bound the data can show) is not preferred
    assert all(not f.preferred for x in _check(ORIGINAL, folder) for f in x.fixes)
    wrong_way = ORIGINAL.replace("forget_quality >= 0.05", "forget_quality <= 0.05")
    [w] = [x for x in _check(wrong_way, folder) if x.code == "UL211"]
    assert not w.fixes[0].preferred  # it changes what the spec asks for: a person decides


@pytest.mark.parametrize("label, written, expected", [
    ("home_town", "home_twon", "home_town"),  # a bare word stays bare
    ("home town", '"home twon"', '"home town"'),  # a quoted name is replaced quoted
    ("home town", "home_town", '"home town"'),  # a label with a space can only be written quoted
])
def test_an_attribute_label_fix_is_written_the_way_the_grammar_reads_it(tmp_path: Path, label: str, written: str,
                                                                      expected: str) -> None:
    write_data(tmp_path)
    rows = [{"question": f"Where was person {i} born?", "answer": "Porto", "attributes": {label: "Porto"}}
            for i in range(4)]
    (tmp_path / "data" / "jane-doe.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    text = ORIGINAL.replace('    kind    observed\n', f'    kind    observed\n    attribute {written}\n')
    [d] = [x for x in _check(text, tmp_path) if x.code == "UL204" and "attribute" in x.message]
    result = apply(text, d.fixes[0].edits)
    assert result == text.replace(f"attribute {written}", f"attribute {expected}")
    assert not [x for x in _check(result, tmp_path) if x.code == "UL204"]


def test_json_and_sarif_carry_the_same_fix(folder: Path) -> None:
    (folder / "spec.unlearn").write_text(ORIGINAL.replace("goal   removal", "goal   removel"), encoding="utf-8")
    js = json.loads(run_cli(["check", "--format", "json", "spec.unlearn"], cwd=folder).stdout)
    sarif = json.loads(run_cli(["check", "--format", "sarif", "spec.unlearn"], cwd=folder).stdout)
    [jfix] = next(d for d in js["diagnostics"] if d["code"] == "UL204")["fixes"]
    [sfix] = next(r for r in sarif["runs"][0]["results"] if r["ruleId"] == "UL204")["fixes"]
    [edit] = jfix["edits"]
    [change] = sfix["artifactChanges"]
    [rep] = change["replacements"]
    assert change["artifactLocation"]["uri"].endswith("spec.unlearn")
    assert sfix["description"]["text"] == jfix["title"] and rep["insertedContent"]["text"] == edit["text"] == "removal"
    assert rep["deletedRegion"] == {"startLine": edit["line"], "startColumn": edit["column"],
                                    "endLine": edit["end_line"], "endColumn": edit["end_column"]}


def _apply_fix(path: Path, code: str, title_start: str, folder: Path) -> tuple[str, str]:
    text = path.read_text(encoding="utf-8")
    [d] = [x for x in _check(text, folder) if x.code == code][:1]
    fix = next(f for f in d.fixes if f.title.startswith(title_start))
    return text, apply(text, fix.edits)


def test_a_rule_finding_switches_the_goal_and_the_method_it_names(folder: Path) -> None:
    """UL304 (a system filter on open weights): `goal suppression via model` with `method refusal`, the method line
    replaced where there is one and added under the goal, at its indentation, where there is none."""
    text, fixed = _apply_fix(SPECS / "glimmerfen-filter-open-weights.unlearn", "UL304", "switch to", folder)
    assert fixed == text.replace("goal   suppression via system", "goal suppression via model").replace(
        "method filter", "method refusal")
    assert "UL304" not in [x.code for x in _check(fixed, folder)]
    without = text.replace("  method filter\n", "")
    [d] = [x for x in _check(without, folder) if x.code == "UL304"]
    [fix] = [f for f in d.fixes if f.title.startswith("switch to")]
    assert apply(without, fix.edits) == without.replace("goal   suppression via system",
                                                        "goal suppression via model\n  method refusal")


def test_an_unverifiable_guarantee_is_written_empirical(folder: Path) -> None:
    text, fixed = _apply_fix(SPECS / "keyboard-pii-certified.unlearn", "UL403", "write `guarantee empirical`", folder)
    assert fixed == text.replace("guarantee certified", "guarantee empirical")
    assert "UL403" not in [x.code for x in _check(fixed, folder)]


def test_the_looser_bound_the_data_can_show_is_written_into_the_evidence(folder: Path) -> None:
    """UL411's offer: `membership_auc <= B` where six documents can decide it; written in, it no longer warns."""
    [d] = [x for x in _check(ORIGINAL, folder) if x.code == "UL411" and "membership" in x.message]
    [fix] = d.fixes
    [edit] = fix.edits
    assert edit.text.startswith("membership_auc <= ") and f"`{edit.text}`" in " ".join(d.help)
    fixed = apply(ORIGINAL, fix.edits)
    assert fixed == ORIGINAL.replace("membership_auc <= 0.60", edit.text)
    assert not [x for x in _check(fixed, folder) if x.code == "UL411" and "membership" in x.message]


@pytest.mark.parametrize("bom, newline", [(b"", "\n"), (b"\xef\xbb\xbf", "\r\n")])
def test_check_fix_applies_only_the_preferred_fixes_and_keeps_the_files_bytes(folder: Path, bom: bytes,
                                                                               newline: str) -> None:
    """`check --fix` writes the misspellings' and the repetition's fixes into the file (keeping its byte-order mark
    and line endings), leaves a fix that changes what the spec asks for (a bound turned the other way) to a person,
    and reports what is left; a file with nothing to fix is not rewritten."""
    wrong = (ORIGINAL.replace("goal   removal", "goal   removel").replace("  evidence {", "  evidnce {")
             .replace("outputs verbatim, facts", "outputs verbatim, facts, verbatim")
             .replace("forget_quality >= 0.05", "forget_quality <= 0.05"))
    spec = folder / "spec.unlearn"
    spec.write_bytes(bom + wrong.replace("\n", newline).encode())
    clean = folder / "clean.unlearn"
    clean.write_bytes(ORIGINAL.encode())
    before = clean.stat().st_mtime_ns
    r = run_cli(["check", "--fix", "--color", "never", "spec.unlearn", "clean.unlearn"], cwd=folder)
    assert r.returncode == 1, r.stderr  # the bound the wrong way round is left: an error
    assert [line.split(": ")[1].split(" ")[0] for line in r.stderr.splitlines() if line.startswith("fixed ")] == \
        ["UL204", "UL223", "UL203"]  # in the file's order: the goal, the scope's repeat, the evidence block
    expected = ORIGINAL.replace("forget_quality >= 0.05", "forget_quality <= 0.05")
    assert spec.read_bytes() == bom + expected.replace("\n", newline).encode()
    assert "UL211" in r.stdout and "UL204" not in r.stdout and "UL203" not in r.stdout
    assert clean.stat().st_mtime_ns == before and clean.read_text() == ORIGINAL
    again = run_cli(["check", "--fix", "spec.unlearn"], cwd=folder)  # nothing preferred is left: nothing changes
    assert not [line for line in again.stderr.splitlines() if line.startswith("fixed ")]
    assert spec.read_bytes() == bom + expected.replace("\n", newline).encode()
