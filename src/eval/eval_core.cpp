#include "saelab/eval_core.hpp"

#include <chrono>
#include <cmath>
#include <random>

#include "saelab/corpus.hpp"
#include "saelab/lm.hpp"
#include "saelab/progress.hpp"

namespace saelab {

using json = nlohmann::json;

namespace {

// log Σ_i exp(l_i) over one row of V logits, in double, shifted by the row's max.
double log_sum_exp(const float* l, int64_t V) {
  double mx = l[0];
  for (int64_t i = 1; i < V; ++i) mx = std::max(mx, static_cast<double>(l[i]));
  double s = 0;
  for (int64_t i = 0; i < V; ++i) s += std::exp(l[i] - mx);
  return mx + std::log(s);
}

// Log-softmax of logits [rows, V] in f64, row by row (rows in parallel; each row's arithmetic is
// the serial one, so results do not depend on the thread count).
void log_softmax_rows(const std::vector<float>& logits, int64_t rows, int64_t V, std::vector<double>& out) {
  out.resize(static_cast<size_t>(rows * V));
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    const float* l = logits.data() + r * V;
    const double lse = log_sum_exp(l, V);
    for (int64_t i = 0; i < V; ++i) out[r * V + i] = l[i] - lse;
  }
}

// The clean run of one batch: its log-softmax lc and probabilities pc = exp(lc), [rows, V] each.
struct CleanBatch {
  std::vector<double> lc, pc;
};

// Per measured position (b, t < T−1) of a batch: the next-token CE of `logits` and KL(clean ‖ it),
// summed over positions in order into ce, kl. Positions run in parallel into per-position slots and
// are summed serially, so the sums are those of one serial loop over positions.
void add_ce_kl(const CleanBatch& clean, const std::vector<float>& logits, const std::vector<int32_t>& tokens, int B,
               int T, int64_t V, double& ce, double& kl) {
  const int64_t P = static_cast<int64_t>(B) * (T - 1);
  std::vector<double> ce_pos(static_cast<size_t>(P)), kl_pos(static_cast<size_t>(P));
#pragma omp parallel for schedule(static)
  for (int64_t p = 0; p < P; ++p) {
    const int64_t row = (p / (T - 1)) * T + p % (T - 1);
    const float* l = logits.data() + row * V;
    const double lse = log_sum_exp(l, V);
    const double* lc = clean.lc.data() + row * V;
    const double* pc = clean.pc.data() + row * V;
    double k = 0;
    for (int64_t i = 0; i < V; ++i) k += pc[i] * (lc[i] - (l[i] - lse));
    ce_pos[p] = l[tokens[row + 1]] - lse;
    kl_pos[p] = k;
  }
  for (int64_t p = 0; p < P; ++p) {
    ce -= ce_pos[p];
    kl += kl_pos[p];
  }
}

// One reconstruction's sums over the evaluated positions.
struct CoreAccum {
  CoreEvalResult r;
  std::vector<double> fires;  // [F]
  std::vector<double> mean;   // [d] sum of x
  double sse = 0, sum_sq = 0, cos_sum = 0, l0 = 0, l1 = 0, n_in = 0, n_out = 0, dot_xy = 0, yy = 0;
};

// Reconstruction statistics of rows xs [n, d] -> xh [n, d] with latents lat [n, F].
void add_reconstruction(CoreAccum& a, const std::vector<float>& xs, const std::vector<float>& xh,
                        const std::vector<float>& lat, int64_t n, int d, int F) {
  for (int64_t k = 0; k < n; ++k) {
    double e = 0, x2 = 0, y2 = 0, xy = 0;
    for (int j = 0; j < d; ++j) {
      const double xv = xs[k * d + j], yv = xh[k * d + j];
      e += (xv - yv) * (xv - yv);
      x2 += xv * xv;
      y2 += yv * yv;
      xy += xv * yv;
      a.mean[j] += xv;
    }
    a.sse += e;
    a.sum_sq += x2;
    a.n_in += std::sqrt(x2);
    a.n_out += std::sqrt(y2);
    a.dot_xy += xy;
    a.yy += y2;
    a.cos_sum += (x2 > 0 && y2 > 0) ? xy / std::sqrt(x2 * y2) : 0.0;
    for (int i = 0; i < F; ++i) {
      const float v = lat[k * F + i];
      if (v != 0.f) {
        a.fires[i] += 1;
        a.l0 += 1;
        a.l1 += std::abs(v);
      }
    }
  }
  a.r.tokens += n;
}

CoreEvalResult finish(CoreAccum& a, int d, int F, int64_t ce_tokens, double ce_clean, double ce_zero, double kl_zero,
                      const CoreEvalConfig& cfg) {
  CoreEvalResult& r = a.r;
  const double N = static_cast<double>(r.tokens), C = static_cast<double>(ce_tokens);
  r.ce_clean = ce_clean / C;
  r.ce_sae /= C;
  r.ce_zero = ce_zero / C;
  r.kl_sae /= C;
  r.kl_zero = kl_zero / C;
  double msq = 0;
  for (double m : a.mean) msq += (m / N) * (m / N);
  const double var = a.sum_sq - N * msq;
  r.mse = a.sse / (N * d);
  r.explained_variance = var > 0 ? 1.0 - a.sse / var : 0.0;
  r.cossim = a.cos_sum / N;
  r.l0 = a.l0 / N;
  r.l1 = a.l1 / N;
  r.l2_norm_in = a.n_in / N;
  r.l2_norm_out = a.n_out / N;
  // SAEBench's relative reconstruction bias: E⟨x̂, x̂⟩ / E⟨x, x̂⟩ (1 = no shrinkage).
  r.relative_reconstruction_bias = a.dot_xy != 0 ? a.yy / a.dot_xy : 0.0;
  r.density.resize(a.fires.size());
  int64_t dead = 0, dense = 0;
  for (size_t i = 0; i < a.fires.size(); ++i) {
    r.density[i] = static_cast<float>(a.fires[i] / N);
    dead += a.fires[i] == 0;
    dense += r.density[i] > cfg.dense_threshold;
  }
  if (F > 0) {
    r.dead_fraction = static_cast<double>(dead) / F;
    r.dense_fraction = static_cast<double>(dense) / F;
  }
  return r;
}

}  // namespace

