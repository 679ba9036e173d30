#include "saelab/logistic.hpp"

#include <algorithm>
#include <cmath>
#include <deque>
#include <numeric>
#include <random>

#include "saelab/error.hpp"

namespace saelab {

namespace {

double log1pexp(double z) { return z > 30 ? z : z < -30 ? std::exp(z) : std::log1p(std::exp(z)); }
double sigmoid(double z) { return z >= 0 ? 1.0 / (1.0 + std::exp(-z)) : std::exp(z) / (1.0 + std::exp(z)); }

// Objective and gradient over θ = (w, b).
struct Problem {
  const std::vector<float>& X;
  int64_t n;
  int k;
  std::vector<double> y;  // ±1
  double C;
  std::vector<double> cw;  // [n] C times sample i's class weight

  double value_grad(const std::vector<double>& th, std::vector<double>& g) const {
    g.assign(static_cast<size_t>(k) + 1, 0.0);
    double f = 0;
    for (int j = 0; j < k; ++j) {
      f += 0.5 * th[j] * th[j];
      g[j] = th[j];
    }
    for (int64_t i = 0; i < n; ++i) {
      const float* x = X.data() + i * k;
      double z = th[k];
      for (int j = 0; j < k; ++j) z += th[j] * x[j];
      const double m = y[i] * z;
      f += cw[i] * log1pexp(-m);
      const double c = -cw[i] * y[i] * sigmoid(-m);  // ∂/∂z
      for (int j = 0; j < k; ++j) g[j] += c * x[j];
      g[k] += c;
    }
    return f;
  }
};

double inf_norm(const std::vector<double>& v) {
  double m = 0;
  for (double x : v) m = std::max(m, std::abs(x));
  return m;
}

// Backtracking (Armijo) along direction p; returns the accepted step and updates th, f, g.
bool line_search(const Problem& P, std::vector<double>& th, double& f, std::vector<double>& g,
                 const std::vector<double>& p) {
  double slope = 0;
  for (size_t i = 0; i < p.size(); ++i) slope += g[i] * p[i];
  if (slope >= 0) return false;
  std::vector<double> trial(th.size()), gt;
  for (double step = 1.0; step > 1e-12; step *= 0.5) {
    for (size_t i = 0; i < th.size(); ++i) trial[i] = th[i] + step * p[i];
    const double ft = P.value_grad(trial, gt);
    if (ft <= f + 1e-4 * step * slope) {
      th.swap(trial);
      g.swap(gt);
      f = ft;
      return true;
    }
  }
  return false;
}

// Solves A x = b for symmetric positive definite A (Cholesky, in place).
bool cholesky_solve(std::vector<double>& A, int m, std::vector<double>& b) {
  for (int j = 0; j < m; ++j) {
    double s = A[j * m + j];
    for (int k = 0; k < j; ++k) s -= A[j * m + k] * A[j * m + k];
    if (s <= 0) return false;
    A[j * m + j] = std::sqrt(s);
    for (int i = j + 1; i < m; ++i) {
      double t = A[i * m + j];
      for (int k = 0; k < j; ++k) t -= A[i * m + k] * A[j * m + k];
      A[i * m + j] = t / A[j * m + j];
    }
  }
  for (int i = 0; i < m; ++i) {
    double t = b[i];
    for (int k = 0; k < i; ++k) t -= A[i * m + k] * b[k];
    b[i] = t / A[i * m + i];
  }
  for (int i = m - 1; i >= 0; --i) {
    double t = b[i];
    for (int k = i + 1; k < m; ++k) t -= A[k * m + i] * b[k];
    b[i] = t / A[i * m + i];
  }
  return true;
}

}  // namespace

double LogisticModel::decision(const float* x) const {
  double z = b;
  for (size_t j = 0; j < w.size(); ++j) z += w[j] * x[j];
  return z;
}

LogisticModel fit_logistic(const std::vector<float>& X, int64_t n, int k, const std::vector<int>& labels,
                           const LogisticOptions& opt) {
  SAELAB_ASSERT(static_cast<int64_t>(X.size()) == n * k && static_cast<int64_t>(labels.size()) == n && k >= 0,
                "fit_logistic shapes");
  Problem P{X, n, k, {}, opt.C, {}};
  for (int v : labels) P.y.push_back(v ? 1.0 : -1.0);
  const int64_t n_pos = std::count_if(labels.begin(), labels.end(), [](int v) { return v != 0; });
  for (int v : labels) {
    const int64_t n_c = v ? n_pos : n - n_pos;
    P.cw.push_back(opt.balanced ? opt.C * static_cast<double>(n) / (2.0 * static_cast<double>(n_c)) : opt.C);
  }
  const int m = k + 1;
  std::vector<double> th(static_cast<size_t>(m), 0.0), g;
  double f = P.value_grad(th, g);
  LogisticModel out;
  if (k <= opt.newton_max_dim) {
    for (; out.iterations < opt.max_iter && inf_norm(g) > opt.tol; ++out.iterations) {
      // Hessian: I (on w) + C Σ s_i (1 − s_i) [x_i;1][x_i;1]ᵀ
      std::vector<double> H(static_cast<size_t>(m) * m, 0.0);
      for (int j = 0; j < k; ++j) H[j * m + j] = 1.0;
      for (int64_t i = 0; i < n; ++i) {
        const float* x = X.data() + i * k;
        double z = th[k];
        for (int j = 0; j < k; ++j) z += th[j] * x[j];
        const double s = sigmoid(z), wgt = P.cw[i] * s * (1 - s);
        for (int a = 0; a < m; ++a) {
          const double xa = a < k ? x[a] : 1.0;
          for (int c = 0; c <= a; ++c) H[a * m + c] += wgt * xa * (c < k ? x[c] : 1.0);
        }
      }
      for (int a = 0; a < m; ++a) {
        H[a * m + a] += 1e-10;
        for (int c = a + 1; c < m; ++c) H[a * m + c] = H[c * m + a];
      }
      std::vector<double> p(g);
      if (!cholesky_solve(H, m, p)) break;
      for (auto& v : p) v = -v;
      if (!line_search(P, th, f, g, p)) break;
    }
  } else {
    // L-BFGS: two-loop recursion over the last `lbfgs_memory` (s, y) pairs.
    std::deque<std::vector<double>> S, Y;
    std::deque<double> rho;
    for (; out.iterations < opt.max_iter && inf_norm(g) > opt.tol; ++out.iterations) {
      std::vector<double> q(g);
      std::vector<double> alpha(S.size());
      for (int i = static_cast<int>(S.size()) - 1; i >= 0; --i) {
        double a = 0;
        for (int j = 0; j < m; ++j) a += S[i][j] * q[j];
        alpha[i] = a * rho[i];
        for (int j = 0; j < m; ++j) q[j] -= alpha[i] * Y[i][j];
      }
      double gamma = 1.0;
      if (!S.empty()) {
        double sy = 0, yy = 0;
        for (int j = 0; j < m; ++j) {
          sy += S.back()[j] * Y.back()[j];
          yy += Y.back()[j] * Y.back()[j];
        }
        gamma = sy / yy;
      }
      for (auto& v : q) v *= gamma;
      for (size_t i = 0; i < S.size(); ++i) {
        double bta = 0;
        for (int j = 0; j < m; ++j) bta += Y[i][j] * q[j];
        bta *= rho[i];
        for (int j = 0; j < m; ++j) q[j] += S[i][j] * (alpha[i] - bta);
      }
      for (auto& v : q) v = -v;
      const std::vector<double> th0 = th, g0 = g;
      if (!line_search(P, th, f, g, q)) break;
      std::vector<double> s(m), yv(m);
      double sy = 0;
      for (int j = 0; j < m; ++j) {
        s[j] = th[j] - th0[j];
        yv[j] = g[j] - g0[j];
        sy += s[j] * yv[j];
      }
      if (sy > 1e-12) {
        S.push_back(s);
        Y.push_back(yv);
        rho.push_back(1.0 / sy);
        if (static_cast<int>(S.size()) > opt.lbfgs_memory) {
          S.pop_front();
          Y.pop_front();
          rho.pop_front();
        }
      }
    }
  }
  out.w.assign(th.begin(), th.begin() + k);
  out.b = th[k];
  out.grad_norm = inf_norm(g);
  return out;
}

namespace {

// Accuracy, and precision, recall and F1 of the positive class, from predictions pred[i] = ŷ_i.
BinaryScores count_scores(const std::vector<int>& pred, const std::vector<int>& labels) {
  int64_t tp = 0, fp = 0, fn = 0, correct = 0;
  const int64_t n = static_cast<int64_t>(pred.size());
  for (int64_t i = 0; i < n; ++i) {
    correct += pred[i] == labels[i];
    tp += pred[i] == 1 && labels[i] == 1;
    fp += pred[i] == 1 && labels[i] == 0;
    fn += pred[i] == 0 && labels[i] == 1;
  }
  BinaryScores s;
  s.accuracy = n ? static_cast<double>(correct) / static_cast<double>(n) : 0.0;
  s.precision = tp + fp ? static_cast<double>(tp) / static_cast<double>(tp + fp) : 0.0;
  s.recall = tp + fn ? static_cast<double>(tp) / static_cast<double>(tp + fn) : 0.0;
  s.f1 = s.precision + s.recall > 0 ? 2 * s.precision * s.recall / (s.precision + s.recall) : 0.0;
  return s;
}

}  // namespace

BinaryScores score_logistic(const LogisticModel& m, const std::vector<float>& X, int64_t n, int k,
                            const std::vector<int>& labels) {
  SAELAB_ASSERT(static_cast<int64_t>(X.size()) == n * k && static_cast<int64_t>(labels.size()) == n, "score_logistic shapes");
  std::vector<int> pred(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) pred[i] = m.decision(X.data() + i * k) > 0 ? 1 : 0;
  return count_scores(pred, labels);
}

namespace {

// x·w in float with eight partial sums, so the compiler can vectorise the reduction.
float dot8(const float* x, const float* w, int D) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int j = 0;
  for (; j + 8 <= D; j += 8)
    for (int l = 0; l < 8; ++l) acc[l] += x[j + l] * w[j + l];
  float s = 0;
  for (; j < D; ++j) s += x[j] * w[j];
  for (float a : acc) s += a;
  return s;
}

// Scores of the float probe (w = θ[0, D), b = θ[D]) on X [m, D]: predicts 1 where the logit > 0.
BinaryScores score_linear(const std::vector<float>& X, int64_t m, int D, const std::vector<int>& y,
                          const std::vector<float>& th) {
  std::vector<int> pred(static_cast<size_t>(m));
  for (int64_t i = 0; i < m; ++i) pred[i] = dot8(X.data() + i * D, th.data(), D) + th[D] > 0.f ? 1 : 0;
  return count_scores(pred, y);
}

}  // namespace

