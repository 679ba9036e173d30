// L2-regularised logistic regression as scikit-learn's LogisticRegression(C) fits it (SAEBench's
// probe): minimise ½‖w‖² + C Σ_i log(1 + exp(−y_i (w·x_i + b))), y ∈ {−1, +1}, intercept b not
// penalised. Newton's method (exact Hessian, Cholesky) up to `newton_max_dim` features, L-BFGS above.
#pragma once
#include <cstdint>
#include <vector>

namespace saelab {

struct LogisticModel {
  std::vector<double> w;
  double b = 0;
  int iterations = 0;
  double grad_norm = 0;  // ‖∇‖∞ at the solution
  double decision(const float* x) const;  // w·x + b
};

struct LogisticOptions {
  double C = 1.0;
  int max_iter = 200;
  double tol = 1e-6;  // on ‖∇‖∞
  int newton_max_dim = 64;
  int lbfgs_memory = 10;
};

// X [n, k] row-major, labels 0/1.
LogisticModel fit_logistic(const std::vector<float>& X, int64_t n, int k, const std::vector<int>& labels,
                           const LogisticOptions& opt = {});

struct BinaryScores {
  double accuracy = 0, f1 = 0, precision = 0, recall = 0;
};
// Predictions from the sign of the decision function; F1 of the positive class.
BinaryScores score_logistic(const LogisticModel& m, const std::vector<float>& X, int64_t n, int k,
                            const std::vector<int>& labels);

}  // namespace saelab
