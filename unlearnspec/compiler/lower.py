"""Lowering: a checked spec → a sealed, hashed, byte-stable :class:`~unlearnspec.plan.Plan`.

Like a Terraform plan, everything the runtime will do is decided here, at compile time, where a
reviewer can read it: the method and every hyperparameter, the reference strategy, each metric
check with its threshold and the claim it serves, the probes and the attacks, and the sha256 of
every input. The runtime decides nothing of its own.

The decisions follow one table, :data:`~unlearnspec.compiler.decisions.DECISION_TABLE` (goal × target kind × release × claims →
method, adapter, hyperparameters, reference, stopping, probes, attacks, evidence). It is data: the
lowering evaluates its rows, records which row fired in each stage's rationale, and
``docs/planning.md`` shows the same rows (a test checks the doc against :func:`decision_table_markdown`).
Two decisions are made by the analyse pass and only *recorded* here, so that what the compiler
judges is what the plan runs: the method (the decision table's method rows,
:func:`unlearnspec.compiler.decisions.choose_method`) and each claim's status and evidence
(:class:`unlearnspec.compiler.analysis.AnalysedObjective`, from :mod:`.evidence_defaults`).

This module is the driver; the concerns live beside it: :mod:`.decisions` (the table and the facts it
reads), :mod:`.models` (model and data files, hashes, model size), :mod:`.stages`, :mod:`.checkbook`
(metric checks), :mod:`.attacks` (probes and attacks), :mod:`.estimate` (the cost model).

Determinism: no timestamps, no absolute paths (data paths are relative to the spec's folder, the
spec is recorded by file *name* and sha256), every list in a defined order, and JSON with sorted
keys (:meth:`Plan.canonical_json`). Planning the same spec with the same inputs twice gives the
same bytes on any machine, in any working directory.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from pathlib import Path

from unlearnspec import __version__
from unlearnspec.catalog import CODES, DEFAULT_RELEARN_STEPS, TOLERANCE_CLAIM, vocab
from unlearnspec.compiler.analysis import AnalysedObjective
from unlearnspec.compiler.ast import Spec
from unlearnspec.compiler.attacks import attack_list, probe_list
from unlearnspec.compiler.chain_plan import attach_chains
from unlearnspec.compiler.checkbook import CheckBook, deployment_checks, information_checks
from unlearnspec.compiler.decisions import (
    DECISION_TABLE,
    decision_table_markdown,
    facts_of,
    method_defaults_markdown,
)
from unlearnspec.compiler.diagnostics import Diagnostic, sort_diagnostics
from unlearnspec.compiler.estimate import estimate
from unlearnspec.compiler.evidence_defaults import probe_attribute, side_effect_evidence
from unlearnspec.compiler.models import folder_sha256, given_files, given_stage, model_ref, reference_files
from unlearnspec.compiler.stages import (
    data_refs,
    datasets,
    objective_info,
    reference_stage,
    rel_path,
    seed_of,
    unlearn_stage,
)
from unlearnspec.compiler.unit import CheckResult, CompileOptions
from unlearnspec.plan import (
    AttackStage,
    ClaimPlan,
    EvaluateStage,
    FileHash,
    ObjectivePlan,
    Plan,
    PlanFinding,
    PrepareStage,
    Stage,
    ToolInfo,
    VerdictStage,
)
from unlearnspec.records import sha256_path

#: Re-exported for docs/planning.md's tests and the bench: the table and its renderings.
__all__ = ["DECISION_TABLE", "TOLERANCE_CLAIM", "decision_table_markdown", "facts_of", "folder_sha256",
           "front_end_errors", "lower_pass", "lower_spec", "method_defaults_markdown"]


def front_end_errors(diags: Iterable[Diagnostic]) -> bool:
    """Syntax (UL1xx) or resolve (UL2xx) errors: the typed AST is incomplete, so nothing can be planned."""
    for d in diags:
        if d.severity != "error":
            continue
        page = CODES.get(d.code)
        if page is None or page.category in ("syntax", "resolve"):
            return True
    return False


def lower_pass(unit: CheckResult, opts: CompileOptions) -> bool:
    """Pass ``lower``: the sealed plan. Nothing is lowered after syntax or resolve errors (there is no checked
    objective), nor after errors that make claims unmeetable unless ``allow_infeasible``: then the unmet claims
    are recorded as ``cannot_be_met`` and each affected objective has ``feasible: false``, so the run still
    measures what is measurable."""
    spec = unit.spec
    if spec is None or not spec.objectives or unit.analysis is None or front_end_errors(unit.diagnostics):
        return False
    if unit.errors and not opts.allow_infeasible:
        return False
    unit.plan = lower_spec(spec, unit.analysis, unit.diagnostics, source=unit.source, spec_name=opts.spec_name)
    return True


def lower_spec(spec: Spec, analysis: Sequence[AnalysedObjective], diagnostics: Sequence[Diagnostic], *,
               source: bytes, spec_name: str) -> Plan:
    """Lower an analysed spec whose front end found no errors; ``diagnostics`` are all of its findings."""
    base = Path(spec.base_dir)
    objectives = [lower_objective(a, spec, [d for d in diagnostics if d.objective in (a.name, None)],
                                  spec_name=spec_name) for a in analysis]
    inputs: dict[str, tuple[str, set[str]]] = {}
    for obj in spec.objectives:
        for role, refs in data_refs(obj):
            for ref in refs:
                rel = rel_path(ref, base)
                sha, roles = inputs.get(rel, (None, set()))
                inputs[rel] = (sha or sha256_path(ref.resolved), roles | {role})
        for f in [*reference_files(obj, base), *given_files(obj, base)]:
            sha, roles = inputs.get(f.path, (None, set()))
            inputs[f.path] = (sha or f.sha256, roles | {f.role})
    seeds = [seed_of(obj) for obj in spec.objectives]
    plan = Plan(
        tool=ToolInfo(version=__version__),
        spec=FileHash(path=spec_name, sha256=hashlib.sha256(source).hexdigest(), role="spec"),
        inputs=[FileHash(path=p, sha256=sha, role="+".join(sorted(roles))) for p, (sha, roles) in sorted(inputs.items())],
        seed=seeds[0] if seeds else 0,
        objectives=objectives,
    )
    return attach_chains(plan, spec).sealed()


def lower_objective(analysed: AnalysedObjective, spec: Spec, diagnostics: Sequence[Diagnostic], *,
                    spec_name: str) -> ObjectivePlan:
    obj = analysed.objective
    base = Path(spec.base_dir)
    model = model_ref(obj, base)
    facts = facts_of(obj, model.kind, model.parameters)  # now with the model's size, read from its files
    choice = analysed.method
    assert choice.method is not None and choice.family is not None and choice.row is not None
    method, family, chosen_by, mrow = choice.method, choice.family, choice.chosen_by, choice.row
    data = datasets(obj, base, facts)
    reference = reference_stage(obj, facts, method)
    attribute = probe_attribute(obj)  # None: no forget record carries it (UL410 says so)

    # Evidence: per claim as analysed, then the side-effect checks, then the lowering's own.
    book = CheckBook(method=method, family=family)
    claims: list[ClaimPlan] = []
    for row in analysed.claims:
        ids = [book.add(item, row.claim, attribute) for item in row.evidence]
        args = dict(row.args)
        if row.claim == "robust_to_finetuning" and "steps" not in args:
            args["steps"] = DEFAULT_RELEARN_STEPS
        note = row.why if row.evidence else f"{row.why}; no measurement decides this claim: it stays not evaluated"
        claims.append(ClaimPlan(claim=row.claim, args=args, status=row.status, reasons=list(row.reasons),
                                checks=_unique(ids), evidence_note=note, instead=row.instead))
    no_side = "no_side_effects" in facts.claims
    side_ids: list[str] = []
    for item in side_effect_evidence(obj):
        cid = book.add(item, None, attribute)
        side_ids.append(cid)
        if no_side:
            for cp in claims:
                if cp.claim == "no_side_effects" and cid not in cp.checks:
                    cp.checks.append(cid)

    # The `preserve` tolerance is part of what the spec asks for: it decides an implicit claim (the analysis's,
    # which `check` and `explain` list too), so a side effect beyond the tolerance fails the objective
    # instead of hiding in the evidence table.
    for row in analysed.implied_claims:
        claims.append(ClaimPlan(claim=row.claim, args={}, status=row.status, reasons=[], checks=_unique(side_ids),
                                evidence_note=row.why))
    deployment_checks(facts, book, claims)
    probes = probe_list(facts, book.probes)
    info_ids = information_checks(obj, facts, book, probes, attribute)
    attacks, attack_info = attack_list(obj, facts, book, claims)
    for cp in claims:  # information-only checks sit beside the claims they inform, and decide nothing
        for cid, serves in [*info_ids, *attack_info]:
            if cp.claim in serves and cid not in cp.checks:
                cp.checks.append(cid)

    # An audit (`unlearned`): the given checkpoint stands where the unlearn stage would; nothing is trained.
    unlearn = given_stage(obj, base, method, family) if obj.unlearned is not None \
        else unlearn_stage(obj, facts, mrow, method, family, chosen_by, model, base)
    evaluate = EvaluateStage(
        models=["original", "unlearned", "reference"] if reference.strategy != "holdout" else ["original", "unlearned"],
        probes=probes,
        representation_probe=attribute if book.uses("probe_accuracy_gap") else None,
        confidence=float(obj.confidence.value) if obj.confidence is not None else vocab.DEFAULT_CONFIDENCE,
    )
    stages: list[Stage] = [PrepareStage(), reference, unlearn, evaluate]
    if attacks:
        stages.append(AttackStage(attacks=attacks))
    stages.append(VerdictStage())

    findings = [_finding(d, spec_name) for d in sort_diagnostics(list(diagnostics))]
    feasible = not any(d.blocking for d in diagnostics)
    op = ObjectivePlan(
        objective=objective_info(obj, facts, family),
        model=model, data=data, claims=claims, checks=book.checks, findings=findings, stages=stages,
        feasible=feasible,
    )
    return op.model_copy(update={"estimate": estimate(op, obj, base)})


def _unique(ids: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(ids))


def _finding(d: Diagnostic, spec_name: str) -> PlanFinding:
    """A diagnostic as the plan records it: the location by spec file name, never a working-directory path."""
    return PlanFinding(code=d.code, severity=d.severity, message=d.message, claim=d.claim, help=list(d.help),
                       accepted=d.accepted, justification=d.justification,
                       location=f"{spec_name}:{d.span.line}:{d.span.column}")

