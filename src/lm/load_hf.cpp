// A Hugging Face model directory: config.json, model.safetensors (or a sharded
// model.safetensors.index.json), tokenizer.json. Every tensor the architecture needs is checked
// (present, shape as config.json implies) before the model is allocated, and every tensor in the
// files must be used or a known buffer: a checkpoint with weights the forward would ignore fails.
#include <cstring>
#include <filesystem>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>
#include <set>

#include "hf_weights.hpp"
#include "load_model_impl.hpp"
#include "saelab/atomic_file.hpp"
#include "saelab/safetensors.hpp"

namespace saelab {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

// Which file holds each tensor: model.safetensors, or the shards model.safetensors.index.json names.
struct CheckpointFiles {
  std::vector<std::unique_ptr<SafetensorsFile>> files;
  std::map<std::string, SafetensorsFile*> where;
};

CheckpointFiles open_checkpoint(const std::string& dir) {
  CheckpointFiles ck;
  const std::string single = dir + "/model.safetensors", index = dir + "/model.safetensors.index.json";
  if (file_exists(single)) {
    ck.files.push_back(std::make_unique<SafetensorsFile>(single));
  } else if (file_exists(index)) {
    json ij;
    try {
      ij = json::parse(read_file(index));
    } catch (const json::exception& e) {
      fail("'{}' is not valid JSON: {}", index, e.what());
    }
    if (!ij.is_object() || !ij.contains("weight_map") || !ij["weight_map"].is_object())
      fail("'{}': expected an object with a \"weight_map\" object", index);
    std::map<std::string, SafetensorsFile*> by_file;
    for (auto it = ij["weight_map"].begin(); it != ij["weight_map"].end(); ++it) {
      if (!it.value().is_string()) fail("'{}': weight_map['{}'] is {}, expected a file name", index, it.key(), it.value().dump());
      const std::string f = it.value().get<std::string>();
      if (!by_file.count(f)) {
        ck.files.push_back(std::make_unique<SafetensorsFile>(dir + "/" + f));
        by_file[f] = ck.files.back().get();
      }
    }
  } else {
    fail("model directory '{}' has neither model.safetensors nor model.safetensors.index.json", dir);
  }
  for (auto& f : ck.files)
    for (const auto& n : f->names()) ck.where[n] = f.get();
  return ck;
}

// Every source present with the shape config.json implies, and no tensor left over that the
// forward would silently ignore.
void check_sources(const std::string& dir, const ModelConfig& cfg, const CheckpointFiles& ck,
                   const std::vector<HfSource>& sources) {
  std::set<std::string> used;
  for (const HfSource& s : sources) {
    auto it = ck.where.find(s.stored);
    if (it == ck.where.end())
      fail("model directory '{}' lacks tensor '{}' ({} with this config.json)", dir, s.stored, cfg.architecture);
    const auto& have = it->second->entry(s.stored).shape;
    if (have != s.stored_shape)
      fail("'{}': tensor '{}' has shape [{}], but config.json implies [{}]", it->second->path(), s.stored,
           fmt::join(have, ", "), fmt::join(s.stored_shape, ", "));
    used.insert(s.stored);
  }
  for (const auto& [name, file] : ck.where)
    if (!used.count(name) && !hf_ignorable(name, cfg))
      fail("'{}': tensor '{}' is not part of the {} forward saelab runs for this config.json (a bias, norm or "
           "option it would ignore); refusing to run without it",
           file->path(), name, cfg.architecture);
}

}  // namespace

std::unique_ptr<LanguageModel> load_hf_model(const std::string& dir, Backend& be) {
  ModelConfig cfg = parse_hf_config(dir + "/config.json");
  cfg.name = directory_name(dir);
  auto tok = load_hf_directory_tokenizer(dir, cfg.vocab_size);

  const CheckpointFiles ck = open_checkpoint(dir);
  // Every tensor the config implies is checked against the files' headers before the model (sized
  // by the config) is allocated: a config.json that disagrees with the weights, e.g. a hidden_size
  // of 2^30, fails here instead of allocating from its numbers. At least 4 tensors a layer: more
  // layers than the files could hold fail before the sources are even listed.
  if (static_cast<size_t>(cfg.n_layers) > ck.where.size() / 4)
    fail("'{}': num_hidden_layers is {}, but the weights hold only {} tensors", dir + "/config.json", cfg.n_layers,
         ck.where.size());
  const auto sources = hf_sources(cfg, [&](const std::string& n) { return ck.where.count(n) > 0; });
  check_sources(dir, cfg, ck, sources);

  auto model = std::make_unique<LanguageModel>(cfg, std::move(tok), be);
  std::map<std::string, std::vector<int64_t>> shape_of(model->param_specs().begin(), model->param_specs().end());
  SAELAB_ASSERT(shape_of.size() == sources.size(), "{} sources for {} parameters", sources.size(), shape_of.size());
  // A fused tensor (GPT-2's c_attn, GPT-NeoX's query_key_value) is the source of Q, K and V, listed
  // one after another: it is read once for the three.
  std::string last_stored;
  std::vector<float> w;
  for (const HfSource& s : sources) {
    if (s.stored != last_stored) w = ck.where.at(s.stored)->read_f32(s.stored, s.stored_shape);
    last_stored = s.stored;
    apply_source(s, w, shape_of.at(s.param), model->host_params().data() + model->param_offset(s.param));
  }
  model->upload();
  return model;
}

}  // namespace saelab
