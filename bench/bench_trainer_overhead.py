"""What the Hugging Face Trainer costs us, per step, and what LoRA saves in memory.

1. Step time of ``unlearn(...)`` with NPO against a plain PyTorch loop doing the same work: the same
   model, the same batches (the same dataset and collator), the same loss functions, AdamW at a
   constant rate. Goal: ratio <= 1.10. Timed from the end of one optimiser step to the end of the
   next (so logging, callbacks and data loading count), after warm-up steps; runs alternate and the
   best of several repeats is kept, since a shared machine only ever makes a run slower.
2. Peak resident memory of full fine-tuning against LoRA on a larger GPT-2 (8 layers x 768), each in
   its own process (``ru_maxrss`` is a per-process high-water mark; ``tracemalloc`` does not see
   torch's allocations), as the growth over the peak before training starts. Batch 2, so that what
   LoRA saves (gradients and AdamW moments of the base weights, ~3x the weights) is not hidden by
   activations, which LoRA does not save: backpropagation still runs through every layer.

Run: ``.venv/bin/python bench/bench_trainer_overhead.py [--steps 30] [--repeats 3] [--threads 1]``.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
import transformers
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast, TrainerCallback, set_seed

from unlearnspec.plan import LoraConfig, StoppingRule, UnlearnStage
from unlearnspec.records import Record
from unlearnspec.runtime.methods import unlearn
from unlearnspec.runtime.methods.base import score_examples
from unlearnspec.runtime.methods.data import ForgetRetainCollator, ForgetRetainDataset, encode_records
from unlearnspec.runtime.methods.losses import nll_loss, npo_loss, sequence_logprob

transformers.utils.logging.disable_progress_bar()
transformers.utils.logging.set_verbosity_error()

WORDS = ["river", "stone", "amber", "lantern", "harbor", "meadow", "copper", "violet", "tailor", "beacon", "orchard", "falcon", "quiet", "marble", "winter", "garden", "signal", "pepper", "cobalt", "ember", "willow", "summit", "canyon", "thistle"]


def synthetic_records(n: int, seed: int) -> list[Record]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        name = f"{rng.choice(WORDS).title()} {rng.choice(WORDS).title()}"
        body = " ".join(rng.choice(WORDS) for _ in range(30))
        out.append(Record(text=f"{name} number {i} was known for {body}.") if i % 2 else
                   Record(question=f"What was {name} number {i} known for?", answer=body))
    return out


def tokenizer_for(records: list[Record]) -> PreTrainedTokenizerFast:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator([t for r in records for t in r.training_texts()], trainer=trainers.BpeTrainer(
        vocab_size=1024, special_tokens=["<|endoftext|>", "<pad>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False))
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>", pad_token="<pad>")


def gpt2(tok: PreTrainedTokenizerFast, n_layer: int, n_embd: int, n_head: int) -> GPT2LMHeadModel:
    set_seed(0)
    return GPT2LMHeadModel(GPT2Config(vocab_size=len(tok), n_positions=128, n_layer=n_layer, n_embd=n_embd,
                                      n_head=n_head, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                                      eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id))


class StepClock(TrainerCallback):
    def __init__(self) -> None:
        self.times: list[float] = []

    def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        self.times.append(time.perf_counter())


def per_step(times: list[float], warmup: int) -> float:
    diffs = [b - a for a, b in zip(times[warmup:], times[warmup + 1:], strict=False)]
    return statistics.median(diffs)


def npo_stage(steps: int, **kw: Any) -> UnlearnStage:
    kw.setdefault("stopping", StoppingRule(kind="fixed_steps"))
    kw.setdefault("batch_size", 8)
    return UnlearnStage(method="npo", family="approximate", chosen_by="spec", max_steps=steps, learning_rate=1e-4,
                        **kw)


def run_trainer(model: Any, tok: Any, forget: list[Record], retain: list[Record], steps: int, out: Path,
                stage: UnlearnStage | None = None) -> list[float]:
    clock = StepClock()
    unlearn(stage or npo_stage(steps), model, tok, forget, retain, [], out, callbacks=[clock], save_steps=10 ** 6)
    return clock.times


def run_plain(model: Any, tok: Any, forget: list[Record], retain: list[Record], steps: int, seed: int = 0,
              beta: float = 0.1) -> list[float]:
    """The same work in a hand-written loop: what the Trainer is compared against."""
    set_seed(seed)
    pad = tok.pad_token_id
    f_ex, r_ex = encode_records(forget, tok), encode_records(retain, tok)
    ref = score_examples(model, f_ex, pad)[1].tolist()
    ds = ForgetRetainDataset(f_ex, r_ex, seed=seed, extra={"ref_logp": ref})
    loader = torch.utils.data.DataLoader(ds, batch_size=8, shuffle=True, collate_fn=ForgetRetainCollator(pad),
                                         generator=torch.Generator().manual_seed(seed))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.0)
    model.train()
    times: list[float] = []
    done = 0
    while done < steps:
        for b in loader:
            nf = b["forget_input_ids"].shape[0]
            logits = model(input_ids=torch.cat([b["forget_input_ids"], b["retain_input_ids"]]),
                           attention_mask=torch.cat([b["forget_attention_mask"], b["retain_attention_mask"]]),
                           use_cache=False).logits
            logp, _ = sequence_logprob(logits[:nf], b["forget_labels"])
            loss = npo_loss(logp, b["ref_logp"], beta) + nll_loss(logits[nf:], b["retain_labels"])
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)  # the Trainer clips at 1.0 too
            opt.step()
            opt.zero_grad()
            times.append(time.perf_counter())
            done += 1
            if done >= steps:
                break
    return times


def bench_overhead(steps: int, repeats: int) -> dict[str, float]:
    forget, retain = synthetic_records(64, 1), synthetic_records(256, 2)
    tok = tokenizer_for(forget + retain)
    base = gpt2(tok, n_layer=4, n_embd=128, n_head=4)  # the builtin model's size
    warmup = 3
    trainer_s, plain_s = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(repeats):  # alternate which goes first, so drift in machine load hits both
            for which in (("plain", "trainer") if i % 2 == 0 else ("trainer", "plain")):
                if which == "plain":
                    plain_s.append(per_step(run_plain(_copy(base), tok, forget, retain, steps), warmup))
                else:
                    trainer_s.append(per_step(run_trainer(_copy(base), tok, forget, retain, steps,
                                                          Path(tmp) / f"r{i}"), warmup))
        holdout = synthetic_records(32, 3)
        stopping = npo_stage(steps, stopping=StoppingRule(kind="holdout_loss", ratio=100.0, check_every=5))
        clock = StepClock()
        unlearn(stopping, _copy(base), tok, forget, retain, holdout, Path(tmp) / "stop", callbacks=[clock],
                save_steps=10 ** 6)
        with_checks = (clock.times[-1] - clock.times[warmup]) / (len(clock.times) - 1 - warmup)
    t, p = min(trainer_s), min(plain_s)
    return {"trainer_step_ms": 1e3 * t, "plain_step_ms": 1e3 * p, "ratio": t / p,
            "trainer_step_ms_with_stopping_checks": 1e3 * with_checks}


def _copy(model: Any) -> Any:
    import copy

    return copy.deepcopy(model)


def child_memory(adapter: str, steps: int) -> None:
    """In a fresh process: train a larger GPT-2 and print the peak-RSS growth in MiB."""
    forget, retain = synthetic_records(32, 1), synthetic_records(64, 2)
    tok = tokenizer_for(forget + retain)
    model = gpt2(tok, n_layer=8, n_embd=768, n_head=12)
    params = sum(p.numel() for p in model.parameters())
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    stage = npo_stage(steps, adapter=adapter, lora=LoraConfig(rank=8, alpha=16) if adapter == "lora" else None,
                      batch_size=2)
    with tempfile.TemporaryDirectory() as tmp:
        run_trainer(model, tok, forget, retain, steps, Path(tmp), stage)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"adapter": adapter, "params": params, "peak_growth_mib": (after - before) / 1024}))


def bench_memory(steps: int) -> dict[str, float]:
    out: dict[str, float] = {}
    for adapter in ("full", "lora"):
        proc = subprocess.run([sys.executable, __file__, "--child-memory", adapter, "--steps", str(steps),
                               "--threads", str(torch.get_num_threads())],
                              capture_output=True, text=True, check=True)
        row = json.loads(proc.stdout.strip().splitlines()[-1])
        out[f"{adapter}_peak_growth_mib"] = row["peak_growth_mib"]
        out["params"] = row["params"]
    out["lora_over_full"] = out["lora_peak_growth_mib"] / out["full_peak_growth_mib"]
    out["full_state_mib"] = 3 * 4 * out["params"] / 2 ** 20  # fp32 gradients + two AdamW moments
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--memory-steps", type=int, default=3)
    ap.add_argument("--child-memory", choices=("full", "lora"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.child_memory:
        child_memory(args.child_memory, args.steps)
        return
    o = bench_overhead(args.steps, args.repeats)
    print(f"per-step time, NPO, builtin-sized GPT-2 (4x128), batch 8 forget + 8 retain, {args.threads} thread(s):")
    print(f"  plain torch loop        {o['plain_step_ms']:8.2f} ms")
    print(f"  unlearn() / Trainer     {o['trainer_step_ms']:8.2f} ms")
    print(f"  ratio                   {o['ratio']:8.3f}   (goal <= 1.10)")
    print(f"  with holdout checks/5   {o['trainer_step_ms_with_stopping_checks']:8.2f} ms   (stopping rule, mean)")
    m = bench_memory(args.memory_steps)
    print(f"peak RSS growth while training, GPT-2 8x768 ({m['params'] / 1e6:.1f}M params), batch 2+2, "
          f"{args.memory_steps} steps (gradients + AdamW state of full fine-tuning: {m['full_state_mib']:.0f} MiB):")
    print(f"  full fine-tuning        {m['full_peak_growth_mib']:8.1f} MiB")
    print(f"  LoRA r=8                {m['lora_peak_growth_mib']:8.1f} MiB")
    print(f"  LoRA / full             {m['lora_over_full']:8.3f}")


if __name__ == "__main__":
    main()
