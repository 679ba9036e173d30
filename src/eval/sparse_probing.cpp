#include "saelab/sparse_probing.hpp"

#include <algorithm>
#include <cmath>
#include <exception>
#include <map>
#include <numeric>
#include <string_view>
#include <unordered_map>
#include <unordered_set>

#include "saelab/eval_core.hpp"
#include "saelab/lm.hpp"
#include "saelab/logistic.hpp"
#include "saelab/progress.hpp"

namespace saelab {

using json = nlohmann::json;

PooledFeatures pool_features(const LanguageModel& model, const Sae* sae, const std::string& hook,
                             const std::vector<std::string>& texts, int context_size, int batch_size) {
  std::vector<std::vector<float>> pooled;
  PooledFeatures out;
  if (sae) {
    out.raw = pool_features_multi(model, {sae}, {1.0f}, hook, texts, context_size, batch_size, pooled);
    out.sae = std::move(pooled[0]);
    out.F = sae->config().d_sae;
  } else {
    out.raw = pool_features_multi(model, {}, {}, hook, texts, context_size, batch_size, pooled);
  }
  out.d = model.config().d_model;
  return out;
}

std::vector<float> probe_latent_scales(const Sae& sae) {
  const int F = sae.config().d_sae;
  if (sae.config().architecture == SaeArchitecture::TopK) return std::vector<float>(static_cast<size_t>(F), 1.0f);
  Tensor norms({F}, DType::F32, sae.backend().device());
  sae.backend().row_norms(norms, sae.params().W_dec);
  return to_host_f32(sae.backend(), norms);
}

std::vector<float> pool_batch(const std::vector<std::vector<int32_t>>& ids, const std::vector<float>& act, int T, int d,
                              const PoolMask& mask, const std::vector<const Sae*>& saes,
                              const std::vector<float>& input_scales, const std::vector<std::vector<float>>& latent_scales,
                              std::vector<std::vector<float>>& pooled) {
  const int B = static_cast<int>(ids.size());
  SAELAB_ASSERT(static_cast<int64_t>(act.size()) == int64_t{B} * T * d, "pool_batch: act is not [B, T, d]");
  SAELAB_ASSERT(saes.size() == input_scales.size() && saes.size() == latent_scales.size(), "pool_batch: one scale per SAE");
  // Rows to pool: the unmasked positions, and the text each belongs to.
  std::vector<float> rows;  // [R, d]
  std::vector<int> owner;   // [R]
  std::vector<int> count(static_cast<size_t>(B), 0);
  for (int b = 0; b < B; ++b) {
    SAELAB_ASSERT(static_cast<int>(ids[b].size()) <= T, "pool_batch: text longer than the batch");
    for (int t = 0; t < static_cast<int>(ids[b].size()); ++t) {
      if (mask.masked(ids[b][t])) continue;
      const auto at = act.begin() + (static_cast<int64_t>(b) * T + t) * d;
      rows.insert(rows.end(), at, at + d);
      owner.push_back(b);
      ++count[b];
    }
  }
  const int64_t R = static_cast<int64_t>(owner.size());
  std::vector<float> raw(static_cast<size_t>(B) * d, 0.f);  // [B, d]
  for (int64_t r = 0; r < R; ++r)
    for (int j = 0; j < d; ++j) raw[owner[r] * d + j] += rows[r * d + j] / static_cast<float>(count[owner[r]]);
  pooled.assign(saes.size(), {});
  for (size_t s = 0; s < saes.size(); ++s) {
    const Sae& sae = *saes[s];
    const int F = sae.config().d_sae;
    pooled[s].assign(static_cast<size_t>(B) * F, 0.f);  // [B, F]
    if (R == 0) continue;
    Backend& be = sae.backend();
    std::vector<float> x = rows;
    if (input_scales[s] != 1.0f)
      for (float& v : x) v *= input_scales[s];
    SaeWorkspace ws(sae.config(), R, be.device());
    sae.encode(to_device(be, {R, d}, x.data()), ws);
    const std::vector<float> f = to_host_f32(be, ws.f.view().rows(0, R));  // [R, F]
    const std::vector<float>& scale = latent_scales[s];
    for (int64_t r = 0; r < R; ++r) {
      float* dst = pooled[s].data() + static_cast<int64_t>(owner[r]) * F;
      const float inv = 1.0f / static_cast<float>(count[owner[r]]);
      for (int i = 0; i < F; ++i)
        if (f[r * F + i] != 0.f) dst[i] += f[r * F + i] * scale[i] * inv;
    }
  }
  return raw;
}

std::vector<float> pool_features_multi(const LanguageModel& model, const std::vector<const Sae*>& saes,
                                      const std::vector<float>& input_scales, const std::string& hook,
                                      const std::vector<std::string>& texts, int context_size, int batch_size,
                                      std::vector<std::vector<float>>& pooled, EvalTiming* timing) {
  model.check_hook(hook);
  SAELAB_ASSERT(saes.size() == input_scales.size(), "one input scale per SAE");
  if (context_size < 1 || batch_size < 1)
    fail("pooling needs context_size and batch_size of at least 1, got {} and {}", context_size, batch_size);
  EvalTiming local;
  EvalTiming& tm = timing ? *timing : local;
  const Tokenizer& tok = model.tokenizer();
  const int d = model.config().d_model;
  const int64_t n = static_cast<int64_t>(texts.size());
  std::vector<float> raw(static_cast<size_t>(n * d), 0.f);
  pooled.assign(saes.size(), {});
  std::vector<std::vector<float>> latent_scales;
  for (size_t s = 0; s < saes.size(); ++s) {
    pooled[s].assign(static_cast<size_t>(n * saes[s]->config().d_sae), 0.f);
    latent_scales.push_back(probe_latent_scales(*saes[s]));
  }
  // Every text as BOS + at most context_size − 1 tokens (SAEBench: the tokenizer's BOS, truncated
  // to context_length).
  std::vector<std::vector<int32_t>> ids(static_cast<size_t>(n));
  {
    TimeInto t_lm(&tm.lm_s);
    for (int64_t i = 0; i < n; ++i) {
      ids[i].push_back(tok.bos_id());
      for (int32_t t : tok.encode(texts[i])) {
        if (static_cast<int>(ids[i].size()) >= context_size) break;
        ids[i].push_back(t);
      }
    }
  }
  // Batches of texts of similar length, longest first: a batch is padded to its longest text, and
  // padding is LM work. On the probe suite with SmolLM2's tokenizer (128 tokens, batches of 32) the
  // padded forwards cost 1.28× the real tokens in text order, 1.05× sorted. A text's features do
  // not depend on its batch (causal attention; up to GEMM row blocking in the last bits).
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), int64_t{0});
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return ids[a].size() > ids[b].size(); });
  const int32_t pad = tok.eos_id() >= 0 ? tok.eos_id() : tok.bos_id();
  // SAEBench masks BOS, EOS and PAD wherever they occur; saelab's padding lies past every text's
  // end and is never read, so PAD is the tokenizer's EOS or BOS here, masked already.
  const PoolMask mask{tok.bos_id(), tok.eos_id(), -1};
  for (int64_t b0 = 0; b0 < n; b0 += batch_size) {
    const int B = static_cast<int>(std::min<int64_t>(batch_size, n - b0));
    std::vector<std::vector<int32_t>> batch_ids(static_cast<size_t>(B));  // slot b holds text order[b0 + b]
    int T = 1;
    for (int b = 0; b < B; ++b) {
      batch_ids[b] = ids[order[b0 + b]];
      T = std::max<int>(T, static_cast<int>(batch_ids[b].size()));
    }
    std::vector<float> act;  // [B, T, d]
    {
      TimeInto t_lm(&tm.lm_s);
      // Causal attention: padding after a text cannot change its positions, which are all we read.
      std::vector<int32_t> flat(static_cast<size_t>(B) * T, pad);
      for (int b = 0; b < B; ++b)
        std::copy(batch_ids[b].begin(), batch_ids[b].end(), flat.begin() + static_cast<int64_t>(b) * T);
      Hooks hooks;
      hooks.observe(hook, [&](TensorView a) { act = to_host_f32(model.backend(), a); });
      model.forward(flat, B, T, &hooks, /*want_logits=*/false);
    }
    TimeInto t_sae(&tm.sae_s);  // pooling and encoding
    std::vector<std::vector<float>> part;
    const std::vector<float> part_raw = pool_batch(batch_ids, act, T, d, mask, saes, input_scales, latent_scales, part);
    for (int b = 0; b < B; ++b) {
      const int64_t i = order[b0 + b];
      std::copy(part_raw.begin() + int64_t{b} * d, part_raw.begin() + int64_t{b + 1} * d, raw.begin() + i * d);
      for (size_t s = 0; s < saes.size(); ++s) {
        const int64_t F = saes[s]->config().d_sae;
        std::copy(part[s].begin() + b * F, part[s].begin() + (b + 1) * F, pooled[s].begin() + i * F);
      }
    }
  }
  return raw;
}

