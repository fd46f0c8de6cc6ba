"""The run directory: its state file, its exclusive creation, and the errors a run raises.

Light module (pydantic and the standard library): the CLI and the pipeline both use it, and it
imports neither torch nor the pipeline.

Exclusive: a new run directory is made with ``os.mkdir`` and claimed with a lock file created with
``O_CREAT | O_EXCL``; of two runs started into one folder at the same moment exactly one gets the lock,
the other UL707. While a run executes it also holds an ``flock`` on that file, which the OS drops when
the process dies, so a killed run can be resumed at once while two live resumes cannot interleave. A folder
whose start was cut short (its lock and perhaps ``plan.json``, no ``run.json``, no live holder) is taken over
by the next run started into it: nothing of a run was there.

Planted: a run makes no symbolic link, FIFO or device in its folder, so a resume refuses a folder holding one
(:meth:`RunDir.refuse_planted`): a link there could lead a write into the source model or a read out of another
run. Every file the run writes is confined to the folder (``within``, :mod:`unlearnspec.io`), and the lock is
opened without following a link. What a write a kill cut short left in the folder (a temporary file, a half-saved
model) is removed by the resume, under the lock (:meth:`RunDir.clear_leftovers`).

Where: ``run.json`` names what a stage made inside the run folder (the unlearned model) relative to it, and
every such path is resolved against the folder being read, so a run folder that was moved or copied resumes
with its own model, never another folder's (:meth:`RunDir.load_state`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import fcntl
import hashlib
import os
import shutil
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from pydantic import BaseModel, Field, ValidationError

from unlearnspec.errors import UserError
from unlearnspec.inputs import safetensors_whole
from unlearnspec.io import atomic_write_text, fsync_dir, leftover, make_folders
from unlearnspec.markdown import code_span
from unlearnspec.records import folder_files, sha256_path

if TYPE_CHECKING:
    from unlearnspec.plan import Plan

# The run codes the runtime raises (stable; pages in the catalog and docs/rules/). The command line raises
# UL701, UL705, UL706, UL710 and UL711 itself; the model-loading codes (RT1xx) are in runtime/loading.py,
# UL703 (an unreadable plan) in plan.py.
E_STALE_PLAN = "UL702"
E_NOT_A_RUN_DIR = "UL704"
E_RUN_DIR_EXISTS = "UL707"
E_NEEDS_OUT = "UL708"
E_CANNOT_WRITE = "UL709"
E_RESUME_CHANGES_RUN = "UL714"

LOCK_NAME = "run.lock"
#: what a start writes before ``run.json``: a folder holding only these (and their temporary files) never began
START_FILES = frozenset({LOCK_NAME, "plan.json"})
#: the stage details that name what a stage made: stored relative to the run folder when they lie inside it
OUTPUT_KEYS = ("model_dir",)
STATE_VERSION = "1.1"  # 1.1: outputs relative to the run folder, the environment, the saved model's sizes and hash
#: errno values that mean "the disk (or quota) is full": the run stops, resumable.
NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT})
WRITE_ERRORS = frozenset({errno.EROFS, errno.EACCES, errno.EPERM, errno.EEXIST, errno.EISDIR, errno.ENOTDIR})


class RunError(UserError):
    """A run that cannot start or continue, with help lines; the CLI prints it as a diagnostic (exit 2)."""


class StageState(BaseModel):
    status: str = "pending"  # pending | running | done | failed
    started_at: str | None = None
    finished_at: str | None = None
    detail: dict[str, Any] = Field(default_factory=dict)


class RunState(BaseModel):
    """``run.json``: where the run stands; enough to resume it."""

    format_version: str = STATE_VERSION
    plan_hash: str
    spec_dir: str  # absolute folder the plan's relative paths resolve against
    started_at: str
    finished_at: str | None = None
    stages: dict[str, StageState] = Field(default_factory=dict)
    resumed: int = 0
    plan_provenance: str = "rederived"  # "planned" | "rederived" | "trusted" (--trust-plan)
    # where the finished run records its requests, chosen when it started (a resume keeps it): the ledger
    # folder, absolute, or ``no_ledger``; both unset in a run.json written before the choice was kept
    ledger: str | None = None
    no_ledger: bool = False
    # where the run was started (execute.py): library versions, threads, processes, device, the original weights'
    # sha256; a resume elsewhere is refused (UL714). None in a run.json written before it was recorded
    environment: dict[str, Any] | None = None

    def stage(self, key: str) -> StageState:
        return self.stages.setdefault(key, StageState())


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def safe_name(name: str, limit: int = 64) -> str:
    """A single, harmless path component for ``name`` (an objective name from a spec).

    Separators, ``..``, control characters and leading dots cannot survive, so a name such as
    ``"../../x"`` or ``"/etc/x"`` stays one folder inside the run directory. A name that had to change
    gets a short hash of the original, so two names that sanitise alike still get two folders.
    """
    cleaned = "".join(c if (c.isascii() and c.isalnum()) or c in "-_." else "_" for c in name)
    cleaned = cleaned.lstrip("._-")[:limit].rstrip(".") or "objective"
    if cleaned != name:
        cleaned = f"{cleaned}-{hashlib.sha256(name.encode('utf-8')).hexdigest()[:8]}"
    return cleaned


def default_run_dir(plan: Plan) -> Path:
    """``runs/<objective>-<plan hash>-<time>``; the objective's name is sanitised into one component.

    Torch-free, so that ``run --processes N`` names the folder once, before it starts the processes, which
    must all write to the same one."""
    first = safe_name(plan.objectives[0].objective.name) if plan.objectives else "run"
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    base = Path("runs") / f"{first}-{plan.plan_hash[:8]}-{stamp}"
    out, i = base, 1
    while out.exists():
        i += 1
        out = base.with_name(f"{base.name}-{i}")
    return out


def describe_os_error(err: OSError) -> str:
    """``No space left on device`` as a diagnostic says it: lower case, no file name repeated."""
    return (err.strerror or str(err)).lower()


def cannot_write(path: Path, err: OSError, *, resumable: Path | None = None, resuming: bool = False) -> RunError:
    """The diagnostic for a write that failed: a full disk, a read-only place, a path that is a file. ``resuming``:
    the run folder of a ``--resume`` (which takes no ``--out``)."""
    what = describe_os_error(err)
    verb = "write" if err.errno in NO_SPACE | WRITE_ERRORS else "use"
    help: list[str] = []
    if err.errno in NO_SPACE:
        help.append("free some space on that file system")
    elif err.errno in (errno.EROFS, errno.EACCES, errno.EPERM) and resuming:
        help.append("a run continues in its own folder, which must be writable: make it writable, or copy the run "
                    "folder to a place you can write to and `--resume` the copy")
    elif err.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        help.append("choose a folder you can write to with `--out DIR`")
    if resumable is not None:
        help.append(f"then continue the run with `unlearnspec run --resume {resumable}`: finished stages are kept")
    return RunError(E_CANNOT_WRITE, f"cannot {verb} {code_span(path)}: {what}", help)


class RunDir:
    def __init__(self, root: Path) -> None:
        # absolute: run.json records the paths of what the stages made (the model, checkpoints) below it, and a
        # resume from another working folder must find those, never another folder of the same relative name
        self.root = Path(os.path.abspath(root))
        self._lock: IO[bytes] | None = None
        self._made = False  # create_exclusive made the folder (abandon removes only a folder it made)

    @property
    def plan_path(self) -> Path:
        return self.root / "plan.json"

    @property
    def state_path(self) -> Path:
        return self.root / "run.json"

    @property
    def lock_path(self) -> Path:
        return self.root / LOCK_NAME

    def shown(self, path: str | Path) -> str:
        """``path`` as a run's records name it: relative to this folder when it lies inside it (so that a moved run
        folder still names its own files), else as given."""
        where, base = Path(path).resolve(), self.root.resolve()
        return where.relative_to(base).as_posix() if where.is_relative_to(base) else str(path)

    def objective_dir(self, name: str) -> Path:
        d = self.root / "objectives" / safe_name(name)
        make_folders(d)
        for folder in (d.parent, d):
            if folder.is_symlink():  # planted while the run held the folder: never written through
                raise _planted(self.root, folder)
        return d

    def save_state(self, state: RunState) -> None:
        """Write ``run.json``: what a stage made inside the run folder is named relative to it (in memory the
        paths stay absolute, in this folder)."""
        stored = state.model_copy(deep=True)
        stored.format_version = STATE_VERSION
        for st in stored.stages.values():
            for key in OUTPUT_KEYS:
                value = st.detail.get(key)
                if isinstance(value, str) and os.path.isabs(value) and Path(value).is_relative_to(self.root):
                    st.detail[key] = Path(value).relative_to(self.root).as_posix()
        atomic_write_text(self.state_path, stored.model_dump_json(indent=2) + "\n", within=self.root)

    def load_state(self) -> RunState:
        """``run.json``, with what the stages made resolved against this folder (UL704 when it names a model of
        another run folder: a folder moved or copied from where an earlier unlearnspec wrote absolute paths)."""
        try:
            state = RunState.model_validate_json(self.state_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as err:
            raise RunError(E_NOT_A_RUN_DIR, f"cannot read {code_span(self.state_path)}: {err}") from None
        except (ValidationError, ValueError, RecursionError):
            raise RunError(E_NOT_A_RUN_DIR, f"{code_span(self.state_path)} is damaged: it is not a run state this "
                           "unlearnspec wrote",
                           ["the run directory was edited or its disk failed; start a new run from the plan "
                            f"(`unlearnspec run {self.plan_path}`)"]) from None
        for name, st in state.stages.items():
            for key in OUTPUT_KEYS:
                value = st.detail.get(key)
                if isinstance(value, str):
                    st.detail[key] = self._resolve(name, value)
        return state

    def _resolve(self, stage: str, value: str) -> str:
        """A stage output's path as ``run.json`` records it, in this folder: a relative one below it; an absolute
        one (written before 1.1) only where it lies inside this folder, or outside every run folder (a retrained
        model in the cache)."""
        if not os.path.isabs(value):
            path = Path(os.path.normpath(self.root / value))
            if not path.is_relative_to(self.root):
                raise RunError(E_NOT_A_RUN_DIR, f"{code_span(self.state_path)} is damaged: stage {code_span(stage)} "
                               f"names {code_span(value)}, outside the run folder",
                               ["start a new run from the plan "
                                f"({code_span(f'unlearnspec run {self.plan_path}')})"])
            return str(path)
        path = Path(value)
        here = os.path.realpath(self.root)
        if path.is_relative_to(self.root) or Path(os.path.realpath(path)).is_relative_to(here):
            return value
        parts = path.parts
        if len(parts) >= 5 and parts[-4] == "objectives" and parts[-2:] == ("unlearn", "model"):
            origin = Path(*parts[:-4])
            raise RunError(E_NOT_A_RUN_DIR, f"{code_span(self.state_path)} names the model stage {code_span(stage)} "
                           f"made as {code_span(value)}, in another run folder: this folder was moved or copied from "
                           f"{code_span(origin)}",
                           [f"an earlier unlearnspec recorded the path whole; resume the run in {code_span(origin)}, "
                            "where it was made, or start a new run from the plan "
                            f"({code_span(f'unlearnspec run {self.plan_path} --out NEW')})",
                            "a resume never takes the model of another run folder"])
        return value

    # -- exclusive use -----------------------------------------------------------------------------

    def create_exclusive(self) -> None:
        """Make the folder (or claim an existing empty one, or one whose start was cut short) for this run alone,
        or raise UL707/UL709."""
        root = self.root
        try:
            root.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.mkdir(root)
                fsync_dir(root.parent)
                self._made = True
            except FileExistsError:
                if not root.is_dir():
                    raise RunError(E_CANNOT_WRITE, f"{code_span(root)} exists and is not a folder",
                                   ["choose another `--out DIR`"]) from None
                names = [p.name for p in root.iterdir()]
                if names and not (LOCK_NAME in names and all(_start_file(n) for n in names)):
                    raise _exists(root) from None  # a plan.json without our lock may be the user's: never removed
                if names and self._take_over():
                    return
                if any(root.iterdir()):  # the lock went away under us: its run is abandoning the folder
                    raise _exists(root, busy=True) from None
            try:
                fd = os.open(self.lock_path, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW, 0o644)
            except FileExistsError:
                raise _exists(root, busy=True) from None
            fsync_dir(root)
        except OSError as err:
            self._undo()
            raise cannot_write(root, err) from None
        try:  # a full disk can refuse even these bytes: never leave an empty lock that blocks every retry (UL707)
            self._lock = os.fdopen(fd, "wb")
            fcntl.flock(self._lock.fileno(), fcntl.LOCK_EX)
            _write_pid(self._lock.fileno())
        except OSError as err:
            if self._lock is None:
                os.close(fd)
            self.release()
            with contextlib.suppress(OSError):
                self.lock_path.unlink()
            self._undo()
            raise cannot_write(self.lock_path, err) from None

    def _take_over(self) -> bool:
        """Claim a folder whose start was cut short (a kill before ``run.json``): its lock names a process that no
        longer holds it. ``False``: there is no lock to take over after all (claim it anew); UL707: a live run
        holds it, or is creating it."""
        try:
            fd = os.open(self.lock_path, os.O_RDWR | os.O_NOFOLLOW)
        except FileNotFoundError:
            return False
        except OSError as err:
            if err.errno == errno.ELOOP:  # a link planted where the lock is: never opened, let alone truncated
                raise _planted(self.root, self.lock_path) from None
            raise
        lock = os.fdopen(fd, "r+b")
        try:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            raise _exists(self.root, busy=True) from None
        # Its creator holds the lock from before it writes its process id to after run.json exists; an empty lock is
        # a creator between the two (or killed there), which this lock must not overtake.
        mine, named = os.fstat(lock.fileno()), _stat(self.lock_path)
        started = not all(_start_file(p.name) for p in self.root.iterdir())
        if not lock.read().strip() or started or named is None or (named.st_dev, named.st_ino) != (mine.st_dev,
                                                                                                    mine.st_ino):
            lock.close()
            raise _exists(self.root, busy=True)
        try:
            lock.seek(0)
            lock.truncate()
            _write_pid(lock.fileno())
        except OSError:
            lock.close()
            raise
        self._lock = lock
        self._clear_start()
        return True

    def _clear_start(self) -> None:
        """Remove what a start cut short left beside the lock (its plan copy, a temporary file)."""
        for p in self.root.iterdir():
            if p.name != LOCK_NAME and _start_file(p.name):
                with contextlib.suppress(OSError):
                    p.unlink()  # a link itself, never what it names
        fsync_dir(self.root)

    def _undo(self) -> None:
        if self._made:
            with contextlib.suppress(OSError):
                self.root.rmdir()
            self._made = False

    def hold(self) -> None:
        """Lock an existing run directory for a resume; UL707 when another live process holds it."""
        try:  # held for the process's lifetime; a link planted at the lock is not followed
            self._lock = open(self.lock_path, "ab", opener=_no_follow)  # noqa: SIM115
        except OSError as err:
            if err.errno == errno.ELOOP:
                raise _planted(self.root, self.lock_path) from None
            raise cannot_write(self.lock_path, err, resuming=True) from None
        try:
            fcntl.flock(self._lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.close()
            self._lock = None
            raise RunError(E_RUN_DIR_EXISTS,
                           f"run directory {code_span(self.root)} is in use by another unlearnspec run",
                           ["wait for it to finish; a killed run releases the folder at once"]) from None

    def refuse_planted(self) -> None:
        """UL704 when the folder holds a symbolic link, a FIFO, a socket or a device anywhere in it: a run makes
        none, so one was planted (or the folder was copied with them), and following it could write into the
        source model or read another run's outputs."""
        for folder, dirs, files in os.walk(self.root):
            for name in sorted([*dirs, *files]):
                path = Path(folder) / name
                mode = os.lstat(path).st_mode
                if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                    raise _planted(self.root, path)

    def clear_leftovers(self) -> list[Path]:
        """Remove what writes a kill cut short left in the folder: temporary files (``.NAME.XXXX.tmp``), a model
        folder half written or half replaced (``NAME.partial``, ``NAME.old``), checkpoints half saved
        (``.staging``). Only under the lock, in a folder :meth:`refuse_planted` has checked. Returns them."""
        gone: list[Path] = []
        named = self.root / "objectives"  # its folders are named after objectives (`v1.old` is one): only temporaries
        for folder, dirs, files in os.walk(self.root):
            for name in [*dirs, *files]:
                ours = name.startswith(".") if Path(folder) == named else True
                if ours and (leftover(name) or (name == ".staging" and name in dirs)):
                    path = Path(folder) / name
                    if name in dirs:
                        shutil.rmtree(path, ignore_errors=True)
                    else:
                        with contextlib.suppress(FileNotFoundError):
                            path.unlink()
                    gone.append(path)
            dirs[:] = [d for d in dirs if Path(folder, d) not in gone]
        for parent in {p.parent for p in gone}:
            fsync_dir(parent)
        return gone

    def abandon(self) -> None:
        """Undo :meth:`create_exclusive` when the run could not even write its plan copy: the folder itself is
        removed only when this run made it (an empty ``--out`` folder the user made stays)."""
        for path in (self.plan_path, self.state_path, self.lock_path):
            with contextlib.suppress(OSError):
                path.unlink()
        self.release()
        self._undo()

    def release(self) -> None:
        if self._lock is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._lock.fileno(), fcntl.LOCK_UN)
                self._lock.close()
            self._lock = None


