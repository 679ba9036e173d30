// Tokenizers built from GGUF metadata: the real SmolLM2 GGUF against its shared goldens, the
// byte-level pre-tokenizers (gpt-2, llama-bpe, qwen2, smollm, default) against Hugging Face
// `tokenizers`, SentencePiece-style BPE against `sentencepiece` (goldens in tests/data/tokenizer_gguf,
// written by scripts/reference/make_tokenizer_goldens.py), and one clear Error per bad vocabulary.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <nlohmann/json.hpp>

#include "data/pretokenize.hpp"
#include "saelab/atomic_file.hpp"
#include "saelab/corpus.hpp"
#include "saelab/error.hpp"
#include "saelab/tokenizer_gguf.hpp"
#include "test_util.hpp"

using namespace saelab;
using saelab::test::error_of;
using json = nlohmann::json;
using Ids = std::vector<int32_t>;

namespace {

std::string smollm2_path() {
  return test::shared_root() + "/models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf";
}
const GgufVocab& smollm2_vocab() {
  static const GgufVocab v = read_gguf_vocab(GgufFile(smollm2_path()));
  return v;
}
std::unique_ptr<Tokenizer> smollm2(const std::string& pre = "smollm") {
  GgufVocab v = smollm2_vocab();
  v.pre = pre;
  return make_gguf_tokenizer(v);
}
json golden(const std::string& path) {
  json j = json::parse(read_file(path));
  EXPECT_EQ(j.value("saelab_golden", ""), "1") << path;
  return j;
}
json shared_golden(const std::string& name) {  // ../shared's goldens carry no saelab magic
  return json::parse(read_file(test::shared_root() + "/models/smollm2-135m-instruct/golden/" + name));
}
// The SentencePiece vocabulary of tests/data/tokenizer_gguf/spm_vocab.json as GGUF states it.
GgufVocab spm_vocab(const json& j) {
  GgufVocab v;
  v.source = "spm_vocab.json";
  v.model = "llama";
  v.tokens = j.at("tokens").get<std::vector<std::string>>();
  v.scores = j.at("scores").get<std::vector<float>>();
  v.token_types = j.at("token_types").get<std::vector<int32_t>>();
  v.bos = j.at("bos");
  v.eos = j.at("eos");
  v.unk = j.at("unk");
  v.add_bos = true;
  return v;
}
bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

}  // namespace

TEST(GgufTokenizer, SmolLM2MatchesSharedGoldens) {
  auto tok = smollm2();
  const json g = shared_golden("tokenizer_goldens.json");
  EXPECT_FALSE(g.at("add_bos").get<bool>());
  ASSERT_FALSE(g.at("cases").empty());
  for (const auto& c : g.at("cases")) {
    const std::string text = c.at("text");
    EXPECT_EQ(tok->encode(text), c.at("ids").get<Ids>()) << text;
    EXPECT_EQ(tok->decode(tok->encode(text)), text);
  }
}

TEST(GgufTokenizer, SmolLM2SpecialTokens) {
  const GgufVocab& v = smollm2_vocab();
  EXPECT_EQ(v.model, "gpt2");
  EXPECT_EQ(v.pre, "smollm");
  EXPECT_EQ(v.tokens.size(), 49152u);
  EXPECT_EQ(v.merges.size(), 48900u);
  EXPECT_EQ(v.unk, 0);
  EXPECT_EQ(v.pad, 2);
  EXPECT_FALSE(v.add_space_prefix);
  auto tok = smollm2();
  EXPECT_EQ(tok->vocab_size(), 49152);
  EXPECT_EQ(tok->bos_id(), 1);
  EXPECT_EQ(tok->eos_id(), 2);
  EXPECT_FALSE(tok->adds_bos());
  // llama.cpp's end-of-generation set: EOS, <|endoftext|> (its EOG text list) and <reponame>, which
  // it takes for the FIM repository token.
  EXPECT_EQ(tok->eog_ids(), (Ids{0, 2, 4}));
  for (int32_t id = 0; id < 17; ++id) EXPECT_TRUE(tok->is_special(id)) << id;
  EXPECT_FALSE(tok->is_special(17));
  const Ids ids = tok->encode("<|im_start|>user\nhi<|im_end|>");
  ASSERT_GE(ids.size(), 4u);
  EXPECT_EQ(ids.front(), 1);
  EXPECT_EQ(ids.back(), 2);
  EXPECT_EQ(tok->decode(ids), "<|im_start|>user\nhi<|im_end|>");
  EXPECT_EQ(tok->decode(ids, /*skip_special=*/true), "user\nhi");
  EXPECT_EQ(tok->encode("a<|endoftext|>b"), (Ids{tok->encode("a")[0], 0, tok->encode("b")[0]}));
}