void pool_text_lists(const LanguageModel& model, const std::vector<const Sae*>& saes,
                     const std::vector<float>& input_scales, const std::string& hook,
                     const std::vector<std::vector<std::string>>& lists, int context_size, int batch_size,
                     const PooledListConsumer& consume, EvalTiming* timing) {
  const int64_t d = model.config().d_model;
  const size_t S = saes.size();
  // How many lists (from the current one on) still hold each text; a pooled text is kept while > 0.
  std::unordered_map<std::string, int> uses;
  for (const auto& list : lists) {
    std::unordered_set<std::string_view> seen(list.begin(), list.end());
    for (std::string_view t : seen) ++uses[std::string(t)];
  }
  struct Pooled {
    std::vector<float> raw;                // [d]
    std::vector<std::vector<float>> sae;  // [SAE][F_s]
  };
  std::unordered_map<std::string, Pooled> kept;
  for (size_t li = 0; li < lists.size(); ++li) {
    const std::vector<std::string>& list = lists[li];
    const int64_t n = static_cast<int64_t>(list.size());
    // One LM pass over the distinct texts not pooled before.
    std::vector<std::string> fresh;
    std::unordered_map<std::string_view, int64_t> fresh_row;
    for (const std::string& t : list)
      if (!kept.count(t) && !fresh_row.count(t)) {
        fresh_row.emplace(t, static_cast<int64_t>(fresh.size()));
        fresh.push_back(t);
      }
    std::vector<std::vector<float>> fresh_sae;
    const std::vector<float> fresh_raw =
        pool_features_multi(model, saes, input_scales, hook, fresh, context_size, batch_size, fresh_sae, timing);
    // The list's features in its order, from this pass or from an earlier list.
    std::vector<float> raw(static_cast<size_t>(n * d));
    std::vector<std::vector<float>> pooled(S);
    for (size_t s = 0; s < S; ++s) pooled[s].resize(static_cast<size_t>(n) * saes[s]->config().d_sae);
    for (int64_t i = 0; i < n; ++i) {
      const auto fr = fresh_row.find(std::string_view(list[i]));
      const Pooled* k = fr == fresh_row.end() ? &kept.at(list[i]) : nullptr;
      const int64_t row = k ? 0 : fr->second;
      const float* src = k ? k->raw.data() : fresh_raw.data() + row * d;
      std::copy(src, src + d, raw.begin() + i * d);
      for (size_t s = 0; s < S; ++s) {
        const int64_t F = saes[s]->config().d_sae;
        const float* fs = k ? k->sae[s].data() : fresh_sae[s].data() + row * F;
        std::copy(fs, fs + F, pooled[s].begin() + i * F);
      }
    }
    // Keep what a later list needs; drop what none does.
    for (const auto& [t, row] : fresh_row)
      if (uses.at(std::string(t)) > 1) {
        Pooled p;
        p.raw.assign(fresh_raw.begin() + row * d, fresh_raw.begin() + (row + 1) * d);
        for (size_t s = 0; s < S; ++s) {
          const int64_t F = saes[s]->config().d_sae;
          p.sae.emplace_back(fresh_sae[s].begin() + row * F, fresh_sae[s].begin() + (row + 1) * F);
        }
        kept.emplace(std::string(t), std::move(p));
      }
    std::unordered_set<std::string_view> seen(list.begin(), list.end());
    for (std::string_view tv : seen) {
      const std::string t(tv);
      if (--uses.at(t) == 0) {
        uses.erase(t);
        kept.erase(t);
      }
    }
    consume(li, raw, pooled);
  }
}

