#include "saelab/alpha.hpp"

#include <algorithm>
#include <cmath>
#include <deque>

#include "saelab/atomic_file.hpp"
#include "saelab/error.hpp"

#include <sstream>

namespace saelab {

namespace {
double sigmoid(double t) { return 1.0 / (1.0 + std::exp(-t)); }
double logit(double a) {
  a = std::clamp(a, 1e-6, 1.0 - 1e-6);
  return std::log(a / (1.0 - a));
}
}  // namespace

AlphaMode alpha_mode_from_name(const std::string& s) {
  if (s == "fixed" || s == "manual") return AlphaMode::Fixed;
  if (s == "learned" || s == "hypergradient") return AlphaMode::Learned;
  if (s == "naive") return AlphaMode::Naive;
  fail("unknown alpha_mode '{}' (expected fixed, learned or naive)", s);
}

const char* alpha_mode_name(AlphaMode m) {
  switch (m) {
    case AlphaMode::Fixed: return "fixed";
    case AlphaMode::Learned: return "learned";
    case AlphaMode::Naive: return "naive";
  }
  SAELAB_ASSERT(false, "bad alpha mode");
}

AlphaController::AlphaController(AlphaMode mode, int levels, double alpha0, double lr, bool adam_theta)
    : AlphaController(mode, std::vector<double>(static_cast<size_t>(levels), alpha0), lr, adam_theta) {}

AlphaController::AlphaController(AlphaMode mode, const std::vector<double>& alpha0, double lr, bool adam_theta)
    : adam_m(alpha0.size(), 0.0), adam_v(alpha0.size(), 0.0), last_signal(alpha0.size(), 0.0), mode_(mode), lr_(lr),
      adam_theta_(adam_theta) {
  for (double a : alpha0) {
    if (a < 0 || a > 1) fail("alpha must be in [0, 1], got {}", a);
    theta.push_back(mode == AlphaMode::Learned ? logit(a) : a);
  }
}

double AlphaController::alpha(int level) const {
  return mode_ == AlphaMode::Learned ? sigmoid(theta[level]) : theta[level];
}

std::vector<double> AlphaController::alphas() const {
  std::vector<double> out;
  for (size_t l = 0; l < theta.size(); ++l) out.push_back(alpha(static_cast<int>(l)));
  return out;
}

void AlphaController::adam_update(size_t l, double grad, bool clamp01) {
  const double b1 = 0.9, b2 = 0.999, eps = 1e-8;
  adam_m[l] = b1 * adam_m[l] + (1 - b1) * grad;
  adam_v[l] = b2 * adam_v[l] + (1 - b2) * grad * grad;
  const double mh = adam_m[l] / (1 - std::pow(b1, static_cast<double>(naive_t)));
  const double vh = adam_v[l] / (1 - std::pow(b2, static_cast<double>(naive_t)));
  theta[l] = theta[l] - lr_ * mh / (std::sqrt(vh) + eps);
  if (clamp01) theta[l] = std::clamp(theta[l], 0.0, 1.0);
}

void AlphaController::hyper_step(const std::vector<double>& h) {
  SAELAB_ASSERT(mode_ == AlphaMode::Learned && h.size() == theta.size(), "hyper_step");
  if (adam_theta_) ++naive_t;
  for (size_t l = 0; l < theta.size(); ++l) {
    const double a = sigmoid(theta[l]);
    if (adam_theta_) adam_update(l, h[l] * a * (1.0 - a), false);
    else theta[l] -= lr_ * h[l] * a * (1.0 - a);
    last_signal[l] = h[l];
  }
}

void AlphaController::naive_step(const std::vector<double>& g) {
  SAELAB_ASSERT(mode_ == AlphaMode::Naive && g.size() == theta.size(), "naive_step");
  ++naive_t;
  for (size_t l = 0; l < theta.size(); ++l) {
    adam_update(l, g[l], true);
    last_signal[l] = g[l];
  }
}

std::vector<AlphaTrajectory> read_alpha_log(const std::string& path) {
  std::vector<AlphaTrajectory> out;
  std::istringstream in(read_file(path));
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    std::istringstream row(line);
    std::string step, level, alpha;
    std::getline(row, step, ',');
    std::getline(row, level, ',');
    std::getline(row, alpha, ',');
    const size_t l = std::stoul(level);
    if (out.size() <= l) out.resize(l + 1);
    out[l].step.push_back(std::stod(step));
    out[l].alpha.push_back(std::stod(alpha));
  }
  return out;
}

AlphaConvergence analyze_alpha(const std::vector<double>& a, double window_fraction, double eps, double osc_rate) {
  AlphaConvergence c;
  const int64_t T = static_cast<int64_t>(a.size());
  if (T == 0) return c;
  c.final_alpha = a.back();
  const int64_t W = std::max<int64_t>(2, static_cast<int64_t>(std::llround(window_fraction * static_cast<double>(T))));
  // range over the window ending at t (inclusive), by monotone deques
  std::vector<double> range(static_cast<size_t>(T), 0.0);
  std::deque<int64_t> mx, mn;
  for (int64_t t = 0; t < T; ++t) {
    while (!mx.empty() && a[mx.back()] <= a[t]) mx.pop_back();
    while (!mn.empty() && a[mn.back()] >= a[t]) mn.pop_back();
    mx.push_back(t);
    mn.push_back(t);
    while (mx.front() <= t - W) mx.pop_front();
    while (mn.front() <= t - W) mn.pop_front();
    range[t] = a[mx.front()] - a[mn.front()];
  }
  c.final_window_range = range[T - 1];
  if (T >= W && range[T - 1] < eps) {
    int64_t t = T - 1;
    while (t - 1 >= W - 1 && range[t - 1] < eps) --t;
    c.converged = true;
    c.t_star = t + 1;
  }
  c.at_bound_low = c.final_alpha < eps;
  c.at_bound_high = c.final_alpha > 1.0 - eps;
  int64_t changes = 0, moves = 0;
  double prev = 0;
  for (int64_t t = std::max<int64_t>(1, T - W); t < T; ++t) {
    const double d = a[t] - a[t - 1];
    if (std::abs(d) < 1e-12) continue;
    if (moves > 0 && (d > 0) != (prev > 0)) ++changes;
    prev = d;
    ++moves;
  }
  c.sign_change_rate = moves > 1 ? static_cast<double>(changes) / static_cast<double>(moves - 1) : 0.0;
  c.oscillating = c.sign_change_rate > osc_rate && c.final_window_range >= eps;
  return c;
}

}  // namespace saelab