// Each family's pre-tokenizer on the SmolLM2 vocabulary must give exactly `tokenizers`' ids.
TEST(GgufTokenizer, PreTokenizersMatchHuggingFace) {
  const json g = golden(test::test_data("tokenizer_gguf/bpe_goldens.json"));
  std::map<std::string, std::unique_ptr<Tokenizer>> toks;
  for (const auto& c : g.at("cases")) {
    const std::string text = c.at("text");
    for (const auto& [pre, ids] : c.at("ids").items()) {
      if (!toks.count(pre)) toks[pre] = smollm2(pre);
      EXPECT_EQ(toks[pre]->encode(text), ids.get<Ids>()) << pre << ": " << json(text).dump();
      if (c.at("round_trip")) {
        EXPECT_EQ(toks[pre]->decode(toks[pre]->encode(text)), text) << pre;
      }
    }
  }
  EXPECT_EQ(toks.size(), 5u);
}

// Byte-level BPE keeps every byte the vocabulary has, valid UTF-8 or not, and drops the others.
TEST(GgufTokenizer, ByteLevelRoundTripsAnyBytes) {
  for (const std::string pre : {"llama-bpe", "qwen2", "gpt-2", "default", "smollm"}) {
    auto tok = smollm2(pre);
    static const char kOdd[] = "\x80\xbf a\xc3 \xe2\x82 \x00\x01 \xf0\x9f\x98 9\xe2";
    const std::string odd(kOdd, sizeof kOdd - 1);  // the NUL inside included
    EXPECT_EQ(tok->decode(tok->encode(odd)), odd) << pre;
    EXPECT_EQ(tok->decode(tok->encode("a\xff\xc0" "b")), "ab") << pre;  // SmolLM2 has no 0xFF, 0xC0
  }
  auto tok = smollm2("llama-bpe");
  CorpusReader reader(expand_corpus_paths({test::shared_root() + "/corpus/wikitext2/valid.txt"}));
  std::string doc;
  for (int n = 0; n < 100 && reader.next(doc); ++n) ASSERT_EQ(tok->decode(tok->encode(doc)), doc) << n;
}

// Plain text must give `sentencepiece`'s own ids. Where control or user-defined tokens occur, the
// goldens follow llama.cpp (tokens split out of the text, each fragment between them encoded with
// its own "▁" prefix); sentencepiece itself leaves "<s>" in text as characters and puts no "▁"
// after a user-defined symbol.
TEST(GgufTokenizer, SentencePieceMatchesSentencePiece) {
  const json j = golden(test::test_data("tokenizer_gguf/spm_vocab.json"));
  auto tok = make_gguf_tokenizer(spm_vocab(j));
  EXPECT_EQ(tok->bos_id(), 1);
  EXPECT_EQ(tok->eos_id(), 2);
  EXPECT_TRUE(tok->adds_bos());
  EXPECT_EQ(tok->eog_ids(), (Ids{2, 4}));  // </s>, and <|im_end|> from llama.cpp's EOG text list
  for (const auto& c : j.at("cases")) {
    const std::string text = c.at("text");
    const Ids ids = tok->encode(text);
    EXPECT_EQ(ids, c.at("ids").get<Ids>()) << json(text).dump();
    EXPECT_EQ(tok->decode(ids), text);
  }
}

TEST(GgufTokenizer, SentencePieceDecodesPiecesBytesAndSpecials) {
  auto tok = make_gguf_tokenizer(spm_vocab(golden(test::test_data("tokenizer_gguf/spm_vocab.json"))));
  Ids ids = tok->encode(" two  spaces \xe6\x9d\xb1");
  ids.insert(ids.begin(), tok->bos_id());
  EXPECT_EQ(tok->decode(ids, /*skip_special=*/true), " two  spaces \xe6\x9d\xb1");  // the prefix space goes
  EXPECT_EQ(tok->decode(ids), "<s> two  spaces \xe6\x9d\xb1");
  EXPECT_TRUE(tok->is_special(0));  // <unk>
  EXPECT_FALSE(tok->is_special(5));  // <|user|>: user-defined, always printed
  EXPECT_EQ(tok->decode({5, 1, 2}, true), "<|user|>");
}

