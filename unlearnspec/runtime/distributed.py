"""This process's place in a multi-process launch; a no-op (nothing imported) for a single process.

Why a failure is posted (:meth:`Distributed.fail`, :meth:`Distributed.watch`): every rank runs every stage, so an
error can strike one rank alone — a helper's stopping check, a bad batch, its share of an attack's fine-tune — while
the others wait in a collective call it will never join (the stopping rule's all-reduce, DDP's gradient all-reduce,
a barrier). The launcher ends the launch once the failed process exits, but the main process then died of the
broken collective: a gloo "Connection closed by peer" traceback, or the launcher's SIGTERM with nothing said, while
the failure itself was one helper's line. So a failing rank posts its error to the launch's store (the key-value
store its process group was made with), and a thread of the main process that watches the store shows it as the
error of the run, as a single process shows it (``error[CODE]`` and exit 2 for a user error, the traceback and exit
1 for any other), then ends the main process, which ends the launch. The main process's thread is in a collective
call that cannot be interrupted from Python (NCCL's least of all), hence the watcher, which writes the diagnostic
itself: the command line, which prints every other error, is not reached. The run folder is left as a kill leaves
it (every write is atomic), resumable. A failure of the main process needs none of this: the command line prints
it, and its exit ends the helpers.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import threading
import time
import traceback
from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar

from unlearnspec.catalog.exits import EXIT_USAGE
from unlearnspec.errors import UserError
from unlearnspec.runtime.rundir import E_NOT_A_RUN_DIR, RunError

log = logging.getLogger("unlearnspec.run")

T = TypeVar("T")

PROCESS_GROUP_TIMEOUT = timedelta(hours=6)
"""How long a rank waits in a collective call (a barrier, a broadcast) before the launch is abandoned. Some
stages run on the main process alone while the others wait for its result — retraining the exact reference,
building a built-in model, hashing and loading a large model — and torch's defaults (10 minutes for NCCL,
30 for gloo) would kill a healthy run in them. A rank that fails tells the others at once (the engine
broadcasts a failure to start; a failure after it is posted to the launch's store: the module docstring) and a
rank that dies ends the launch through the launcher, so the long wait costs nothing on a failure."""

FAILED = "unlearnspec/failed/"
"""The store key (with the rank appended) under which a failing rank posts its error, as JSON."""
SHOWN = "unlearnspec/shown"
"""Set by the main process once it has shown a helper's failure: the helper may exit (its exit ends the launch)."""
POLL_S = 0.1
GRACE_S = 0.5
"""How long the main process's watcher waits after seeing a helper's failure before ending the run with it: an
error that strikes every rank at once (a sharded evaluation raises one error everywhere) is then the main process's
own, printed by the command line."""
SHOWN_WAIT_S = 60.0
"""How long a failing helper waits for the main process to show its failure before exiting anyway."""
EXIT_TRACEBACK = 1
"""How Python exits on an uncaught error: a helper's failure that is no user error ends the launch as a traceback
would (a user error ends it with the command line's own :data:`~unlearnspec.catalog.exits.EXIT_USAGE`)."""


def _post(rank: int, err: BaseException) -> str:
    """``err`` as it travels in the store: a user error by its code, message and help; any other by its traceback."""
    if isinstance(err, UserError):
        return json.dumps({"rank": rank, "code": err.code, "message": err.message, "help": err.help})
    return json.dumps({"rank": rank, "code": None, "message": f"{type(err).__name__}: {err}",
                       "trace": "".join(traceback.format_exception(err))})


def posted_error(failure: dict[str, Any], world: int) -> BaseException:
    """A helper's posted failure as the error the main process raises or shows: a user error keeps its code."""
    where = f"raised on rank {failure['rank']} of {world} of the launch"
    if failure.get("code"):
        return UserError(failure["code"], failure["message"], [*failure.get("help", []), where])
    return RuntimeError(f"rank {failure['rank']} of {world} failed: {failure['message']}\n"
                        f"{failure.get('trace', '').rstrip()}")


def shown_text(failure: dict[str, Any], world: int) -> str:
    """The diagnostic the main process writes for a helper's failure that is not a user error: the helper's
    traceback (a user error is shown by the command line's own printer: :meth:`Distributed.watch`)."""
    return (f"error: rank {failure['rank']} of {world} failed: {failure['message']}\n"
            f"{failure.get('trace', '').rstrip()}\n")


def _store() -> Any:
    """The key-value store the default process group was made with (every rank reaches the same one)."""
    from torch.distributed import distributed_c10d

    return distributed_c10d._get_default_store()


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

            self.state = PartialState(cpu=not torch.cuda.is_available(), timeout=PROCESS_GROUP_TIMEOUT)
        self._lock = threading.Lock()
        self._failing = False  # this process is failing (its own error, or a helper's it shows)
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None
        self._show: Callable[[UserError], None] = lambda err: None  # set by :meth:`watch`

    @property
    def active(self) -> bool:
        return self.state is not None

    @property
    def is_main(self) -> bool:
        return self.state is None or bool(self.state.is_main_process)

    @property
    def device(self) -> Any:
        """The ``torch.device`` this process evaluates on.

        Under a launch, accelerate's device for this rank (``PartialState().device``: ``cuda:LOCAL_RANK``
        on GPUs, the CPU for a CPU launch), so each rank uses its own GPU; otherwise the first CUDA
        device when there is one, else the CPU."""
        import torch

        if self.state is not None:
            return torch.device(self.state.device)
        return torch.device("cuda", torch.cuda.current_device()) if torch.cuda.is_available() else torch.device("cpu")

    def place(self, model: Any) -> Any:
        """``model`` moved to :attr:`device` (in place, as ``nn.Module.to`` does); unchanged when it is there.

        Why: models are loaded on the CPU (``load_model``), and only the Trainer moves the one it trains;
        the original, the reference and a model a helper rank loaded from disk would otherwise be
        evaluated on the CPU while the GPUs wait."""
        target = self.device
        try:
            where = next(model.parameters()).device
        except StopIteration:
            return model
        if where != target:
            model.to(target)
        return model

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
        """Leave the process group once every rank has finished every stage (training and the sharded
        evaluation alike), so that the main process writes the report alone and the helpers exit.

        Whatever runs after this in the main process must not wrap a model in DDP with ranks that have
        exited: drop the process group, accelerate's cached state and the launcher's rank variables, so
        later ``TrainingArguments`` see a single process. (accelerate has no public "leave" call;
        ``_reset_state`` is what its own test-suite uses.)
        """
        if self.state is None:
            return
        from accelerate.state import AcceleratorState

        self._stop.set()  # nothing is left to fail: the watcher ends before the store it reads goes
        if self._watcher is not None:
            self._watcher.join(timeout=5 * POLL_S)

        self.state.destroy_process_group()
        AcceleratorState._reset_state(reset_partial_state=True)
        for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "GROUP_RANK", "ROLE_RANK",
                    "ROLE_WORLD_SIZE", "GROUP_WORLD_SIZE"):
            os.environ.pop(var, None)
        self.state = None

    @property
    def rank(self) -> int:
        return 0 if self.state is None else int(self.state.process_index)

    def watch(self, show: Callable[[UserError], None]) -> None:
        """On the main process of a launch, watch for a helper's failure from here on (module docstring); ``show``
        prints a user error as the command line prints every other (the runtime does not import the command line)."""
        if self.state is None or not self.is_main or self._watcher is not None:
            return
        self._show = show
        store = _store()
        self._watcher = threading.Thread(target=self._watch, args=(store,), name="unlearnspec-rank-failures",
                                         daemon=True)
        self._watcher.start()

    def _watch(self, store: Any) -> None:
        keys = [f"{FAILED}{r}" for r in range(1, self.world_size)]
        while not self._stop.wait(POLL_S):
            try:
                key = next((k for k in keys if store.check([k])), None)
                if key is None:
                    continue
                if self._stop.wait(GRACE_S):
                    return
                failure = json.loads(store.get(key))
            except Exception:  # noqa: BLE001 - the store is gone: the launch is ending anyway
                return
            with self._lock:
                if self._failing:  # the main process is failing itself: the command line prints its error
                    return
                self._failing = True
            self._end(store, failure)

    def _end(self, store: Any, failure: dict[str, Any]) -> None:
        """Show a helper's failure as the run's error, let the helper go, and end this process (module docstring)."""
        error = posted_error(failure, self.world_size)
        log.debug("the launch ends: %s", error)  # run.log keeps it too
        for handler in logging.getLogger("unlearnspec").handlers:
            handler.flush()
        if isinstance(error, UserError):
            self._show(error)
        else:
            sys.stderr.write(shown_text(failure, self.world_size))
        sys.stderr.flush()
        sys.stdout.flush()
        with contextlib.suppress(Exception):  # else the helper exits when its wait ends
            store.set(SHOWN, "1")
        os._exit(EXIT_USAGE if failure.get("code") else EXIT_TRACEBACK)

    def fail(self, err: BaseException) -> BaseException:
        """This rank failed with ``err``: post it for the main process (module docstring) and return the error to
        raise here. A helper waits until the main process has shown it (or failed itself), so that its exit, which
        ends the launch, does not cut the main process short. The main process raises its own error, unless that is
        not a user error and a helper posted one first: then it is the broken collective the helper's failure left,
        and the helper's error is the run's."""
        if self.state is None:
            return err
        with self._lock:
            showing, self._failing = self._failing, True
        self._stop.set()
        if showing:  # the watcher is ending this process with a helper's failure
            return err
        try:
            store = _store()
            store.set(f"{FAILED}{self.rank}", _post(self.rank, err))
            if self.is_main:
                if isinstance(err, UserError):
                    return err
                first = next((k for k in (f"{FAILED}{r}" for r in range(1, self.world_size)) if store.check([k])), None)
                if first is None:
                    return err
                store.set(SHOWN, "1")
                return posted_error(json.loads(store.get(first)), self.world_size)
            deadline = time.monotonic() + SHOWN_WAIT_S
            while time.monotonic() < deadline and not (store.check([SHOWN]) or store.check([f"{FAILED}0"])):
                time.sleep(POLL_S)
        except Exception:  # noqa: BLE001 - no store to post to: the launcher still ends the launch
            log.debug("could not post this rank's failure to the launch's store", exc_info=True)
        return err


def on_main(dist: Distributed, work: Callable[[], T]) -> T:
    """``work()`` as the main process does it alone, told to every rank of a launch (done as it is without one).

    Why its failure travels too: the other ranks wait in the broadcast for the result, and a main process that raised
    would leave them there until the launcher notices it has gone (gloo: "connection closed by peer"; NCCL: its
    timeout). Every rank raises instead: the main process its own error, the others a :class:`RunError` with its code
    (for one without a code, UL704: the engine's for a main process that could not start the run) and message, which
    the command line prints on one line marked with the rank."""
    if not dist.active:
        return work()
    result: Any = None
    error: BaseException | None = None
    if dist.is_main:
        try:
            result = work()
        except Exception as err:  # noqa: BLE001 - told to every rank below, then raised here
            error = err
    told = None if error is None else (getattr(error, "code", None) or E_NOT_A_RUN_DIR,
                                       getattr(error, "message", None) or str(error) or type(error).__name__)
    result, failed = dist.broadcast((result, told))
    if error is not None:
        raise error
    if failed is not None:
        raise RunError(failed[0], f"the main process failed: {failed[1]}",
                       help=["the main process's error above says why and what to do"])
    return result  # type: ignore[no-any-return]
