"""A claim's compile status stays beside its verdict in every rendering (report/verdict.py, rule 5): the terminal
summary of `run`, the ledger's lines and `ledger show`. Ledgers written before statuses were recorded still verify
and show as they were written."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from test_report import make_plan, make_report

from unlearnspec.audit.ledger import ledger_name, record_run, verify_file
from unlearnspec.cli import main
from unlearnspec.cli.run import summary_text

MODEL = "builtin:tiny-bios"


def _statuses() -> dict[str, tuple[str, str]]:
    return {c.claim: (c.verdict, c.compile_status) for c in make_report().objectives[0].claims}


def test_the_run_summary_keeps_each_claims_compile_status_beside_its_verdict() -> None:
    claims = _statuses()
    assert {s for _, s in claims.values()} == {"supported", "cannot_be_verified", "cannot_be_met"}
    lines = summary_text(make_report(), Path("run")).splitlines()
    for claim, (verdict, status) in claims.items():
        line = next(ln for ln in lines if ln.split()[:2] == [verdict, claim])
        note = "" if status == "supported" else f" ({status.replace('_', ' ')})"
        assert line.endswith(f"{claim}{note}"), line


def _old_line(seq: int, prev: str) -> dict[str, object]:
    """A line as format 1 wrote it (no compile statuses), hashed here from its canonical JSON."""
    body: dict[str, object] = {"v": "1", "seq": seq, "time": "2026-01-01T00:00:00.000000Z", "request_id": "old",
                               "title": None, "basis": None, "owner": None, "model": MODEL, "plan_hash": "9" * 64,
                               "model_before": None, "model_after": None, "method": "npo", "goal": "removal",
                               "verdicts": {"not_generated": "pass"}, "overall": "pass", "drift": None, "run": None,
                               "report_sha256": None, "prev": prev}
    raw = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return {**body, "hash": hashlib.sha256(raw).hexdigest()}


def test_new_ledger_lines_record_the_status_and_old_ones_still_verify(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "ledger"
    folder.mkdir()
    old = _old_line(1, "0" * 64)
    path = folder / ledger_name(MODEL)
    path.write_text(json.dumps(old, sort_keys=True, separators=(",", ":")) + "\n", encoding="utf-8")
    path.with_name(path.name.replace(".jsonl", ".head.json")).write_text(
        json.dumps({"count": 1, "hash": old["hash"]}, sort_keys=True, separators=(",", ":")) + "\n", encoding="utf-8")
    assert verify_file(path).ok

    plan, report = make_plan(), make_report()
    run = tmp_path / "run"
    run.mkdir()
    (run / "report.json").write_text(report.model_dump_json(), encoding="utf-8")
    [entry] = record_run(folder, run, plan, report, {})
    claims = _statuses()
    assert entry.compile_status == {claim: status for claim, (_, status) in claims.items()}
    written = json.loads(path.read_text(encoding="utf-8").splitlines()[1])
    assert written["compile_status"] == entry.compile_status and written["prev"] == old["hash"]
    assert "compile_status" not in json.loads(path.read_text(encoding="utf-8").splitlines()[0])
    assert verify_file(path).ok and main(["ledger", "verify", str(folder)]) == 0
    capsys.readouterr()

    assert main(["ledger", "show", str(folder)]) == 0
    shown = capsys.readouterr().out.splitlines()
    for claim, (verdict, status) in claims.items():
        note = "" if status == "supported" else f" ({status.replace('_', ' ')})"
        assert any(ln.split()[:2] == [verdict, claim] and ln.endswith(f"{claim}{note}") for ln in shown), claim
    old_row = next(i for i, ln in enumerate(shown) if " old " in ln)
    assert shown[old_row + 1].split() == ["pass", "not_generated"]  # no status was recorded, none is invented
