"""The unlearning methods: one registry, one entry point.

``METHODS`` names every method the language knows (``retrain``, ``grad_ascent``, ``grad_diff``,
``npo``, ``simnpo``, ``rmu``, ``refusal``, ``filter``) with its family and what it needs;
:func:`unlearn` runs one :class:`~unlearnspec.plan.UnlearnStage` exactly as the plan resolved it. No
parameter is decided here: they all come from the stage.

Ownership: ``unlearn`` trains the ``model`` it is given **in place** (and ``get_peft_model``
wraps and mutates it for LoRA). Pass a model you own — a fresh load or a ``copy.deepcopy`` — never
one you still need as the original.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from unlearnspec import catalog
from unlearnspec.builtin.recipe import RECIPES, recipe_hash
from unlearnspec.catalog.methods import CHECKPOINTS_KEPT
from unlearnspec.plan import UnlearnStage
from unlearnspec.records import Record
from unlearnspec.runtime import builtin_model
from unlearnspec.runtime.loading import E_RETRAIN_UNKNOWN, LoadError, load_model, use_bf16
from unlearnspec.runtime.methods.base import (
    EpochCallback,
    GradAscentTrainer,
    GradDiffTrainer,
    HoldoutStopping,
    LogToLogging,
    NPOTrainer,
    RankSeeds,
    RefusalTrainer,
    SimNPOTrainer,
    StepBar,
    StoppedAtCheckpoint,
    UnlearnResult,
    UnlearnTrainer,
    mean_nll,
    score_examples,
    summarise_history,
)
from unlearnspec.runtime.methods.checkpoints import clear_staging, last_usable_checkpoint, replace_folder
from unlearnspec.runtime.methods.data import (
    ForgetRetainCollator,
    ForgetRetainDataset,
    encode_records,
    encode_refusals,
)
from unlearnspec.runtime.methods.guard import OutputGuard
from unlearnspec.runtime.methods.rmu import (
    RMUTrainer,
    control_vector,
    mean_activation_norm,
    original_weights,
    resolve_layer,
    train_only,
    trained_modules,
)
from unlearnspec.runtime.prompting import PromptFormat
from unlearnspec.runtime.prompting import resolve as resolve_format
from unlearnspec.runtime.scaling import full_state_dict, trainer_batch, unsharded_model

__all__ = ["METHODS", "MethodSpec", "UnlearnResult", "lora_config", "training_arguments", "unlearn"]

log = logging.getLogger("unlearnspec.unlearn")

@dataclass(frozen=True)
class MethodSpec:
    """A method as the runtime runs it: its catalog entry (family, summary, data needs) and its trainer
    (None: no training). ``retain``: ``required`` (the objective is meaningless without it), ``optional``
    (used when given and ``retain_weight > 0``) or ``unused``."""

    info: catalog.Method
    trainer: type[UnlearnTrainer] | None

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def family(self) -> str:
        return self.info.family

    @property
    def retain(self) -> str:
        return self.info.retain

    @property
    def reference_logp(self) -> bool:
        return self.info.reference_logp


#: The trainer of each method of the catalog (None: retraining follows the recipe; a filter trains nothing).
TRAINERS: dict[str, type[UnlearnTrainer] | None] = {
    "retrain": None, "grad_ascent": GradAscentTrainer, "grad_diff": GradDiffTrainer, "npo": NPOTrainer,
    "simnpo": SimNPOTrainer, "rmu": RMUTrainer, "refusal": RefusalTrainer, "filter": None,
    "unknown": None,  # an audited checkpoint's unstated method: nothing runs (the plan has no unlearn stage)
}
METHODS: dict[str, MethodSpec] = {name: MethodSpec(m, TRAINERS[name]) for name, m in catalog.METHODS.items()}


# -- configuration ---------------------------------------------------------------------------------

_LLAMA_LIKE = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def lora_config(stage: UnlearnStage, model: Any, modules: Sequence[str] | None = None) -> Any:
    """peft ``LoraConfig`` from the stage: attention and MLP projections of the architecture, or ``modules``
    (full module names: RMU's, ``rmu.trained_modules``).

    GPT-2 keeps its projections in ``Conv1D`` layers with transposed weights, hence
    ``fan_in_fan_out=True``; a model with every one of Llama's seven ``*_proj`` names gets those; anything
    else (OPT's ``fc1``/``fc2``, Phi's ``dense``, GPT-J's ``fc_in``/``fc_out`` beside their ``q_proj``) gets
    peft's ``all-linear`` (every linear layer but the output head), so its MLP is adapted too.
    """
    from peft import LoraConfig, TaskType

    lc = stage.lora
    rank, alpha, dropout = (lc.rank, lc.alpha, lc.dropout) if lc else (8, 16, 0.0)
    model_type = getattr(model.config, "model_type", "")
    fan_in_fan_out = model_type == "gpt2"
    targets: list[str] | str
    names = [n for n, _ in model.named_modules()]
    if modules is not None:
        targets = list(modules)
    elif lc and lc.target_modules:
        targets = list(lc.target_modules)
    elif model_type == "gpt2":
        targets = ["c_attn", "c_proj", "c_fc"]
    elif all(any(n.endswith("." + t) for n in names) for t in _LLAMA_LIKE):
        targets = list(_LLAMA_LIKE)
    else:
        targets = "all-linear"
    return LoraConfig(task_type=TaskType.CAUSAL_LM, r=rank, lora_alpha=alpha, lora_dropout=dropout,
                      target_modules=targets, fan_in_fan_out=fan_in_fan_out)


def training_arguments(stage: UnlearnStage, out_dir: Path, *, save_steps: int = 10,
                       disable_tqdm: bool = True, batch: dict[str, Any] | None = None) -> Any:
    """The Trainer's arguments, all from the stage.

    A constant learning rate: the plan fixes the rate and the step budget, and a decaying schedule
    would make the effective step size depend on ``max_steps`` (and the stopping rule cuts runs short).
    Every trained parameter gets a gradient at every step (RMU trains only blocks at or below the one it
    steers), so DDP does not search for unused parameters.
    """
    from transformers import TrainingArguments

    cuda = torch.cuda.is_available()
    if batch is None:
        batch = trainer_batch(stage.batch_size, stage.gradient_accumulation_steps)[0]
    return TrainingArguments(
        output_dir=str(Path(out_dir) / "checkpoints"),
        max_steps=stage.max_steps,
        learning_rate=stage.learning_rate,
        lr_scheduler_type="constant",
        weight_decay=0.0,
        **batch,  # the plan's global batch split for this launch: runtime/scaling.py
        seed=stage.seed,
        data_seed=stage.seed,
        use_cpu=not cuda,
        bf16=use_bf16(stage.train_precision),
        fp16=stage.train_precision == "fp16" and cuda,
        report_to=[],
        disable_tqdm=disable_tqdm,
        logging_steps=1,
        save_strategy="steps",
        save_steps=save_steps,
        save_total_limit=CHECKPOINTS_KEPT,
        remove_unused_columns=False,
        dataloader_num_workers=0,
        ddp_find_unused_parameters=False,
    )


def _training_autocast(args: Any) -> Any:
    """The autocast the Trainer runs the forward pass under for ``args`` (mixed bf16 or fp16), else a no-op."""
    dtype = torch.bfloat16 if args.bf16 else torch.float16 if args.fp16 else None
    return torch.autocast(args.device.type, dtype=dtype) if dtype is not None else contextlib.nullcontext()


def _resume_point(value: str | bool | None, checkpoints: Path, processes: int = 1) -> str | None:
    """``True`` resumes from the newest *complete* checkpoint if there is one (else starts fresh)."""
    if value is None or value is False:
        return None
    if value is True:
        return last_usable_checkpoint(checkpoints, processes=processes)
    return str(value)


# -- the non-training methods ----------------------------------------------------------------------


def _run_filter(stage: UnlearnStage, model: Any, forget: Sequence[Record], retain: Sequence[Record],
                out_dir: Path, aliases: Sequence[str]) -> UnlearnResult:
    t0 = time.perf_counter()
    guard = OutputGuard.from_records(forget, n=stage.filter_ngram, aliases=aliases,
                                     refusal_text=stage.refusal_text, exclude=retain)
    path = guard.save(out_dir)
    return UnlearnResult(model=model, method="filter", stop_reason="no training: system-level output filter",
                         guard=guard, guard_path=path, wall_time_s=time.perf_counter() - t0,
                         note=f"the model is unchanged; serve it behind {path.name} "
                              f"({len(guard.ngrams)} {guard.n}-grams, {len(guard.phrases)} names)")


def _builtin_recipe(model: Any, model_source: str | None) -> dict[str, Any] | None:
    """The recipe ``model`` was built from, if it is a built-in: by name (as told, or as stamped by
    ``load_model``), or by its folder in the built-in cache, whose manifest holds the recipe it was
    trained from (checked against the folder's name, the recipe hash)."""
    source = model_source or getattr(model, "unlearnspec_source", None)
    if source in RECIPES:
        return RECIPES[source]
    root = (builtin_model.cache_root() / "builtin").resolve()
    for candidate in ([source] if source else [getattr(model, "name_or_path", None)]):
        if not candidate:
            continue
        path = Path(str(candidate)).expanduser().resolve()
        if path.parent != root:
            continue
        try:
            manifest = json.loads((path / builtin_model.MANIFEST).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        recipe = manifest.get("recipe") if isinstance(manifest, dict) else None
        if isinstance(recipe, dict) and recipe_hash(recipe) == path.name:
            return recipe
    return None


def _run_retrain(model: Any, forget: Sequence[Record], model_source: str | None) -> UnlearnResult:
    recipe = _builtin_recipe(model, model_source)
    if recipe is None:
        raise LoadError(
            f"exact retraining needs the training corpus and recipe of `{model_source or 'the model'}`,"
            " which are unknown", code=E_RETRAIN_UNKNOWN,
            help=["only the built-in models (" + ", ".join(f"`{m}`" for m in RECIPES) + ") ship their corpus and recipe",
                  "choose an approximate method (`method npo`) and compare with a reference model instead"])
    t0 = time.perf_counter()
    exclude = [t for r in forget for t in r.training_texts()]
    path = Path(builtin_model.ensure_retrained(exclude, recipe=recipe))
    retrained, _ = load_model(str(path))
    return UnlearnResult(model=retrained, method="retrain", stop_reason="exact retraining without the forget set",
                         wall_time_s=time.perf_counter() - t0, model_dir=path,
                         note=f"retrained from scratch without {len(exclude)} forget texts")


def _stop_reason(stage: UnlearnStage, stopper: HoldoutStopping | None, steps: int) -> str:
    """Why training ended, claiming no more than the stopping rule checked: it looks every ``check_every`` steps (the
    steps after its last check are not covered), and without holdout data it looks at nothing."""
    if stopper is not None and stopper.stop_reason:
        return stopper.stop_reason
    if stage.stopping.kind == "fixed_steps":
        return f"fixed_steps: ran {steps} steps"
    if stopper is None:
        return f"max_steps: ran {steps} steps; no holdout data, so the holdout_loss rule was never checked"
    every = max(1, stage.stopping.check_every)
    last = steps - steps % every
    if last == steps:
        return f"max_steps: the forget set's mean loss (NLL) stayed within the stopping bound for all {steps} steps"
    if last == 0:
        return f"max_steps: ran {steps} steps, fewer than the {every} between two checks of the stopping rule"
    return (f"max_steps: ran {steps} steps; the forget set's mean loss (NLL) stayed within the stopping bound at every "
            f"check (every {every} steps, the last at step {last}; the steps after it unchecked)")


# -- the entry point -------------------------------------------------------------------------------


def unlearn(stage: UnlearnStage, model: Any, tokenizer: Any, forget: Sequence[Record], retain: Sequence[Record],
            holdout: Sequence[Record], out_dir: str | Path, *, resume_from_checkpoint: str | bool | None = None,
            callbacks: Sequence[Any] = (), aliases: Sequence[str] = (), model_source: str | None = None,
            quiet: bool = True, save_steps: int = 10, max_length: int = 256,
            eval_batch_size: int = 32, fmt: PromptFormat | None = None) -> UnlearnResult:
    """Run the stage's method on ``model`` (trained in place, see the module docstring).

    QA items are encoded in ``fmt`` (default: the tokenizer's own format; the run passes the one it
    measures with, system prompt included).

    ``resume_from_checkpoint`` passes to ``Trainer.train`` (``True``: the newest checkpoint under
    ``out_dir/checkpoints`` if any); to resume exactly, pass the *original* model again — NPO's
    reference log-likelihoods and the stopping baseline are recomputed from it. ``aliases`` (the
    target's name and aliases) feed the ``filter`` guard; ``model_source`` tells ``retrain`` whether
    the model is the builtin (detected from the model's path when not given).
    """
    from transformers import set_seed
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    spec = METHODS.get(stage.method)
    if spec is None:
        raise ValueError(f"unknown method `{stage.method}`; known: {', '.join(sorted(METHODS))}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    # by what the method is (its family, its trainer's class), never by its name: a variant added to the catalog
    # runs as the method it is a variant of (docs/architecture.md, adding a method)
    if spec.info.family == "system_suppression":
        return _run_filter(stage, model, forget, retain, out, aliases)
    if spec.info.family == "exact":
        return _run_retrain(model, forget, model_source)
    if spec.trainer is None:  # `unknown`: how an audited checkpoint was made; an audit plans no unlearn stage
        raise ValueError(f"method `{stage.method}` runs nothing: it states how an audited checkpoint was unlearned")

    t0 = time.perf_counter()
    set_seed(stage.seed)
    use_retain = spec.retain != "unused" and stage.retain_weight > 0 and bool(retain)

    # RMU trains blocks ℓ−2..ℓ only (rmu.py): chosen before the memory estimate, which counts what trains
    method_kwargs: dict[str, Any] = {}
    rmu_modules: list[str] | None = None
    trainable: int | None = None
    frozen = 0
    steers = issubclass(spec.trainer, RMUTrainer)
    if steers:
        layer = resolve_layer(model, stage.rmu_layer)
        rmu_modules = trained_modules(model, layer, only=(stage.lora.target_modules or []) if stage.lora else [])
        method_kwargs = {"layer": layer}  # and the control vector, once the forget examples are encoded (below)
        if stage.adapter == "full":
            trainable = train_only(model, rmu_modules)
            if use_retain:  # the retain target's weights: the trained parameters' original values
                method_kwargs["originals"] = original_weights(model, rmu_modules)
                frozen = sum(int(v.numel()) for v in method_kwargs["originals"].values())
        log.info("rmu: steering block %d, training %s", layer, ", ".join(rmu_modules))
    batch_kw, batch = trainer_batch(stage.batch_size, stage.gradient_accumulation_steps, model=model,
                                    precision=stage.train_precision, adapter=stage.adapter,
                                    trainable=trainable, frozen=frozen)
    args = training_arguments(stage, out, save_steps=save_steps, disable_tqdm=quiet, batch=batch_kw)
    log.info("batch: %d examples a step = %d process(es) x %d x %d accumulation (%s)", batch.global_batch,
             batch.processes, batch.micro_batch, batch.accumulation, batch.sharding)
    fsdp = batch.sharding == "fsdp"
    if not fsdp:  # FSDP places each unit's shard on its rank's device itself, never the whole model
        model.to(args.device)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id

    fmt = resolve_format(fmt, tokenizer)
    forget_eval = encode_records(forget, tokenizer, max_length, fmt=fmt)
    forget_train = (encode_refusals(forget, tokenizer, stage.refusal_text, max_length, fmt=fmt)
                    if issubclass(spec.trainer, RefusalTrainer) else forget_eval)
    retain_ex = encode_records(retain, tokenizer, max_length, fmt=fmt) if use_retain else []
    if spec.retain == "required" and not retain_ex:
        raise ValueError(f"method `{stage.method}` needs retain data (and retain_weight > 0)")

    extra: dict[str, list[float]] = {}
    if spec.reference_logp:  # once, from the original model: no second model in memory
        # in the precision training computes in (bf16/fp16 autocast where it mixes precision), so that at the first
        # step log(π_θ/π_ref) is 0, as NPO starts, rather than the rounding difference between two precisions
        with _training_autocast(args):
            extra["ref_logp"] = score_examples(model, forget_train, pad_id, eval_batch_size)[1].tolist()
    if steers:  # c = the coefficient × the original model's mean activation norm there (rmu.py), once
        norm = mean_activation_norm(model, forget_train, method_kwargs["layer"], pad_id, eval_batch_size)
        method_kwargs["control"] = control_vector(int(model.config.hidden_size), stage.rmu_steering_coeff * norm,
                                                  stage.seed)
        log.info("rmu: mean activation norm %.4g on the forget tokens; control vector %g x %.4g = %.4g",
                 norm, stage.rmu_steering_coeff, norm, stage.rmu_steering_coeff * norm)

    trainer_cb: list[Any] = []
    stopper: HoldoutStopping | None = None
    holdout_nll: float | None = None
    note = ""
    if stage.stopping.kind == "holdout_loss":
        holdout_ex = encode_records(holdout, tokenizer, max_length, fmt=fmt)
        if holdout_ex:
            holdout_nll = mean_nll(model, holdout_ex, pad_id, eval_batch_size)
            stopper = HoldoutStopping(stage.stopping, forget_eval, holdout_nll, pad_id, eval_batch_size)
            trainer_cb.append(stopper)
        else:
            note = "no holdout data: the holdout_loss stopping rule could not apply; ran the fixed step budget"

    if stage.adapter == "lora":
        from peft import get_peft_model

        set_seed(stage.seed)  # LoRA's A matrices are drawn from the global RNG
        model = get_peft_model(model, lora_config(stage, model, rmu_modules))

    dataset = ForgetRetainDataset(forget_train, retain_ex, seed=stage.seed, extra=extra)
    trainer = spec.trainer(
        model=model, args=args, train_dataset=dataset, data_collator=ForgetRetainCollator(pad_id),
        processing_class=tokenizer, callbacks=[EpochCallback(dataset), RankSeeds(), LogToLogging(), *trainer_cb, *callbacks],
        stage=stage, **method_kwargs)
    method_kwargs.clear()  # the trainer holds what it needs (RMU's original weights: moved to the device once)
    trainer.remove_callback(PrinterCallback)
    if trainer.pop_callback(ProgressCallback) is not None:  # present unless quiet
        trainer.add_callback(StepBar())
    if trainer.is_world_process_zero():
        clear_staging(Path(args.output_dir))  # a save a kill interrupted: never resumed from
    resume = _resume_point(resume_from_checkpoint, Path(args.output_dir), batch.processes)
    if resume:
        log.info("resuming %s from %s", stage.method, resume)
    try:
        train_out: Any = trainer.train(resume_from_checkpoint=resume)
    except StoppedAtCheckpoint as stopped:  # the checkpoint is where the rule stopped training: nothing to add
        log.info("the stopping rule fired at step %d, the checkpoint resumed from: training is complete", stopped.step)
        train_out = None
    main = trainer.is_world_process_zero()
    sharded = bool(getattr(trainer, "is_fsdp_enabled", False))
    if sharded:
        # the weights are shards on every rank: all ranks gather them whole (a collective call), and the main
        # process rebuilds one plain model from them to save and evaluate (runtime/scaling.py)
        state = full_state_dict(trainer.model)
        if main:
            model = unsharded_model(model, state)

    adapter_dir: Path | None = None
    if stage.adapter == "lora":
        adapter_dir = out / "adapter"
        if main:  # into adapter.partial, fsynced, renamed: a kill never leaves half an adapter in place
            replace_folder(adapter_dir, lambda tmp: model.save_pretrained(str(tmp)), within=out)
        trainer.accelerator.wait_for_everyone()
        if main or not sharded:  # a helper rank's FSDP shards are discarded: it loads what the main process saved
            model = model.merge_and_unload()
    if trainable is not None:  # RMU froze all but a few modules for training; the model is handed back whole
        model.requires_grad_(True)
    model.eval()

    steps = int(trainer.state.global_step)
    stop_reason = _stop_reason(stage, stopper, steps)
    return UnlearnResult(
        model=model, method=stage.method, adapter_dir=adapter_dir, steps_done=steps,
        stopped_early=bool(stopper and stopper.stop_reason), stop_reason=stop_reason,
        stop_threshold=stopper.threshold if stopper else None, holdout_nll=holdout_nll,
        log_history=summarise_history(trainer.state.log_history), wall_time_s=time.perf_counter() - t0,
        train_samples_per_second=train_out.metrics.get("train_samples_per_second") if train_out else None, batch=batch,
        note=note or (f"LoRA adapter saved to {adapter_dir}; the returned model has it merged" if adapter_dir else ""))
