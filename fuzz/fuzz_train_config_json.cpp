// Run configs in JSON (a run's resolved config.json, run.json): see fuzz_train_config.hpp.
#include "fuzz_train_config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  saelab::fuzz::fuzz_run_config("config.json", data, size);
  return 0;
}
