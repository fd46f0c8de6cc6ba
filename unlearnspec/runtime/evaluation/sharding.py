"""Evaluation split across the processes of a launch, gathered back in the caller's order.

Why batches, not items: every evaluation primitive (:func:`~unlearnspec.runtime.evaluation.likelihood.score_texts`,
:func:`~unlearnspec.runtime.evaluation.generation.generate_ids`,
:func:`~unlearnspec.runtime.evaluation.representation.hidden_features`) first groups its items into
length-sorted batches. Those batches are formed from all the items, exactly as one process forms
them, and then dealt to the ranks. Each batch is therefore computed with the same members and the
same padding whatever the process count, so a per-item value does not depend on how many processes
shared the work (a 1-process and a 2-process run agree to float rounding, greedy outputs exactly:
``tests/test_sharding.py``). ``torch.distributed.all_gather_object`` then gives every rank every
item, so all ranks hold identical full results and continue in step.

Why dealt by cost: length-sorted batches differ in cost (the first is the longest, the last is
short), and every call ends in a gather that waits for the slowest rank. Dealing batch ``b`` to rank
``b mod world`` gave rank 0 the longest batch of every call; :func:`deal` assigns the costliest batch
first to the least-loaded rank (Graham's *longest processing time first* rule, R. L. Graham, "Bounds
on multiprocessing timing anomalies", SIAM J. Appl. Math. 17(2), 1969), from a cost estimate the
primitive gives (:func:`forward_cost`). The dealing depends only on the batches, so every rank
computes the same assignment.

The per-item work that follows a model call — ROUGE scoring of the generations — is dealt out too
(:func:`map_items`: contiguous, equal shares), rather than repeated by every rank.

Why several models together (:func:`together`): a call with one batch (six forget questions) keeps
one rank busy and the other waiting, and the evaluator measures the original, the unlearned and the
reference model one after the other. Run "together", the three measurements advance in lockstep:
each runs until its next collective call, then the calls of all three are dealt as one (one deal, one
gather) — three single-batch calls become one of three batches. The measurements run as threads that
take turns (only one runs at a time; the calling thread computes the batches), so they share nothing
concurrently, and the order of every round is fixed by the code, the same on every rank.

With no process group (one process, or after the launch's ranks have left) all of this is the plain
loop. Every rank must call the same primitive on the same items: a collective call that only the
main process makes would wait forever. :data:`STATS` counts what this rank computed and how long it
waited in the gathers (the wait includes the time the slower ranks took).

Why a failure is gathered too: the ranks compute different batches, so an error can strike one rank
alone (running out of memory on the costliest batch, the one rank 0 is dealt). A rank that raised
before the gather left the others waiting in it, or — had it caught the error and gone on — answered
their gather with its next call's values. So each rank's share is computed to its end or its first
error, the error travels in the gather with the values, and then every rank raises it — the same
exception type and message, with a note naming the failing rank (:class:`ShardFailed` with its text
where it cannot travel) — so a caller that catches it takes the same branch on every rank. All ranks
stay in step, as on one process, where the error is raised as it happens.
"""

from __future__ import annotations

import pickle
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
import torch.distributed as torch_dist

T = TypeVar("T")
X = TypeVar("X")
K = TypeVar("K")

#: The fixed cost of one forward call (Python dispatch, kernel launches), in token positions: on the
#: built-in model a decode step of 4 rows costs about a third of one of 32 rows.
FORWARD_OVERHEAD = 16


@dataclass
class ShardStats:
    """What this rank did in sharded evaluation since the last :meth:`reset`."""

    calls: int = 0  # collective calls (primitives and per-item maps)
    batches: int = 0  # batches (or item shares) this rank computed
    total_batches: int = 0  # batches of all ranks together
    compute_seconds: float = 0.0  # spent computing this rank's share
    gather_seconds: float = 0.0  # spent in the gathers, waiting for slower ranks included

    def reset(self) -> None:
        self.calls = self.batches = self.total_batches = 0
        self.compute_seconds = self.gather_seconds = 0.0

    def summary(self) -> str:
        return (f"{self.batches} of {self.total_batches} batches in {self.calls} calls, {self.compute_seconds:.1f} s "
                f"computing, {self.gather_seconds:.1f} s in gathers")


