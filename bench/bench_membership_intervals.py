"""Benchmark: the membership check's simultaneous intervals, joint bootstrap against Bonferroni, side by side.

A membership check is decided by the worst of k (item type, attack) AUC gaps, so the k intervals must hold
together. Two ways, on the same scores (a report.json's membership check, which keeps every member's and
non-member's score per attack and model):

* Bonferroni (until 2026-12-01): each pair alone, ``gap_of_aucs_estimate`` at ``1 - 0.05/k`` with ``1000·k``
  resamples;
* joint (now): ``joint_gap_estimates``, one bootstrap of the items for all pairs (``1000·k`` resamples),
  each pair's percentile interval at the level where 95% of the resamples fall inside all k.

It prints the wall time of each (median of ``--repeats``), the level each pair's interval is at, and how
wide the intervals are (the joint ones over the Bonferroni ones, per pair and in median).

    .venv/bin/unlearnspec run specs/erase-jane-doe.unlearn --out /tmp/demo
    .venv/bin/python bench/bench_membership_intervals.py /tmp/demo/report.json --repeats 5

Not a test: timings depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from unlearnspec.runtime.evaluation import intervals, joint_intervals


def pairs_of(check: dict[str, Any]) -> list[joint_intervals.GapPair]:
    """Every (item type, attack) pair of a membership check, the unlearned model against the reference."""
    extra = check["extra"]
    out = []
    for attack, higher in extra["attack_higher_is_member"].items():
        for t in dict.fromkeys(extra["member_types"]):
            def scores(kind: str, who: str, t: str = t, attack: str = attack) -> np.ndarray:
                types = extra[f"{kind}_types"]
                return np.array([s for s, ty in zip(extra[f"{kind}_scores"][who][attack], types, strict=True) if ty == t])
            out.append(joint_intervals.GapPair(f"{t}", scores("member", "unlearned"), scores("nonmember", "unlearned"),
                                         scores("member", "reference"), scores("nonmember", "reference"), higher))
    return out


def bonferroni(pairs: list[joint_intervals.GapPair]) -> list[intervals.Estimate | None]:
    k = len(pairs)
    return [intervals.gap_of_aucs_estimate(p.members_a, p.nonmembers_a, p.members_b, p.nonmembers_b,  # type: ignore[arg-type]
                                           p.higher_is_member, confidence=joint_intervals.bonferroni(0.95, k),
                                           rng=np.random.default_rng(i), n_resamples=intervals.N_RESAMPLES * k)
            for i, p in enumerate(pairs)]


def joint(pairs: list[joint_intervals.GapPair]) -> list[intervals.Estimate | None]:
    return joint_intervals.joint_gap_estimates(pairs, rng=np.random.default_rng(0))[0]


def timed(fn: Any, pairs: list[joint_intervals.GapPair], repeats: int) -> tuple[float, list[intervals.Estimate | None]]:
    times, out = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn(pairs)
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("report", type=Path)
    ap.add_argument("--check", default="membership_auc@forget")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    report = json.loads(args.report.read_text())
    check = next(c for o in report["objectives"] for c in o["checks"] if c["check_id"] == args.check)
    pairs = pairs_of(check)
    k = len(pairs)
    t_b, est_b = timed(bonferroni, pairs, args.repeats)
    t_j, est_j = timed(joint, pairs, args.repeats)
    widths = [(j.high - j.low) / (b.high - b.low) for b, j in zip(est_b, est_j, strict=True)
              if b is not None and j is not None and b.high > b.low]
    level = next(e.confidence for e in est_j if e is not None)
    print(f"{args.check}: {k} pairs ({', '.join(dict.fromkeys(p.group for p in pairs))} x "
          f"{len(check['extra']['attack_higher_is_member'])} attacks)")
    print(f"  Bonferroni: each pair at {joint_intervals.bonferroni(0.95, k):.2%}, {intervals.N_RESAMPLES * k} resamples "
          f"a pair: {t_b:.3f} s (median of {args.repeats})")
    print(f"  joint:      each pair at {level:.2%}, {intervals.N_RESAMPLES * k} resamples of all pairs: "
          f"{t_j:.3f} s; time ratio joint / Bonferroni {t_j / t_b:.2f}")
    print(f"  interval width joint / Bonferroni: median {statistics.median(widths):.3f} "
          f"(range {min(widths):.3f}-{max(widths):.3f} over {len(widths)} pairs)")


if __name__ == "__main__":
    main()
