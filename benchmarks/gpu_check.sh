#!/usr/bin/env bash
# One call on a lent GPU machine (device tool), within 8 minutes on a fresh H100/H200: build the kernel, run its
# first-use self-check, the GPU tests, the share of rows sent to the exact fallback per kind of data (with the
# certified and exact routes timed) and the benchmark.
# Logs and JSON land in $OUT (default build/gpu); the benchmark also writes benchmarks/results/nearest_codeword_cuda.json.
# Usage: bash benchmarks/gpu_check.sh [quick]   (quick: no benchmarks)
set -uo pipefail
export PYTHONUNBUFFERED=1 TOKENIZERS_ZOO_CUDA=1 TOKENIZERS_ZOO_CUDA_ARCHS=${TOKENIZERS_ZOO_CUDA_ARCHS:-90}
export TORCH_EXTENSIONS_DIR=${TORCH_EXTENSIONS_DIR:-$PWD/build/torch_extensions}
OUT=${OUT:-build/gpu}
BUDGET=${BUDGET:-470}  # seconds for the whole script; each step gets what is left (minus a reserve for the next)
mkdir -p "$OUT"
start=$(date +%s)
left() { echo $(( BUDGET - ($(date +%s) - start) - ${1:-0} )); }
step() {  # step NAME RESERVE COMMAND...: run with the time left minus RESERVE seconds, log to $OUT/NAME.log
  local name=$1 reserve=$2; shift 2
  local limit; limit=$(left "$reserve")
  if [ "$limit" -lt 20 ]; then echo "$name: skipped (only ${limit} s left)" | tee "$OUT/$name.log"; return 1; fi
  local t0; t0=$(date +%s)
  timeout "$limit" "$@" > "$OUT/$name.log" 2>&1
  local rc=$?
  echo "$name: rc=$rc in $(( $(date +%s) - t0 )) s (limit ${limit} s)" | tee -a "$OUT/summary.txt"
  return $rc
}
: > "$OUT/summary.txt"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,memory.total --format=csv | tee "$OUT/gpu.txt"
python3 -c "import torch, sys; print('python', sys.version.split()[0], 'torch', torch.__version__)" | tee -a "$OUT/gpu.txt"

step build 300 python3 -m tokenizers_zoo build-cuda; tail -3 "$OUT/build.log"
step self_check 280 python3 -c "
from tokenizers_zoo.ops import cuda
cuda.self_check(cuda.CertifiedKernel(cuda.build_extension()))
print('self-check OK:', len(cuda.SELF_CHECK_CASES), 'adversarial cases')"
tail -3 "$OUT/self_check.log"
step tests 200 python3 -m pytest tests/test_cuda_kernel.py -q -rf --durations=10; tail -25 "$OUT/tests.log"
if [ "${1:-}" != "quick" ]; then
  step fallback 150 python3 benchmarks/certified_fallback.py --device cuda --json "$OUT/fallback.json"
  tail -25 "$OUT/fallback.log"
  step bench 5 python3 benchmarks/nearest_codeword.py --device cuda --repeats 5 --json "$OUT/bench.json"
  tail -60 "$OUT/bench.log"
  cp benchmarks/results/nearest_codeword_cuda.json "$OUT/" 2>/dev/null
fi
echo "total $(( $(date +%s) - start )) s" | tee -a "$OUT/summary.txt"
