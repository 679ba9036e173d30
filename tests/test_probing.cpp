#include <gtest/gtest.h>

#include <random>

#include "saelab/atomic_file.hpp"
#include "saelab/harvest.hpp"
#include "saelab/lm.hpp"
#include "saelab/sae_io.hpp"
#include "saelab/train.hpp"
#include "saelab/sparse_probing.hpp"
#include "test_util.hpp"

using namespace saelab;

// A planted feature among noise features: top-1 selection finds it and the probe on it alone
// is nearly perfect.
TEST(SparseProbing, TopOneFindsAPlantedFeature) {
  std::mt19937_64 rng(5);
  std::normal_distribution<float> nd;
  const int D = 300, n = 400, m = 200;
  auto make = [&](int count, std::vector<float>& X, std::vector<int>& y) {
    X.assign(static_cast<size_t>(count) * D, 0.f);
    y.resize(count);
    for (int i = 0; i < count; ++i) {
      y[i] = i % 2;
      for (int j = 0; j < D; ++j) X[i * D + j] = std::max(0.f, nd(rng));  // sparse, latent-like
      X[i * D + 123] = y[i] ? 2.f + std::abs(nd(rng)) : 0.3f * std::abs(nd(rng));
    }
  };
  std::vector<float> tr, te;
  std::vector<int> ytr, yte;
  make(n, tr, ytr);
  make(m, te, yte);
  const ProbeScores s = probe_task(tr, ytr, te, yte, D, {1, 2, 5});
  ASSERT_EQ(s.acc.size(), 4u);  // k = 1, 2, 5, then all
  EXPECT_GT(s.acc[0], 0.95);
  EXPECT_GT(s.f1[0], 0.95);
}

namespace {
const LlamaModel& model() {
  static auto m = load_model(test::shared_root() + "/models/tinystories-656k", cpu_backend());
  return *m;
}
const ProbeSuite& suite() {
  static const ProbeSuite s = load_probe_suite(std::string(SAELAB_SOURCE_DIR) + "/data/probe_tasks.json", test::shared_root());
  return s;
}
}  // namespace

// As in the seed's baseline: an SAE whose weights are all zero has no information, so its probes sit
// at chance, while the LLM's raw activations separate the tasks. The JSON has SAEBench's layout.
TEST(SparseProbing, ZeroSaeIsAtChanceAndTheResultHasSaeBenchLayout) {
  SaeConfig c;
  c.d_in = 128;
  c.d_sae = 256;
  c.hook_name = "blocks.0.hook_resid_post";
  Sae zero(c, cpu_backend());  // zero-initialised
  ProbingConfig pc;
  pc.n_train = 80;
  pc.n_test = 60;
  pc.progress = false;
  pc.only_tasks = {"language/en", "code/Python", "ag_news/Sports"};
  const auto j = sparse_probing(model(), zero, c.hook_name, suite(), pc, nlohmann::json{{"d_sae", 256}});
  EXPECT_EQ(j["eval_type_id"], "sparse_probing");
  const auto& sae = j["eval_result_metrics"]["sae"];
  const auto& llm = j["eval_result_metrics"]["llm"];
  for (const char* k : {"sae_test_accuracy", "sae_top_1_test_accuracy", "sae_top_50_test_accuracy"})
    EXPECT_NEAR(sae[k].get<double>(), 0.5, 0.02) << k;
  EXPECT_GT(llm["llm_test_accuracy"].get<double>(), 0.8);
  EXPECT_TRUE(llm.contains("llm_top_5_test_f1"));
  EXPECT_EQ(j["eval_config"]["k_values"], (std::vector<int>{1, 2, 5, 10, 20, 50}));
  EXPECT_EQ(j["eval_result_details"].size(), 3u);  // one entry per family present
  EXPECT_EQ(j["eval_result_unstructured"]["tasks"].size(), 3u);
  for (const auto& d : j["eval_result_details"]) EXPECT_TRUE(d.contains("dataset_name") && d.contains("sae_top_1_test_f1"));
  const std::string path = test::make_temp_dir("probing") + "/result.json";
  write_file_atomic(path, j.dump(2));
  EXPECT_EQ(nlohmann::json::parse(read_file(path)), j);  // written and read back unchanged
}

