"""`show`, `explain` and the plan's provenance, as a reviewer meets them: `show -o` never replaces what it read,
the plan's spec is found by its content, the stated `guarantee` reaches the plan and both reviews, a spec's
control characters cannot act on a terminal, and `--format json` keeps stdout JSON when the spec is unusable."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from unlearnspec.cli import main
from unlearnspec.cli.provenance import locate_spec
from unlearnspec.compiler.check import plan_file
from unlearnspec.plan import Plan
from unlearnspec.records import sha256_path

ROOT = Path(__file__).resolve().parents[1]
SPECS = ROOT / "specs"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the example specs with their data and the vendor's checkpoint, as the working folder."""
    for name in ("erase-jane-doe.unlearn", "audit-vendor-checkpoint.unlearn", "account-closures.unlearn"):
        shutil.copy(SPECS / name, tmp_path / name)
    shutil.copytree(SPECS / "data", tmp_path / "data")
    shutil.copytree(SPECS / "models", tmp_path / "models")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _contents(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): sha256_path(p) for p in sorted(folder.rglob("*")) if p.is_file()}


# -- `show -o`: never over the command's own inputs --------------------------------------------------------


@pytest.mark.parametrize(("source", "output", "code"), [
    ("erase-jane-doe.unlearn", "erase-jane-doe.unlearn", "input"),  # the spec it reviews
    ("erase-jane-doe.unlearn", "data/jane-doe.jsonl", "input"),  # a data file the spec names
    ("plan.json", "plan.json", "input"),  # the plan itself
    ("plan.json", "erase-jane-doe.unlearn", "input"),  # the spec the plan was made from
    ("plan.json", "data/retain.jsonl", "input"),  # a data file the plan pins
    ("audit.json", "models/vendor-jane-doe-lora/review.md", "UL715"),  # inside the audited checkpoint
    ("audit-vendor-checkpoint.unlearn", "models/vendor-jane-doe-lora/review.md", "UL715"),
])
def test_show_refuses_to_write_over_what_it_read(work: Path, capsys: pytest.CaptureFixture[str], source: str,
                                                 output: str, code: str) -> None:
    assert run(capsys, "plan", "-q", "erase-jane-doe.unlearn", "-o", "plan.json")[0] == 0
    assert run(capsys, "plan", "-q", "audit-vendor-checkpoint.unlearn", "-o", "audit.json")[0] == 0
    before = _contents(work)
    rc, _, err = run(capsys, "show", source, "-o", output)
    assert rc == 2, err
    assert ("is an input of this command" in err) if code == "input" else (f"error[{code}]" in err)
    assert _contents(work) == before  # nothing written, nothing replaced
    rc, _, err = run(capsys, "show", source, "-o", "review.md")  # elsewhere it writes
    assert rc == 0 and (work / "review.md").read_text(encoding="utf-8").startswith("# Plan review")


# -- the plan's spec: by content first -----------------------------------------------------------------


