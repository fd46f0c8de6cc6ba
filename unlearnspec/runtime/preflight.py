"""Before a run starts: is the plan runnable on exactly the inputs it was made from, and is a folder a run?

Light module (no torch): the command line calls these before it loads the runtime, so a stale, empty or
edited plan and a damaged run folder are refused at once, with nothing written.
"""

from __future__ import annotations

import math
import os
import shutil
from pathlib import Path

from unlearnspec.builtin.recipe import RECIPES, recipe_hash
from unlearnspec.catalog.methods import CHECKPOINTS_KEPT, WEIGHT_BYTES_PER_PARAMETER
from unlearnspec.errors import UserError
from unlearnspec.inputs import spec_path
from unlearnspec.markdown import code_span
from unlearnspec.plan import E_UNREADABLE_PLAN, GivenStage, Plan, UnlearnStage
from unlearnspec.records import sha256_path
from unlearnspec.runtime.hubcache import hub_snapshot_dir
from unlearnspec.runtime.rundir import (
    E_NOT_A_RUN_DIR,
    E_STALE_PLAN,
    RunDir,
    RunError,
    RunState,
    cut_short,
)


def spec_file(plan: Plan, spec_dir: Path) -> Path:
    return spec_dir / Path(plan.spec.path).name


def verify_inputs(plan: Plan, spec_dir: Path) -> None:
    """Refuse a plan that runs nothing, or whose spec, data or model changed since it was made."""
    if not plan.objectives:
        raise RunError(E_UNREADABLE_PLAN, "the plan has no objectives: there is nothing to run",
                       help=["make the plan with `unlearnspec plan SPEC -o plan.json`"])
    if not plan.inputs:
        raise RunError(E_UNREADABLE_PLAN, "the plan lists no input files, so no data file's hash can be checked",
                       help=["every objective reads a forget set; a plan without inputs was edited",
                             "make the plan with `unlearnspec plan SPEC -o plan.json`"])
    stale: list[str] = []
    spec = spec_file(plan, spec_dir)
    if not spec.is_file():
        stale.append(f"spec {code_span(plan.spec.path)} is missing")
    elif sha256_path(spec) != plan.spec.sha256:
        stale.append(f"spec {code_span(plan.spec.path)} changed")
    for item in plan.inputs:
        p = spec_dir / item.path
        if not p.exists():
            stale.append(f"{code_span(item.path)} is missing")
        elif sha256_path(p) != item.sha256:
            stale.append(f"{code_span(item.path)} changed")
    for obj in plan.objectives:
        m = obj.model
        if m.kind == "builtin":
            if m.source not in RECIPES:
                stale.append(f"built-in model {code_span(m.source)} no longer exists")
            elif m.sha256 and recipe_hash(RECIPES[m.source]) != m.sha256:
                stale.append(f"builtin model recipe for {code_span(m.source)} changed")
        elif m.kind == "local":
            for f in m.files:
                p = spec_dir / f.path
                if not p.is_file() or sha256_path(p) != f.sha256:
                    stale.append(f"model file {code_span(f.path)} changed")
        elif m.kind == "hub" and m.revision is not None:  # the snapshot the plan pinned, file by file
            snapshot = hub_snapshot_dir(m.source, m.revision)
            if snapshot is None:
                stale.append(f"hub model {code_span(m.source)} at commit {code_span(m.revision)} is no longer in the "
                             "local Hugging Face cache")
            else:
                for f in m.files:
                    p = snapshot / f.path
                    if not p.is_file() or sha256_path(p) != f.sha256:
                        stale.append(f"file {code_span(f.path)} of hub model {code_span(m.source)} changed")
        for st in obj.stages:  # an audited checkpoint: its whole folder, so an added file is noticed too
            if isinstance(st, GivenStage):
                folder = spec_path(st.source, spec_dir)
                if not folder.is_dir():
                    stale.append(f"unlearned model folder {code_span(st.source)} is missing")
                elif sha256_path(folder) != st.sha256:
                    stale.append(f"unlearned model folder {code_span(st.source)} changed")
    if plan.compute_hash() != plan.plan_hash:
        stale.append("the plan file itself was edited after it was made")
    if stale:
        raise RunError(E_STALE_PLAN, "the plan is stale: its inputs changed since it was made",
                       help=["; ".join(stale), "make a new plan (`unlearnspec plan SPEC -o plan.json`) and review it"])



