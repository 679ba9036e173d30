#include "saelab/sae.hpp"

#include <cmath>
#include <random>

namespace saelab {

const char* sae_architecture_name(SaeArchitecture a) {
  switch (a) {
    case SaeArchitecture::Standard: return "standard";
    case SaeArchitecture::TopK: return "topk";
    case SaeArchitecture::Hierarchical: return "hierarchical";
    case SaeArchitecture::BatchTopK: return "batchtopk";
    case SaeArchitecture::JumpReLU: return "jumprelu";
    case SaeArchitecture::MatryoshkaBatchTopK: return "matryoshka_batchtopk";
  }
  SAELAB_ASSERT(false, "bad architecture");
}

SaeArchitecture sae_architecture_from_name(const std::string& s) {
  if (s == "standard" || s == "vanilla" || s == "relu") return SaeArchitecture::Standard;
  if (s == "topk") return SaeArchitecture::TopK;
  if (s == "hierarchical") return SaeArchitecture::Hierarchical;
  if (s == "batchtopk") return SaeArchitecture::BatchTopK;
  if (s == "jumprelu") return SaeArchitecture::JumpReLU;
  if (s == "matryoshka_batchtopk") return SaeArchitecture::MatryoshkaBatchTopK;
  fail("unknown SAE architecture '{}' (expected standard, topk, hierarchical, batchtopk, jumprelu or "
       "matryoshka_batchtopk)", s);
}

bool sae_is_batch_topk(SaeArchitecture a) {
  return a == SaeArchitecture::BatchTopK || a == SaeArchitecture::MatryoshkaBatchTopK;
}
bool sae_has_threshold(SaeArchitecture a) { return sae_is_batch_topk(a) || a == SaeArchitecture::JumpReLU; }
bool sae_is_topk_family(SaeArchitecture a) { return a == SaeArchitecture::TopK || sae_is_batch_topk(a); }

SaeParams::SaeParams(const SaeConfig& c, Device device) {
  const int64_t d = c.d_in, F = c.d_sae, T = sae_has_threshold(c.architecture) ? F : 0;
  flat = Tensor({d * F + F + F * d + d + 2 * T}, DType::F32, device);
  float* p = flat.f32();
  W_enc = TensorView::make(p, {d, F}, DType::F32, device);
  b_enc = TensorView::make(p + d * F, {F}, DType::F32, device);
  W_dec = TensorView::make(p + d * F + F, {F, d}, DType::F32, device);
  b_dec = TensorView::make(p + d * F + F + F * d, {d}, DType::F32, device);
  if (T == 0) return;
  log_threshold = TensorView::make(p + d * F + F + F * d + d, {F}, DType::F32, device);
  threshold = TensorView::make(p + d * F + F + F * d + d + F, {F}, DType::F32, device);
}

std::vector<std::pair<std::string, TensorView>> SaeParams::named() const {
  std::vector<std::pair<std::string, TensorView>> out = {
      {"W_enc", W_enc}, {"b_enc", b_enc}, {"W_dec", W_dec}, {"b_dec", b_dec}};
  if (threshold.data) {
    out.push_back({"log_threshold", log_threshold});
    out.push_back({"threshold", threshold});
  }
  return out;
}

SaeWorkspace::SaeWorkspace(const SaeConfig& c, int64_t N, Device dev)
    : capacity(N),
      xc({N, c.d_in}, DType::F32, dev),
      xhat({N, c.d_in}, DType::F32, dev),
      dxhat({N, c.d_in}, DType::F32, dev),
      ehat({N, c.d_in}, DType::F32, dev),
      pre({N, c.d_sae}, DType::F32, dev),
      f({N, c.d_sae}, DType::F32, dev),
      df({N, c.d_sae}, DType::F32, dev),
      f_aux(sae_is_topk_family(c.architecture) ? Tensor({N, c.d_sae}, DType::F32, dev) : Tensor()),
      vec_F({c.d_sae}, DType::F32, dev),
      pen({c.d_sae}, DType::F32, dev),
      dec_tmp({c.d_sae, c.d_in}, DType::F32, dev),
      grad_col({c.d_in}, DType::F32, dev),
      lvl_x(c.architecture == SaeArchitecture::MatryoshkaBatchTopK ? Tensor({N, c.d_in}, DType::F32, dev) : Tensor()),
      lvl_d(c.architecture == SaeArchitecture::MatryoshkaBatchTopK ? Tensor({N, c.d_in}, DType::F32, dev) : Tensor()),
      f_group(c.architecture == SaeArchitecture::MatryoshkaBatchTopK ? Tensor({N, c.d_sae}, DType::F32, dev)
                                                                     : Tensor()) {}

Sae::Sae(SaeConfig cfg, Backend& be) : cfg_(std::move(cfg)), be_(be), params_(cfg_, be.device()) {
  if (cfg_.d_in <= 0 || cfg_.d_sae <= 0) fail("SAE needs d_in > 0 and d_sae > 0 (got {}, {})", cfg_.d_in, cfg_.d_sae);
  if (sae_is_topk_family(cfg_.architecture) && (cfg_.k <= 0 || cfg_.k > cfg_.d_sae))
    fail("{} SAE needs 0 < k <= d_sae (k = {}, d_sae = {})", sae_architecture_name(cfg_.architecture), cfg_.k,
         cfg_.d_sae);
  if (cfg_.architecture == SaeArchitecture::JumpReLU && cfg_.sparse_decode)
    fail("the jumprelu SAE cannot use the sparse step: its threshold gradient needs ∂L/∂f where f = 0");
  sparse_ = cfg_.sparse_decode;
  if (cfg_.architecture == SaeArchitecture::JumpReLU &&
      !(cfg_.jumprelu_bandwidth > 0.f && cfg_.jumprelu_init_threshold > 0.f))
    fail("jumprelu SAE needs jumprelu_bandwidth > 0 and jumprelu_init_threshold > 0 (got {}, {})",
         cfg_.jumprelu_bandwidth, cfg_.jumprelu_init_threshold);
  if (cfg_.architecture == SaeArchitecture::MatryoshkaBatchTopK) check_matryoshka_widths(cfg_.matryoshka_widths, cfg_.d_sae);
  if (cfg_.k_aux <= 0) cfg_.k_aux = std::max(1, std::min(cfg_.d_in / 2, cfg_.d_sae));
  if (cfg_.architecture == SaeArchitecture::Hierarchical &&
      (cfg_.n_parents <= 0 || cfg_.children_per_parent <= 0 ||
       cfg_.d_sae != cfg_.n_parents * (1 + cfg_.children_per_parent)))
    fail("hierarchical SAE needs n_parents > 0, children_per_parent > 0 and d_sae = n_parents·(1 + children_per_parent) "
         "(got {}, {}, {})", cfg_.n_parents, cfg_.children_per_parent, cfg_.d_sae);
}

void Sae::set_sparse(bool on) {
  SAELAB_ASSERT(!on || cfg_.architecture != SaeArchitecture::JumpReLU, "jumprelu has no sparse step");
  sparse_ = on;
}

std::vector<std::pair<int, int>> Sae::levels() const {
  if (cfg_.architecture == SaeArchitecture::Hierarchical) return {{0, cfg_.n_parents}, {cfg_.n_parents, cfg_.d_sae}};
  return {{0, cfg_.d_sae}};
}

void Sae::init(uint64_t seed, float dec_norm, const std::vector<float>& b_dec_init) {
  const int64_t d = cfg_.d_in, F = cfg_.d_sae;
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.f, 1.f);
  std::vector<float> wdec(static_cast<size_t>(F * d)), wenc(static_cast<size_t>(d * F));
  for (int64_t i = 0; i < F; ++i) {
    double ss = 0;
    for (int64_t j = 0; j < d; ++j) {
      const float v = normal(rng);
      wdec[i * d + j] = v;
      ss += double(v) * v;
    }
    const float s = dec_norm / static_cast<float>(std::sqrt(ss));
    for (int64_t j = 0; j < d; ++j) {
      wdec[i * d + j] *= s;
      wenc[j * F + i] = wdec[i * d + j];  // tied initialisation: W_enc = W_decᵀ
    }
  }
  be_.upload(params_.W_dec, wdec.data());
  be_.upload(params_.W_enc, wenc.data());
  std::vector<float> zeros(static_cast<size_t>(F), 0.f);
  be_.upload(params_.b_enc, zeros.data());
  std::vector<float> bd = b_dec_init.empty() ? std::vector<float>(static_cast<size_t>(d), 0.f) : b_dec_init;
  SAELAB_ASSERT(static_cast<int64_t>(bd.size()) == d, "b_dec init has {} values for d = {}", bd.size(), d);
  be_.upload(params_.b_dec, bd.data());
  if (!sae_has_threshold(cfg_.architecture)) return;
  // jumprelu starts at its configured threshold; batchtopk's EMA starts at 0, as SAELens' buffer.
  const bool jump = cfg_.architecture == SaeArchitecture::JumpReLU;
  std::vector<float> lt(static_cast<size_t>(F), jump ? std::log(cfg_.jumprelu_init_threshold) : 0.f);
  be_.upload(params_.log_threshold, lt.data());
  if (jump) refresh_threshold();
  else be_.scale(params_.threshold, 0.f);
}

