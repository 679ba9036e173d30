// SAEBench's absorption_first_letter output (evals/absorption/eval_output.py, main.run_eval), with
// saelab's per-letter detail and the hierarchy's answer under eval_result_unstructured.
#include <cmath>
#include <string>

#include "saelab/absorption.hpp"
#include "saelab/error.hpp"
#include "saelab/saebench_json.hpp"

namespace saelab {

using json = nlohmann::json;

namespace {

double mean_of(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return v.empty() ? 0.0 : s / static_cast<double>(v.size());
}

// statistics.stdev: the sample standard deviation (n − 1); needs two values.
json stdev_of(const std::vector<double>& v) {
  if (v.size() < 2) return nullptr;
  const double m = mean_of(v);
  double s = 0;
  for (double x : v) s += (x - m) * (x - m);
  return std::sqrt(s / static_cast<double>(v.size() - 1));
}

json eval_config(const AbsorptionConfig& c, const std::string& model_name) {
  return {{"model_name", model_name},
          {"random_seed", c.seed},
          {"f1_jump_threshold", c.f1_jump_threshold},
          {"max_k_value", c.max_k_value},
          {"prompt_template", c.prompt_template},
          {"prompt_token_pos", c.prompt_token_pos},
          {"llm_batch_size", c.llm_batch_size},
          {"llm_dtype", "float32"},
          {"k_sparse_probe_l1_decay", c.ksparse_l1_decay},
          {"k_sparse_probe_batch_size", c.ksparse_batch_size},
          {"k_sparse_probe_num_epochs", c.ksparse_epochs},
          {"min_GT_probe_f1", c.min_probe_f1},
          {"min_feats_for_eval", c.min_letters},
          {"eval_k_sparse_probe_batch_size", 24},
          {"precalc_k_sparse_probe_sae_acts", true}};
}

std::string letter_name(int l) { return std::string(1, static_cast<char>('a' + l)); }

// Whether a letter enters SAEBench's details: its probe is good enough and got some word right.
bool included(const LetterAbsorption& L, const AbsorptionConfig& c) {
  return L.probe_f1 > c.min_probe_f1 && L.num_probe_true_positives > 0;
}

json hierarchy_section(const AbsorptionResult& r, const AbsorptionConfig& c) {
  json per = json::array();
  int64_t absorbed = 0, by_children = 0;
  for (const LetterAbsorption& L : r.letters) {
    if (!included(L, c)) continue;
    absorbed += L.absorbed_words;
    by_children += L.absorbed_by_children;
    per.push_back({{"first_letter", letter_name(L.letter)},
                   {"main_parent", L.main_parent},
                   {"absorbed_words", L.absorbed_words},
                   {"absorbed_by_children_of_main_parent", L.absorbed_by_children},
                   {"share", L.absorbed_words ? json(double(L.absorbed_by_children) / L.absorbed_words) : json(nullptr)}});
  }
  return {{"description",
           "per letter: its main parent (the parent of its first split feature); among the true positives with "
           "absorption (fraction > 0), how many have as largest absorber a child of that parent"},
          {"absorbed_words", absorbed},
          {"absorbed_by_children_of_main_parent", by_children},
          {"share", absorbed ? json(double(by_children) / absorbed) : json(nullptr)},
          {"per_letter", per}};
}

}  // namespace

json absorption_json(const AbsorptionResult& r, const AbsorptionData& data, const AbsorptionConfig& cfg,
                     const std::string& model_name, const json& sae_cfg) {
  SAELAB_ASSERT(r.letters.size() == kLetters, "absorption_json: one result per letter");
  std::vector<double> fractions, full, splits;
  json details = json::array(), letters = json::array();
  for (const LetterAbsorption& L : r.letters) {
    letters.push_back({{"first_letter", letter_name(L.letter)},
                       {"probe_f1", L.probe_f1},
                       {"k_sparse_f1", L.k_f1},
                       {"split_features", L.split_feats},
                       {"num_probe_true_positives", L.num_probe_true_positives},
                       {"in_eval_result_details", included(L, cfg)}});
    if (!included(L, cfg)) continue;
    fractions.push_back(L.mean_absorption_fraction);
    full.push_back(L.full_absorption_rate);
    splits.push_back(static_cast<double>(L.split_feats.size()));
    details.push_back({{"first_letter", letter_name(L.letter)},
                       {"mean_absorption_fraction", L.mean_absorption_fraction},
                       {"full_absorption_rate", L.full_absorption_rate},
                       {"num_full_absorption", L.num_full_absorption},
                       {"num_probe_true_positives", L.num_probe_true_positives},
                       {"num_split_features", static_cast<int>(L.split_feats.size())}});
  }
  if (!r.evaluated || details.empty())
    fail("absorption: {} letter(s) have a first-letter probe with test F1 > {} on {} at {}, SAEBench needs {} "
         "(min_feats_for_eval, --min-letters); the model does not represent first letters well enough there",
         details.size(), cfg.min_probe_f1, model_name, data.hook, cfg.min_letters);
  json unstructured = {{"saelab_per_letter", letters},
                       {"saelab_vocabulary_words", data.vocab.size()},
                       {"saelab_train_words", data.train_words.size()},
                       {"saelab_test_words", data.test_words.size()},
                       {"saelab_word_position_mismatches", data.word_position_mismatches}};
  if (r.hierarchical) unstructured["saelab_hierarchy"] = hierarchy_section(r, cfg);
  json out = {{"eval_type_id", "absorption_first_letter"},
              {"eval_config", eval_config(cfg, model_name)},
              {"eval_id", new_eval_id()},
              {"datetime_epoch_millis", now_epoch_millis()},
              {"eval_result_metrics",
               {{"mean",
                 {{"mean_absorption_fraction_score", mean_of(fractions)},
                  {"mean_full_absorption_score", mean_of(full)},
                  {"mean_num_split_features", mean_of(splits)},
                  {"std_dev_absorption_fraction_score", stdev_of(fractions)},
                  {"std_dev_full_absorption_score", stdev_of(full)},
                  {"std_dev_num_split_features", stdev_of(splits)}}}}},
              {"eval_result_details", details},
              {"eval_result_unstructured", unstructured},
              {"sae_cfg_dict", sae_cfg}};
  return with_saebench_provenance(out);
}

}  // namespace saelab
