"""Marks in the request ledger: which recorded runs a team adopted, kept as trials or withdrew (`ledger mark`).

A mark is a line of the ledger's own chain, after the lines it names; `ledger show` gives each request's status (its
latest mark's; "recorded" without one), `ledger verify` finds an edited mark and one that names no earlier line of its
ledger, `ledger mark` refuses a run the ledger does not bear out and a status the run cannot take, a killed mark leaves
the ledger valid, and ledgers written before marks verify as they are. No model is trained: the run folders are a plan
and a report written here, recorded as `unlearnspec run` records them."""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from test_crash_review import KILL_AT_RENAME  # the process that kills itself at its Nth rename
from test_report import make_plan, make_report
from test_signing import full_run

from unlearnspec.audit import hashchain
from unlearnspec.audit.card import card_for_run
from unlearnspec.audit.ledger import check_receipt, ledger_name, record_run, status_of, verify_file
from unlearnspec.cli import main

MODEL = "builtin:tiny-bios"
ROOT = Path(__file__).resolve().parent.parent


def _run(tmp_path: Path, name: str, title: str = "Right-to-erasure request for Jane Doe") -> Path:
    """A finished run folder (its report and plan), recorded in the ledger `tmp_path/ledger`. Another title is another
    plan and report, as a second try of the same request (same objective name) would be."""
    plan, report = make_plan(title), make_report(title)
    run = tmp_path / name
    run.mkdir()
    (run / "report.json").write_text(report.model_dump_json(), encoding="utf-8")
    (run / "plan.json").write_text(plan.canonical_json(), encoding="utf-8")
    record_run(tmp_path / "ledger", run, plan, report, {})
    return run


def _path(tmp_path: Path) -> Path:
    return tmp_path / "ledger" / ledger_name(MODEL)


