#include <gtest/gtest.h>

#include "saelab/lm.hpp"
#include "saelab/safetensors.hpp"
#include "test_util.hpp"

using namespace saelab;
using test::kTolF32Model;
using test::rel_error;

namespace {
std::unique_ptr<LlamaModel> tinystories() {
  return load_model(test::shared_root() + "/models/tinystories-656k", cpu_backend());
}
}  // namespace

// The golden text of shared/README.md: stories260K, greedy from BOS, 60 steps.
TEST(Llama2c, Stories260KGreedyReproducesGoldenText) {
  auto m = load_model(test::shared_root() + "/models/stories260K", cpu_backend());
  EXPECT_EQ(m->config().d_model, 64);
  EXPECT_EQ(m->config().n_layers, 5);
  EXPECT_EQ(m->config().n_kv_heads, 4);
  const auto ids = generate_greedy(*m, {m->tokenizer().bos_id()}, 60);
  EXPECT_EQ(m->tokenizer().decode(ids, true),
            "Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, "
            "she saw a big, red ball. She wanted to play with it, but it was too high");
}

// Logits and every hook activation equal Hugging Face transformers (scripts/reference/dump_golden.py).
TEST(HfLlama, TinyStoriesMatchesTransformersAtEveryHook) {
  auto m = tinystories();
  SafetensorsFile g(test::test_data("tinystories656k_golden.safetensors"));
  ASSERT_EQ(g.metadata().at("saelab_golden"), "1");
  const std::vector<int32_t> ids = g.read_i32("input_ids");
  const int T = static_cast<int>(ids.size());
  Hooks hooks;
  std::map<std::string, std::vector<float>> got;
  for (const auto& name : m->hook_names())
    hooks.observe(name, [&, name](TensorView a) { got[name] = to_host_f32(m->backend(), a); });
  Tensor logits = m->forward(ids, 1, T, &hooks);
  EXPECT_LE(rel_error(to_host_f32(m->backend(), logits), g.read_f32("logits")), kTolF32Model);
  ASSERT_EQ(got.size(), 8u);
  for (const auto& [name, v] : got) EXPECT_LE(rel_error(v, g.read_f32(name)), kTolF32Model) << name;
}

TEST(HfLlama, TinyStoriesGreedyContinuationIsGolden) {
  auto m = tinystories();
  SafetensorsFile g(test::test_data("tinystories656k_golden.safetensors"));
  const std::vector<int32_t> golden = g.read_i32("greedy_ids");
  const int prompt_len = g.read_i32("greedy_prompt_len")[0];
  std::vector<int32_t> prompt{m->tokenizer().bos_id()};
  for (int32_t t : m->tokenizer().encode("Once upon a time")) prompt.push_back(t);
  ASSERT_EQ(static_cast<int>(prompt.size()), prompt_len);
  EXPECT_EQ(generate_greedy(*m, prompt, static_cast<int>(golden.size()) - prompt_len), golden);
  EXPECT_EQ(m->tokenizer().decode(golden, true).rfind("Once upon a time, a little girl named Lily", 0), 0u);
}

TEST(HfLlama, BatchedForwardEqualsSingleSequences) {
  auto m = tinystories();
  const int T = 9;
  std::vector<int32_t> a{1, 400, 33, 77, 12, 900, 5, 6, 7}, b{1, 8, 1999, 3, 44, 45, 46, 300, 2};
  std::vector<int32_t> ab(a);
  ab.insert(ab.end(), b.begin(), b.end());
  const auto la = to_host_f32(m->backend(), m->forward(a, 1, T));
  const auto lb = to_host_f32(m->backend(), m->forward(b, 1, T));
  auto lab = to_host_f32(m->backend(), m->forward(ab, 2, T));
  std::vector<float> first(lab.begin(), lab.begin() + la.size()), second(lab.begin() + la.size(), lab.end());
  EXPECT_LE(rel_error(first, la), 1e-6);
  EXPECT_LE(rel_error(second, lb), 1e-6);
}

TEST(Hooks, SpliceReplacesTheActivation) {
  auto m = tinystories();
  const std::vector<int32_t> ids{1, 400, 33, 77, 12, 900, 5};
  const int T = static_cast<int>(ids.size());
  const auto clean = to_host_f32(m->backend(), m->forward(ids, 1, T));
  // Splicing in the activation itself changes nothing.
  Hooks same;
  same.splice("blocks.0.hook_resid_post", [](TensorView) {});
  EXPECT_EQ(to_host_f32(m->backend(), m->forward(ids, 1, T, &same)), clean);
  // Zero-ablating the residual stream changes the logits, and observers see the spliced values.
  Hooks zero;
  std::vector<float> seen;
  zero.splice("blocks.0.hook_resid_post", [](TensorView a) {
    for (int64_t i = 0; i < a.numel(); ++i) a.f32()[i] = 0.f;
  });
  zero.observe("blocks.1.hook_resid_pre", [&](TensorView a) { seen = to_host_f32(cpu_backend(), a); });
  const auto ablated = to_host_f32(m->backend(), m->forward(ids, 1, T, &zero));
  EXPECT_GT(rel_error(ablated, clean), 0.1);
  for (float v : seen) EXPECT_EQ(v, 0.f);
}

TEST(Hooks, EarlyStopRunsOnlyUpToTheHookLayer) {
  auto m = tinystories();
  const std::vector<int32_t> ids{1, 5, 6, 7};
  Hooks hooks;
  int layer1_calls = 0, layer0_calls = 0;
  hooks.observe("blocks.0.hook_mlp_out", [&](TensorView) { ++layer0_calls; });
  Hooks probe_layer1 = hooks;
  probe_layer1.observe("blocks.1.hook_resid_pre", [&](TensorView) { ++layer1_calls; });
  Tensor none = m->forward(ids, 1, 4, &hooks, /*want_logits=*/false);
  EXPECT_TRUE(none.empty());
  EXPECT_EQ(layer0_calls, 1);
  m->forward(ids, 1, 4, &probe_layer1, false);
  EXPECT_EQ(layer1_calls, 1);
}

TEST(Hooks, UnknownHookNameIsAUserError) {
  auto m = tinystories();
  EXPECT_THROW(m->check_hook("blocks.7.hook_resid_post"), Error);
  EXPECT_THROW(m->check_hook("blocks.0.hook_resid_middle"), Error);
  Hooks bad;
  bad.observe("blocks.9.hook_mlp_out", [](TensorView) {});
  EXPECT_THROW(m->forward({1, 2}, 1, 2, &bad), Error);
  EXPECT_EQ(m->hook_layer("blocks.1.hook_attn_out"), 1);
}
