#include "saelab/sparse_probing.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>

#include "saelab/eval_core.hpp"
#include "saelab/lm.hpp"
#include "saelab/logistic.hpp"
#include "saelab/progress.hpp"

namespace saelab {

using json = nlohmann::json;

PooledFeatures pool_features(const LlamaModel& model, const Sae* sae, const std::string& hook,
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

std::vector<float> pool_features_multi(const LlamaModel& model, const std::vector<const Sae*>& saes,
                                      const std::vector<float>& input_scales, const std::string& hook,
                                      const std::vector<std::string>& texts, int context_size, int batch_size,
                                      std::vector<std::vector<float>>& pooled) {
  model.check_hook(hook);
  SAELAB_ASSERT(saes.size() == input_scales.size(), "one input scale per SAE");
  const Tokenizer& tok = model.tokenizer();
  const int d = model.config().d_model;
  const int64_t n = static_cast<int64_t>(texts.size());
  std::vector<float> raw(static_cast<size_t>(n * d), 0.f);
  pooled.assign(saes.size(), {});
  std::vector<std::vector<float>> dec_norms(saes.size());
  for (size_t s = 0; s < saes.size(); ++s) {
    const int F = saes[s]->config().d_sae;
    pooled[s].assign(static_cast<size_t>(n * F), 0.f);
    Tensor norms({F}, DType::F32, saes[s]->backend().device());
    saes[s]->backend().row_norms(norms, saes[s]->params().W_dec);
    dec_norms[s] = to_host_f32(saes[s]->backend(), norms);
  }
  const int32_t pad = tok.eos_id() >= 0 ? tok.eos_id() : tok.bos_id();
  for (int64_t b0 = 0; b0 < n; b0 += batch_size) {
    const int B = static_cast<int>(std::min<int64_t>(batch_size, n - b0));
    std::vector<std::vector<int32_t>> ids(B);
    int T = 1;
    for (int b = 0; b < B; ++b) {
      ids[b].push_back(tok.bos_id());
      for (int32_t t : tok.encode(texts[b0 + b])) {
        if (static_cast<int>(ids[b].size()) >= context_size) break;
        ids[b].push_back(t);
      }
      T = std::max<int>(T, static_cast<int>(ids[b].size()));
    }
    // Causal attention: padding after a text cannot change its positions, which are all we read.
    std::vector<int32_t> flat(static_cast<size_t>(B) * T, pad);
    for (int b = 0; b < B; ++b) std::copy(ids[b].begin(), ids[b].end(), flat.begin() + static_cast<int64_t>(b) * T);
    std::vector<float> act;
    Hooks hooks;
    hooks.observe(hook, [&](TensorView a) { act = to_host_f32(model.backend(), a); });
    model.forward(flat, B, T, &hooks, /*want_logits=*/false);
    // Rows to pool: real, non-special tokens.
    std::vector<float> rows;
    std::vector<int> owner;
    for (int b = 0; b < B; ++b)
      for (int t = 0; t < static_cast<int>(ids[b].size()); ++t) {
        const int32_t id = ids[b][t];
        if (tok.is_special(id) || id == tok.bos_id()) continue;
        rows.insert(rows.end(), act.begin() + (static_cast<int64_t>(b) * T + t) * d,
                    act.begin() + (static_cast<int64_t>(b) * T + t + 1) * d);
        owner.push_back(b);
      }
    const int64_t R = static_cast<int64_t>(owner.size());
    std::vector<int> count(B, 0);
    for (int o : owner) ++count[o];
    for (int64_t r = 0; r < R; ++r)
      for (int j = 0; j < d; ++j) raw[(b0 + owner[r]) * d + j] += rows[r * d + j] / static_cast<float>(count[owner[r]]);
    for (size_t s = 0; s < saes.size() && R > 0; ++s) {
      const Sae& sae = *saes[s];
      Backend& be = sae.backend();
      std::vector<float> x = rows;
      if (input_scales[s] != 1.0f)
        for (float& v : x) v *= input_scales[s];
      SaeWorkspace ws(sae.config(), R, be.device());
      sae.encode(to_device(be, {R, d}, x.data()), ws);
      const std::vector<float> f = to_host_f32(be, ws.f.view().rows(0, R));
      const int F = sae.config().d_sae;
      for (int64_t r = 0; r < R; ++r) {
        float* dst = pooled[s].data() + (b0 + owner[r]) * F;
        const float inv = 1.0f / static_cast<float>(count[owner[r]]);
        for (int i = 0; i < F; ++i)
          if (f[r * F + i] != 0.f) dst[i] += f[r * F + i] * dec_norms[s][i] * inv;
      }
    }
  }
  return raw;
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

ProbeScores probe_task(const std::vector<float>& train, const std::vector<int>& train_y, const std::vector<float>& test,
                       const std::vector<int>& test_y, int D, const std::vector<int>& k_values) {
  const int64_t n = static_cast<int64_t>(train_y.size()), m = static_cast<int64_t>(test_y.size());
  const std::vector<int> order = top_k_by_mean_difference(train, train_y, D, D);
  ProbeScores s;
  auto run = [&](int k) {
    std::vector<float> xtr(static_cast<size_t>(n * k)), xte(static_cast<size_t>(m * k));
    for (int64_t i = 0; i < n; ++i)
      for (int c = 0; c < k; ++c) xtr[i * k + c] = train[i * D + order[c]];
    for (int64_t i = 0; i < m; ++i)
      for (int c = 0; c < k; ++c) xte[i * k + c] = test[i * D + order[c]];
    const LogisticModel model = fit_logistic(xtr, n, k, train_y);
    const BinaryScores sc = score_logistic(model, xte, m, k, test_y);
    s.acc.push_back(sc.accuracy);
    s.f1.push_back(sc.f1);
  };
  for (int k : k_values) run(std::min(k, D));
  run(D);
  return s;
}

json sparse_probing(const LlamaModel& model, const Sae& sae, const std::string& hook, const ProbeSuite& suite,
                    const ProbingConfig& cfg, const json& sae_cfg) {
  if (sae.config().d_in != model.config().d_model)
    fail("SAE d_in {} does not match the width {} of model '{}'", sae.config().d_in, model.config().d_model,
         model.config().name);
  check_sae_hook(sae, hook);
  std::vector<const ProbeTask*> tasks;
  for (const auto& t : suite.tasks)
    if (cfg.only_tasks.empty() || std::find(cfg.only_tasks.begin(), cfg.only_tasks.end(), t.name) != cfg.only_tasks.end())
      tasks.push_back(&t);
  if (tasks.empty()) fail("no probing task selected");
  const size_t K = cfg.k_values.size() + 1;  // the k values, then all features
  struct TaskOut {
    std::string name, family;
    ProbeScores llm, sae;
  };
  std::vector<TaskOut> outs;
  Progress bar("sparse probing", static_cast<int64_t>(tasks.size()), "tasks");
  for (const ProbeTask* t : tasks) {
    const ProbeSplit sp = make_probe_split(suite.dataset(t->dataset), t->positive, cfg.n_train, cfg.n_test, cfg.seed);
    const PooledFeatures tr = pool_features(model, &sae, hook, sp.train_text, cfg.context_size, cfg.batch_size);
    const PooledFeatures te = pool_features(model, &sae, hook, sp.test_text, cfg.context_size, cfg.batch_size);
    TaskOut o{t->name, t->family, probe_task(tr.raw, sp.train_label, te.raw, sp.test_label, tr.d, cfg.k_values),
              probe_task(tr.sae, sp.train_label, te.sae, sp.test_label, tr.F, cfg.k_values)};
    outs.push_back(std::move(o));
    if (cfg.progress) bar.update(static_cast<int64_t>(outs.size()), t->name);
  }
  if (cfg.progress) bar.finish();

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
  for (const auto& o : outs) {
    json e = fields("llm", o.llm.acc, o.llm.f1);
    e.update(fields("sae", o.sae.acc, o.sae.f1));
    e["task"] = o.name;
    e["family"] = o.family;
    per_task.push_back(e);
  }
  std::vector<std::string> names;
  for (const ProbeTask* t : tasks) names.push_back(t->name);
  return {{"eval_type_id", "sparse_probing"},
          {"eval_config",
           {{"random_seed", cfg.seed},
            {"dataset_names", names},
            {"probe_train_set_size", cfg.n_train},
            {"probe_test_set_size", cfg.n_test},
            {"context_length", cfg.context_size},
            {"sae_batch_size", cfg.batch_size},
            {"llm_batch_size", cfg.batch_size},
            {"llm_dtype", "float32"},
            {"model_name", model.config().name},
            {"k_values", cfg.k_values},
            {"lower_vram_usage", false}}},
          {"eval_id", new_eval_id()},
          {"datetime_epoch_millis", now_epoch_millis()},
          {"eval_result_metrics", {{"llm", fields("llm", la, lf)}, {"sae", fields("sae", sa, sf)}}},
          {"eval_result_details", details},
          {"eval_result_unstructured", {{"tasks", per_task}}},
          {"sae_cfg_dict", sae_cfg}};
}

}  // namespace saelab
