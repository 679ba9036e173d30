#include "saelab/report.hpp"

#include <algorithm>
#include <filesystem>
#include <map>
#include <sstream>

#include <fmt/ranges.h>

#include "saelab/alpha.hpp"
#include "saelab/atomic_file.hpp"
#include "saelab/error.hpp"
#include "saelab/paired_bootstrap.hpp"
#include "saelab/seed_statistics.hpp"
#include "svg_chart.hpp"

namespace saelab {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

json read_json_if(const std::string& path) { return file_exists(path) ? json::parse(read_file(path)) : json(nullptr); }

// alpha_log.csv -> {level: {"step": [...], "alpha": [...]}}, thinned to at most ~300 points.
json alpha_curves(const std::string& path) {
  if (!file_exists(path)) return nullptr;
  const std::vector<AlphaTrajectory> lv = read_alpha_log(path);
  json out = json::object();
  for (size_t l = 0; l < lv.size(); ++l) {
    const size_t n = lv[l].step.size(), stride = std::max<size_t>(1, n / 300);
    json steps = json::array(), alphas = json::array();
    for (size_t i = 0; i < n; i += stride) {
      steps.push_back(lv[l].step[i]);
      alphas.push_back(lv[l].alpha[i]);
    }
    out[std::to_string(l)] = {{"step", steps}, {"alpha", alphas}};
  }
  return out;
}

// The per-task probing scores behind a run's headline numbers: {"task", "family", and per score key
// a list}, in the file's task order.
const char* const kTaskScores[] = {"sae_test_accuracy", "sae_test_f1", "sae_top_1_test_accuracy"};

json probing_tasks(const json& probing) {
  if (probing.is_null() || !probing.contains("eval_result_unstructured")) return nullptr;
  json out = {{"task", json::array()}, {"family", json::array()}};
  for (const char* k : kTaskScores) out[k] = json::array();
  for (const auto& t : probing["eval_result_unstructured"]["tasks"]) {
    out["task"].push_back(t.value("task", ""));
    out["family"].push_back(t.value("family", ""));
    for (const char* k : kTaskScores) out[k].push_back(t.value(k, 0.0));
  }
  return out;
}

// The metrics the report gives per method with a standard error over seeds.
const std::vector<std::string> kSeedMetrics = {"l0", "explained_variance", "explained_variance_centered", "ce_loss_score",
                                               "kl_div_score", "probe_accuracy",     "probe_f1",
                                               "probe_top1_accuracy", "probe_top1_f1", "absorption_fraction",
                                               "full_absorption"};
// The metrics whose best method the summary names only beyond the seed noise.
const std::vector<std::string> kSeedVerdicts = {"explained_variance_centered", "ce_loss_score", "kl_div_score"};

// One row per method for the probing bootstrap over tasks: per-task scores and headlines averaged
// over the method's seeds. Methods whose runs were not all probed on the same tasks are left out.
json method_probing_rows(const json& runs, const json& methods) {
  json out = json::array();
  for (const auto& m : methods) {
    std::vector<const json*> rs;
    for (const auto& r : runs)
      if (r["name"] == m["name"]) rs.push_back(&r);
    const json& first = (*rs.front())["probing_tasks"];
    bool same = !first.is_null();
    for (const json* r : rs) same = same && (*r)["probing_tasks"].is_object() && (*r)["probing_tasks"]["task"] == first["task"];
    if (!same) continue;
    json row = {{"run", m["name"]}, {"name", m["name"]}, {"probing_tasks", first}};
    for (const char* k : kTaskScores) {
      std::vector<double> mean(first[k].size(), 0.0);
      for (const json* r : rs)
        for (size_t t = 0; t < mean.size(); ++t) mean[t] += (*r)["probing_tasks"][k][t].get<double>() / rs.size();
      row["probing_tasks"][k] = mean;
    }
    for (const char* k : {"probe_accuracy", "probe_f1", "probe_top1_accuracy"})
      if (m.contains(k)) row[k] = m[k]["mean"];
    out.push_back(row);
  }
  return out;
}

}  // namespace

