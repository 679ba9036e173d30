// SAE training throughput on synthetic activations: forward + backward + Adam per step, in tokens/s
// and as a fraction of the GEMM roofline 10·d·F FLOPs/token at the sgemm rate measured in this run
// at the step's own shape ([N, d] x [d, F]).
//
// Sparsity: x is Gaussian and the decoder rows have norm 0.1, so at init about half the latents of a
// standard SAE fire. Lines ending in /l0_L set b_enc_i to minus the (1 − L/F) quantile of latent i's
// pre-activation on the batch, so each latent fires on about L/F of the tokens, as a trained SAE does
// (scripts/reference/bench_torch_sae_step.py --l0 does the same): standard L0 ≈ L; the hierarchy's
// children fire only with their parent, so its L0 ≈ L·P/F + L²·P·m/F² (≈ 37 at L = 160, F = 4096).
// Topk's L0 is k = 32. The L0 counter is the mean of the timed steps' measured L0 (it drifts as
// Adam moves b_enc, except on the crossover lines, which run at lr = 0).
//
// After the Google Benchmark runs, saelab's sparse step side by side with PyTorch (CPU) for standard,
// hierarchical and topk at d = 512, F = 4096 and d = 576, F = 9216 (N = 4096): the step timed here as
// `warmup` untimed steps then the median of `reps`, and bench_torch_sae_step.py (autograd + Adam, the
// same shape, L and thread count, timed the same way) run through the reference venv's Python
// ($SAELAB_REFERENCE_PYTHON, else .venv-reference/bin/python in the source tree). It prints both
// rates, saelab/PyTorch, saelab's dense step at the same shape and L (timed the same way) with
// sparse/dense, and the sgemm rate at the step's shape, all measured in the same run.
// Options (before any Google Benchmark flag is fine too):
//   --compare-only  skip the Google Benchmark runs    --no-compare  skip the comparison
//   --threads=N (default: OpenMP's max)  --warmup=2  --reps=5
#include <benchmark/benchmark.h>
#include <cblas.h>
#include <omp.h>
#include <sys/wait.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>

#include "bench_util.hpp"
#include <fmt/format.h>

#include "saelab/sae.hpp"

using namespace saelab;

namespace {

// The per-latent firing rate target L of the /l0_L lines (see the header), per architecture.
constexpr double kStandardL0 = 64, kHierarchicalL0 = 160;

double l0_target(SaeArchitecture a) {
  if (a == SaeArchitecture::Standard) return kStandardL0;
  if (a == SaeArchitecture::Hierarchical) return kHierarchicalL0;
  return 0;  // the top-k family's L0 is k
}

// One SAE and its batch, ready to step: forward + analytic backward + Adam.
class TrainStep {
 public:
  // lr = 0 holds L0 at its target (the step's work does not depend on lr).
  TrainStep(Backend& be, SaeArchitecture arch, bool sparse, int d, int F, int N, double l0, float lr = 1e-4f)
      : be_(be),
        lr_(lr),
        sae_(config_for(arch, sparse, d, F), be),
        grads_(sae_.config(), be.device()),
        m_(sae_.config(), be.device()),
        v_(sae_.config(), be.device()),
        ws_(sae_.config(), N, be.device()) {
    sae_.init(1, 0.1f, {});
    std::mt19937_64 rng(2);
    std::normal_distribution<float> nd;
    std::vector<float> x(static_cast<size_t>(N) * d);
    for (auto& e : x) e = nd(rng);
    X_ = to_device(be, {N, d}, x.data());
    terms_.l1_coefficient = 1.f;
    if (l0 > 0) target_l0(l0);
  }
  // One step; returns its L0 (active latents per token).
  double run() {
    const SaeBatchStats st = sae_.forward_backward(X_, terms_, grads_, ws_);
    be_.adam(sae_.params().flat, grads_.flat, m_.flat, v_.flat, lr_, 0.9f, 0.999f, 1e-8f, ++t_);
    be_.synchronize();
    return st.l0 / static_cast<double>(st.n);
  }
  const SaeConfig& config() const { return sae_.config(); }