STATS = ShardStats()


class ShardFailed(RuntimeError):
    """Another rank's share of a sharded call failed with an error that cannot travel between processes (it does not
    unpickle); raised on every rank but that one, with the error's text. An error that travels is raised as itself
    on every rank, with a note naming the rank, so that an ``except`` clause takes the same branch everywhere."""

    def __init__(self, rank: int, error: str) -> None:
        super().__init__(f"rank {rank} failed in its share of a sharded evaluation call: {error}")
        self.rank = rank


@dataclass
class _Failure:
    """A rank's error, as it travels in the gather: the exception itself where it survives pickling, else its text."""

    rank: int
    error: BaseException | str


def _failure(rank: int, exc: BaseException) -> _Failure:
    try:
        pickle.loads(pickle.dumps(exc))  # some exceptions pickle but do not unpickle (required init arguments)
        return _Failure(rank, exc)
    except Exception:  # noqa: BLE001 - any pickling problem: send the text
        return _Failure(rank, f"{type(exc).__name__}: {exc}")


@contextmanager
def outermost(registry: dict[int, list[Any]], model: Any, save: Callable[[], T],
              restore: Callable[[T], None]) -> Iterator[None]:
    """``save()`` at the first of the nested entries for one ``model`` object, ``restore`` of what it saved at the
    exit of the last, whatever order the entries and exits come in. Under a launch several measurements run
    interleaved (:func:`together`) and two of them may measure one model object (the unlearned model and the
    served system share it): each saving what it found on entry, the second saved the first's stand-in, and
    whichever exited last left that on the model. ``registry``: one per kind of state, keyed by ``id(model)``."""
    key = id(model)
    held = registry.get(key)
    if held is None:
        held = registry[key] = [model, 0, save()]
    held[1] += 1
    try:
        yield
    finally:
        held[1] -= 1
        if held[1] == 0:
            del registry[key]
            restore(held[2])


def process_group() -> tuple[int, int]:
    """``(rank, world_size)`` of the initialised default process group, ``(0, 1)`` without one."""
    if torch_dist.is_available() and torch_dist.is_initialized():
        return torch_dist.get_rank(), torch_dist.get_world_size()
    return 0, 1


def forward_cost(rows: int, width: int, new_tokens: int = 0) -> float:
    """Estimated cost of a batch, in token positions: one forward over ``rows × width`` tokens, then
    ``new_tokens`` decode steps of ``rows`` tokens each, every forward carrying :data:`FORWARD_OVERHEAD`."""
    return rows * width + FORWARD_OVERHEAD + new_tokens * (rows + FORWARD_OVERHEAD)


def deal(costs: Sequence[float], world: int) -> list[list[int]]:
    """The batch indices each rank computes: costliest first, each to the least-loaded rank (ties:
    the lower batch index first, the lower rank). Deterministic, so every rank derives the same."""
    if world < 1:
        raise ValueError("world must be at least 1")
    loads = [0.0] * world
    shares: list[list[int]] = [[] for _ in range(world)]
    for b in sorted(range(len(costs)), key=lambda b: (-float(costs[b]), b)):
        r = min(range(world), key=lambda r: (loads[r], r))
        shares[r].append(b)
        loads[r] += float(costs[b])
    return [sorted(s) for s in shares]


def _gather(local: dict[K, T], world: int, error: BaseException | None = None) -> dict[K, T]:
    """Every rank's values merged, on every rank; where a rank failed (``error``: this rank's), every rank raises
    its error once all have arrived (module docstring)."""
    rank, _ = process_group()
    t0 = time.perf_counter()
    parts: list[tuple[dict[K, T], _Failure | None] | None] = [None] * world
    torch_dist.all_gather_object(parts, (local, None) if error is None else ({}, _failure(rank, error)))
    STATS.gather_seconds += time.perf_counter() - t0
    if error is not None:
        raise error
    merged: dict[K, T] = {}
    for part in parts:
        values, failed = part if part is not None else ({}, None)
        if failed is not None:
            if isinstance(failed.error, BaseException):  # the same error on every rank: callers stay in step
                failed.error.add_note(f"raised on rank {failed.rank} of {world}, in its share of a sharded "
                                      "evaluation call")
                raise failed.error
            raise ShardFailed(failed.rank, failed.error)
        merged.update(values)
    return merged


