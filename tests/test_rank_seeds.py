"""Each rank of a launch draws its own dropout masks; one process draws exactly what it drew before.

Every rank used to seed torch with the stage's seed alone (the Trainer's ``set_seed(args.seed)``), so a model
with dropout drew the same masks on every rank: the ranks' micro-batches were not independent samples of the
dropout noise. Under a launch each rank now reseeds at the start of training with accelerate's
``set_seed(seed, device_specific=True)`` (seed + process index: :class:`~unlearnspec.runtime.methods.base.RankSeeds`);
a single process is left as it was, so its numbers (the demo's) do not move.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch")

_SCRIPT = r'''
import json, os, sys
import torch
torch.set_num_threads(1)
import transformers
transformers.utils.logging.disable_progress_bar(); transformers.utils.logging.set_verbosity_error()
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast
from unlearnspec.plan import StoppingRule, UnlearnStage
from unlearnspec.records import Record
from unlearnspec.runtime.methods import data as data_mod, unlearn

WORDS = ["alpha", "beta", "gamma", "delta", "eta", "theta", "iota", "kappa"]
vocab = {"<eos>": 0, "<pad>": 1, "<unk>": 2, **{w: i + 3 for i, w in enumerate(WORDS)}}
tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
tok.pre_tokenizer = pre_tokenizers.Whitespace()
fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<eos>", pad_token="<pad>", unk_token="<unk>")
torch.manual_seed(0)  # the same initial weights on every rank
model = GPT2LMHeadModel(GPT2Config(vocab_size=len(vocab), n_positions=16, n_layer=1, n_embd=16, n_head=2,
                                   resid_pdrop=0.5, embd_pdrop=0.5, attn_pdrop=0.5, eos_token_id=0, bos_token_id=0,
                                   pad_token_id=1))
# four texts of one length: every micro-batch has the same shape, so a mask differs only by the draw
forget = [Record(text=" ".join(WORDS[i:i + 4])) for i in range(4)]
out = sys.argv[1]
rank = os.environ.get("RANK", "0")
masks, seen = [], []
def record(module, inputs, output):
    if module.training:
        masks.append((output == 0).flatten().tolist())
model.transformer.drop.register_forward_hook(record)
getitem = data_mod.ForgetRetainDataset.__getitem__
def spy(self, i):
    seen.append(i)
    return getitem(self, i)
data_mod.ForgetRetainDataset.__getitem__ = spy
stage = UnlearnStage(method="grad_ascent", family="approximate", chosen_by="spec", max_steps=4, learning_rate=1e-3,
                     batch_size=2, stopping=StoppingRule(kind="fixed_steps"), seed=5)
try:
    r = unlearn(stage, model, fast, forget, [], [], out, save_steps=100)
finally:
    data_mod.ForgetRetainDataset.__getitem__ = getitem  # as it was (the script may run inside a test process)
with open(f"{out}/rank{rank}.json", "w") as fh:
    json.dump({"masks": masks, "seen": seen}, fh)
torch.save({k: v.detach().cpu() for k, v in r.model.state_dict().items()}, f"{out}/rank{rank}.pt")
if int(os.environ.get("WORLD_SIZE", "1")) > 1:
    from accelerate import PartialState
    PartialState().destroy_process_group()
'''


def _script(tmp_path: Path) -> Path:
    script = tmp_path / "dropout.py"
    script.write_text(_SCRIPT)
    return script


@pytest.mark.slow
def test_each_rank_draws_its_own_dropout_masks(tmp_path: Path) -> None:
    import torch

    out = tmp_path / "out"
    accelerate = Path(sys.executable).with_name("accelerate")
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([str(accelerate), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
                           "--mixed_precision", "no", "--dynamo_backend", "no", str(_script(tmp_path)), str(out)],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    ranks: list[dict[str, Any]] = [json.loads((out / f"rank{i}.json").read_text()) for i in range(2)]
    assert len(ranks[0]["masks"]) == len(ranks[1]["masks"]) == 4  # one training forward a step on each rank
    for step, (m0, m1) in enumerate(zip(ranks[0]["masks"], ranks[1]["masks"], strict=True)):
        assert len(m0) == len(m1) and m0 != m1, f"step {step + 1}: both ranks drew the same dropout mask"
    # the data order is still the one shared order: together the ranks see every example each epoch (2 steps)
    for rank in ranks:
        assert len(rank["seen"]) == 4
    assert sorted(ranks[0]["seen"][:2] + ranks[1]["seen"][:2]) == [0, 1, 2, 3]
    # and the replicas stay in step: DDP averages the gradients, whatever each rank's masks
    w0, w1 = (torch.load(out / f"rank{i}.pt") for i in range(2))
    assert all(torch.equal(w0[k], w1[k]) for k in w0)


def test_one_process_draws_what_it_drew_before(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               one_thread: None) -> None:
    """On one process nothing is reseeded: the masks and the trained weights are those of a run without
    :class:`RankSeeds` (the script run in this process, once as it is and once with the callback made a no-op)."""
    import runpy

    import torch

    from unlearnspec.runtime.methods import base

    monkeypatch.delenv("WORLD_SIZE", raising=False)
    script = _script(tmp_path)
    runs = {}
    for name in ("now", "without"):
        if name == "without":
            monkeypatch.setattr(base.RankSeeds, "on_train_begin", lambda *args, **kwargs: None)
        out = tmp_path / name
        monkeypatch.setattr(sys, "argv", [str(script), str(out)])
        runpy.run_path(str(script), run_name="__main__")
        runs[name] = (json.loads((out / "rank0.json").read_text()), torch.load(out / "rank0.pt"))
    (now, w_now), (without, w_without) = runs["now"], runs["without"]
    assert len(now["masks"]) == 4 and any(any(m) for m in now["masks"])  # dropout did drop
    assert now["masks"] == without["masks"]
    assert w_now.keys() == w_without.keys() and all(torch.equal(w_now[k], w_without[k]) for k in w_now)
