"""Run a plan's chains: requests applied one after another to one model, each re-checking the ones before.

For each chain, in the order the plan records:

1. the step's objective runs like any other (prepare ▶ reference ▶ unlearn ▶ evaluate ▶ attack ▶
   verdict), except that it unlearns from the previous step's model, and on the built-in its reference
   is retrained without every target so far (the chain's exact-unlearning counterfactual). An exact
   `retrain` step starts from no model: it retrains the recipe without every target so far (its own and
   every earlier request's), and the steps after it start from that model;
2. after the step, every earlier request's checks are computed again on the new model and their claims
   decided again: the drift, each check with what decided it then and now (``report.chain.Deciding``).
   Each earlier request is re-checked as its own run checked it: by its own reference strategy (retrained:
   the recipe retrained without every target so far; a reference model: its own, the same one as then;
   holdout: none), behind its own output filter where it made one (its `served` checks are the filtered
   system's), at its plan's confidence and with the plan's seed. The results are written to the step's
   folder (``objectives/<step>/drift/<earlier>.json``) with what they were computed on, before the step is
   marked done; a resumed run reuses them only when that is what it would compute them on now, the sha256 of the
   model's weights included (a model saved again in the same folder is another model; a file written by an older
   unlearnspec, which recorded none of it, is computed again);
3. the step's cumulative utility drop (its own utility checks, against the original model: the worse of
   retain and neighbours) and the number of requests that changed the weights other than by exact retraining
   since the chain's start or its last exact retrain are compared with the chain's budget.

Each step after the first records in ``run.json`` the sha256 of the model it starts from before its first stage; a
resume whose previous step made other weights since (its unlearn stage done again over a damaged model) is refused
(UL714) rather than report a chain whose later steps came from a model it no longer holds.

Objectives outside any chain run on their own, from the original model, as without chains.

Under a launch of N processes (``accelerate launch``) a chain runs as a lone objective does, on every rank: each
step's objective with the run's ``Distributed`` (data-parallel training, the main process saving the step's model and
the other ranks loading it from the run folder), the re-checks on every rank with sharded evaluation
(``runtime/evaluation/sharding.py``), so that all ranks hold the same results as one process would, and only the main
process writes. What only the main process reads — its run state, a saved drift file, the weights' sha256 a resume
compares (UL714) — is decided there and told to every rank (:meth:`Distributed.broadcast`), so every rank takes the same
branch: after each step the helper ranks take the main process's record of its stages (:func:`_follow`), and work the
main process does alone (a retrained reference, built under the cache's lock) is told to them with its failure
(:func:`unlearnspec.runtime.distributed.on_main`), so a failure ends every rank with its code instead of leaving one
waiting in a broadcast.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from unlearnspec.builtin.recipe import RECIPE, RECIPES
from unlearnspec.catalog.methods import REFUSAL_TEXT
from unlearnspec.catalog.vocab import RECHECK_REFERENCES
from unlearnspec.io import atomic_write_text
from unlearnspec.markdown import code_span
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
    RecheckedCheck,
    RecheckedClaim,
    UtilitySet,
    build_chain_report,
)
from unlearnspec.report.model import CheckResult, ObjectiveReport
from unlearnspec.report.verdict import rechecked
from unlearnspec.runtime import checks
from unlearnspec.runtime.builtin_model import ensure_retrained
from unlearnspec.runtime.distributed import Distributed, on_main
from unlearnspec.runtime.loading import load_model
from unlearnspec.runtime.methods.guard import GUARD_FILE, OutputGuard
from unlearnspec.runtime.pipeline import ObjectiveRun, _stage_of
from unlearnspec.runtime.rundir import E_RESUME_CHANGES_RUN, RunDir, RunError, RunState, safe_name

log = logging.getLogger("unlearnspec.run")

UTILITY_SETS: dict[str, UtilitySet] = {"retain_utility_drop": "retain", "neighbor_utility_drop": "neighbors"}
"""The utility checks a step's cumulative drop is read from, and the set each measures."""

DRIFT_FORMAT = 2
"""A drift file: ``{"format": 2, "basis": ..., "results": {check id: result}}``. Format 1 (no ``format`` key) was
the results alone, computed without the earlier request's output filter, reference or confidence."""


# -- the cumulative utility drop ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Utility:
    """A step's cumulative utility drop on one set: percent, its interval and n (``drop`` None: not measured)."""

    drop: float | None
    interval: tuple[float, float] | None
    n: int | None
    set: UtilitySet | None


