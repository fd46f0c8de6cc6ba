"""The request ledger: a hash chain that finds an edited, deleted, reordered or cut line by position,
appends from several processes at once without losing a line, and the `ledger` verbs."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
from pathlib import Path

import pytest
from test_report import make_plan, make_report

from unlearnspec.audit.ledger import (
    GENESIS,
    LedgerError,
    append,
    canonical,
    entry_hash,
    ledger_name,
    record_run,
    verify_file,
    verify_receipt,
)
from unlearnspec.cli import main
from unlearnspec.plan import FileHash, Plan
from unlearnspec.report.model import GivenModel, Report

MODEL = "builtin:tiny-bios"


def _fields(i: int, **kw: object) -> dict[str, object]:
    return {"request_id": f"erase-{i}", "basis": f"GDPR Art. 17, request {i}", "owner": "privacy-office",
            "model": MODEL, "plan_hash": f"{i:064x}", "model_before": "a" * 64, "model_after": "b" * 64,
            "verdicts": {"removed": "pass"}, "overall": "pass", **kw}


def _ledger(tmp_path: Path, n: int = 4) -> Path:
    for i in range(1, n + 1):
        append(tmp_path, _fields(i))
    return tmp_path / ledger_name(MODEL)


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def _write(path: Path, lines: list[str]) -> None:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _run_folder(tmp_path: Path, plan: Plan, report: Report) -> Path:
    """A run folder with the report and the plan a receipt is checked against."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "report.json").write_text(report.model_dump_json(), encoding="utf-8")
    (run / "plan.json").write_text(plan.canonical_json(), encoding="utf-8")
    return run


def _codes(path: Path) -> list[tuple[str, int]]:
    return [(p.code, p.line) for p in verify_file(path).problems]


def test_each_line_hashes_its_own_content_and_names_the_previous_hash(tmp_path: Path) -> None:
    path = _ledger(tmp_path, 3)
    rows = [json.loads(line) for line in _lines(path)]
    assert [r["seq"] for r in rows] == [1, 2, 3]
    assert rows[0]["prev"] == GENESIS
    for before, row in zip(rows, rows[1:], strict=False):
        assert row["prev"] == before["hash"]
    for row in rows:  # independent recomputation: sha256 of the sorted, compact JSON without `hash`
        body = {k: v for k, v in row.items() if k != "hash"}
        raw = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
        assert hashlib.sha256(raw).hexdigest() == row["hash"]
    assert verify_file(path).ok


def test_an_edited_line_is_reported_at_its_position(tmp_path: Path) -> None:
    path = _ledger(tmp_path)
    lines = _lines(path)
    lines[1] = lines[1].replace('"removed":"pass"', '"removed":"fail"')
    _write(path, lines)
    assert _codes(path) == [("UL801", 2)]


def test_an_edited_line_with_a_recomputed_hash_breaks_the_next_link(tmp_path: Path) -> None:
    path = _ledger(tmp_path)
    lines = _lines(path)
    row = json.loads(lines[1])
    row["overall"] = "fail"
    body = {k: v for k, v in row.items() if k != "hash"}
    row["hash"] = hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    lines[1] = json.dumps(row, sort_keys=True, separators=(",", ":"))
    _write(path, lines)
    assert _codes(path) == [("UL802", 3)]


def test_a_deleted_line_is_reported_where_the_chain_breaks(tmp_path: Path) -> None:
    path = _ledger(tmp_path)
    lines = _lines(path)
    del lines[1]
    _write(path, lines)
    assert _codes(path) == [("UL802", 2)]


def test_reordered_lines_are_reported(tmp_path: Path) -> None:
    path = _ledger(tmp_path)
    lines = _lines(path)
    lines[1], lines[2] = lines[2], lines[1]
    _write(path, lines)
    problems = _codes(path)
    assert problems[0] == ("UL802", 2)
    assert all(code == "UL802" for code, _ in problems)


def test_a_cut_end_is_found_through_the_head_file(tmp_path: Path) -> None:
    path = _ledger(tmp_path)
    _write(path, _lines(path)[:-1])
    assert _codes(path) == [("UL804", 3)]