 private:
  static SaeConfig config_for(SaeArchitecture arch, bool sparse, int d, int F) {
    SaeConfig c;
    c.architecture = arch;
    c.d_in = d;
    c.d_sae = F;
    c.k = 32;
    c.sparse_decode = sparse;
    if (arch == SaeArchitecture::Hierarchical) {  // 4 children a parent, as the experiment's
      c.children_per_parent = 4;
      c.n_parents = F / 5;
      c.d_sae = c.n_parents * 5;
      c.gate_ste_width = 0.1f;
    }
    if (arch == SaeArchitecture::MatryoshkaBatchTopK) c.matryoshka_widths = {F / 16, F / 4, F};  // three prefixes
    return c;
  }
  // b_enc_i = −(the (1 − l0/F) quantile of column i of pre = x W_enc) (b_dec = 0 at init).
  void target_l0(double l0) {
    const int64_t N = X_.view().dim(0), F = sae_.config().d_sae;
    Tensor pre({N, F}, DType::F32, be_.device());
    be_.gemm(pre, X_, false, sae_.params().W_enc, false, 1.f, 0.f);
    const std::vector<float> p = to_host_f32(be_, pre);
    const int64_t q = std::clamp<int64_t>(std::llround((1.0 - l0 / static_cast<double>(F)) * (N - 1)), 0, N - 1);
    std::vector<float> col(static_cast<size_t>(N)), b(static_cast<size_t>(F));
    for (int64_t i = 0; i < F; ++i) {
      for (int64_t n = 0; n < N; ++n) col[n] = p[n * F + i];
      std::nth_element(col.begin(), col.begin() + q, col.end());
      b[i] = -col[q];
    }
    be_.upload(sae_.params().b_enc, b.data());
  }

