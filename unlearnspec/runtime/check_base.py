"""The part of the evaluator every family of checks shares: seeded resampling, building a
:class:`~unlearnspec.report.model.CheckResult` from per-model values and intervals, reference gaps."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import numpy as np

from unlearnspec.catalog import METRICS, PROBES, label
from unlearnspec.catalog.vocab import REFERENCE_LABELS
from unlearnspec.markdown import code_span
from unlearnspec.plan import (
    MetricCheck,
)
from unlearnspec.report.model import CheckResult, Decision, ModelValue, three_valued
from unlearnspec.report.verdict import OP_SYMBOLS
from unlearnspec.runtime.evaluation import intervals
from unlearnspec.runtime.evaluation.intervals import Estimate
from unlearnspec.runtime.evaluation.sharding import together
from unlearnspec.runtime.measure import (
    ITEM_TYPES,
    TOKEN_VALUES,
    EvalContext,
    Measurer,
    Series,
    _point,
    _point_gap,
)

log = logging.getLogger("unlearnspec.run")
T = TypeVar("T")


OUTPUT_SERIES: dict[str, tuple[Callable[[Measurer, str, str], Series], str]] = {
    "verbatim_rouge": (lambda m, ds, probe: m.verbatim(ds), "documents (`text`)"),
    "leak_rate": (lambda m, ds, probe: m.leak(ds, probe), "questions for this probe"),
    "refusal_rate": (lambda m, ds, probe: m.refusal(ds, probe), "questions for this probe"),
    # each probe's knowledge ROUGE (catalog/probes.py), on the probe the check names
    **{p.metric: (lambda m, ds, probe: m.knowledge(ds, probe), "questions for this probe") for p in PROBES.values()},
}
"""How each ``generation`` metric of the catalog is measured (``(measurer, data set, probe) -> per-item values``) and
what in the data it reads. A metric not here is not measured (its check says so), never measured as another one."""


def unmeasured(metric: str) -> str:
    """Why a check of a metric the runtime has no measurement for is not evaluated."""
    return (f"this unlearnspec runtime has no measurement of {code_span(metric)}: it is not measured as any other "
            "metric (docs/architecture.md, adding a metric)")


BUILT_FROM_FORGET = ("measured as served, behind an output filter built from this data set's own word n-grams: a pass "
                     "shows that the filter holds back the text it was built from, not that it holds back the same "
                     "facts put another way (checks on an independent `test` set show that; FRAMEWORK.md §7)")


NO_INTERVAL = ("no confidence interval could be computed for this value (too few items with a value, or resamples "
               "the statistic cannot compute), so it cannot carry a verdict either way")


def same_weights(a: Any, b: Any) -> bool:
    """Whether two models hold the very same weights (the same object, or equal tensors under equal names)."""
    if a is b:
        return True
    if a is None or b is None:
        return False
    import torch

    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(sa[k].shape == sb[k].shape and torch.equal(sa[k], sb[k]) for k in sa)


class EvaluatorBase:
    """Decides metric checks for one objective from measured models (see :class:`Evaluator`)."""

    """Decides each check from the measurers; attack models are built lazily, once each."""

    def __init__(self, ctx: EvalContext) -> None:
        self.ctx = ctx
        st, data = ctx.stage, ctx.data
        kw: dict[str, Any] = {"refusal_text": ctx.refusal_text, "fmt": ctx.fmt}  # one prompt format for every model
        self.m: dict[str, Measurer] = {
            "original": Measurer("original", *ctx.original, data, st, **kw),
            "unlearned": Measurer("unlearned", *ctx.unlearned, data, st, **kw),
        }
        if ctx.reference is not None:
            self.m["reference"] = Measurer("reference", *ctx.reference, data, st, **kw)
        if ctx.guard is not None:
            self.m["served"] = Measurer("served", *ctx.unlearned, data, st, guard=ctx.guard, **kw)
        self._attacked: dict[str, Any] = {}
        self._same: bool | None = None
        self._same_as_original: bool | None = None

    # -- helpers ---------------------------------------------------------------------------

    @property
    def reference_name(self) -> str:
        """The reference as the report names it: retrained here, or given by the spec (whose never having seen
        the target this run cannot verify)."""
        return "the " + REFERENCE_LABELS["retrain" if self.ctx.strategy == "retrain" else "model"]

    @property
    def reference_never_saw(self) -> str:
        """What a reference-relative reading assumes of the reference, in words that do not claim more than the
        run knows."""
        return ("which never saw the target" if self.ctx.strategy == "retrain" else
                "which the spec states never saw the target (this run does not verify that)")

    @property
    def unlearned_is_reference(self) -> bool:
        """Whether the unlearned model has the retrained reference's very weights (``method retrain`` with
        the retrained reference): a gap between the two is then 0 on every item there is, not an estimate
        from the items measured, and its interval is exactly [0, 0]."""
        if self._same is None:
            ref = self.ctx.reference
            self._same = ref is not None and same_weights(self.ctx.unlearned[0], ref[0])
        return self._same

    @property
    def unlearned_is_original(self) -> bool:
        """Whether the unlearned model has the original's very weights (unlearning changed nothing: a filter's
        weights, an audit of the original itself): a difference between the two is then 0 on every item."""
        if self._same_as_original is None:
            self._same_as_original = same_weights(self.ctx.unlearned[0], self.ctx.original[0])
        return self._same_as_original

    def exact_if_same(self, e: Estimate | None) -> Estimate | None:
        """A gap of the unlearned model to the reference as the exact [0, 0] it is when the two have the same
        weights (see above) and the gap measured is 0, with intervals on; ``e`` itself otherwise (so ``is not``
        tells whether the rule applied)."""
        if e is None or e.value != 0.0 or not self.ctx.intervals or not self.unlearned_is_reference:
            return e
        return Estimate(0.0, 0.0, 0.0, e.n, e.n_other, e.confidence)

    SAME_WEIGHTS = ("; the unlearned model is the retrained reference itself (the same weights), so the gap is 0 on "
                    "every item there is, not only on those measured: its interval is exactly [0, 0]")

    def each_model(self, fn: Callable[[str], T], *, served: bool = False) -> dict[str, T]:
        """``{who: fn(who)}`` over the measured models (``served`` too if asked), measured together: under a
        launch their collective calls are dealt round by round as one (``sharding.together``)."""
        names = [who for who in self.m if served or who != "served"]
        return dict(zip(names, together([lambda who=who: fn(who) for who in names]), strict=True))  # type: ignore[misc]

    def rng(self, check: MetricCheck, *parts: str) -> np.random.Generator:
        return intervals.seed_for(self.ctx.seed, check.id, *parts)

    def _result(self, check: MetricCheck, values: Mapping[str, float | None], *, per_item: dict[str, Series] | None = None,
                extra: dict[str, Any] | None = None, reason: str | None = None, attack: str | None = None,
                est: Mapping[str, Estimate | None] | None = None, decision: Decision | None = None,
                findings: list[str] | None = None) -> CheckResult:
        decided = check.model if check.model in ("unlearned", "attacked", "served") else "unlearned"
        if decided == "served" and "served" not in values:
            decided = "unlearned"
        ids: list[str] = []
        items: dict[str, list[float | None]] = {}
        for name, series in (per_item or {}).items():
            if not ids:
                ids = series.ids
            if series.ids == ids:
                items[name] = list(series.values)
        clean = {k: (None if v is None or not math.isfinite(v) else float(v)) for k, v in values.items()}
        if reason is None and clean.get(decided) is None and check.threshold is not None:
            reason = f"no value for the {decided} model"
        n = {k: e.n for k, e in (est or {}).items() if e is not None}
        ivs = {k: (e.low, e.high) for k, e in (est or {}).items()
               if e is not None and self.ctx.intervals and not e.point}
        if decision is not None and not (math.isfinite(decision.value) and all(
                math.isfinite(x) for x in (decision.interval or ()))):
            reason, decision = f"the deciding quantity ({decision.quantity}) could not be computed on these items", None
        if reason is not None:
            decision = None
        elif decision is not None and self.ctx.intervals and decision.interval is None and not decision.no_evidence:
            # a decision built from a value without an interval (intervals are on, but none could be computed for
            # it): reported, never decided on
            decision = decision.model_copy(update={"no_evidence": NO_INTERVAL, "more_items": None})
        elif (decision is None and self.ctx.intervals and check.threshold is not None and decided not in ivs
              and clean.get(decided) is not None):
            # intervals are on, but none could be computed for the value that decides: a point estimate is no
            # evidence either way (FRAMEWORK.md §7), so the check is inconclusive and says why
            decision = Decision(quantity=f"{decided} value", value=float(clean[decided]),  # type: ignore[arg-type]
                                threshold=check.threshold, n=n.get(decided, 0),
                                no_evidence=NO_INTERVAL,
                                how="a value without an interval is reported, never decided on")
        return CheckResult(check_id=check.id, metric=check.metric, dataset=check.dataset, probe=check.probe,
                           attack=attack, threshold=check.threshold, values=ModelValue(**clean), decided_on=decided,
                           not_evaluated_reason=reason, per_item=items, item_ids=ids, extra=extra or {},
                           n=n, interval=ivs, confidence=self.ctx.confidence if ivs else None,
                           decision=decision, findings=findings or [])

    def _mean_estimates(self, check: MetricCheck, per: Mapping[str, Series]) -> dict[str, Estimate | None]:
        if not self.ctx.intervals:
            return {who: _point(s.values, s.groups) for who, s in per.items()}
        # every per-item value of these families is a share or a score in [0, 1]
        return {who: intervals.mean_estimate(s.values, confidence=self.ctx.confidence, rng=self.rng(check, who),
                                             bounds=intervals.UNIT, clusters=s.groups) for who, s in per.items()}

    def _gap_decision(self, check: MetricCheck, per: Mapping[str, Series], decided: str) -> Decision | None:
        """The gap to the retrained reference on the same items, for metrics the catalog marks ``reference_gap``."""
        if not METRICS[check.metric].reference_gap or check.threshold is None or "reference" not in per \
                or decided not in per or check.threshold.op not in ("<=", "<"):
            return None
        a, b = per[decided], per["reference"]
        if a.ids != b.ids:
            return None
        if self.ctx.intervals:
            e = intervals.paired_gap_estimate(a.values, b.values, confidence=self.ctx.confidence,
                                              rng=self.rng(check, "gap"), bounds=intervals.UNIT,
                                              clusters=a.groups if a.groups == b.groups else None)
        else:
            e = _point_gap(a.values, b.values, a.groups if a.groups == b.groups else None)
        if e is None:
            return None
        exact = self.exact_if_same(e) if decided == "unlearned" else e
        assert exact is not None
        same, e = exact is not e, exact
        t = check.threshold
        return Decision(quantity=f"{decided} minus reference (mean over items)", value=e.value,
                        interval=(e.low, e.high) if self.ctx.intervals and not e.point else None, threshold=t, n=e.n,
                        how=f"the bound {OP_SYMBOLS[t.op]} {t.value:g} is read as at most {t.value:g} above "
                            f"{self.reference_name} on the same items, {self.reference_never_saw}: a model never "
                            "trained on the target scores the reference's value" + (self.SAME_WEIGHTS if same else ""),
                        more_items=intervals.items_to_settle(e.n, e.low, e.high, e.value, t.value))

    def _worst_type_decision(self, check: MetricCheck, per: Mapping[str, Series], decided: str) -> Decision | None:
        """Values of several parts (item types: a document's tokens, a question's answer tokens; the adversarial
        probe's templates) decided on the worst part, not their pool (FRAMEWORK.md §7: a pool can average a complete
        leak on one part with nothing on another): each part's mean (its gap to the reference, when there is one)
        with its interval at the Bonferroni level ``1 - alpha / k`` over the ``k`` parts, so that all hold
        together, a record's values resampled together; the decision interval runs from the largest of their lower
        ends to the largest of their upper ends (a bound ``<=`` holds for every part, or fails for one). ``None``
        for a single part, or a bound of another direction."""
        a = per.get(decided)
        t = check.threshold
        if a is None or a.types is None or t is None or t.op not in ("<=", "<") or len(set(a.types)) < 2:
            return None
        b = per.get("reference") if METRICS[check.metric].reference_gap else None
        if b is not None and b.ids != a.ids:
            b = None
        kinds = ([k for k in ITEM_TYPES if k in a.types] if set(a.types) <= set(ITEM_TYPES)
                 else list(dict.fromkeys(a.types)))
        each = 1.0 - (1.0 - self.ctx.confidence) / len(kinds)
        found: dict[str, Estimate] = {}
        for k in kinds:
            idx = [i for i, x in enumerate(a.types) if x == k]
            mine = [a.values[i] for i in idx]
            groups = [a.groups[i] for i in idx] if a.groups is not None else None
            if b is not None:
                theirs = [b.values[i] for i in idx]
                e = (intervals.paired_gap_estimate(mine, theirs, confidence=each, rng=self.rng(check, "gap", k),
                                                   bounds=intervals.UNIT, clusters=groups)
                     if self.ctx.intervals else _point_gap(mine, theirs, groups))
                if e is not None and decided == "unlearned":
                    e = self.exact_if_same(e)
            else:
                e = (intervals.mean_estimate(mine, confidence=each, rng=self.rng(check, decided, k), bounds=intervals.UNIT,
                                             clusters=groups)
                     if self.ctx.intervals else _point(mine, groups))
            if e is not None:
                found[k] = e
        if not found:
            return None
        # a part without an estimate (no item with a value for both models) cannot be shown within the bound
        missing = [k for k in kinds if k not in found]
        use_iv = self.ctx.intervals and not any(e.point for e in found.values())
        w = intervals.worst_part({k: (e.value, e.low, e.high) for k, e in found.items()}, t.holds, use_iv)
        lows, highs, worst = w.low, w.high, w.key
        e = found[worst]
        what = f"{decided} minus reference" if b is not None else decided
        parts = a.type_name
        shown = "; ".join(f"{k} {v.value:.3g}" + (f" [{v.low:.3g}, {v.high:.3g}]" if use_iv else "") + f", n={v.n}"
                          for k, v in found.items())
        return Decision(
            quantity=f"{what} (mean over items), worst over {parts}", value=e.value,
            interval=(lows, highs) if use_iv else None, threshold=t, n=e.n,
            cannot_pass=(f"{', '.join(missing)} could not be measured, so the worst of the {parts} is not known to be "
                         "within the bound" if missing else None),
            how=(f"each of the {parts} on its own ({shown}){f', each interval at {each:.2%} (Bonferroni over the {parts})' if use_iv else ''}; "
                 f"the value and n shown are those of {worst}; "
                 + (f"the bound {OP_SYMBOLS[t.op]} {t.value:g} is read as at most {t.value:g} above {self.reference_name} on "
                    f"the same items, {self.reference_never_saw}" if b is not None else
                    f"the bound {OP_SYMBOLS[t.op]} {t.value:g} applies to each of the {parts}")),
            more_items=intervals.items_to_settle(e.n, lows, highs, e.value, t.value) if use_iv else None)

    @staticmethod
    def _by_part(per: Mapping[str, Series], decided: str) -> dict[str, dict[str, float | None]]:
        """``{part: {model: mean}}`` over the parts (``Series.types``) of the decided model's series."""
        out: dict[str, dict[str, float | None]] = {}
        for k in dict.fromkeys(per[decided].types or []):
            out[k] = {}
            for who, s in per.items():
                xs = [x for x, y in zip(s.values, s.types or [], strict=False) if y == k and math.isfinite(x)]
                out[k][who] = float(np.mean(xs)) if xs else None
        return out

    def _positive_control(self, check: MetricCheck, per: Mapping[str, Series], decided: str,
                          decision: Decision | None, est: Mapping[str, Estimate | None]) -> tuple[Decision | None, list[str]]:
        """A bounded output or token metric (knowledge and verbatim ROUGE, the leak rate, exact memorisation,
        extraction strength, and from below the refusal rate) can pass only when it could have failed: the original
        model, trained on the target (for the refusal rate: before unlearning taught refusal), must be beyond the bound
        on these items, decided as the check is (its gap to the reference for a metric judged
        against it, else its own value; worst part deciding). Otherwise the measurement does not tell a model that
        holds the target from one that never saw it — the bound cannot fail for any model (FRAMEWORK.md §7, the rule
        ``probe_accuracy_gap`` and ``forget_quality`` follow) — so the check cannot pass: it is inconclusive, or fails
        on its own interval. A fail needs no control. Returns the decision (built from the decided model's value when
        there is none) and the finding that says so."""
        t = check.threshold
        m = METRICS[check.metric]
        if t is None or "original" not in per or decided == "original":
            return decision, []

        def decide(who: str) -> Decision | None:
            d = self._worst_type_decision(check, per, who) or self._gap_decision(check, per, who)
            if d is not None or ("reference" in per and m.reference_gap):
                return d
            e = est.get(who)  # no reference: the bound is on the model's own value
            if e is None:
                return None
            iv = (e.low, e.high) if self.ctx.intervals and not e.point else None
            return Decision(quantity=f"{who} value (mean over items)", value=e.value, interval=iv, threshold=t, n=e.n,
                            how=f"the bound {OP_SYMBOLS[t.op]} {t.value:g} on the {who} model's mean over items",
                            more_items=intervals.items_to_settle(e.n, e.low, e.high, e.value, t.value) if iv else None)

        if decision is None:
            decision = decide(decided)
            e = est.get(decided)
            if decision is None and e is not None and "reference" in per and m.reference_gap and t.op in ("<=", "<"):
                # judged against the reference, but no gap to it on the same items could be formed (the models were
                # measured on different items, or none has a value for both): the model's own value, read on its
                # own, is neither reference-relative nor controlled, so it decides nothing (FRAMEWORK.md §7)
                iv = (e.low, e.high) if self.ctx.intervals and not e.point else None
                return Decision(quantity=f"{decided} value (mean over items)", value=e.value, interval=iv, threshold=t,
                                n=e.n, how=f"the bound {OP_SYMBOLS[t.op]} {t.value:g} is read against "
                                           f"{self.reference_name} on the same items",
                                no_evidence=f"no gap to {self.reference_name} on the same items could be formed (the "
                                            "models' items differ, or none has a value for both), and a value on "
                                            "its own is no reading against the model that never saw the target"), []
            if decision is None:
                return None, []
        control = decide("original")
        if control is not None and three_valued(t, control.value, control.interval) is False:
            return decision, []
        shown = ("could not be measured" if control is None else
                 f"{control.quantity} {control.value:.3g}"
                 + (f" [{control.interval[0]:.3g}, {control.interval[1]:.3g}]" if control.interval else "")
                 + f", n={control.n}")
        if t.op in ("<=", "<"):
            why = (f"no positive control: the original model, which was trained on the target, is not shown beyond the "
                   f"bound {OP_SYMBOLS[t.op]} {t.value:g} on these items either ({shown}), so this "
                   f"{label(check.metric)} cannot tell a model that holds the target from one that never saw it, and a "
                   "value within the bound is no evidence that unlearning removed it")
        else:  # a bound from below (the refusal rate): the original, before unlearning, must be shown short of it
            why = (f"no positive control: the original model, before unlearning, is not shown short of the bound "
                   f"{OP_SYMBOLS[t.op]} {t.value:g} on these items either ({shown}), so this {label(check.metric)} "
                   "cannot tell the unlearned model's behaviour from the original's, and a value within the bound is "
                   "no evidence that unlearning brought it about")
        reason = "; ".join(x for x in (decision.cannot_pass, why) if x)
        return decision.model_copy(update={"cannot_pass": reason, "more_items": None}), [why]

    @staticmethod
    def _below_reference(check: MetricCheck, decision: Decision | None, values: Mapping[str, float | None],
                         decided: str) -> list[str]:
        """A finding when the decided model scores far *below* the retrained reference: the gap's
        interval (without intervals, its value) lies entirely below minus the bound. It does not fail
        the check — these metrics bound how much the model still reproduces, and less is what was
        asked — but a model that reproduces less than one never trained on the target is itself a tell
        that the target was unlearned (FRAMEWORK.md §7: the reference defines "never trained", in both
        directions), so the reviewer is told."""
        mine, ref = values.get(decided), values.get("reference")
        if decision is None or mine is None or ref is None or not (math.isfinite(mine) and math.isfinite(ref)):
            return []
        tol = decision.threshold.value
        high = decision.interval[1] if decision.interval is not None else decision.value
        if tol <= 0 or high >= -tol:
            return []
        iv = f" [{decision.interval[0]:.3g}, {decision.interval[1]:.3g}]" if decision.interval else ""
        return [f"over-unlearning: the {decided} model's {label(check.metric)} on {check.dataset} is {mine:.3g}, "
                f"well below the reference's {ref:.3g} (gap {decision.value:.3g}{iv}, n={decision.n}, beyond the "
                f"tolerance of {tol:g}): a model that reproduces less than one never trained on the target can "
                "itself reveal that the target was unlearned"]

    def _missing(self, check: MetricCheck, reason: str) -> CheckResult:
        return CheckResult(check_id=check.id, metric=check.metric, dataset=check.dataset, probe=check.probe,
                           threshold=check.threshold, not_evaluated_reason=reason, decided_on=check.model)

    def _output_series(self, who: str, check: MetricCheck) -> Series:
        probe = check.probe or METRICS[check.metric].probe or "direct"
        return OUTPUT_SERIES[check.metric][0](self.m[who], check.dataset, probe)

    # -- metric families ---------------------------------------------------------------------

    def output_metric(self, check: MetricCheck) -> CheckResult:
        if check.metric not in OUTPUT_SERIES:
            return self._missing(check, unmeasured(check.metric))
        if not self.ctx.data.get(check.dataset):
            return self._missing(check, f"the plan has no {code_span(check.dataset)} data")
        per = self.each_model(lambda who: self._output_series(who, check), served=True)
        if not per["unlearned"].ids:
            return self._missing(check, f"the {code_span(check.dataset)} data has no {OUTPUT_SERIES[check.metric][1]}")
        values = {who: s.mean for who, s in per.items()}
        decided = check.model if check.model in per else "unlearned"
        est = self._mean_estimates(check, per)
        # the adversarial probe's templates are decided on the worst one (FRAMEWORK.md §7), not their pool
        decision = self._worst_type_decision(check, per, decided) or self._gap_decision(check, per, decided)
        findings = self._below_reference(check, decision, values, decided)
        if decided == "served" and check.dataset == "forget":
            findings.append(BUILT_FROM_FORGET)
        decision, control = self._positive_control(check, per, decided, decision, est)
        extra: dict[str, Any] = {}
        if per[decided].types is not None:  # each part's mean per model: the worst part recomputed from report.json
            extra[f"by_{per[decided].type_name.replace(' ', '_')}"] = self._by_part(per, decided)
        return self._result(check, values, per_item=per, est=est, decision=decision, extra=extra,
                            findings=findings + [f"no power: {c}" for c in control])

    def token_metric(self, check: MetricCheck) -> CheckResult:
        if check.metric not in TOKEN_VALUES:
            return self._missing(check, unmeasured(check.metric))
        if not self.ctx.data.get(check.dataset):
            return self._missing(check, f"the plan has no {code_span(check.dataset)} data")
        per = self.each_model(lambda who: self.m[who].token_metric(check.dataset, check.metric))
        values = {who: s.mean for who, s in per.items()}
        est = self._mean_estimates(check, per)
        decision = self._worst_type_decision(check, per, "unlearned") or self._gap_decision(check, per, "unlearned")
        findings = self._below_reference(check, decision, values, "unlearned")
        # a pass needs the original model, trained on the target, shown beyond the bound on these tokens too
        decision, control = self._positive_control(check, per, "unlearned", decision, est)
        return self._result(check, values, per_item=per, est=est, decision=decision,
                            findings=findings + [f"no power: {c}" for c in control])

    def check(self, check: MetricCheck) -> CheckResult:
        """Decide one check (dispatched by :class:`unlearnspec.runtime.checks.Evaluator`)."""
        raise NotImplementedError