def test_a_cut_end_with_its_head_file_deleted_is_still_found(tmp_path: Path) -> None:
    """Deleting the head file is easier than rewriting it: a ledger of one or more entries without one is
    reported (the head is written before the first line, so no crash leaves a line without it)."""
    path = _ledger(tmp_path)
    head = path.with_name(path.name.removesuffix(".jsonl") + ".head.json")
    assert head.is_file()
    head.unlink()
    _write(path, _lines(path)[:-1])
    assert _codes(path) == [("UL804", 3)]
    assert "head file" in verify_file(path).problems[0].message
    single = _ledger(tmp_path / "one", n=1)
    head = single.with_name(single.name.removesuffix(".jsonl") + ".head.json")
    head.write_text(json.dumps({"count": 0, "hash": "0" * 64}), encoding="utf-8")  # the crash window: before the head
    assert _codes(single) == []                                                      # recorded the first line
    append(tmp_path / "one", _fields(2))  # the next append carries on and writes the head
    assert _codes(single) == []
    head.write_text(json.dumps({"count": 0, "hash": "0" * 64}), encoding="utf-8")  # a head rewritten to say nothing
    assert _codes(single) == [("UL804", 1)]
    head.unlink()
    assert _codes(single) == [("UL804", 2)]


def test_an_unreadable_line_is_reported(tmp_path: Path) -> None:
    path = _ledger(tmp_path)
    lines = _lines(path)
    lines[2] = lines[2][:40]
    _write(path, lines)
    codes = _codes(path)
    assert codes[0] == ("UL803", 3)


def test_an_unreadable_line_says_what_is_wrong_in_words(tmp_path: Path) -> None:
    """A line that is JSON but not an entry names the first field at fault; a line that is not JSON says so
    with its column. Neither message carries pydantic's or Python's own wording."""
    path = _ledger(tmp_path)
    lines = _lines(path)
    entry = json.loads(lines[1])
    del entry["plan_hash"]
    lines[1] = json.dumps(entry)
    lines[2] = "{" + lines[2]
    _write(path, lines)
    problems = verify_file(path).problems
    by_line = {p.line: p.message for p in problems if p.code == "UL803"}
    assert by_line[2].startswith("line 2 is not a ledger entry: `plan_hash`: field required")
    assert by_line[3].startswith("line 3 is not a ledger entry: not valid JSON (column ")
    assert not any("validation error" in m or "Expecting" in m for m in by_line.values())


def test_a_broken_ledger_is_never_extended(tmp_path: Path) -> None:
    path = _ledger(tmp_path, 2)
    lines = _lines(path)
    lines[0] = lines[0].replace("erase-1", "erase-X")
    _write(path, lines)
    before = path.read_bytes()
    with pytest.raises(LedgerError) as err:
        append(tmp_path, _fields(3))
    assert err.value.code == "UL801"
    assert path.read_bytes() == before


def _worker(folder: str, proc: int, count: int) -> None:
    for i in range(count):
        append(Path(folder), _fields(proc * 1000 + i, request_id=f"p{proc}-{i}"))


