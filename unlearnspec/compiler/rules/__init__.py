"""The feasibility rules (UL3xx errors, UL4xx warnings, UL5xx notes, UL601), one registry, one page per code.

Each theme module registers its rules and their pages with :func:`~unlearnspec.compiler.rules.base.rule`
when imported; :data:`RULES` lists them in code order, which is the order they run in.
:mod:`unlearnspec.compiler.feasibility` runs them and applies ``accept``.
"""

from __future__ import annotations

from unlearnspec.compiler.rules import (
           chains,
           claims,
           data,
           evidence,
           goals,
           governance,
           knobs,
           methods,
           power,
           release,
           side_effects,
)
from unlearnspec.compiler.rules.base import AFFECTS, Rule, RuleContext, registered_rules

RULES: tuple[Rule, ...] = registered_rules()

__all__ = ["AFFECTS", "RULES", "Rule", "RuleContext", "chains", "claims", "data", "evidence", "goals", "governance",
           "knobs", "methods", "power", "release", "side_effects"]
