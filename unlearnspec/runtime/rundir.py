"""The run directory: its state file, its exclusive creation, and the errors a run raises.

Light module (pydantic and the standard library): the CLI and the pipeline both use it, and it
imports neither torch nor the pipeline.

Exclusive: a new run directory is made with ``os.mkdir`` and claimed with a lock file created with
``O_CREAT | O_EXCL``; of two runs started into one folder at the same moment exactly one gets the lock,
the other UL707. While a run executes it also holds an ``flock`` on that file, which the OS drops when
the process dies, so a killed run can be resumed at once while two live resumes cannot interleave.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import fcntl
import hashlib
import os
from pathlib import Path
from typing import IO, Any

from pydantic import BaseModel, Field, ValidationError

from unlearnspec.errors import UserError
from unlearnspec.io import atomic_write_text

# The run codes the runtime raises (stable; pages in the catalog and docs/rules/). The command line raises
# UL701, UL705, UL706, UL710 and UL711 itself; the model-loading codes (RT1xx) are in runtime/loading.py,
# UL703 (an unreadable plan) in plan.py.
E_STALE_PLAN = "UL702"
E_NOT_A_RUN_DIR = "UL704"
E_RUN_DIR_EXISTS = "UL707"
E_NEEDS_OUT = "UL708"
E_CANNOT_WRITE = "UL709"

LOCK_NAME = "run.lock"
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

    format_version: str = "1.0"
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


def describe_os_error(err: OSError) -> str:
    """``No space left on device`` as a diagnostic says it: lower case, no file name repeated."""
    return (err.strerror or str(err)).lower()


def cannot_write(path: Path, err: OSError, *, resumable: Path | None = None) -> RunError:
    """The diagnostic for a write that failed: a full disk, a read-only place, a path that is a file."""
    what = describe_os_error(err)
    verb = "write" if err.errno in NO_SPACE | WRITE_ERRORS else "use"
    help: list[str] = []
    if err.errno in NO_SPACE:
        help.append("free some space on that file system")
    elif err.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        help.append("choose a folder you can write to with `--out DIR`")
    if resumable is not None:
        help.append(f"then continue the run with `unlearnspec run --resume {resumable}`: finished stages are kept")
    return RunError(E_CANNOT_WRITE, f"cannot {verb} `{path}`: {what}", help)


class RunDir:
    def __init__(self, root: Path) -> None:
        # absolute: run.json records the paths of what the stages made (the model, checkpoints) below it, and a
        # resume from another working folder must find those, never another folder of the same relative name
        self.root = Path(os.path.abspath(root))
        self._lock: IO[bytes] | None = None

    @property
    def plan_path(self) -> Path:
        return self.root / "plan.json"

    @property
    def state_path(self) -> Path:
        return self.root / "run.json"

    @property
    def lock_path(self) -> Path:
        return self.root / LOCK_NAME

    def objective_dir(self, name: str) -> Path:
        d = self.root / "objectives" / safe_name(name)
        d.mkdir(parents=True, exist_ok=True)
        return d

    def save_state(self, state: RunState) -> None:
        atomic_write_text(self.state_path, state.model_dump_json(indent=2) + "\n")

    def load_state(self) -> RunState:
        try:
            return RunState.model_validate_json(self.state_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as err:
            raise RunError(E_NOT_A_RUN_DIR, f"cannot read `{self.state_path}`: {err}") from None
        except (ValidationError, ValueError, RecursionError):
            raise RunError(E_NOT_A_RUN_DIR, f"`{self.state_path}` is damaged: it is not a run state this "
                           "unlearnspec wrote",
                           ["the run directory was edited or its disk failed; start a new run from the plan "
                            f"(`unlearnspec run {self.plan_path}`)"]) from None

    # -- exclusive use -----------------------------------------------------------------------------

    def create_exclusive(self) -> None:
        """Make the folder (or claim an existing empty one) for this run alone, or raise UL707/UL709."""
        root = self.root
        try:
            root.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.mkdir(root)
            except FileExistsError:
                if not root.is_dir():
                    raise RunError(E_CANNOT_WRITE, f"`{root}` exists and is not a folder",
                                   ["choose another `--out DIR`"]) from None
                if any(p.name != LOCK_NAME for p in root.iterdir()):
                    raise _exists(root) from None
            try:
                fd = os.open(self.lock_path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                raise _exists(root, busy=True) from None
        except OSError as err:
            raise cannot_write(root, err) from None
        self._lock = os.fdopen(fd, "wb")
        fcntl.flock(self._lock.fileno(), fcntl.LOCK_EX)
        self._lock.write(f"{os.getpid()}\n".encode())
        self._lock.flush()

    def hold(self) -> None:
        """Lock an existing run directory for a resume; UL707 when another live process holds it."""
        try:
            self._lock = open(self.lock_path, "ab")  # noqa: SIM115 - held for the process's lifetime
        except OSError as err:
            raise cannot_write(self.lock_path, err) from None
        try:
            fcntl.flock(self._lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.close()
            self._lock = None
            raise RunError(E_RUN_DIR_EXISTS, f"run directory `{self.root}` is in use by another unlearnspec run",
                           ["wait for it to finish; a killed run releases the folder at once"]) from None

    def abandon(self) -> None:
        """Undo :meth:`create_exclusive` when the run could not even write its plan copy."""
        for path in (self.plan_path, self.state_path, self.lock_path):
            with contextlib.suppress(OSError):
                path.unlink()
        self.release()
        with contextlib.suppress(OSError):
            self.root.rmdir()

    def release(self) -> None:
        if self._lock is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._lock.fileno(), fcntl.LOCK_UN)
                self._lock.close()
            self._lock = None


def _exists(root: Path, busy: bool = False) -> RunError:
    if busy:
        return RunError(E_RUN_DIR_EXISTS, f"run directory `{root}` is being created by another run",
                        ["choose another --out; if no run is using it (a run killed before it wrote its plan), "
                         "delete the folder"])
    return RunError(E_RUN_DIR_EXISTS, f"run directory `{root}` already exists and is not empty",
                    ["runs never overwrite; choose another --out, or --resume it"])
