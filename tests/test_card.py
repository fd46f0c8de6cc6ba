"""The model-card section: a golden for the demo report, each claim's verdict and evidence in its row,
the findings as what is not claimed, intervals where the report has them, and hostile spec strings
that stay text."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
from test_report import make_plan, make_report

from unlearnspec.audit.card import _interval, card_for_run, render_card
from unlearnspec.cli import main

GOLDEN = Path(__file__).parent / "golden" / "card" / "erase-jane-doe.md"
UPDATE = os.environ.get("UNLEARNSPEC_UPDATE_GOLDENS") == "1"


def _rows(text: str) -> list[list[str]]:
    """Table rows split on unescaped pipes."""
    return [re.split(r"(?<!\\)\|", line)[1:-1] for line in text.splitlines() if line.startswith("|")]


def test_card_matches_its_golden() -> None:
    text = render_card(make_report())
    if UPDATE:
        GOLDEN.parent.mkdir(parents=True, exist_ok=True)
        GOLDEN.write_text(text, encoding="utf-8")
    assert text == GOLDEN.read_text(encoding="utf-8"), "UNLEARNSPEC_UPDATE_GOLDENS=1 pytest tests/test_card.py"


def test_each_claim_row_carries_its_verdict_and_its_checks() -> None:
    report = make_report()
    text = render_card(report)
    rows = {cells[0].strip(): cells for cells in _rows(text) if cells[0].strip().startswith("`")}
    obj = report.objectives[0]
    by_id = {c.check_id: c for c in obj.checks}
    assert len(rows) == len(obj.claims)
    for cv in obj.claims:
        cells = next(v for k, v in rows.items() if k.startswith(f"`{cv.claim}"))
        assert cv.verdict.upper().replace("_", " ") in cells[1]
        for cid in cv.checks:  # every deciding check's value is in the evidence cell
            value = by_id[cid].value
            assert value is not None and f"{value:g}" in cells[2]


def test_what_is_not_claimed_lists_unmet_and_unverifiable_claims_with_their_findings() -> None:
    report = make_report()
    text = render_card(report)
    section = text.split("#### Not claimed, and why", 1)[1]
    plan = make_plan()
    for claim in plan.objectives[0].claims:
        if claim.status == "supported":
            continue
        line = next(ln for ln in section.splitlines() if ln.startswith(f"- `{claim.claim}"))
        assert ("cannot be met" if claim.status == "cannot_be_met" else "cannot be fully verified") in line
        for code in claim.reasons:
            assert code in line
    for f in plan.objectives[0].findings:
        if f.accepted:
            assert f"{f.code} (a risk the reviewers accepted)" in section and str(f.justification) in section
    assert "not a compliance proof" in text.lower() and "arXiv:2412.06966" in text


def test_hostile_spec_strings_stay_text() -> None:
    hostile = "<script>alert(1)</script> [click](http://evil.example) | `x` \n# Heading ![i](x)"
    report = make_report(title=hostile)
    obj = report.objectives[0]
    target = obj.target.model_copy(update={"name": hostile, "aliases": [hostile]})
    findings = [f.model_copy(update={"message": hostile, "justification": hostile}) for f in obj.findings]
    obj = obj.model_copy(update={"basis": hostile, "owner": hostile, "target": target, "findings": findings})
    text = render_card(report.model_copy(update={"objectives": [obj]}))
    prose = re.sub(r"(?<!\\)`[^`\n]*(?<!\\)`", "", text)  # code spans show their text literally
    assert not re.search(r"(?<!\\)<", prose), "raw HTML would reach the model card"
    assert not re.search(r"(?<!\\)\]\(", prose), "a link would reach the model card"
    assert not any(line.startswith("# Heading") for line in text.splitlines())
    widths = {len(cells) for cells in _rows(text)}
    assert widths == {3}, widths  # no hostile pipe splits a table row


def test_an_interval_in_the_report_is_shown_for_the_deciding_model() -> None:
    per_model = SimpleNamespace(decided_on="unlearned", decision=None,
                                interval={"unlearned": (0.41, 0.63), "original": (0.8, 0.9)})
    assert _interval(per_model) == (0.41, 0.63)  # type: ignore[arg-type]
    decided = SimpleNamespace(decided_on="unlearned", interval={"unlearned": (0.4, 0.6)},
                              decision=SimpleNamespace(interval=(0.01, 0.05)))
    assert _interval(decided) == (0.01, 0.05)  # type: ignore[arg-type]
    assert _interval(make_report().objectives[0].checks[0]) is None  # a report without intervals


def test_card_verb(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    run.mkdir()
    report = make_report()
    (run / "report.json").write_text(report.model_dump_json(indent=2), encoding="utf-8")
    (run / "report.sig.json").write_text('{"key_sha256": "' + "e" * 64 + '"}', encoding="utf-8")
    assert main(["card", str(run), "-o", str(tmp_path / "card.md")]) == 0
    text = (tmp_path / "card.md").read_text(encoding="utf-8")
    assert text == card_for_run(run) and "key `eeeeeeeeeeeeeeee`" in text
    for _ in range(2):  # a card kept in the run folder can be written again; the report it reads cannot be replaced
        assert main(["card", str(run), "-o", str(run / "card.md")]) == 0
    before = (run / "report.json").read_bytes()
    assert main(["card", str(run), "-o", str(run / "report.json")]) == 2
    assert "is an input of this command" in capsys.readouterr().err and (run / "report.json").read_bytes() == before
    data = report.model_dump(mode="json")
    data["objectives"][0]["claims"][0]["verdict"] = "fail"  # no longer follows from its checks
    (run / "report.json").write_text(json.dumps(data), encoding="utf-8")
    assert main(["card", str(run)]) == 2
    err = capsys.readouterr().err
    # the first problem and where it is, not pydantic's closing link to its documentation
    assert "is not a valid report: objectives.0" in err and "errors.pydantic.dev" not in err
    assert "Value error" not in err  # our own validators' words, without pydantic's prefix
    for version, why in (("9", "report format `9` is newer than this unlearnspec reads (1.x)"),
                         ("0.3", "report format `0.3` is not one this unlearnspec reads (1.x)"),
                         ("one", "report format `one` is not a version number")):
        data = report.model_dump(mode="json") | {"format_version": version}  # another format's report: not misread
        (run / "report.json").write_text(json.dumps(data), encoding="utf-8")
        assert main(["card", str(run)]) == 2
        assert f"is not a valid report: format_version: {why}" in capsys.readouterr().err
    assert main(["card", str(tmp_path / "nope")]) == 2


def test_the_n_beside_a_decided_value_is_the_decisions() -> None:
    """Membership is decided on the worst type and attack pair, over its own members (6 documents), not on all
    the forget items the unlearned model was scored on (20): the card's n is the one behind the printed value."""
    from unlearnspec.audit.card import _n

    decision = SimpleNamespace(n=6, value=0.47, interval=(0.11, 1.0))
    check = SimpleNamespace(decision=decision, n={"unlearned": 20}, decided_on="unlearned")
    assert _n(check) == 6  # type: ignore[arg-type]
    assert _n(SimpleNamespace(decision=None, n={"unlearned": 20}, decided_on="unlearned")) == 20  # type: ignore[arg-type]
