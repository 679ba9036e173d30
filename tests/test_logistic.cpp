#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "saelab/logistic.hpp"

using namespace saelab;

// n points at x = +1 (label 1) and n at x = −1 (label 0): by symmetry b = 0 and w solves
// w = 2nC·σ(−w) (the gradient of ½w² + C Σ log(1 + e^{−y w x}) vanishes). Solved here by bisection.
TEST(Logistic, MatchesTheClosedFormSymmetricCase) {
  for (int n : {1, 5, 50}) {
    for (double C : {0.1, 1.0}) {
      std::vector<float> X;
      std::vector<int> y;
      for (int i = 0; i < n; ++i) {
        X.push_back(1.f);
        y.push_back(1);
        X.push_back(-1.f);
        y.push_back(0);
      }
      double lo = 0, hi = 2.0 * n * C;
      for (int it = 0; it < 200; ++it) {
        const double mid = 0.5 * (lo + hi);
        (mid - 2.0 * n * C / (1.0 + std::exp(mid)) > 0 ? hi : lo) = mid;
      }
      LogisticOptions opt;
      opt.C = C;
      for (int newton_dim : {64, 0}) {  // Newton and L-BFGS
        opt.newton_max_dim = newton_dim;
        const LogisticModel m = fit_logistic(X, 2 * n, 1, y, opt);
        EXPECT_NEAR(m.w[0], lo, 1e-6) << "n=" << n << " C=" << C << " newton_dim=" << newton_dim;
        EXPECT_NEAR(m.b, 0.0, 1e-6);
        EXPECT_LT(m.grad_norm, 1e-6);
      }
    }
  }
}

TEST(Logistic, NewtonAndLbfgsAgreeAndAPlantedFeatureIsFound) {
  std::mt19937_64 rng(3);
  std::normal_distribution<float> nd;
  const int n = 400, k = 20;
  std::vector<float> X(n * k);
  std::vector<int> y(n);
  for (int i = 0; i < n; ++i) {
    y[i] = i % 2;
    for (int j = 0; j < k; ++j) X[i * k + j] = nd(rng);
    X[i * k + 7] += y[i] ? 2.5f : -2.5f;  // the planted feature
  }
  LogisticOptions opt;
  const LogisticModel newton = fit_logistic(X, n, k, y, opt);
  opt.newton_max_dim = 0;
  opt.max_iter = 1000;
  const LogisticModel lbfgs = fit_logistic(X, n, k, y, opt);
  for (int j = 0; j < k; ++j) EXPECT_NEAR(newton.w[j], lbfgs.w[j], 1e-4) << j;
  EXPECT_NEAR(newton.b, lbfgs.b, 1e-4);
  const BinaryScores s = score_logistic(newton, X, n, k, y);
  EXPECT_GT(s.accuracy, 0.95);
  EXPECT_GT(s.f1, 0.95);
  for (int j = 0; j < k; ++j) {
    if (j != 7) {
      EXPECT_LT(std::abs(newton.w[j]), std::abs(newton.w[7]));
    }
  }
}

TEST(Logistic, ScoresCountAccuracyAndF1) {
  LogisticModel m;
  m.w = {1.0};
  m.b = 0.0;
  const std::vector<float> X{1, 1, 1, -1, -1};
  const std::vector<int> y{1, 1, 0, 1, 0};  // tp 2, fp 1, fn 1, tn 1
  const BinaryScores s = score_logistic(m, X, 5, 1, y);
  EXPECT_DOUBLE_EQ(s.accuracy, 3.0 / 5.0);
  EXPECT_DOUBLE_EQ(s.precision, 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(s.recall, 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(s.f1, 2.0 / 3.0);
}

// SAEBench's AdamW probe: separable data reach accuracy 1, after which no epoch is strictly better,
// so it stops `patience` epochs later; the same seed gives the same result.
TEST(AdamWProbe, SeparableDataStopsAfterPatienceAndIsDeterministic) {
  std::mt19937_64 rng(3);
  std::normal_distribution<float> nd;
  const int D = 20;
  auto make = [&](int n, std::vector<float>& X, std::vector<int>& y) {
    for (int i = 0; i < n; ++i) {
      y.push_back(i % 2);
      for (int j = 0; j < D; ++j) X.push_back(nd(rng) + (j == 3 ? (y.back() ? 4.f : -4.f) : 0.f));
    }
  };
  std::vector<float> Xtr, Xte;
  std::vector<int> ytr, yte;
  make(600, Xtr, ytr);
  make(200, Xte, yte);
  AdamWProbeOptions opt;
  const AdamWProbeResult a = fit_adamw_probe(Xtr, 600, D, ytr, Xte, 200, yte, opt);
  ASSERT_EQ(a.best.accuracy, 1.0);  // 4σ apart: no test point on the wrong side
  EXPECT_EQ(a.best.f1, 1.0);
  EXPECT_EQ(a.epochs, a.best_epoch + opt.patience);
  const AdamWProbeResult b = fit_adamw_probe(Xtr, 600, D, ytr, Xte, 200, yte, opt);
  EXPECT_EQ(a.best.accuracy, b.best.accuracy);
  EXPECT_EQ(a.best_epoch, b.best_epoch);
}
