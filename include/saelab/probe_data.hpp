// The sparse-probing suite's data (method.md §4): labelled text datasets from shared/probes and
// one-vs-rest binary tasks over them, listed in a JSON data file (data/probe_tasks.json; users add
// their own labelled JSONL there). Splits are deterministic and by group (document, page, file), so
// e.g. translations of one help page never straddle train and test.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace saelab {

struct LabeledText {
  std::string text, label, group;
};

struct ProbeDataset {
  std::string name, family;
  std::vector<LabeledText> items;
};

struct ProbeTask {
  std::string name;     // "<dataset>/<positive>"
  std::string family;
  std::string dataset;  // index into the loaded datasets by name
  std::string positive;
};

struct ProbeSuite {
  std::vector<ProbeDataset> datasets;
  std::vector<ProbeTask> tasks;
  const ProbeDataset& dataset(const std::string& name) const;  // throws Error
};

// Loads the task file and every dataset it names (paths relative to `data_root`). Throws Error
// naming the file and the problem (missing file, unknown format, a task whose positive label
// does not occur).
ProbeSuite load_probe_suite(const std::string& task_file, const std::string& data_root);

struct ProbeSplit {
  std::vector<std::string> train_text, test_text;
  std::vector<int> train_label, test_label;  // 1 = positive
  std::vector<std::string> train_group, test_group;
};

// Balanced one-vs-rest split: test groups are those whose hash falls in the last `test_fraction`;
// each side samples up to n/2 positives and as many negatives (seeded, deterministic).
ProbeSplit make_probe_split(const ProbeDataset& ds, const std::string& positive, int n_train, int n_test,
                            uint64_t seed, double test_fraction = 0.2);

}  // namespace saelab