def test_show_compares_a_plan_with_its_own_spec_not_a_namesake_in_the_working_folder(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    sub = tmp_path / "sub"
    sub.mkdir()
    shutil.copy(SPECS / "erase-jane-doe.unlearn", sub / "erase-jane-doe.unlearn")
    shutil.copytree(SPECS / "data", sub / "data")
    monkeypatch.chdir(sub)
    assert run(capsys, "plan", "-q", "erase-jane-doe.unlearn", "-o", "plan.json")[0] == 0
    # another spec of the same name, with other content, in the folder `show` runs from
    other = (SPECS / "erase-jane-doe.unlearn").read_text(encoding="utf-8").replace("drop <= 2%", "drop <= 3%")
    (tmp_path / "erase-jane-doe.unlearn").write_text(other, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    plan = Plan.load(sub / "plan.json")
    assert locate_spec(plan, sub / "plan.json") == (sub / "erase-jane-doe.unlearn").resolve()
    rc, _, err = run(capsys, "show", "sub/plan.json", "-o", "review.md")
    assert rc == 0 and "UL711" not in err, err
    # edited since: the only file of that name is compared (and found to differ), as before
    (sub / "erase-jane-doe.unlearn").write_text(other, encoding="utf-8")
    (tmp_path / "erase-jane-doe.unlearn").unlink()
    assert locate_spec(plan, sub / "plan.json") == (sub / "erase-jane-doe.unlearn").resolve()
    rc, _, err = run(capsys, "show", "sub/plan.json", "-o", "review2.md")
    assert rc == 0 and "warning[UL711]" in err


# -- `guarantee`: in the plan, the review and the explanation -----------------------------------------------


def test_the_guarantee_is_part_of_the_plan_and_its_hash(work: Path) -> None:
    spec = work / "account-closures.unlearn"
    exact, _ = plan_file(spec)
    assert exact is not None and [op.objective.guarantee for op in exact.objectives] == ["exact"]
    spec.write_text(spec.read_text(encoding="utf-8").replace("guarantee exact", "guarantee empirical"),
                    encoding="utf-8")
    empirical, _ = plan_file(spec, allow_infeasible=True)
    assert empirical is not None and [op.objective.guarantee for op in empirical.objectives] == ["empirical"]
    assert empirical.plan_hash != exact.plan_hash
    # a spec that states none: the key is left out, the plan as it was before guarantees were recorded
    jane, _ = plan_file(work / "erase-jane-doe.unlearn")
    assert jane is not None and jane.objectives[0].objective.guarantee is None
    assert all("guarantee" not in op["objective"] for op in json.loads(jane.canonical_json())["objectives"])


@pytest.mark.parametrize("fmt", ["text", "md", "json"])
def test_show_and_explain_state_the_guarantee(work: Path, capsys: pytest.CaptureFixture[str], fmt: str) -> None:
    rc, explained, _ = run(capsys, "explain", "account-closures.unlearn", "--format", fmt)
    assert rc == 0
    if fmt == "json":
        assert [o["guarantee"] for o in json.loads(explained)["objectives"]] == ["exact"]
    else:
        assert "`exact` guarantee" in explained
    review_format = "json" if fmt == "json" else "md"
    rc, shown, _ = run(capsys, "show", "account-closures.unlearn", "--format", review_format)
    assert rc == 0
    if fmt == "json":
        assert [o["guarantee"] for o in json.loads(shown)["objectives"]] == ["exact"]
    else:
        assert "`exact` guarantee" in shown
    rc, shown, _ = run(capsys, "show", "erase-jane-doe.unlearn")  # none stated: no sentence about one
    assert rc == 0 and "guarantee" not in shown


# -- a spec's control characters in `explain` ----------------------------------------------------------


def test_explain_text_shows_a_specs_control_characters_inert(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = work / "erase-jane-doe.unlearn"
    spec.write_text(spec.read_text(encoding="utf-8").replace('title  "Right-to-erasure',
                                                             'title  "\x1b[2J\x1b[32m\x07Right-to-erasure'),
                    encoding="utf-8")
    rc, out, _ = run(capsys, "explain", str(spec))
    assert rc == 0
    assert not {"\x1b", "\x07"} & set(out)
    assert "\ufffd[2J\ufffd[32m\ufffdRight-to-erasure" in out  # each control character one U+FFFD, the rest as written


# -- `explain --format json` with a spec it cannot explain ---------------------------------------------------


def test_explain_json_of_a_spec_with_a_syntax_error_is_json(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = work / "bad.unlearn"
    bad.write_text('unlearnspec 1\nobjective "x" {{\n', encoding="utf-8")
    rc, out, err = run(capsys, "explain", str(bad), "--format", "json")
    assert rc == 1
    doc = json.loads(out)  # stdout is JSON and only JSON
    assert doc["objectives"] == [] and [(d["code"], d["line"], d["column"]) for d in doc["diagnostics"]] == [
        ("UL102", 2, 16)]
    assert "error[UL102]" in err and "-->" in err  # the human diagnostic, on stderr
    rc, out, err = run(capsys, "explain", str(bad))
    assert rc == 1 and out == "" and "error[UL102]" in err
    rc, out, err = run(capsys, "explain", "missing.unlearn", "--format", "json")
    assert rc == 2 and json.loads(out)["error"] and "error:" in err


def test_no_output_file_is_left_behind_by_a_refused_show(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The refusal comes before anything is written: no temporary file of the atomic write stays either."""
    names = set(os.listdir(work / "data"))
    assert run(capsys, "show", "erase-jane-doe.unlearn", "-o", "data/jane-doe.jsonl")[0] == 2
    assert set(os.listdir(work / "data")) == names


def test_explain_text_keeps_a_spec_value_on_its_line(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Review finding 10: a name or a title with a line break printed lines of its own in `explain`'s text, which
    could pass for the tool's (a forged claim row, a forged finding); each stays on its line."""
    text = (work / "erase-jane-doe.unlearn").read_text(encoding="utf-8")
    forged = "x\\nOther findings:\\n  UL000 note: all clear"
    text = text.replace('objective "erase-jane-doe"', f'objective "{forged}"', 1)
    text = text.replace('title  "Right-to-erasure request for Jane Doe"', f'title  "{forged}"', 1)
    (work / "forged.unlearn").write_text(text, encoding="utf-8")
    code, out, _ = run(capsys, "explain", "forged.unlearn")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == 'Objective "x Other findings:   UL000 note: all clear": x Other findings:   UL000 note: all clear'
    assert not [ln for ln in lines if ln.strip().startswith("UL000")]
    assert sum(ln.startswith("Other findings:") for ln in lines) <= 1


# -- "write instead": the weaker objective beside "give more data" ----------------------------------------


def test_write_instead_offers_every_alternative_the_finding_gives(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A finding whose help lists alternatives ("give more data", "or state the tolerance the data can show")
    offers all of them as what to write instead, in `check --format json`'s claim rows and in `explain`."""
    code, out, _ = run(capsys, "check", "--format", "json", "erase-jane-doe.unlearn")
    report = json.loads(out)
    warned = [d for d in report["diagnostics"] if d["code"] == "UL411" and d.get("claim")]
    assert warned, "the example spec is expected to carry a UL411 warning on a claim"
    alternatives = [h for h in warned[0]["help"][1:] if h.startswith("or ")]
    assert alternatives, "UL411 is expected to offer a tolerance the data can show"
    rows = {c["claim"]: c for o in report["files"][0]["objectives"] for c in o["claims"]}
    row = rows[warned[0]["claim"]]
    assert warned[0]["help"][0] in row["instead"]
    for alternative in alternatives:
        assert alternative in row["instead"]
    # every other finding that holds the claim back keeps its own advice beside UL411's, each marked with its code
    others = [d for d in report["diagnostics"] if d["code"] in row["reasons"] and d["code"] != "UL411" and d["help"]]
    for d in others:
        assert f'{d["help"][0]} ({d["code"]})' in row["instead"]
    code, out, _ = run(capsys, "explain", "--format", "json", "erase-jane-doe.unlearn")
    assert code == 0
    explained = {r["claim"]: r for o in json.loads(out)["objectives"] for r in o["rows"]}
    assert explained[warned[0]["claim"]]["instead"] == row["instead"]
