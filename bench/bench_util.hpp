#pragma once
#include <string>

#include "saelab/backend.hpp"

namespace saelab::bench {
// Measured sgemm rate (GFLOP/s) for C[M,N] = A[M,K] B[K,N] on this machine, now.
double sgemm_gflops(int M, int N, int K);
// The same through `be` (cuBLAS on a GPU), synchronised.
double gemm_gflops(Backend& be, int M, int N, int K);
std::string shared_root();
// The reference venv's interpreter for the PyTorch / transformers side of a comparison:
// $SAELAB_REFERENCE_PYTHON, else .venv-reference/bin/python in the source tree; empty if neither.
std::string reference_python();
// s in single quotes for /bin/sh.
std::string shell_quote(const std::string& s);
// Prints the sgemm rate of this run, then runs the registered benchmarks.
int run_main(int argc, char** argv);
}  // namespace saelab::bench
