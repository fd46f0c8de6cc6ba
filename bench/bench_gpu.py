"""The GPU benchmark behind ``bench/gpu.sh``: build ``builtin:bios-100m``, run the example spec on it in bf16.

What it prints (issue 16, item 5):

* **build** — the recipe's training: tokens/s (the non-padding tokens of the training items, times the
  epochs, over the Trainer's wall time), achieved FLOP/s and **MFU** (achieved over the device's peak),
  peak GPU memory;
* **the example spec end to end** (``specs/erase-jane-doe.unlearn`` with ``model "builtin:bios-100m"``
  and ``release api precision bf16``, so the plan trains in bf16): wall time and tokens/s of each stage
  of the run (reference = exact retraining, unlearn, evaluate, attack), counted as the tokens every
  forward pass of the model receives (a generated token is one forward token), and the peak memory;
* **evaluation throughput**: tokens/s and items/s of the evaluate stage, beside a per-example
  evaluation of the same likelihood pass (batch size 1) on the unlearned model.

FLOPs are the usual estimate (Kaplan et al. 2020, arXiv:2001.08361; PaLM's MFU, Chowdhery et al. 2022,
arXiv:2204.02311): ``6·N`` per trained token, N the parameters of the matrix products (the input
embedding is a lookup, not a product, and is left out), plus ``12·L·d·s`` for attention at mean
sequence length ``s``. The device's peak dense bf16 FLOP/s comes from ``PEAK_BF16`` by device name or
from ``UNLEARNSPEC_PEAK_TFLOPS``.

``--dry-run`` runs the same code on CPU with the recipe shrunk (a 2-layer model, 200 extra people, two
epochs, fp32): it checks the script, not the GPU. Numbers from a dry run say nothing about a GPU.

    bench/gpu.sh                 # on a CUDA machine: about 5-8 minutes on one H100/H200
    bench/gpu.sh --dry-run       # anywhere: a minute or two on CPU
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import functools
import json
import os
import re
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "specs" / "erase-jane-doe.unlearn"
MODEL = "builtin:bios-100m"

#: Dense bf16 tensor-core peak FLOP/s by device name (substring, first match), from NVIDIA's data sheets
#: (the figures without sparsity). ``UNLEARNSPEC_PEAK_TFLOPS`` overrides it.
PEAK_BF16: list[tuple[str, float]] = [
    ("H200", 989e12), ("H100 PCIe", 756e12), ("H100", 989e12), ("A100", 312e12), ("L40S", 362e12),
    ("L4", 121e12), ("A10", 125e12),
]


def peak_flops(device_name: str) -> float | None:
    env = os.environ.get("UNLEARNSPEC_PEAK_TFLOPS")
    if env:
        return float(env) * 1e12
    return next((peak for key, peak in PEAK_BF16 if key in device_name), None)


def shrunk(recipe: dict[str, Any]) -> dict[str, Any]:
    """The dry-run recipe: the same code path, sized for a CPU."""
    r = copy.deepcopy(recipe)
    r["corpus"]["extra_people"] = 200
    r["tokenizer"]["vocab_size"] = 1024
    r["model"].update(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                      intermediate_size=160)
    r["train"].update(epochs=2, batch_size=32, device="cpu", precision="fp32", threads=2)
    return r


def matmul_params(model_cfg: dict[str, Any], vocab: int) -> tuple[int, int]:
    """(parameters in matrix products per token, attention FLOPs per token per unit of sequence length)."""
    d, layers = int(model_cfg["hidden_size"]), int(model_cfg["num_hidden_layers"])
    kv = d * int(model_cfg["num_key_value_heads"]) // int(model_cfg["num_attention_heads"])
    per_layer = 2 * d * d + 2 * d * kv + 3 * d * int(model_cfg["intermediate_size"])
    return layers * per_layer + vocab * d, 12 * layers * d


class _Clock:
    """Wall time of a region; on CUDA, synchronized at both ends so queued kernels are counted."""

    def __init__(self) -> None:
        self.t = 0.0

    def sync(self) -> None:
        import torch

        if torch.cuda.is_available():
            torch.cuda.synchronize()

    @contextlib.contextmanager
    def region(self) -> Iterator[None]:
        self.sync()
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.sync()
            self.t += time.perf_counter() - t0


def _train_meter() -> Any:
    from transformers import TrainerCallback

    class TrainMeter(TrainerCallback):  # type: ignore[misc]
        """Times the Trainer's training loop and counts the tokens it trains on."""

        def __init__(self) -> None:
            self.tokens_per_epoch = 0
            self.examples = 0
            self.wall = 0.0
            self.t0 = 0.0
            self.epochs = 0.0
            self.steps = 0

        def on_train_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            loader = kw.get("train_dataloader")
            rows = getattr(getattr(loader, "dataset", None), "rows", [])
            self.tokens_per_epoch = sum(len(r["input_ids"]) for r in rows)
            self.examples = len(rows)
            _Clock().sync()
            self.t0 = time.perf_counter()

        def on_train_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            _Clock().sync()
            self.wall = time.perf_counter() - self.t0
            self.epochs = float(args.num_train_epochs)
            self.steps = int(state.global_step)

    return TrainMeter()


