"""What compiling one spec file produces, pass by pass (the passes are listed in :mod:`.check`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from unlearnspec.compiler.ast import PathRef, Spec
from unlearnspec.compiler.diagnostics import Diagnostic
from unlearnspec.compiler.syntax import SpecFile

if TYPE_CHECKING:  # the plan's models are built only when the lower pass runs
    from unlearnspec.compiler.analysis import AnalysedObjective
    from unlearnspec.plan import Plan


@dataclass(frozen=True)
class CompileOptions:
    base_dir: Path  # data paths resolve relative to it: the spec's folder
    spec_name: str = ""  # the spec's file name, as the plan records it
    allow_infeasible: bool = False  # lower even when claims cannot be met
    # how another spec file a chain continues is read: the language server gives its editor's text (None: not
    # open there); None reads every file from disk
    read_other: Callable[[Path], bytes | None] | None = None


@dataclass
class CheckResult:
    """Everything the compiler learned about one file: each pass's output, and every diagnostic."""

    path: str  # as displayed (relative to the working directory when possible)
    source: bytes = b""
    syntax: SpecFile | None = None  # parse
    spec: Spec | None = None  # resolve
    analysis: list[AnalysedObjective] | None = None  # analyse: one per objective
    plan: Plan | None = None  # lower
    diagnostics: list[Diagnostic] = field(default_factory=list)
    passes: list[str] = field(default_factory=list)  # the passes that ran, in order
    #: the file could not be read at all (missing, a folder, a FIFO or device, no permission): the
    #: verbs exit 2, an unusable path, rather than 1, a finding in the spec
    unreadable: bool = False
    #: resolve diagnostics beyond the cap (``resolve.MAX_RESOLVE_DIAGNOSTICS``), counted but not kept
    omitted: int = 0

    @property
    def errors(self) -> int:
        return sum(d.blocking for d in self.diagnostics)

    @property
    def warnings(self) -> int:
        return sum(d.severity == "warning" and not d.accepted for d in self.diagnostics)

    @property
    def read_files(self) -> list[str]:
        """The files compiling this spec read: the spec and every data file it names (an output written over
        one of them would destroy what the user gave)."""
        found = [self.path]

        def walk(node: Any) -> None:
            if isinstance(node, PathRef):
                found.append(node.resolved)
            elif isinstance(node, BaseModel):
                for name in type(node).model_fields:
                    walk(getattr(node, name))
            elif isinstance(node, list | tuple):
                for item in node:
                    walk(item)

        walk(self.spec)
        return found