std::vector<float> select_columns(const std::vector<float>& x, int64_t n, int D, const std::vector<int>& cols) {
  const int64_t k = static_cast<int64_t>(cols.size());
  std::vector<float> out(static_cast<size_t>(n * k));
  for (int64_t i = 0; i < n; ++i)
    for (int64_t c = 0; c < k; ++c) out[i * k + c] = x[i * D + cols[c]];
  return out;
}

std::vector<int> top_k_by_mean_difference(const std::vector<float>& x, const std::vector<int>& y, int D, int k) {
  const int64_t n = static_cast<int64_t>(y.size());
  std::vector<double> mp(static_cast<size_t>(D), 0.0), mn(static_cast<size_t>(D), 0.0);
  int64_t np = 0;
  for (int64_t i = 0; i < n; ++i) {
    auto& acc = y[i] ? mp : mn;
    np += y[i];
    for (int j = 0; j < D; ++j) acc[j] += x[i * D + j];
  }
  std::vector<int> order(static_cast<size_t>(D));
  std::iota(order.begin(), order.end(), 0);
  std::vector<double> diff(static_cast<size_t>(D));
  for (int j = 0; j < D; ++j) diff[j] = std::abs(mp[j] / std::max<int64_t>(np, 1) - mn[j] / std::max<int64_t>(n - np, 1));
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return diff[a] > diff[b]; });
  order.resize(static_cast<size_t>(std::min(k, D)));
  return order;
}

