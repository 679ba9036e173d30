#include "saelab/activation_store.hpp"

#include <cstring>

#include "saelab/atomic_file.hpp"
#include "saelab/npy.hpp"
#include "saelab/safetensors.hpp"
#include "util/json_number.hpp"

namespace saelab {

using json = nlohmann::json;

ActivationManifest read_activation_manifest(const std::string& dir) {
  const std::string path = dir + "/manifest.json";
  if (!file_exists(path)) fail("'{}' is not an activation directory: no manifest.json (run `saelab harvest`)", dir);
  json j;
  try {
    j = json::parse(read_file(path));
    ActivationManifest m;
    m.dir = dir;
    // Compared as JSON: a float version like 1e300 must not be converted to int (found by fuzzing).
    if (j.at("saelab_activations") != json(kActivationManifestVersion))
      fail("'{}': manifest version {} is not {}", path, j["saelab_activations"].dump(), kActivationManifestVersion);
    m.settings = j.at("settings");
    m.model_name = m.settings.at("model_name").get<std::string>();
    m.hook_name = m.settings.at("hook_name").get<std::string>();
    m.format = m.settings.at("format").get<std::string>();
    if (m.format != "npy" && m.format != "safetensors")
      fail("'{}': shard format must be npy or safetensors, found '{}'", path, m.format);
    m.dtype = dtype_from_name(m.settings.at("dtype").get<std::string>());
    // Counts are range-checked (json_int): a float or an out-of-range integer must not convert
    // into one, and the shard sum must not overflow.
    constexpr int64_t kMaxTokens = int64_t{1} << 48;
    auto count = [&](const json& v, const std::string& key, int64_t max) {
      const int64_t x = json_int<int64_t>(v, fmt::format("'{}': {}", path, key));
      if (x < 0 || x > max) fail("'{}': {} must be in [0, {}], found {}", path, key, max, x);
      return x;
    };
    m.d_in = static_cast<int>(count(j.at("d_in"), "d_in", 1 << 24));
    m.n_tokens = count(j.at("n_tokens"), "n_tokens", kMaxTokens);
    m.contexts_done = count(j.at("contexts_done"), "contexts_done", kMaxTokens);
    m.complete = j.at("complete").get<bool>();
    int64_t sum = 0;
    for (const auto& s : j.at("shards")) {
      ActivationShard shard{s.at("file").get<std::string>(), s.at("tokens_file").get<std::string>(),
                            count(s.at("n_tokens"), "a shard's n_tokens", kMaxTokens)};
      // Shards live in the directory: a name with a path in it could point anywhere.
      for (const std::string* f : {&shard.file, &shard.tokens_file})
        if (f->empty() || f->find('/') != std::string::npos || *f == "." || *f == "..")
          fail("'{}': shard file '{}' is not a plain file name in the activation directory", path, *f);
      sum += shard.n_tokens;
      if (sum > kMaxTokens) fail("'{}': shards hold more than {} tokens", path, kMaxTokens);
      m.shards.push_back(std::move(shard));
    }
    if (sum != m.n_tokens) fail("'{}': shards hold {} tokens but n_tokens is {}", path, sum, m.n_tokens);
    if (m.d_in <= 0) fail("'{}': d_in must be positive, found {}", path, m.d_in);
    return m;
  } catch (const json::exception& e) {
    fail("'{}' is not a valid activation manifest: {}", path, e.what());
  }
}

void write_activation_manifest(const ActivationManifest& m) {
  json shards = json::array();
  for (const auto& s : m.shards) shards.push_back({{"file", s.file}, {"tokens_file", s.tokens_file}, {"n_tokens", s.n_tokens}});
  json j = {{"saelab_activations", kActivationManifestVersion},
            {"settings", m.settings},
            {"d_in", m.d_in},
            {"shape", {m.n_tokens, m.d_in}},
            {"n_tokens", m.n_tokens},
            {"contexts_done", m.contexts_done},
            {"complete", m.complete},
            {"shards", shards}};
  write_file_atomic(m.dir + "/manifest.json", j.dump(2) + "\n");
}

void read_activation_shard(const ActivationManifest& m, size_t i, std::vector<float>& acts,
                           std::vector<int32_t>* tokens) {
  SAELAB_ASSERT(i < m.shards.size(), "shard {} of {}", i, m.shards.size());
  const ActivationShard& s = m.shards[i];
  const std::string path = m.dir + "/" + s.file;
  const std::vector<int64_t> want{s.n_tokens, m.d_in};
  if (m.format == "safetensors") {
    SafetensorsFile f(path);
    acts = f.read_f32("activations", want);
    if (tokens) *tokens = f.read_i32("tokens");
  } else {
    NpyArray a = read_npy(path);
    if (a.shape != want) fail("'{}' has shape [{}, {}], manifest says [{}, {}]", path, a.shape.size() > 0 ? a.shape[0] : -1,
                              a.shape.size() > 1 ? a.shape[1] : -1, want[0], want[1]);
    if (a.dtype == DType::I32) fail("'{}' holds integers, expected activations", path);
    acts.resize(static_cast<size_t>(s.n_tokens * m.d_in));
    convert_to_f32(acts.data(), a.bytes.data(), a.dtype, acts.size());
    if (tokens) {
      NpyArray t = read_npy(m.dir + "/" + s.tokens_file);
      if (t.dtype != DType::I32 || t.shape != std::vector<int64_t>{s.n_tokens})
        fail("'{}' should hold {} i32 token ids", m.dir + "/" + s.tokens_file, s.n_tokens);
      tokens->resize(static_cast<size_t>(s.n_tokens));
      if (!t.bytes.empty()) std::memcpy(tokens->data(), t.bytes.data(), t.bytes.size());
    }
  }
  if (tokens && static_cast<int64_t>(tokens->size()) != s.n_tokens)
    fail("'{}': {} token ids for {} activations", path, tokens->size(), s.n_tokens);
}

}  // namespace saelab
