"""Checks on attacked copies of the unlearned model: relearning (a fine-tune with a step budget) and
quantization at the release precision."""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Sequence
from typing import Any

import numpy as np

from unlearnspec.plan import (
    MetricCheck,
    QuantizeAttack,
    RelearnAttack,
)
from unlearnspec.records import Record
from unlearnspec.report.model import CheckResult, Decision, ModelValue
from unlearnspec.report.verdict import OP_SYMBOLS
from unlearnspec.runtime import attacks
from unlearnspec.runtime.check_base import EvaluatorBase
from unlearnspec.runtime.evaluation import intervals
from unlearnspec.runtime.evaluation.intervals import Estimate
from unlearnspec.runtime.measure import (
    DataBundle,
    Measurer,
    Series,
    _point_est,
    nothing_forgotten,
)

log = logging.getLogger("unlearnspec.run")


def _recovered(o: Any, u: Any, a: Any, axis: int = -1) -> Any:
    """:func:`attacks.recovery` vectorised over bootstrap resamples: the share of the knowledge lost from
    ``o`` to ``u`` that ``a`` has back, signed (0 when nothing was lost)."""
    lost = np.mean(o, axis=axis) - np.mean(u, axis=axis)
    return (np.mean(a, axis=axis) - np.mean(u, axis=axis)) / np.where(np.abs(lost) < 1e-12, np.inf, lost)


def relearn_split(forget: Sequence[Record], fraction: float, seed: int) -> tuple[list[Record], list[Record]]:
    """(forget records to relearn on, forget questions to measure on), always disjoint: recovery measured on a
    question the attack fine-tuned on would count what it taught, not what it recovered.

    ``ceil(fraction * records)`` forget records (at least one) are relearned on, drawn with ``seed`` from the
    questions and the other records in proportion, but never every question: at least one question is held out
    to measure on. A forget set that is a single question and nothing else gives nothing to relearn on."""
    qa = [i for i, r in enumerate(forget) if r.is_qa]
    others = [i for i, r in enumerate(forget) if not r.is_qa]
    rng = random.Random(seed)
    rng.shuffle(qa)
    rng.shuffle(others)
    k = max(1, math.ceil(len(forget) * fraction))
    # questions in proportion, at least what the other records cannot make up, at most all but one
    k_qa = min(max(0, len(qa) - 1), max(k - len(others), round(k * len(qa) / max(1, len(forget)))))
    chosen = sorted(qa[:k_qa] + others[:max(0, k - k_qa)])
    return [forget[i] for i in chosen], [forget[i] for i in sorted(qa[k_qa:])]


