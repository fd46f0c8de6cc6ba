"""A review of the verdict statistics against FRAMEWORK.md §7: positive controls for the membership, PrivLeak and
multiple-choice checks, item types that cannot be measured, and the coverage of the intervals the verdicts rest on
(checked by simulation against distributions whose true value is known)."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import stats

from unlearnspec.runtime.evaluation import intervals, mia
from unlearnspec.runtime.evaluation.mcq import MCQResult

try:  # pytest puts tests/ on sys.path (rootdir-relative "prepend" import mode)
    from test_checks import check, evaluator
    from test_eval_tiny_model import _one_torch_thread, tiny_lm  # noqa: F401
except ImportError:  # tests/ imported as a package
    from tests.test_checks import check, evaluator
    from tests.test_eval_tiny_model import _one_torch_thread, tiny_lm  # noqa: F401

N = 60  # members and non-members per item type: enough for a gap of 0.5 to be shown beyond a 0.1 tolerance


def _typed(members: dict[str, np.ndarray], nonmembers: dict[str, np.ndarray],
           types: tuple[str, ...] = ("documents", "qa")) -> dict[str, Any]:
    """One model's membership scores as ``Measurer.typed_attack_scores`` gives them: per item type, the item ids and
    every attack's scores (here the same per-item "evidence" read by every attack in its own direction)."""
    def side(scores: dict[str, np.ndarray], tag: str) -> dict[str, Any]:
        out = {}
        for t in types:
            suffix = "" if t == "documents" else ":answer"
            ids = [f"{tag}[{i}]{suffix}" for i in range(len(scores[t]))]
            out[t] = (ids, {a: (1.0 if higher else -1.0) * scores[t] for a, (_, higher) in mia.ATTACKS.items()})
        return out
    return {"member": side(members, "forget"), "non": side(nonmembers, "holdout")}


def _scores(seed: int, shift: float, base: dict[str, Any] | None = None, noise: float = 0.0) -> dict[str, Any]:
    """Members shifted up by ``shift`` (a model that holds them); ``base`` and ``noise``: another model's scores
    with a little noise (a model that scores the same items nearly alike)."""
    rng = np.random.default_rng(seed)
    if base is not None:
        m = {t: base["m"][t] + noise * rng.normal(size=N) for t in base["m"]}
        n = {t: base["n"][t] + noise * rng.normal(size=N) for t in base["n"]}
    else:
        m = {t: rng.normal(size=N) + shift for t in ("documents", "qa")}
        n = {t: rng.normal(size=N) for t in ("documents", "qa")}
    return {"m": m, "n": n}


def _membership_evaluator(tmp_path: Path, original: dict[str, Any], unlearned: dict[str, Any],
                          reference: dict[str, Any], non_types: tuple[str, ...] = ("documents", "qa")) -> Any:
    ev = evaluator(copy.deepcopy(tiny_lm("original")), tmp_path)
    sc = {}
    for who, s in (("original", original), ("unlearned", unlearned), ("reference", reference)):
        typed = _typed(s["m"], s["n"])
        typed["non"] = {t: v for t, v in typed["non"].items() if t in non_types}
        sc[who] = typed
    ev._membership_scores = lambda dataset, k: sc  # type: ignore[method-assign]
    return ev


def test_membership_passes_only_when_the_original_is_shown_beyond_the_tolerance(tmp_path: Path) -> None:
    """FRAMEWORK.md §7, bounds that cannot fail: a membership gap within the tolerance is evidence of removal only
    when the same measurement shows the original model, trained on the target, beyond it. Before the review the
    check passed whenever the unlearned model's gap was within the tolerance, whatever the original showed."""
    reference = _scores(1, 0.0)
    unlearned = _scores(2, 0.0, base=reference, noise=0.01)  # scores the items as the reference does
    holds = _scores(3, 3.0)  # trained on the target: its members stand out
    blind = _scores(4, 0.0, base=reference, noise=0.01)  # an attack that cannot see what the original holds
    ok = _membership_evaluator(tmp_path, holds, unlearned, reference).check(check("membership_auc", value=0.6))
    assert ok.status == "pass" and ok.decision is not None and ok.decision.cannot_pass is None
    assert not [f for f in ok.findings if "no positive control" in f]
    r = _membership_evaluator(tmp_path, blind, unlearned, reference).check(check("membership_auc", value=0.6))
    assert r.decision is not None and r.decision.interval is not None and r.decision.interval[1] <= 0.1
    assert r.status == "inconclusive" and "no positive control" in str(r.decision.cannot_pass)
    assert [f for f in r.findings if f.startswith("no power: no positive control")]
    # a leak fails without any control: the original's own scores as the unlearned model's
    leak = _membership_evaluator(tmp_path, blind, holds, reference).check(check("membership_auc", value=0.6))
    assert leak.status == "fail"


