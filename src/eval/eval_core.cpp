#include "saelab/eval_core.hpp"

#include <algorithm>
#include <cmath>

#include "saelab/corpus.hpp"
#include "saelab/lm.hpp"
#include "saelab/progress.hpp"

namespace saelab {

using json = nlohmann::json;

namespace {

// One reconstruction's sums over the evaluated batches.
struct CoreAccum {
  ReconSums recon;
  CeKlSums run;
};

CoreEvalResult finish(const CoreAccum& a, const CeKlSums& clean, const CeKlSums& zero, int64_t total_tokens,
                      const CoreEvalConfig& cfg) {
  CoreEvalResult r;
  finish_recon(a.recon, cfg.dense_threshold, r);
  r.total_tokens = total_tokens;
  r.ce_tokens = a.run.ce_n;
  r.kl_tokens = a.run.kl_n;
  r.ce_clean = clean.ce / static_cast<double>(clean.ce_n);
  r.ce_sae = a.run.ce / static_cast<double>(a.run.ce_n);
  r.ce_zero = zero.ce / static_cast<double>(zero.ce_n);
  r.kl_sae = a.run.kl / static_cast<double>(a.run.kl_n);
  r.kl_zero = zero.kl / static_cast<double>(zero.kl_n);
  return r;
}

// A forward of `tokens` [B·T] with the hook activation [B·T, d] edited by `edit` (in host memory).
std::vector<float> forward_edited(const LanguageModel& model, const std::string& hook, const std::vector<int32_t>& tokens,
                                  int B, int T, const std::function<void(std::vector<float>&)>& edit) {
  Hooks h;
  h.splice(hook, [&](TensorView a) {
    std::vector<float> act = to_host_f32(model.backend(), a);
    edit(act);
    model.backend().upload(a, act.data());
  });
  return to_host_f32(model.backend(), model.forward(tokens, B, T, &h));
}

}  // namespace

std::vector<CoreEvalResult> eval_core_multi_with(const LanguageModel& model, const std::string& hook,
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
  for (size_t s = 0; s < S; ++s) acc[s].recon = recon_sums(d, std::max(F[s], 0));
  CeKlSums clean_sums, zero_sums;  // shared by every reconstruction
  int64_t total_tokens = 0;
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
    total_tokens += rows;
    // Clean run, capturing the activation x [rows, d].
    std::vector<float> x, logits_clean;
    {
      TimeInto t(&tm.lm_s);
      Hooks observe;
      observe.observe(hook, [&](TensorView a) { x = to_host_f32(model.backend(), a); });
      logits_clean = to_host_f32(model.backend(), model.forward(tokens, B, T, &observe));
    }
    // The kept rows (not ignored tokens): reconstructed, spliced and counted. xs [n, d].
    std::vector<uint8_t> keep(static_cast<size_t>(rows));
    std::vector<float> xs;
    std::vector<int64_t> idx;
    CleanLogits clean;
    {
      TimeInto t(&tm.other_s);
      for (int64_t i = 0; i < rows; ++i) {
        keep[i] = !is_ignored_token(tok, tokens[i]);
        if (!keep[i]) continue;
        idx.push_back(i);
        xs.insert(xs.end(), x.begin() + i * d, x.begin() + (i + 1) * d);
      }
      clean = clean_logits(logits_clean, rows, V);
      add_ce_kl(clean_sums, clean, nullptr, tokens, keep, B, T, V);
      if (!cfg.on_batch) std::vector<float>().swap(logits_clean);  // [rows, V]: large at 50k vocab
    }
    const int64_t n = static_cast<int64_t>(idx.size());
    // Zero ablation zeroes every position, BOS included (SAEBench's standard_zero_ablate_hook).
    std::vector<float> logits_zero;
    {
      TimeInto t(&tm.lm_s);
      logits_zero = forward_edited(model, hook, tokens, B, T, [](std::vector<float>& a) { a.assign(a.size(), 0.f); });
    }
    {
      TimeInto t(&tm.other_s);
      add_ce_kl(zero_sums, clean, &logits_zero, tokens, keep, B, T, V);
    }
    for (size_t s = 0; s < S; ++s) {
      std::vector<float> xh, lat, logits;
      {
        TimeInto t(&tm.sae_s);
        recons[s](xs, n, xh, lat);
      }
      {
        TimeInto t(&tm.other_s);
        add_recon_batch(acc[s].recon, xs.data(), xh.data(), lat.data(), n);
      }
      {
        TimeInto t(&tm.lm_s);
        logits = forward_edited(model, hook, tokens, B, T, [&](std::vector<float>& a) {
          for (int64_t k = 0; k < n; ++k) std::copy_n(xh.begin() + k * d, d, a.begin() + idx[k] * d);
        });
      }
      {
        TimeInto t(&tm.other_s);
        add_ce_kl(acc[s].run, clean, &logits, tokens, keep, B, T, V);
      }
      if (cfg.on_batch)
        cfg.on_batch({B, T, d, std::max(F[s], 0), V, s, &tokens, &keep, &x, &xh, &lat, &logits_clean, &logits_zero,
                      &logits});
    }
    done += B;
    if (cfg.progress) bar.update(done);
  }
  if (clean_sums.ce_n == 0 || (S > 0 && acc[0].recon.n == 0))
    fail("the evaluation corpus yielded no complete context of {} tokens", T);
  std::vector<CoreEvalResult> out;
  for (size_t s = 0; s < S; ++s) out.push_back(finish(acc[s], clean_sums, zero_sums, total_tokens, cfg));
  if (cfg.progress) bar.finish();
  return out;
}