def _rows(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _mark(tmp_path: Path, run: Path, status: str, why: str = "reviewed", by: str = "privacy-office") -> int:
    return main(["ledger", "mark", str(tmp_path / "ledger"), "--run", str(run), f"--{status}", "--why", why,
                 "--by", by, "--color", "never"])


def _sha(data: dict[str, object]) -> str:
    """A line's hash, recomputed here: sha256 of its compact, sorted JSON without `hash`."""
    body = {k: v for k, v in data.items() if k != "hash"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
                          .encode("utf-8")).hexdigest()


def _rewrite(path: Path, rows: list[dict[str, object]]) -> None:
    """Write lines as a forger who recomputes each hash, the chain and the head would."""
    prev = "0" * 64
    for i, row in enumerate(rows, start=1):
        row["seq"], row["prev"] = i, prev
        row["hash"] = prev = _sha(row)
    path.write_bytes(b"".join(json.dumps(r, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"
                              for r in rows))
    path.with_name(path.name.replace(".jsonl", ".head.json")).write_text(
        json.dumps({"count": len(rows), "hash": prev}, sort_keys=True, separators=(",", ":")) + "\n")


def test_a_mark_is_a_line_of_the_chain_naming_the_runs_lines_and_show_gives_the_latest(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = _run(tmp_path, "try-1")
    path = _path(tmp_path)
    before = path.read_bytes()
    assert _mark(tmp_path, run, "trial", why="first try, not released") == 0
    assert _mark(tmp_path, run, "adopted", why="released as v2 after review") == 0
    overall = make_report().objectives[0].overall  # said beside the mark: a team may adopt a run whose claims failed
    assert f"line 3 marks erase-jane-doe (line 1, overall {overall}) adopted" in capsys.readouterr().out
    assert path.read_bytes().startswith(before)  # appended: the request line is as it was written
    request, trial, adopted = _rows(path)
    for prev, row in ((request, trial), (trial, adopted)):  # the same chain: each names the line before it
        assert row["prev"] == prev["hash"] and row["hash"] == _sha(row)
    report_sha = hashlib.sha256((run / "report.json").read_bytes()).hexdigest()
    assert adopted["kind"] == "mark" and adopted["status"] == "adopted" and adopted["seq"] == 3
    assert adopted["about"] == [{"seq": 1, "hash": request["hash"], "request_id": "erase-jane-doe"}]
    assert (adopted["report_sha256"], adopted["by"], adopted["why"]) == (
        report_sha, "privacy-office", "released as v2 after review")
    head = json.loads(path.with_name(path.name.replace(".jsonl", ".head.json")).read_text())
    assert head == {"count": 3, "hash": adopted["hash"]}
    assert main(["ledger", "verify", str(tmp_path / "ledger"), "--run", str(run)]) == 0
    capsys.readouterr()

    assert main(["ledger", "show", str(tmp_path / "ledger")]) == 0
    text = capsys.readouterr().out
    assert "1 request(s), 2 mark(s), chain intact" in text
    assert "status: adopted (line 3, " in text and "by privacy-office: released as v2 after review" in text
    assert "mark trial: line(s) 1 (erase-jane-doe), by privacy-office: first try, not released" in text
    assert main(["ledger", "show", str(tmp_path / "ledger"), "--format", "json"]) == 0
    [ledger] = json.loads(capsys.readouterr().out)["ledgers"]
    [entry] = ledger["entries"]
    assert (entry["status"], entry["status_line"]) == ("adopted", 3)
    assert [m["status"] for m in ledger["marks"]] == ["trial", "adopted"]
    [borne] = check_receipt(tmp_path / "ledger", run)[1]  # what the card cites beside the line
    assert borne.mark is not None and (borne.mark.status, borne.mark.seq) == ("adopted", 3)


def test_an_unmarked_request_is_recorded_not_adopted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _run(tmp_path, "try-1")
    assert main(["ledger", "show", str(tmp_path / "ledger")]) == 0
    text = capsys.readouterr().out
    assert "status: recorded" in text and "adopted" not in text
    assert main(["ledger", "show", str(tmp_path / "ledger"), "--format", "json"]) == 0
    [ledger] = json.loads(capsys.readouterr().out)["ledgers"]
    assert (ledger["entries"][0]["status"], ledger["entries"][0]["status_line"], ledger["marks"]) == ("recorded", None, [])


def test_a_run_recorded_after_a_mark_extends_the_same_chain(tmp_path: Path) -> None:
    """A mark must not make the ledger unreadable to the next run: it is recorded after the mark, chained to it."""
    first = _run(tmp_path, "try-1")
    assert _mark(tmp_path, first, "trial") == 0
    _run(tmp_path, "try-2", title="Second try")
    rows = _rows(_path(tmp_path))
    assert [r.get("kind", "request") for r in rows] == ["request", "mark", "request"]
    assert rows[2]["seq"] == 3 and rows[2]["prev"] == rows[1]["hash"]
    checked = verify_file(_path(tmp_path))
    assert checked.ok and [e.seq for e in checked.entries] == [1, 3]


def test_an_edited_mark_is_found_by_verify(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = _run(tmp_path, "try-1")
    assert _mark(tmp_path, run, "withdrawn", why="failed review") == 0
    path = _path(tmp_path)
    original = path.read_text(encoding="utf-8")
    path.write_text(original.replace('"status":"withdrawn"', '"status":"adopted"'), encoding="utf-8")
    assert main(["ledger", "verify", str(tmp_path / "ledger"), "--color", "never"]) == 1
    assert "error[UL801]: line 2 was edited after it was written" in capsys.readouterr().out
    assert main(["ledger", "show", str(tmp_path / "ledger")]) == 0  # an edited mark decides no status
    text = capsys.readouterr().out
    assert "chain BROKEN" in text and "status: recorded" in text
    path.write_text(original.replace('"why":"failed review"', '"why":"fine"'), encoding="utf-8")
    assert [(p.code, p.line) for p in verify_file(path).problems] == [("UL801", 2)]


def test_a_mark_that_names_no_earlier_line_of_its_ledger_is_found(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """Rewritten with every hash, the chain and the head recomputed, a mark that names a line the ledger does not hold
    (or holds with another hash, or a later line) still fails: UL808 at the mark."""
    run = _run(tmp_path, "try-1")
    assert _mark(tmp_path, run, "adopted") == 0
    path = _path(tmp_path)
    request, mark = _rows(path)
    forged = [("seq", 7), ("hash", "f" * 64), ("request_id", "erase-john-roe")]
    for key, value in forged:
        about = {"seq": 1, "hash": request["hash"], "request_id": "erase-jane-doe", key: value}
        _rewrite(path, [dict(request), {**mark, "about": [about]}])
        problems = verify_file(path).problems
        assert [(p.code, p.line) for p in problems] == [("UL808", 2)], key
    _rewrite(path, [dict(request), {**mark, "report_sha256": "e" * 64}])  # another run's report
    assert [(p.code, p.line) for p in verify_file(path).problems] == [("UL808", 2)]
    _rewrite(path, [{**mark, "about": [{"seq": 1, "hash": request["hash"], "request_id": "erase-jane-doe"}]},
                    dict(request)])  # a mark before the line it names, as if copied to the top
    assert [(p.code, p.line) for p in verify_file(path).problems] == [("UL808", 1)]
    assert main(["ledger", "verify", str(tmp_path / "ledger"), "--color", "never"]) == 1
    assert "error[UL808]: line 1 marks a line that is not in this ledger" in capsys.readouterr().out


def test_a_mark_for_a_run_the_ledger_does_not_bear_out_is_refused(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    run = _run(tmp_path, "try-1")
    path = _path(tmp_path)
    before = path.read_bytes()
    stranger = tmp_path / "elsewhere"  # a run folder never recorded: no receipt
    stranger.mkdir()
    (stranger / "report.json").write_text(make_report().model_dump_json(), encoding="utf-8")
    (stranger / "plan.json").write_text(make_plan().canonical_json(), encoding="utf-8")
    assert _mark(tmp_path, stranger, "adopted") == 2
    err = capsys.readouterr().err
    assert "error[UL806]" in err and "holds no ledger receipt" in err and "nothing was appended" in err
    receipt = json.loads((run / "ledger.json").read_text(encoding="utf-8"))
    receipt["entries"][0]["seq"] = 5  # a receipt naming a line the ledger does not have
    (run / "ledger.json").write_text(json.dumps(receipt), encoding="utf-8")
    assert _mark(tmp_path, run, "adopted") == 2
    assert "names line 5 of `builtin_tiny-bios.jsonl`, which the ledger does not have" in capsys.readouterr().err
    receipt["entries"][0]["seq"] = 1
    (run / "ledger.json").write_text(json.dumps(receipt), encoding="utf-8")
    (run / "report.json").write_text(make_report().model_dump_json(indent=1), encoding="utf-8")  # replaced
    assert _mark(tmp_path, run, "adopted") == 2
    assert "records another report.json than the run folder holds" in capsys.readouterr().err
    assert path.read_bytes() == before
    assert main(["ledger", "mark", str(tmp_path / "nope"), "--run", str(run), "--adopted", "--why", "x",
                 "--by", "me"]) == 2
    assert "error[UL807]" in capsys.readouterr().err


def test_a_status_a_run_cannot_take_is_refused_and_a_repeat_appends_nothing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    first, second = _run(tmp_path, "try-1"), _run(tmp_path, "try-2", title="Second try")
    path = _path(tmp_path)
    assert _mark(tmp_path, first, "adopted") == 0
    grown = path.read_bytes()
    assert _mark(tmp_path, first, "adopted", why="again") == 0  # already so: nothing appended (a retry is safe)
    assert "is already adopted since line 3: nothing appended" in capsys.readouterr().out
    assert _mark(tmp_path, first, "trial") == 2  # released, then called a trial
    assert "error[UL809]: request `erase-jane-doe` (line 1) was adopted at line 3" in capsys.readouterr().err
    assert _mark(tmp_path, second, "adopted") == 2  # two runs released for one request
    err = capsys.readouterr().err
    assert "is already adopted from another run (line 1" in err and "try-1" in err
    for why, by in (("  ", "me"), ("ok", "")):
        assert _mark(tmp_path, second, "trial", why=why, by=by) == 2
        assert "error[UL809]: a mark needs" in capsys.readouterr().err
    assert path.read_bytes() == grown

    assert _mark(tmp_path, first, "withdrawn", why="superseded by try-2") == 0
    assert _mark(tmp_path, second, "adopted", why="released as v3") == 0
    assert _mark(tmp_path, first, "adopted") == 2  # a withdrawal is final
    assert "was withdrawn at line 4: a withdrawal is final" in capsys.readouterr().err
    checked = verify_file(path)
    assert checked.ok and [status_of(checked, e) for e in checked.entries] == ["withdrawn", "adopted"]


@pytest.mark.parametrize("kill_at", [1, 2])
def test_a_mark_killed_at_either_rename_leaves_the_ledger_valid_and_is_finished_by_running_it_again(
        tmp_path: Path, kill_at: int) -> None:
    """A mark renames the new ledger into place, then its head: killed before the first, the ledger is as it was
    (a temporary file left beside it, cleared by the next append); before the second, the head is one line behind,
    which the chain vouches for. Either way the ledger verifies, and the same mark run again leaves one mark."""
    run = _run(tmp_path, "try-1")
    path = _path(tmp_path)
    argv = ["ledger", "mark", str(tmp_path / "ledger"), "--run", str(run), "--adopted", "--why", "v2", "--by", "me"]
    killed = subprocess.run([sys.executable, "-c", KILL_AT_RENAME, str(kill_at), *argv], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    checked = verify_file(path)
    assert checked.ok, checked.problems
    assert len(checked.marks) == kill_at - 1  # the ledger's rename is the first: after it, the mark is there
    assert main(argv) == 0
    checked = verify_file(path)
    assert checked.ok and len(checked.marks) == 1 and status_of(checked, checked.entries[0]) == "adopted"
    assert not list(path.parent.glob(".*.tmp"))


def test_ledgers_written_before_marks_still_verify_byte_for_byte(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """A ledger written by the request-only chain (hashchain.append, as every ledger before marks was), with a line of
    format 1 first, verifies unchanged, reads every request as recorded, and takes a mark after its lines."""
    folder = tmp_path / "ledger"
    folder.mkdir()
    path = folder / ledger_name(MODEL)
    old: dict[str, object] = {"v": "1", "seq": 1, "time": "2026-01-01T00:00:00.000000Z", "request_id": "old",
                              "title": None, "basis": None, "owner": None, "model": MODEL, "plan_hash": "9" * 64,
                              "model_before": None, "model_after": None, "method": "npo", "goal": "removal",
                              "verdicts": {"removed": "pass"}, "overall": "pass", "drift": None, "run": None,
                              "report_sha256": None, "prev": "0" * 64}
    _rewrite(path, [old])
    hashchain.append(folder, {"model": MODEL, "request_id": "erase-2", "plan_hash": "8" * 64, "overall": "fail"})
    files = {p: p.read_bytes() for p in folder.glob("*.json*")}
    assert hashchain.verify_file(path).ok
    checked = verify_file(path)
    assert checked.ok and [status_of(checked, e) for e in checked.entries] == ["recorded", "recorded"]
    assert main(["ledger", "verify", str(folder)]) == 0
    assert main(["ledger", "show", str(folder)]) == 0
    assert "2 request(s), chain intact" in capsys.readouterr().out
    assert {p: p.read_bytes() for p in folder.glob("*.json*")} == files  # reading rewrote nothing
    edited = path.read_text(encoding="utf-8").replace('"overall":"pass"', '"overall":"fail"')
    path.write_text(edited, encoding="utf-8")  # the checks on request lines are as they were
    assert [(p.code, p.line) for p in verify_file(path).problems] == [
        (p.code, p.line) for p in hashchain.verify_file(path).problems] == [("UL801", 1)]
    path.write_bytes(files[path])
    run = _run(tmp_path, "try-1")  # a run recorded into the old ledger, then marked
    assert _mark(tmp_path, run, "adopted") == 0
    assert path.read_bytes().startswith(files[path])
    assert [e.seq for e in verify_file(path).marks] == [4]


def test_the_chain_itself_reads_a_marked_ledger_and_extends_it(tmp_path: Path) -> None:
    """The chain's own reader and appender (`hashchain`, which `unlearnspec run` records through) take a mark as a
    line of the chain: a marked ledger is intact, and the next request line follows the mark."""
    run = _run(tmp_path, "try-1")
    assert _mark(tmp_path, run, "adopted") == 0
    path = _path(tmp_path)
    checked = hashchain.verify_file(path)
    assert checked.ok, checked.problems
    assert [line.seq for line in checked.chain] == [1, 2] and [e.seq for e in checked.entries] == [1]
    mark = _rows(path)[1]
    entry = hashchain.append(tmp_path / "ledger", {"model": MODEL, "request_id": "erase-2", "plan_hash": "8" * 64,
                                                   "overall": "fail"})
    assert (entry.seq, entry.prev) == (3, mark["hash"])
    assert hashchain.verify_file(path).ok and verify_file(path).ok
    path.write_text(path.read_text(encoding="utf-8").replace('"by":"privacy-office"', '"by":"someone-else"'),
                    encoding="utf-8")  # an edited mark breaks the chain there: the ledger is not extended
    before = path.read_bytes()
    with pytest.raises(hashchain.LedgerError, match="broken at line 2"):
        hashchain.append(tmp_path / "ledger", {"model": MODEL, "request_id": "erase-3", "plan_hash": "7" * 64,
                                               "overall": "pass"})
    assert path.read_bytes() == before


def _card(run: Path, ledger: Path) -> str:
    card = card_for_run(run, ledger=ledger)
    assert card.text is not None, card.problems
    return card.text


def test_the_card_says_what_became_of_each_cited_request_as_the_ledgers_marks_say(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A cited request no mark names was recorded and nothing more: the card says no mark says it was adopted. Once
    `ledger mark` adopts the run, the card says so and cites the mark's line (the request line and the mark are lines
    1 and 2 of the one ledger `full_run` recorded the run in)."""
    run = full_run(tmp_path / "run")
    ledger = tmp_path / "ledger"
    [item] = json.loads((run / "ledger.json").read_text(encoding="utf-8"))["entries"]
    cited = f"`{item['request_id']}` line {item['seq']} of `{item['file']}`"
    unmarked = _card(run, ledger)
    assert f"{cited}, recorded but not marked (no line of the ledger says whether this run was adopted)." in unmarked
    assert "marked adopted" not in unmarked
    assert main(["ledger", "mark", str(ledger), "--run", str(run), "--adopted", "--by", "privacy-office",
                 "--why", "released as v2"]) == 0
    capsys.readouterr()
    adopted = _card(run, ledger)
    assert f"{cited}, marked adopted at line 2 of that ledger." in adopted
    assert "not marked" not in adopted
