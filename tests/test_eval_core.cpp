#include <gtest/gtest.h>

#include <regex>

#include "saelab/eval_core.hpp"
#include "saelab/harvest.hpp"
#include "saelab/lm.hpp"
#include "saelab/sae_io.hpp"
#include "saelab/train.hpp"
#include "test_util.hpp"

using namespace saelab;

namespace {

CoreEvalConfig small_eval() {
  CoreEvalConfig c;
  c.corpus = {test::shared_root() + "/corpus/inaugural/1789-Washington.txt"};
  c.context_size = 64;
  c.batch_size = 4;
  c.n_contexts = 8;
  c.progress = false;
  return c;
}

const LlamaModel& model() {
  static auto m = load_model(test::shared_root() + "/models/tinystories-656k", cpu_backend());
  return *m;
}

const std::string kHook = "blocks.0.hook_resid_post";

}  // namespace

// Splicing the activation itself recovers everything; splicing zeros recovers nothing.
TEST(EvalCore, IdentityScoresOneAndZerosScoreZero) {
  auto identity = [](const std::vector<float>& x, int64_t, std::vector<float>& xh, std::vector<float>& lat) {
    xh = x;
    lat.clear();
  };
  const CoreEvalResult id = eval_core_with(model(), kHook, 0, identity, small_eval());
  EXPECT_GT(id.tokens, 400);
  EXPECT_DOUBLE_EQ(id.ce_sae, id.ce_clean);
  EXPECT_DOUBLE_EQ(id.ce_loss_score(), 1.0);
  EXPECT_NEAR(id.kl_sae, 0.0, 1e-12);
  EXPECT_NEAR(id.explained_variance, 1.0, 1e-12);
  EXPECT_NEAR(id.cossim, 1.0, 1e-9);
  EXPECT_GT(id.ce_zero, id.ce_clean + 1.0);  // ablating the residual stream hurts a lot

  auto zeros = [](const std::vector<float>& x, int64_t, std::vector<float>& xh, std::vector<float>& lat) {
    xh.assign(x.size(), 0.f);
    lat.clear();
  };
  const CoreEvalResult z = eval_core_with(model(), kHook, 0, zeros, small_eval());
  EXPECT_NEAR(z.ce_loss_score(), 0.0, 1e-12);
  EXPECT_NEAR(z.kl_div_score(), 0.0, 1e-12);
  EXPECT_NEAR(z.ce_zero, id.ce_zero, 1e-9);
}

TEST(EvalCore, TrainedSaeRecoversMostOfTheLossAndWritesSaeBenchJson) {
  const std::string dir = test::make_temp_dir("evalcore");
  HarvestConfig h;
  h.model_path = test::shared_root() + "/models/tinystories-656k";
  h.corpus = {test::shared_root() + "/corpus/gutenberg/carroll-alice.txt"};
  h.out_dir = dir + "/acts";
  h.max_tokens = 60000;
  h.progress = false;
  harvest(h);
  TrainConfig t;
  t.activations = h.out_dir;
  t.out_dir = dir + "/run";
  t.architecture = "topk";
  t.d_sae = 512;
  t.k = 16;
  t.batch_size = 512;
  t.total_tokens = 300000;
  t.lr = 1e-3f;
  t.progress = false;
  train_sae(t);
  Sae sae = load_saelens(t.out_dir + "/sae", cpu_backend());
  const CoreEvalConfig c = small_eval();
  const CoreEvalResult r = eval_core(model(), sae, kHook, c);
  EXPECT_GT(r.ce_loss_score(), 0.7);
  EXPECT_LE(r.ce_loss_score(), 1.01);
  EXPECT_GT(r.explained_variance, 0.5);
  EXPECT_NEAR(r.l0, 16.0, 0.5);  // topk: exactly k active unless some of the k are ≤ 0
  EXPECT_EQ(r.density.size(), 512u);

  const auto j = core_result_json(r, c, read_saelens_cfg(t.out_dir + "/sae"), "tinystories-656k");
  EXPECT_EQ(j["eval_type_id"], "core");
  EXPECT_TRUE(std::regex_match(j["eval_id"].get<std::string>(),
                               std::regex("[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")));
  EXPECT_GT(j["datetime_epoch_millis"].get<int64_t>(), 1700000000000);
  const auto& m = j["eval_result_metrics"];
  for (const char* group : {"model_behavior_preservation", "model_performance_preservation", "reconstruction_quality",
                            "shrinkage", "sparsity", "misc_metrics", "token_stats"})
    EXPECT_TRUE(m.contains(group)) << group;
  EXPECT_DOUBLE_EQ(m["model_performance_preservation"]["ce_loss_score"].get<double>(), r.ce_loss_score());
  EXPECT_EQ(j["sae_cfg_dict"]["d_sae"], 512);
  EXPECT_EQ(nlohmann::json::parse(j.dump()), j);  // round-trips
}

TEST(EvalCore, WidthMismatchIsRefusedNamingBothValues) {
  SaeConfig c;
  c.d_in = 64;
  c.d_sae = 16;
  Sae sae(c, cpu_backend());
  try {
    eval_core(model(), sae, kHook, small_eval());
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("d_in 64"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("128"), std::string::npos) << e.what();
  }
}
