// Every Hugging Face architecture saelab runs, against transformers itself: tiny randomly initialised
// models with the real checkpoints' structure (tests/data/hf_tiny, scripts/reference/hf_tiny_models.py)
// load through the same code as a downloaded directory, and their logits, every TransformerLens
// hook point and a greedy continuation match transformers' float32 eager forward.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "saelab/atomic_file.hpp"
#include "saelab/backend.hpp"
#include "saelab/lm.hpp"
#include "saelab/safetensors.hpp"
#include "test_util.hpp"

using namespace saelab;
using saelab::test::kTolF32Model;
using saelab::test::rel_error;
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

const char* const kArchitectures[] = {"gpt2", "pythia", "gemma2", "gemma3", "qwen2", "qwen3", "llama3", "mistral"};

std::string dir_of(const std::string& name) { return test::test_data("hf_tiny/" + name); }

// A copy of a tiny model directory that a test may edit.
std::string copy_of(const std::string& name) {
  const std::string d = test::make_temp_dir("hf_" + name);
  for (const auto& e : fs::directory_iterator(dir_of(name))) fs::copy(e.path(), d + "/" + e.path().filename().string());
  return d;
}

void edit_config(const std::string& dir, const std::function<void(json&)>& edit) {
  json j = json::parse(read_file(dir + "/config.json"));
  edit(j);
  test::write_text(dir + "/config.json", j.dump(2));
}

// Rewrites model.safetensors with `edit` applied to its list of tensors.
void edit_weights(const std::string& dir, const std::function<void(std::vector<SafetensorsTensorOut>&)>& edit) {
  std::vector<std::vector<float>> keep;
  std::vector<SafetensorsTensorOut> ts;
  {
    SafetensorsFile f(dir + "/model.safetensors");
    for (const auto& n : f.names()) {
      keep.push_back(f.read_f32(n));
      ts.push_back({n, DType::F32, f.entry(n).shape, nullptr});
    }
  }
  for (size_t i = 0; i < ts.size(); ++i) ts[i].data = keep[i].data();
  edit(ts);
  write_safetensors(dir + "/model.safetensors", ts);
}

class HfArchitecture : public ::testing::TestWithParam<const char*> {};

TEST_P(HfArchitecture, LogitsAndEveryHookMatchTransformers) {
  auto m = load_model(dir_of(GetParam()), cpu_backend());
  SafetensorsFile g(dir_of(GetParam()) + "/golden.safetensors");
  ASSERT_EQ(g.metadata().at("saelab_golden"), "1");
  const std::vector<int32_t> ids = g.read_i32("input_ids");
  const auto& shape = g.entry("input_ids").shape;
  ASSERT_EQ(shape.size(), 2u);
  const int B = static_cast<int>(shape[0]), T = static_cast<int>(shape[1]);
  Hooks hooks;
  std::map<std::string, std::vector<float>> got;
  for (const auto& name : m->hook_names())
    hooks.observe(name, [&, name](TensorView a) { got[name] = to_host_f32(m->backend(), a); });
  Tensor logits = m->forward(ids, B, T, &hooks);
  EXPECT_LE(rel_error(to_host_f32(m->backend(), logits), g.read_f32("logits")), kTolF32Model);
  // The hook points are exactly the ones transformers' forward has for this architecture.
  const std::vector<std::string> names = m->hook_names();
  std::set<std::string> golden_hooks, ours(names.begin(), names.end());
  for (const auto& n : g.names())
    if (n.rfind("hook_", 0) == 0 || n.rfind("blocks.", 0) == 0) golden_hooks.insert(n);
  EXPECT_EQ(ours, golden_hooks);
  for (const auto& name : golden_hooks)
    if (got.count(name)) {
      EXPECT_LE(rel_error(got[name], g.read_f32(name)), kTolF32Model) << name;
    }
}

TEST_P(HfArchitecture, GreedyContinuationIsTransformers) {
  auto m = load_model(dir_of(GetParam()), cpu_backend());
  SafetensorsFile g(dir_of(GetParam()) + "/golden.safetensors");
  const std::vector<int32_t> golden = g.read_i32("greedy_ids");
  const int prompt_len = std::stoi(g.metadata().at("greedy_prompt_len"));
  const std::vector<int32_t> prompt(golden.begin(), golden.begin() + prompt_len);
  EXPECT_EQ(generate_greedy(*m, prompt, static_cast<int>(golden.size()) - prompt_len), golden);
}

