"""The ledger file itself: a hash-chained JSONL record, its entries, its verification and appending to it.

Each line is one entry's canonical JSON (sorted keys, no spaces, UTF-8) and carries the hash of the line before it
(``prev``) and its own (``hash``), so that an edited, inserted, deleted or reordered line breaks the chain at its
position; the head file (``<model>.head.json``) records the length and the last hash, so that a cut end, or a ledger
deleted whole, is found too. The head is written before the first line (recording none) and after every line, so a
crash leaves it at most one line behind, and a ledger with a line but no head had its head removed. Reading holds the
folder's lock shared, so an append is seen whole or not at all. What a run records in it, and a run folder's
receipt, are :mod:`unlearnspec.audit.ledger`'s.

A line is of one of two kinds: a request line (:class:`LedgerEntry`, which has no ``kind``: every line before marks
was one) or a mark (:class:`MarkEntry`, ``kind`` ``"mark"``: what became of a run's request lines). Both are links of
the one chain, checked alike, and the head counts both; a ledger without marks reads, verifies and is extended exactly
as before marks. Beside its chain, each line a mark names must be an earlier request line of the same ledger with
that hash, recording the report the mark names (UL808, :func:`mark_problems`); a mark that is not borne out decides
no status. A request's status is its latest mark's (:func:`status_of`); a request no mark names is ``recorded``.
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
from typing import Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, JsonValue, ValidationError

from unlearnspec.audit.problems import Problem
from unlearnspec.errors import UserError
from unlearnspec.inputs import first_problem, load_json, read_regular
from unlearnspec.io import atomic_write_bytes
from unlearnspec.markdown import code_span

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


MARK_VERSION = "1.2"
"""A mark's format (``v``): marks came with ledger format 1.2; request lines are still written as 1.1."""
MARK_KIND = "mark"
Status = Literal["adopted", "trial", "withdrawn"]
STATUSES: tuple[Status, ...] = ("adopted", "trial", "withdrawn")


class MarkedLine(BaseModel):
    """A request line a mark is about: its position, its hash and its request."""

    model_config = ConfigDict(extra="forbid")

    seq: int
    hash: str
    request_id: str


class MarkEntry(BaseModel):
    """A mark: what became of a run's request lines (``unlearnspec ledger mark``)."""

    model_config = ConfigDict(extra="forbid")

    v: str = MARK_VERSION
    kind: Literal["mark"]  # what tells a mark from a request line (which has no `kind`)
    seq: int  # 1-based position in the ledger, counted over lines of both kinds
    time: str  # UTC, ISO 8601
    status: Status
    about: list[MarkedLine] = Field(min_length=1)  # the run's lines in this ledger
    run: str | None = None  # the run directory, as given
    report_sha256: str  # the report the named lines record
    by: str = Field(min_length=1)
    why: str = Field(min_length=1)
    prev: str
    hash: str = ""


Line = LedgerEntry | MarkEntry
T = TypeVar("T", LedgerEntry, MarkEntry)


def canonical(data: dict[str, object]) -> bytes:
    """The bytes a line's hash covers: sorted keys, no spaces, UTF-8."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def entry_hash(data: dict[str, object]) -> str:
    return hashlib.sha256(canonical({k: v for k, v in data.items() if k != "hash"})).hexdigest()


def shown(text: object) -> str:
    """A string from a ledger, a receipt or a spec, safe to put in a message: a lone surrogate (``\\ud800``, which JSON
    can spell but UTF-8 cannot encode) is written as its escape instead of failing the output."""
    return str(text).encode("utf-8", "backslashreplace").decode("utf-8")


def not_text(err: UnicodeEncodeError) -> str:
    """Why a parsed string cannot be written as UTF-8, in words."""
    bad = err.object[err.start:err.end] if isinstance(err.object, str) else ""
    return f"it holds a lone surrogate ({shown(bad) or 'a character'}), which is not text: it has no UTF-8 bytes"


def ledger_name(model: str) -> str:
    """The file name of a model's ledger: its source with every unsafe character replaced."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in model).strip("._") or "model"
    return safe[:120] + LEDGER_SUFFIX


# -- verification --------------------------------------------------------------------------------------


@dataclass
class Verified:
    """A ledger as read: its request lines (``entries``), its marks that are borne out (``marks``: their chain holds,
    and :func:`mark_problems` finds nothing), every line it could read in order (``chain``), its problems and its
    text's rows (``lines``)."""

    path: Path
    entries: list[LedgerEntry] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    marks: list[MarkEntry] = field(default_factory=list)
    chain: list[Line] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def last_hash(self) -> str:
        return self.chain[-1].hash if self.chain else GENESIS

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def named(line: Line) -> str:
    """A line, named for a message."""
    if isinstance(line, MarkEntry):
        return f"the {line.status} mark of run {code_span(shown(line.run or '-'))}"
    return f"request {code_span(line.request_id)}"


