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
resumes from its last complete Trainer checkpoint, so the metrics equal an uninterrupted run's. The resume
removes what the killed run's writes left (temporary files, a half-saved model) and refuses a folder with a link
planted in it (UL704) or moved into a folder the plan pins (UL715).
"""

from __future__ import annotations

import errno
import logging
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from unlearnspec.errors import UserError
from unlearnspec.io import atomic_write_text
from unlearnspec.plan import E_INSIDE_INPUT, Plan
from unlearnspec.report.model import Report
from unlearnspec.runtime.distributed import Distributed, on_main
from unlearnspec.runtime.execute import execute
from unlearnspec.runtime.preflight import read_run, verify_inputs
from unlearnspec.runtime.rundir import (
    E_NEEDS_OUT,
    E_NOT_A_RUN_DIR,
    NO_SPACE,
    RunDir,
    RunError,
    RunState,
    cannot_write,
    default_run_dir,
    not_started,
    now,
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
    ledger: Path | None = None  # the ledger folder (default: `ledger/` beside the run folder)
    no_ledger: bool = False
    #: how the caller shows a user error (the command line's ``error[CODE]`` diagnostic); the main process of a
    #: launch uses it for a helper's failure, which it must print itself (runtime/distributed.py)
    show_error: Callable[[UserError], None] | None = None


@dataclass(frozen=True)
class RunOutcome:
    """A finished (or already finished) run; ``report`` is ``None`` on a helper rank of a launch."""

    root: Path
    report: Report | None
    already_finished: bool = False


# -- the run directory -------------------------------------------------------------------------------


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
    ledger = None if options.no_ledger else Path(os.path.abspath(options.ledger or rd.root.parent / "ledger"))
    refuse_inside_inputs(plan, spec_dir, rd.root, ledger)
    rd.create_exclusive()
    state = RunState(plan_hash=plan.plan_hash, spec_dir=str(spec_dir), started_at=now(),
                     plan_provenance=options.plan_provenance, ledger=str(ledger) if ledger else None,
                     no_ledger=options.no_ledger)
    try:
        atomic_write_text(rd.plan_path, plan.canonical_json())  # into a folder just claimed: nothing planted there
        rd.save_state(state)
    except OSError as err:  # a full or read-only disk before the run began: leave no half-made folder
        rd.abandon()
        raise cannot_write(rd.root, err) from None
    return rd, state


def refuse_inside_inputs(plan: Plan, spec_dir: Path, root: Path, ledger: Path | None, *,
                         resuming: bool = False) -> None:
    """UL715 when the run folder or the ledger lies inside a folder the plan pins (a model, a data folder), links
    followed: the run would write into what it only reads. A resume checks again (the run folder moved there)."""
    pinned = plan.read_only_folders(spec_dir)
    for what, place in (("run folder", root), ("ledger folder", ledger)):
        folder = next((f for f in pinned
                       if place is not None and Path(os.path.realpath(place)).is_relative_to(os.path.realpath(f))),
                      None)
        if folder is not None:
            raise RunError(E_INSIDE_INPUT, f"the {what} `{place}` is inside `{folder}`, which the plan pins and the "
                           "run only reads: writing there would change it",
                           help=["move the run folder (and its ledger) out of it, then resume" if resuming else
                                 "give `--out DIR` (and `--ledger DIR`) outside every model and data folder the "
                                 "spec names"])


def not_started_error(root: Path) -> RunError:
    """UL704 for a folder whose start was cut short (``plan.json``, no ``run.json``): no stage ran, nothing to
    resume; a run started into it takes it over (:meth:`RunDir.create_exclusive`)."""
    return RunError(E_NOT_A_RUN_DIR, f"`{root}` holds a plan.json but no run.json: its run was stopped before it "
                    "began, so there is nothing to resume",
                    [f"start it again into the same folder: `unlearnspec run PLAN --out {root}` (the plan or spec it "
                     "was started from); the folder is taken over, nothing of a run was in it"])


def _reopen(root: Path, options: RunOptions) -> tuple[Plan, RunDir, RunState, Report | None]:
    """The run in ``root``, locked for this resume and read under the lock; or, when it has already finished, read
    without the lock (nothing is written, so a finished run may sit on a read-only disk) with its report."""
    rd = RunDir(root)
    if not_started(rd.root):
        raise not_started_error(rd.root)
    rd.refuse_planted()  # a link planted since the kill (at run.json, report.json, a folder) is never followed: UL704
    plan, state = read_run(rd.root)  # a first look: is it a run, and has it finished?
    done = _finished_report(rd, state)
    if done is not None:
        return plan, rd, state, done
    rd.hold()
    try:
        rd.refuse_planted()  # again under the lock: what the run reads and writes from here on
        plan, state = read_run(rd.root)  # the state as the last run that held the lock left it
        done = _finished_report(rd, state)
        if done is None:
            refuse_inside_inputs(plan, Path(state.spec_dir), rd.root, Path(state.ledger) if state.ledger else None,
                                 resuming=True)
            for path in rd.clear_leftovers():  # what the killed run was writing: never trusted, never kept
                log.debug("removed %s, left by a write the earlier run did not finish", path)
        if done is None and not options.inputs_verified:
            verify_inputs(plan, Path(state.spec_dir))
    except BaseException:
        rd.release()
        raise
    if done is not None:
        rd.release()
    return plan, rd, state, done


class _BarSafeHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Log lines printed above the Trainer's progress bar (through ``tqdm.write``) instead of into it."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            from tqdm.auto import tqdm

            tqdm.write(self.format(record), file=self.stream)
        except Exception:  # noqa: BLE001 - logging must never raise
            self.handleError(record)


class _LogFile(logging.FileHandler):
    """``run.log``, appended to (a resume continues it), never through a link planted at its name (``ELOOP``)."""

    def _open(self) -> Any:
        fd = os.open(self.baseFilename, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o666)
        return os.fdopen(fd, "a", encoding=self.encoding, errors=self.errors)


def _setup_logging(run_dir: Path, quiet: bool) -> None:
    root = logging.getLogger("unlearnspec")
    root.setLevel(logging.DEBUG)  # run.log keeps every training step; the terminal gets INFO and up
    # The run owns its output: a handler another library put on the root logger (``basicConfig``)
    # must not echo these lines, least of all under ``--quiet``.
    root.propagate = False
    for h in list(root.handlers):
        if getattr(h, "_unlearnspec", False):
            root.removeHandler(h)
            if isinstance(h, _LogFile):
                h.close()  # an earlier run of this process: its log file is not held open for ever
    fh = _LogFile(run_dir / "run.log", encoding="utf-8")
    fh.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    fh.setLevel(logging.DEBUG)
    fh._unlearnspec = True  # type: ignore[attr-defined]
    root.addHandler(fh)
    # Python warnings (a library's FutureWarning) are lines of the run's log too: run.log keeps them, and the
    # terminal shows them unless `--quiet`, which promises no library warnings
    logging.captureWarnings(False)  # a capture left by an earlier run of this process is taken afresh: whatever
    logging.captureWarnings(True)  # replaced `warnings.showwarning` since then (a test harness) is captured too
    warned = logging.getLogger("py.warnings")
    warned.propagate = False
    for h in list(warned.handlers):
        if getattr(h, "_unlearnspec", False):
            warned.removeHandler(h)
    warned.addHandler(fh)
    if not quiet:
        sh = _BarSafeHandler(sys.stderr)
        sh.setFormatter(logging.Formatter("%(message)s"))
        sh.setLevel(logging.INFO)
        sh._unlearnspec = True  # type: ignore[attr-defined]
        root.addHandler(sh)
        warned.addHandler(sh)


# -- the entry point ----------------------------------------------------------------------------------


SPACE_WORDS = ("No space left on device", "os error 28", "StorageFull")
"""How a full disk reads in the errors that wrap ENOSPC: the OS's words (safetensors' ``SafetensorError`` quotes
them with the Rust code, ``os error 28``)."""

SHORT_WRITE = ("PytorchStreamWriter failed writing file", "file write failed", "unexpected pos")
"""torch's zip writer (``inline_container``) reports a short write without its cause; a checkpoint save cut short is
a full disk in practice."""


def _out_of_space(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it) is a full disk; torch and safetensors wrap ENOSPC in their own errors."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in NO_SPACE:
            return True
        text = str(seen)
        if any(words in text for words in SPACE_WORDS):
            return True
        if "inline_container" in text and any(words in text for words in SHORT_WRITE):
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
    rd: RunDir | None = None
    state: RunState | None = None
    done: Report | None = None

    def start() -> tuple[str, bool]:
        nonlocal plan, rd, state, done
        if options.resume is not None:
            plan, rd, state, done = _reopen(options.resume, options)
            if done is None:
                state.resumed += 1
        else:
            assert plan is not None and spec_dir is not None
            rd, state = _start(plan, spec_dir, options)
        return str(rd.root), done is not None

    # Every rank learns what the main process found before any returns or raises: a helper left waiting here for a
    # main process that has already returned (a finished run) or failed would wait forever; a failure reaches every
    # rank with its code.
    root, finished = on_main(dist, start)
    if finished:  # nothing to do: leave the finished run (and its wall time) as it is; only the main process reports
        dist.leave()
        return RunOutcome(root=Path(root), report=done, already_finished=True)
    # the main process of a launch shows a helper's failure as the run's (runtime/distributed.py)
    dist.watch(options.show_error or (lambda err: log.error("error[%s]: %s", err.code, err.message)))
    try:
        if not dist.is_main:  # the main process made (or reopened) the directory: read, never write
            plan, state = read_run(Path(root))
            rd = RunDir(Path(root))
        assert plan is not None and rd is not None and state is not None
        if dist.is_main:
            _setup_logging(rd.root, options.quiet)
        log.info("run directory: %s", rd.root)
        report = execute(plan, rd, state, quiet=options.quiet, allow_remote_code=options.allow_remote_code,
                         dist=dist)
    except Exception as err:
        # under a launch every rank posts its failure, so that the main process shows a helper's and ends the launch
        shown = dist.fail(_coded(err, Path(root)))
        if shown is err:
            raise
        raise shown from None
    finally:
        if rd is not None:
            rd.release()
    return RunOutcome(root=rd.root, report=report)


def _coded(err: Exception, root: Path) -> Exception:
    """The error a run that failed with ``err`` raises: a full disk or a write the OS refused as its coded RunError
    (the run stays resumable); any other error as it is."""
    if isinstance(err, OSError):
        if _out_of_space(err) or err.errno is not None:
            return cannot_write(Path(err.filename or root), err, resumable=root)
        return err
    if isinstance(err, UserError) or not _out_of_space(err):  # torch / safetensors wrap a full disk in their own
        return err  # errors (SafetensorError is neither a RuntimeError nor a ValueError)
    return cannot_write(root, OSError(errno.ENOSPC, "No space left on device"), resumable=root)
