"""The runtime engine: execute a loaded plan, exactly, into a new run directory.

    prepare ▶ reference ▶ unlearn/suppress ▶ evaluate ▶ attack ▶ verdict

The engine takes a :class:`~unlearnspec.plan.Plan` (already loaded or planned by the command line)
and plain :class:`RunOptions`; it never plans a spec, never parses arguments and never prints an
error: what goes wrong is a :class:`~unlearnspec.runtime.rundir.RunError` (or a model
:class:`~unlearnspec.runtime.loading.LoadError`) that the CLI formats and maps to an exit code.

A run directory holds the plan copy, ``run.json`` (stage states, rewritten atomically after each
stage), a log, per-objective stage outputs (checkpoints, the unlearned model or adapter, the guard,
evaluation results) and the reports. The source model is only ever read. A killed run continues
with ``run --resume DIR``: finished stages are skipped (their outputs are on disk), and training
resumes from its last complete Trainer checkpoint, so the metrics equal an uninterrupted run's.
"""

from __future__ import annotations

import datetime as dt
import errno
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import ValidationError

from unlearnspec.builtin.recipe import recipe_hash
from unlearnspec.errors import UserError
from unlearnspec.io import atomic_write_text
from unlearnspec.plan import Plan
from unlearnspec.records import sha256_path
from unlearnspec.report.model import Report
from unlearnspec.runtime.distributed import Distributed
from unlearnspec.runtime.pipeline import execute
from unlearnspec.runtime.rundir import (
    E_NEEDS_OUT,
    E_NOT_A_RUN_DIR,
    E_STALE_PLAN,
    E_UNREADABLE_PLAN,
    NO_SPACE,
    RunDir,
    RunError,
    RunState,
    cannot_write,
    now,
    safe_name,
)

log = logging.getLogger("unlearnspec.run")

Provenance = Literal["planned", "rederived", "trusted"]


@dataclass(frozen=True)
class RunOptions:
    """What the command line decided, as plain values (the runtime never sees argparse).

    ``plan_provenance`` says how the plan was vouched for: ``planned`` (made from the spec just now),
    ``rederived`` (a saved plan the CLI re-derived from its spec and found equal) or ``trusted``
    (``--trust-plan``: not re-derived); the report's audit trail records it.
    """

    out: Path | None = None
    resume: Path | None = None
    quiet: bool = False
    allow_remote_code: bool = False
    plan_provenance: Provenance = "rederived"
    inputs_verified: bool = False  # the caller already ran :func:`verify_inputs` (large models are hashed once)


@dataclass(frozen=True)
class RunOutcome:
    """A finished (or already finished) run; ``report`` is ``None`` on a helper rank of a launch."""

    root: Path
    report: Report | None
    already_finished: bool = False


# -- locating and verifying inputs -----------------------------------------------------------------


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
    if not spec.is_file() or sha256_path(spec) != plan.spec.sha256:
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
        raise RunError(E_STALE_PLAN, "the plan is stale: its inputs changed since it was made",
                       help=["; ".join(stale), "make a new plan (`unlearnspec plan SPEC -o plan.json`) and review it"])


# -- the run directory -------------------------------------------------------------------------------


def default_run_dir(plan: Plan) -> Path:
    """``runs/<objective>-<plan hash>-<time>``; the objective's name is sanitised into one component."""
    first = safe_name(plan.objectives[0].objective.name) if plan.objectives else "run"
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    base = Path("runs") / f"{first}-{plan.plan_hash[:8]}-{stamp}"
    out, i = base, 1
    while out.exists():
        i += 1
        out = base.with_name(f"{base.name}-{i}")
    return out


def read_run(root: Path) -> tuple[Plan, RunState]:
    """The plan and state of an existing run directory (read only); UL704 when it is not one."""
    rd = RunDir(root)
    if not rd.plan_path.is_file() or not rd.state_path.is_file():
        raise RunError(E_NOT_A_RUN_DIR, f"`{root}` is not a run directory (no plan.json / run.json)")
    try:
        plan = Plan.load(rd.plan_path)
    except UserError as err:
        raise RunError(E_NOT_A_RUN_DIR, f"the run's plan is damaged: {err.message}",
                       ["start a new run from the original plan"]) from None
    state = rd.load_state()
    if state.plan_hash != plan.plan_hash:
        raise RunError(E_NOT_A_RUN_DIR, "run.json and plan.json disagree; the run directory was edited")
    return plan, state