TEST(SparseProbing, PoolingIgnoresPaddingAndSpecialTokens) {
  // A text pooled alone and pooled in a batch beside a longer one: padding must not change it.
  const std::vector<std::string> one{"The cat sat."}, two{"The cat sat.", "A much longer text about a dog in the park today."};
  const PooledFeatures a = pool_features(model(), nullptr, "blocks.1.hook_resid_post", one, 128, 8);
  const PooledFeatures b = pool_features(model(), nullptr, "blocks.1.hook_resid_post", two, 128, 8);
  std::vector<float> first(b.raw.begin(), b.raw.begin() + 128);
  EXPECT_LE(test::rel_error(first, a.raw), 1e-6);
}

// The probing tasks' top-k latents across a run's checkpoints: the final checkpoint agrees with
// itself, earlier ones are partly different, and the final selection is the one the exported SAE
// (activation scale folded in) gives.
TEST(ProbePersistence, FinalCheckpointMatchesTheExportAndEarlierOnesDiffer) {
  const std::string dir = test::make_temp_dir("persist");
  HarvestConfig h;
  h.model_path = test::shared_root() + "/models/tinystories-656k";
  h.corpus = {test::shared_root() + "/corpus/gutenberg/carroll-alice.txt"};
  h.out_dir = dir + "/acts";
  h.max_tokens = 20000;
  h.progress = false;
  harvest(h, &model());
  TrainConfig c;
  c.activations = h.out_dir;
  c.out_dir = dir + "/run";
  c.d_sae = 256;
  c.batch_size = 256;
  c.total_tokens = 40000;
  c.lr = 1e-3f;
  c.l1_coefficient = 2.f;
  c.progress = false;
  train_sae(c);
  ProbingConfig pc;
  pc.progress = false;
  pc.only_tasks = {"language/en", "code/Python", "ag_news/Sports"};
  const auto j = probe_persistence(model(), c.out_dir, "blocks.0.hook_resid_post", suite(), pc, 60, {1, 5, 20});
  ASSERT_EQ(j["checkpoints"].size(), 5u);
  ASSERT_EQ(j["tasks"].size(), 3u);
  const auto& last = j["checkpoints"].back();
  EXPECT_EQ(last["fraction"].get<double>(), 1.0);
  for (const char* k : {"1", "5", "20"}) EXPECT_EQ(last["mean_persistence"][k].get<double>(), 1.0) << k;
  for (const auto& ck : j["checkpoints"])
    for (const auto& [k, v] : ck["mean_persistence"].items()) EXPECT_TRUE(v >= 0.0 && v <= 1.0) << k;
  EXPECT_LT(j["checkpoints"][0]["mean_persistence"]["20"].get<double>(), 1.0) << "10% of training is not the end";

  Sae exported = load_saelens(c.out_dir + "/sae", cpu_backend());
  for (const auto& t : j["tasks"]) {
    const ProbeTask* task = nullptr;
    for (const auto& s : suite().tasks)
      if (s.name == t["task"]) task = &s;
    ASSERT_NE(task, nullptr);
    const ProbeSplit sp = make_probe_split(suite().dataset(task->dataset), task->positive, 60, 0, pc.seed);
    const PooledFeatures f = pool_features(model(), &exported, "blocks.0.hook_resid_post", sp.train_text,
                                           pc.context_size, pc.batch_size);
    EXPECT_EQ(top_k_by_mean_difference(f.sae, sp.train_label, f.F, 20), t["final_top_latents"].get<std::vector<int>>())
        << t["task"];
  }
}
