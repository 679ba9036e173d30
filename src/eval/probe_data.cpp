#include "saelab/probe_data.hpp"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>

#include "saelab/atomic_file.hpp"
#include "saelab/error.hpp"
#include "util/json_number.hpp"

namespace saelab {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

std::vector<std::string> paths_of(const json& spec, const std::string& root) {
  std::vector<std::string> out;
  const json& p = spec.at("path");
  if (p.is_string()) out.push_back(root + "/" + p.get<std::string>());
  else
    for (const auto& s : p) out.push_back(root + "/" + s.get<std::string>());
  for (const auto& f : out)
    if (!fs::exists(f)) fail("probe dataset '{}': '{}' does not exist", spec.value("name", "?"), f);
  return out;
}

// A file of paths_of as the task file names it (relative to the data root). Examples without a
// group field are grouped by "<this>:<line>": the split hashes the group, so it must not depend on
// where the data root is mounted.
std::string relative_to_root(const std::string& path, const std::string& root) {
  SAELAB_ASSERT(path.compare(0, root.size() + 1, root + "/") == 0, "'{}' is not under '{}'", path, root);
  return path.substr(root.size() + 1);
}

// Drops leading whitespace, /* ... */ blocks and // lines (licence headers of C and Java files).
std::string strip_leading_comments(const std::string& s) {
  size_t i = 0;
  while (true) {
    while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
    if (s.compare(i, 2, "/*") == 0) {
      const size_t e = s.find("*/", i + 2);
      if (e == std::string::npos) return "";
      i = e + 2;
    } else if (s.compare(i, 2, "//") == 0) {
      const size_t e = s.find('\n', i);
      if (e == std::string::npos) return "";
      i = e + 1;
    } else {
      return s.substr(i);
    }
  }
}

void load_jsonl(const json& spec, const std::string& root, ProbeDataset& ds) {
  const std::string group_field = spec.value("group_field", "");
  const json skip = spec.value("skip_prefix_chars", json::object());
  const json comments = spec.value("strip_leading_comments", json::array());
  const std::string where = fmt::format("probe dataset '{}'", spec.value("name", "?"));
  const size_t chunk = json_int<size_t>(spec.value("chunk_chars", json(0)), where + ": chunk_chars");
  auto skip_chars = [&](const std::string& label) {
    return json_int<size_t>(skip[label], where + ": skip_prefix_chars['" + label + "']");
  };
  for (const auto& path : paths_of(spec, root)) {
    std::ifstream in(path);
    std::string line;
    int64_t n = 0;
    while (std::getline(in, line)) {
      ++n;
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      json j;
      try {
        j = json::parse(line);
      } catch (const json::exception& e) {
        fail("'{}' line {}: not valid JSON ({})", path, n, e.what());
      }
      if (!j.is_object() || !j.contains("text") || !j.contains("label") || !j["text"].is_string())
        fail("'{}' line {}: expected an object with a \"text\" string and a \"label\"", path, n);
      LabeledText t;
      t.label = j["label"].is_string() ? j["label"].get<std::string>() : j["label"].dump();
      t.text = j["text"].get<std::string>();
      // Licence headers open C and Java files: drop leading comments, else skip a fixed prefix as
      // SAEBench does (shared/README.md).
      if (std::find(comments.begin(), comments.end(), t.label) != comments.end()) {
        const std::string stripped = strip_leading_comments(t.text);
        if (stripped.size() != t.text.size() && !stripped.empty()) t.text = stripped;
        else if (skip.contains(t.label)) t.text = t.text.substr(std::min(t.text.size(), skip_chars(t.label)));
      } else if (skip.contains(t.label)) {
        t.text = t.text.substr(std::min(t.text.size(), skip_chars(t.label)));
      }
      t.group = !group_field.empty() && j.contains(group_field) ? j[group_field].dump()
                                                                : relative_to_root(path, root) + ":" + std::to_string(n);
      if (chunk > 0) {
        // Long documents become several examples of about `chunk` characters (cut at line ends);
        // they keep the document's group, so a document never straddles train and test.
        size_t start = 0;
        while (start < t.text.size()) {
          size_t end = std::min(t.text.size(), start + chunk);
          if (end < t.text.size()) {
            const size_t nl = t.text.find('\n', end);
            end = nl == std::string::npos ? t.text.size() : nl + 1;
          }
          ds.items.push_back({t.text.substr(start, end - start), t.label, t.group});
          start = end;
        }
        continue;
      }
      ds.items.push_back(std::move(t));
    }
  }
}

void load_reuters(const json& spec, const std::string& root, ProbeDataset& ds) {
  const std::string dir = paths_of(spec, root).front();
  std::ifstream in(dir + "/cats.txt");
  if (!in) fail("probe dataset '{}': cannot open '{}'", ds.name, dir + "/cats.txt");
  std::map<std::string, std::string> single;  // document -> its only topic
  std::map<std::string, int> count;
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream row(line);
    std::string doc, topic, extra;
    row >> doc >> topic;
    if (doc.empty() || topic.empty() || (row >> extra)) continue;  // single-label documents only
    single[doc] = topic;
    ++count[topic];
  }
  const int min_docs = json_int<int>(spec.value("min_docs", json(100)), fmt::format("probe dataset '{}': min_docs", ds.name));
  for (const auto& [doc, topic] : single) {
    if (count[topic] < min_docs) continue;
    LabeledText t;
    t.text = read_file(dir + "/" + doc);
    t.label = topic;
    t.group = doc;
    ds.items.push_back(std::move(t));
  }
}

