"""The unlearning objectives as plain tensor functions.

Kept apart from the Trainer subclasses so that each formula can be unit-tested on small tensors
against hand-computed values, and reused by the benchmark's plain training loop. Conventions:

* ``logits``: ``[B, T, V]``; ``labels``: ``[B, T]`` with ``-100`` on positions not to score
  (padding, and the prompt of a QA pair). Labels are *unshifted* (as the model's input ids): token
  ``t`` is predicted from the logits at ``t - 1``.
* A sequence's log-likelihood is the sum over its scored tokens; its NLL is the mean over them.
* Every loss returns a scalar: the mean over the batch of a per-sequence quantity, so long and short
  sequences weigh the same (the per-sequence view is the one NPO and SimNPO are defined on). ``scale``, where
  given, weighs each sequence in that mean (:func:`batch_mean`): the multi-process trainers use it to leave out
  the rows accelerate repeats to complete an epoch's last batch (``runtime/scaling.py``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

IGNORE_INDEX = -100


def batch_mean(per_sequence: torch.Tensor, scale: torch.Tensor | None = None) -> torch.Tensor:
    """The mean over the batch of ``per_sequence`` (``[B]``); with ``scale`` (``[B]``), the mean of
    ``scale · per_sequence``, a row of scale 0 contributing exactly nothing (selected out, not multiplied:
    its value may be anything, ``inf`` included)."""
    if scale is None:
        return per_sequence.mean()
    scale = scale.to(per_sequence.device, per_sequence.dtype)
    kept = torch.where(scale != 0, per_sequence, torch.zeros_like(per_sequence))
    return (kept * scale).mean()


def token_logprobs(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token log-probabilities of the labels, and the mask of scored tokens (both ``[B, T-1]``).

    Computed in fp32 whatever the logits' dtype, so bf16 training does not round the objective. An unscored
    position is 0 whatever the model gives its placeholder token there (selected, not multiplied by the mask: a
    ``-inf`` logit times 0 would be NaN and poison the whole sequence's sum).
    """
    shift_logits = logits[:, :-1, :].float()
    shift_labels = labels[:, 1:]
    mask = shift_labels.ne(IGNORE_INDEX)
    safe = shift_labels.masked_fill(~mask, 0)
    logp = torch.log_softmax(shift_logits, dim=-1).gather(-1, safe.unsqueeze(-1)).squeeze(-1)
    return torch.where(mask, logp, torch.zeros_like(logp)), mask


def sequence_logprob(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(log π(y|x), |y|)`` per sequence: the summed log-probability and the number of scored tokens."""
    logp, mask = token_logprobs(logits, labels)
    return logp.sum(-1), mask.sum(-1)


def sequence_nll(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean negative log-likelihood per sequence (``[B]``); a sequence with no scored token gets 0."""
    logp, n = sequence_logprob(logits, labels)
    return -logp / n.clamp(min=1)


def nll_loss(logits: torch.Tensor, labels: torch.Tensor, scale: torch.Tensor | None = None) -> torch.Tensor:
    """The ordinary language-modelling loss, averaged per sequence then over the batch."""
    return batch_mean(sequence_nll(logits, labels), scale)


def grad_ascent_loss(forget_logits: torch.Tensor, forget_labels: torch.Tensor) -> torch.Tensor:
    """Gradient ascent: minimise −NLL on the forget set (i.e. push its likelihood down, unboundedly)."""
    return -nll_loss(forget_logits, forget_labels)


def grad_diff_loss(forget_logits: torch.Tensor, forget_labels: torch.Tensor, retain_logits: torch.Tensor,
                   retain_labels: torch.Tensor, retain_weight: float = 1.0) -> torch.Tensor:
    """Gradient difference: −NLL(forget) + ``retain_weight`` · NLL(retain)."""
    return grad_ascent_loss(forget_logits, forget_labels) + retain_weight * nll_loss(retain_logits, retain_labels)


def npo_loss(logp: torch.Tensor, ref_logp: torch.Tensor, beta: float, scale: torch.Tensor | None = None
             ) -> torch.Tensor:
    """NPO (Zhang et al. 2024, arXiv:2404.05868) on sequence log-likelihoods.

    ``L = (2/β) · E[log(1 + (π_θ(y|x) / π_ref(y|x))^β)]``, written as ``−(2/β)·logσ(−β·(logπ_θ − logπ_ref))``
    for numerical stability. Bounded below by 0 and its gradient vanishes as π_θ/π_ref → 0, which
    is what slows NPO's collapse compared with gradient ascent.
    """
    log_ratio = logp - ref_logp
    return (-2.0 / beta) * batch_mean(F.logsigmoid(-beta * log_ratio), scale)


def simnpo_loss(logp: torch.Tensor, n_tokens: torch.Tensor, beta: float, gamma: float = 0.0,
                scale: torch.Tensor | None = None) -> torch.Tensor:
    """SimNPO (Fan et al. 2024, arXiv:2410.07163): reference-free, length-normalised NPO.

    ``L = −(2/β) · E[log σ(−(β/|y|) · log π_θ(y|x) − γ)]``.
    """
    avg_logp = logp / n_tokens.clamp(min=1)
    return (-2.0 / beta) * batch_mean(F.logsigmoid(-beta * avg_logp - gamma), scale)


def masked_mse(x: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, scale: torch.Tensor | None = None
               ) -> torch.Tensor:
    """Mean squared error over the positions where ``mask`` holds (``x``: ``[B, T, H]``, mask ``[B, T]``):
    per sequence the mean over its positions and hidden units, then the mean over the batch.

    Padding never pulls activations anywhere, and, as everywhere in this module, long and short sequences
    weigh the same; so the loss of a batch is the mean of the losses of any split of it into equal parts,
    which is what lets a batch split across processes (DDP averages the parts) give one process's loss. A
    sequence with no position in ``mask`` contributes 0.
    """
    m = mask.to(torch.float32)
    sq = ((x.float() - target.float()) ** 2).mean(-1) * m
    return batch_mean(sq.sum(-1) / m.sum(-1).clamp(min=1), scale)


def rmu_loss(forget_hidden: torch.Tensor, forget_mask: torch.Tensor, control: torch.Tensor,
             retain_hidden: torch.Tensor | None = None, retain_frozen: torch.Tensor | None = None,
             retain_mask: torch.Tensor | None = None, *, alpha: float,
             scale: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """RMU (Li et al. 2024, WMDP, arXiv:2403.03218) at one layer.

    Forget term: MSE between the activations of the forget tokens in ``forget_mask`` (the trainer passes
    the scored ones, rmu.py) and the fixed control vector ``c·u`` (``control``, shape ``[H]``). Retain
    term: MSE between the retain tokens' activations and the original model's, times ``alpha`` (the stage's
    ``rmu_alpha``: no default here, the catalog holds it; unused without retain tensors). Both are
    :func:`masked_mse`: per sequence, then over the batch. Returns ``(total, forget_term, retain_term)``.
    """
    forget_term = masked_mse(forget_hidden, control.to(forget_hidden.dtype).expand_as(forget_hidden),
                             forget_mask, scale)
    if retain_hidden is None or retain_frozen is None or retain_mask is None:
        return forget_term, forget_term, torch.zeros_like(forget_term)
    retain_term = masked_mse(retain_hidden, retain_frozen, retain_mask, scale)
    return forget_term + alpha * retain_term, forget_term, retain_term
