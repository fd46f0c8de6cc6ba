"""The compiler driver: a row of passes over one spec file, listed in the order they run.

    parse (UL1xx) → resolve (UL2xx) → feasibility (UL3xx-UL5xx, accept)

Each pass is a plain function; a pass runs only when the previous one produced a tree. The result
keeps every intermediate form so that ``show``/``plan``/``explain`` and the tests can look at them.
"""

from __future__ import annotations

import contextlib
import gc
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from unlearnspec.compiler.ast import Spec
from unlearnspec.compiler.chain import chain_diagnostics
from unlearnspec.compiler.diagnostics import Diagnostic, Span, sort_diagnostics
from unlearnspec.compiler.parse import MAX_BYTES, parse_bytes
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
    result.diagnostics.extend(chain_diagnostics(spec))
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


def read_spec_bytes(path: Path) -> bytes:
    """A spec file's bytes, at most one byte past the size limit (``parse`` reports UL106 then).

    Reading is capped so that a device or an endless stream given as a spec (`/dev/zero`) cannot
    hang the compiler or exhaust memory; a regular file known to be too large is not read at all
    beyond the limit either."""
    with path.open("rb") as fh:
        return fh.read(MAX_BYTES + 1)


def check_file(path: Path) -> CheckResult:
    display = display_path(path)
    try:
        if path.is_dir():
            return CheckResult(path=display, diagnostics=[Diagnostic(
                code="UL207", severity="error", span=Span.point(display),
                message=f"`{display}` is a folder; give spec files or a folder to search for `*.unlearn`")])
        data = read_spec_bytes(path)
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


@contextlib.contextmanager
def fewer_gc_pauses() -> Iterator[None]:
    """Collect cyclic garbage less often while a batch of files is checked.

    Every spec leaves a syntax tree, a typed AST and diagnostics alive in its result; with the
    default thresholds the collector walks that growing heap again and again, which was a third of
    the time to check a folder of 1,000 specs (bench/bench_compiler.py). The thresholds are restored
    afterwards; nothing is switched off, so memory stays bounded."""
    old = gc.get_threshold()
    gc.set_threshold(max(old[0], 50_000), max(old[1], 20), max(old[2], 100))
    try:
        yield
    finally:
        gc.set_threshold(*old)


def check_paths(paths: Iterable[Path], *, keep_syntax: bool = True) -> list[CheckResult]:
    """Check every spec under ``paths``. ``keep_syntax=False`` lets go of each file's syntax tree
    once the file is checked, as the ``check`` verb does (it reports diagnostics and needs only the
    source text): a folder's syntax trees are a third of the objects a batch keeps alive, and
    holding them cost 5–15% of the time to check 1,000 specs (bench/bench_compiler.py)."""
    results = []
    with fewer_gc_pauses():
        for p in expand_paths(paths):
            result = check_file(p)
            if not keep_syntax:
                result.syntax = None
            results.append(result)
    return results
