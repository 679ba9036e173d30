// `saelab report`: one self-contained HTML file (inline SVG charts, no network) from an experiment
// directory (experiment.hpp), plus the data behind it as JSON and CSV:
//   <dir>/report.html, <dir>/report.json, <dir>/report_summary.csv
#pragma once
#include <nlohmann/json.hpp>
#include <string>

namespace saelab {

// Per probing score (probe_accuracy, probe_f1, probe_top1_accuracy): the best run by its headline
// and, against every other run scored on the same tasks, a paired bootstrap over the tasks of the
// difference (paired_bootstrap.hpp). runs: rows with "run", "name", the headline keys and
// "probing_tasks" {"task", "family", per-task "sae_test_accuracy", "sae_test_f1",
// "sae_top_1_test_accuracy"}. The summary names a winner only where every difference is significant.
nlohmann::json probing_significance(const nlohmann::json& runs);
// Collects the runs' results into one JSON document (the report's data).
nlohmann::json collect_report_data(const std::string& experiment_dir);
// Renders the HTML from that data.
std::string render_report_html(const nlohmann::json& data);
// Both, written atomically into the experiment directory; returns the HTML path.
std::string write_report(const std::string& experiment_dir);

}  // namespace saelab