def _finished_report(rd: RunDir, state: RunState) -> Report | None:
    """The report of a run that already finished, if it is there and valid (then nothing is rewritten)."""
    path = rd.root / "report.json"
    if state.finished_at is None or not path.is_file():
        return None
    try:
        return Report.model_validate_json(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValidationError, ValueError):
        return None  # regenerate it from the finished stages


def _start(plan: Plan, spec_dir: Path, options: RunOptions) -> tuple[RunDir, RunState]:
    if not options.inputs_verified:
        verify_inputs(plan, spec_dir)
    rd = RunDir(options.out or default_run_dir(plan))
    rd.create_exclusive()
    state = RunState(plan_hash=plan.plan_hash, spec_dir=str(spec_dir), started_at=now(),
                     plan_provenance=options.plan_provenance)
    try:
        atomic_write_text(rd.plan_path, plan.canonical_json())
        rd.save_state(state)
    except OSError as err:
        raise cannot_write(rd.root, err) from None
    return rd, state


def _reopen(root: Path, options: RunOptions) -> tuple[Plan, RunDir, RunState]:
    plan, state = read_run(root)
    rd = RunDir(root)
    rd.hold()
    if not options.inputs_verified:
        verify_inputs(plan, Path(state.spec_dir))
    return plan, rd, state


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


# -- the entry point ----------------------------------------------------------------------------------


def _out_of_space(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it) is a full disk; torch and safetensors wrap ENOSPC in their own errors."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in NO_SPACE:
            return True
        text = str(seen)
        if "No space left on device" in text or "StorageFull" in text or "file write failed" in text:
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def run(plan: Plan | None, spec_dir: Path | None, options: RunOptions) -> RunOutcome:
    """Execute ``plan`` (or, with ``options.resume``, continue that run) and return its report.

    Raises :class:`RunError` for a run that cannot start or continue (a stale plan, a run directory
    that exists or cannot be written, a full disk: the run stays resumable) and ``LoadError`` for a
    model that cannot be loaded. Under a multi-process launch (``WORLD_SIZE`` > 1) the run directory
    must be the same on every rank, so ``out`` (or ``resume``) is required: the default name has a
    timestamp. Only the main process creates the directory and writes into it.
    """
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    world = int(os.environ.get("WORLD_SIZE", "1") or "1")
    if world > 1 and options.out is None and options.resume is None:
        raise RunError(E_NEEDS_OUT, f"a run launched as {world} processes needs `--out DIR` (or `--resume DIR`)",
                       help=["every rank must write to the same run directory; the default name has a timestamp"])
    dist = Distributed()
    error: RunError | None = None
    root: str | None = None
    rd: RunDir | None = None
    state: RunState | None = None
    if dist.is_main:
        try:
            if options.resume is not None:
                plan, rd, state = _reopen(options.resume, options)
                done = _finished_report(rd, state)
                if done is not None:  # nothing to do: leave the finished run (and its wall time) as it is
                    rd.release()
                    return RunOutcome(root=rd.root, report=done, already_finished=True)
                state.resumed += 1
            else:
                assert plan is not None and spec_dir is not None
                rd, state = _start(plan, spec_dir, options)
            root = str(rd.root)
        except RunError as err:
            error = err
    failed, root = dist.broadcast((error is not None, root))
    if error is not None:
        raise error
    if failed:
        raise RunError(E_NOT_A_RUN_DIR, "the main process could not start the run (see its error)")
    if not dist.is_main:  # the main process made (or reopened) the directory: read, never write
        assert root is not None
        plan, state = read_run(Path(root))
        rd = RunDir(Path(root))
    assert plan is not None and rd is not None and state is not None
    try:
        if dist.is_main:
            _setup_logging(rd.root, options.quiet)
        log.info("run directory: %s", rd.root)
        report = execute(plan, rd, state, quiet=options.quiet, allow_remote_code=options.allow_remote_code,
                         dist=dist)
    except OSError as err:
        if _out_of_space(err) or err.errno is not None:
            raise cannot_write(Path(err.filename or rd.root), err, resumable=rd.root) from None
        raise
    except (RuntimeError, ValueError) as err:  # torch / safetensors wrap a full disk in their own errors
        if not _out_of_space(err):
            raise
        full = OSError(errno.ENOSPC, "No space left on device")
        raise cannot_write(rd.root, full, resumable=rd.root) from None
    finally:
        rd.release()
    return RunOutcome(root=rd.root, report=report)
