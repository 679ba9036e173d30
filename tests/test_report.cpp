#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>

#include "saelab/atomic_file.hpp"
#include "saelab/experiment.hpp"
#include "saelab/report.hpp"
#include "test_util.hpp"

using namespace saelab;

namespace {
// A small experiment (no probing, for time) to report on; shared by this file's tests.
const std::string& experiment_dir() {
  static const std::string out = [] {
    const ExperimentConfig c = test::small_experiment(test::make_temp_dir("report") + "/runs");
    run_experiment(c);
    return c.out_dir;
  }();
  return out;
}
}  // namespace

TEST(Report, SelfContainedHtmlWithChartsTablesAndData) {
  const std::string path = write_report(experiment_dir());
  const std::string html = read_file(path);
  EXPECT_EQ(html.rfind("<!DOCTYPE html>", 0), 0u);
  // Inline SVG only: no scripts, no external resources (the SVG namespace is an identifier).
  EXPECT_EQ(html.find("<script"), std::string::npos);
  const std::regex url(R"((src|href)\s*=\s*"(https?:)?//)");
  EXPECT_FALSE(std::regex_search(html, url));
  size_t svgs = 0;
  for (size_t p = html.find("<svg"); p != std::string::npos; p = html.find("<svg", p + 1)) ++svgs;
  EXPECT_GE(svgs, 3u);  // L0–EV plane, α dynamics, stability
  for (const char* s : {"Results", "α dynamics", "Composition quality", "Concept stability", "learned", "dual_fixed"})
    EXPECT_NE(html.find(s), std::string::npos) << s;
  const auto data = nlohmann::json::parse(read_file(experiment_dir() + "/report.json"));
  EXPECT_EQ(data["runs"].size(), 3u);
  EXPECT_FALSE(data["runs"][2]["alpha_curves"].is_null());
  const std::string csv = read_file(experiment_dir() + "/report_summary.csv");
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 4);  // header + 3 runs
}

// The report renders in a real browser: headless Chromium takes a screenshot of it.
TEST(Report, RendersInHeadlessChromium) {
  if (std::system("command -v chromium >/dev/null 2>&1") != 0) GTEST_SKIP() << "chromium is not installed";
  const std::string html = write_report(experiment_dir());
  const std::string png = test::make_temp_dir("shot") + "/report.png";
  const std::string cmd = "timeout 120 chromium --headless --no-sandbox --disable-gpu --hide-scrollbars "
                          "--window-size=1280,2400 --screenshot=" + png + " file://" + html + " >/dev/null 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  const std::string img = read_file(png);
  ASSERT_GT(img.size(), 8u);
  EXPECT_EQ(img.substr(1, 3), "PNG");
  EXPECT_GT(img.size(), 30000u) << "a blank page compresses to a few kilobytes";
}

// The α-agreement line says so when learned α's held-out J is below every manual run's, whatever
// its distance to the sweep's optimum (the sweep can be flat around it).
TEST(Report, SaysWhenLearnedAlphaBeatsEveryManualRun) {
  const std::string dir = test::make_temp_dir("report_gap") + "/runs";
  std::filesystem::copy(experiment_dir(), dir, std::filesystem::copy_options::recursive);
  auto agreement = nlohmann::json::parse(read_file(dir + "/alpha_agreement.json"));
  ASSERT_FALSE(agreement["best_manual_alpha"].is_null());
  const double best_J = agreement["best_manual_J"].get<double>();
  for (double gap : {-0.1, 0.1}) {
    agreement["learned"] = {{"run", dir + "/run_3"},       {"final_alpha", {0.3, 0.78}},
                            {"distance_to_best_manual", 0.28}, {"agrees", false},
                            {"J_gap", gap * best_J / 100.0}};
    write_file_atomic(dir + "/alpha_agreement.json", agreement.dump());
    const std::string html = read_file(write_report(dir));
    EXPECT_NE(html.find("more than one grid step"), std::string::npos);
    EXPECT_EQ(html.find("lower than every manual run") != std::string::npos, gap < 0) << "gap " << gap;
  }
}
