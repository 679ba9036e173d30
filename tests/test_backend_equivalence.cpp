// The backend-equivalence harness: every op of the Backend interface runs on every available
// backend (CPU always; CUDA when built with it and a GPU is present) on random inputs of odd
// shapes and is compared with a plain double-precision reference written here. Adding an op to
// the interface means adding its case here.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "saelab/backend.hpp"
#include "test_util.hpp"

using namespace saelab;
using saelab::test::kTolF32Op;
using saelab::test::rel_error;

namespace {

std::vector<float> randn(size_t n, uint64_t seed, float scale = 1.0f) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

Tensor dev(Backend& be, const std::vector<float>& host, std::vector<int64_t> shape) {
  return to_device(be, shape, host.data());
}

Tensor dev_i32(Backend& be, const std::vector<int32_t>& host) {
  Tensor t({static_cast<int64_t>(host.size())}, DType::I32, be.device());
  be.upload(t.view(), host.data());
  return t;
}

class BackendEquivalence : public ::testing::TestWithParam<Backend*> {};

TEST_P(BackendEquivalence, Gemm) {
  Backend& be = *GetParam();
  struct Shape { int M, N, K; };
  for (Shape s : {Shape{1, 1, 1}, Shape{7, 13, 5}, Shape{33, 17, 65}, Shape{129, 3, 31}}) {
    for (int ta = 0; ta < 2; ++ta) {
      for (int tb = 0; tb < 2; ++tb) {
        const auto a = randn(static_cast<size_t>(s.M) * s.K, 1 + ta), b = randn(static_cast<size_t>(s.K) * s.N, 3 + tb);
        const auto c0 = randn(static_cast<size_t>(s.M) * s.N, 5);
        const float alpha = 0.7f, beta = -0.3f;
        std::vector<double> ref(c0.size());
        for (int m = 0; m < s.M; ++m)
          for (int n = 0; n < s.N; ++n) {
            double acc = 0;
            for (int k = 0; k < s.K; ++k) {
              const double av = ta ? a[k * s.M + m] : a[m * s.K + k];
              const double bv = tb ? b[n * s.K + k] : b[k * s.N + n];
              acc += av * bv;
            }
            ref[m * s.N + n] = alpha * acc + beta * c0[m * s.N + n];
          }
        Tensor A = dev(be, a, ta ? std::vector<int64_t>{s.K, s.M} : std::vector<int64_t>{s.M, s.K});
        Tensor B = dev(be, b, tb ? std::vector<int64_t>{s.N, s.K} : std::vector<int64_t>{s.K, s.N});
        Tensor C = dev(be, c0, {s.M, s.N});
        be.gemm(C, A, ta, B, tb, alpha, beta);
        EXPECT_LE(rel_error(to_host_f32(be, C), ref), kTolF32Op) << be.name() << " M=" << s.M << " N=" << s.N
                                                                  << " K=" << s.K << " ta=" << ta << " tb=" << tb;
      }
    }
  }
}

TEST_P(BackendEquivalence, RmsNorm) {
  Backend& be = *GetParam();
  for (auto [N, d] : {std::pair{1, 1}, std::pair{7, 13}, std::pair{31, 130}}) {
    const auto x = randn(static_cast<size_t>(N) * d, 7), w = randn(d, 8);
    const float eps = 1e-5f;
    std::vector<double> ref(x.size());
    for (int n = 0; n < N; ++n) {
      double ss = 0;
      for (int i = 0; i < d; ++i) ss += double(x[n * d + i]) * x[n * d + i];
      const double inv = 1.0 / std::sqrt(ss / d + eps);
      for (int i = 0; i < d; ++i) ref[n * d + i] = x[n * d + i] * inv * w[i];
    }
    Tensor X = dev(be, x, {N, d}), W = dev(be, w, {d}), Y({N, d}, DType::F32, be.device());
    be.rmsnorm(Y, X, W, eps);
    EXPECT_LE(rel_error(to_host_f32(be, Y), ref), kTolF32Op) << be.name() << " N=" << N << " d=" << d;
  }
}

TEST_P(BackendEquivalence, Rope) {
  Backend& be = *GetParam();
  for (RopeStyle style : {RopeStyle::Interleaved, RopeStyle::Half}) {
    const int B = 3, T = 11, H = 3, hd = 6;
    const auto x = randn(static_cast<size_t>(B) * T * H * hd, 9);
    std::vector<double> ref(x.begin(), x.end());
    for (int r = 0; r < B * T; ++r)
      for (int h = 0; h < H; ++h)
        for (int i = 0; i < hd / 2; ++i) {
          const double ang = (r % T) * std::pow(10000.0, -2.0 * i / hd);
          const int i0 = style == RopeStyle::Interleaved ? 2 * i : i;
          const int i1 = style == RopeStyle::Interleaved ? 2 * i + 1 : i + hd / 2;
          const size_t base = static_cast<size_t>(r) * H * hd + h * hd;
          const double a = x[base + i0], b = x[base + i1];
          ref[base + i0] = a * std::cos(ang) - b * std::sin(ang);
          ref[base + i1] = a * std::sin(ang) + b * std::cos(ang);
        }
    Tensor X = dev(be, x, {B * T, H * hd});
    be.rope(X, T, H, 10000.f, style);
    EXPECT_LE(rel_error(to_host_f32(be, X), ref), kTolF32Op) << be.name();
  }
}

TEST_P(BackendEquivalence, CausalAttentionGroupedQuery) {
  Backend& be = *GetParam();
  struct Shape { int B, T, H, Hkv, hd; };
  for (Shape s : {Shape{1, 1, 1, 1, 2}, Shape{2, 9, 6, 2, 5}, Shape{3, 17, 4, 4, 3}}) {
    const int qw = s.H * s.hd, kw = s.Hkv * s.hd, rows = s.B * s.T;
    const auto q = randn(static_cast<size_t>(rows) * qw, 10), k = randn(static_cast<size_t>(rows) * kw, 11),
               v = randn(static_cast<size_t>(rows) * kw, 12);
    std::vector<double> ref(q.size(), 0.0);
    for (int b = 0; b < s.B; ++b)
      for (int h = 0; h < s.H; ++h) {
        const int kvh = h / (s.H / s.Hkv);
        for (int t = 0; t < s.T; ++t) {
          std::vector<double> sc(t + 1);
          double mx = -1e300, sum = 0;
          for (int u = 0; u <= t; ++u) {
            double dot = 0;
            for (int i = 0; i < s.hd; ++i) dot += double(q[(b * s.T + t) * qw + h * s.hd + i]) * k[(b * s.T + u) * kw + kvh * s.hd + i];
            sc[u] = dot / std::sqrt(double(s.hd));
            mx = std::max(mx, sc[u]);
          }
          for (auto& x : sc) sum += (x = std::exp(x - mx));
          for (int u = 0; u <= t; ++u)
            for (int i = 0; i < s.hd; ++i)
              ref[(b * s.T + t) * qw + h * s.hd + i] += sc[u] / sum * v[(b * s.T + u) * kw + kvh * s.hd + i];
        }
      }
    Tensor Q = dev(be, q, {rows, qw}), K = dev(be, k, {rows, kw}), V = dev(be, v, {rows, kw});
    Tensor O({rows, qw}, DType::F32, be.device());
    be.causal_attention(O, Q, K, V, s.T, s.H, s.Hkv);
    EXPECT_LE(rel_error(to_host_f32(be, O), ref), kTolF32Op) << be.name() << " T=" << s.T << " H=" << s.H;
  }
}

TEST_P(BackendEquivalence, SwigluAddEmbedding) {
  Backend& be = *GetParam();
  const int n = 97;
  const auto g = randn(n, 13, 3.0f), u = randn(n, 14);
  std::vector<double> ref(n);
  for (int i = 0; i < n; ++i) ref[i] = g[i] / (1 + std::exp(-double(g[i]))) * u[i];
  Tensor G = dev(be, g, {n}), U = dev(be, u, {n}), O({n}, DType::F32, be.device());
  be.swiglu(O, G, U);
  EXPECT_LE(rel_error(to_host_f32(be, O), ref), kTolF32Op) << be.name();

  std::vector<double> sum(n);
  for (int i = 0; i < n; ++i) sum[i] = double(g[i]) + u[i];
  be.add_inplace(G, U);
  EXPECT_LE(rel_error(to_host_f32(be, G), sum), kTolF32Op) << be.name();

  const int V = 11, d = 7;
  const auto table = randn(V * d, 15);
  const std::vector<int32_t> ids{3, 0, 10, 3, 7};
  std::vector<double> emb;
  for (int32_t id : ids)
    for (int i = 0; i < d; ++i) emb.push_back(table[id * d + i]);
  Tensor Tb = dev(be, table, {V, d}), I = dev_i32(be, ids), E({5, d}, DType::F32, be.device());
  be.embedding(E, Tb, I);
  EXPECT_LE(rel_error(to_host_f32(be, E), emb), 0.0) << be.name();
}

TEST_P(BackendEquivalence, CrossEntropy) {
  Backend& be = *GetParam();
  const int N = 9, V = 37;
  const auto logits = randn(N * V, 16, 4.0f);
  const std::vector<int32_t> tgt{0, 36, 5, 5, 17, 1, 2, 30, 11};
  std::vector<double> ref(N);
  for (int n = 0; n < N; ++n) {
    double mx = -1e300, s = 0;
    for (int i = 0; i < V; ++i) mx = std::max(mx, double(logits[n * V + i]));
    for (int i = 0; i < V; ++i) s += std::exp(logits[n * V + i] - mx);
    ref[n] = std::log(s) + mx - logits[n * V + tgt[n]];
  }
  Tensor L = dev(be, logits, {N, V}), Tg = dev_i32(be, tgt), O({N}, DType::F32, be.device());
  be.cross_entropy(O, L, Tg);
  EXPECT_LE(rel_error(to_host_f32(be, O), ref), kTolF32Op) << be.name();
}

TEST_P(BackendEquivalence, CopyAndTransfers) {
  Backend& be = *GetParam();
  const auto x = randn(23, 17);
  Tensor A = dev(be, x, {23}), B({23}, DType::F32, be.device());
  be.copy(B, A);
  EXPECT_EQ(to_host_f32(be, B), x);
}

std::string backend_name(const ::testing::TestParamInfo<Backend*>& info) { return info.param->name(); }

INSTANTIATE_TEST_SUITE_P(AllBackends, BackendEquivalence, ::testing::ValuesIn(available_backends()), backend_name);

TEST(Backends, CudaCasesSkipCleanlyWithoutAGpu) {
  bool has_cuda = false;
  for (Backend* be : available_backends()) has_cuda |= be->device() == Device::CUDA;
  if (!has_cuda) GTEST_SKIP() << "no CUDA backend/GPU here: CUDA equivalence cases skipped";
  SUCCEED();
}

}  // namespace
