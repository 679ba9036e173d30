#include "saelab/saebench_json.hpp"

#include <chrono>
#include <fmt/format.h>
#include <random>

namespace saelab {

std::string new_eval_id() {
  std::random_device rd;
  std::mt19937_64 rng((static_cast<uint64_t>(rd()) << 32) ^ rd());
  uint64_t a = rng(), b = rng();
  a = (a & 0xFFFFFFFFFFFF0FFFull) | 0x4000ull;            // version 4
  b = (b & 0x3FFFFFFFFFFFFFFFull) | 0x8000000000000000ull;  // variant 10
  return fmt::format("{:08x}-{:04x}-{:04x}-{:04x}-{:012x}", a >> 32, (a >> 16) & 0xFFFF, a & 0xFFFF, b >> 48,
                     b & 0xFFFFFFFFFFFFull);
}

int64_t now_epoch_millis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

nlohmann::json with_saebench_provenance(nlohmann::json result) {
  result["sae_bench_commit_hash"] = kSaeBenchCheckedAgainst;
  result["sae_lens_id"] = nullptr;
  result["sae_lens_release_id"] = nullptr;
  result["sae_lens_version"] = nullptr;
  return result;
}

}  // namespace saelab
