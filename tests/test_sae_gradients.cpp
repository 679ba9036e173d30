// Every SAE gradient checked against central finite differences of an independent float64
// implementation of the same loss (written here with plain loops).
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
constexpr double kTolSparseVsDense = 1e-5;  // the sparse step vs the dense one, f32 both (relative, per tensor)

struct P64 {
  std::vector<double> W_enc, b_enc, W_dec, b_dec;  // [d,F] [F] [F,d] [d]
  std::vector<double>* by_name(const std::string& n) {
    return n == "W_enc" ? &W_enc : n == "b_enc" ? &b_enc : n == "W_dec" ? &W_dec : &b_dec;
  }
};

// top-k indices of v among `allowed` (ties: lower index), as the backend defines.
std::vector<int> topk(const std::vector<double>& v, int k, const std::vector<float>* allowed) {
  std::vector<int> idx;
  for (int i = 0; i < static_cast<int>(v.size()); ++i)
    if (!allowed || (*allowed)[i] != 0.f) idx.push_back(i);
  std::stable_sort(idx.begin(), idx.end(), [&](int a, int b) { return v[a] > v[b]; });
  idx.resize(std::min<size_t>(idx.size(), static_cast<size_t>(k)));
  return idx;
}

// The batch loss in float64. `residual` (x − x̂ at the base point, detached) feeds aux-k.
double loss64(const SaeConfig& c, const P64& p, const std::vector<double>& x, int N, const SaeLossTerms& t,
              const std::vector<double>& residual, std::vector<double>* xhat_out = nullptr,
              std::vector<double>* latents_out = nullptr) {
  const int d = c.d_in, F = c.d_sae;
  double total = 0;
  int n_dead = 0;
  for (float v : t.dead) n_dead += v != 0.f;
  for (int n = 0; n < N; ++n) {
    std::vector<double> pre(F), f(F, 0.0), xh(d);
    for (int i = 0; i < F; ++i) {
      double s = p.b_enc[i];
      for (int j = 0; j < d; ++j) s += (x[n * d + j] - (c.apply_b_dec_to_input ? p.b_dec[j] : 0.0)) * p.W_enc[j * F + i];
      pre[i] = s;
    }
    if (c.architecture == SaeArchitecture::TopK) {
      for (int i : topk(pre, c.k, nullptr)) f[i] = std::max(pre[i], 0.0);
    } else {
      for (int i = 0; i < F; ++i) f[i] = std::max(pre[i], 0.0);
    }
    if (c.architecture == SaeArchitecture::Hierarchical) {
      const int P = c.n_parents, m = c.children_per_parent;
      for (int j = 0; j < P * m; ++j)
        if (!(f[j / m] > 0)) f[P + j] = 0;
    }
    if (latents_out)
      for (int i = 0; i < F; ++i) latents_out->push_back(f[i]);
    for (int j = 0; j < d; ++j) {
      double s = p.b_dec[j];
      for (int i = 0; i < F; ++i) s += f[i] * p.W_dec[i * d + j];
      xh[j] = s;
      total += (x[n * d + j] - s) * (x[n * d + j] - s);
    }
    if (xhat_out)
      for (int j = 0; j < d; ++j) xhat_out->push_back(xh[j]);
    if (c.architecture == SaeArchitecture::Standard) {
      for (int i = 0; i < F; ++i) {
        double nrm = 0;
        for (int j = 0; j < d; ++j) nrm += p.W_dec[i * d + j] * p.W_dec[i * d + j];
        const double w = t.penalty_weights.empty() ? 1.0 : t.penalty_weights[i];
        total += t.l1_coefficient * w * f[i] * std::sqrt(nrm);
      }
    } else if (c.architecture == SaeArchitecture::Hierarchical) {
      for (int i = 0; i < F; ++i) {
        double nrm = 0;
        for (int j = 0; j < d; ++j) nrm += p.W_dec[i * d + j] * p.W_dec[i * d + j];
        const double w = t.penalty_weights.empty() ? 1.0 : t.penalty_weights[i];
        total += t.l1_coefficient * w * f[i] * std::sqrt(nrm);
      }
    } else if (n_dead > 0) {
      const double scale = std::min(1.0, double(n_dead) / c.k_aux);
      std::vector<double> fa(F, 0.0);
      for (int i : topk(pre, std::min(c.k_aux, n_dead), &t.dead)) fa[i] = std::max(pre[i], 0.0);
      for (int j = 0; j < d; ++j) {
        double e = 0;
        for (int i = 0; i < F; ++i) e += fa[i] * p.W_dec[i * d + j];
        const double diff = e - residual[n * d + j];
        total += c.aux_coefficient * scale * diff * diff;
      }
    }
  }
  return total / N;
}

