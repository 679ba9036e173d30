// Hugging Face tokenizers of the model families saelab loads (GPT-2, Pythia, Qwen2/3, Llama 3,
// Mistral / Llama 2, Gemma 2/3), each from a tiny tokenizer directory in tests/data/hf_tiny/ that
// mirrors the real files' pipeline, against the ids and texts transformers gave for them; then each
// pipeline component on its own, with expectations from `tokenizers` 0.23 (pre_tokenize_str,
// encode, decode) or Python's unicodedata, and the errors for what is not supported.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "data/hf_added_tokens.hpp"
#include "data/hf_pipeline.hpp"
#include "data/unicode_nfc.hpp"
#include "saelab/atomic_file.hpp"
#include "saelab/error.hpp"
#include "saelab/tokenizer.hpp"
#include "test_util.hpp"

using namespace saelab;
using json = nlohmann::json;
using saelab::test::error_of;

namespace {

json read_json(const std::string& path) { return json::parse(read_file(path)); }

// A family's tokenizer, loaded as load_hf_model loads it (with config.json's vocab_size).
std::unique_ptr<Tokenizer> load_family(const std::string& dir) {
  const json cfg = read_json(dir + "/config.json");
  const json& v = cfg.contains("vocab_size") ? cfg["vocab_size"] : cfg.at("text_config").at("vocab_size");
  return load_hf_directory_tokenizer(dir, v.get<int32_t>());
}

std::vector<std::string> family_dirs() {
  std::vector<std::string> out;
  const std::string root = test::test_data("hf_tiny");
  if (!std::filesystem::is_directory(root)) return out;
  for (const auto& e : std::filesystem::directory_iterator(root))
    if (e.is_directory() && std::filesystem::exists(e.path() / "tokenizer_cases.json")) out.push_back(e.path().string());
  std::sort(out.begin(), out.end());
  return out;
}

json family_cases(const std::string& dir) {
  const json j = read_json(dir + "/tokenizer_cases.json");
  if (j.is_object() && j.contains("saelab_golden")) {
    EXPECT_EQ(j["saelab_golden"].get<std::string>(), "1");
  }
  return j.is_array() ? j : j.at("cases");
}

// One piece of text through one pre-tokenizer JSON object.
std::vector<std::string> pre_tokenize(const json& p, const std::string& text, bool at_start = true) {
  std::vector<hf::PreTokenizer> steps;
  hf::parse_pre_tokenizer(p, "test.json", steps);
  std::vector<hf::Piece> pieces{{text, at_start}}, next;
  for (const auto& s : steps) {
    next.clear();
    for (const auto& piece : pieces) s(piece, next);
    pieces.swap(next);
  }
  std::vector<std::string> out;
  for (const auto& piece : pieces) out.push_back(piece.text);
  return out;
}

using Strings = std::vector<std::string>;
using Ids = std::vector<int32_t>;

// A tokenizer.json with `vocab` (a JSON object), `merges` and further top-level members.
std::string tokenizer_file(const std::string& name, const std::string& vocab, const std::string& merges,
                           const std::string& members = "") {
  const std::string path = test::make_temp_dir("hffam") + "/" + name;
  test::write_text(path, R"({"model": {"type": "BPE", "vocab": )" + vocab + R"(, "merges": )" + merges + "}" +
                             (members.empty() ? "" : ", " + members) + "}");
  return path;
}

}  // namespace

// ---- The families ------------------------------------------------------------------------------

