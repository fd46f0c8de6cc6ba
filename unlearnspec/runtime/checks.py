"""From models to evidence: measure each model once, then decide every metric check of the plan.

A :class:`Measurer` wraps one model (the original, the unlearned, the reference, or the served
system — the model behind its output guard). Each measurement is computed on first use and cached:
one batched forward pass per dataset feeds every likelihood metric (membership inference, exact
memorisation, extraction strength), one batched generation per probe feeds every output metric
(knowledge ROUGE, leak and refusal rates). :func:`compute` then turns the plan's
:class:`~unlearnspec.plan.MetricCheck` list into report :class:`CheckResult` objects, running the
attacks (relearning, quantization) on copies of the unlearned model.

Definitions follow FRAMEWORK.md §5 and are documented per metric in the catalog
(``unlearnspec/catalog/metrics.py``); :meth:`Evaluator.check` dispatches on each metric's family.
"""


from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from unlearnspec.catalog import METRICS
from unlearnspec.markdown import code_span
from unlearnspec.plan import (
    MetricCheck,
    RelearnAttack,
)
from unlearnspec.report.model import CheckResult, Decision
from unlearnspec.runtime.attack_checks import AttackChecks
from unlearnspec.runtime.check_base import EvaluatorBase
from unlearnspec.runtime.evaluation import intervals, metrics
from unlearnspec.runtime.evaluation.intervals import Estimate
from unlearnspec.runtime.measure import (
    ITEM_TYPES,
    MIN_FORGOTTEN,
    DataBundle,
    EvalContext,
    Measurer,
    Series,
    _point_est,
    _point_gap,
    muse_privleak,
)
from unlearnspec.runtime.membership_checks import MembershipChecks

__all__ = ["ITEM_TYPES", "MIN_FORGOTTEN", "DataBundle", "EvalContext", "Evaluator", "Measurer", "compute",
           "muse_privleak"]


