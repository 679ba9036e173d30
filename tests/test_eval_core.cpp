#include <gtest/gtest.h>

#include <random>
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

// The multi-SAE pass runs each SAE on the same rows in the same batches as eval_core does alone, so
// the numbers agree to the last bit on a deterministic backend; this leaves room for reordered
// reductions only.
constexpr double kTolMultiSae = 1e-12;

// A topk SAE trained once for this file's tests (60k tokens of one book, 300k training tokens).
const std::string& trained_topk_sae() {
  static const std::string dir = [] {
    const std::string d = test::make_temp_dir("evalcore");
    HarvestConfig h;
    h.model_path = test::shared_root() + "/models/tinystories-656k";
    h.corpus = {test::shared_root() + "/corpus/gutenberg/carroll-alice.txt"};
    h.out_dir = d + "/acts";
    h.max_tokens = 60000;
    h.progress = false;
    harvest(h);
    TrainConfig t;
    t.activations = h.out_dir;
    t.out_dir = d + "/run";
    t.architecture = "topk";
    t.d_sae = 512;
    t.k = 16;
    t.batch_size = 512;
    t.total_tokens = 300000;
    t.lr = 1e-3f;
    t.progress = false;
    train_sae(t);
    return t.out_dir + "/sae";
  }();
  return dir;
}

// A standard SAE with seeded random weights: latents fire on some tokens, the reconstruction is poor.
Sae random_sae(int d_sae, uint64_t seed) {
  SaeConfig c;
  c.d_in = 128;
  c.d_sae = d_sae;
  c.hook_name = kHook;
  Sae sae(c, cpu_backend());
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> nd(0.f, 0.05f);
  std::vector<float> p(static_cast<size_t>(sae.params().flat.numel()));
  for (float& v : p) v = nd(rng);
  cpu_backend().upload(sae.params().flat.view(), p.data());
  return sae;
}

void expect_same(const CoreEvalResult& a, const CoreEvalResult& b, const std::string& who) {
  EXPECT_EQ(a.tokens, b.tokens) << who;
  const std::pair<const char*, std::pair<double, double>> fields[] = {
      {"ce_clean", {a.ce_clean, b.ce_clean}},
      {"ce_sae", {a.ce_sae, b.ce_sae}},
      {"ce_zero", {a.ce_zero, b.ce_zero}},
      {"kl_sae", {a.kl_sae, b.kl_sae}},
      {"kl_zero", {a.kl_zero, b.kl_zero}},
      {"mse", {a.mse, b.mse}},
      {"explained_variance", {a.explained_variance, b.explained_variance}},
      {"cossim", {a.cossim, b.cossim}},
      {"l0", {a.l0, b.l0}},
      {"l1", {a.l1, b.l1}},
      {"l2_norm_in", {a.l2_norm_in, b.l2_norm_in}},
      {"l2_norm_out", {a.l2_norm_out, b.l2_norm_out}},
      {"relative_reconstruction_bias", {a.relative_reconstruction_bias, b.relative_reconstruction_bias}},
      {"dead_fraction", {a.dead_fraction, b.dead_fraction}},
      {"dense_fraction", {a.dense_fraction, b.dense_fraction}},
      {"ce_loss_score", {a.ce_loss_score(), b.ce_loss_score()}},
      {"kl_div_score", {a.kl_div_score(), b.kl_div_score()}}};
  for (const auto& [name, v] : fields)
    EXPECT_NEAR(v.first, v.second, kTolMultiSae * std::max(1.0, std::abs(v.second))) << who << " " << name;
  ASSERT_EQ(a.density.size(), b.density.size()) << who;
  EXPECT_LE(test::rel_error(a.density, b.density), kTolMultiSae) << who;
}

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
  Sae sae = load_saelens(trained_topk_sae(), cpu_backend());
  const CoreEvalConfig c = small_eval();
  const CoreEvalResult r = eval_core(model(), sae, kHook, c);
  EXPECT_GT(r.ce_loss_score(), 0.7);
  EXPECT_LE(r.ce_loss_score(), 1.01);
  EXPECT_GT(r.explained_variance, 0.5);
  EXPECT_NEAR(r.l0, 16.0, 0.5);  // topk: exactly k active unless some of the k are ≤ 0
  EXPECT_EQ(r.density.size(), 512u);

  const auto j = core_result_json(r, c, read_saelens_cfg(trained_topk_sae()), "tinystories-656k");
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

// Several SAEs in one pass over the contexts (one clean and one zero-ablated forward per batch, one
// spliced forward per SAE) give each SAE the numbers eval_core gives it alone.
TEST(EvalCore, MultiSaePassMatchesOneSaeAtATime) {
  const Sae trained = load_saelens(trained_topk_sae(), cpu_backend());
  const Sae noisy = random_sae(256, 7), wide = random_sae(384, 8);
  SaeConfig zc;
  zc.d_in = 128;
  zc.d_sae = 64;
  zc.hook_name = kHook;
  const Sae zero(zc, cpu_backend());  // reconstructs zeros: the spliced run is the zero-ablated one
  CoreEvalConfig c = small_eval();
  c.batch_size = 3;  // a last, partial batch too
  EvalTiming tm;
  const std::vector<const Sae*> saes{&trained, &noisy, &zero, &wide};
  const std::vector<CoreEvalResult> multi = eval_core_multi(model(), saes, kHook, c, &tm);
  ASSERT_EQ(multi.size(), saes.size());
  const char* names[] = {"trained", "noisy", "zero", "wide"};
  for (size_t s = 0; s < saes.size(); ++s) expect_same(multi[s], eval_core(model(), *saes[s], kHook, c), names[s]);
  EXPECT_GT(multi[0].ce_loss_score(), 0.7);
  EXPECT_NEAR(multi[2].ce_loss_score(), 0.0, 1e-12);
  EXPECT_GT(tm.lm_s, 0.0);
  EXPECT_GT(tm.sae_s, 0.0);
  // A reconstruction function and its SAE agree too (eval_core_with is the one-SAE case).
  const std::vector<CoreEvalResult> with = eval_core_multi_with(
      model(), kHook, {0}, {[](const std::vector<float>& x, int64_t, std::vector<float>& xh, std::vector<float>& lat) {
        xh = x;
        lat.clear();
      }},
      c);
  EXPECT_DOUBLE_EQ(with[0].ce_sae, multi[0].ce_clean);
  EXPECT_NEAR(with[0].ce_zero, multi[0].ce_zero, kTolMultiSae * multi[0].ce_zero);
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