// For every case: encode(text) is transformers' encode(add_special_tokens=False); BOS, put first
// exactly when adds_bos(), gives encode(add_special_tokens=True); decode with and without
// skip_special matches decode(skip_special_tokens=False / True). The BOS policy and the BOS / EOS
// tokens are those of AutoTokenizer (the header of tokenizer_cases.json) and config.json.
TEST(HfTokenizerFamilies, MatchTransformers) {
  std::vector<std::string> names;
  for (const auto& dir : family_dirs()) names.push_back(std::filesystem::path(dir).filename().string());
  EXPECT_EQ(names, (Strings{"gemma2", "gemma3", "gpt2", "llama3", "mistral", "pythia", "qwen2", "qwen3"}));
  for (const auto& dir : family_dirs()) {
    SCOPED_TRACE(dir);
    auto tok = load_family(dir);
    const json head = read_json(dir + "/tokenizer_cases.json"), cfg = read_json(dir + "/config.json");
    EXPECT_EQ(tok->adds_bos(), head.at("auto_prepends_bos").get<bool>());
    if (head.at("bos_token").is_string()) {
      EXPECT_EQ(tok->piece(tok->bos_id()), head["bos_token"].get<std::string>());
    }
    EXPECT_EQ(tok->piece(tok->eos_id()), head.at("eos_token").get<std::string>());
    // GPT-2, Pythia, Qwen add no BOS, but harvest's contexts start with config.json's.
    EXPECT_EQ(tok->bos_id(), cfg.at("bos_token_id").get<int32_t>());
    const json& eos = cfg.at("eos_token_id");
    for (const json& e : eos.is_array() ? eos : json::array({eos})) EXPECT_TRUE(tok->is_eog(e.get<int32_t>())) << e;
    int n = 0;
    for (const auto& c : family_cases(dir)) {
      const std::string text = c.at("text");
      const Ids ids = c.at("ids"), plain = c.at("ids_no_special");
      const Ids got = tok->encode(text);
      EXPECT_EQ(got, plain) << json(text).dump();
      Ids with_bos = got;
      if (tok->adds_bos()) with_bos.insert(with_bos.begin(), tok->bos_id());
      EXPECT_EQ(with_bos, ids) << json(text).dump() << " (adds_bos " << tok->adds_bos() << ")";
      EXPECT_EQ(tok->decode(ids, false), c.at("decoded").get<std::string>()) << json(text).dump();
      EXPECT_EQ(tok->decode(ids, true), c.at("decoded_skip").get<std::string>()) << json(text).dump();
      ++n;
    }
    EXPECT_GE(n, 25);
  }
}

// ---- Split -------------------------------------------------------------------------------------

TEST(HfSplit, StringPatternWithEachBehavior) {
  const std::string s = "the-final--countdown";
  auto split = [&](const char* behavior, bool invert) {
    return pre_tokenize({{"type", "Split"}, {"pattern", {{"String", "-"}}}, {"behavior", behavior}, {"invert", invert}}, s);
  };
  EXPECT_EQ(split("Removed", false), (Strings{"the", "final", "countdown"}));
  EXPECT_EQ(split("Removed", true), (Strings{"-", "-", "-"}));
  EXPECT_EQ(split("Isolated", false), (Strings{"the", "-", "final", "-", "-", "countdown"}));
  EXPECT_EQ(split("Isolated", true), (Strings{"the", "-", "final", "-", "-", "countdown"}));
  EXPECT_EQ(split("MergedWithPrevious", false), (Strings{"the-", "final-", "-", "countdown"}));
  EXPECT_EQ(split("MergedWithPrevious", true), (Strings{"the", "-final", "-", "-countdown"}));
  EXPECT_EQ(split("MergedWithNext", false), (Strings{"the", "-final", "-", "-countdown"}));
  EXPECT_EQ(split("MergedWithNext", true), (Strings{"the-", "final-", "-", "countdown"}));
  EXPECT_EQ(split("Contiguous", false), (Strings{"the", "-", "final", "--", "countdown"}));
  EXPECT_EQ(split("Contiguous", true), (Strings{"the", "-", "final", "--", "countdown"}));
}

// The regexes are recognised by their exact text and cut as the regex does: Llama 3 keeps digits in
// runs of up to three, Qwen2 one by one.
TEST(HfSplit, Llama3AndQwen2Regexes) {
  const std::string llama3 =
      R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
  const std::string qwen2 =
      R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
  const std::string text = "I'M here 12345 times\n\n  ok?!\r\n x";
  auto split = [&](const std::string& re) {
    return pre_tokenize({{"type", "Split"}, {"pattern", {{"Regex", re}}}, {"behavior", "Isolated"}, {"invert", false}}, text);
  };
  EXPECT_EQ(split(llama3),
            (Strings{"I", "'M", " here", " ", "123", "45", " times", "\n\n", " ", " ok", "?!\r\n", " x"}));
  EXPECT_EQ(split(qwen2), (Strings{"I", "'M", " here", " ", "1", "2", "3", "4", "5", " times", "\n\n", " ", " ok",
                                   "?!\r\n", " x"}));
}

// ---- Other pre-tokenizers ------------------------------------------------------------------------

TEST(HfPreTokenizer, DigitsTakesEveryNumericCharacter) {
  EXPECT_EQ(pre_tokenize({{"type", "Digits"}, {"individual_digits", false}}, "ab12³４cd5"),
            (Strings{"ab", "12³４", "cd", "5"}));
  EXPECT_EQ(pre_tokenize({{"type", "Digits"}, {"individual_digits", true}}, "ab12³４cd5"),
            (Strings{"ab", "1", "2", "³", "４", "cd", "5"}));
}

