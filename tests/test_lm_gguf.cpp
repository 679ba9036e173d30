// SmolLM2-135M-Instruct from its GGUF file (Q4_1 / Q8_0 / F32) against the independent numpy
// reference in shared/models/smollm2-135m-instruct/golden. Tolerances from that folder's README:
// logits within 1e-3 absolute, resid_post within 1e-4 of the row's L2 norm, CE within 1e-4, greedy
// tokens identical.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "saelab/atomic_file.hpp"
#include "saelab/lm.hpp"
#include "gguf_builder.hpp"
#include "saelab/npy.hpp"
#include "test_util.hpp"

namespace saelab {
namespace {

using json = nlohmann::json;

constexpr double kTolLogitAbs = 1e-3;
constexpr double kTolResidRowRel = 1e-4;
constexpr double kTolCe = 1e-4;

std::string smollm_dir() { return test::shared_root() + "/models/smollm2-135m-instruct"; }
std::string golden(const std::string& f) { return smollm_dir() + "/golden/" + f; }

json golden_json(const std::string& f) { return json::parse(read_file(golden(f))); }

// A [rows, cols] f32 .npy golden.
std::vector<float> golden_npy(const std::string& f, int64_t rows, int64_t cols) {
  const NpyArray a = read_npy(golden(f));
  SAELAB_ASSERT(a.dtype == DType::F32 && a.shape == std::vector<int64_t>({rows, cols}), "golden {} shape", f);
  std::vector<float> v(static_cast<size_t>(rows * cols));
  std::memcpy(v.data(), a.bytes.data(), v.size() * sizeof(float));
  return v;
}

class SmolLM2 : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { model_ = load_model(smollm_dir(), cpu_backend()).release(); }
  static void TearDownTestSuite() {
    delete model_;
    model_ = nullptr;
  }
  static const LanguageModel& m() { return *model_; }
  static LanguageModel* model_;
};
LanguageModel* SmolLM2::model_ = nullptr;

TEST_F(SmolLM2, ConfigComesFromTheGgufMetadata) {
  const ModelConfig& c = m().config();
  EXPECT_EQ(c.source_format, "gguf");
  EXPECT_EQ(c.name, "smollm2-135m-instruct");
  EXPECT_EQ(c.n_layers, 30);
  EXPECT_EQ(c.d_model, 576);
  EXPECT_EQ(c.d_ff, 1536);
  EXPECT_EQ(c.n_heads, 9);
  EXPECT_EQ(c.n_kv_heads, 3);
  EXPECT_EQ(c.head_dim, 64);
  EXPECT_EQ(c.vocab_size, 49152);
  EXPECT_EQ(c.max_seq_len, 8192);
  EXPECT_DOUBLE_EQ(c.rope.theta, 100000.0);
  EXPECT_EQ(c.rope_style, RopeStyle::Interleaved);
  EXPECT_TRUE(c.tied_embeddings);
  EXPECT_EQ(m().tokenizer().bos_id(), 1);
  EXPECT_EQ(m().tokenizer().eos_id(), 2);
  EXPECT_FALSE(m().tokenizer().adds_bos());
  EXPECT_TRUE(m().tokenizer().is_eog(2));
}

TEST_F(SmolLM2, HookActivationsAndLogitsMatchTheReference) {
  const json a = golden_json("activations.json");
  const std::vector<int32_t> ids = a.at("token_ids").get<std::vector<int32_t>>();
  ASSERT_EQ(m().tokenizer().encode(a.at("text").get<std::string>()), ids);
  const int T = static_cast<int>(ids.size()), d = 576, V = 49152;
  const std::vector<std::string> points = {"hook_embed", "blocks.0.hook_resid_post", "blocks.5.hook_resid_post",
                                           "blocks.29.hook_resid_post"};
  std::map<std::string, std::vector<float>> got;
  Hooks hooks;
  for (const auto& p : points)
    hooks.observe(p, [&, p](TensorView act) { got[p] = to_host_f32(cpu_backend(), act); });
  const std::vector<float> logits = to_host_f32(cpu_backend(), m().forward(ids, 1, T, &hooks).view());
  for (const auto& p : points) {
    const std::vector<float> want = golden_npy("act_" + p + ".npy", T, d);
    ASSERT_EQ(got[p].size(), want.size()) << p;
    for (int t = 0; t < T; ++t) {
      double err = 0, norm = 0;
      for (int i = 0; i < d; ++i) {
        const double w = want[t * d + i], e = got[p][t * d + i] - w;
        err += e * e;
        norm += w * w;
      }
      EXPECT_LE(std::sqrt(err), kTolResidRowRel * std::sqrt(norm)) << p << " position " << t;
    }
  }
  const std::vector<float> want = golden_npy("act_logits.npy", T, V);
  double worst = 0;
  for (size_t i = 0; i < want.size(); ++i) worst = std::max(worst, std::fabs(double(logits[i]) - want[i]));
  EXPECT_LE(worst, kTolLogitAbs);
}

TEST_F(SmolLM2, CrossEntropyOfTheHeldOutTextMatches) {
  const json c = golden_json("ce_loss.json");
  const std::vector<int32_t> want_ids = c.at("token_ids").get<std::vector<int32_t>>();
  std::vector<int32_t> ids = m().tokenizer().encode(read_file(golden("ce_text.txt")));
  ASSERT_EQ(static_cast<int64_t>(ids.size()), c.at("n_text_tokens").get<int64_t>());
  ids.resize(want_ids.size());
  ASSERT_EQ(ids, want_ids);
  const int T = static_cast<int>(ids.size()), V = m().config().vocab_size;
  const std::vector<float> logits = to_host_f32(cpu_backend(), m().forward(ids, 1, T).view());
  double nll = 0;
  for (int t = 0; t + 1 < T; ++t) {
    const float* row = logits.data() + static_cast<size_t>(t) * V;
    const double mx = *std::max_element(row, row + V);
    double z = 0;
    for (int i = 0; i < V; ++i) z += std::exp(row[i] - mx);
    nll += mx + std::log(z) - row[ids[t + 1]];
  }
  EXPECT_NEAR(nll / (T - 1), c.at("mean_nll").get<double>(), kTolCe);
}

TEST_F(SmolLM2, GreedyContinuationsMatchAndStopAtEndOfGeneration) {
  const json g = golden_json("generations.json").at("generations");
  for (const auto& [prompt, case_] : g.items()) {
    const std::vector<int32_t> prompt_ids = case_.at("prompt_ids").get<std::vector<int32_t>>();
    ASSERT_EQ(m().tokenizer().encode(prompt), prompt_ids) << prompt;
    const std::vector<int32_t> want = case_.at("golden").at("new_ids").get<std::vector<int32_t>>();
    const std::vector<int32_t> all = generate_greedy(m(), prompt_ids, static_cast<int>(want.size()));
    EXPECT_EQ(std::vector<int32_t>(all.begin() + prompt_ids.size(), all.end()), want) << prompt;
    const json eos_at = case_.at("golden").at("first_eos_index");
    const std::vector<int32_t> stopped = generate_greedy(m(), prompt_ids, static_cast<int>(want.size()), true);
    const size_t n_new = stopped.size() - prompt_ids.size();
    if (eos_at.is_null()) {
      EXPECT_EQ(n_new, want.size()) << prompt;
    } else {  // the stop keeps the end-of-generation token itself
      EXPECT_EQ(n_new, eos_at.get<size_t>() + 1) << prompt;
      EXPECT_EQ(stopped.back(), 2) << prompt;
    }
  }
}

TEST(SmolLM2Cli, GeneratePrintsTheGoldenContinuationAndItsStop) {
  const auto r = test::run_cli("generate --model '" + smollm_dir() + "' --prompt 'The capital of France is' --steps 40");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "The capital of France is Paris.\n\nThe answer is: 2018-01-22 12:12:53.<|im_end|>\n");
  const auto on = test::run_cli("generate --model '" + smollm_dir() +
                                "' --prompt 'The capital of France is' --steps 40 --no-stop");
  ASSERT_EQ(on.exit_code, 0) << on.err;
  EXPECT_EQ(on.out,
            "The capital of France is Paris.\n\nThe answer is: 2018-01-22 12:12:53.<|im_end|>\n<|im_start|>assistant\n"
            "The answer is: \n");
}

