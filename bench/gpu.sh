#!/usr/bin/env bash
# The GPU benchmark of issue 16: build builtin:bios-100m (~100M parameters, Llama, bf16) and run the
# example privacy spec on it end to end in bf16; prints tokens/s per stage, the build's MFU, peak
# memory and evaluation throughput. Under 8 minutes on one H100/H200 is the target.
#
#   bench/gpu.sh               # needs a CUDA device
#   bench/gpu.sh --dry-run     # CPU, shrunk recipe: checks the script, measures nothing about a GPU
#
# PYTHON picks the interpreter (default: .venv/bin/python, else python3); UNLEARNSPEC_PEAK_TFLOPS sets
# the device's peak dense bf16 TFLOP/s when bench/bench_gpu.py's table does not know the device; the
# model cache defaults to a fresh folder so that the build is measured (UNLEARNSPEC_CACHE to reuse one).
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ -z "${PYTHON:-}" ]]; then
  if [[ -x .venv/bin/python ]]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
if [[ "${1:-}" != "--dry-run" ]]; then
  "$PYTHON" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' \
    || { echo "bench/gpu.sh: no CUDA device (use --dry-run to check the script on CPU)" >&2; exit 2; }
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
fi
start=$(date +%s)
"$PYTHON" bench/bench_gpu.py "$@"
echo "bench/gpu.sh: $(( $(date +%s) - start )) s in all"