// prepend_scheme "first" adds "▁" only to text at the start of the input (not after an added
// token); "never" never; the older add_prefix_space false reads as "never".
TEST(HfPreTokenizer, MetaspacePrependScheme) {
  const json first = {{"type", "Metaspace"}, {"replacement", "▁"}, {"prepend_scheme", "first"}, {"split", true}};
  EXPECT_EQ(pre_tokenize(first, "Hey  my friend", true), (Strings{"▁Hey", "▁", "▁my", "▁friend"}));
  EXPECT_EQ(pre_tokenize(first, "Hey  my friend", false), (Strings{"Hey", "▁", "▁my", "▁friend"}));
  const json never = {{"type", "Metaspace"}, {"replacement", "▁"}, {"prepend_scheme", "never"}};
  EXPECT_EQ(pre_tokenize(never, "Hey  my friend"), (Strings{"Hey", "▁", "▁my", "▁friend"}));
  const json legacy = {{"type", "Metaspace"}, {"replacement", "▁"}, {"add_prefix_space", false}};
  EXPECT_EQ(pre_tokenize(legacy, "Hey"), (Strings{"Hey"}));
  const json whole = {{"type", "Metaspace"}, {"replacement", "▁"}, {"prepend_scheme", "always"}, {"split", false}};
  EXPECT_EQ(pre_tokenize(whole, "a b"), (Strings{"▁a▁b"}));
}

// ---- BPE model -----------------------------------------------------------------------------------

// Merges alone cut "abc" as a + bc (b c merges first, and there is no "a bc" merge); with
// ignore_merges a word that is a token is taken whole (Llama 3).
TEST(HfBpe, IgnoreMergesTakesAWholeWordToken) {
  const std::string vocab = R"({"a": 0, "b": 1, "c": 2, "ab": 3, "bc": 4, "abc": 5})";
  const std::string merges = R"([["b", "c"], ["a", "b"]])";
  auto plain = load_hf_tokenizer(tokenizer_file("plain.json", vocab, merges));
  EXPECT_EQ(plain->encode("abc"), (Ids{0, 4}));
  auto whole = load_hf_tokenizer(tokenizer_file(
      "whole.json", vocab, merges + R"(, "ignore_merges": true, "byte_fallback": false)"));
  EXPECT_EQ(whole->encode("abc"), (Ids{5}));
  EXPECT_EQ(whole->encode("cab"), (Ids{2, 3}));
}

// A character with no token, no byte token and no unk token is dropped (tokenizers does not fail).
TEST(HfBpe, UnknownCharacterWithoutUnkIsDropped) {
  auto tok = load_hf_tokenizer(tokenizer_file("nounk.json", R"({"a": 0, "b": 1})", "[]"));
  EXPECT_EQ(tok->encode("a\xC3\xA9" "b"), (Ids{0, 1}));
}

// ---- Added tokens --------------------------------------------------------------------------------

// lstrip takes the spaces before the token, rstrip those after; single_word rejects a match that a
// word character touches; leftmost-longest wins ("abc" over "ab").
TEST(HfAddedTokens, FlagsAsTokenizers) {
  std::string vocab = "{";
  const std::string chars = " abcdefghijklmnopqrstuvwxyz.";
  for (size_t i = 0; i < chars.size(); ++i) vocab += fmt::format("{}\"{}\": {}", i ? ", " : "", chars[i], i);
  vocab += "}";
  auto tok = load_hf_tokenizer(tokenizer_file("flags.json", vocab, "[]", R"("added_tokens": [
      {"id": 28, "content": "<m>", "lstrip": true, "normalized": false},
      {"id": 29, "content": "[r]", "rstrip": true, "normalized": false},
      {"id": 30, "content": "cat", "single_word": true, "normalized": false},
      {"id": 31, "content": "ab", "normalized": false},
      {"id": 32, "content": "abc", "normalized": false}])"));
  EXPECT_EQ(tok->encode("x  <m>y"), (Ids{24, 28, 25}));
  EXPECT_EQ(tok->encode("  <m>"), (Ids{28}));
  EXPECT_EQ(tok->encode("a [r]  b"), (Ids{1, 0, 29, 2}));
  EXPECT_EQ(tok->encode("cat concat cat. catx"), (Ids{30, 0, 3, 15, 14, 3, 1, 20, 0, 30, 27, 0, 3, 1, 20, 24}));
  EXPECT_EQ(tok->encode("abcab ab"), (Ids{32, 31, 0, 31}));
}

