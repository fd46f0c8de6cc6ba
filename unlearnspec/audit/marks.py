"""Marks: the lines of a request ledger that say what a team did with a run it recorded — adopted it (released,
shipped), kept it as a trial, or withdrew it — what a mark must bear out, and a request's status.

A run's lines say what was applied and what its checks found; a team that tries several runs before it releases one
records every trial there, and nothing in those lines says which was released. A mark says so. It is a line of the
same ledger and the same chain (:class:`~unlearnspec.audit.hashchain.MarkEntry`, read, verified and appended by
:mod:`unlearnspec.audit.hashchain` as every line is), appended after the lines it is about: it names each of them by
position, hash and request (``about``), the sha256 of the run's report those lines record, its status, who (``by``: a
name as its writer gave it; the ledger holds no secret, so it is a statement, as a request's ``owner`` is, not an
authentication) and why. Nothing is ever rewritten: a request's status is its latest mark's, and a request no mark
names is ``recorded`` — run, not adopted. What a mark may follow is :func:`unlearnspec.audit.ledger.mark_run`'s.

Beside its chain, each line a mark names must be an earlier request line of the same ledger with that hash, recording
that report (UL808, :func:`mark_problems`): :func:`verify_file`, :func:`verify_text`, :func:`current` and
:func:`append` are the chain's own, with that check.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from unlearnspec.audit import hashchain
from unlearnspec.audit.hashchain import LedgerEntry, MarkEntry, Verified, named, shown
from unlearnspec.audit.problems import Problem
from unlearnspec.markdown import code_span

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


def verify_text(path: Path, text: str, head: dict[str, object] | None) -> Verified:
    """:func:`unlearnspec.audit.hashchain.verify_text`, each mark checked by :func:`mark_problems`."""
    return hashchain.verify_text(path, text, head, mark_problems)


def verify_file(path: Path) -> Verified:
    """:func:`unlearnspec.audit.hashchain.verify_file`, each mark checked by :func:`mark_problems`."""
    return hashchain.verify_file(path, mark_problems)


def current(path: Path) -> Verified:
    """:func:`unlearnspec.audit.hashchain.current` (under the lock the caller holds), each mark checked by
    :func:`mark_problems`: a ledger with a mark that is not borne out is not extended."""
    return hashchain.current(path, mark_problems)


def append(folder: Path, fields: dict[str, object], once: Sequence[str] = ()) -> LedgerEntry:
    """:func:`unlearnspec.audit.hashchain.append`, each mark checked by :func:`mark_problems`."""
    return hashchain.append(folder, fields, once, mark_problems)


def mark_of(ledger: Verified, entry: LedgerEntry) -> MarkEntry | None:
    """The latest borne-out mark that names a request line (``None``: none does; its status is :data:`UNMARKED`)."""
    return next((m for m in reversed(ledger.marks)
                 if any(a.seq == entry.seq and a.hash == entry.hash for a in m.about)), None)


def status_of(ledger: Verified, entry: LedgerEntry) -> str:
    """A request line's status: its latest mark's, or :data:`UNMARKED`."""
    mark = mark_of(ledger, entry)
    return mark.status if mark else UNMARKED
