#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "saelab/atomic_file.hpp"
#include "saelab/corpus.hpp"
#include "saelab/error.hpp"
#include "saelab/tokenizer.hpp"
#include "test_util.hpp"

using namespace saelab;
using json = nlohmann::json;

namespace {
json golden_cases() {
  json j = json::parse(read_file(test::test_data("tokenizer_cases.json")));
  EXPECT_EQ(j.at("saelab_golden").get<std::string>(), "1");
  return j.at("cases");
}
std::unique_ptr<Tokenizer> tinystories() {
  return load_hf_tokenizer(test::shared_root() + "/models/tinystories-656k/tokenizer.json");
}
}  // namespace

// Encodings and decodings must equal Hugging Face `tokenizers` (dumped by scripts/reference).
TEST(HfTokenizer, TinyStoriesMatchesHuggingFace) {
  auto tok = tinystories();
  EXPECT_EQ(tok->vocab_size(), 2048);
  EXPECT_EQ(tok->bos_id(), 1);
  for (const auto& c : golden_cases()) {
    const std::string text = c["text"];
    EXPECT_EQ(tok->encode(text), c["tinystories656k"]["ids"].get<std::vector<int32_t>>()) << text;
    EXPECT_EQ(tok->decode(c["tinystories656k"]["ids"].get<std::vector<int32_t>>()),
              c["tinystories656k"]["decoded"].get<std::string>())
        << text;
  }
}

TEST(HfTokenizer, Gpt2ByteLevelMatchesHuggingFace) {
  auto tok = load_gpt2_tokenizer(test::shared_root() + "/models/gpt2-tokenizer/encoder.json",
                                 test::shared_root() + "/models/gpt2-tokenizer/vocab.bpe");
  EXPECT_EQ(tok->vocab_size(), 50257);
  EXPECT_EQ(tok->bos_id(), 50256);
  for (const auto& c : golden_cases()) {
    const std::string text = c["text"];
    EXPECT_EQ(tok->encode(text), c["gpt2"]["ids"].get<std::vector<int32_t>>()) << text;
    EXPECT_EQ(tok->decode(c["gpt2"]["ids"].get<std::vector<int32_t>>()), c["gpt2"]["decoded"].get<std::string>());
  }
}

// decode(encode(x)) == x on real corpus paragraphs. TinyStories-656K's vocabulary has no byte
// tokens (byte_fallback finds none), so characters outside it become <unk>: those paragraphs
// cannot round-trip and are counted instead. GPT-2's byte-level BPE round-trips everything.
TEST(HfTokenizer, RoundTripsCorpusText) {
  auto ts = tinystories();
  auto g2 = load_gpt2_tokenizer(test::shared_root() + "/models/gpt2-tokenizer/encoder.json",
                                test::shared_root() + "/models/gpt2-tokenizer/vocab.bpe");
  CorpusReader reader(expand_corpus_paths({test::shared_root() + "/corpus/gutenberg/carroll-alice.txt",
                                           test::shared_root() + "/corpus/wikitext2/valid.txt"}));
  std::string doc;
  int n = 0, with_unk = 0;
  while (reader.next(doc) && n < 400) {
    ++n;
    ASSERT_EQ(g2->decode(g2->encode(doc)), doc) << "document " << n;
    const auto ids = ts->encode(doc);
    if (std::find(ids.begin(), ids.end(), 0) != ids.end()) {
      ++with_unk;
      continue;
    }
    ASSERT_EQ(ts->decode(ids), doc) << "document " << n;
  }
  EXPECT_EQ(n, 400);
  EXPECT_LT(with_unk, 200) << "most paragraphs should be inside TinyStories' vocabulary";
}

TEST(HfTokenizer, SpecialTokensAreSplitOut) {
  auto tok = tinystories();
  const auto ids = tok->encode("Hi<|end_story|>there");
  ASSERT_GE(ids.size(), 3u);
  EXPECT_NE(std::find(ids.begin(), ids.end(), 2), ids.end());
  EXPECT_TRUE(tok->is_special(2));
  EXPECT_EQ(tok->decode(ids, /*skip_special=*/true), "Hi there");
}

TEST(HfTokenizer, UnknownComponentIsNamed) {
  const std::string dir = test::make_temp_dir("tok");
  test::write_text(dir + "/tokenizer.json",
                   R"({"model": {"type": "WordPiece", "vocab": {}}, "added_tokens": []})");
  try {
    load_hf_tokenizer(dir + "/tokenizer.json");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("WordPiece"), std::string::npos) << e.what();
  }
}

TEST(Llama2cTokenizer, EncodesAndDecodesLikeRunC) {
  auto tok = load_llama2c_tokenizer(test::shared_root() + "/models/stories260K/tok512.bin", 512);
  const auto ids = tok->encode("Once upon a time");
  ASSERT_FALSE(ids.empty());
  std::vector<int32_t> with_bos{1};
  with_bos.insert(with_bos.end(), ids.begin(), ids.end());
  EXPECT_EQ(tok->decode(with_bos, true), "Once upon a time");  // BOS strips the dummy-prefix space
  EXPECT_LT(ids.size(), 16u);  // merged, not one token per character
  EXPECT_EQ(tok->decode(tok->encode("naïve ☃")), " naïve ☃");  // byte fallback keeps every byte
}