void Sae::normalize_decoder_rows() {
  const int64_t F = cfg_.d_sae;
  Tensor norms({F}, DType::F32, be_.device());
  be_.row_norms(norms, params_.W_dec);
  std::vector<float> s = to_host_f32(be_, norms);
  for (auto& v : s) v = v > 0.f ? 1.0f / v : 1.0f;
  be_.upload(norms.view(), s.data());
  be_.scale_rows(params_.W_dec, norms);
}

void Sae::orthogonalize_children() {
  SAELAB_ASSERT(cfg_.architecture == SaeArchitecture::Hierarchical, "orthogonalize_children needs a hierarchy");
  const int64_t d = cfg_.d_in, F = cfg_.d_sae, P = cfg_.n_parents, m = cfg_.children_per_parent;
  std::vector<float> W = to_host_f32(be_, params_.W_dec);
  for (int64_t j = P; j < F; ++j) {
    const float* u = W.data() + ((j - P) / m) * d;
    double uu = 0, cu = 0;
    for (int64_t k = 0; k < d; ++k) {
      uu += double(u[k]) * u[k];
      cu += double(W[j * d + k]) * u[k];
    }
    if (uu <= 0) continue;
    const float s = static_cast<float>(cu / uu);
    for (int64_t k = 0; k < d; ++k) W[j * d + k] -= s * u[k];
  }
  be_.upload(params_.W_dec, W.data());
}

