// The SAE-dependent half of the absorption eval (k-sparse probing, absorption per true positive)
// and SAEBench's absorption_first_letter JSON.
#include <algorithm>
#include <cmath>

#include "saelab/absorption.hpp"
#include "saelab/error.hpp"
#include "saelab/saebench_json.hpp"
#include "saelab/sparse_probing.hpp"

namespace saelab {

using json = nlohmann::json;

namespace {

// SAE latents of x [n, d] as SAEBench's loaded SAE gives them (decoder norms folded in, except
// topk: probe_latent_scales), sparse: CSR over n rows. Encoded in chunks, so memory is O(nnz).
struct SparseLatents {
  std::vector<int64_t> ptr{0};
  std::vector<int32_t> col;
  std::vector<float> val;
  ProbeRows rows(int64_t n, int F) const { return ProbeRows{n, F, nullptr, &ptr, &col, &val}; }
};

SparseLatents encode_sparse(const Sae& sae, const std::vector<float>& x, int d) {
  const int F = sae.config().d_sae;
  const int64_t n = static_cast<int64_t>(x.size()) / d;
  SparseLatents out;
  if (n == 0) return out;
  const std::vector<float> scale = probe_latent_scales(sae);  // [F]
  Backend& be = sae.backend();
  constexpr int64_t kChunk = 1024;
  SaeWorkspace ws(sae.config(), std::min(n, kChunk), be.device());
  for (int64_t r0 = 0; r0 < n; r0 += kChunk) {
    const int64_t R = std::min(kChunk, n - r0);
    sae.encode(to_device(be, {R, d}, x.data() + r0 * d), ws);
    const std::vector<float> f = to_host_f32(be, ws.f.view().rows(0, R));  // [R, F]
    for (int64_t r = 0; r < R; ++r) {
      for (int i = 0; i < F; ++i)
        if (f[r * F + i] != 0.f) {
          out.col.push_back(i);
          out.val.push_back(f[r * F + i] * scale[i]);
        }
      out.ptr.push_back(static_cast<int64_t>(out.col.size()));
    }
  }
  return out;
}

// Dense latents [F] of row i.
std::vector<float> dense_row(const SparseLatents& s, int64_t i, int F) {
  std::vector<float> f(static_cast<size_t>(F), 0.f);
  for (int64_t e = s.ptr[i]; e < s.ptr[i + 1]; ++e) f[s.col[e]] = s.val[e];
  return f;
}

// Hierarchical SAEs: the parent a latent belongs to (itself for a parent).
int parent_of(const SaeConfig& c, int latent) {
  return latent < c.n_parents ? latent : (latent - c.n_parents) / c.children_per_parent;
}
bool child_of(const SaeConfig& c, int latent, int parent) {
  return latent >= c.n_parents && parent_of(c, latent) == parent;
}

}  // namespace

std::vector<KSparseLetter> absorption_k_sparse(const Sae& sae, const AbsorptionData& data, const AbsorptionConfig& cfg,
                                               const MultiProbe* l1_init) {
  const SaeConfig& sc = sae.config();
  if (sc.d_in != data.d) fail("absorption: the SAE reads d_in = {}, the model's hook {} has d = {}", sc.d_in, data.hook, data.d);
  if (!data.hook.empty()) check_sae_hook(sae, data.hook);
  const int F = sc.d_sae;
  const int64_t n_tr = static_cast<int64_t>(data.train_y.size()), n_te = static_cast<int64_t>(data.test_y.size());
  const SparseLatents tr = encode_sparse(sae, data.train_x, data.d), te = encode_sparse(sae, data.test_x, data.d);
  MultiProbeOptions lo;  // train_sparse_multi_probe's arguments
  lo.lr = cfg.ksparse_lr;
  lo.end_lr = cfg.ksparse_end_lr;
  lo.weight_decay = cfg.ksparse_l2_decay;
  lo.l1_decay = cfg.ksparse_l1_decay;
  lo.batch_size = cfg.ksparse_batch_size;
  lo.epochs = cfg.ksparse_epochs;
  lo.seed = cfg.seed + 1;
  lo.init = l1_init;
  const MultiProbe l1 = train_multi_probe(tr.rows(n_tr, F), data.train_y, kLetters, lo);
  return k_sparse_probing(l1, tr.rows(n_tr, F), data.train_y, te.rows(n_te, F), data.test_y, cfg.max_k_value,
                          cfg.f1_jump_threshold);
}

AbsorptionResult absorption_eval(const Sae& sae, const AbsorptionData& data, const AbsorptionConfig& cfg,
                                 const MultiProbe* l1_init) {
  return absorption_from_split(sae, data, absorption_k_sparse(sae, data, cfg, l1_init), cfg);
}

AbsorptionResult absorption_from_split(const Sae& sae, const AbsorptionData& data, const std::vector<KSparseLetter>& ks,
                                       const AbsorptionConfig& cfg) {
  const SaeConfig& sc = sae.config();
  SAELAB_ASSERT(ks.size() == kLetters && data.probe_f1.size() == kLetters, "absorption_from_split: one entry per letter");
  SAELAB_ASSERT(static_cast<int64_t>(data.tp_x.size()) == static_cast<int64_t>(data.tp_y.size()) * data.d,
                "absorption_from_split: tp_x is not [n_tp, d]");
  const int F = sc.d_sae, d = data.d;
  const bool hierarchical = sc.architecture == SaeArchitecture::Hierarchical;
  AbsorptionResult out;
  out.letters.resize(kLetters);
  int strong = 0;
  for (int l = 0; l < kLetters; ++l) {
    LetterAbsorption& L = out.letters[l];
    L.letter = l;
    L.probe_f1 = data.probe_f1[l];
    L.split_feats = ks[l].split_feats;
    L.k_f1 = ks[l].f1;
    if (hierarchical && !L.split_feats.empty()) L.main_parent = parent_of(sc, L.split_feats[0]);
    strong += L.probe_f1 > cfg.min_probe_f1;
  }
  out.evaluated = strong >= cfg.min_letters;
  out.hierarchical = hierarchical;
  // The absorption of every true positive, with its letter's unit probe direction.
  const std::vector<float> W_dec = to_host_f32(sae.backend(), sae.params().W_dec);  // [F, d]
  std::vector<std::vector<float>> cos(kLetters), dir(kLetters);
  for (int l = 0; l < kLetters; ++l) {
    dir[l].assign(data.probe.W.begin() + int64_t{l} * d, data.probe.W.begin() + int64_t{l + 1} * d);
    double nrm = 0;
    for (float v : dir[l]) nrm += double{v} * v;
    for (float& v : dir[l]) v = static_cast<float>(v / std::sqrt(nrm));
    cos[l] = decoder_cosines(W_dec, F, d, dir[l]);
  }
  const SparseLatents tp = encode_sparse(sae, data.tp_x, d);
  std::vector<double> fraction_sum(kLetters, 0.0);
  for (size_t i = 0; i < data.tp_y.size(); ++i) {
    const int l = data.tp_y[i];
    LetterAbsorption& L = out.letters[l];
    const std::vector<float> f = dense_row(tp, static_cast<int64_t>(i), F);
    const WordAbsorption w = word_absorption(data.tp_x.data() + i * d, f.data(), cos[l], dir[l], L.split_feats, cfg);
    ++L.num_probe_true_positives;
    fraction_sum[l] += w.absorption_fraction;
    L.num_full_absorption += w.full_absorption;
    if (hierarchical && L.main_parent >= 0 && !w.absorbers.empty()) {
      ++L.absorbed_words;
      L.absorbed_by_children += child_of(sc, w.absorbers[0], L.main_parent);
    }
  }
  for (LetterAbsorption& L : out.letters)
    if (L.num_probe_true_positives > 0) {
      L.mean_absorption_fraction = fraction_sum[L.letter] / L.num_probe_true_positives;
      L.full_absorption_rate = static_cast<double>(L.num_full_absorption) / L.num_probe_true_positives;
    }
  return out;
}

}  // namespace saelab
