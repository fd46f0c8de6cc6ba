"""From measured checks to claim verdicts, in words a reviewer can check against the numbers.

The rules, in order (``claim_verdict``):

1. A claim the compiler found ``cannot_be_met`` gets verdict ``cannot_be_met`` whatever its numbers
   say: the claim is not technically achievable as written, so passing measurements must not turn it
   into a pass. Its checks are still reported.
2. A claim with any failed check fails.
3. A claim with any check not evaluated (no result, no value, an attack that did not run) — or with
   no check that has a threshold at all — is ``not_evaluated``. Missing evidence is never a pass.
4. A claim with any ``inconclusive`` check (its confidence interval straddles the bound, or the
   test cannot fail at this sample size) is ``inconclusive``: the burden of proof is on the claim,
   so it is not a pass, and the objective is incomplete (exit 3).
5. Otherwise it passes. A ``cannot_be_verified`` claim gets this numeric verdict, and its status and
   the findings behind it stay beside the verdict in every rendering.

An objective fails if any claim fails or cannot be met; it is incomplete if nothing failed but some
claim was not evaluated or inconclusive (or it has no claims); otherwise it passes. A report rolls objectives up the
same way. See ``model.py`` for the exit codes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from unlearnspec.catalog import CODES, MEMBERSHIP_ATTACKS, METRICS, label
from unlearnspec.catalog.vocab import REFERENCE_LABELS
from unlearnspec.plan import (
    ClaimPlan,
    ClaimStatus,
    GivenStage,
    MetricCheck,
    ObjectivePlan,
    Plan,
    ReferenceStage,
    UnlearnStage,
)
from unlearnspec.report.chain import ChainReport, Deciding, RecheckedCheck
from unlearnspec.report.interval_kinds import kind_name
from unlearnspec.report.model import (
    AuditTrail,
    CheckResult,
    ClaimVerdict,
    GivenModel,
    ObjectiveReport,
    Report,
    TrainingLog,
)
from unlearnspec.report.rules import (  # noqa: F401 - the rules are part of this module's interface
    EXIT_CODES,
    OP_SYMBOLS,
    Overall,
    Verdict,
    claim_verdict,
    decision_reason,
    exit_code,
    fmt_estimate,
    fmt_number,
    objective_overall,
    overall,
    report_overall,
)

# --- words ------------------------------------------------------------------------------------------

FAR_MORE = 100
"""Past this many times the items a check had, "about N items would settle it" is not stated as a count: the
rule behind it (``intervals.items_to_settle``) is rough, and a count in the millions only says the estimate sits
on the bound."""


#: The model each family of metric is measured relative to: its value there is 0 by definition, not a measurement
#: (a drop from the original's utility, a recovery of what the unlearned model lost, a gap to the reference).
RELATIVE_TO: dict[str, str] = {"utility": "original", "relearn": "unlearned", "quantize": "unlearned",
                               "representation": "reference", "privleak": "reference"}


def by_definition(check: CheckResult, model: str) -> bool:
    """Whether ``model``'s value of ``check`` is 0 because the metric is measured relative to that model."""
    metric = METRICS.get(check.metric)
    return (metric is not None and RELATIVE_TO.get(metric.family) == model and model not in check.interval
            and check.values.get(model) == 0.0)  # type: ignore[arg-type]


def fmt_interval(check: CheckResult, model: str) -> str:
    """``0.52 [0.41, 0.63], n=26`` — a model's value with its interval and sample size; beside the plan's
    threshold (:func:`fmt_estimate`) when that value is what the threshold is held to. A value with no interval says
    so: ``0 (by definition)`` where the metric is measured relative to the model, ``(no interval)`` where the check's
    other values have one (a check with none at all, intervals off, says so once: :func:`describe_check`)."""
    v = check.values.get(model)  # type: ignore[arg-type]
    if v is None:
        return "n/a"
    if by_definition(check, model):
        return f"{fmt_number(v)} (by definition)"
    bound = check.threshold.value if check.threshold is not None and check.decision is None else None
    iv = check.interval.get(model)
    text = fmt_estimate(v, iv, check.n.get(model), bound)
    if iv is None and check.interval:
        text += " (no interval)"
    return text


def decision_text(check: CheckResult) -> str:
    """The deciding quantity with its interval and bound, e.g. ``|AUC gap| 0.04 [0.0, 0.12] ≤ 0.1``."""
    d = check.decision
    if d is None:
        return ""
    return (f"{d.quantity} {fmt_estimate(d.value, d.interval, bound=d.threshold.value)} vs "
            f"{OP_SYMBOLS[d.threshold.op]} {fmt_number(d.threshold.value)}")


