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
  // sklearn's class_weight="balanced": sample i weighs n / (2 n_{y_i}) in the loss term (SAEBench's
  // absorption k-sparse probes).
  bool balanced = false;
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

// SAEBench's probe on all features (probe_training.train_probe_gpu, its "llm_test_accuracy" and
// "sae_test_accuracy"): a linear layer with PyTorch's default init (w, b ~ U(±1/√D)), BCE-with-
// logits, AdamW (torch defaults but lr), minibatches reshuffled every epoch, float32 throughout.
// After every epoch it scores the test set and keeps the best epoch; it stops after `patience`
// epochs without a strictly better test accuracy. The test set picks the epoch, as in SAEBench, so
// this is optimistic next to the held-out fit above. Torch's RNG is not reproduced: init and
// shuffles come from `seed`.
struct AdamWProbeOptions {
  float lr = 1e-2f, weight_decay = 1e-2f, beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f;
  int batch_size = 250, epochs = 100, patience = 10;
  uint64_t seed = 42;
};
struct AdamWProbeResult {
  BinaryScores best;  // test scores of the epoch with the best test accuracy
  int epochs = 0, best_epoch = 0;  // epochs run; 1-based epoch of `best`
};
// Xtr [n, D], Xte [m, D] row-major, labels 0/1.
AdamWProbeResult fit_adamw_probe(const std::vector<float>& Xtr, int64_t n, int D, const std::vector<int>& ytr,
                                 const std::vector<float>& Xte, int64_t m, const std::vector<int>& yte,
                                 const AdamWProbeOptions& opt = {});

}  // namespace saelab
