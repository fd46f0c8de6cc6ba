"""Pass ``analyse``: each objective's facts, the method that will run, its findings and its claims' statuses.

One :class:`AnalysedObjective` per objective is what ``check``, ``explain``, ``show`` and the lowering all
read, so they cannot disagree: the method comes from the decision table's method rows
(:func:`~unlearnspec.compiler.decisions.choose_method`), the findings from every feasibility rule (UL601
included) with ``accept`` applied, and each claim's status from those findings
(:func:`~unlearnspec.compiler.feasibility.claim_statuses`).
"""

from __future__ import annotations

import functools
from pathlib import Path

from unlearnspec.catalog import TOLERANCE_CLAIM
from unlearnspec.compiler.ast import Objective, Spec
from unlearnspec.compiler.chain import chain_diagnostics
from unlearnspec.compiler.decisions import Facts, MethodChoice, choose_method, facts_of, model_kind
from unlearnspec.compiler.diagnostics import Diagnostic, sort_diagnostics
from unlearnspec.compiler.evidence_defaults import side_effect_evidence
from unlearnspec.compiler.feasibility import ClaimStatusRow, analyse, claim_statuses
from unlearnspec.compiler.unit import CheckResult, CompileOptions


class AnalysedObjective:
    """One objective as the compiler judges it before anything runs."""

    def __init__(self, objective: Objective, facts: Facts, method: MethodChoice,
                 findings: list[Diagnostic]) -> None:
        self.objective = objective
        self.facts = facts  # without the model's size: the lowering reads the model's files for it
        self.method = method
        self.findings = findings  # every diagnostic of this objective, sorted

    @property
    def name(self) -> str:
        return self.objective.name

    @functools.cached_property
    def claims(self) -> list[ClaimStatusRow]:
        """Each claim, in spec order, with its status, reasons and evidence (computed when first read)."""
        return claim_statuses(self.objective, self.findings)

    @functools.cached_property
    def implied_claims(self) -> list[ClaimStatusRow]:
        """The claim the ``preserve`` block implies (``side_effects_within_tolerance``, decided by the
        utility drops), unless the spec claims ``no_side_effects``: every claim the run will decide is
        listed by ``check --format json``, ``explain`` and ``debug analysis`` alike."""
        items = side_effect_evidence(self.objective)
        if not items or any(c.name == "no_side_effects" for c in self.objective.claims):
            return []
        return [ClaimStatusRow(claim=TOLERANCE_CLAIM, status="supported", evidence=items,
                               why="implied by `preserve`: the side effects must stay within its stated tolerance; "
                                   "the run decides it from the retain and neighbour utility drops")]

    def to_json(self) -> dict[str, object]:
        f = self.facts
        return {
            "objective": self.name,
            "facts": {k: sorted(v) if isinstance(v, frozenset) else v for k, v in vars(f).items()},
            "method": {"method": self.method.method, "family": self.method.family, "chosen_by": self.method.chosen_by,
                       "row": self.method.row.id if self.method.row else None, "rationale": self.method.rationale},
            "findings": [d.model_dump(mode="json", exclude_defaults=True) for d in self.findings],
            "claims": [c.model_dump(mode="json") for c in [*self.claims, *self.implied_claims]],
        }


def analyse_objective(spec: Spec, obj: Objective, diagnostics: list[Diagnostic]) -> AnalysedObjective:
    kind = model_kind(obj.model.value, Path(spec.base_dir)) if obj.model else "none"  # none: UL206 reported it
    facts = facts_of(obj, kind)
    method = choose_method(facts, has_goal=obj.goal is not None)
    return AnalysedObjective(obj, facts, method, [d for d in diagnostics if d.objective == obj.name])


def analyse_pass(unit: CheckResult, opts: CompileOptions) -> bool:
    """Pass ``analyse``: run the feasibility rules, apply ``accept``, and analyse every objective."""
    spec = unit.spec
    assert spec is not None
    # An objective whose resolve pass reported errors (a data file that cannot be read, a misspelt field) is
    # analysed as far as it resolved, so its warnings and notes would describe what is missing rather than
    # what was written ("holds documents only", "names no release", "`accept` matches no finding" with the
    # advice to delete a valid line): only its errors (what cannot be met) are kept until it resolves.
    broken = {d.objective for d in unit.diagnostics if d.severity == "error" and d.code.startswith("UL2")}
    found = [d for d in analyse(spec) if d.severity == "error" or d.objective not in broken]
    unit.diagnostics = sort_diagnostics(_dedupe([*unit.diagnostics, *found, *chain_diagnostics(spec, opts.read_other)]))
    unit.analysis = [analyse_objective(spec, obj, unit.diagnostics) for obj in spec.objectives]
    return True


def _dedupe(diags: list[Diagnostic]) -> list[Diagnostic]:
    seen: set[tuple[str, str, int, int, str]] = set()
    out = []
    for d in diags:
        key = (d.code, d.span.file, d.span.line, d.span.column, d.message)
        if key not in seen:
            seen.add(key)
            out.append(d)
    return out