uint64_t probe_seed(uint64_t seed, const std::string& task) {
  uint64_t h = 1469598103934665603ull;  // FNV-1a
  for (unsigned char c : task) h = (h ^ c) * 1099511628211ull;
  return seed ^ h;
}

ProbeScores probe_task(const std::vector<float>& train, const std::vector<int>& train_y, const std::vector<float>& test,
                       const std::vector<int>& test_y, int D, const std::vector<int>& k_values, uint64_t seed) {
  const int64_t n = static_cast<int64_t>(train_y.size()), m = static_cast<int64_t>(test_y.size());
  const std::vector<int> order = top_k_by_mean_difference(train, train_y, D, D);
  ProbeScores s;
  auto run = [&](int k) {
    const std::vector<int> cols(order.begin(), order.begin() + k);
    const std::vector<float> xtr = select_columns(train, n, D, cols), xte = select_columns(test, m, D, cols);
    const LogisticModel model = fit_logistic(xtr, n, k, train_y);
    const BinaryScores sc = score_logistic(model, xte, m, k, test_y);
    s.acc.push_back(sc.accuracy);
    s.f1.push_back(sc.f1);
  };
  for (int k : k_values) run(std::min(k, D));
  // All features: the held-out L2 probe, then SAEBench's AdamW probe (its "<who>_test_accuracy").
  run(D);
  s.l2_all = BinaryScores{s.acc.back(), s.f1.back()};
  AdamWProbeOptions opt;
  opt.seed = seed;
  const BinaryScores all = n > 0 && m > 0 ? fit_adamw_probe(train, n, D, train_y, test, m, test_y, opt).best : BinaryScores{};
  s.acc.back() = all.accuracy;
  s.f1.back() = all.f1;
  return s;
}

