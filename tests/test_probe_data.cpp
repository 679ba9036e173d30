#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <numeric>
#include <set>

#include "saelab/atomic_file.hpp"
#include "saelab/error.hpp"
#include "saelab/probe_data.hpp"
#include "test_util.hpp"

using namespace saelab;

namespace {
const ProbeSuite& suite() {
  static const ProbeSuite s = load_probe_suite(std::string(SAELAB_SOURCE_DIR) + "/data/probe_tasks.json", test::shared_root());
  return s;
}
}  // namespace

TEST(ProbeData, ThirtyFiveTasksInSixFamilies) {
  ASSERT_EQ(suite().tasks.size(), 35u);
  std::map<std::string, int> families;
  for (const auto& t : suite().tasks) ++families[t.family];
  EXPECT_EQ(families, (std::map<std::string, int>{{"fine_grained_topic", 15},
                                                  {"amazon_category", 4},
                                                  {"sentiment", 2},
                                                  {"code_language", 5},
                                                  {"news_topic", 4},
                                                  {"language", 5}}));
  const auto& reuters = suite().dataset("reuters");
  std::set<std::string> topics;
  for (const auto& x : reuters.items) topics.insert(x.label);
  EXPECT_EQ(topics.size(), 10u);  // single-label topics with at least 100 documents
  for (const auto& x : suite().dataset("amazon_sentiment_books_dvd").items) EXPECT_TRUE(x.label == "1" || x.label == "5");
  int c_files = 0, starts_with_comment = 0;
  for (const auto& x : suite().dataset("code").items)
    if (x.label == "C" || x.label == "Java") {
      ++c_files;
      const size_t i = x.text.find_first_not_of(" \t\r\n");
      starts_with_comment += i != std::string::npos && (x.text.compare(i, 2, "/*") == 0 || x.text.compare(i, 2, "//") == 0);
    }
  EXPECT_GT(c_files, 500);
  EXPECT_LT(starts_with_comment, c_files / 20) << "licence headers kept";
}

TEST(ProbeData, SplitsAreBalancedDeterministicAndByGroup) {
  for (const auto& t : suite().tasks) {
    const ProbeSplit a = make_probe_split(suite().dataset(t.dataset), t.positive, t.negatives, 200, 100, 42);
    const ProbeSplit b = make_probe_split(suite().dataset(t.dataset), t.positive, t.negatives, 200, 100, 42);
    EXPECT_EQ(a.train_text, b.train_text) << t.name;
    EXPECT_GE(a.train_text.size(), 60u) << t.name;
    EXPECT_GE(a.test_text.size(), 20u) << t.name;
    int pos = 0;
    for (int y : a.train_label) pos += y;
    EXPECT_EQ(2 * pos, static_cast<int>(a.train_label.size())) << t.name << " is not balanced";
    std::set<std::string> train_groups(a.train_group.begin(), a.train_group.end());
    for (const auto& g : a.test_group) EXPECT_FALSE(train_groups.count(g)) << t.name << ": group " << g << " straddles";
  }
}

// The splits hash each example's group; groups named by file must not carry the data root's
// location, or the same suite splits differently under ../shared and $SAELAB_SHARED.
TEST(ProbeData, SplitsDoNotDependOnWhereTheDataRootIs) {
  namespace fs = std::filesystem;
  const std::string link = test::make_temp_dir("root") + "/elsewhere";
  fs::create_directory_symlink(fs::absolute(test::shared_root()), link);
  const ProbeSuite moved = load_probe_suite(std::string(SAELAB_SOURCE_DIR) + "/data/probe_tasks.json", link);
  ASSERT_EQ(moved.tasks.size(), suite().tasks.size());
  for (const auto& t : suite().tasks) {
    const ProbeSplit a = make_probe_split(suite().dataset(t.dataset), t.positive, t.negatives, 200, 100, 42);
    const ProbeSplit b = make_probe_split(moved.dataset(t.dataset), t.positive, t.negatives, 200, 100, 42);
    EXPECT_EQ(a.train_text, b.train_text) << t.name;
    EXPECT_EQ(a.test_text, b.test_text) << t.name;
    EXPECT_EQ(a.train_group, b.train_group) << t.name;
  }
}

