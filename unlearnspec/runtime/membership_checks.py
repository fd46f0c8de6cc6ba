"""Checks read from likelihoods against non-members: membership AUC per item type (reference-relative,
two-sided), MUSE PrivLeak and TOFU forget quality."""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np

from unlearnspec.catalog import MEMBERSHIP_ATTACKS
from unlearnspec.markdown import code_span
from unlearnspec.plan import (
    MetricCheck,
    Threshold,
)
from unlearnspec.report.model import CheckResult, Decision, three_valued
from unlearnspec.report.verdict import OP_SYMBOLS
from unlearnspec.runtime.check_base import EvaluatorBase
from unlearnspec.runtime.evaluation import intervals, joint_intervals, metrics, mia
from unlearnspec.runtime.evaluation.intervals import Estimate
from unlearnspec.runtime.measure import (
    ITEM_TYPES,
    PRIVLEAK_ATTACK,
    PRIVLEAK_K,
    Series,
    _point_est,
    muse_privleak,
    record_of,
)

log = logging.getLogger("unlearnspec.run")


def _privleak_at_chance(auc: Any, _unused: Any) -> Any:
    """PrivLeak against the ideal AUC 0.5, for a run without a reference (the second AUC is ignored)."""
    return muse_privleak(auc, 0.5)


