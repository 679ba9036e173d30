// The dashboard site's data files: what each holds is documented in docs/formats.md ("Feature
// dashboards"); the page (dashboard_assets.cpp) reads them.
#include <algorithm>
#include <charconv>
#include <cmath>

#include "dashboard_site.hpp"
#include "saelab/error.hpp"

namespace saelab::dashboard {

using json = nlohmann::json;

namespace {

// A float as the shortest decimal that reads back to it: nlohmann stores doubles, and 0.1f widened
// to double would print as 0.10000000149011612, tripling the size of the activation arrays.
double fv(float v) {
  if (v == 0.f || !std::isfinite(v)) return static_cast<double>(v);
  char buf[32];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  double d = 0.0;
  std::from_chars(buf, r.ptr, d);
  return d;
}

// An activation inside an example window, to the 3 significant digits the page shows: these arrays
// are most of the site's bytes (F · (top_k + samples) · (2·window + 1) values), and zeros, the
// commonest value, are written as 0.
json act3(float v) {
  if (v == 0.f || !std::isfinite(v)) return v == 0.f ? json(0) : json(nullptr);
  char buf[32];
  const auto r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::general, 3);
  double d = 0.0;
  std::from_chars(buf, r.ptr, d);
  return d;
}

json float_array(const std::vector<float>& v) {
  json a = json::array();
  for (float x : v) a.push_back(fv(x));
  return a;
}

json example_json(const LatentExample& e) {
  json t = json::array();
  for (int32_t id : e.tokens) t.push_back(id);
  json a = json::array();
  for (float x : e.acts) a.push_back(act3(x));
  return {{"ctx", e.context}, {"pos", e.position}, {"c", e.centre}, {"v", fv(e.value)}, {"t", std::move(t)},
          {"a", std::move(a)}};
}

json pairs_json(const std::vector<std::pair<int32_t, float>>& v) {
  json a = json::array();
  for (const auto& [id, x] : v) a.push_back({id, fv(x)});
  return a;
}

std::string sae_label(const DashboardData& d, size_t s) {
  const std::string& n = d.saes[s].name;
  return fmt::format("SAE {} ('{}')", s, n);
}

void check_example(const DashboardData& d, size_t s, size_t i, const char* what, size_t j, const LatentExample& e) {
  const auto where = [&] { return fmt::format("{} latent {}: {} example {}", sae_label(d, s), i, what, j); };
  if (e.tokens.size() != e.acts.size())
    fail("dashboard data: {} has {} tokens but {} activations", where(), e.tokens.size(), e.acts.size());
  if (e.tokens.empty() || e.centre < 0 || static_cast<size_t>(e.centre) >= e.tokens.size())
    fail("dashboard data: {} has centre {} outside its {} tokens", where(), e.centre, e.tokens.size());
  for (int32_t id : e.tokens)
    if (id < 0 || static_cast<size_t>(id) >= d.vocab.size())
      fail("dashboard data: {} has token id {} outside the vocabulary of {}", where(), id, d.vocab.size());
}

}  // namespace

