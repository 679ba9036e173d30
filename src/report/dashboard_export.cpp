// The dashboard's export: SAEDashboard's Neuronpedia batch files (NeuronpediaDashboardBatch.to_dict
// in sae_dashboard/neuronpedia/neuronpedia_dashboard.py), which SAEDashboard's
// neuronpedia_export.py converts to Neuronpedia's bulk-import layout. Keys are written in that
// class's order; the mapping from DashboardData and what stays empty is in docs/formats.md.
#include <algorithm>
#include <cmath>

#include "dashboard_site.hpp"

namespace saelab::dashboard {

using ojson = nlohmann::ordered_json;

namespace {

// SAEDashboard rounds every float list to 5 decimals (FeatureProcessor.round_list).
double round5(double v) { return std::isfinite(v) ? std::round(v * 1e5) / 1e5 : 0.0; }

ojson activation(const DashboardData& d, const LatentExample& e, double bin_min, double bin_max, double bin_contains) {
  ojson tokens = ojson::array(), values = ojson::array();
  for (size_t t = 0; t < e.tokens.size(); ++t) {
    tokens.push_back(d.vocab[static_cast<size_t>(e.tokens[t])]);
    values.push_back(round5(e.acts[t]));
  }
  ojson a = ojson::object();
  a["bin_min"] = bin_min;
  a["bin_max"] = bin_max;
  a["bin_contains"] = bin_contains;
  a["tokens"] = std::move(tokens);
  a["values"] = std::move(values);
  a["qualifying_token_index"] = e.centre;
  return a;
}

ojson feature(const DashboardData& d, const SaeDashboard& sae, int i) {
  const LatentSummary& l = sae.latents[static_cast<size_t>(i)];
  ojson neg_str = ojson::array(), neg_values = ojson::array(), pos_str = ojson::array(), pos_values = ojson::array();
  if (!sae.directions.empty()) {
    const LatentDirection& dir = sae.directions[static_cast<size_t>(i)];
    for (const auto& [id, v] : dir.suppressed) {
      neg_str.push_back(d.vocab[static_cast<size_t>(id)]);
      neg_values.push_back(round5(v));
    }
    for (const auto& [id, v] : dir.promoted) {
      pos_str.push_back(d.vocab[static_cast<size_t>(id)]);
      pos_values.push_back(round5(v));
    }
  }
  // The activation histogram: our log10 bins from the first to the last non-empty one, each bar at
  // its centre in activation units (SAEDashboard's bars are linear; a bar is a value and a height).
  ojson bar_values = ojson::array(), bar_heights = ojson::array();
  size_t b0 = l.hist.size(), b1 = 0;
  for (size_t b = 0; b < l.hist.size(); ++b)
    if (l.hist[b]) b0 = std::min(b0, b), b1 = b + 1;
  const double step = (kHistHi - kHistLo) / kHistBins;
  for (size_t b = b0; b < b1; ++b) {
    bar_values.push_back(round5(std::pow(10.0, kHistLo + (static_cast<double>(b) + 0.5) * step)));
    bar_heights.push_back(l.hist[b]);
  }
  // Top activations first (SAEDashboard's "TOP ACTIVATIONS" group: bin_min -1, bin_max the max,
  // bin_contains -1), then the quantile groups from the highest down, as its intervals are.
  const double density = l.density(d.n_tokens);
  ojson acts = ojson::array();
  for (const LatentExample& e : l.top) acts.push_back(activation(d, e, -1, round5(l.max), -1));
  const std::vector<QuantileBin> bins = quantile_bins(l.samples, d.cfg.quantile_bins);
  for (auto it = bins.rbegin(); it != bins.rend(); ++it) {
    const double contains = density * static_cast<double>(it->end - it->begin) / static_cast<double>(l.samples.size());
    for (size_t j = it->begin; j < it->end; ++j)
      acts.push_back(activation(d, l.samples[j], round5(it->lo), round5(it->hi), contains));
  }
  std::string dataset;
  for (const std::string& c : d.cfg.corpus) dataset += (dataset.empty() ? "" : ", ") + c;

  ojson f = ojson::object();
  f["feature_index"] = i;
  for (const char* k : {"neuron_alignment_indices", "neuron_alignment_values", "neuron_alignment_l1",
                        "correlated_neurons_indices", "correlated_neurons_l1", "correlated_neurons_pearson",
                        "correlated_features_indices", "correlated_features_l1", "correlated_features_pearson"})
    f[k] = ojson::array();
  f["neg_str"] = std::move(neg_str);
  f["neg_values"] = std::move(neg_values);
  f["pos_str"] = std::move(pos_str);
  f["pos_values"] = std::move(pos_values);
  f["frac_nonzero"] = density;
  f["freq_hist_data_bar_values"] = std::move(bar_values);
  f["freq_hist_data_bar_heights"] = std::move(bar_heights);
  f["logits_hist_data_bar_heights"] = ojson::array();
  f["logits_hist_data_bar_values"] = ojson::array();
  f["n_prompts_total"] = d.n_contexts;
  f["n_tokens_in_prompt"] = d.context_size;
  f["dataset"] = dataset;
  f["decoder_weights_dist"] = ojson::array();
  f["activations"] = std::move(acts);
  f["vector"] = ojson::array();
  return f;
}

std::string model_id(const DashboardData& d, const SaeDashboard& sae) {
  return d.model_name.empty() ? sae.cfg.model_name : d.model_name;
}

std::string sae_set(const DashboardData& d, size_t s) {
  return d.saes[s].name.empty() ? "sae" + std::to_string(s) : d.saes[s].name;
}

}  // namespace

ojson export_batch(const DashboardData& d, int s, int first, int last) {
  const SaeDashboard& sae = d.saes[static_cast<size_t>(s)];
  ojson features = ojson::array();
  for (int i = first; i < last; ++i) features.push_back(feature(d, sae, i));
  ojson b = ojson::object();
  b["model_id"] = model_id(d, sae);
  b["layer"] = sae.cfg.hook_layer;
  b["sae_set"] = sae_set(d, static_cast<size_t>(s));
  b["sae_id_suffix"] = nullptr;
  b["features"] = std::move(features);
  return b;
}

std::vector<std::pair<std::string, std::string>> export_files(const DashboardData& d) {
  std::vector<std::pair<std::string, std::string>> out;
  for (size_t s = 0; s < d.saes.size(); ++s) {
    const SaeDashboard& sae = d.saes[s];
    const std::string dir = "export/sae" + std::to_string(s);
    const int F = static_cast<int>(sae.latents.size());
    for (int b = 0, first = 0; first < F; ++b, first += kExportBatch)
      out.emplace_back(dir + "/batch-" + std::to_string(b) + ".json",
                       dump_json(export_batch(d, static_cast<int>(s), first, std::min(F, first + kExportBatch))));
    // What SAEDashboard's runner writes beside its batches: the features it left out (none here:
    // dead latents are exported with no activations, as the runner does) and its sparsity threshold.
    ojson skipped = ojson::object();
    skipped["model_id"] = model_id(d, sae);
    skipped["layer"] = std::to_string(sae.cfg.hook_layer);
    skipped["sae_set"] = sae_set(d, s);
    skipped["log_sparsity"] = -6;
    skipped["skipped_indexes"] = ojson::array();
    out.emplace_back(dir + "/skipped_indexes.json", dump_json(skipped));
  }
  return out;
}

}  // namespace saelab::dashboard