class _StageTokens:
    """Counts the tokens each forward pass of a causal LM receives, by the run stage that is running."""

    def __init__(self) -> None:
        self.stage = "setup"
        self.tokens: dict[str, int] = defaultdict(int)
        self.wall: dict[str, float] = defaultdict(float)
        self.t0 = time.perf_counter()

    def enter(self, stage: str) -> None:
        _Clock().sync()
        now = time.perf_counter()
        self.wall[self.stage] += now - self.t0
        self.stage, self.t0 = stage, now

    def install(self) -> None:
        import transformers

        from unlearnspec.runtime import pipeline

        meter = self
        for cls in (transformers.LlamaForCausalLM, transformers.GPT2LMHeadModel):
            original = cls.forward

            # functools.wraps keeps the signature visible: the Trainer keeps only the columns forward takes
            @functools.wraps(original)
            def forward(model: Any, *a: Any, _original: Any = original, **kw: Any) -> Any:
                ids = kw.get("input_ids", a[0] if a else None)
                if ids is not None:
                    meter.tokens[meter.stage] += int(ids.numel())
                elif kw.get("inputs_embeds") is not None:
                    meter.tokens[meter.stage] += int(kw["inputs_embeds"].shape[0] * kw["inputs_embeds"].shape[1])
                return _original(model, *a, **kw)

            cls.forward = forward  # type: ignore[method-assign]
        start, finish = pipeline.ObjectiveRun._start, pipeline.ObjectiveRun._finish

        def _start(run: Any, stage: str) -> None:
            meter.enter(stage)
            start(run, stage)

        def _finish(run: Any, stage: str, **detail: Any) -> None:
            finish(run, stage, **detail)
            meter.enter("between stages")

        pipeline.ObjectiveRun._start = _start  # type: ignore[method-assign]
        pipeline.ObjectiveRun._finish = _finish  # type: ignore[method-assign]


def _gib(n: float) -> str:
    return f"{n / 2**30:.2f} GiB"


def per_example_eval(model_dir: Path, n: int) -> tuple[float, float]:
    """(items/s batched at the runtime's default, items/s one at a time) of a likelihood pass on ``n`` items."""
    import torch

    from unlearnspec.builtin.corpus import build_corpus
    from unlearnspec.runtime.evaluation.likelihood import score_records
    from unlearnspec.runtime.loading import device_for_run, load_model

    model, tok = load_model(str(model_dir), device=device_for_run(),
                            dtype=torch.bfloat16 if torch.cuda.is_available() else None)
    records = build_corpus().retain[:n]
    score_records(model, tok, records[:8], batch_size=8)  # warm-up
    out = []
    for bs in (32, 1):
        clock = _Clock()
        with clock.region():
            score_records(model, tok, records, batch_size=bs)
        out.append(len(records) / clock.t)
    return out[0], out[1]


