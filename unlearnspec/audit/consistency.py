"""Whether a run's report is a report of the plan beside it, beyond naming its hash.

A signature says "this report came from this plan" (:mod:`unlearnspec.audit.signing`); a report that names the plan's
hash but dropped a claim, changed a bound or records other input hashes does not. :func:`plan_mismatches` compares
everything of the report that the plan decides (what :func:`~unlearnspec.report.verdict.build_objective_report` and
:func:`~unlearnspec.report.verdict.audit_from_plan` copy from it): the plan and spec hashes, the input files' and the
source model's hashes, the plan's seed, the objectives by name, each objective's request (title, basis, owner, goal,
target, method), its claims (name, arguments, compile status, checks), each planned check's bound and the model it is
decided on, the compiler's findings, and the chains (links and their hashes, budget; and that the plan's own links
hold together, :func:`~unlearnspec.report.chain.link_problems`). The verdicts themselves follow from the checks
(the report's own validators refuse a verdict that does not).
"""

from __future__ import annotations

import json

from unlearnspec.markdown import code_span
from unlearnspec.plan import GivenStage, ObjectivePlan, Plan, UnlearnStage
from unlearnspec.report.chain import link_problems
from unlearnspec.report.model import ObjectiveReport, Report
from unlearnspec.report.verdict import audit_from_plan


def _same(a: object, b: object) -> bool:
    """Equal as JSON (a plan's ``dict[str, object]`` beside a report's JSON values)."""
    return json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True, default=str)


def plan_mismatches(plan: Plan, report: Report) -> list[str]:
    """Every way ``report`` is not a report of ``plan``, in words (empty: it is one)."""
    out: list[str] = []
    a = report.audit
    if a.plan_hash != plan.plan_hash:
        return [f"it was made from plan {a.plan_hash[:12]}…, not from the `plan.json` beside it "
                f"({plan.plan_hash[:12]}…)"]
    expected = audit_from_plan(plan, device=a.device, started_at=a.started_at, finished_at=a.finished_at,
                               wall_seconds=a.wall_seconds)
    for field, what in (("spec_sha256", "the spec's sha256"), ("inputs", "the input files' hashes"),
                        ("model_sha256", "the source model's hash")):
        if getattr(a, field) != getattr(expected, field):
            out.append(f"{what} differ from the plan's")
    if a.seeds.get("plan", plan.seed) != plan.seed:
        out.append(f"its seed {a.seeds.get('plan')} is not the plan's ({plan.seed})")
    planned = {op.objective.name: op for op in plan.objectives}
    names = [o.name for o in report.objectives]
    if sorted(names) != sorted(planned):
        missing, extra = sorted(set(planned) - set(names)), sorted(set(names) - set(planned))
        out.append("its objectives are not the plan's"
                   + (f" (missing {', '.join(code_span(n) for n in missing)})" if missing else "")
                   + (f" (not in the plan: {', '.join(code_span(n) for n in extra)})" if extra else "")
                   + (" (one is given twice)" if not missing and not extra else ""))
    for o in report.objectives:
        if o.name in planned:
            out.extend(f"objective {code_span(o.name)}: {m}" for m in _objective_mismatches(planned[o.name], o))
    chains = [([lk.objective for lk in c.links], c.budget) for c in plan.chains]
    if [(c.links, c.budget) for c in report.chains] != chains:
        out.append("its chains of requests (order or budget) are not the plan's")
    elif [[s.link_hash for s in c.steps] for c in report.chains] != [[lk.link_hash for lk in c.links]
                                                                     for c in plan.chains]:
        out.append("its chains' steps record other link hashes than the plan's links")
    out.extend(f"the plan's chain does not hold together: {problem}" for problem in link_problems(plan))
    return out


def _objective_mismatches(op: ObjectivePlan, o: ObjectiveReport) -> list[str]:
    out: list[str] = []
    info = op.objective
    for field in ("title", "basis", "owner", "goal", "target"):
        if getattr(o, field) != getattr(info, field):
            out.append(f"its {code_span(field)} is not the plan's")
    stage = next((s for s in op.stages if isinstance(s, UnlearnStage | GivenStage)), None)
    if o.method != (stage.method if stage else "none"):
        out.append(f"its method {code_span(o.method)} is not the plan's")
    if o.findings != list(op.findings):
        out.append("the compiler's findings are not the plan's")
    mine = [(c.claim, c.args, c.compile_status, c.checks) for c in o.claims]
    theirs = [(c.claim, c.args, c.status, c.checks) for c in op.claims]
    if not _same(mine, theirs):
        shown = ", ".join(code_span(c.claim) for c in op.claims) or "none"
        out.append(f"its claims (names, arguments, statuses or checks) are not the plan's ({shown})")
    by_id = {c.check_id: c for c in o.checks}
    for mc in op.checks:
        r = by_id.get(mc.id)
        if r is None:
            out.append(f"the plan's check {code_span(mc.id)} is missing")
        elif r.threshold != mc.threshold or r.decided_on != mc.model:
            out.append(f"check {code_span(mc.id)} has another bound or decided model than the plan's")
        elif (r.metric, r.dataset) != (mc.metric, mc.dataset) and r.not_evaluated_reason is None:
            out.append(f"check {code_span(mc.id)} measured another metric or data set than the plan's and still decides")
    return out
