#include <gtest/gtest.h>

#include <functional>
#include <nlohmann/json.hpp>
#include <tuple>

#include "saelab/atomic_file.hpp"
#include "saelab/corpus.hpp"
#include "saelab/error.hpp"
#include "saelab/tokenizer.hpp"
#include "test_util.hpp"

using saelab::test::error_of;

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

// TinyStories' special tokens are normalized=true, so tokenizers looks for them after the
// Prepend("▁") / Replace(" ", "▁") normalizer, as "▁<|end_story|>": after a space or at the start of
// the text, not inside a word. Ids from tokenizers 0.23.
TEST(HfTokenizer, SpecialTokensAreSplitOut) {
  auto tok = tinystories();
  EXPECT_EQ(tok->encode("Hi <|end_story|>there"), (std::vector<int32_t>{80, 1158, 2, 249, 57}));
  EXPECT_EQ(tok->encode("<|end_story|>x"), (std::vector<int32_t>{2, 76}));
  EXPECT_EQ(tok->encode("Hi<|end_story|>there"), (std::vector<int32_t>{80, 1158, 208, 183, 209, 210, 249, 57}));
  EXPECT_TRUE(tok->is_special(2));
  // The token decodes in its normalized form, "▁<|end_story|>" (tokenizers 0.23 does this), and
  // skip_special drops it by id, as tokenizers 0.22 did. (0.23 keeps it: it skips a token only when
  // the decoded string is a special token's content; see HfTokenizer::decode.)
  EXPECT_EQ(tok->decode({80, 1158, 2, 249, 57}, /*skip_special=*/false), "Hi <|end_story|>there");
  EXPECT_EQ(tok->decode({80, 1158, 2, 249, 57}, /*skip_special=*/true), "Hithere");
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

// FuzzRegression: inputs the fuzz targets found; BadInput: defects found while writing them (fuzz/,
// docs/reliability.md "Bad inputs found by fuzzing"). Each must be a saelab::Error naming the file.
namespace {
// A tokenizer.json of a small BPE vocabulary plus `members` (more top-level members).
std::string hf_file(const std::string& name, const std::string& members) {
  const std::string path = test::make_temp_dir("tok") + "/" + name;
  test::write_text(path, R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": 1, " ": 2, "<0xZZ>": 3}, "merges": []})" +
                             (members.empty() ? "" : ", " + members) + "}");
  return path;
}
}  // namespace

TEST(FuzzRegression, Llama2cTokenizerWithoutByteTokens) {
  // fuzz_llama2c_tokenizer: seven tokens (<unk> <s> </s> " " a b ab). encode() maps bytes to ids
  // 3 + byte, so "b" (not in the vocabulary as a whole character) indexed past the vocabulary.
  const std::string bin(
      "\x05\x00\x00\x00\x00\x00\x00\x80\x05\x00\x00\x00<unk>\x00\x00\x80\xbf\x03\x00\x00\x00<s>\x00\x00\x00\xc0\x04"
      "\x00\x00\x00</s>\x00\x00\x40\xc0\x01\x00\x00\x00 \x00\x00\x80\xc0\x01\x00\x00\x00"
      "a\x00\x00\xa0\xc0\x01\x00\x00\x00"
      "b\x00\x00\xc0\xc0\x02\x00\x00\x00"
      "ab",
      77);
  const std::string path = test::make_temp_dir("tok") + "/tok7.bin";
  test::write_text(path, bin);
  const std::string msg = error_of([&] { load_llama2c_tokenizer(path, 7); });
  EXPECT_NE(msg.find("tok7.bin"), std::string::npos) << msg;
  EXPECT_NE(msg.find("256 byte tokens"), std::string::npos) << msg;
  // A vocabulary larger than the file can hold is refused before anything is allocated for it.
  EXPECT_NE(error_of([&] { load_llama2c_tokenizer(path, 1 << 24); }).find("truncated"), std::string::npos);
}

TEST(FuzzRegression, HfTokenizerIdThatIsAHugeFloat) {
  // fuzz_hf_tokenizer: an id of 2.66667e+77 converted to int32 (undefined behaviour).
  const std::string path = test::make_temp_dir("tok") + "/tokenizer.json";
  test::write_text(path, R"({"model": {"type": "BPE", "vocab": {"a": 2.66667e+77}, "merges": []}})");
  const std::string m2 = error_of([&] { load_hf_tokenizer(path); });
  EXPECT_NE(m2.find("tokenizer.json"), std::string::npos) << m2;
  EXPECT_NE(m2.find("token 'a' has id 2.66667e+77"), std::string::npos) << m2;
}

TEST(BadInput, HfTokenizerIdsOutOfRange) {
  // A negative added-token id wrote before the pieces array (heap overflow); id 2e9 allocated 64 GB.
  EXPECT_NE(error_of([&] { load_hf_tokenizer(hf_file("neg.json", R"("added_tokens": [{"id": -1, "content": "x"}])")); })
                .find("token 'x' has id -1"),
            std::string::npos);
  const std::string path = test::make_temp_dir("tok") + "/tokenizer.json";
  test::write_text(path, R"({"model": {"type": "BPE", "vocab": {"a": 2000000000}, "merges": []}})");
  EXPECT_NE(error_of([&] { load_hf_tokenizer(path); }).find("has id 2000000000"), std::string::npos);
}

TEST(BadInput, HfTokenizerOptionsThatNeverTerminated) {
  // Each of these hung: an empty added token matched at every position without advancing, Strip
  // removed "" two billion times, Metaspace split on "" forever.
  for (const auto& [name, members, expect] : std::vector<std::tuple<std::string, std::string, std::string>>{
           {"empty_added.json", R"("added_tokens": [{"id": 4, "content": ""}])", "empty content"},
           {"strip.json", R"("decoder": {"type": "Strip", "content": "", "start": 2000000000})", "Strip decoder has empty content"},
           {"meta.json", R"("pre_tokenizer": {"type": "Metaspace", "replacement": ""})", "must be exactly one character"}}) {
    const std::string msg = error_of([&] { load_hf_tokenizer(hf_file(name, members)); });
    EXPECT_NE(msg.find(name), std::string::npos) << msg;
    EXPECT_NE(msg.find(expect), std::string::npos) << msg;
  }
}

TEST(BadInput, HfByteFallbackDecoderKeepsAPieceThatIsNotHex) {
  // "<0xZZ>" looked like a byte token to the ByteFallback decoder, and std::stoi threw.
  auto tok = load_hf_tokenizer(hf_file("bytefb.json", R"("decoder": {"type": "ByteFallback"})"));
  EXPECT_EQ(tok->decode({0, 3, 1}), "a<0xZZ>b");
}