std::vector<CoreEvalResult> eval_core_multi_with(const LlamaModel& model, const std::string& hook,
                                                 const std::vector<int>& F, const std::vector<Reconstruct>& recons,
                                                 const CoreEvalConfig& cfg, EvalTiming* timing) {
  model.check_hook(hook);
  SAELAB_ASSERT(F.size() == recons.size(), "one latent count per reconstruction");
  if (cfg.context_size < 2) fail("core evaluation needs contexts of at least 2 tokens, got {}", cfg.context_size);
  const size_t S = recons.size();
  const int T = cfg.context_size, d = model.config().d_model;
  const int64_t V = model.config().vocab_size;
  const Tokenizer& tok = model.tokenizer();
  CorpusReader reader(expand_corpus_paths(cfg.corpus));
  ContextStream stream(reader, tok, T);
  std::vector<CoreAccum> acc(S);
  for (size_t s = 0; s < S; ++s) {
    acc[s].fires.assign(static_cast<size_t>(std::max(F[s], 0)), 0.0);
    acc[s].mean.assign(static_cast<size_t>(d), 0.0);
  }
  double ce_clean = 0, ce_zero = 0, kl_zero = 0;  // shared by every reconstruction
  int64_t ce_tokens = 0;
  EvalTiming local;
  EvalTiming& tm = timing ? *timing : local;
  Progress bar("eval core", cfg.n_contexts, "ctx");
  std::vector<int32_t> ctx, tokens;
  int done = 0;
  while (done < cfg.n_contexts) {
    tokens.clear();
    int B = 0;
    while (B < cfg.batch_size && done + B < cfg.n_contexts && stream.next(ctx)) {
      tokens.insert(tokens.end(), ctx.begin(), ctx.end());
      ++B;
    }
    if (B == 0) break;
    const int64_t rows = static_cast<int64_t>(B) * T;
    // Clean run, capturing the activation.
    std::vector<float> x, logits;
    {
      TimeInto t(&tm.lm_s);
      Hooks observe;
      observe.observe(hook, [&](TensorView a) { x = to_host_f32(model.backend(), a); });
      logits = to_host_f32(model.backend(), model.forward(tokens, B, T, &observe));
    }
    // The rows to reconstruct: real, non-special tokens.
    std::vector<float> xs;
    std::vector<int64_t> idx;
    CleanBatch clean;
    {
      TimeInto t(&tm.other_s);
      for (int64_t i = 0; i < rows; ++i)
        if (!tok.is_special(tokens[i]) && tokens[i] != tok.bos_id()) {
          idx.push_back(i);
          xs.insert(xs.end(), x.begin() + i * d, x.begin() + (i + 1) * d);
        }
      log_softmax_rows(logits, rows, V, clean.lc);
      clean.pc.resize(clean.lc.size());
#pragma omp parallel for schedule(static)
      for (int64_t i = 0; i < static_cast<int64_t>(clean.lc.size()); ++i) clean.pc[i] = std::exp(clean.lc[i]);
      for (int b = 0; b < B; ++b)
        for (int t = 0; t + 1 < T; ++t) {
          const int64_t row = static_cast<int64_t>(b) * T + t;
          ce_clean -= clean.lc[row * V + tokens[row + 1]];
          ++ce_tokens;
        }
    }
    const int64_t n = static_cast<int64_t>(idx.size());
    // A forward with the kept rows of the hook activation replaced by xh (null: zeros).
    auto spliced = [&](const std::vector<float>* xh) {
      TimeInto t(&tm.lm_s);
      Hooks h;
      h.splice(hook, [&](TensorView a) {
        std::vector<float> act = to_host_f32(model.backend(), a);
        for (int64_t k = 0; k < n; ++k)
          for (int j = 0; j < d; ++j) act[idx[k] * d + j] = xh ? (*xh)[k * d + j] : 0.f;
        model.backend().upload(a, act.data());
      });
      return to_host_f32(model.backend(), model.forward(tokens, B, T, &h));
    };
    logits = spliced(nullptr);
    {
      TimeInto t(&tm.other_s);
      add_ce_kl(clean, logits, tokens, B, T, V, ce_zero, kl_zero);
    }
    for (size_t s = 0; s < S; ++s) {
      std::vector<float> xh, lat;
      {
        TimeInto t(&tm.sae_s);
        recons[s](xs, n, xh, lat);
      }
      {
        TimeInto t(&tm.other_s);
        add_reconstruction(acc[s], xs, xh, lat, n, d, F[s]);
      }
      logits = spliced(&xh);
      TimeInto t(&tm.other_s);
      add_ce_kl(clean, logits, tokens, B, T, V, acc[s].r.ce_sae, acc[s].r.kl_sae);
    }
    done += B;
    if (cfg.progress) bar.update(done);
  }
  if (ce_tokens == 0 || (S > 0 && acc[0].r.tokens == 0))
    fail("the evaluation corpus yielded no complete context of {} tokens", T);
  std::vector<CoreEvalResult> out;
  for (size_t s = 0; s < S; ++s) out.push_back(finish(acc[s], d, F[s], ce_tokens, ce_clean, ce_zero, kl_zero, cfg));
  if (cfg.progress) bar.finish();
  return out;
}