// ---- the loader's refusals, on a tiny llama GGUF built in memory (d 8, 1 block, 2 heads / 1 KV head)

namespace g = test::gguf;

std::string str_array(const std::vector<std::string>& v) {
  g::Bytes b;
  for (const auto& x : v) b.str(x);
  return g::val_arr(g::STRING, v.size(), b.b);
}

// The tensors of a 1-block llama with d = 8, ff = 16, 2 heads of 4, 1 KV head, vocab 6 (F32).
std::vector<g::TensorSpec> tiny_tensors() {
  auto t = [](std::string name, std::vector<int64_t> ne) {
    int64_t n = 1;
    for (int64_t x : ne) n *= x;
    std::vector<float> w(static_cast<size_t>(n));
    for (size_t i = 0; i < w.size(); ++i) w[i] = 0.01f * static_cast<float>((i * 37) % 17) - 0.08f;
    return g::tensor_spec(std::move(name), std::move(ne), 0, g::f32_bytes(w));
  };
  return {t("token_embd.weight", {8, 6}),      t("blk.0.attn_norm.weight", {8}),   t("blk.0.attn_q.weight", {8, 8}),
          t("blk.0.attn_k.weight", {8, 4}),    t("blk.0.attn_v.weight", {8, 4}),   t("blk.0.attn_output.weight", {8, 8}),
          t("blk.0.ffn_norm.weight", {8}),     t("blk.0.ffn_gate.weight", {8, 16}), t("blk.0.ffn_up.weight", {8, 16}),
          t("blk.0.ffn_down.weight", {16, 8}), t("output_norm.weight", {8})};
}

