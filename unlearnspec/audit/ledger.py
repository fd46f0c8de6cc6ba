"""The request ledger: an append-only, hash-chained JSONL record of the requests applied to a model.

One file per source model (``<DIR>/<model>.jsonl``), one line per objective a run applied: request id,
basis, owner, plan hash, model hash before and after, the claims' verdicts and compile statuses, drift, time. Each line
carries the hash of the line before it (``prev``) and its own hash (``hash``: sha256 of the line's
canonical JSON without ``hash``), so that an edited, inserted, deleted or reordered line breaks the
chain at its position. A head file (``<model>.head.json``) records how many lines the ledger had and
the last hash, so that a ledger cut short at its end is found too (an attacker who can rewrite both
files can rewrite history; the check against that is a run folder's receipt, ``ledger.json``, which names the
line and hash of each of its entries (:func:`verify_receipt`, ``ledger verify --run``), together with the run's
signed report, whose sha256 the line records).

Appends hold an exclusive OS lock (``fcntl.flock`` on ``<DIR>/.lock``) for the whole
read-verify-write, and write the new file atomically (temporary file + ``os.replace``), so two runs
appending at once lose nothing and a crash never leaves half a line. A ledger whose chain is broken
is never extended.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, JsonValue, ValidationError

from unlearnspec.audit.problems import Problem
from unlearnspec.errors import UserError
from unlearnspec.inputs import first_problem, load_json
from unlearnspec.io import atomic_write_bytes
from unlearnspec.plan import Plan
from unlearnspec.records import sha256_path
from unlearnspec.report.chain import budget_problems, budget_undecided
from unlearnspec.report.model import Report

LEDGER_VERSION = "1.1"
"""A line's format (``v``). 1.1: ``compile_status`` (claim → the compiler's status) beside ``verdicts``. A "1"
line has no statuses; it is read and verified as it was written (a field a line lacks is not part of its hash)."""
GENESIS = "0" * 64
LEDGER_SUFFIX = ".jsonl"
HEAD_SUFFIX = ".head.json"
LOCK_NAME = ".lock"


class LedgerEntry(BaseModel):
    """One line of the ledger: one request applied to the model."""

    model_config = ConfigDict(extra="forbid")

    v: str = LEDGER_VERSION
    seq: int  # 1-based position in the ledger
    time: str  # UTC, ISO 8601
    request_id: str  # the objective's name: the request it carries out
    title: str | None = None
    basis: str | None = None
    owner: str | None = None
    model: str  # the source model the ledger is about ("builtin:tiny-bios", a folder, a hub id)
    plan_hash: str
    model_before: str | None = None  # sha256 of the model the request started from
    model_after: str | None = None  # sha256 of the model it produced (the unlearned weights)
    method: str | None = None
    goal: str | None = None
    verdicts: dict[str, str] = Field(default_factory=dict)  # claim -> verdict
    #: claim -> compile status (``supported``, ``cannot_be_verified``, ``cannot_be_met``): a verdict is read beside
    #: it (report/verdict.py, rule 5); empty, and left out of the line, in lines written before format 1.1
    compile_status: dict[str, str] = Field(default_factory=dict, exclude_if=lambda v: not v)
    overall: str
    drift: JsonValue = None  # chains: earlier requests re-checked on this model
    run: str | None = None  # the run directory, as given
    report_sha256: str | None = None
    prev: str
    hash: str = ""


def canonical(data: dict[str, object]) -> bytes:
    """The bytes a line's hash covers: sorted keys, no spaces, UTF-8."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def entry_hash(data: dict[str, object]) -> str:
    return hashlib.sha256(canonical({k: v for k, v in data.items() if k != "hash"})).hexdigest()