TEST(GgufTokenizer, UnicodeClassesFollowTheRegexEngines) {
  using pretokenize::UnicodeClass;
  using pretokenize::unicode_class;
  EXPECT_EQ(unicode_class(0xA0), UnicodeClass::Space);     // no-break space is \s
  EXPECT_EQ(unicode_class(0x85), UnicodeClass::Space);     // NEL
  EXPECT_EQ(unicode_class(0x1C), UnicodeClass::Other);     // not \s, though Python's str.isspace says so
  EXPECT_EQ(unicode_class(0x301), UnicodeClass::Mark);     // combining acute: not a letter
  EXPECT_EQ(unicode_class(0x93F), UnicodeClass::Mark);     // Devanagari vowel sign (Mc)
  EXPECT_EQ(unicode_class(0x663), UnicodeClass::Number);   // Arabic-Indic three
  EXPECT_EQ(unicode_class(0xB2), UnicodeClass::Number);    // superscript two (No)
  EXPECT_EQ(unicode_class(0x216B), UnicodeClass::Number);  // Roman numeral twelve (Nl)
  EXPECT_EQ(unicode_class(0x6771), UnicodeClass::Letter);
  EXPECT_EQ(unicode_class(0x2014), UnicodeClass::Punct);   // em dash
  EXPECT_EQ(unicode_class('$'), UnicodeClass::Other);      // a symbol (Sc)
  EXPECT_EQ(unicode_class(0x1F600), UnicodeClass::Other);
  EXPECT_EQ(unicode_class(0x10FFFF), UnicodeClass::Other);
}

// ---- bad vocabularies: one Error each, naming the source ----------------------------------------

namespace {
GgufVocab tiny(const std::string& model) {
  GgufVocab v;
  v.source = "tiny.gguf";
  v.model = model;
  v.tokens = {"a", "b", "ab", "<s>"};
  v.token_types = {1, 1, 1, 3};
  v.merges = {"a b"};
  return v;
}
std::string make_error(const GgufVocab& v) {
  return error_of([&] { make_gguf_tokenizer(v); });
}
}  // namespace

TEST(GgufTokenizerBadVocab, EachDefectIsOneNamedError) {
  GgufVocab v = tiny("wordpiece");
  std::vector<std::pair<GgufVocab, std::string>> cases{{v, "tokenizer model 'wordpiece'"}};
  v = tiny("gpt2");
  v.pre = "tekken";
  cases.push_back({v, "pre-tokenizer 'tekken' (tokenizer.ggml.pre) is not supported (supported: default, gpt-2"});
  v = tiny("llama");
  v.scores = {0, 0};
  cases.push_back({v, "tokenizer.ggml.scores has 2 entries, expected one per token (4)"});
  v = tiny("gpt2");
  v.token_types = {1};
  cases.push_back({v, "tokenizer.ggml.token_type has 1 entries"});
  v = tiny("gpt2");
  v.merges = {"a b", "b c"};
  cases.push_back({v, "merge 1 'b c' refers to a token missing from the vocabulary ('c')"});
  v = tiny("gpt2");
  v.merges = {"ab"};
  cases.push_back({v, "merge 0 'ab' is not of the form 'a b'"});
  v = tiny("llama");
  v.bos = 4;
  cases.push_back({v, "tokenizer.ggml.bos_token_id is 4, outside the vocabulary of 4 tokens"});
  v = tiny("gpt2");
  v.add_bos = true;
  cases.push_back({v, "add_bos_token is true but there is no tokenizer.ggml.bos_token_id"});
  v = tiny("llama");
  v.tokens = {};
  v.token_types = {};
  cases.push_back({v, "the vocabulary (tokenizer.ggml.tokens) is empty"});
  v = tiny("llama");
  v.tokens[1] = "a";
  cases.push_back({v, "token 'a' appears twice in tokenizer.ggml.tokens (ids 0 and 1)"});
  v = tiny("llama");
  v.token_types[2] = 6;
  cases.push_back({v, "token 2 'ab' has token_type 6 (byte) but is not of the form <0xXX>"});
  v = tiny("llama");
  v.scores = {0, 0, std::nanf(""), 0};
  cases.push_back({v, "tokenizer.ggml.scores[2] is NaN"});
  for (const auto& [vocab, expect] : cases) {
    const std::string msg = make_error(vocab);
    EXPECT_TRUE(contains(msg, "'tiny.gguf'")) << msg;
    EXPECT_TRUE(contains(msg, expect)) << msg;
  }
}