// transformers 5 writes rope_parameters / layer_types where real checkpoints carry rope_theta,
// rope_scaling, rotary_pct, sliding_window_pattern: both describe the same model.
TEST_P(HfArchitecture, TransformersFiveConfigParsesToTheSameModel) {
  const ModelConfig a = parse_hf_config(dir_of(GetParam()) + "/config.json");
  const ModelConfig b = parse_hf_config(dir_of(GetParam()) + "/config_v5.json");
  auto key = [](const ModelConfig& c) {
    return fmt::format(
        "{} d{} ff{} L{} H{} Hkv{} hd{} V{} P{} norm{} eps{} es{} lp{} tied{} fs{} qkvb{} ob{} qkn{} as{} sc{} rd{} "
        "rope {} {} {} {} {} {} local {} {} {} win {} gated{} act{} mb{} par{} post{}",
        c.architecture, c.d_model, c.d_ff, c.n_layers, c.n_heads, c.n_kv_heads, c.head_dim, c.vocab_size, c.max_seq_len,
        int(c.norm), c.norm_eps, c.embed_scale, c.learned_positions, c.tied_embeddings, c.final_softcap, c.qkv_bias,
        c.o_bias, c.qk_norm, c.attn_scale, c.attn_softcap, c.rotary_dim, c.rope.theta, c.rope.type, c.rope.factor,
        c.rope.low_freq_factor, c.rope.high_freq_factor, c.rope.original_max_positions, c.rope_local.theta,
        c.rope_local.type, c.rope_local.factor, fmt::join(c.window, ","), c.gated_mlp, int(c.act), c.mlp_bias,
        c.parallel_residual, c.post_norms);
  };
  EXPECT_EQ(key(a), key(b));
}

INSTANTIATE_TEST_SUITE_P(TinyModels, HfArchitecture, ::testing::ValuesIn(kArchitectures),
                         [](const auto& info) { return std::string(info.param); });

