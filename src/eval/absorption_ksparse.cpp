// k-sparse probing of the SAE latents for each first letter (SAEBench k_sparse_probing.py).
#include <algorithm>
#include <numeric>

#include "saelab/absorption.hpp"
#include "saelab/error.hpp"
#include "saelab/logistic.hpp"

namespace saelab {

namespace {

// Columns `feats` of every row of X: [n, k] dense.
std::vector<float> gather_columns(const ProbeRows& X, const std::vector<int>& feats) {
  const int k = static_cast<int>(feats.size());
  std::vector<float> out(static_cast<size_t>(X.n) * k, 0.f);
  for (int64_t i = 0; i < X.n; ++i)
    for (int c = 0; c < k; ++c) {
      if (X.dense) {
        out[i * k + c] = X.dense[i * X.D + feats[c]];
        continue;
      }
      for (int64_t e = (*X.ptr)[i]; e < (*X.ptr)[i + 1]; ++e)
        if ((*X.col)[e] == feats[c]) out[i * k + c] = (*X.val)[e];
    }
  return out;
}

// The `k` largest entries of w [D], largest first (torch.topk; ties by lower index).
std::vector<int> top_k_indices(const float* w, int D, int k) {
  std::vector<int> idx(static_cast<size_t>(D));
  std::iota(idx.begin(), idx.end(), 0);
  std::partial_sort(idx.begin(), idx.begin() + k, idx.end(),
                    [&](int a, int b) { return w[a] != w[b] ? w[a] > w[b] : a < b; });
  idx.resize(static_cast<size_t>(k));
  return idx;
}

std::vector<int> one_vs_rest(const std::vector<int>& y, int letter) {
  std::vector<int> out(y.size());
  for (size_t i = 0; i < y.size(); ++i) out[i] = y[i] == letter ? 1 : 0;
  return out;
}

}  // namespace

std::vector<int> split_features(const std::vector<std::vector<int>>& feats, const std::vector<double>& f1,
                                double f1_jump_threshold) {
  SAELAB_ASSERT(feats.size() == f1.size(), "split_features: one F1 per k");
  double prev_best = -100;
  std::vector<int> out;
  for (size_t k = 0; k < f1.size(); ++k) {
    if (!(f1[k] > prev_best + f1_jump_threshold)) break;
    prev_best = f1[k];
    out = feats[k];
  }
  return out;
}

std::vector<KSparseLetter> k_sparse_probing(const MultiProbe& l1_probe, const ProbeRows& train,
                                            const std::vector<int>& train_y, const ProbeRows& test,
                                            const std::vector<int>& test_y, int max_k, double f1_jump_threshold) {
  if (max_k < 1 || max_k > l1_probe.D) fail("absorption: max_k_value must be in [1, {}], got {}", l1_probe.D, max_k);
  std::vector<KSparseLetter> out(static_cast<size_t>(l1_probe.P));
#pragma omp parallel for schedule(dynamic)
  for (int letter = 0; letter < l1_probe.P; ++letter) {
    KSparseLetter& L = out[letter];
    const std::vector<int> ytr = one_vs_rest(train_y, letter), yte = one_vs_rest(test_y, letter);
    const std::vector<int> best = top_k_indices(l1_probe.W.data() + int64_t{letter} * l1_probe.D, l1_probe.D, max_k);
    for (int k = 1; k <= max_k; ++k) {
      std::vector<int> feats(best.begin(), best.begin() + k);
      LogisticOptions lo;  // sklearn LogisticRegression(max_iter=500, class_weight="balanced"), C = 1
      lo.balanced = true;
      lo.max_iter = 500;
      // sklearn's lbfgs stops at max|∇| ≤ 1e-4 of the loss averaged over the (weighted) samples;
      // fit_logistic's objective is their sum (balanced weights sum to n). The default 1e-6 on the
      // sum is beyond float precision at n in the thousands: Newton then spends all 500 iterations
      // in failing line searches (measured: 371 s of k-sparse fits on 6400 SmolLM2 words).
      lo.tol = 1e-4 * static_cast<double>(train.n);
      const LogisticModel m = fit_logistic(gather_columns(train, feats), train.n, k, ytr, lo);
      L.f1.push_back(score_logistic(m, gather_columns(test, feats), test.n, k, yte).f1);
      L.feats.push_back(std::move(feats));
    }
    L.split_feats = split_features(L.feats, L.f1, f1_jump_threshold);
  }
  return out;
}

}  // namespace saelab