def _compute_share(work: Callable[[], None]) -> BaseException | None:
    """Run this rank's share; its first error is returned (to travel in the gather), not raised."""
    t0 = time.perf_counter()
    try:
        work()
    except Exception as exc:  # noqa: BLE001 - raised on every rank after the gather (module docstring)
        return exc
    finally:
        STATS.compute_seconds += time.perf_counter() - t0
    return None


def map_batches(batches: Sequence[Sequence[int]], compute: Callable[[list[int]], dict[int, T]],
                costs: Sequence[float] | None = None) -> dict[int, T]:
    """``compute`` on this rank's share of ``batches``, merged with every other rank's: item index → value.

    ``compute(batch)`` returns the values of the items of one batch, keyed by item index; the result
    has the values of every batch, on every rank. ``costs`` (one per batch; default: its size) decide
    the dealing (:func:`deal`)."""
    rank, world = process_group()
    todo = [list(b) for b in batches]
    weights = [float(c) for c in costs] if costs is not None else [float(len(b)) for b in todo]
    step = _turn()
    if step is not None:  # inside together(): dealt with the other measurements' calls
        return step.ask(_Request(todo, compute, weights, None, None))  # type: ignore[no-any-return]
    mine = deal(weights, world)[rank]
    STATS.calls += 1
    STATS.batches += len(mine)
    STATS.total_batches += len(todo)
    local: dict[int, T] = {}

    def work() -> None:
        for b in mine:
            local.update(compute(todo[b]))

    if world == 1:  # the plain loop: an error is raised where it happens
        t0 = time.perf_counter()
        work()
        STATS.compute_seconds += time.perf_counter() - t0
        return local
    error = _compute_share(work)
    return _gather(local, world, error)