std::vector<float> to_f32(const std::vector<double>& v) { return {v.begin(), v.end()}; }

// J = MSE + (λ_J/N) Σ tanh(f_i‖W_dec,i‖/ε) (decoder-norm-folded activations), in float64.
double objective64(const SaeConfig& c, const P64& p, const std::vector<double>& x, int N, double lam_J, double eps,
                   bool smooth) {
  SaeLossTerms none;
  std::vector<double> f;
  const std::vector<double> zero(x.size(), 0.0);
  const double mse = loss64(c, p, x, N, none, zero, nullptr, &f);
  const int F = c.d_sae, d = c.d_in;
  double s = 0;
  for (size_t k = 0; k < f.size(); ++k) {
    const int i = static_cast<int>(k % F);
    double nrm = 0;
    for (int j = 0; j < d; ++j) nrm += p.W_dec[i * d + j] * p.W_dec[i * d + j];
    s += std::tanh(f[k] * std::sqrt(nrm) / eps);
  }
  return mse + (smooth ? lam_J * s / N : 0.0);
}

void check_gradients(const SaeConfig& cfg, const SaeLossTerms& terms, uint64_t seed, bool hyper = false,
                     bool smooth = true) {
  const int d = cfg.d_in, F = cfg.d_sae, N = 6;
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> nd(0.0, 1.0);
  auto randv = [&](size_t n, double s) {
    std::vector<double> v(n);
    for (auto& x : v) x = static_cast<double>(static_cast<float>(s * nd(rng)));  // exactly representable in f32
    return v;
  };
  P64 p{randv(d * F, 0.5), randv(F, 0.3), randv(F * d, 0.5), randv(d, 0.3)};
  const std::vector<double> x = randv(N * d, 1.0);

  Backend& be = cpu_backend();
  Sae sae(cfg, be);
  be.upload(sae.params().W_enc, to_f32(p.W_enc).data());
  be.upload(sae.params().b_enc, to_f32(p.b_enc).data());
  be.upload(sae.params().W_dec, to_f32(p.W_dec).data());
  be.upload(sae.params().b_dec, to_f32(p.b_dec).data());
  SaeParams grads(sae.config(), be.device());
  SaeWorkspace ws(sae.config(), N, be.device());
  Tensor X = to_device(be, {N, d}, to_f32(x).data());
  SaeParams gJ(sae.config(), be.device());
  std::vector<SaeParams> ga;
  for (size_t l = 0; l < sae.levels().size(); ++l) ga.emplace_back(sae.config(), be.device());
  SaeHyperRequest hr;
  hr.lambda_J = 0.8f;
  hr.eps = 0.3f;
  hr.smooth_l0 = smooth;
  hr.levels = sae.levels();
  for (int i = 0; i < F; ++i) hr.dw.push_back(0.5f - 0.15f * static_cast<float>(i % 7));
  hr.grad_J = &gJ;
  hr.g_alpha = &ga;
  sae.forward_backward(X, terms, grads, ws, hyper ? &hr : nullptr);  // a second call must not see stale state
  const SaeBatchStats st = sae.forward_backward(X, terms, grads, ws, hyper ? &hr : nullptr);

  std::vector<double> xhat;
  const std::vector<double> none(static_cast<size_t>(N * d), 0.0);
  loss64(sae.config(), p, x, N, terms, none, &xhat);
  std::vector<double> residual(static_cast<size_t>(N * d));
  for (int i = 0; i < N * d; ++i) residual[i] = x[i] - xhat[i];
  const double L = loss64(sae.config(), p, x, N, terms, residual);
  EXPECT_NEAR(st.loss(), L, kTolLoss * std::abs(L)) << "loss";

  const double h = 1e-6;
  // A straight-through gate makes the training gradient a surrogate, not the gradient of L: its
  // kernel is checked by the backend-equivalence harness, its α-derivative below.
  const bool ste = cfg.architecture == SaeArchitecture::Hierarchical && cfg.gate_ste_width > 0.f;
  for (const auto& [name, view] : grads.named()) {
    if (ste) break;
    std::vector<double>* v = p.by_name(name);
    std::vector<double> fd(v->size());
    for (size_t i = 0; i < v->size(); ++i) {
      const double keep = (*v)[i];
      (*v)[i] = keep + h;
      const double up = loss64(sae.config(), p, x, N, terms, residual);
      (*v)[i] = keep - h;
      const double down = loss64(sae.config(), p, x, N, terms, residual);
      (*v)[i] = keep;
      fd[i] = (up - down) / (2 * h);
    }
    const auto analytic = to_host_f32(be, view);
    EXPECT_LE(test::rel_error(analytic, fd), kTolGradient) << sae_architecture_name(cfg.architecture) << " " << name;
  }
  if (!hyper) return;
  // ∇J against finite differences of J (the hierarchy's gate held: it has no straight-through term).
  const double J = objective64(sae.config(), p, x, N, hr.lambda_J, hr.eps, smooth);
  EXPECT_NEAR(hr.J, J, kTolLoss * std::abs(J)) << "J";
  for (const auto& [name, view] : gJ.named()) {
    std::vector<double>* v = p.by_name(name);
    std::vector<double> fdJ(v->size());
    for (size_t i = 0; i < v->size(); ++i) {
      const double keep = (*v)[i];
      (*v)[i] = keep + h;
      const double ju = objective64(sae.config(), p, x, N, hr.lambda_J, hr.eps, smooth);
      (*v)[i] = keep - h;
      const double jd = objective64(sae.config(), p, x, N, hr.lambda_J, hr.eps, smooth);
      (*v)[i] = keep;
      fdJ[i] = (ju - jd) / (2 * h);
    }
    EXPECT_LE(test::rel_error(to_host_f32(be, view), fdJ), kTolGradient) << "grad_J " << name;
  }
  // g_α,l = ∂g/∂α_l of the training gradient itself (straight-through gate included), which is
  // affine in the penalty weights: (g(w + dw_l) − g(w − dw_l)) / 2 exactly, up to f32 rounding.
  for (size_t l = 0; l < hr.levels.size(); ++l) {
    SaeLossTerms up = terms, down = terms;
    up.penalty_weights.assign(static_cast<size_t>(F), 1.f);
    for (int i = 0; i < F; ++i)
      if (!terms.penalty_weights.empty()) up.penalty_weights[i] = terms.penalty_weights[i];
    down.penalty_weights = up.penalty_weights;
    for (int i = hr.levels[l].first; i < hr.levels[l].second; ++i) {
      up.penalty_weights[i] += hr.dw[i];
      down.penalty_weights[i] -= hr.dw[i];
    }
    SaeParams gu(sae.config(), be.device()), gd(sae.config(), be.device());
    sae.forward_backward(X, up, gu, ws);
    sae.forward_backward(X, down, gd, ws);
    const std::vector<float> u = to_host_f32(be, gu.flat), dn = to_host_f32(be, gd.flat);
    std::vector<double> want(u.size());
    for (size_t i = 0; i < u.size(); ++i) want[i] = 0.5 * (static_cast<double>(u[i]) - dn[i]);
    EXPECT_LE(test::rel_error(to_host_f32(be, ga[l].flat), want), kTolGradient) << "g_alpha level " << l;
  }
  if (ste) {  // the gate passes the children's α to the parents: the test must exercise that path
    const std::vector<float> b = to_host_f32(be, ga[1].b_enc);
    double parents = 0;
    for (int i = 0; i < cfg.n_parents; ++i) parents += std::abs(b[i]);
    EXPECT_GT(parents, 0.0) << "no parent inside the gate's band: the straight-through path is untested";
  }
}