json probing_significance(const json& runs) {
  json out = json::object();
  const std::pair<const char*, const char*> keys[] = {{"probe_accuracy", "sae_test_accuracy"},
                                                      {"probe_f1", "sae_test_f1"},
                                                      {"probe_top1_accuracy", "sae_top_1_test_accuracy"}};
  for (const auto& [headline, per_task] : keys) {
    const json* best = nullptr;
    for (const auto& r : runs)
      if (r.contains(headline) && r[headline].is_number() && !r["probing_tasks"].is_null() &&
          (!best || r[headline] > (*best)[headline]))
        best = &r;
    if (!best) continue;
    const json& bt = (*best)["probing_tasks"];
    const auto fam = bt["family"].get<std::vector<std::string>>();
    const auto a = bt[per_task].get<std::vector<double>>();
    json cmp = json::array();
    for (const auto& r : runs) {
      if (&r == best || r["probing_tasks"].is_null()) continue;
      const json& rt = r["probing_tasks"];
      if (rt["task"] != bt["task"]) continue;  // not the same tasks: no paired comparison
      const PairedDifference d = paired_bootstrap(a, rt[per_task].get<std::vector<double>>(), fam);
      cmp.push_back({{"run", r["run"]}, {"name", r["name"]}, {"difference", d.mean}, {"lo", d.lo}, {"hi", d.hi},
                     {"significant", d.significant}});
    }
    out[headline] = {{"best_run", (*best)["run"]}, {"best_name", (*best)["name"]}, {"best", (*best)[headline]},
                     {"tasks", a.size()}, {"level", 0.95}, {"against", cmp}};
  }
  return out;
}

json collect_report_data(const std::string& dir) {
  const json summary = read_json_if(dir + "/summary.json");
  if (summary.is_null()) fail("'{}' has no summary.json: run `saelab experiment --out {}` first", dir, dir);
  json runs = json::array();
  for (const auto& row : summary) {
    const std::string rd = dir + "/" + row["run"].get<std::string>();
    json r = row;
    r["probing"] = read_json_if(rd + "/eval_sparse_probing.json");
    r["probing_tasks"] = probing_tasks(r["probing"]);
    if (!r["probing"].is_null()) {
      r["probing"].erase("sae_cfg_dict");
      r["probing"].erase("eval_result_unstructured");
    }
    r["alpha_curves"] = alpha_curves(rd + "/alpha_log.csv");
    r["alpha_summary"] = read_json_if(rd + "/alpha_summary.json");
    r["composition"] = read_json_if(rd + "/composition.json");
    const json dash = read_json_if(dir + "/dashboard_runs.json");  // run k of it is dashboard/index.html#sae=k
    if (dash.is_array())
      for (size_t k = 0; k < dash.size(); ++k)
        if (dash[k] == row["run"]) r["dashboard"] = fmt::format("dashboard/index.html#sae={}", k);
    r["stability"] = read_json_if(rd + "/stability.json");
    r["probe_persistence"] = read_json_if(rd + "/probe_persistence.json");
    runs.push_back(r);
  }
  std::vector<uint64_t> seeds;  // in the experiment's order
  for (const auto& r : summary)
    if (std::find(seeds.begin(), seeds.end(), r.value("seed", uint64_t{0})) == seeds.end())
      seeds.push_back(r.value("seed", uint64_t{0}));
  json data = {{"experiment", read_json_if(dir + "/experiment.json")},
               {"alpha_agreement", read_json_if(dir + "/alpha_agreement.json")},
               {"seeds", seeds},
               {"runs", runs}};
  if (seeds.size() > 1) {
    // Several seeds: per method mean ± standard error, verdicts from seed-paired differences, and
    // the probing bootstrap over tasks on seed-averaged scores.
    data["methods"] = aggregate_by_method(summary, kSeedMetrics);
    data["seed_significance"] = seed_significance(summary, kSeedVerdicts);
    data["significance"] = probing_significance(method_probing_rows(runs, data["methods"]));
  } else {
    data["significance"] = probing_significance(runs);
  }
  return data;
}