def test_a_member_type_without_non_members_cannot_be_shown_within_the_tolerance(tmp_path: Path) -> None:
    """Worst case over item types (§7): a type of the forget set that the holdout has no non-member of is not
    measured, so the check can fail on the others but never pass on them. Before the review such a type was
    dropped silently and the check passed on the rest."""
    reference = _scores(1, 0.0)
    unlearned = _scores(2, 0.0, base=reference, noise=0.01)
    ev = _membership_evaluator(tmp_path, _scores(3, 3.0), unlearned, reference, non_types=("qa",))
    r = ev.check(check("membership_auc", value=0.6))
    assert set(r.extra["gap_by_type"]) == {"qa"}
    assert r.decision is not None and r.decision.interval is not None and r.decision.interval[1] <= 0.1
    assert r.status == "inconclusive" and "documents" in str(r.decision.cannot_pass)
    p = ev.check(check("privleak", value=10.0))
    assert p.status == "inconclusive" and p.decision is not None and "documents" in str(p.decision.cannot_pass)


def test_privleak_passes_only_with_a_positive_control(tmp_path: Path) -> None:
    """PrivLeak likewise: the original model's PrivLeak must be shown beyond the bound (worst type, each at the
    Bonferroni level) before a value within it counts."""
    reference = _scores(1, 0.0)
    unlearned = _scores(2, 0.0, base=reference, noise=0.01)
    ok = _membership_evaluator(tmp_path, _scores(3, 3.0), unlearned, reference).check(check("privleak", value=10.0))
    assert ok.status == "pass" and ok.decision is not None and ok.decision.cannot_pass is None
    blind = _scores(4, 0.0, base=reference, noise=0.01)
    r = _membership_evaluator(tmp_path, blind, unlearned, reference).check(check("privleak", value=10.0))
    assert r.decision is not None and r.decision.interval is not None and r.decision.interval[1] <= 10.0
    assert r.status == "inconclusive" and "no positive control" in str(r.decision.cannot_pass)


@dataclass
class _Answers:
    """What ``Measurer.mcq`` returns, made up: which items each model gets right."""

    right: list[int]

    def result(self, n: int) -> MCQResult:
        acc = np.array([1.0 if i in self.right else 0.0 for i in range(n)])
        return MCQResult(index=list(range(n)), loglik=[np.zeros(4)] * n, gold=[0] * n, acc=acc, acc_norm=acc,
                         chance=0.25)


@pytest.mark.parametrize("original_right", [40, 8])
def test_a_multiple_choice_check_needs_the_original_beyond_its_bound(tmp_path: Path, original_right: int) -> None:
    """An accuracy the original model, which knows the target, already keeps within the bound (a model near chance
    on these items) is no evidence that unlearning removed anything: a pass needs the original shown beyond it."""
    from unlearnspec.runtime.checks import DataBundle

    try:
        from test_eval_tiny_model import people
    except ImportError:
        from tests.test_eval_tiny_model import people
    p = people()
    bundle = DataBundle(forget=p.forget, retain=p.retain[:8], neighbors=[], holdout=p.holdout, test=p.forget)
    ev = evaluator(copy.deepcopy(tiny_lm("original")), tmp_path, bundle=bundle)
    n = 40
    right = {"original": list(range(original_right)), "unlearned": [], "reference": [0, 1]}
    for who, meas in ev.m.items():
        meas.mcq = lambda dataset, who=who: _Answers(right[who]).result(n)  # type: ignore[method-assign]
    r = ev.check(check("mcq_accuracy", "test", value=0.35))
    # 0 of 40 right: Clopper-Pearson's upper end is 0.088, within 0.35
    assert r.values.unlearned == 0.0 and r.interval["unlearned"][1] == pytest.approx(
        stats.binomtest(0, n).proportion_ci(0.95).high)
    if original_right == 40:  # the original's 40 of 40 is wholly beyond 0.35: the control holds
        assert r.status == "pass"
    else:  # 8 of 40 (0.2, its interval [0.09, 0.36]) is not shown beyond: no control, no pass
        assert r.status == "inconclusive" and r.decision is not None
        assert "no positive control" in str(r.decision.cannot_pass)


# ------------------------------------------------------------------------------ coverage by simulation


def _coverage(draw: Any, estimate: Any, truth: float, reps: int, seed: int) -> float:
    rng = np.random.default_rng(seed)
    hits = 0
    for r in range(reps):
        e = estimate(*draw(rng), np.random.default_rng(r))
        hits += e is not None and e.low <= truth <= e.high
    return hits / reps


