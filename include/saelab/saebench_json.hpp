// The envelope every SAEBench eval output carries (sae_bench/evals/base_eval_output.py,
// BaseEvalOutput): eval_type_id, eval_config, eval_id, datetime_epoch_millis, eval_result_metrics,
// eval_result_details, eval_result_unstructured, sae_bench_commit_hash, sae_lens_id,
// sae_lens_release_id, sae_lens_version, sae_cfg_dict. scripts/reference/validate_saebench_json.py
// runs SAEBench's pydantic classes over saelab's files; test_eval_core guards the types without Python.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

namespace saelab {

// The sae-bench release whose code saelab's metric definitions and JSON layout were checked against
// (goldens in tests/data/saebench_core). saelab writes it as sae_bench_commit_hash: SAEBench did
// not run, so there is no commit of it to name, and the field must be a string.
inline constexpr const char* kSaeBenchCheckedAgainst = "saelab: definitions of sae-bench 0.6.0 (PyPI)";

// A random eval_id (UUID v4) and the current time in ms since the epoch.
std::string new_eval_id();
int64_t now_epoch_millis();

// `result` with the provenance fields SAEBench requires added: sae_bench_commit_hash (a string) and
// sae_lens_id, sae_lens_release_id, sae_lens_version (str | None: null, since the SAE is not from
// SAELens' registry and SAELens did not run the evaluation).
nlohmann::json with_saebench_provenance(nlohmann::json result);

}  // namespace saelab