class Evaluator(MembershipChecks, AttackChecks):
    """Decides every metric check of one objective; :meth:`check` dispatches on the metric's family."""

    def utility_drop(self, check: MetricCheck) -> CheckResult:
        ds = "neighbors" if check.metric.startswith("neighbor") else "retain"
        if not self.ctx.data.get(ds):
            return self._missing(check, f"no {code_span(ds)} data: side effects on it are unmeasured")
        # measured together (sharding.together), then cached; the served system too (a filter blocks answers)
        self.each_model(lambda who: self.m[who].utility(ds), served=True)
        base = self.m["original"].utility(ds).value
        if not math.isfinite(base) or base <= 0:
            return self._missing(check, f"the original model's utility on {code_span(ds)} is {base:.3g}: a relative drop "
                                        "from zero (or an undefined) utility means nothing, so it is not evaluated")
        values: dict[str, float | None] = {"original": 0.0}
        util = {"original": base}
        # the served system too when a filter stands in front of the model: the filter blocks generated answers,
        # which are part of the utility, so the people asking the served system may lose more than the weights do
        for who in self.m:
            if who == "original":
                continue
            u = self.m[who].utility(ds).value
            util[who] = u
            values[who] = metrics.utility_drop(base, u)  # signed: a gain is a negative drop, shown as one
        comps = {who: self.m[who].utility(ds).components for who in self.m}
        n = len(self.ctx.data.get(ds))
        est = {who: _point_est(v, n) for who, v in values.items() if v is not None}
        if self.ctx.intervals:  # records resampled together for both models: a paired bootstrap of the drop
            base_rows = self.m["original"].utility(ds).per_record
            names = sorted(base_rows)
            k = len(names)

            def drop(*rows: Any, axis: int = -1) -> Any:
                u0 = metrics.utility_of_rows(np.stack(rows[:k], axis=-2))
                u1 = metrics.utility_of_rows(np.stack(rows[k:], axis=-2))
                with np.errstate(invalid="ignore", divide="ignore"):
                    return 100.0 * (u0 - u1) / u0

            for who in values:
                if who == "original" or values[who] is None:
                    continue
                rows = self.m[who].utility(ds).per_record
                if sorted(rows) != names:
                    continue
                # the range a drop from the original's utility can take (the other utility anywhere in [0, 1]): a
                # filter that blocked nothing here, whose drop never moves in a resample, gets the distribution-free
                # interval over it (intervals.degenerate_interval), not a width of zero and not no interval at all
                span = (100.0 * (base - 1.0) / base, 100.0)
                e = intervals.paired_estimate([*(base_rows[c] for c in names), *(rows[c] for c in names)], drop,
                                              confidence=self.ctx.confidence, rng=self.rng(check, who),
                                              keep_missing=True, span=span)
                same = self.m[who].model is self.ctx.unlearned[0]  # not a quantized twin's model
                if who == "unlearned" and values[who] == 0.0 and same and self.unlearned_is_original:
                    # the original's very weights: no drop on any record there is, not only on those measured
                    e = intervals.Estimate(0.0, 0.0, 0.0, n, confidence=self.ctx.confidence)
                if e is not None:
                    est[who] = e
        # every component of every model per record (NaN where a record does not contribute to it), so that the
        # utilities and the drops can be recomputed from report.json
        ids = [f"{ds}[{i}]" for i in range(n)]
        per = {f"{who}.{c}": Series(ids, [float(x) for x in col]) for who in self.m
               for c, col in sorted(self.m[who].utility(ds).per_record.items()) if len(col) == n}
        return self._result(check, values, est=est, per_item=per,
                            extra={"per_item": "each utility component per record, as `model.component` (empty "
                                               "where the record does not contribute to it); a component is the "
                                               "mean of its column, the utility the harmonic mean of the components",
                                   "utility": util, "components": comps,
                                   "unit": "percent drop from the original model",
                                   "interval": "paired bootstrap over records (both models on the same resampled "
                                               "records); each component is the mean over the records it is "
                                               "measured on, the utility their harmonic mean (TOFU)"})

    def mcq_accuracy(self, check: MetricCheck) -> CheckResult:
        if not self.ctx.data.get(check.dataset):
            return self._missing(check, f"the plan has no {code_span(check.dataset)} data")
        res = {who: meas.mcq(check.dataset) for who, meas in self.m.items() if who != "served"}
        if not len(res["unlearned"]):
            return self._missing(check, f"the {code_span(check.dataset)} data has no multiple-choice records "
                                        "(`question`, `choices`, `answer` index)")
        per = {who: Series([f"{check.dataset}[{i}]" for i in r.index], [float(x) for x in r.acc])
               for who, r in res.items()}
        extra = {"acc_norm": {who: r.mean_acc_norm for who, r in res.items()}, "chance": res["unlearned"].chance,
                 "items": len(res["unlearned"])}
        # each item right or wrong: the share's interval is Clopper-Pearson's (mean_estimate on {0, 1} values)
        est = self._mean_estimates(check, per)
        # a pass needs the original model, which knows the target, shown beyond the bound on these items: an
        # accuracy it already keeps within the bound (a model near chance on them) says nothing of unlearning
        decision, control = self._positive_control(check, per, "unlearned", None, est)
        return self._result(check, {who: r.mean_acc for who, r in res.items()}, per_item=per, extra=extra,
                            est=est, decision=decision, findings=[f"no power: {c}" for c in control])

    def probe_gap(self, check: MetricCheck) -> CheckResult:
        attr = self.ctx.stage.representation_probe or self.ctx.data.attribute
        if not attr:
            return self._missing(check, "no attribute to probe for (set `attribute` in the target)")
        if "reference" not in self.m:
            return self._missing(check, "no retrained reference to compare the probe accuracy with")
        if not any(attr in r.attributes for r in self.ctx.data.forget):
            return self._missing(check, f"the forget records carry no {code_span(attr)} attribute")
        acc = self.each_model(lambda who: self.m[who].representation(attr))
        ref, u = acc["reference"], acc["unlearned"]
        layers = [k for k in ref.by_layer if all(k in r.by_layer for r in acc.values())]
        if not layers:
            return self._missing(check, f"no forget input leads to {code_span(attr)} while naming its subject (a question whose "
                                        "answer states it, or a document's text before it that names the person), so "
                                        "the probe has nothing to be tested on")
        t = check.threshold
        # one probe per layer: each layer's gap to the reference at the Bonferroni level over the layers, the worst
        # layer deciding, so that looking at several layers cannot hide a leak in one nor find one by chance
        each = 1.0 - (1.0 - self.ctx.confidence) / len(layers)
        use_iv = self.ctx.intervals

        def hits(who: str, layer: int) -> list[float]:
            return [float(p == y) for p, y in zip(acc[who].by_layer[layer], acc[who].labels, strict=True)]

        gaps: dict[str, dict[int, Estimate]] = {}
        for who in acc:
            if who == "reference":
                continue
            for layer in layers:
                e = (intervals.paired_gap_estimate(hits(who, layer), hits("reference", layer), confidence=each,
                                                   rng=self.rng(check, who, str(layer)), bounds=intervals.UNIT)
                     if use_iv else _point_gap(hits(who, layer), hits("reference", layer)))
                if e is not None and who == "unlearned":
                    e = self.exact_if_same(e)  # the reference's own hits: 0 on every input
                if e is not None:
                    gaps.setdefault(who, {})[layer] = e

        def worst(who: str) -> intervals.WorstPart[int] | None:
            found = gaps.get(who)
            if not found:
                return None
            return intervals.worst_part({k: (e.value, e.low, e.high) for k, e in found.items()},
                                        t.holds if t is not None else None, use_iv)

        w_u, w_o = worst("unlearned"), worst("original")
        deciding = w_u.key if w_u is not None else layers[-1]
        est: dict[str, Estimate | None] = {who: g.get(deciding) for who, g in gaps.items()}
        values: dict[str, float | None] = {who: (e.value if e is not None else None) for who, e in est.items()}
        values["reference"] = 0.0
        # per item, at the deciding layer: did the probe read the attribute off this model's hidden states (the items
        # are the same forget inputs for every model, so the gap to the reference is paired)
        per = {who: Series([f"{check.dataset}[{i}]" for i in range(len(acc[who].labels))], hits(who, deciding))
               for who in acc}
        findings: list[str] = []
        # the original model was trained on the target: a probe whose gap does not fail it at some layer cannot tell a
        # model that holds the attribute from one that never saw it (a positive control), so it cannot fail here
        blind = None
        if w_o is not None:
            o_iv = f" [{w_o.low:.3g}, {w_o.high:.3g}]" if use_iv else ""
            top = max(e.value for e in gaps["original"].values())
            if w_o.low <= 0 or (t is not None and t.holds(w_o.low)):  # no layer wholly beyond (or above 0)
                k = w_o.key
                blind = (f"the probe does not read {code_span(attr)} off the original model, which was trained on the "
                         "target, " + (f"better than off {self.reference_name}" if w_o.low <= 0 else
                                       "by more than the bound")
                         + f" at any of the layers {', '.join(map(str, layers))} (worst gap {top:.3g}{o_iv}, "
                         f"n={gaps['original'][k].n}; at layer {k} the probe's accuracy is "
                         f"{acc['original'].accuracy_by_layer[k]:.3g} on the original model, "
                         f"n={len(acc['original'].labels)}, against {ref.accuracy_by_layer[k]:.3g} on the reference, "
                         f"n={len(ref.labels)}; chance {u.chance:.3g}, {u.n_classes} values), so the gap measured for "
                         "the unlearned model is no evidence either way about what its representations still hold")
                findings.append(f"no power: {blind}")
        decision = None
        e_u = est.get("unlearned")
        if t is not None and e_u is not None and w_u is not None:
            shown = "; ".join(f"layer {k} {e.value:.3g}" + (f" [{e.low:.3g}, {e.high:.3g}]" if use_iv else "")
                              for k, e in gaps["unlearned"].items())
            decision = Decision(quantity="probe accuracy minus the reference's (same items), worst over layers",
                                value=e_u.value, interval=(w_u.low, w_u.high) if use_iv and not e_u.point else None,
                                threshold=t, n=e_u.n,
                                how=f"a linear probe per layer on the {check.dataset} inputs, unlearned minus "
                                    f"{self.reference_name.removeprefix('the ')}, items paired, each layer on its own "
                                    f"({shown}){f', each interval at {each:.2%} (Bonferroni over the layers)' if use_iv else ''}; "
                                    f"the value and n shown are those of layer {deciding}",
                                no_evidence=blind,
                                more_items=None if blind or not use_iv else intervals.items_to_settle(
                                    e_u.n, w_u.low, w_u.high, e_u.value, t.value))
        by_layer = {str(k): {"accuracy": {who: r.accuracy_by_layer[k] for who, r in acc.items()},
                             "gap": {who: {"value": g[k].value, "low": g[k].low, "high": g[k].high}
                                     for who, g in gaps.items() if k in g}} for k in layers}
        return self._result(check, values, per_item=per, est=est, decision=decision, findings=findings,
                            extra={"accuracy": {k: v.accuracy_by_layer[deciding] for k, v in acc.items()},
                                   "chance": u.chance, "attribute": attr, "layer": deciding, "layers": by_layer,
                                   "layer_confidence": each if use_iv else None,
                                   "probe_trained_on": f"{u.n_train} retain and neighbour inputs",
                                   "probe_tested_on": f"{u.n_test} forget inputs"
                                   + (f" ({u.dropped_in_training} more left out: the same text is a training input)"
                                      if u.dropped_in_training else ""),
                                   "unseen_test_labels": u.unseen_test_labels})

    # -- attacks --------------------------------------------------------------------------------

    def check(self, check: MetricCheck) -> CheckResult:
        m = check.metric
        if check.model == "attacked" and check.probe == "quantize" and m != "quantization_recovery":
            return self.at_release_precision(check)
        info = METRICS.get(m)
        if info is None:
            return self._missing(check, f"the runtime has no metric {code_span(m)}")
        return self._measure[info.family](self, check)

    def _relearn(self, check: MetricCheck) -> CheckResult:
        data = check.params.get("data", "forget_subset")
        relearns = [a for a in self.ctx.attacks if isinstance(a, RelearnAttack) and a.data == data]
        steps = check.params.get("steps")
        attack = next((a for a in relearns if steps is None or a.steps == steps), relearns[0] if relearns else None)
        if attack is None:
            return self._missing(check, "the plan has no relearning attack")
        return self.relearn_recovery(check, attack)

    def _quantize(self, check: MetricCheck) -> CheckResult:
        attack_q = self._quant_attack(check)
        if attack_q is None:
            return self._missing(check, "the plan has no quantization attack at this precision")
        return self.quantization_recovery(check, attack_q)

    #: How each metric family (catalog ``Metric.family``) is measured.
    _measure: dict[str, Callable[[Evaluator, MetricCheck], CheckResult]] = {
        "generation": EvaluatorBase.output_metric, "tokens": EvaluatorBase.token_metric,
        "membership": MembershipChecks.membership_auc, "privleak": MembershipChecks.privleak,
        "forget_quality": MembershipChecks.forget_quality, "utility": utility_drop, "representation": probe_gap, "mcq": mcq_accuracy,
        "relearn": _relearn, "quantize": _quantize,
    }


def compute(ctx: EvalContext, checks: Sequence[MetricCheck] | None = None,
            on_attack_start: Callable[[], None] | None = None,
            generations: list[dict[str, Any]] | None = None) -> dict[str, CheckResult]:
    """Every check of the objective: evaluation checks first, then those needing an attack.

    ``generations``, when given, receives every generated output (prompt, output, gold answer, score
    per model): they go to a file beside the report, never into it (they can hold personal data)."""
    ev = Evaluator(ctx)
    todo = list(checks if checks is not None else ctx.op.checks)
    def is_attack(c: MetricCheck) -> bool:
        return (c.metric in METRICS and METRICS[c.metric].attack is not None) or c.model == "attacked"

    out: dict[str, CheckResult] = {}
    for c in [c for c in todo if not is_attack(c)]:
        out[c.id] = ev.check(c)
    if on_attack_start is not None:
        on_attack_start()
    for c in [c for c in todo if is_attack(c)]:
        out[c.id] = ev.check(c)
    if generations is not None:
        for meas in ev.m.values():
            generations.extend(meas.outputs)
    return out