def test_the_auc_interval_keeps_its_level_against_the_known_auc() -> None:
    """Members N(0.8, 1) against non-members N(0, 1): the population AUC is Phi(0.8 / sqrt 2). Over 300 draws the
    95% interval covers it at least nominally (within simulation error) at 5, 10 and 20 items a side, and with
    discrete, tied scores."""
    truth = float(stats.norm.cdf(0.8 / np.sqrt(2.0)))
    for n in (5, 10, 20):
        cov = _coverage(lambda g, n=n: (g.normal(0.8, 1, n), g.normal(0, 1, n)),
                        lambda m, x, r: intervals.auc_estimate(m, x, True, rng=r), truth, 300, n)
        assert cov >= 0.92, (n, cov)
    pm, pn = np.array([0.2, 0.3, 0.5]), np.array([0.4, 0.4, 0.2])
    tied = float(sum(pm[i] * pn[j] * (1.0 if i > j else 0.5 if i == j else 0.0) for i in range(3) for j in range(3)))
    cov = _coverage(lambda g: (g.choice(3, 15, p=pm).astype(float), g.choice(3, 15, p=pn).astype(float)),
                    lambda m, x, r: intervals.auc_estimate(m, x, True, rng=r), tied, 300, 7)
    assert cov >= 0.92, cov


def test_the_paired_gap_interval_keeps_its_level() -> None:
    """Two models' per-item scores on the same items (b = a plus a shift of 0.05 and noise, clipped to [0, 1]):
    the true mean gap, computed from two million draws, is covered at least nominally by the paired interval."""
    g = np.random.default_rng(99)
    a = g.beta(2, 5, 2_000_000)
    truth = float(np.mean(a - np.clip(a + g.normal(0.05, 0.15, a.size), 0, 1)))

    def draw(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
        x = rng.beta(2, 5, n)
        return x, np.clip(x + rng.normal(0.05, 0.15, n), 0, 1)

    for n in (8, 20):
        cov = _coverage(lambda rng, n=n: draw(rng, n),
                        lambda x, y, r: intervals.paired_gap_estimate(x, y, rng=r, bounds=intervals.UNIT),
                        truth, 300, n)
        assert cov >= 0.92, (n, cov)


def test_the_auc_interval_keeps_its_level_near_an_auc_of_one() -> None:
    """Members N(3, 1) against non-members N(0, 1), 40 a side: the population AUC is Phi(3 / sqrt 2) = 0.983. A
    percentile bootstrap of the AUC sits too high there (its interval missed the AUC in 12% of 600 draws, the truth
    below it); widened to DeLong's interval on the logit scale it keeps the 95% level, and the interval is still
    checked against scikit-learn's AUC for its point."""
    from sklearn.metrics import roc_auc_score

    truth = float(stats.norm.cdf(3.0 / np.sqrt(2.0)))
    cov = _coverage(lambda g: (g.normal(3.0, 1, 40), g.normal(0, 1, 40)),
                    lambda m, x, r: intervals.auc_estimate(m, x, True, rng=r), truth, 300, 11)
    assert cov >= 0.93, cov
    g = np.random.default_rng(0)
    m, x = g.normal(3.0, 1, 40), g.normal(0, 1, 40)
    e = intervals.auc_estimate(m, x, True, rng=np.random.default_rng(0))
    assert e is not None and e.value == pytest.approx(roc_auc_score(np.r_[np.ones(40), np.zeros(40)], np.r_[m, x]))
    assert e.low < e.value < e.high <= 1.0


def test_a_reference_judged_metric_without_a_paired_gap_decides_nothing(tmp_path: Path) -> None:
    """Knowledge ROUGE is judged as the gap to the reference on the same items (§7). When no such gap can be formed
    (here the reference was measured on other items), the unlearned model's own mean is neither reference-relative
    nor controlled: before the review it decided the check on its own (0 of 6, Clopper-Pearson's upper end 0.46,
    passed a bound of 0.5); now it is reported and the check is inconclusive."""
    from unlearnspec.runtime.measure import Series

    ev = evaluator(copy.deepcopy(tiny_lm("original")), tmp_path)
    ids = [f"forget[{i}]:direct" for i in range(6)]
    series = {"original": Series(ids, [1.0] * 6), "unlearned": Series(ids, [0.0] * 6),
              "reference": Series([f"forget[{i}]:other" for i in range(6)], [0.0] * 6)}
    ev._output_series = lambda who, c: series[who]  # type: ignore[method-assign]
    r = ev.check(check("knowledge_rouge", value=0.5))
    assert r.interval["unlearned"][1] == pytest.approx(stats.binomtest(0, 6).proportion_ci(0.95).high)
    assert r.status == "inconclusive" and r.decision is not None and "no gap to" in str(r.decision.no_evidence)