UNMARKED = "recorded"
"""The status of a request no mark names: the run was recorded, and nobody has said it was adopted."""


def mark_problems(mark: MarkEntry, entries: Sequence[LedgerEntry], i: int) -> list[Problem]:
    """UL808 for each line a mark (at line ``i``) names that is not one of ``entries`` (the request lines before it)
    with that hash and request, recording the report the mark names."""
    by_seq = {e.seq: e for e in entries}
    out = []
    for a in mark.about:
        e = by_seq.get(a.seq)
        if e is None:
            why = f"there is no request line {a.seq} before it"
        elif (e.hash, e.request_id) != (a.hash, a.request_id):
            why = (f"line {a.seq} is request {code_span(e.request_id)} with hash {e.hash[:12]}…, the mark names "
                   f"{code_span(shown(a.request_id))} with hash {a.hash[:12]}…")
        elif e.report_sha256 != mark.report_sha256:
            why = (f"line {a.seq} records the report {(e.report_sha256 or 'none')[:12]}…, the mark "
                   f"{mark.report_sha256[:12]}…")
        else:
            continue
        out.append(Problem("UL808", i, f"line {i} marks a line that is not in this ledger: {why}",
                           (f"{named(mark)} names line {a.seq} (request {code_span(shown(a.request_id))}); a mark "
                            "is written after the lines it is about, in their ledger: it was edited with its hash "
                            "recomputed, or copied from another ledger",)))
    return out


def conflicts(ledger: Verified, named: Sequence[LedgerEntry], status: Status) -> list[tuple[LedgerEntry, str, str]]:
    """Each of a run's request lines (``named``) that cannot take ``status`` after the marks ``ledger`` holds, with
    why (a sentence naming the line) and what to do instead: a withdrawal is final; a run that was adopted (released)
    cannot be called a trial after the fact; and a request has one adopted run at a time, so that "adopted" answers
    which model a request was released with. ``ledger mark`` refuses such a mark (UL809); verification finds one
    written by hand (UL808, :func:`verify_text`)."""
    out = []
    ours = {e.seq for e in named}
    for e in named:
        mark = mark_of(ledger, e)
        if mark is not None and mark.status != status and mark.status == "withdrawn":
            out.append((e, f"request {code_span(e.request_id)} (line {e.seq}) was withdrawn at line {mark.seq}: a "
                           f"withdrawal is final, it cannot be marked {status}",
                        "the ledger keeps what was withdrawn and why; to release the request again, run it again "
                        "(`unlearnspec run`) and mark that run"))
        elif mark is not None and mark.status == "adopted" and status == "trial":
            out.append((e, f"request {code_span(e.request_id)} (line {e.seq}) was adopted at line {mark.seq}: a run "
                           "that was released cannot be marked a trial",
                        "if it is no longer released, mark it `--withdrawn`, with the reason"))
        if status != "adopted":
            continue
        other = next((x for x in ledger.entries if x.request_id == e.request_id and x.seq not in ours
                      and status_of(ledger, x) == "adopted"), None)
        if other is not None:
            out.append((e, f"request {code_span(e.request_id)} is already adopted from another run (line {other.seq}, "
                           f"run {code_span(shown(other.run or '-'))}): a request is released with one model at a time",
                        "mark that run `--withdrawn` first, with the reason, then adopt this one"))
    return out


def mark_of(ledger: Verified, entry: LedgerEntry) -> MarkEntry | None:
    """The latest borne-out mark that names a request line (``None``: none does; its status is :data:`UNMARKED`)."""
    return next((m for m in reversed(ledger.marks)
                 if any(a.seq == entry.seq and a.hash == entry.hash for a in m.about)), None)


def status_of(ledger: Verified, entry: LedgerEntry) -> str:
    """A request line's status: its latest mark's, or :data:`UNMARKED`."""
    mark = mark_of(ledger, entry)
    return mark.status if mark else UNMARKED


def _head_path(path: Path) -> Path:
    """The head file of the ledger ``path``: ``<model>.head.json`` beside ``<model>.jsonl`` (a ledger file given by
    another name gets its whole name and the suffix)."""
    stem = path.name[: -len(LEDGER_SUFFIX)] if path.name.endswith(LEDGER_SUFFIX) else path.name
    return path.with_name(stem + HEAD_SUFFIX)