TEST(HfAddedTokens, MatcherSpansCoverTheText) {
  hf::AddedTokenMatcher m;
  hf::AddedToken t;
  t.id = 7;
  m.add("<s>", t);
  const auto spans = m.split("a<s><s>b");
  ASSERT_EQ(spans.size(), 4u);
  EXPECT_EQ(spans[0].id, -1);
  EXPECT_EQ(spans[1].id, 7);
  EXPECT_EQ(spans[2].id, 7);
  EXPECT_EQ(spans[3].begin, 7u);
  EXPECT_TRUE(m.split("").empty());
}

// ---- Decoders ------------------------------------------------------------------------------------

// ByteLevel maps each token's characters back to bytes unless one of them is not a mapped byte (then
// the token is kept as written), and reads the whole as UTF-8 with U+FFFD for invalid sequences. Without
// a decoder, tokens are joined by spaces.
TEST(HfDecoder, ByteLevelAndNone) {
  const std::string vocab = R"({"a": 0, "Ġ": 1, "Ã": 2, "©": 3, "<x y>": 4})";
  auto bl = load_hf_tokenizer(tokenizer_file("bl.json", vocab, "[]", R"("decoder": {"type": "ByteLevel"})"));
  EXPECT_EQ(bl->decode({0, 2}), "a\xEF\xBF\xBD");
  EXPECT_EQ(bl->decode({0, 2, 3}), "a\xC3\xA9");
  EXPECT_EQ(bl->decode({1, 4, 0}), " <x y>a");
  auto none = load_hf_tokenizer(tokenizer_file("none.json", vocab, "[]"));
  EXPECT_EQ(none->decode({0, 1, 0}), "a Ġ a");
  EXPECT_EQ(none->decode({0, 99, -1, 0}), "a a") << "ids the vocabulary lacks are dropped";
}

// The first token loses every replacement character (it stood for the added prefix), later ones
// turn them into spaces.
TEST(HfDecoder, MetaspaceFirstToken) {
  const std::string vocab = R"({"▁a": 0, "▁": 1, "a": 2})";
  auto tok = load_hf_tokenizer(tokenizer_file(
      "meta.json", vocab, "[]", R"("decoder": {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first"})"));
  EXPECT_EQ(tok->decode({0, 1, 0, 2}), "a  aa");
  EXPECT_EQ(tok->decode({1, 1, 0}), "  a");
}

// ---- NFC -----------------------------------------------------------------------------------------

// Expectations from Python's unicodedata.normalize("NFC", ...).
TEST(UnicodeNfc, ComposesAsUnicodeDefines) {
  using unicode_nfc::nfc;
  EXPECT_EQ(nfc("e\u0301"), "\u00e9");
  EXPECT_EQ(nfc("a\u0316\u0300"), "\u00e0\u0316") << "marks reorder by class, then compose";
  EXPECT_EQ(nfc("\u212b"), "\u00c5") << "singleton decomposition";
  EXPECT_EQ(nfc("\u0958"), "\u0915\u093c") << "composition exclusion";
  EXPECT_EQ(nfc("\u1100\u1161\u11a8"), "\uac01") << "Hangul L V T";
  EXPECT_EQ(nfc("\uac00\u11a8"), "\uac01") << "Hangul LV T";
  EXPECT_EQ(nfc("\u0b47\u0b3e"), "\u0b4b") << "two starters compose";
  EXPECT_EQ(nfc("a\u0308\u0301"), "\u00e4\u0301") << "a blocked second mark";
  EXPECT_EQ(nfc("\u0071\u0307\u0323"), "q\u0323\u0307");
  EXPECT_EQ(nfc("\u1e0b\u0323"), "\u1e0d\u0307");
  EXPECT_EQ(nfc("\u0f73"), "\u0f71\u0f72");
  EXPECT_EQ(nfc("plain ASCII"), "plain ASCII");
  EXPECT_EQ(nfc("e\xFF\u0301"), "e\xFF\u0301") << "an invalid byte is kept and blocks composition";
}

