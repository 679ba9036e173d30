// The thresholded SAEs (batchtopk, jumprelu, matryoshka_batchtopk): gradients against central
// finite differences of an independent float64 implementation, jumprelu's pseudo-gradient against
// its defining formula, and the estimators on planted data (batchtopk's threshold, jumprelu's
// thresholds).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "saelab/sae.hpp"
#include "test_util.hpp"

using namespace saelab;

namespace {

constexpr double kTolGradient = 2e-4;  // f32 analytic gradient vs f64 finite differences (relative, per tensor)
constexpr double kTolLoss = 1e-5;      // f32 loss vs f64 loss (relative)

struct P64 {
  std::vector<double> W_enc, b_enc, W_dec, b_dec, log_threshold;  // [d,F] [F] [F,d] [d] [F]
  std::vector<double>* by_name(const std::string& n) {
    return n == "W_enc" ? &W_enc : n == "b_enc" ? &b_enc : n == "W_dec" ? &W_dec : &b_dec;
  }
};

// pre [N, F] in float64.
std::vector<double> pre64(const SaeConfig& c, const P64& p, const std::vector<double>& x, int N) {
  const int d = c.d_in, F = c.d_sae;
  std::vector<double> pre(static_cast<size_t>(N) * F);
  for (int n = 0; n < N; ++n)
    for (int i = 0; i < F; ++i) {
      double s = p.b_enc[i];
      for (int j = 0; j < d; ++j) s += (x[n * d + j] - (c.apply_b_dec_to_input ? p.b_dec[j] : 0.0)) * p.W_enc[j * F + i];
      pre[n * F + i] = s;
    }
  return pre;
}

// The latents as the definitions say: batch top-k of ReLU(pre) (ties: lower flat index) or JumpReLU.
std::vector<double> latents64(const SaeConfig& c, const P64& p, const std::vector<double>& pre, int N) {
  const int F = c.d_sae;
  std::vector<double> f(pre.size(), 0.0);
  if (c.architecture == SaeArchitecture::JumpReLU) {
    for (size_t e = 0; e < pre.size(); ++e) f[e] = pre[e] > std::exp(p.log_threshold[e % F]) ? pre[e] : 0.0;
    return f;
  }
  std::vector<size_t> idx(pre.size());
  for (size_t e = 0; e < idx.size(); ++e) idx[e] = e;
  std::stable_sort(idx.begin(), idx.end(), [&](size_t a, size_t b) { return std::max(pre[a], 0.0) > std::max(pre[b], 0.0); });
  for (size_t r = 0; r < static_cast<size_t>(c.k) * N && r < idx.size(); ++r) f[idx[r]] = std::max(pre[idx[r]], 0.0);
  return f;
}

// x̂ from the latents [0, width) only.
std::vector<double> decode64(const SaeConfig& c, const P64& p, const std::vector<double>& f, int N, int width) {
  const int d = c.d_in, F = c.d_sae;
  std::vector<double> xh(static_cast<size_t>(N) * d);
  for (int n = 0; n < N; ++n)
    for (int j = 0; j < d; ++j) {
      double s = p.b_dec[j];
      for (int i = 0; i < width; ++i) s += f[n * F + i] * p.W_dec[i * d + j];
      xh[n * d + j] = s;
    }
  return xh;
}

// The batch loss in float64: Σ over prefixes (one prefix, F, unless matryoshka) of the MSE, plus
// jumprelu's λ·L0 (λ/N Σ_n Σ_i 1[pre > θ]).
double loss64(const SaeConfig& c, const P64& p, const std::vector<double>& x, int N, float lambda) {
  const std::vector<double> pre = pre64(c, p, x, N), f = latents64(c, p, pre, N);
  const std::vector<int> widths =
      c.architecture == SaeArchitecture::MatryoshkaBatchTopK ? c.matryoshka_widths : std::vector<int>{c.d_sae};
  double total = 0;
  for (int w : widths) {
    const std::vector<double> xh = decode64(c, p, f, N, w);
    for (size_t e = 0; e < xh.size(); ++e) total += (x[e] - xh[e]) * (x[e] - xh[e]);
  }
  if (c.architecture == SaeArchitecture::JumpReLU)
    for (double v : f) total += lambda * (v != 0.0 ? 1.0 : 0.0);
  return total / N;
}

std::vector<float> to_f32(const std::vector<double>& v) { return {v.begin(), v.end()}; }

struct Fixture {
  SaeConfig cfg;
  int N = 7;
  P64 p;
  std::vector<double> x;
};

Fixture make(SaeConfig c, uint64_t seed) {
  Fixture fx;
  fx.cfg = c;
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> nd(0.0, 1.0);
  auto randv = [&](size_t n, double s) {
    std::vector<double> v(n);
    for (auto& e : v) e = static_cast<double>(static_cast<float>(s * nd(rng)));  // exactly representable in f32
    return v;
  };
  const int d = c.d_in, F = c.d_sae;
  fx.p = {randv(d * F, 0.5), randv(F, 0.3), randv(F * d, 0.5), randv(d, 0.3), {}};
  for (int i = 0; i < F; ++i) fx.p.log_threshold.push_back(static_cast<double>(std::log(0.2f + 0.05f * float(i % 5))));
  fx.x = randv(static_cast<size_t>(fx.N) * d, 1.0);
  return fx;
}

// Loads fx's parameters into an SAE (threshold = exp(log θ) as the trainer keeps it).
void upload(Sae& sae, const Fixture& fx) {
  Backend& be = sae.backend();
  be.upload(sae.params().W_enc, to_f32(fx.p.W_enc).data());
  be.upload(sae.params().b_enc, to_f32(fx.p.b_enc).data());
  be.upload(sae.params().W_dec, to_f32(fx.p.W_dec).data());
  be.upload(sae.params().b_dec, to_f32(fx.p.b_dec).data());
  if (sae.config().architecture == SaeArchitecture::JumpReLU) {
    be.upload(sae.params().log_threshold, to_f32(fx.p.log_threshold).data());
    sae.refresh_threshold();
  }
}

// Every gradient with a derivative (the four SAELens tensors) against central differences of
// loss64; the threshold's gradient is 0 (set, never trained).
SaeParams check_gradients(const Fixture& fx0, float lambda) {
  Fixture fx = fx0;
  const SaeConfig& c = fx.cfg;
  Backend& be = cpu_backend();
  Sae sae(c, be);
  upload(sae, fx);
  SaeParams g(c, be.device());
  SaeWorkspace ws(c, fx.N, be.device());
  Tensor X = to_device(be, {fx.N, c.d_in}, to_f32(fx.x).data());
  SaeLossTerms terms;
  terms.l1_coefficient = lambda;
  sae.forward_backward(X, terms, g, ws);  // a second call must not see stale state
  const SaeBatchStats st = sae.forward_backward(X, terms, g, ws);
  const double L = loss64(c, fx.p, fx.x, fx.N, lambda);
  EXPECT_NEAR(st.loss(), L, kTolLoss * std::abs(L)) << "loss";
  const double h = 1e-6;
  for (const char* name : {"W_enc", "b_enc", "W_dec", "b_dec"}) {
    std::vector<double>* v = fx.p.by_name(name);
    std::vector<double> fd(v->size());
    for (size_t i = 0; i < v->size(); ++i) {
      const double keep = (*v)[i];
      (*v)[i] = keep + h;
      const double up = loss64(c, fx.p, fx.x, fx.N, lambda);
      (*v)[i] = keep - h;
      const double down = loss64(c, fx.p, fx.x, fx.N, lambda);
      (*v)[i] = keep;
      fd[i] = (up - down) / (2 * h);
    }
    TensorView view;
    for (const auto& [n, tv] : g.named())
      if (n == name) view = tv;
    EXPECT_LE(test::rel_error(to_host_f32(be, view), fd), kTolGradient) << sae_architecture_name(c.architecture) << " " << name;
  }
  for (float v : to_host_f32(be, g.threshold)) EXPECT_EQ(v, 0.f);
  return g;
}

SaeConfig small(SaeArchitecture a) {
  SaeConfig c;
  c.architecture = a;
  c.d_in = 5;
  c.d_sae = 9;
  c.k = 3;
  c.k_aux = 2;
  c.jumprelu_bandwidth = 0.5f;
  if (a == SaeArchitecture::MatryoshkaBatchTopK) c.matryoshka_widths = {2, 5, 9};
  return c;
}

}  // namespace