TEST(GgufTokenizerBadVocab, SentencePieceWithoutByteTokensOrUnk) {
  GgufVocab v = tiny("llama");
  v.tokens = {"\xE2\x96\x81", "a"};  // ▁ a
  v.token_types = {};
  EXPECT_EQ(make_gguf_tokenizer(v)->encode("a a"), (Ids{0, 1, 0, 1}));
  const std::string msg = error_of([&] { make_gguf_tokenizer(v)->encode("b"); });
  EXPECT_TRUE(contains(msg, "'tiny.gguf': byte 0x62 has no token")) << msg;
  v.tokens.push_back("<unk>");
  v.token_types = {1, 1, 2};
  v.unk = 2;
  EXPECT_EQ(make_gguf_tokenizer(v)->encode("ab"), (Ids{0, 1, 2}));  // one <unk> per character
}

// Split-out tokens as llama.cpp's tokenizer_st_partition takes them: longest first over the whole
// text, so an overlapping shorter one never claims text a longer one matched; user-defined tokens
// are split out too but print even with skip_special.
TEST(GgufTokenizer, SplitOutTokensLongestFirst) {
  GgufVocab v = tiny("gpt2");
  v.tokens = {"a", "b", "c", "d", "ab", "<x>", "b<x>c", "[u]"};
  v.token_types = {1, 1, 1, 1, 1, 3, 3, 4};
  v.merges = {"a b"};
  auto tok = make_gguf_tokenizer(v);
  EXPECT_EQ(tok->encode("ab<x>cd"), (Ids{0, 6, 3}));  // "b<x>c" before "<x>"; "a" alone
  EXPECT_EQ(tok->encode("ab<x>d[u]ab"), (Ids{4, 5, 3, 7, 4}));
  EXPECT_EQ(tok->decode({4, 5, 3, 7}, /*skip_special=*/true), "abd[u]");
  EXPECT_FALSE(tok->is_special(7));
}

// ---- read_gguf_vocab on small GGUF files (metadata only) ------------------------------------------

namespace {
// A GGUF v3 file with no tensors, built key by key (GGUF value types: 4 u32, 5 i32, 6 f32, 7 bool,
// 8 string, 9 array).
struct GgufKeys {
  std::string body;
  uint64_t n = 0;
  template <class T>
  void raw(T x) {
    body.append(reinterpret_cast<const char*>(&x), sizeof x);
  }
  void str(const std::string& x) {
    raw<uint64_t>(x.size());
    body += x;
  }
  GgufKeys& key(const std::string& k, uint32_t type) {
    str(k);
    raw(type);
    ++n;
    return *this;
  }
  GgufKeys& text(const std::string& k, const std::string& x) {
    key(k, 8).str(x);
    return *this;
  }
  GgufKeys& u32(const std::string& k, uint32_t x) {
    key(k, 4).raw(x);
    return *this;
  }
  GgufKeys& flag(const std::string& k, bool x) {
    key(k, 7).raw<uint8_t>(x);
    return *this;
  }
  GgufKeys& texts(const std::string& k, const std::vector<std::string>& xs) {
    key(k, 9).raw<uint32_t>(8);
    raw<uint64_t>(xs.size());
    for (const auto& x : xs) str(x);
    return *this;
  }
  template <class T>
  GgufKeys& numbers(const std::string& k, uint32_t type, const std::vector<T>& xs) {
    key(k, 9).raw<uint32_t>(type);
    raw<uint64_t>(xs.size());
    for (T x : xs) raw(x);
    return *this;
  }
  std::string write(const std::string& name) const {
    const std::string path = test::make_temp_dir("tokgguf") + "/" + name;
    std::string file = "GGUF";
    file.append("\x03\0\0\0", 4);
    file.append(8, '\0');  // no tensors
    file.append(reinterpret_cast<const char*>(&n), 8);
    test::write_text(path, file + body);
    return path;
  }
};
std::vector<std::string> letters(int n) {
  std::vector<std::string> t;
  for (int i = 0; i < n; ++i) t.push_back(std::string(1, static_cast<char>('a' + i)));
  return t;
}
const std::string kPre = "tokenizer.ggml.pre";
// A gpt2 vocabulary of n letters without merges.
GgufKeys gpt2_keys(int n) {
  GgufKeys k;
  k.text("tokenizer.ggml.model", "gpt2").texts("tokenizer.ggml.tokens", letters(n)).texts("tokenizer.ggml.merges", {});
  return k;
}
}  // namespace

