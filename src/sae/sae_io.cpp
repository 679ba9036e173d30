#include "saelab/sae_io.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <filesystem>

#include "saelab/atomic_file.hpp"
#include "saelab/safetensors.hpp"

namespace saelab {

namespace fs = std::filesystem;
using json = nlohmann::json;

// cfg.json's architecture for a hierarchical SAE: saelab's name, not SAELens' ("hierarchical" could one
// day mean another SAE there), so only python/saelab_saelens.py makes SAELens load it.
constexpr const char* kSaelensHierarchical = "saelab_hierarchical";

void export_saelens(const Sae& sae, const std::string& dir, const std::vector<float>& density, const json& extra) {
  const SaeConfig& c = sae.config();
  Backend& be = sae.backend();
  const float s = c.act_scale;
  std::vector<float> W_enc = to_host_f32(be, sae.params().W_enc), b_enc = to_host_f32(be, sae.params().b_enc),
                     W_dec = to_host_f32(be, sae.params().W_dec), b_dec = to_host_f32(be, sae.params().b_dec);
  // The SAE saw x·s: fold s so the export takes raw x (see the header).
  for (auto& v : W_enc) v *= s;
  for (auto& v : W_dec) v /= s;
  for (auto& v : b_dec) v /= s;
  std::vector<float> log_density(static_cast<size_t>(c.d_sae), -10.f);
  for (size_t i = 0; i < density.size() && i < log_density.size(); ++i)
    log_density[i] = static_cast<float>(std::log10(static_cast<double>(density[i]) + 1e-10));

  const bool topk = c.architecture == SaeArchitecture::TopK;
  const bool hier = c.architecture == SaeArchitecture::Hierarchical;
  // batchtopk and matryoshka_batchtopk save as SAELens' jumprelu with their global threshold in
  // every latent (BatchTopKTrainingSAE.process_state_dict_for_saving_inference), jumprelu with
  // threshold = exp(log_threshold) (JumpReLUTrainingSAE.process_state_dict_for_saving).
  const bool jump = sae_has_threshold(c.architecture);
  json cfg = {
      // A hierarchical SAE is a standard SAE over the concatenated latents plus the parent gate on its
      // children. It gets an architecture of its own, with n_parents and children_per_parent at the top
      // level where SAELens' config reads fields: python/saelab_saelens.py registers it with SAELens,
      // and plain SAELens refuses the name (KeyError) rather than load children that fire alone.
      // Exports before this said "standard" and kept the hierarchy under "saelab"; load_saelens reads both.
      {"architecture", hier ? kSaelensHierarchical : jump ? "jumprelu" : sae_architecture_name(c.architecture)},
      {"d_in", c.d_in},
      {"d_sae", c.d_sae},
      {"dtype", "float32"},
      {"device", "cpu"},
      {"apply_b_dec_to_input", c.apply_b_dec_to_input},
      {"normalize_activations", "none"},
      {"reshape_activations", "none"},
      {"metadata",
       {{"model_name", c.model_name},
        {"hook_name", c.hook_name},
        {"hook_head_index", nullptr},
        {"prepend_bos", c.prepend_bos},
        {"context_size", c.context_size},
        {"dataset_path", c.dataset_path},
        {"sae_lens_training_version", nullptr}}},
      // Flat fields of the pre-v6 layout, which SAEBench and older SAELens read.
      {"model_name", c.model_name},
      {"hook_name", c.hook_name},
      {"hook_layer", c.hook_layer},
      {"hook_head_index", nullptr},
      {"context_size", c.context_size},
      {"prepend_bos", c.prepend_bos},
      {"dataset_path", c.dataset_path},
      {"activation_fn_str", topk ? "topk" : "relu"},
      {"activation_fn_kwargs", topk ? json{{"k", c.k}} : json::object()},
      {"finetuning_scaling_factor", false},
      {"sae_lens_training_version", nullptr},
      {"neuronpedia_id", nullptr},
      {"model_from_pretrained_kwargs", json::object()},
      {"seqpos_slice", {nullptr}},
  };
  if (topk) cfg["k"] = c.k;
  if (hier) {
    // Latents [0, n_parents) are parents; latent n_parents + j is a child of parent j / children_per_parent
    // and is zeroed where that parent's f is 0.
    cfg["n_parents"] = c.n_parents;
    cfg["children_per_parent"] = c.children_per_parent;
  }
  json sl = extra;
  sl["act_scale_folded"] = s;
  if (jump) sl["trained_architecture"] = sae_architecture_name(c.architecture);
  if (sae_is_batch_topk(c.architecture)) sl["k"] = c.k;
  if (c.architecture == SaeArchitecture::MatryoshkaBatchTopK) sl["matryoshka_widths"] = c.matryoshka_widths;
  sl["format"] = "saelab SAELens export v1";
  cfg["saelab"] = sl;

  const std::string tmp = dir + ".tmp-export";
  fs::remove_all(tmp);
  fs::create_directories(tmp);
  const int64_t d = c.d_in, F = c.d_sae;
  // The threshold compares with pre-activations, which the scale fold leaves as they were.
  const std::vector<float> threshold = jump ? to_host_f32(be, sae.params().threshold) : std::vector<float>{};
  std::vector<SafetensorsTensorOut> tensors = {{"W_enc", DType::F32, {d, F}, W_enc.data()},
                                               {"b_enc", DType::F32, {F}, b_enc.data()},
                                               {"W_dec", DType::F32, {F, d}, W_dec.data()},
                                               {"b_dec", DType::F32, {d}, b_dec.data()}};
  if (jump) tensors.push_back({"threshold", DType::F32, {F}, threshold.data()});
  write_safetensors(tmp + "/sae_weights.safetensors", tensors);
  write_safetensors(tmp + "/sparsity.safetensors", {{"sparsity", DType::F32, {F}, log_density.data()}});
  write_file_atomic(tmp + "/cfg.json", cfg.dump(2) + "\n");
  fs::remove_all(dir + ".old-export");
  if (fs::exists(dir)) fs::rename(dir, dir + ".old-export");
  fs::rename(tmp, dir);
  fs::remove_all(dir + ".old-export");
}

json read_saelens_cfg(const std::string& dir) {
  const std::string path = dir + "/cfg.json";
  if (!file_exists(path)) fail("'{}' is not an SAELens SAE directory: no cfg.json", dir);
  try {
    return json::parse(read_file(path));
  } catch (const json::exception& e) {
    fail("'{}' is not valid JSON: {}", path, e.what());
  }
}

Sae load_saelens(const std::string& dir, Backend& be) {
  const json cfg = read_saelens_cfg(dir);
  const std::string path = dir + "/cfg.json";
  SaeConfig c;
  try {
    const std::string arch = cfg.value("architecture", "standard");
    if (arch == "standard" || arch == "relu") c.architecture = SaeArchitecture::Standard;
    else if (arch == "topk") c.architecture = SaeArchitecture::TopK;
    else if (arch == kSaelensHierarchical) c.architecture = SaeArchitecture::Hierarchical;
    else if (arch == "jumprelu") c.architecture = SaeArchitecture::JumpReLU;
    else fail("'{}': architecture '{}' is not supported (standard, topk, jumprelu, {})", path, arch, kSaelensHierarchical);
    c.d_in = cfg.at("d_in").get<int>();
    c.d_sae = cfg.at("d_sae").get<int>();
    c.apply_b_dec_to_input = cfg.value("apply_b_dec_to_input", true);
    if (c.architecture == SaeArchitecture::TopK) {
      if (cfg.contains("k")) c.k = cfg["k"].get<int>();
      else c.k = cfg.at("activation_fn_kwargs").at("k").get<int>();
    }
    const json meta = cfg.contains("metadata") ? cfg["metadata"] : cfg;
    c.model_name = meta.value("model_name", cfg.value("model_name", ""));
    c.hook_name = meta.value("hook_name", cfg.value("hook_name", ""));
    c.context_size = meta.contains("context_size") && meta["context_size"].is_number() ? meta["context_size"].get<int>() : 128;
    c.hook_layer = cfg.value("hook_layer", 0);
    if (c.architecture == SaeArchitecture::Hierarchical) {
      c.n_parents = cfg.at("n_parents").get<int>();
      c.children_per_parent = cfg.at("children_per_parent").get<int>();
    } else if (cfg.contains("saelab") && cfg["saelab"].contains("hierarchy")) {  // older: "standard" + saelab.hierarchy
      const json& h = cfg["saelab"]["hierarchy"];
      c.architecture = SaeArchitecture::Hierarchical;
      c.n_parents = h.at("n_parents").get<int>();
      c.children_per_parent = h.at("children_per_parent").get<int>();
    }
    if (cfg.value("normalize_activations", "none") != "none")
      fail("'{}': normalize_activations '{}' is not supported; export with the scale folded in", path,
           cfg["normalize_activations"].dump());
  } catch (const json::exception& e) {
    fail("'{}' lacks an SAELens field: {}", path, e.what());
  }
  Sae sae(c, be);
  SafetensorsFile w(dir + "/sae_weights.safetensors");
  const int64_t d = c.d_in, F = c.d_sae;
  be.upload(sae.params().W_enc, w.read_f32("W_enc", {d, F}).data());
  be.upload(sae.params().b_enc, w.read_f32("b_enc", {F}).data());
  be.upload(sae.params().W_dec, w.read_f32("W_dec", {F, d}).data());
  be.upload(sae.params().b_dec, w.read_f32("b_dec", {d}).data());
  if (c.architecture == SaeArchitecture::JumpReLU) {
    // The file's threshold as it is (encode compares with these floats); log θ for completeness,
    // with θ ≤ 0 (SAELens allows it: then JumpReLU is ReLU) at the smallest normal float.
    const std::vector<float> t = w.read_f32("threshold", {F});
    std::vector<float> lt(t.size());
    for (size_t i = 0; i < t.size(); ++i) lt[i] = std::log(std::max(t[i], std::numeric_limits<float>::min()));
    be.upload(sae.params().threshold, t.data());
    be.upload(sae.params().log_threshold, lt.data());
  }
  return sae;
}

}  // namespace saelab
