"""Plan/show/diff benchmarks (not tests): CLI cold start of `plan`, and in-process lowering of every example.

Why: `plan` and `diff` run in pull requests beside `check`; their cost over `check` is the lowering
(hashing the data and the built-in corpus, reading the data for the estimate), which this measures.

    .venv/bin/python bench/bench_plan.py            # median of 5 cold runs, 20 in-process passes
    .venv/bin/python bench/bench_plan.py --runs 9 --passes 50

Numbers depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted((ROOT / "specs").glob("*.unlearn"))
EXAMPLE = ROOT / "specs" / "erase-jane-doe.unlearn"


def cold(argv: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "unlearnspec", *argv], cwd=ROOT, capture_output=True, check=False)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5, help="cold CLI runs (median)")
    ap.add_argument("--passes", type=int, default=20, help="in-process passes over the example specs")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    from unlearnspec.compiler.check import check_file, plan_file
    from unlearnspec.compiler.review import render_review
    from unlearnspec.compiler.semdiff import diff_plans

    with tempfile.TemporaryDirectory() as tmp:
        out = str(Path(tmp) / "p.json")
        print(f"cold `check` (1 spec):           {cold(['check', str(EXAMPLE)], args.runs) * 1000:7.0f} ms")
        print(f"cold `plan`  (1 spec):           {cold(['plan', str(EXAMPLE), '-q', '-o', out], args.runs) * 1000:7.0f} ms")
        print(f"cold `show`  (saved plan):       {cold(['show', out], args.runs) * 1000:7.0f} ms")
        print(f"cold `diff`  (2 specs):          {cold(['diff', str(EXAMPLE), str(EXAMPLE)], args.runs) * 1000:7.0f} ms")

    for spec in SPECS:  # warm caches (imports, the built-in corpus)
        plan_file(spec, allow_infeasible=True)
    t0 = time.perf_counter()
    for _ in range(args.passes):
        for spec in SPECS:
            check_file(spec)
    t_check = (time.perf_counter() - t0) / (args.passes * len(SPECS))
    plans = []
    t0 = time.perf_counter()
    for _ in range(args.passes):
        plans = [plan_file(spec, allow_infeasible=True)[0] for spec in SPECS]
    t_plan = (time.perf_counter() - t0) / (args.passes * len(SPECS))
    ok = [p for p in plans if p is not None]
    t0 = time.perf_counter()
    for _ in range(args.passes):
        for p in ok:
            render_review(p, "md")
    t_show = (time.perf_counter() - t0) / (args.passes * len(ok))
    t0 = time.perf_counter()
    for _ in range(args.passes):
        for a, b in zip(ok, ok[1:], strict=False):
            diff_plans(a, b)
    t_diff = (time.perf_counter() - t0) / (args.passes * max(len(ok) - 1, 1))
    print(f"in-process, per spec ({len(SPECS)} specs): check {t_check * 1000:.1f} ms, plan {t_plan * 1000:.1f} ms "
          f"(lowering {max(t_plan - t_check, 0) * 1000:.1f} ms), show {t_show * 1000:.1f} ms, diff {t_diff * 1000:.2f} ms")


if __name__ == "__main__":
    main()
