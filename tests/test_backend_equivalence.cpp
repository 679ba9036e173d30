// The backend-equivalence harness: every op of the Backend interface runs on every available
// backend (CPU always; CUDA when built with it and a GPU is present) on random inputs of odd
// shapes and is compared with a plain double-precision reference written here. Adding an op to
// the interface means adding its case here.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>

#include "backend/cpu/cpu_math.hpp"
#include "saelab/backend.hpp"
#include "saelab/safetensors.hpp"
#include "saelab/synthetic.hpp"
#include "saelab/train.hpp"
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

TEST_P(BackendEquivalence, LayerNorm) {
  Backend& be = *GetParam();
  for (auto [N, d] : {std::pair{1, 1}, std::pair{7, 13}, std::pair{31, 130}}) {
    auto x = randn(static_cast<size_t>(N) * d, 7);
    for (auto& v : x) v += 40.f;  // a mean far from 0: a one-pass variance would lose its digits
    const auto w = randn(d, 8), bias = randn(d, 9);
    const float eps = 1e-5f;
    std::vector<double> ref(x.size());
    for (int n = 0; n < N; ++n) {
      double mean = 0, var = 0;
      for (int i = 0; i < d; ++i) mean += x[n * d + i];
      mean /= d;
      for (int i = 0; i < d; ++i) var += (x[n * d + i] - mean) * (x[n * d + i] - mean);
      const double inv = 1.0 / std::sqrt(var / d + eps);
      for (int i = 0; i < d; ++i) ref[n * d + i] = (x[n * d + i] - mean) * inv * w[i] + bias[i];
    }
    Tensor X = dev(be, x, {N, d}), W = dev(be, w, {d}), Bv = dev(be, bias, {d}), Y({N, d}, DType::F32, be.device());
    be.layernorm(Y, X, W, Bv, eps);
    // d = 1: x - mean is 0 up to rounding, so y = b ± a rounding of the mean times 1/√eps.
    EXPECT_LE(rel_error(to_host_f32(be, Y), ref), d == 1 ? 1e-3 : 1e-4) << be.name() << " N=" << N << " d=" << d;
  }
}

// Full and partial rotary (GPT-NeoX rotates the first r of hd dimensions), both pairings, and
// an arbitrary inv_freq table (scaled RoPE variants only change the table).
TEST_P(BackendEquivalence, Rope) {
  Backend& be = *GetParam();
  for (RopeStyle style : {RopeStyle::Interleaved, RopeStyle::Half}) {
    for (int r : {6, 2}) {
      const int B = 3, T = 11, H = 3, hd = 6, half = r / 2;
      const auto x = randn(static_cast<size_t>(B) * T * H * hd, 9);
      std::vector<float> inv_freq(half);
      for (int i = 0; i < half; ++i) inv_freq[i] = static_cast<float>(std::pow(10000.0, -2.0 * i / r)) / (1 + i);
      std::vector<double> ref(x.begin(), x.end());
      for (int row = 0; row < B * T; ++row)
        for (int h = 0; h < H; ++h)
          for (int i = 0; i < half; ++i) {
            const double ang = (row % T) * double(inv_freq[i]);
            const int i0 = style == RopeStyle::Interleaved ? 2 * i : i;
            const int i1 = style == RopeStyle::Interleaved ? 2 * i + 1 : i + half;
            const size_t base = static_cast<size_t>(row) * H * hd + h * hd;
            const double a = x[base + i0], b = x[base + i1];
            ref[base + i0] = a * std::cos(ang) - b * std::sin(ang);
            ref[base + i1] = a * std::sin(ang) + b * std::cos(ang);
          }
      Tensor X = dev(be, x, {B * T, H * hd}), F = dev(be, inv_freq, {half});
      be.rope(X, T, H, F, style);
      EXPECT_LE(rel_error(to_host_f32(be, X), ref), kTolF32Op) << be.name() << " r=" << r;
    }
  }
}

// Plain, then with Gemma's options: a scale other than 1/√hd, score soft-capping and a sliding window.
TEST_P(BackendEquivalence, CausalAttentionGroupedQuery) {
  Backend& be = *GetParam();
  struct Shape { int B, T, H, Hkv, hd; };
  const AttentionOptions plain{}, gemma{0.3f, 1.5f, 4};
  for (const AttentionOptions& opt : {plain, gemma}) {
    for (Shape s : {Shape{1, 1, 1, 1, 2}, Shape{2, 9, 6, 2, 5}, Shape{3, 17, 4, 4, 3}, Shape{1, 70, 2, 1, 4}}) {
      const int qw = s.H * s.hd, kw = s.Hkv * s.hd, rows = s.B * s.T;
      const auto q = randn(static_cast<size_t>(rows) * qw, 10), k = randn(static_cast<size_t>(rows) * kw, 11),
                 v = randn(static_cast<size_t>(rows) * kw, 12);
      const double scale = opt.scale > 0 ? opt.scale : 1.0 / std::sqrt(double(s.hd));
      std::vector<double> ref(q.size(), 0.0);
      for (int b = 0; b < s.B; ++b)
        for (int h = 0; h < s.H; ++h) {
          const int kvh = h / (s.H / s.Hkv);
          for (int t = 0; t < s.T; ++t) {
            const int lo = opt.window > 0 ? std::max(0, t - opt.window + 1) : 0;
            std::vector<double> sc(t + 1, 0.0);
            double mx = -1e300, sum = 0;
            for (int u = lo; u <= t; ++u) {
              double dot = 0;
              for (int i = 0; i < s.hd; ++i) dot += double(q[(b * s.T + t) * qw + h * s.hd + i]) * k[(b * s.T + u) * kw + kvh * s.hd + i];
              sc[u] = dot * scale;
              if (opt.softcap > 0) sc[u] = opt.softcap * std::tanh(sc[u] / opt.softcap);
              mx = std::max(mx, sc[u]);
            }
            for (int u = lo; u <= t; ++u) sum += (sc[u] = std::exp(sc[u] - mx));
            for (int u = lo; u <= t; ++u)
              for (int i = 0; i < s.hd; ++i)
                ref[(b * s.T + t) * qw + h * s.hd + i] += sc[u] / sum * v[(b * s.T + u) * kw + kvh * s.hd + i];
          }
        }
      Tensor Q = dev(be, q, {rows, qw}), K = dev(be, k, {rows, kw}), V = dev(be, v, {rows, kw});
      Tensor O({rows, qw}, DType::F32, be.device());
      be.causal_attention(O, Q, K, V, s.T, s.H, s.Hkv, opt);
      EXPECT_LE(rel_error(to_host_f32(be, O), ref), kTolF32Op)
          << be.name() << " T=" << s.T << " H=" << s.H << " window=" << opt.window;
    }
  }
}