g::GgufSpec tiny_llama() {
  g::GgufSpec s;
  std::string scores, types;
  for (int i = 0; i < 6; ++i) {
    scores += g::Bytes().put<float>(-static_cast<float>(i)).b;
    types += g::Bytes().put<int32_t>(i < 3 ? 3 : 1).b;
  }
  s.kvs = {{"general.architecture", g::val_str("llama")},
           {"llama.embedding_length", g::val<uint32_t>(g::U32, 8)},
           {"llama.feed_forward_length", g::val<uint32_t>(g::U32, 16)},
           {"llama.block_count", g::val<uint32_t>(g::U32, 1)},
           {"llama.attention.head_count", g::val<uint32_t>(g::U32, 2)},
           {"llama.attention.head_count_kv", g::val<uint32_t>(g::U32, 1)},
           {"llama.context_length", g::val<uint32_t>(g::U32, 64)},
           {"llama.attention.layer_norm_rms_epsilon", g::val<float>(g::F32, 1e-5f)},
           {"tokenizer.ggml.model", g::val_str("llama")},
           {"tokenizer.ggml.tokens", str_array({"<unk>", "<s>", "</s>", "\xe2\x96\x81", "a", "b"})},
           {"tokenizer.ggml.scores", g::val_arr(g::F32, 6, scores)},
           {"tokenizer.ggml.token_type", g::val_arr(g::I32, 6, types)}};
  s.tensors = tiny_tensors();
  return s;
}

std::string write_model(const g::GgufSpec& s, const std::string& name = "tiny.gguf") {
  const std::string path = test::make_temp_dir("gguf_model") + "/" + name;
  std::ofstream(path, std::ios::binary) << s.build();
  return path;
}

std::string load_error(const g::GgufSpec& s) {
  const std::string path = write_model(s);
  return test::error_of([&] { load_model(path, cpu_backend()); });
}

