"""The attacks an evaluation runs on the unlearned model, and their defaults."""

from __future__ import annotations

DEFAULT_RELEARN_STEPS = 20
"""Relearning steps when ``robust_to_finetuning`` gives none, and of the open-weights attack (A2): Hu et al.,
arXiv:2406.13356, recover unlearned knowledge in tens of steps."""

QUANTIZED = ("int8", "int4")
"""Precisions ``robust_to_quantization`` is tested at when the release precision is not below fp32."""
