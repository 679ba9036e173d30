// The experiment's feature-absorption phase (experiment.cpp runs it after sparse probing).
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace saelab {

struct ExperimentConfig;
class LanguageModel;

// Feature absorption (SAEBench's first-letter task, absorption.hpp) for every run directory in
// `dirs` that has neither eval_absorption.json nor absorption_skipped.json: the LM half (vocabulary,
// prompts, activations, first-letter probe) once for all of them, then each SAE's k-sparse probing
// and absorption. When the model's first-letter probe is too weak for SAEBench's min_feats_for_eval
// (the result would be undefined), each run gets absorption_skipped.json with the reason instead,
// so a resumed experiment does not pay for the LM half again.
void absorption_phase(const ExperimentConfig& cfg, const LanguageModel& model, const std::vector<std::string>& dirs);

// The summary row's absorption fields from <dir>/eval_absorption.json, when it exists:
// absorption_fraction, full_absorption, absorption_split_features and, for a hierarchical SAE,
// absorption_by_children (the share of absorbed words whose largest absorber is a child of the
// letter's main parent).
void add_absorption_fields(const std::string& dir, nlohmann::json& row);

}  // namespace saelab
