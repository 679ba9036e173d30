// SAE training throughput on synthetic activations: forward + backward + Adam per step, in tokens/s
// and as a fraction of the GEMM roofline 10·d·F FLOPs/token at the sgemm rate measured in this run
// at the step's own shape ([N, d] x [d, F]).
#include <benchmark/benchmark.h>

#include <cstdio>
#include <random>

#include "bench_util.hpp"
#include <fmt/format.h>

#include "saelab/sae.hpp"

using namespace saelab;

namespace {

// One step on `be`: forward + analytic backward + Adam; the roofline is the GEMM rate of the same
// backend at the step's shape (cuBLAS with SAELAB_CUDA_GEMM's compute type on a GPU). With the
// sparse decoder (topk_sparse, batchtopk_sparse, matryoshka_batchtopk_sparse) the step does fewer
// FLOPs than 10·d·F per token: its roofline_frac can pass 1, and the ratio to the dense topk line is
// the figure to read. Matryoshka adds one sparse decode and backward per prefix group.
void train_step(benchmark::State& st, Backend* backend, SaeArchitecture arch, bool sparse, int d, int F, int N) {
  Backend& be = *backend;
  SaeConfig c;
  c.architecture = arch;
  c.d_in = d;
  c.d_sae = F;
  c.k = 32;
  c.sparse_decode = sparse;
  if (arch == SaeArchitecture::Hierarchical) {  // 4 children a parent, as the experiment's
    c.children_per_parent = 4;
    c.n_parents = F / 5;
    c.d_sae = F = c.n_parents * 5;
    c.gate_ste_width = 0.1f;
  }
  if (arch == SaeArchitecture::MatryoshkaBatchTopK) c.matryoshka_widths = {F / 16, F / 4, F};  // three prefixes
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
    be.synchronize();
  }
  const double tokens = static_cast<double>(st.iterations()) * N;
  const double gemm = bench::gemm_gflops(be, N, F, d);
  st.counters["tokens/s"] = benchmark::Counter(tokens, benchmark::Counter::kIsRate);
  st.counters["GFLOP/s"] = benchmark::Counter(tokens * 10.0 * d * F / 1e9, benchmark::Counter::kIsRate);
  st.counters["gemm_GFLOP/s"] = gemm;
  st.counters["roofline_frac"] = benchmark::Counter(tokens * 10.0 * d * F / 1e9 / gemm, benchmark::Counter::kIsRate);
}

struct Shape {
  int d, F, N;
};

}  // namespace

int main(int argc, char** argv) {
  for (Backend* be : available_backends()) {
    const bool gpu = be->device() == Device::CUDA;
    std::vector<Shape> standard = {{128, 1024, 4096}, {512, 4096, 4096}, {2304, 16384, 1024}};
    std::vector<Shape> topk = {{128, 1024, 4096}, {512, 4096, 4096}};
    std::vector<Shape> hierarchical = {{128, 1024, 4096}, {512, 4096, 4096}};  // F rounded down to 5·P
    if (gpu) {  // the widths users train on a GPU (gemma-2-2b's d = 2304)
      standard.push_back({2304, 16384, 4096});
      standard.push_back({2304, 65536, 4096});
      topk.push_back({2304, 16384, 4096});
      hierarchical.push_back({2304, 16384, 4096});
    }
    struct Family {
      SaeArchitecture arch;
      bool sparse;
      const std::vector<Shape>& shapes;
    };
    // The thresholded SAEs as the trainer runs them: the batch top-k ones with the sparse decoder
    // (decode = "auto" at 8·k ≤ F), jumprelu dense (its threshold gradient needs ∂L/∂f where f = 0).
    for (const Family& fam : {Family{SaeArchitecture::Standard, false, standard}, Family{SaeArchitecture::TopK, false, topk},
                              Family{SaeArchitecture::TopK, true, topk},
                              Family{SaeArchitecture::Hierarchical, false, hierarchical},
                              Family{SaeArchitecture::BatchTopK, true, topk},
                              Family{SaeArchitecture::JumpReLU, false, topk},
                              Family{SaeArchitecture::MatryoshkaBatchTopK, true, topk}})
      for (const Shape& sh : fam.shapes)
        benchmark::RegisterBenchmark(fmt::format("train_step/{}/{}{}/d{}/F{}/N{}", be->name(),
                                                 sae_architecture_name(fam.arch), fam.sparse ? "_sparse" : "", sh.d,
                                                 sh.F, sh.N).c_str(),
                                     train_step, be, fam.arch, fam.sparse, sh.d, sh.F, sh.N)
            ->Unit(benchmark::kMillisecond)
            ->UseRealTime()
            ->MinTime(gpu ? 1.0 : 3.0);
  }
  return bench::run_main(argc, argv);
}