def _start_file(name: str) -> bool:
    """Whether ``name`` is what a start writes before ``run.json`` is in place (or a temporary file of ``plan.json``
    or of ``run.json``: a kill before its rename leaves one, and still no stage ran)."""
    return name in START_FILES or (name.startswith((".plan.json.", ".run.json.")) and name.endswith(".tmp"))


def _no_follow(path: str, flags: int) -> int:
    """An ``open`` opener that never follows a link at the name (``ELOOP``)."""
    return os.open(path, flags | os.O_NOFOLLOW, 0o644)


def _stat(path: Path) -> os.stat_result | None:
    try:
        return os.stat(path)
    except OSError:
        return None


def _write_pid(fd: int) -> None:
    data = f"{os.getpid()}\n".encode()
    if os.write(fd, data) != len(data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def cut_short(root: Path) -> bool:
    """Whether ``root`` holds only what a start writes before ``run.json`` (its lock, perhaps ``plan.json`` or a
    temporary file of either): a start killed before the run began, which the next start takes over."""
    try:
        names = [p.name for p in root.iterdir()]
    except OSError:
        return False
    return LOCK_NAME in names and all(_start_file(n) for n in names)


def not_started(root: Path) -> bool:
    """Whether ``root`` holds a start cut short: ``plan.json`` but no ``run.json`` (killed between the two)."""
    return (root / "plan.json").is_file() and not (root / "run.json").exists()


# -- what a stage saved: its sizes and hash in run.json, checked on resume -------------------------------------


def model_record(folder: Path) -> dict[str, Any]:
    """What a stage records in ``run.json`` of the model folder it saved: each file's size and the folder's
    sha256 (:func:`~unlearnspec.records.sha256_path`, the hash the report names it by)."""
    files = {f.relative_to(folder).as_posix(): f.stat().st_size for f in folder_files(folder)}
    return {"model_files": files, "model_sha256": sha256_path(folder)}


def model_problem(folder: Path, detail: Mapping[str, Any]) -> str | None:
    """Why the model folder a finished stage saved is no longer what it saved, or ``None``: missing, a file missing
    or of another size, a safetensors file cut short, or (where ``run.json`` records it) another sha256. A stage
    recorded before 1.1 has no sizes or hash: its folder is checked for whole safetensors files and a config."""
    if not folder.is_dir():
        return "is missing"
    files = detail.get("model_files")
    if isinstance(files, dict):
        for rel, size in sorted(files.items()):
            try:
                found = (folder / rel).stat().st_size
            except OSError:
                return f"has lost {code_span(rel)}"
            if found != size:
                return f"has {code_span(rel)} at {found} bytes, not the {size} it was saved with"
    weights = sorted(folder.glob("*.safetensors"))
    if not weights or not (folder / "config.json").is_file():
        return "has no config.json or no safetensors weights"
    for w in weights:
        if not safetensors_whole(w):
            return f"has {code_span(w.name)} cut short (its safetensors header and size disagree)"
    sha = detail.get("model_sha256")
    if isinstance(sha, str) and sha256_path(folder) != sha:
        return f"no longer hashes to {sha[:12]}…, the sha256 it was saved with"
    return None


def _planted(root: Path, path: Path) -> RunError:
    again = f"unlearnspec run {root / 'plan.json'} --out NEW"
    what = "a symbolic link" if path.is_symlink() else "not a plain file or folder"
    return RunError(E_NOT_A_RUN_DIR, f"{code_span(path)} in the run folder {code_span(root)} is {what}: a run makes "
                    "none, so it was put there after the run began", [
                        "a run never writes through one (it could lead into the source model or another run); "
                        "remove it if you know what it is, then resume; or start a new run from the plan "
                        f"({code_span(again)})"])


def _exists(root: Path, busy: bool = False) -> RunError:
    if busy:
        return RunError(E_RUN_DIR_EXISTS, f"run directory {code_span(root)} is being created by another run",
                        ["choose another --out; if no run is using it (a run killed at the very moment it claimed "
                         "the folder), delete the folder"])
    return RunError(E_RUN_DIR_EXISTS, f"run directory {code_span(root)} already exists and is not empty",
                    ["runs never overwrite; choose another --out, or --resume it if it is a run folder"])