TEST_P(BackendEquivalence, ActivationsSoftcapAddEmbedding) {
  Backend& be = *GetParam();
  const int n = 97;
  const auto g = randn(n, 13, 3.0f), u = randn(n, 14);
  auto act_ref = [](Activation a, double x) {
    switch (a) {
      case Activation::Silu: return x / (1 + std::exp(-x));
      case Activation::GeluTanh: return 0.5 * x * (1 + std::tanh(std::sqrt(2 / M_PI) * (x + 0.044715 * x * x * x)));
      case Activation::GeluErf: return 0.5 * x * (1 + std::erf(x / std::sqrt(2.0)));
    }
    return 0.0;
  };
  for (Activation a : {Activation::Silu, Activation::GeluTanh, Activation::GeluErf}) {
    for (bool gated : {true, false}) {
      std::vector<double> ref(n);
      for (int i = 0; i < n; ++i) ref[i] = act_ref(a, g[i]) * (gated ? u[i] : 1.0);
      Tensor G = dev(be, g, {n}), U = dev(be, u, {n}), O({n}, DType::F32, be.device());
      be.activation(O, G, gated ? U.view() : TensorView{}, a);
      EXPECT_LE(rel_error(to_host_f32(be, O), ref), kTolF32Op) << be.name() << " act " << int(a) << " gated " << gated;
    }
  }

  {
    std::vector<double> ref(n);
    for (int i = 0; i < n; ++i) ref[i] = 2.5 * std::tanh(g[i] / 2.5);
    Tensor G = dev(be, g, {n});
    be.softcap(G, 2.5f);
    EXPECT_LE(rel_error(to_host_f32(be, G), ref), kTolF32Op) << be.name();
  }

  Tensor G = dev(be, g, {n}), U = dev(be, u, {n});
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

// ---- SAE ops ----


TEST_P(BackendEquivalence, RowBroadcastsAndElementwise) {
  Backend& be = *GetParam();
  const int N = 13, d = 7;
  const auto x = randn(N * d, 20), b = randn(d, 21), z = randn(N * d, 22);
  std::vector<double> sub(N * d), add(N * d), diff(N * d), ax(N * d);
  for (int n = 0; n < N; ++n)
    for (int i = 0; i < d; ++i) {
      sub[n * d + i] = double(x[n * d + i]) - b[i];
      add[n * d + i] = double(x[n * d + i]) + b[i];
      diff[n * d + i] = 0.5 * (double(x[n * d + i]) - z[n * d + i]);
      ax[n * d + i] = double(x[n * d + i]) - 0.25 * z[n * d + i];
    }
  Tensor X = dev(be, x, {N, d}), B = dev(be, b, {d}), Z = dev(be, z, {N, d}), Y({N, d}, DType::F32, be.device());
  be.sub_row(Y, X, B);
  EXPECT_LE(rel_error(to_host_f32(be, Y), sub), kTolF32Op);
  be.copy(Y, X);
  be.add_row(Y, B);
  EXPECT_LE(rel_error(to_host_f32(be, Y), add), kTolF32Op);
  be.scaled_diff(Y, X, Z, 0.5f);
  EXPECT_LE(rel_error(to_host_f32(be, Y), diff), kTolF32Op);
  be.copy(Y, X);
  be.axpy(Y, Z, -0.25f);
  EXPECT_LE(rel_error(to_host_f32(be, Y), ax), kTolF32Op);
  std::vector<double> scaled(N * d);
  for (int i = 0; i < N * d; ++i) scaled[i] = 3.0 * x[i];
  be.copy(Y, X);
  be.scale(Y, 3.f);
  EXPECT_LE(rel_error(to_host_f32(be, Y), scaled), kTolF32Op);
  double ss = 0;
  for (float v : x) ss += double(v) * v;
  EXPECT_NEAR(be.sum_squares(X), ss, 1e-9 * ss);
}

TEST_P(BackendEquivalence, ReluBackward) {
  Backend& be = *GetParam();
  const int N = 11, F = 300;
  auto f = randn(N * F, 23);
  for (auto& v : f) v = std::max(v, 0.f);
  const auto g = randn(N * F, 25), pen = randn(F, 26);
  std::vector<double> g_ref(N * F);
  for (int n = 0; n < N; ++n)
    for (int i = 0; i < F; ++i) g_ref[n * F + i] = f[n * F + i] > 0 ? double(g[n * F + i]) + pen[i] : 0.0;
  Tensor Fo = dev(be, f, {N, F}), Gr = dev(be, g, {N, F}), Pen = dev(be, pen, {F});
  be.relu_backward(Gr, Fo, Pen);
  EXPECT_LE(rel_error(to_host_f32(be, Gr), g_ref), kTolF32Op);
}

// The fused encoder epilogue against the unfused definition in double: bias, then ReLU and the
// hierarchy's gate or top-k, then the per-latent statistics. Shapes span one and several row
// chunks (kEpilogueRows), column groups cut mid-family, and a family wider than a group.
TEST_P(BackendEquivalence, EncodeEpilogue) {
  Backend& be = *GetParam();
  struct Case { int N, P, m, k; bool children_on; };
  const Case cases[] = {{1, 1, 0, 0, true},     {7, 300, 0, 0, true},    {kEpilogueRows + 3, 515, 0, 0, true},
                        {9, 77, 0, 5, true},    {200, 300, 0, 3, true},  {2 * kEpilogueRows, 77, 0, 77, true},
                        {13, 5, 3, 0, true},    {150, 61, 4, 0, true},   {150, 61, 4, 0, false},
                        {70, 2, 300, 0, true}};
  for (const Case& cs : cases) {
    const int N = cs.N, F = cs.P + cs.P * cs.m;
    auto pre = randn(static_cast<size_t>(N) * F, 60 + N + F);
    pre[0] = 0.f;  // an exact zero: not a firing
    const auto b = randn(F, 61);
    std::vector<double> pre_ref(pre.size()), f_ref(pre.size(), 0.0), fires(F, 0.0), mass(F, 0.0);
    for (int n = 0; n < N; ++n) {
      for (int i = 0; i < F; ++i) pre_ref[n * F + i] = double(static_cast<float>(pre[n * F + i] + b[i]));
      if (cs.k > 0) {
        std::vector<std::pair<double, int>> row;
        for (int i = 0; i < F; ++i) row.push_back({pre_ref[n * F + i], -i});
        std::sort(row.rbegin(), row.rend());
        for (int j = 0; j < std::min(cs.k, F); ++j) f_ref[n * F - row[j].second] = std::max(row[j].first, 0.0);
      } else {
        for (int i = 0; i < F; ++i) f_ref[n * F + i] = std::max(pre_ref[n * F + i], 0.0);
        if (cs.m > 0)
          for (int j = 0; j < cs.P * cs.m; ++j)
            if (!cs.children_on || !(f_ref[n * F + j / cs.m] > 0)) f_ref[n * F + cs.P + j] = 0.0;
      }
      for (int i = 0; i < F; ++i) {
        fires[i] += f_ref[n * F + i] > 0 ? 1 : 0;
        mass[i] += f_ref[n * F + i];
      }
    }
    EncoderActivation act;
    act.k = cs.k;
    if (cs.m > 0) act.n_parents = cs.P, act.children_per_parent = cs.m, act.children_on = cs.children_on;
    const std::string at = std::string(be.name()) + " N=" + std::to_string(N) + " F=" + std::to_string(F) +
                           " m=" + std::to_string(cs.m) + " k=" + std::to_string(cs.k);
    for (int with_stats = 0; with_stats < 2; ++with_stats) {
      Tensor Pd = dev(be, pre, {N, F}), Bd = dev(be, b, {F}), Fo = dev(be, randn(pre.size(), 62), {N, F});
      Tensor Fi = dev(be, randn(F, 63), {F}), Ma = dev(be, randn(F, 64), {F});  // overwritten, not accumulated
      be.encode_epilogue(Fo, Pd, Bd, act, with_stats ? Fi.view() : TensorView{}, with_stats ? Ma.view() : TensorView{});
      EXPECT_LE(rel_error(to_host_f32(be, Pd), pre_ref), 0.0) << at;
      EXPECT_LE(rel_error(to_host_f32(be, Fo), f_ref), 0.0) << at;
      if (!with_stats) continue;
      EXPECT_LE(rel_error(to_host_f32(be, Fi), fires), 0.0) << at;
      EXPECT_LE(rel_error(to_host_f32(be, Ma), mass), kTolF32Op) << at;
    }
  }
}

TEST_P(BackendEquivalence, TopkRowsWithAndWithoutMask) {
  Backend& be = *GetParam();
  const int N = 9, F = 77;
  for (int k : {0, 1, 5, 77}) {
    auto pre = randn(N * F, 27 + k);
    pre[3] = pre[4] = 10.f;  // a tie: the lower index must win when only one fits
    const auto b = randn(F, 28);
    std::vector<float> allowed(F);
    for (int i = 0; i < F; ++i) allowed[i] = (i % 4 == 1) ? 1.f : 0.f;
    for (int masked = 0; masked < 2; ++masked) {
      std::vector<double> want(N * F, 0.0), pre_after(N * F);
      for (int n = 0; n < N; ++n) {
        std::vector<std::pair<double, int>> row;
        for (int i = 0; i < F; ++i) {
          const double v = masked ? double(pre[n * F + i]) : double(pre[n * F + i]) + b[i];
          pre_after[n * F + i] = v;
          if (!masked || allowed[i] != 0.f) row.push_back({v, -i});
        }
        std::sort(row.rbegin(), row.rend());
        for (int j = 0; j < std::min<int>(k, static_cast<int>(row.size())); ++j)
          want[n * F - row[j].second] = std::max(row[j].first, 0.0);
      }
      Tensor P = dev(be, pre, {N, F}), B = dev(be, b, {F}), Fo({N, F}, DType::F32, be.device());
      Tensor A = dev(be, allowed, {F});
      be.topk_rows(Fo, P, masked ? TensorView{} : B.view(), k, masked ? A.view() : TensorView{});
      EXPECT_LE(rel_error(to_host_f32(be, Fo), want), kTolF32Op) << be.name() << " k=" << k << " masked=" << masked;
      EXPECT_LE(rel_error(to_host_f32(be, P), pre_after), kTolF32Op);
    }
  }
}

// The batch top-k against a sort in double: the keep largest of max(pre + b, 0) over the whole
// batch, ties by lower flat index (planted ties straddle the cut), fewer positives than keep, keep
// 0, and the smallest kept value it returns; statistics as the epilogue's.
TEST_P(BackendEquivalence, BatchTopk) {
  Backend& be = *GetParam();
  // coarse: values on a grid of 1/2 and no bias, so the cut falls among many equal values.
  struct Case { int N, F; int64_t keep; bool coarse; };
  for (Case cs : {Case{1, 1, 1, false}, Case{9, 77, 20, false}, Case{kEpilogueRows + 5, 130, 300, false},
                  Case{6, 10, 60, false}, Case{4, 9, 0, false}, Case{3, 5, 1000, false}, Case{9, 77, 100, true},
                  Case{kEpilogueRows + 5, 130, 777, true}}) {
    const int N = cs.N, F = cs.F;
    auto pre = randn(static_cast<size_t>(N) * F, 70 + N + F);
    std::vector<float> b = randn(F, 71, 0.1f);
    if (cs.coarse) {
      for (auto& v : pre) v = std::round(v * 2.f) / 2.f;
      std::fill(b.begin(), b.end(), 0.f);
    }
    std::vector<double> pre_ref(pre.size()), f_ref(pre.size(), 0.0), fires(F, 0.0), mass(F, 0.0);
    std::vector<std::pair<double, int64_t>> all;
    for (int n = 0; n < N; ++n)
      for (int i = 0; i < F; ++i) {
        const float v = pre[n * F + i] + b[i];
        pre_ref[n * F + i] = v;
        if (v > 0.f) all.push_back({v, -(static_cast<int64_t>(n) * F + i)});
      }
    std::sort(all.rbegin(), all.rend());
    const size_t take = std::min<size_t>(all.size(), static_cast<size_t>(cs.keep));
    double min_kept = 0;
    for (size_t r = 0; r < take; ++r) {
      f_ref[-all[r].second] = all[r].first;
      min_kept = all[r].first;
    }
    for (int n = 0; n < N; ++n)
      for (int i = 0; i < F; ++i) fires[i] += f_ref[n * F + i] > 0, mass[i] += f_ref[n * F + i];
    Tensor Pd = dev(be, pre, {N, F}), Bd = dev(be, b, {F}), Fo = dev(be, randn(pre.size(), 72), {N, F});
    Tensor Fi = dev(be, randn(F, 73), {F}), Ma = dev(be, randn(F, 74), {F});
    const std::string at = std::string(be.name()) + " N=" + std::to_string(N) + " F=" + std::to_string(F) +
                           " keep=" + std::to_string(cs.keep);
    if (cs.coarse) {  // the test must exercise a cut inside a run of ties
      ASSERT_LT(take, all.size()) << at;
      EXPECT_EQ(all[take - 1].first, all[take].first) << at;
    }
    const float got = be.batch_topk(Fo, Pd, Bd, cs.keep, Fi, Ma);
    EXPECT_EQ(static_cast<double>(got), min_kept) << at;
    EXPECT_LE(rel_error(to_host_f32(be, Pd), pre_ref), 0.0) << at;
    EXPECT_LE(rel_error(to_host_f32(be, Fo), f_ref), 0.0) << at;
    EXPECT_LE(rel_error(to_host_f32(be, Fi), fires), 0.0) << at;
    EXPECT_LE(rel_error(to_host_f32(be, Ma), mass), kTolF32Op) << at;
  }
}

// JumpReLU's encoder (encode_epilogue with a threshold) and backward against their definitions.
TEST_P(BackendEquivalence, JumpReluForwardAndBackward) {
  Backend& be = *GetParam();
  for (int N : {1, 9, static_cast<int>(kEpilogueRows) + 3}) {
    const int F = 131;
    const float eps = 0.3f, c = 0.05f;
    auto pre = randn(static_cast<size_t>(N) * F, 80 + N), b = randn(F, 81, 0.2f), th = randn(F, 82, 0.3f);
    for (auto& t : th) t = std::abs(t) + 0.01f;
    th[0] = -0.2f;  // a non-positive threshold (SAELens allows it): JumpReLU is ReLU there
    const auto df = randn(pre.size(), 83);
    std::vector<double> f_ref(pre.size()), pb(pre.size()), dlog(F, 0.0), dpre(pre.size()), fires(F, 0.0), mass(F, 0.0);
    for (int n = 0; n < N; ++n)
      for (int i = 0; i < F; ++i) {
        const float v = pre[n * F + i] + b[i];
        pb[n * F + i] = v;
        f_ref[n * F + i] = v > 0.f && v > th[i] ? v : 0.0;
        fires[i] += f_ref[n * F + i] > 0, mass[i] += f_ref[n * F + i];
        const double u = (double(v) - th[i]) / eps;
        if (u > -0.5 && u < 0.5) dlog[i] += -(double(th[i]) / eps) * (double(th[i]) * df[n * F + i] + c);
        dpre[n * F + i] = f_ref[n * F + i] > 0 ? df[n * F + i] : 0.0;
      }
    Tensor Pd = dev(be, pre, {N, F}), Bd = dev(be, b, {F}), Td = dev(be, th, {F}), Fo({N, F}, DType::F32, be.device());
    Tensor Fi({F}, DType::F32, be.device()), Ma({F}, DType::F32, be.device());
    EncoderActivation act;
    act.threshold = Td;
    be.encode_epilogue(Fo, Pd, Bd, act, Fi, Ma);
    EXPECT_LE(rel_error(to_host_f32(be, Fo), f_ref), 0.0) << be.name() << " N=" << N;
    EXPECT_LE(rel_error(to_host_f32(be, Fi), fires), 0.0);
    EXPECT_LE(rel_error(to_host_f32(be, Ma), mass), kTolF32Op);
    Tensor Dd = dev(be, df, {N, F}), Lg({F}, DType::F32, be.device());
    be.jumprelu_backward(Lg, Dd, Fo, Pd, Td, eps, c);
    EXPECT_LE(rel_error(to_host_f32(be, Lg), dlog), kTolF32Op) << be.name() << " N=" << N;
    EXPECT_LE(rel_error(to_host_f32(be, Dd), dpre), 0.0);
  }
}

TEST_P(BackendEquivalence, KeepColumns) {
  Backend& be = *GetParam();
  const int N = 7, F = 300;
  const auto x = randn(static_cast<size_t>(N) * F, 90);
  for (auto [c0, c1] : {std::pair<int, int>{0, 0}, {0, 300}, {17, 211}, {299, 300}}) {
    std::vector<double> want(x.size());
    for (int n = 0; n < N; ++n)
      for (int i = 0; i < F; ++i) want[n * F + i] = i >= c0 && i < c1 ? x[n * F + i] : 0.0;
    Tensor X = dev(be, x, {N, F}), Y = dev(be, randn(x.size(), 91), {N, F});
    be.keep_columns(Y, X, c0, c1);
    EXPECT_LE(rel_error(to_host_f32(be, Y), want), 0.0) << be.name() << " [" << c0 << ", " << c1 << ")";
    be.keep_columns(X, X, c0, c1);  // in place
    EXPECT_LE(rel_error(to_host_f32(be, X), want), 0.0);
  }
}

// The sparse decoder's three products against the dense ones in double, on f with at most k
// non-zeros per row (some rows empty, some entries negative: the ops only skip zeros). The shapes
// straddle the CUDA kernels' chunks (130 latents, 129 columns over 128-thread blocks).
TEST_P(BackendEquivalence, SparseDecode) {
  Backend& be = *GetParam();
  struct Shape { int N, F, d, k; };
  for (Shape s : {Shape{1, 1, 1, 1}, Shape{9, 77, 13, 5}, Shape{33, 130, 129, 7}, Shape{5, 40, 300, 40}}) {
    std::vector<float> f(static_cast<size_t>(s.N) * s.F, 0.f);
    std::mt19937_64 rng(41 + s.F);
    for (int n = 0; n < s.N; ++n) {
      if (n % 4 == 3) continue;  // an empty row
      for (int j = 0; j < s.k; ++j) f[n * s.F + static_cast<int>(rng() % s.F)] = 0.5f + 0.1f * j - (j == 2 ? 1.f : 0.f);
    }
    const auto W = randn(static_cast<size_t>(s.F) * s.d, 42), dx = randn(static_cast<size_t>(s.N) * s.d, 43);
    const auto g0 = randn(static_cast<size_t>(s.F) * s.d, 44);
    const float alpha = 0.7f, beta = -0.4f;
    std::vector<double> out(static_cast<size_t>(s.N) * s.d, 0.0), gW(g0.size()), df(f.size(), 0.0);
    for (int i = 0; i < s.F; ++i)
      for (int j = 0; j < s.d; ++j) gW[i * s.d + j] = beta * double(g0[i * s.d + j]);
    for (int n = 0; n < s.N; ++n)
      for (int i = 0; i < s.F; ++i) {
        const double v = f[n * s.F + i];
        if (v == 0.0) continue;
        double dot = 0;
        for (int j = 0; j < s.d; ++j) {
          out[n * s.d + j] += v * W[i * s.d + j];
          gW[i * s.d + j] += alpha * v * dx[n * s.d + j];
          dot += double(dx[n * s.d + j]) * W[i * s.d + j];
        }
        df[n * s.F + i] = dot;
      }
    Tensor Fd = dev(be, f, {s.N, s.F}), Wd = dev(be, W, {s.F, s.d}), Xd = dev(be, dx, {s.N, s.d});
    Tensor Od = dev(be, randn(out.size(), 45), {s.N, s.d}), Gd = dev(be, g0, {s.F, s.d});
    Tensor Dd = dev(be, randn(f.size(), 46), {s.N, s.F});  // overwritten, zeros included
    be.sparse_decode(Od, Fd, Wd);
    be.sparse_decode_grad_w(Gd, Fd, Xd, alpha, beta);
    be.sparse_decode_grad_f(Dd, Fd, Xd, Wd);
    const std::string at = std::string(be.name()) + " N=" + std::to_string(s.N) + " F=" + std::to_string(s.F) +
                           " d=" + std::to_string(s.d) + " k=" + std::to_string(s.k);
    EXPECT_LE(rel_error(to_host_f32(be, Od), out), kTolF32Op) << at;
    EXPECT_LE(rel_error(to_host_f32(be, Gd), gW), kTolF32Op) << at;
    EXPECT_LE(rel_error(to_host_f32(be, Dd), df), kTolF32Op) << at;
  }
}

// The sparse encoder backward against xᵀ dpre and Σ_n dpre in double, with and without the bias
// gradient. dpre has up to k non-zeros per row (some rows empty, some negative: the op skips only
// zeros); the shapes straddle the CPU's 32-latent blocks, the CUDA transpose's 32×32 tiles and
// (N = 70) more than one kEpilogueRows chunk of the bias' column sum.
TEST_P(BackendEquivalence, SparseEncodeGradW) {
  Backend& be = *GetParam();
  struct Shape { int N, F, d, k; };
  for (Shape s : {Shape{1, 1, 1, 1}, Shape{9, 77, 13, 5}, Shape{33, 130, 129, 7}, Shape{5, 40, 300, 40},
                  Shape{70, 33, 40, 3}}) {
    std::vector<float> dpre(static_cast<size_t>(s.N) * s.F, 0.f);
    std::mt19937_64 rng(51 + s.F);
    for (int n = 0; n < s.N; ++n) {
      if (n % 4 == 3) continue;  // an empty row
      for (int j = 0; j < s.k; ++j)
        dpre[n * s.F + static_cast<int>(rng() % s.F)] = 0.5f + 0.1f * j - (j == 2 ? 1.f : 0.f);
    }
    const auto x = randn(static_cast<size_t>(s.N) * s.d, 52);
    std::vector<double> gW(static_cast<size_t>(s.d) * s.F, 0.0), gb(s.F, 0.0);
    for (int n = 0; n < s.N; ++n)
      for (int i = 0; i < s.F; ++i) {
        const double v = dpre[n * s.F + i];
        gb[i] += v;
        for (int j = 0; j < s.d; ++j) gW[j * s.F + i] += double(x[n * s.d + j]) * v;
      }
    Tensor Dp = dev(be, dpre, {s.N, s.F}), Xd = dev(be, x, {s.N, s.d});
    Tensor Gw = dev(be, randn(gW.size(), 53), {s.d, s.F}), Gb = dev(be, randn(gb.size(), 54), {s.F});  // overwritten
    const std::string at = std::string(be.name()) + " N=" + std::to_string(s.N) + " F=" + std::to_string(s.F) +
                           " d=" + std::to_string(s.d) + " k=" + std::to_string(s.k);
    be.sparse_encode_grad_w(Gw, Gb, Dp, Xd);
    EXPECT_LE(rel_error(to_host_f32(be, Gw), gW), kTolF32Op) << at;
    EXPECT_LE(rel_error(to_host_f32(be, Gb), gb), kTolF32Op) << at;
    Tensor Gw2 = dev(be, randn(gW.size(), 55), {s.d, s.F});
    be.sparse_encode_grad_w(Gw2, TensorView{}, Dp, Xd);  // no bias gradient
    EXPECT_LE(rel_error(to_host_f32(be, Gw2), gW), kTolF32Op) << at << " without gb";
  }
}

// The CPU sparse ops sum in a fixed order (lists, panels and blocks do not depend on the thread
// count): 1 and 3 threads give the same bits, at a shape with several list blocks and a tail panel.
TEST(SparseOps, CpuBitsDoNotDependOnThreadCount) {
  Backend& be = cpu_backend();
  const int N = 600, F = 700, d = 40, k = 9;
  std::vector<float> f(static_cast<size_t>(N) * F, 0.f);
  std::mt19937_64 rng(61);
  for (int n = 0; n < N; ++n)
    for (int j = 0; j < k; ++j) f[n * F + static_cast<int>(rng() % F)] = 0.3f + 0.1f * j - (j == 4 ? 1.f : 0.f);
  Tensor Fd = dev(be, f, {N, F}), Wd = dev(be, randn(static_cast<size_t>(F) * d, 62), {F, d});
  Tensor Xd = dev(be, randn(static_cast<size_t>(N) * d, 63), {N, d});
  const auto g0 = randn(static_cast<size_t>(F) * d, 64);
  auto run = [&](int threads) {
    const int before = omp_get_max_threads();
    omp_set_num_threads(threads);
    Tensor O({N, d}, DType::F32, be.device()), G = dev(be, g0, {F, d}), D({N, F}, DType::F32, be.device());
    Tensor E({d, F}, DType::F32, be.device()), B({F}, DType::F32, be.device());
    be.sparse_decode(O, Fd, Wd);
    be.sparse_decode_grad_w(G, Fd, Xd, 0.7f, -0.4f);
    be.sparse_decode_grad_f(D, Fd, Xd, Wd);
    be.sparse_encode_grad_w(E, B, Fd, Xd);
    omp_set_num_threads(before);
    std::vector<std::vector<float>> out;
    for (const Tensor* t : {&O, &G, &D, &E, &B}) out.push_back(to_host_f32(be, *t));
    return out;
  };
  const auto one = run(1), three = run(3);
  for (size_t i = 0; i < one.size(); ++i)
    EXPECT_EQ(std::memcmp(one[i].data(), three[i].data(), one[i].size() * sizeof(float)), 0) << "output " << i;
}

// The hierarchy's ∂L/∂f support, exactly: f > 0, or a child with pre > 0 whose parent is in the
// gate's band |pre| < width/2 (whether the parent is on or off); children off entirely in one case.
TEST_P(BackendEquivalence, HierarchyGradMask) {
  Backend& be = *GetParam();
  struct Case { int N, P, m; float width; bool children_on; };
  for (Case c : {Case{1, 1, 1, 0.5f, true}, Case{13, 5, 3, 0.6f, true}, Case{150, 61, 4, 0.5f, true},
                 Case{40, 7, 2, 0.5f, false}, Case{9, 3, 2, 0.f, true}}) {
    const int N = c.N, P = c.P, m = c.m, F = P + P * m;
    const auto pre = randn(static_cast<size_t>(N) * F, 70 + F);
    std::vector<float> f(pre.size(), 0.f);
    std::vector<double> want(pre.size(), 0.0);
    int64_t gated = 0;  // entries on in the mask where f = 0: the straight-through part
    for (int n = 0; n < N; ++n)
      for (int i = 0; i < F; ++i) {
        const float* pr = pre.data() + n * F;
        const bool child = i >= P, parent_on = child && pr[(i - P) / m] > 0.f;
        f[n * F + i] = pr[i] > 0.f && (!child || (parent_on && c.children_on)) ? pr[i] : 0.f;
        const bool band = child && std::abs(pr[(i - P) / m]) < 0.5f * c.width;
        want[n * F + i] = f[n * F + i] > 0.f || (band && pr[i] > 0.f) ? 1.0 : 0.0;
        gated += want[n * F + i] != 0.0 && f[n * F + i] == 0.f;
      }
    Tensor Mk = dev(be, randn(pre.size(), 71), {N, F}), Fo = dev(be, f, {N, F}), Pr = dev(be, pre, {N, F});
    be.hierarchy_grad_mask(Mk, Fo, Pr, P, m, c.width);
    EXPECT_LE(rel_error(to_host_f32(be, Mk), want), 0.0) << be.name() << " N=" << N << " P=" << P << " m=" << m;
    if (c.width > 0.f && N > 1) {
      EXPECT_GT(gated, 0) << "no gated child in the band: the case tests nothing";
    }
  }
}

// One chunk of rows and several (kEpilogueRows each, the last one short), narrow and wide.
TEST_P(BackendEquivalence, ColumnSum) {
  Backend& be = *GetParam();
  for (auto [N, F] : {std::pair{37, 515}, std::pair{2 * static_cast<int>(kEpilogueRows) + 5, 515}, std::pair{200, 3},
                      std::pair{0, 7}}) {
    const auto x = randn(static_cast<size_t>(N) * F, 29), out0 = randn(F, 30);
    std::vector<double> cs(F);
    for (int i = 0; i < F; ++i) {
      double s = 0;
      for (int n = 0; n < N; ++n) s += x[n * F + i];
      cs[i] = 2.0 * s - 0.5 * out0[i];
    }
    Tensor X = dev(be, x, {N, F}), O = dev(be, out0, {F});
    be.col_sum(O, X, 2.f, -0.5f);
    EXPECT_LE(rel_error(to_host_f32(be, O), cs), kTolF32Op) << be.name() << " N=" << N << " F=" << F;
  }
}

TEST_P(BackendEquivalence, DecoderRowOps) {
  Backend& be = *GetParam();
  const int F = 19, d = 23;
  const auto w = randn(F * d, 31), g = randn(F * d, 32), s = randn(F, 33);
  std::vector<double> norms(F), scaled(F * d), proj(F * d);
  std::vector<float> unit(F * d);
  for (int i = 0; i < F; ++i) {
    double ss = 0;
    for (int j = 0; j < d; ++j) ss += double(w[i * d + j]) * w[i * d + j];
    norms[i] = std::sqrt(ss);
    for (int j = 0; j < d; ++j) {
      scaled[i * d + j] = double(w[i * d + j]) * s[i];
      unit[i * d + j] = static_cast<float>(w[i * d + j] / norms[i]);
    }
    double dot = 0;
    for (int j = 0; j < d; ++j) dot += double(g[i * d + j]) * unit[i * d + j];
    for (int j = 0; j < d; ++j) proj[i * d + j] = g[i * d + j] - dot * unit[i * d + j];
  }
  Tensor W = dev(be, w, {F, d}), N({F}, DType::F32, be.device()), S = dev(be, s, {F});
  be.row_norms(N, W);
  EXPECT_LE(rel_error(to_host_f32(be, N), norms), kTolF32Op);
  be.scale_rows(W, S);
  EXPECT_LE(rel_error(to_host_f32(be, W), scaled), kTolF32Op);
  Tensor U = dev(be, unit, {F, d}), G = dev(be, g, {F, d});
  be.project_out_rows(G, U);
  EXPECT_LE(rel_error(to_host_f32(be, G), proj), kTolF32Op);
}

TEST_P(BackendEquivalence, Adam) {
  Backend& be = *GetParam();
  const int n = 101;
  auto p = randn(n, 34), g = randn(n, 35), m = randn(n, 36, 0.1f), v = randn(n, 37, 0.1f);
  for (auto& x : v) x = std::abs(x);
  const double lr = 1e-3, b1 = 0.9, b2 = 0.999, eps = 1e-8;
  const int64_t t = 7;
  std::vector<double> pr(n), mr(n), vr(n);
  for (int i = 0; i < n; ++i) {
    mr[i] = b1 * m[i] + (1 - b1) * g[i];
    vr[i] = b2 * v[i] + (1 - b2) * double(g[i]) * g[i];
    const double mh = mr[i] / (1 - std::pow(b1, t)), vh = vr[i] / (1 - std::pow(b2, t));
    pr[i] = p[i] - lr * mh / (std::sqrt(vh) + eps);
  }
  Tensor P = dev(be, p, {n}), G = dev(be, g, {n}), M = dev(be, m, {n}), V = dev(be, v, {n});
  be.adam(P, G, M, V, static_cast<float>(lr), static_cast<float>(b1), static_cast<float>(b2), static_cast<float>(eps), t);
  EXPECT_LE(rel_error(to_host_f32(be, P), pr), kTolF32Op);
  EXPECT_LE(rel_error(to_host_f32(be, M), mr), kTolF32Op);
  EXPECT_LE(rel_error(to_host_f32(be, V), vr), kTolF32Op);
}

TEST_P(BackendEquivalence, SmoothL0AndDots) {
  Backend& be = *GetParam();
  const int N = 9, F = 301;
  auto f = randn(N * F, 41);
  for (auto& v : f) v = std::max(v, 0.f);
  const auto df = randn(N * F, 42);
  auto a = randn(F, 43);
  for (auto& v : a) v = 0.5f + std::abs(v);
  const float c = 0.7f;
  std::vector<double> want(N * F), want_sech(F, 0.0);
  double st = 0;
  for (int n = 0; n < N; ++n)
    for (int i = 0; i < F; ++i) {
      const double fv = f[n * F + i], th = std::tanh(a[i] * fv);
      want[n * F + i] = fv > 0 ? df[n * F + i] + c * a[i] * (1 - th * th) : 0.0;
      want_sech[i] += (1 - th * th) * fv;
      st += th;
    }
  Tensor Fo = dev(be, f, {N, F}), D = dev(be, df, {N, F}), A = dev(be, a, {F}), O({N, F}, DType::F32, be.device());
  Tensor S({F}, DType::F32, be.device());
  be.smooth_l0_grad(O, D, Fo, A, c, S);
  EXPECT_LE(rel_error(to_host_f32(be, O), want), kTolF32Op);
  EXPECT_LE(rel_error(to_host_f32(be, S), want_sech), kTolF32Op);
  EXPECT_NEAR(be.sum_tanh(Fo, A), st, kTolF32Op * std::abs(st));
  std::vector<double> cd(F, 0.0), rd(N, 0.0);
  for (int n = 0; n < N; ++n)
    for (int i = 0; i < F; ++i) {
      cd[i] += double(f[n * F + i]) * df[n * F + i];
      rd[n] += double(f[n * F + i]) * df[n * F + i];
    }
  Tensor C({F}, DType::F32, be.device()), R({N}, DType::F32, be.device());
  be.col_dot(C, Fo, D);
  be.row_dot(R, Fo, D);
  EXPECT_LE(rel_error(to_host_f32(be, C), cd), kTolF32Op);
  EXPECT_LE(rel_error(to_host_f32(be, R), rd), kTolF32Op);
}

// The tangent of one Adam step against central differences of the step in float64.
TEST_P(BackendEquivalence, AdamTangent) {
  Backend& be = *GetParam();
  const int n = 64;
  auto g = randn(n, 44), ga = randn(n, 45), m0 = randn(n, 46, 0.1f), v0 = randn(n, 47, 0.1f);
  for (auto& x : v0) x = std::abs(x);
  v0[0] = 0.f;  // a fresh moment
  const double lr = 1e-3, b1 = 0.9, b2 = 0.999, eps = 1e-8;
  const int64_t t = 5;
  auto step = [&](int i, double a) {
    const double gi = g[i] + a * ga[i];
    const double m = b1 * m0[i] + (1 - b1) * gi, v = b2 * v0[i] + (1 - b2) * gi * gi;
    return -lr * (m / (1 - std::pow(b1, t))) / (std::sqrt(v / (1 - std::pow(b2, t))) + eps);
  };
  std::vector<double> want(n);
  std::vector<float> m(n), v(n);
  for (int i = 0; i < n; ++i) {
    const double h = 1e-4;
    want[i] = (step(i, h) - step(i, -h)) / (2 * h);
    m[i] = static_cast<float>(b1 * m0[i] + (1 - b1) * g[i]);
    v[i] = static_cast<float>(b2 * v0[i] + (1 - b2) * double(g[i]) * g[i]);
  }
  Tensor U({n}, DType::F32, be.device()), G = dev(be, g, {n}), GA = dev(be, ga, {n}), M = dev(be, m, {n}), V = dev(be, v, {n});
  be.adam_tangent(U, G, GA, M, V, static_cast<float>(lr), static_cast<float>(b1), static_cast<float>(b2),
                  static_cast<float>(eps), t);
  EXPECT_LE(rel_error(to_host_f32(be, U), want), 1e-4);
}

// The forward-mode tangent through the moments' history: with m', v' and g all moving with α
// (m'(α) = m0 + α zm0, v'(α) = v0 + α zv0, g(α) = g + α dg), central differences of one float64
// Adam step give ∂m/∂α, ∂v/∂α and ∂Δp/∂α; the op must match all three (odd length, a zero moment).
TEST_P(BackendEquivalence, AdamForwardTangent) {
  Backend& be = *GetParam();
  const int n = 67;
  auto g = randn(n, 54), dg = randn(n, 55), m0 = randn(n, 56, 0.1f), v0 = randn(n, 57, 0.1f);
  auto zm0 = randn(n, 58, 0.05f), zv0 = randn(n, 59, 0.01f), z0 = randn(n, 60, 0.01f);
  for (auto& x : v0) x = std::abs(x) + 0.02f;  // v'(α) stays positive over the differences
  v0[0] = 0.f, zv0[0] = 0.f, g[0] = 0.f;       // a fresh moment: s = 0
  const double lr = 1e-3, b1 = 0.9, b2 = 0.999, eps = 1e-8;
  const int64_t t = 7;
  const double bc1 = 1 - std::pow(b1, t), bc2 = 1 - std::pow(b2, t);
  struct Out { double m, v, dp; };
  auto step = [&](int i, double a) {
    const double gi = g[i] + a * dg[i];
    const double m = b1 * (m0[i] + a * zm0[i]) + (1 - b1) * gi;
    const double v = b2 * (v0[i] + a * zv0[i]) + (1 - b2) * gi * gi;
    return Out{m, v, -lr * (m / bc1) / (std::sqrt(std::max(v, 0.0) / bc2) + eps)};
  };
  std::vector<double> want_z(n), want_zm(n), want_zv(n);
  std::vector<float> m(n), v(n);
  for (int i = 0; i < n; ++i) {
    const double h = 1e-5;
    const Out p = step(i, h), q = step(i, -h), o = step(i, 0);
    want_zm[i] = (p.m - q.m) / (2 * h);
    want_zv[i] = (p.v - q.v) / (2 * h);
    want_z[i] = z0[i] + (i == 0 ? -lr / bc1 * want_zm[i] / eps : (p.dp - q.dp) / (2 * h));
    m[i] = static_cast<float>(o.m);
    v[i] = static_cast<float>(o.v);
  }
  Tensor Z = dev(be, z0, {n}), ZM = dev(be, zm0, {n}), ZV = dev(be, zv0, {n});
  Tensor G = dev(be, g, {n}), DG = dev(be, dg, {n}), M = dev(be, m, {n}), V = dev(be, v, {n});
  be.adam_forward_tangent(Z, ZM, ZV, G, DG, M, V, static_cast<float>(lr), static_cast<float>(b1),
                          static_cast<float>(b2), static_cast<float>(eps), t);
  EXPECT_LE(rel_error(to_host_f32(be, ZM), want_zm), 1e-4);
  EXPECT_LE(rel_error(to_host_f32(be, ZV), want_zv), 1e-4);
  EXPECT_LE(rel_error(to_host_f32(be, Z), want_z), 1e-4);
}

std::string backend_name(const ::testing::TestParamInfo<Backend*>& info) { return info.param->name(); }

INSTANTIATE_TEST_SUITE_P(AllBackends, BackendEquivalence, ::testing::ValuesIn(available_backends()), backend_name);

// The whole training loop on the GPU (hierarchical, learned α: every SAE op and the
// hypergradient) follows the CPU run: same batches, same init, f32 throughout.
TEST(Backends, TrainingOnCudaTracksTheCpu) {
  bool has_cuda = false;
  for (Backend* be : available_backends()) has_cuda |= be->device() == Device::CUDA;
  if (!has_cuda) GTEST_SKIP() << "no CUDA backend/GPU here";
  const std::string dir = saelab::test::make_temp_dir("cuda_train");
  SyntheticConfig s;
  s.d = 24;
  s.n_features = 10;
  s.children_per_parent = 2;
  s.n_tokens = 20000;
  write_synthetic(s, dir + "/acts");
  std::vector<std::vector<float>> weights;
  for (const char* device : {"cpu", "cuda"}) {
    TrainConfig c;
    c.activations = dir + "/acts";
    c.out_dir = dir + "/" + device;
    c.device = device;
    c.architecture = "hierarchical";
    c.d_sae = 60;
    c.children_per_parent = 2;
    c.penalty = "dual_adaptive";
    c.alpha_mode = "learned";
    c.batch_size = 256;
    c.lr = 1e-3f;
    c.l1_coefficient = 1.0f;
    c.total_tokens = 10240;
    c.progress = false;
    train_sae(c);
    const SafetensorsFile f(c.out_dir + "/sae/sae_weights.safetensors");
    weights.push_back(f.read_f32("W_dec"));
  }
  // 40 Adam steps amplify f32 rounding differences a little: a loose but meaningful bound.
  EXPECT_LE(rel_error(weights[1], weights[0]), 1e-2);
}

// The CUDA backend is offered exactly where it can run: listed by available_backends() (so every
// equivalence case above runs on it) and returned by name; elsewhere, asking for it is one clear
// error that says whether the build or the machine lacks it.
TEST(Backends, CudaIsOfferedExactlyWhereItCanRun) {
  Backend* cuda = nullptr;
  for (Backend* be : available_backends())
    if (be->device() == Device::CUDA) cuda = be;
  EXPECT_EQ(available_backends().front(), &cpu_backend());
  if (cuda) {
    EXPECT_EQ(&backend_named("cuda"), cuda);
    EXPECT_EQ(&backend_for(Device::CUDA), cuda);
    return;
  }
  try {
    backend_named("cuda");
    ADD_FAILURE() << "backend_named(\"cuda\") returned a backend that available_backends() does not list";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no CUDA device available"), std::string::npos) << e.what();
  }
  EXPECT_THROW(backend_named("tpu"), Error);
}

}  // namespace

// The CPU's vectorisable exp (SiLU, softmax): within a few ulp of std::exp, and NaN stays NaN (a NaN
// cast to int was undefined behaviour; fuzz_llama2c_model found it with NaN weights).
TEST(CpuMath, ExpSimdIsCloseToStdExpAndPropagatesNaN) {
  for (float x = -86.0f; x < 88.0f; x += 0.37f) {
    const float a = saelab::cpu::exp_simd(x), b = std::exp(x);
    EXPECT_NEAR(a, b, 4e-7f * b) << x;
  }
  EXPECT_TRUE(std::isnan(saelab::cpu::exp_simd(std::numeric_limits<float>::quiet_NaN())));
  EXPECT_EQ(saelab::cpu::exp_simd(std::numeric_limits<float>::infinity()), std::numeric_limits<float>::infinity());
  EXPECT_EQ(saelab::cpu::exp_simd(-std::numeric_limits<float>::infinity()), 0.f);
}