CoreEvalResult eval_core_with(const LlamaModel& model, const std::string& hook, int F, const Reconstruct& recon,
                              const CoreEvalConfig& cfg) {
  return eval_core_multi_with(model, hook, {F}, {recon}, cfg)[0];
}

std::vector<CoreEvalResult> eval_core_multi(const LlamaModel& model, const std::vector<const Sae*>& saes,
                                            const std::string& hook, const CoreEvalConfig& cfg, EvalTiming* timing) {
  std::vector<int> F;
  std::vector<Reconstruct> recons;
  for (const Sae* p : saes) {
    SAELAB_ASSERT(p != nullptr, "null SAE");
    const Sae& sae = *p;
    if (sae.config().d_in != model.config().d_model)
      fail("SAE d_in {} does not match the width {} of model '{}' at '{}'", sae.config().d_in, model.config().d_model,
           model.config().name, hook);
    check_sae_hook(sae, hook);
    const int Fs = sae.config().d_sae, d = sae.config().d_in;
    F.push_back(Fs);
    recons.push_back([&sae, Fs, d](const std::vector<float>& x, int64_t n, std::vector<float>& xh,
                                   std::vector<float>& lat) {
      xh.assign(static_cast<size_t>(n * d), 0.f);
      lat.assign(static_cast<size_t>(n * Fs), 0.f);
      if (n == 0) return;
      Backend& be = sae.backend();
      SaeWorkspace ws(sae.config(), n, be.device());
      sae.encode(to_device(be, {n, d}, x.data()), ws);
      sae.decode(ws, n);
      xh = to_host_f32(be, ws.xhat.view().rows(0, n));
      lat = to_host_f32(be, ws.f.view().rows(0, n));
    });
  }
  return eval_core_multi_with(model, hook, F, recons, cfg, timing);
}

