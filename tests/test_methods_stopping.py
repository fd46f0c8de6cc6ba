"""The holdout stopping rule makes as many forward passes on every rank (under FSDP each one is a collective
call); the two-process run itself is in tests/test_fsdp.py."""

from __future__ import annotations

import types

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

from unlearnspec.plan import StoppingRule
from unlearnspec.runtime.methods.base import HoldoutStopping, score_examples
from unlearnspec.runtime.methods.data import Example


def _model() -> tuple[GPT2LMHeadModel, list[int]]:
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=50, n_positions=32))
    calls: list[int] = []
    model.register_forward_hook(lambda *_: calls.append(1))
    return model, calls


def _examples(n: int) -> list[Example]:
    g = torch.Generator().manual_seed(n)
    return [Example(ids, ids) for ids in (torch.randint(0, 50, (5,), generator=g).tolist() for _ in range(n))]


@pytest.mark.parametrize(("n", "world", "batch", "passes"), [
    (65, 2, 32, 2),  # 33 + 32 examples: 2 batches and 1
    (1, 2, 32, 1),  # 1 + 0: the rank with none still makes the pass
    (64, 2, 32, 1),
    (10, 4, 2, 2),  # 3 + 3 + 2 + 2
])
def test_every_rank_makes_as_many_forward_passes(n: int, world: int, batch: int, passes: int) -> None:
    forget = _examples(n)
    reference = score_examples(_model()[0], forget, 0, batch)[0]  # one process
    for rank in range(world):  # each rank as on_step_end runs it (no process group: no reduction)
        model, calls = _model()
        stopper = HoldoutStopping(StoppingRule(kind="holdout_loss", ratio=1.0, check_every=1), forget, 1.0, 0, batch)
        state = types.SimpleNamespace(global_step=1, log_history=[])
        stopper.on_step_end(types.SimpleNamespace(process_index=rank, world_size=world), state,
                            types.SimpleNamespace(should_training_stop=False), model=model)
        assert len(calls) == passes, (rank, len(calls))
        # the padding passes are discarded: the rank's number is its own share's mean NLL (0 for none)
        share = reference[rank::world]
        expected = float(share.mean()) if share.numel() else 0.0
        assert state.log_history[0]["forget_nll"] == pytest.approx(expected, abs=1e-5)


def test_padding_passes_need_a_filler_and_leave_the_mode_as_it_was() -> None:
    model, calls = _model()
    model.train()
    nll, logp, n = score_examples(model, [], 0, 8, passes=2, filler=_examples(1)[0])
    assert len(calls) == 2 and nll.numel() == logp.numel() == n.numel() == 0 and model.training
    with pytest.raises(AssertionError):
        score_examples(model, [], 0, 8, passes=1)