TEST(ThresholdSaeGradients, BatchTopK) {
  for (bool sparse : {false, true}) {
    SaeConfig c = small(SaeArchitecture::BatchTopK);
    c.sparse_decode = sparse;
    const SaeParams g = check_gradients(make(c, 21), 0.f);
    for (float v : to_host_f32(cpu_backend(), g.log_threshold)) EXPECT_EQ(v, 0.f);
  }
}

// Matryoshka: every prefix's MSE, dense and sparse decoder, and a single prefix (= batchtopk).
TEST(ThresholdSaeGradients, MatryoshkaBatchTopKSumsEveryPrefix) {
  for (bool sparse : {false, true}) {
    SaeConfig c = small(SaeArchitecture::MatryoshkaBatchTopK);
    c.sparse_decode = sparse;
    check_gradients(make(c, 22), 0.f);
    c.matryoshka_widths = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    check_gradients(make(c, 23), 0.f);
  }
  // The prefixes' losses count: with three prefixes the loss is larger than batchtopk's on the same
  // parameters by exactly the inner prefixes' squared errors.
  Fixture m = make(small(SaeArchitecture::MatryoshkaBatchTopK), 24);
  Fixture b = m;
  b.cfg = small(SaeArchitecture::BatchTopK);
  EXPECT_GT(loss64(m.cfg, m.p, m.x, m.N, 0.f), loss64(b.cfg, b.p, b.x, b.N, 0.f));
}

