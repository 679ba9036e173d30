#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <filesystem>

#include "saelab/absorption.hpp"
#include "saelab/atomic_file.hpp"
#include "saelab/corpus.hpp"
#include "saelab/error.hpp"
#include "saelab/eval_core.hpp"
#include "saelab/experiment.hpp"
#include "saelab/lm.hpp"
#include "saelab/report.hpp"
#include "saelab/sae_io.hpp"
#include "saelab/sparse_probing.hpp"
#include "test_util.hpp"

using namespace saelab;
namespace fs = std::filesystem;


TEST(Experiment, RunsThePlanIntoRunDirectoriesAndResumes) {
  const std::string out = test::make_temp_dir("exp") + "/runs";
  const ExperimentConfig c = test::small_experiment(out);
  const auto rows = run_experiment(c);
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0]["run"], "run_1");
  EXPECT_EQ(rows[2]["alpha_mode"], "learned");
  for (const auto& r : rows) {
    // SAEBench's zero ablation (BOS zeroed too) costs less CE than zeroing all but BOS did, so the
    // scores of these 60k-token SAEs are near 0.48 where they were above 0.5.
    EXPECT_GT(r["ce_loss_score"].get<double>(), 0.4) << r.dump();
    EXPECT_GT(r["l0"].get<double>(), 0.0);
  }
  for (const char* f : {"experiment.json", "summary.json", "alpha_agreement.json", "run_1/eval_core.json",
                        "run_1/stability.json", "run_2/composition.json", "run_3/alpha_summary.json", "run_3/run.json"})
    EXPECT_TRUE(file_exists(out + "/" + f)) << f;
  const auto agree = nlohmann::json::parse(read_file(out + "/alpha_agreement.json"));
  EXPECT_EQ(agree["runs"].size(), 2u);
  EXPECT_TRUE(agree.contains("learned"));
  // A second call finds everything complete and changes nothing.
  const std::string before = read_file(out + "/run_2/sae/sae_weights.safetensors");
  const auto t0 = std::chrono::steady_clock::now();
  const auto again = run_experiment(c);
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 5.0);
  EXPECT_EQ(again, rows);
  EXPECT_EQ(read_file(out + "/run_2/sae/sae_weights.safetensors"), before);
}

// `stream = true`: no training activations on disk, the seed's three runs trained in one LM pass.
// With rows in stream order (shuffle = false) and the statistics over every row on both paths, each
// run ends bit-identical to the cached experiment's, and the summaries agree.
TEST(Experiment, StreamedExperimentTrainsASeedsRunsInOnePassAsTheCachedOneDoes) {
  const std::string tmp = test::make_temp_dir("exp");
  ExperimentConfig cached = test::small_experiment(tmp + "/cached");
  cached.absorption = false;
  cached.dashboard_tokens = 0;
  cached.tokens = 40960;  // within the book (54889 rows), so the stream does not wrap around to a second pass
  cached.train["shuffle"] = false;
  cached.train["buffer_tokens"] = cached.tokens;
  ExperimentConfig streamed = cached;
  streamed.out_dir = tmp + "/streamed";
  streamed.stream = true;
  const auto a = run_experiment(cached), b = run_experiment(streamed);
  EXPECT_FALSE(fs::exists(tmp + "/streamed/activations"));
  EXPECT_TRUE(fs::exists(tmp + "/streamed/heldout/manifest.json"));
  for (const char* run : {"run_1", "run_2", "run_3"}) {
    const std::string w = read_file(tmp + "/streamed/" + run + "/sae/sae_weights.safetensors");
    EXPECT_FALSE(w.empty()) << run;
    EXPECT_TRUE(w == read_file(tmp + "/cached/" + run + "/sae/sae_weights.safetensors")) << run;
  }
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_EQ(a[i]["l0"], b[i]["l0"]) << i;
  // A run that would read other batches cannot join its seed's pass: the key is named.
  ExperimentConfig bad = streamed;
  bad.out_dir = tmp + "/bad";
  bad.runs[1]["batch_size"] = 256;
  const std::string e = test::error_of([&] { run_experiment(bad); });
  EXPECT_NE(e.find("must agree on 'batch_size'"), std::string::npos) << e;
}