void check_dashboard_data(const DashboardData& d) {
  if (d.saes.empty()) fail("dashboard data: no SAEs");
  if (d.n_tokens < 0) fail("dashboard data: n_tokens is {}", d.n_tokens);
  const size_t S = d.saes.size();
  for (size_t s = 0; s < S; ++s) {
    const SaeDashboard& sae = d.saes[s];
    const size_t F = sae.latents.size();
    if (F == 0) fail("dashboard data: {} has no latents", sae_label(d, s));
    if (sae.cfg.d_sae != 0 && static_cast<size_t>(sae.cfg.d_sae) != F)
      fail("dashboard data: {} has d_sae {} in its config but {} latents", sae_label(d, s), sae.cfg.d_sae, F);
    if (!sae.directions.empty() && sae.directions.size() != F)
      fail("dashboard data: {} has {} latents but {} directions", sae_label(d, s), F, sae.directions.size());
    for (const auto* w : {&sae.w_freq, &sae.w_mag, &sae.w_final})
      if (w->size() != (sae.w_freq.empty() ? 0 : F))
        fail("dashboard data: {} has {} latents and penalty weights of sizes {}, {}, {} (expected all {} or all 0)",
             sae_label(d, s), F, sae.w_freq.size(), sae.w_mag.size(), sae.w_final.size(), F);
    if (sae.cfg.architecture == SaeArchitecture::Hierarchical) {
      const int64_t P = sae.cfg.n_parents, m = sae.cfg.children_per_parent;
      if (P <= 0 || m <= 0 || P * (1 + m) != static_cast<int64_t>(F))
        fail("dashboard data: {} is hierarchical with {} parents × {} children, which is not its {} latents",
             sae_label(d, s), P, m, F);
    }
    for (size_t i = 0; i < F; ++i) {
      const LatentSummary& l = sae.latents[i];
      if (l.fires < 0 || l.fires > d.n_tokens)
        fail("dashboard data: {} latent {} fires on {} of {} tokens", sae_label(d, s), i, l.fires, d.n_tokens);
      if (!l.hist.empty() && l.hist.size() != static_cast<size_t>(kHistBins))
        fail("dashboard data: {} latent {} has {} histogram bins, expected {}", sae_label(d, s), i, l.hist.size(),
             kHistBins);
      for (size_t j = 0; j < l.top.size(); ++j) check_example(d, s, i, "top", j, l.top[j]);
      for (size_t j = 0; j < l.samples.size(); ++j) check_example(d, s, i, "sample", j, l.samples[j]);
      if (sae.directions.empty()) continue;
      const LatentDirection& dir = sae.directions[i];
      for (const auto* v : {&dir.promoted, &dir.suppressed})
        for (const auto& [id, x] : *v)
          if (id < 0 || static_cast<size_t>(id) >= d.vocab.size())
            fail("dashboard data: {} latent {}: logit token id {} outside the vocabulary of {}", sae_label(d, s), i,
                 id, d.vocab.size());
      for (const auto& [j, c] : dir.neighbours)
        if (j < 0 || static_cast<size_t>(j) >= F)
          fail("dashboard data: {} latent {}: neighbour {} outside its {} latents", sae_label(d, s), i, j, F);
      if (dir.matches.size() > S - 1)
        fail("dashboard data: {} latent {}: {} matches but only {} other SAEs", sae_label(d, s), i,
             dir.matches.size(), S - 1);
      for (size_t o = 0; o < dir.matches.size(); ++o) {
        const size_t other = o < s ? o : o + 1;
        const int32_t j = dir.matches[o].first;
        if (j < 0 || static_cast<size_t>(j) >= d.saes[other].latents.size())
          fail("dashboard data: {} latent {}: match {} in {} is outside its {} latents", sae_label(d, s), i, j,
               sae_label(d, other), d.saes[other].latents.size());
      }
    }
  }
}

std::vector<QuantileBin> quantile_bins(const std::vector<LatentExample>& samples, int n_bins) {
  std::vector<QuantileBin> out;
  const size_t n = samples.size(), Q = static_cast<size_t>(std::max(1, n_bins));
  for (size_t b = 0; b < Q; ++b) {
    const size_t begin = b * n / Q, end = (b + 1) * n / Q;
    if (begin == end) continue;
    out.push_back({begin, end, samples[begin].value, samples[end - 1].value});
  }
  return out;
}

