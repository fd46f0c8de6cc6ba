"""Run every objective of a plan — one by one, or as a chain of requests — and write the report.

Above :mod:`unlearnspec.runtime.pipeline` (one objective's stages) and :mod:`unlearnspec.runtime.chain`
(objectives applied one after another), so neither needs the other's caller.
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata as md
import platform
import time

import transformers

from unlearnspec import __version__
from unlearnspec.plan import Plan, UnlearnStage
from unlearnspec.report import audit_from_plan, build_report, write_reports
from unlearnspec.report.chain import ChainReport
from unlearnspec.report.model import ObjectiveReport, Report
from unlearnspec.runtime.chain import run_chains
from unlearnspec.runtime.distributed import Distributed
from unlearnspec.runtime.loading import describe_device
from unlearnspec.runtime.pipeline import ObjectiveRun, _stage_of
from unlearnspec.runtime.rundir import RunDir, RunError, RunState, now
from unlearnspec.runtime.scaling import pin_threads


def _libraries() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in ("torch", "transformers", "peft", "accelerate", "tokenizers", "numpy", "scipy", "scikit-learn",
                 "rouge-score", "pydantic", "lark", "jinja2"):
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            continue
    return out


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
    gathered in order (``runtime/evaluation/sharding.py``), so all ranks hold the same results. Only the
    main process writes; the others return ``None`` once the reports are written.
    """
    dist = dist or Distributed()
    process_count = dist.world_size
    pin_threads(process_count)  # two processes on two cores with two threads each would oversubscribe the CPU
    transformers.set_seed(plan.seed)
    library_output(quiet)
    started = dt.datetime.fromisoformat(state.started_at.replace("Z", "+00:00"))
    t0 = time.monotonic()
    if dist.active and plan.chains:
        raise RunError("UL712", "a plan with a chain of requests runs as one process",
                       help=["each step of a chain starts from the previous step's model; run it without "
                             "`accelerate launch` (or with one process)"])
    reports: list[ObjectiveReport] = []
    chains: list[ChainReport] = []
    if plan.chains:  # requests one after another (runtime/chain.py)
        reports, chains = run_chains(plan, rd, state, quiet=quiet, allow_remote_code=allow_remote_code)
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