// A decomposed input gets the ids of the composed text under an NFC normalizer (Qwen, Pythia).
TEST(UnicodeNfc, NormalizerMakesDecomposedTextTokenizeAsComposed) {
  const std::string vocab = R"({"e": 0, "\u0301": 1, "\u00e9": 2})";
  auto tok = load_hf_tokenizer(tokenizer_file("nfc.json", vocab, "[]", R"("normalizer": {"type": "NFC"})"));
  EXPECT_EQ(tok->encode("e\u0301"), (Ids{2}));
  EXPECT_EQ(tok->encode("\u00e9"), (Ids{2}));
}

// ---- A model directory's BOS / EOS policy ----------------------------------------------------------

namespace {
// A directory with a five-token tokenizer (<s> 0, </s> 1, <eot> 2, a 3, b 4), `post` as its
// post_processor, and the given other files ("" = absent).
std::string model_dir(const std::string& post, const std::string& tokenizer_config, const std::string& config,
                      const std::string& generation_config = "") {
  const std::string dir = test::make_temp_dir("hfdir");
  test::write_text(dir + "/tokenizer.json", R"({"added_tokens": [
      {"id": 0, "content": "<s>", "special": true}, {"id": 1, "content": "</s>", "special": true},
      {"id": 2, "content": "<eot>", "special": true}],
    "post_processor": )" + post + R"(,
    "model": {"type": "BPE", "vocab": {"<s>": 0, "</s>": 1, "<eot>": 2, "a": 3, "b": 4}, "merges": []}})");
  if (!tokenizer_config.empty()) test::write_text(dir + "/tokenizer_config.json", tokenizer_config);
  if (!config.empty()) test::write_text(dir + "/config.json", config);
  if (!generation_config.empty()) test::write_text(dir + "/generation_config.json", generation_config);
  return dir;
}
const char* const kBosTemplate = R"({"type": "TemplateProcessing",
    "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
    "special_tokens": {"<s>": {"id": "<s>", "ids": [0], "tokens": ["<s>"]}}})";
}  // namespace

TEST(HfDirectory, TemplateAddsBosWithoutTokenizerConfig) {  // Llama 3
  auto tok = load_hf_directory_tokenizer(
      model_dir(kBosTemplate, "", R"({"bos_token_id": 0, "eos_token_id": [1, 2]})"), 5);
  EXPECT_TRUE(tok->adds_bos());
  EXPECT_EQ(tok->bos_id(), 0);
  EXPECT_EQ(tok->eos_id(), 1);
  EXPECT_TRUE(tok->is_eog(1));
  EXPECT_TRUE(tok->is_eog(2));
}

TEST(HfDirectory, AddBosTokenOverridesTheTemplate) {
  // Mistral / Gemma: add_bos_token true with a bos_token, even where tokenizer.json has no template.
  auto on = load_hf_directory_tokenizer(
      model_dir("null", R"({"add_bos_token": true, "bos_token": {"content": "<s>"}})", R"({"eos_token_id": 1})"), 5);
  EXPECT_TRUE(on->adds_bos());
  EXPECT_EQ(on->bos_id(), 0);
  // Pythia: add_bos_token false removes the template's BOS; config.json's bos_token_id is still the
  // id harvest starts contexts with.
  auto off = load_hf_directory_tokenizer(
      model_dir(kBosTemplate, R"({"add_bos_token": false})", R"({"bos_token_id": 2, "eos_token_id": 1})"), 5);
  EXPECT_FALSE(off->adds_bos());
  EXPECT_EQ(off->bos_id(), 2);
}

TEST(HfDirectory, NoBosAddedButConfigNamesOne) {  // GPT-2, Qwen
  auto tok = load_hf_directory_tokenizer(
      model_dir(R"({"type": "ByteLevel"})", R"({"bos_token": null, "eos_token": "</s>"})",
                R"({"bos_token_id": 1, "eos_token_id": null})", R"({"eos_token_id": [1, 2]})"),
      8);
  EXPECT_FALSE(tok->adds_bos());
  EXPECT_EQ(tok->bos_id(), 1);
  EXPECT_EQ(tok->eos_id(), 1) << "from tokenizer_config.json eos_token";
  EXPECT_TRUE(tok->is_eog(2)) << "from generation_config.json";
}

// ---- Errors --------------------------------------------------------------------------------------

