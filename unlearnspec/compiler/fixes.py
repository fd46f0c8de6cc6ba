"""Applying the fixes the compiler attaches to its findings to a spec's text (``check --fix``).

Only *preferred* fixes are applied — the ones a finding marks as the change its help means without a choice to
make (a misspelt word's one candidate, a word listed twice) — never a fix that changes what the spec asks for
(switching a goal, loosening a bound): those are offered in an editor and in the JSON and SARIF output, and a
person applies them. Edits address the text as the compiler read it: 1-based lines split at ``\\n`` (a CRLF
line keeps its ``\\r`` after every edit), character columns, end exclusive; a byte-order mark is kept.
"""

from __future__ import annotations

from collections.abc import Sequence

from unlearnspec.compiler.diagnostics import Diagnostic, Edit

BOM = b"\xef\xbb\xbf"


def apply_edits(text: str, edits: Sequence[Edit]) -> str:
    """``text`` with each edit's span replaced by its text. The edits must not overlap."""
    starts = [0]
    for line in text.split("\n")[:-1]:
        starts.append(starts[-1] + len(line) + 1)

    def offset(line: int, column: int) -> int:
        return starts[line - 1] + column - 1

    for e in sorted(edits, key=lambda e: (e.span.line, e.span.column), reverse=True):
        text = text[:offset(e.span.line, e.span.column)] + e.text + text[offset(e.span.end_line, e.span.end_column):]
    return text


def preferred_fixes(diagnostics: Sequence[Diagnostic], file: str) -> list[Diagnostic]:
    """The findings of ``file`` whose preferred fix ``check --fix`` applies: one fix each, every edit in that file,
    none overlapping another's (the first in the file wins; the others wait for the next run)."""
    taken: list[tuple[tuple[int, int], tuple[int, int]]] = []
    out = []
    for d in sorted(diagnostics, key=Diagnostic.sort_key):
        fix = next((f for f in d.fixes if f.preferred), None)
        if fix is None or d.accepted or any(e.span.file != file for e in fix.edits):
            continue
        spans = [((e.span.line, e.span.column), (e.span.end_line, e.span.end_column)) for e in fix.edits]
        if any(a < y and x < b for a, b in spans for x, y in taken):
            continue
        taken += spans
        out.append(d)
    return out


def fixed_source(source: bytes, diagnostics: Sequence[Diagnostic], file: str) -> tuple[bytes, list[Diagnostic]]:
    """``source`` (a spec's bytes as read) with the preferred fixes of its findings applied, and the findings fixed;
    ``source`` itself when there are none (or it is not UTF-8, which has no findings to fix)."""
    fixed = preferred_fixes(diagnostics, file)
    if not fixed:
        return source, []
    bom = source.startswith(BOM)
    text = source[len(BOM):].decode("utf-8") if bom else source.decode("utf-8")
    new = apply_edits(text, [e for d in fixed for e in next(f for f in d.fixes if f.preferred).edits])
    return (BOM if bom else b"") + new.encode("utf-8"), fixed
