"""The rough wall-time estimate of a plan (docs/planning.md, "Estimate"): a cost model in FLOPs and per-step
overheads, as an upper bound."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from unlearnspec.builtin.recipe import RECIPE, RECIPES
from unlearnspec.compiler.ast import Objective
from unlearnspec.compiler.datafiles import records_of
from unlearnspec.compiler.models import recipe_steps
from unlearnspec.plan import (
    AttackStage,
    Estimate,
    EvaluateStage,
    ObjectivePlan,
    ReferenceStage,
    RelearnAttack,
    UnlearnStage,
)

#: Documented per-step constants of the rough wall-time estimate (docs/planning.md, "Estimate").
#: Calibrated on the built-in model (about 1M parameters), whose recipe trains in about half a minute
#: on two CPU cores; a GPU is assumed to sustain a fixed fraction of an H100's fp32/tf32 rate.
CPU_FLOPS = 5e10


GPU_FLOPS = 5e13


CPU_STEP_OVERHEAD_S = 0.02


GPU_STEP_OVERHEAD_S = 0.02


CPU_LOAD_BYTES_PER_S = 2e8


GPU_LOAD_BYTES_PER_S = 1e9


CPU_STARTUP_S = 2.0


GPU_STARTUP_S = 10.0


TOKENS_PER_CHAR = 0.3


MIN_TOKENS, MAX_TOKENS = 8, 256


@dataclass
class _Workload:
    """What the plan makes the model do, in items and tokens (device-independent)."""

    parameters: int
    train: list[tuple[int, int, int, float]] = field(default_factory=list)  # (steps, batch, tokens, flops/param/token)
    forward: list[tuple[int, int]] = field(default_factory=list)  # (items, tokens)
    generate: list[int] = field(default_factory=list)  # items generated (each max_new_tokens long)
    loads: int = 0

    def seconds(self, flops: float, overhead: float, load_rate: float, startup: float, eval_batch: int,
                new_tokens: int) -> float:
        p = self.parameters
        t = startup + self.loads * (4 * p / load_rate)
        for steps, batch, tokens, k in self.train:
            t += steps * (overhead + k * p * batch * tokens / flops)
        for items, tokens in self.forward:
            t += math.ceil(items / eval_batch) * overhead + 2 * p * items * tokens / flops
        for items in self.generate:
            t += math.ceil(items / eval_batch) * new_tokens * overhead + 2 * p * items * new_tokens / flops
        return t


def _shape(paths: Sequence[str], base: Path) -> tuple[int, int, int, int]:
    """(texts, mean tokens per text, QA records, paraphrases) of a data set."""
    recs = [r for p in paths for r in records_of(p, base)]
    texts = [t for r in recs for t in r.training_texts()]
    tokens = (sum(len(t) for t in texts) / len(texts) * TOKENS_PER_CHAR) if texts else 32
    tokens = int(min(max(tokens, MIN_TOKENS), MAX_TOKENS))
    return len(texts), tokens, sum(r.is_qa for r in recs), sum(len(r.paraphrases) for r in recs if r.is_qa)


def estimate(op: ObjectivePlan, obj: Objective, base: Path) -> Estimate | None:
    """Rough CPU and GPU seconds for the objective's stages, as an upper bound (every step runs).

    Training costs 6·P·tokens FLOPs a step (4·P with LoRA: no weight gradients for the frozen
    matrices), a forward pass 2·P·tokens, a generated token 2·P plus a per-step overhead; the
    constants above turn FLOPs into seconds. ``None`` when the model's size is unknown (a hub id).
    """
    p = op.model.parameters
    if not p:
        return None
    d = op.data
    shapes = {role: _shape(getattr(d, role), base) for role in ("forget", "retain", "neighbors", "holdout", "test")}
    work = _Workload(parameters=p, loads=1)
    ref = next(s for s in op.stages if isinstance(s, ReferenceStage))
    unl = next((s for s in op.stages if isinstance(s, UnlearnStage)), None)  # None: an audit trains nothing
    ev = next(s for s in op.stages if isinstance(s, EvaluateStage))
    atk = next((s for s in op.stages if isinstance(s, AttackStage)), None)
    f_n, f_tok, f_qa, f_para = shapes["forget"]
    n_recipe = 0
    recipe = _Workload(parameters=p)  # the built-in recipe always trains on CPU (bit-identical weights)
    if op.model.kind == "builtin" and (ref.strategy == "retrain" or (unl is not None and unl.method == "retrain")):
        name = op.model.source if op.model.source in RECIPES else str(RECIPE["name"])  # a hand-edited plan
        n_recipe = recipe_steps(name)
        recipe.train.append((n_recipe, int(RECIPES[name]["train"]["batch_size"]), 48, 6.0))
    if ref.strategy == "model":
        work.loads += 1
    if unl is None:
        work.loads += 1  # the given checkpoint
    elif unl.method not in ("retrain", "filter"):
        k = 4.0 if unl.adapter == "lora" else 6.0
        batches = 2 if unl.retain_weight > 0 and d.retain else 1
        work.train.append((unl.max_steps, unl.batch_size * batches, f_tok, k))
        if unl.stopping.kind == "holdout_loss":
            checks = unl.max_steps // max(unl.stopping.check_every, 1)
            work.forward.append((checks * f_n, f_tok))
            work.forward.append((shapes["holdout"][0], shapes["holdout"][1]))
    # Evaluation: each evaluated model scores every data set and answers every probe.
    per_model_gen = 0
    templates = next((len(pr.templates) for pr in ev.probes if pr.name == "adversarial"), 0)
    for pr in ev.probes:
        per_model_gen += {"direct": f_qa, "paraphrased": f_para, "adversarial": f_qa * templates,
                          "in_context": f_qa}.get(pr.name, 0)
    per_model_gen += f_n + shapes["retain"][2] + shapes["neighbors"][2] + shapes["test"][2]
    for _ in ev.models:
        for role in ("forget", "retain", "neighbors", "holdout", "test"):
            n, tok, _, _ = shapes[role]
            work.forward.append((n, tok))
        work.generate.append(per_model_gen)
    if atk is not None:
        for a in atk.attacks:
            if isinstance(a, RelearnAttack):
                work.train.append((a.steps, a.batch_size, f_tok, 6.0))
            work.forward.append((f_n, f_tok))
            work.generate.append(f_qa + f_n)
    on_cpu = recipe.seconds(CPU_FLOPS, CPU_STEP_OVERHEAD_S, CPU_LOAD_BYTES_PER_S, 0.0, ev.eval_batch_size,
                            ev.max_new_tokens)
    cpu = on_cpu + work.seconds(CPU_FLOPS, CPU_STEP_OVERHEAD_S, CPU_LOAD_BYTES_PER_S, CPU_STARTUP_S,
                                ev.eval_batch_size, ev.max_new_tokens)
    gpu = on_cpu + work.seconds(GPU_FLOPS, GPU_STEP_OVERHEAD_S, GPU_LOAD_BYTES_PER_S, GPU_STARTUP_S,
                                ev.eval_batch_size, ev.max_new_tokens)
    size = f"{p / 1e6:.1f}M" if p < 1e9 else f"{p / 1e9:.1f}B"
    basis = (f"upper bound (every step of max_steps, every probe) for a {size}-parameter model: training "
             f"6·P·tokens FLOPs a step (4·P with LoRA), forward 2·P·tokens, at {CPU_FLOPS:.0e} FLOP/s on CPU and "
             f"{GPU_FLOPS:.0e} FLOP/s on one GPU, plus per-step overheads of {CPU_STEP_OVERHEAD_S * 1000:g} ms / "
             f"{GPU_STEP_OVERHEAD_S * 1000:g} ms")
    if n_recipe:
        basis += f"; includes retraining the built-in recipe ({n_recipe} steps, always on CPU)"
    return Estimate(cpu_seconds=float(math.ceil(cpu)), gpu_seconds=float(math.ceil(gpu)), basis=basis)

