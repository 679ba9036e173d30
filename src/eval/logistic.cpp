#include "saelab/logistic.hpp"

#include <algorithm>
#include <cmath>
#include <deque>

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
      f += C * log1pexp(-m);
      const double c = -C * y[i] * sigmoid(-m);  // ∂/∂z
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
  Problem P{X, n, k, {}, opt.C};
  for (int v : labels) P.y.push_back(v ? 1.0 : -1.0);
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
        const double s = sigmoid(z), wgt = opt.C * s * (1 - s);
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

BinaryScores score_logistic(const LogisticModel& m, const std::vector<float>& X, int64_t n, int k,
                            const std::vector<int>& labels) {
  int64_t tp = 0, fp = 0, fn = 0, correct = 0;
  for (int64_t i = 0; i < n; ++i) {
    const int pred = m.decision(X.data() + i * k) > 0 ? 1 : 0;
    correct += pred == labels[i];
    tp += pred == 1 && labels[i] == 1;
    fp += pred == 1 && labels[i] == 0;
    fn += pred == 0 && labels[i] == 1;
  }
  BinaryScores s;
  s.accuracy = n ? static_cast<double>(correct) / static_cast<double>(n) : 0.0;
  s.precision = tp + fp ? static_cast<double>(tp) / static_cast<double>(tp + fp) : 0.0;
  s.recall = tp + fn ? static_cast<double>(tp) / static_cast<double>(tp + fn) : 0.0;
  s.f1 = s.precision + s.recall > 0 ? 2 * s.precision * s.recall / (s.precision + s.recall) : 0.0;
  return s;
}

}  // namespace saelab
