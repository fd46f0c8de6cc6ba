"""Sharded (FSDP) training on two CPU processes ends where one process ends, and saves a loadable model.

accelerate turns FSDP on only for accelerator launches (runtime/scaling.py, ``FSDP_ON_CPU``), so a
CPU ``unlearnspec run`` trains with DDP. What the FSDP path adds — sharding one unit per transformer
block, training on the shards, gathering the full weights and rebuilding one plain model for the main
process to save — is tested here with torch's own FSDP2 (``torch.distributed.fsdp.fully_shard``) on
two gloo processes: the same wrapping the runtime asks accelerate for (one unit per
``_no_split_modules`` block, :func:`~unlearnspec.runtime.scaling.block_classes`, then the root), a
few AdamW steps of the project's gradient-difference loss, then
:func:`~unlearnspec.runtime.scaling.full_state_dict` and
:func:`~unlearnspec.runtime.scaling.unsharded_model` as ``methods.unlearn`` calls them. The gathered
model must equal a one-process run of the same steps (each rank takes half of every batch of 4,
and FSDP averages the two halves' gradients, so only float rounding differs), save with
``save_pretrained`` and load back with ``from_pretrained``; with LoRA, the merged adapter too.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

_PRELUDE = r'''
import copy, json, sys
import torch
import torch.distributed as dist
import transformers
transformers.utils.logging.set_verbosity_error()
torch.set_num_threads(1)
out, rank, world, store = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
if world > 1:
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
'''
"""What every rank's script starts with: its arguments, one thread, and the process group."""

_SCRIPT = _PRELUDE + r'''
from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM
from unlearnspec.runtime.methods.losses import grad_diff_loss
from unlearnspec.runtime.scaling import block_classes, full_state_dict, unsharded_model


def train(arch, adapter):
    folder = f"{out}/{arch}-{adapter}"
    torch.manual_seed(0)
    if arch == "gpt2":  # no dropout: both runs must draw nothing at random
        model = GPT2LMHeadModel(GPT2Config(n_layer=2, n_embd=32, n_head=2, vocab_size=97, n_positions=32,
                                           resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0))
    else:
        model = LlamaForCausalLM(LlamaConfig(num_hidden_layers=2, hidden_size=32, intermediate_size=64,
                                             num_attention_heads=2, num_key_value_heads=2, vocab_size=97,
                                             max_position_embeddings=32))
    blocks = set(block_classes(model))
    if adapter == "lora":
        from peft import LoraConfig, get_peft_model
        targets = ["c_attn", "c_fc"] if arch == "gpt2" else ["q_proj", "v_proj", "up_proj"]
        model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=targets, lora_dropout=0.0,
                                                 init_lora_weights=False))
    if world == 1:  # the untrained weights (adapter merged), to size the change training makes
        init = copy.deepcopy(model)
        init = init.merge_and_unload() if adapter == "lora" else init
        torch.save({k: v.detach().clone() for k, v in init.state_dict().items()}, f"{folder}-init.pt")
    units = 0
    if world > 1:
        from torch.distributed.device_mesh import init_device_mesh
        from torch.distributed.fsdp import fully_shard
        mesh = init_device_mesh("cpu", (world,))
        for module in list(model.modules()):
            if type(module).__name__ in blocks:  # one unit per transformer block, as the runtime asks accelerate
                fully_shard(module, mesh=mesh)
                units += 1
        fully_shard(model, mesh=mesh)
    g = torch.Generator().manual_seed(1)
    forget = torch.randint(0, 97, (3, 4, 12), generator=g)  # 3 steps, a global batch of 4 sequences
    retain = torch.randint(0, 97, (3, 4, 12), generator=g)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2, weight_decay=0.01)
    share = slice(rank * 4 // world, (rank + 1) * 4 // world)  # accelerate's split_batches: consecutive rows
    model.train()
    for step in range(3):
        f, r = forget[step, share], retain[step, share]
        loss = grad_diff_loss(model(input_ids=f).logits, f, model(input_ids=r).logits, r)
        loss.backward()
        opt.step()
        opt.zero_grad()
    state = full_state_dict(model)  # every rank: a collective call
    if rank == 0:
        plain = unsharded_model(model, state) if world > 1 else model
        if adapter == "lora":
            plain = plain.merge_and_unload()
        plain.save_pretrained(folder, safe_serialization=True)
        torch.save({k: v.detach().cpu() for k, v in plain.state_dict().items()}, f"{folder}-weights.pt")
        json.dump({"units": units, "sharded": sorted({type(p).__name__ for p in model.parameters()})},
                  open(f"{folder}-info.json", "w"))


for arch, adapter in (("gpt2", "full"), ("llama", "lora")):
    train(arch, adapter)
if world > 1:  # leave together: a rank that tears gloo down while the other still talks to it can abort
    dist.barrier()
    dist.destroy_process_group()
'''


