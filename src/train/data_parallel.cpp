#include "data_parallel.hpp"

#include <cstring>

#include "saelab/error.hpp"

namespace saelab {

void BatchMoments::add_rows(const float* x, int64_t n, int d) {
  sum.resize(static_cast<size_t>(d), 0.0);
  for (int64_t r = 0; r < n; ++r)
    for (int j = 0; j < d; ++j) {
      sq += double(x[r * d + j]) * x[r * d + j];
      sum[j] += x[r * d + j];
    }
}

std::vector<size_t> part_shards(size_t n_shards, int part, int parts) {
  std::vector<size_t> out;
  for (size_t s = static_cast<size_t>(part); s < n_shards; s += static_cast<size_t>(parts)) out.push_back(s);
  return out;
}

DataParallelStep::DataParallelStep(const Sae& sae, Communicator& comm, int parts, int64_t N)
    : sae_(sae), comm_(comm), parts_(parts) {
  SAELAB_ASSERT(parts >= 1 && parts % comm.size() == 0 && N % parts == 0, "{} parts, {} processes, batch {}", parts,
                comm.size(), N);
  local_ = parts / comm.size();
  first_ = comm.rank() * local_;
  part_rows_ = N / parts;
  if (parts_ > 1) {
    part_grads_ = SaeParams(sae.config(), sae.backend().device());
    part_grad_J_ = SaeParams(sae.config(), sae.backend().device());
    for (size_t l = 0; l < sae.levels().size(); ++l) part_g_alpha_.emplace_back(sae.config(), sae.backend().device());
  }
}

namespace {

// One part's host-side contribution, flattened: doubles {sse, penalty, aux, l0, J, Σ‖x‖², Σx [d],
// prefix_sse, min_kept},
// then floats {fires [F], Σf [F]}. Its gradients ({∇L, then ∇J and g_α per level with a hyper
// request} [Pn] each) stay on the backend's device.
struct Record {
  size_t n_double, n_float;
  size_t bytes() const { return n_double * sizeof(double) + n_float * sizeof(float); }
};

// The first n floats of a 1-d device buffer that only grows (steps with and without a hyper
// request alternate, and would otherwise reallocate every time).
TensorView first_n(Tensor& t, int64_t n, Device device) {
  if (t.empty() || t.numel() < n) t = Tensor({n}, DType::F32, device);
  return t.view().rows(0, n);
}

}  // namespace

SaeBatchStats DataParallelStep::forward_backward(TensorView x, const float* x_host, const SaeLossTerms& terms,
                                                 SaeParams& grads, SaeWorkspace& ws, SaeHyperRequest* hyper,
                                                 BatchMoments& moments) {
  const SaeConfig& c = sae_.config();
  const int d = c.d_in;
  const int64_t F = c.d_sae;
  moments = BatchMoments{};
  if (parts_ == 1) {
    moments.add_rows(x_host, x.dim(0), d);
    return sae_.forward_backward(x, terms, grads, ws, hyper);
  }
  Backend& be = sae_.backend();
  const int64_t Pn = grads.flat.numel();
  const size_t levels = hyper ? hyper->levels.size() : 0;
  const Record rec{8 + static_cast<size_t>(d), 2 * static_cast<size_t>(F)};
  const int64_t Pg = (hyper ? 2 + static_cast<int64_t>(levels) : 1) * Pn;  // one part's gradients on the device
  const TensorView local_grads = first_n(local_grads_, local_ * Pg, be.device());
  const TensorView all_grads = first_n(all_grads_, parts_ * Pg, be.device());
  std::vector<char> local(rec.bytes() * static_cast<size_t>(local_));
  SaeBatchStats first;
  for (int p = 0; p < local_; ++p) {
    SaeHyperRequest part_hyper;
    if (hyper) {
      part_hyper = *hyper;
      part_hyper.grad_J = &part_grad_J_;
      part_hyper.g_alpha = &part_g_alpha_;
    }
    const int64_t r0 = p * part_rows_;
    SaeBatchStats st =
        sae_.forward_backward(x.rows(r0, r0 + part_rows_), terms, part_grads_, ws, hyper ? &part_hyper : nullptr);
    BatchMoments m;
    m.add_rows(x_host + r0 * d, part_rows_, d);
    double* dbl = reinterpret_cast<double*>(local.data() + static_cast<size_t>(p) * rec.bytes());
    dbl[0] = st.sse, dbl[1] = st.penalty, dbl[2] = st.aux, dbl[3] = st.l0, dbl[4] = hyper ? part_hyper.J : 0.0;
    dbl[5] = m.sq;
    std::memcpy(dbl + 6, m.sum.data(), static_cast<size_t>(d) * sizeof(double));
    dbl[6 + d] = st.prefix_sse, dbl[7 + d] = st.min_kept;
    float* flt = reinterpret_cast<float*>(dbl + rec.n_double);
    std::memcpy(flt, st.fires.data(), static_cast<size_t>(F) * sizeof(float));
    std::memcpy(flt + F, st.fsum.data(), static_cast<size_t>(F) * sizeof(float));
    const TensorView mine = local_grads.rows(p * Pg, (p + 1) * Pg);
    be.copy(mine.rows(0, Pn), part_grads_.flat);
    if (hyper) {
      be.copy(mine.rows(Pn, 2 * Pn), part_grad_J_.flat);
      for (size_t l = 0; l < levels; ++l) {
        const int64_t at = (2 + static_cast<int64_t>(l)) * Pn;
        be.copy(mine.rows(at, at + Pn), part_g_alpha_[l].flat);
      }
    }
    if (p == 0) first = std::move(st);
  }

  // Every part of the job, in part order (process r holds parts [r·local, (r+1)·local)).
  std::vector<char> all(local.size() * static_cast<size_t>(comm_.size()));
  comm_.allgather(local.data(), all.data(), local.size());
  comm_.allgather_device(be, local_grads, all_grads);
  std::vector<double> dsum(rec.n_double);
  std::vector<float> fsum(rec.n_float);
  double min_kept = 0;  // the smallest positive kept activation of any part
  for (int p = 0; p < parts_; ++p) {
    const double* dbl = reinterpret_cast<const double*>(all.data() + static_cast<size_t>(p) * rec.bytes());
    const float* flt = reinterpret_cast<const float*>(dbl + rec.n_double);
    for (size_t i = 0; i < rec.n_double; ++i) dsum[i] = p == 0 ? dbl[i] : dsum[i] + dbl[i];
    const double mk = dbl[7 + d];
    if (mk > 0 && (min_kept == 0 || mk < min_kept)) min_kept = mk;
    for (size_t i = 0; i < rec.n_float; ++i) fsum[i] = p == 0 ? flt[i] : fsum[i] + flt[i];
  }
  // Gradients (and J) are of each part's mean loss: their mean over parts is the batch's, added in
  // part order on the device. Firing counts and the sums behind the statistics stay sums.
  const float inv = 1.0f / static_cast<float>(parts_);
  auto mean_over_parts = [&](TensorView out, int64_t offset) {
    be.copy(out, all_grads.rows(offset, offset + Pn));
    for (int p = 1; p < parts_; ++p) be.axpy(out, all_grads.rows(p * Pg + offset, p * Pg + offset + Pn), 1.f);
    be.scale(out, inv);
  };
  mean_over_parts(grads.flat, 0);

  SaeBatchStats st;
  st.n = part_rows_ * parts_;
  st.sse = dsum[0], st.penalty = dsum[1], st.aux = dsum[2], st.l0 = dsum[3];
  st.fires.assign(fsum.begin(), fsum.begin() + F);
  st.fsum.assign(fsum.begin() + F, fsum.begin() + 2 * F);
  st.dec_norms = first.dec_norms;  // the parameters, not the data: the same in every part
  moments.sq = dsum[5];
  moments.sum.assign(dsum.begin() + 6, dsum.begin() + 6 + d);
  st.prefix_sse = dsum[6 + d];
  st.min_kept = static_cast<float>(min_kept);
  if (hyper) {
    mean_over_parts(hyper->grad_J->flat, Pn);
    for (size_t l = 0; l < levels; ++l) mean_over_parts((*hyper->g_alpha)[l].flat, (2 + static_cast<int64_t>(l)) * Pn);
    hyper->J = dsum[4] / static_cast<double>(parts_);
  }
  return st;
}

}  // namespace saelab
