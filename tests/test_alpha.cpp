// Learnable α: the hypergradient equals a finite-difference estimate of dJ(after one update)/dα,
// per level; convergence analysis of α trajectories; the dual-adaptive weights.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "saelab/alpha.hpp"
#include "saelab/dual_adaptive.hpp"
#include "saelab/sae.hpp"
#include "test_util.hpp"
#include "train/hypergradient.hpp"

using namespace saelab;

namespace {

std::vector<float> randv(std::mt19937_64& rng, size_t n, float s, bool positive = false) {
  std::normal_distribution<float> nd(0.f, s);
  std::vector<float> v(n);
  for (auto& x : v) x = positive ? std::abs(nd(rng)) : nd(rng);
  return v;
}

struct OneStep {
  SaeConfig cfg;
  std::vector<float> W0, m0, v0, x1, x2, wf, wm;
  int N = 16;
  float lam = 0.3f, lr = 1e-2f, b1 = 0.9f, b2 = 0.999f, eps = 1e-8f, lam_J = 0.5f, sl0_eps = 0.2f;
  int64_t t = 3;

  // J(W_t) on x2 after one Adam step on x1 with penalty weights w(α); optionally the hypergradients.
  double run(const std::vector<double>& alpha, std::vector<double>* h) const {
    Backend& be = cpu_backend();
    Sae sae(cfg, be);
    be.upload(sae.params().flat.view(), W0.data());
    SaeParams m(sae.config(), be.device()), v(sae.config(), be.device()), g(sae.config(), be.device());
    be.upload(m.flat.view(), m0.data());
    be.upload(v.flat.view(), v0.data());
    const auto levels = sae.levels();
    SaeLossTerms terms;
    terms.l1_coefficient = lam;
    std::vector<float> dw(wf.size());
    terms.penalty_weights.resize(wf.size());
    for (size_t l = 0; l < levels.size(); ++l)
      for (int i = levels[l].first; i < levels[l].second; ++i) {
        terms.penalty_weights[i] = static_cast<float>(alpha[l] * wf[i] + (1 - alpha[l]) * wm[i]);
        dw[i] = wf[i] - wm[i];
      }
    HyperState hs;
    hs.init(sae.config(), be.device(), levels.size());
    SaeHyperRequest hr;
    hr.lambda_J = lam_J;
    hr.eps = sl0_eps;
    hr.dw = dw;
    hr.levels = levels;
    hr.grad_J = &hs.grad_J;
    hr.g_alpha = &hs.g_alpha;
    SaeWorkspace ws(sae.config(), N, be.device());
    Tensor X1 = to_device(be, {N, cfg.d_in}, x1.data()), X2 = to_device(be, {N, cfg.d_in}, x2.data());
    sae.forward_backward(X1, terms, g, ws, &hr);
    be.adam(sae.params().flat, g.flat, m.flat, v.flat, lr, b1, b2, eps, t);
    update_tangent(sae, hs, g, m, v, hr.g_alpha_bdec, lr, b1, b2, eps, t);
    sae.forward_backward(X2, terms, g, ws, &hr);  // ∇J(t) at the updated weights
    if (h) *h = level_hypergradients(sae, hs, levels);
    return hr.J;
  }
};

OneStep make(SaeArchitecture arch, uint64_t seed) {
  OneStep s;
  s.cfg.architecture = arch;
  s.cfg.d_in = 6;
  if (arch == SaeArchitecture::Hierarchical) {
    s.cfg.n_parents = 4;
    s.cfg.children_per_parent = 2;
    s.cfg.d_sae = 12;
  } else {
    s.cfg.d_sae = 11;
  }
  std::mt19937_64 rng(seed);
  const size_t d = s.cfg.d_in, F = s.cfg.d_sae, P = 2 * d * F + F + d;
  s.W0 = randv(rng, P, 0.5f);
  for (size_t i = d * F; i < d * F + F; ++i) s.W0[i] = std::abs(s.W0[i]);  // b_enc > 0: most latents active
  s.m0 = randv(rng, P, 0.01f);
  s.v0 = randv(rng, P, 0.01f, true);
  s.x1 = randv(rng, s.N * d, 1.f);
  s.x2 = randv(rng, s.N * d, 1.f);
  s.wf = randv(rng, F, 1.f, true);
  s.wm = randv(rng, F, 1.f, true);
  return s;
}

void check_hypergradient(const OneStep& s, std::vector<double> alpha) {
  std::vector<double> h;
  s.run(alpha, &h);
  ASSERT_EQ(h.size(), alpha.size());
  for (size_t l = 0; l < alpha.size(); ++l) {
    const double d = 2e-2;
    std::vector<double> up = alpha, down = alpha;
    up[l] += d;
    down[l] -= d;
    const double fd = (s.run(up, nullptr) - s.run(down, nullptr)) / (2 * d);
    EXPECT_NEAR(h[l], fd, 2e-2 * std::abs(fd) + 1e-6) << "level " << l;
    EXPECT_GT(std::abs(fd), 1e-5) << "the test must move J";
  }
}

}  // namespace