def verify_text(path: Path, text: str, head: dict[str, object] | None) -> Verified:
    """Recompute the chain of a ledger's text, lines of both kinds; every break is a :class:`Problem` at its line. A
    mark whose chain holds is then checked against the request lines before it (:func:`mark_problems`); one with
    problems decides nothing (it is not in ``marks``)."""
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
            line: Line = (MarkEntry if data.get("kind") == MARK_KIND else LedgerEntry).model_validate(data)
            written = canonical(data)  # a lone surrogate (`"\\ud800"`) parses but cannot be written back as UTF-8
        except (ValueError, ValidationError) as err:
            if isinstance(err, UnicodeEncodeError):
                first = not_text(err)
            elif isinstance(err, ValidationError):
                where, why = first_problem(err, "the entry")
                first = f"{code_span(where)}: {why}"
            elif isinstance(err, json.JSONDecodeError):
                first = f"not valid JSON (column {err.colno}: {err.msg[:1].lower() + err.msg[1:]})"
            else:
                first = str(err).splitlines()[0] if str(err) else "unreadable"
            result.problems.append(Problem("UL803", i, f"line {i} is not a ledger entry: {first}",
                                           ("each line is one JSON object written by `unlearnspec run` (or, a mark, "
                                            "by `unlearnspec ledger mark`)",)))
            stored = data.get("hash") if isinstance(data, dict) else None
            prev_stored = stored if isinstance(stored, str) else ""
            continue
        assert isinstance(data, dict)
        found = len(result.problems)
        if raw.encode("utf-8") != written:  # the hash covers the parsed entry; the line must be its bytes
            result.problems.append(Problem(
                "UL801", i, f"line {i} is not as it was written: its text is not the entry's canonical form",
                (f"{named(line)}: a key given twice (JSON keeps the last), spaces or reordered keys "
                 "show something other than what the hash vouches for to a reader of the file",)))
        elif entry_hash(data) != line.hash:
            result.problems.append(Problem(
                "UL801", i, f"line {i} was edited after it was written: its content does not match its hash",
                (f"{named(line)}; recorded hash {line.hash[:12]}…, content hashes to {entry_hash(data)[:12]}…",)))
        elif line.prev != prev_stored:
            where = "the start of the ledger" if i == 1 else f"line {i - 1}"
            result.problems.append(Problem(
                "UL802", i, f"line {i} does not follow {where}: the chain is broken",
                ("a line was deleted, inserted or reordered before this one",
                 f"{named(line)} names the previous hash {line.prev[:12]}…")))
        elif line.seq != last_seq + 1:
            result.problems.append(Problem(
                "UL802", i, f"line {i} records position {line.seq} after position {last_seq}: the chain is broken",
                ("a line was deleted, inserted or reordered before this one",)))
        if isinstance(line, MarkEntry):
            if len(result.problems) == found:
                result.problems += mark_problems(line, result.entries, i)
            if len(result.problems) == found:  # a status `ledger mark` would have refused, written by hand
                named_lines = [e for a in line.about for e in result.entries if e.seq == a.seq]
                result.problems += [Problem(
                    "UL808", i, f"line {i} marks a status its lines cannot take: {why}",
                    (f"{named(line)}: `unlearnspec ledger mark` refuses such a mark (UL809), so this one was "
                     "written or rewritten by hand, its hashes recomputed", then))
                    for _, why, then in conflicts(result, named_lines, line.status)]
            if len(result.problems) == found:  # a mark that is not borne out decides no status
                result.marks.append(line)
        else:
            result.entries.append(line)
        result.chain.append(line)
        prev_stored, last_seq = line.hash, line.seq
    n = len(result.chain)
    if head is None and n >= 1 and not result.problems:
        # the head is written before the first line (recording none) and after every line: a ledger with a line
        # and no head had its head removed, and then lines cut from its end would go unseen
        result.problems.append(Problem(
            "UL804", n, f"the ledger's head file {code_span(_head_path(path).name)} is missing",
            ("it is written before the ledger's first line and records how long the ledger is, so that lines cut "
             "from the end are found: without it they cannot be; restore both files from a copy",)))
    if head is not None and not result.problems:
        result.problems += _head_problems(path, head, result.chain)  # lines of both kinds: the head counts them all
    return result