// JumpReLU: finite differences where the loss has a derivative (the encoder and decoder: the
// thresholds' step is flat around almost every point), and log θ's pseudo-gradient against its
// definition (SAELens' JumpReLU and Step backward) computed here in float64.
TEST(ThresholdSaeGradients, JumpReLUStraightThroughThresholds) {
  const float lambda = 0.3f;
  SaeConfig c = small(SaeArchitecture::JumpReLU);
  const Fixture fx = make(c, 25);
  const SaeParams g = check_gradients(fx, lambda);
  const int N = fx.N, F = c.d_sae, d = c.d_in;
  const std::vector<double> pre = pre64(c, fx.p, fx.x, N), f = latents64(c, fx.p, pre, N);
  const std::vector<double> xh = decode64(c, fx.p, f, N, F);
  const double eps = c.jumprelu_bandwidth;
  std::vector<double> want(F, 0.0);
  int in_window = 0;
  for (int i = 0; i < F; ++i) {
    const double th = static_cast<double>(std::exp(static_cast<float>(fx.p.log_threshold[i])));
    for (int n = 0; n < N; ++n) {
      double df = 0;  // ∂L/∂f = (2/N)(x̂ − x)·W_dec,i
      for (int j = 0; j < d; ++j) df += 2.0 / N * (xh[n * d + j] - fx.x[n * d + j]) * fx.p.W_dec[i * d + j];
      const double u = (pre[n * F + i] - th) / eps;
      if (!(u > -0.5 && u < 0.5)) continue;
      ++in_window;
      want[i] += -(th / eps) * (th * df + lambda / N);  // ∂/∂θ through JumpReLU and Step, times dθ/dlog θ = θ
    }
  }
  EXPECT_GT(in_window, 5) << "too few pre-activations inside the kernel: the test checks nothing";
  EXPECT_LE(test::rel_error(to_host_f32(cpu_backend(), g.log_threshold), want), kTolGradient);
}

namespace {
// W_enc = W_dec = I, zero biases: the latents are the input's coordinates (d_in = d_sae).
void make_identity(Sae& sae) {
  const int F = sae.config().d_sae;
  Backend& be = sae.backend();
  sae.init(1, 1.f, {});
  std::vector<float> eye(static_cast<size_t>(F) * F, 0.f), zero(F, 0.f);
  for (int i = 0; i < F; ++i) eye[i * F + i] = 1.f;
  be.upload(sae.params().W_enc, eye.data());
  be.upload(sae.params().W_dec, eye.data());
  be.upload(sae.params().b_enc, zero.data());
  be.upload(sae.params().b_dec, zero.data());
}
}  // namespace

// BatchTopK's estimator on planted latents: an identity SAE sees rows with a varying number of
// "signal" entries in [1, 2] (k per row on average) among noise in [0, 0.5). The batch top-k keeps
// exactly the signal, so the threshold (an EMA of the smallest kept activation) converges to the
// edge of the signal, just above 1, and inference with it keeps exactly the signal: L0 = k.
TEST(ThresholdSaeEstimators, BatchTopKThresholdConvergesToThePlantedEdge) {
  const int F = 32, N = 129, k = 4;  // N = 3·43: the row pattern below sums to k·N exactly
  SaeConfig c;
  c.architecture = SaeArchitecture::BatchTopK;
  c.d_in = c.d_sae = F;
  c.k = k;
  c.apply_b_dec_to_input = false;
  Backend& be = cpu_backend();
  Sae sae(c, be);
  make_identity(sae);
  std::mt19937_64 rng(5);
  std::uniform_real_distribution<float> sig(1.f, 2.f), noise(0.f, 0.5f);
  int64_t signal = 0;
  auto batch = [&] {
    std::vector<float> x(static_cast<size_t>(N) * F);
    signal = 0;
    for (int n = 0; n < N; ++n) {
      const int count = (n % 3) * k;  // 0, k or 2k signal entries: k on average, not per row
      for (int i = 0; i < F; ++i) x[n * F + i] = i < count ? sig(rng) : noise(rng);
      signal += count;
    }
    return x;
  };
  SaeWorkspace ws(c, N, be.device());
  SaeParams g(c, be.device());
  const int64_t keep = static_cast<int64_t>(k) * N;
  for (int step = 0; step < 800; ++step) {
    std::vector<float> x = batch();
    if (signal != keep) continue;  // N divisible by 3 keeps this exact; guard anyway
    const SaeBatchStats st = sae.forward_backward(to_device(be, {N, F}, x.data()), SaeLossTerms{}, g, ws);
    EXPECT_EQ(st.l0, static_cast<double>(keep));
    sae.update_batch_threshold(st.min_kept, 0.01);
  }
  const float theta = to_host_f32(be, sae.params().threshold)[0];
  EXPECT_GT(theta, 1.0f);
  EXPECT_LT(theta, 1.02f);
  const std::vector<float> x = batch();
  sae.encode(to_device(be, {N, F}, x.data()), ws);
  const std::vector<float> f = to_host_f32(be, ws.f);
  int64_t kept = 0, kept_signal = 0;
  for (int n = 0; n < N; ++n)
    for (int i = 0; i < F; ++i) {
      kept += f[n * F + i] > 0;
      kept_signal += f[n * F + i] > 0 && x[n * F + i] >= 1.f;
    }
  // The smallest signal of the test batch may sit below θ (θ is the EMA of batch minima).
  EXPECT_NEAR(static_cast<double>(kept) / N, k, 0.05);
  EXPECT_EQ(kept, kept_signal);
}

