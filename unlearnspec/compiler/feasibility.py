"""Placeholder until the rules land (replaced by the feasibility helper)."""
from __future__ import annotations

from unlearnspec.compiler.ast import Spec
from unlearnspec.compiler.diagnostics import Diagnostic


def analyse(spec: Spec) -> list[Diagnostic]:
    return []
