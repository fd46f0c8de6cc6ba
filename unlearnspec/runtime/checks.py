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

import logging
import math
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from unlearnspec.catalog import METRICS
from unlearnspec.plan import EvaluateStage, MetricCheck, ObjectivePlan, QuantizeAttack, RelearnAttack
from unlearnspec.records import Record
from unlearnspec.report.model import CheckResult, ModelValue
from unlearnspec.runtime import attacks
from unlearnspec.runtime.evaluation import likelihood, mcq, metrics, mia, probes, representation
from unlearnspec.runtime.evaluation.generation import generate

log = logging.getLogger("unlearnspec.run")

MIN_FORGOTTEN = 0.05
"""How much knowledge ROUGE unlearning must have removed (original minus unlearned) before "the
fraction an attack recovers" means anything. Below it there is nothing to recover, and a recovery
of 0 would let ``robust_to_finetuning`` pass for a model that forgot nothing: such a check is not
evaluated, with the reason, and the efficacy checks say whether anything was forgotten."""


def nothing_forgotten(original: float | None, unlearned: float | None) -> str | None:
    """The not-evaluated reason of a recovery check when unlearning removed too little to recover."""
    if original is None or unlearned is None or not (math.isfinite(original) and math.isfinite(unlearned)):
        return None
    if original - unlearned >= MIN_FORGOTTEN:
        return None
    return (f"unlearning removed no measurable knowledge of these questions (knowledge ROUGE original "
            f"{original:.3g}, unlearned {unlearned:.3g}; at least {MIN_FORGOTTEN:g} must be removed), so "
            "there is nothing for the attack to recover; the efficacy checks show whether anything was forgotten")


@dataclass
class DataBundle:
    """The plan's data sets by role, loaded."""

    forget: list[Record]
    retain: list[Record]
    neighbors: list[Record]
    holdout: list[Record]
    test: list[Record]
    aliases: list[str] = field(default_factory=list)
    attribute: str | None = None

    def get(self, name: str) -> list[Record]:
        return list(getattr(self, name, []) or [])


@dataclass
class Series:
    """Per-item values of one measurement, with the ids of the items."""

    ids: list[str]
    values: list[float]

    @property
    def mean(self) -> float | None:
        xs = [x for x in self.values if x is not None and math.isfinite(x)]
        return float(np.mean(xs)) if xs else None


def _norm(text: str) -> str:
    return " ".join("".join(c.lower() if c.isalnum() else " " for c in text).split())


def contains_answer(output: str, answer: str) -> bool:
    """Whether an output states the gold answer (normalised whole-word containment)."""
    a = _norm(answer)
    return bool(a) and f" {a} " in f" {_norm(output)} "


