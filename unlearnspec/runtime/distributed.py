"""This process's place in a multi-process launch; a no-op (nothing imported) for a single process."""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

PROCESS_GROUP_TIMEOUT = timedelta(hours=6)
"""How long a rank waits in a collective call (a barrier, a broadcast) before the launch is abandoned. Some
stages run on the main process alone while the others wait for its result — retraining the exact reference,
building a built-in model, hashing and loading a large model — and torch's defaults (10 minutes for NCCL,
30 for gloo) would kill a healthy run in them. A rank that fails tells the others at once (the engine
broadcasts its error) and a rank that dies ends the launch through the launcher, so the long wait costs
nothing on a failure."""


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

        self.state.destroy_process_group()
        AcceleratorState._reset_state(reset_partial_state=True)
        for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "GROUP_RANK", "ROLE_RANK",
                    "ROLE_WORLD_SIZE", "GROUP_WORLD_SIZE"):
            os.environ.pop(var, None)
        self.state = None