CoreEvalResult eval_core_with(const LanguageModel& model, const std::string& hook, int F, const Reconstruct& recon,
                              const CoreEvalConfig& cfg) {
  return eval_core_multi_with(model, hook, {F}, {recon}, cfg)[0];
}

namespace {

// ‖W_dec,i‖ [F] of an SAE, on the host.
std::vector<float> decoder_norms(const Sae& sae) {
  Tensor norms({sae.config().d_sae}, DType::F32, sae.backend().device());
  sae.backend().row_norms(norms, sae.params().W_dec);
  return to_host_f32(sae.backend(), norms);
}

// The weight-based misc_metrics: SAEBench's average max cosine similarity of encoder columns
// (W_enc [d, F], transposed to rows here) and of decoder rows (W_dec [F, d]). Folding the decoder
// norm scales each latent's vectors, so these are the same for the folded SAE.
void add_weight_metrics(const Sae& sae, CoreEvalResult& r) {
  const int F = sae.config().d_sae, d = sae.config().d_in;
  const std::vector<float> enc = to_host_f32(sae.backend(), sae.params().W_enc);  // [d, F]
  std::vector<float> enc_rows(enc.size());                                      // [F, d]
  for (int j = 0; j < d; ++j)
    for (int i = 0; i < F; ++i) enc_rows[static_cast<size_t>(i) * d + j] = enc[static_cast<size_t>(j) * F + i];
  r.average_max_encoder_cosine_sim = average_max_cosine_sim(enc_rows, F, d);
  r.average_max_decoder_cosine_sim = average_max_cosine_sim(to_host_f32(sae.backend(), sae.params().W_dec), F, d);
}

}  // namespace

std::vector<CoreEvalResult> eval_core_multi(const LanguageModel& model, const std::vector<const Sae*>& saes,
                                            const std::string& hook, const CoreEvalConfig& cfg, EvalTiming* timing) {
  std::vector<int> F;
  std::vector<Reconstruct> recons;
  std::vector<std::vector<float>> norms(saes.size());
  for (size_t s = 0; s < saes.size(); ++s) {
    SAELAB_ASSERT(saes[s] != nullptr, "null SAE");
    const Sae& sae = *saes[s];
    if (sae.config().d_in != model.config().d_model)
      fail("SAE d_in {} does not match the width {} of model '{}' at '{}'", sae.config().d_in, model.config().d_model,
           model.config().name, hook);
    check_sae_hook(sae, hook);
    const int Fs = sae.config().d_sae, d = sae.config().d_in;
    F.push_back(Fs);
    norms[s] = decoder_norms(sae);
    // Latents folded by the decoder norm (f_i‖W_dec,i‖): SAEBench folds W_dec's norm into the SAEs it
    // loads (fold_W_dec_norm), which its L1 then reads; L0 and densities do not change.
    recons.push_back([&sae, &dn = norms[s], Fs, d](const std::vector<float>& x, int64_t n, std::vector<float>& xh,
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
      for (int64_t k = 0; k < n; ++k)
        for (int i = 0; i < Fs; ++i) lat[k * Fs + i] *= dn[i];
    });
  }
  std::vector<CoreEvalResult> out = eval_core_multi_with(model, hook, F, recons, cfg, timing);
  for (size_t s = 0; s < saes.size(); ++s) add_weight_metrics(*saes[s], out[s]);
  return out;
}

CoreEvalResult eval_core(const LanguageModel& model, const Sae& sae, const std::string& hook, const CoreEvalConfig& cfg) {
  return eval_core_multi(model, {&sae}, hook, cfg)[0];
}