def _run(script: Path, out: Path, world: int) -> None:
    out.mkdir()
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen([sys.executable, str(script), str(out), str(r), str(world), str(out / "store")],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for r in range(world)]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-3000:]


def _fsdp_on_cpu() -> str | None:
    """Why torch cannot run FSDP2 on CPU here, or None when it can."""
    try:
        from torch.distributed.device_mesh import init_device_mesh  # noqa: F401
        from torch.distributed.fsdp import fully_shard  # noqa: F401
    except ImportError as exc:
        return f"torch {torch.__version__} has no FSDP2 (`fully_shard`): {exc}"
    if not torch.distributed.is_available() or not torch.distributed.is_gloo_available():
        return f"torch {torch.__version__} was built without gloo"
    return None


@pytest.mark.slow
def test_fsdp_on_two_processes_gathers_the_one_process_weights(tmp_path: Path) -> None:
    """Full fine-tuning of a GPT-2 and LoRA on a Llama, each sharded over two processes."""
    reason = _fsdp_on_cpu()
    if reason:
        pytest.skip(reason)
    from transformers import AutoModelForCausalLM

    script = tmp_path / "fsdp.py"
    script.write_text(_SCRIPT)
    _run(script, tmp_path / "one", 1)
    _run(script, tmp_path / "two", 2)
    for run in ("gpt2-full", "llama-lora"):
        info = json.loads((tmp_path / "two" / f"{run}-info.json").read_text())
        assert info["units"] == 2 and info["sharded"] == ["DTensor"], run  # sharded for real, one unit per block
        start = torch.load(tmp_path / "one" / f"{run}-init.pt")
        one = torch.load(tmp_path / "one" / f"{run}-weights.pt")
        two = torch.load(tmp_path / "two" / f"{run}-weights.pt")
        assert one.keys() == two.keys() == start.keys(), run
        reloaded = AutoModelForCausalLM.from_pretrained(tmp_path / "two" / run)
        for k, v in reloaded.state_dict().items():  # the saved model loads back with the gathered weights
            assert torch.equal(v, two[k]), (run, k)
        moved = max(float((one[k] - start[k]).abs().max()) for k in one)
        gap = max(float((two[k] - one[k]).abs().max()) for k in one)
        assert moved > 1e-3, run  # training changed the weights (lr 1e-2, 3 steps)
        # stated tolerance: float rounding of the split batch (two half-batch gradients averaged by FSDP
        # against one full batch), which AdamW's normalised first steps amplify for weights whose gradient
        # is near zero: 1% of the largest change training made (measured: about 0.1%)
        assert gap <= 1e-2 * moved, (run, gap, moved)


