"""The compiler driver: one list of passes, run in order over one spec file.

    parse (UL1xx) → resolve (UL2xx) → analyse (UL3xx-UL6xx, accept, claim statuses) → lower (the plan)

Every verb compiles through :func:`compile` and stops where it needs to: ``check`` and ``explain`` after
``analyse``, ``plan``, ``show`` and ``diff`` after ``lower``; ``debug`` prints any pass's output. A pass runs
only when the one before it let it (no syntax tree, no resolve). The result keeps every pass's output.

:data:`PASSES` names each pass's module and function and imports it when it first runs: ``check`` never
loads the lowering or the plan's models.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from unlearnspec.compiler.diagnostics import Diagnostic, Span, sort_diagnostics
from unlearnspec.compiler.parse import MAX_BYTES
from unlearnspec.compiler.unit import CheckResult, CompileOptions
from unlearnspec.inputs import NotRegularFileError, read_regular
from unlearnspec.markdown import code_span

if TYPE_CHECKING:
    from unlearnspec.plan import Plan

SPEC_SUFFIX = ".unlearn"

PassName = Literal["parse", "resolve", "analyse", "lower"]


@dataclass(frozen=True)
class Pass:
    """One compiler pass: ``module:function`` takes the unit and the options, fills its field, and says
    whether the next pass may run."""

    name: PassName
    target: str  # "module:function"
    produces: str  # the CheckResult field it fills

    def load(self) -> Callable[[CheckResult, CompileOptions], bool]:
        module, function = self.target.split(":")
        fn: Callable[[CheckResult, CompileOptions], bool] = getattr(importlib.import_module(module), function)
        return fn


PASSES: tuple[Pass, ...] = (
    Pass("parse", "unlearnspec.compiler.parse:parse_pass", "syntax"),
    Pass("resolve", "unlearnspec.compiler.resolve:resolve_pass", "spec"),
    Pass("analyse", "unlearnspec.compiler.analysis:analyse_pass", "analysis"),
    Pass("lower", "unlearnspec.compiler.lower:lower_pass", "plan"),
)
PASS_NAMES: tuple[str, ...] = tuple(p.name for p in PASSES)


def run_passes(unit: CheckResult, opts: CompileOptions, until: PassName = "analyse") -> CheckResult:
    """Run the passes in order on ``unit`` (its ``source`` read), up to and including ``until``."""
    for p in PASSES[:PASS_NAMES.index(until) + 1]:
        go_on = p.load()(unit, opts)
        unit.passes.append(p.name)
        if not go_on:
            break
    unit.diagnostics = sort_diagnostics(unit.diagnostics)
    return unit


def display_path(path: Path) -> str:
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return path.as_posix()
    return Path(rel).as_posix() if not rel.startswith("..") else path.as_posix()


def check_bytes(data: bytes, display: str, base_dir: Path, until: PassName = "analyse", *,
                spec_name: str = "", allow_infeasible: bool = False,
                read_other: Callable[[Path], bytes | None] | None = None) -> CheckResult:
    """Compile ``data`` (a spec's bytes, shown as ``display``) up to ``until`` (``read_other``: see
    :class:`~unlearnspec.compiler.unit.CompileOptions`)."""
    opts = CompileOptions(base_dir=base_dir, spec_name=spec_name, allow_infeasible=allow_infeasible,
                          read_other=read_other)
    return run_passes(CheckResult(path=display, source=data), opts, until)


def read_spec_bytes(path: Path) -> bytes:
    """A spec file's bytes, at most one byte past the size limit (``parse`` reports UL106 then).

    Only a regular file is read: a FIFO, a terminal or a device (`/dev/zero`) given as a spec is
    refused before a byte is read (:class:`~unlearnspec.inputs.NotRegularFileError`), so it can
    neither hang the compiler nor exhaust its memory; a regular file known to be too large is not
    read beyond the limit either."""
    return read_regular(path, MAX_BYTES)


def compile(path: Path, until: PassName = "analyse", *, allow_infeasible: bool = False) -> CheckResult:
    """Compile the spec at ``path`` up to ``until`` (every verb's one entry point)."""
    display = display_path(path)
    try:
        if path.is_dir():
            return CheckResult(path=display, unreadable=True, diagnostics=[Diagnostic(
                code="UL207", severity="error", span=Span.point(display),
                message=f"{code_span(display)} is a folder, not a spec file",
                help=["give one `.unlearn` file here; `check` and `fmt` also search folders for them"])])
        data = read_spec_bytes(path)
    except FileNotFoundError:
        return CheckResult(path=display, unreadable=True, diagnostics=[Diagnostic(
            code="UL207", severity="error", span=Span.point(display), message=f"spec file {code_span(display)} does not exist",
            help=["check the path: it is relative to the folder the command runs in"])])
    except NotRegularFileError as err:
        return CheckResult(path=display, unreadable=True, diagnostics=[Diagnostic(
            code="UL207", severity="error", span=Span.point(display),
            message=f"{code_span(display)} is {err.what}, not a spec file",
            help=["only regular files are read as specs; save the spec to a `.unlearn` file and give its path"])])
    except OSError as err:
        return CheckResult(path=display, unreadable=True, diagnostics=[Diagnostic(
            code="UL207", severity="error", span=Span.point(display),
            message=f"spec file {code_span(display)} cannot be read: {err.strerror or err}",
            help=["check that the file exists and that this user may read it"])])
    return check_bytes(data, display, path.resolve().parent, until, spec_name=path.name,
                       allow_infeasible=allow_infeasible)


def check_file(path: Path) -> CheckResult:
    """:func:`compile` up to ``analyse``: what ``check`` reports."""
    return compile(path, "analyse")


def plan_file(path: Path, *, allow_infeasible: bool = False) -> tuple[Plan | None, CheckResult]:
    """:func:`compile` up to ``lower``: the plan (None when the spec cannot be planned) and the result."""
    result = compile(path, "lower", allow_infeasible=allow_infeasible)
    return result.plan, result


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
