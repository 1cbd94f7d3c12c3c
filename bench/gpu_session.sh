#!/usr/bin/env bash
# One call on a lent GPU machine: build lawfit there (sm_90 only, to save time), run the CUDA
# tests (CuPy's only where it is installed there: the machine has no network), and benchmark
# the kernels; then the default build's kernels beside them.  Outputs go to $OUT.
# Usage: bash bench/gpu_session.sh
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
# Last (what is above is saved if the time runs out here): the default build's kernels, sm_90
# machine code from compute_75's PTX (CMakeLists.txt; issue 21), against the sm_90-only build
# above, which compiles compute_90's PTX: the same benchmark's kernel rows on both.
python3 -m pip install --no-build-isolation --no-deps -q . --target /tmp/lawfit-default \
  -Cbuild-dir=/tmp/build-default 2>&1 | tail -3
PYTHONPATH=/tmp/lawfit-default python3 bench/bench_gpu.py --sizes 1000000 10000000 \
  --cpu-max 0 --boot 100 100 --out "$out/RESULTS-default-build.md" 2>&1 \
  | tee "$out/bench_gpu_default_build.log" | tail -12
