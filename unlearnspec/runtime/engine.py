"""The runtime engine: execute a saved plan, exactly, into a new run directory.

    prepare ▶ reference ▶ unlearn/suppress ▶ evaluate ▶ attack ▶ verdict

A run directory holds the plan copy, ``run.json`` (stage states, rewritten atomically after each
stage), a log, per-objective stage outputs (checkpoints, the unlearned model or adapter, the guard,
evaluation results) and the reports. The source model is only ever read. A killed run continues
with ``run --resume DIR``: finished stages are skipped (their outputs are on disk), and training
resumes from its last Trainer checkpoint, so the metrics equal an uninterrupted run's.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from unlearnspec.catalog.exits import EXIT_OK, EXIT_USAGE
from unlearnspec.io import atomic_write_text
from unlearnspec.plan import Plan
from unlearnspec.records import sha256_path

log = logging.getLogger("unlearnspec.run")


class RunError(Exception):
    """A run that cannot start or continue, with help lines; the CLI prints it as a diagnostic."""

    def __init__(self, code: str, message: str, help: list[str] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.help = help or []


class StageState(BaseModel):
    status: str = "pending"  # pending | running | done | failed
    started_at: str | None = None
    finished_at: str | None = None
    detail: dict[str, Any] = Field(default_factory=dict)


class RunState(BaseModel):
    """``run.json``: where the run stands; enough to resume it."""

    format_version: str = "1.0"
    plan_hash: str
    spec_dir: str  # absolute folder the plan's relative paths resolve against
    started_at: str
    finished_at: str | None = None
    stages: dict[str, StageState] = Field(default_factory=dict)
    resumed: int = 0

    def stage(self, key: str) -> StageState:
        return self.stages.setdefault(key, StageState())


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- locating and verifying inputs -----------------------------------------------------------------


def locate_spec_dir(plan: Plan, plan_path: Path | None) -> Path:
    """The folder the plan's relative data paths resolve against: the spec's folder."""
    candidates = []
    spec_rel = Path(plan.spec.path)
    candidates.append(Path.cwd() / spec_rel)
    if plan_path is not None:
        candidates.append(plan_path.resolve().parent / spec_rel)
        candidates.append(plan_path.resolve().parent / spec_rel.name)
    for c in candidates:
        if c.is_file():
            return c.resolve().parent
    raise RunError("UL701", f"cannot find the plan's spec `{plan.spec.path}`",
                   help=["run from the folder the plan was made in, or keep the plan beside its spec"])


def verify_inputs(plan: Plan, spec_dir: Path) -> None:
    """Refuse a plan whose spec, data or model changed since it was made (a stale plan)."""
    stale: list[str] = []
    spec_file = spec_dir / Path(plan.spec.path).name
    if not spec_file.is_file() or sha256_path(spec_file) != plan.spec.sha256:
        stale.append(f"spec `{plan.spec.path}`")
    for item in plan.inputs:
        p = spec_dir / item.path
        if not p.exists():
            stale.append(f"`{item.path}` is missing")
        elif sha256_path(p) != item.sha256:
            stale.append(f"`{item.path}` changed")
    for obj in plan.objectives:
        m = obj.model
        if m.kind == "builtin":
            from unlearnspec.builtin.recipe import recipe_hash

            if m.sha256 and recipe_hash() != m.sha256:
                stale.append(f"builtin model recipe for `{m.source}` changed")
        elif m.kind == "local":
            for f in m.files:
                p = spec_dir / f.path
                if not p.is_file() or sha256_path(p) != f.sha256:
                    stale.append(f"model file `{f.path}` changed")
    if plan.compute_hash() != plan.plan_hash:
        stale.append("the plan file itself was edited after it was made")
    if stale:
        raise RunError("UL702", "the plan is stale: its inputs changed since it was made",
                       help=["; ".join(stale), "make a new plan (`unlearnspec plan SPEC -o plan.json`) and review it"])


def load_plan(path: Path) -> Plan:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise RunError("UL703", f"cannot read plan `{path}`: {err}") from err
    if not isinstance(data, dict) or "format_version" not in data:
        raise RunError("UL703", f"`{path}` is not an unlearnspec plan (no `format_version`)")
    if str(data["format_version"]).split(".")[0] != "1":
        raise RunError("UL703", f"plan format {data['format_version']} is newer than this runtime reads (1.x)",
                       help=["upgrade unlearnspec"])
    from pydantic import ValidationError

    try:
        return Plan.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        raise RunError("UL703", f"`{path}` is not a valid plan: {'.'.join(map(str, first['loc']))}: {first['msg']}") from err


# -- the run directory -------------------------------------------------------------------------------


class RunDir:
    def __init__(self, root: Path) -> None:
        self.root = root

    @property
    def plan_path(self) -> Path:
        return self.root / "plan.json"

    @property
    def state_path(self) -> Path:
        return self.root / "run.json"

    def objective_dir(self, name: str) -> Path:
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
        d = self.root / "objectives" / safe
        d.mkdir(parents=True, exist_ok=True)
        return d

    def save_state(self, state: RunState) -> None:
        atomic_write_text(self.state_path, state.model_dump_json(indent=2) + "\n")

    def load_state(self) -> RunState:
        return RunState.model_validate_json(self.state_path.read_text(encoding="utf-8"))


def default_run_dir(plan: Plan) -> Path:
    first = plan.objectives[0].objective.name if plan.objectives else "run"
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    base = Path("runs") / f"{first}-{plan.plan_hash[:8]}-{stamp}"
    out, i = base, 1
    while out.exists():
        i += 1
        out = base.with_name(f"{base.name}-{i}")
    return out


class _BarSafeHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Log lines printed above the Trainer's progress bar (through ``tqdm.write``) instead of into it."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            from tqdm.auto import tqdm

            tqdm.write(self.format(record), file=self.stream)
        except Exception:  # noqa: BLE001 - logging must never raise
            self.handleError(record)


def _setup_logging(run_dir: Path, quiet: bool) -> None:
    root = logging.getLogger("unlearnspec")
    root.setLevel(logging.DEBUG)  # run.log keeps every training step; the terminal gets INFO and up
    # The run owns its output: a handler another library put on the root logger (``basicConfig``)
    # must not echo these lines, least of all under ``--quiet``.
    root.propagate = False
    for h in list(root.handlers):
        if getattr(h, "_unlearnspec", False):
            root.removeHandler(h)
    fh = logging.FileHandler(run_dir / "run.log", encoding="utf-8")
    fh.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    fh.setLevel(logging.DEBUG)
    fh._unlearnspec = True  # type: ignore[attr-defined]
    root.addHandler(fh)
    if not quiet:
        sh = _BarSafeHandler(sys.stderr)
        sh.setFormatter(logging.Formatter("%(message)s"))
        sh.setLevel(logging.INFO)
        sh._unlearnspec = True  # type: ignore[attr-defined]
        root.addHandler(sh)


# -- entry points -------------------------------------------------------------------------------------


def prepare_run(path: Path | None, *, out: Path | None, resume: Path | None,
                allow_infeasible: bool) -> tuple[Plan, RunDir, RunState]:
    """Load or make the plan, verify its inputs, and create (or reopen) the run directory."""
    if resume is not None:
        rd = RunDir(resume)
        if not rd.plan_path.is_file() or not rd.state_path.is_file():
            raise RunError("UL704", f"`{resume}` is not a run directory (no plan.json / run.json)")
        plan = load_plan(rd.plan_path)
        state = rd.load_state()
        if state.plan_hash != plan.plan_hash:
            raise RunError("UL704", "run.json and plan.json disagree; the run directory was edited")
        verify_inputs(plan, Path(state.spec_dir))
        state.resumed += 1
        return plan, rd, state
    if path is None:
        raise RunError("UL705", "give a plan (plan.json) or a spec to run, or --resume DIR")
    if path.suffix == ".json":
        plan = load_plan(path)
        spec_dir = locate_spec_dir(plan, path)
    else:
        from unlearnspec.compiler.check import plan_file
        from unlearnspec.compiler.lower import front_end_errors
        from unlearnspec.compiler.render import render

        made, result = plan_file(path, allow_infeasible=allow_infeasible)
        if made is None:
            sys.stderr.write(render([result], "human", sys.stderr))
            if result.spec is None or front_end_errors(result.diagnostics):
                hint = ("the spec itself has errors (syntax, names, values or contradictory fields: UL1xx, "
                        "UL2xx): fix them; --allow-infeasible only lets a run go ahead with claims that cannot "
                        "be met (UL3xx, UL601)")
            else:
                hint = "fix the errors, or run with --allow-infeasible to measure what is measurable"
            raise RunError("UL706", f"`{path}` cannot be planned (see the errors above)", help=[hint])
        plan = made
        spec_dir = path.resolve().parent
    verify_inputs(plan, spec_dir)
    root = out or default_run_dir(plan)
    if root.exists() and any(root.iterdir()):
        raise RunError("UL707", f"run directory `{root}` already exists and is not empty",
                       help=["runs never overwrite; choose another --out, or --resume it"])
    root.mkdir(parents=True, exist_ok=True)
    rd = RunDir(root)
    atomic_write_text(rd.plan_path, plan.canonical_json())
    state = RunState(plan_hash=plan.plan_hash, spec_dir=str(spec_dir), started_at=now())
    rd.save_state(state)
    return plan, rd, state


class Distributed:
    """This process's place in a multi-process launch (``accelerate launch``, ``torchrun``).

    Why: the Trainer runs the unlearn stage data-parallel across the launched processes, but a
    run directory must have one writer. Every rank trains; only the main process creates the run
    directory and writes state, models, checks and reports; the other ranks wait at barriers and
    exit 0 once training is done. With ``WORLD_SIZE`` unset or 1 this is a no-op (accelerate is
    not even imported).
    """

    def __init__(self) -> None:
        self.world_size = int(os.environ.get("WORLD_SIZE", "1") or "1")
        self.state: Any = None
        if self.world_size > 1:
            import torch
            from accelerate import PartialState

            self.state = PartialState(cpu=not torch.cuda.is_available())

    @property
    def active(self) -> bool:
        return self.state is not None

    @property
    def is_main(self) -> bool:
        return self.state is None or bool(self.state.is_main_process)

    def barrier(self) -> None:
        if self.state is not None:
            self.state.wait_for_everyone()

    def broadcast(self, obj: Any) -> Any:
        """``obj`` as the main process has it (on every rank)."""
        if self.state is None:
            return obj
        from accelerate.utils import broadcast_object_list

        box = [obj]
        broadcast_object_list(box, from_process=0)
        return box[0]

    def leave(self) -> None:
        """Leave the process group after training, so the main rank evaluates alone.

        The evaluation's own Trainers (the relearning attack) must not wrap their model in DDP with
        ranks that have exited: drop the process group, accelerate's cached state and the launcher's
        rank variables, so later ``TrainingArguments`` see a single process. (accelerate has no public
        "leave" call; ``_reset_state`` is what its own test-suite uses.)
        """
        if self.state is None:
            return
        from accelerate.state import AcceleratorState

        self.state.destroy_process_group()
        AcceleratorState._reset_state(reset_partial_state=True)
        for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "GROUP_RANK", "ROLE_RANK",
                    "ROLE_WORLD_SIZE", "GROUP_WORLD_SIZE"):
            os.environ.pop(var, None)
        self.state = None


def run_command(args: argparse.Namespace) -> int:
    """`unlearnspec run`: exit 0 pass, 1 fail, 2 a run that cannot start, 3 incomplete evidence.

    Under a multi-process launch (``WORLD_SIZE`` > 1) the run directory must be the same on every
    rank, so ``--out`` (or ``--resume``) is required: the default directory name has a timestamp.
    """
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    world = int(os.environ.get("WORLD_SIZE", "1") or "1")
    if world > 1 and not args.out and not args.resume:
        _print_error(RunError("UL708", f"a run launched as {world} processes needs `--out DIR` (or `--resume DIR`)",
                              help=["every rank must write to the same run directory; the default name has a timestamp"]))
        return EXIT_USAGE
    dist = Distributed()
    error: RunError | None = None
    root: str | None = None
    if dist.is_main:
        try:
            plan, rd, state = prepare_run(Path(args.path) if args.path else None,
                                          out=Path(args.out) if args.out else None,
                                          resume=Path(args.resume) if args.resume else None,
                                          allow_infeasible=args.allow_infeasible)
            root = str(rd.root)
        except RunError as err:
            error = err
    failed, root = dist.broadcast((error is not None, root))
    if error is not None:
        _print_error(error)
    if failed:
        return EXIT_USAGE
    if not dist.is_main:  # the main process made (or reopened) the directory: read, never write
        assert root is not None
        rd = RunDir(Path(root))
        plan = load_plan(rd.plan_path)
        state = rd.load_state()
    if dist.is_main:
        _setup_logging(rd.root, args.quiet)
    log.info("run directory: %s", rd.root)
    from unlearnspec.runtime.pipeline import execute

    try:
        report = execute(plan, rd, state, quiet=args.quiet, allow_remote_code=args.allow_remote_code, dist=dist)
    except RunError as err:
        _print_error(err)
        return EXIT_USAGE
    if report is None:  # a non-main rank: its part (training) is done
        return EXIT_OK
    sys.stdout.write(summary_text(report, rd.root))
    return int(report.exit_code)


def summary_text(report: Any, root: Path) -> str:
    lines = [f"\nverdict: {report.overall.upper()}  (exit {report.exit_code})"]
    for obj in report.objectives:
        lines.append(f"  objective {obj.name}: {obj.overall}")
        for c in obj.claims:
            lines.append(f"    {c.verdict:<14} {c.claim}")
    lines.append(f"reports: {root / 'report.md'}  {root / 'report.html'}  {root / 'report.json'}")
    return "\n".join(lines) + "\n"


def _print_error(err: RunError) -> None:
    sys.stderr.write(f"error[{err.code}]: {err.message}\n")
    for h in err.help:
        sys.stderr.write(f"  = help: {h}\n")
