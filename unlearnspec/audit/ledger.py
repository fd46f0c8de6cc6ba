"""The request ledger: an append-only, hash-chained JSONL record of the requests applied to a model.

One file per source model (``<DIR>/<model>.jsonl``), one line per objective a run applied: request id,
basis, owner, plan hash, model hash before and after, the claims' verdicts and compile statuses, drift, time. Each line
carries the hash of the line before it (``prev``) and its own hash (``hash``: sha256 of the line's
canonical JSON without ``hash``), so that an edited, inserted, deleted or reordered line breaks the
chain at its position. A head file (``<model>.head.json``) records how many lines the ledger had and
the last hash, so that a ledger cut short at its end, or deleted whole, is found too (the file itself:
:mod:`unlearnspec.audit.hashchain`).

An attacker who can rewrite both files can rewrite history consistently; the check against that is a run folder's
receipt, ``ledger.json``, which names the line and hash of each of its entries, together with the run's report:
:func:`verify_receipt` (``ledger verify --run``) finds each named line and checks every field it records (verdicts,
compile statuses, overall, plan hash, model hashes, request, basis, owner, drift, the report's sha256) against the
run folder's ``report.json`` and ``plan.json``. The receipt and the report are covered by the run's signature
(``unlearnspec verify``).

Appends hold an exclusive OS lock (``fcntl.flock`` on ``<DIR>/.lock``, never taken through a link) for the whole
read-verify-write, and write the new file atomically (temporary file + ``os.replace``), so two runs
appending at once lose nothing and a crash never leaves half a line; a new ledger's head is written before its first
line. Verifying holds the same lock shared. A ledger whose chain is broken is never extended.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path

from pydantic import JsonValue, ValidationError

from unlearnspec.audit.hashchain import (
    GENESIS,
    HEAD_SUFFIX,
    LEDGER_SUFFIX,
    LEDGER_VERSION,
    LOCK_NAME,
    LedgerEntry,
    LedgerError,
    Verified,
    append,
    canonical,
    entry_hash,
    ledger_files,
    ledger_name,
    ledger_of_head,
    ledger_path,
    locked,
    not_text,
    now,
    shown,
    verify_file,
    verify_text,
)
from unlearnspec.audit.problems import Problem
from unlearnspec.inputs import first_problem, load_json, read_regular
from unlearnspec.io import atomic_write_bytes
from unlearnspec.markdown import code_span
from unlearnspec.plan import Plan, PlanLoadError
from unlearnspec.records import sha256_path
from unlearnspec.report.chain import budget_problems, budget_undecided
from unlearnspec.report.model import ObjectiveReport, Report

__all__ = ["GENESIS", "HEAD_SUFFIX", "LEDGER_SUFFIX", "LEDGER_VERSION", "LOCK_NAME", "RECEIPT", "LedgerEntry",
           "LedgerError", "Verified", "append", "canonical", "chain_drift", "check_receipt", "entry_hash",
           "ledger_files", "ledger_name", "ledger_of_head", "ledger_path", "line_fields", "locked", "now",
           "record_run", "verify_file", "verify_receipt", "verify_text"]

RECEIPT = "ledger.json"
#: what a line records that its run's report and plan do not decide: where and when it was written, its place in
#: the chain, and the report's sha256 (checked on its own)
NOT_FROM_THE_REPORT = ("v", "seq", "time", "run", "prev", "hash", "report_sha256")


def chain_drift(report: Report) -> dict[str, JsonValue]:
    """Per request of a chain, what its ledger line records as drift: the cumulative utility drop after
    it, whether the chain's budget was exceeded (or not settled) by then, and each earlier request's claim
    verdicts then and now."""
    out: dict[str, JsonValue] = {}
    for chain in report.chains:
        for i, step in enumerate(chain.steps):
            so_far = chain.steps[: i + 1]  # the budget as it stood once this request was applied
            out[step.request] = {
                "utility_drop": step.utility_drop, "budget_exceeded": bool(budget_problems(chain.budget, so_far)),
                "budget_undecided": bool(budget_undecided(chain.budget, so_far)),
                "rechecks": {r.request: {c.claim: [c.then, c.now] for c in r.claims} for r in step.rechecks}}
    return out


def produced(obj: ObjectiveReport) -> str | None:
    """The hash of the model an objective's request produced, as its report records it: the unlearned model this run
    wrote, or the audited checkpoint that was given; ``None``: the report records none (the weights were not changed,
    e.g. an output filter)."""
    made = next((m.sha256 for m in obj.models if m.role == "unlearned"), None)
    return made or (obj.given.sha256 if obj.given else None)


def line_fields(plan: Plan, report: Report, made: Mapping[str, str] | None = None) -> list[dict[str, object]]:
    """The ledger line of each objective of a finished run, as its plan and report decide it (every field but
    :data:`NOT_FROM_THE_REPORT`), in the order the run applied them. ``made`` gives the hash of the model an objective
    produced where its report records none (:func:`produced`); without one the weights are taken as unchanged."""
    made = made or {}
    by_name = {o.name: o for o in report.objectives}
    drift = chain_drift(report)
    after_of: dict[str, str | None] = {}
    previous: dict[str, str] = {}  # a chain's step starts from the model its previous step produced
    for chain in plan.chains:
        for a, b in zip(chain.links, chain.links[1:], strict=False):
            previous[b.objective] = a.objective
    ops = {op.objective.name: op for op in plan.objectives}
    order = [lk.objective for c in plan.chains for lk in c.links]
    order += [n for n in ops if n not in order]
    lines: list[dict[str, object]] = []
    for name in order:
        op, obj = ops.get(name), by_name.get(name)
        if op is None or obj is None:
            continue
        # the weights the request started from: in a chain, the model the previous step made; else the original
        # as the run loaded and hashed it (a built-in's plan pins its recipe, not its weights)
        loaded = next((m.sha256 for m in obj.models if m.role == "original"), None)
        before = after_of.get(previous[name]) if name in previous else (loaded or op.model.sha256)
        after = produced(obj) or made.get(name) or before
        after_of[name] = after
        lines.append({
            "request_id": obj.name, "title": obj.title, "basis": obj.basis, "owner": obj.owner,
            "model": op.model.source, "plan_hash": plan.plan_hash, "model_before": before,
            "model_after": after, "method": obj.method, "goal": obj.goal,
            "verdicts": {c.claim: c.verdict for c in obj.claims},
            "compile_status": {c.claim: c.compile_status for c in obj.claims}, "overall": obj.overall,
            "drift": drift.get(obj.name)})
    return lines


def record_run(folder: Path, run_root: Path, plan: Plan, report: Report,
               model_dirs: dict[str, str | None]) -> list[LedgerEntry]:
    """Append one entry per objective of a finished run, once: the run folder keeps a receipt
    (``ledger.json``: where each entry went and its hash), and a run that has one is not recorded again
    (``run --resume`` of a finished run).

    ``model_dirs`` maps objective names to the folder of the model each produced (``None``: the weights were not
    changed, e.g. an output filter); it is hashed only where the report records no hash of that model, and a folder
    that is not there then is a :class:`LedgerError` (UL805), never a line that says the weights did not change. Text
    that cannot be written as UTF-8 is a :class:`LedgerError` (UL803), never a traceback."""
    receipt = run_root / RECEIPT
    if receipt.exists():
        return []
    report_path = run_root / "report.json"
    report_sha = sha256_path(report_path) if report_path.is_file() else None
    recorded = {o.name for o in report.objectives if produced(o)}
    made: dict[str, str] = {}
    for name, d in model_dirs.items():
        if not d or name in recorded:
            continue
        if not Path(d).is_dir():  # never `model_after = model_before`: the request did change the weights
            raise LedgerError("UL805", f"the run could not be recorded in the ledger {code_span(shown(folder))}: the model "
                                       f"request {code_span(shown(name))} made is not at {code_span(shown(d))}, and the report records "
                                       "no hash of it, so the line could not say what the model became",
                              ["the run's reports are complete; restore the run folder's unlearned model (a run "
                               "folder is resumed where its model is, never with another folder's) and run "
                               "`unlearnspec run --resume RUN_DIR` to record it"])
        made[name] = sha256_path(d)
    entries: list[LedgerEntry] = []
    try:
        for fields in line_fields(plan, report, made):
            entries.append(append(folder, {**fields, "run": str(run_root), "report_sha256": report_sha},
                                  once=("request_id", "plan_hash", "run", "report_sha256")))
    except UnicodeEncodeError as err:  # a path or name that is not text: a diagnostic, as every user error
        raise LedgerError("UL803", f"the run could not be recorded in the ledger {code_span(shown(folder))}: {not_text(err)}",
                          ["the run's reports are complete"]) from None
    atomic_write_bytes(receipt, within=run_root, data=json.dumps({
        "ledger": str(folder), "entries": [
            {"request_id": e.request_id, "file": ledger_path(folder, e.model).name, "seq": e.seq, "hash": e.hash}
            for e in entries]}, indent=2).encode("utf-8") + b"\n")
    return entries


def _value(x: object) -> str:
    """A recorded value, short and ASCII, for a message."""
    text = json.dumps(x, sort_keys=True, ensure_ascii=True)
    return text if len(text) <= 100 else text[:97] + "…"


def _parsed(x: object) -> object:
    """A value as JSON reads it back (a tuple is a list, 1.0 equals 1), so that a line and a report compare."""
    return json.loads(json.dumps(x, sort_keys=True, ensure_ascii=True))


def _differences(entry: LedgerEntry, expected: Mapping[str, object]) -> list[str]:
    """Each field of a ledger line that is not what the run's report and plan say, with both values."""
    out = []
    for key, want in expected.items():
        if key == "compile_status" and entry.v == "1":  # written before statuses were recorded
            continue
        have, want = _parsed(getattr(entry, key)), _parsed(want)
        if have == want:
            continue
        if isinstance(have, dict) and isinstance(want, dict):  # the claims that differ, not the whole map
            keys = sorted(k for k in {*have, *want} if have.get(k) != want.get(k))
            have, want = {k: have.get(k) for k in keys}, {k: want.get(k) for k in keys}
        out.append(f"{code_span(key)}: the line records {_value(have)}, report.json {_value(want)}")
    return out