TEST(HfTokenizerErrors, UnknownRegexIsRefusedListingTheSupportedOnes) {
  const std::string path = tokenizer_file("regex.json", R"({"a": 0})", "[]",
                                          R"("pre_tokenizer": {"type": "Split", "pattern": {"Regex": "\\p{L}+"},
                                              "behavior": "Isolated", "invert": false})");
  const std::string msg = error_of([&] { load_hf_tokenizer(path); });
  EXPECT_NE(msg.find("regex.json"), std::string::npos) << msg;
  EXPECT_NE(msg.find(R"(\\p{L}+)"), std::string::npos) << msg;
  EXPECT_NE(msg.find("Llama 3"), std::string::npos) << msg;
  EXPECT_NE(msg.find("Qwen2"), std::string::npos) << msg;
}

TEST(HfTokenizerErrors, UnknownComponentTypesAreNamed) {
  for (const auto& [member, expect] : std::vector<std::pair<std::string, std::string>>{
           {R"("pre_tokenizer": {"type": "Whitespace"})", "pre_tokenizer type 'Whitespace'"},
           {R"("normalizer": {"type": "NFKC"})", "normalizer type 'NFKC'"},
           {R"("decoder": {"type": "WordPiece"})", "decoder type 'WordPiece'"},
           {R"("post_processor": {"type": "BertProcessing"})", "post_processor type 'BertProcessing'"},
           {R"("normalizer": {"type": "Replace", "pattern": {"Regex": " +"}, "content": "x"})", "Replace normalizer"}}) {
    const std::string msg = error_of([&] { load_hf_tokenizer(tokenizer_file("comp.json", R"({"a": 0})", "[]", member)); });
    EXPECT_NE(msg.find("comp.json"), std::string::npos) << msg;
    EXPECT_NE(msg.find(expect), std::string::npos) << msg;
  }
}

TEST(HfTokenizerErrors, MalformedSplit) {
  const std::string llama3 =
      R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+)";
  for (const auto& [split, expect] : std::vector<std::pair<std::string, std::string>>{
           {R"({"type": "Split", "pattern": {"String": " "}, "invert": false})", "behavior <missing>"},
           {R"({"type": "Split", "pattern": {"String": " "}, "behavior": "Sideways", "invert": false})",
            "behavior \"Sideways\""},
           {R"({"type": "Split", "pattern": {"String": " "}, "behavior": "Isolated"})", "\"invert\""},
           {R"({"type": "Split", "pattern": {"String": ""}, "behavior": "Isolated", "invert": false})",
            "empty String pattern"},
           {R"({"type": "Split", "pattern": 7, "behavior": "Isolated", "invert": false})", "pattern 7"},
           {R"({"type": "Split", "pattern": {"Regex": ")" + llama3 + R"("}, "behavior": "Removed", "invert": false})",
            "behavior Isolated and invert false only"}}) {
    const std::string msg =
        error_of([&] { load_hf_tokenizer(tokenizer_file("split.json", R"({"a": 0})", "[]", R"("pre_tokenizer": )" + split)); });
    EXPECT_NE(msg.find("split.json"), std::string::npos) << msg;
    EXPECT_NE(msg.find(expect), std::string::npos) << msg;
  }
}

TEST(HfTokenizerErrors, DirectoryFiles) {
  // A BOS id outside the vocabulary, a tokenizer larger than the model's embedding, a template that
  // puts two tokens before the text, an add_bos_token that is not a boolean.
  EXPECT_NE(error_of([&] { load_hf_directory_tokenizer(model_dir("null", "", R"({"bos_token_id": 50})"), 5); })
                .find("bos_token_id is 50, expected a token id in [0, 5)"),
            std::string::npos);
  EXPECT_NE(error_of([&] { load_hf_directory_tokenizer(model_dir("null", "", "{}"), 4); })
                .find("tokenizer has 5 tokens but config.json vocab_size is 4"),
            std::string::npos);
  const std::string two = R"({"type": "TemplateProcessing",
    "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"SpecialToken": {"id": "<eot>", "type_id": 0}},
               {"Sequence": {"id": "A", "type_id": 0}}],
    "special_tokens": {"<s>": {"id": "<s>", "ids": [0], "tokens": ["<s>"]}, "<eot>": {"id": "<eot>", "ids": [2], "tokens": ["<eot>"]}}})";
  EXPECT_NE(error_of([&] { load_hf_directory_tokenizer(model_dir(two, "", "{}"), 5); }).find("puts 2 tokens before the text"),
            std::string::npos);
  const std::string msg = error_of([&] { load_hf_directory_tokenizer(model_dir("null", R"({"add_bos_token": "yes"})", "{}"), 5); });
  EXPECT_NE(msg.find("tokenizer_config.json': add_bos_token is \"yes\""), std::string::npos) << msg;
}
