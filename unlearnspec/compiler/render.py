"""Diagnostic renderers: human text, JSON, SARIF 2.1.0 and GitHub workflow annotations.

Human output shows the source line with a caret underline under the primary span and a dashed
underline under each label, then ``help:`` lines; colour only on a TTY and never with ``NO_COLOR``.
Machine formats are versioned and keep one object per finding.
"""

from __future__ import annotations

import json
import os
import sys
import unicodedata
import urllib.parse
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from unlearnspec import __version__
from unlearnspec.catalog import CODES
from unlearnspec.compiler.check import CheckResult
from unlearnspec.compiler.diagnostics import Diagnostic, Fix, Span
from unlearnspec.compiler.parse import MAX_BYTES
from unlearnspec.compiler.syntax import source_lines
from unlearnspec.markdown import one_line as _one_line
from unlearnspec.markdown import template_environment

JSON_FORMAT_VERSION = "1"
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
INFO_URI = "https://github.com/unlearnspec/unlearnspec"

_COLOURS = {"error": "\x1b[1;31m", "warning": "\x1b[1;33m", "note": "\x1b[1;36m", "bold": "\x1b[1m",
            "blue": "\x1b[1;34m", "green": "\x1b[1;32m", "reset": "\x1b[0m"}


def use_colour(stream: TextIO, flag: str = "auto") -> bool:
    if flag == "always":
        return True
    if flag == "never" or os.environ.get("NO_COLOR"):
        return False
    return hasattr(stream, "isatty") and stream.isatty()


class _Paint:
    def __init__(self, on: bool) -> None:
        self.on = on

    def __call__(self, style: str, text: str) -> str:
        return f"{_COLOURS[style]}{text}{_COLOURS['reset']}" if self.on else text