namespace {

using svg::escape;

std::string pm(const json& s, int digits) {  // "0.8123 ± 0.0041" from {"mean", "se"}
  return fmt::format("{:.{}f} ± {:.{}f}", s["mean"].get<double>(), digits, s["se"].get<double>(), digits);
}

// One summary line from a comparison {"best_name", "against": [{"name", "difference", "lo", "hi",
// "significant"}]}: the best is named only when every other is significantly lower. what: "run" or
// "method"; best_value: how the best's score reads; how: the test behind the intervals.
std::string verdict_line(const char* label, const json& g, const std::string& best_value, const std::string& how,
                         const char* what) {
  std::vector<std::string> tied;
  const json* closest = nullptr;
  for (const auto& c : g["against"]) {
    if (!c["significant"].get<bool>()) tied.push_back(escape(c["name"].get<std::string>()));
    if (!closest || c["difference"] < (*closest)["difference"]) closest = &c;
  }
  if (!closest) return "";
  const std::string best = escape(g["best_name"].get<std::string>());
  if (tied.empty())
    return fmt::format("<li>Best {}: <b>{}</b> ({}), ahead of every other {} beyond the noise: the closest, {}, by "
                       "{:+.4f} [{:+.4f}, {:+.4f}] ({}).</li>",
                       label, best, best_value, what, escape((*closest)["name"].get<std::string>()),
                       (*closest)["difference"].get<double>(), (*closest)["lo"].get<double>(),
                       (*closest)["hi"].get<double>(), how);
  return fmt::format("<li>{}: no significant difference between <b>{}</b> ({}, the highest) and {} ({}: each interval "
                     "of the difference includes 0); {} other {}(s) are significantly lower.</li>",
                     label, best, best_value, fmt::join(tied, ", "), how, g["against"].size() - tied.size(), what);
}

// Probing: the best run (or method, over seeds) only where a paired bootstrap over the tasks puts it
// ahead of every other.
std::string summary_probing(const json& data) {
  const json& sig = data.contains("significance") ? data["significance"] : json(nullptr);
  const size_t n_seeds = data.contains("seeds") ? data["seeds"].size() : 1;
  std::string h;
  for (auto [key, label] : {std::pair{"probe_accuracy", "sparse-probing accuracy (all latents)"},
                            std::pair{"probe_f1", "sparse-probing F1"},
                            std::pair{"probe_top1_accuracy", "top-1 probing accuracy"}}) {
    if (sig.is_null() || !sig.contains(key)) continue;
    const json& g = sig[key];
    const std::string how = fmt::format("paired bootstrap over the {} probing tasks{}, {:.0f}% intervals",
                                        g["tasks"].get<int>(),
                                        n_seeds > 1 ? fmt::format(" of scores averaged over {} seeds", n_seeds) : "",
                                        100 * g["level"].get<double>());
    h += verdict_line(label, g, fmt::format("{:.4f}", g["best"].get<double>()), how, n_seeds > 1 ? "method" : "run");
  }
  return h;
}

// Explained variance, CE and KL scores: with several seeds, the best method by its mean only where
// every seed-paired difference is significant; with one seed, the highest value and no verdict.
std::string summary_single_numbers(const json& data) {
  const std::pair<const char*, const char*> metrics[] = {{"explained_variance_centered", "explained variance (centred R²)"},
                                                         {"ce_loss_score", "CE loss recovered"},
                                                         {"kl_div_score", "KL divergence score"}};
  std::string h;
  if (data.contains("seed_significance")) {
    for (auto [key, label] : metrics) {
      if (!data["seed_significance"].contains(key)) continue;
      const json& g = data["seed_significance"][key];
      h += verdict_line(label, g, pm(g["best"], 4),
                        fmt::format("seed-paired differences over {} seeds, 95% t intervals", g["seeds"].size()),
                        "method");
    }
    return h;
  }
  for (auto [key, label] : metrics) {
    if (std::string(key) == "kl_div_score") continue;
    const json* top = nullptr;
    for (const auto& r : data["runs"])
      if (r.contains(key) && r[key].is_number() && (!top || r[key] > (*top)[key])) top = &r;
    if (top)
      h += fmt::format("<li>Highest {}: {} ({:.4f}, L0 {:.1f}); one seed, no error bar: not a verdict.</li>", label,
                       escape((*top)["name"].get<std::string>()), (*top)[key].get<double>(),
                       (*top)["l0"].get<double>());
  }
  return h;
}

std::string per_level(const json& alphas) {
  std::string out;
  for (const auto& a : alphas)
    out += (out.empty() ? "" : " / ") + (a.is_object() ? pm(a, 3) : fmt::format("{:.3f}", a.get<double>()));
  return out;
}

// Learned and naive α against the manual sweep (held-out J): one seed's comparison, or the
// seed-paired one across seeds.
std::string summary_alpha(const json& ag) {
  std::string h;
  if (ag.is_null()) return h;
  if (ag.contains("across_seeds")) {
    const json& a = ag["across_seeds"];
    if (!a.contains("best_manual")) return h;
    const json& best = a["best_manual"];
    h += fmt::format("<li>Manual sweep over {} seeds: best α = {} by mean held-out J ({}).</li>",
                     a["seeds"].size(), per_level(best["alpha"]), pm(best["J"], 4));
    for (const char* mode : {"learned", "naive"}) {
      if (!a.contains(mode)) continue;
      const json& m = a[mode];
      const json& gap = m["J_gap"];
      const std::string where =
          m["agrees"].get<bool>()
              ? "within one grid step of the sweep's optimum"
              : fmt::format("{:.2f} from the sweep's optimum at its farthest level, more than one grid step",
                            m["distance_to_best_manual"].get<double>());
      const std::string verdict =
          !gap["significant"].get<bool>()
              ? "no significant difference"
              : (gap["mean"].get<double>() < 0 ? "significantly lower" : "significantly higher");
      h += fmt::format("<li>{} α ends at {} (per level, mean ± standard error): {}; held-out J {:+.4g} ± {:.2g} "
                       "against the best manual run ({:+.2f}%; 95% t interval [{:+.4g}, {:+.4g}]: {}); below it in {} "
                       "of {} seeds.</li>",
                       mode, per_level(m["final_alpha"]), where, gap["mean"].get<double>(), gap["se"].get<double>(),
                       m["J_gap_percent"].get<double>(), gap["lo"].get<double>(), gap["hi"].get<double>(), verdict,
                       m["below_best_in_seeds"].get<int>(), gap["n"].get<int>());
    }
    return h;
  }
  if (ag["best_manual_alpha"].is_null()) return h;
  const json& best = ag.contains("best_manual_alpha_per_level") ? ag["best_manual_alpha_per_level"]
                                                                 : json::array({ag["best_manual_alpha"]});
  const double best_J = ag["best_manual_J"].get<double>();
  h += fmt::format("<li>Manual sweep: best α = {} by held-out J ({:.4g}).</li>", per_level(best), best_J);
  for (const char* mode : {"learned", "naive"})
    if (ag.contains(mode)) {
      const json& m = ag[mode];
      const std::string verdict =
          m["agrees"].get<bool>()
              ? "within one grid step of the sweep's optimum"
              : fmt::format("{:.2f} from the sweep's optimum at its farthest level, more than one grid step",
                            m["distance_to_best_manual"].get<double>());
      const double gap = m["J_gap"].get<double>();
      h += fmt::format("<li>{} α ends at {} (per level): {}; held-out J {:+.4g} against the best manual run ({:+.2f}%){}.</li>",
                       mode, per_level(m["final_alpha"]), verdict, gap, 100.0 * gap / best_J,
                       gap < 0 ? ", lower than every manual run's" : "");
    }
  return h;
}

// Series of the same name (one method's runs over seeds) merged into one: their y averaged point by
// point (the runs share x), or with `concatenate` their points pooled (a scatter of the seeds).
std::vector<svg::Series> merge_by_name(const std::vector<svg::Series>& in, bool concatenate = false) {
  std::vector<svg::Series> out;
  std::vector<int> count;
  for (const auto& s : in) {
    auto it = std::find_if(out.begin(), out.end(), [&](const svg::Series& o) { return o.name == s.name; });
    if (it == out.end()) {
      out.push_back(s);
      count.push_back(1);
      continue;
    }
    const size_t i = static_cast<size_t>(it - out.begin());
    if (concatenate || it->x != s.x) {
      it->x.insert(it->x.end(), s.x.begin(), s.x.end());
      it->y.insert(it->y.end(), s.y.begin(), s.y.end());
      continue;
    }
    for (size_t p = 0; p < s.y.size(); ++p) it->y[p] = (it->y[p] * count[i] + s.y[p]) / (count[i] + 1);
    ++count[i];
  }
  return out;
}

// Several seeds: one row per method, mean ± standard error over its seeds.
std::string methods_table(const json& methods, size_t n_seeds) {
  std::string h = fmt::format(
      "<h2>Results over {} seeds (mean ± standard error)</h2><table><tr><th>method</th><th>seeds</th><th>final α</th>"
      "<th>L0</th><th>EV (SAEBench)</th><th>EV (centred)</th><th>CE score</th><th>KL score</th><th>probe acc</th>"
      "<th>probe F1</th><th>top-1 acc</th><th>absorption</th><th>full abs.</th></tr>",
      n_seeds);
  auto cell = [](const json& m, const char* k, int digits) {
    return m.contains(k) ? "<td>" + pm(m[k], digits) + "</td>" : std::string("<td>–</td>");
  };
  for (const auto& m : methods)
    h += fmt::format("<tr><td>{}</td><td>{}</td><td>{}</td>{}{}{}{}{}{}{}{}{}{}</tr>", escape(m["name"].get<std::string>()),
                     m["seeds"].size(), m.contains("final_alpha") ? per_level(m["final_alpha"]) : "–",
                     cell(m, "l0", 2), cell(m, "explained_variance", 4), cell(m, "explained_variance_centered", 4),
                     cell(m, "ce_loss_score", 4),
                     cell(m, "kl_div_score", 4), cell(m, "probe_accuracy", 4), cell(m, "probe_f1", 4),
                     cell(m, "probe_top1_accuracy", 4), cell(m, "absorption_fraction", 4), cell(m, "full_absorption", 4));
  return h + "</table>";
}

// The run's name, linked to its page of the experiment's feature dashboard when there is one.
std::string run_cell(const json& r) {
  const std::string name = svg::escape(r["run"].get<std::string>());
  if (!r.contains("dashboard")) return name;
  return fmt::format("<a href=\"{}\" title=\"feature dashboard\">{}</a>", svg::escape(r["dashboard"].get<std::string>()), name);
}

// One row per run (per seed, when there are several).
std::string runs_table(const json& runs, bool several_seeds) {
  std::string h = several_seeds ? "<h2>Runs (one row per seed)</h2>" : "<h2>Results</h2>";
  h += "<table><tr><th>run</th><th>method</th><th>seed</th><th>final α</th><th>L0</th><th>EV (SAEBench)</th>"
       "<th>EV (centred)</th><th>CE score</th><th>KL score</th><th>probe acc</th><th>probe F1</th><th>top-1 acc</th><th>top-1 F1</th>"
       "<th>absorption</th><th>full abs.</th></tr>";
  auto optional = [](const json& r, const char* k) {
    return r.contains(k) && r[k].is_number() ? fmt::format("{:.4f}", r[k].get<double>()) : std::string("–");
  };
  for (const auto& r : runs) {
    const std::string alpha = r["final_alpha"].is_array() ? per_level(r["final_alpha"]) : "–";
    h += fmt::format("<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.2f}</td><td>{:.4f}</td><td>{:.4f}</td>"
                     "<td>{:.4f}</td><td>{:.4f}</td><td>{:.4f}</td><td>{:.4f}</td><td>{:.4f}</td><td>{:.4f}</td>"
                     "<td>{}</td><td>{}</td></tr>",
                     run_cell(r), escape(r["name"].get<std::string>()),
                     r.contains("seed") ? r["seed"].dump() : "–", alpha, r["l0"].get<double>(),
                     r["explained_variance"].get<double>(), r.value("explained_variance_centered", 0.0),
                     r["ce_loss_score"].get<double>(),
                     r["kl_div_score"].get<double>(), r.value("probe_accuracy", 0.0), r.value("probe_f1", 0.0),
                     r.value("probe_top1_accuracy", 0.0), r.value("probe_top1_f1", 0.0), optional(r, "absorption_fraction"),
                     optional(r, "full_absorption"));
  }
  return h + "</table>";
}

// Feature absorption against L0, beside top-1 probing F1 against L0 (SAEBench's first-letter task
// and sparse probing: both ask whether single latents carry a concept), and for hierarchical runs
// how much of the absorption stays inside the letter's parent. Empty when no run has absorption.
std::string absorption_section(const json& runs, bool several_seeds) {
  std::vector<svg::Series> frac, full, top1;
  std::string children;
  for (const auto& r : runs) {
    if (!r.contains("absorption_fraction")) continue;
    const std::string name = r["name"].get<std::string>();
    const double l0 = r["l0"].get<double>();
    frac.push_back({name, {l0}, {r["absorption_fraction"].get<double>()}, true});
    full.push_back({name, {l0}, {r["full_absorption"].get<double>()}, true});
    if (r.contains("probe_top1_f1")) top1.push_back({name, {l0}, {r["probe_top1_f1"].get<double>()}, true});
    if (r.contains("absorption_by_children"))
      children += fmt::format("{}{} {:.1f}%", children.empty() ? "" : ", ", escape(r["run"].get<std::string>()) + " (" +
                              escape(name) + ")", 100.0 * r["absorption_by_children"].get<double>());
  }
  if (frac.empty()) return "";
  const char* per = several_seeds ? ", one point per seed" : "";
  std::string h =
      "<h2>Feature absorption vs sparsity</h2><p>SAEBench's first-letter task: on words whose first letter the "
      "LM's probe finds, the share of the probe direction carried by latents other than the letter's own "
      "(lower is better), and the rate of words where the letter's latents do not fire at all.</p><div class=\"charts\">";
  h += svg::line_chart(fmt::format("L0 vs mean absorption fraction{}", per), "L0", "absorption fraction",
                       merge_by_name(frac, true));
  h += svg::line_chart(fmt::format("L0 vs full absorption rate{}", per), "L0", "full absorption", merge_by_name(full, true));
  if (!top1.empty())
    h += svg::line_chart(fmt::format("L0 vs top-1 probing F1{}", per), "L0", "top-1 F1", merge_by_name(top1, true));
  h += "</div>";
  if (!children.empty())
    h += "<p>Hierarchical runs: of the words with absorption, the share whose largest absorbing latent is a child of "
         "the letter's main parent latent (the absorption the hierarchy keeps inside the concept): " + children + ".</p>";
  return h;
}

}  // namespace