bool has(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

TEST(GgufModel, ATinyLlamaLoadsAndRuns) {
  const auto m = load_model(write_model(tiny_llama()), cpu_backend());
  EXPECT_EQ(m->config().n_layers, 1);
  EXPECT_EQ(m->config().vocab_size, 6);
  EXPECT_TRUE(m->config().tied_embeddings);
  EXPECT_EQ(m->tokenizer().encode("ab"), std::vector<int32_t>({3, 4, 5}));
  const std::vector<float> logits = to_host_f32(cpu_backend(), m->forward({1, 3, 4, 5}, 1, 4).view());
  ASSERT_EQ(logits.size(), 24u);
  for (float v : logits) EXPECT_TRUE(std::isfinite(v));
}

TEST(GgufModel, RefusesWhatItCannotRunByName) {
  auto with = [](auto edit) {
    g::GgufSpec s = tiny_llama();
    edit(s);
    return load_error(s);
  };
  auto set_kv = [](g::GgufSpec& s, const std::string& key, std::string value) {
    for (auto& kv : s.kvs)
      if (kv.first == key) kv.second = value;
  };
  auto tensor = [](g::GgufSpec& s, const std::string& name) -> g::TensorSpec& {
    for (auto& t : s.tensors)
      if (t.name == name) return t;
    SAELAB_ASSERT(false, "no tensor {}", name);
  };
  std::string e = with([&](g::GgufSpec& s) { set_kv(s, "general.architecture", g::val_str("qwen2")); });
  EXPECT_TRUE(has(e, "tiny.gguf") && has(e, "'qwen2'") && has(e, "supported: llama")) << e;
  e = with([&](g::GgufSpec& s) { std::erase_if(s.tensors, [](auto& t) { return t.name == "blk.0.ffn_up.weight"; }); });
  EXPECT_TRUE(has(e, "tiny.gguf") && has(e, "blk.0.ffn_up.weight")) << e;
  e = with([&](g::GgufSpec& s) { set_kv(s, "llama.feed_forward_length", g::val<uint32_t>(g::U32, 24)); });
  EXPECT_TRUE(has(e, "blk.0.ffn_gate.weight") && has(e, "[16, 8]") && has(e, "[24, 8]")) << e;
  e = with([&](g::GgufSpec& s) { s.tensors.push_back(g::tensor_spec("blk.0.attn_q.bias", {8}, 0, std::string(32, '\0'))); });
  EXPECT_TRUE(has(e, "blk.0.attn_q.bias") && has(e, "not supported")) << e;
  e = with([&](g::GgufSpec& s) { s.kvs.push_back({"llama.rope.scaling.type", g::val_str("linear")}); });
  EXPECT_TRUE(has(e, "rope.scaling.type") && has(e, "linear")) << e;
  e = with([&](g::GgufSpec& s) {  // Q2_K: 256 weights in 84 bytes, a type the reader knows but cannot decode
    auto& t = tensor(s, "blk.0.ffn_norm.weight");
    t.ne = {256};
    t.type = 10;
    t.data = std::string(84, '\0');
    set_kv(s, "llama.embedding_length", g::val<uint32_t>(g::U32, 8));
  });
  EXPECT_TRUE(has(e, "blk.0.ffn_norm.weight")) << e;
  e = with([&](g::GgufSpec& s) { set_kv(s, "llama.block_count", g::val<uint32_t>(g::U32, 1u << 30)); });
  EXPECT_TRUE(has(e, "block_count is 1073741824") && has(e, "11 tensors")) << e;  // nothing sized by it
}

TEST(GgufModel, ADirectoryWithTwoGgufFilesIsAmbiguous) {
  const std::string dir = test::make_temp_dir("gguf_two");
  for (const char* n : {"a.gguf", "b.gguf"}) std::ofstream(dir + "/" + n, std::ios::binary) << tiny_llama().build();
  const std::string e = test::error_of([&] { load_model(dir, cpu_backend()); });
  EXPECT_TRUE(has(e, "several .gguf") && has(e, "a.gguf") && has(e, "b.gguf")) << e;
}

}  // namespace
}  // namespace saelab