DensityHistogram density_histogram(const SaeDashboard& sae, int64_t n_tokens) {
  DensityHistogram h;
  double min_log = 0.0;
  bool any = false;
  for (const LatentSummary& l : sae.latents) {
    if (l.fires == 0) {
      ++h.dead;
      continue;
    }
    const double x = std::log10(l.density(n_tokens));
    min_log = any ? std::min(min_log, x) : x;
    any = true;
  }
  if (!any) return h;
  // 1e-9: log10(1e-3) may come out a hair above -3 and must land in the bar starting at -3.
  h.lo = std::floor(min_log / kDensityBinWidth + 1e-9) * kDensityBinWidth;
  const int nb = std::max(1, static_cast<int>(std::ceil(-h.lo / kDensityBinWidth - 1e-9)));
  h.counts.assign(static_cast<size_t>(nb), 0);
  for (const LatentSummary& l : sae.latents) {
    if (l.fires == 0) continue;
    const double x = std::log10(l.density(n_tokens));
    const int b = static_cast<int>(std::floor((x - h.lo) / kDensityBinWidth + 1e-9));
    ++h.counts[static_cast<size_t>(std::clamp(b, 0, nb - 1))];
  }
  return h;
}

int n_chunks(const SaeDashboard& sae) {
  return static_cast<int>((sae.latents.size() + kChunkLatents - 1) / kChunkLatents);
}

json site_meta(const DashboardData& d) {
  const DashboardConfig& c = d.cfg;
  json saes = json::array();
  for (size_t s = 0; s < d.saes.size(); ++s) {
    const SaeDashboard& sae = d.saes[s];
    const bool hier = sae.cfg.architecture == SaeArchitecture::Hierarchical;
    saes.push_back({{"name", sae.name.empty() ? fmt::format("SAE {}", s) : sae.name},
                    {"sae_dir", sae.sae_dir},
                    {"architecture", sae_architecture_name(sae.cfg.architecture)},
                    {"d_in", sae.cfg.d_in},
                    {"d_sae", sae.latents.size()},
                    {"k", sae.cfg.k},
                    {"hook_name", sae.cfg.hook_name},
                    {"n_parents", hier ? sae.cfg.n_parents : 0},
                    {"children_per_parent", hier ? sae.cfg.children_per_parent : 0},
                    {"has_weights", !sae.w_freq.empty()},
                    {"has_directions", !sae.directions.empty()},
                    {"n_chunks", n_chunks(sae)},
                    {"data", fmt::format("data/sae{}", s)},
                    {"export", c.export_batches ? json(fmt::format("export/sae{}", s)) : json()}});
  }
  return {{"format", "saelab_dashboard"},
          {"version", 1},
          {"model_name", d.model_name},
          {"hook_name", d.hook_name},
          {"n_tokens", d.n_tokens},
          {"n_contexts", d.n_contexts},
          {"context_size", d.context_size},
          {"chunk_latents", kChunkLatents},
          {"hist", {{"lo", kHistLo}, {"hi", kHistHi}, {"bins", kHistBins}}},
          {"settings",
           {{"corpus", c.corpus},
            {"max_tokens", c.max_tokens},
            {"top_k", c.top_k},
            {"samples", c.samples},
            {"quantile_bins", c.quantile_bins},
            {"window", c.window},
            {"n_logits", c.n_logits},
            {"n_neighbours", c.n_neighbours},
            {"dense_threshold", c.dense_threshold},
            {"seed", c.seed}}},
          {"seconds",
           {{"lm", d.seconds_lm}, {"sae", d.seconds_sae}, {"bookkeeping", d.seconds_bookkeeping},
            {"total", d.seconds_total}}},
          {"saes", std::move(saes)}};
}

json vocab_json(const DashboardData& d) { return d.vocab; }