_RMU_STOP_SCRIPT = _PRELUDE + r'''
import types
from transformers import GPT2Config, GPT2LMHeadModel
from unlearnspec.plan import StoppingRule
from unlearnspec.runtime.methods.base import HoldoutStopping
from unlearnspec.runtime.methods.data import Example
from unlearnspec.runtime.methods.rmu import OriginalWeights, original_weights, train_only, trained_modules

def tiny():
    torch.manual_seed(0)
    return GPT2LMHeadModel(GPT2Config(n_layer=4, n_embd=32, n_head=2, vocab_size=97, n_positions=32,
                                      resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0))

def shard(model, blocks):
    if world > 1:
        from torch.distributed.device_mesh import init_device_mesh
        from torch.distributed.fsdp import fully_shard
        mesh = init_device_mesh("cpu", (world,))
        if blocks:
            for b in model.transformer.h:
                fully_shard(b, mesh=mesh)
        fully_shard(model, mesh=mesh)
    return model

result = {}
# the stopping rule: 65 forget examples on 2 ranks are 33 + 32 (2 batches of 32 against 1), 1 example is 1 + 0
g = torch.Generator().manual_seed(1)
model = shard(tiny(), blocks=True)
for n in (65, 1):
    ids = [torch.randint(0, 97, (int(k),), generator=g).tolist() for k in torch.randint(3, 12, (n,), generator=g)]
    stopper = HoldoutStopping(StoppingRule(kind="holdout_loss", ratio=100.0, check_every=1),
                              [Example(i, i) for i in ids], 1.0, 0, batch_size=32)
    state = types.SimpleNamespace(global_step=1, log_history=[])
    stopper.on_step_end(types.SimpleNamespace(process_index=rank, world_size=world), state,
                        types.SimpleNamespace(should_training_stop=False), model=model)
    result[f"forget_nll_{n}"] = state.log_history[0]["forget_nll"]

# RMU's retain target under FSDP: the original values swapped into the shards, the trained ones back after
probe = torch.randint(0, 97, (2, 10), generator=g)
for blocks in (True, False):  # one unit per block, and everything in the root unit (kept gathered after forward)
    model = tiny()
    with torch.no_grad():
        original = model(input_ids=probe, output_hidden_states=True).hidden_states[2]
    modules = trained_modules(model, 1)
    train_only(model, modules)
    weights = OriginalWeights(original_weights(model, modules))
    model = shard(model, blocks)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    for step in range(2):  # move the trained weights
        x = torch.randint(0, 97, (4, 10), generator=g)[rank * 4 // world:(rank + 1) * 4 // world]
        model(input_ids=x, output_hidden_states=True).hidden_states[2].pow(2).mean().backward()
        opt.step()
        opt.zero_grad()
    with torch.no_grad():
        trained = model(input_ids=probe, output_hidden_states=True).hidden_states[2]
        with weights.swapped_in(model):
            swapped = model(input_ids=probe, output_hidden_states=True).hidden_states[2]
        again = model(input_ids=probe, output_hidden_states=True).hidden_states[2]
    result[f"blocks={blocks}"] = {"moved": float((trained - original).abs().max()),
                                  "swapped_gap": float((swapped - original).abs().max()),
                                  "again_gap": float((again - trained).abs().max())}
json.dump(result, open(f"{out}/rank{rank}.json", "w"))
if world > 1:  # leave together: a rank that tears gloo down while the other still talks to it can abort
    dist.barrier()
    dist.destroy_process_group()
'''


@pytest.mark.slow
def test_fsdp_stopping_rule_and_rmu_retain_target_on_two_processes(tmp_path: Path) -> None:
    """Under FSDP every forward pass is a collective call. The stopping rule scores each rank's share of the
    forget set: with 65 examples (33 + 32: two batches of 32 against one) or one example (a rank with none) every
    rank must still make as many passes, else the launch hangs (each process here has 300 s). And RMU's retain
    target, the original values swapped into the shards, must be the original model's activations, with the
    trained values back afterwards, whether the trained weights sit in a block's unit or in the root's."""
    reason = _fsdp_on_cpu()
    if reason:
        pytest.skip(reason)
    script = tmp_path / "stop.py"
    script.write_text(_RMU_STOP_SCRIPT)
    _run(script, tmp_path / "one", 1)
    _run(script, tmp_path / "two", 2)
    one = json.loads((tmp_path / "one" / "rank0.json").read_text())
    two = [json.loads((tmp_path / "two" / f"rank{r}.json").read_text()) for r in range(2)]
    for n in (65, 1):  # every rank takes the decision on the one number, the one process's
        key = f"forget_nll_{n}"
        assert two[0][key] == two[1][key] == pytest.approx(one[key], rel=1e-5)
    for run in (one, *two):
        for blocks in (True, False):
            r = run[f"blocks={blocks}"]
            assert r["moved"] > 1e-3, r  # training moved the activations
            assert r["swapped_gap"] < 1e-5 and r["again_gap"] < 1e-6, r
