// Streaming text corpora. A corpus is a list of files and directories (directories expand
// recursively, sorted, skipping README/LICENSE and hidden files). Formats by extension:
//   .jsonl  one JSON object per line, the document in its "text" field
//   other   plain text; a document is a paragraph (lines up to a blank line), capped at
//           max_doc_bytes and cut at a line end beyond that
// Only one document is in memory at a time.
#pragma once
#include <cstdint>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

namespace saelab {

class Tokenizer;

// The default training corpus: shared/corpus without brown_plain, which is probing data
// (shared/README.md: keep probe texts out of the SAE training corpus).
std::vector<std::string> default_corpus_paths(const std::string& shared_root);

// Expands directories; throws Error for a path that does not exist or yields no files.
std::vector<std::string> expand_corpus_paths(const std::vector<std::string>& paths);

class CorpusReader {
 public:
  explicit CorpusReader(std::vector<std::string> files, size_t max_doc_bytes = 1 << 16);
  bool next(std::string& doc);  // false at the end of the last file
  const std::string& current_file() const;

 private:
  bool open_next_file();
  std::vector<std::string> files_;
  size_t max_doc_bytes_;
  size_t file_index_ = 0;
  bool jsonl_ = false;
  int64_t line_no_ = 0;
  std::unique_ptr<std::ifstream> in_;
};

// Cuts a token stream into contexts of T tokens, each starting with BOS; documents are
// separated by BOS as well (SAELens' prepend_bos / sequence_separator_token = bos convention).
class ContextStream {
 public:
  ContextStream(CorpusReader& reader, const Tokenizer& tok, int T);
  bool next(std::vector<int32_t>& context);  // false when the corpus cannot fill another context
  int64_t documents() const { return docs_; }

 private:
  CorpusReader& reader_;
  const Tokenizer& tok_;
  int T_;
  std::vector<int32_t> pending_;
  size_t pending_pos_ = 0;
  int64_t docs_ = 0;
};

}  // namespace saelab
