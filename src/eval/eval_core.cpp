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

// Per-token CE of next-token prediction and the logits' log-softmax, on the host.
void log_softmax_rows(const std::vector<float>& logits, int64_t rows, int64_t V, std::vector<double>& out) {
  out.resize(static_cast<size_t>(rows * V));
  for (int64_t r = 0; r < rows; ++r) {
    const float* l = logits.data() + r * V;
    double mx = l[0];
    for (int64_t i = 1; i < V; ++i) mx = std::max(mx, static_cast<double>(l[i]));
    double s = 0;
    for (int64_t i = 0; i < V; ++i) s += std::exp(l[i] - mx);
    const double lse = mx + std::log(s);
    for (int64_t i = 0; i < V; ++i) out[r * V + i] = l[i] - lse;
  }
}

}  // namespace

CoreEvalResult eval_core_with(const LlamaModel& model, const std::string& hook, int F, const Reconstruct& recon,
                              const CoreEvalConfig& cfg) {
  model.check_hook(hook);
  const int T = cfg.context_size, d = model.config().d_model;
  const int64_t V = model.config().vocab_size;
  const Tokenizer& tok = model.tokenizer();
  CorpusReader reader(expand_corpus_paths(cfg.corpus));
  ContextStream stream(reader, tok, T);
  CoreEvalResult r;
  std::vector<double> fires(static_cast<size_t>(std::max(F, 0)), 0.0);
  double sse = 0, sum_sq = 0, cos_sum = 0, l0 = 0, l1 = 0, n_in = 0, n_out = 0, dot_xy = 0, yy = 0;
  std::vector<double> mean(static_cast<size_t>(d), 0.0);
  int64_t ce_tokens = 0;
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
    std::vector<char> keep(static_cast<size_t>(rows));
    for (int64_t i = 0; i < rows; ++i) keep[i] = !tok.is_special(tokens[i]) && tokens[i] != tok.bos_id();
    // Clean run, capturing the activation.
    std::vector<float> x;
    Hooks observe;
    observe.observe(hook, [&](TensorView a) { x = to_host_f32(model.backend(), a); });
    const std::vector<float> clean = to_host_f32(model.backend(), model.forward(tokens, B, T, &observe));
    // Reconstruct the kept rows.
    std::vector<float> xs, xh, lat;
    std::vector<int64_t> idx;
    for (int64_t i = 0; i < rows; ++i)
      if (keep[i]) {
        idx.push_back(i);
        xs.insert(xs.end(), x.begin() + i * d, x.begin() + (i + 1) * d);
      }
    const int64_t n = static_cast<int64_t>(idx.size());
    recon(xs, n, xh, lat);
    for (int64_t k = 0; k < n; ++k) {
      double e = 0, a = 0, b = 0, ab = 0;
      for (int j = 0; j < d; ++j) {
        const double xv = xs[k * d + j], yv = xh[k * d + j];
        e += (xv - yv) * (xv - yv);
        a += xv * xv;
        b += yv * yv;
        ab += xv * yv;
        mean[j] += xv;
      }
      sse += e;
      sum_sq += a;
      n_in += std::sqrt(a);
      n_out += std::sqrt(b);
      dot_xy += ab;
      yy += b;
      cos_sum += (a > 0 && b > 0) ? ab / std::sqrt(a * b) : 0.0;
      for (int i = 0; i < F; ++i) {
        const float v = lat[k * F + i];
        if (v != 0.f) {
          fires[i] += 1;
          l0 += 1;
          l1 += std::abs(v);
        }
      }
    }
    r.tokens += n;
    // Spliced and zero-ablated runs.
    auto spliced = [&](bool zero) {
      Hooks h;
      h.splice(hook, [&](TensorView a) {
        std::vector<float> act = to_host_f32(model.backend(), a);
        for (int64_t k = 0; k < n; ++k)
          for (int j = 0; j < d; ++j) act[idx[k] * d + j] = zero ? 0.f : xh[k * d + j];
        model.backend().upload(a, act.data());
      });
      return to_host_f32(model.backend(), model.forward(tokens, B, T, &h));
    };
    const std::vector<float> sae_logits = spliced(false), zero_logits = spliced(true);
    std::vector<double> lc, ls, lz;
    log_softmax_rows(clean, rows, V, lc);
    log_softmax_rows(sae_logits, rows, V, ls);
    log_softmax_rows(zero_logits, rows, V, lz);
    for (int b = 0; b < B; ++b)
      for (int t = 0; t + 1 < T; ++t) {
        const int64_t row = static_cast<int64_t>(b) * T + t;
        const int32_t next = tokens[row + 1];
        r.ce_clean -= lc[row * V + next];
        r.ce_sae -= ls[row * V + next];
        r.ce_zero -= lz[row * V + next];
        double ks = 0, kz = 0;
        for (int64_t i = 0; i < V; ++i) {
          const double p = std::exp(lc[row * V + i]);
          ks += p * (lc[row * V + i] - ls[row * V + i]);
          kz += p * (lc[row * V + i] - lz[row * V + i]);
        }
        r.kl_sae += ks;
        r.kl_zero += kz;
        ++ce_tokens;
      }
    done += B;
    if (cfg.progress) bar.update(done);
  }
  if (r.tokens == 0 || ce_tokens == 0)
    fail("the evaluation corpus yielded no complete context of {} tokens", T);
  const double N = static_cast<double>(r.tokens), C = static_cast<double>(ce_tokens);
  r.ce_clean /= C;
  r.ce_sae /= C;
  r.ce_zero /= C;
  r.kl_sae /= C;
  r.kl_zero /= C;
  double msq = 0;
  for (double m : mean) msq += (m / N) * (m / N);
  const double var = sum_sq - N * msq;
  r.mse = sse / (N * d);
  r.explained_variance = var > 0 ? 1.0 - sse / var : 0.0;
  r.cossim = cos_sum / N;
  r.l0 = l0 / N;
  r.l1 = l1 / N;
  r.l2_norm_in = n_in / N;
  r.l2_norm_out = n_out / N;
  // SAEBench's relative reconstruction bias: E⟨x̂, x̂⟩ / E⟨x, x̂⟩ (1 = no shrinkage).
  r.relative_reconstruction_bias = dot_xy != 0 ? yy / dot_xy : 0.0;
  r.density.resize(fires.size());
  int64_t dead = 0, dense = 0;
  for (size_t i = 0; i < fires.size(); ++i) {
    r.density[i] = static_cast<float>(fires[i] / N);
    dead += fires[i] == 0;
    dense += r.density[i] > cfg.dense_threshold;
  }
  if (F > 0) {
    r.dead_fraction = static_cast<double>(dead) / F;
    r.dense_fraction = static_cast<double>(dense) / F;
  }
  if (cfg.progress) bar.finish();
  return r;
}

CoreEvalResult eval_core(const LlamaModel& model, const Sae& sae, const std::string& hook, const CoreEvalConfig& cfg) {
  if (sae.config().d_in != model.config().d_model)
    fail("SAE d_in {} does not match the width {} of model '{}' at '{}'", sae.config().d_in, model.config().d_model,
         model.config().name, hook);
  check_sae_hook(sae, hook);
  const int F = sae.config().d_sae, d = sae.config().d_in;
  Backend& be = sae.backend();
  auto recon = [&](const std::vector<float>& x, int64_t n, std::vector<float>& xh, std::vector<float>& lat) {
    xh.assign(static_cast<size_t>(n * d), 0.f);
    lat.assign(static_cast<size_t>(n * F), 0.f);
    if (n == 0) return;
    SaeWorkspace ws(sae.config(), n, be.device());
    sae.encode(to_device(be, {n, d}, x.data()), ws);
    sae.decode(ws, n);
    xh = to_host_f32(be, ws.xhat.view().rows(0, n));
    lat = to_host_f32(be, ws.f.view().rows(0, n));
  };
  return eval_core_with(model, hook, F, recon, cfg);
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
