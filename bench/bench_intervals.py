"""Benchmark: what the confidence intervals cost in the evaluate stage (issue 11: at most 10%).

What it measures: the evaluate stage's checks on the test suite's tiny trained models (original,
unlearned = a copy of the original, retrained reference; 6 people to forget, 6 held out): membership
AUC per item type and attack, PrivLeak, forget quality (KS), knowledge and verbatim ROUGE, exact
memorisation. Each configuration runs on fresh measurers (no cached forward passes or generations),
once with intervals (``EvalContext(intervals=True)``, the default) and once without, alternating,
``--repeats`` times; it prints the median wall time of each and the ratio.

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


def run_once(with_intervals: bool, models: tuple, tok: object, work: Path) -> float:  # type: ignore[type-arg]
    p = people()
    data = DataBundle(forget=p.forget, retain=p.retain[:8], neighbors=[], holdout=p.holdout, test=[])
    original, unlearned, reference = models
    ctx = EvalContext(op=None, data=data, stage=EvaluateStage(max_new_tokens=8, eval_batch_size=16),  # type: ignore[arg-type]
                      original=(original, tok), unlearned=(unlearned, tok), reference=(reference, tok), guard=None,
                      refusal_text="I don't know.", attacks=[], work_dir=work, strategy="retrain",
                      intervals=with_intervals)
    t0 = time.perf_counter()
    ev = Evaluator(ctx)
    for c in CHECKS:
        ev.check(c)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    tok = tokenizer()
    models = (tiny_lm("original"), copy.deepcopy(tiny_lm("original")), tiny_lm("reference"))
    on: list[float] = []
    off: list[float] = []
    with tempfile.TemporaryDirectory() as d:
        run_once(True, models, tok, Path(d))  # warm-up: imports, kernels
        for _ in range(args.repeats):
            off.append(run_once(False, models, tok, Path(d)))
            on.append(run_once(True, models, tok, Path(d)))
    m_on, m_off = statistics.median(on), statistics.median(off)
    print(f"evaluate stage, {len(CHECKS)} checks: without intervals {m_off:.2f} s, with intervals {m_on:.2f} s "
          f"(median of {args.repeats}); ratio {m_on / m_off:.3f} (+{100 * (m_on / m_off - 1):.1f}%)")


if __name__ == "__main__":
    main()