AdamWProbeResult fit_adamw_probe(const std::vector<float>& Xtr, int64_t n, int D, const std::vector<int>& ytr,
                                 const std::vector<float>& Xte, int64_t m, const std::vector<int>& yte,
                                 const AdamWProbeOptions& opt) {
  SAELAB_ASSERT(D > 0 && static_cast<int64_t>(Xtr.size()) == n * D && static_cast<int64_t>(ytr.size()) == n &&
                    static_cast<int64_t>(Xte.size()) == m * D && static_cast<int64_t>(yte.size()) == m,
                "fit_adamw_probe shapes");
  std::mt19937_64 rng(opt.seed);
  const float bound = 1.0f / std::sqrt(static_cast<float>(D));
  std::uniform_real_distribution<float> init(-bound, bound);
  // θ = (w [D], b): one buffer so AdamW's update is one loop.
  std::vector<float> th(static_cast<size_t>(D) + 1), g(th.size()), m1(th.size(), 0.f), m2(th.size(), 0.f);
  for (float& v : th) v = init(rng);
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), int64_t{0});
  AdamWProbeResult out;
  int step = 0, since_best = 0;
  double best_acc = 0.0;  // SAEBench starts from 0 and keeps strictly better epochs
  for (int epoch = 1; epoch <= opt.epochs; ++epoch) {
    std::shuffle(order.begin(), order.end(), rng);
    for (int64_t b0 = 0; b0 < n; b0 += opt.batch_size) {
      const int64_t B = std::min<int64_t>(opt.batch_size, n - b0);
      std::fill(g.begin(), g.end(), 0.f);
      for (int64_t r = b0; r < b0 + B; ++r) {
        const float* x = Xtr.data() + order[r] * D;
        const float z = dot8(x, th.data(), D) + th[D];
        const float c = (static_cast<float>(sigmoid(z)) - static_cast<float>(ytr[order[r]])) / static_cast<float>(B);
        for (int j = 0; j < D; ++j) g[j] += c * x[j];  // ∂ mean BCE / ∂w
        g[D] += c;
      }
      // torch.optim.AdamW: decoupled decay on every parameter (bias included), bias-corrected moments.
      ++step;
      const float bc1 = 1.f - std::pow(opt.beta1, static_cast<float>(step));
      const float bc2 = std::sqrt(1.f - std::pow(opt.beta2, static_cast<float>(step)));
      for (size_t j = 0; j < th.size(); ++j) {
        th[j] *= 1.f - opt.lr * opt.weight_decay;
        m1[j] = opt.beta1 * m1[j] + (1.f - opt.beta1) * g[j];
        m2[j] = opt.beta2 * m2[j] + (1.f - opt.beta2) * g[j] * g[j];
        th[j] -= opt.lr / bc1 * m1[j] / (std::sqrt(m2[j]) / bc2 + opt.eps);
      }
    }
    out.epochs = epoch;
    const BinaryScores s = score_linear(Xte, m, D, yte, th);
    if (s.accuracy > best_acc) {
      best_acc = s.accuracy;
      out.best = s;
      out.best_epoch = epoch;
      since_best = 0;
    } else if (++since_best >= opt.patience) {
      break;
    }
  }
  return out;
}

}  // namespace saelab