def metric_label(metric: str) -> str:
    """The metric's label in reports (the catalog's; an unknown name with its underscores as spaces)."""
    return label(metric)


def threshold_text(check: CheckResult) -> str:
    if check.threshold is None:
        return "none"
    return f"{OP_SYMBOLS[check.threshold.op]} {fmt_number(check.threshold.value)}"


def deciding_part(check: CheckResult) -> str | None:
    """The item type (and membership attack) a worst-case check shows, e.g. ``qa, Min-K% attack``."""
    kind, attack = check.extra.get("deciding_type"), check.extra.get("deciding_attack")
    if not isinstance(kind, str):
        return None
    known = MEMBERSHIP_ATTACKS.get(attack) if isinstance(attack, str) else None
    return kind.replace("_", " ") + (f", {known.label} attack" if known is not None else "")


def where_text(check: CheckResult) -> str:
    """Where the metric was measured: dataset (and the item type a worst case shows), probe, attack."""
    part = deciding_part(check)
    parts = [f"on {check.dataset}" + (f" ({part})" if part else "")]
    if check.probe and check.probe not in ("relearn", "quantize"):  # those name the attack, not prompts
        parts.append(f"{check.probe.replace('_', '-')} prompts")
    relearned_on = check.extra.get("relearned_on")
    if check.attack == "relearn" and isinstance(relearned_on, str):
        parts.append(f"after relearning on {relearned_on}")
    elif check.attack:
        parts.append(f"after the {check.attack} attack")
    elif check.decided_on == "attacked":
        parts.append("after the attack")
    if check.decided_on == "served":
        parts.append("as served")
    return ", ".join(parts)


def _reference_shown(check: CheckResult) -> float | None:
    """The reference value a check's gap was measured beside: for a model measured as released (quantized) with the
    reference quantized alike (``extra["reference_precision"]`` is the check's ``precision``), the quantized
    reference's (``extra["reference_attacked"]``), not the full-precision one its gap does not involve."""
    extra = check.extra
    if "reference_precision" in extra and extra["reference_precision"] == extra.get("precision"):
        value = extra.get("reference_attacked")
        return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
    return check.values.reference


def deciding(check: CheckResult) -> Deciding:
    """What decided ``check`` (the chain's re-checks and the card show it): its ``decision`` when it has one (the
    quantity, its interval and n, the bound on it), else the decided model's value, interval and n against the
    plan's threshold; never the decided model's interval beside a quantity it did not decide. A decided value
    without an interval is a test's p-value decided by the test (``by_test``: the catalog's metric is a p-value,
    forget quality's KS test) or any other value decided on its point value, as a run with intervals off decides
    (``point_value``); one that is inconclusive for want of an interval says why instead. A decision that records no
    n (reports before it did) takes the decided model's."""
    model = check.decided_on
    own_n = check.n.get(model)
    d = check.decision
    if d is None:
        iv = check.interval.get(model)
        interval = (iv[0], iv[1]) if iv else None
    else:
        interval = d.interval
    metric = METRICS.get(check.metric)
    by_test = interval is None and metric is not None and metric.tested and check.status in ("pass", "fail")
    point_value = interval is None and not by_test and check.status in ("pass", "fail")
    if d is None:
        return Deciding(model=model, value=check.value, interval=interval, n=own_n, threshold=check.threshold,
                        by_test=by_test, point_value=point_value, reference=_reference_shown(check))
    return Deciding(model=model, quantity=d.quantity, value=d.value, interval=interval, n=d.n or own_n,
                    threshold=d.threshold, by_test=by_test, point_value=point_value,
                    why=decision_reason(check.status, d), reference=_reference_shown(check))


def rechecked(then: CheckResult | None, now: CheckResult) -> RecheckedCheck:
    """A chain's re-check row for one check: ``then`` as the earlier request's report has it (``None``: it has no
    such check), ``now`` computed again on the later model."""
    return RecheckedCheck(check_id=now.check_id, metric=now.metric, then=then.value if then is not None else None,
                          now=now.value, status_then=then.status if then is not None else "not_evaluated",
                          status_now=now.status, deciding_then=deciding(then) if then is not None else None,
                          deciding_now=deciding(now))


def code_words(code: str) -> str:
    """``UL405 (forget set completeness)``: a finding's code with its name in words (the catalog's), so that no code
    stands alone in a sentence or a table; an unknown code as is."""
    page = CODES.get(code)
    return f"{code} ({page.name.replace('-', ' ')})" if page is not None else code


