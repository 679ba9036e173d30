// The run-config targets (TOML and JSON): one file read as a training config (load_train_config)
// and as an experiment config (load_experiment_config), whose runs are then resolved into training
// configs the way `saelab experiment` does (run_one: [train] keys, then the run's overrides).
#pragma once
#include "fuzz_common.hpp"
#include "saelab/experiment.hpp"
#include "saelab/train.hpp"

namespace saelab::fuzz {

inline void fuzz_run_config(const std::string& name, const uint8_t* data, size_t size) {
  const std::string path = input_file(name, data, size);
  expect_no_crash([&] { (void)load_train_config(path); });
  expect_no_crash([&] {
    const ExperimentConfig c = load_experiment_config(path, "/nonexistent-shared-root");
    for (const auto& run : c.runs) {
      expect_no_crash([&] {
        nlohmann::json tc = c.train;
        for (auto it = run.begin(); it != run.end(); ++it) {
          if (it.key() == "name") continue;
          if (it.value().is_object())
            for (auto jt = it.value().begin(); jt != it.value().end(); ++jt) tc[jt.key()] = jt.value();
          else
            tc[it.key()] = it.value();
        }
        (void)train_config_from_json(tc, "run");
      });
    }
  });
}

}  // namespace saelab::fuzz
