"""The unlearning Trainer, the loss-based methods, scoring, and the training callbacks.

Methods are :class:`transformers.Trainer` subclasses that override the loss (open-unlearning's
design, without its configuration layer): everything else — optimiser, schedule, gradient
accumulation, mixed precision, checkpoints and exact resume, DDP/FSDP/DeepSpeed under
``accelerate launch`` — is the Trainer's. A subclass implements one method,
:meth:`UnlearnTrainer.unlearning_loss`, returning the loss and named parts to log.

Per step the log carries ``forget_loss`` (mean NLL of the forget batch; for ``refusal``, of the
refusal targets) and ``retain_loss`` (mean NLL of the retain batch) in the same units as the stopping
rule's bound, whatever the method optimises; method-specific terms are logged beside them.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from transformers import Trainer, TrainerCallback, TrainerControl, TrainerState, TrainingArguments
from transformers.trainer_callback import ProgressCallback
from transformers.trainer_utils import rotate_checkpoints

from unlearnspec.plan import StoppingRule, UnlearnStage
from unlearnspec.report.model import EffectiveBatch
from unlearnspec.runtime.methods.checkpoints import STAGING, publish
from unlearnspec.runtime.methods.data import Example, ForgetRetainDataset, batches
from unlearnspec.runtime.methods.guard import OutputGuard
from unlearnspec.runtime.methods.losses import (
    batch_mean,
    nll_loss,
    npo_loss,
    sequence_logprob,
    sequence_nll,
    simnpo_loss,
)
from unlearnspec.runtime.scaling import marking_repeated_rows

log = logging.getLogger("unlearnspec.unlearn")


@dataclass
class UnlearnResult:
    """What an unlearning run produced.

    ``model`` is a plain (merged) ``PreTrainedModel`` in eval mode; for LoRA the adapter alone is
    also saved in ``adapter_dir``. ``log_history`` has one row per step (``step``, ``loss``,
    ``forget_loss``, ``retain_loss``, ...) and, at stopping checks, ``forget_nll``, ``holdout_nll``
    and ``holdout_ratio`` (forget NLL over the original model's holdout NLL).
    """

    model: Any
    method: str
    adapter_dir: Path | None = None
    steps_done: int = 0
    stopped_early: bool = False
    stop_reason: str = ""
    stop_threshold: float | None = None
    holdout_nll: float | None = None
    log_history: list[dict[str, float]] = field(default_factory=list)
    wall_time_s: float = 0.0
    train_samples_per_second: float | None = None
    note: str = ""
    guard: OutputGuard | None = None
    guard_path: Path | None = None
    model_dir: Path | None = None  # retrain: where the retrained model lies
    batch: EffectiveBatch | None = None  # how the plan's global batch ran on this launch (runtime/scaling.py)


# -- scoring --------------------------------------------------------------------------------------


@torch.no_grad()
def score_examples(model: Any, examples: Sequence[Example], pad_token_id: int, batch_size: int = 32, *,
                   passes: int = 0, filler: Example | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(nll, logp, n_tokens)`` per example (CPU tensors), in one batched no-grad pass.

    Used before training for NPO's reference log-likelihoods and the holdout baseline, and during
    training by the stopping rule; the model's train/eval mode is restored afterwards. ``passes``: run at
    least that many forward passes, the ones beyond the examples' batches on ``filler`` alone with the
    result discarded — under FSDP every forward pass is a collective call (each unit's weights are gathered
    from all ranks), so every rank must make as many as the others.
    """
    device = _device(model)
    was_training = model.training
    model.eval()
    nll, logp, n = [], [], []
    try:
        done = 0
        for ids, mask, labels in batches(examples, batch_size, pad_token_id):
            logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits
            lp, cnt = sequence_logprob(logits, labels.to(device))
            logp.append(lp.cpu())
            n.append(cnt.cpu())
            nll.append((-lp / cnt.clamp(min=1)).cpu())
            done += 1
        for _ in range(done, passes):
            assert filler is not None, "padding forward passes need a filler example"
            model(input_ids=torch.tensor([filler.input_ids], device=device))
    finally:
        model.train(was_training)
    if not nll:
        empty = torch.zeros(0)
        return empty, empty, empty
    return torch.cat(nll), torch.cat(logp), torch.cat(n).float()


def _device(model: Any) -> torch.device:
    """Where the model's inputs go: its (first) parameter's device; under FSDP, the device of this rank's shard."""
    p = next(model.parameters())
    to_local = getattr(p, "to_local", None)
    return to_local().device if callable(to_local) else p.device


def mean_nll(model: Any, examples: Sequence[Example], pad_token_id: int, batch_size: int = 32) -> float:
    """Mean over examples of the per-example mean NLL (each example weighs the same)."""
    return float(score_examples(model, examples, pad_token_id, batch_size)[0].mean())


# -- the trainer ------------------------------------------------------------------------------------


@dataclass
class PairOutput:
    forget_logits: torch.Tensor
    retain_logits: torch.Tensor | None
    hidden_states: tuple[torch.Tensor, ...] | None
    n_forget: int


class UnlearnTrainer(Trainer):
    """Base of every training method. Subclasses implement :meth:`unlearning_loss`.

    The loss is a per-batch mean, so the Trainer divides it by the accumulation steps itself
    (``loss_is_scaled_for_ga = False``); the batch has no ``labels`` key, so the Trainer does not
    count label tokens across ranks either. Under several processes, the batch that completes an epoch with
    repeated rows carries ``row_scale`` (:func:`unlearnspec.runtime.scaling.row_scale`), which every loss
    weighs its rows by (:meth:`mean`), so the step is the one-process step.
    """

    loss_is_scaled_for_ga = False
    uses_retain = True

    def __init__(self, *args: Any, stage: UnlearnStage, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.stage = stage
        self.model_accepts_loss_kwargs = False
        self._parts: dict[str, list[torch.Tensor]] = defaultdict(list)
        self._n_params: int | None = None
        self._staging: str | None = None

    # atomic checkpoints (see checkpoints.py): save into a staging folder, fsync, rename into place
    def _get_output_dir(self, trial: Any) -> str:
        return self._staging or super()._get_output_dir(trial)

    def _save_checkpoint(self, model: Any, trial: Any) -> None:
        final_root = Path(super()._get_output_dir(trial))
        staging = final_root / STAGING
        self._staging = str(staging)
        try:
            super()._save_checkpoint(model, trial)
        finally:
            self._staging = None
        self.accelerator.wait_for_everyone()  # every rank has written its RNG state into the staging folder
        if self.args.should_save:
            for staged in sorted(staging.glob("checkpoint-*")):
                publish(staged, final_root)
            with contextlib.suppress(OSError):
                staging.rmdir()
            rotate_checkpoints(output_dir=str(final_root), save_total_limit=self.args.save_total_limit,
                               best_model_checkpoint=self.state.best_model_checkpoint)
        self.accelerator.wait_for_everyone()

    def get_batch_samples(self, epoch_iterator: Any, num_batches: int, device: Any) -> Any:
        def mark(batch: dict[str, Any], scale: list[float]) -> dict[str, Any]:
            return {**batch, "row_scale": torch.tensor(scale, device=batch["forget_input_ids"].device)}

        return super().get_batch_samples(marking_repeated_rows(epoch_iterator, self, mark), num_batches, device)

    @staticmethod
    def mean(per_sequence: torch.Tensor, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """The batch mean of a per-sequence loss, each row weighed by the batch's ``row_scale`` if it has one."""
        return batch_mean(per_sequence, inputs.get("row_scale"))

    # what subclasses implement
    def unlearning_loss(self, model: Any, inputs: dict[str, torch.Tensor]
                        ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        raise NotImplementedError

    def has_retain(self, inputs: dict[str, torch.Tensor]) -> bool:
        return self.uses_retain and "retain_input_ids" in inputs and self.stage.retain_weight > 0

    def forward_pair(self, model: Any, inputs: dict[str, torch.Tensor], *, with_retain: bool,
                     output_hidden_states: bool = False) -> PairOutput:
        """One forward pass over forget (and retain) sequences, concatenated on the batch axis."""
        ids, mask = inputs["forget_input_ids"], inputs["forget_attention_mask"]
        nf = ids.shape[0]
        if with_retain:
            ids = torch.cat([ids, inputs["retain_input_ids"]])
            mask = torch.cat([mask, inputs["retain_attention_mask"]])
        out = model(input_ids=ids, attention_mask=mask, output_hidden_states=output_hidden_states,
                    use_cache=False)
        logits = out.logits
        return PairOutput(forget_logits=logits[:nf], retain_logits=logits[nf:] if with_retain else None,
                          hidden_states=tuple(out.hidden_states) if output_hidden_states else None, n_forget=nf)

    def retain_nll(self, out: PairOutput, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        assert out.retain_logits is not None
        return nll_loss(out.retain_logits, inputs["retain_labels"], inputs.get("row_scale"))

    def with_retain_term(self, loss: torch.Tensor, parts: dict[str, torch.Tensor], out: PairOutput,
                         inputs: dict[str, torch.Tensor], with_retain: bool
                         ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Add the weighted retain NLL that every retain-using method shares (and log it)."""
        if with_retain:
            r = self.retain_nll(out, inputs)
            loss = loss + self.stage.retain_weight * r
            parts["retain_loss"] = r
        return loss, parts

    def compute_loss(self, model: Any, inputs: dict[str, Any], return_outputs: bool = False,
                     num_items_in_batch: Any = None) -> Any:
        loss, parts = self.unlearning_loss(model, inputs)
        for k, v in parts.items():
            self._parts[k].append(v.detach().float())
        return (loss, None) if return_outputs else loss

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if "loss" in logs and self._parts:
            for k, vals in self._parts.items():
                logs[k] = float(torch.stack(vals).mean().item())
            self._parts.clear()
        super().log(logs, start_time)

    def floating_point_ops(self, inputs: dict[str, Any]) -> int:
        """6 × tokens × parameters (forward + backward), over forget and retain tokens."""
        if self._n_params is None:
            model: Any = self.model
            self._n_params = int(sum(p.numel() for p in model.parameters()))
        tokens = sum(int(v.numel()) for k, v in inputs.items() if k.endswith("_input_ids"))
        return 6 * tokens * self._n_params


class GradAscentTrainer(UnlearnTrainer):
    """Gradient ascent on the forget set; no retain term (its collapse is what the stopping rule is for)."""

    uses_retain = False

    def unlearning_loss(self, model: Any, inputs: dict[str, torch.Tensor]
                        ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        out = self.forward_pair(model, inputs, with_retain=False)
        f_nll = self.mean(sequence_nll(out.forget_logits, inputs["forget_labels"]), inputs)
        return -f_nll, {"forget_loss": f_nll}


class GradDiffTrainer(UnlearnTrainer):
    """Gradient difference: ascend on forget, descend on retain (weighted by ``retain_weight``)."""

    def unlearning_loss(self, model: Any, inputs: dict[str, torch.Tensor]
                        ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        with_r = self.has_retain(inputs)
        out = self.forward_pair(model, inputs, with_retain=with_r)
        f_nll = self.mean(sequence_nll(out.forget_logits, inputs["forget_labels"]), inputs)
        loss, parts = -f_nll, {"forget_loss": f_nll}
        return self.with_retain_term(loss, parts, out, inputs, with_r)


class NPOTrainer(UnlearnTrainer):
    """NPO against reference log-likelihoods computed once, before training (``ref_logp`` column)."""

    def unlearning_loss(self, model: Any, inputs: dict[str, torch.Tensor]
                        ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        with_r = self.has_retain(inputs)
        out = self.forward_pair(model, inputs, with_retain=with_r)
        logp, n = sequence_logprob(out.forget_logits, inputs["forget_labels"])
        term = npo_loss(logp, inputs["ref_logp"].to(logp.dtype), self.stage.beta, inputs.get("row_scale"))
        loss, parts = term, {"forget_loss": self.mean(-logp / n.clamp(min=1), inputs), "npo_term": term}
        return self.with_retain_term(loss, parts, out, inputs, with_r)


class SimNPOTrainer(UnlearnTrainer):
    """SimNPO: reference-free and length-normalised, with margin ``gamma``."""

    def unlearning_loss(self, model: Any, inputs: dict[str, torch.Tensor]
                        ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        with_r = self.has_retain(inputs)
        out = self.forward_pair(model, inputs, with_retain=with_r)
        logp, n = sequence_logprob(out.forget_logits, inputs["forget_labels"])
        term = simnpo_loss(logp, n, self.stage.beta, self.stage.gamma, inputs.get("row_scale"))
        loss, parts = term, {"forget_loss": self.mean(-logp / n.clamp(min=1), inputs), "simnpo_term": term}
        return self.with_retain_term(loss, parts, out, inputs, with_r)


class RefusalTrainer(UnlearnTrainer):
    """Model-level suppression: learn ``refusal_text`` as the answer to forget prompts, keep retain."""

    def unlearning_loss(self, model: Any, inputs: dict[str, torch.Tensor]
                        ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        with_r = self.has_retain(inputs)
        out = self.forward_pair(model, inputs, with_retain=with_r)
        refusal = nll_loss(out.forget_logits, inputs["forget_labels"], inputs.get("row_scale"))
        loss, parts = refusal, {"forget_loss": refusal}
        return self.with_retain_term(loss, parts, out, inputs, with_r)


# -- callbacks ----------------------------------------------------------------------------------------


class EpochCallback(TrainerCallback):
    """Tell the dataset the epoch and the process index, which seed its retain draws."""

    def __init__(self, dataset: ForgetRetainDataset) -> None:
        self.dataset = dataset

    def on_train_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                       **kwargs: Any) -> None:
        self.dataset.process_index = args.process_index

    def on_epoch_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                       **kwargs: Any) -> None:
        # At an epoch's start ``state.epoch`` is the number of finished epochs (fractional after
        # resuming mid-epoch, hence the floor).
        self.dataset.set_epoch(math.floor((state.epoch or 0.0) + 1e-6))


class RankSeeds(TrainerCallback):
    """Under a launch, each rank draws its own dropout: torch's global RNG reseeded at the start of training with
    accelerate's ``set_seed(seed, device_specific=True)`` (the stage's seed plus the process index).

    Why: the Trainer seeds every rank with ``args.seed`` alone (transformers' ``set_seed`` has no per-rank form), so
    a model with dropout drew the same masks on every rank, and the ranks' micro-batches were not independent
    samples of the dropout noise the one-process step averages over. Only the global RNG moves: the data order
    comes from the sampler's own generator (``data_seed``, synchronised from rank 0 by accelerate), the retain
    draws from :class:`ForgetRetainDataset`'s, and the weights were drawn (LoRA's included) before training, then
    made equal on every rank by DDP or FSDP. A resume reloads each rank's RNG state from its checkpoint after this,
    so it continues the stream the rank was drawing. One process is left as it was: its masks, and so every number
    of a one-process run (the demo's), do not move."""

    def on_train_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                       **kwargs: Any) -> None:
        if args.world_size > 1:
            from accelerate.utils import set_seed

            set_seed(args.seed, device_specific=True)


class StoppedAtCheckpoint(Exception):  # noqa: N818 (a control-flow signal, not an error)
    """Raised by :meth:`HoldoutStopping.on_train_begin` when the checkpoint resumed from is where training stopped."""

    def __init__(self, step: int) -> None:
        super().__init__(f"the stopping rule fired at step {step}, the checkpoint's")
        self.step = step


class HoldoutStopping(TrainerCallback):
    """The plan's stopping rule ``holdout_loss``: stop once the forget set is more surprising than
    data the original model never saw (times ``ratio``).

    Every ``check_every`` steps each rank scores its shard of the forget examples and the sums are
    reduced across ranks, so every rank takes the same decision on the same number. Every rank makes as
    many forward passes as the rank with the largest shard (padding with a discarded pass where its own
    shard has fewer batches, or none): under FSDP a forward pass is a collective call, and a rank that
    made fewer would leave the others waiting forever.
    """

    def __init__(self, rule: StoppingRule, forget: Sequence[Example], holdout_nll: float, pad_token_id: int,
                 batch_size: int = 32) -> None:
        self.rule = rule
        self.forget = list(forget)
        self.holdout_nll = holdout_nll
        self.threshold = rule.ratio * holdout_nll
        self.pad_token_id = pad_token_id
        self.batch_size = batch_size
        self.stop_reason = ""

    def _explain(self, step: int, forget_nll: float) -> str:
        return (f"holdout_loss: at step {step} the forget set's mean loss (negative log-likelihood, "
                f"NLL) {forget_nll:.4f} exceeded {self.rule.ratio:g} × the original model's loss on the calibration "
                f"half of the holdout set, {self.holdout_nll:.4f} (checked every {max(1, self.rule.check_every)} "
                "steps; the evaluation half is kept apart for the verdicts)")

    def on_train_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                       **kwargs: Any) -> None:
        """A run resumed from the checkpoint of the step at which the rule fired (a kill after that save) stops
        there, as the uninterrupted run did: the decision is in the checkpoint's log, and the Trainer, which
        forgets a stop across a restart, would otherwise train on. The Trainer has loaded the checkpoint's weights
        and state when this runs; :class:`StoppedAtCheckpoint` leaves it before another step."""
        at = state.global_step
        last = next((e for e in reversed(state.log_history) if "forget_nll" in e), None)
        if at > 0 and last is not None and last.get("step") == at and float(last["forget_nll"]) > self.threshold:
            self.stop_reason = self._explain(at, float(last["forget_nll"]))
            raise StoppedAtCheckpoint(at)

    def on_step_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                    **kwargs: Any) -> None:
        if state.global_step % max(1, self.rule.check_every) != 0:
            return
        model = kwargs["model"]
        world = max(1, args.world_size)
        shard = self.forget[args.process_index::world]
        # the same number of forward passes on every rank (FSDP's are collective): the largest shard's batches
        passes = math.ceil(math.ceil(len(self.forget) / world) / max(1, self.batch_size))
        nll = score_examples(model, shard, self.pad_token_id, self.batch_size, passes=passes,
                             filler=self.forget[0])[0]
        device = _device(model)
        totals = torch.tensor([float(nll.sum()), float(len(shard))], dtype=torch.float64, device=device)
        if world > 1 and torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.all_reduce(totals)  # a sum over the ranks
        forget_nll = float(totals[0] / totals[1].clamp(min=1))
        ratio = forget_nll / self.holdout_nll if self.holdout_nll > 0 else math.inf
        state.log_history.append({"step": state.global_step, "forget_nll": forget_nll,
                                  "holdout_nll": self.holdout_nll, "holdout_ratio": ratio})
        log.info("step %d: forget NLL %.4f, %.3f × holdout NLL %.4f", state.global_step, forget_nll, ratio,
                 self.holdout_nll)
        if forget_nll > self.threshold:
            self.stop_reason = self._explain(state.global_step, forget_nll)
            control.should_training_stop = True


class LogToLogging(TrainerCallback):
    """Send the Trainer's per-step logs to ``logging`` instead of stdout."""

    def on_log(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
               logs: dict[str, float] | None = None, **kwargs: Any) -> None:
        if logs and state.is_world_process_zero:
            log.debug("step %d: %s", state.global_step,
                      ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in logs.items()))


class StepBar(ProgressCallback):
    """The Trainer's progress bar, with the latest losses as its postfix instead of one printed dict per
    step (the full per-step record goes to run.log through :class:`LogToLogging`)."""

    SHOWN = ("forget_loss", "retain_loss", "loss")

    def on_log(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
               logs: dict[str, float] | None = None, **kwargs: Any) -> None:
        bar = self.training_bar
        if not (logs and state.is_world_process_zero and bar is not None):
            return
        shown = {k.replace("_loss", ""): f"{logs[k]:.3g}" for k in self.SHOWN if isinstance(logs.get(k), float)}
        if shown:
            bar.set_postfix(shown, refresh=False)


_SUMMARY_KEYS = ("loss", "forget_loss", "retain_loss", "npo_term", "simnpo_term", "rmu_forget_mse",
                 "rmu_retain_mse", "forget_nll", "holdout_nll", "holdout_ratio", "learning_rate", "grad_norm")


def summarise_history(history: Sequence[dict[str, Any]]) -> list[dict[str, float]]:
    """The Trainer's ``log_history`` merged into one row per step (the final summary row dropped)."""
    rows: dict[int, dict[str, float]] = {}
    for h in history:
        if "step" not in h or "train_runtime" in h:
            continue
        row = rows.setdefault(int(h["step"]), {"step": int(h["step"])})
        for k in _SUMMARY_KEYS:
            if k in h and h[k] is not None:
                row[k] = float(h[k])
    return [rows[s] for s in sorted(rows)]