def claim_label(claim: str, args: Mapping[str, object]) -> str:
    if not args:
        return claim
    inner = ", ".join(f"{k} {v}" for k, v in args.items())
    return f"{claim} ({inner})"


def describe_check(check: CheckResult, reference_label: str = "reference") -> str:
    """One check in a sentence, e.g. ``membership AUC 0.52 ≤ 0.6 on forget (original 0.91, ...)``."""
    label = metric_label(check.metric)
    where = where_text(check)
    context = [f"{reference_label if name == 'reference' else name} {fmt_interval(check, name)}"
               for name in ("original", "unlearned", "reference", "attacked", "served")
               if name != check.decided_on and check.values.get(name) is not None]  # type: ignore[arg-type]
    points = not check.interval  # no interval at all (intervals off): every number is a point value
    tail = f" (for context{', point values' if points else ''}: {'; '.join(context)})" if context else ""
    status = check.status
    if status == "not_evaluated":
        return f"{label} {where} was not evaluated: {check.not_evaluated_reason or 'no value'}{tail}"
    value = fmt_interval(check, check.decided_on) if check.value is not None else "n/a"
    if check.confidence is not None and check.interval.get(check.decided_on):
        kind = kind_name(check, check.decided_on)
        value += f" ({check.confidence:.0%} {kind + ' ' if kind else ''}interval)"
    elif points and check.value is not None:
        value += " (point value, no interval)"
    if status == "info":
        return f"{label} {where}: {check.decided_on} {value}, no threshold (for information){tail}"
    assert check.threshold is not None
    if check.decision is not None:
        return _describe_decision(check, label, where, value, tail)
    symbol = OP_SYMBOLS[check.threshold.op]
    bound = fmt_number(check.threshold.value)
    if status == "inconclusive":
        return (f"{label} {value} is inconclusive against {symbol} {bound} {where}: "
                f"the interval straddles the bound{tail}")
    if status == "pass":
        return f"{label} {value} {symbol} {bound} {where}{tail}"
    return f"{label} {value} is not {symbol} {bound} {where}{tail}"


def _describe_decision(check: CheckResult, label: str, where: str, value: str, tail: str) -> str:
    """A check decided on a derived quantity (a gap to the reference, a p-value with its attainable
    range): the model's value is stated on its own, and the bound only beside the quantity it was
    applied to, so that no sentence reads as ``0.44 ≤ 0.2``."""
    d = check.decision
    assert d is not None
    symbol, bound = OP_SYMBOLS[d.threshold.op], fmt_number(d.threshold.value)
    decided = f"{d.quantity} {fmt_estimate(d.value, d.interval, bound=d.threshold.value)}"
    if d.interval is not None and (kind := kind_name(check)):
        decided += f" ({kind} interval)"
    why = decision_reason(check.status, d)
    if check.status == "pass":
        outcome = f"{decided} {symbol} {bound}"
    elif check.status == "fail":
        outcome = f"{decided}, which is not {symbol} {bound}" + (f": {why}" if why else "")
    elif why:
        outcome = f"{decided}, inconclusive against {symbol} {bound}: {why}"
    else:
        side = "pass" if d.threshold.holds(d.value) else "fail"
        if d.more_items and d.n and d.more_items > FAR_MORE * d.n:  # a rough rule's count that large says only this
            more = (f"; the estimate sits almost on the bound, so only far more items than these {d.n} (over "
                    f"{FAR_MORE} times as many) could settle it")
        else:
            more = (f"; about {d.more_items} items would settle it (as a {side}, if the estimate holds)"
                    if d.more_items else "")
        outcome = f"{decided}, inconclusive against {symbol} {bound}: the interval straddles the bound{more}"
    return f"{label} {where}: {check.decided_on} {value}; decided on {outcome}{tail}"


