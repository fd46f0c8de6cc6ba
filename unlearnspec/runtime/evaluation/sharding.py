"""Evaluation split across the processes of a launch, gathered back in the caller's order.

Why batches, not items: every evaluation primitive (:func:`~unlearnspec.runtime.evaluation.likelihood.score_texts`,
:func:`~unlearnspec.runtime.evaluation.generation.generate_ids`,
:func:`~unlearnspec.runtime.evaluation.representation.hidden_features`) first groups its items into
length-sorted batches. Those batches are formed from all the items, exactly as one process forms
them, and then dealt round-robin to the ranks (batch ``b`` to rank ``b mod world``). Each batch is
therefore computed with the same members and the same padding whatever the process count, so a
per-item value does not depend on how many processes shared the work (a 1-process and a 2-process
run agree to float rounding of the thread count, greedy outputs exactly: ``tests/test_sharding.py``).
``torch.distributed.all_gather_object`` then gives every rank every item, so all ranks hold identical
full results and continue in step.

With no process group (one process, or after the launch's ranks have left) this is a no-op.
Every rank must call the same primitive on the same items: a collective call that only the main
process makes would wait forever.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

import torch.distributed as torch_dist

T = TypeVar("T")


def process_group() -> tuple[int, int]:
    """``(rank, world_size)`` of the initialised default process group, ``(0, 1)`` without one."""
    if torch_dist.is_available() and torch_dist.is_initialized():
        return torch_dist.get_rank(), torch_dist.get_world_size()
    return 0, 1


def map_batches(batches: Sequence[Sequence[int]], compute: Callable[[list[int]], dict[int, T]]) -> dict[int, T]:
    """``compute`` on this rank's share of ``batches``, merged with every other rank's: item index → value.

    ``compute(batch)`` returns the values of the items of one batch, keyed by item index; the result
    has the values of every batch, on every rank."""
    rank, world = process_group()
    local: dict[int, T] = {}
    for batch in list(batches)[rank::world]:
        local.update(compute(list(batch)))
    if world == 1:
        return local
    parts: list[dict[int, T] | None] = [None] * world
    torch_dist.all_gather_object(parts, local)
    merged: dict[int, T] = {}
    for part in parts:
        merged.update(part or {})
    return merged