def _burden(u: Utility, budget: float | None) -> tuple[int, float, float]:
    """How far ``u`` is from being shown within the budget (higher: further): an interval wholly above the budget,
    then one that reaches past it, then one within it; among equals the higher upper end, then the higher value.
    Without a budget, the higher upper end."""
    assert u.drop is not None
    low, high = u.interval if u.interval is not None else (u.drop, u.drop)
    rank = 0 if budget is None else 2 if low > budget else 1 if high > budget else 0
    return rank, high, u.drop


def utility_drop(report: ObjectiveReport, budget: float | None) -> tuple[Utility, dict[UtilitySet, float]]:
    """The step's cumulative utility drop, and every set's measured value.

    The spec's `utility drop` bounds the retain set and the neighbours alike, so the chain's is the worse of the
    two by the budget's burden of proof (:func:`_burden`). A planned utility check without a value leaves the drop
    not measured (its set named), unless a measured one already lies wholly above the budget. Read on the model the
    step made, as its checks decided it (behind its output filter, for a filter): not on a quantized twin a release
    precision adds (decided on `attacked`), which is a release's transform, not a step of the chain."""
    measured: list[Utility] = []
    missing: list[UtilitySet] = []
    for c in report.checks:
        which = UTILITY_SETS.get(c.metric)
        if which is None or c.decided_on == "attacked":
            continue
        if c.value is None:
            missing.append(which)
            continue
        iv = c.interval.get(c.decided_on)
        measured.append(Utility(c.value, (iv[0], iv[1]) if iv else None, c.n.get(c.decided_on), which))
    values: dict[UtilitySet, float] = {}
    for u in measured:
        assert u.set is not None and u.drop is not None
        values[u.set] = max(u.drop, values.get(u.set, u.drop))
    worst = max(measured, key=lambda u: _burden(u, budget), default=None)
    if missing and (worst is None or _burden(worst, budget)[0] < 2):
        return Utility(None, None, None, missing[0]), values
    return worst or Utility(None, None, None, None), values


# -- the ranks of a launch -------------------------------------------------------------------------------------


def _follow(state: RunState, dist: Distributed) -> None:
    """The helper ranks take the main process's record of every stage (in place: each step's run reads it).

    Why: only the main process finishes some stages (the unlearn stage's saved model and its sha256, the reference
    it made) and only it reads what a resume found; a chain's later steps start from what those records say, so
    every rank reads them as the main process has them."""
    if not dist.active:
        return
    stages = dist.broadcast(state.stages if dist.is_main else None)
    if not dist.is_main:
        state.stages.clear()
        state.stages.update(stages)


# -- re-checking an earlier request ------------------------------------------------------------------------------


@dataclass
class Basis:
    """What an earlier request is re-checked against on a step's model: its reference strategy, the reference
    model and its folder, its output filter, its confidence level and the plan's seed. ``same_reference``: the
    reference *then* (the earlier request's own run) was this one (the same strategy and folder)."""

    strategy: str
    reference: tuple[Any, Any] | None
    reference_path: str | None
    guard: Any
    guard_sha256: str | None
    confidence: float
    seed: int
    same_reference: bool

    def key(self, model: str, model_sha256: str | None = None) -> dict[str, Any]:
        """What the saved results were computed on, with the model they were computed on: its folder and the sha256
        of its weights (``None``: the original model, or one saved before its hash was recorded). A model saved again
        in the same folder on a resume (its unlearn stage done again) is another model."""
        return {"model": model, "model_sha256": model_sha256, "strategy": self.strategy,
                "reference": self.reference_path, "guard_sha256": self.guard_sha256, "confidence": self.confidence,
                "seed": self.seed}


def _with_level(row: RecheckedCheck, then: CheckResult | None, now: CheckResult) -> RecheckedCheck:
    """``row`` with the confidence level of each side's interval, where the check recorded one."""
    update: dict[str, Any] = {}
    for side, check in (("deciding_then", then), ("deciding_now", now)):
        d = getattr(row, side)
        if d is not None and check is not None and d.interval is not None and check.confidence is not None:
            update[side] = d.model_copy(update={"confidence": check.confidence})
    return row.model_copy(update=update) if update else row