TEST(HfArchitectureErrors, UnsupportedModelTypeOrOptionIsNamed) {
  const std::string d = copy_of("gpt2");
  edit_config(d, [](json& j) { j["model_type"] = "bert"; });
  EXPECT_NE(test::error_of([&] { load_model(d, cpu_backend()); }).find("model_type 'bert' is not supported (supported: llama, mistral, qwen2, qwen3, gemma2, gemma3_text, gpt2, gpt_neox)"),
            std::string::npos);

  const std::string l = copy_of("llama3");
  edit_config(l, [](json& j) { j["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 4.0}}; });
  EXPECT_NE(test::error_of([&] { load_model(l, cpu_backend()); }).find("rope scaling type 'yarn' is not supported"),
            std::string::npos);

  const std::string p = copy_of("pythia");
  edit_config(p, [](json& j) { j["hidden_act"] = "relu"; });
  EXPECT_NE(test::error_of([&] { load_model(p, cpu_backend()); }).find("hidden_act 'relu' is not supported"),
            std::string::npos);
}

TEST(HfArchitectureErrors, MissingExtraOrMisshapenTensorIsNamed) {
  const std::string d = copy_of("pythia");
  edit_weights(d, [](auto& ts) {
    ts.erase(std::remove_if(ts.begin(), ts.end(), [](const auto& t) { return t.name == "gpt_neox.layers.1.mlp.dense_4h_to_h.bias"; }),
             ts.end());
  });
  EXPECT_NE(test::error_of([&] { load_model(d, cpu_backend()); }).find("lacks tensor 'gpt_neox.layers.1.mlp.dense_4h_to_h.bias'"),
            std::string::npos);

  // A Mistral checkpoint whose o_proj has a bias the forward would not apply.
  const std::string q = copy_of("mistral");
  std::vector<float> bias;
  edit_weights(q, [&](auto& ts) {
    for (const auto& t : ts)
      if (t.name == "model.layers.0.self_attn.o_proj.weight") bias.assign(static_cast<size_t>(t.shape[0]), 0.5f);
    ts.push_back({"model.layers.0.self_attn.o_proj.bias", DType::F32, {static_cast<int64_t>(bias.size())}, bias.data()});
  });
  EXPECT_NE(test::error_of([&] { load_model(q, cpu_backend()); }).find("tensor 'model.layers.0.self_attn.o_proj.bias' is not part of the mistral forward"),
            std::string::npos);

  const std::string g = copy_of("gpt2");
  edit_config(g, [](json& j) { j["n_inner"] = 2 * j["n_embd"].get<int>(); });
  const std::string err = test::error_of([&] { load_model(g, cpu_backend()); });
  EXPECT_NE(err.find("has shape ["), std::string::npos) << err;
  EXPECT_NE(err.find("but config.json implies ["), std::string::npos) << err;
}

TEST(HfArchitectureCli, HooksListsTheArchitecturesPoints) {
  const auto gpt2 = test::run_cli("hooks --model " + dir_of("gpt2"));
  ASSERT_EQ(gpt2.exit_code, 0) << gpt2.err;
  EXPECT_NE(gpt2.out.find("hook_pos_embed"), std::string::npos);
  EXPECT_NE(gpt2.out.find("blocks.1.hook_resid_mid"), std::string::npos);
  const auto pythia = test::run_cli("hooks --model " + dir_of("pythia"));
  ASSERT_EQ(pythia.exit_code, 0) << pythia.err;
  EXPECT_NE(pythia.out.find("gpt_neox"), std::string::npos);
  EXPECT_EQ(pythia.out.find("hook_resid_mid"), std::string::npos);  // parallel residual: no mid-block point
  EXPECT_EQ(pythia.out.find("hook_pos_embed"), std::string::npos);
}

}  // namespace

namespace {

// The whole workflow on a non-Llama model, through the CLI as a user runs it: harvest a hook,
// train an SAE on it, evaluate it spliced into the LM (CE loss recovered) and sparse-probe it.
void run_pipeline(const std::string& arch, const std::string& hook) {
  const std::string d = test::make_temp_dir("pipeline_" + arch), model = dir_of(arch);
  const std::string corpus = test::shared_root() + "/corpus/gutenberg/carroll-alice.txt";
  auto r = test::run_cli("harvest --no-progress --model " + model + " --corpus " + corpus + " --hook " + hook +
                         " --context 16 --max-tokens 4000 --out " + d + "/acts");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  test::write_text(d + "/t.toml",
                   "[sae]\narchitecture = \"standard\"\nexpansion_factor = 2\n[train]\nbatch_size = 256\n"
                   "lr = 0.001\nl1_coefficient = 1.0\ntotal_tokens = 8000\nseed = 1\n");
  r = test::run_cli("train --no-progress --config " + d + "/t.toml --activations " + d + "/acts --out " + d + "/run");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = test::run_cli("eval core --sae " + d + "/run/sae --model " + model + " --corpus " + corpus +
                    " --contexts 8 --context 16 --out " + d + "/core.json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json core = json::parse(read_file(d + "/core.json"));
  const json& ce = core["eval_result_metrics"]["model_performance_preservation"];
  EXPECT_GT(ce["ce_loss_without_sae"].get<double>(), 0.0) << core.dump();
  EXPECT_NE(ce["ce_loss_with_sae"].get<double>(), ce["ce_loss_without_sae"].get<double>());
  r = test::run_cli("eval probing --sae " + d + "/run/sae --model " + model +
                    " --tasks " + test::test_data("../../data/probe_tasks.json") + " --data-root " + test::shared_root() +
                    " --only language/en --train 40 --test 20 --context 32 --out " + d + "/probing.json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json probing = json::parse(read_file(d + "/probing.json"));
  EXPECT_TRUE(probing.contains("eval_result_metrics")) << probing.dump().substr(0, 400);
}

}  // namespace

TEST(HfArchitecturePipeline, Gpt2HarvestTrainEvalProbe) { run_pipeline("gpt2", "blocks.1.hook_resid_post"); }
TEST(HfArchitecturePipeline, PythiaHarvestTrainEvalProbe) { run_pipeline("pythia", "blocks.0.hook_mlp_out"); }
TEST(HfArchitecturePipeline, Gemma2HarvestTrainEvalProbe) { run_pipeline("gemma2", "blocks.1.hook_resid_mid"); }

// gemma-2-2b and the larger checkpoints come as shards named by model.safetensors.index.json, and
// Llama 3.x / Gemma 3 / Qwen store bf16: a sharded directory loads to the same logits bit for bit,
// with half its tensors in bf16 equal to the same model whose f32 weights were rounded to bf16
// first (bf16 → f32 is exact); an index naming a shard that is not there is one error naming it.
TEST(HfArchitectureLayouts, ShardedCheckpointWithBf16TensorsLoadsToTheSameModel) {
  const std::string rounded = copy_of("gemma2"), sharded = copy_of("gemma2");
  std::vector<std::string> names;
  std::vector<std::vector<float>> f32;
  std::vector<std::vector<int64_t>> shapes;
  {
    SafetensorsFile f(dir_of("gemma2") + "/model.safetensors");
    for (const auto& n : f.names()) {
      names.push_back(n);
      f32.push_back(f.read_f32(n));
      shapes.push_back(f.entry(n).shape);
    }
  }
  // Even-numbered tensors go to shard 2 as bf16; the reference holds their bf16 values as f32.
  std::vector<std::vector<uint16_t>> bf16(names.size());
  std::vector<SafetensorsTensorOut> ref, shard1, shard2;
  json index = {{"metadata", {{"total_size", 0}}}, {"weight_map", json::object()}};
  for (size_t i = 0; i < names.size(); ++i) {
    if (i % 2 == 0) {
      for (float& v : f32[i]) bf16[i].push_back(f32_to_bf16(v));
      for (size_t j = 0; j < f32[i].size(); ++j) f32[i][j] = bf16_to_f32(bf16[i][j]);
      shard2.push_back({names[i], DType::BF16, shapes[i], bf16[i].data()});
    } else {
      shard1.push_back({names[i], DType::F32, shapes[i], f32[i].data()});
    }
    ref.push_back({names[i], DType::F32, shapes[i], f32[i].data()});
    index["weight_map"][names[i]] = i % 2 == 0 ? "model-00002-of-00002.safetensors" : "model-00001-of-00002.safetensors";
  }
  ASSERT_FALSE(shard1.empty());
  ASSERT_FALSE(shard2.empty());
  write_safetensors(rounded + "/model.safetensors", ref);
  fs::remove(sharded + "/model.safetensors");
  write_safetensors(sharded + "/model-00001-of-00002.safetensors", shard1);
  write_safetensors(sharded + "/model-00002-of-00002.safetensors", shard2);
  test::write_text(sharded + "/model.safetensors.index.json", index.dump(2));

  auto a = load_model(rounded, cpu_backend());
  auto b = load_model(sharded, cpu_backend());
  const std::vector<int32_t> ids{2, 5, 9, 40, 7, 3};
  EXPECT_EQ(to_host_f32(b->backend(), b->forward(ids, 1, 6)), to_host_f32(a->backend(), a->forward(ids, 1, 6)));
  // The bf16 rounding is a real change of the weights, so the comparison above is not vacuous.
  auto orig = load_model(dir_of("gemma2"), cpu_backend());
  EXPECT_NE(to_host_f32(orig->backend(), orig->forward(ids, 1, 6)), to_host_f32(a->backend(), a->forward(ids, 1, 6)));

  fs::remove(sharded + "/model-00002-of-00002.safetensors");
  const std::string err = test::error_of([&] { load_model(sharded, cpu_backend()); });
  EXPECT_NE(err.find("model-00002-of-00002.safetensors"), std::string::npos) << err;
}

// What real downloads hold beside the weights: openai-community/gpt2 names its tensors without
// "transformer." and stores each block's causal mask (h.L.attn.bias, h.L.attn.masked_bias); older
// Pythia files keep attention.bias / masked_bias / rotary_emb.inv_freq buffers. They load and run
// to the same logits, bit for bit.
TEST(HfArchitectureLayouts, RealCheckpointNamesAndBuffersLoadToTheSameModel) {
  const std::vector<float> mask(16 * 16, 1.f), inv_freq(2, 0.5f);
  struct Case { const char* arch; std::function<void(std::vector<SafetensorsTensorOut>&)> edit; };
  const Case cases[] = {
      {"gpt2",
       [&](auto& ts) {
         for (auto& t : ts)
           if (t.name.rfind("transformer.", 0) == 0) t.name = t.name.substr(12);
         ts.push_back({"h.0.attn.bias", DType::F32, {1, 1, 16, 16}, mask.data()});
         ts.push_back({"h.1.attn.masked_bias", DType::F32, {1}, mask.data()});
       }},
      {"pythia",
       [&](auto& ts) {
         ts.push_back({"gpt_neox.layers.0.attention.bias", DType::F32, {1, 1, 16, 16}, mask.data()});
         ts.push_back({"gpt_neox.layers.0.attention.masked_bias", DType::F32, {1}, mask.data()});
         ts.push_back({"gpt_neox.layers.1.attention.rotary_emb.inv_freq", DType::F32, {2}, inv_freq.data()});
       }},
  };
  for (const Case& c : cases) {
    const std::string d = copy_of(c.arch);
    edit_weights(d, c.edit);
    auto ref = load_model(dir_of(c.arch), cpu_backend());
    auto m = load_model(d, cpu_backend());
    const std::vector<int32_t> ids{1, 5, 9, 40, 7, 3};
    EXPECT_EQ(to_host_f32(m->backend(), m->forward(ids, 1, 6)), to_host_f32(ref->backend(), ref->forward(ids, 1, 6)))
        << c.arch;
  }
}
