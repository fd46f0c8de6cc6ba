"""Check bookkeeping: the objective's metric checks, deduplicated by id, in the order claims first ask for them;
the deployment-precision twins (A3) and the checks measured for information only (E3, E6)."""

from __future__ import annotations

from collections.abc import Sequence

from unlearnspec.catalog import (
    DEFAULT_RELEARN_STEPS,
    METRICS,
    OUTPUT_CLAIMS,
    PROBES,
)
from unlearnspec.compiler.ast import Objective
from unlearnspec.compiler.decisions import Facts
from unlearnspec.compiler.evidence_defaults import (
    EvidenceItem,
    missing_needs,
    missing_words,
)
from unlearnspec.plan import (
    ClaimPlan,
    MetricCheck,
    Probe,
    Threshold,
)


class CheckBook:
    """The objective's metric checks, deduplicated by id, in the order claims first ask for them."""

    def __init__(self, method: str, family: str) -> None:
        self.method = method
        self.family = family
        self.checks: list[MetricCheck] = []
        self._by_id: dict[str, MetricCheck] = {}
        self.probes: set[str] = set()
        self.relearn_steps: set[int] = set()
        self.relearn_related: set[int] = set()
        self.quantize: set[str] = set()

    def put(self, check: MetricCheck) -> None:
        if check.id not in self._by_id:
            self._by_id[check.id] = check
            self.checks.append(check)

    def uses(self, metric: str) -> bool:
        return any(c.metric == metric for c in self.checks)

    def add(self, item: EvidenceItem, claim: str | None, attribute: str | None, *, information: bool = False) -> str:
        """Record ``item`` as a check (``information``: measured and reported, no threshold); returns its id."""
        implied = METRICS[item.metric].probe
        probe = item.probe or implied
        params: dict[str, object] = {}
        missing = list(item.missing)
        notes = [item.note] if item.note else []
        model = "unlearned"
        if item.attack == "relearn" and item.params.get("data") == "related":
            steps = int(str(item.params.get("steps", DEFAULT_RELEARN_STEPS)))
            self.relearn_related.add(steps)
            params["steps"], params["data"] = steps, "related"
            cid, probe, model = f"{item.metric}@relearn_related", "relearn", "attacked"
        elif item.attack == "relearn":
            steps = int(str(item.params.get("steps", DEFAULT_RELEARN_STEPS)))
            self.relearn_steps.add(steps)
            params["steps"] = steps
            cid, probe, model = f"{item.metric}@relearn", "relearn", "attacked"
        elif item.attack == "quantize":
            precision = str(item.params.get("precision", "int4"))
            self.quantize.add(precision)
            params["precision"] = precision
            cid, probe, model = f"{item.metric}@quantize_{precision}", "quantize", "attacked"
        else:
            cid = f"{item.metric}@{item.dataset}"
            if item.probe and item.probe != implied:
                cid += f"/{item.probe}"
            if probe:
                self.probes.add(probe)
            if self.family == "system_suppression" and METRICS[item.metric].served:
                model = "served"
        if item.metric == "membership_auc":
            params["nonmembers"] = "holdout"
        if item.metric == "probe_accuracy_gap":
            if attribute is None and "attribute" not in missing:
                missing.append("attribute")
            if attribute is not None:
                params["attribute"] = attribute
        if missing:
            notes.append("not measurable as planned: needs " + missing_words(missing))
        check = MetricCheck(
            id=cid, metric=item.metric, dataset=item.dataset,
            threshold=None if information else Threshold(op=item.op, value=item.value),  # type: ignore[arg-type]
            source=item.source, params=params, probe=probe, model=model,  # type: ignore[arg-type]
            note="; ".join(notes), missing=sorted(set(missing)))
        existing = self._by_id.get(cid)
        if existing is not None and information:
            return cid
        if existing is not None and existing.threshold is None:  # a deciding check replaces an informational one
            self.checks[self.checks.index(existing)] = check
            self._by_id[cid] = check
            return cid
        if existing is not None:
            if existing.threshold == check.threshold:
                return cid
            # Same measurement, another threshold (a claim's default next to another claim's spec value):
            # keep both, each deciding its own claim.
            cid = f"{cid}~{claim or 'preserve'}"
            check = check.model_copy(update={"id": cid})
            if cid in self._by_id:
                return cid
        self._by_id[cid] = check
        self.checks.append(check)
        return cid