std::string xml_field(const std::string& review, const std::string& tag) {
  const std::string open = "<" + tag + ">", close = "</" + tag + ">";
  const size_t a = review.find(open), b = review.find(close);
  if (a == std::string::npos || b == std::string::npos || b < a) return "";
  std::string v = review.substr(a + open.size(), b - a - open.size());
  const size_t s = v.find_first_not_of(" \n\r\t"), e = v.find_last_not_of(" \n\r\t");
  return s == std::string::npos ? "" : v.substr(s, e - s + 1);
}

void load_amazon(const json& spec, const std::string& root, ProbeDataset& ds) {
  const std::string dir = paths_of(spec, root).front();
  const std::string label = spec.value("label", "category");
  for (const auto& cat : spec.at("categories")) {
    for (const char* file : {"positive.review", "negative.review"}) {
      const std::string path = dir + "/" + cat.get<std::string>() + "/" + file;
      const std::string all = read_file(path);
      size_t pos = 0;
      int64_t n = 0;
      while ((pos = all.find("<review>", pos)) != std::string::npos) {
        const size_t end = all.find("</review>", pos);
        if (end == std::string::npos) break;
        const std::string review = all.substr(pos, end - pos);
        pos = end;
        ++n;
        LabeledText t;
        t.text = xml_field(review, "title") + "\n" + xml_field(review, "review_text");
        t.group = xml_field(review, "unique_id") + "#" + std::to_string(n);
        if (label == "category") {
          t.label = cat.get<std::string>();
        } else {
          const std::string r = xml_field(review, "rating");
          if (r != "1.0" && r != "5.0") continue;  // 1-vs-5 stars only
          t.label = r.substr(0, 1);
        }
        ds.items.push_back(std::move(t));
      }
    }
  }
}

