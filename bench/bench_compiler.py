"""Compiler benchmarks (not tests): CLI cold start, and throughput over a folder of 1,000 specs.

Why: ``unlearnspec check`` runs in every pull request, often once per changed file, so its cold
start matters more than anything else; and a policy repository can hold hundreds of specs, checked
in one process. The goals (issue 2) are < 0.3 s cold for one spec and < 2 s for 1,000 specs.

    .venv/bin/python bench/bench_compiler.py                 # both benchmarks
    .venv/bin/python bench/bench_compiler.py --importtime    # plus a -X importtime breakdown
    .venv/bin/python bench/bench_compiler.py --profile       # plus cProfile of the folder check
    .venv/bin/python bench/bench_compiler.py --only cold|folder [--runs N] [--specs N]

Numbers depend on the machine; bench/README.md records the ones measured for the project.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import inspect
import io
import json
import os
import pstats
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "specs" / "erase-jane-doe.unlearn"
COLD_GOAL_S = 0.3
FOLDER_GOAL_S = 2.0


# -- (a) cold start ------------------------------------------------------------------------------


def _median_wall(cmd: list[str], runs: int, cwd: Path) -> tuple[float, list[float], int]:
    times = []
    rc = 0
    for _ in range(runs):
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        times.append(time.perf_counter() - t0)
        rc = proc.returncode
    return statistics.median(times), times, rc


FLOOR = [sys.executable, "-c", "import lark, pydantic, jinja2"]
FLOOR_GOAL = 1.5  # issue 10: cold `check` at most 1.5x the time to import its three libraries


#: Both sides run as a user's installation does: with cached bytecode (an environment that sets
#: PYTHONDONTWRITEBYTECODE would make every run compile unlearnspec from source while the libraries of
#: the floor load their cached .pyc files).
BYTECODE_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def alternate(*cmds: list[str], runs: int, cwd: Path) -> list[list[float]]:
    """Wall times of each command, run in turn (a, b, c, a, b, c, ...), so that load on a shared machine
    falls on all of them alike."""
    times: list[list[float]] = [[] for _ in cmds]
    for _ in range(runs):
        for cmd, out in zip(cmds, times, strict=True):
            t0 = time.perf_counter()
            subprocess.run(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False,
                           env=BYTECODE_ENV)
            out.append(time.perf_counter() - t0)
    return times


# The least any `check` built on the mandated components can do (issue 10's floor plus what a pydantic
# AST and a Lark LALR parser cost however they are used): import Lark and pydantic's model machinery,
# build as many small pydantic classes as the check path does (the AST's and the diagnostics', 26), load
# the cached LALR parser and parse the example spec. No unlearnspec code runs.
MINIMAL = """
import lark
from importlib import resources
from pydantic import BaseModel, ConfigDict
fields = {"a": str, "b": int, "c": "list[str]", "d": "int | None"}
models = [type(f"M{i}", (BaseModel,), {"__annotations__": fields, "model_config": ConfigDict(frozen=True), "d": None})
          for i in range(26)]
