#include "bench_util.hpp"

#include <benchmark/benchmark.h>
#include <cblas.h>
#include <unistd.h>

#include <cstdio>

#include <chrono>
#include <cstdlib>
#include <vector>

namespace saelab::bench {

double sgemm_gflops(int M, int N, int K) {
  std::vector<float> a(static_cast<size_t>(M) * K, 0.5f), b(static_cast<size_t>(K) * N, 0.25f),
      c(static_cast<size_t>(M) * N);
  auto run = [&] {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, N, K, 1.f, a.data(), K, b.data(), N, 0.f, c.data(), N);
  };
  run();
  int reps = 0;
  const auto t0 = std::chrono::steady_clock::now();
  double s = 0;
  do {
    run();
    ++reps;
    s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  } while (s < 0.5);
  return 2.0 * M * N * K * reps / s / 1e9;
}

double gemm_gflops(Backend& be, int M, int N, int K) {
  const std::vector<float> a(static_cast<size_t>(M) * K, 0.5f), b(static_cast<size_t>(K) * N, 0.25f);
  Tensor A = to_device(be, {M, K}, a.data()), B = to_device(be, {K, N}, b.data());
  Tensor C({M, N}, DType::F32, be.device());
  auto run = [&] { be.gemm(C, A, false, B, false, 1.f, 0.f); };
  run();
  be.synchronize();
  int reps = 0;
  const auto t0 = std::chrono::steady_clock::now();
  double s = 0;
  do {
    for (int i = 0; i < 10; ++i) run();
    be.synchronize();
    reps += 10;
    s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  } while (s < 0.5);
  return 2.0 * M * N * K * reps / s / 1e9;
}

std::string reference_python() {
  if (const char* e = std::getenv("SAELAB_REFERENCE_PYTHON"); e && *e) return e;
  const std::string p = std::string(SAELAB_SOURCE_DIR) + "/.venv-reference/bin/python";
  return ::access(p.c_str(), X_OK) == 0 ? p : std::string();
}

std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

std::string shared_root() {
  if (const char* e = std::getenv("SAELAB_SHARED"); e && *e) return e;
  return SAELAB_SHARED_DEFAULT;
}

int run_main(int argc, char** argv) {
  std::printf("sgemm reference (this run): %.1f GFLOP/s at 1024x1024x1024\n", sgemm_gflops(1024, 1024, 1024));
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

}  // namespace saelab::bench