def ledger_name(model: str) -> str:
    """The file name of a model's ledger: its source with every unsafe character replaced."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in model).strip("._") or "model"
    return safe[:120] + LEDGER_SUFFIX


# -- verification --------------------------------------------------------------------------------------


@dataclass
class Verified:
    path: Path
    entries: list[LedgerEntry] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def last_hash(self) -> str:
        return self.entries[-1].hash if self.entries else GENESIS


def _head_path(path: Path) -> Path:
    return path.with_name(path.name[: -len(LEDGER_SUFFIX)] + HEAD_SUFFIX)


def verify_text(path: Path, text: str, head: dict[str, object] | None) -> Verified:
    """Recompute the chain of a ledger's text; every break is a :class:`Problem` at its line."""
    result = Verified(path=path, lines=text.split("\n"))
    if text and not text.endswith("\n"):
        n = text.count("\n") + 1
        result.problems.append(Problem("UL803", n, f"line {n} is cut short: the ledger does not end with a newline",
                                       ("a write was interrupted or the file was edited by hand",)))
    rows = text.split("\n")
    if rows and rows[-1] == "":
        rows.pop()
    prev_stored, last_seq = GENESIS, 0
    for i, raw in enumerate(rows, start=1):
        data: object = None
        try:
            data = load_json(raw)  # depth-limited: a line nested thousands deep is malformed, not a crash
            if not isinstance(data, dict):
                raise ValueError("not an object")
            entry = LedgerEntry.model_validate(data)
        except (ValueError, ValidationError) as err:
            if isinstance(err, ValidationError):
                where, why = first_problem(err, "the entry")
                first = f"`{where}`: {why}"
            elif isinstance(err, json.JSONDecodeError):
                first = f"not valid JSON (column {err.colno}: {err.msg[:1].lower() + err.msg[1:]})"
            else:
                first = str(err).splitlines()[0] if str(err) else "unreadable"
            result.problems.append(Problem("UL803", i, f"line {i} is not a ledger entry: {first}",
                                           ("each line is one JSON object written by `unlearnspec run`",)))
            stored = data.get("hash") if isinstance(data, dict) else None
            prev_stored = stored if isinstance(stored, str) else ""
            continue
        assert isinstance(data, dict)
        if raw.encode("utf-8") != canonical(data):  # the hash covers the parsed entry; the line must be its bytes
            result.problems.append(Problem(
                "UL801", i, f"line {i} is not as it was written: its text is not the entry's canonical form",
                (f"request `{entry.request_id}`: a key given twice (JSON keeps the last), spaces or reordered keys "
                 "show something other than what the hash vouches for to a reader of the file",)))
        elif entry_hash(data) != entry.hash:
            result.problems.append(Problem(
                "UL801", i, f"line {i} was edited after it was written: its content does not match its hash",
                (f"request `{entry.request_id}`; recorded hash {entry.hash[:12]}…, content hashes to "
                 f"{entry_hash(data)[:12]}…",)))
        elif entry.prev != prev_stored:
            where = "the start of the ledger" if i == 1 else f"line {i - 1}"
            result.problems.append(Problem(
                "UL802", i, f"line {i} does not follow {where}: the chain is broken",
                ("a line was deleted, inserted or reordered before this one",
                 f"request `{entry.request_id}` names the previous hash {entry.prev[:12]}…")))
        elif entry.seq != last_seq + 1:
            result.problems.append(Problem(
                "UL802", i, f"line {i} records position {entry.seq} after position {last_seq}: the chain is broken",
                ("a line was deleted, inserted or reordered before this one",)))
        result.entries.append(entry)
        prev_stored, last_seq = entry.hash, entry.seq
    if head is None and len(result.entries) >= 2 and not result.problems:
        # the head is written after the first entry; only a crash between the two writes leaves one entry
        # without it, so a longer ledger without its head had it removed, and a cut end would go unseen
        result.problems.append(Problem(
            "UL804", len(result.entries), f"the ledger's head file `{_head_path(path).name}` is missing",
            ("it records how long the ledger was, so that lines cut from the end are found: without it they "
             "cannot be",)))
    if head is not None and not result.problems:
        count, last = head.get("count"), head.get("hash")
        n = len(result.entries)
        if not isinstance(count, int) or not isinstance(last, str):
            result.problems.append(Problem("UL804", 0, "the ledger's head file is not readable",
                                           (f"`{_head_path(path).name}` holds the entry count and last hash",)))
        elif count < 1 and n >= 1:  # the head is written after the first entry, with a count of at least 1
            result.problems.append(Problem(
                "UL804", 1, f"the ledger's head records {count} entries, but the ledger has {n}",
                ("the head file was rewritten: it no longer vouches for the ledger's length",)))
        elif count > n:
            result.problems.append(Problem(
                "UL804", max(n, 1), f"the ledger ends at line {n} but its head records {count} entries",
                ("lines were deleted from the end of the ledger",)))
        elif count >= 1 and result.entries[count - 1].hash != last:
            result.problems.append(Problem(
                "UL804", count, f"line {count} does not match the hash the ledger's head recorded for it",
                ("the ledger was rewritten from this line on",)))
        # count < n with a matching hash: a crash between the ledger write and the head write; the
        # chain itself vouches for the extra lines.
    return result


