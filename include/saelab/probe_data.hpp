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
  // Labels its negatives are drawn from: the positives of the dataset's other tasks (SAEBench's
  // "chosen classes" of the dataset); for a dataset with one task, every other label.
  std::vector<std::string> negatives;
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

// Balanced one-vs-rest split as SAEBench builds it (dataset_utils + probe_training.prepare_probe_data).
// Test groups are those whose hash falls in the last `test_fraction`. On each side every class has
// one seeded sample of up to n/2 texts, the same whichever task asks (so tasks of a dataset share
// texts). The positives are the positive class's sample (P texts); the negatives take
// ceil(P / C) at random from each of the C negative classes' samples (more from the others where
// one is short), then P of those at random. Where fewer than P negatives exist, P shrinks to match.
// Deterministic by seed; SAEBench redraws the negatives for every probe, saelab draws once per task.
ProbeSplit make_probe_split(const ProbeDataset& ds, const std::string& positive,
                            const std::vector<std::string>& negatives, int n_train, int n_test, uint64_t seed,
                            double test_fraction = 0.2);

}  // namespace saelab