TEST(Hypergradient, MatchesFiniteDifferenceOfJAfterOneAdamUpdateFlat) {
  check_hypergradient(make(SaeArchitecture::Standard, 1), {0.4});
}

TEST(Hypergradient, MatchesFiniteDifferencePerLevelHierarchical) {
  check_hypergradient(make(SaeArchitecture::Hierarchical, 2), {0.3, 0.7});
}

TEST(AlphaController, LearnedFollowsTheHypergradientAndNaiveClamps) {
  AlphaController a(AlphaMode::Learned, 2, 0.5, 10.0);
  a.hyper_step({1.0, -1.0});  // positive h: increasing α raises J, so α goes down
  EXPECT_LT(a.alpha(0), 0.5);
  EXPECT_GT(a.alpha(1), 0.5);
  AlphaController n(AlphaMode::Naive, 1, 0.5, 0.1);
  for (int i = 0; i < 100; ++i) n.naive_step({2.0});
  EXPECT_EQ(n.alpha(0), 0.0);  // ran to the bound and stays clamped
  AlphaController f(AlphaMode::Fixed, 1, 0.25, 0.0);
  EXPECT_EQ(f.alphas(), std::vector<double>{0.25});
  EXPECT_THROW(AlphaController(AlphaMode::Fixed, 1, 1.5, 0.0), Error);
}

TEST(AlphaConvergence, FlagsConvergenceBoundsAndOscillation) {
  std::vector<double> settle;
  for (int t = 0; t < 1000; ++t) settle.push_back(0.3 + 0.4 * std::exp(-t / 50.0));
  AlphaConvergence c = analyze_alpha(settle);
  EXPECT_TRUE(c.converged);
  EXPECT_GT(c.t_star, 100);
  EXPECT_LT(c.t_star, 400);
  EXPECT_FALSE(c.at_bound_low || c.at_bound_high || c.oscillating);

  std::vector<double> low(500, 0.002);
  c = analyze_alpha(low);
  EXPECT_TRUE(c.converged && c.at_bound_low && !c.at_bound_high);
  EXPECT_EQ(c.t_star, 50);

  std::vector<double> osc;
  for (int t = 0; t < 1000; ++t) osc.push_back(0.5 + 0.1 * ((t % 2) ? 1 : -1));
  c = analyze_alpha(osc);
  EXPECT_FALSE(c.converged);
  EXPECT_TRUE(c.oscillating);
  EXPECT_EQ(c.t_star, -1);
}

TEST(DualAdaptive, WeightsAreMeanOnePerLevelAndFollowTheStatistics) {
  DualAdaptiveWeights w({{0, 3}, {3, 6}}, 6, 0.5f, 0.9f, 0.01f);
  std::vector<float> wf, wm;
  w.components(wf, wm);
  for (float v : wf) EXPECT_EQ(v, 1.f);  // no statistics yet: neutral
  // latent 0 fires often with small values, latent 1 rarely with large values, latent 5 never.
  w.update({90, 5, 20, 40, 40, 0}, {9, 50, 20, 40, 40, 0}, 100);
  w.components(wf, wm);
  for (int l = 0; l < 2; ++l) {
    double sf = 0, sm = 0;
    for (int i = 3 * l; i < 3 * l + 3; ++i) {
      sf += wf[i];
      sm += wm[i];
    }
    EXPECT_NEAR(sf / 3, 1.0, 1e-6);
    EXPECT_NEAR(sm / 3, 1.0, 1e-6);
  }
  EXPECT_GT(wf[0], wf[1]);  // frequent -> penalised more by the frequency term
  EXPECT_GT(wm[0], wm[1]);  // small magnitude -> penalised more by the magnitude term
  EXPECT_LT(wf[5], wf[3]);  // never fired: lightest frequency weight
  const auto all_freq = w.weights({1.0, 1.0});
  for (int i = 0; i < 6; ++i) EXPECT_FLOAT_EQ(all_freq[i], wf[i]);
  const auto mix = w.weights({0.25, 0.75});
  EXPECT_FLOAT_EQ(mix[1], 0.25f * wf[1] + 0.75f * wm[1]);
  EXPECT_FLOAT_EQ(mix[4], 0.75f * wf[4] + 0.25f * wm[4]);
}