// JumpReLU's thresholds on planted latents: an identity SAE, signal in [1, 2] on a tenth of the
// entries, noise in [0, 0.3) elsewhere, L0 price λ = 0.5 per firing. Keeping a noise entry v saves
// v² < λ of squared error, so the pseudo-gradient moves every θ from 0.01 up past the noise, and
// the trained thresholds keep exactly the signal.
TEST(ThresholdSaeEstimators, JumpReLUThresholdsSeparatePlantedSignalFromNoise) {
  const int F = 16, N = 256;
  SaeConfig c;
  c.architecture = SaeArchitecture::JumpReLU;
  c.d_in = c.d_sae = F;
  c.apply_b_dec_to_input = false;
  c.jumprelu_bandwidth = 0.05f;
  c.jumprelu_init_threshold = 0.01f;
  Backend& be = cpu_backend();
  Sae sae(c, be);
  make_identity(sae);
  std::mt19937_64 rng(6);
  std::uniform_real_distribution<float> sig(1.f, 2.f), noise(0.f, 0.3f), u(0.f, 1.f);
  auto batch = [&] {
    std::vector<float> x(static_cast<size_t>(N) * F);
    for (auto& v : x) v = u(rng) < 0.1f ? sig(rng) : noise(rng);
    return x;
  };
  SaeWorkspace ws(c, N, be.device());
  SaeParams g(c, be.device()), m(c, be.device()), v(c, be.device());
  SaeLossTerms terms;
  terms.l1_coefficient = 0.5f;
  for (int64_t t = 1; t <= 600; ++t) {  // Adam on log θ alone: the dictionary stays the identity
    const std::vector<float> x = batch();
    sae.forward_backward(to_device(be, {N, F}, x.data()), terms, g, ws);
    be.adam(sae.params().log_threshold, g.log_threshold, m.log_threshold, v.log_threshold, 0.02f, 0.9f, 0.999f,
            1e-8f, t);
    sae.refresh_threshold();
  }
  for (float th : to_host_f32(be, sae.params().threshold)) {
    EXPECT_GT(th, 0.3f);
    EXPECT_LT(th, 1.0f);
  }
  const std::vector<float> x = batch();
  sae.encode(to_device(be, {N, F}, x.data()), ws);
  const std::vector<float> f = to_host_f32(be, ws.f);
  for (size_t e = 0; e < f.size(); ++e) EXPECT_EQ(f[e] > 0, x[e] >= 1.f) << "entry " << e;
}

TEST(ThresholdSaeConfig, BadSettingsAreClearErrors) {
  SaeConfig c = small(SaeArchitecture::BatchTopK);
  c.k = 10;  // > d_sae = 9
  EXPECT_NE(test::error_of([&] { Sae(c, cpu_backend()); }).find("k <= d_sae"), std::string::npos);
  SaeConfig j = small(SaeArchitecture::JumpReLU);
  j.jumprelu_init_threshold = 0.f;
  EXPECT_NE(test::error_of([&] { Sae(j, cpu_backend()); }).find("jumprelu_init_threshold > 0"), std::string::npos);
  j = small(SaeArchitecture::JumpReLU);
  j.sparse_decode = true;
  EXPECT_THROW(Sae(j, cpu_backend()), Error);
  for (const std::vector<int>& w : {std::vector<int>{2, 5}, {5, 2, 9}, {2, 2, 9}, {}, {0, 9}}) {
    SaeConfig m = small(SaeArchitecture::MatryoshkaBatchTopK);
    m.matryoshka_widths = w;
    EXPECT_NE(test::error_of([&] { Sae(m, cpu_backend()); }).find("matryoshka_widths"), std::string::npos);
  }
}