json latent_table(const DashboardData& d, int s) {
  const SaeDashboard& sae = d.saes[static_cast<size_t>(s)];
  json fires = json::array(), mx = json::array(), mean = json::array(), top = json::array();
  for (const LatentSummary& l : sae.latents) {
    fires.push_back(l.fires);
    mx.push_back(fv(l.max));
    mean.push_back(fv(static_cast<float>(l.mean())));
    std::vector<int32_t> ids;
    for (const LatentExample& e : l.top) {
      const int32_t id = e.tokens[static_cast<size_t>(e.centre)];
      if (std::find(ids.begin(), ids.end(), id) == ids.end()) ids.push_back(id);
      if (ids.size() == static_cast<size_t>(kTopTokens)) break;
    }
    top.push_back(ids);
  }
  const DensityHistogram h = density_histogram(sae, d.n_tokens);
  json out = {{"fires", std::move(fires)},
              {"max", std::move(mx)},
              {"mean", std::move(mean)},
              {"top_tokens", std::move(top)},
              {"density_hist", {{"lo", h.lo}, {"width", kDensityBinWidth}, {"counts", h.counts}, {"dead", h.dead}}}};
  if (!sae.w_freq.empty()) {
    out["w_freq"] = float_array(sae.w_freq);
    out["w_mag"] = float_array(sae.w_mag);
    out["w_final"] = float_array(sae.w_final);
  }
  return out;
}

json search_windows(const DashboardData& d, int s) {
  json out = json::array();
  for (const LatentSummary& l : d.saes[static_cast<size_t>(s)].latents) {
    json wins = json::array();
    for (size_t j = 0; j < l.top.size() && j < static_cast<size_t>(kSearchExamples); ++j) {
      const LatentExample& e = l.top[j];
      const int n = static_cast<int>(e.tokens.size());
      const int a = std::max(0, e.centre - kSearchWindow), b = std::min(n, e.centre + kSearchWindow + 1);
      wins.push_back(std::vector<int32_t>(e.tokens.begin() + a, e.tokens.begin() + b));
    }
    out.push_back(std::move(wins));
  }
  return out;
}

json latent_chunk(const DashboardData& d, int s, int chunk) {
  const SaeDashboard& sae = d.saes[static_cast<size_t>(s)];
  const size_t first = static_cast<size_t>(chunk) * kChunkLatents,
               last = std::min(sae.latents.size(), first + kChunkLatents);
  json latents = json::array();
  for (size_t i = first; i < last; ++i) {
    const LatentSummary& l = sae.latents[i];
    json top = json::array(), bins = json::array();
    for (const LatentExample& e : l.top) top.push_back(example_json(e));
    for (const QuantileBin& b : quantile_bins(l.samples, d.cfg.quantile_bins)) {
      json ex = json::array();
      for (size_t j = b.begin; j < b.end; ++j) ex.push_back(example_json(l.samples[j]));
      bins.push_back({{"lo", fv(b.lo)},
                      {"hi", fv(b.hi)},
                      {"n", b.end - b.begin},
                      {"share", static_cast<double>(b.end - b.begin) / static_cast<double>(l.samples.size())},
                      {"ex", std::move(ex)}});
    }
    json lj = {{"top", std::move(top)}, {"bins", std::move(bins)}, {"hist", l.hist}};
    if (!sae.directions.empty()) {
      const LatentDirection& dir = sae.directions[i];
      json matches = json::array();
      for (size_t o = 0; o < dir.matches.size(); ++o)
        matches.push_back({{"sae", o < static_cast<size_t>(s) ? o : o + 1},
                           {"latent", dir.matches[o].first},
                           {"cos", fv(dir.matches[o].second)}});
      lj["promoted"] = pairs_json(dir.promoted);
      lj["suppressed"] = pairs_json(dir.suppressed);
      lj["neighbours"] = pairs_json(dir.neighbours);
      lj["matches"] = std::move(matches);
    }
    latents.push_back(std::move(lj));
  }
  return {{"first", first}, {"latents", std::move(latents)}};
}

std::string dump_json(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }
std::string dump_json(const nlohmann::ordered_json& j) {
  return j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

std::string data_script(const std::string& key, const json& value) {
  return "window.SAELAB_DATA[" + json(key).dump() + "] = " + dump_json(value) + ";\n";
}

}  // namespace saelab::dashboard
