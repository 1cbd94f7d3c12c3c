#!/usr/bin/env bash
# One call on a lent GPU machine: build lawfit there (sm_90 only, to save time), run the CUDA
# tests (CuPy's only where it is installed there: the machine has no network), and benchmark
# the kernels; outputs go to $OUT.  Usage: bash bench/gpu_session.sh
set -uo pipefail
export PYTHONUNBUFFERED=1
out=${OUT:-/tmp/out}
mkdir -p "$out"
nvidia-smi --query-gpu=name,memory.total,clocks.sm,clocks.max.sm --format=csv | tee "$out/gpu.txt"
python3 -m pip install --no-build-isolation --no-deps -q . \
  -Ccmake.define.CMAKE_CUDA_ARCHITECTURES=90 -Cbuild-dir=/tmp/build 2>&1 | tail -3
python3 -c "import lawfit; print(lawfit.backends())"
python3 -m pytest tests/test_cuda.py tests/test_compiled_vs_reference.py tests/test_fp32.py \
  tests/test_device.py tests/test_grid.py tests/test_api.py -q --tb=short \
  -p no:cacheprovider 2>&1 | tee "$out/test_cuda.log" | tail -40
python3 bench/bench_gpu.py "$@" --out "$out/RESULTS.md" 2>&1 | tee "$out/bench_gpu.log" | tail -22
