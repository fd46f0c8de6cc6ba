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

A team that tries runs before it releases one says which it adopted (released), kept as a trial or withdrew with a
mark (``ledger mark``: :func:`mark_run`): a line of the same chain that names the run's lines, its report, who and why
(:mod:`unlearnspec.audit.hashchain` reads, checks and appends lines of both kinds, and gives a request's status). A request's status is its latest mark's; unmarked, it was recorded and
nothing more.

Appends hold an exclusive OS lock (``fcntl.flock`` on ``<DIR>/.lock``, never taken through a link) for the whole
read-verify-write, and write the new file atomically (temporary file + ``os.replace``), so two runs
appending at once lose nothing and a crash never leaves half a line; a new ledger's head is written before its first
line. Verifying holds the same lock shared. A ledger whose chain is broken is never extended.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from pydantic import JsonValue, ValidationError

from unlearnspec.audit.hashchain import (
    GENESIS,
    HEAD_SUFFIX,
    LEDGER_SUFFIX,
    LEDGER_VERSION,
    LOCK_NAME,
    MARK_KIND,
    STATUSES,
    UNMARKED,
    LedgerEntry,
    LedgerError,
    MarkEntry,
    Status,
    Verified,
    add_line,
    append,
    canonical,
    conflicts,
    current,
    entry_hash,
    ledger_files,
    ledger_name,
    ledger_of_head,
    ledger_path,
    locked,
    mark_of,
    not_text,
    now,
    shown,
    status_of,
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

__all__ = ["GENESIS", "HEAD_SUFFIX", "LEDGER_SUFFIX", "LEDGER_VERSION", "LOCK_NAME", "RECEIPT", "STATUSES",
           "UNMARKED", "Borne", "LedgerEntry", "LedgerError", "MarkEntry", "Marked", "Marking", "Status", "Verified",
           "append", "canonical", "chain_drift", "check_receipt", "entry_hash", "ledger_files", "ledger_name",
           "ledger_of_head", "ledger_path", "line_fields", "locked", "mark_of", "mark_run", "now", "record_run",
           "status_of", "verify_file", "verify_receipt", "verify_text"]

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


class Borne(NamedTuple):
    """A ledger line a run folder's receipt names and the ledger bears out: its file, the line, and its latest mark
    (``None``: its status is :data:`~unlearnspec.audit.hashchain.UNMARKED`)."""

    file: str
    entry: LedgerEntry
    mark: MarkEntry | None


def check_receipt(ledger_dir: Path, run_dir: Path) -> tuple[list[Problem], list[Borne]]:
    """UL806 for every way a run folder's receipt (``ledger.json``) is not borne out by the ledgers in
    ``ledger_dir``: each entry it names must be at its line with its hash and request, must record the
    ``report.json`` the run folder holds, and every other field of the line must be what that report and the plan
    beside it say (:func:`line_fields`). Also returns the lines it bears out, with their files (when there is no
    problem: every line of the run), with their files and latest marks. The ledgers' own chains (marks included) are
    :func:`verify_file`'s."""
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
    borne: list[Borne] = []
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
            borne.append(Borne(file, entry, mark_of(verified, entry)))
    return out, borne


def verify_receipt(ledger_dir: Path, run_dir: Path) -> list[Problem]:
    """UL806 for every way a run folder's receipt is not borne out by the ledgers in ``ledger_dir``
    (:func:`check_receipt`)."""
    return check_receipt(ledger_dir, run_dir)[0]


# -- marks: which runs a team adopted ------------------------------------------------------------------------------


class Marked(NamedTuple):
    """A mark :func:`mark_run` appended: its ledger's file name, the mark, and the request lines it names."""

    file: str
    mark: MarkEntry
    lines: list[LedgerEntry]


@dataclass
class Marking:
    """What :func:`mark_run` did: the marks it appended (one per ledger the run's lines are in), the lines that
    already had the status asked for (nothing is appended for them), or the problems that refused the mark, each with
    the file it is about (nothing is appended then)."""

    marks: list[Marked] = field(default_factory=list)
    unchanged: list[Borne] = field(default_factory=list)
    problems: list[tuple[Path, Problem]] = field(default_factory=list)


def _refusals(ledger: Verified, named: list[LedgerEntry], status: Status) -> list[Problem]:
    """UL809 for each line of a run that cannot take ``status`` now, at that line
    (:func:`~unlearnspec.audit.hashchain.conflicts`)."""
    return [Problem("UL809", e.seq, why, (then,)) for e, why, then in conflicts(ledger, named, status)]


def mark_run(ledger_dir: Path, run_dir: Path, status: Status, why: str, by: str) -> Marking:
    """Append a mark (:class:`~unlearnspec.audit.hashchain.MarkEntry`) to each ledger in ``ledger_dir`` that holds lines
    of the run in ``run_dir``, naming those lines and the run's report, saying ``status``, ``why`` and ``by`` whom.

    Refused (problems, nothing appended): a run folder whose receipt the ledgers do not bear out (UL806,
    :func:`check_receipt`: the ledger does not hold the run, or the run folder's report is not the one recorded), and a
    status the lines cannot take now (UL809, :func:`_refusals`). A line that already has ``status`` gets no new mark,
    so a mark killed between two ledgers is finished by running it again. Every ledger is read, checked and extended
    under the folder's exclusive lock, each written as :func:`~unlearnspec.audit.hashchain.add_line` writes a line.
    A reason or a name that is empty, or is not text, is a :class:`LedgerError` (UL809, UL803)."""
    ledger_dir, run_dir = Path(ledger_dir), Path(run_dir)
    for flag, text in (("--why", why), ("--by", by)):
        if not text.strip():
            raise LedgerError("UL809", f"a mark needs {'the reason for it' if flag == '--why' else 'who made it'}: "
                                       f"`{flag}` is empty",
                              ["say why, in words a reader of the ledger will understand later: `--why \"released "
                               "as v2 after review 2026-04\"`" if flag == "--why" else
                               "give your name or role: `--by \"privacy-office (J. Smith)\"`"])
    try:
        canonical({"why": why, "by": by, "run": str(run_dir)})
    except UnicodeEncodeError as err:  # a command-line argument that is not UTF-8
        raise LedgerError("UL803", f"the mark cannot be written: {not_text(err)}", ["write the text it stands for"]) from None
    found, borne = check_receipt(ledger_dir, run_dir)
    receipt = run_dir / RECEIPT
    if not found and not borne:
        found = [Problem("UL806", 0, "the receipt names no ledger line: the run recorded nothing to mark",
                         (code_span(receipt),))]
    if found:
        return Marking(problems=[(receipt, p) for p in found])
    by_file: dict[str, list[Borne]] = {}
    for b in borne:
        by_file.setdefault(b.file, []).append(b)
    try:
        return _append_marks(ledger_dir, receipt, by_file, status, {"run": str(run_dir), "by": by, "why": why})
    except OSError as err:  # a read-only folder or file, a full disk, a `.lock` that is not a file
        name = Path(err.filename).name if err.filename else ledger_dir.name
        raise LedgerError("UL805", f"the mark cannot be written to {code_span(name)}: "
                                   f"{(err.strerror or str(err)).lower()}",
                          [f"a mark is a line appended to the ledger in {code_span(ledger_dir)} (and its head file), "
                           "under the folder's lock file `.lock`: all must be writable",
                           "each ledger is written whole or not at all: run the same `ledger mark` again once they "
                           "are (a ledger already marked gets nothing more)"]) from None


def _append_marks(ledger_dir: Path, receipt: Path, by_file: Mapping[str, list[Borne]], status: Status,
                  mark: dict[str, object]) -> Marking:
    """:func:`mark_run`'s appending: under the folder's exclusive lock, check each ledger again and refuse
    (problems) or append a mark of ``status`` (with ``mark``'s ``run``, ``by`` and ``why``) naming the run's lines."""
    done = Marking()
    todo: list[tuple[str, Verified, list[LedgerEntry]]] = []
    with locked(ledger_dir):
        for file, lines in by_file.items():
            path = ledger_dir / file
            try:
                ledger = current(path)  # the receipt was checked before the lock: what it bore out must still be there
            except LedgerError as err:
                done.problems.append((path, Problem(err.code, 0, err.message, tuple(err.help))))
                continue
            named = [e for b in lines for e in ledger.entries if (e.seq, e.hash) == (b.entry.seq, b.entry.hash)]
            if len(named) != len(lines):
                done.problems.append((path, Problem("UL806", 0, "the ledger changed while the mark was made: a line the "
                                                               "receipt names is no longer there", (code_span(receipt),))))
            elif all(status_of(ledger, e) == status for e in named):
                done.unchanged += [Borne(file, e, mark_of(ledger, e)) for e in named]
            else:
                done.problems += [(path, p) for p in _refusals(ledger, named, status)]
                todo.append((file, ledger, named))
        if done.problems:
            return Marking(problems=done.problems)
        for file, ledger, named in todo:
            done.marks.append(Marked(file, add_line(ledger, {
                **mark, "kind": MARK_KIND, "status": status, "report_sha256": named[0].report_sha256,
                "about": [{"seq": e.seq, "hash": e.hash, "request_id": e.request_id} for e in named]}, MarkEntry), named))
    return done
