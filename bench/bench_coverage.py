"""How often the intervals cover the truth they claim to: simulated coverage at the stated 95%.

A verdict passes only when its interval clears the bound, so an interval that covers less than it says
passes checks the data cannot carry. This benchmark draws samples with a known truth and counts how often
each interval contains it:

* means of skewed per-item scores (beta distributions, like ROUGE) at 4 to 40 items: the plain percentile
  bootstrap (``scipy.stats.bootstrap``) next to ``intervals.mean_estimate`` (Hesterberg's expanded level);
* a leak rate over questions asked through six adversarial wrappers, each question leaking under all six or
  none: Clopper and Pearson over the 120 prompts as if independent, next to ``mean_estimate`` with the
  questions as clusters;
* an AUC of 0.9 over 5 members and 5 non-members: the plain percentile bootstrap next to
  ``intervals.auc_estimate`` (the disjoint-pairs interval under complete separation).

    .venv/bin/python bench/bench_coverage.py                 # 400 draws per cell
    .venv/bin/python bench/bench_coverage.py --trials 2000   # tighter figures (a few minutes)

Nothing here is asserted; tests/test_intervals_items.py pins smaller versions of each comparison.
"""

from __future__ import annotations

import argparse
import math

import numpy as np
from scipy import stats

from unlearnspec.runtime.evaluation import intervals


def _share(hits: int, trials: int) -> str:
    se = math.sqrt(max(hits * (trials - hits), 1) / trials) / trials
    return f"{hits / trials:6.1%} ±{1.96 * se:.1%}"


def means(trials: int, rng: np.random.Generator) -> None:
    print("means of per-item scores in [0, 1] (95% stated)")
    print(f"  {'scores':<12} {'n':>3}  {'percentile bootstrap':>22}  {'mean_estimate':>16}")
    for a, b in ((2.0, 5.0), (0.5, 3.0)):
        truth = a / (a + b)
        for n in (4, 6, 10, 20, 40):
            plain = ours = 0
            for _ in range(trials):
                x = rng.beta(a, b, n)
                ref = stats.bootstrap((x,), np.mean, confidence_level=0.95, method="percentile", random_state=rng)
                plain += ref.confidence_interval.low <= truth <= ref.confidence_interval.high
                e = intervals.mean_estimate(x, rng=rng, bounds=intervals.UNIT)
                assert e is not None
                ours += e.low <= truth <= e.high
            name = f"beta({a:g}, {b:g})"
            print(f"  {name:<12} {n:>3}  {_share(plain, trials):>22}  {_share(ours, trials):>16}")


def clustered(trials: int, rng: np.random.Generator) -> None:
    print("a leak rate of 0.2 over 20 questions x 6 wrappers (a question leaks under all or none)")
    clusters = [f"q{q}" for q in range(20) for _ in range(6)]
    flat = ours = 0
    for _ in range(trials):
        x = np.repeat((rng.random(20) < 0.2).astype(float), 6)
        f = intervals.mean_estimate(x, rng=rng, bounds=intervals.UNIT)
        e = intervals.mean_estimate(x, rng=rng, bounds=intervals.UNIT, clusters=clusters)
        assert f is not None and e is not None
        flat += f.low <= 0.2 <= f.high
        ours += e.low <= 0.2 <= e.high
    print(f"  prompts as items: {_share(flat, trials)}   questions as items: {_share(ours, trials)}")


def auc(trials: int, rng: np.random.Generator) -> None:
    print("an AUC of 0.9, 5 members vs 5 non-members")
    shift = stats.norm.ppf(0.9) * math.sqrt(2)
    plain = ours = separated = 0
    for _ in range(trials):
        m, n = rng.normal(shift, 1, 5), rng.normal(0, 1, 5)
        separated += bool(m.min() > n.max())
        ref = stats.bootstrap((m, n), intervals.auc_statistic, method="percentile", random_state=rng)
        plain += ref.confidence_interval.low <= 0.9 <= ref.confidence_interval.high
        e = intervals.auc_estimate(m, n, True, rng=rng)
        assert e is not None
        ours += e.low <= 0.9 <= e.high
    print(f"  percentile bootstrap: {_share(plain, trials)}   auc_estimate: {_share(ours, trials)}   "
          f"(complete separation in {separated / trials:.0%} of draws)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=400)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    means(args.trials, rng)
    clustered(args.trials, rng)
    auc(args.trials, rng)


if __name__ == "__main__":
    main()