// SAEBench draws a task's negatives from the dataset's other chosen classes: here the positives of
// the dataset's other tasks (brown has 15 genres, 5 with a task), or with one task, the other labels.
TEST(ProbeData, NegativesComeFromTheOtherTaskClasses) {
  for (const auto& t : suite().tasks) {
    if (t.dataset == "brown") {
      EXPECT_EQ(t.negatives.size(), 4u) << t.name;
      EXPECT_EQ(std::count(t.negatives.begin(), t.negatives.end(), "fiction"), 0) << t.name << ": no task of its own";
    }
    if (t.dataset == "amazon_sentiment_books_dvd") {
      EXPECT_EQ(t.negatives, std::vector<std::string>{"1"});
    }
    EXPECT_EQ(std::count(t.negatives.begin(), t.negatives.end(), t.positive), 0) << t.name;
    const ProbeDataset& ds = suite().dataset(t.dataset);
    std::map<std::pair<std::string, std::string>, std::string> label_of;  // (group, text) -> label
    for (const auto& x : ds.items) label_of[{x.group, x.text}] = x.label;
    const ProbeSplit sp = make_probe_split(ds, t.positive, t.negatives, 200, 100, 42);
    std::map<std::string, int> per_class;
    for (size_t i = 0; i < sp.train_label.size(); ++i) {
      const std::string& label = label_of.at({sp.train_group[i], sp.train_text[i]});
      EXPECT_EQ(label == t.positive, sp.train_label[i] == 1) << t.name;
      if (!sp.train_label[i]) ++per_class[label];
    }
    for (const auto& [label, n] : per_class)
      EXPECT_NE(std::find(t.negatives.begin(), t.negatives.end(), label), t.negatives.end()) << t.name << " " << label;
    // Where every negative class has its share, each gives ceil(P / C) or fewer, and none is left out.
    const size_t P = sp.train_label.size() / 2, C = t.negatives.size();
    if (t.dataset == "language" || t.dataset == "ag_news") {
      EXPECT_EQ(per_class.size(), C) << t.name;
      for (const auto& [label, n] : per_class) EXPECT_LE(static_cast<size_t>(n), (P + C - 1) / C) << t.name << " " << label;
    }
  }
}

// Tasks of one dataset share texts as SAEBench's do: every class has one sample per side, so a
// task's positives are the texts another task's negatives are drawn from.
TEST(ProbeData, TasksOfADatasetShareTheirClassSamples) {
  const ProbeDataset& ds = suite().dataset("language");
  std::map<std::string, std::set<std::pair<std::string, std::string>>> positives, negatives;  // task -> (group, text)
  for (const auto& t : suite().tasks) {
    if (t.dataset != "language") continue;
    const ProbeSplit sp = make_probe_split(ds, t.positive, t.negatives, 400, 100, 7);
    for (size_t i = 0; i < sp.train_text.size(); ++i)
      (sp.train_label[i] ? positives : negatives)[t.positive].insert({sp.train_group[i], sp.train_text[i]});
  }
  std::set<std::pair<std::string, std::string>> de_items;
  for (const auto& x : ds.items)
    if (x.label == "de") de_items.insert({x.group, x.text});
  size_t shared = 0;
  for (const auto& e : negatives["en"])
    if (de_items.count(e)) {
      ++shared;
      EXPECT_TRUE(positives["de"].count(e)) << "a German negative of 'en' that is not among the positives of 'de'";
    }
  EXPECT_GT(shared, 0u);
}

