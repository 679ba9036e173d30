// `saelab report`: one self-contained HTML file (inline SVG charts, no network) from an experiment
// directory (experiment.hpp), plus the data behind it as JSON and CSV:
//   <dir>/report.html, <dir>/report.json, <dir>/report_summary.csv
#pragma once
#include <nlohmann/json.hpp>
#include <string>

namespace saelab {

// Collects the runs' results into one JSON document (the report's data).
nlohmann::json collect_report_data(const std::string& experiment_dir);
// Renders the HTML from that data.
std::string render_report_html(const nlohmann::json& data);
// Both, written atomically into the experiment directory; returns the HTML path.
std::string write_report(const std::string& experiment_dir);

}  // namespace saelab
