"""The compiler driver: a row of passes over one spec file, listed in the order they run.

    parse (UL1xx) → resolve (UL2xx) → feasibility (UL3xx-UL5xx, accept)

Each pass is a plain function; a pass runs only when the previous one produced a tree. The result
keeps every intermediate form so that ``show``/``plan``/``explain`` and the tests can look at them.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from unlearnspec.compiler.ast import Spec
from unlearnspec.compiler.diagnostics import Diagnostic, Span, sort_diagnostics
from unlearnspec.compiler.parse import parse_bytes
from unlearnspec.compiler.resolve import resolve
from unlearnspec.compiler.syntax import SpecFile

SPEC_SUFFIX = ".unlearn"


@dataclass
class CheckResult:
    """Everything the compiler learned about one file."""

    path: str  # as displayed (relative to the working directory when possible)
    source: bytes = b""
    syntax: SpecFile | None = None
    spec: Spec | None = None
    diagnostics: list[Diagnostic] = field(default_factory=list)

    @property
    def errors(self) -> int:
        return sum(d.blocking for d in self.diagnostics)

    @property
    def warnings(self) -> int:
        return sum(d.severity == "warning" and not d.accepted for d in self.diagnostics)


def display_path(path: Path) -> str:
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return path.as_posix()
    return Path(rel).as_posix() if not rel.startswith("..") else path.as_posix()


def check_bytes(data: bytes, display: str, base_dir: Path) -> CheckResult:
    result = CheckResult(path=display, source=data)
    syntax, diags = parse_bytes(data, display)
    result.syntax = syntax
    result.diagnostics.extend(diags)
    if syntax is None or any(d.severity == "error" for d in diags):
        result.diagnostics = sort_diagnostics(result.diagnostics)
        return result
    spec, rdiags = resolve(syntax, base_dir)
    result.spec = spec
    result.diagnostics.extend(rdiags)
    from unlearnspec.compiler.feasibility import analyse

    result.diagnostics.extend(analyse(spec))
    result.diagnostics = sort_diagnostics(_dedupe(result.diagnostics))
    return result


def _dedupe(diags: list[Diagnostic]) -> list[Diagnostic]:
    seen: set[tuple[str, str, int, int, str]] = set()
    out = []
    for d in diags:
        key = (d.code, d.span.file, d.span.line, d.span.column, d.message)
        if key not in seen:
            seen.add(key)
            out.append(d)
    return out


def check_file(path: Path) -> CheckResult:
    display = display_path(path)
    try:
        if path.is_dir():
            return CheckResult(path=display, diagnostics=[Diagnostic(
                code="UL207", severity="error", span=Span.point(display),
                message=f"`{display}` is a folder; give spec files or a folder to search for `*.unlearn`")])
        data = path.read_bytes()
    except FileNotFoundError:
        return CheckResult(path=display, diagnostics=[Diagnostic(
            code="UL207", severity="error", span=Span.point(display), message=f"spec file `{display}` does not exist")])
    except OSError as err:
        return CheckResult(path=display, diagnostics=[Diagnostic(
            code="UL207", severity="error", span=Span.point(display),
            message=f"spec file `{display}` cannot be read: {err.strerror or err}")])
    return check_bytes(data, display, path.resolve().parent)


def expand_paths(paths: Iterable[Path]) -> Iterator[Path]:
    """Files as given; folders searched recursively for ``*.unlearn``, in sorted order."""
    for p in paths:
        if p.is_dir():
            yield from sorted(x for x in p.rglob(f"*{SPEC_SUFFIX}") if x.is_file())
        else:
            yield p


def check_paths(paths: Iterable[Path]) -> list[CheckResult]:
    return [check_file(p) for p in expand_paths(paths)]