std::string render_report_html(const json& data) {
  using svg::escape;
  const json& runs = data["runs"];
  std::string h = "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>saelab experiment report</title><style>"
                  "body{font-family:sans-serif;max-width:1180px;margin:20px auto;color:#222}"
                  "table{border-collapse:collapse;margin:10px 0}td,th{border:1px solid #ccc;padding:4px 8px;"
                  "text-align:right;font-size:13px}th{background:#f3f3f3}td:first-child,td:nth-child(2){text-align:left}"
                  ".charts{display:flex;flex-wrap:wrap;gap:10px}.best{font-weight:bold;background:#eef8ee}</style></head><body>";
  const json& ex = data["experiment"];
  h += "<h1>saelab: learnable frequency–magnitude balancing — experiment report</h1>";
  if (!ex.is_null())
    h += fmt::format("<p>Model <b>{}</b>, hook <b>{}</b>, {} training tokens; every run shares model, hook, corpus "
                     "and token budget; {}.</p>",
                     escape(fs::path(ex.value("model", std::string())).filename().string()), escape(ex.value("hook", "")),
                     ex.value("tokens", 0),
                     data.contains("seeds") && data["seeds"].size() > 1
                         ? fmt::format("every method is trained once per seed ({})",
                                       fmt::join(data["seeds"].get<std::vector<uint64_t>>(), ", "))
                         : "one training seed");

  h += "<h2>Summary</h2><ul>" + summary_probing(data) + summary_single_numbers(data) +
       summary_alpha(data["alpha_agreement"]) + "</ul>";
  if (data.contains("methods")) h += methods_table(data["methods"], data["seeds"].size());
  const bool several_seeds = data.contains("methods");
  h += runs_table(runs, several_seeds);

  // Probing vs k.
  std::vector<svg::Series> acc, f1;
  std::vector<int> ks;
  for (const auto& r : runs) {
    if (r["probing"].is_null()) continue;
    const json& m = r["probing"]["eval_result_metrics"];
    ks = r["probing"]["eval_config"]["k_values"].get<std::vector<int>>();
    svg::Series a{r["name"].get<std::string>(), {}, {}}, f{r["name"].get<std::string>(), {}, {}};
    for (int k : ks) {
      a.x.push_back(k);
      a.y.push_back(m["sae"][fmt::format("sae_top_{}_test_accuracy", k)].get<double>());
      f.x.push_back(k);
      f.y.push_back(m["sae"][fmt::format("sae_top_{}_test_f1", k)].get<double>());
    }
    acc.push_back(a);
    f1.push_back(f);
  }
  if (!acc.empty()) {
    const json& m0 = runs[0]["probing"]["eval_result_metrics"]["llm"];
    svg::Series llm_a{"LLM baseline", {}, {}}, llm_f{"LLM baseline", {}, {}};
    for (int k : ks) {
      llm_a.x.push_back(k);
      llm_a.y.push_back(m0[fmt::format("llm_top_{}_test_accuracy", k)].get<double>());
      llm_f.x.push_back(k);
      llm_f.y.push_back(m0[fmt::format("llm_top_{}_test_f1", k)].get<double>());
    }
    acc = merge_by_name(acc);
    f1 = merge_by_name(f1);
    acc.push_back(llm_a);
    f1.push_back(llm_f);
    h += fmt::format("<h2>Sparse probing vs k (35 tasks, averaged per family then over families{})</h2>"
                     "<div class=\"charts\">",
                     several_seeds ? fmt::format("; each method's mean over {} seeds", data["seeds"].size()) : "");
    h += svg::line_chart("Test accuracy of top-k latent probes", "k", "accuracy", acc, true);
    h += svg::line_chart("Test F1 of top-k latent probes", "k", "F1", f1, true);
    const json& details0 = runs[0]["probing"]["eval_result_details"];
    for (const char* metric : {"accuracy", "f1"}) {
      h += fmt::format("</div><h3>Per family ({})</h3><div class=\"charts\">", metric == std::string("f1") ? "F1" : metric);
      for (size_t fi = 0; fi < details0.size(); ++fi) {
        std::vector<svg::Series> fam;
        for (const auto& r : runs) {
          if (r["probing"].is_null()) continue;
          const json& d = r["probing"]["eval_result_details"][fi];
          svg::Series s{r["name"].get<std::string>(), {}, {}};
          for (int k : ks) {
            s.x.push_back(k);
            s.y.push_back(d[fmt::format("sae_top_{}_test_{}", k, metric)].get<double>());
          }
          fam.push_back(s);
        }
        h += svg::line_chart(details0[fi]["dataset_name"].get<std::string>(), "k",
                             metric == std::string("f1") ? "F1" : "accuracy", merge_by_name(fam), true);
      }
    }
    h += "</div>";
  }

  h += absorption_section(runs, several_seeds);

  // The L0–explained-variance plane.
  std::vector<svg::Series> plane;
  for (const auto& r : runs)
    plane.push_back(
        {r["name"].get<std::string>(), {r["l0"].get<double>()}, {r.value("explained_variance_centered", 0.0)}, true});
  h += "<h2>Sparsity vs fidelity</h2>" +
       svg::line_chart(several_seeds ? "L0 vs explained variance (held-out, centred R²), one point per seed"
                                     : "L0 vs explained variance (held-out, centred R²)",
                       "L0", "explained variance", merge_by_name(plane, true));

  // α trajectories.
  std::vector<svg::Series> curves;
  std::string marks;
  for (const auto& r : runs) {
    if (r["alpha_curves"].is_null() || r["alpha_mode"] == "fixed") continue;
    for (auto it = r["alpha_curves"].begin(); it != r["alpha_curves"].end(); ++it)
      curves.push_back({several_seeds ? fmt::format("{} seed {} L{}", r["name"].get<std::string>(), r.value("seed", 0), it.key())
                                      : fmt::format("{} L{}", r["name"].get<std::string>(), it.key()),
                        it.value()["step"].get<std::vector<double>>(), it.value()["alpha"].get<std::vector<double>>()});
    if (!r["alpha_summary"].is_null())
      for (const auto& a : r["alpha_summary"])
        marks += fmt::format("<li>{} level {}: final α {:.3f}, {}{}{}{}</li>", escape(r["name"].get<std::string>()),
                             a["level"].get<int>(), a["final_alpha"].get<double>(),
                             a["converged"].get<bool>() ? fmt::format("converged at t* = {}", a["t_star"].get<int64_t>())
                                                        : std::string("not converged"),
                             a["at_bound_low"].get<bool>() ? ", at the lower bound" : "",
                             a["at_bound_high"].get<bool>() ? ", at the upper bound" : "",
                             a["oscillating"].get<bool>() ? ", oscillating" : "");
  }
  if (!curves.empty())
    h += "<h2>α dynamics</h2>" + svg::line_chart("α per level during training", "step", "α", curves) + "<ul>" + marks + "</ul>";

  // Composition.
  h += "<h2>Composition quality (hierarchical runs, held-out)</h2><table><tr><th>run</th><th>method</th>"
       "<th>EV parents only</th><th>EV parents + children</th><th>parents' share of x̂ variance</th>"
       "<th>|cos| child–parent</th><th>children dead</th><th>P(child | parent)</th></tr>";
  for (const auto& r : runs) {
    const json& c = r["composition"];
    if (c.is_null()) continue;
    h += fmt::format("<tr><td>{}</td><td>{}</td><td>{:.4f}</td><td>{:.4f}</td><td>{:.3f}</td><td>{:.3f}</td><td>{:.3f}</td>"
                     "<td>{:.3f}</td></tr>",
                     escape(r["run"].get<std::string>()), escape(r["name"].get<std::string>()),
                     c["explained_variance_parents_only"].get<double>(), c["explained_variance_parents_and_children"].get<double>(),
                     c["parent_share_of_reconstruction_variance"].get<double>(),
                     c["mean_abs_cos_child_parent_decoder"].get<double>(), c["children_dead_fraction"].get<double>(),
                     c["p_child_fires_given_parent"].get<double>());
  }
  h += "</table>";

  // Stability.
  std::vector<svg::Series> stab;
  for (const auto& r : runs) {
    if (r["stability"].is_null()) continue;
    svg::Series s{r["name"].get<std::string>(), {}, {}};
    for (const auto& p : r["stability"]["phases"]) {
      s.x.push_back(p["fraction"].get<double>());
      s.y.push_back(p["vs_final"]["frac_matched_above_0.9"].get<double>());
    }
    stab.push_back(s);
  }
  std::vector<svg::Series> persist;
  int persist_k = 0;
  for (const auto& r : runs) {
    if (r["probe_persistence"].is_null()) continue;
    const json& pp = r["probe_persistence"];
    persist_k = pp.at("k_values").size() > 1 ? pp["k_values"][1].get<int>() : pp["k_values"][0].get<int>();
    svg::Series s{r["name"].get<std::string>(), {}, {}};
    for (const auto& c : pp["checkpoints"]) {
      s.x.push_back(c["fraction"].get<double>());
      s.y.push_back(c["mean_persistence"][std::to_string(persist_k)].get<double>());
    }
    persist.push_back(s);
  }
  if (!stab.empty() || !persist.empty()) {
    h += "<h2>Concept stability across training</h2><div class=\"charts\">";
    if (!stab.empty())
      h += svg::line_chart("Latents matched to the final SAE (decoder cosine > 0.9)", "fraction of training",
                           "fraction matched", merge_by_name(stab));
    if (!persist.empty())
      h += svg::line_chart(fmt::format("Probing tasks' top-{} latents already present (cos > 0.7), mean over tasks",
                                       persist_k),
                           "fraction of training", "fraction persisting", merge_by_name(persist));
    h += "</div>";
  }
  h += "<p style=\"color:#777;font-size:12px\">Generated by saelab from the run directories; data in report.json and "
       "report_summary.csv.</p></body></html>\n";
  return h;
}

