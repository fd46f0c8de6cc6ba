"""The evidence that decides each claim: the spec's thresholds, or the documented defaults.

A claim is decided at run time by metric checks. The spec's ``evidence`` block may give thresholds;
every metric it names is assigned to each claim whose *evidence family* (``catalog.CLAIMS[...].evidence``)
contains it. A claim that receives at least one metric from the spec is decided by exactly those
(the author chose its evidence); a claim that receives none gets the documented defaults below,
marked ``source="default"``. The feasibility rules (UL406, UL410) and the lowering both call
:func:`evidence_for`, so what the compiler judges is what the plan runs.

The defaults are the catalog's: each claim's ``defaults`` (or, for ``not_generated`` and
``robust_to_prompting``, the metrics of the ``scope`` words: ``OUTPUT_KINDS``, ``PROBES``), each metric's
``threshold`` with the reason for its value, the relearning budget ``DEFAULT_RELEARN_STEPS`` and the
``QUANTIZED`` precisions. docs/language.md (section "Claims") explains them with their sources.
Output metrics are measured on the forget set, and on the target's ``test`` set when it has one (except a
check the forget set's records cannot produce while the test set's can: :func:`_measurable_here`); a
``preserve utility`` tolerance replaces the utility-drop metrics' default.

What each metric needs (``catalog.METRICS[...].needs``): a *reference* (the built-in model can be retrained;
otherwise a ``reference`` model), *holdout* non-members (the target's ``holdout``, or the built-in
corpus's holdout people), *qa* records (questions and answers in the data it reads), a labelled
*attribute* (the target's ``attribute``, or the built-in records' labels, carried by a forget record:
:func:`probe_attribute`), and the *retain* /
*neighbors* sets of ``preserve``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from unlearnspec.catalog import (
    CLAIMS,
    DEFAULT_OUTPUTS,
    DEFAULT_RELEARN_STEPS,
    METRICS,
    NEEDS,
    OUTPUT_KINDS,
    PROBES,
)
from unlearnspec.catalog.attacks import quantized_below
from unlearnspec.compiler.ast import Claim, Objective, PathRef

Source = Literal["spec", "default"]


def missing_needs(obj: Objective, metric: str, dataset: str = "forget") -> tuple[list[str], str]:
    """The needs of ``metric`` this objective cannot provide, and the note of a fallback that stands in."""
    have = available_needs(obj, dataset)
    m = METRICS.get(metric)
    missing = [n for n in (m.needs if m else ()) if n not in have]
    fallback = m.fallback if m else None
    if fallback is not None and fallback.need in missing and fallback.stand_in in have:
        return [n for n in missing if n != fallback.need], fallback.note
    return missing, ""


class EvidenceItem(BaseModel):
    """One metric check serving one claim: the threshold, where it comes from, and what it needs."""

    model_config = ConfigDict(frozen=True)

    metric: str
    op: str
    value: float
    source: Source
    dataset: str  # "forget" | "test" | "retain" | "neighbors"
    probe: str | None = None  # "direct" | "paraphrased" | "adversarial" | "in_context"
    attack: Literal["relearn", "quantize"] | None = None
    params: dict[str, object] = Field(default_factory=dict)  # e.g. {"steps": 20}, {"precision": "int4"}
    note: str = ""  # why this default, or what was assumed
    missing: list[str] = Field(default_factory=list)  # needs (catalog.NEEDS) this objective cannot provide

    @property
    def available(self) -> bool:
        return not self.missing

    def describe(self) -> str:
        """``membership_auc <= 0.6 on forget (default)``: the check in one line."""
        where = f" on {self.dataset}"
        if self.probe:
            where += f" ({self.probe} prompts)"
        if self.attack == "relearn":
            where += f" after {self.params.get('steps')} relearning steps"
        elif self.attack == "quantize":
            where += f" at {self.params.get('precision')}"
        unit = "%" if METRICS[self.metric].unit == "percent" else ""
        return f"{self.metric} {self.op} {self.value:g}{unit}{where} ({self.source})"


def is_builtin(obj: Objective) -> bool:
    """The built-in model: its corpus (with holdout people) and training recipe are known."""
    return obj.model is not None and obj.model.value.startswith("builtin:")


def _has_qa(paths: list[PathRef]) -> bool:
    # qa_records is None when the compiler cannot count (a `save_to_disk` folder): assume it can.
    return any(p.qa_records is None or p.qa_records > 0 for p in paths)


def _has_mcq(paths: list[PathRef]) -> bool:
    return any(p.mcq_records is None or p.mcq_records > 0 for p in paths)


def _has_text(paths: list[PathRef]) -> bool:
    return any(p.text_records is None or p.text_records > 0 for p in paths)


def available_needs(obj: Objective, dataset: str = "forget") -> set[str]:
    """Which of :data:`unlearnspec.catalog.NEEDS` this objective can provide (qa: for ``dataset``)."""
    builtin = is_builtin(obj)
    t, p = obj.target, obj.preserve
    have: set[str] = set()
    if builtin or obj.reference is not None:
        have.add("reference")
    if builtin or (t is not None and t.holdout):
        have.add("holdout")
    if t is not None:
        data = t.test if dataset == "test" else t.forget
        if _has_qa(data):
            have.add("qa")
        if _has_mcq(data):
            have.add("mcq")
        if _has_text(data):
            have.add("text")
        if probe_attribute(obj) is not None:
            have.add("attribute")
    if p is not None and p.retain:
        have.add("retain")
    if p is not None and p.neighbors:
        have.add("neighbors")
    return have


BUILTIN_LABELLED = ("person", "records")
"""The target kinds whose built-in records label the attribute the representation probe predicts (a built-in
person's facts; a work or a capability has none)."""

BUILTIN_ATTRIBUTE = "birth_city"
"""The labelled fact of every built-in person record: what the probe predicts for a built-in person or records
target that names no ``attribute``."""


def named_attribute(obj: Objective) -> str | None:
    """The labelled fact the representation probe would predict: the target's ``attribute``, or the built-in
    person's (:data:`BUILTIN_ATTRIBUTE`), whether or not the forget records carry it."""
    t = obj.target
    if t is None:
        return None
    if t.attribute is not None:
        return t.attribute.value
    if is_builtin(obj) and t.category.value in BUILTIN_LABELLED:
        return BUILTIN_ATTRIBUTE
    return None


def forget_attribute_keys(obj: Objective) -> list[str] | None:
    """The keys the forget records' ``attributes`` carry, sorted; None when a forget set cannot be read by the
    compiler (a ``save_to_disk`` folder: its keys are unknown)."""
    keys: set[str] = set()
    for ref in obj.target.forget if obj.target else []:
        if ref.attribute_keys is None:
            return None
        keys.update(ref.attribute_keys)
    return sorted(keys)


def probe_attribute(obj: Objective) -> str | None:
    """The attribute the representation probe predicts, or None when it has none to predict (its check is then
    not measurable): :func:`named_attribute` where a forget record carries it, or may (a ``save_to_disk`` folder
    counts as carrying it, as its unknown QA count counts as QA records).

    The one reading of the lowering (the plan's probe attribute,
    :mod:`unlearnspec.compiler.lower`) and of the feasibility rules (the ``attribute``
    need of :func:`available_needs`, UL410), so that `check` reports exactly the probe the plan cannot measure."""
    attribute = named_attribute(obj)
    if attribute is None or obj.target is None or not obj.target.forget:
        return None
    keys = forget_attribute_keys(obj)
    return attribute if keys is None or attribute in keys else None


def _datasets(obj: Objective) -> list[str]:
    """Where output metrics are measured: the forget set, and the operational test set if any."""
    t = obj.target
    out = []
    if t is None or t.forget or not t.test:
        out.append("forget")
    if t is not None and t.test:
        out.append("test")
    return out


def _measurable_here(obj: Objective, metric: str, dataset: str) -> bool:
    """Whether an output kind's default ``metric`` is checked on ``dataset``.

    Output kinds are measured on the forget set and on the target's ``test`` set, the worse deciding. A forget set
    of documents (a benchmark's corpus, such as `cais/wmdp-corpora`) holds no questions, so knowledge ROUGE cannot be
    measured on it; when the test set's records can measure it, the operational test decides alone, rather than a
    check that could only ever be "not evaluated" leaving the claim incomplete. The test set keeps every check of the
    scope: a test set that cannot measure an output kind in scope is reported (UL410), never passed over. Only a
    need of the records decides (questions, documents, multiple-choice items); the objective's needs (a reference,
    a holdout) are the same on both sets."""
    if dataset != "forget" or "test" not in _datasets(obj):
        return True

    def data_missing(ds: str) -> bool:
        return any(n in DATA_NEEDS for n in missing_needs(obj, metric, ds)[0])

    return not data_missing("forget") or data_missing("test")


DATA_NEEDS = frozenset({"qa", "text", "mcq"})
"""The needs a data set meets by its records (the others are the objective's: a reference, a holdout, an
attribute, the preserve sets)."""


def _tolerance(obj: Objective, which: str) -> float | None:
    """The ``preserve utility`` tolerance for ``which`` ("retain" | "neighbors"), most specific first."""
    if obj.preserve is None:
        return None
    specific = [t.percent for t in obj.preserve.utility if t.applies_to == which]
    general = [t.percent for t in obj.preserve.utility if t.applies_to == "all"]
    found = specific or general
    return found[0] if found else None


def _claim_of(obj: Objective, claim: Claim | str) -> tuple[str, Claim | None]:
    if isinstance(claim, Claim):
        return claim.name, claim
    return claim, obj.claim(claim)


def scope_prompts(obj: Objective) -> list[str]:
    """The prompt kinds `robust_to_prompting` is checked on: the scope's, with `any` (or none) read as
    paraphrased and adversarial prompts besides those named."""
    scope = obj.scope
    prompts = [w.value for w in scope.prompts] if scope and scope.prompts else []
    if not prompts or "any" in prompts:
        prompts = sorted(set(prompts) - {"any"} | {"paraphrased", "adversarial"})
    return prompts


def _plans(obj: Objective, name: str, c: Claim | None) -> list[dict[str, object]]:
    """The default checks of claim ``name`` (its catalog defaults): metric plus where/how it is measured."""
    info = CLAIMS.get(name)
    if info is None:
        return []
    scope = obj.scope
    if info.from_scope == "outputs":
        outputs = [w.value for w in scope.outputs] if scope and scope.outputs else list(DEFAULT_OUTPUTS)
        metrics = [m for m in info.evidence if any(m in OUTPUT_KINDS[o].metrics for o in outputs)]
        return [{"metric": m, "dataset": d} for d in _datasets(obj) for m in metrics
                if _measurable_here(obj, m, d)]
    if info.from_scope == "prompts":
        prompts = scope_prompts(obj)
        ds = _datasets(obj)[-1]
        return [{"metric": p.metric, "dataset": ds, "probe": p.name} for p in PROBES.values() if p.name in prompts]
    output_claim = info.group == "output"
    ds = _datasets(obj)[-1] if output_claim else "forget"
    plans: list[dict[str, object]] = []
    for metric in info.defaults:
        m = METRICS[metric]
        plan: dict[str, object] = {"metric": metric, "dataset": m.dataset or ds}
        if m.probe is not None and m.probe != "direct":
            plan["probe"] = m.probe
        if m.attack is not None:
            plan["attack"] = m.attack
        plans.append(plan)
    return plans


def _item(obj: Objective, name: str, c: Claim | None, plan: dict[str, object], source: Source,
          op: str | None = None, value: float | None = None) -> list[EvidenceItem]:
    metric = str(plan["metric"])
    default = METRICS[metric].threshold
    d_op, d_value, why = default.op, default.value, default.why
    note = why if source == "default" else ""
    utility_on = METRICS[metric].dataset if METRICS[metric].family == "utility" else None
    if utility_on is not None and source == "default":
        tol = _tolerance(obj, utility_on)
        if tol is not None:  # the spec's own tolerance, written in `preserve`
            d_value, source, note = tol, "spec", f"from `preserve {{ utility drop <= {tol:g}% }}`"
    dataset = str(plan["dataset"])
    probe = plan.get("probe")
    attack = plan.get("attack")
    variants: list[dict[str, object]] = [{}]
    if attack == "relearn":
        steps = c.steps.as_int if c is not None and c.steps is not None else None
        if steps is None:
            steps = DEFAULT_RELEARN_STEPS
            note = (note + "; " if note else "") + f"the claim gives no `steps`: {DEFAULT_RELEARN_STEPS} relearning steps by default"
        variants = [{"steps": steps}]
    elif attack == "quantize":
        # the release precision, and the integer precisions anyone holding the weights can quantize them to: 4-bit
        # quantization is where "forgotten" knowledge came back (Zhang et al., arXiv:2410.16454)
        prec = obj.release.precision.value if obj.release and obj.release.precision else None
        lower = quantized_below(prec)
        variants = [{"precision": q} for q in ([] if prec in (None, "fp32", *lower) else [prec]) + lower]
        more = [q for q in lower if q != prec]
        if prec is None or prec == "fp32":
            note = (note + "; " if note else "") + "no quantized release precision: tested at int8 and int4"
        elif more:
            note = (note + "; " if note else "") + (f"released at {prec}: tested at {' and '.join(more)} too, where "
                                                    "anyone holding the weights can quantize them")
    missing, stand_in = missing_needs(obj, metric, dataset)
    if stand_in:
        note = (note + "; " if note else "") + stand_in
    return [EvidenceItem(metric=metric, op=op or d_op, value=d_value if value is None else value, source=source,
                         dataset=dataset, probe=str(probe) if probe else None,
                         attack=attack if attack in ("relearn", "quantize") else None,  # type: ignore[arg-type]
                         params=params, note=note, missing=missing) for params in variants]


def spec_metrics_for(obj: Objective, claim: str) -> list[str]:
    """The metrics of the spec's ``evidence`` block that serve ``claim`` (in block order)."""
    family = CLAIMS[claim].evidence if claim in CLAIMS else ()
    return [e.metric for e in obj.evidence if e.metric in family]


def evidence_for(obj: Objective, claim: Claim | str) -> list[EvidenceItem]:
    """The checks that decide ``claim``: the spec's when it gives any for it, else the defaults."""
    name, c = _claim_of(obj, claim)
    family = CLAIMS[name].evidence if name in CLAIMS else ()
    defaults = _plans(obj, name, c)
    given = [e for e in obj.evidence if e.metric in family]
    if not given:
        return [item for plan in defaults for item in _item(obj, name, c, plan, "default")]
    out: list[EvidenceItem] = []
    for e in given:
        # Measure the spec's metric where the defaults would (same dataset/probe/attack), if they name it.
        plans = [p for p in defaults if p["metric"] == e.metric] or [_where(obj, e.metric)]
        for plan in plans:
            out.extend(_item(obj, name, c, plan, "spec", e.op, e.value))
    if name in SCOPE_CLAIMS:
        # Spec evidence tightens or adds bounds but never drops scope coverage: every output and prompt
        # kind in `scope` keeps a deciding check (its default, where the spec names none of that metric).
        named = {e.metric for e in given}
        for plan in defaults:
            if plan["metric"] not in named:
                out.extend(_item(obj, name, c, plan, "default"))
    return out


SCOPE_CLAIMS = frozenset({"not_generated", "robust_to_prompting"})
"""Claims whose default checks come from `scope` (one per output kind, one per prompt kind)."""


def _where(obj: Objective, metric: str) -> dict[str, object]:
    """Where a metric is measured when the claim's defaults do not say."""
    m = METRICS[metric]
    datasets = _datasets(obj)
    if m.family == "mcq":  # multiple-choice accuracy: on the data that holds multiple-choice items
        datasets = [d for d in reversed(datasets) if "mcq" in available_needs(obj, d)] or datasets
    plan: dict[str, object] = {"metric": metric, "dataset": m.dataset or datasets[0]}
    if m.probe is not None and m.probe != "direct":
        plan["probe"] = m.probe
    if m.attack is not None:
        plan["attack"] = m.attack
    return plan


def side_effect_evidence(obj: Objective) -> list[EvidenceItem]:
    """The utility checks every plan runs for the ``preserve`` block, whatever the claims.

    The spec's ``retain_utility_drop`` / ``neighbor_utility_drop`` evidence wins; otherwise the
    ``preserve utility`` tolerance (or the 5% default), for each preserve set that is given.
    """
    out: list[EvidenceItem] = []
    given = {e.metric: e for e in obj.evidence}
    for metric in CLAIMS["no_side_effects"].defaults:
        which = str(METRICS[metric].dataset)
        if which not in available_needs(obj):
            continue
        plan: dict[str, object] = {"metric": metric, "dataset": which}
        e = given.get(metric)
        if e is not None:
            out.extend(_item(obj, "", None, plan, "spec", e.op, e.value))
        else:
            out.extend(_item(obj, "", None, plan, "default"))
    return out


def missing_words(needs: list[str]) -> str:
    return "; ".join(NEEDS[n].words for n in needs)
