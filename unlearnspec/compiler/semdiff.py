"""`unlearnspec diff OLD NEW`: what changed in meaning between two specs or plans, and whether it loosened.

A text diff of a spec says which lines moved; a reviewer needs to know whether the objective got
weaker. Both sides are lowered to plans (a spec is planned in memory with ``--allow-infeasible``, so
an infeasible spec still diffs) and compared objective by objective, by name. Each change is
classified:

* **loosened** — the objective promises or verifies less: a threshold relaxed (direction from
  :data:`unlearnspec.catalog.METRICS` ``better``), a utility tolerance widened, the scope
  narrowed (fewer output kinds or prompt kinds), a claim's compile status weakened (supported →
  cannot be verified → cannot be met), a check dropped from a claim, a probe or attack dropped, a
  smaller relearning budget, a new accepted risk, a goal weakened from removal to suppression, a
  feasible objective become infeasible, a chain's budget raised or removed, a weaker ``guarantee``
  (exact > certified > empirical > none stated);
* **tightened** — the reverse of any of those, and claims added;
* **changed** — everything else that matters but has no direction: the title, basis or owner, the method,
  the release or its precision, the target, the model, data files (by hash), hyperparameters, the reference
  strategy, which objective a request continues (`after`).
  A claim *removed* is ``changed``, not loosened: the objective no longer says it, so it cannot be
  held to it (the report would show no verdict for it); a weakened status is what hides a risk.

Exit code 1 when anything loosened, else 0 (2 when an input cannot be read): a CI gate that lets
tightening through and stops silent weakening.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from unlearnspec.catalog import METRICS, vocab
from unlearnspec.compiler.check import plan_file
from unlearnspec.compiler.render import diagnostic_dict, one_line, printable_lines, render_human
from unlearnspec.compiler.review import load_plan_or_spec
from unlearnspec.markdown import code_span as q
from unlearnspec.markdown import template_environment
from unlearnspec.plan import (
    AttackStage,
    EvaluateStage,
    GivenStage,
    MetricCheck,
    ObjectivePlan,
    Plan,
    QuantizeAttack,
    ReferenceStage,
    RelearnAttack,
    UnlearnStage,
    is_plan_path,
)

DIFF_FORMAT_VERSION = "1"
EXIT_SAME_OR_TIGHTER, EXIT_LOOSENED, EXIT_UNREADABLE = 0, 1, 2

Kind = Literal["loosened", "tightened", "changed"]

# The catalog's orders, strongest first: a change to a later one loosens (vocab.GOALS, vocab.GUARANTEES with none
# stated last, vocab.CLAIM_STATUSES).
STATUS_RANK = vocab.CLAIM_STATUS_RANK
GOAL_RANK = vocab.GOAL_RANK
GUARANTEE_RANK = vocab.GUARANTEE_RANK
WORDS = ("title", "basis", "owner")  # what the objective says about itself: no direction, but a reviewer reads it
UTILITY_METRICS = tuple(m.name for m in METRICS.values() if m.family == "utility")
# Every knob of an unlearn stage, in the plan's order: its fields but what names the stage (kind, method, family,
# who chose it and why) and the two compared as wholes below (LoRA's configuration, the stopping rule). A knob a
# new method adds to the stage is compared without an edit here.
HYPERPARAMETERS = tuple(f for f in UnlearnStage.model_fields
                        if f not in ("kind", "method", "family", "chosen_by", "rationale", "lora", "stopping"))


@dataclass(frozen=True)
class Change:
    """One semantic change: which objective, what part of it, and which way it went."""

    objective: str
    kind: Kind
    what: str  # "threshold", "claim", "scope", "method", ...
    subject: str  # the claim, check id, field, ...
    old: str | None
    new: str | None
    message: str


# -- comparing plans ------------------------------------------------------------------------------------


def _stage(op: ObjectivePlan, kind: type[Any]) -> Any:
    return next((s for s in op.stages if isinstance(s, kind)), None)


def _threshold_text(mc: MetricCheck | None) -> str | None:
    if mc is None or mc.threshold is None:
        return None
    return f"{mc.threshold.op} {mc.threshold.value:g}"


def threshold_direction(metric: str, old: MetricCheck, new: MetricCheck) -> Kind | None:
    """Whether moving ``old``'s threshold to ``new``'s loosens or tightens the check (None: no change)."""
    a, b = old.threshold, new.threshold
    if a == b:
        return None
    if a is None:
        return "tightened"
    if b is None:
        return "loosened"
    better = vocab.METRICS[metric].better if metric in vocab.METRICS else "lower"
    x, y = a.value, b.value
    if better == "closer_to_zero":
        x, y = abs(x), abs(y)
    if x == y:  # same bound, strictness of the comparison changed
        strict_a, strict_b = a.op in ("<", ">"), b.op in ("<", ">")
        if strict_a == strict_b:
            return "changed"
        return "tightened" if strict_b else "loosened"
    if better == "higher":
        return "tightened" if y > x else "loosened"
    return "tightened" if y < x else "loosened"


def _prompt_set(values: list[str]) -> set[str]:
    return set(vocab.PROMPTS) if "any" in values else set(values)


def _set_change(obj: str, what: str, old: set[str], new: set[str], *, wider: Kind, narrower: Kind,
                noun: str) -> list[Change]:
    out = []
    for x in sorted(new - old):
        out.append(Change(obj, wider, what, x, None, x, f"{noun} {q(x)} added"))
    for x in sorted(old - new):
        out.append(Change(obj, narrower, what, x, x, None, f"{noun} {q(x)} removed"))
    return out


def diff_objective(old: ObjectivePlan, new: ObjectivePlan) -> list[Change]:
    name = new.objective.name
    out: list[Change] = []

    def add(kind: Kind, what: str, subject: str, a: object, b: object, message: str) -> None:
        out.append(Change(name, kind, what, subject, None if a is None else str(a), None if b is None else str(b),
                          message))

    o, n = old.objective, new.objective
    if o.goal != n.goal:
        kind: Kind = "loosened" if GOAL_RANK[n.goal] > GOAL_RANK[o.goal] else "tightened"
        add(kind, "goal", "goal", o.goal, n.goal, f"goal `{o.goal}` → `{n.goal}`")
    if o.guarantee != n.guarantee:
        ga, gb = GUARANTEE_RANK.get(o.guarantee, GUARANTEE_RANK[None]), GUARANTEE_RANK.get(n.guarantee, GUARANTEE_RANK[None])
        kind = "loosened" if gb > ga else "tightened" if gb < ga else "changed"
        add(kind, "guarantee", "guarantee", o.guarantee, n.guarantee,
            f"guarantee `{o.guarantee or 'none'}` → `{n.guarantee or 'none'}`")
    for word in WORDS:
        wa, wb = getattr(o, word), getattr(n, word)
        if wa != wb:
            add("changed", word, word, wa, wb, f"{word} " + (f"{q(wa)} → {q(wb)}" if wa is not None and wb is not None
                                                             else f"{q(wb)} added" if wb is not None else
                                                             f"{q(wa)} removed"))
    if o.suppression_via != n.suppression_via and o.goal == n.goal:
        add("changed", "goal", "via", o.suppression_via, n.suppression_via,
            f"suppression via `{o.suppression_via}` → `{n.suppression_via}`")
    ta, tb = o.target, n.target
    if (ta.category, ta.name, ta.kind) != (tb.category, tb.name, tb.kind):
        add("changed", "target", "target", f"{ta.category} {ta.name} ({ta.kind})",
            f"{tb.category} {tb.name} ({tb.kind})", "target changed")
    # aliases are what outputs and probes are searched for: fewer is a narrower search
    out += _set_change(name, "target", set(ta.aliases), set(tb.aliases), wider="tightened", narrower="loosened",
                       noun="alias")
    if o.release.mode != n.release.mode:
        add("changed", "release", "release", o.release.mode, n.release.mode,
            f"release `{o.release.mode}` → `{n.release.mode}`")
    if o.release.precision != n.release.precision:
        add("changed", "release", "precision", o.release.precision, n.release.precision,
            f"release precision `{o.release.precision}` → `{n.release.precision}`")
    out += _set_change(name, "scope", set(o.outputs), set(n.outputs), wider="tightened", narrower="loosened",
                       noun="scope output")
    out += _set_change(name, "scope", _prompt_set(o.prompts), _prompt_set(n.prompts), wider="tightened",
                       narrower="loosened", noun="scope prompt kind")
    if old.feasible != new.feasible:
        add("loosened" if old.feasible else "tightened", "feasibility", "feasible", old.feasible, new.feasible,
            "the objective is no longer feasible" if old.feasible else "the objective became feasible")

    # Claims: added, removed, status, arguments, and the checks that decide them.
    oc, nc = {c.claim: c for c in old.claims}, {c.claim: c for c in new.claims}
    ochecks, nchecks = {m.id: m for m in old.checks}, {m.id: m for m in new.checks}
    for c in nc:
        if c not in oc:
            add("tightened", "claim", c, None, c, f"claim `{c}` added")
    for c in oc:
        if c not in nc:
            add("changed", "claim", c, c, None, f"claim `{c}` removed (the objective no longer makes it)")
    for c in (c for c in nc if c in oc):
        a, b = oc[c], nc[c]
        if a.status != b.status:
            kind = "loosened" if STATUS_RANK[b.status] > STATUS_RANK[a.status] else "tightened"
            add(kind, "claim status", c, a.status, b.status,
                f"claim `{c}`: `{a.status}` → `{b.status}`" + (f" ({', '.join(b.reasons)})" if b.reasons else ""))
        if a.args != b.args:
            sa, sb = a.args.get("steps"), b.args.get("steps")
            if isinstance(sa, int) and isinstance(sb, int) and sa != sb:
                add("loosened" if sb < sa else "tightened", "claim", c, f"steps {sa}", f"steps {sb}",
                    f"claim `{c}`: relearning budget {sa} → {sb} steps")
            else:
                add("changed", "claim", c, a.args, b.args, f"claim `{c}`: arguments changed")
        deciding_a = {i for i in a.checks if i in ochecks and ochecks[i].threshold is not None}
        deciding_b = {i for i in b.checks if i in nchecks and nchecks[i].threshold is not None}
        for i in sorted(deciding_b - deciding_a):
            add("tightened", "evidence", f"{c}/{i}", None, _threshold_text(nchecks[i]),
                f"claim `{c}` is now also decided by `{i}` {_threshold_text(nchecks[i])}")
        for i in sorted(deciding_a - deciding_b):
            add("loosened", "evidence", f"{c}/{i}", _threshold_text(ochecks[i]), None,
                f"claim `{c}` is no longer decided by `{i}` {_threshold_text(ochecks[i])}")

    # Thresholds of the checks both plans run.
    for i in (i for i in nchecks if i in ochecks):
        a_mc, b_mc = ochecks[i], nchecks[i]
        d = threshold_direction(b_mc.metric, a_mc, b_mc)
        if d is None:
            continue
        what = "utility tolerance" if b_mc.metric in UTILITY_METRICS else "threshold"
        add(d, what, i, _threshold_text(a_mc), _threshold_text(b_mc),
            f"{what} `{i}`: {_threshold_text(a_mc) or 'none'} → {_threshold_text(b_mc) or 'none'}")
    for i in sorted(set(nchecks) - set(ochecks)):
        mc = nchecks[i]
        if mc.metric in UTILITY_METRICS and mc.threshold is not None:
            add("tightened", "utility tolerance", i, None, _threshold_text(mc), f"utility check `{i}` added")
    for i in sorted(set(ochecks) - set(nchecks)):
        mc = ochecks[i]
        if mc.metric in UTILITY_METRICS and mc.threshold is not None:
            add("loosened", "utility tolerance", i, _threshold_text(mc), None, f"utility check `{i}` dropped")

    # What will run.
    ua, ub = _stage(old, UnlearnStage), _stage(new, UnlearnStage)
    if ua is not None and ub is not None:
        if ua.method != ub.method:
            add("changed", "method", "method", ua.method, ub.method,
                f"method `{ua.method}` ({ua.family}) → `{ub.method}` ({ub.family})")
        for h in HYPERPARAMETERS:
            va, vb = getattr(ua, h), getattr(ub, h)
            if va != vb:
                shown = [q(v) if isinstance(v, str) else v for v in (va, vb)]  # `refusal_text` is the spec's words
                add("changed", "hyperparameter", h, va, vb, f"{h} {shown[0]} → {shown[1]}")
        if ua.lora != ub.lora and ua.adapter == ub.adapter == "lora":
            add("changed", "hyperparameter", "lora", ua.lora, ub.lora, "LoRA configuration changed")
        if ua.stopping != ub.stopping:
            add("changed", "hyperparameter", "stopping", ua.stopping.kind, ub.stopping.kind, "stopping rule changed")
    ga, gb = _stage(old, GivenStage), _stage(new, GivenStage)  # an audited checkpoint (`unlearned`)
    given_a, given_b = [None if g is None else f"{g.source} {g.sha256[:12]} ({g.method})" for g in (ga, gb)]
    if given_a != given_b:
        add("changed", "unlearned", "unlearned", given_a, given_b,
            f"audited checkpoint {q(given_a) if given_a else 'none (unlearned here)'} → "
            f"{q(given_b) if given_b else 'none (unlearned here)'}")
    ra, rb = _stage(old, ReferenceStage), _stage(new, ReferenceStage)
    if ra is not None and rb is not None and (ra.strategy, ra.model) != (rb.strategy, rb.model):
        add("changed", "reference", "reference", ra.strategy, rb.strategy,
            f"reference `{ra.strategy}` → `{rb.strategy}`")
    ea, eb = _stage(old, EvaluateStage), _stage(new, EvaluateStage)
    pa = {p.name for p in ea.probes} if ea else set()
    pb = {p.name for p in eb.probes} if eb else set()
    out += _set_change(name, "probe", pa, pb, wider="tightened", narrower="loosened", noun="probe")
    ra_, rb_ = (ea.representation_probe if ea else None), (eb.representation_probe if eb else None)
    if ra_ != rb_:
        kind = "loosened" if rb_ is None else ("tightened" if ra_ is None else "changed")
        add(kind, "probe", "representation", ra_, rb_,
            f"representation probe {q(ra_)} → {q(rb_)}" if ra_ and rb_ else
            f"representation probe {q(rb_)} added" if rb_ else f"representation probe {q(ra_)} removed")
    ca, cb = (ea.confidence if ea else None), (eb.confidence if eb else None)
    if ca is not None and cb is not None and ca != cb:
        # every check passes when its interval clears the bound: a lower level narrows every interval
        add("loosened" if cb < ca else "tightened", "evidence", "confidence", f"{ca:.0%}", f"{cb:.0%}",
            f"confidence level of every interval {ca:.0%} → {cb:.0%}"
            + (": narrower intervals pass and fail more easily" if cb < ca else ": wider intervals"))
    out += _attack_changes(name, _stage(old, AttackStage), _stage(new, AttackStage))

    # Accepted risks and the inputs.
    acc_a = {f.code for f in old.findings if f.accepted}
    acc_b = {f.code for f in new.findings if f.accepted}
    out += _set_change(name, "accepted risk", acc_a, acc_b, wider="loosened", narrower="tightened",
                       noun="accepted risk")
    if (old.model.source, old.model.sha256) != (new.model.source, new.model.sha256):
        add("changed", "model", "model", f"{old.model.source} {(old.model.sha256 or '')[:12]}".strip(),
            f"{new.model.source} {(new.model.sha256 or '')[:12]}".strip(), "model changed")
    if old.model.system != new.model.system:  # every question is asked under it (docs/models.md, prompt formats)
        add("changed", "model", "system", old.model.system, new.model.system, "system prompt changed")
    for role in ("forget", "retain", "neighbors", "holdout", "test"):
        a_paths, b_paths = getattr(old.data, role), getattr(new.data, role)
        if a_paths != b_paths:
            add("changed", "data", role, ", ".join(a_paths) or None, ", ".join(b_paths) or None,
                f"{role} data changed")
    return out


def _attack_changes(name: str, a: AttackStage | None, b: AttackStage | None) -> list[Change]:
    out: list[Change] = []
    rel_a = [x.steps for x in (a.attacks if a else []) if isinstance(x, RelearnAttack)]
    rel_b = [x.steps for x in (b.attacks if b else []) if isinstance(x, RelearnAttack)]
    if rel_a != rel_b:
        sa, sb = max(rel_a, default=0), max(rel_b, default=0)
        kind: Kind = "loosened" if sb < sa else "tightened" if sb > sa else "changed"
        out.append(Change(name, kind, "attack", "relearn", f"{sa} steps" if sa else None,
                          f"{sb} steps" if sb else None,
                          f"relearning attack {sa or 'none'} → {sb or 'none'} steps"))
    qa: set[str] = {x.precision for x in (a.attacks if a else []) if isinstance(x, QuantizeAttack)}
    qb: set[str] = {x.precision for x in (b.attacks if b else []) if isinstance(x, QuantizeAttack)}
    out += _set_change(name, "attack", qa, qb, wider="tightened", narrower="loosened", noun="quantize attack at")
    return out


def match_objectives(old: Plan, new: Plan) -> dict[str, str]:
    """Which objective of ``old`` each renamed one of ``new`` is, so that a rename cannot hide the edits made with
    it: among the objectives without a namesake on the other side, the only one on each side; else, in turn,
    those with the same target, those whose target has the same category and name (an alias or the kind edited
    with the rename), and the rest in the order they are written. An objective left over has no counterpart."""
    names_a = [op.objective.name for op in old.objectives]
    names_b = [op.objective.name for op in new.objectives]
    targets_a = {op.objective.name: op.objective.target for op in old.objectives}
    targets_b = {op.objective.name: op.objective.target for op in new.objectives}
    gone = [n for n in names_a if n not in targets_b]
    added = [n for n in names_b if n not in targets_a]
    renamed: dict[str, str] = {}
    keys = (lambda t: t.model_dump_json(), lambda t: json.dumps([t.category, t.name]))
    for key in keys:
        for a in gone:
            if a in renamed:
                continue
            same = [b for b in added if b not in renamed.values() and key(targets_b[b]) == key(targets_a[a])]
            rivals = [x for x in gone if x not in renamed and key(targets_a[x]) == key(targets_a[a])]
            if len(same) == 1 and len(rivals) == 1:
                renamed[a] = same[0]
    left_a = [a for a in gone if a not in renamed]
    left_b = [b for b in added if b not in renamed.values()]
    renamed.update(zip(left_a, left_b, strict=False))  # by position: the first left over with the first
    return renamed


def diff_plans(old: Plan, new: Plan) -> list[Change]:
    """Every semantic change from ``old`` to ``new``, objective by objective (by name, renames matched by
    :func:`match_objectives`)."""
    nb = {op.objective.name: op for op in new.objectives}
    out: list[Change] = []
    renamed = match_objectives(old, new)
    for a_name, b_name in renamed.items():
        out.append(Change(b_name, "changed", "objective", "name", a_name, b_name,
                          f"objective {q(a_name)} renamed {q(b_name)}"))
    oa = {renamed.get(op.objective.name, op.objective.name): op for op in old.objectives}
    for name in nb:
        if name not in oa:
            out.append(Change(name, "tightened", "objective", name, None, name, f"objective {q(name)} added"))
    for name in oa:
        if name not in nb:  # like a claim removed: no longer made, rather than made on weaker evidence
            out.append(Change(name, "changed", "objective", name, name, None, f"objective {q(name)} removed"))
    for name in (n for n in nb if n in oa):
        out += diff_objective(oa[name], nb[name])
    out += _chain_changes(old, new, renamed)
    changed_inputs = {f.path for f in old.inputs} ^ {f.path for f in new.inputs} | {
        f.path for f in new.inputs for g in old.inputs if f.path == g.path and f.sha256 != g.sha256}
    for path in sorted(changed_inputs):
        a = next((f.sha256 for f in old.inputs if f.path == path), None)
        b = next((f.sha256 for f in new.inputs if f.path == path), None)
        roles = {f.role for f in [*old.inputs, *new.inputs] if f.path == path}
        what = "checkpoint file" if roles == {"unlearned"} else "data file"  # an audited checkpoint's files
        msg = f"{what} {q(path)} " + ("added" if a is None else "removed" if b is None else "content changed")
        out.append(Change("*", "changed", what, path, a and a[:12], b and b[:12], msg))
    return out


BUDGET_FIELDS = (("utility_drop", "cumulative utility drop"), ("approximate_requests", "approximate requests"))


def _chain_changes(old: Plan, new: Plan, renamed: dict[str, str] | None = None) -> list[Change]:
    """Chains (docs/requests.md): which objective each continues (changed), and each chain's budget,
    keyed by its first objective: a larger or removed budget is looser, a smaller or added one tighter.
    ``old``'s objectives are called by their names in ``new`` (``renamed``), so that renaming a chain's first
    objective cannot hide an edit of its budget; a budget whose first objective is not first in any chain of
    ``new`` is removed (loosened), one on a chain that had none is added (tightened)."""
    out: list[Change] = []

    def now(name: str | None) -> str | None:
        return None if name is None else (renamed or {}).get(name, name)

    after_a = {now(lk.objective): now(lk.after) for c in old.chains for lk in c.links}
    after_b = {lk.objective: lk.after for c in new.chains for lk in c.links}
    for name in sorted(n for n in set(after_a) | set(after_b) if n is not None):
        a, b = after_a.get(name), after_b.get(name)
        if a != b:
            out.append(Change(name, "changed", "after", name, a, b,
                              f"{q(name)} now starts from " + (q(b) if b else "the original model")
                              + (f" (was {q(a)})" if a else "")))
    budgets_a = {now(c.links[0].objective): c.budget for c in old.chains if c.links}
    budgets_b = {c.links[0].objective: c.budget for c in new.chains if c.links}
    for head in sorted(h for h in set(budgets_a) | set(budgets_b) if h is not None):
        ba, bb = budgets_a.get(head), budgets_b.get(head)
        for field, label in BUDGET_FIELDS:
            va = getattr(ba, field) if ba is not None else None
            vb = getattr(bb, field) if bb is not None else None
            if va == vb:
                continue
            kind: Kind = ("loosened" if vb is None or (va is not None and vb > va) else "tightened")
            out.append(Change(head, kind, "budget", field, None if va is None else str(va),
                              None if vb is None else str(vb),
                              f"the chain's budget for {label} " + (f"went from {va} to {vb}" if va is not None
                                                                    and vb is not None else
                                                                    "was removed" if vb is None else f"was set to {vb}")))
    return out


# -- loading and rendering ------------------------------------------------------------------------------


def _load(path: Path) -> tuple[Plan | None, str, list[dict[str, Any]]]:
    """A plan, or a spec planned in memory; or None, the error as a person reads it, and the spec's diagnostics
    as data (for ``--format json``)."""
    if is_plan_path(path) or not path.exists():
        plan, err = load_plan_or_spec(path)
        return plan, err, []
    plan, result = plan_file(path, allow_infeasible=True)
    if plan is None:
        return None, render_human([result]).rstrip("\n"), [diagnostic_dict(d) for d in result.diagnostics]
    return plan, "", []


def summary(changes: list[Change]) -> dict[str, int]:
    return {k: sum(c.kind == k for c in changes) for k in ("loosened", "tightened", "changed")}


def render_text(old: str, new: str, changes: list[Change]) -> str:
    """The diff for a terminal: one line per change; a value never spans lines (:func:`one_line`), so a name with a
    line break cannot forge a change, and a spec's ESC or BEL shows as U+FFFD, never acts."""
    if not changes:
        return printable_lines(f"no semantic changes between {q(old)} and {q(new)}") + "\n"
    lines: list[str] = []
    for obj in dict.fromkeys(c.objective for c in changes):
        lines.append("inputs" if obj == "*" else f"objective {q(obj)}")
        for c in (c for c in changes if c.objective == obj):
            lines.append(f"  {c.kind:<9}  {one_line(c.message)}")
    s = summary(changes)
    lines.append(f"{s['loosened']} loosened, {s['tightened']} tightened, {s['changed']} changed"
                 + (" — the objective got weaker" if s["loosened"] else ""))
    return printable_lines("\n".join(lines)) + "\n"


