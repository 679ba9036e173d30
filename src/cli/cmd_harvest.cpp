// `saelab harvest`: activations of one hook point over a corpus, to shards on disk.
#include <cstdio>

#include "commands.hpp"
#include "saelab/corpus.hpp"
#include "saelab/harvest.hpp"
#include "saelab/lm.hpp"

namespace saelab::cli {

void add_harvest(CLI::App& app) {
  auto* cmd = app.add_subcommand("harvest", "store a hook's activations over a corpus as shards + manifest");
  auto cfg = std::make_shared<HarvestConfig>();
  auto dtype = std::make_shared<std::string>("f32");
  const std::string shared = default_shared_root();
  cfg->model_path = default_model_path();
  cfg->out_dir = "activations";
  cmd->add_option("--model", cfg->model_path, "HF model directory or llama2.c .bin")->capture_default_str();
  cmd->add_option("--corpus", cfg->corpus, "corpus files/directories (.txt paragraphs, .jsonl \"text\"); "
                                           "default: shared/corpus without brown_plain");
  cmd->add_option("--hook", cfg->hook_name, "hook point, e.g. blocks.0.hook_resid_post")->capture_default_str();
  cmd->add_option("--out", cfg->out_dir, "output directory (resumed if it holds a partial harvest)")
      ->capture_default_str();
  cmd->add_option("--context", cfg->context_size, "tokens per context, BOS included")->capture_default_str();
  cmd->add_option("--batch", cfg->batch_size, "contexts per forward")->capture_default_str();
  cmd->add_option("--max-tokens", cfg->max_tokens, "activations to store (0: the whole corpus)")->capture_default_str();
  cmd->add_option("--shard-tokens", cfg->shard_tokens, "activations per shard (at least)")->capture_default_str();
  cmd->add_option("--dtype", *dtype, "stored dtype: f32 or f16")->capture_default_str();
  cmd->add_option("--format", cfg->format, "npy or safetensors")->capture_default_str();
  cmd->add_option("--device", cfg->device, "where the LM runs: cpu or cuda (a -DSAELAB_CUDA=ON build)")->capture_default_str();
  cmd->add_flag("!--keep-special", cfg->exclude_special, "also store BOS/EOS positions");
  cmd->add_flag("!--no-progress", cfg->progress, "no progress bar");
  cmd->callback([=] {
    HarvestConfig c = *cfg;
    c.dtype = dtype_from_name(*dtype);
    if (c.corpus.empty()) c.corpus = default_corpus_paths(default_shared_root());
    const HarvestResult r = harvest(c);
    if (r.already_complete) {
      std::printf("%s already holds a complete harvest of %lld tokens\n", c.out_dir.c_str(), (long long)r.n_tokens);
      return;
    }
    std::printf("harvested %lld activations (%lld new, %lld contexts) of %s into %s in %.1fs: %.0f tokens/s%s\n",
                (long long)r.n_tokens, (long long)r.new_tokens, (long long)r.contexts, c.hook_name.c_str(),
                c.out_dir.c_str(), r.seconds, r.seconds > 0 ? r.contexts * c.context_size / r.seconds : 0.0,
                r.resumed ? " (resumed)" : "");
  });
}

}  // namespace saelab::cli