// "class","title","description" with 1-based class indices into classes.txt.
void load_agnews(const json& spec, const std::string& root, ProbeDataset& ds) {
  const std::string path = paths_of(spec, root).front();
  std::vector<std::string> classes;
  {
    std::istringstream in(read_file(root + "/" + spec.at("classes").get<std::string>()));
    std::string c;
    while (std::getline(in, c))
      if (!c.empty()) classes.push_back(c);
  }
  std::ifstream in(path);
  std::string line;
  int64_t n = 0;
  while (std::getline(in, line)) {
    ++n;
    std::vector<std::string> fields;
    std::string cur;
    bool quoted = false;
    for (size_t i = 0; i < line.size(); ++i) {
      const char ch = line[i];
      if (ch == '"') {
        if (quoted && i + 1 < line.size() && line[i + 1] == '"') {
          cur.push_back('"');
          ++i;
        } else {
          quoted = !quoted;
        }
      } else if (ch == ',' && !quoted) {
        fields.push_back(cur);
        cur.clear();
      } else {
        cur.push_back(ch);
      }
    }
    fields.push_back(cur);
    if (fields.size() < 3) fail("'{}' line {}: expected \"class\",\"title\",\"description\"", path, n);
    const int c = std::atoi(fields[0].c_str());
    if (c < 1 || c > static_cast<int>(classes.size())) fail("'{}' line {}: class {} out of range", path, n, fields[0]);
    std::string desc = fields[2];
    std::replace(desc.begin(), desc.end(), '\\', ' ');
    ds.items.push_back({fields[1] + ". " + desc, classes[c - 1], relative_to_root(path, root) + ":" + std::to_string(n)});
  }
}

uint64_t fnv1a(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

// SAEBench draws a task's negatives from the dataset's other chosen classes, those with a task of
// their own; a dataset with one task (e.g. 5 vs 1 stars) has its other labels.
std::vector<std::string> negative_classes(const ProbeSuite& suite, const ProbeTask& task) {
  std::vector<std::string> out;
  for (const ProbeTask& t : suite.tasks)
    if (t.dataset == task.dataset && t.positive != task.positive &&
        std::find(out.begin(), out.end(), t.positive) == out.end())
      out.push_back(t.positive);
  if (!out.empty()) return out;
  std::set<std::string> labels;
  for (const LabeledText& x : suite.dataset(task.dataset).items)
    if (x.label != task.positive) labels.insert(x.label);
  if (labels.empty()) fail("probe task '{}': dataset '{}' has no label besides '{}'", task.name, task.dataset, task.positive);
  return {labels.begin(), labels.end()};
}

}  // namespace

const ProbeDataset& ProbeSuite::dataset(const std::string& name) const {
  for (const auto& d : datasets)
    if (d.name == name) return d;
  fail("no probe dataset named '{}'", name);
}

ProbeSuite load_probe_suite(const std::string& task_file, const std::string& root) {
  json spec;
  try {
    spec = json::parse(read_file(task_file));
  } catch (const json::exception& e) {
    fail("'{}' is not valid JSON: {}", task_file, e.what());
  }
  ProbeSuite suite;
  try {
    for (const auto& d : spec.at("datasets")) {
      ProbeDataset ds;
      ds.name = d.at("name").get<std::string>();
      ds.family = d.at("family").get<std::string>();
      const std::string format = d.at("format").get<std::string>();
      if (format == "jsonl") load_jsonl(d, root, ds);
      else if (format == "reuters") load_reuters(d, root, ds);
      else if (format == "amazon") load_amazon(d, root, ds);
      else if (format == "agnews_csv") load_agnews(d, root, ds);
      else fail("'{}': dataset '{}' has unknown format '{}' (jsonl, reuters, amazon, agnews_csv)", task_file, ds.name, format);
      if (ds.items.empty()) fail("'{}': dataset '{}' loaded no examples", task_file, ds.name);
      suite.datasets.push_back(std::move(ds));
    }
    for (const auto& t : spec.at("tasks")) {
      ProbeTask task;
      task.dataset = t.at("dataset").get<std::string>();
      task.positive = t.at("positive").get<std::string>();
      const ProbeDataset& ds = suite.dataset(task.dataset);
      task.family = ds.family;
      task.name = task.dataset + "/" + task.positive;
      if (std::none_of(ds.items.begin(), ds.items.end(), [&](const LabeledText& x) { return x.label == task.positive; }))
        fail("'{}': task '{}': label '{}' does not occur in dataset '{}'", task_file, task.name, task.positive, ds.name);
      suite.tasks.push_back(task);
    }
  } catch (const json::exception& e) {
    fail("'{}' is not a probe task file: {}", task_file, e.what());
  }
  for (ProbeTask& t : suite.tasks) t.negatives = negative_classes(suite, t);
  return suite;
}

