#!/usr/bin/env bash
# Builds the CUDA backend (-DSAELAB_CUDA=ON, nvcc from /usr/local/cuda; with MPI and NCCL when
# installed) into build-cuda/ with the backend-equivalence harness, the data-parallel tests and the
# training benchmark, then runs both test programs: on a machine with a GPU every op is compared with
# the CPU reference and a two-process CUDA job with a one-process one; without a GPU those cases skip.
# Extra arguments go to cmake (e.g. -DCMAKE_CUDA_ARCHITECTURES=90).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
nvcc="${CUDACXX:-/usr/local/cuda/bin/nvcc}"
[ -x "$nvcc" ] || { echo "build_cuda.sh: no nvcc at $nvcc (install the CUDA toolkit or set CUDACXX)" >&2; exit 2; }
cmake -S . -B build-cuda -DCMAKE_BUILD_TYPE=Release -DSAELAB_CUDA=ON -DSAELAB_MPI=AUTO -DSAELAB_BUILD_TESTS=ON -DSAELAB_BUILD_BENCH=ON \
  -DCMAKE_CUDA_COMPILER="$nvcc" "$@" >/dev/null
cmake --build build-cuda -j "$(nproc)" --target saelab test_backend_equivalence test_data_parallel bench_train
build-cuda/tests/test_backend_equivalence
build-cuda/tests/test_data_parallel