  Backend& be_;
  float lr_;
  Sae sae_;
  SaeParams grads_, m_, v_;
  SaeWorkspace ws_;
  Tensor X_;
  SaeLossTerms terms_;
  int64_t t_ = 0;
};

// One step on `be`; the roofline is the GEMM rate of the same backend at the step's shape (cuBLAS
// with SAELAB_CUDA_GEMM's compute type on a GPU). The sparse step (the _sparse lines) does fewer
// FLOPs than 10·d·F per token: its roofline_frac can pass 1, and the ratio to the dense line of the
// same architecture is the figure to read. Matryoshka adds one sparse decode and backward per
// prefix group.
void train_step(benchmark::State& st, Backend* backend, SaeArchitecture arch, bool sparse, int d, int F, int N,
                double l0, float lr) {
  Backend& be = *backend;
  TrainStep step(be, arch, sparse, d, F, N, l0, lr);
  F = step.config().d_sae;
  double l0_sum = 0;
  for (auto _ : st) l0_sum += step.run();
  const double tokens = static_cast<double>(st.iterations()) * N;
  const double gemm = bench::gemm_gflops(be, N, F, d);
  st.counters["tokens/s"] = benchmark::Counter(tokens, benchmark::Counter::kIsRate);
  st.counters["GFLOP/s"] = benchmark::Counter(tokens * 10.0 * d * F / 1e9, benchmark::Counter::kIsRate);
  st.counters["gemm_GFLOP/s"] = gemm;
  st.counters["roofline_frac"] = benchmark::Counter(tokens * 10.0 * d * F / 1e9 / gemm, benchmark::Counter::kIsRate);
  st.counters["L0"] = st.iterations() > 0 ? l0_sum / static_cast<double>(st.iterations()) : 0;
}

struct Shape {
  int d, F, N;
};

void register_lines() {
  for (Backend* be : available_backends()) {
    const bool gpu = be->device() == Device::CUDA;
    std::vector<Shape> standard = {{128, 1024, 4096}, {512, 4096, 4096}, {2304, 16384, 1024}};
    std::vector<Shape> topk = {{128, 1024, 4096}, {512, 4096, 4096}};
    std::vector<Shape> hierarchical = {{128, 1024, 4096}, {512, 4096, 4096}};  // F rounded down to 5·P
    // The sparse step at a trained SAE's L0, at the shapes of the PyTorch comparison.
    std::vector<Shape> sparse = {{512, 4096, 4096}, {576, 9216, 4096}};
    if (gpu) {  // the widths users train on a GPU (gemma-2-2b's d = 2304)
      standard.push_back({2304, 16384, 4096});
      standard.push_back({2304, 65536, 4096});
      topk.push_back({2304, 16384, 4096});
      hierarchical.push_back({2304, 16384, 4096});
      sparse.push_back({2304, 16384, 4096});
    }
    struct Family {
      SaeArchitecture arch;
      bool sparse;
      const std::vector<Shape>& shapes;
      double l0;
    };
    // The thresholded SAEs as the trainer runs them: the batch top-k ones with the sparse step
    // (decode = "auto"), jumprelu dense (its threshold gradient needs ∂L/∂f where f = 0).
    const std::vector<Shape> topk_wide = {{576, 9216, 4096}};
    const Family families[] = {
        {SaeArchitecture::Standard, false, standard, 0},
        {SaeArchitecture::Standard, false, sparse, kStandardL0},
        {SaeArchitecture::Standard, true, sparse, kStandardL0},
        {SaeArchitecture::TopK, false, topk, 0},
        {SaeArchitecture::TopK, true, topk, 0},
        {SaeArchitecture::TopK, true, topk_wide, 0},
        {SaeArchitecture::Hierarchical, false, hierarchical, 0},
        {SaeArchitecture::Hierarchical, true, sparse, kHierarchicalL0},
        {SaeArchitecture::BatchTopK, true, topk, 0},
        {SaeArchitecture::JumpReLU, false, topk, 0},
        {SaeArchitecture::MatryoshkaBatchTopK, true, topk, 0},
    };
    auto add = [&](const std::string& name, SaeArchitecture arch, bool sparse, const Shape& sh, double l0, float lr) {
      benchmark::RegisterBenchmark(name.c_str(), train_step, be, arch, sparse, sh.d, sh.F, sh.N, l0, lr)
          ->Unit(benchmark::kMillisecond)
          ->UseRealTime()
          ->MinTime(gpu ? 1.0 : 3.0);
    };
    for (const Family& fam : families)
      for (const Shape& sh : fam.shapes)
        add(fmt::format("train_step/{}/{}{}/d{}/F{}/N{}{}", be->name(), sae_architecture_name(fam.arch),
                        fam.sparse ? "_sparse" : "", sh.d, sh.F, sh.N, fam.l0 > 0 ? fmt::format("/l0_{}", fam.l0) : ""),
            fam.arch, fam.sparse, sh, fam.l0, 1e-4f);
    // decode = "auto"'s crossover (Backend::sparse_step_max_l0_fraction()): standard's sparse step with L0 held at
    // a fraction of F (lr = 0), against the dense line of the same shape, whose work does not depend
    // on L0. The step is faster sparse up to the fraction where these lines meet the dense one.
    for (const Shape& sh : sparse)
      for (const double frac : {0.025, 0.05, 0.10, 0.15, 0.20, 0.25})
        add(fmt::format("crossover/{}/standard_sparse/d{}/F{}/N{}/l0_frac_{}", be->name(), sh.d, sh.F, sh.N, frac),
            SaeArchitecture::Standard, true, sh, frac * sh.F, 0.f);
  }
}

// ---- saelab's sparse step vs PyTorch ----

struct CompareOptions {
  bool run_gbench = true, compare = true;
  int threads = 0, warmup = 2, reps = 5;
};

// Removes this program's own options from argv (Google Benchmark sees the rest).
CompareOptions parse_options(int& argc, char** argv) {
  CompareOptions o;
  auto value = [](const std::string& a, const char* key, int& out) {
    const std::string k = std::string("--") + key + "=";
    if (a.rfind(k, 0) != 0) return false;
    out = std::stoi(a.substr(k.size()));
    return true;
  };
  int w = 1;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--compare-only") o.run_gbench = false;
    else if (a == "--no-compare") o.compare = false;
    else if (!value(a, "threads", o.threads) && !value(a, "warmup", o.warmup) && !value(a, "reps", o.reps))
      argv[w++] = argv[i];
  }
  argc = w;
  if (o.threads <= 0) o.threads = omp_get_max_threads();
  return o;
}

struct Measured {
  double tokens_per_s = 0, l0 = 0;
};