CoreEvalResult eval_core(const LlamaModel& model, const Sae& sae, const std::string& hook, const CoreEvalConfig& cfg) {
  return eval_core_multi(model, {&sae}, hook, cfg)[0];
}

std::string new_eval_id() {
  std::random_device rd;
  std::mt19937_64 rng((static_cast<uint64_t>(rd()) << 32) ^ rd());
  uint64_t a = rng(), b = rng();
  a = (a & 0xFFFFFFFFFFFF0FFFull) | 0x4000ull;            // version 4
  b = (b & 0x3FFFFFFFFFFFFFFFull) | 0x8000000000000000ull;  // variant 10
  return fmt::format("{:08x}-{:04x}-{:04x}-{:04x}-{:012x}", a >> 32, (a >> 16) & 0xFFFF, a & 0xFFFF, b >> 48,
                     b & 0xFFFFFFFFFFFFull);
}

int64_t now_epoch_millis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

json core_result_json(const CoreEvalResult& r, const CoreEvalConfig& cfg, const json& sae_cfg,
                      const std::string& model_name) {
  int64_t over1 = 0, over10 = 0;
  for (float v : r.density) {
    over1 += v > 0.01f;
    over10 += v > 0.1f;
  }
  const double F = r.density.empty() ? 1.0 : static_cast<double>(r.density.size());
  return {
      {"eval_type_id", "core"},
      {"eval_config",
       {{"model_name", model_name},
        {"context_size", cfg.context_size},
        {"batch_size_prompts", cfg.batch_size},
        {"n_eval_reconstruction_batches", (cfg.n_contexts + cfg.batch_size - 1) / cfg.batch_size},
        {"n_eval_sparsity_variance_batches", (cfg.n_contexts + cfg.batch_size - 1) / cfg.batch_size},
        {"dataset", cfg.corpus},
        {"exclude_special_tokens_from_reconstruction", true},
        {"compute_kl", true},
        {"compute_ce_loss", true}}},
      {"eval_id", new_eval_id()},
      {"datetime_epoch_millis", now_epoch_millis()},
      {"eval_result_metrics",
       {{"model_behavior_preservation",
         {{"kl_div_score", r.kl_div_score()}, {"kl_div_with_ablation", r.kl_zero}, {"kl_div_with_sae", r.kl_sae}}},
        {"model_performance_preservation",
         {{"ce_loss_score", r.ce_loss_score()},
          {"ce_loss_with_ablation", r.ce_zero},
          {"ce_loss_with_sae", r.ce_sae},
          {"ce_loss_without_sae", r.ce_clean}}},
        {"reconstruction_quality",
         {{"explained_variance", r.explained_variance}, {"mse", r.mse}, {"cossim", r.cossim}}},
        {"shrinkage",
         {{"l2_norm_in", r.l2_norm_in},
          {"l2_norm_out", r.l2_norm_out},
          {"l2_ratio", r.l2_norm_in > 0 ? r.l2_norm_out / r.l2_norm_in : 0.0},
          {"relative_reconstruction_bias", r.relative_reconstruction_bias}}},
        {"sparsity", {{"l0", r.l0}, {"l1", r.l1}}},
        {"misc_metrics",
         {{"freq_over_1_percent", over1 / F},
          {"freq_over_10_percent", over10 / F},
          {"dead_fraction", r.dead_fraction},
          {"dense_fraction", r.dense_fraction}}},
        {"token_stats",
         {{"total_tokens_eval_reconstruction", r.tokens}, {"total_tokens_eval_sparsity_variance", r.tokens}}}}},
      {"eval_result_details", json::array()},
      {"eval_result_unstructured", nullptr},
      {"sae_cfg_dict", sae_cfg},
  };
}

}  // namespace saelab