def _read_head(path: Path) -> dict[str, object] | None:
    hp = _head_path(path)
    if not hp.is_file():
        return None
    try:
        data = load_json(hp.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _line_of(path: Path, offset: int) -> int:
    """The 1-based line of byte ``offset`` of ``path``."""
    return path.read_bytes()[:offset].count(b"\n") + 1


def verify_file(path: Path) -> Verified:
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as err:
        line = _line_of(path, err.start)
        return Verified(path=path, problems=[Problem("UL803", line, f"line {line} is not UTF-8 text",
                                                     ("the file was edited or damaged",))])
    return verify_text(path, text, _read_head(path))


def ledger_files(target: Path) -> list[Path]:
    """The ledgers a folder holds (or the one file named)."""
    if target.is_file():
        return [target]
    return sorted(p for p in target.glob(f"*{LEDGER_SUFFIX}") if p.is_file())


# -- appending -----------------------------------------------------------------------------------------


class LedgerError(UserError):
    """An append that must not happen: the ledger's chain is already broken."""

    def __init__(self, code: str, message: str, help: list[str] | None = None) -> None:
        super().__init__(code, message, help or [])


@contextlib.contextmanager
def locked(folder: Path) -> Iterator[None]:
    """An exclusive lock on the ledger folder, held across processes (``flock``; released on exit,
    and by the OS when a holder dies)."""
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _first_model(path: Path) -> str | None:
    """The ``model`` of a ledger's first line (None: no file, or a first line that cannot be read as an entry)."""
    try:
        with path.open("rb") as fh:
            first = load_json(fh.readline().decode("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    model = first.get("model") if isinstance(first, dict) else None
    return model if isinstance(model, str) else None


def ledger_path(folder: Path, model: str) -> Path:
    """The ledger file of ``model`` in ``folder``: :func:`ledger_name`, unless that file already holds another
    model whose name reads the same once unsafe characters are replaced (``org/m`` and ``org_m``); then the name
    with a short hash of the model, so that two models never share one ledger."""
    base = Path(folder) / ledger_name(model)
    theirs = _first_model(base) if base.is_file() else None
    if theirs is None or theirs == model:
        return base
    digest = hashlib.sha256(model.encode("utf-8")).hexdigest()[:12]
    return base.with_name(base.name[: -len(LEDGER_SUFFIX)][:107] + "-" + digest + LEDGER_SUFFIX)


def append(folder: Path, fields: dict[str, object], once: Sequence[str] = ()) -> LedgerEntry:
    """Append one entry to the ledger of ``fields["model"]`` in ``folder``; returns it, hashed.

    ``seq``, ``prev``, ``hash`` (and ``time`` when absent) are filled in here, under the lock. With ``once``, an
    entry already there that agrees with ``fields`` on those keys is returned instead of appending another (a
    run killed after it was recorded, before its receipt was written, is recorded once when it is resumed)."""
    folder = Path(folder)
    with locked(folder):
        path = ledger_path(folder, str(fields["model"]))
        try:
            text = path.read_bytes().decode("utf-8") if path.exists() else ""
        except UnicodeDecodeError as err:
            raise LedgerError("UL803", f"the ledger `{path}` is not UTF-8 text", [
                f"line {_line_of(path, err.start)} holds a byte that is not UTF-8: the file was edited or damaged",
                "`unlearnspec ledger verify` shows every break; a broken ledger is never extended"]) from None
        current = verify_text(path, text, _read_head(path))
        if not current.ok:
            first = current.problems[0]
            raise LedgerError(first.code, f"the ledger `{path}` is broken at line {first.line}: {first.message}",
                              ["`unlearnspec ledger verify` shows every break; a broken ledger is never extended"])
        if once:
            done = next((e for e in current.entries
                         if all(getattr(e, k) == fields.get(k) for k in once)), None)
            if done is not None:
                return done
        data = {**fields, "seq": len(current.entries) + 1, "prev": current.last_hash}
        data.setdefault("time", now())
        entry = LedgerEntry.model_validate({**data, "hash": ""})
        dumped = entry.model_dump(mode="json")
        dumped["hash"] = entry_hash(dumped)
        entry = LedgerEntry.model_validate(dumped)
        atomic_write_bytes(path, text.encode("utf-8") + canonical(dumped) + b"\n")
        atomic_write_bytes(_head_path(path), canonical({"count": entry.seq, "hash": entry.hash}) + b"\n")
    return entry


# -- what a run records --------------------------------------------------------------------------------

RECEIPT = "ledger.json"


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


def record_run(folder: Path, run_root: Path, plan: Plan, report: Report,
               model_dirs: dict[str, str | None]) -> list[LedgerEntry]:
    """Append one entry per objective of a finished run, once: the run folder keeps a receipt
    (``ledger.json``: where each entry went and its hash), and a run that has one is not recorded again
    (``run --resume`` of a finished run).

    ``model_dirs`` maps objective names to the folder of the
    model each produced (``None``: the weights were not changed, e.g. an output filter)."""
    receipt = run_root / RECEIPT
    if receipt.exists():
        return []
    report_path = run_root / "report.json"
    report_sha = sha256_path(report_path) if report_path.is_file() else None
    by_name = {o.name: o for o in report.objectives}
    drift = chain_drift(report)
    entries: list[LedgerEntry] = []
    after_of: dict[str, str | None] = {}
    previous: dict[str, str] = {}  # a chain's step starts from the model its previous step produced
    for chain in plan.chains:
        for a, b in zip(chain.links, chain.links[1:], strict=False):
            previous[b.objective] = a.objective
    ops = {op.objective.name: op for op in plan.objectives}
    order = [lk.objective for c in plan.chains for lk in c.links]
    order += [n for n in ops if n not in order]
    for name in order:
        op, obj = ops[name], by_name.get(name)
        if obj is None:
            continue
        # the weights the request started from: in a chain, the model the previous step made; else the original
        # as the run loaded and hashed it (a built-in's plan pins its recipe, not its weights)
        loaded = next((m.sha256 for m in obj.models if m.role == "original"), None)
        before = after_of.get(previous[name]) if name in previous else (loaded or op.model.sha256)
        out_dir = model_dirs.get(obj.name)
        after = sha256_path(out_dir) if out_dir and Path(out_dir).exists() else before
        after_of[name] = after
        entries.append(append(folder, {
            "request_id": obj.name, "title": obj.title, "basis": obj.basis, "owner": obj.owner,
            "model": op.model.source, "plan_hash": plan.plan_hash, "model_before": before,
            "model_after": after, "method": obj.method, "goal": obj.goal,
            "verdicts": {c.claim: c.verdict for c in obj.claims},
            "compile_status": {c.claim: c.compile_status for c in obj.claims}, "overall": obj.overall,
            "drift": drift.get(obj.name), "run": str(run_root), "report_sha256": report_sha,
        }, once=("request_id", "plan_hash", "run", "report_sha256")))
    atomic_write_bytes(receipt, json.dumps({
        "ledger": str(folder), "entries": [
            {"request_id": e.request_id, "file": ledger_path(folder, e.model).name, "seq": e.seq, "hash": e.hash}
            for e in entries]}, indent=2).encode("utf-8") + b"\n")
    return entries


def verify_receipt(ledger_dir: Path, run_dir: Path) -> list[Problem]:
    """UL806 for every way a run folder's receipt (``ledger.json``) is not borne out by the ledgers in
    ``ledger_dir``: each entry it names must be at its line with its hash and request, and must record the
    ``report.json`` the run folder holds. The ledgers' own chains are :func:`verify_file`'s."""
    receipt = Path(run_dir) / RECEIPT
    where = (f"`{receipt}`",)
    if not receipt.is_file():
        return [Problem("UL806", 0, f"`{run_dir}` holds no ledger receipt (`{RECEIPT}`): the run was not recorded in "
                                    "a ledger, or its receipt was removed", where)]
    try:
        data = load_json(receipt.read_text(encoding="utf-8"))
        entries = data["entries"] if isinstance(data, dict) else None
        if not isinstance(entries, list):
            raise ValueError("no `entries` list")
    except (OSError, UnicodeDecodeError, ValueError, KeyError) as err:
        why = str(err).splitlines()[0] if str(err) else type(err).__name__
        return [Problem("UL806", 0, f"the ledger receipt cannot be read: {why}", where)]
    report = Path(run_dir) / "report.json"
    if not report.is_file():
        return [Problem("UL806", 0, f"`{run_dir}` holds no report.json for its receipt to vouch for", where)]
    report_sha = sha256_path(report)
    out: list[Problem] = []
    verified_files: dict[Path, Verified] = {}  # a receipt names one ledger per model: each is verified once
    try:
        objectives = {o.name for o in Report.model_validate_json(report.read_text(encoding="utf-8")).objectives}
    except (OSError, UnicodeDecodeError, ValueError):
        objectives = set()
    named = {item.get("request_id") for item in entries if isinstance(item, dict)}
    if objectives - named:  # every objective of a recorded run has a line
        out.append(Problem("UL806", 0, "the receipt names no ledger line for "
                           + ", ".join(f"`{n}`" for n in sorted(objectives - named)), where))
    for item in entries:
        file, seq, sha, rid = (item.get(k) if isinstance(item, dict) else None
                               for k in ("file", "seq", "hash", "request_id"))
        if not (isinstance(file, str) and Path(file).name == file and isinstance(seq, int) and isinstance(sha, str)):
            out.append(Problem("UL806", 0, f"a receipt entry is not a ledger file, line and hash: {item!r:.120}", where))
            continue
        path = Path(ledger_dir) / file
        if not path.is_file():
            out.append(Problem("UL806", 0, f"the receipt names the ledger `{file}`, which `{ledger_dir}` does not hold",
                               where))
            continue
        if path not in verified_files:
            verified_files[path] = verify_file(path)
        verified = verified_files[path]
        entry = next((e for e in verified.entries if e.seq == seq), None)
        if verified.problems:
            out.append(Problem("UL806", 0, f"the ledger `{file}` that the receipt names is broken (line "
                                           f"{verified.problems[0].line}: {verified.problems[0].message})",
                               where + (f"`unlearnspec ledger verify {path}` shows every break",)))
        elif entry is None:
            out.append(Problem("UL806", 0, f"the receipt names line {seq} of `{file}`, which the ledger does not have",
                               where + ("lines were removed from the ledger, or the receipt was edited",)))
        elif entry.hash != sha or entry.request_id != rid:
            out.append(Problem("UL806", 0, f"line {seq} of `{file}` is not the entry this run recorded (request "
                                           f"`{entry.request_id}`, hash {entry.hash[:12]}…; the receipt says "
                                           f"`{rid}`, {sha[:12]}…)", where))
        elif entry.report_sha256 != report_sha:
            out.append(Problem("UL806", 0, f"line {seq} of `{file}` records another report.json than the run folder "
                                           f"holds ({(entry.report_sha256 or 'none')[:12]}… against {report_sha[:12]}…)",
                               where + ("the report was replaced after the run was recorded",)))
    return out