TEST(Experiment, DefaultPlanIsMethodSection5AndBadConfigsAreNamed) {
  const auto runs = default_experiment_runs();
  ASSERT_EQ(runs.size(), 10u);  // vanilla, 5 manual α, learnable-dual, naive-α, topk, Matryoshka
  EXPECT_EQ(runs[0]["name"], "vanilla");
  EXPECT_EQ(runs[6]["alpha_mode"], "learned");
  EXPECT_EQ(runs[7]["alpha_mode"], "naive");
  EXPECT_EQ(runs[8]["architecture"], "topk");
  EXPECT_EQ(runs[9]["architecture"], "matryoshka_batchtopk");
  const std::string dir = test::make_temp_dir("expcfg");
  test::write_text(dir + "/bad.toml", "[experimnt]\ntokens = 5\n");
  EXPECT_THROW(load_experiment_config(dir + "/bad.toml", test::shared_root()), Error);
  test::write_text(dir + "/bad2.toml", "[experiment]\ntokenz = 5\n");
  EXPECT_THROW(load_experiment_config(dir + "/bad2.toml", test::shared_root()), Error);
}

// Held-out text stays out of training by construction: the default corpus list names the held-out
// corpus (inaugural) too, and the training files the experiment harvests leave it out.
TEST(Experiment, HeldOutTextIsNeverTrainingText) {
  const ExperimentConfig cfg = load_experiment_config("", test::shared_root());
  const std::vector<std::string> train = training_corpus_files(cfg), heldout = expand_corpus_paths(cfg.heldout_corpus);
  ASSERT_FALSE(heldout.empty());
  EXPECT_LT(train.size(), expand_corpus_paths(cfg.corpus).size()) << "the default corpus names the held-out text";
  for (const auto& h : heldout)
    for (const auto& t : train) EXPECT_NE(fs::weakly_canonical(t), fs::weakly_canonical(h)) << t;
  ExperimentConfig only = cfg;
  only.corpus = cfg.heldout_corpus;
  EXPECT_THROW(training_corpus_files(only), Error);
}

// Several seeds: every run once per seed in its own directory, seed j's after seed j−1's; a finished
// one-seed experiment takes more seeds by appending (only the new runs train); the report and the α
// agreement give each method's mean ± standard error over the seeds.
TEST(Experiment, SeveralSeedsTrainEachRunOncePerSeedAndReportMeansWithErrors) {
  const std::string out = test::make_temp_dir("expseeds") + "/runs";
  ExperimentConfig c = test::small_experiment(out);
  c.tokens = 30000;
  const auto one = run_experiment(c);
  ASSERT_EQ(one.size(), 3u);
  EXPECT_EQ(one[0]["seed"], 42);
  const std::string first = read_file(out + "/run_2/sae/sae_weights.safetensors");

  c.seeds = {42, 7};
  const auto rows = run_experiment(c);
  ASSERT_EQ(rows.size(), 6u);
  for (size_t i = 0; i < 6; ++i) {
    EXPECT_EQ(rows[i]["run"], "run_" + std::to_string(i + 1));
    EXPECT_EQ(rows[i]["seed"], i < 3 ? 42 : 7);
    EXPECT_EQ(rows[i]["name"], rows[i % 3]["name"]);
  }
  EXPECT_EQ(rows[0], one[0]) << "seed 42's runs are the one-seed experiment's, not retrained";
  EXPECT_EQ(read_file(out + "/run_2/sae/sae_weights.safetensors"), first);
  EXPECT_NE(read_file(out + "/run_5/sae/sae_weights.safetensors"), first) << "another seed, another SAE";
  const auto plan = nlohmann::json::parse(read_file(out + "/experiment.json"));
  EXPECT_EQ(plan["seeds"], nlohmann::json({42, 7}));

  const auto agree = nlohmann::json::parse(read_file(out + "/alpha_agreement.json"));
  ASSERT_EQ(agree["per_seed"].size(), 2u);
  EXPECT_EQ(agree["per_seed"][1]["runs"][0]["run"], out + "/run_5");
  const auto& across = agree["across_seeds"];
  EXPECT_EQ(across["best_manual"]["name"], "dual_fixed");
  EXPECT_EQ(across["learned"]["J_gap"]["n"], 2);
  const double gap0 = agree["per_seed"][0]["learned"]["J_gap"].get<double>();
  const double gap1 = agree["per_seed"][1]["learned"]["J_gap"].get<double>();
  EXPECT_NEAR(across["learned"]["J_gap"]["mean"].get<double>(), (gap0 + gap1) / 2, 1e-9);

  const std::string html = read_file(write_report(out));
  for (const char* s : {"Results over 2 seeds", "Runs (one row per seed)", "Manual sweep over 2 seeds", " ± "})
    EXPECT_NE(html.find(s), std::string::npos) << s;
  const auto data = nlohmann::json::parse(read_file(out + "/report.json"));
  ASSERT_EQ(data["methods"].size(), 3u);
  const double ev = (rows[1]["explained_variance"].get<double>() + rows[4]["explained_variance"].get<double>()) / 2;
  EXPECT_NEAR(data["methods"][1]["explained_variance"]["mean"].get<double>(), ev, 1e-12);
  EXPECT_GT(data["methods"][1]["explained_variance"]["se"].get<double>(), 0.0);

  // Seeds may only be appended to, and never repeat.
  c.seeds = {7, 42};
  EXPECT_THROW(run_experiment(c), Error);
  c.seeds = {42, 42};
  EXPECT_THROW(run_experiment(c), Error);
}

