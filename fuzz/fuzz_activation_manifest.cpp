// Activation directories: manifest.json (read_activation_manifest), then every shard it lists
// (read_activation_shard). The directory holds fixed shards the manifest can name: good npy and
// safetensors shards, an f16 one, and defective ones (wrong dtype, wrong shape, truncated).
// The shard file formats themselves have their own targets (fuzz_npy, fuzz_safetensors).
#include <filesystem>

#include "fuzz_common.hpp"
#include "saelab/activation_store.hpp"
#include "saelab/npy.hpp"
#include "saelab/safetensors.hpp"

using namespace saelab;

namespace {

const std::string& activation_dir() {
  static const std::string dir = [] {
    const std::string d = fuzz::path_of("acts");
    std::filesystem::create_directories(d);
    const std::vector<float> a{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};  // [4, 3]
    const std::vector<int32_t> t{5, 6, 7, 8};
    std::vector<uint16_t> h(6);
    convert_from_f32(h.data(), DType::F16, a.data(), 6);
    write_npy(d + "/shard_00000.npy", DType::F32, {4, 3}, a.data());
    write_npy(d + "/shard_00000.tokens.npy", DType::I32, {4}, t.data());
    write_npy(d + "/shard_00001.npy", DType::F16, {2, 3}, h.data());
    write_npy(d + "/shard_00001.tokens.npy", DType::I32, {2}, t.data());
    write_npy(d + "/ints.npy", DType::I32, {4, 3}, a.data());          // integers where activations belong
    write_npy(d + "/floats.tokens.npy", DType::F32, {4}, a.data());    // floats where token ids belong
    write_npy(d + "/flat.npy", DType::F32, {12}, a.data());            // 1-D
    write_safetensors(d + "/shard_00000.safetensors",
                      {{"activations", DType::F32, {4, 3}, a.data()}, {"tokens", DType::I32, {4}, t.data()}});
    write_safetensors(d + "/short_tokens.safetensors",
                      {{"activations", DType::F32, {4, 3}, a.data()}, {"tokens", DType::I32, {2}, t.data()}});
    write_safetensors(d + "/no_tokens.safetensors", {{"activations", DType::F16, {2, 3}, h.data()}});
    fuzz::write_bytes(d + "/truncated.npy", std::string("\x93NUMPY\x01\x00", 8));
    fuzz::write_bytes(d + "/empty.safetensors", "");
    return d;
  }();
  return dir;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string& dir = activation_dir();
  fuzz::write_bytes(dir + "/manifest.json", data, size);
  fuzz::expect_no_crash([&] {
    const ActivationManifest m = read_activation_manifest(dir);
    std::vector<float> acts;
    std::vector<int32_t> tokens;
    for (size_t i = 0; i < m.shards.size() && i < 16; ++i) {
      fuzz::expect_no_crash([&] { read_activation_shard(m, i, acts, nullptr); });
      fuzz::expect_no_crash([&] { read_activation_shard(m, i, acts, &tokens); });
    }
  });
  return 0;
}
