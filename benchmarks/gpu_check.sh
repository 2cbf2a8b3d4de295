#!/usr/bin/env bash
# One call on a lent GPU machine (device tool): build the kernel, run the GPU tests and the benchmark.
# Logs and JSON land in $OUT (default build/gpu). Usage: bash benchmarks/gpu_check.sh [quick]
set -uo pipefail
export PYTHONUNBUFFERED=1 TOKENIZERS_ZOO_CUDA=1 TOKENIZERS_ZOO_CUDA_ARCHS=${TOKENIZERS_ZOO_CUDA_ARCHS:-90}
export TORCH_EXTENSIONS_DIR=${TORCH_EXTENSIONS_DIR:-$PWD/build/torch_extensions}
OUT=${OUT:-build/gpu}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,memory.total --format=csv | tee "$OUT/gpu.txt"
python3 -c "import torch, sys; print('python', sys.version.split()[0], 'torch', torch.__version__)" | tee -a "$OUT/gpu.txt"
start=$(date +%s)
timeout 400 python3 -m tokenizers_zoo build-cuda > "$OUT/build.log" 2>&1; echo "build rc=$? in $(( $(date +%s) - start )) s"
tail -3 "$OUT/build.log"
timeout 120 python3 -c "from tokenizers_zoo.ops import cuda; cuda.self_check(cuda.build_extension()); print('self-check OK')" 2>&1 | tail -3
timeout 400 python3 -m pytest tests/test_cuda_kernel.py -q -rf 2>&1 | tee "$OUT/tests.log" | tail -25
if [ "${1:-}" != "quick" ]; then
  timeout 600 python3 benchmarks/nearest_codeword.py --device cuda --json "$OUT/bench.json" 2>&1 | tee "$OUT/bench.log" | tail -60
fi
