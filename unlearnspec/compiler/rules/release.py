"""Rules on the release: relearning budgets (UL402), quantization (UL408), deployment precision (UL501)."""

from __future__ import annotations

from collections.abc import Iterator

from unlearnspec.catalog import CODES, DEFAULT_RELEARN_STEPS
from unlearnspec.compiler.ast import Objective
from unlearnspec.compiler.diagnostics import Diagnostic
from unlearnspec.compiler.rules.base import (
    RuleContext,
    finding,
    goal_of,
    label,
    precision_of,
    release_label,
    release_of,
    rule,
    weights_leave,
)
from unlearnspec.markdown import code_span

UL402 = CODES["UL402"]


@rule(UL402, affects=frozenset({"robust_to_finetuning"}))
def relearning_budget_missing(obj: Objective, ctx: RuleContext) -> Iterator[Diagnostic]:
    c = obj.claim("robust_to_finetuning")
    if c is None or c.steps is not None or not weights_leave(obj) or goal_of(obj) == "suppression":
        return  # suppression on released weights: UL302
    yield finding(
        UL402, obj, c.span,
        f"claim `robust_to_finetuning` on {code_span(release_of(obj))} weights states no relearning budget: holders of the "
        "weights can fine-tune for as long as they like", claim=c.name,
        labels=release_label(obj, "the weights leave your control"),
        help=[f"state the budget the evaluation attacks with, e.g. `robust_to_finetuning steps {DEFAULT_RELEARN_STEPS}`; "
              "the claim then covers that many steps only",
              f"without it the evaluation uses {DEFAULT_RELEARN_STEPS} steps by default"])


UL408 = CODES["UL408"]


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


UL501 = CODES["UL501"]


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
            f"the model ships at {code_span(p.value)}: quantization can restore forgotten knowledge, so the plan evaluates "
            f"at {code_span(p.value)} too", labels=label(r.mode.span, "the release"),
            help=[f"keep `precision {p.value}`: every claim is evaluated at {code_span(p.value)} as well as at fp32, and "
                  "`robust_to_quantization` can be claimed on that evidence"])