def render_md(old: str, new: str, changes: list[Change]) -> str:
    """The diff as Markdown (``templates/diff.md.j2``): every value through the one escaping function."""
    return template_environment("unlearnspec.compiler").get_template("diff.md.j2").render(
        old=old, new=new, changes=changes, summary=summary(changes))


def render_json(old: str, new: str, changes: list[Change]) -> str:
    s = summary(changes)
    doc = {"format_version": DIFF_FORMAT_VERSION, "old": old, "new": new, "loosened": s["loosened"] > 0,
           "summary": s, "changes": [asdict(c) for c in changes]}
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def diff_paths(old: Path, new: Path, fmt: str = "text") -> tuple[str, str, int]:
    """The semantic diff of two specs or plans (any mix): the document, the errors (for stderr; empty when both
    could be read) and the exit code (1 when something loosened, 2 when an input cannot be read or planned). When
    an input cannot be used, ``--format json`` still gets a JSON document: the error and the spec's diagnostics."""
    render = {"text": render_text, "md": render_md, "json": render_json}.get(fmt)
    if render is None:
        return "", f"error: unknown format {q(fmt)}; use text, md or json\n", EXIT_UNREADABLE
    plans: list[Plan] = []
    for path in (old, new):
        plan, err, diagnostics = _load(path)
        if plan is None:
            doc = ""
            if fmt == "json":  # the error as `explain --format json` gives it: the first error's message
                errors = [d["message"] for d in diagnostics if d["severity"] == "error"]
                message = errors[0] if errors else err.split("\n")[0].removeprefix("error: ")
                doc = json.dumps({"format_version": DIFF_FORMAT_VERSION, "old": old.as_posix(), "new": new.as_posix(),
                                  "file": path.as_posix(), "error": message,
                                  "diagnostics": diagnostics}, indent=2, ensure_ascii=False) + "\n"
            return doc, err + "\n", EXIT_UNREADABLE
        plans.append(plan)
    changes = diff_plans(*plans)
    code = EXIT_LOOSENED if any(c.kind == "loosened" for c in changes) else EXIT_SAME_OR_TIGHTER
    return render(old.as_posix(), new.as_posix(), changes), "", code