namespace {

struct TaskOut {
  std::string name, family;
  ProbeScores llm, sae;
  int64_t n_train = 0, n_test = 0, n_train_positive = 0, n_test_positive = 0;
};

std::vector<const ProbeTask*> selected_tasks(const ProbeSuite& suite, const ProbingConfig& cfg) {
  std::vector<const ProbeTask*> tasks;
  for (const auto& t : suite.tasks)
    if (cfg.only_tasks.empty() || std::find(cfg.only_tasks.begin(), cfg.only_tasks.end(), t.name) != cfg.only_tasks.end())
      tasks.push_back(&t);
  if (tasks.empty()) fail("no probing task selected");
  return tasks;
}

// One SAE's SAEBench "sparse_probing" result from its per-task scores.
json probing_result_json(const std::vector<TaskOut>& outs, const ProbingConfig& cfg, const std::string& model_name,
                         const json& sae_cfg) {
  const size_t K = cfg.k_values.size() + 1;  // the k values, then all features
  // Field names as SAEBench writes them; F1 beside each accuracy.
  auto fields = [&](const std::string& who, const std::vector<double>& acc, const std::vector<double>& f1) {
    json j;
    j[who + "_test_accuracy"] = acc[K - 1];
    j[who + "_test_f1"] = f1[K - 1];
    for (size_t i = 0; i + 1 < K; ++i) {
      j[fmt::format("{}_top_{}_test_accuracy", who, cfg.k_values[i])] = acc[i];
      j[fmt::format("{}_top_{}_test_f1", who, cfg.k_values[i])] = f1[i];
    }
    return j;
  };
  auto mean_of = [&](const std::vector<const TaskOut*>& sel, bool llm, bool f1) {
    std::vector<double> m(K, 0.0);
    for (const TaskOut* o : sel)
      for (size_t i = 0; i < K; ++i) m[i] += (llm ? (f1 ? o->llm.f1 : o->llm.acc) : (f1 ? o->sae.f1 : o->sae.acc))[i] / sel.size();
    return m;
  };
  std::map<std::string, std::vector<const TaskOut*>> by_family;
  for (const auto& o : outs) by_family[o.family].push_back(&o);
  json details = json::array();
  std::vector<double> la(K, 0.0), lf(K, 0.0), sa(K, 0.0), sf(K, 0.0);
  for (const auto& [fam, sel] : by_family) {
    const auto a = mean_of(sel, true, false), b = mean_of(sel, true, true), c = mean_of(sel, false, false),
               d = mean_of(sel, false, true);
    json e = fields("llm", a, b);
    e.update(fields("sae", c, d));
    e["dataset_name"] = fam + "_results";
    e["n_tasks"] = sel.size();
    details.push_back(e);
    for (size_t i = 0; i < K; ++i) {
      la[i] += a[i] / by_family.size();
      lf[i] += b[i] / by_family.size();
      sa[i] += c[i] / by_family.size();
      sf[i] += d[i] / by_family.size();
    }
  }
  json per_task = json::array();
  std::vector<std::string> names;
  for (const auto& o : outs) {
    json e = fields("llm", o.llm.acc, o.llm.f1);
    e.update(fields("sae", o.sae.acc, o.sae.f1));
    e["task"] = o.name;
    e["family"] = o.family;
    per_task.push_back(e);
    names.push_back(o.name);
  }
  return with_saebench_provenance({{"eval_type_id", "sparse_probing"},
          {"eval_config",
           {{"random_seed", cfg.seed},
            {"dataset_names", names},
            {"probe_train_set_size", cfg.n_train},
            {"probe_test_set_size", cfg.n_test},
            {"context_length", cfg.context_size},
            {"sae_batch_size", cfg.batch_size},
            {"llm_batch_size", cfg.batch_size},
            {"llm_dtype", "float32"},
            {"model_name", model_name},
            {"k_values", cfg.k_values},
            {"lower_vram_usage", false}}},
          {"eval_id", new_eval_id()},
          {"datetime_epoch_millis", now_epoch_millis()},
          {"eval_result_metrics", {{"llm", fields("llm", la, lf)}, {"sae", fields("sae", sa, sf)}}},
          {"eval_result_details", details},
          {"eval_result_unstructured", {{"tasks", per_task}}},
          {"sae_cfg_dict", sae_cfg}});
}

// saelab's additions beside SAEBench's fields: the held-out L2 probe on all features
// ("<who>_all_l2_test_accuracy" / "_f1", averaged as the other fields are: per family, then over
// families) and each task's counts of texts (n_train, n_test, n_train_positive, n_test_positive).
void add_l2_and_counts(json& result, const std::vector<TaskOut>& outs) {
  std::map<std::string, std::vector<const TaskOut*>> by_family;
  for (const auto& o : outs) by_family[o.family].push_back(&o);
  auto put = [](json& j, const std::string& who, double acc, double f1) {
    j[who + "_all_l2_test_accuracy"] = acc;
    j[who + "_all_l2_test_f1"] = f1;
  };
  double total[2][2] = {{0, 0}, {0, 0}};  // [llm, sae][acc, f1]
  json& details = result["eval_result_details"];
  for (const auto& [fam, sel] : by_family) {
    double m[2][2] = {{0, 0}, {0, 0}};
    for (const TaskOut* o : sel)
      for (int w = 0; w < 2; ++w) {
        const BinaryScores& b = (w == 0 ? o->llm : o->sae).l2_all;
        m[w][0] += b.accuracy / static_cast<double>(sel.size());
        m[w][1] += b.f1 / static_cast<double>(sel.size());
      }
    for (json& e : details)
      if (e["dataset_name"] == fam + "_results") {
        put(e, "llm", m[0][0], m[0][1]);
        put(e, "sae", m[1][0], m[1][1]);
      }
    for (int w = 0; w < 2; ++w)
      for (int q = 0; q < 2; ++q) total[w][q] += m[w][q] / static_cast<double>(by_family.size());
  }
  put(result["eval_result_metrics"]["llm"], "llm", total[0][0], total[0][1]);
  put(result["eval_result_metrics"]["sae"], "sae", total[1][0], total[1][1]);
  json& tasks = result["eval_result_unstructured"]["tasks"];
  SAELAB_ASSERT(tasks.size() == outs.size(), "one per-task entry per task");
  for (size_t i = 0; i < outs.size(); ++i) {
    put(tasks[i], "llm", outs[i].llm.l2_all.accuracy, outs[i].llm.l2_all.f1);
    put(tasks[i], "sae", outs[i].sae.l2_all.accuracy, outs[i].sae.l2_all.f1);
    tasks[i]["n_train"] = outs[i].n_train;
    tasks[i]["n_test"] = outs[i].n_test;
    tasks[i]["n_train_positive"] = outs[i].n_train_positive;
    tasks[i]["n_test_positive"] = outs[i].n_test_positive;
  }
}

}  // namespace