def _head_problems(path: Path, head: dict[str, object], chain: Sequence[Line]) -> list[Problem]:
    """UL804 unless the head file vouches for the ledger's end: it records the ledger's length and last hash, or (a
    crash between writing a line and the head) the length and hash one line before."""
    count, last = head.get("count"), head.get("hash")
    n = len(chain)
    if type(count) is not int or count < 0 or not isinstance(last, str):  # `true` is no count
        return [Problem("UL804", 0, "the ledger's head file is not readable",
                        (f"{code_span(_head_path(path).name)} holds the entry count and last hash",))]
    if count > n:
        return [Problem("UL804", max(n, 1), f"the ledger is empty but its head records {count} entries" if n == 0 else
                        f"the ledger ends at line {n} but its head records {count} entries",
                        ("lines were deleted from the end of the ledger",))]
    if count < n - 1:
        return [Problem("UL804", count + 1, f"the ledger's head records {count} entr{'y' if count == 1 else 'ies'}, "
                                            f"but the ledger has {n}",
                        ("only a crash between writing a line and its head leaves the head one line behind: the head "
                         "file was rewritten, or replaced by an older copy, and no longer vouches for the ledger's "
                         "length",))]
    if (chain[count - 1].hash if count else GENESIS) != last:
        return [Problem("UL804", max(count, 1), f"line {count} does not match the hash the ledger's head recorded for it"
                        if count else "the ledger's head does not record the start of the ledger",
                        ("the ledger was rewritten from this line on",))]
    return []  # count == n, or n - 1: a crash between the ledger write and the head write, the chain vouches for it


def _read_head(path: Path) -> dict[str, object] | None:
    hp = _head_path(path)
    if not os.path.lexists(hp):
        return None
    try:
        data = load_json(read_regular(hp, limit=1 << 16).decode("utf-8"))
    except (OSError, ValueError):  # UnicodeDecodeError is a ValueError
        return {}
    return data if isinstance(data, dict) else {}


def _line_of(path: Path, offset: int) -> int:
    """The 1-based line of byte ``offset`` of ``path``."""
    return path.read_bytes()[:offset].count(b"\n") + 1


@contextlib.contextmanager
def _reading(folder: Path) -> Iterator[None]:
    """A shared lock on the ledger folder while its files are read, where its lock file is there to be opened: an
    append (:func:`append`, which holds the lock exclusively) is then never seen half done. A folder that cannot be
    locked (a read-only copy, no lock file) is read without one."""
    try:
        fd = os.open(folder / LOCK_NAME, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        yield
        return
    try:
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)  # releases the lock


def verify_file(path: Path) -> Verified:
    """Verify the ledger at ``path`` with its head file (marks included: :func:`verify_text`). A ledger that is gone
    while its head records an entry was deleted whole (UL804)."""
    with _reading(path.parent):
        return _verify_file(path)


def _verify_file(path: Path) -> Verified:
    head = _read_head(path)
    try:
        text = read_regular(path).decode("utf-8")
    except FileNotFoundError:
        if head is None:
            return Verified(path=path)
        count = head.get("count")
        if count == 0 and type(count) is int:  # a crash after the head's first write, before the first line
            return Verified(path=path, problems=_head_problems(path, head, []))
        return Verified(path=path, problems=[Problem(
            "UL804", 0, f"the ledger {code_span(path.name)} is missing, but its head file {code_span(_head_path(path).name)} "
                        + (f"records {count} entr{'y' if count == 1 else 'ies'}" if isinstance(count, int) else "remains"),
            ("the ledger was deleted: every request it recorded is gone from the record; restore it from a copy",))])
    except UnicodeDecodeError as err:
        line = _line_of(path, err.start)
        return Verified(path=path, problems=[Problem("UL803", line, f"line {line} is not UTF-8 text",
                                                     ("the file was edited or damaged",))])
    except OSError as err:
        return Verified(path=path, problems=[Problem("UL803", 0, f"the ledger cannot be read: {err.strerror or err}",
                                                     ("a ledger is a regular file written by `unlearnspec run`",))])
    return verify_text(path, text, head)


def ledger_of_head(head: Path) -> Path:
    """The ledger a head file (``<model>.head.json``) belongs to (``<model>.jsonl``)."""
    return head.with_name(head.name[: -len(HEAD_SUFFIX)] + LEDGER_SUFFIX)


