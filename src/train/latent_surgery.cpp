#include "latent_surgery.hpp"

#include <cmath>
#include <random>

namespace saelab {

int64_t resample_dead(Sae& sae, TrainState& st, const std::vector<float>& x, const std::vector<float>& xhat,
                      int64_t N, int64_t dead_window, uint64_t seed) {
  const SaeConfig& c = sae.config();
  const int64_t d = c.d_in, F = c.d_sae;
  std::vector<int64_t> dead;
  for (int64_t i = 0; i < F; ++i)
    if (st.tokens_since_fired[i] >= static_cast<float>(dead_window)) dead.push_back(i);
  if (dead.empty()) return 0;
  Backend& be = sae.backend();
  std::vector<float> W_enc = to_host_f32(be, sae.params().W_enc), W_dec = to_host_f32(be, sae.params().W_dec),
                     b_enc = to_host_f32(be, sae.params().b_enc);
  std::vector<double> err(static_cast<size_t>(N));
  double total = 0;
  for (int64_t n = 0; n < N; ++n) {
    double e = 0;
    for (int64_t j = 0; j < d; ++j) e += (x[n * d + j] - xhat[n * d + j]) * (x[n * d + j] - xhat[n * d + j]);
    err[n] = e;
    total += e;
  }
  if (total <= 0) return 0;
  double enc_norm = 0, dec_norm = 0;
  int64_t alive = 0;
  for (int64_t i = 0; i < F; ++i) {
    if (st.tokens_since_fired[i] >= static_cast<float>(dead_window)) continue;
    double en = 0, dn = 0;
    for (int64_t j = 0; j < d; ++j) {
      en += double(W_enc[j * F + i]) * W_enc[j * F + i];
      dn += double(W_dec[i * d + j]) * W_dec[i * d + j];
    }
    enc_norm += std::sqrt(en);
    dec_norm += std::sqrt(dn);
    ++alive;
  }
  enc_norm = alive ? enc_norm / alive : 1.0;
  dec_norm = alive ? dec_norm / alive : 1.0;
  std::mt19937_64 rng(seed);
  std::vector<float> m = to_host_f32(be, st.adam_m.flat), v = to_host_f32(be, st.adam_v.flat);
  const int64_t off_W_enc = 0, off_b_enc = d * F, off_W_dec = d * F + F;
  for (int64_t i : dead) {
    double u = static_cast<double>(rng() >> 11) * 0x1.0p-53 * total;
    int64_t n = 0;
    while (n + 1 < N && u > err[n]) u -= err[n++];
    double nrm = std::sqrt(err[n]);
    for (int64_t j = 0; j < d; ++j) {
      const double dir = (x[n * d + j] - xhat[n * d + j]) / nrm;
      W_dec[i * d + j] = static_cast<float>(dir * (c.unit_norm_decoder ? 1.0 : dec_norm));
      W_enc[j * F + i] = static_cast<float>(dir * 0.2 * enc_norm);
      m[off_W_enc + j * F + i] = v[off_W_enc + j * F + i] = 0.f;
      m[off_W_dec + i * d + j] = v[off_W_dec + i * d + j] = 0.f;
    }
    b_enc[i] = 0.f;
    m[off_b_enc + i] = v[off_b_enc + i] = 0.f;
    st.tokens_since_fired[i] = 0.f;
  }
  be.upload(sae.params().W_enc, W_enc.data());
  be.upload(sae.params().W_dec, W_dec.data());
  be.upload(sae.params().b_enc, b_enc.data());
  be.upload(st.adam_m.flat.view(), m.data());
  be.upload(st.adam_v.flat.view(), v.data());
  return static_cast<int64_t>(dead.size());
}

void init_children_from_parents(Sae& sae, TrainState& st, uint64_t seed) {
  const SaeConfig& c = sae.config();
  const int64_t d = c.d_in, F = c.d_sae, P = c.n_parents, m = c.children_per_parent;
  Backend& be = sae.backend();
  std::vector<float> W_enc = to_host_f32(be, sae.params().W_enc), b_enc = to_host_f32(be, sae.params().b_enc),
                     W_dec = to_host_f32(be, sae.params().W_dec);
  std::vector<float> mm = to_host_f32(be, st.adam_m.flat), vv = to_host_f32(be, st.adam_v.flat);
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> nd(0.f, 1.f);
  const int64_t off_b_enc = d * F, off_W_dec = d * F + F;
  for (int64_t j = P; j < F; ++j) {
    const int64_t p = (j - P) / m;
    double pn = 0;
    for (int64_t r = 0; r < d; ++r) pn += double(W_enc[r * F + p]) * W_enc[r * F + p];
    const float noise = static_cast<float>(0.1 * std::sqrt(pn / static_cast<double>(d)));
    for (int64_t r = 0; r < d; ++r) {
      W_enc[r * F + j] = W_enc[r * F + p] + noise * nd(rng);
      mm[r * F + j] = vv[r * F + j] = 0.f;
    }
    b_enc[j] = b_enc[p];
    mm[off_b_enc + j] = vv[off_b_enc + j] = 0.f;
    for (int64_t k = 0; k < d; ++k) {
      W_dec[j * d + k] = 0.01f * nd(rng);
      mm[off_W_dec + j * d + k] = vv[off_W_dec + j * d + k] = 0.f;
    }
  }
  be.upload(sae.params().W_enc, W_enc.data());
  be.upload(sae.params().b_enc, b_enc.data());
  be.upload(sae.params().W_dec, W_dec.data());
  be.upload(st.adam_m.flat.view(), mm.data());
  be.upload(st.adam_v.flat.view(), vv.data());
}

}  // namespace saelab