SaeConfig small(SaeArchitecture a) {
  SaeConfig c;
  c.architecture = a;
  c.d_in = 5;
  c.d_sae = 9;
  c.k = 3;
  c.k_aux = 2;
  c.aux_coefficient = 0.5f;
  return c;
}

}  // namespace

TEST(SaeGradients, StandardWithDecoderNormWeightedL1) {
  SaeLossTerms t;
  t.l1_coefficient = 0.7f;
  check_gradients(small(SaeArchitecture::Standard), t, 1);
}

TEST(SaeGradients, StandardWithPerLatentPenaltyWeights) {
  SaeLossTerms t;
  t.l1_coefficient = 0.4f;
  t.penalty_weights = {0.5f, 1.5f, 1.f, 2.f, 0.25f, 1.f, 3.f, 0.f, 1.f};
  check_gradients(small(SaeArchitecture::Standard), t, 2);
}

TEST(SaeGradients, StandardWithoutBdecOnInput) {
  SaeConfig c = small(SaeArchitecture::Standard);
  c.apply_b_dec_to_input = false;
  SaeLossTerms t;
  t.l1_coefficient = 0.3f;
  check_gradients(c, t, 3);
}

SaeConfig hierarchical() {
  SaeConfig c;
  c.architecture = SaeArchitecture::Hierarchical;
  c.d_in = 5;
  c.n_parents = 3;
  c.children_per_parent = 2;
  c.d_sae = 9;
  return c;
}