std::vector<json> sparse_probing_multi(const LanguageModel& model, const std::vector<const Sae*>& saes,
                                       const std::string& hook, const ProbeSuite& suite, const ProbingConfig& cfg,
                                       const std::vector<json>& sae_cfgs, EvalTiming* timing) {
  SAELAB_ASSERT(saes.size() == sae_cfgs.size(), "one SAE config per SAE");
  for (const Sae* sae : saes) {
    SAELAB_ASSERT(sae != nullptr, "null SAE");
    if (sae->config().d_in != model.config().d_model)
      fail("SAE d_in {} does not match the width {} of model '{}'", sae->config().d_in, model.config().d_model,
           model.config().name);
    check_sae_hook(*sae, hook);
  }
  if (cfg.context_size > model.config().max_seq_len)
    fail("probing context {} exceeds the {} positions of model '{}'; pass a shorter context (eval probing --context)",
         cfg.context_size, model.config().max_seq_len, model.config().name);
  const std::vector<const ProbeTask*> tasks = selected_tasks(suite, cfg);
  const size_t S = saes.size();
  const std::vector<float> ones(S, 1.0f);
  EvalTiming local;
  EvalTiming& tm = timing ? *timing : local;
  std::vector<std::vector<TaskOut>> outs(S);  // [SAE][task]
  std::vector<ProbeSplit> splits;
  std::vector<std::vector<std::string>> texts;  // per task: train, then test
  for (const ProbeTask* t : tasks) {
    splits.push_back(make_probe_split(suite.dataset(t->dataset), t->positive, t->negatives, cfg.n_train, cfg.n_test,
                                      cfg.seed));
    texts.push_back(splits.back().train_text);
    texts.back().insert(texts.back().end(), splits.back().test_text.begin(), splits.back().test_text.end());
  }
  const int d = model.config().d_model;
  Progress bar("sparse probing", static_cast<int64_t>(tasks.size()), "tasks");
  // One LM pass per task over its texts (those an earlier task of its dataset did not run) feeds
  // every SAE; then the probes.
  auto fit = [&](size_t ti, const std::vector<float>& raw, const std::vector<std::vector<float>>& pooled) {
    TimeInto fits(&tm.other_s);
    const ProbeSplit& sp = splits[ti];
    const int64_t n_tr = static_cast<int64_t>(sp.train_text.size());
    // Rows [0, n_tr) of a list's features are the training texts, the rest the test texts.
    auto part = [&](const std::vector<float>& x, int64_t D, bool train) {
      return train ? std::vector<float>(x.begin(), x.begin() + n_tr * D) : std::vector<float>(x.begin() + n_tr * D, x.end());
    };
    const uint64_t seed = probe_seed(cfg.seed, tasks[ti]->name);
    const ProbeScores llm = probe_task(part(raw, d, true), sp.train_label, part(raw, d, false), sp.test_label, d,
                                       cfg.k_values, seed);
    std::vector<ProbeScores> sae_scores(S);
    std::exception_ptr error;
    // The SAEs' probe fits are independent host work: one SAE per thread, each fit serial, so the
    // scores do not depend on the thread count.
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t s = 0; s < static_cast<int64_t>(S); ++s) {
      try {
        const int F = saes[s]->config().d_sae;
        sae_scores[s] = probe_task(part(pooled[s], F, true), sp.train_label, part(pooled[s], F, false), sp.test_label,
                                   F, cfg.k_values, seed);
      } catch (...) {
#pragma omp critical(saelab_probe_error)
        error = std::current_exception();
      }
    }
    if (error) std::rethrow_exception(error);
    const auto positives = [](const std::vector<int>& y) { return std::count(y.begin(), y.end(), 1); };
    for (size_t s = 0; s < S; ++s)
      outs[s].push_back(TaskOut{tasks[ti]->name, tasks[ti]->family, llm, std::move(sae_scores[s]), n_tr,
                                static_cast<int64_t>(sp.test_label.size()), positives(sp.train_label),
                                positives(sp.test_label)});
    if (cfg.progress) bar.update(static_cast<int64_t>(ti + 1), tasks[ti]->name);
  };
  pool_text_lists(model, saes, ones, hook, texts, cfg.context_size, cfg.batch_size, fit, &tm);
  if (cfg.progress) bar.finish();
  std::vector<json> results;
  for (size_t s = 0; s < S; ++s) {
    results.push_back(probing_result_json(outs[s], cfg, model.config().name, sae_cfgs[s]));
    add_l2_and_counts(results.back(), outs[s]);
  }
  return results;
}

json sparse_probing(const LanguageModel& model, const Sae& sae, const std::string& hook, const ProbeSuite& suite,
                    const ProbingConfig& cfg, const json& sae_cfg) {
  return sparse_probing_multi(model, {&sae}, hook, suite, cfg, {sae_cfg})[0];
}

}  // namespace saelab
