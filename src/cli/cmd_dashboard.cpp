// `saelab dashboard`: a static feature browser for one or several SAEs on the same hook.
#include <cstdio>

#include "commands.hpp"
#include "saelab/corpus.hpp"
#include "saelab/dashboard.hpp"

namespace saelab::cli {

void add_dashboard(CLI::App& app) {
  auto* cmd = app.add_subcommand("dashboard", "write a static feature dashboard (index.html) for trained SAEs");
  auto cfg = std::make_shared<DashboardConfig>();
  cfg->model_path = default_model_path();
  cfg->out_dir = "dashboard";
  cmd->add_option("--sae", cfg->sae_dirs, "SAE directory in SAELens layout (a run's sae/); give several to compare")
      ->required();
  cmd->add_option("--name", cfg->names, "display name of each --sae (default: its run directory's name)");
  cmd->add_option("--model", cfg->model_path, "the LM the SAEs were trained on")->capture_default_str();
  cmd->add_option("--corpus", cfg->corpus, "text to collect examples from (default: shared/corpus without brown_plain)");
  cmd->add_option("--tokens", cfg->max_tokens, "tokens to pass through the LM (whole contexts)")->capture_default_str();
  cmd->add_option("--context", cfg->context_size, "tokens per context, BOS included")->capture_default_str();
  cmd->add_option("--batch", cfg->batch_size, "contexts per forward")->capture_default_str();
  cmd->add_option("--top-k", cfg->top_k, "top activating contexts kept per latent")->capture_default_str();
  cmd->add_option("--samples", cfg->samples, "firings sampled per latent for the quantile bins")->capture_default_str();
  cmd->add_option("--device", cfg->device, "cpu or cuda")->capture_default_str();
  cmd->add_flag("--export", cfg->export_batches,
                "also write export/: SAEDashboard's NeuronpediaDashboardBatch JSON, for publishing to Neuronpedia");
  cmd->add_option("--out", cfg->out_dir, "output directory (replaced atomically)")->capture_default_str();
  cmd->add_flag("!--no-progress", cfg->progress, "no progress bar");
  cmd->callback([=] {
    DashboardConfig c = *cfg;
    if (c.corpus.empty()) c.corpus = default_corpus_paths(default_shared_root());
    const DashboardData data = collect_dashboard(c);
    write_dashboard_site(data, c.out_dir);
    std::printf("dashboard of %zu SAE(s) over %lld tokens in %.1f s (LM %.1f s, SAE %.1f s, bookkeeping %.1f s, "
                "decoder directions %.1f s): %s/index.html\n",
                data.saes.size(), static_cast<long long>(data.n_tokens), data.seconds_total, data.seconds_lm,
                data.seconds_sae, data.seconds_bookkeeping, data.seconds_directions, c.out_dir.c_str());
  });
}

}  // namespace saelab::cli