def read_run(root: Path) -> tuple[Plan, RunState]:
    """The plan and state of an existing run directory (read only); UL704 when it is not one."""
    rd = RunDir(root)
    if not rd.plan_path.is_file() or not rd.state_path.is_file():
        again = ([f"its run was stopped before it began: start it again into the same folder "
                  f"(`unlearnspec run PLAN --out {root}`); the folder is taken over, nothing of a run was in it"]
                 if cut_short(rd.root) else [])
        raise RunError(E_NOT_A_RUN_DIR, f"{code_span(root)} is not a run directory (no plan.json / run.json)", again)
    try:
        plan = Plan.load(rd.plan_path)
    except UserError as err:
        raise RunError(E_NOT_A_RUN_DIR, f"the run's plan is damaged: {err.message}",
                       ["start a new run from the original plan"]) from None
    state = rd.load_state()
    if state.plan_hash != plan.plan_hash:
        raise RunError(E_NOT_A_RUN_DIR, "run.json and plan.json disagree; the run directory was edited")
    return plan, state




E_DISK_SHORT = "RT107"

MODEL_BYTES_PER_PARAMETER = WEIGHT_BYTES_PER_PARAMETER
"""A saved model's weights."""
CHECKPOINT_BYTES_PER_PARAMETER = 3 * WEIGHT_BYTES_PER_PARAMETER
"""A training checkpoint per trained parameter: its fp32 weights and Adam's two fp32 moments."""
LORA_TRAINED_SHARE = 0.01
"""An upper bound on the share of a model's parameters a LoRA adapter trains (rank 8–64 on the attention and MLP
projections of the models here stays well below it)."""


def disk_estimate(plan: Plan) -> tuple[int, list[str]]:
    """An upper bound on the bytes a run of ``plan`` writes into its folder, with what each part is: for each
    objective that trains, the unlearned model (LoRA: the merged model too) and the training checkpoints (one more
    than :data:`~unlearnspec.catalog.methods.CHECKPOINTS_KEPT` while the newest is written). A model whose size the
    plan does not know (a hub id not in the cache) counts nothing: the estimate says so."""
    total, parts = 0, []
    for op in plan.objectives:
        stage = next((s for s in op.stages if isinstance(s, UnlearnStage)), None)
        if stage is None or stage.family == "system_suppression":  # an audit, or an output filter: no weights
            continue
        p = op.model.parameters
        if p is None:
            parts.append(f"{code_span(op.objective.name)}: the size of {code_span(op.model.source)} is not known, not counted")
            continue
        trained = p if stage.adapter == "full" else math.ceil(p * LORA_TRAINED_SHARE)
        checkpoints = 0 if stage.family == "exact" else (CHECKPOINTS_KEPT + 1) * trained * CHECKPOINT_BYTES_PER_PARAMETER
        model = p * MODEL_BYTES_PER_PARAMETER
        total += model + checkpoints
        parts.append(f"{code_span(op.objective.name)}: {_gb(model)} for the unlearned model"
                     + (f", {_gb(checkpoints)} for {CHECKPOINTS_KEPT + 1} training checkpoints" if checkpoints else ""))
    return total, parts


def _gb(n: float) -> str:
    return f"{n / 1e9:.2f} GB" if n >= 1e7 else f"{n / 1e6:.1f} MB"


def disk_warning(plan: Plan, out: Path) -> UserError | None:
    """RT107 when the disk that will hold ``out`` (the nearest folder of it that exists) has less free space than
    :func:`disk_estimate`; None when it has enough, or when nothing can be said."""
    need, parts = disk_estimate(plan)
    where = Path(os.path.abspath(out))
    while not where.exists() and where != where.parent:
        where = where.parent
    try:
        free = shutil.disk_usage(where).free
    except OSError:
        return None
    if need <= free:
        return None
    return UserError(E_DISK_SHORT, f"the run is estimated to write up to {_gb(need)} into {code_span(out)}, and its "
                     f"disk has {_gb(free)} free", [*parts, "free space on that disk, or give `--out` a folder on a "
                                                    "disk with more; the estimate is an upper bound (RT107)"])
