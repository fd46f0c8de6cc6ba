"""`unlearnspec show`: a plan as a review document for a pull request (Markdown) or for tools (JSON).

The review answers what a reviewer signs off on: the objective in plain words; each claim with
its compile-time status, the checks that will decide it and their thresholds; what the compiler
flagged and which risks were accepted (with the justification); what will run — stages, method and
why, hyperparameters, probes, attacks, reference — and roughly how long on CPU and GPU; and the
hashes that pin the inputs. Both formats render from one context (:func:`review_context`), so the
Markdown and the JSON never disagree.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from unlearnspec.catalog import FAMILIES, METHODS, NEEDS, TOLERANCE_CLAIM, TOLERANCE_SUMMARY, UNKNOWN, vocab
from unlearnspec.catalog.metrics import OP_SYMBOLS
from unlearnspec.compiler.check import plan_file
from unlearnspec.compiler.explain import guarantee_words, render_template
from unlearnspec.compiler.render import render_human
from unlearnspec.markdown import code_span
from unlearnspec.plan import (
    AttackStage,
    EvaluateStage,
    GivenStage,
    MetricCheck,
    ObjectivePlan,
    Plan,
    PlanLoadError,
    PrepareStage,
    QuantizeAttack,
    ReferenceStage,
    RelearnAttack,
    UnlearnStage,
    VerdictStage,
    is_plan_path,
)
from unlearnspec.report.chain import requests_budget_text

REVIEW_FORMAT_VERSION = "1"


# -- loading ----------------------------------------------------------------------------------------


def load_plan(path: Path) -> tuple[Plan | None, str]:
    """A saved plan, validated (:meth:`Plan.load`); or ``None`` and a one-line error a person can act on."""
    try:
        return Plan.load(path), ""
    except PlanLoadError as err:
        return None, f"error: {err.message}" + "".join(f"\n  = help: {h}" for h in err.help)


def load_plan_or_spec(path: Path) -> tuple[Plan | None, str]:
    """A plan from a ``.json`` file, or a spec planned in memory (``--allow-infeasible``: the review
    shows unmet claims as `cannot be met` rather than refusing). With a plan, the message is empty when
    the spec planned cleanly and names its errors when ``plan`` would refuse it (the caller exits 1)."""
    plan, err, _ = load_for_review(path)
    return plan, err


def load_for_review(path: Path) -> tuple[Plan | None, str, list[str]]:
    """:func:`load_plan_or_spec`, and the files that reading ``path`` took in: the plan file itself, or the spec
    and every data file it names (an output must not be written over one of them)."""
    if is_plan_path(path):
        plan, err = load_plan(path)
        return plan, err, [str(path)]
    if not path.exists():
        return None, f"error: {code_span(path)} does not exist", []
    plan, result = plan_file(path, allow_infeasible=True)
    if plan is None or result.errors:
        return plan, render_human([result]).rstrip("\n"), result.read_files
    return plan, "", result.read_files


# -- the review context -------------------------------------------------------------------------------


def plan_sentence(op: ObjectivePlan) -> str:
    """The objective in one plain sentence, from the plan (the same wording as ``explain``)."""
    o = op.objective
    unlearn = _stage(op, UnlearnStage)
    verb = vocab.GOAL_VERBS[o.goal]
    what = f"{o.target.kind} information about the {o.target.category} “{o.target.name}”"
    via = f" in the {o.suppression_via}" if o.suppression_via else ""
    method = ""
    given = _stage(op, GivenStage)
    if unlearn is not None:
        who = "named in the spec" if unlearn.chosen_by == "spec" else "chosen by the compiler"
        method = f", using {code_span(unlearn.method)} ({who})"
    elif given is not None:  # an audit: the checkpoint is given, not produced here
        how = "by a method that is not stated" if given.method == UNKNOWN else f"with {code_span(given.method)}, as stated"
        method = f": audit the given checkpoint {code_span(given.source)}, unlearned {how}"
    release = ""
    if o.release.mode != "unspecified":
        release = f"; the model is released by {o.release.mode.replace('_', ' ')}"
        if o.release.precision:
            release += f" at {o.release.precision}"
    return f"{verb} {what} from {code_span(op.model.source)}{via}{method}{release}{guarantee_words(o.guarantee)}."


def _stage(op: ObjectivePlan, kind: type[Any]) -> Any:
    return next((s for s in op.stages if isinstance(s, kind)), None)


def threshold_text(mc: MetricCheck) -> str:
    if mc.threshold is None:
        return "none (information)"
    unit = "%" if mc.metric in vocab.METRICS and vocab.METRICS[mc.metric].unit == "percent" else ""
    return f"{OP_SYMBOLS[mc.threshold.op]} {mc.threshold.value:g}{unit}"


def where_text(mc: MetricCheck) -> str:
    if mc.model == "attacked":
        if mc.probe == "relearn":
            on = " on related data" if mc.params.get("data") == "related" else " on the forget set"
            return f"{mc.dataset}, after {mc.params.get('steps')} relearning steps{on}"
        return f"{mc.dataset}, quantized to {mc.params.get('precision')}"
    parts = [mc.dataset]
    if mc.probe:
        parts.append(f"{mc.probe.replace('_', '-')} prompts")
    if mc.model == "served":
        parts.append("served behind the filter")
    return ", ".join(parts)


def _check_row(mc: MetricCheck, used_by: list[str]) -> dict[str, Any]:
    summary = vocab.METRICS[mc.metric].summary if mc.metric in vocab.METRICS else mc.metric
    status = "planned"
    if mc.missing:
        status = "not measurable: needs " + ", ".join(NEEDS[m].short if m in NEEDS else m for m in mc.missing)
    elif mc.threshold is None:
        status = "information only"
    return {"id": mc.id, "metric": mc.metric, "summary": summary, "threshold": threshold_text(mc),
            "source": mc.source, "where": where_text(mc), "claims": used_by, "note": mc.note, "status": status,
            "deciding": mc.threshold is not None and not mc.missing}


_STAGE_ORDER = (PrepareStage, ReferenceStage, UnlearnStage, GivenStage, EvaluateStage, AttackStage, VerdictStage)


def _hyperparameters(u: UnlearnStage) -> list[dict[str, str]]:
    out = []
    for name in (METHODS[u.method].review if u.method in METHODS else ()):
        if name == "adapter":
            value = "full fine-tuning" if u.adapter == "full" else (
                f"LoRA rank {u.lora.rank}, alpha {u.lora.alpha}, dropout {u.lora.dropout:g}" if u.lora else "LoRA")
        elif name == "stopping":
            s = u.stopping
            value = (f"forget loss > {s.ratio:g} × holdout loss (checked every {s.check_every} steps)"
                     if s.kind == "holdout_loss" else "fixed number of steps")
        elif name == "rmu_layer" and u.rmu_layer is None:
            value = "the middle decoder layer (resolved when the model is loaded)"
        elif name == "rmu_steering_coeff":
            value = (f"{u.rmu_steering_coeff:g} × the original model's mean activation norm at the steered layer on "
                     "the forget tokens (measured before training)")
        else:
            v = getattr(u, name)
            value = f"{v:g}" if isinstance(v, float) else str(v)
        out.append({"name": name, "value": value})
    return out


def _stages(op: ObjectivePlan) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for s in op.stages:
        item: dict[str, Any] = {"kind": s.kind}
        if isinstance(s, PrepareStage | VerdictStage):
            item["summary"] = s.description
        elif isinstance(s, ReferenceStage):
            item["summary"] = vocab.REFERENCE_WORDS[s.strategy] + (f": {code_span(s.model)}" if s.model else "")
            item["detail"] = s.description
            recipe_hash = s.recipe.get("recipe_hash") if s.recipe else None  # a free-form dict: any JSON
            item["recipe_hash"] = None if recipe_hash is None else str(recipe_hash)
        elif isinstance(s, GivenStage):
            how = "method not stated" if s.method == UNKNOWN else f"{code_span(s.method)} as stated, {FAMILIES[s.family].review}"
            item["summary"] = (f"the given {'adapter' if s.form == 'adapter' else 'model'} {code_span(s.source)} "
                               f"(sha256 {s.sha256[:12]}…; {how}) is the unlearned model; nothing is unlearned here")
        elif isinstance(s, UnlearnStage):
            who = "named in the spec" if s.chosen_by == "spec" else "chosen by the compiler"
            item["summary"] = f"{code_span(s.method)} ({FAMILIES[s.family].review}, {who})"
            item["rationale"] = re.split(r"; (?=[A-Z]+\d+: )", s.rationale)
            item["hyperparameters"] = _hyperparameters(s)
        elif isinstance(s, EvaluateStage):
            item["summary"] = "measure " + ", ".join(s.models) + " models"
            item["probes"] = [{"name": p.name, "description": p.description, "templates": p.templates}
                              for p in s.probes]
            item["representation_probe"] = s.representation_probe
            item["settings"] = (f"greedy decoding, {s.max_new_tokens} new tokens; verbatim prefixes of "
                                f"{s.prefix_fraction:g} of each text; Min-K% with k = {s.mink_fraction:g}; "
                                f"batches of {s.eval_batch_size}")
        elif isinstance(s, AttackStage):
            item["summary"] = f"{len(s.attacks)} attack{'s' * (len(s.attacks) != 1)}"
            item["attacks"] = [_attack_text(a) for a in s.attacks]
        out.append(item)
    return out


def _attack_text(a: RelearnAttack | QuantizeAttack) -> str:
    if isinstance(a, RelearnAttack):
        data = "half the forget set's facts" if a.data == "forget_subset" and a.fraction == 0.5 else (
            f"{a.fraction:g} of the forget set's facts" if a.data == "forget_subset" else "related data")
        return (f"relearn: {a.steps} fine-tuning steps on {data} (learning rate {a.learning_rate:g}, batch "
                f"{a.batch_size}, seed {a.seed}), then measure again")
    return f"quantize: weights to {a.precision}, then measure again"


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"about {seconds:.0f} s"
    if seconds < 5400:
        return f"about {seconds / 60:.0f} min"
    return f"about {seconds / 3600:.1f} h"


def objective_context(op: ObjectivePlan) -> dict[str, Any]:
    used: dict[str, list[str]] = {}
    for c in op.claims:
        for cid in c.checks:
            used.setdefault(cid, []).append(c.claim)
    by_id = {mc.id: mc for mc in op.checks}
    claims = []
    for c in op.claims:
        accepted = [f for f in op.findings if f.accepted and f.code in c.reasons]
        claims.append({
            "claim": c.claim, "args": c.args, "summary": (vocab.CLAIMS[c.claim].summary if c.claim in vocab.CLAIMS
                                                   else TOLERANCE_SUMMARY if c.claim == TOLERANCE_CLAIM else c.claim),
            "status": c.status, "label": vocab.CLAIM_STATUS_WORDS[c.status], "reasons": c.reasons,
            "accepted": [f.code for f in accepted], "why": c.evidence_note, "instead": c.instead,
            "checks": [_check_row(by_id[i], used.get(i, [])) for i in c.checks if i in by_id],
        })
    unattached = [_check_row(mc, []) for mc in op.checks if mc.id not in used]
    findings = [{"code": f.code, "severity": f.severity, "message": f.message, "claim": f.claim,
                 "location": f.location, "accepted": f.accepted, "justification": f.justification,
                 "help": f.help} for f in op.findings]
    est = op.estimate
    data = [{"role": role, "paths": getattr(op.data, role)} for role in ("forget", "retain", "neighbors", "holdout", "test")
            if getattr(op.data, role)]
    o = op.objective
    return {
        "name": o.name, "title": o.title, "basis": o.basis, "owner": o.owner, "sentence": plan_sentence(op),
        "guarantee": o.guarantee,
        "goal": o.goal, "target": o.target.model_dump(), "release": o.release.model_dump(),
        "scope": {"outputs": o.outputs, "prompts": o.prompts}, "feasible": op.feasible,
        "claims": claims, "other_checks": unattached, "findings": findings,
        "accepted": [f for f in findings if f["accepted"]],
        "flagged": [f for f in findings if not f["accepted"]],
        "stages": _stages(op), "data": data,
        "estimate": None if est is None else {
            "cpu_seconds": est.cpu_seconds, "gpu_seconds": est.gpu_seconds, "basis": est.basis,
            "cpu": _duration(est.cpu_seconds), "gpu": _duration(est.gpu_seconds)},
        "model": {"source": op.model.source, "kind": op.model.kind, "sha256": op.model.sha256,
                  "parameters": op.model.parameters, "note": op.model.note, "files": len(op.model.files),
                  "prompt_format": op.model.prompt_format, "chat_template_sha256": op.model.chat_template_sha256,
                  "system": op.model.system},
        "counts": {s: sum(c.status == s for c in op.claims) for s in vocab.CLAIM_STATUSES},
    }


def review_context(plan: Plan) -> dict[str, Any]:
    """Everything the review shows, as plain JSON-able data."""
    intact = plan.plan_hash == plan.compute_hash()
    return {
        "format_version": REVIEW_FORMAT_VERSION,
        "plan_format_version": plan.format_version,
        "plan_hash": plan.plan_hash,
        "plan_hash_ok": intact,
        "tool": f"{plan.tool.name} {plan.tool.version}",
        "spec": plan.spec.model_dump(),
        "inputs": [f.model_dump() for f in plan.inputs],
        "seed": plan.seed,
        "objectives": [objective_context(op) for op in plan.objectives],
        # chains of requests (docs/requests.md); absent without chains, so older reviews are unchanged
        **({"chains": [c.model_dump(mode="json") for c in plan.chains]} if plan.chains else {}),
    }


def render_review(plan: Plan, fmt: str = "md") -> str:
    """The review of ``plan`` as Markdown (``md``) or JSON (``json``)."""
    ctx = review_context(plan)
    if fmt == "json":
        return json.dumps(ctx, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    if fmt != "md":
        raise ValueError(f"unknown review format {code_span(fmt)}; use `md` or `json`")
    text = render_template("plan_review.md.j2", requests_budget=requests_budget_text, **ctx)
    return re.sub(r"\n{3,}", "\n\n", text).rstrip("\n") + "\n"