namespace {

// The numbers an experiment writes from its shared passes are those of one SAE at a time; the
// probing path pools texts in other batches (tasks sharing texts, length order), so its features
// may differ in the last bits, its accuracies not beyond this.
constexpr double kTolSharedPass = 1e-9;

// A probe task file with three of the suite's tasks, two of them on one dataset.
std::string small_probe_tasks(const std::string& dir) {
  nlohmann::json j = nlohmann::json::parse(read_file(std::string(SAELAB_SOURCE_DIR) + "/data/probe_tasks.json"));
  nlohmann::json datasets = nlohmann::json::array(), tasks = nlohmann::json::array();
  for (const auto& d : j["datasets"])
    if (d["name"] == "language" || d["name"] == "ag_news") datasets.push_back(d);
  tasks.push_back({{"dataset", "language"}, {"positive", "en"}});
  tasks.push_back({{"dataset", "language"}, {"positive", "fr"}});
  tasks.push_back({{"dataset", "ag_news"}, {"positive", "Sports"}});
  j["datasets"] = datasets;
  j["tasks"] = tasks;
  test::write_text(dir + "/tasks.json", j.dump(2));
  return dir + "/tasks.json";
}

void expect_near_numbers(const nlohmann::json& a, const nlohmann::json& b, const std::string& where) {
  for (const auto& [k, v] : b.items()) {
    if (v.is_object()) {
      expect_near_numbers(a.at(k), v, where + "." + k);
    } else if (v.is_number()) {
      const double want = v.get<double>();
      EXPECT_NEAR(a.at(k).get<double>(), want, kTolSharedPass * std::max(1.0, std::abs(want))) << where << "." << k;
    }
  }
}

}  // namespace

