// SAEBench's absorption probes (probing.train_multi_probe / _run_probe_training), in float32.
#include <algorithm>
#include <cmath>
#include <numeric>

#include "saelab/absorption.hpp"
#include "saelab/error.hpp"

namespace saelab {

float ProbeRows::dot(int64_t i, const float* w) const {
  float s = 0.f;
  if (dense) {
    const float* x = dense + i * D;
    for (int j = 0; j < D; ++j) s += x[j] * w[j];
    return s;
  }
  for (int64_t e = (*ptr)[i]; e < (*ptr)[i + 1]; ++e) s += (*val)[e] * w[(*col)[e]];
  return s;
}

void ProbeRows::axpy(int64_t i, float c, float* g) const {
  if (dense) {
    const float* x = dense + i * D;
    for (int j = 0; j < D; ++j) g[j] += c * x[j];
    return;
  }
  for (int64_t e = (*ptr)[i]; e < (*ptr)[i + 1]; ++e) g[(*col)[e]] += c * (*val)[e];
}

namespace {

float sigmoidf(float z) { return z >= 0 ? 1.f / (1.f + std::exp(-z)) : std::exp(z) / (1.f + std::exp(z)); }

// torch.optim.Adam's state over one flat parameter vector θ = (W [P, D], b [P]).
struct Adam {
  std::vector<float> m, v;
  int step = 0;
  explicit Adam(size_t n) : m(n, 0.f), v(n, 0.f) {}
  // g already holds weight_decay · θ (Adam's coupled L2).
  void update(std::vector<float>& th, const std::vector<float>& g, float lr) {
    constexpr float b1 = 0.9f, b2 = 0.999f, eps = 1e-8f;
    ++step;
    const float bc1 = 1.f - std::pow(b1, static_cast<float>(step));
    const float bc2_sqrt = std::sqrt(1.f - std::pow(b2, static_cast<float>(step)));
    const float step_size = lr / bc1;
    for (size_t j = 0; j < th.size(); ++j) {
      m[j] = b1 * m[j] + (1.f - b1) * g[j];
      v[j] = b2 * v[j] + (1.f - b2) * g[j] * g[j];
      th[j] -= step_size * m[j] / (std::sqrt(v[j]) / bc2_sqrt + eps);
    }
  }
};

// Gradient of the batch loss rows[0, B) at θ into g ([P·D + P]): BCE with pos_weight, the mean over
// B·P outputs; the L1 term; the coupled weight decay.
void batch_gradient(const ProbeRows& X, const std::vector<int>& labels, const std::vector<int64_t>& rows,
                    const std::vector<float>& pos_weight, const MultiProbe& pr, const MultiProbeOptions& opt,
                    const std::vector<float>& th, std::vector<float>& g) {
  const int P = pr.P, D = pr.D;
  const int64_t B = static_cast<int64_t>(rows.size());
  std::fill(g.begin(), g.end(), 0.f);
  const float inv = 1.f / static_cast<float>(B * P);
  float* gW = g.data();
  float* gb = g.data() + int64_t{P} * D;
  // Outputs are independent: one thread per probe p (its gradient row is its own).
#pragma omp parallel for schedule(static)
  for (int p = 0; p < P; ++p) {
    for (int64_t r = 0; r < B; ++r) {
      const int64_t i = rows[r];
      const float z = X.dot(i, th.data() + int64_t{p} * D) + th[int64_t{P} * D + p];
      const float s = sigmoidf(z);
      // d/dz of −[w_p y log σ(z) + (1 − y) log(1 − σ(z))]
      const float dz = (labels[i] == p ? pos_weight[p] * (s - 1.f) : s) * inv;
      X.axpy(i, dz, gW + int64_t{p} * D);
      gb[p] += dz;
    }
  }
  const float l1 = static_cast<float>(opt.l1_decay / P), wd = static_cast<float>(opt.weight_decay);
  for (size_t j = 0; j < th.size(); ++j) {
    if (l1 != 0.f && j < static_cast<size_t>(P) * D) g[j] += l1 * static_cast<float>((th[j] > 0) - (th[j] < 0));
    g[j] += wd * th[j];
  }
}

}  // namespace

MultiProbe train_multi_probe(const ProbeRows& X, const std::vector<int>& labels, int P, const MultiProbeOptions& opt) {
  SAELAB_ASSERT(static_cast<int64_t>(labels.size()) == X.n && P > 0 && X.D > 0 && opt.batch_size > 0,
                "train_multi_probe shapes");
  MultiProbe pr;
  pr.P = P;
  pr.D = X.D;
  const int D = X.D;
  std::mt19937_64 rng(opt.seed);
  std::vector<float> th(static_cast<size_t>(P) * D + P);  // θ = (W [P, D], b [P])
  if (opt.init) {
    SAELAB_ASSERT(opt.init->P == P && opt.init->D == D, "train_multi_probe: init of another shape");
    std::copy(opt.init->W.begin(), opt.init->W.end(), th.begin());
    std::copy(opt.init->b.begin(), opt.init->b.end(), th.begin() + int64_t{P} * D);
  } else {
    const float bound = 1.f / std::sqrt(static_cast<float>(D));
    std::uniform_real_distribution<float> init(-bound, bound);
    for (float& v : th) v = init(rng);
  }
  // pos_weight_p = negatives / positives of output p over the whole training set (_calc_pos_weights).
  std::vector<float> pos_weight(static_cast<size_t>(P));
  for (int p = 0; p < P; ++p) {
    const int64_t pos = std::count(labels.begin(), labels.end(), p);
    if (pos == 0) fail("absorption probe: no training example of class {} (of {})", p, P);
    pos_weight[p] = static_cast<float>(X.n - pos) / static_cast<float>(pos);
  }
  std::vector<int64_t> order(static_cast<size_t>(X.n));
  std::iota(order.begin(), order.end(), int64_t{0});
  std::vector<float> g(th.size());
  Adam adam(th.size());
  // ExponentialLR stepped once per epoch: lr_e = lr · γ^e.
  const double gamma = std::exp(std::log(opt.end_lr / opt.lr) / opt.epochs);
  for (int epoch = 0; epoch < opt.epochs; ++epoch) {
    if (opt.shuffle) std::shuffle(order.begin(), order.end(), rng);
    const float lr = static_cast<float>(opt.lr * std::pow(gamma, epoch));
    for (int64_t b0 = 0; b0 < X.n; b0 += opt.batch_size) {
      const std::vector<int64_t> rows(order.begin() + b0, order.begin() + std::min<int64_t>(X.n, b0 + opt.batch_size));
      batch_gradient(X, labels, rows, pos_weight, pr, opt, th, g);
      adam.update(th, g, lr);
    }
  }
  pr.W.assign(th.begin(), th.begin() + int64_t{P} * D);
  pr.b.assign(th.begin() + int64_t{P} * D, th.end());
  return pr;
}

}  // namespace saelab
