// `saelab eval core|probing|absorption`: an SAE's core metrics and CE loss recovered, sparse probing,
// and feature absorption at its hook (SAEBench layouts).
#include <chrono>
#include <cstdio>

#include "commands.hpp"
#include "saelab/absorption.hpp"
#include "saelab/atomic_file.hpp"
#include "saelab/eval_core.hpp"
#include "saelab/lm.hpp"
#include "saelab/sae_io.hpp"
#include "saelab/sparse_probing.hpp"

namespace saelab::cli {

namespace {

void add_eval_absorption(CLI::App& ev) {
  auto* ab = ev.add_subcommand("absorption", "feature absorption, SAEBench's first-letter task (absorption_first_letter JSON)");
  auto cfg = std::make_shared<AbsorptionConfig>();
  auto sae_dirs = std::make_shared<std::vector<std::string>>();
  auto model = std::make_shared<std::string>(default_model_path());
  auto out = std::make_shared<std::string>();
  ab->add_option("--sae", *sae_dirs,
                 "SAE directory in SAELens layout (a run's sae/); several SAEs at the same hook share one LM pass")
      ->required();
  ab->add_option("--model", *model, "the LM the SAEs were trained on")->capture_default_str();
  ab->add_option("--out", *out, "result JSON with one --sae (default: <sae>/../eval_absorption.json)");
  ab->add_option("--prompt-template", cfg->prompt_template, "prompt, {word} the word")->capture_default_str();
  ab->add_option("--prompt-token-pos", cfg->prompt_token_pos, "the word's token, from the prompt's end")->capture_default_str();
  ab->add_option("--max-k", cfg->max_k_value, "largest k of k-sparse probing")->capture_default_str();
  ab->add_option("--min-probe-f1", cfg->min_probe_f1, "letters with a weaker first-letter probe are left out")
      ->capture_default_str();
  ab->add_option("--min-letters", cfg->min_letters, "fewer letters above --min-probe-f1 and there is no result")
      ->capture_default_str();
  ab->add_option("--min-words-per-letter", cfg->min_words_per_letter, "vocabulary words every letter needs")
      ->capture_default_str();
  ab->add_option("--max-words", cfg->max_words, "a seeded subsample of the vocabulary (0: all, as SAEBench)")
      ->capture_default_str();
  ab->add_option("--batch", cfg->llm_batch_size, "prompts per LM forward")->capture_default_str();
  ab->add_option("--seed", cfg->seed, "word split, prompts' examples, probe init and shuffles")->capture_default_str();
  ab->callback([=] {
    if (!out->empty() && sae_dirs->size() > 1)
      fail("--out names one result file, but {} SAEs were given: leave it out (each SAE's result goes to "
           "<sae>/../eval_absorption.json)", sae_dirs->size());
    // Every SAE is loaded and checked against the first one's hook before the LM runs.
    std::vector<Sae> saes;
    for (const std::string& dir : *sae_dirs) saes.push_back(load_saelens(dir, cpu_backend()));
    const std::string hook = saes.front().config().hook_name;
    for (const Sae& s : saes) check_sae_hook(s, hook);
    auto m = load_model(*model, cpu_backend());
    using clock = std::chrono::steady_clock;
    const auto t0 = clock::now();
    const AbsorptionData data = absorption_data(*m, hook, *cfg);
    std::printf("absorption: LM prompts and first-letter probe %.1f s (%zu words)\n",
                std::chrono::duration<double>(clock::now() - t0).count(), data.vocab.size());
    for (size_t i = 0; i < saes.size(); ++i) {
      const auto t1 = clock::now();
      const std::string& dir = (*sae_dirs)[i];
      const auto j = absorption_json(absorption_eval(saes[i], data, *cfg), data, *cfg, m->config().name,
                                     read_saelens_cfg(dir));
      const std::string path = out->empty() ? dir + "/../eval_absorption.json" : *out;
      write_file_atomic(path, j.dump(2) + "\n");
      const auto& mean = j["eval_result_metrics"]["mean"];
      std::printf("absorption of %s (%zu letters, %.1f s): mean absorption fraction %.4f, full absorption %.4f, "
                  "split features %.2f -> %s\n",
                  dir.c_str(), j["eval_result_details"].size(), std::chrono::duration<double>(clock::now() - t1).count(),
                  mean["mean_absorption_fraction_score"].get<double>(), mean["mean_full_absorption_score"].get<double>(),
                  mean["mean_num_split_features"].get<double>(), path.c_str());
    }
  });
}

}  // namespace

void add_eval(CLI::App& app) {
  auto* ev = app.add_subcommand("eval", "evaluate an SAE (SAEBench-format JSON)");
  ev->require_subcommand(1);
  auto* core = ev->add_subcommand("core", "reconstruction, sparsity, and CE/KL with the SAE spliced into the LM");
  auto cfg = std::make_shared<CoreEvalConfig>();
  auto sae_dir = std::make_shared<std::string>();
  auto model = std::make_shared<std::string>(default_model_path());
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

  auto* probing = ev->add_subcommand("probing", "sparse probing over the 35-task suite (SAEBench sparse_probing JSON)");
  auto pcfg = std::make_shared<ProbingConfig>();
  auto p_sae = std::make_shared<std::string>();
  auto p_model = std::make_shared<std::string>(default_model_path());
  auto p_tasks = std::make_shared<std::string>("data/probe_tasks.json");
  auto p_root = std::make_shared<std::string>(default_shared_root());
  auto p_out = std::make_shared<std::string>();
  probing->add_option("--sae", *p_sae, "SAE directory in SAELens layout")->required();
  probing->add_option("--model", *p_model, "the LM the SAE was trained on")->capture_default_str();
  probing->add_option("--tasks", *p_tasks, "task file")->capture_default_str();
  probing->add_option("--data-root", *p_root, "root the task file's paths are relative to")->capture_default_str();
  probing->add_option("--train", pcfg->n_train, "training texts per task (balanced)")->capture_default_str();
  probing->add_option("--test", pcfg->n_test, "test texts per task (balanced)")->capture_default_str();
  probing->add_option("--context", pcfg->context_size, "tokens per text (SAEBench: 128)")->capture_default_str();
  probing->add_option("--only", pcfg->only_tasks, "run only these tasks (e.g. language/en)");
  probing->add_option("--out", *p_out, "result JSON (default: <sae>/../eval_sparse_probing.json)");
  probing->callback([=] {
    const auto sae_cfg = read_saelens_cfg(*p_sae);
    Sae sae = load_saelens(*p_sae, cpu_backend());
    auto m = load_model(*p_model, cpu_backend());
    const ProbeSuite suite = load_probe_suite(*p_tasks, *p_root);
    const auto j = sparse_probing(*m, sae, sae.config().hook_name, suite, *pcfg, sae_cfg);
    const std::string path = p_out->empty() ? *p_sae + "/../eval_sparse_probing.json" : *p_out;
    write_file_atomic(path, j.dump(2) + "\n");
    const auto& l = j["eval_result_metrics"]["llm"];
    const auto& s = j["eval_result_metrics"]["sae"];
    std::printf("sparse probing (%zu tasks): LLM acc %.4f top-1 %.4f | SAE acc %.4f top-1 %.4f top-5 %.4f, F1 %.4f -> %s\n",
                j["eval_config"]["dataset_names"].size(), l["llm_test_accuracy"].get<double>(),
                l["llm_top_1_test_accuracy"].get<double>(), s["sae_test_accuracy"].get<double>(),
                s["sae_top_1_test_accuracy"].get<double>(), s["sae_top_5_test_accuracy"].get<double>(),
                s["sae_test_f1"].get<double>(), path.c_str());
  });

  add_eval_absorption(*ev);
}

}  // namespace saelab::cli
