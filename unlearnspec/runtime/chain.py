"""Run a plan's chains: requests applied one after another to one model, each re-checking the ones before.

For each chain, in the order the plan records:

1. the step's objective runs like any other (prepare ▶ reference ▶ unlearn ▶ evaluate ▶ attack ▶
   verdict), except that it unlearns from the previous step's model, and on the built-in its reference
   is retrained without every target so far (the chain's exact-unlearning counterfactual);
2. after the step, every earlier request's checks are computed again on the new model, against that same
   reference, and their claims decided again: the drift, each check with what decided it then and now
   (``report.chain.Deciding``). The results are written to the step's folder
   (``objectives/<step>/drift/<earlier>.json``) before the step is marked done, so a resumed run reuses them;
3. the step's cumulative utility drop (its own utility check, against the original model) and the number
   of approximate requests so far are compared with the chain's budget.

Objectives outside any chain run on their own, from the original model, as without chains.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from unlearnspec.catalog.vocab import RECHECK_REFERENCES
from unlearnspec.io import atomic_write_text
from unlearnspec.plan import (
    AttackStage,
    ChainPlan,
    EvaluateStage,
    ObjectivePlan,
    Plan,
    QuantizeAttack,
    ReferenceStage,
    RelearnAttack,
    UnlearnStage,
)
from unlearnspec.report import build_objective_report
from unlearnspec.report.chain import (
    ChainReport,
    ChainStep,
    Recheck,
    RecheckedClaim,
    build_chain_report,
)
from unlearnspec.report.model import CheckResult, ObjectiveReport
from unlearnspec.report.verdict import rechecked
from unlearnspec.runtime.pipeline import ObjectiveRun, _stage_of
from unlearnspec.runtime.rundir import RunDir, RunError, RunState, safe_name

log = logging.getLogger("unlearnspec.run")

UTILITY_METRICS = ("retain_utility_drop", "neighbor_utility_drop")


def _utility_drop(report: ObjectiveReport) -> tuple[float | None, tuple[float, float] | None, int | None]:
    """The step's cumulative utility drop in percent, its interval and n: its retain utility check (else
    neighbours)."""
    for metric in UTILITY_METRICS:
        for c in report.checks:
            if c.metric == metric and c.values.unlearned is not None:
                iv = c.interval.get("unlearned")
                return c.values.unlearned, (tuple(iv) if iv else None), c.n.get("unlearned")  # type: ignore[return-value]
    return None, None, None


def _recheck(step: ObjectiveRun, earlier: ObjectivePlan, earlier_run: ObjectiveRun, earlier_report: ObjectiveReport,
             current: tuple[Any, Any], reference: tuple[Any, Any] | None) -> Recheck:
    """Every check of ``earlier`` computed again on ``current``, against the step's reference (the
    builtin retrained without every target so far); its claims decided again."""
    from unlearnspec.runtime import checks

    ref_stage: ReferenceStage | None = _stage_of(step.op, ReferenceStage)
    strategy = ref_stage.strategy if ref_stage is not None and reference is not None else "holdout"
    out = step.dir / "drift" / f"{safe_name(earlier.objective.name)}.json"
    if out.is_file():
        raw = json.loads(out.read_text(encoding="utf-8"))
        results = {k: CheckResult.model_validate(v) for k, v in raw.items()}
    else:
        ev: EvaluateStage = _stage_of(earlier, EvaluateStage) or EvaluateStage()
        attack_stage: AttackStage = _stage_of(earlier, AttackStage) or AttackStage()
        unlearn_stage: UnlearnStage | None = _stage_of(earlier, UnlearnStage)
        work = out.parent / safe_name(earlier.objective.name)
        work.mkdir(parents=True, exist_ok=True)
        ctx = checks.EvalContext(
            op=earlier, data=earlier_run.data, stage=ev, original=earlier_run.original, unlearned=current,
            reference=reference, guard=None,
            refusal_text=unlearn_stage.refusal_text if unlearn_stage else "I don't know.",
            attacks=[a for a in attack_stage.attacks if isinstance(a, RelearnAttack | QuantizeAttack)],
            work_dir=work, strategy=strategy, fmt=getattr(earlier_run, "fmt", None))
        results = checks.compute(ctx)
        atomic_write_text(out, json.dumps({k: v.model_dump(mode="json") for k, v in results.items()},
                                          indent=2, sort_keys=True) + "\n")
    now = build_objective_report(earlier, results)
    then_checks = {c.check_id: c for c in earlier_report.checks}
    then_claims = {c.claim: c.verdict for c in earlier_report.claims}
    return Recheck(
        request=earlier.objective.name,
        claims=[RecheckedClaim(claim=c.claim, then=then_claims.get(c.claim, "not_evaluated"), now=c.verdict)
                for c in now.claims],
        # each check with what decided it then and now (the gap to the reference, a worst case, a p-value), not
        # the decided model's raw value beside a status decided on something else
        checks=[rechecked(then_checks.get(c.check_id), c) for c in now.checks],
        reference=RECHECK_REFERENCES.get(strategy))


def _run_chain(plan: Plan, chain: ChainPlan, rd: RunDir, state: RunState, *, quiet: bool,
               allow_remote_code: bool) -> tuple[list[ObjectiveReport], ChainReport]:
    from unlearnspec.runtime.loading import load_model

    if chain.starts_after is not None:
        raise RunError("UL713", f"this chain continues `{chain.starts_after['file']}#{chain.starts_after['objective']}` "
                                "from another spec, which the runtime cannot start from yet",
                       help=["put the requests of one chain in one spec file; `after \"file.unlearn#name\"` is "
                             "checked and planned, not run (docs/requests.md)"])
    by_name = {op.objective.name: op for op in plan.objectives}
    reports: list[ObjectiveReport] = []
    steps: list[ChainStep] = []
    done: list[tuple[ObjectivePlan, ObjectiveRun, ObjectiveReport]] = []
    start_from: str | None = None
    exclude: list[str] = []
    previous_drop = 0.0
    for link in chain.links:
        op = by_name[link.objective]
        log.info("chain: %s (step %d of %d)", link.objective, len(steps) + 1, len(chain.links))
        orun = ObjectiveRun(plan, op, rd, state, quiet=quiet, allow_remote_code=allow_remote_code,
                            start_from=start_from, exclude_texts=list(exclude))
        report = orun.run()
        reports.append(report)
        model_dir = orun.detail("unlearn").get("model_dir")
        rechecks: list[Recheck] = []
        if done:
            current = load_model(model_dir) if model_dir else (load_model(start_from) if start_from else orun.original)
            reference = orun.reference(orun.data)
            for eop, erun, erep in done:
                log.info("chain: re-checking %s on the model after %s", eop.objective.name, link.objective)
                rechecks.append(_recheck(orun, eop, erun, erep, current, reference))
        drop, interval, n = _utility_drop(report)
        steps.append(ChainStep(
            request=link.objective, link_hash=link.link_hash, method=report.method,
            approximate=report.method_family == "approximate", utility_drop=drop,
            utility_drop_interval=interval, utility_n=n,
            step_utility_drop=None if drop is None else drop - previous_drop, overall=report.overall,
            rechecks=rechecks))
        previous_drop = drop if drop is not None else previous_drop
        done.append((op, orun, report))
        exclude += [t for r in orun.data.forget for t in r.training_texts()]
        if model_dir:
            start_from = model_dir
    return reports, build_chain_report([lk.objective for lk in chain.links], steps, chain.budget)


def run_chains(plan: Plan, rd: RunDir, state: RunState, *, quiet: bool,
               allow_remote_code: bool) -> tuple[list[ObjectiveReport], list[ChainReport]]:
    """Every objective's report (in the plan's order) and each chain's report."""
    in_chain = {lk.objective for c in plan.chains for lk in c.links}
    by_name: dict[str, ObjectiveReport] = {}
    chain_reports = []
    for chain in plan.chains:
        reports, chain_report = _run_chain(plan, chain, rd, state, quiet=quiet, allow_remote_code=allow_remote_code)
        by_name.update({r.name: r for r in reports})
        chain_reports.append(chain_report)
    for op in plan.objectives:
        if op.objective.name not in in_chain:
            by_name[op.objective.name] = ObjectiveRun(plan, op, rd, state, quiet=quiet,
                                                      allow_remote_code=allow_remote_code).run()
    return [by_name[op.objective.name] for op in plan.objectives], chain_reports