namespace {

// Up to `want` of `items`, in a random order that depends only on the seed and `key`.
std::vector<size_t> seeded_sample(std::vector<size_t> items, size_t want, uint64_t seed, const std::string& key) {
  std::mt19937_64 rng(seed ^ fnv1a(key));
  std::shuffle(items.begin(), items.end(), rng);
  items.resize(std::min(items.size(), want));
  return items;
}

// SAEBench's negatives (prepare_probe_data): ceil(P / C) at random from each class's sample, then P
// of those at random. Where a class holds fewer, the others give more (SAEBench would fail there).
std::vector<size_t> stratified_negatives(std::vector<std::vector<size_t>> classes, size_t P, std::mt19937_64& rng) {
  std::vector<size_t> pool;
  if (classes.empty() || P == 0) return pool;
  const size_t share = (P + classes.size() - 1) / classes.size();
  std::vector<size_t> taken(classes.size(), 0);
  for (size_t c = 0; c < classes.size(); ++c) {
    std::shuffle(classes[c].begin(), classes[c].end(), rng);
    taken[c] = std::min(share, classes[c].size());
    pool.insert(pool.end(), classes[c].begin(), classes[c].begin() + static_cast<int64_t>(taken[c]));
  }
  for (bool more = true; pool.size() < P && more;) {  // short classes: round-robin over the rest
    more = false;
    for (size_t c = 0; c < classes.size() && pool.size() < P; ++c)
      if (taken[c] < classes[c].size()) {
        pool.push_back(classes[c][taken[c]++]);
        more = true;
      }
  }
  std::shuffle(pool.begin(), pool.end(), rng);
  pool.resize(std::min(pool.size(), P));
  return pool;
}

}  // namespace

ProbeSplit make_probe_split(const ProbeDataset& ds, const std::string& positive,
                            const std::vector<std::string>& negatives, int n_train, int n_test, uint64_t seed,
                            double test_fraction) {
  if (n_train < 0 || n_test < 0) fail("probe split sizes must be non-negative, got {} and {}", n_train, n_test);
  std::map<std::string, std::vector<size_t>> by_class[2];  // [0] train, [1] test: label -> items
  for (size_t i = 0; i < ds.items.size(); ++i) {
    const bool test = static_cast<double>(fnv1a(ds.items[i].group) % 10000) >= (1.0 - test_fraction) * 10000.0;
    by_class[test][ds.items[i].label].push_back(i);
  }
  std::mt19937_64 rng(seed ^ fnv1a(ds.name + "/" + positive));
  ProbeSplit out;
  for (int side = 0; side < 2; ++side) {
    const size_t half = static_cast<size_t>(side == 0 ? n_train : n_test) / 2;
    const std::string tag = std::string(side == 0 ? "train" : "test") + "/" + ds.name + "/";
    auto sample = [&](const std::string& label) {
      const auto it = by_class[side].find(label);
      return it == by_class[side].end() ? std::vector<size_t>{} : seeded_sample(it->second, half, seed, tag + label);
    };
    std::vector<size_t> pos = sample(positive);
    std::vector<std::vector<size_t>> neg_classes;
    for (const std::string& label : negatives) neg_classes.push_back(sample(label));
    const std::vector<size_t> neg = stratified_negatives(std::move(neg_classes), pos.size(), rng);
    pos.resize(neg.size());  // balanced: as many positives as negatives were found
    std::vector<std::pair<size_t, int>> chosen;
    for (size_t i : pos) chosen.push_back({i, 1});
    for (size_t i : neg) chosen.push_back({i, 0});
    std::shuffle(chosen.begin(), chosen.end(), rng);
    for (const auto& [i, y] : chosen) {
      (side == 0 ? out.train_text : out.test_text).push_back(ds.items[i].text);
      (side == 0 ? out.train_label : out.test_label).push_back(y);
      (side == 0 ? out.train_group : out.test_group).push_back(ds.items[i].group);
    }
  }
  return out;
}

}  // namespace saelab