// `warmup` untimed steps, then the median of `reps` timed ones (as the PyTorch script).
Measured saelab_step(SaeArchitecture arch, bool sparse, const Shape& s, const CompareOptions& o) {
  TrainStep step(cpu_backend(), arch, sparse, s.d, s.F, s.N, l0_target(arch));
  Measured m;
  for (int i = 0; i < o.warmup; ++i) step.run();
  std::vector<double> times;
  for (int i = 0; i < o.reps; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    m.l0 = step.run();
    times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(times.begin(), times.end());
  m.tokens_per_s = s.N / times[times.size() / 2];
  return m;
}

// bench_torch_sae_step.py for one architecture and shape: its JSON line (empty on failure, with a note).
nlohmann::json torch_step(const std::string& python, SaeArchitecture arch, const Shape& s, const CompareOptions& o) {
  const std::string script = std::string(SAELAB_SOURCE_DIR) + "/scripts/reference/bench_torch_sae_step.py";
  const std::string cmd = fmt::format(
      "OMP_NUM_THREADS={} {} {} --arch {} --d {} --F {} --N {} --k 32 --l0 {} --threads {} --warmup {} --reps {}",
      o.threads, bench::shell_quote(python), bench::shell_quote(script), sae_architecture_name(arch), s.d, s.F, s.N,
      l0_target(arch), o.threads, o.warmup, o.reps);
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return {};
  nlohmann::json out;
  char buf[4096];
  while (std::fgets(buf, sizeof buf, p)) {
    auto j = nlohmann::json::parse(buf, nullptr, /*allow_exceptions=*/false);
    if (j.is_object() && j.contains("tokens_per_s")) out = j;
  }
  const int rc = ::pclose(p);
  if (rc != 0) std::printf("note: %s failed (status %d)\n", cmd.c_str(), WIFEXITED(rc) ? WEXITSTATUS(rc) : rc);
  return out;
}

void compare_with_torch(const CompareOptions& o) {
  omp_set_num_threads(o.threads);
  openblas_set_num_threads(o.threads);
  std::printf("\n== saelab's sparse step vs PyTorch (CPU, autograd + Adam): threads=%d, warmup %d + median of %d "
              "steps; L = %g (standard), %g (hierarchical), k = 32 (topk) ==\n",
              o.threads, o.warmup, o.reps, kStandardL0, kHierarchicalL0);
  const std::string python = bench::reference_python();
  if (python.empty())
    std::printf("note: no reference Python (set SAELAB_REFERENCE_PYTHON or run scripts/reference/setup_venv.sh); "
                "PyTorch side skipped\n");
  std::printf("%-13s %4s %6s %5s %12s %9s %9s %13s %12s %12s %12s %13s\n", "arch", "d", "F", "N", "sgemm GF/s",
              "saelab L0", "torch L0", "saelab tok/s", "torch tok/s", "saelab/torch", "dense tok/s", "sparse/dense");
  for (const Shape& s : {Shape{512, 4096, 4096}, Shape{576, 9216, 4096}}) {
    const double gemm = bench::gemm_gflops(cpu_backend(), s.N, s.F, s.d);
    for (SaeArchitecture a : {SaeArchitecture::Standard, SaeArchitecture::Hierarchical, SaeArchitecture::TopK}) {
      const Measured ours = saelab_step(a, true, s, o), dense = saelab_step(a, false, s, o);
      const nlohmann::json theirs = python.empty() ? nlohmann::json() : torch_step(python, a, s, o);
      const double t = theirs.is_object() ? theirs.value("tokens_per_s", 0.0) : 0.0;
      const std::string rate = t > 0 ? fmt::format("{:.1f}", t) : "-";
      const std::string ratio = t > 0 ? fmt::format("{:.2f}", ours.tokens_per_s / t) : "-";
      std::printf("%-13s %4d %6d %5d %12.1f %9.1f %9.1f %13.1f %12s %12s %12.1f %13.2f\n", sae_architecture_name(a), s.d,
                  s.F, s.N, gemm, ours.l0, theirs.is_object() ? theirs.value("l0", 0.0) : 0.0, ours.tokens_per_s,
                  rate.c_str(), ratio.c_str(), dense.tokens_per_s, ours.tokens_per_s / dense.tokens_per_s);
      std::fflush(stdout);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  const CompareOptions o = parse_options(argc, argv);
  register_lines();
  if (o.run_gbench) bench::run_main(argc, argv);
  else std::printf("sgemm reference (this run): %.1f GFLOP/s at 1024x1024x1024\n", bench::sgemm_gflops(1024, 1024, 1024));
  if (o.compare) compare_with_torch(o);
  return 0;
}