def _source_lines(results: Sequence[CheckResult]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for r in results:
        if r.syntax is not None:
            out[r.path] = source_lines(r.syntax.source)
        elif r.source and len(r.source) <= MAX_BYTES:
            out[r.path] = source_lines(r.source.decode("utf-8", errors="replace").lstrip("\ufeff"))
    return out


MAX_SHOWN = 120  # longest source excerpt shown under a diagnostic, in characters
_CONTEXT = 40  # characters kept before a span when a long line is cut


def printable(text: str) -> str:
    """User text made safe for a terminal: a control character (an escape sequence's ESC, a NUL, a
    stray carriage return) shows as U+FFFD instead of acting; one character stays one column."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else "\ufffd" for ch in text)


def printable_lines(text: str) -> str:
    """Like :func:`printable` for messages and help, keeping their line breaks."""
    return "\n".join(printable(part) for part in text.split("\n"))


def one_line(text: str) -> str:
    """:func:`printable` on one line: a line break in a spec's value (a name, a title, a justification) shows as a
    space, so that it cannot start a line of its own and pass for one the tool wrote."""
    return printable(_one_line(text))


def _excerpt(text: str, start: int, width: int) -> tuple[str, int, int]:
    """The part of a long source line around a span, with `...` where it was cut; the span's start
    and width moved to match. A 10 MB one-line file must not print 10 MB per diagnostic."""
    if len(text) <= MAX_SHOWN:
        return text, start, width
    width = min(width, MAX_SHOWN - _CONTEXT)
    lo = max(0, min(start - _CONTEXT, len(text) - MAX_SHOWN))
    hi = min(len(text), lo + MAX_SHOWN)
    head = "..." if lo > 0 else ""
    tail = "..." if hi < len(text) else ""
    return head + text[lo:hi] + tail, start - lo + len(head), width


def _cells(text: str) -> int:
    """How many terminal columns ``text`` takes: East Asian wide and full-width characters (CJK, most
    emoji) take two, combining marks none, everything else one — so that a caret under a line holding
    `東京😀` still points at the span (spans count characters, terminals count cells)."""
    return sum(0 if unicodedata.combining(ch) else 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
               for ch in text)


def _underline(span: Span, line_text: str, char: str) -> tuple[int, int]:
    start = max(span.column - 1, 0)
    if span.end_line == span.line:
        width = max(span.end_column - span.column, 1)
    else:
        width = max(len(line_text) - start, 1)
    return start, width


def render_human(results: Sequence[CheckResult], *, colour: bool = False, summary: bool = True) -> str:
    paint = _Paint(colour)
    sources = _source_lines(results)
    out: list[str] = []
    for r in results:
        for d in r.diagnostics:
            out.append(_human_one(d, sources.get(d.span.file, []), sources, paint))
    if summary:
        errors = sum(r.errors for r in results)
        warnings = sum(r.warnings for r in results)
        notes = sum(d.severity == "note" and not d.accepted for r in results for d in r.diagnostics)
        accepted = sum(d.accepted for r in results for d in r.diagnostics)
        files = len(results)
        parts = [f"{errors} error{'s' * (errors != 1)}", f"{warnings} warning{'s' * (warnings != 1)}",
                 f"{notes} note{'s' * (notes != 1)}"]
        if accepted:
            parts.append(f"{accepted} accepted")
        head = paint("error", "failed") if errors else paint("green", "ok")
        out.append(f"{head}: checked {files} file{'s' * (files != 1)}: " + ", ".join(parts))
    return "\n".join(out) + ("\n" if out else "")


def _human_one(d: Diagnostic, lines: list[str], sources: dict[str, list[str]], paint: _Paint) -> str:
    sev = d.severity
    head = paint(sev, f"{sev}[{d.code}]")
    acc = paint("green", " (accepted)") if d.accepted else ""
    rows = [f"{head}{acc}{paint('bold', ': ' + one_line(d.message))}"]
    shown = [(d.span, "^", "", True)] + [(lab.span, "-", lab.message, False) for lab in d.labels]
    width = max(len(str(s.line)) for s, *_ in shown)
    pad = " " * width
    rows.append(f"{pad}{paint('blue', '-->')} {d.span.location()}")
    rows.append(f"{pad} {paint('blue', '|')}")
    last_file = d.span.file
    bar = f"{pad} {paint('blue', '|')} "
    ordered = sorted(shown, key=lambda x: (x[0].file != d.span.file, x[0].file, x[0].line, x[0].column))
    i = 0
    while i < len(ordered):
        span = ordered[i][0]
        src = sources.get(span.file, lines if span.file == d.span.file else [])
        if span.file != last_file:
            rows.append(f"{pad}{paint('blue', ':::')} {span.location()}")
            last_file = span.file
        if not 1 <= span.line <= len(src):
            if ordered[i][2]:
                rows.append(f"{pad} {paint('blue', '=')} {one_line(ordered[i][2])} ({span.location()})")
            i += 1
            continue
        raw = printable(src[span.line - 1].replace("\t", " "))
        # every mark on this line, left to right, under one copy of it while they do not overlap
        marks: list[tuple[int, int, str, str, bool]] = []
        shown_text = raw
        while i < len(ordered) and ordered[i][0].file == span.file and ordered[i][0].line == span.line:
            s_, char, message, primary = ordered[i]
            start, w = _underline(s_, raw, char)
            text, start, w = _excerpt(raw, start, w)
            start, w = _cells(text[:start]), max(_cells(text[start:start + w]), 1)
            if marks and (text != shown_text or start < marks[-1][0] + marks[-1][1] + 1):
                break  # overlapping, or cut differently: the next mark gets its own copy of the line
            shown_text = text
            marks.append((start, w, char, message, primary))
            i += 1
        rows.append(f"{paint('blue', str(span.line).rjust(width) + ' |')} {shown_text}")
        line, col = "", 0
        for start, w, char, _, primary in marks:
            line += " " * (start - col) + paint(sev if primary else "blue", char * w)
            col = start + w
        last = marks[-1][3]
        rows.append(f"{bar}{line}{(' ' + one_line(last)) if last else ''}")
        rows.extend(f"{bar}{' ' * start}{one_line(message)}" for start, _, _, message, _ in marks[:-1] if message)
    for h in d.help:
        first, *rest = printable_lines(h).split("\n")
        rows.append(f"{pad} {paint('blue', '=')} {paint('bold', 'help')}: {first}")
        rows.extend(f"{pad}         {x}" for x in rest)
    if d.accepted and d.justification:
        rows.append(f"{pad} {paint('blue', '=')} {paint('bold', 'accepted')}: {one_line(d.justification)}")
    return "\n".join(rows) + "\n"


# -- JSON ------------------------------------------------------------------------------------


def _where(span: Span) -> dict[str, Any]:
    return {"file": span.file, "line": span.line, "column": span.column, "end_line": span.end_line,
            "end_column": span.end_column}


def diagnostic_dict(d: Diagnostic) -> dict[str, Any]:
    return {
        "code": d.code, "severity": d.severity, "message": d.message, **_where(d.span),
        "labels": [{"message": lab.message, **_where(lab.span)} for lab in d.labels],
        "help": d.help,
        "fixes": [{"title": f.title, "preferred": f.preferred,
                   "edits": [{**_where(e.span), "text": e.text} for e in f.edits]} for f in d.fixes],
        "objective": d.objective, "claim": d.claim,
        "accepted": d.accepted, "justification": d.justification,
    }


def claims_table(result: CheckResult) -> list[dict[str, Any]]:
    """Per objective, per claim: the compile-time status (supported / cannot be verified / met)."""
    return [{"objective": a.name, "claims": [row.model_dump(mode="json") for row in [*a.claims, *a.implied_claims]]}
            for a in result.analysis or ()]


def render_json(results: Sequence[CheckResult]) -> str:
    doc = {
        "format_version": JSON_FORMAT_VERSION,
        "tool": {"name": "unlearnspec", "version": __version__},
        "files": [{"path": r.path, "errors": r.errors, "warnings": r.warnings,
                   "objectives": claims_table(r)} for r in results],
        "diagnostics": [diagnostic_dict(d) for r in results for d in r.diagnostics],
        "summary": {
            "files": len(results),
            "errors": sum(r.errors for r in results),
            "warnings": sum(r.warnings for r in results),
            "notes": sum(d.severity == "note" and not d.accepted for r in results for d in r.diagnostics),
            "accepted": sum(d.accepted for r in results for d in r.diagnostics),
        },
    }
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


# -- SARIF -----------------------------------------------------------------------------------


def repo_root(start: Path) -> Path | None:
    for p in [start, *start.parents]:
        if (p / ".git").exists():
            return p
    return None


def _artifact(file: str) -> dict[str, str]:
    """A SARIF ``artifactLocation``: relative to ``%SRCROOT%`` (the repository root) when the file lies in it; an
    absolute ``file:`` URI stands alone (SARIF 2.1.0 §3.4.4: ``uriBaseId`` goes with a relative reference only)."""
    uri = _sarif_uri(file)
    return {"uri": uri} if uri.startswith("file:") else {"uri": uri, "uriBaseId": "%SRCROOT%"}


def _sarif_uri(file: str) -> str:
    """The file as a URI reference relative to the repository root (percent-encoded: a space, `%` or a `:` in a
    name would otherwise make it no URI, or read as a scheme), or a `file:` URI for a file outside it."""
    p = Path(file).resolve()
    root = repo_root(p.parent) or Path.cwd()
    try:
        return urllib.parse.quote(p.relative_to(root).as_posix(), safe="/")
    except ValueError:
        return p.as_uri()


def _sarif_region(span: Span) -> dict[str, int]:
    return {"startLine": span.line, "startColumn": span.column,
            "endLine": span.end_line, "endColumn": max(span.end_column, span.column + 1)}


def sarif_rules() -> list[dict[str, Any]]:
    rules = []
    help_md = template_environment("unlearnspec.compiler").get_template("sarif_help.md.j2")
    for code in sorted(CODES):
        page = CODES[code]
        help_text = f"{page.summary}\n\nWhy: {page.why}"
        if page.instead:
            help_text += f"\n\nWrite instead: {page.instead}"
        md = help_md.render(page=page).rstrip("\n")  # every text through the one Markdown escaping function
        rules.append({
            "id": code, "name": page.name,
            "shortDescription": {"text": page.summary},
            "fullDescription": {"text": page.why},
            "help": {"text": help_text, "markdown": md},
            "helpUri": f"{INFO_URI}/blob/main/docs/rules/{code}.md",
            "defaultConfiguration": {"level": page.severity},
            "properties": {"category": page.category, "tags": [page.category]},
        })
    return rules


def _sarif_fix(fix: Fix) -> dict[str, Any]:
    """A SARIF ``fix`` (2.1.0 §3.55): per file, its replacements; an edit's region is deleted and its text
    inserted there (an empty region inserts)."""
    by_file: dict[str, list[dict[str, Any]]] = {}
    for e in fix.edits:
        region = {"startLine": e.span.line, "startColumn": e.span.column, "endLine": e.span.end_line,
                  "endColumn": e.span.end_column}  # exactly what is replaced: an insertion deletes nothing
        by_file.setdefault(e.span.file, []).append({"deletedRegion": region,
                                                    "insertedContent": {"text": e.text}})
    return {"description": {"text": fix.title},
            "artifactChanges": [{"artifactLocation": _artifact(file),
                                 "replacements": reps} for file, reps in by_file.items()]}


def render_sarif(results: Sequence[CheckResult]) -> str:
    rules = sarif_rules()
    index = {r["id"]: i for i, r in enumerate(rules)}
    sarif_results = []
    for r in results:
        for d in r.diagnostics:
            msg = d.message + "".join(f"\nhelp: {h}" for h in d.help)
            item: dict[str, Any] = {
                "ruleId": d.code,
                "level": d.severity,
                "message": {"text": msg},
                "locations": [{"physicalLocation": {
                    "artifactLocation": _artifact(d.span.file),
                    "region": _sarif_region(d.span)}}],
            }
            if d.code in index:
                item["ruleIndex"] = index[d.code]
            if d.labels:
                item["relatedLocations"] = [{
                    "id": i, "message": {"text": lab.message},
                    "physicalLocation": {"artifactLocation": _artifact(lab.span.file),
                                         "region": _sarif_region(lab.span)}} for i, lab in enumerate(d.labels)]
            if d.fixes:
                item["fixes"] = [_sarif_fix(f) for f in d.fixes]
            props = {k: v for k, v in (("objective", d.objective), ("claim", d.claim)) if v}
            if props:
                item["properties"] = props
            if d.accepted:
                item["suppressions"] = [{"kind": "inSource", "status": "accepted",
                                         "justification": d.justification or ""}]
            sarif_results.append(item)
    doc = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "unlearnspec", "version": __version__, "semanticVersion": __version__,
                                "informationUri": INFO_URI, "rules": rules}},
            "originalUriBaseIds": {"%SRCROOT%": {"description": {"text": "the repository root"}}},
            "columnKind": "unicodeCodePoints",  # columns count characters, as every other output does
            "results": sarif_results,
        }],
    }
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


# -- GitHub annotations ------------------------------------------------------------------------


def _gh_escape(text: str, prop: bool = False) -> str:
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    if prop:
        text = text.replace(":", "%3A").replace(",", "%2C")
    return text


def render_github(results: Sequence[CheckResult]) -> str:
    kind = {"error": "error", "warning": "warning", "note": "notice"}
    lines = []
    for r in results:
        for d in r.diagnostics:
            if d.accepted:
                continue
            s = d.span
            props = (f"file={_gh_escape(s.file, True)},line={s.line},col={s.column},endLine={s.end_line},"
                     f"endColumn={s.end_column},title={_gh_escape(d.code, True)}")
            body = d.message + "".join(f"\nhelp: {h}" for h in d.help)
            lines.append(f"::{kind[d.severity]} {props}::{_gh_escape(body)}")
    return "\n".join(lines) + ("\n" if lines else "")


def render(results: Sequence[CheckResult], fmt: str, stream: TextIO | None = None, colour: str = "auto") -> str:
    stream = stream or sys.stdout
    if fmt == "json":
        return render_json(results)
    if fmt == "sarif":
        return render_sarif(results)
    if fmt == "github":
        return render_github(results)
    return render_human(results, colour=use_colour(stream, colour))