def explain_claim(compile_status: ClaimStatus, verdict: Verdict, checks: Sequence[CheckResult],
                  findings: Sequence[str], reference_label: str = "reference") -> str:
    """The plain-language sentence beside a verdict: what decided it, with the numbers."""
    by_status: dict[str, list[str]] = {"pass": [], "fail": [], "inconclusive": [], "not_evaluated": [], "info": []}
    for c in checks:
        by_status[c.status].append(describe_check(c, reference_label))
    codes = ", ".join(code_words(f) for f in findings)
    because = f"; its findings: {codes}" if codes else ""
    measured = "; ".join(by_status["fail"] + by_status["pass"] + by_status["inconclusive"] + by_status["not_evaluated"]
                         + by_status["info"])

    if verdict == "cannot_be_met":
        text = (f"Cannot be met as written, so it does not pass whatever the measurements show: the compiler found "
                f"this claim technically unachievable{because}.")
        if measured:
            text += f" Measured for information: {measured}."
        return text
    if verdict == "fail":
        text = f"Fails: {'; '.join(by_status['fail'])}."
        if by_status["pass"]:
            text += f" Passes: {'; '.join(by_status['pass'])}."
        if by_status["inconclusive"]:
            text += f" Inconclusive: {'; '.join(by_status['inconclusive'])}."
        if by_status["not_evaluated"]:
            text += f" Not evaluated: {'; '.join(by_status['not_evaluated'])}."
    elif verdict == "inconclusive":
        text = (f"Inconclusive, so not a pass (the burden of proof is on the claim): "
                f"{'; '.join(by_status['inconclusive'])}.")
        if by_status["pass"]:
            text += f" Passes so far: {'; '.join(by_status['pass'])}."
        if by_status["not_evaluated"]:
            text += f" Not evaluated: {'; '.join(by_status['not_evaluated'])}."
    elif verdict == "not_evaluated":
        if by_status["not_evaluated"]:
            text = f"Not evaluated, so not a pass: {'; '.join(by_status['not_evaluated'])}."
        else:
            text = "Not evaluated, so not a pass: no check with a threshold decides this claim."
        if by_status["inconclusive"]:
            text += f" Inconclusive: {'; '.join(by_status['inconclusive'])}."
        if by_status["pass"]:
            text += f" Passes so far: {'; '.join(by_status['pass'])}."
    else:
        text = f"Passes: {'; '.join(by_status['pass'])}."
    if by_status["info"]:
        text += f" For information: {'; '.join(by_status['info'])}."
    if compile_status == "cannot_be_verified":
        text += (f" The compiler found this claim cannot be fully verified as written{because}; "
                 f"the verdict covers only the stated checks.")
    return text


# --- from a plan and its measurements to verdicts -------------------------------------------------

def _placeholder(mc: MetricCheck, reason: str) -> CheckResult:
    return CheckResult(
        check_id=mc.id, metric=mc.metric, dataset=mc.dataset,
        probe=None if mc.model == "attacked" else mc.probe,
        attack=mc.probe if mc.model == "attacked" else None,
        threshold=mc.threshold, decided_on=mc.model, not_evaluated_reason=reason,
    )


def _mismatch(mc: MetricCheck, r: CheckResult) -> str | None:
    diffs = []
    if r.metric != mc.metric:
        diffs.append(f"metric {r.metric!r} instead of {mc.metric!r}")
    if r.dataset != mc.dataset:
        diffs.append(f"dataset {r.dataset!r} instead of {mc.dataset!r}")
    if r.threshold != mc.threshold:
        diffs.append("a threshold other than the plan's")
    if r.decided_on != mc.model:
        diffs.append(f"decided on {r.decided_on!r} instead of {mc.model!r}")
    return f"the result does not match the plan ({'; '.join(diffs)})" if diffs else None


def check_results(objective_plan: ObjectivePlan, results: Mapping[str, CheckResult]) -> list[CheckResult]:
    """The plan's checks in plan order, each with its result or an explicit not-evaluated placeholder.

    A result that disagrees with its planned check (metric, dataset, threshold, model) is kept for
    its values but marked not evaluated: the plan, reviewed before the run, decides what counts.
    Results for checks the plan does not name follow, sorted by id, and decide no claim."""
    out: list[CheckResult] = []
    for mc in objective_plan.checks:
        r = results.get(mc.id)
        if r is None:
            out.append(_placeholder(mc, "no result was produced for this check"))
            continue
        reason = _mismatch(mc, r)
        if reason is not None:
            # not evaluated: whatever the result decided (passed, inconclusive, its deciding quantity) was decided on
            # something other than the plan's check, so none of it stands
            data = r.model_dump()
            if r.not_evaluated_reason:  # the run's own reason comes first: it says what the data lacked
                reason = f"{r.not_evaluated_reason}; and {reason}"
            data.update(threshold=mc.threshold.model_dump() if mc.threshold else None,
                        decided_on=mc.model, passed=None, inconclusive=False, decision=None,
                        not_evaluated_reason=reason)
            r = CheckResult.model_validate(data)
        out.append(r)
    planned = {mc.id for mc in objective_plan.checks}
    out.extend(results[k] for k in sorted(results) if k not in planned)
    return out