// SAEBench's stratified negatives (probe_training.prepare_probe_data, run by
// scripts/reference/saebench_probing_goldens.py over 300 torch seeds): each negative class gives
// between SAEBench's fewest and most, and on average what it gives on average.
TEST(ProbeData, NegativeCountsPerClassMatchSaebench) {
  const auto goldens = nlohmann::json::parse(read_file(test::test_data("saebench_probing/goldens.json")));
  constexpr double kTolMeanCount = 0.25;  // about 5 standard errors of a difference of two 300-draw means
  for (const auto& g : goldens["negatives"]) {
    ProbeDataset ds;
    ds.name = "synthetic";
    std::vector<std::string> negatives;
    for (const auto& [label, n] : g["sizes"].items()) {
      if (label != g["positive"]) negatives.push_back(label);
      for (int i = 0; i < n.get<int>(); ++i) ds.items.push_back({label + std::to_string(i), label, label + std::to_string(i)});
    }
    const int P = g["sizes"][g["positive"].get<std::string>()];
    std::map<std::string, std::vector<int>> counts;
    for (uint64_t seed = 0; seed < 300; ++seed) {
      // test_fraction 0: every group on the training side; n_train 2P: the positive class whole.
      const ProbeSplit sp = make_probe_split(ds, g["positive"], negatives, 2 * P, 0, seed, 0.0);
      ASSERT_EQ(sp.train_label.size(), static_cast<size_t>(2 * P));
      std::map<std::string, int> per_class;
      for (size_t i = 0; i < sp.train_text.size(); ++i)
        if (!sp.train_label[i]) ++per_class[sp.train_group[i].substr(0, 1)];
      for (const auto& c : negatives) counts[c].push_back(per_class[c]);
    }
    for (const auto& c : negatives) {
      const auto& want = g["per_class"][c];
      const auto [lo, hi] = std::minmax_element(counts[c].begin(), counts[c].end());
      const double mean = std::accumulate(counts[c].begin(), counts[c].end(), 0.0) / counts[c].size();
      EXPECT_GE(*lo, want["min"].get<int>()) << g["sizes"].dump() << " " << c;
      EXPECT_LE(*hi, want["max"].get<int>()) << g["sizes"].dump() << " " << c;
      EXPECT_NEAR(mean, want["mean"].get<double>(), kTolMeanCount) << g["sizes"].dump() << " " << c;
    }
  }
}

TEST(ProbeData, BadTaskFilesAreNamed) {
  const std::string dir = test::make_temp_dir("probe");
  test::write_text(dir + "/t.jsonl", "{\"text\": \"a\", \"label\": \"x\"}\n{\"text\": \"b\", \"label\": \"y\"}\n");
  test::write_text(dir + "/tasks.json", R"({"datasets": [{"name": "mine", "family": "f", "format": "jsonl", "path": "t.jsonl"}],
                                           "tasks": [{"dataset": "mine", "positive": "z"}]})");
  try {
    load_probe_suite(dir + "/tasks.json", dir);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("label 'z' does not occur"), std::string::npos) << e.what();
  }
  test::write_text(dir + "/tasks2.json", R"({"datasets": [{"name": "m", "family": "f", "format": "xml", "path": "t.jsonl"}], "tasks": []})");
  EXPECT_THROW(load_probe_suite(dir + "/tasks2.json", dir), Error);
  test::write_text(dir + "/tasks3.json", R"({"datasets": [{"name": "m", "family": "f", "format": "jsonl", "path": "nope.jsonl"}], "tasks": []})");
  EXPECT_THROW(load_probe_suite(dir + "/tasks3.json", dir), Error);
  // A user's own labelled JSONL works as a task.
  test::write_text(dir + "/ok.json", R"({"datasets": [{"name": "mine", "family": "f", "format": "jsonl", "path": "t.jsonl"}],
                                        "tasks": [{"dataset": "mine", "positive": "x"}]})");
  EXPECT_EQ(load_probe_suite(dir + "/ok.json", dir).tasks.front().name, "mine/x");
}

// BadInput: defects found while writing the fuzz targets (fuzz/, docs/reliability.md "Bad inputs
// found by fuzzing").
TEST(BadInput, JsonlErrorsNameTheJsonlFileAndLine) {
  // A non-string "text" used to be reported against the task file, as "not a probe task file".
  const std::string dir = test::make_temp_dir("probe");
  test::write_text(dir + "/d.jsonl", "{\"text\": \"a\", \"label\": \"x\"}\n{\"text\": 5, \"label\": \"y\"}\n");
  test::write_text(dir + "/tasks.json", R"({"datasets": [{"name": "m", "family": "f", "format": "jsonl", "path": "d.jsonl"}],
                                           "tasks": []})");
  try {
    load_probe_suite(dir + "/tasks.json", dir);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("d.jsonl' line 2: expected an object with a \"text\" string"), std::string::npos)
        << e.what();
  }
  // Counts are integers in range (a negative or huge float converted silently before).
  test::write_text(dir + "/tasks2.json", R"({"datasets": [{"name": "m", "family": "f", "format": "jsonl", "path": "d.jsonl",
                                            "chunk_chars": -1.5}], "tasks": []})");
  try {
    load_probe_suite(dir + "/tasks2.json", dir);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("probe dataset 'm': chunk_chars: expected an integer"), std::string::npos)
        << e.what();
  }
}