TEST(SaeGradients, HierarchicalWithGatedChildren) {
  SaeLossTerms t;
  t.l1_coefficient = 0.6f;
  t.penalty_weights = {1.2f, 0.8f, 1.f, 0.5f, 1.5f, 1.f, 2.f, 0.3f, 1.f};
  check_gradients(hierarchical(), t, 6);
}

// The meta-objective's gradient ∇J and the α-direction g_α (method.md §2), flat and hierarchical,
// and on the configuration the experiment trains: the hierarchy's straight-through gate of width
// 0.5, through which the children's α reaches the parents' gradient.
TEST(SaeGradients, MetaObjectiveAndAlphaDirection) {
  SaeLossTerms t;
  t.l1_coefficient = 0.5f;
  t.penalty_weights = {1.1f, 0.9f, 1.f, 0.7f, 1.3f, 1.f, 1.4f, 0.6f, 1.f};
  check_gradients(small(SaeArchitecture::Standard), t, 7, /*hyper=*/true);
  check_gradients(hierarchical(), t, 8, true);
  check_gradients(hierarchical(), t, 9, true, /*smooth=*/false);  // J = MSE only
  SaeConfig ste = hierarchical();
  ste.gate_ste_width = 0.5f;
  check_gradients(ste, t, 10, true);
  check_gradients(ste, t, 12, true);
}

TEST(SaeGradients, TopK) {
  check_gradients(small(SaeArchitecture::TopK), SaeLossTerms{}, 4);
}

TEST(SaeGradients, TopKWithAuxKOnDeadLatents) {
  SaeLossTerms t;
  t.dead = {0, 1, 0, 1, 1, 0, 0, 1, 0};
  check_gradients(small(SaeArchitecture::TopK), t, 5);
}

// The sparse step (every product but the encoder's forward over non-zeros: Backend::sparse_decode*,
// sparse_encode_grad_w) against finite differences: topk with and without aux-k; standard, whose
// ReLU backward keeps ∂L/∂f only where f > 0, with its hypergradients; the hierarchy with the
// exact gate. jumprelu has no sparse step.
TEST(SaeGradients, SparseStep) {
  SaeConfig c = small(SaeArchitecture::TopK);
  c.sparse_decode = true;
  check_gradients(c, SaeLossTerms{}, 14);
  SaeLossTerms aux;
  aux.dead = {0, 1, 0, 1, 1, 0, 0, 1, 0};
  check_gradients(c, aux, 15);
  SaeConfig s = small(SaeArchitecture::Standard);
  s.sparse_decode = true;
  SaeLossTerms l1;
  l1.l1_coefficient = 0.4f;
  l1.penalty_weights = {0.5f, 1.5f, 1.f, 2.f, 0.25f, 1.f, 3.f, 0.f, 1.f};
  check_gradients(s, l1, 16);
  check_gradients(s, l1, 17, /*hyper=*/true);
  SaeConfig h = hierarchical();
  h.sparse_decode = true;
  check_gradients(h, l1, 18);
  check_gradients(h, l1, 19, true);
  SaeConfig j = small(SaeArchitecture::JumpReLU);
  j.sparse_decode = true;
  EXPECT_THROW(Sae(j, cpu_backend()), Error);
}

// The hierarchy's straight-through gate on the sparse step: its training gradient is a surrogate
// that finite differences cannot check, so ∇J and g_α are checked by check_gradients (as for the
// dense step) and the gradient itself against the dense step's below.
TEST(SaeGradients, SparseStepHierarchicalStraightThrough) {
  SaeConfig ste = hierarchical();
  ste.gate_ste_width = 0.5f;
  ste.sparse_decode = true;
  SaeLossTerms t;
  t.l1_coefficient = 0.5f;
  t.penalty_weights = {1.1f, 0.9f, 1.f, 0.7f, 1.3f, 1.f, 1.4f, 0.6f, 1.f};
  check_gradients(ste, t, 20, /*hyper=*/true);
  check_gradients(ste, t, 21, true);
}