// Π(W)_j = c − s·p with s = (c·p)/(p·p), c child j's row and p its parent's (parents unchanged), so
//   DΠ[ċ, ṗ]_j = ċ − s·ṗ − ṡ·p,  ṡ = (ċ·p + c·ṗ)/(p·p) − 2s·(p·ṗ)/(p·p)
void Sae::orthogonalize_children_tangents(const std::vector<TensorView>& dW_dec) const {
  SAELAB_ASSERT(cfg_.architecture == SaeArchitecture::Hierarchical, "orthogonalize_children_tangents needs a hierarchy");
  const int64_t d = cfg_.d_in, F = cfg_.d_sae, P = cfg_.n_parents, m = cfg_.children_per_parent;
  if (dW_dec.empty()) return;
  const std::vector<float> W = to_host_f32(be_, params_.W_dec);  // once for every tangent
  for (TensorView tangent : dW_dec) {
    SAELAB_ASSERT(tangent.numel() == F * d, "tangent of W_dec: {} values for [{}, {}]", tangent.numel(), F, d);
    std::vector<float> T = to_host_f32(be_, tangent);
    for (int64_t j = P; j < F; ++j) {
      const int64_t par = (j - P) / m;
      const float *p = W.data() + par * d, *c = W.data() + j * d, *pt = T.data() + par * d;
      float* ct = T.data() + j * d;
      double pp = 0, cp = 0, ctp = 0, cpt = 0, ppt = 0;
      for (int64_t k = 0; k < d; ++k) {
        pp += double(p[k]) * p[k];
        cp += double(c[k]) * p[k];
        ctp += double(ct[k]) * p[k];
        cpt += double(c[k]) * pt[k];
        ppt += double(p[k]) * pt[k];
      }
      if (pp <= 0) continue;
      const double sc = cp / pp, sdot = (ctp + cpt) / pp - 2.0 * sc * ppt / pp;
      for (int64_t k = 0; k < d; ++k) ct[k] = static_cast<float>(ct[k] - sc * pt[k] - sdot * p[k]);
    }
    be_.upload(tangent, T.data());
  }
}

void Sae::encoder_gemm(TensorView x, SaeWorkspace& ws) const {
  const int64_t N = x.dim(0);
  SAELAB_ASSERT(N <= ws.capacity && x.dim(1) == cfg_.d_in, "encode: x {} for capacity {} d {}", x.shape_str(),
                ws.capacity, cfg_.d_in);
  TensorView xc = ws.xc.view().rows(0, N), pre = ws.pre.view().rows(0, N);
  if (cfg_.apply_b_dec_to_input) be_.sub_row(xc, x, params_.b_dec);
  else be_.copy(xc, x);
  be_.gemm(pre, xc, false, params_.W_enc, false, 1.f, 0.f);  // [N, d] x [d, F]
}

void Sae::encode(TensorView x, SaeWorkspace& ws, TensorView fires, TensorView mass) const {
  const int64_t N = x.dim(0);
  encoder_gemm(x, ws);
  TensorView pre = ws.pre.view().rows(0, N), f = ws.f.view().rows(0, N);
  EncoderActivation act;
  if (cfg_.architecture == SaeArchitecture::TopK) act.k = cfg_.k;
  if (sae_has_threshold(cfg_.architecture)) act.threshold = params_.threshold;
  if (cfg_.architecture == SaeArchitecture::Hierarchical) {
    act.n_parents = cfg_.n_parents;
    act.children_per_parent = cfg_.children_per_parent;
    act.children_on = children_on_;
  }
  be_.encode_epilogue(f, pre, params_.b_enc, act, fires, mass);
}

void Sae::decode(SaeWorkspace& ws, int64_t N) const {
  TensorView f = ws.f.view().rows(0, N), xhat = ws.xhat.view().rows(0, N);
  if (sparse_) be_.sparse_decode(xhat, f, params_.W_dec);
  else be_.gemm(xhat, f, false, params_.W_dec, false, 1.f, 0.f);  // [N, F] x [F, d]
  be_.add_row(xhat, params_.b_dec);
}

void check_sae_hook(const Sae& sae, const std::string& hook) {
  const SaeConfig& c = sae.config();
  if (!c.hook_name.empty() && c.hook_name != hook)
    fail("the SAE was trained on hook '{}'{} but is applied at '{}'; use its own hook", c.hook_name,
         c.model_name.empty() ? "" : " of model '" + c.model_name + "'", hook);
}

}  // namespace saelab
