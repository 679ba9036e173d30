#include <gtest/gtest.h>

#include <random>

#include "saelab/activation_loader.hpp"
#include "saelab/analysis.hpp"
#include "saelab/sae_io.hpp"
#include "saelab/synthetic.hpp"
#include "saelab/train.hpp"
#include "test_util.hpp"

using namespace saelab;

TEST(MatchDecoders, IdentityPermutationAndRandom) {
  std::mt19937_64 rng(1);
  std::normal_distribution<float> nd;
  const int F = 50, d = 64;
  std::vector<float> A(F * d), B(F * d), P(F * d);
  for (auto& v : A) v = nd(rng);
  for (auto& v : B) v = nd(rng);
  for (int i = 0; i < F; ++i)
    for (int j = 0; j < d; ++j) P[((i * 7) % F) * d + j] = 3.f * A[i * d + j];  // permuted and rescaled
  Backend& be = cpu_backend();
  EXPECT_NEAR(match_decoders(be, A, F, A, F, d).frac_above_09, 1.0, 1e-12);
  const MatchStats p = match_decoders(be, A, F, P, F, d);
  EXPECT_NEAR(p.frac_above_09, 1.0, 1e-12);
  EXPECT_NEAR(p.mean_best, 1.0, 1e-5);
  const MatchStats r = match_decoders(be, A, F, B, F, d);
  EXPECT_EQ(r.frac_above_07, 0.0);
  EXPECT_LT(r.mean_best, 0.6);
}

// On a planted hierarchy: children add what parents alone miss, fire only with their parent, and
// (orthogonal_children) refine rather than repeat it; checkpoints converge toward the final SAE.
TEST(Analysis, CompositionAndStabilityOfAHierarchicalRun) {
  const std::string dir = test::make_temp_dir("analysis");
  test::write_planted_hierarchy(dir + "/acts", 100000, 11);
  const TrainConfig c = test::planted_hierarchy_training(dir + "/acts", dir + "/run", 1000000);
  train_sae(c);

  Sae sae = load_saelens(c.out_dir + "/sae", cpu_backend());
  const ActivationSample x = sample_activations(read_activation_manifest(c.activations), 20000, 20000);
  const auto comp = composition_quality(sae, x.rows, x.n);
  const double ev_p = comp["explained_variance_parents_only"], ev = comp["explained_variance_parents_and_children"];
  EXPECT_GT(ev, 0.9);
  EXPECT_LT(ev_p, ev - 0.02);
  EXPECT_GT(comp["parent_share_of_reconstruction_variance"].get<double>(), 0.5);
  EXPECT_LT(comp["mean_abs_cos_child_parent_decoder"].get<double>(), 1e-3);
  const double cond = comp["p_child_fires_given_parent"];
  EXPECT_GT(cond, 0.0);
  EXPECT_LE(cond, 1.0);

  const auto st = concept_stability(c.out_dir);
  ASSERT_EQ(st["phases"].size(), 5u);
  EXPECT_DOUBLE_EQ(st["phases"][4]["vs_final"]["frac_matched_above_0.9"].get<double>(), 1.0);
  EXPECT_GE(st["phases"][3]["vs_final"]["mean_best_cos"].get<double>(),
            st["phases"][0]["vs_final"]["mean_best_cos"].get<double>());
  EXPECT_TRUE(st["phases"][1].contains("vs_previous"));
}
