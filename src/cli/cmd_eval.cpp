// `saelab eval core`: core metrics and CE loss recovered of an SAE at its hook (SAEBench layout).
#include <cstdio>

#include "commands.hpp"
#include "saelab/atomic_file.hpp"
#include "saelab/eval_core.hpp"
#include "saelab/lm.hpp"
#include "saelab/sae_io.hpp"

namespace saelab::cli {

void add_eval(CLI::App& app) {
  auto* ev = app.add_subcommand("eval", "evaluate an SAE (SAEBench-format JSON)");
  ev->require_subcommand(1);
  auto* core = ev->add_subcommand("core", "reconstruction, sparsity, and CE/KL with the SAE spliced into the LM");
  auto cfg = std::make_shared<CoreEvalConfig>();
  auto sae_dir = std::make_shared<std::string>();
  auto model = std::make_shared<std::string>(default_shared_root() + "/models/tinystories-656k");
  auto hook = std::make_shared<std::string>();
  auto out = std::make_shared<std::string>();
  core->add_option("--sae", *sae_dir, "SAE directory in SAELens layout (a run's sae/)")->required();
  core->add_option("--model", *model, "the LM the SAE was trained on")->capture_default_str();
  core->add_option("--hook", *hook, "hook point (default: the SAE's hook_name)");
  core->add_option("--corpus", cfg->corpus, "held-out evaluation text (default: shared/corpus/inaugural)");
  core->add_option("--contexts", cfg->n_contexts, "contexts to evaluate")->capture_default_str();
  core->add_option("--context", cfg->context_size, "tokens per context")->capture_default_str();
  core->add_option("--out", *out, "result JSON (default: <sae>/../eval_core.json)");
  core->callback([=] {
    CoreEvalConfig c = *cfg;
    if (c.corpus.empty()) c.corpus = {default_shared_root() + "/corpus/inaugural"};
    const auto sae_cfg = read_saelens_cfg(*sae_dir);
    Sae sae = load_saelens(*sae_dir, cpu_backend());
    const std::string h = hook->empty() ? sae.config().hook_name : *hook;
    auto m = load_model(*model, cpu_backend());
    const CoreEvalResult r = eval_core(*m, sae, h, c);
    const auto j = core_result_json(r, c, sae_cfg, m->config().name);
    const std::string path = out->empty() ? *sae_dir + "/../eval_core.json" : *out;
    write_file_atomic(path, j.dump(2) + "\n");
    std::printf("core eval of %s at %s over %lld tokens: ce_loss_score %.4f (CE clean %.4f, SAE %.4f, zero %.4f), "
                "kl_div_score %.4f, explained variance %.4f, L0 %.2f -> %s\n",
                sae_dir->c_str(), h.c_str(), (long long)r.tokens, r.ce_loss_score(), r.ce_clean, r.ce_sae, r.ce_zero,
                r.kl_div_score(), r.explained_variance, r.l0, path.c_str());
  });
}

}  // namespace saelab::cli