def _run_files(run_dir: Path, where: tuple[str, ...]) -> tuple[str, Report, Plan] | Problem:
    """The run folder's report (its sha256, and the report validated from those very bytes) and plan."""
    try:
        raw = read_regular(run_dir / "report.json")
    except OSError:
        return Problem("UL806", 0, f"{code_span(run_dir)} holds no report.json for its receipt to vouch for", where)
    try:
        report = Report.model_validate_json(raw)
    except ValidationError as err:
        at, why = first_problem(err, "the top level")
        return Problem("UL806", 0, f"the run folder's report.json is not a valid report ({at}: {why})", where)
    try:
        plan = Plan.load(run_dir / "plan.json")
    except PlanLoadError as err:
        return Problem("UL806", 0, f"the run folder's plan cannot be read: {err.message}", where)
    if plan.plan_hash != report.audit.plan_hash:
        return Problem("UL806", 0, "the run folder's report.json was made from another plan than its plan.json",
                       where)
    return hashlib.sha256(raw).hexdigest(), report, plan


def check_receipt(ledger_dir: Path, run_dir: Path) -> tuple[list[Problem], list[tuple[str, LedgerEntry]]]:
    """UL806 for every way a run folder's receipt (``ledger.json``) is not borne out by the ledgers in
    ``ledger_dir``: each entry it names must be at its line with its hash and request, must record the
    ``report.json`` the run folder holds, and every other field of the line must be what that report and the plan
    beside it say (:func:`line_fields`). Also returns the lines it bears out, with their files (when there is no
    problem: every line of the run). The ledgers' own chains are :func:`verify_file`'s."""
    receipt = Path(run_dir) / RECEIPT
    where = (code_span(receipt),)
    if not receipt.is_file():
        return [Problem("UL806", 0, f"{code_span(run_dir)} holds no ledger receipt ({code_span(RECEIPT)}): the run was not recorded in "
                                    "a ledger, or its receipt was removed", where)], []
    try:
        data = load_json(read_regular(receipt).decode("utf-8"))
        entries = data["entries"] if isinstance(data, dict) else None
        if not isinstance(entries, list):
            raise ValueError("no `entries` list")
        canonical(data)  # every string is text (no lone surrogate)
    except (OSError, ValueError, KeyError) as err:
        why = not_text(err) if isinstance(err, UnicodeEncodeError) else (
            str(err).splitlines()[0] if str(err) else type(err).__name__)
        return [Problem("UL806", 0, f"the ledger receipt cannot be read: {why}", where)], []
    found = _run_files(Path(run_dir), where)
    if isinstance(found, Problem):
        return [found], []
    report_sha, report, plan = found
    expected = {str(f["request_id"]): f for f in line_fields(plan, report)}
    out: list[Problem] = []
    borne: list[tuple[str, LedgerEntry]] = []
    verified_files: dict[Path, Verified] = {}  # a receipt names one ledger per model: each is verified once
    named = {item.get("request_id") for item in entries if isinstance(item, dict)}
    if set(expected) - named:  # every objective of a recorded run has a line
        out.append(Problem("UL806", 0, "the receipt names no ledger line for "
                           + ", ".join(code_span(shown(n)) for n in sorted(set(expected) - named)), where))
    for item in entries:
        file, seq, sha, rid = (item.get(k) if isinstance(item, dict) else None
                               for k in ("file", "seq", "hash", "request_id"))
        if not (isinstance(file, str) and Path(file).name == file and file not in ("", ".", "..")
                and type(seq) is int and isinstance(sha, str) and isinstance(rid, str)):  # `true` is no line
            out.append(Problem("UL806", 0, f"a receipt entry is not a request, ledger file, line and hash: "
                                           f"{_value(item)}", where))
            continue
        path = Path(ledger_dir) / file
        if not path.is_file():
            out.append(Problem("UL806", 0, f"the receipt names the ledger {code_span(file)}, which {code_span(ledger_dir)} does not hold",
                               where))
            continue
        if path not in verified_files:
            verified_files[path] = verify_file(path)
        verified = verified_files[path]
        entry = next((e for e in verified.entries if e.seq == seq), None)
        if verified.problems:
            out.append(Problem("UL806", 0, f"the ledger {code_span(file)} that the receipt names is broken (line "
                                           f"{verified.problems[0].line}: {verified.problems[0].message})",
                               where + (f"`unlearnspec ledger verify {path}` shows every break",)))
        elif entry is None:
            out.append(Problem("UL806", 0, f"the receipt names line {seq} of {code_span(file)}, which the ledger does not have",
                               where + ("lines were removed from the ledger, or the receipt was edited",)))
        elif entry.hash != sha or entry.request_id != rid:
            out.append(Problem("UL806", 0, f"line {seq} of {code_span(file)} is not the entry this run recorded (request "
                                           f"{code_span(entry.request_id)}, hash {entry.hash[:12]}…; the receipt says "
                                           f"{code_span(rid)}, {sha[:12]}…)", where))
        elif entry.report_sha256 != report_sha:
            out.append(Problem("UL806", 0, f"line {seq} of {code_span(file)} records another report.json than the run folder "
                                           f"holds ({(entry.report_sha256 or 'none')[:12]}… against {report_sha[:12]}…)",
                               where + ("the report was replaced after the run was recorded",)))
        elif rid not in expected:
            out.append(Problem("UL806", 0, f"line {seq} of {code_span(file)} records request {code_span(rid)}, which the run folder's "
                                           "report.json does not hold", where))
        elif diffs := _differences(entry, expected[rid]):
            out.append(Problem("UL806", 0, f"line {seq} of {code_span(file)} does not record what the run folder's report.json "
                                           f"says of request {code_span(rid)}: {len(diffs)} field(s) differ",
                               (*where, *diffs, "the line was rewritten (its chain recomputed) after the run")))
        else:
            borne.append((file, entry))
    return out, borne


def verify_receipt(ledger_dir: Path, run_dir: Path) -> list[Problem]:
    """UL806 for every way a run folder's receipt is not borne out by the ledgers in ``ledger_dir``
    (:func:`check_receipt`)."""
    return check_receipt(ledger_dir, run_dir)[0]