// With probing on: every run's eval_core, sparse probing and persistence come from passes shared by
// the runs, equal to evaluating each run alone; a re-run recomputes only missing outputs.
TEST(Experiment, SharedEvaluationPassesMatchOneRunAtATimeAndResume) {
  const std::string tmp = test::make_temp_dir("expprobe");
  ExperimentConfig c = test::small_experiment(tmp + "/runs");
  c.tokens = 30000;
  c.probing = true;
  c.probe_train = 40;
  c.probe_test = 30;
  c.persistence_texts = 20;
  c.probe_context = 40;
  c.core_context = 48;
  c.probe_tasks = small_probe_tasks(tmp);
  const auto rows = run_experiment(c);
  ASSERT_EQ(rows.size(), 3u);
  for (const auto& r : rows) EXPECT_TRUE(r.contains("probe_accuracy")) << r.dump();
  for (int i = 1; i <= 3; ++i)
    for (const char* f : {"eval_core.json", "eval_sparse_probing.json", "probe_persistence.json", "stability.json"})
      EXPECT_TRUE(file_exists(c.out_dir + "/run_" + std::to_string(i) + "/" + f)) << i << f;

  auto model = load_model(c.model, cpu_backend());
  const ProbeSuite suite = load_probe_suite(c.probe_tasks, c.shared_root);
  CoreEvalConfig cc;
  cc.corpus = c.heldout_corpus;
  cc.n_contexts = c.core_contexts;
  cc.context_size = c.core_context;
  cc.progress = false;
  ProbingConfig pc;
  pc.n_train = c.probe_train;
  pc.n_test = c.probe_test;
  pc.context_size = c.probe_context;
  pc.progress = false;
  for (int i = 1; i <= 3; ++i) {
    const std::string dir = c.out_dir + "/run_" + std::to_string(i);
    const Sae sae = load_saelens(dir + "/sae", cpu_backend());
    const auto core = nlohmann::json::parse(read_file(dir + "/eval_core.json"));
    EXPECT_EQ(core["eval_config"]["context_size"], 48);
    const auto one_core = core_result_json(eval_core(*model, sae, c.hook, cc), cc, read_saelens_cfg(dir + "/sae"),
                                           model->config().name);
    expect_near_numbers(core["eval_result_metrics"], one_core["eval_result_metrics"], dir + " core");
    const auto probing = nlohmann::json::parse(read_file(dir + "/eval_sparse_probing.json"));
    EXPECT_EQ(probing["eval_config"]["context_length"], 40);
    const auto one_probing = sparse_probing(*model, sae, c.hook, suite, pc, read_saelens_cfg(dir + "/sae"));
    expect_near_numbers(probing["eval_result_metrics"], one_probing["eval_result_metrics"], dir + " probing");
    EXPECT_EQ(probing["eval_result_unstructured"]["tasks"].size(), 3u);
    const auto persistence = nlohmann::json::parse(read_file(dir + "/probe_persistence.json"));
    ProbingConfig ppc;
    ppc.context_size = c.probe_context;
    ppc.progress = false;
    const auto one_persistence = probe_persistence(*model, dir, c.hook, suite, ppc, c.persistence_texts);
    EXPECT_EQ(persistence["tasks"], one_persistence["tasks"]) << dir;
    EXPECT_EQ(persistence["checkpoints"], one_persistence["checkpoints"]) << dir;
  }

  // Killed before some outputs were written: only those are recomputed.
  const std::string kept_core = read_file(c.out_dir + "/run_1/eval_core.json");
  const std::string kept_probing = read_file(c.out_dir + "/run_3/eval_sparse_probing.json");
  std::filesystem::remove(c.out_dir + "/run_2/eval_core.json");
  std::filesystem::remove(c.out_dir + "/run_2/eval_sparse_probing.json");
  std::filesystem::remove(c.out_dir + "/run_1/probe_persistence.json");
  const auto resumed = run_experiment(c);
  EXPECT_EQ(read_file(c.out_dir + "/run_1/eval_core.json"), kept_core);
  EXPECT_EQ(read_file(c.out_dir + "/run_3/eval_sparse_probing.json"), kept_probing);
  for (const char* f : {"run_2/eval_core.json", "run_2/eval_sparse_probing.json", "run_1/probe_persistence.json"})
    EXPECT_TRUE(file_exists(c.out_dir + "/" + f)) << f;
  ASSERT_EQ(resumed.size(), rows.size());
  for (size_t i = 0; i < rows.size(); ++i) expect_near_numbers(resumed[i], rows[i], "row " + std::to_string(i));
  // Everything present: nothing to do.
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(run_experiment(c), resumed);
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 5.0);
}

TEST(Experiment, ContextSizesOfTheEvaluationsAreSettings) {
  const std::string dir = test::make_temp_dir("expctx");
  test::write_text(dir + "/ctx.toml", "[experiment]\nprobe_context = 64\ncore_context = 32\n");
  const ExperimentConfig c = load_experiment_config(dir + "/ctx.toml", test::shared_root());
  EXPECT_EQ(c.probe_context, 64);
  EXPECT_EQ(c.core_context, 32);
  const ExperimentConfig d = load_experiment_config("", test::shared_root());
  EXPECT_EQ(d.probe_context, 128);
  EXPECT_EQ(d.core_context, 128);
  test::write_text(dir + "/bad.toml", "[experiment]\ncore_context = 1\n");
  EXPECT_NE(test::error_of([&] { load_experiment_config(dir + "/bad.toml", test::shared_root()); }).find("core_context"),
            std::string::npos);
  test::write_text(dir + "/bad2.toml", "[experiment]\nprobe_context = \"long\"\n");
  EXPECT_THROW(load_experiment_config(dir + "/bad2.toml", test::shared_root()), Error);
}

