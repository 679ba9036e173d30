// SAE training throughput on synthetic activations: forward + backward + Adam per step, in tokens/s
// and as a fraction of the GEMM roofline 10·d·F FLOPs/token at the sgemm rate measured in this run
// at the step's own shape ([N, d] x [d, F]).
#include <benchmark/benchmark.h>

#include <cstdio>
#include <random>

#include "bench_util.hpp"
#include "saelab/sae.hpp"

using namespace saelab;

namespace {

void BM_TrainStep(benchmark::State& st, SaeArchitecture arch) {
  const int d = static_cast<int>(st.range(0)), F = static_cast<int>(st.range(1)), N = static_cast<int>(st.range(2));
  Backend& be = cpu_backend();
  SaeConfig c;
  c.architecture = arch;
  c.d_in = d;
  c.d_sae = F;
  c.k = 32;
  Sae sae(c, be);
  sae.init(1, 0.1f, {});
  SaeParams grads(sae.config(), be.device()), m(sae.config(), be.device()), v(sae.config(), be.device());
  SaeWorkspace ws(sae.config(), N, be.device());
  std::mt19937_64 rng(2);
  std::normal_distribution<float> nd;
  std::vector<float> x(static_cast<size_t>(N) * d);
  for (auto& e : x) e = nd(rng);
  Tensor X = to_device(be, {N, d}, x.data());
  SaeLossTerms terms;
  terms.l1_coefficient = 1.f;
  int64_t t = 0;
  for (auto _ : st) {
    sae.forward_backward(X, terms, grads, ws);
    be.adam(sae.params().flat, grads.flat, m.flat, v.flat, 1e-4f, 0.9f, 0.999f, 1e-8f, ++t);
  }
  const double tokens = static_cast<double>(st.iterations()) * N;
  const double sgemm = bench::sgemm_gflops(N, F, d);
  st.counters["tokens/s"] = benchmark::Counter(tokens, benchmark::Counter::kIsRate);
  st.counters["GFLOP/s"] = benchmark::Counter(tokens * 10.0 * d * F / 1e9, benchmark::Counter::kIsRate);
  st.counters["sgemm_GFLOP/s"] = sgemm;
  st.counters["roofline_frac"] = benchmark::Counter(tokens * 10.0 * d * F / 1e9 / sgemm, benchmark::Counter::kIsRate);
}

}  // namespace

BENCHMARK_CAPTURE(BM_TrainStep, standard, SaeArchitecture::Standard)
    ->Args({128, 1024, 4096})->Args({512, 4096, 4096})->Args({2304, 16384, 1024})
    ->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(3.0);
BENCHMARK_CAPTURE(BM_TrainStep, topk, SaeArchitecture::TopK)
    ->Args({128, 1024, 4096})->Args({512, 4096, 4096})
    ->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(3.0);

int main(int argc, char** argv) { return bench::run_main(argc, argv); }