def ledger_files(target: Path) -> list[Path]:
    """The ledgers a folder holds (or the one file named): every ``*.jsonl`` file, and the ledger of every head file
    (``*.head.json``) whether it is there or not, so that a ledger deleted whole is found (:func:`verify_file`)."""
    if target.is_file():  # a head file given stands for its ledger
        return [ledger_of_head(target) if target.name.endswith(HEAD_SUFFIX) else target]
    found = {p for p in target.glob(f"*{LEDGER_SUFFIX}") if p.is_file()}
    found |= {ledger_of_head(h) for h in target.glob(f"*{HEAD_SUFFIX}") if len(h.name) > len(HEAD_SUFFIX)}
    return sorted(found)


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
    # never through a link: a `.lock` planted as a link would have the lock create or open the file it names
    fd = os.open(folder / LOCK_NAME, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        _clear_leftovers(folder)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _clear_leftovers(folder: Path) -> None:
    """Remove the temporary files an append killed before its rename left (``.NAME.XXXX.tmp``): under the exclusive
    lock nobody else is writing one, and the ledger itself never depends on them (whole or absent)."""
    with contextlib.suppress(OSError):
        for entry in os.scandir(folder):
            if entry.name.startswith(".") and entry.name.endswith(".tmp") and entry.is_file(follow_symlinks=False):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)


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


def current(path: Path) -> Verified:
    """The ledger at ``path`` as it stands, to be extended: read without taking the lock (the caller holds it
    exclusively: :func:`locked`), verified, and a :class:`LedgerError` if it is broken (a mark that is not borne out
    included): a broken ledger is never extended."""
    try:
        text = read_regular(path).decode("utf-8") if os.path.lexists(path) else ""
    except UnicodeDecodeError as err:
        raise LedgerError("UL803", f"the ledger {code_span(path)} is not UTF-8 text", [
            f"line {_line_of(path, err.start)} holds a byte that is not UTF-8: the file was edited or damaged",
            "`unlearnspec ledger verify` shows every break; a broken ledger is never extended"]) from None
    found = verify_text(path, text, _read_head(path))
    if not found.ok:
        first = found.problems[0]
        raise LedgerError(first.code, f"the ledger {code_span(path)} is broken at line {first.line}: {first.message}",
                          ["`unlearnspec ledger verify` shows every break; a broken ledger is never extended"])
    return found


def add_line(ledger: Verified, fields: dict[str, object], kind: type[T]) -> T:
    """Append one line of ``kind`` to a ledger read by :func:`current` under the lock the caller holds; returns it,
    hashed. ``seq``, ``prev`` and ``time`` (when absent) are filled in here. The new file is written atomically, and
    the head before a first line and after every line, so a crash leaves the ledger whole with its head at most one
    line behind."""
    data = {**fields, "seq": len(ledger.chain) + 1, "prev": ledger.last_hash}
    data.setdefault("time", now())
    dumped = kind.model_validate({**data, "hash": ""}).model_dump(mode="json")
    try:
        dumped["hash"] = entry_hash(dumped)
        line = canonical(dumped)
    except UnicodeEncodeError as err:  # a string of the plan, the report or the command line spelled a lone surrogate
        if kind is LedgerEntry:
            what, where = f"request {code_span(shown(fields.get('request_id')))}", "the spec or plan the run was made from"
        else:
            what, where = f"the mark of run {code_span(shown(fields.get('run')))}", "the command line"
        raise LedgerError("UL803", f"the ledger line of {what} cannot be written: {not_text(err)}",
                          [f"{where} holds it: write the text it stands for"]) from None
    written = kind.model_validate(dumped)
    path = ledger.path
    if not ledger.chain:  # the head exists before the first line: a ledger with a line and no head was cut
        atomic_write_bytes(_head_path(path), canonical({"count": 0, "hash": GENESIS}) + b"\n")
    atomic_write_bytes(path, ledger.text.encode("utf-8") + line + b"\n")
    atomic_write_bytes(_head_path(path), canonical({"count": written.seq, "hash": written.hash}) + b"\n")
    ledger.lines = (ledger.text + line.decode("utf-8") + "\n").split("\n")
    ledger.chain.append(written)
    if isinstance(written, MarkEntry):
        ledger.marks.append(written)
    else:
        ledger.entries.append(written)
    return written


def append(folder: Path, fields: dict[str, object], once: Sequence[str] = ()) -> LedgerEntry:
    """Append one request line to the ledger of ``fields["model"]`` in ``folder``, holding the folder's lock for the
    whole read-verify-write (:func:`current`, :func:`add_line`); returns it, hashed.

    With ``once``, a request line already there that agrees with ``fields`` on those keys is returned instead of
    appending another (a run killed after it was recorded, before its receipt was written, is recorded once when it
    is resumed)."""
    folder = Path(folder)
    with locked(folder):
        ledger = current(ledger_path(folder, str(fields["model"])))
        if once:
            done = next((e for e in ledger.entries if all(getattr(e, k) == fields.get(k) for k in once)), None)
            if done is not None:
                return done
        return add_line(ledger, fields, LedgerEntry)