def deployment_checks(facts: Facts, book: CheckBook, claims: list[ClaimPlan]) -> None:
    """A3: when the model is released below fp32, the released artifact is the quantized model, so
    every deciding check of the unlearned (or served) model is measured again on it, with the same
    threshold, and decides the same claims (Zhang et al., arXiv:2410.16454: evaluate at deployment
    precision). The twin's id is the check's id plus ``@quantize_<precision>``."""
    p = facts.precision
    if p in (None, "fp32"):
        return
    book.quantize.add(str(p))
    for mc in list(book.checks):
        if mc.model == "attacked" or mc.threshold is None or mc.missing:
            continue
        twin_id = f"{mc.id}@quantize_{p}"
        params: dict[str, object] = {**mc.params, "precision": p}
        if mc.probe:
            params["probe"] = mc.probe
        if mc.model == "served":
            params["served"] = True
        note = f"A3: measured again at the release precision {p}: the released model is the quantized one"
        twin = mc.model_copy(update={"id": twin_id, "model": "attacked", "probe": "quantize", "params": params,
                                     "note": f"{mc.note}; {note}" if mc.note else note})
        book.put(twin)
        for cp in claims:
            if mc.id in cp.checks and twin_id not in cp.checks:
                cp.checks.insert(cp.checks.index(mc.id) + 1, twin_id)


def information_checks(obj: Objective, facts: Facts, book: CheckBook, probes: Sequence[Probe],
                       attribute: str | None) -> list[tuple[str, frozenset[str]]]:
    """E3 and E6: checks measured for information, with the claims they sit beside.

    A probe the scope asks for but no claim's evidence reads is still worth its generation pass: its
    knowledge ROUGE is reported (E6). A `removed` claim whose evidence has no representation probe
    gets one for information (E3): output metrics alone cannot tell removal from suppression.
    """
    out: list[tuple[str, frozenset[str]]] = []
    if "removed" in facts.claims and not book.uses("probe_accuracy_gap"):
        cid = book.add(information_item(
            obj, "probe_accuracy_gap", "E3: a linear probe on hidden states against the reference, measured for "
            "information (the claim's evidence does not include it)"), None, attribute, information=True)
        out.append((cid, frozenset({"removed"})))
    dataset = "test" if obj.target is not None and obj.target.test else "forget"
    for pr in probes:
        if pr.name in book.probes:
            continue
        cid = book.add(information_item(
            obj, PROBES[pr.name].metric, f"E6: no claim's evidence reads the `{pr.name}` probe; its knowledge ROUGE is "
            "measured for information", dataset=dataset, probe=pr.name), None, attribute, information=True)
        out.append((cid, OUTPUT_CLAIMS))
    return out


def information_item(obj: Objective, metric: str, note: str, *, dataset: str = "forget", probe: str | None = None,
                     attack: str | None = None, params: dict[str, object] | None = None) -> EvidenceItem:
    """An evidence item measured for information only (its threshold is dropped when it is booked)."""
    default = METRICS[metric].threshold
    op, value = default.op, default.value
    missing, stand_in = missing_needs(obj, metric, dataset)
    return EvidenceItem(metric=metric, op=op, value=value, source="default", dataset=dataset, probe=probe,
                        attack=attack, params=params or {}, note=f"{note}; {stand_in}" if stand_in else note,  # type: ignore[arg-type]
                        missing=missing)

