"""Benchmark: what the confidence intervals cost in the evaluate stage (issue 11: at most 10%).

What it measures: the evaluate stage's checks on the test suite's tiny trained models (original,
unlearned = a copy of the original, retrained reference; 6 people to forget, 6 held out): membership
AUC per item type and attack, PrivLeak, forget quality (KS), knowledge and verbatim ROUGE, exact
memorisation. Each configuration runs on fresh measurers (no cached forward passes or generations),
once with intervals (``EvalContext(intervals=True)``, the default) and once without, alternating,
``--repeats`` times; it prints the median wall and CPU time of each and their ratios.

On a shared, loaded machine two separate timings differ by more than the effect, so the script also
measures the cost *inside one run*: with intervals on, every interval estimator of
:mod:`unlearnspec.runtime.evaluation.intervals` is timed where it is called (outermost calls only),
and their total is given as a share of that same run's evaluate stage. Both numbers come from the same
seconds of the same process, so load slows them alike; the ratio "with / without" that this implies
is 1 / (1 − share).

    PYTHONPATH=. python bench/bench_intervals.py --repeats 3

Not a test: timings depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from test_eval_tiny_model import people, tiny_lm, tokenizer  # noqa: E402

from unlearnspec.plan import EvaluateStage, MetricCheck, Threshold  # noqa: E402
from unlearnspec.runtime.checks import DataBundle, EvalContext, Evaluator  # noqa: E402

CHECKS = [
    MetricCheck(id="membership_auc@forget", metric="membership_auc", dataset="forget",
                threshold=Threshold(op="<=", value=0.6)),
    MetricCheck(id="privleak@forget", metric="privleak", dataset="forget", threshold=Threshold(op="<=", value=10)),
    MetricCheck(id="forget_quality@forget", metric="forget_quality", dataset="forget",
                threshold=Threshold(op=">=", value=0.05)),
    MetricCheck(id="knowledge_rouge@forget", metric="knowledge_rouge", dataset="forget",
                threshold=Threshold(op="<=", value=0.2)),
    MetricCheck(id="verbatim_rouge@forget", metric="verbatim_rouge", dataset="forget",
                threshold=Threshold(op="<=", value=0.2)),
    MetricCheck(id="exact_memorisation@forget", metric="exact_memorisation", dataset="forget",
                threshold=Threshold(op="<=", value=0.2)),
]


def run_once(with_intervals: bool, models: tuple, tok: object, work: Path) -> tuple[float, float]:  # type: ignore[type-arg]
    p = people()
    data = DataBundle(forget=p.forget, retain=p.retain[:8], neighbors=[], holdout=p.holdout, test=[])
    original, unlearned, reference = models
    ctx = EvalContext(op=None, data=data, stage=EvaluateStage(max_new_tokens=8, eval_batch_size=16),  # type: ignore[arg-type]
                      original=(original, tok), unlearned=(unlearned, tok), reference=(reference, tok), guard=None,
                      refusal_text="I don't know.", attacks=[], work_dir=work, strategy="retrain",
                      intervals=with_intervals)
    t0, c0 = time.perf_counter(), time.process_time()
    ev = Evaluator(ctx)
    for c in CHECKS:
        ev.check(c)
    return time.perf_counter() - t0, time.process_time() - c0


ESTIMATORS = {"intervals": ("mean_estimate", "paired_gap_estimate", "auc_estimate", "gap_of_aucs_estimate",
                            "paired_estimate", "ks_estimate"),
              "joint_intervals": ("joint_gap_estimates", "gap_of_aucs_by_record")}


def attributed_share(models: tuple, tok: object, work: Path) -> tuple[float, float]:  # type: ignore[type-arg]
    """One run with intervals on: (seconds in the interval estimators, seconds of the whole stage)."""
    from unlearnspec.runtime.evaluation import intervals, joint_intervals

    spent = [0.0]
    depth = [0]
    modules = {"intervals": intervals, "joint_intervals": joint_intervals}
    saved = {(mod, name): getattr(modules[mod], name) for mod, names in ESTIMATORS.items() for name in names}

    def timed(fn):  # type: ignore[no-untyped-def]
        def wrapper(*a, **kw):  # type: ignore[no-untyped-def]
            depth[0] += 1
            t0 = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                depth[0] -= 1
                if depth[0] == 0:
                    spent[0] += time.perf_counter() - t0
        return wrapper

    for (mod, name), fn in saved.items():
        setattr(modules[mod], name, timed(fn))
    try:
        total, _ = run_once(True, models, tok, work)
    finally:
        for (mod, name), fn in saved.items():
            setattr(modules[mod], name, fn)
    return spent[0], total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    tok = tokenizer()
    models = (tiny_lm("original"), copy.deepcopy(tiny_lm("original")), tiny_lm("reference"))
    on: list[tuple[float, float]] = []
    off: list[tuple[float, float]] = []
    with tempfile.TemporaryDirectory() as d:
        run_once(True, models, tok, Path(d))  # warm-up: imports, kernels
        for _ in range(args.repeats):
            off.append(run_once(False, models, tok, Path(d)))
            on.append(run_once(True, models, tok, Path(d)))
        shares = [attributed_share(models, tok, Path(d)) for _ in range(args.repeats)]
    share = statistics.median(x / t for x, t in shares)
    print(f"inside one run: the interval estimators take {100 * share:.1f}% of the evaluate stage (median of "
          f"{args.repeats}; {statistics.median(x for x, _ in shares):.2f} s of {statistics.median(t for _, t in shares):.2f} s): "
          f"ratio with / without {1 / (1 - share):.3f}")
    for label, i in (("wall", 0), ("CPU", 1)):  # CPU time (all threads) is what a loaded machine does not blur
        m_on, m_off = statistics.median(x[i] for x in on), statistics.median(x[i] for x in off)
        print(f"evaluate stage, {len(CHECKS)} checks, {label} time: without intervals {m_off:.2f} s, with intervals "
              f"{m_on:.2f} s (median of {args.repeats}); ratio {m_on / m_off:.3f} (+{100 * (m_on / m_off - 1):.1f}%)")


if __name__ == "__main__":
    main()