class AttackChecks(EvaluatorBase):
    """Relearning and quantization recovery (FRAMEWORK.md §5)."""

    def _relearn_split(self, attack: RelearnAttack) -> tuple[list[Record], list[Record]]:
        """(data to relearn on, forget questions to measure on): :func:`relearn_split`, or for related data the
        neighbours (or the retain set) and every forget question."""
        forget = self.ctx.data.forget
        if attack.data == "related":
            return self.ctx.data.neighbors or self.ctx.data.retain, [r for r in forget if r.is_qa]
        return relearn_split(forget, attack.fraction, attack.seed)

    def _relearn_source(self, attack: RelearnAttack, train: Sequence[Record]) -> str:
        if attack.data != "related":
            return f"{len(train)} forget records"
        which = "neighbour" if self.ctx.data.neighbors else "retain"
        return f"{len(train)} related {which} records (none of the forget set)"

    def relearn_recovery(self, check: MetricCheck, attack: RelearnAttack) -> CheckResult:
        if not self.ctx.data.forget:
            return self._missing(check, "no forget data")
        train, measure = self._relearn_split(attack)
        if not measure:
            return self._missing(check, "the forget data has no questions to measure recovered knowledge on")
        if not train:
            return self._missing(check, "the forget data is a single question: relearning on it and measuring on it "
                                        "would count what the attack taught, not what it recovered")
        key = f"relearn:{attack.steps}:{attack.data}"
        data = DataBundle(forget=measure, retain=[], neighbors=[], holdout=[], test=[])
        st = self.ctx.stage

        series: dict[str, Series] = {}  # each model's knowledge per question (the report's per_item too)

        def know(model: Any, tok: Any, who: str) -> float:
            series[who] = Measurer("x", model, tok, data, st, fmt=self.ctx.fmt).knowledge("forget", "direct")
            return float(np.nanmean(series[who].values))

        if key not in self._attacked:
            log.info("attack: relearning for %d steps on %d records", attack.steps, len(train))
            att = attacks.relearn(self.ctx.unlearned[0], self.ctx.unlearned[1], train, steps=attack.steps,
                                  learning_rate=attack.learning_rate, batch_size=attack.batch_size, seed=attack.seed,
                                  fmt=self.ctx.fmt)
            ref_att = None
            if self.ctx.reference is not None:
                ref_att = attacks.relearn(self.ctx.reference[0], self.ctx.reference[1], train, steps=attack.steps,
                                          learning_rate=attack.learning_rate, batch_size=attack.batch_size,
                                          seed=attack.seed, fmt=self.ctx.fmt)
            self._attacked[key] = (att, ref_att)
        att, ref_att = self._attacked[key]
        k_orig = know(*self.ctx.original, who="original")
        k_unl = know(*self.ctx.unlearned, who="unlearned")
        k_att = know(att, self.ctx.unlearned[1], who="attacked")
        values: dict[str, float | None] = {"attacked": attacks.recovery(k_orig, k_unl, k_att), "unlearned": 0.0}
        est: dict[str, Estimate | None] = {
            "attacked": self._recovery_estimate(check, series["original"].values, series["unlearned"].values,
                                                series["attacked"].values)}
        extra: dict[str, Any] = {"knowledge_rouge": {"original": k_orig, "unlearned": k_unl, "attacked": k_att},
                                 "steps": attack.steps, "relearned_on": self._relearn_source(attack, train),
                                 "measured_on": f"{len(measure)} forget questions"}
        decision = None
        if ref_att is not None and self.ctx.reference is not None:
            k_ref = know(*self.ctx.reference, who="reference")
            k_ref_att = know(ref_att, self.ctx.reference[1], who="reference_attacked")
            ref_recovery = attacks.recovery(k_orig, k_ref, k_ref_att)
            values["reference"] = ref_recovery
            est["reference"] = self._recovery_estimate(check, series["original"].values, series["reference"].values,
                                                       series["reference_attacked"].values, "reference")
            extra["knowledge_rouge"] |= {"reference": k_ref, "reference_attacked": k_ref_att}
            extra["reference_note"] = ("the retrained model fine-tuned on the same data for the same steps: "
                                       "what relearning gives a model that never saw the target")
            decision = self._relearn_decision(check, series, ref_recovery)
        extra["per_item"] = "knowledge ROUGE-L recall per question, of every model the recovery is computed from"
        return self._result(check, values, extra=extra, attack="relearn", reason=nothing_forgotten(k_orig, k_unl),
                            est=est, decision=decision, per_item=series)

    def _relearn_decision(self, check: MetricCheck, series: dict[str, Series],
                          reference_recovery: float) -> Decision | None:
        """Relearning judged against the retrained reference given the same fine-tune (FRAMEWORK.md §7).

        A fine-tune on the target's own records *teaches* its facts to any model, one never trained on
        them included; what unlearning must not leave behind is a model that gets back more than that.
        So the plan's bound ``recovery <= b`` is read as at most ``b`` above the reference's recovery,
        the same questions resampled for all five models. The attacked model's knowledge ROUGE lies in
        [0, 1], so its recovery lies in ``[-u, 1 - u] / (o - u)`` (``o``, ``u``: the original's and the
        unlearned model's knowledge): when that leaves the gap no room to exceed ``b``, the check cannot
        fail and is inconclusive: the budget is too large to tell unlearning from retraining."""
        t = check.threshold
        if t is None or t.op not in ("<=", "<") or not math.isfinite(reference_recovery):
            return None
        cols = [series[k].values for k in ("original", "unlearned", "attacked", "reference", "reference_attacked")]

        def gap(o: Any, u: Any, a: Any, r: Any, ra: Any, axis: int = -1) -> Any:
            return _recovered(o, u, a, axis) - _recovered(o, r, ra, axis)

        attainable = self._recovery_range(float(np.nanmean(cols[0])), float(np.nanmean(cols[1])), reference_recovery)
        if self.ctx.intervals:
            e = intervals.paired_estimate(cols, gap, confidence=self.ctx.confidence, rng=self.rng(check, "gap"),
                                          span=attainable)
        else:
            o, u, a, r, ra = (np.asarray(c, dtype=np.float64) for c in cols)
            with np.errstate(divide="ignore", invalid="ignore"):
                e = _point_est(float(gap(o, u, a, r, ra)), len(o))
        if e is None:
            return None
        exact = self.exact_if_same(e)  # the same weights given the same fine-tune: 0 on every question there is
        assert exact is not None
        same, e = exact is not e, exact
        return Decision(
            quantity="recovery minus the reference's after the same fine-tune", value=e.value,
            interval=(e.low, e.high) if self.ctx.intervals and not e.point else None, threshold=t, n=e.n,
            attainable=attainable,
            how=f"the bound {OP_SYMBOLS[t.op]} {t.value:g} is read as at most {t.value:g} above what the same fine-tune gives "
                f"{self.reference_name}, {self.reference_never_saw}, and recovers {reference_recovery:.3g}: what the "
                "fine-tune teaches rather than restores" + (self.SAME_WEIGHTS if same else ""),
            more_items=intervals.items_to_settle(e.n, e.low, e.high, e.value, t.value))

    @staticmethod
    def _recovery_range(o: float, u: float, reference_recovery: float) -> tuple[float, float] | None:
        """The gap's attainable range: the attacked model's recovery at knowledge 0 and at knowledge 1 (``o``, ``u``:
        the original's and the unlearned model's mean knowledge), minus the reference's recovery."""
        if not (math.isfinite(o) and math.isfinite(u)) or o - u < 1e-12:
            return None
        return (-u / (o - u) - reference_recovery, (1.0 - u) / (o - u) - reference_recovery)

    def _recovery_estimate(self, check: MetricCheck, orig: Sequence[float], unl: Sequence[float],
                           att: Sequence[float], who: str = "attacked") -> Estimate | None:
        """The recovered share with its interval: the same questions resampled for all three models."""
        if not self.ctx.intervals:
            return _point_est(float(_recovered(np.asarray(orig), np.asarray(unl), np.asarray(att))), len(orig))
        o, u = float(np.nanmean(np.asarray(orig, dtype=np.float64))), float(np.nanmean(np.asarray(unl, dtype=np.float64)))
        span = self._recovery_range(o, u, 0.0)  # knowledge 0 and 1 for the attacked model
        return intervals.paired_estimate([orig, unl, att], _recovered, confidence=self.ctx.confidence,
                                         rng=self.rng(check, who), span=span)

    def _quantized(self, precision: str, who: str = "unlearned") -> attacks.QuantizeResult:
        key = f"quantize:{precision}" + ("" if who == "unlearned" else f":{who}")
        if key not in self._attacked:
            model = self.ctx.unlearned[0] if who == "unlearned" else self.ctx.reference[0]  # type: ignore[index]
            log.info("attack: quantizing the %s model to %s", who, precision)
            self._attacked[key] = attacks.quantize(model, precision)
        return self._attacked[key]  # type: ignore[no-any-return]

    def _quant_attack(self, check: MetricCheck) -> QuantizeAttack | None:
        quants = [a for a in self.ctx.attacks if isinstance(a, QuantizeAttack)]
        want = check.params.get("precision")
        return next((a for a in quants if want is None or a.precision == want), None)

    def _not_quantized(self, check: MetricCheck, precision: str, q: attacks.QuantizeResult) -> CheckResult:
        return CheckResult(check_id=check.id, metric=check.metric, dataset=check.dataset, attack="quantize",
                           probe=check.probe, threshold=check.threshold, decided_on="attacked",
                           not_evaluated_reason=f"quantization to {precision} not evaluated: {q.reason}",
                           extra={"backend": q.backend})

    def quantization_recovery(self, check: MetricCheck, attack: QuantizeAttack) -> CheckResult:
        q = self._quantized(attack.precision)
        if not q.evaluated or q.model is None:
            return self._not_quantized(check, attack.precision, q)
        ds = check.dataset if self.ctx.data.get(check.dataset) else "forget"
        tok = self.ctx.unlearned[1]
        s_orig = self.m["original"].knowledge(ds, "direct")
        s_unl = self.m["unlearned"].knowledge(ds, "direct")
        qm = Measurer("quantized", q.model, tok, self.ctx.data, self.ctx.stage, fmt=self.ctx.fmt)
        s_q = qm.knowledge(ds, "direct")
        k_orig, k_unl, k_q = s_orig.mean, s_unl.mean, s_q.mean
        if k_orig is None or k_unl is None or k_q is None:
            return self._missing(check, f"the `{ds}` data has no questions to measure knowledge on")
        est = {"attacked": self._recovery_estimate(check, s_orig.values, s_unl.values, s_q.values)}
        return self._result(check, {"attacked": attacks.recovery(k_orig, k_unl, k_q), "unlearned": 0.0}, est=est,
                            extra={"backend": q.backend, "precision": attack.precision,
                                   "knowledge_rouge": {"original": k_orig, "unlearned": k_unl, "quantized": k_q},
                                   "per_item": "knowledge ROUGE-L recall per question; `attacked` is the quantized "
                                               "model"},
                            attack="quantize", reason=nothing_forgotten(k_orig, k_unl),
                            per_item={"original": s_orig, "unlearned": s_unl, "attacked": s_q})

    def at_release_precision(self, check: MetricCheck) -> CheckResult:
        """A deciding check measured again on the model as released (quantized): Zhang et al. show
        quantization can restore knowledge that full precision hides (arXiv:2410.16454)."""
        precision = str(check.params.get("precision", "fp32"))
        q = self._quantized(precision)
        if not q.evaluated or q.model is None:
            return self._not_quantized(check, precision, q)
        probe = check.params.get("probe")
        inner = check.model_copy(update={"model": "unlearned", "probe": str(probe) if probe else None})
        baseline = self.check(inner)
        saved = self.m
        # open weights are run by whoever downloads them, without this system's filter: the released artifact is
        # measured as they get it
        filtered = bool(check.params.get("served")) and self.ctx.op.objective.release.mode != "open_weights"
        quant = Measurer("quantized", q.model, self.ctx.unlearned[1], self.ctx.data, self.ctx.stage,
                         guard=self.ctx.guard if filtered else None,
                         refusal_text=self.ctx.refusal_text, fmt=self.ctx.fmt)
        self.m = {k: v for k, v in saved.items() if k != "served"} | {"unlearned": quant}
        # the reference a released model is judged against is the never-trained model released alike: quantization
        # moves both models' scores, and a full-precision reference would credit its noise to the unlearning
        ref_precision = None
        if "reference" in saved and self.ctx.reference is not None:
            q_ref = self._quantized(precision, "reference")
            if q_ref.evaluated and q_ref.model is not None:
                self.m["reference"] = Measurer("quantized reference", q_ref.model, self.ctx.reference[1],
                                               self.ctx.data, self.ctx.stage, fmt=self.ctx.fmt)
                ref_precision = precision
            else:
                ref_precision = f"full (the reference could not be quantized: {q_ref.reason})"
        try:
            attacked = self.check(inner)
        finally:
            self.m = saved
        if attacked.not_evaluated_reason and attacked.values.unlearned is None:
            return self._missing(check, attacked.not_evaluated_reason)
        values = ModelValue(original=baseline.values.original, unlearned=baseline.values.unlearned,
                            reference=baseline.values.reference, attacked=attacked.values.unlearned)
        def rename(k: str) -> str:  # the inner check measured the quantized models under their usual names
            head, dot, rest = k.partition(".")
            new = {"unlearned": "attacked", "reference": "reference_attacked" if ref_precision == precision
                   else "reference"}.get(head, head)
            return new + dot + rest

        per_item = {rename(k): v for k, v in attacked.per_item.items()}
        # per-model dictionaries in `extra` (utilities, components, ...) are renamed alike, so that report.json can
        # be recomputed: "unlearned" there is the quantized model too
        extra = {k: ({rename(m): x for m, x in v.items()} if isinstance(v, dict) and "unlearned" in v else v)
                 for k, v in attacked.extra.items()} | {"backend": q.backend, "precision": precision}
        if check.params.get("served"):
            extra["filter"] = ("the system's filter applied, as it serves the released model" if filtered else
                               "measured without the system's filter: open weights are run without it")
        if ref_precision is not None:
            extra |= {"reference_precision": ref_precision, "reference_attacked": attacked.values.reference}
        n = baseline.n | {"attacked": attacked.n["unlearned"]} if "unlearned" in attacked.n else dict(baseline.n)
        ivs = dict(baseline.interval)
        if "unlearned" in attacked.interval:
            ivs["attacked"] = attacked.interval["unlearned"]
        decision = attacked.decision
        if decision is not None:
            quantity = decision.quantity.replace("unlearned", "attacked")
            if ref_precision == precision:  # the gap is to the reference quantized alike
                quantity += f", the reference quantized to {precision} too"
            decision = decision.model_copy(update={"quantity": quantity})
        return CheckResult(check_id=check.id, metric=check.metric, dataset=check.dataset, probe=check.probe,
                           attack="quantize", threshold=check.threshold, values=values, decided_on="attacked",
                           per_item=per_item, item_ids=attacked.item_ids, extra=extra, n=n, interval=ivs,
                           confidence=attacked.confidence, decision=decision, findings=list(attacked.findings))

    # -- dispatch ----------------------------------------------------------------------------------