def test_concurrent_appends_from_several_processes_lose_nothing(tmp_path: Path) -> None:
    procs, count = 4, 8
    ctx = multiprocessing.get_context("fork")
    workers = [ctx.Process(target=_worker, args=(str(tmp_path), p, count)) for p in range(procs)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    assert all(w.exitcode == 0 for w in workers)
    v = verify_file(tmp_path / ledger_name(MODEL))
    assert v.ok, v.problems
    assert [e.seq for e in v.entries] == list(range(1, procs * count + 1))
    assert sorted(e.request_id for e in v.entries) == sorted(f"p{p}-{i}" for p in range(procs) for i in range(count))
    for p in range(procs):  # each process's own appends stay in its order
        mine = [e.request_id for e in v.entries if e.request_id.startswith(f"p{p}-")]
        assert mine == [f"p{p}-{i}" for i in range(count)]


def test_verify_verb_passes_then_fails_on_an_edited_line_with_a_diagnostic(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _ledger(tmp_path, 3)
    assert main(["ledger", "verify", str(tmp_path)]) == 0
    assert "0 errors" in capsys.readouterr().out
    lines = _lines(path)
    lines[2] = lines[2].replace('"overall":"pass"', '"overall":"fail"')
    _write(path, lines)
    assert main(["ledger", "verify", str(tmp_path), "--color", "never"]) == 1
    text = capsys.readouterr().out
    assert "error[UL801]: line 3 was edited after it was written" in text
    assert f"{ledger_name(MODEL)}:3:1" in text
    assert '3 | {"basis":"GDPR Art. 17, request 3"' in text  # the line itself, under the diagnostic
    assert main(["ledger", "verify", str(tmp_path), "--format", "json"]) == 1
    diags = json.loads(capsys.readouterr().out)
    assert [(d["code"], d["line"]) for d in diags["diagnostics"]] == [("UL801", 3)]


def test_show_verb_lists_requests_and_missing_folder_is_a_usage_error(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _ledger(tmp_path, 2)
    assert main(["ledger", "show", str(tmp_path)]) == 0
    text = capsys.readouterr().out
    assert "2 request(s), chain intact" in text
    assert "erase-1" in text and "erase-2" in text and "GDPR Art. 17, request 2" in text
    assert main(["ledger", "show", str(tmp_path), "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [e["request_id"] for e in data["ledgers"][0]["entries"]] == ["erase-1", "erase-2"]
    assert main(["ledger", "verify", str(tmp_path / "nope")]) == 2
    for verb in ("show", "verify"):  # a device is no ledger for either verb (show used to list "no ledgers", 0)
        assert main(["ledger", verb, os.devnull]) == 2
        assert "is neither a ledger folder nor a ledger file" in capsys.readouterr().err


def test_record_run_appends_one_entry_per_objective_once(tmp_path: Path) -> None:
    plan, report = make_plan(), make_report()
    run = tmp_path / "run"
    run.mkdir()
    (run / "report.json").write_text(report.model_dump_json(), encoding="utf-8")
    model_dir = run / "model"
    model_dir.mkdir()
    (model_dir / "model.safetensors").write_bytes(b"weights")
    entries = record_run(tmp_path / "ledger", run, plan, report, {"erase-jane-doe": str(model_dir)})
    assert len(entries) == 1
    e = entries[0]
    assert (e.request_id, e.basis, e.owner, e.plan_hash) == (
        "erase-jane-doe", "GDPR Art. 17, request 2026-0113", "privacy-office", plan.plan_hash)
    assert e.model_before == plan.objectives[0].model.sha256 and e.model_after not in (None, e.model_before)
    assert e.verdicts == {c.claim: c.verdict for c in report.objectives[0].claims}
    assert e.report_sha256 == hashlib.sha256((run / "report.json").read_bytes()).hexdigest()
    receipt = json.loads((run / "ledger.json").read_text())
    assert receipt["entries"][0]["hash"] == e.hash
    assert record_run(tmp_path / "ledger", run, plan, report, {}) == []  # a resumed finished run: not again
    assert len(verify_file(tmp_path / "ledger" / ledger_name(MODEL)).entries) == 1


def test_a_line_that_is_not_its_entrys_canonical_text_is_reported(tmp_path: Path) -> None:
    """JSON keeps the last of a key given twice: a forger can put `"overall":"pass"` first on a failing entry and
    leave the hashed content untouched. A reader of the file sees the first; the line must be its entry's bytes."""
    path = _ledger(tmp_path, 3)
    append(tmp_path, _fields(9, overall="fail", verdicts={"removed": "fail"}))
    lines = _lines(path)
    lines[3] = '{"overall":"pass","verdicts":{"removed":"pass"},' + lines[3][1:]  # the hashed `fail` stays later on
    _write(path, lines)
    assert json.loads(lines[3])["overall"] == "fail"  # what the hash covers is unchanged
    assert _codes(path) == [("UL801", 4)]
    spaced = _ledger(tmp_path / "other", 2)
    rows = _lines(spaced)
    rows[0] = json.dumps(json.loads(rows[0]))  # the same entry, written with spaces
    _write(spaced, rows)
    assert _codes(spaced) == [("UL801", 1)]


def test_a_ledger_that_is_not_utf8_is_reported_at_its_line_and_never_extended(tmp_path: Path) -> None:
    path = _ledger(tmp_path, 3)
    path.write_bytes(path.read_bytes() + b"\xff\n")
    [problem] = verify_file(path).problems
    assert (problem.code, problem.line) == ("UL803", 4)
    before = path.read_bytes()
    with pytest.raises(LedgerError) as err:
        append(tmp_path, _fields(5))
    assert err.value.code == "UL803" and "line 4" in err.value.help[0]
    assert path.read_bytes() == before


def test_show_prints_a_specs_control_characters_escaped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A basis with a line break cannot fake a second entry in the listing, nor an escape sequence recolour it."""
    append(tmp_path, _fields(1, basis="GDPR\n    2  2026-01-01T00:00:00  erase-2  pass", owner="\x1b[31mred"))
    assert main(["ledger", "show", str(tmp_path)]) == 0
    text = capsys.readouterr().out
    assert "\x1b" not in text and "owner: \\x1b[31mred" in text
    assert [ln for ln in text.splitlines() if "erase-2" in ln] == [
        next(ln for ln in text.splitlines() if ln.strip().startswith("basis:"))]  # on the basis line only


def test_recording_a_run_twice_after_a_lost_receipt_appends_once(tmp_path: Path) -> None:
    """A kill after the ledger was appended and before the run folder's receipt was written: the resume finds no
    receipt and records again; the ledger already holds that request of that run and keeps one entry."""
    plan, report = make_plan(), make_report()
    run = tmp_path / "run"
    run.mkdir()
    (run / "report.json").write_text(report.model_dump_json(), encoding="utf-8")
    first = record_run(tmp_path / "ledger", run, plan, report, {})
    (run / "ledger.json").unlink()
    again = record_run(tmp_path / "ledger", run, plan, report, {})
    assert [e.hash for e in again] == [e.hash for e in first]
    assert len(verify_file(tmp_path / "ledger" / ledger_name(MODEL)).entries) == 1


def test_model_before_is_the_loaded_weights_hash_when_the_run_has_one(tmp_path: Path) -> None:
    """A built-in's plan pins its recipe; the ledger's `model_before` is the hash of the weights the run loaded."""
    plan, report = make_plan(), make_report()
    weights = "c" * 64
    report.objectives[0].models = [FileHash(path="builtin:tiny-bios", sha256=weights, role="original")]
    run = tmp_path / "run"
    run.mkdir()
    [entry] = record_run(tmp_path / "ledger", run, plan, report, {})
    assert entry.model_before == weights != plan.objectives[0].model.sha256


def test_a_run_folders_receipt_is_checked_against_the_ledger(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    """`ledger verify LEDGER --run RUN`: the receipt's line must hold its entry, and that entry the run's report.
    An edited receipt (another line), a replaced report and a missing receipt are UL806; the card cites the check."""
    plan, report = make_plan(), make_report()
    run = _run_folder(tmp_path, plan, report)
    ledger = tmp_path / "ledger"
    append(ledger, _fields(1))  # another request first: this run's entry is line 2
    [entry] = record_run(ledger, run, plan, report, {})
    assert entry.seq == 2
    assert main(["ledger", "verify", str(ledger), "--run", str(run)]) == 0
    capsys.readouterr()
    receipt = json.loads((run / "ledger.json").read_text(encoding="utf-8"))
    receipt["entries"][0]["seq"] = 1
    (run / "ledger.json").write_text(json.dumps(receipt), encoding="utf-8")
    assert main(["ledger", "verify", str(ledger), "--run", str(run)]) == 1
    assert "error[UL806]: line 1 of `builtin_tiny-bios.jsonl` is not the entry this run recorded" in capsys.readouterr().out
    receipt["entries"][0]["seq"] = 2
    (run / "ledger.json").write_text(json.dumps(receipt), encoding="utf-8")
    (run / "report.json").write_text(report.model_dump_json(indent=1), encoding="utf-8")  # another report
    assert main(["ledger", "verify", str(ledger), "--run", str(run)]) == 1
    assert "records another report.json than the run folder holds" in capsys.readouterr().out
    (run / "ledger.json").unlink()
    assert main(["ledger", "verify", str(ledger), "--run", str(run)]) == 1
    assert "holds no ledger receipt" in capsys.readouterr().out


def test_a_receipt_that_names_nothing_or_a_broken_ledger_is_not_borne_out(tmp_path: Path) -> None:
    """An emptied receipt vouches for nothing the report holds; a receipt whose ledger was edited points at a
    broken chain. Both are UL806, as is a run folder without its report."""
    from unlearnspec.audit.ledger import verify_receipt

    plan, report = make_plan(), make_report()
    run = _run_folder(tmp_path, plan, report)
    ledger = tmp_path / "ledger"
    record_run(ledger, run, plan, report, {})
    assert verify_receipt(ledger, run) == []
    receipt = json.loads((run / "ledger.json").read_text(encoding="utf-8"))
    (run / "ledger.json").write_text(json.dumps({**receipt, "entries": []}), encoding="utf-8")
    [p] = verify_receipt(ledger, run)
    assert p.code == "UL806" and "names no ledger line for `erase-jane-doe`" in p.message
    (run / "ledger.json").write_text(json.dumps(receipt), encoding="utf-8")
    path = ledger / ledger_name(MODEL)
    path.write_text(path.read_text(encoding="utf-8").replace('"overall":"', '"overall":"x'), encoding="utf-8")
    assert "is broken (line 1" in verify_receipt(ledger, run)[0].message
    (run / "report.json").unlink()
    assert "holds no report.json" in verify_receipt(ledger, run)[0].message


def test_two_models_whose_names_sanitise_alike_keep_two_ledgers(tmp_path: Path) -> None:
    """`org/m` and `org_m` both read `org_m` as a file name; the second gets the name with a short hash of its own,
    so that one ledger never mixes two models' requests, and each chain verifies on its own."""
    from unlearnspec.audit.ledger import ledger_path

    a = append(tmp_path, _fields(1, model="org/m"))
    b = append(tmp_path, _fields(2, model="org_m"))
    c = append(tmp_path, _fields(3, model="org/m"))
    files = sorted(p.name for p in tmp_path.glob("*.jsonl"))
    assert len(files) == 2 and ledger_path(tmp_path, "org/m").name == "org_m.jsonl"
    other = ledger_path(tmp_path, "org_m")
    assert other.name != "org_m.jsonl" and other.name in files
    assert [e.model for e in verify_file(tmp_path / "org_m.jsonl").entries] == ["org/m", "org/m"]
    assert [e.model for e in verify_file(other).entries] == ["org_m"]
    assert (a.seq, b.seq, c.seq) == (1, 1, 2)


# --- a line is checked against the run's report, not only its hash -------------------------------------------

def _forge(ledger: Path, run: Path, **fields: object) -> None:
    """Rewrite the run's ledger line as a forger who can write the ledger, its head and the receipt would: the
    chain recomputed, the head and the receipt updated to the new hash."""
    path = ledger / ledger_name(MODEL)
    [line] = _lines(path)
    data = {**json.loads(line), **fields}
    data["hash"] = entry_hash(data)
    path.write_bytes(canonical(data) + b"\n")
    (ledger / ledger_name(MODEL).replace(".jsonl", ".head.json")).write_bytes(
        canonical({"count": 1, "hash": data["hash"]}) + b"\n")
    receipt = json.loads((run / "ledger.json").read_text(encoding="utf-8"))
    receipt["entries"][0]["hash"] = data["hash"]
    (run / "ledger.json").write_text(json.dumps(receipt), encoding="utf-8")


def _recorded_run(tmp_path: Path) -> tuple[Path, Path, Report]:
    plan, report = make_plan(), make_report()
    obj = report.objectives[0].model_copy(update={"models": [
        FileHash(path=MODEL, sha256="7" * 64, role="original"), FileHash(path="m", sha256="8" * 64, role="unlearned")]})
    report = report.model_copy(update={"objectives": [obj]})
    run = _run_folder(tmp_path, plan, report)
    record_run(tmp_path / "ledger", run, plan, report, {})
    return tmp_path / "ledger", run, report


def test_a_line_rewritten_to_pass_with_its_chain_and_receipt_recomputed_is_found(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The reviewer's attack: the line says PASS, its hash, the head and the receipt recomputed. The ledger's own
    chain cannot see it; the receipt check compares the line with the run folder's report.json and fails."""
    ledger, run, report = _recorded_run(tmp_path)
    obj = report.objectives[0]
    assert obj.overall != "pass"  # the report says the request did not pass
    assert verify_receipt(ledger, run) == []
    _forge(ledger, run, overall="pass", verdicts={c.claim: "pass" for c in obj.claims})
    assert main(["ledger", "verify", str(ledger)]) == 0  # the chain alone is consistent
    capsys.readouterr()
    assert main(["ledger", "verify", str(ledger), "--run", str(run), "--color", "never"]) == 1
    text = capsys.readouterr().out
    assert "does not record what the run folder's report.json says of request `erase-jane-doe`" in text
    assert f'`overall`: the line records "pass", report.json "{obj.overall}"' in text
    assert "`verdicts`: the line records" in text


@pytest.mark.parametrize("field,value", [
    ("plan_hash", "f" * 64), ("model_before", "0" * 64), ("model_after", "7" * 64), ("title", "Another request"),
    ("basis", "none"), ("owner", "someone else"), ("method", "retrain"), ("goal", "suppression"),
    ("model", "builtin:other"), ("drift", {"utility_drop": 0.0}), ("compile_status", {"removed": "supported"})])
def test_every_field_a_line_records_is_checked_against_the_report(tmp_path: Path, field: str, value: object) -> None:
    ledger, run, report = _recorded_run(tmp_path)
    _forge(ledger, run, **{field: value})
    [p] = verify_receipt(ledger, run)
    assert p.code == "UL806" and "1 field(s) differ" in p.message
    assert any(h.startswith(f"`{field}`: the line records") for h in p.help), p.help


def test_the_ledger_line_of_an_audit_records_the_audited_checkpoint(tmp_path: Path) -> None:
    """`model_after` of an audited checkpoint is the checkpoint's hash, not the model it started from."""
    plan, report = make_plan(), make_report()
    given = "9" * 64
    obj = report.objectives[0].model_copy(update={"given": GivenModel(source="vendor/ckpt", form="model",
                                                                      sha256=given, method="npo")})
    report = report.model_copy(update={"objectives": [obj]})
    [entry] = record_run(tmp_path / "ledger", _run_folder(tmp_path, plan, report), plan, report, {})
    assert entry.model_after == given != entry.model_before


# --- a ledger deleted whole, a lone surrogate --------------------------------------------------------------

def test_a_ledger_deleted_whole_is_found_through_its_head(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _ledger(tmp_path, 4)
    path.unlink()  # the head, which records 4 entries, is kept
    assert main(["ledger", "verify", str(tmp_path), "--color", "never"]) == 1
    out = capsys.readouterr().out
    assert "error[UL804]: the ledger `builtin_tiny-bios.jsonl` is missing, but its head file " \
           "`builtin_tiny-bios.head.json` records 4 entries" in out
    assert main(["ledger", "show", str(tmp_path)]) == 0
    assert "0 request(s), chain BROKEN" in capsys.readouterr().out
    path.write_text("", encoding="utf-8")  # emptied rather than deleted
    assert _codes(path) == [("UL804", 1)]
    assert verify_file(path).problems[0].message == "the ledger is empty but its head records 4 entries"


def test_a_lone_surrogate_in_a_line_is_an_unreadable_line_not_a_crash(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """JSON can spell `\\ud800`, which is no character: the line parses but cannot be written back as UTF-8."""
    path = _ledger(tmp_path, 2)
    lines = _lines(path)
    lines[1] = lines[1].replace('"owner":"privacy-office"', '"owner":"\\ud800"')
    _write(path, lines)
    assert _codes(path) == [("UL803", 2)]
    assert "lone surrogate (\\ud800)" in verify_file(path).problems[0].message
    for argv in (["ledger", "verify", str(tmp_path)], ["ledger", "show", str(tmp_path)],
                 ["ledger", "show", str(tmp_path), "--format", "json"]):
        assert main(argv) in (0, 1)
        json_or_text = capsys.readouterr().out
        assert "\ud800" not in json_or_text
    with pytest.raises(LedgerError) as err:  # never extended
        append(tmp_path, _fields(3))
    assert err.value.code == "UL803"


def test_recording_text_that_is_not_utf8_is_a_user_error(tmp_path: Path) -> None:
    """A plan's title can spell a lone surrogate in JSON; recording the run is then UL803, a user error that the run
    verb prints (it catches UserError), never a UnicodeEncodeError from the end of `run`."""
    from unlearnspec.errors import UserError

    plan, report = make_plan(), make_report()
    obj = report.objectives[0].model_copy(update={"title": "Jane \ud800"})
    report = report.model_copy(update={"objectives": [obj]})
    run = tmp_path / "run"
    run.mkdir()
    (run / "report.json").write_text(json.dumps(report.model_dump(mode="json")), encoding="ascii")  # `\ud800`
    with pytest.raises(UserError) as err:
        record_run(tmp_path / "ledger", run, plan, report, {})
    assert err.value.code == "UL803" and "lone surrogate" in err.value.message
    assert not (tmp_path / "run" / "ledger.json").exists()
