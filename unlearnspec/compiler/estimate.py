"""The rough wall-time estimate of a plan (docs/planning.md, "Estimate"): a cost model in FLOPs and per-step
overheads, as an upper bound.

It counts what the runtime does (``runtime/checks.py``, ``runtime/attack_checks.py``, ``runtime/measure.py``): every
evaluated model (the original too: the output checks' positive control reads it) and the served system behind an
output filter score every data set and answer every probe; the representation probe reads each model's hidden states
and fits a linear probe at each of :data:`~unlearnspec.catalog.metrics.REPRESENTATION_LAYERS` layers; a relearning
attack fine-tunes the unlearned model *and* the reference, scores each before and after (its damage check) and asks
each the forget questions it holds out; a quantization attack quantizes the original and the reference alike with the
unlearned model (like with like) and asks each quantized model the forget questions; checks measured at the release
precision evaluate the quantized unlearned model and the quantized reference again."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from unlearnspec.builtin.recipe import RECIPE, RECIPES
from unlearnspec.catalog.attacks import RETAIN_SAMPLE
from unlearnspec.catalog.methods import WEIGHT_BYTES_PER_PARAMETER
from unlearnspec.catalog.metrics import REPRESENTATION_LAYERS
from unlearnspec.compiler.ast import Objective
from unlearnspec.compiler.datafiles import records_of
from unlearnspec.compiler.models import recipe_steps
from unlearnspec.plan import (
    AttackStage,
    Estimate,
    EvaluateStage,
    ObjectivePlan,
    QuantizeAttack,
    ReferenceStage,
    RelearnAttack,
    UnlearnStage,
)
from unlearnspec.records import Record

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

PROBE_FIT_FLOPS = 1e9
"""The rate scikit-learn's logistic regression (lbfgs, on CPU whatever the device) sustains: 0.1-1.4 GFLOP/s measured
on two cores for 200-2000 inputs of 128-1024 features."""

PROBE_FIT_ITERATIONS = 100
"""The lbfgs iterations a representation probe's fit is counted at (each a pass over its inputs for every class)."""

WIDTH_PER_DEPTH = 64
"""A transformer's hidden width over its depth, for the width the probe reads (``P ≈ 12·layers·width²``): the plan
records the parameter count, not the width."""


@dataclass
class _Workload:
    """What the plan makes the model do, in items and tokens (device-independent)."""

    parameters: int
    train: list[tuple[int, int, int, float]] = field(default_factory=list)  # (steps, batch, tokens, flops/param/token)
    forward: list[tuple[int, int]] = field(default_factory=list)  # (items, tokens)
    generate: list[int] = field(default_factory=list)  # items generated (each max_new_tokens long)
    fits: list[float] = field(default_factory=list)  # FLOPs of each representation probe fit (scikit-learn, CPU)
    loads: int = 0  # model loads and attacked copies (each P parameters of WEIGHT_BYTES_PER_PARAMETER)

    def seconds(self, flops: float, overhead: float, load_rate: float, startup: float, eval_batch: int,
                new_tokens: int) -> float:
        p = self.parameters
        t = startup + self.loads * (WEIGHT_BYTES_PER_PARAMETER * p / load_rate)
        for steps, batch, tokens, k in self.train:
            t += steps * (overhead + k * p * batch * tokens / flops)
        for items, tokens in self.forward:
            t += math.ceil(items / eval_batch) * overhead + 2 * p * items * tokens / flops
        for items in self.generate:
            t += math.ceil(items / eval_batch) * new_tokens * overhead + 2 * p * items * new_tokens / flops
        return t + sum(self.fits) / PROBE_FIT_FLOPS


@dataclass(frozen=True)
class _Shape:
    """A data set as the cost model sees it."""

    texts: int  # training texts (a document, a question with its answer)
    tokens: int  # mean tokens per text
    qa: int  # question-answer records
    paraphrases: int  # their paraphrased questions


def _tokens(texts: Sequence[str]) -> int:
    tokens = (sum(len(t) for t in texts) / len(texts) * TOKENS_PER_CHAR) if texts else 32
    return int(min(max(tokens, MIN_TOKENS), MAX_TOKENS))


def _shape(recs: Sequence[Record]) -> _Shape:
    texts = [t for r in recs for t in r.training_texts()]
    return _Shape(len(texts), _tokens(texts), sum(r.is_qa for r in recs),
                  sum(len(r.paraphrases) for r in recs if r.is_qa))


def _probe_fit_flops(parameters: int, train: Sequence[Record], test: Sequence[Record], attribute: str) -> float:
    """One representation probe fit: :data:`PROBE_FIT_ITERATIONS` passes of a multinomial logistic regression over
    the inputs that carry the attribute (an upper bound: the runtime keeps only those that lead to it), for each of
    its values, on features of the model's width."""
    n = sum(attribute in r.attributes for r in train)
    classes = len({r.attributes[attribute] for r in [*train, *test] if attribute in r.attributes})
    width = (WIDTH_PER_DEPTH * parameters / 12) ** (1 / 3)
    return 2.0 * PROBE_FIT_ITERATIONS * n * width * max(classes, 2)