TEST(ReadGgufVocab, LlamaDefaultsWhenKeysAreAbsent) {
  const std::string path = GgufKeys()
                               .text("tokenizer.ggml.model", "llama")
                               .texts("tokenizer.ggml.tokens", letters(5))
                               .numbers<float>("tokenizer.ggml.scores", 6, {0, -1, -2, -3, -4})
                               .numbers<int32_t>("tokenizer.ggml.token_type", 5, {2, 3, 3, 1, 1})
                               .write("llama.gguf");
  const GgufVocab v = read_gguf_vocab(GgufFile(path));
  EXPECT_EQ(v.source, path);
  EXPECT_EQ(v.pre, "default");
  EXPECT_EQ(v.scores, (std::vector<float>{0, -1, -2, -3, -4}));
  EXPECT_EQ(v.token_types, (Ids{2, 3, 3, 1, 1}));
  EXPECT_EQ(std::tie(v.bos, v.eos, v.unk, v.eot, v.eom, v.pad), std::make_tuple(1, 2, 0, -1, -1, -1));
  EXPECT_TRUE(v.add_bos);
  EXPECT_FALSE(v.add_eos);
  EXPECT_TRUE(v.add_space_prefix);
  EXPECT_EQ(make_gguf_tokenizer(v)->encode("de"), (Ids{0, 3, 4}));  // the prefix "\xE2\x96\x81" is no token: <unk>
}

TEST(ReadGgufVocab, Gpt2DefaultsFollowThePreTokenizer) {
  const GgufVocab v = read_gguf_vocab(GgufFile(gpt2_keys(12).text(kPre, "llama-bpe").write("llama3.gguf")));
  EXPECT_EQ(std::tie(v.bos, v.eos, v.unk), std::make_tuple(11, 11, -1));  // llama.cpp's legacy gpt2 default
  EXPECT_TRUE(v.add_bos);                                                // the Llama 3 family adds BOS
  EXPECT_FALSE(v.add_space_prefix);
  GgufKeys k = gpt2_keys(12).text(kPre, "gpt-2").u32("tokenizer.ggml.bos_token_id", 3);
  const GgufVocab w = read_gguf_vocab(GgufFile(k.flag("tokenizer.ggml.add_bos_token", true).write("gpt2.gguf")));
  EXPECT_EQ(std::tie(w.bos, w.eos, w.add_bos), std::make_tuple(3, 11, true));
  const GgufVocab u = read_gguf_vocab(GgufFile(gpt2_keys(4).write("small.gguf")));
  EXPECT_EQ(std::tie(u.bos, u.eos, u.pre), std::make_tuple(-1, -1, std::string("default")));  // 11 is out of range
  EXPECT_EQ(make_gguf_tokenizer(u)->encode("abd"), (Ids{0, 1, 3}));
}

TEST(ReadGgufVocab, BadKeysAreNamedErrors) {
  const std::string model = "tokenizer.ggml.model", tokens = "tokenizer.ggml.tokens";
  const std::vector<std::pair<std::string, std::string>> cases{
      {GgufKeys().text(model, "gpt2").texts(tokens, letters(3)).write("nomerges.gguf"),
       "tokenizer.ggml.merges is missing"},
      {gpt2_keys(3).u32("tokenizer.ggml.eos_token_id", 7).write("eos.gguf"),
       "tokenizer.ggml.eos_token_id is 7, outside the vocabulary of 3 tokens"},
      {gpt2_keys(3).numbers<int32_t>("tokenizer.ggml.scores", 5, {1, 2, 3}).write("intscores.gguf"), ""},
      {GgufKeys().text(model, "gpt2").numbers<int32_t>(tokens, 5, {1}).write("ints.gguf"),
       "tokenizer.ggml.tokens[0] is 1, expected a string"},
      {GgufKeys().texts(tokens, letters(3)).write("nomodel.gguf"), "tokenizer.ggml.model"},
  };
  for (const auto& [path, expect] : cases) {
    const std::string msg = error_of([&] { read_gguf_vocab(GgufFile(path)); });
    if (expect.empty()) {
      EXPECT_EQ(msg, "<no error>");
      continue;
    }
    EXPECT_TRUE(contains(msg, path)) << msg;
    EXPECT_TRUE(contains(msg, expect)) << msg;
  }
}
