#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>

#include "saelab/atomic_file.hpp"
#include "saelab/error.hpp"
#include "saelab/lm.hpp"
#include "saelab/safetensors.hpp"
#include "test_util.hpp"

using saelab::test::error_of;

using namespace saelab;
using test::kTolF32Model;
using test::rel_error;

namespace {
std::unique_ptr<LanguageModel> tinystories() {
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
  ASSERT_EQ(got.size(), 11u);  // hook_embed + 5 points in each of 2 blocks
  int compared = 0;
  for (const auto& [name, v] : got)
    if (g.has(name)) {
      EXPECT_LE(rel_error(v, g.read_f32(name)), kTolF32Model) << name;
      ++compared;
    }
  EXPECT_EQ(compared, 8);
  // The points the golden lacks, by their definitions: the embedding enters block 0, and the
  // residual mid-block is the residual before it plus the attention output.
  EXPECT_EQ(got["hook_embed"], got["blocks.0.hook_resid_pre"]);
  for (int l = 0; l < 2; ++l) {
    const auto& pre = got[fmt::format("blocks.{}.hook_resid_pre", l)];
    const auto& att = got[fmt::format("blocks.{}.hook_attn_out", l)];
    std::vector<float> mid(pre.size());
    for (size_t i = 0; i < pre.size(); ++i) mid[i] = pre[i] + att[i];
    EXPECT_EQ(got[fmt::format("blocks.{}.hook_resid_mid", l)], mid) << l;
  }
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

// FuzzRegression: inputs the fuzz targets found; BadInput: defects found while writing them (fuzz/,
// docs/reliability.md "Bad inputs found by fuzzing"). Each must be a saelab::Error naming the file.
namespace {
std::string bytes_of(const std::vector<int32_t>& header, size_t n_floats) {
  std::string b(reinterpret_cast<const char*>(header.data()), header.size() * 4);
  return b + std::string(n_floats * 4, '\0');
}
}  // namespace

TEST(FuzzRegression, HfConfigWithHiddenSizeNotAMultipleOfHeads) {
  // fuzz_hf_config: hidden_size 1 over 2 heads gave head_dim 0, which parse_hf_config accepted.
  const std::string dir = test::make_temp_dir("fuzz");
  test::write_text(dir + "/config.json", R"({"model_type": "llama", "hidden_size": 1, "intermediate_size": 16,
      "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 1, "vocab_size": 16})");
  const std::string msg = error_of([&] { parse_hf_config(dir + "/config.json"); });
  EXPECT_NE(msg.find("config.json"), std::string::npos) << msg;
  EXPECT_NE(msg.find("hidden_size 1 is not a multiple of num_attention_heads 2"), std::string::npos) << msg;
}

TEST(BadInput, HfConfigSizesPastIntRangeOrDisagreeingWithTheWeights) {
  const std::string model = test::shared_root() + "/models/tinystories-656k";
  const std::string dir = test::make_temp_dir("fuzz");
  nlohmann::json cfg = nlohmann::json::parse(read_file(model + "/config.json"));
  // 2^32 + 128 used to wrap to int 128, a valid width.
  cfg["hidden_size"] = (int64_t{1} << 32) + 128;
  test::write_text(dir + "/config.json", cfg.dump());
  EXPECT_NE(error_of([&] { parse_hf_config(dir + "/config.json"); }).find("4294967424"), std::string::npos);
  // A config far larger than the weights: the model was allocated from it (2^40 floats) before any
  // tensor shape was compared.
  for (const char* f : {"model.safetensors", "tokenizer.json"})
    std::filesystem::copy_file(model + "/" + f, dir + "/" + f);
  cfg["hidden_size"] = 1 << 20;
  cfg["vocab_size"] = 1 << 20;
  test::write_text(dir + "/config.json", cfg.dump());
  const std::string msg = error_of([&] { load_model(dir, cpu_backend()); });
  EXPECT_NE(msg.find("has shape [2048, 128], but config.json implies [1048576, 1048576]"), std::string::npos) << msg;
  cfg["hidden_size"] = 128;
  cfg["num_hidden_layers"] = 1 << 30;
  test::write_text(dir + "/config.json", cfg.dump());
  EXPECT_NE(error_of([&] { load_model(dir, cpu_backend()); }).find("num_hidden_layers is 1073741824"), std::string::npos);
}

TEST(BadInput, Llama2cHeaderThatOverflowsOrHasAnOddHeadSize) {
  const std::string dir = test::make_temp_dir("fuzz");
  std::filesystem::copy_file(test::shared_root() + "/models/stories260K/tok512.bin", dir + "/tok512.bin");
  // Fields of 2^24 made the weight count overflow int64 (undefined behaviour) before it was compared.
  const int32_t big = 1 << 24;
  test::write_text(dir + "/big.bin", bytes_of({big, big, big, 1, 1, big, big}, 16));
  const std::string msg = error_of([&] { load_model(dir + "/big.bin", cpu_backend()); });
  EXPECT_NE(msg.find("big.bin"), std::string::npos) << msg;
  EXPECT_NE(msg.find("header implies more than 2^63 floats"), std::string::npos) << msg;
  // A vocabulary size of INT32_MIN went through std::abs (undefined) before the range check.
  test::write_text(dir + "/min.bin", bytes_of({8, 8, 1, 2, 2, INT32_MIN, 4}, 16));
  EXPECT_NE(error_of([&] { load_model(dir + "/min.bin", cpu_backend()); }).find("header field 5 is -2147483648"),
            std::string::npos);
  std::filesystem::remove(dir + "/min.bin");
  // dim 6 over 2 heads: head size 3. It loaded, and the first forward aborted in RoPE.
  const int64_t d = 6, ff = 4, V = 512, T = 2, hd = 3;
  test::write_text(dir + "/odd.bin",
                   bytes_of({6, 4, 1, 2, 2, 512, 2}, V * d + (2 * d + 4 * d * d + 3 * ff * d) + d + T * hd));
  std::filesystem::remove(dir + "/big.bin");
  EXPECT_NE(error_of([&] { load_model(dir + "/odd.bin", cpu_backend()); }).find("head size dim / n_heads = 3 must be even"),
            std::string::npos);
}