def _print_build(build: dict[str, Any], meter: Any, build_wall: float, tokens: float, mean_len: float,
                 achieved: float, peak: float | None, cuda: bool) -> None:
    print(f"\n[build] {build_wall:.0f} s in all, {meter.wall:.0f} s training: {meter.steps} steps, "
          f"{meter.examples} examples x {meter.epochs:g} epochs = {tokens:.3g} tokens (mean length {mean_len:.0f})")
    print(f"[build] {build['tokens_per_s']:.4g} tokens/s, {achieved / 1e12:.3g} TFLOP/s achieved"
          + (f", MFU {100 * achieved / peak:.1f}%" if peak else ", MFU: peak unknown")
          + (f", peak memory {_gib(build['peak_memory_bytes'])}" if cuda else ""))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dry-run", action="store_true", help="CPU, shrunk recipe: check the script, not the GPU")
    ap.add_argument("--out", type=Path, default=None, help="where to keep the run (default: a temporary folder)")
    ap.add_argument("--skip-spec", action="store_true", help="build only")
    args = ap.parse_args()

    import torch

    from unlearnspec.builtin.recipe import RECIPES, recipe_for, recipe_hash
    from unlearnspec.cli import main as cli_main
    from unlearnspec.runtime.builtin_model import ensure_builtin

    cuda = torch.cuda.is_available()
    if not cuda and not args.dry_run:
        print("no CUDA device: run `bench/gpu.sh --dry-run` to check the script on CPU", file=sys.stderr)
        return 2
    recipe = recipe_for(MODEL)
    if args.dry_run:
        recipe = shrunk(recipe)
        RECIPES[MODEL] = recipe  # the spec's `builtin:bios-100m` now names the shrunk recipe, in this process only
    device = torch.cuda.get_device_name(0) if cuda else "cpu"
    peak = peak_flops(device) if cuda else None
    work = Path(args.out or tempfile.mkdtemp(prefix="unlearnspec-gpu-"))
    work.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("UNLEARNSPEC_CACHE", str(work / "cache"))  # a fresh cache: the build is measured
    print(f"device: {device}; peak bf16: {peak / 1e12:.0f} TFLOP/s" if peak else f"device: {device}; peak: unknown "
          "(set UNLEARNSPEC_PEAK_TFLOPS)")
    print(f"recipe {recipe['name']} {recipe_hash(recipe)[:12]}{' (dry run: shrunk)' if args.dry_run else ''}")
    summary: dict[str, Any] = {"device": device, "dry_run": args.dry_run, "peak_flops": peak}

    # -- 1. build ------------------------------------------------------------------------------------
    meter = _train_meter()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    model_dir = ensure_builtin(recipe=recipe, callbacks=[meter])
    build_wall = time.perf_counter() - t0
    cfg = json.loads((model_dir / "config.json").read_text())
    n_mm, attn = matmul_params(recipe["model"], int(cfg["vocab_size"]))
    tokens = meter.tokens_per_epoch * meter.epochs
    mean_len = meter.tokens_per_epoch / max(meter.examples, 1)
    flops = tokens * (6 * n_mm + attn * mean_len)
    achieved = flops / meter.wall if meter.wall else 0.0
    build = {"wall_s": build_wall, "train_s": meter.wall, "steps": meter.steps, "examples": meter.examples,
             "tokens": tokens, "tokens_per_s": tokens / meter.wall if meter.wall else None,
             "achieved_tflops": achieved / 1e12, "mfu": achieved / peak if peak else None,
             "peak_memory_bytes": torch.cuda.max_memory_allocated() if cuda else None,
             "matmul_parameters": n_mm}
    summary["build"] = build
    if not meter.wall:
        print(f"\n[build] found in the cache ({model_dir}): not measured; set UNLEARNSPEC_CACHE to a fresh folder")
    else:
        _print_build(build, meter, build_wall, tokens, mean_len, achieved, peak, cuda)

    # -- 2. the example spec, end to end, in bf16 -------------------------------------------------------
    if not args.skip_spec:
        text = SPEC.read_text(encoding="utf-8")
        text = re.sub(r'(?m)^(\s*)model\s+"[^"]*"', rf'\1model   "{MODEL}"', text, count=1)
        text = re.sub(r"(?m)^(\s*)release\s+api\s+precision\s+\w+", r"\1release api precision bf16", text, count=1)
        spec = work / "erase-jane-doe-gpu.unlearn"
        spec.write_text(text, encoding="utf-8")
        data = work / "data"
        if not data.exists():
            data.symlink_to(SPEC.parent / "data")
        stages = _StageTokens()
        stages.install()
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        run_dir = work / "run"
        n = 1
        while run_dir.exists():  # runs never overwrite: a rerun with the same --out gets the next folder
            n += 1
            run_dir = work / f"run-{n}"
        t0 = time.perf_counter()
        code = cli_main(["run", str(spec), "--out", str(run_dir), "--quiet"])
        stages.enter("done")
        wall = time.perf_counter() - t0
        report = json.loads((run_dir / "report.json").read_text()) if (run_dir / "report.json").exists() else {}
        summary["spec"] = {"exit": code, "wall_s": wall, "overall": report.get("overall"),
                           "peak_memory_bytes": torch.cuda.max_memory_allocated() if cuda else None,
                           "stages": {s: {"wall_s": stages.wall[s], "tokens": stages.tokens.get(s, 0),
                                          "tokens_per_s": stages.tokens.get(s, 0) / stages.wall[s]
                                          if stages.wall[s] else None} for s in stages.wall}}
        print(f"\n[spec] {spec.name}: exit {code}, overall {report.get('overall')}, {wall:.0f} s"
              + (f", peak memory {_gib(summary['spec']['peak_memory_bytes'])}" if cuda else ""))
        print("[spec] stage | wall s | forward tokens | tokens/s")
        for s, row in summary["spec"]["stages"].items():
            tps = row["tokens_per_s"]
            print(f"[spec] {s} | {row['wall_s']:.1f} | {row['tokens']} | {tps:.4g}" if tps else
                  f"[spec] {s} | {row['wall_s']:.1f} | {row['tokens']} | -")

    # -- 3. evaluation throughput: batched against one example at a time ---------------------------------
    batched, single = per_example_eval(model_dir, 64 if args.dry_run else 256)
    summary["eval"] = {"batched_items_per_s": batched, "per_example_items_per_s": single,
                       "ratio": batched / single}
    print(f"\n[eval] likelihood pass: {batched:.1f} items/s batched (32) vs {single:.1f} items/s one at a time: "
          f"{batched / single:.1f}x")
    (work / "gpu-bench.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"\nsummary: {work / 'gpu-bench.json'}")
    spec_exit = summary.get("spec", {}).get("exit", 0)
    return 0 if spec_exit in (0, 1, 3) else 1  # 1 (a claim failed) and 3 (incomplete evidence) are results


if __name__ == "__main__":
    raise SystemExit(main())
