"""Run every objective of a plan — one by one, or as a chain of requests — and write the report.

Above :mod:`unlearnspec.runtime.pipeline` (one objective's stages) and :mod:`unlearnspec.runtime.chain`
(objectives applied one after another), so neither needs the other's caller.

Before any stage the run's environment is recorded in ``run.json`` (:func:`environment`: the versions of the
libraries that compute, torch's thread count, the process count, the device and the sha256 of each objective's
original weights). A resume in another environment is refused (UL714, :func:`environment_changes`): its stages
would mix numbers of two environments in one report whose audit trail names only one.
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata as md
import logging
import platform
import time
from typing import Any

import torch
import transformers

from unlearnspec import __version__
from unlearnspec.builtin.recipe import RECIPES
from unlearnspec.markdown import code_span
from unlearnspec.plan import AttackStage, ObjectivePlan, Plan, RelearnAttack, UnlearnStage
from unlearnspec.records import sha256_path
from unlearnspec.report import audit_from_plan, build_report, write_reports
from unlearnspec.report.chain import ChainReport, link_problems
from unlearnspec.report.model import ObjectiveReport, Report
from unlearnspec.runtime.builtin_model import ensure_builtin
from unlearnspec.runtime.chain import run_chains
from unlearnspec.runtime.distributed import Distributed
from unlearnspec.runtime.loading import describe_device
from unlearnspec.runtime.pipeline import ObjectiveRun, _stage_of
from unlearnspec.runtime.rundir import E_RESUME_CHANGES_RUN, E_STALE_PLAN, RunDir, RunError, RunState, now
from unlearnspec.runtime.scaling import effective_batch, pin_threads

log = logging.getLogger("unlearnspec.run")

#: libraries recorded in the environment besides the report's: they compute too (weights, quantization)
COMPUTING = ("safetensors", "torchao", "bitsandbytes")
#: libraries that only read and render: another version of these does not make a resume another run
PRESENTATION = ("pydantic", "lark", "jinja2")


def _libraries() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in ("torch", "transformers", "peft", "accelerate", "tokenizers", "numpy", "scipy", "scikit-learn",
                 "rouge-score", "pydantic", "lark", "jinja2"):
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            continue
    return out


def _original_weights(op: ObjectivePlan, hashed: bool) -> str | None:
    """The sha256 of an objective's original weights: a local folder's as the plan pins it (checked before every
    start and resume), a built-in's as trained here (the plan pins its recipe, and another machine trains other
    weights from it); ``None`` for a hub model, or where not ``hashed`` (a helper rank: it only waits for a build)."""
    m = op.model
    if m.kind == "builtin" and m.source in RECIPES:
        folder = ensure_builtin(recipe=RECIPES[m.source])
        return sha256_path(folder) if hashed else None
    return m.sha256 if m.kind == "local" else None


def environment(plan: Plan, threads: int, processes: int, *, hashed: bool = True) -> dict[str, Any]:
    """Where this run computes: what ``run.json`` records when the run starts (:data:`RunState.environment`)."""
    libraries = {**_libraries(), "unlearnspec": __version__}
    for name in COMPUTING:
        try:
            libraries[name] = md.version(name)
        except md.PackageNotFoundError:
            continue
    device = describe_device() if torch.cuda.is_available() else "cpu"
    return {"libraries": libraries, "threads": threads, "processes": processes, "device": device,
            "original_weights": {op.objective.name: _original_weights(op, hashed) for op in plan.objectives}}


def environment_changes(then: dict[str, Any], here: dict[str, Any]) -> list[str]:
    """How ``here`` differs from the environment a run was started in, in words (empty: the same)."""
    out: list[str] = []
    before, after = then.get("libraries") or {}, here.get("libraries") or {}
    for name in sorted(set(before) | set(after)):
        if name not in PRESENTATION and before.get(name) != after.get(name):
            out.append(f"{name} {before.get(name) or 'absent'} → {after.get(name) or 'absent'}")
    for key in ("threads", "processes", "device"):
        if then.get(key) != here.get(key):
            out.append(f"{key} {then.get(key)} → {here.get(key)}")
    for name, sha in sorted((then.get("original_weights") or {}).items()):
        now_sha = (here.get("original_weights") or {}).get(name)
        if isinstance(sha, str) and isinstance(now_sha, str) and sha != now_sha:
            out.append(f"the original weights of {code_span(name)} {sha[:12]}… → {now_sha[:12]}…")
    return out


def keep_environment(plan: Plan, rd: RunDir, state: RunState, threads: int, dist: Distributed) -> None:
    """Record the environment when the run starts; on a resume, refuse one that differs (UL714: every rank)."""
    here = environment(plan, threads, dist.world_size, hashed=dist.is_main)
    changes: list[str] = []
    if dist.is_main:
        if state.environment is None:  # a new run, or one whose run.json predates the record
            if state.resumed:
                log.info("run.json records no environment (written by an earlier unlearnspec): recording this one")
            state.environment = here
            rd.save_state(state)
        else:
            changes = environment_changes(state.environment, here)
    changes = dist.broadcast(changes)
    if changes:
        if dist.is_main:
            log.debug("resume refused: the run was started in another environment: %s", "; ".join(changes))
        raise RunError(E_RESUME_CHANGES_RUN, "the run was started in another environment: a resume here would mix "
                       f"two environments' numbers in one report ({'; '.join(changes)})",
                       ["resume it where it was started: the same library versions, `UNLEARNSPEC_THREADS`, process "
                        "count and device (run.json's `environment` records them)",
                        f"or start a new run from its plan: {code_span(f'unlearnspec run {rd.plan_path} --out NEW')}"])


#: The method families whose unlearn stage runs the Trainer on every rank of a launch (an exact retrain is the
#: main process's alone, a filter trains nothing).
_TRAINED_FAMILIES = ("approximate", "model_suppression")


def refuse_unsplittable_batches(plan: Plan, processes: int) -> None:
    """UL720 before anything runs: every batch the plan trains with on every rank (each objective's unlearn stage,
    each relearning attack's fine-tune) must split across the launch's ``processes``. Each stage checks its own
    when it starts (``scaling.effective_batch``), which let a relearning batch that does not split end a run
    after its training and evaluation were done."""
    for op in plan.objectives:
        batches: list[tuple[str, int, int]] = []
        for stage in op.stages:
            if isinstance(stage, UnlearnStage) and stage.family in _TRAINED_FAMILIES:
                batches.append(("the unlearn stage", stage.batch_size, stage.gradient_accumulation_steps))
            elif isinstance(stage, AttackStage):
                batches += [(f"the relearning attack ({a.steps} steps)", a.batch_size, 1)
                            for a in stage.attacks if isinstance(a, RelearnAttack)]
        for what, size, accumulation in batches:
            try:
                effective_batch(size, accumulation, processes)
            except RunError as err:
                raise RunError(err.code, f"{code_span(op.objective.name)}: {what}: {err.message}", err.help) from None


def refuse_broken_chains(plan: Plan) -> None:
    """UL702 before anything runs: each chain's links must be the ones the plan's objectives give
    (:func:`unlearnspec.report.chain.link_problems`: every link names an objective of the plan once, continues the
    link before it, and its hashes follow from the plan). The plan's own hash is checked before a run starts, but a
    plan run as given (`--trust-plan`) was sealed by whoever edited it: a chain reordered, or a request edited, under
    the links of another would run and be reported as the chain those links record."""
    problems = link_problems(plan)
    if problems:
        raise RunError(E_STALE_PLAN, "the plan's chains of requests do not match its objectives: " + "; ".join(problems),
                       help=["a chain's links pin the order of its requests and each request's plan; make the plan "
                             "again (`unlearnspec plan SPEC -o plan.json`), which records them, and review it"])


def library_output(quiet: bool) -> None:
    """What transformers may print during a run. Its own progress bars (loading weights, writing each
    checkpoint's shards) would cut into the training bar several times a run and tell a reviewer nothing,
    so they are off; the training bar is the Trainer's (``disable_tqdm``, off when ``quiet``). Quiet runs
    (CI logs) also keep only the libraries' errors."""
    transformers.utils.logging.disable_progress_bar()
    if quiet:
        transformers.utils.logging.set_verbosity_error()


def execute(plan: Plan, rd: RunDir, state: RunState, *, quiet: bool, allow_remote_code: bool,
            dist: Distributed | None = None) -> Report | None:
    """Run every objective; the report (``None`` on a non-main rank of a multi-process launch).

    Under a launch of N processes every rank runs every stage: training is data-parallel (DDP, or FSDP
    when a replica does not fit: ``runtime/scaling.py``), the reference is made by the main process and
    loaded by the others, and every likelihood pass, generation and probe is split across the ranks and
    gathered in order (``runtime/evaluation/sharding.py``), so all ranks hold the same results. A chain's
    steps run so too, each from the model the step before it saved, and so do its re-checks
    (``runtime/chain.py``). Only the main process writes; the others return ``None`` once the reports are
    written.
    """
    refuse_broken_chains(plan)
    dist = dist or Distributed()
    if dist.active:
        refuse_unsplittable_batches(plan, dist.world_size)
    process_count = dist.world_size
    threads = pin_threads(process_count)  # two processes on two cores with two threads each would oversubscribe
    keep_environment(plan, rd, state, threads, dist)
    transformers.set_seed(plan.seed)
    library_output(quiet)
    started = dt.datetime.fromisoformat(state.started_at.replace("Z", "+00:00"))
    t0 = time.monotonic()
    reports: list[ObjectiveReport] = []
    chains: list[ChainReport] = []
    if plan.chains:  # requests one after another (runtime/chain.py)
        reports, chains = run_chains(plan, rd, state, quiet=quiet, allow_remote_code=allow_remote_code, dist=dist)
    for op in plan.objectives if not plan.chains else ():
        reports.append(ObjectiveRun(plan, op, rd, state, quiet=quiet, allow_remote_code=allow_remote_code,
                                    dist=dist).run())
    if dist.active:  # every rank has finished every stage: the helpers leave, the main process reports
        is_main = dist.is_main
        dist.barrier()
        dist.leave()
        if not is_main:
            return None
    finished = dt.datetime.now(dt.timezone.utc)
    seeds = {"plan": plan.seed}
    for op in plan.objectives:
        st = _stage_of(op, UnlearnStage)
        if st is not None:
            seeds[f"{op.objective.name}/unlearn"] = st.seed
    wall = (finished - started).total_seconds() if state.resumed else time.monotonic() - t0
    audit = audit_from_plan(plan, device=describe_device(), started_at=started, finished_at=finished,
                            wall_seconds=wall, libraries={**_libraries(), "unlearnspec": __version__},
                            seeds=seeds, process_count=process_count, plan_provenance=state.plan_provenance)
    report = build_report(reports, audit, chains)
    write_reports(report, rd.root)
    state.finished_at = now()
    rd.save_state(state)
    return report