def workload(op: ObjectivePlan, base: Path) -> tuple[_Workload, _Workload]:
    """What the objective's stages make models do: the built-in recipe's retraining (always on CPU) and the rest."""
    p = op.model.parameters or 0
    d = op.data
    records = {role: [r for path in getattr(d, role) for r in records_of(path, base)]
               for role in ("forget", "retain", "neighbors", "holdout", "test")}
    shapes = {role: _shape(recs) for role, recs in records.items()}
    work = _Workload(parameters=p, loads=1)
    ref = next(s for s in op.stages if isinstance(s, ReferenceStage))
    unl = next((s for s in op.stages if isinstance(s, UnlearnStage)), None)  # None: an audit trains nothing
    ev = next(s for s in op.stages if isinstance(s, EvaluateStage))
    atk = next((s for s in op.stages if isinstance(s, AttackStage)), None)
    forget = shapes["forget"]
    f_tok = forget.tokens
    recipe = _Workload(parameters=p)  # the built-in recipe always trains on CPU (bit-identical weights)
    if op.model.kind == "builtin" and (ref.strategy == "retrain" or (unl is not None and unl.method == "retrain")):
        name = op.model.source if op.model.source in RECIPES else str(RECIPE["name"])  # a hand-edited plan
        recipe.train.append((recipe_steps(name), int(RECIPES[name]["train"]["batch_size"]), 48, 6.0))
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
            work.forward.append((checks * forget.texts, f_tok))
            work.forward.append((shapes["holdout"].texts, shapes["holdout"].tokens))
    has_reference = ref.strategy != "holdout"
    served = unl is not None and unl.family == "system_suppression"  # the model behind its output filter

    # Evaluation: each evaluated model scores every data set and answers every probe; the original model too (the
    # output checks' positive control), and the served system answers them again through its filter.
    templates = next((len(pr.templates) for pr in ev.probes if pr.name == "adversarial"), 0)
    probe_gen = sum({"direct": forget.qa, "paraphrased": forget.paraphrases, "adversarial": forget.qa * templates,
                     "in_context": forget.qa}.get(pr.name, 0) for pr in ev.probes)
    direct = any(pr.name == "direct" for pr in ev.probes)
    per_model_gen = probe_gen + forget.texts + shapes["retain"].qa + shapes["neighbors"].qa + shapes["test"].qa
    attribute = ev.representation_probe
    probe_in = records["retain"] + records["neighbors"]
    fit = _probe_fit_flops(p, probe_in, records["forget"], attribute) if attribute else 0.0

    def evaluate() -> None:
        for role in ("forget", "retain", "neighbors", "holdout", "test"):
            work.forward.append((shapes[role].texts, shapes[role].tokens))
        work.generate.append(per_model_gen)
        if attribute:  # one pass for the hidden states of every probed layer, a fit per layer
            work.forward.append((len(probe_in) + len(records["forget"]), f_tok))
            work.fits.extend([fit] * REPRESENTATION_LAYERS)

    for _ in ev.models:
        evaluate()
    if served:
        work.generate.append(per_model_gen)
    attacks = atk.attacks if atk is not None else []
    if attacks and not direct:  # the attacks read every model's answers to the forget questions
        work.generate.extend([forget.qa] * len(ev.models))
    attacked = ["unlearned", "reference"] if has_reference else ["unlearned"]
    for a in attacks:
        if isinstance(a, RelearnAttack):
            # the unlearned model and the reference, each fine-tuned on a copy; the damage check scores the records
            # fine-tuned on and a retain (else neighbour) sample before and after; the held-out forget questions
            trained = shapes["neighbors"] if records["neighbors"] else shapes["retain"]
            trained = trained if a.data == "related" else forget
            # the damage check scores at most RETAIN_SAMPLE retain (else neighbour) records, one part of each
            pool = shapes["retain"] if records["retain"] else shapes["neighbors"]
            sampled = min(RETAIN_SAMPLE, pool.qa or pool.texts)
            for _ in attacked:
                work.loads += 1
                work.train.append((a.steps, a.batch_size, trained.tokens, 6.0))
                work.forward.extend([(trained.texts, trained.tokens)] * 2 + [(sampled, pool.tokens)] * 2)
                work.generate.append(forget.qa)
    release = {str(c.params.get("precision")) for c in op.checks
               if c.model == "attacked" and c.probe == "quantize" and c.metric != "quantization_recovery"}
    recovery = {a.precision for a in attacks if isinstance(a, QuantizeAttack)}
    for precision in sorted(release | recovery):
        # a copy of each model quantized alike: the unlearned model and the reference evaluated again where checks
        # are measured at the release precision; every quantized model asked the forget questions for recovery
        for who in ["original", *attacked]:
            if who == "original" and precision not in recovery:
                continue
            work.loads += 1
            if who != "original" and precision in release:
                evaluate()
            else:
                work.generate.append(forget.qa)
    return recipe, work


def estimate(op: ObjectivePlan, obj: Objective, base: Path) -> Estimate | None:
    """Rough CPU and GPU seconds for the objective's stages, as an upper bound (every step runs).

    Training costs 6·P·tokens FLOPs a step (4·P with LoRA: no weight gradients for the frozen
    matrices), a forward pass 2·P·tokens, a generated token 2·P plus a per-step overhead; the
    constants above turn FLOPs into seconds. ``None`` when the model's size is unknown (a hub id).
    """
    p = op.model.parameters
    if not p:
        return None
    ev = next(s for s in op.stages if isinstance(s, EvaluateStage))
    recipe, work = workload(op, base)
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
             f"{GPU_STEP_OVERHEAD_S * 1000:g} ms; every evaluated model (the original included) on every data set "
             "and probe")
    if work.fits:
        basis += f", the representation probe at {REPRESENTATION_LAYERS} layers"
    atk = next((s for s in op.stages if isinstance(s, AttackStage)), None)
    if atk is not None and atk.attacks:
        basis += ("; attacks on the unlearned model and on the reference alike (relearning with its damage check, "
                  "quantization of the original too)")
    if recipe.train:
        basis += f"; includes retraining the built-in recipe ({recipe.train[0][0]} steps, always on CPU)"
    return Estimate(cpu_seconds=float(math.ceil(cpu)), gpu_seconds=float(math.ceil(gpu)), basis=basis)
