"""Verb group `ledger`: show and verify the hash-chained request ledgers a folder holds, and mark which of the runs
they record a team adopted, kept as a trial or withdrew."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from unlearnspec.cli.common import EXIT_FINDINGS, EXIT_OK, EXIT_USAGE, Parser, add_colour, out, print_error
from unlearnspec.cli.run import status_note
from unlearnspec.compiler.check import CheckResult, display_path
from unlearnspec.compiler.diagnostics import Diagnostic, Span
from unlearnspec.compiler.render import render
from unlearnspec.errors import UserError
from unlearnspec.inputs import read_regular
from unlearnspec.markdown import code_span

if TYPE_CHECKING:
    from unlearnspec.audit.hashchain import MarkEntry
    from unlearnspec.audit.problems import Problem


def problems_result(path: Path, source: bytes, problems: Sequence[Problem]) -> CheckResult:
    """Findings about a file (a ledger, a run's report or signature) as the compiler's diagnostics, so
    that they print like every other diagnostic: code, file:line:col, the line with a caret, help."""
    shown = _shown(display_path(path))  # a file name with a line break cannot fake a line of the output
    lines = source.decode("utf-8", errors="replace").split("\n")
    diags = []
    for p in problems:
        line = max(p.line, 1)
        width = len(lines[line - 1]) if p.line and line <= len(lines) else 0
        span = Span(file=shown, line=line, column=1, end_line=line, end_column=max(width, 1) + 1)
        diags.append(Diagnostic(code=p.code, severity="error", message=p.message, span=span, help=list(p.help)))
    return CheckResult(path=shown, source=source, diagnostics=diags)


def file_source(path: Path, limit: int = 1 << 20) -> bytes:
    """The bytes a diagnostic about ``path`` quotes: the file's, when it is a regular file of at most ``limit`` bytes
    (a ledger deleted whole, a model's weights or a FIFO quote nothing)."""
    try:
        data = read_regular(path, limit=limit)
    except OSError:
        return b""
    return data if len(data) <= limit else b""


def _shown(text: str) -> str:
    """Text from a ledger line for a terminal: a line break, an escape sequence or another control character in a
    spec's string is printed escaped (`\\n`, `\\x1b`), so it can neither fake a line of the listing nor recolour it."""
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")  # a file name's byte that is not UTF-8
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


def _missing(target: str) -> int:
    print_error(UserError("UL807", f"{code_span(target)} is neither a ledger folder nor a ledger file",
                          ["`unlearnspec run --ledger DIR` writes one `<model>.jsonl` per model into DIR"]))
    return EXIT_USAGE


def _mark_seq(mark: MarkEntry | None) -> int | None:
    return mark.seq if mark else None


def cmd_show(args: argparse.Namespace) -> int:
    # the ledger reads plans and reports: their models load when a ledger verb runs, never on `check`'s path
    from unlearnspec.audit.ledger import MarkEntry, ledger_files, mark_of, status_of, verify_file

    target = Path(args.dir)
    if not (target.is_dir() or target.is_file()):  # missing, or a device or FIFO (`/dev/null`): no ledger there
        return _missing(args.dir)
    files = ledger_files(target)
    results = [verify_file(f) for f in files]
    if args.format == "json":  # each request with its status now (its latest mark's), and the marks themselves
        out(json.dumps({"format_version": "1", "ledgers": [
            {"file": str(r.path), "ok": r.ok, "entries": [
                {**e.model_dump(mode="json"), "status": status_of(r, e), "status_line": _mark_seq(mark_of(r, e))}
                for e in r.entries], "marks": [m.model_dump(mode="json") for m in r.marks]}
            for r in results]}, indent=2, ensure_ascii=False) + "\n")
        return EXIT_OK
    lines: list[str] = []
    for r in results:
        state = "chain intact" if r.ok else f"chain BROKEN ({len(r.problems)} problem(s); run `ledger verify`)"
        marks = f", {len(r.marks)} mark(s)" if r.marks else ""
        lines.append(f"{_shown(str(r.path))}  {len(r.entries)} request(s){marks}, {state}")
        for e in r.chain:
            if isinstance(e, MarkEntry):
                named = ", ".join(f"{a.seq} ({_shown(a.request_id)})" for a in e.about)
                lines.append(f"  {e.seq:>3}  {_shown(e.time[:19])}  mark {e.status}: line(s) {named}, by "
                             f"{_shown(e.by)}: {_shown(e.why)}")
                continue
            before = _shown((e.model_before or "-")[:12])
            after = _shown((e.model_after or "-")[:12])
            lines.append(f"  {e.seq:>3}  {_shown(e.time[:19])}  {_shown(e.request_id)}  {_shown(e.overall)}  "
                         f"model {before} -> {after}  plan {_shown(e.plan_hash[:12])}")
            if e.basis or e.owner:
                lines.append(f"       basis: {_shown(e.basis or '-')}; owner: {_shown(e.owner or '-')}")
            for claim, verdict in e.verdicts.items():  # a line from before statuses were recorded shows none
                note = status_note(e.compile_status.get(claim))
                lines.append(f"       {_shown(verdict):<14} {_shown(claim)}{_shown(note)}")
            if e.drift:
                lines.append(f"       drift: {json.dumps(e.drift, sort_keys=True)}")
            mark = mark_of(r, e)  # last: the block reads what was run, what was found, what became of it
            lines.append(f"       status: {status_of(r, e)}" + (f" (line {mark.seq}, {_shown(mark.time[:19])}, by "
                                                             f"{_shown(mark.by)}: {_shown(mark.why)})" if mark else ""))
    if not files:
        lines.append(f"no ledgers (`*.jsonl`, `*.head.json`) in {code_span(target)}")
    out("\n".join(lines) + "\n")
    return EXIT_OK


def cmd_verify(args: argparse.Namespace) -> int:
    from unlearnspec.audit.ledger import RECEIPT, ledger_files, verify_file, verify_receipt

    target = Path(args.dir)
    if not (target.is_dir() or target.is_file()):  # missing, or a device or FIFO (`/dev/null`): no ledger there
        return _missing(args.dir)
    files = ledger_files(target)
    if not files:
        print_error(UserError("UL807", f"no ledgers (`*.jsonl`, `*.head.json`) in {code_span(args.dir)}",
                              ["give the folder `unlearnspec run --ledger DIR` wrote, or one of its ledger files"]))
        return EXIT_USAGE
    results = []
    for f in files:
        v = verify_file(f)
        results.append(problems_result(f, file_source(f), v.problems))
    for run_dir in args.run or ():  # a run folder's receipt against these ledgers
        receipt = Path(run_dir) / RECEIPT
        results.append(problems_result(receipt, file_source(receipt), verify_receipt(target if target.is_dir() else target.parent,
                                                                      Path(run_dir))))
    out(render(results, args.format, sys.stdout, args.color))
    return EXIT_FINDINGS if any(r.errors for r in results) else EXIT_OK


def cmd_mark(args: argparse.Namespace) -> int:
    from unlearnspec.audit.ledger import mark_run

    target = Path(args.dir)
    if not (target.is_dir() or target.is_file()):
        return _missing(args.dir)
    folder = target if target.is_dir() else target.parent
    done = mark_run(folder, Path(args.run), args.status, args.why, args.by)
    if done.problems:  # refused: nothing was appended
        by_file: dict[Path, list[Problem]] = {}
        for path, p in done.problems:
            by_file.setdefault(path, []).append(p)
        results = [problems_result(path, file_source(path), ps) for path, ps in by_file.items()]
        sys.stderr.write(render(results, "human", sys.stderr, args.color))
        sys.stderr.write(f"error: the run was not marked {args.status}: nothing was appended\n")
        return EXIT_USAGE
    lines = []
    for file, m, named in done.marks:  # with each request's result: a team may adopt a run whose claims failed
        about = ", ".join(f"{_shown(e.request_id)} (line {e.seq}, overall {_shown(e.overall)})" for e in named)
        lines.append(f"{_shown(file)}: line {m.seq} marks {about} {m.status}")
    for b in done.unchanged:
        since = f" since line {b.mark.seq}" if b.mark else ""
        lines.append(f"{_shown(b.file)}: {_shown(b.entry.request_id)} (line {b.entry.seq}) is already {args.status}"
                     f"{since}: nothing appended")
    out("\n".join(lines) + "\n")
    return EXIT_OK


def register(sub: argparse._SubParsersAction[Parser]) -> None:
    sp = sub.add_parser("ledger", help="the hash-chained record of the requests applied to each model")
    lsub = sp.add_subparsers(dest="ledger_cmd", required=True, parser_class=Parser)
    s = lsub.add_parser("show", help="list the requests each ledger in DIR records, with each one's status (`mark`)")
    s.add_argument("dir", help="a ledger folder (as given to `run --ledger`) or one ledger file")
    s.add_argument("--format", choices=("text", "json"), default="text")
    s.set_defaults(func=cmd_show)
    v = lsub.add_parser("verify", help="recompute every ledger's hash chain; exit 1 on an edited, "
                                       "reordered or deleted line")
    v.add_argument("dir", help="a ledger folder (as given to `run --ledger`) or one ledger file")
    v.add_argument("--run", action="append", metavar="RUN_DIR",
                   help="also check that run folder's receipt (`ledger.json`): the lines it names hold its entries and "
                        "its report.json (repeatable)")
    v.add_argument("--format", choices=("human", "json", "sarif", "github"), default="human")
    add_colour(v)
    v.set_defaults(func=cmd_verify)
    m = lsub.add_parser("mark", help="say which of the runs a ledger records was adopted (released), kept as a "
                                     "trial, or withdrawn: appends a mark; `show` gives each request's status")
    m.add_argument("dir", help="the ledger folder the run was recorded in (as given to `run --ledger`)")
    m.add_argument("--run", required=True, metavar="RUN_DIR",
                   help="the run folder; its receipt (`ledger.json`) must be borne out by the ledger, as "
                        "`ledger verify --run` checks")
    status = m.add_mutually_exclusive_group(required=True)
    status.add_argument("--adopted", dest="status", action="store_const", const="adopted",
                        help="the run's model was adopted: released, shipped")
    status.add_argument("--trial", dest="status", action="store_const", const="trial",
                        help="the run was a trial, not released")
    status.add_argument("--withdrawn", dest="status", action="store_const", const="withdrawn",
                        help="the run was withdrawn (final): no longer released, or discarded")
    m.add_argument("--why", required=True, help="the reason, in words; recorded in the ledger")
    m.add_argument("--by", required=True, metavar="NAME",
                   help="who decided (a name or role, as you give it: the ledger holds no secret, so this is a "
                        "statement, not an authentication)")
    add_colour(m)
    m.set_defaults(func=cmd_mark)
