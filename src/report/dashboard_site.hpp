// The pieces of write_dashboard_site (dashboard.hpp): the site's data files, its page and the
// SAEDashboard-layout export, each a pure function of DashboardData so tests can check them apart.
//
// Site layout (docs/formats.md, "Feature dashboards"):
//   index.html                      the page (HTML + CSS + JS inline, no network)
//   data/meta.js                    run, settings and the SAEs       key "meta"
//   data/vocab.js                   display string per token id      key "vocab"
//   data/sae<s>/latents.js          the latent table of SAE s        key "sae<s>/latents"
//   data/sae<s>/search.js           context windows for the search   key "sae<s>/search"
//   data/sae<s>/chunk_<c>.js        per-latent detail, kChunkLatents latents a file   key "sae<s>/chunk_<c>"
//   export/sae<s>/batch-<b>.json    SAEDashboard's NeuronpediaDashboardBatch JSON
//   export/sae<s>/skipped_indexes.json
// Every data file is one statement, `window.SAELAB_DATA["<key>"] = <JSON>;`, so the page loads it with
// a <script> element (fetch() of JSON is refused on file://).
#pragma once
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "saelab/dashboard.hpp"

namespace saelab::dashboard {

constexpr int kChunkLatents = 64;     // latents per chunk file: a 16k-latent SAE is 256 files
constexpr int kTopTokens = 10;        // distinct centre tokens of the top examples, per table row
constexpr int kSearchExamples = 5;    // top examples per latent whose windows the text search reads
constexpr int kSearchWindow = 5;      // tokens either side of the centre in those windows
constexpr double kDensityBinWidth = 0.25;  // decades per bar of the density histogram
constexpr int kExportBatch = 128;     // features per batch-<b>.json (SAEDashboard's default)

// Throws saelab::Error naming the SAE, the latent and the defect (sizes that disagree, token ids
// outside the vocabulary, a hierarchy whose sizes do not add up, ...).
void check_dashboard_data(const DashboardData& d);

// `samples` (ascending) split into n_bins groups of equal count (the first groups one smaller when
// it does not divide); groups that would be empty are left out.
struct QuantileBin {
  size_t begin = 0, end = 0;  // samples[begin, end)
  float lo = 0.f, hi = 0.f;   // the values of its first and last sample
};
std::vector<QuantileBin> quantile_bins(const std::vector<LatentExample>& samples, int n_bins);

// log10(density) histogram of the SAE's live latents, bars kDensityBinWidth wide from `lo` (a
// multiple of the width at or below the rarest live latent) up to density 1; dead latents apart.
struct DensityHistogram {
  double lo = 0.0;
  std::vector<int64_t> counts;
  int64_t dead = 0;
};
DensityHistogram density_histogram(const SaeDashboard& sae, int64_t n_tokens);

// The JSON of each data file (shapes in docs/formats.md).
nlohmann::json site_meta(const DashboardData& d);
nlohmann::json vocab_json(const DashboardData& d);
nlohmann::json latent_table(const DashboardData& d, int s);
nlohmann::json search_windows(const DashboardData& d, int s);
nlohmann::json latent_chunk(const DashboardData& d, int s, int chunk);
int n_chunks(const SaeDashboard& sae);

// JSON text with invalid UTF-8 (a byte-level token's partial character) replaced by U+FFFD.
std::string dump_json(const nlohmann::json& j);
std::string dump_json(const nlohmann::ordered_json& j);
// `window.SAELAB_DATA["<key>"] = <JSON>;\n`
std::string data_script(const std::string& key, const nlohmann::json& value);

// The export: (path relative to the site, contents) of every file under export/.
std::vector<std::pair<std::string, std::string>> export_files(const DashboardData& d);
// One NeuronpediaDashboardBatch (keys in SAEDashboard's order) for latents [first, last) of SAE s.
nlohmann::ordered_json export_batch(const DashboardData& d, int s, int first, int last);

// The page: HTML, CSS and the viewer's JavaScript (viewer_js); data-independent.
std::string index_html();
const char* viewer_js();

}  // namespace saelab::dashboard