def _saved(out: Path, key: dict[str, Any], earlier: str) -> dict[str, CheckResult] | None:
    """The saved re-check results, when they were computed on ``key``; else None (and why, in the log)."""
    if not out.is_file():
        return None
    try:
        raw = json.loads(out.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raw = None
    if not isinstance(raw, dict) or raw.get("format") != DRIFT_FORMAT:
        log.info("chain: the saved re-check of %s (%s) records not what it was computed on (an older unlearnspec): "
                 "computing it again", earlier, out)
        return None
    if raw.get("basis") != key:
        log.info("chain: the saved re-check of %s (%s) was computed on another model, reference, output filter, "
                 "confidence or seed: computing it again", earlier, out)
        return None
    return {k: CheckResult.model_validate(v) for k, v in raw["results"].items()}


def _recheck(step_dir: Path, earlier: ObjectivePlan, earlier_run: ObjectiveRun, earlier_report: ObjectiveReport,
             current: tuple[Any, Any] | None, model: str, basis: Basis, model_sha256: str | None = None,
             dist: Distributed | None = None) -> Recheck:
    """Every check of ``earlier`` computed again on ``current`` (the model in folder ``model``, whose weights hash to
    ``model_sha256``), on ``basis``; its claims decided again. Saved results computed on the same basis are reused.

    Under a launch every rank computes them (sharded, as a lone objective's evaluation) and the main process writes
    them; whether saved results are reused is the main process's reading of the run folder, told to every rank with
    the results, so that no rank computes (and waits in a gather) while another reuses."""
    dist = dist or Distributed()
    out = step_dir / "drift" / f"{safe_name(earlier.objective.name)}.json"
    key = basis.key(model, model_sha256)
    results = on_main(dist, lambda: _saved(out, key, earlier.objective.name))
    if results is None:
        assert current is not None
        ev: EvaluateStage = _stage_of(earlier, EvaluateStage) or EvaluateStage()
        attack_stage: AttackStage = _stage_of(earlier, AttackStage) or AttackStage()
        unlearn_stage: UnlearnStage | None = _stage_of(earlier, UnlearnStage)
        work = out.parent / safe_name(earlier.objective.name)
        if dist.is_main:  # one writer per run folder
            work.mkdir(parents=True, exist_ok=True)
        ctx = checks.EvalContext(
            op=earlier, data=earlier_run.data, stage=ev, original=earlier_run.original, unlearned=current,
            reference=basis.reference, guard=basis.guard,
            refusal_text=unlearn_stage.refusal_text if unlearn_stage else REFUSAL_TEXT,
            attacks=[a for a in attack_stage.attacks if isinstance(a, RelearnAttack | QuantizeAttack)],
            work_dir=work, strategy=basis.strategy, confidence=basis.confidence, seed=basis.seed,
            fmt=getattr(earlier_run, "fmt", None))
        results = checks.compute(ctx)  # on every rank of a launch: each pass shared out and gathered
        if dist.is_main:
            atomic_write_text(out, json.dumps({"format": DRIFT_FORMAT, "basis": key, "results": {
                k: v.model_dump(mode="json") for k, v in results.items()}}, indent=2, sort_keys=True) + "\n",
                within=out.parent)  # a link planted at the name is replaced, never written through
    now = build_objective_report(earlier, results)
    then_checks = {c.check_id: c for c in earlier_report.checks}
    then_claims = {c.claim: c.verdict for c in earlier_report.claims}
    results_now = {c.check_id: c for c in now.checks}
    return Recheck(
        request=earlier.objective.name,
        claims=[RecheckedClaim(claim=c.claim, then=then_claims.get(c.claim, "not_evaluated"), now=c.verdict)
                for c in now.claims],
        # each check with what decided it then and now (the gap to the reference, a worst case, a p-value), not
        # the decided model's raw value beside a status decided on something else
        checks=[_with_level(rechecked(then_checks.get(c.check_id), c), then_checks.get(c.check_id),
                            results_now[c.check_id]) for c in now.checks],
        reference=RECHECK_REFERENCES.get(basis.strategy), same_reference=basis.same_reference)


class _References:
    """The reference models a chain's re-checks load, each once per folder, on the device the run evaluates on."""

    def __init__(self, allow_remote_code: bool, dist: Distributed) -> None:
        self.allow_remote_code = allow_remote_code
        self.dist = dist
        self.loaded: dict[str, tuple[Any, Any]] = {}

    def get(self, path: str) -> tuple[Any, Any]:
        if path not in self.loaded:
            model, tok = load_model(path, allow_remote_code=self.allow_remote_code)
            self.loaded[path] = (self.dist.place(model), tok)
        return self.loaded[path]

    def forget(self, keep: set[str]) -> None:
        """Let go of every model but those in ``keep`` (a retrained reference serves one step only)."""
        self.loaded = {k: v for k, v in self.loaded.items() if k in keep}


def _basis(plan: Plan, step: ObjectiveRun, step_reference: tuple[Any, Any] | None, earlier: ObjectivePlan,
           earlier_run: ObjectiveRun, targets: list[str], refs: _References) -> Basis:
    """How ``earlier`` is re-checked after ``step``: by its own reference strategy, behind its own output filter,
    at its own confidence, with the plan's seed. ``targets``: every target's training texts so far (the step's
    included), which a retrained reference leaves out."""
    stage: ReferenceStage | None = _stage_of(earlier, ReferenceStage)
    strategy = stage.strategy if stage is not None else "holdout"
    reference: tuple[Any, Any] | None = None
    path: str | None = None
    if strategy == "retrain":
        step_stage: ReferenceStage | None = _stage_of(step.op, ReferenceStage)
        if step_stage is not None and step_stage.strategy == "retrain" and step_reference is not None:
            reference, path = step_reference, str(step.detail("reference")["path"])  # the same texts left out
        else:
            # retrained by the main process alone, under the cache's lock; the other ranks load what it made
            path = on_main(refs.dist, lambda: str(ensure_retrained(targets,
                                                                    recipe=RECIPES.get(earlier.model.source, RECIPE))))
            reference = refs.get(path)
    elif strategy == "model":
        path = str(earlier_run.detail("reference")["path"])  # the reference model the earlier run loaded
        reference = refs.get(path)
    then = earlier_run.detail("reference")
    same = then.get("strategy", "holdout") == strategy and then.get("path") == path
    guard_file = earlier_run.dir / "unlearn" / GUARD_FILE
    guard = OutputGuard.load(guard_file) if guard_file.is_file() else None
    ev: EvaluateStage = _stage_of(earlier, EvaluateStage) or EvaluateStage()
    return Basis(strategy=strategy, reference=reference, reference_path=path, guard=guard,
                 guard_sha256=hashlib.sha256(guard_file.read_bytes()).hexdigest() if guard is not None else None,
                 confidence=ev.confidence, seed=plan.seed, same_reference=same)


# -- a chain ---------------------------------------------------------------------------------------------------


def _model_key(where: str | None, rd: RunDir) -> str:
    """The model a step's re-checks ran on, as their saved basis names it: a folder in the run directory relative
    to it (so that a moved run folder still resumes), another as its absolute path, the original model as such."""
    return "original" if where is None else rd.shown(Path(where).resolve())


STARTED_FROM = "started_from"
"""A step's record of the model it started from (the sha256 of the previous step's weights), in ``run.json`` under
``<step>/chain``; written before the step's first stage, checked on every resume (:func:`_keep_start`)."""


def _keep_start(rd: RunDir, state: RunState, step: str, before: str, start_sha: str | None,
                dist: Distributed | None = None) -> None:
    """Record the model ``step`` starts from (``start_sha``: the weights of ``before``, the previous step), or, on a
    resume, refuse to go on when that model changed since the step started from it (UL714): the previous step's
    unlearn stage was done again (its saved model was damaged or missing) and made other weights, from which this
    step's saved model, checks and re-checks were not computed. A model the run never hashed (a step saved by an
    older unlearnspec) records nothing to compare. Under a launch the main process records and compares, and tells
    every rank what it found: each then goes on, or raises the same error."""
    if start_sha is None:
        return

    def record_or_read() -> str | None:
        st = state.stage(f"{step}/chain")
        then: str | None = st.detail.get(STARTED_FROM)
        if then is None:
            st.status = "done"
            st.detail[STARTED_FROM] = start_sha
            rd.save_state(state)
        return then

    then = on_main(dist or Distributed(), record_or_read)  # every rank takes the main process's branch
    if then is not None and then != start_sha:
        raise RunError(E_RESUME_CHANGES_RUN, f"{code_span(step)} started from the model {code_span(before)} made, and that "
                       f"model has changed since ({then[:12]}… → {start_sha[:12]}…): a resume would mix the results of "
                       "two models in one chain",
                       help=[f"{code_span(before)}'s unlearn stage was done again on a resume and made other weights; "
                             "start a new run from the plan, so that every step starts from the model the step before "
                             f"it made: {code_span(f'unlearnspec run {rd.plan_path} --out NEW')}"])


def _run_chain(plan: Plan, chain: ChainPlan, rd: RunDir, state: RunState, *, quiet: bool,
               allow_remote_code: bool, dist: Distributed) -> tuple[list[ObjectiveReport], ChainReport]:
    if chain.starts_after is not None:
        earlier = f"{chain.starts_after['file']}#{chain.starts_after['objective']}"
        raise RunError("UL713", f"this chain continues {code_span(earlier)} from another spec, which the runtime cannot "
                                "start from yet",
                       help=["put the requests of one chain in one spec file; `after \"file.unlearn#name\"` is "
                             "checked and planned, not run (docs/requests.md)"])
    by_name = {op.objective.name: op for op in plan.objectives}
    budget = chain.budget.utility_drop if chain.budget is not None else None
    reports: list[ObjectiveReport] = []
    steps: list[ChainStep] = []
    done: list[tuple[ObjectivePlan, ObjectiveRun, ObjectiveReport]] = []
    refs = _References(allow_remote_code, dist)
    start_from: str | None = None
    start_sha: str | None = None  # the sha256 of the weights at ``start_from`` (None: the original model)
    exclude: list[str] = []
    last: dict[UtilitySet, float] | None = None  # each set's drop after the previous step (None: the first step)
    for link in chain.links:
        op = by_name[link.objective]
        log.info("chain: %s (step %d of %d)", link.objective, len(steps) + 1, len(chain.links))
        unlearn: UnlearnStage | None = _stage_of(op, UnlearnStage)
        if steps and not (unlearn is not None and unlearn.family == "exact"):  # an exact retrain starts from no model
            _keep_start(rd, state, link.objective, steps[-1].request, start_sha, dist)
        orun = ObjectiveRun(plan, op, rd, state, quiet=quiet, allow_remote_code=allow_remote_code, dist=dist,
                            start_from=start_from, exclude_texts=list(exclude))
        report = orun.run()
        _follow(state, dist)  # the saved model, its sha256 and the reference as the main process recorded them
        reports.append(report)
        model_dir = orun.detail("unlearn").get("model_dir")
        model_sha = orun.detail("unlearn").get("model_sha256") if model_dir else start_sha
        targets = exclude + [t for r in orun.data.forget for t in r.training_texts()]
        rechecks: list[Recheck] = []
        if done:
            where = model_dir or start_from
            # every model a re-check compares on the device the step's own checks ran on (load_model reads to the
            # CPU): the original is there already, and a GPU run must not re-check on the CPU while the GPU waits
            current = load_model(where, allow_remote_code=allow_remote_code) if where else orun.original
            current = (orun.dist.place(current[0]), current[1])
            step_reference = orun.reference(orun.data)
            if step_reference is not None:
                step_reference = (orun.dist.place(step_reference[0]), step_reference[1])
            for eop, erun, erep in done:
                log.info("chain: re-checking %s on the model after %s", eop.objective.name, link.objective)
                basis = _basis(plan, orun, step_reference, eop, erun, targets, refs)
                rechecks.append(_recheck(orun.dir, eop, erun, erep, current, _model_key(where, rd), basis,
                                         model_sha, dist))
            refs.forget({str(erun.detail("reference")["path"]) for _, erun, _ in done
                         if erun.detail("reference").get("strategy") == "model"})
        utility, values = utility_drop(report, budget)
        if utility.drop is None or utility.set is None:
            part = None
        else:
            base = 0.0 if last is None else last.get(utility.set)
            part = None if base is None else utility.drop - base
        steps.append(ChainStep(
            request=link.objective, link_hash=link.link_hash, method=report.method,
            approximate=report.method_family == "approximate", family=report.method_family,
            utility_drop=utility.drop, utility_drop_interval=utility.interval, utility_n=utility.n,
            utility_set=utility.set, step_utility_drop=part, overall=report.overall, rechecks=rechecks))
        last = values
        done.append((op, orun, report))
        exclude = targets
        if model_dir:
            start_from = model_dir
        start_sha = model_sha
    return reports, build_chain_report([lk.objective for lk in chain.links], steps, chain.budget)


def run_chains(plan: Plan, rd: RunDir, state: RunState, *, quiet: bool, allow_remote_code: bool,
               dist: Distributed | None = None) -> tuple[list[ObjectiveReport], list[ChainReport]]:
    """Every objective's report (in the plan's order) and each chain's report; under a launch on every rank
    (``dist``), each with the results the main process has."""
    dist = dist or Distributed()
    in_chain = {lk.objective for c in plan.chains for lk in c.links}
    by_name: dict[str, ObjectiveReport] = {}
    chain_reports = []
    for chain in plan.chains:
        reports, chain_report = _run_chain(plan, chain, rd, state, quiet=quiet, allow_remote_code=allow_remote_code,
                                           dist=dist)
        by_name.update({r.name: r for r in reports})
        chain_reports.append(chain_report)
    for op in plan.objectives:
        if op.objective.name not in in_chain:
            by_name[op.objective.name] = ObjectiveRun(plan, op, rd, state, quiet=quiet,
                                                      allow_remote_code=allow_remote_code, dist=dist).run()
    return [by_name[op.objective.name] for op in plan.objectives], chain_reports