// The sparse and the dense step on the same batch: the same loss and statistics, and every
// gradient (training, ∇J, g_α) within kTolSparseVsDense (f32 sums in different orders). The
// hierarchy runs with its straight-through gate, children on and parents inside the band, which the
// test asserts is exercised (children the gate switched off whose ∂L/∂f reaches their parent).
TEST(SaeGradients, SparseStepMatchesDense) {
  struct Case { SaeConfig c; SaeLossTerms t; bool hyper; };
  SaeLossTerms l1;
  l1.l1_coefficient = 0.3f;
  SaeConfig big_h;
  big_h.architecture = SaeArchitecture::Hierarchical;
  big_h.d_in = 16;
  big_h.n_parents = 12;
  big_h.children_per_parent = 3;
  big_h.d_sae = 48;
  big_h.gate_ste_width = 0.5f;
  SaeConfig big_s = big_h;
  big_s.architecture = SaeArchitecture::Standard;
  big_s.n_parents = big_s.children_per_parent = 0;
  SaeConfig big_k = big_s;
  big_k.architecture = SaeArchitecture::TopK;
  big_k.k = 5;
  SaeLossTerms dead;
  dead.dead.assign(48, 0.f);
  for (int i = 0; i < 48; i += 5) dead.dead[i] = 1.f;
  for (const Case& cs : {Case{big_s, l1, true}, Case{big_h, l1, true}, Case{big_k, SaeLossTerms{}, false},
                         Case{big_k, dead, false}}) {
    const int N = 40, d = cs.c.d_in, F = cs.c.d_sae;
    Backend& be = cpu_backend();
    Sae sae(cs.c, be);
    sae.init(3, 1.0f, {});
    std::mt19937_64 rng(4);
    std::normal_distribution<float> nd(0.f, 1.f);
    std::vector<float> x(static_cast<size_t>(N) * d), benc(static_cast<size_t>(F));
    for (auto& v : x) v = nd(rng);
    for (auto& v : benc) v = 0.3f * nd(rng);
    be.upload(sae.params().b_enc, benc.data());
    Tensor X = to_device(be, {N, d}, x.data());
    SaeWorkspace ws(sae.config(), N, be.device());
    struct Out {
      SaeParams g, gJ;
      std::vector<SaeParams> ga;
      SaeBatchStats st;
      double J = 0;
    };
    auto run = [&](bool sparse) {
      sae.set_sparse(sparse);
      Out o{SaeParams(sae.config(), be.device()), SaeParams(sae.config(), be.device()), {}, {}, 0};
      for (size_t l = 0; l < sae.levels().size(); ++l) o.ga.emplace_back(sae.config(), be.device());
      SaeHyperRequest hr;
      hr.lambda_J = 0.8f;
      hr.eps = 0.3f;
      hr.levels = sae.levels();
      for (int i = 0; i < F; ++i) hr.dw.push_back(0.5f - 0.15f * static_cast<float>(i % 7));
      hr.grad_J = &o.gJ;
      hr.g_alpha = &o.ga;
      o.st = sae.forward_backward(X, cs.t, o.g, ws, cs.hyper ? &hr : nullptr);
      o.J = hr.J;
      return o;
    };
    const Out dense = run(false), sparse = run(true);
    const std::string what = sae_architecture_name(cs.c.architecture);
    EXPECT_NEAR(sparse.st.loss(), dense.st.loss(), kTolSparseVsDense * std::abs(dense.st.loss())) << what;
    EXPECT_EQ(sparse.st.l0, dense.st.l0) << what;
    EXPECT_GT(dense.st.l0, 0.0) << what;
    EXPECT_LT(dense.st.l0, 0.6 * N * F) << what << ": the batch should be sparse";
    EXPECT_LE(test::rel_error(to_host_f32(be, sparse.g.flat), to_host_f32(be, dense.g.flat)), kTolSparseVsDense)
        << what;
    if (cs.hyper) {
      EXPECT_NEAR(sparse.J, dense.J, kTolSparseVsDense * std::abs(dense.J)) << what;
      EXPECT_LE(test::rel_error(to_host_f32(be, sparse.gJ.flat), to_host_f32(be, dense.gJ.flat)), kTolSparseVsDense)
          << what << " grad_J";
      for (size_t l = 0; l < dense.ga.size(); ++l)
        EXPECT_LE(test::rel_error(to_host_f32(be, sparse.ga[l].flat), to_host_f32(be, dense.ga[l].flat)),
                  kTolSparseVsDense)
            << what << " g_alpha " << l;
    }
    if (cs.c.architecture != SaeArchitecture::Hierarchical) continue;
    // Gated children in the band: pre_child > 0 while the parent, in |pre| < w/2, is off.
    const std::vector<float> pre = to_host_f32(be, ws.pre.view().rows(0, N));
    const int P = cs.c.n_parents, m = cs.c.children_per_parent;
    int gated = 0;
    for (int n = 0; n < N; ++n)
      for (int j = P; j < F; ++j) {
        const float pp = pre[n * F + (j - P) / m];
        gated += pre[n * F + j] > 0.f && pp <= 0.f && std::abs(pp) < 0.5f * cs.c.gate_ste_width;
      }
    EXPECT_GT(gated, 0) << "no child switched off inside the band: the mask's extra entries are untested";
  }
}