def _claim_findings(claim: ClaimPlan, objective_plan: ObjectivePlan) -> list[str]:
    codes = list(claim.reasons)
    codes += [f.code for f in objective_plan.findings if f.claim == claim.claim]
    return list(dict.fromkeys(codes))


def reference_label(objective_plan: ObjectivePlan) -> str:
    for stage in objective_plan.stages:
        if isinstance(stage, ReferenceStage):
            return REFERENCE_LABELS.get(stage.strategy, "reference")
    return "reference"


def _decide(objective_plan: ObjectivePlan, checks: Sequence[CheckResult]) -> list[ClaimVerdict]:
    by_id = {c.check_id: c for c in checks}
    ref = reference_label(objective_plan)
    verdicts = []
    for claim in objective_plan.claims:
        mine = [by_id[i] if i in by_id else _placeholder(
                    MetricCheck(id=i, metric="unknown", dataset="unknown"),
                    "the plan names this check but does not define it")
                for i in claim.checks]
        verdict = claim_verdict(claim.status, mine)
        findings = _claim_findings(claim, objective_plan)
        verdicts.append(ClaimVerdict(
            claim=claim.claim, args=claim.args, compile_status=claim.status, verdict=verdict,  # type: ignore[arg-type]
            checks=list(claim.checks), findings=findings,
            explanation=explain_claim(claim.status, verdict, mine, findings, ref),
        ))
    return verdicts


def decide(objective_plan: ObjectivePlan, results: Mapping[str, CheckResult]) -> list[ClaimVerdict]:
    """Every claim of the plan with its verdict, findings and explanation."""
    return _decide(objective_plan, check_results(objective_plan, results))


def build_objective_report(objective_plan: ObjectivePlan, results: Mapping[str, CheckResult],
                           training: TrainingLog | None = None) -> ObjectiveReport:
    """The report section of one objective: its verdicts, every check (placeholders included),
    the compiler's findings and the training log."""
    checks = check_results(objective_plan, results)
    # A claim naming a check the plan does not define still gets a (not evaluated) row to point at.
    known = {c.check_id for c in checks}
    for claim in objective_plan.claims:
        for i in claim.checks:
            if i not in known:
                checks.append(_placeholder(MetricCheck(id=i, metric="unknown", dataset="unknown"),
                                           "the plan names this check but does not define it"))
                known.add(i)
    claims = _decide(objective_plan, checks)
    info = objective_plan.objective
    unlearn = next((s for s in objective_plan.stages if isinstance(s, UnlearnStage | GivenStage)), None)
    reference = next((s for s in objective_plan.stages if isinstance(s, ReferenceStage)), None)
    given = GivenModel(source=unlearn.source, form=unlearn.form, sha256=unlearn.sha256, method=unlearn.method) \
        if isinstance(unlearn, GivenStage) else None
    return ObjectiveReport(
        name=info.name, title=info.title, basis=info.basis, owner=info.owner, goal=info.goal,
        suppression_via=info.suppression_via, target=info.target, release=info.release,
        method=unlearn.method if unlearn else "none",
        method_family=unlearn.family if unlearn else None,
        reference=reference.strategy if reference else None, given=given,
        claims=claims, checks=checks, findings=list(objective_plan.findings), training=training,
        overall=objective_overall(claims),
    )


def build_report(objectives: Sequence[ObjectiveReport], audit: AuditTrail,
                 chains: Sequence[ChainReport] = ()) -> Report:
    result = report_overall(objectives, [o for c in chains for o, _ in c.outcomes()])
    return Report(objectives=list(objectives), audit=audit, overall=result, chains=list(chains),
                  exit_code=EXIT_CODES[result])  # type: ignore[arg-type]


def audit_from_plan(plan: Plan, **run_facts: object) -> AuditTrail:
    """An audit trail with the plan's hashes filled in; ``run_facts`` are the run's own facts
    (``device``, ``started_at``, ``finished_at``, ``wall_seconds``, ``libraries``, ``seeds``, ...)."""
    data: dict[str, object] = {
        "plan_hash": plan.plan_hash or plan.compute_hash(),
        "spec_sha256": plan.spec.sha256,
        "inputs": [f.model_dump() for f in plan.inputs],
        "model_sha256": next((o.model.sha256 for o in plan.objectives if o.model.sha256), None),
        "tool_version": plan.tool.version,
        "seeds": {"plan": plan.seed},
    }
    data.update(run_facts)
    return AuditTrail.model_validate(data)
