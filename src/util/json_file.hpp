// A JSON file that must hold one object (config.json, tokenizer_config.json, ...), with the
// messages every reader of outside JSON gives: which file, and what was wrong.
#pragma once
#include <nlohmann/json.hpp>
#include <string>

#include "saelab/atomic_file.hpp"
#include "saelab/error.hpp"

namespace saelab {

inline nlohmann::json read_json_object(const std::string& path) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(read_file(path));
  } catch (const nlohmann::json::exception& e) {
    fail("'{}' is not valid JSON: {}", path, e.what());
  }
  if (!j.is_object()) fail("'{}': expected a JSON object, found {}", path, j.type_name());
  return j;
}

}  // namespace saelab