class Measurer:
    def __init__(self, name: str, model: Any, tokenizer: Any, data: DataBundle, stage: EvaluateStage, *,
                 guard: Any = None, refusal_text: str = "I don't know.") -> None:
        self.name = name
        self.model = model
        self.tokenizer = tokenizer
        self.data = data
        self.stage = stage
        self.guard = guard
        self.refusal_text = refusal_text
        self._cache: dict[tuple[str, ...], Any] = {}

    def _memo(self, key: tuple[str, ...], fn: Callable[[], Any]) -> Any:
        if key not in self._cache:
            self._cache[key] = fn()
        return self._cache[key]

    def _generate_fn(self) -> Callable[[list[str]], list[str]] | None:
        """The served system's decoding: the model's greedy outputs passed through the guard."""
        if self.guard is None:
            return None
        def fn(prompts: list[str]) -> list[str]:
            outs = generate(self.model, self.tokenizer, prompts, max_new_tokens=self.stage.max_new_tokens,
                            batch_size=self.stage.eval_batch_size)
            return [self.guard.apply(o) for o in outs]

        return fn

    # -- outputs ----------------------------------------------------------------------------

    def probe(self, dataset: str, name: str) -> metrics.QAResult:
        def compute() -> metrics.QAResult:
            records = self.data.get(dataset)
            templates = next((p.templates for p in self.stage.probes if p.name == name), None) or None
            facts = [r.text for r in self.data.forget if r.text] or None if name == "in_context" else None
            ps = probes.probe_set(name, records, templates=templates, facts=facts)
            return metrics.answer_probes(self.model, self.tokenizer, ps, batch_size=self.stage.eval_batch_size,
                                         max_new_tokens=self.stage.max_new_tokens, generate_fn=self._generate_fn())

        return self._memo(("probe", dataset, name), compute)  # type: ignore[no-any-return]

    def knowledge(self, dataset: str, probe: str) -> Series:
        qa = self.probe(dataset, probe)
        ids = [f"{dataset}[{i}]:{v}" for i, v in zip(qa.item_ids, qa.variants or [probe] * len(qa.item_ids), strict=True)]
        return Series(ids, [float(x) for x in qa.recall])

    def leak(self, dataset: str, probe: str) -> Series:
        qa = self.probe(dataset, probe)
        base = self.knowledge(dataset, probe)
        return Series(base.ids, [float(contains_answer(p, a)) for p, a in zip(qa.predictions, qa.answers, strict=True)])

    def refusal(self, dataset: str, probe: str) -> Series:
        qa = self.probe(dataset, probe)
        base = self.knowledge(dataset, probe)
        refusal = _norm(self.refusal_text)
        guard_text = _norm(getattr(self.guard, "refusal_text", "") or "")
        return Series(base.ids, [float(any(t and _norm(p).startswith(t) for t in (refusal, guard_text)))
                                 for p in qa.predictions])

    def verbatim(self, dataset: str) -> Series:
        def compute() -> Series:
            records = self.data.get(dataset)
            if not any(r.text for r in records):
                return Series([], [])
            res = metrics.verbatim_memorisation(self.model, self.tokenizer, records,
                                                prefix_fraction=self.stage.prefix_fraction,
                                                batch_size=self.stage.eval_batch_size,
                                                max_new_tokens=self.stage.max_new_tokens,
                                                generate_fn=self._generate_fn())
            return Series([f"{dataset}[{i}]" for i in res.item_ids], [float(x) for x in res.scores])

        return self._memo(("verbatim", dataset), compute)  # type: ignore[no-any-return]

    # -- likelihood ---------------------------------------------------------------------------

    def scores(self, dataset: str) -> likelihood.TokenScores:
        return self._memo(("scores", dataset), lambda: likelihood.score_records(  # type: ignore[no-any-return]
            self.model, self.tokenizer, self.data.get(dataset), batch_size=self.stage.eval_batch_size))

    def _ids(self, dataset: str) -> list[str]:
        _, _, index = likelihood.record_texts(self.data.get(dataset))
        return [f"{dataset}[{i}]" for i in index]

    def token_metric(self, dataset: str, metric: str) -> Series:
        s = self.scores(dataset)
        vals = s.exact_memorisation() if metric == "exact_memorisation" else s.extraction_strength()
        return Series(self._ids(dataset), [float(x) for x in vals])

    def membership(self, dataset: str) -> dict[str, mia.MIAResult]:
        return self._memo(("mia", dataset), lambda: mia.membership_inference(  # type: ignore[no-any-return]
            self.scores(dataset), self.scores("holdout"), k=self.stage.mink_fraction))

    def answer_stats(self, dataset: str) -> metrics.AnswerStatistics:
        return self._memo(("stats", dataset), lambda: metrics.answer_statistics(  # type: ignore[no-any-return]
            self.model, self.tokenizer, self.data.get(dataset), batch_size=self.stage.eval_batch_size))

    def utility(self, dataset: str) -> metrics.UtilityResult:
        return self._memo(("utility", dataset), lambda: metrics.utility(  # type: ignore[no-any-return]
            self.model, self.tokenizer, self.data.get(dataset), batch_size=self.stage.eval_batch_size,
            max_new_tokens=self.stage.max_new_tokens))

    def mcq(self, dataset: str) -> mcq.MCQResult:
        return self._memo(("mcq", dataset), lambda: mcq.mcq_accuracy(  # type: ignore[no-any-return]
            self.model, self.tokenizer, self.data.get(dataset), batch_size=self.stage.eval_batch_size))

    def representation(self, attribute: str) -> representation.ProbeResult:
        return self._memo(("repr", attribute), lambda: representation.representation_probe(  # type: ignore[no-any-return]
            self.model, self.tokenizer, self.data.retain + self.data.neighbors, self.data.forget, attribute))


