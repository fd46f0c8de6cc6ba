"""Each rank evaluates on its own device (runtime/distributed.py ``Distributed.device`` / ``place``).

Under ``accelerate launch`` on several GPUs the models the runtime loads (original, reference, a
helper rank's copy of the unlearned model) used to stay on the CPU. The choice of device is tested
here with stand-ins for accelerate's state and for CUDA, so it runs on a machine without a GPU; the
CPU path is checked for real (no change: the same objects, on the CPU).
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

torch = pytest.importorskip("torch")

from unlearnspec.runtime.distributed import Distributed  # noqa: E402


class _Model:
    """Records where ``.to`` sends it, like an ``nn.Module`` whose weights start on ``where``."""

    def __init__(self, where: str) -> None:
        self.weight = SimpleNamespace(device=torch.device(where))
        self.moves: list[Any] = []

    def parameters(self) -> Any:
        return iter([self.weight])

    def to(self, device: Any) -> _Model:
        self.moves.append(device)
        self.weight.device = torch.device(device)
        return self


def _launched(device: str) -> Distributed:
    d = Distributed()  # WORLD_SIZE unset in the tests: no process group is made
    d.world_size, d.state = 2, SimpleNamespace(device=torch.device(device), is_main_process=False)
    return d


@pytest.mark.parametrize("rank_device", ["cuda:0", "cuda:1", "cuda:3"])
def test_a_launched_rank_uses_accelerates_device_for_it(rank_device: str) -> None:
    d = _launched(rank_device)
    assert d.device == torch.device(rank_device)
    original, reference = _Model("cpu"), _Model("cpu")
    assert d.place(original) is original and original.moves == [torch.device(rank_device)]
    d.place(reference)
    assert reference.weight.device == torch.device(rank_device)
    already = _Model(rank_device)  # the unlearned model the Trainer left on this rank's GPU stays put
    d.place(already)
    assert already.moves == []


def test_a_single_process_uses_the_current_cuda_device(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    d = Distributed()
    assert not d.active and d.device == torch.device("cuda", 0)
    m = _Model("cpu")
    d.place(m)
    assert m.moves == [torch.device("cuda", 0)]


def test_on_cpu_nothing_moves(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    d = Distributed()
    assert d.device == torch.device("cpu")
    fake = _Model("cpu")
    assert d.place(fake) is fake and fake.moves == []
    cpu_launch = _launched("cpu")  # two CPU processes (gloo): still the CPU
    assert cpu_launch.device == torch.device("cpu")
    real = torch.nn.Linear(2, 2)
    before = real.weight.data_ptr()
    assert d.place(real) is real and real.weight.device.type == "cpu" and real.weight.data_ptr() == before
    assert d.place(torch.nn.Identity()) is not None  # no parameters: nothing to move


def test_a_launch_waits_for_the_stages_the_main_process_runs_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    """The process group is made with a timeout longer than torch's defaults (10 minutes for NCCL): the other
    ranks wait in a broadcast while the main process alone retrains a reference or hashes a large model."""
    from datetime import timedelta

    import accelerate.state
    import torch.distributed as torch_dist

    from unlearnspec.runtime.distributed import PROCESS_GROUP_TIMEOUT

    made: list[dict[str, object]] = []

    class Stop(Exception):
        pass

    def init_process_group(**kwargs: object) -> None:
        made.append(kwargs)
        raise Stop  # nothing to connect to here: what accelerate asked torch for is what is checked

    monkeypatch.setattr(torch_dist, "init_process_group", init_process_group)
    monkeypatch.setattr(torch_dist, "is_initialized", lambda: False)
    for var, value in {"WORLD_SIZE": "2", "RANK": "0", "LOCAL_RANK": "0", "MASTER_ADDR": "127.0.0.1",
                       "MASTER_PORT": "29999", "OMP_NUM_THREADS": str(torch.get_num_threads())}.items():
        monkeypatch.setenv(var, value)
    saved = dict(accelerate.state.PartialState._shared_state)
    accelerate.state.PartialState._shared_state.clear()
    try:
        with pytest.raises(Stop):
            Distributed()
    finally:
        accelerate.state.PartialState._shared_state.clear()
        accelerate.state.PartialState._shared_state.update(saved)
    assert made and made[0]["timeout"] == PROCESS_GROUP_TIMEOUT >= timedelta(hours=1)
