"""Rules on the release: relearning budgets (UL402), quantization (UL408), deployment precision (UL501)."""

from __future__ import annotations

from collections.abc import Iterator

from unlearnspec.compiler.ast import Objective
from unlearnspec.compiler.codes import CodePage
from unlearnspec.compiler.diagnostics import Diagnostic
from unlearnspec.compiler.evidence_defaults import DEFAULT_RELEARN_STEPS
from unlearnspec.compiler.rules.base import (
    RuleContext,
    finding,
    goal_of,
    label,
    paper,
    precision_of,
    release_label,
    release_of,
    rule,
    weights_leave,
)

_RELEARN_REFS = [
    "S. Hu et al., \"Jogging the Memory of Unlearned LLMs Through Targeted Relearning Attacks\", arXiv:2406.13356",
    "J. Łucki et al., \"An Adversarial Perspective on Machine Unlearning for AI Safety\", arXiv:2409.18025",
    "A. Deeb and F. Roger, \"Do Unlearning Methods Remove Information from Language Model Weights?\", "
    "arXiv:2410.08827",
]
_QUANT_REF = ("Z. Zhang et al., \"Catastrophic Failure of LLM Unlearning via Quantization\", arXiv:2410.16454")

UL402 = CodePage(
    code="UL402", name="relearning-budget-missing", severity="warning", category="feasibility",
    summary="Claim `robust_to_finetuning` without `steps N` when the weights are released (`open_weights`, "
            "`on_device`).",
    why="Whoever holds the weights can fine-tune them, and a few fine-tuning steps on small, even unrelated, data "
        "restore \"unlearned\" knowledge: ten unrelated examples recover RMU-unlearned knowledge (Łucki et al.), "
        "and relearning recovers 88% of pre-unlearning accuracy (Deeb & Roger). Robustness to fine-tuning can "
        "only be shown for a stated attack budget; without one the claim speaks of any fine-tuning. (The "
        f"evaluation then attacks with {DEFAULT_RELEARN_STEPS} steps by default.) Sources: Hu et al. arXiv:2406.13356; "
        "Łucki et al. arXiv:2409.18025; Deeb & Roger arXiv:2410.08827; Cooper et al. 2024, Section 4, mismatch M1.",
    example='release open_weights precision fp32\nclaims {\n  robust_to_finetuning\n}',
    instead='release open_weights precision fp32\nclaims {\n  robust_to_finetuning steps 50\n}',
    references=[*_RELEARN_REFS, paper("Section 4, mismatch M1")],
)


@rule(UL402, affects=frozenset({"robust_to_finetuning"}))
def relearning_budget_missing(obj: Objective, ctx: RuleContext) -> Iterator[Diagnostic]:
    c = obj.claim("robust_to_finetuning")
    if c is None or c.steps is not None or not weights_leave(obj) or goal_of(obj) == "suppression":
        return  # suppression on released weights: UL302
    yield finding(
        UL402, obj, c.span,
        f"claim `robust_to_finetuning` on `{release_of(obj)}` weights states no relearning budget: holders of the "
        "weights can fine-tune for as long as they like", claim=c.name,
        labels=release_label(obj, "the weights leave your control"),
        help=[f"state the budget the evaluation attacks with, e.g. `robust_to_finetuning steps {DEFAULT_RELEARN_STEPS}`; "
              "the claim then covers that many steps only",
              f"without it the evaluation uses {DEFAULT_RELEARN_STEPS} steps by default"])


UL408 = CodePage(
    code="UL408", name="quantization-precision-unstated", severity="warning", category="feasibility",
    summary="Claim `robust_to_quantization` while the release names no precision.",
    why="Quantization can restore \"forgotten\" knowledge: 4-bit quantization restored 83% of it against 21% at "
        "full precision (Zhang et al.). Robustness to quantization means something only at a stated precision; "
        "without one the claim covers every precision someone might choose, and the evaluation can only test "
        "documented defaults (int8 and int4). Source: Zhang et al. arXiv:2410.16454.",
    example='release open_weights\nclaims {\n  robust_to_quantization\n}',
    instead='release open_weights precision int4\nclaims {\n  robust_to_quantization\n}',
    references=[_QUANT_REF],
)


@rule(UL408, affects=frozenset({"robust_to_quantization"}))
def quantization_precision_unstated(obj: Objective, ctx: RuleContext) -> Iterator[Diagnostic]:
    c = obj.claim("robust_to_quantization")
    if c is None or precision_of(obj) is not None:
        return
    mode = release_of(obj) or "open_weights"
    yield finding(
        UL408, obj, c.span,
        "claim `robust_to_quantization` names no deployment precision: the evaluation can only test `int8` and "
        "`int4` by default", claim=c.name, labels=release_label(obj, "no precision given"),
        help=[f"state the precision you ship, e.g. `release {mode} precision int4`; the evaluation quantizes to it"])


UL501 = CodePage(
    code="UL501", name="deployment-precision", severity="note", category="feasibility",
    summary="The release names no precision (or there is no `release` at all), or ships below fp32 (`bf16`, "
            "`fp16`, `int8`, `int4`).",
    why="Quantizing an unlearned model can bring forgotten knowledge back: 4-bit quantization restored 83% of it, "
        "against 21% at full precision (Zhang et al.). Evidence must therefore be produced at the precision the "
        "model is deployed at. When the release states a precision below fp32, the plan evaluates at it as well "
        "as at fp32 (the note says so, so that a reviewer knows the numbers that matter); when it states none, "
        "the evaluation runs at fp32 only and may not describe the deployed model. Source: Zhang et al. "
        "arXiv:2410.16454.",
    example='release open_weights',
    instead='release open_weights precision int4   # the plan evaluates at int4 as well',
    references=[_QUANT_REF],
)


@rule(UL501)
def deployment_precision(obj: Objective, ctx: RuleContext) -> Iterator[Diagnostic]:
    r = obj.release
    if r is None:
        yield finding(
            UL501, obj, obj.name_span,
            "the objective names no `release`: the deployment precision is unknown, and quantized copies can "
            "restore forgotten knowledge",
            help=["add `release api precision fp32` (or the mode and precision you ship), so that evaluation runs "
                  "at deployment precision"])
        return
    p = r.precision
    if p is None:
        if obj.has_claim("robust_to_quantization"):
            return  # UL408 says it about the claim
        yield finding(
            UL501, obj, r.mode.span,
            f"`release {r.mode.value}` names no precision: the evaluation runs at fp32, and quantized copies can "
            "restore forgotten knowledge",
            help=[f"add the precision you ship, e.g. `release {r.mode.value} precision int8`; the plan then "
                  "evaluates at it"])
    elif p.value != "fp32":
        yield finding(
            UL501, obj, p.span,
            f"the model ships at `{p.value}`: quantization can restore forgotten knowledge, so the plan evaluates "
            f"at `{p.value}` too", labels=label(r.mode.span, "the release"),
            help=[f"keep `precision {p.value}`: every claim is evaluated at `{p.value}` as well as at fp32, and "
                  "`robust_to_quantization` can be claimed on that evidence"])
