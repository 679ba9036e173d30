#include "saelab/corpus.hpp"

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "saelab/error.hpp"
#include "saelab/tokenizer.hpp"

namespace saelab {

namespace fs = std::filesystem;

namespace {
bool skipped_name(const std::string& name) {
  return name.empty() || name[0] == '.' || name.rfind("README", 0) == 0 || name.rfind("LICENSE", 0) == 0 ||
         name.find(".tmp-") != std::string::npos;
}
}  // namespace

std::vector<std::string> default_corpus_paths(const std::string& shared_root) {
  std::vector<std::string> out;
  for (const char* d : {"wikitext2", "gutenberg", "abc", "state_union", "inaugural", "webtext"})
    out.push_back(shared_root + "/corpus/" + d);
  return out;
}

std::vector<std::string> expand_corpus_paths(const std::vector<std::string>& paths) {
  std::vector<std::string> out;
  for (const auto& p : paths) {
    if (!fs::exists(p)) fail("corpus path '{}' does not exist", p);
    if (fs::is_directory(p)) {
      std::vector<std::string> found;
      for (const auto& e : fs::recursive_directory_iterator(p))
        if (e.is_regular_file() && !skipped_name(e.path().filename().string())) found.push_back(e.path().string());
      std::sort(found.begin(), found.end());
      if (found.empty()) fail("corpus directory '{}' holds no text files", p);
      out.insert(out.end(), found.begin(), found.end());
    } else {
      out.push_back(p);
    }
  }
  if (out.empty()) fail("no corpus files given");
  return out;
}

CorpusReader::CorpusReader(std::vector<std::string> files, size_t max_doc_bytes)
    : files_(std::move(files)), max_doc_bytes_(max_doc_bytes) {}

const std::string& CorpusReader::current_file() const {
  static const std::string none;
  return file_index_ > 0 && file_index_ <= files_.size() ? files_[file_index_ - 1] : none;
}

bool CorpusReader::open_next_file() {
  if (file_index_ >= files_.size()) return false;
  const std::string& f = files_[file_index_++];
  in_ = std::make_unique<std::ifstream>(f, std::ios::binary);
  if (!*in_) fail("cannot open corpus file '{}'", f);
  jsonl_ = fs::path(f).extension() == ".jsonl";
  line_no_ = 0;
  return true;
}

bool CorpusReader::next(std::string& doc) {
  doc.clear();
  std::string line;
  while (true) {
    if (!in_ && !open_next_file()) return false;
    if (jsonl_) {
      while (std::getline(*in_, line)) {
        ++line_no_;
        if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
        nlohmann::json j;
        try {
          j = nlohmann::json::parse(line);
        } catch (const nlohmann::json::exception& e) {
          fail("'{}' line {}: not valid JSON ({})", current_file(), line_no_, e.what());
        }
        if (!j.is_object() || !j.contains("text") || !j["text"].is_string())
          fail("'{}' line {}: expected an object with a string field \"text\"", current_file(), line_no_);
        doc = j["text"].get<std::string>();
        if (!doc.empty()) return true;
      }
    } else {
      while (std::getline(*in_, line)) {
        ++line_no_;
        if (!line.empty() && line.back() == '\r') line.pop_back();
        const bool blank = line.find_first_not_of(" \t") == std::string::npos;
        if (blank) {
          if (!doc.empty()) return true;
          continue;
        }
        if (!doc.empty()) doc.push_back('\n');
        doc += line;
        if (doc.size() >= max_doc_bytes_) return true;
      }
      if (!doc.empty()) {
        in_.reset();
        return true;
      }
    }
    in_.reset();
  }
}

ContextStream::ContextStream(CorpusReader& reader, const Tokenizer& tok, int T) : reader_(reader), tok_(tok), T_(T) {
  SAELAB_ASSERT(T >= 2, "context length {} < 2", T);
  if (tok_.bos_id() < 0) fail("the tokenizer has no BOS token; contexts need one to start with");
}

bool ContextStream::next(std::vector<int32_t>& ctx) {
  ctx.assign(1, tok_.bos_id());
  std::string doc;
  while (static_cast<int>(ctx.size()) < T_) {
    if (pending_pos_ >= pending_.size()) {
      if (!reader_.next(doc)) return false;
      ++docs_;
      pending_ = tok_.encode(doc);
      pending_.push_back(tok_.bos_id());  // separator before the next document
      pending_pos_ = 0;
    }
    if (ctx.size() == 1 && pending_[pending_pos_] == tok_.bos_id()) {  // no BOS, BOS at a context start
      ++pending_pos_;
      continue;
    }
    const size_t take = std::min(pending_.size() - pending_pos_, static_cast<size_t>(T_) - ctx.size());
    ctx.insert(ctx.end(), pending_.begin() + pending_pos_, pending_.begin() + pending_pos_ + take);
    pending_pos_ += take;
  }
  return true;
}

}  // namespace saelab