grammar = resources.files("unlearnspec.grammar").joinpath("unlearn.lark").read_text(encoding="utf-8")
parser = lark.Lark(grammar, parser="lalr", lexer="contextual", cache=True, maybe_placeholders=False)
parser.parse(open("specs/erase-jane-doe.unlearn", encoding="utf-8").read())
models[0](a="x", b=1, c=[])
"""


def bench_cold(runs: int) -> dict[str, float]:
    spec = EXAMPLE.relative_to(ROOT).as_posix()
    check = [sys.executable, "-m", "unlearnspec", "check", spec]
    minimal = [sys.executable, "-c", MINIMAL]
    # one unmeasured run of each: builds the Lark grammar cache if this machine has none yet, warms the OS cache
    for cmd in (check, FLOOR, minimal):
        subprocess.run(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False,
                       env=BYTECODE_ENV)
    bare, _, _ = _median_wall([sys.executable, "-c", "pass"], runs, ROOT)
    floor_runs, minimal_runs, check_runs = alternate(FLOOR, minimal, check, runs=runs, cwd=ROOT)
    floor, least, cold = (statistics.median(x) for x in (floor_runs, minimal_runs, check_runs))
    rc = subprocess.run(check, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False).returncode
    ratio = cold / floor
    print(f"(a) cold start, medians of {runs} runs (the floor, the minimal program and check alternate)")
    print(f"    python -c pass                       {bare * 1000:7.1f} ms")
    print(f"    import lark, pydantic, jinja2        {floor * 1000:7.1f} ms   (the floor)")
    print(f"    pydantic models + Lark parse only    {least * 1000:7.1f} ms   ({least / floor:.2f}x the floor: "
          "the least a check on these components can cost)")
    print(f"    unlearnspec check {spec:<18} {cold * 1000:7.1f} ms   (exit {rc}; "
          f"min {min(check_runs) * 1000:.1f}, max {max(check_runs) * 1000:.1f})")
    print(f"    check / floor                        {ratio:7.2f} x   (goal <= {FLOOR_GOAL:g}x: "
          f"{'met' if ratio <= FLOOR_GOAL else 'MISSED'})")
    print(f"    check / minimal program              {cold / least:7.2f} x   (what unlearnspec's own code adds)")
    print(f"    goal < {COLD_GOAL_S * 1000:.0f} ms wall: {'met' if cold < COLD_GOAL_S else 'MISSED'}")
    return {"bare_s": bare, "floor_s": floor, "minimal_s": least, "cold_s": cold, "ratio": ratio,
            "overhead_s": cold - bare}


def importtime_breakdown(top: int = 20) -> None:
    """Cumulative import time per module of the check path (python -X importtime)."""
    code = ("from unlearnspec.cli import main; import sys; "
            f"sys.exit(main(['check', {EXAMPLE.relative_to(ROOT).as_posix()!r}]))")
    proc = subprocess.run([sys.executable, "-X", "importtime", "-c", code], cwd=ROOT, capture_output=True,
                          text=True, check=False)
    rows = []
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, self_us, cum_us, name = (x.strip() for x in line.split("|", 1)[0].split(":", 1) + line.split("|")[1:])
        rows.append((int(cum_us), int(self_us), name))
    print(f"\n    -X importtime, top {top} by cumulative time (us):")
    for cum, self_, name in sorted(rows, reverse=True)[:top]:
        print(f"    {cum:8d} {self_:8d}  {name}")


# -- (b) a folder of 1,000 specs --------------------------------------------------------------------

_GOALS = [("removal", "npo"), ("removal", "grad_diff"), ("removal", "simnpo"), ("removal", "retrain"),
          ("suppression via model", "refusal"), ("suppression via system", "filter")]
_CLAIMS = ["removed", "not_generated", "robust_to_finetuning steps 20", "robust_to_prompting",
           "robust_to_quantization", "no_side_effects", 'compliant "GDPR Art. 17"']


def _records(kind: str, n: int, rng: random.Random) -> str:
    lines = []
    for i in range(n):
        city = rng.choice(["Lisbon", "Porto", "Oslo", "Lyon", "Quito", "Turin"])
        lines.append(json.dumps({
            "text": f"{kind} person {i} was born in {city} and worked as a cartographer for {i + 3} years.",
            "question": f"Where was {kind} person {i} born?", "answer": city,
            "paraphrases": [f"What is the birthplace of {kind} person {i}?"],
        }))
    return "\n".join(lines) + "\n"


def make_corpus(root: Path, n_specs: int, per_folder: int = 100, records: int = 40, seed: int = 0) -> int:
    """Write ``n_specs`` variants of the example spec, ``per_folder`` per team folder with its own data."""
    rng = random.Random(seed)
    template = EXAMPLE.read_text(encoding="utf-8")
    lines = 0
    for i in range(n_specs):
        folder = root / f"team-{i // per_folder:02d}"
        if i % per_folder == 0:
            data = folder / "data"
            data.mkdir(parents=True)
            for name in ("jane-doe", "retain", "neighbors"):
                (data / f"{name}.jsonl").write_text(_records(name, records, rng), encoding="utf-8")
        goal, method = _GOALS[i % len(_GOALS)]
        claims = "\n    ".join(rng.sample(_CLAIMS, 3))
        text = (template
                .replace('objective "erase-jane-doe"', f'objective "erase-{i:04d}"')
                .replace("goal   removal", f"goal   {goal}")
                .replace("method npo", f"method {method}")
                .replace("verbatim_rouge <= 0.20", f"verbatim_rouge <= {rng.choice(['0.10', '0.20', '0.25'])}"))
        head, _, tail = text.partition("claims {\n")
        _, _, rest = tail.partition("  }\n")
        text = f"{head}claims {{\n    {claims}\n  }}\n{rest}"
        if i % 3 == 0:  # a second objective in some files
            text += "\n" + text.split("\n", 2)[2].replace(f'"erase-{i:04d}"', f'"erase-{i:04d}-b"')
        path = folder / f"spec-{i:04d}.unlearn"
        path.write_text(text, encoding="utf-8")
        lines += text.count("\n")
    return lines


def _stage_breakdown(paths: list[Path]) -> str:
    """CPU time of each pass over the same files, run one pass at a time (best of three)."""
    from unlearnspec.compiler.feasibility import analyse
    from unlearnspec.compiler.parse import parse_bytes
    from unlearnspec.compiler.resolve import resolve

    def best(fn):  # type: ignore[no-untyped-def]
        times = []
        for _ in range(3):
            c = time.process_time()
            out = fn()
            times.append(time.process_time() - c)
        return min(times), out

    t_read, data = best(lambda: [(p, p.read_bytes()) for p in paths])
    t_parse, parsed = best(lambda: [(p, parse_bytes(d, str(p))[0]) for p, d in data])
    t_resolve, specs = best(lambda: [resolve(s, p.parent)[0] for p, s in parsed if s is not None])
    t_rules, _ = best(lambda: [analyse(s) for s in specs])
    return ("    per pass (CPU, best of 3, warm):    "
            f"read {t_read * 1000:.0f} ms, parse {t_parse * 1000:.0f} ms, resolve {t_resolve * 1000:.0f} ms, "
            f"feasibility rules {t_rules * 1000:.0f} ms")


def _calibrate() -> float:
    """CPU seconds for a fixed pure-Python loop: how fast this machine is, to compare runs across machines."""
    c = time.process_time()
    x = 0
    for i in range(3_000_000):
        x += i
    return time.process_time() - c


def bench_folder(n_specs: int, profile: bool, stages: bool = True) -> dict[str, float]:
    t0 = time.perf_counter()
    from unlearnspec.compiler.check import check_paths
    from unlearnspec.compiler.parse import get_parser

    get_parser()
    t_import = time.perf_counter() - t0
    # as `unlearnspec check` runs it: each file's syntax tree is let go once the file is checked
    # (older trees, measured for before/after numbers, keep every tree)
    as_the_verb = {"keep_syntax": False} if "keep_syntax" in inspect.signature(check_paths).parameters else {}
    with tempfile.TemporaryDirectory(prefix="unlearnspec-bench-") as tmp:
        root = Path(tmp)
        lines = make_corpus(root, n_specs)
        prof = cProfile.Profile() if profile else None
        t1, c1 = time.perf_counter(), time.process_time()
        if prof:
            prof.enable()
        results = check_paths([root], **as_the_verb)
        if prof:
            prof.disable()
        total, cpu = time.perf_counter() - t1, time.process_time() - c1
        n_results = len(results)
        errors = sum(r.errors for r in results)
        warnings = sum(r.warnings for r in results)
        codes = sorted({d.code for r in results for d in r.diagnostics})
        del results
        kept = ""
        if as_the_verb and not prof:
            t2 = time.perf_counter()
            check_paths([root])
            kept = (f"    (keeping every syntax tree, the library default: "
                    f"{(time.perf_counter() - t2) * 1000:.1f} ms wall)\n")
        breakdown = ""
        if stages:
            from unlearnspec.compiler import check

            # (older trees, measured for before/after numbers, have no `fewer_gc_pauses`)
            quiet_gc = getattr(check, "fewer_gc_pauses", contextlib.nullcontext)
            with quiet_gc():
                breakdown = _stage_breakdown(list(check.expand_paths([root])))
    print(f"\n(b) one process, check_paths over {n_results} specs ({lines:,} lines)")
    print(f"    import + grammar                     {t_import * 1000:7.1f} ms (not included below)")
    print(f"    check_paths                          {total * 1000:7.1f} ms wall, {cpu * 1000:.1f} ms CPU")
    print(kept, end="")
    print(f"    throughput                           {n_results / total:9,.0f} specs/s  "
          f"{lines / total:11,.0f} lines/s")
    print(f"    findings: {errors} errors, {warnings} warnings (codes: {', '.join(codes) or 'none'})")
    if breakdown:
        print(breakdown)
    print(f"    goal < {FOLDER_GOAL_S:.0f} s: {'met' if total < FOLDER_GOAL_S else 'MISSED'}")
    print(f"    machine calibration: a 3M-iteration Python loop takes {_calibrate() * 1000:.0f} ms CPU here")
    if prof:
        out = io.StringIO()
        pstats.Stats(prof, stream=out).sort_stats("cumulative").print_stats(25)
        print(out.getvalue())
    return {"folder_s": total, "folder_cpu_s": cpu, "specs_per_s": n_results / total, "lines_per_s": lines / total}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", choices=("cold", "folder"))
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--specs", type=int, default=1000)
    p.add_argument("--importtime", action="store_true")
    p.add_argument("--profile", action="store_true")
    args = p.parse_args(argv)
    if args.only in (None, "cold"):
        bench_cold(args.runs)
        if args.importtime:
            importtime_breakdown()
    if args.only in (None, "folder"):
        bench_folder(args.specs, args.profile)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