// Feature absorption in the experiment: one LM pass over the first-letter prompts feeds every run,
// each run's eval_absorption.json equals evaluating that SAE alone, the summary rows carry it, and a
// template the tokenizer splits records the reason in absorption_skipped.json instead of failing.
TEST(Experiment, AbsorptionOfEveryRunSharesOneLmPassAndSkipsWithAReason) {
  const std::string tmp = test::make_temp_dir("expabs");
  ExperimentConfig c = test::small_experiment(tmp + "/skipped");
  c.tokens = 20000;
  c.dashboard_tokens = 0;
  // SAEBench's template at −6: TinyStories-656K's tokenizer does not leave the word there.
  const auto skipped = run_experiment(c);
  for (int i = 1; i <= 3; ++i) {
    const std::string dir = c.out_dir + "/run_" + std::to_string(i);
    ASSERT_TRUE(file_exists(dir + "/absorption_skipped.json")) << dir;
    EXPECT_FALSE(file_exists(dir + "/eval_absorption.json"));
    EXPECT_NE(read_file(dir + "/absorption_skipped.json").find("is not the word"), std::string::npos);
    EXPECT_FALSE(skipped[i - 1].contains("absorption_fraction"));
  }

  // The calculator's own template, with every letter reported (a 2-layer model's probe is weak).
  const std::string cfg_path = tmp + "/abs.toml";
  test::write_text(cfg_path, "[absorption]\nprompt_template = \"{word}:\"\nprompt_token_pos = -2\nmin_probe_f1 = -1.0\n"
                             "min_letters = 1\nmin_words_per_letter = 1\nwords = 400\n");
  const ExperimentConfig from_file = load_experiment_config(cfg_path, test::shared_root());
  EXPECT_EQ(from_file.absorption_eval.max_words, 400);
  EXPECT_EQ(from_file.absorption_eval.prompt_token_pos, -2);
  c.absorption_eval = from_file.absorption_eval;
  c.out_dir = tmp + "/runs";
  const auto rows = run_experiment(c);
  auto model = load_model(c.model, cpu_backend());
  AbsorptionConfig ac = c.absorption_eval;
  ac.progress = false;
  const AbsorptionData data = absorption_data(*model, c.hook, ac);
  for (int i = 1; i <= 3; ++i) {
    const std::string dir = c.out_dir + "/run_" + std::to_string(i);
    ASSERT_TRUE(file_exists(dir + "/eval_absorption.json")) << dir;
    const auto shared = nlohmann::json::parse(read_file(dir + "/eval_absorption.json"));
    const Sae sae = load_saelens(dir + "/sae", cpu_backend());
    const auto alone = absorption_json(absorption_eval(sae, data, ac), data, ac, model->config().name,
                                       read_saelens_cfg(dir + "/sae"));
    EXPECT_EQ(shared["eval_result_metrics"], alone["eval_result_metrics"]) << dir;
    EXPECT_EQ(shared["eval_result_details"], alone["eval_result_details"]) << dir;
    EXPECT_EQ(rows[i - 1]["absorption_fraction"], alone["eval_result_metrics"]["mean"]["mean_absorption_fraction_score"]);
    // Runs 2 and 3 are hierarchical: the share of absorption by the main parent's children.
    EXPECT_EQ(shared["eval_result_unstructured"].contains("saelab_hierarchy"), i > 1) << dir;
  }
  // Everything present: a re-run does no LM work for absorption.
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(run_experiment(c), rows);
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 5.0);

  test::write_text(cfg_path, "[absorption]\nprompt_token_pos = 3\n");
  EXPECT_NE(test::error_of([&] { load_experiment_config(cfg_path, test::shared_root()); }).find("must be negative"),
            std::string::npos);
  test::write_text(cfg_path, "[absorption]\nwordz = 3\n");
  EXPECT_NE(test::error_of([&] { load_experiment_config(cfg_path, test::shared_root()); }).find("unknown [absorption] setting 'wordz'"),
            std::string::npos);
}