@dataclass
class EvalContext:
    op: ObjectivePlan
    data: DataBundle
    stage: EvaluateStage
    original: tuple[Any, Any]
    unlearned: tuple[Any, Any]
    reference: tuple[Any, Any] | None
    guard: Any
    refusal_text: str
    attacks: list[RelearnAttack | QuantizeAttack]
    work_dir: Path
    strategy: str = "holdout"  # the reference strategy: retrain | model | holdout


class Evaluator:
    """Decides each check from the measurers; attack models are built lazily, once each."""

    def __init__(self, ctx: EvalContext) -> None:
        self.ctx = ctx
        st, data = ctx.stage, ctx.data
        self.m: dict[str, Measurer] = {
            "original": Measurer("original", *ctx.original, data, st, refusal_text=ctx.refusal_text),
            "unlearned": Measurer("unlearned", *ctx.unlearned, data, st, refusal_text=ctx.refusal_text),
        }
        if ctx.reference is not None:
            self.m["reference"] = Measurer("reference", *ctx.reference, data, st, refusal_text=ctx.refusal_text)
        if ctx.guard is not None:
            self.m["served"] = Measurer("served", *ctx.unlearned, data, st, guard=ctx.guard,
                                        refusal_text=ctx.refusal_text)
        self._attacked: dict[str, Any] = {}

    # -- helpers ---------------------------------------------------------------------------

    def _result(self, check: MetricCheck, values: Mapping[str, float | None], *, per_item: dict[str, Series] | None = None,
                extra: dict[str, Any] | None = None, reason: str | None = None, attack: str | None = None) -> CheckResult:
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
        return CheckResult(check_id=check.id, metric=check.metric, dataset=check.dataset, probe=check.probe,
                           attack=attack, threshold=check.threshold, values=ModelValue(**clean), decided_on=decided,
                           not_evaluated_reason=reason, per_item=items, item_ids=ids, extra=extra or {})

    def _missing(self, check: MetricCheck, reason: str) -> CheckResult:
        return CheckResult(check_id=check.id, metric=check.metric, dataset=check.dataset, probe=check.probe,
                           threshold=check.threshold, not_evaluated_reason=reason,
                           decided_on="attacked" if check.model == "attacked" else "unlearned")

    def _output_series(self, who: str, check: MetricCheck) -> Series:
        meas = self.m[who]
        metric, ds = check.metric, check.dataset
        if metric == "verbatim_rouge":
            return meas.verbatim(ds)
        probe = check.probe or METRICS[metric].probe or "direct"
        if metric == "leak_rate":
            return meas.leak(ds, probe)
        if metric == "refusal_rate":
            return meas.refusal(ds, probe)
        return meas.knowledge(ds, probe)

    # -- metric families ---------------------------------------------------------------------

    def output_metric(self, check: MetricCheck) -> CheckResult:
        if not self.ctx.data.get(check.dataset):
            return self._missing(check, f"the plan has no `{check.dataset}` data")
        per = {who: self._output_series(who, check) for who in self.m}
        if not per["unlearned"].ids:
            kind = "documents (`text`)" if check.metric == "verbatim_rouge" else "questions for this probe"
            return self._missing(check, f"the `{check.dataset}` data has no {kind}")
        values = {who: s.mean for who, s in per.items()}
        return self._result(check, values, per_item=per)

    def token_metric(self, check: MetricCheck) -> CheckResult:
        if not self.ctx.data.get(check.dataset):
            return self._missing(check, f"the plan has no `{check.dataset}` data")
        per = {who: self.m[who].token_metric(check.dataset, check.metric) for who in self.m if who != "served"}
        return self._result(check, {who: s.mean for who, s in per.items()}, per_item=per)

    def membership_auc(self, check: MetricCheck) -> CheckResult:
        if not self.ctx.data.holdout:
            return self._missing(check, "no holdout data (examples never trained on) to compare the forget set with")
        aucs: dict[str, float | None] = {}
        roc: dict[str, Any] = {}
        per_attack: dict[str, Any] = {}
        for who, meas in self.m.items():
            if who == "served":
                continue
            res = meas.membership(check.dataset)
            best = max(res, key=lambda k: res[k].auc if math.isfinite(res[k].auc) else -1)
            aucs[who] = res[best].auc
            roc[who] = {"fpr": [float(x) for x in res[best].fpr], "tpr": [float(x) for x in res[best].tpr]}
            per_attack[who] = {k: float(v.auc) for k, v in res.items()}
        if "served" in self.m:
            aucs["served"] = aucs["unlearned"]  # an output filter does not change the weights (M1)
        per = {who: Series(self.m[who]._ids(check.dataset),
                           [float(x) for x in self.m[who].scores(check.dataset).loss()]) for who in self.m if who != "served"}
        return self._result(check, aucs, per_item=per, extra={"roc": roc, "auc_by_attack": per_attack,
                                                              "strongest_attack_is_max_over": list(mia.ATTACKS),
                                                              "per_item": "loss (the LOSS attack's score)"})

    def privleak(self, check: MetricCheck) -> CheckResult:
        if not self.ctx.data.holdout:
            return self._missing(check, "no holdout data to compute membership AUCs")
        aucs = {who: max(r.auc for r in self.m[who].membership(check.dataset).values())
                for who in self.m if who != "served"}
        ref_auc = aucs.get("reference")
        basis = "retrained reference AUC"
        if ref_auc is None:
            ref_auc, basis = 0.5, "ideal AUC 0.5 (no reference model: holdout-calibrated)"
        values: dict[str, float | None] = {
            who: abs(mia.privleak(a, ref_auc)) for who, a in aucs.items() if who != "reference"}
        raw = {who: mia.privleak(a, ref_auc) for who, a in aucs.items() if who != "reference"}
        return self._result(check, values, extra={"signed_privleak": raw, "auc": aucs, "reference_basis": basis,
                                                  "compared": "magnitude |PrivLeak|"})

    def forget_quality(self, check: MetricCheck) -> CheckResult:
        ds = check.dataset
        if not self.ctx.data.get(ds):
            return self._missing(check, f"the plan has no `{ds}` data")
        values: dict[str, float | None] = {}
        extra: dict[str, Any] = {}
        if "reference" in self.m:
            ref = self.m["reference"].answer_stats(ds)
            for who in ("original", "unlearned"):
                fq = metrics.forget_quality_from(self.m[who].answer_stats(ds), ref)
                values[who] = fq.pvalue
                extra["statistic"] = fq.statistic
            extra["compared_with"] = "the retrained reference model's per-item statistics (TOFU)"
        else:
            if not self.ctx.data.holdout:
                return self._missing(check, "no reference model and no holdout data to calibrate against")
            for who in ("original", "unlearned"):
                mine = self.m[who]
                fq = metrics.forget_quality_from(mine.answer_stats(ds), mine.answer_stats("holdout"))
                values[who] = fq.pvalue
                extra["statistic"] = fq.statistic
            extra["compared_with"] = ("the same model's statistics on holdout data (holdout-calibrated: no "
                                      "retrained reference exists)")
        per = {}
        for who in self.m:
            if who == "served":
                continue
            st = self.m[who].answer_stats(ds)
            vals = st.truth_ratio if extra.get("statistic") == "truth_ratio" else st.loss
            per[who] = Series([f"{ds}[{i}]" for i in range(len(vals))], [float(x) for x in vals])
        return self._result(check, values, per_item=per, extra=extra)

    def utility_drop(self, check: MetricCheck) -> CheckResult:
        ds = "neighbors" if check.metric.startswith("neighbor") else "retain"
        if not self.ctx.data.get(ds):
            return self._missing(check, f"no `{ds}` data: side effects on it are unmeasured")
        base = self.m["original"].utility(ds).value
        values: dict[str, float | None] = {"original": 0.0}
        util = {"original": base}
        for who in self.m:
            if who in ("original", "served"):
                continue
            u = self.m[who].utility(ds).value
            util[who] = u
            values[who] = max(metrics.utility_drop(base, u), 0.0)
        comps = {who: self.m[who].utility(ds).components for who in self.m if who != "served"}
        return self._result(check, values, extra={"utility": util, "components": comps,
                                                  "unit": "percent drop from the original model"})

    def mcq_accuracy(self, check: MetricCheck) -> CheckResult:
        if not self.ctx.data.get(check.dataset):
            return self._missing(check, f"the plan has no `{check.dataset}` data")
        res = {who: meas.mcq(check.dataset) for who, meas in self.m.items() if who != "served"}
        if not len(res["unlearned"]):
            return self._missing(check, f"the `{check.dataset}` data has no multiple-choice records "
                                        "(`question`, `choices`, `answer` index)")
        per = {who: Series([f"{check.dataset}[{i}]" for i in r.index], [float(x) for x in r.acc])
               for who, r in res.items()}
        extra = {"acc_norm": {who: r.mean_acc_norm for who, r in res.items()}, "chance": res["unlearned"].chance,
                 "items": len(res["unlearned"])}
        return self._result(check, {who: r.mean_acc for who, r in res.items()}, per_item=per, extra=extra)

    def probe_gap(self, check: MetricCheck) -> CheckResult:
        attr = self.ctx.stage.representation_probe or self.ctx.data.attribute
        if not attr:
            return self._missing(check, "no attribute to probe for (set `attribute` in the target)")
        if "reference" not in self.m:
            return self._missing(check, "no retrained reference to compare the probe accuracy with")
        if not any(attr in r.attributes for r in self.ctx.data.forget):
            return self._missing(check, f"the forget records carry no `{attr}` attribute")
        acc = {who: self.m[who].representation(attr) for who in self.m if who != "served"}
        ref = acc["reference"].accuracy
        values = {who: r.accuracy - ref for who, r in acc.items() if who != "reference"}
        values["reference"] = 0.0
        u = acc["unlearned"]
        return self._result(check, values, extra={"accuracy": {k: v.accuracy for k, v in acc.items()},
                                                  "chance": u.chance, "attribute": attr,
                                                  "probe_trained_on": f"{u.n_train} retain and neighbour inputs",
                                                  "probe_tested_on": f"{u.n_test} forget inputs"})

    # -- attacks --------------------------------------------------------------------------------

    def _relearn_split(self, attack: RelearnAttack) -> tuple[list[Record], list[Record]]:
        """(data to relearn on, forget QA records to measure on): disjoint where the data allow."""
        forget = self.ctx.data.forget
        qa = [r for r in forget if r.is_qa]
        if attack.data == "related":
            return self.ctx.data.neighbors or self.ctx.data.retain, qa
        rng = random.Random(attack.seed)
        order = list(range(len(forget)))
        rng.shuffle(order)
        k = max(1, math.ceil(len(forget) * attack.fraction))
        train = [forget[i] for i in sorted(order[:k])]
        held = [forget[i] for i in sorted(order[k:]) if forget[i].is_qa]
        return train, held or qa

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
        key = f"relearn:{attack.steps}:{attack.data}"
        data = DataBundle(forget=measure, retain=[], neighbors=[], holdout=[], test=[])
        st = self.ctx.stage

        def know(model: Any, tok: Any) -> float:
            return float(np.nanmean(Measurer("x", model, tok, data, st).knowledge("forget", "direct").values))

        if key not in self._attacked:
            log.info("attack: relearning for %d steps on %d records", attack.steps, len(train))
            att = attacks.relearn(self.ctx.unlearned[0], self.ctx.unlearned[1], train, steps=attack.steps,
                                  learning_rate=attack.learning_rate, batch_size=attack.batch_size, seed=attack.seed)
            ref_att = None
            if self.ctx.reference is not None:
                ref_att = attacks.relearn(self.ctx.reference[0], self.ctx.reference[1], train, steps=attack.steps,
                                          learning_rate=attack.learning_rate, batch_size=attack.batch_size,
                                          seed=attack.seed)
            self._attacked[key] = (att, ref_att)
        att, ref_att = self._attacked[key]
        k_orig = know(*self.ctx.original)
        k_unl = know(*self.ctx.unlearned)
        k_att = know(att, self.ctx.unlearned[1])
        values: dict[str, float | None] = {"attacked": attacks.recovery(k_orig, k_unl, k_att), "unlearned": 0.0}
        extra: dict[str, Any] = {"knowledge_rouge": {"original": k_orig, "unlearned": k_unl, "attacked": k_att},
                                 "steps": attack.steps, "relearned_on": self._relearn_source(attack, train),
                                 "measured_on": f"{len(measure)} forget questions"}
        if ref_att is not None and self.ctx.reference is not None:
            k_ref = know(*self.ctx.reference)
            k_ref_att = know(ref_att, self.ctx.reference[1])
            values["reference"] = attacks.recovery(k_orig, k_ref, k_ref_att)
            extra["knowledge_rouge"] |= {"reference": k_ref, "reference_attacked": k_ref_att}
            extra["reference_note"] = ("the retrained model fine-tuned on the same data for the same steps: "
                                       "what relearning gives a model that never saw the target")
        return self._result(check, values, extra=extra, attack="relearn", reason=nothing_forgotten(k_orig, k_unl))

    def _quantized(self, precision: str) -> attacks.QuantizeResult:
        key = f"quantize:{precision}"
        if key not in self._attacked:
            log.info("attack: quantizing the unlearned model to %s", precision)
            self._attacked[key] = attacks.quantize(self.ctx.unlearned[0], precision)
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
        k_orig = self.m["original"].knowledge(ds, "direct").mean
        k_unl = self.m["unlearned"].knowledge(ds, "direct").mean
        qm = Measurer("quantized", q.model, tok, self.ctx.data, self.ctx.stage)
        k_q = qm.knowledge(ds, "direct").mean
        if k_orig is None or k_unl is None or k_q is None:
            return self._missing(check, f"the `{ds}` data has no questions to measure knowledge on")
        return self._result(check, {"attacked": attacks.recovery(k_orig, k_unl, k_q), "unlearned": 0.0},
                            extra={"backend": q.backend, "precision": attack.precision,
                                   "knowledge_rouge": {"original": k_orig, "unlearned": k_unl, "quantized": k_q}},
                            attack="quantize", reason=nothing_forgotten(k_orig, k_unl))

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
        quant = Measurer("quantized", q.model, self.ctx.unlearned[1], self.ctx.data, self.ctx.stage,
                         guard=self.ctx.guard if check.params.get("served") else None,
                         refusal_text=self.ctx.refusal_text)
        self.m = {k: v for k, v in saved.items() if k != "served"} | {"unlearned": quant}
        try:
            attacked = self.check(inner)
        finally:
            self.m = saved
        if attacked.not_evaluated_reason and attacked.values.unlearned is None:
            return self._missing(check, attacked.not_evaluated_reason)
        values = ModelValue(original=baseline.values.original, unlearned=baseline.values.unlearned,
                            reference=baseline.values.reference, attacked=attacked.values.unlearned)
        per_item = {("attacked" if k == "unlearned" else k): v for k, v in attacked.per_item.items()}
        extra = dict(attacked.extra) | {"backend": q.backend, "precision": precision}
        return CheckResult(check_id=check.id, metric=check.metric, dataset=check.dataset, probe=check.probe,
                           attack="quantize", threshold=check.threshold, values=values, decided_on="attacked",
                           per_item=per_item, item_ids=attacked.item_ids, extra=extra)

    # -- dispatch ----------------------------------------------------------------------------------

    def check(self, check: MetricCheck) -> CheckResult:
        m = check.metric
        if check.model == "attacked" and check.probe == "quantize" and m != "quantization_recovery":
            return self.at_release_precision(check)
        info = METRICS.get(m)
        if info is None:
            return self._missing(check, f"the runtime has no metric `{m}`")
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
        "generation": output_metric, "tokens": token_metric, "membership": membership_auc, "privleak": privleak,
        "forget_quality": forget_quality, "utility": utility_drop, "representation": probe_gap, "mcq": mcq_accuracy,
        "relearn": _relearn, "quantize": _quantize,
    }


def compute(ctx: EvalContext, checks: Sequence[MetricCheck] | None = None,
            on_attack_start: Callable[[], None] | None = None) -> dict[str, CheckResult]:
    """Every check of the objective: evaluation checks first, then those needing an attack."""
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
    return out