def map_items(items: Sequence[X], fn: Callable[[X], T]) -> list[T]:
    """``[fn(x) for x in items]``, each rank computing one contiguous, equal share (for per-item work
    such as scoring generations, which every rank would otherwise repeat). ``fn`` must be
    deterministic: every rank receives every value."""
    rank, world = process_group()
    n = len(items)
    if world == 1 or n < 2:
        return [fn(x) for x in items]
    step = _turn()
    if step is not None:
        return step.ask(_Request([], None, [], list(items), fn))  # type: ignore[no-any-return]
    bounds = [n * r // world for r in range(world + 1)]
    STATS.calls += 1
    STATS.batches += 1
    STATS.total_batches += world
    local: dict[int, T] = {}

    def work() -> None:
        for i in range(bounds[rank], bounds[rank + 1]):
            local[i] = fn(items[i])

    error = _compute_share(work)
    merged = _gather(local, world, error)
    return [merged[i] for i in range(n)]


# -- several measurements in lockstep ---------------------------------------------------------------

_local = threading.local()


@dataclass
class _Request:
    """One collective call a measurement made: batches to compute, or items to map."""

    batches: list[list[int]]
    compute: Callable[[list[int]], dict[int, Any]] | None
    costs: list[float]
    items: list[Any] | None
    fn: Callable[[Any], Any] | None


@dataclass
class _Raise:
    """The reply to a request whose round failed: the task raises ``error`` at its call."""

    error: BaseException


class _Lockstep:
    """Threads that take turns: each runs until its next collective call (:meth:`ask`) or its end."""

    def __init__(self, tasks: Sequence[Callable[[], Any]]) -> None:
        n = len(tasks)
        self.tasks = list(tasks)
        self.results: list[Any] = [None] * n
        self.errors: list[BaseException | None] = [None] * n
        self.requests: list[_Request | None] = [None] * n
        self.replies: list[Any] = [None] * n
        self.done = [False] * n
        self.go = [threading.Semaphore(0) for _ in range(n)]
        self.back = threading.Semaphore(0)

    def _body(self, i: int) -> None:
        _local.turn = (self, i)
        self.go[i].acquire()
        try:
            self.results[i] = self.tasks[i]()
        except BaseException as exc:  # raised in the caller's thread once every task has ended
            self.errors[i] = exc
        finally:
            self.done[i] = True
            self.back.release()

    def ask(self, i: int, request: _Request) -> Any:
        self.requests[i] = request
        self.back.release()  # hand the turn back to the caller's thread
        self.go[i].acquire()  # resumed with the reply
        reply = self.replies[i]
        if isinstance(reply, _Raise):  # the round failed (on some rank): raised in the task, which unwinds
            raise reply.error
        return reply

    def run(self) -> list[Any]:
        threads = [threading.Thread(target=self._body, args=(i,), daemon=True) for i in range(len(self.tasks))]
        for t in threads:
            t.start()
        while True:
            for i in range(len(self.tasks)):  # each in turn, in a fixed order, to its next call or its end
                if not self.done[i] and self.requests[i] is None:
                    self.go[i].release()
                    self.back.acquire()
            live = [i for i in range(len(self.tasks)) if not self.done[i]]
            if not live:
                break
            try:
                replies: list[Any] = _serve([self.requests[i] for i in live])  # type: ignore[misc]
            except Exception as exc:  # noqa: BLE001 - every live task gets it, so each unwinds (its finally blocks run)
                replies = [_Raise(exc)] * len(live)
            for i, reply in zip(live, replies, strict=True):
                self.replies[i], self.requests[i] = reply, None
        for t in threads:
            t.join()
        for err in self.errors:
            if err is not None:
                raise err
        return self.results


class _Turn:
    def __init__(self, lock: _Lockstep, index: int) -> None:
        self.lock, self.index = lock, index

    def ask(self, request: _Request) -> Any:
        return self.lock.ask(self.index, request)


def _turn() -> _Turn | None:
    held = getattr(_local, "turn", None)
    return _Turn(*held) if held is not None else None


def _serve(requests: Sequence[_Request]) -> list[Any]:
    """One round: every request's batches dealt together by cost, every request's items split evenly,
    this rank's share computed (here, in the caller's thread), one gather."""
    rank, world = process_group()
    units = [(r, b) for r, req in enumerate(requests) for b in range(len(req.batches))]
    mine = deal([requests[r].costs[b] for r, b in units], world)[rank]
    STATS.calls += 1
    STATS.batches += len(mine)
    STATS.total_batches += len(units)
    local: dict[tuple[int, int], Any] = {}

    def work() -> None:
        with torch.no_grad():  # the threads' own no_grad does not reach this thread
            for u in mine:
                r, b = units[u]
                compute = requests[r].compute
                assert compute is not None
                for item, value in compute(requests[r].batches[b]).items():
                    local[(r, item)] = value
        for r, req in enumerate(requests):
            if req.items is not None and req.fn is not None:
                n = len(req.items)
                for i in range(n * rank // world, n * (rank + 1) // world):
                    local[(r, i)] = req.fn(req.items[i])

    STATS.batches += sum(1 for req in requests if req.items is not None)
    STATS.total_batches += world * sum(1 for req in requests if req.items is not None)
    error = _compute_share(work)
    merged = _gather(local, world, error)
    out: list[Any] = []
    for r, req in enumerate(requests):
        got = {key[1]: v for key, v in merged.items() if key[0] == r}
        out.append([got[i] for i in range(len(req.items))] if req.items is not None else got)
    return out


def together(tasks: Sequence[Callable[[], T]]) -> list[T]:
    """``[task() for task in tasks]``, the tasks' collective calls dealt round by round as one.

    For measurements of several models that make the same kind of calls (see the module docstring).
    Without a process group, with one task, or inside another ``together``, the plain loop."""
    _, world = process_group()
    if world == 1 or len(tasks) < 2 or getattr(_local, "turn", None) is not None:
        return [task() for task in tasks]
    return _Lockstep(tasks).run()