namespace {

// eval_config as SAEBench's CoreEvalConfig: every field, dataset a string. saelab computes all
// metric groups; per-feature details are not written (eval_result_details is empty).
json core_eval_config(const CoreEvalConfig& cfg, const std::string& model_name) {
  std::string dataset;
  for (const std::string& c : cfg.corpus) dataset += (dataset.empty() ? "" : ", ") + c;
  const int batches = (cfg.n_contexts + cfg.batch_size - 1) / cfg.batch_size;
  return {{"model_name", model_name},
          {"llm_dtype", "float32"},
          {"batch_size_prompts", cfg.batch_size},
          {"n_eval_reconstruction_batches", batches},
          {"n_eval_sparsity_variance_batches", batches},
          {"dataset", dataset},
          {"dataset_files", cfg.corpus},
          {"context_size", cfg.context_size},
          {"compute_kl", true},
          {"compute_ce_loss", true},
          {"compute_l2_norms", true},
          {"compute_sparsity_metrics", true},
          {"compute_variance_metrics", true},
          {"compute_featurewise_density_statistics", false},
          {"compute_featurewise_weight_based_metrics", false},
          {"exclude_special_tokens_from_reconstruction", true},
          {"verbose", false}};
}

// A metric as SAEBench writes it: NaN (0/0, e.g. the relative bias of an all-zero reconstruction)
// becomes −1 (replace_nans_with_negative_one), as JSON has no NaN and the fields must be numbers.
double saebench_number(double v) { return std::isnan(v) ? -1.0 : v; }

// Every number of every metric group through saebench_number.
json saebench_numbers(json metrics) {
  for (json& group : metrics)
    for (json& v : group)
      if (v.is_number_float()) v = saebench_number(v.get<double>());
  return metrics;
}

}  // namespace

json core_result_json(const CoreEvalResult& r, const CoreEvalConfig& cfg, const json& sae_cfg,
                      const std::string& model_name) {
  json metrics = {
      {"model_behavior_preservation",
       {{"kl_div_score", r.kl_div_score()}, {"kl_div_with_ablation", r.kl_zero}, {"kl_div_with_sae", r.kl_sae}}},
      {"model_performance_preservation",
       {{"ce_loss_score", r.ce_loss_score()},
        {"ce_loss_with_ablation", r.ce_zero},
        {"ce_loss_with_sae", r.ce_sae},
        {"ce_loss_without_sae", r.ce_clean}}},
      {"reconstruction_quality",
       {{"explained_variance", r.explained_variance},
        {"explained_variance_legacy", r.explained_variance_legacy},
        {"mse", r.mse},
        {"cossim", r.cossim},
        {"explained_variance_centered", r.explained_variance_centered},
        {"mse_per_element", r.mse_per_element}}},
      {"shrinkage",
       {{"l2_norm_in", r.l2_norm_in},
        {"l2_norm_out", r.l2_norm_out},
        {"l2_ratio", r.l2_ratio},
        {"relative_reconstruction_bias", r.relative_reconstruction_bias}}},
      {"sparsity", {{"l0", r.l0}, {"l1", r.l1}}},
      {"token_stats",
       {{"total_tokens_eval_reconstruction", r.total_tokens},
        {"total_tokens_eval_sparsity_variance", r.total_tokens},
        {"counted_tokens_sparsity_variance", r.tokens},
        {"counted_tokens_ce", r.ce_tokens},
        {"counted_tokens_kl", r.kl_tokens}}},
      {"misc_metrics",
       {{"freq_over_1_percent", r.freq_over_1_percent},
        {"freq_over_10_percent", r.freq_over_10_percent},
        {"normalized_freq_over_1_percent", r.normalized_freq_over_1_percent},
        {"normalized_freq_over_10_percent", r.normalized_freq_over_10_percent},
        {"average_max_encoder_cosine_sim", r.average_max_encoder_cosine_sim},
        {"average_max_decoder_cosine_sim", r.average_max_decoder_cosine_sim},
        {"frac_alive", r.frac_alive},
        {"dead_fraction", r.dead_fraction},
        {"dense_fraction", r.dense_fraction}}}};
  return with_saebench_provenance({{"eval_type_id", "core"},
                                   {"eval_config", core_eval_config(cfg, model_name)},
                                   {"eval_id", new_eval_id()},
                                   {"datetime_epoch_millis", now_epoch_millis()},
                                   {"eval_result_metrics", saebench_numbers(metrics)},
                                   {"eval_result_details", json::array()},
                                   {"eval_result_unstructured", nullptr},
                                   {"sae_cfg_dict", sae_cfg}});
}

}  // namespace saelab
