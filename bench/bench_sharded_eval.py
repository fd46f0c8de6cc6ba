"""Benchmark: the evaluate stage on 2 processes (one thread each) vs 1 process (two threads).

What it measures (issue 16: target at most 0.65x on a 2-core machine): the evaluate stage of a plan
— ``runtime.checks.compute`` over every check of the objective that needs no attack, i.e. every
likelihood pass, greedy generation, probe and the representation probe, exactly as ``run`` calls it
— on the built-in model standing in for the original, the unlearned and the reference model (no
training: this measures evaluation alone). One process with ``torch`` on 2 threads, then two
processes with one thread each, joined by a gloo process group (a file store), with evaluation split
across them (``runtime/evaluation/sharding.py``). The 2-process time is the slower rank's. Both give
the same per-item values (checked here; the test is ``tests/test_sharding.py``). One process on one
thread is timed too, to tell the gain of sharding from the cost of two threads per process. Repeated
``--repeats`` times, alternating; the medians and their ratio are printed with the load average,
because on a shared machine other jobs take cores.

    python bench/bench_sharded_eval.py                          # specs/erase-jane-doe.unlearn
    python bench/bench_sharded_eval.py --spec specs/X.unlearn --repeats 5
    BENCH_PROFILE=/tmp/prof python bench/bench_sharded_eval.py --repeats 1   # a cProfile file per rank

Each rank also reports its CPU time and what ``runtime/evaluation/sharding.py`` counted: the batches
it computed, the seconds computing and the seconds in the gathers (waiting for the slower rank). CPU
time tells a slow rank from a starved one: on a machine other jobs share, a rank whose CPU time is
well below its wall time was waiting for a core.

Not a test: timings depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def worker(plan_path: str, spec_dir: str, rank: int, world: int, store: str, out: str, threads: int) -> None:
    import torch.distributed as dist
    import transformers

    transformers.utils.logging.set_verbosity_error()
    from unlearnspec.runtime.scaling import pin_threads

    pin_threads(world, threads)  # as `run` does, with the thread count given
    if world > 1:
        dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
    from unlearnspec.plan import EvaluateStage, Plan
    from unlearnspec.runtime import checks
    from unlearnspec.runtime.builtin_model import ensure_builtin
    from unlearnspec.runtime.checks import DataBundle, EvalContext
    from unlearnspec.runtime.evaluation.sharding import STATS
    from unlearnspec.runtime.loading import load_model
    from unlearnspec.runtime.pipeline import _load_records, _stage_of, holdout_halves

    plan = Plan.model_validate_json(Path(plan_path).read_text(encoding="utf-8"))
    op = plan.objectives[0]
    d, t = op.data, op.objective.target
    ev: EvaluateStage = _stage_of(op, EvaluateStage) or EvaluateStage()
    sd = Path(spec_dir)
    cal, evaluation = holdout_halves(d, _load_records(d.holdout, sd), plan.seed)
    data = DataBundle(forget=_load_records(d.forget, sd), retain=_load_records(d.retain, sd),
                      neighbors=_load_records(d.neighbors, sd), holdout=evaluation, test=_load_records(d.test, sd),
                      aliases=[t.name, *t.aliases], attribute=ev.representation_probe, holdout_calibration=cal)
    path = str(ensure_builtin())
    models = [load_model(path) for _ in range(3)]
    from unlearnspec.catalog import METRICS

    todo = [c for c in op.checks  # the evaluate stage: what checks.compute does before the attacks
            if not ((c.metric in METRICS and METRICS[c.metric].attack is not None) or c.model == "attacked")]
    with tempfile.TemporaryDirectory() as work:
        ctx = EvalContext(op=op, data=data, stage=ev, original=models[0], unlearned=models[1], reference=models[2],
                          guard=None, refusal_text="I don't know.", attacks=[], work_dir=Path(work),
                          strategy="retrain", confidence=ev.confidence, seed=plan.seed)
        if world > 1:
            dist.barrier()
        profile = os.environ.get("BENCH_PROFILE")
        prof = None
        if profile:
            import cProfile

            prof = cProfile.Profile()
            prof.enable()
        STATS.reset()
        t0, c0 = time.perf_counter(), time.process_time()
        results = checks.compute(ctx, todo)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        if prof is not None:
            prof.disable()
            prof.dump_stats(f"{profile}/{Path(out).stem}.prof")
    values = {k: v.model_dump(mode="json")["per_item"] for k, v in sorted(results.items())}
    Path(out).write_text(json.dumps({"wall": wall, "cpu": cpu, "checks": len(results), "values": values,
                                     "compute": STATS.compute_seconds, "gather": STATS.gather_seconds,
                                     "sharding": STATS.summary()}), encoding="utf-8")
    if world > 1:
        dist.destroy_process_group()


def launch(plan: Path, spec_dir: Path, world: int, threads: int, tmp: Path, tag: str) -> list[dict[str, object]]:
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": str(threads),
           "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    store = tmp / f"store-{tag}"
    outs = [tmp / f"{tag}-rank{r}.json" for r in range(world)]
    procs = [subprocess.Popen([sys.executable, __file__, "--worker", str(plan), str(spec_dir), str(r), str(world),
                               str(store), str(outs[r]), str(threads)], env=env) for r in range(world)]
    for p in procs:
        if p.wait() != 0:
            raise SystemExit(f"a worker failed (exit {p.returncode})")
    return [json.loads(o.read_text(encoding="utf-8")) for o in outs]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--spec", default=str(ROOT / "specs" / "erase-jane-doe.unlearn"))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-two-threads", action="store_true",
                    help="skip 1 process x 2 threads (it collapses while other jobs hold a core)")
    ap.add_argument("--worker", nargs=7, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        plan, spec_dir, rank, world, store, out, threads = args.worker
        worker(plan, spec_dir, int(rank), int(world), store, out, int(threads))
        return
    spec = Path(args.spec).resolve()
    with tempfile.TemporaryDirectory(prefix="bench-shard-") as d:
        tmp = Path(d)
        plan = tmp / "plan.json"
        done = subprocess.run([sys.executable, "-m", "unlearnspec", "plan", str(spec), "-o", str(plan), "--quiet"],
                              capture_output=True, text=True, cwd=ROOT)
        if done.returncode != 0:
            raise SystemExit(done.stderr)
        print(f"spec: {spec.name}; load average before: {os.getloadavg()}", flush=True)
        one: list[float] = []
        two: list[float] = []
        lone: list[float] = []
        cpu_ratio: list[float] = []
        for i in range(args.repeats):
            single = None if args.no_two_threads else launch(plan, spec.parent, 1, 2, tmp, f"one{i}")[0]
            (thread1,) = launch(plan, spec.parent, 1, 1, tmp, f"lone{i}")
            ranks = launch(plan, spec.parent, 2, 1, tmp, f"two{i}")
            for r in ranks:  # one thread per process on both sides: the values must be identical
                if r["values"] != thread1["values"]:
                    same = sum(r["values"][k] == thread1["values"][k] for k in thread1["values"])  # type: ignore[index]
                    print(f"  note: {same}/{len(thread1['values'])} checks' per-item values identical")  # type: ignore[arg-type]
                    break
            for n, r in enumerate(ranks):
                print(f"    rank {n}: wall {float(r['wall']):.2f} s, cpu {float(r['cpu']):.2f} s; "  # type: ignore[arg-type]
                      f"{r['sharding']}", flush=True)
            print(f"    1 process x 1 thread: wall {float(thread1['wall']):.2f} s, "  # type: ignore[arg-type]
                  f"cpu {float(thread1['cpu']):.2f} s", flush=True)  # type: ignore[arg-type]
            # the slower rank's CPU time (its own work, no waiting for a core) plus its wait in the gathers, over
            # one thread's CPU time: what the ratio would be with a core per rank and nothing else running
            busy = max(float(r["cpu"]) + float(r["gather"]) for r in ranks)  # type: ignore[arg-type]
            cpu_ratio.append(busy / float(thread1["cpu"]))  # type: ignore[arg-type]
            lone.append(float(thread1["wall"]))  # type: ignore[arg-type]
            two.append(max(float(r["wall"]) for r in ranks))  # type: ignore[arg-type]
            line = f"  repeat {i + 1}: "
            if single is not None:
                one.append(float(single["wall"]))  # type: ignore[arg-type]
                line += f"1 process x 2 threads {one[-1]:.2f} s, "
            line += (f"1 process x 1 thread {lone[-1]:.2f} s, 2 processes x 1 thread {two[-1]:.2f} s "
                     f"({two[-1] / lone[-1]:.2f}x of 1 thread"
                     + (f", {two[-1] / one[-1]:.2f}x of 2 threads" if single is not None else "")
                     + f"); load {os.getloadavg()[0]:.2f}")
            print(line, flush=True)
        m2, m0 = statistics.median(two), statistics.median(lone)
        print(f"checks evaluated: {thread1['checks']}")
        print(f"evaluate stage, median of {args.repeats}: 1 process x 1 thread {m0:.2f} s | 2 processes x 1 thread "
              f"{m2:.2f} s | ratio {m2 / m0:.2f}x (target <= 0.65x)")
        if one:
            m1 = statistics.median(one)
            print(f"against 1 process x 2 threads ({m1:.2f} s, what `run` does on 2 cores): {m2 / m1:.2f}x")
        print(f"CPU-time estimate (slower rank's CPU + gather wait over 1 thread's CPU), median: "
              f"{statistics.median(cpu_ratio):.2f}x")
        print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