class MembershipChecks(EvaluatorBase):
    """Membership inference, PrivLeak and forget quality (FRAMEWORK.md §5, §7)."""

    def _membership_scores(self, dataset: str, k: float) -> dict[str, dict[str, Any]]:
        """who -> {"member": typed scores, "non": typed scores} for every non-served model."""
        return self.each_model(lambda who: {"member": self.m[who].typed_attack_scores(dataset, k),
                                            "non": self.m[who].typed_attack_scores("holdout", k)})

    def _pair_gaps(self, check: MetricCheck, sc: dict[str, dict[str, Any]], who: str, types: list[str],
                   aucs: dict[str, dict[str, dict[str, float]]]) -> tuple[dict[tuple[str, str], Estimate | None], float]:
        """Every (item type, attack) pair's gap of ``who``'s AUC to the reference's on the same items (without a
        reference: to 0.5), each interval at the level at which all of them hold together at the plan's confidence
        (one bootstrap for every pair, :func:`joint_intervals.joint_gap_estimates`), and that level."""
        conf, has_ref = self.ctx.confidence, "reference" in sc
        keys = [(t, a) for t in types for a in mia.ATTACKS]
        if not self.ctx.intervals:
            return {(t, a): _point_est(aucs[t][a][who] - (aucs[t][a]["reference"] if has_ref else 0.5),
                                       len(sc[who]["member"][t][1][a])) for t, a in keys}, conf

        # a question and its paraphrase are one record: their types are resampled by record, together
        def record_keys(t: str, side: str) -> tuple[str, ...]:
            return tuple(record_of(i) for i in sc[who][side][t][0])

        records = {t: (record_keys(t, "member"), record_keys(t, "non")) for t in types}
        joint, each = joint_intervals.joint_gap_estimates(
            [joint_intervals.GapPair(t, sc[who]["member"][t][1][a], sc[who]["non"][t][1][a],
                                     sc["reference"]["member"][t][1][a] if has_ref else None,
                                     sc["reference"]["non"][t][1][a] if has_ref else None, mia.ATTACKS[a][1],
                                     records=records[t])
             for t, a in keys], confidence=conf,
            rng=self.rng(check, "pairs") if who == "unlearned" else self.rng(check, "pairs", who))
        return dict(zip(keys, joint, strict=True)), each

    def _membership_control(self, check: MetricCheck, sc: dict[str, dict[str, Any]], types: list[str],
                            aucs: dict[str, dict[str, dict[str, float]]], bound: Threshold) -> str | None:
        """The positive control of a membership check (FRAMEWORK.md §7: a bound that cannot fail is no evidence):
        the original model, trained on the target, must be shown beyond the tolerance on the same items, decided as
        the check is (its pairs' gaps held together, the worst pair deciding). ``None`` when it is; else why the
        measurement cannot tell a model that holds the target from one that never saw it."""
        found, _ = self._pair_gaps(check, sc, "original", types, aucs)
        parts = {k: (abs(e.value), *intervals.abs_interval(e.low, e.high)) for k, e in found.items()
                 if e is not None and math.isfinite(e.value)}
        use_iv = self.ctx.intervals and not any(e.point for e in found.values() if e is not None)
        if parts:
            w = intervals.worst_part(parts, bound.holds, use_iv)
            if three_valued(bound, parts[w.key][0], (w.low, w.high) if use_iv else None) is False:
                return None
            t, a = w.key
            shown = (f"worst |gap| {parts[w.key][0]:.3g} ({t.replace('_', ' ')} / {MEMBERSHIP_ATTACKS[a].label})"
                     + (f", interval of the worst case [{w.low:.3g}, {w.high:.3g}]" if use_iv else ""))
        else:
            shown = "no pair could be measured"
        base = self.reference_name if "reference" in sc else "chance"
        return (f"no positive control: the original model, which was trained on the target, is not shown beyond the "
                f"tolerance of {bound.value:.3g} from {base} on these items either ({shown}), so this membership "
                "measurement cannot tell a model that holds the target from one that never saw it, and a gap within "
                "the tolerance is no evidence that unlearning removed it")

    def membership_auc(self, check: MetricCheck) -> CheckResult:
        """Membership inference, reference-relative and two-sided, worst item type deciding.

        For each item type (documents, QA, paraphrased QA) and each attack, the gap between the
        unlearned model's AUC and the retrained reference's on the same items (without a reference:
        the gap to 0.5, two-sided against the holdout calibration). The plan's bound ``AUC <= b`` is
        read as a tolerance ``b - 0.5`` either side; the worst |gap| decides. An AUC well below the
        reference's (the gap's interval entirely below ``-(b - 0.5)``) is over-unlearning: a finding,
        and a failed check — it reveals membership as surely as a high AUC."""
        if not self.ctx.data.holdout:
            return self._missing(check, "no holdout data (examples never trained on) to compare the forget set with")
        k = self.ctx.stage.mink_fraction
        sc = self._membership_scores(check.dataset, k)
        types = [t for t in ITEM_TYPES if t in sc["unlearned"]["member"] and t in sc["unlearned"]["non"]]
        if not types:
            return self._missing(check, f"no item type is present in both {code_span(check.dataset)} and the holdout")
        conf, use_iv = self.ctx.confidence, self.ctx.intervals
        has_ref = "reference" in sc
        decided = "unlearned"
        tol = None
        if check.threshold is not None and check.threshold.op in ("<=", "<"):
            tol = round(check.threshold.value - 0.5, 12)  # 0.6 - 0.5 is 0.09999999999999998 in binary
        # every (type, attack) pair's interval at the level that makes all of them hold together at `conf`:
        # the worst pair decides, and a worst case over k pairs at 95% each would hold less often than 95%.
        # One bootstrap resamples the items for all pairs at once (joint_intervals.joint_gap_estimates).
        aucs: dict[str, dict[str, dict[str, float]]] = {
            t: {a: {who: float(mia.auc(sc[who]["member"][t][1][a], sc[who]["non"][t][1][a], higher)) for who in sc}
                for a, (_, higher) in mia.ATTACKS.items()} for t in types}
        keys = [(t, a) for t in types for a in mia.ATTACKS]
        pairs = len(keys)
        found, each = self._pair_gaps(check, sc, decided, types, aucs)
        if has_ref and use_iv:  # the same weights: every gap is 0 on every item there is
            found = {k: self.exact_if_same(e) for k, e in found.items()}
        gaps: dict[str, dict[str, list[float]]] = {t: {} for t in types}
        worst: tuple[float, float, float, str, str, int] | None = None  # |gap|, abs low, abs high, type, attack, n
        findings: list[str] = []
        for (t, a), e in found.items():
            if e is None or not math.isfinite(e.value):
                continue
            # the items the gap rests on: members and non-members with a score from both models
            n_non = e.n_other if e.n_other is not None else len(sc[decided]["non"][t][1][a])
            gaps[t][a] = [e.value, e.low, e.high, float(e.n), float(n_non)]
            lo_abs, hi_abs = intervals.abs_interval(e.low, e.high)
            if worst is None or abs(e.value) > worst[0]:
                worst = (abs(e.value), lo_abs, hi_abs, t, a, e.n)
            if tol is not None and e.high < -tol and has_ref:
                findings.append(
                    f"over-unlearning: on {t.replace('_', ' ')} the {MEMBERSHIP_ATTACKS[a].label} attack's AUC is "
                    f"{aucs[t][a][decided]:.3g}, well below the reference's {aucs[t][a]['reference']:.3g} "
                    f"(gap {e.value:.3g}, interval [{e.low:.3g}, {e.high:.3g}]): the model is more "
                    "surprised by the forget set than a model never trained on it, which itself reveals "
                    "membership")
        if worst is None:
            return self._missing(check, "no attack produced an AUC")
        pairs = sum(len(g) for g in gaps.values())  # the pairs that produced a gap, the ones held together
        # the decision interval of the worst-case |gap|: max of the lows and of the highs over (type, attack)
        pair_bound = Threshold(op=check.threshold.op, value=tol) if check.threshold is not None and tol is not None \
            else None
        # the pair shown as deciding is the one the outcome rests on (intervals.worst_part)
        w = intervals.worst_part({(t, a): (abs(g[0]), *intervals.abs_interval(g[1], g[2]))
                                  for t in gaps for a, g in gaps[t].items()},
                                 pair_bound.holds if pair_bound is not None else None, use_iv)
        dec_low, dec_high = w.low, w.high
        wt, wa = w.key
        n_deciding = int(gaps[wt][wa][3])
        higher = mia.ATTACKS[wa][1]
        # each pair on its own (simultaneous) interval, by the one burden-of-proof rule every check follows
        outcome = {True: "within", False: "beyond", None: "straddles"}
        status = {t: {a: "n/a" if pair_bound is None else
                      outcome[three_valued(pair_bound, abs(g[0]), intervals.abs_interval(g[1], g[2]))]
                      for a, g in gs.items()} for t, gs in gaps.items()}
        beyond = [f"{t.replace('_', ' ')} / {MEMBERSHIP_ATTACKS[a].label}" for t in status
                  for a, st in status[t].items() if st == "beyond"]
        straddle = [f"{t.replace('_', ' ')} / {MEMBERSHIP_ATTACKS[a].label}" for t in status
                    for a, st in status[t].items() if st == "straddles"]
        values = {who: aucs[wt][wa][who] for who in sc}
        est: dict[str, Estimate | None] = {}
        roc: dict[str, Any] = {}
        for who in sc:
            m_, n_ = sc[who]["member"][wt][1][wa], sc[who]["non"][wt][1][wa]
            est[who] = (intervals.auc_estimate(m_, n_, higher, confidence=conf, rng=self.rng(check, who)) if use_iv
                        else _point_est(values[who], len(m_)))
            r = mia.mia_result(m_, n_, higher)
            roc[who] = {"fpr": [float(x) for x in r.fpr], "tpr": [float(x) for x in r.tpr]}
        if "served" in self.m:
            values["served"] = values["unlearned"]  # an output filter does not change the weights (M1)
        decision = None
        if tol is not None and check.threshold is not None:
            base = (f"{self.reference_name}'s AUC on the same items" if has_ref else
                    "chance (0.5; no reference model: a difference between the forget set and the holdout alone can "
                    "move an AUC away from 0.5, so this reading is only as good as the holdout's likeness to the "
                    "forget set)")
            shown_pair = f"{wt.replace('_', ' ')} / {MEMBERSHIP_ATTACKS[wa].label}"
            worst_pair = f"{worst[3].replace('_', ' ')} / {MEMBERSHIP_ATTACKS[worst[4]].label}"
            decision = Decision(
                quantity=("|AUC − AUC_reference|, worst over item types and attacks" if has_ref
                          else "|AUC − 0.5|, worst over item types and attacks"),
                # the value and n are the shown pair's, the one the outcome rests on (the models' AUCs beside it are
                # that pair's too); the interval is the worst case over every pair
                value=abs(gaps[wt][wa][0]), interval=(dec_low, dec_high) if use_iv else None,
                threshold=Threshold(op=check.threshold.op, value=tol), n=n_deciding,
                how=(f"the value, its n and the models' AUCs are those of {shown_pair}, the pair the outcome rests on"
                     + (f"; the largest |gap| of any pair is {worst[0]:.3g} ({worst_pair})" if worst_pair != shown_pair
                        else "")
                     + ("; the interval is the worst case over every pair (the largest of their lower and of their "
                        "upper ends)" if use_iv else "")
                     + f"; the plan's bound AUC {OP_SYMBOLS[check.threshold.op]} {check.threshold.value:g} is read as a "
                       f"tolerance of {tol:.3g} either side of {base}; the worst item type and attack decide"
                     + (f"; each of the {pairs} type and attack pairs has its interval at {each:.2%}, the level at "
                        f"which all of them, their items resampled together, hold at {conf:.0%} (joint bootstrap; "
                        f"Bonferroni would need {joint_intervals.bonferroni(conf, pairs):.2%})" if use_iv else "")
                     + (self.SAME_WEIGHTS if use_iv and has_ref and self.unlearned_is_reference else "")
                     + (f"; beyond the tolerance: {', '.join(beyond)}" if beyond else "")
                     + (f"; undecided: {', '.join(straddle)}" if straddle and not beyond else "")),
                more_items=intervals.items_to_settle(n_deciding, dec_low, dec_high, worst[0], tol))
        if decision is not None and pair_bound is not None:
            # a type of the forget set without non-members of that type (or without a gap on any attack) is not
            # measured, so the worst of the item types is not known to be within the tolerance: it can fail, not pass
            unmeasured = [t.replace("_", " ") for t in ITEM_TYPES if t in sc[decided]["member"] and not gaps.get(t)]
            control = self._membership_control(check, sc, types, aucs, pair_bound) if "original" in sc else None
            if control is not None:
                findings.append(f"no power: {control}")
            why = "; ".join(x for x in (
                (f"membership on {', '.join(unmeasured)} of {code_span(check.dataset)} is not measured (the holdout has "
                 "no non-member of that type, or no attack gave a gap on it), so the worst of the item types is not "
                 "known to be within the tolerance") if unmeasured else None, control) if x)
            if why:
                decision = decision.model_copy(update={"cannot_pass": why, "more_items": None if control else
                                                       decision.more_items})
        member_scores = {who: {a: [float(x) for t in types for x in sc[who]["member"][t][1][a]] for a in mia.ATTACKS}
                         for who in sc}
        nonmember_scores = {who: {a: [float(x) for t in types for x in sc[who]["non"][t][1][a]] for a in mia.ATTACKS}
                            for who in sc}
        member_ids = [i for t in types for i in sc["unlearned"]["member"][t][0]]
        nonmember_ids = [i for t in types for i in sc["unlearned"]["non"][t][0]]
        per = {who: Series(self.m[who]._ids(check.dataset),
                           [float(x) for x in self.m[who].scores(check.dataset).loss()]) for who in sc}
        extra: dict[str, Any] = {
            "roc": roc, "deciding_type": wt, "deciding_attack": wa, "auc_by_type": aucs,
            "gap_by_type": {t: {a: {"gap": g[0], "low": g[1], "high": g[2], "n": int(g[3]), "n_other": int(g[4]),
                                    "status": status[t][a]} for a, g in gs.items()} for t, gs in gaps.items()},
            "pair_confidence": each if use_iv else None, "pairs": pairs,
            "compared_with": self.reference_name.removeprefix("the ") if has_ref else "chance 0.5 (holdout-calibrated)",
            "member_scores": member_scores, "nonmember_scores": nonmember_scores,
            "member_ids": member_ids, "nonmember_ids": nonmember_ids,
            "member_types": [t for t in types for _ in sc["unlearned"]["member"][t][0]],
            "nonmember_types": [t for t in types for _ in sc["unlearned"]["non"][t][0]],
            "attack_higher_is_member": {a: h for a, (_, h) in mia.ATTACKS.items()},
            "n_nonmembers": {who: len(sc[who]["non"][wt][1][wa]) for who in sc},
            "per_item": "loss (the LOSS attack's score)",
        }
        return self._result(check, values, per_item=per, extra=extra, est=est, decision=decision, findings=findings)

    def _privleak_control(self, bound: Threshold, original: dict[str, Estimate | None], use_iv: bool) -> str | None:
        """PrivLeak's positive control: the original model, trained on the target, must be shown beyond the bound on
        some item type, decided as the check is (each type at the Bonferroni level, the worst deciding); ``None``
        when it is, else why a value within the bound is no evidence."""
        parts = {t: (abs(e.value), *intervals.abs_interval(e.low, e.high)) for t, e in original.items()
                 if e is not None and math.isfinite(e.value)}
        use_iv = use_iv and not any(e.point for e in original.values() if e is not None)
        if parts:
            w = intervals.worst_part(parts, bound.holds, use_iv)
            if three_valued(bound, parts[w.key][0], (w.low, w.high) if use_iv else None) is False:
                return None
            shown = (f"worst |PrivLeak| {parts[w.key][0]:.3g}% on {w.key.replace('_', ' ')}"
                     + (f", interval of the worst case [{w.low:.3g}, {w.high:.3g}]" if use_iv else ""))
        else:
            shown = "no item type has a bounded PrivLeak for it"
        return (f"no positive control: the original model, which was trained on the target, is not shown beyond the "
                f"bound {OP_SYMBOLS[bound.op]} {bound.value:g} on these items either ({shown}), so this PrivLeak "
                "cannot tell a model that holds the target from one that never saw it, and a value within the bound "
                "is no evidence that unlearning removed it")

    def privleak(self, check: MetricCheck) -> CheckResult:
        """MUSE PrivLeak in percent with MUSE's sign (:func:`muse_privleak`), one attack for both models (Min-K%,
        k = 0.4), per item type with the worst type deciding (FRAMEWORK.md §7: pooling could average a complete
        leak on the documents with chance on the questions); the check bounds its magnitude.

        Each type's interval resamples records (a question and its paraphrase are one record) at the Bonferroni
        level ``1 - alpha / k`` over the ``k`` types measured, so that all of them hold together at the plan's
        level whatever their dependence. The decision interval runs from the largest of the types' lowest
        magnitudes to the largest of their highest: it passes when every type is within the bound and fails
        when one is wholly beyond it. MUSE's own pooled value is kept beside them for information."""
        if not self.ctx.data.holdout:
            return self._missing(check, "no holdout data to compute membership AUCs")
        sc = self._membership_scores(check.dataset, PRIVLEAK_K)
        higher = mia.ATTACKS[PRIVLEAK_ATTACK][1]
        if "unlearned" not in sc:
            return self._missing(check, "no scored items on one side")
        has_ref = "reference" in sc
        basis = (f"{self.reference_name.removeprefix('the ')}'s AUC" if has_ref
                 else "ideal AUC 0.5 (no reference model: holdout-calibrated)")
        conf, use_iv = self.ctx.confidence, self.ctx.intervals

        def scored(who: str, t: str, side: str) -> Any:
            return np.asarray(sc[who][side][t][1][PRIVLEAK_ATTACK], dtype=np.float64)

        def records(t: str, side: str) -> list[str]:  # the record behind each item: a paraphrase is its question's
            return [record_of(i) for i in sc["unlearned"][side][t][0]]

        present = [t for t in ITEM_TYPES if t in sc["unlearned"]["member"] and t in sc["unlearned"]["non"]]
        types = [t for t in present if min(len(set(records(t, "member"))), len(set(records(t, "non")))) >= 2]
        if not types:  # an AUC over one record could be anything; PrivLeak's range is unbounded
            return self._missing(check, "a single member or non-member of every item type: it says nothing of its "
                                        "side's population, and PrivLeak has no bounded range to widen its interval to")
        each = 1.0 - (1.0 - conf) / len(types)  # Bonferroni over the types: all hold together at `conf`
        aucs = {t: {who: float(mia.auc(scored(who, t, "member"), scored(who, t, "non"), higher)) for who in sc}
                for t in types}
        by_type: dict[str, dict[str, Estimate | None]] = {}
        for t in types:
            by_type[t] = {}
            for who in sc:
                if who == "reference":
                    continue
                m_, n_ = scored(who, t, "member"), scored(who, t, "non")
                rm, rn = (scored("reference", t, "member"), scored("reference", t, "non")) if has_ref else (m_, n_)
                n_records = len(set(records(t, "member")))
                e = (joint_intervals.gap_of_aucs_by_record(
                        m_, n_, rm, rn, higher, records(t, "member"), records(t, "non"), confidence=each,
                        rng=self.rng(check, who, t), combine=muse_privleak if has_ref else _privleak_at_chance)
                     if use_iv else
                     _point_est(float(muse_privleak(aucs[t][who], aucs[t]["reference"] if has_ref else 0.5)), n_records))
                if has_ref and who == "unlearned":  # the same weights: 0 on every item there is
                    if e is None and use_iv and self.unlearned_is_reference and aucs[t]["reference"] < 1.0:
                        e = Estimate(0.0, 0.0, 0.0, n_records, len(set(records(t, "non"))), each)
                    e = self.exact_if_same(e)
                by_type[t][who] = e
        mine = {t: e["unlearned"] for t, e in by_type.items() if e.get("unlearned") is not None}
        if not mine:
            return self._missing(check, "PrivLeak has no bounded interval on any item type at this size (the "
                                        "reference's AUC may reach 1, where PrivLeak divides by 0)")
        # a type too small to measure (one record on a side) or without a bounded interval is one the check cannot
        # show within the bound: it can fail on the others, never pass
        unbounded = [t for t in present if t not in mine]
        t_bound = check.threshold
        # the type shown as deciding is the one the outcome rests on (intervals.worst_part)
        w = intervals.worst_part({t: (abs(e.value), *intervals.abs_interval(e.low, e.high))
                                  for t, e in mine.items() if e is not None},
                                 t_bound.holds if t_bound is not None and t_bound.op in ("<=", "<") else None, use_iv)
        dec_low, dec_high, wt = w.low, w.high, w.key
        values: dict[str, float | None] = {}
        est: dict[str, Estimate | None] = {}
        for who in sc:
            if who != "reference":
                e = by_type[wt].get(who)
                values[who], est[who] = (None if e is None else e.value), e
        if "served" in self.m:
            values["served"] = values.get("unlearned")
        e_u = mine[wt]
        assert e_u is not None
        decision = None
        if t_bound is not None:
            shown = ", ".join(f"{t.replace('_', ' ')} {mine[t].value:.3g}" for t in mine)  # type: ignore[union-attr]
            decision = Decision(
                quantity="worst |PrivLeak| over item types (percent)", value=abs(e_u.value),
                interval=(dec_low, dec_high) if use_iv else None, threshold=t_bound, n=e_u.n,
                cannot_pass=(f"PrivLeak on {', '.join(t.replace('_', ' ') for t in unbounded)} has no bounded interval "
                             "at this size (the reference's AUC may reach 1, where PrivLeak divides by 0), so that type "
                             "cannot be shown within the bound" if unbounded else None),
                how="MUSE PrivLeak bounded by magnitude: a leak (negative) and over-unlearning (positive) both fail; "
                    f"the worst item type decides ({shown}); the value and n are {wt.replace('_', ' ')}'s, the type "
                    "the outcome rests on"
                    + (f"; each of the {len(mine)} types has its interval at {each:.2%} (Bonferroni), so that all of "
                       f"them hold together at {conf:.0%}" if use_iv and len(mine) > 1 else ""),
                more_items=intervals.items_to_settle(e_u.n, dec_low, dec_high, abs(e_u.value), t_bound.value))
        findings = []
        if decision is not None and t_bound is not None and t_bound.op in ("<=", "<"):
            absent = [t.replace("_", " ") for t in ITEM_TYPES if t in sc["unlearned"]["member"] and t not in present]
            control = self._privleak_control(t_bound, {t: by_type[t].get("original") for t in types}, use_iv)
            if control is not None:
                findings.append(f"no power: {control}")
            why = "; ".join(x for x in (
                decision.cannot_pass,
                (f"the holdout has no non-member among the {', '.join(absent)}, so PrivLeak on that type is not "
                 "measured and the worst of the item types is not known to be within the bound") if absent else None,
                control) if x)
            if why:
                decision = decision.model_copy(update={"cannot_pass": why, "more_items": None if control else
                                                       decision.more_items})
        if t_bound is not None:
            for t, e in mine.items():
                assert e is not None
                if e.low > t_bound.value:
                    findings.append(f"over-unlearning: on {t.replace('_', ' ')} PrivLeak is {e.value:.3g}% (interval "
                                    f"[{e.low:.3g}, {e.high:.3g}]), well above 0: the forget set looks less like "
                                    "training data than to the reference")
        # MUSE's own number, every type pooled and each record once per resample, for information
        pooled_aucs = {who: float(mia.auc(np.concatenate([scored(who, t, "member") for t in present]),
                                          np.concatenate([scored(who, t, "non") for t in present]), higher))
                       for who in sc}
        pooled = {who: float(muse_privleak(a, pooled_aucs["reference"] if has_ref else 0.5))
                  for who, a in pooled_aucs.items() if who != "reference"}
        return self._result(check, values, est=est, decision=decision, findings=findings,
                            extra={"auc": aucs[wt], "auc_by_type": aucs, "deciding_type": wt,
                                   "privleak_by_type": {t: {"value": e.value, "low": e.low, "high": e.high, "n": e.n,
                                                            "n_other": e.n_other}
                                                        for t, e in mine.items() if e is not None},
                                   "type_confidence": each if use_iv else None,
                                   "unbounded_types": unbounded,
                                   "pooled": {"privleak": pooled, "auc": pooled_aucs,
                                              "note": "MUSE's single number, every item type pooled; for information "
                                                      "only: the worst type decides"},
                                   "reference_basis": basis, "attack": f"min_k (k = {PRIVLEAK_K})",
                                   "unit": "percent, MUSE's sign (negative = leak, positive = over-unlearning)",
                                   "formula": "100 * (AUC_reference - AUC_unlearned) / (1 - AUC_reference)",
                                   "compared": "magnitude |PrivLeak|, worst item type"})

    def forget_quality(self, check: MetricCheck) -> CheckResult:
        """TOFU forget quality: the KS-test p-value of per-item truth ratios against the reference
        (items paired: both models answered the same questions), with its bootstrap interval and
        the smallest p-value the test can reach at this size. Without a reference: against the
        same model's statistics on the holdout's evaluation half.

        A p-value below the bound ``b`` fails: the test rejects at level ``b``, which is evidence of a difference
        (``Decision.rejects``). A p-value at or above it is not evidence that the two agree (a test that misses
        a difference at this size says nothing), so it passes only when its whole bootstrap interval lies at or
        above ``b`` (FRAMEWORK.md §7), and is inconclusive otherwise. With the items paired, resampling keeps
        each question's two statistics together, so the interval stays high only for a model that answers
        question by question as the reference does; for two samples that merely come from similar
        distributions it spreads towards 0 and the check stays inconclusive, which is what such data can show.
        The original model, trained on the target, is the positive control: when the test does not reject it
        either, or when even complete separation would not reach below the bound at this size, the check
        cannot fail and is inconclusive."""
        ds = check.dataset
        if not self.ctx.data.get(ds):
            return self._missing(check, f"the plan has no {code_span(ds)} data")
        values: dict[str, float | None] = {}
        extra: dict[str, Any] = {}
        ks: dict[str, intervals.KSResult | None] = {}
        conf = self.ctx.confidence
        has_ref = "reference" in self.m
        if not has_ref and not self.ctx.data.holdout:
            return self._missing(check, "no reference model and no holdout data to calibrate against")
        self.each_model(lambda who: (self.m[who].answer_stats(ds),  # measured together, then cached
                                     None if has_ref else self.m[who].answer_stats("holdout")))
        for who in ("original", "unlearned"):
            mine = self.m[who].answer_stats(ds)
            other = self.m["reference"].answer_stats(ds) if has_ref else self.m[who].answer_stats("holdout")
            fq = metrics.forget_quality_from(mine, other)
            values[who] = fq.pvalue
            extra["statistic"] = fq.statistic
            if fq.statistic == "truth_ratio" and who == "unlearned":
                had = mine.paraphrased if mine.paraphrased is not None else np.zeros(0, dtype=bool)
                used = int(np.sum(had & np.isfinite(mine.truth_ratio))) if had.size else 0
                total = int(np.sum(np.isfinite(mine.truth_ratio)))
                extra["truth_ratio_denominator"] = (
                    "TOFU's: the paraphrased answer on every question" if used == total else
                    f"TOFU's paraphrased answer on {used} of {total} questions, the gold answer on the rest (their "
                    "records give no `paraphrased_answer`): a variant of TOFU's truth ratio that also rewards "
                    "verbatim memory of the trained answer")
            a, b = ((mine.truth_ratio, other.truth_ratio) if fq.statistic == "truth_ratio" else (mine.loss, other.loss))
            ks[who] = (intervals.ks_estimate(a, b, paired=has_ref, confidence=conf, rng=self.rng(check, who))
                       if self.ctx.intervals else None)
        extra["compared_with"] = (f"{self.reference_name}'s per-item statistics (TOFU), items paired" if has_ref
                                  else "the same model's statistics on the holdout's evaluation half (holdout-"
                                       "calibrated: no reference model exists)")
        est: dict[str, Estimate | None] = {}
        for who, r in ks.items():
            if r is not None:
                est[who] = Estimate(r.pvalue, r.low, r.high, r.n, r.n_other, conf)
                extra.setdefault("ks", {})[who] = {"pvalue_exact": r.pvalue, "statistic": r.statistic,
                                                   "min_attainable_pvalue": r.min_pvalue, "method": r.method,
                                                   "n": r.n, "n_other": r.n_other}
        per = {}
        for who in self.m:
            if who == "served":
                continue
            st = self.m[who].answer_stats(ds)
            vals = st.truth_ratio if extra.get("statistic") == "truth_ratio" else st.loss
            per[who] = Series([f"{ds}[{i}]" for i in range(len(vals))], [float(x) for x in vals])
        decision = None
        r_u = ks.get("unlearned")
        t = check.threshold
        if t is not None and values.get("unlearned") is not None:
            pv = float(values["unlearned"])  # type: ignore[arg-type]
            po = values.get("original")
            attainable = (r_u.min_pvalue, 1.0) if r_u is not None else None
            blind = None
            if po is not None and t.holds(float(po)):
                blind = (f"the test does not tell the original model, which was trained on the target, from the "
                         f"{'reference' if has_ref else 'holdout'} either (p = {float(po):.3g}), so a p-value on the "
                         "passing side is no evidence that unlearning removed what it holds")
            sizes = f"{r_u.n} vs {r_u.n_other} items" if r_u is not None else "these items"
            interval = (r_u.low, r_u.high) if r_u is not None else None
            rejects = interval is not None and t.op in (">=", ">") and not t.holds(pv)
            control = (f"; the test tells the original model from the reference (p = {float(po):.3g}), so it can "
                       "detect a model that holds the target" if po is not None and not blind else "")
            decision = Decision(
                quantity="KS-test p-value", value=pv, interval=interval, threshold=t, attainable=attainable,
                no_evidence=blind, rejects=rejects, n=r_u.n if r_u else 0,
                how=(f"a p-value below {t.value:g} fails: the test on {sizes} rejects at that level; one at or above "
                     f"it passes only when its whole {conf:.0%} bootstrap interval"
                     f"{' (questions resampled in pairs)' if has_ref else ''} lies at or above {t.value:g}, since "
                     "a test that finds no difference is not evidence that there is none" if interval is not None
                     else f"decided by the test at level {t.value:g} on {sizes}"
                     + (" (intervals are off)" if not self.ctx.intervals else ""))
                + control
                + (f"; at this size the p-value can go as low as {r_u.min_pvalue:.3g}" if r_u is not None else ""),
                # no "items that would settle it": a p-value does not narrow around a fixed value as items are
                # added (it stays spread over [0, 1] when the distributions agree, and falls towards 0 when not)
                more_items=None)
        return self._result(check, values, per_item=per, extra=extra, est=est, decision=decision)
