#include <gtest/gtest.h>

#include <chrono>

#include "saelab/atomic_file.hpp"
#include "saelab/error.hpp"
#include "saelab/experiment.hpp"
#include "test_util.hpp"

using namespace saelab;


TEST(Experiment, RunsThePlanIntoRunDirectoriesAndResumes) {
  const std::string out = test::make_temp_dir("exp") + "/runs";
  const ExperimentConfig c = test::small_experiment(out);
  const auto rows = run_experiment(c);
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0]["run"], "run_1");
  EXPECT_EQ(rows[2]["alpha_mode"], "learned");
  for (const auto& r : rows) {
    EXPECT_GT(r["ce_loss_score"].get<double>(), 0.5) << r.dump();
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

TEST(Experiment, DefaultPlanIsMethodSection5AndBadConfigsAreNamed) {
  const auto runs = default_experiment_runs();
  ASSERT_EQ(runs.size(), 9u);  // vanilla, 5 manual α, learnable-dual, naive-α, topk
  EXPECT_EQ(runs[0]["name"], "vanilla");
  EXPECT_EQ(runs[6]["alpha_mode"], "learned");
  EXPECT_EQ(runs[7]["alpha_mode"], "naive");
  EXPECT_EQ(runs[8]["architecture"], "topk");
  const std::string dir = test::make_temp_dir("expcfg");
  test::write_text(dir + "/bad.toml", "[experimnt]\ntokens = 5\n");
  EXPECT_THROW(load_experiment_config(dir + "/bad.toml", test::shared_root()), Error);
  test::write_text(dir + "/bad2.toml", "[experiment]\ntokenz = 5\n");
  EXPECT_THROW(load_experiment_config(dir + "/bad2.toml", test::shared_root()), Error);
}