std::string write_report(const std::string& dir) {
  const json data = collect_report_data(dir);
  write_file_atomic(dir + "/report.json", data.dump(1) + "\n");
  std::string csv = "run,name,seed,architecture,alpha_mode,final_alpha,l0,explained_variance,explained_variance_centered,"
                    "ce_loss_score,kl_div_score,"
                    "probe_accuracy,probe_f1,probe_top1_accuracy,probe_top1_f1\n";
  for (const auto& r : data["runs"]) {
    std::string alpha;
    if (r["final_alpha"].is_array())
      for (const auto& a : r["final_alpha"]) alpha += fmt::format("{}{:.4f}", alpha.empty() ? "" : "/", a.get<double>());
    csv += fmt::format("{},{},{},{},{},{},{:.4f},{:.5f},{:.5f},{:.5f},{:.5f},{:.5f},{:.5f},{:.5f},{:.5f}\n",
                       r["run"].get<std::string>(), r["name"].get<std::string>(), r.contains("seed") ? r["seed"].dump() : "",
                       r["architecture"].get<std::string>(), r["alpha_mode"].get<std::string>(), alpha,
                       r["l0"].get<double>(), r["explained_variance"].get<double>(),
                       r.value("explained_variance_centered", 0.0), r["ce_loss_score"].get<double>(), r["kl_div_score"].get<double>(), r.value("probe_accuracy", 0.0),
                       r.value("probe_f1", 0.0), r.value("probe_top1_accuracy", 0.0), r.value("probe_top1_f1", 0.0));
  }
  write_file_atomic(dir + "/report_summary.csv", csv);
  const std::string path = dir + "/report.html";
  write_file_atomic(path, render_report_html(data));
  return path;
}

}  // namespace saelab
