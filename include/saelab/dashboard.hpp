// Feature dashboards: what each latent of a trained SAE means. One streaming pass of the LM over a
// corpus collects, per latent, its firing count, activation histogram, top activating contexts and a
// uniform sample of its firings (for quantile bins), in memory proportional to F·k, not to the
// tokens; the decoder gives each latent's logit effect and nearest latents; several SAEs on the same
// hook share the LM forward and are matched to each other by decoder cosine. write_dashboard_site
// turns the result into a static, self-contained site (no network), saelab dashboard is the CLI.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "saelab/sae.hpp"

namespace saelab {

class LanguageModel;

struct DashboardConfig {
  std::string model_path;
  std::vector<std::string> corpus;    // .txt / .jsonl files or directories
  std::vector<std::string> sae_dirs;  // SAELens-layout directories (a run's sae/), all on one hook
  std::vector<std::string> names;     // display name per SAE (default: the run directory's name)
  std::string out_dir;
  int64_t max_tokens = 200000;
  int context_size = 128, batch_size = 32;
  int top_k = 24;            // top activating contexts kept per latent (at most one per context)
  int samples = 40;          // uniform reservoir of firings per latent, split into quantile bins
  int quantile_bins = 4;
  int window = 12;           // tokens kept either side of an example's centre token
  int n_logits = 10;         // promoted and suppressed output tokens per latent
  int n_neighbours = 8;      // nearest latents by decoder cosine
  double dense_threshold = 0.1;  // firing density above which a latent is flagged dense
  // Also write export/ (SAEDashboard's NeuronpediaDashboardBatch JSON, for publishing): about
  // twice the site's size, since it spells out every token.
  bool export_batches = false;
  uint64_t seed = 1;
  bool progress = true;
  std::string device = "cpu";
};

// A window of tokens around one token where a latent fired, with that latent's activation on each.
struct LatentExample {
  int64_t context = 0;          // index of the context in the pass (0-based)
  int centre = 0;               // index in `tokens` of the token the example is about
  int position = 0;             // position of that token in its context
  float value = 0.f;            // the latent's activation there
  std::vector<int32_t> tokens;  // [≤ 2·window + 1]
  std::vector<float> acts;      // the latent's activation on each of tokens
};

// Activation histogram bins: log10(activation) in [kHistLo, kHistHi) in kHistBins equal steps;
// values below land in bin 0, above in the last bin.
constexpr double kHistLo = -4.0, kHistHi = 3.0;
constexpr int kHistBins = 70;

struct LatentSummary {
  int64_t fires = 0;   // tokens with activation > 0
  double sum = 0.0;    // of the activations where it fired
  float max = 0.f;
  std::vector<LatentExample> top;      // by value, descending; at most one per context
  std::vector<LatentExample> samples;  // uniform over its firings (reservoir), by value ascending
  std::vector<uint32_t> hist;          // [kHistBins]
  double density(int64_t n_tokens) const { return n_tokens > 0 ? static_cast<double>(fires) / n_tokens : 0.0; }
  double mean() const { return fires > 0 ? sum / static_cast<double>(fires) : 0.0; }
};

// What the decoder says about a latent, independent of data.
struct LatentDirection {
  std::vector<std::pair<int32_t, float>> promoted, suppressed;  // (token id, logit effect), strongest first
  std::vector<std::pair<int32_t, float>> neighbours;            // (latent, decoder cosine), highest first
  std::vector<std::pair<int32_t, float>> matches;               // per other SAE: (its best latent, cosine)
};

struct SaeDashboard {
  std::string name, sae_dir;
  SaeConfig cfg;  // architecture, sizes, hook, hierarchy (n_parents, children_per_parent)
  std::vector<LatentSummary> latents;     // [F]
  std::vector<LatentDirection> directions;  // [F]
  // Dual-adaptive runs (sae/penalty_weights.safetensors): w_freq, w_mag and the final weight
  // w = α w_freq + (1 − α) w_mag per latent; empty otherwise.
  std::vector<float> w_freq, w_mag, w_final;
};

struct DashboardData {
  std::string model_name, hook_name;
  int64_t n_tokens = 0, n_contexts = 0;
  int context_size = 0;
  std::vector<std::string> vocab;  // display string of every token id (decoded piece)
  std::vector<SaeDashboard> saes;  // the compared runs, in the order given
  DashboardConfig cfg;
  // Where the pass spent its time: the LM forward, the SAE encoders (and copying f to the host),
  // the per-latent bookkeeping, the decoder's logit effects / neighbours / matches, all of it.
  double seconds_lm = 0, seconds_sae = 0, seconds_bookkeeping = 0, seconds_directions = 0, seconds_total = 0;
};

// The streaming pass: runs the LM once over the corpus and every SAE on its activations. With
// `model`, that model (already loaded, e.g. by the experiment) instead of cfg.model_path.
DashboardData collect_dashboard(const DashboardConfig& cfg, const LanguageModel* model = nullptr);

// The static site: out_dir/index.html (latent table, histogram, search, hierarchy tree, latent
// pages by #hash), out_dir/data/*.js (loaded by <script>, so the site opens from file://), and
// out_dir/export/ (per-latent JSON for Neuronpedia / SAEDashboard, see docs/formats.md). Written to
// a temporary directory and renamed into place.
void write_dashboard_site(const DashboardData& data, const std::string& out_dir);

}  // namespace saelab
