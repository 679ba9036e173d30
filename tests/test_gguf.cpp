// The GGUF reader: the real SmolLM2 Q4_1 model against goldens decoded by hand and by gguf-py,
// every supported ggml type against gguf.quants.dequantize (tests/data/gguf, written by
// scripts/reference/make_gguf_goldens.py), metadata of every value type, and one clear Error for
// each kind of defect.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <optional>

#include "saelab/atomic_file.hpp"
#include "saelab/gguf.hpp"
#include "saelab/safetensors.hpp"
#include "gguf_builder.hpp"
#include "test_util.hpp"

using namespace saelab;
using saelab::test::error_of;
using json = nlohmann::json;
using namespace saelab::test::gguf;

namespace {

constexpr double kTolSum = 1e-9;  // float64 sums of f32 values: ours (sequential) vs numpy's (pairwise)

std::string smollm2_dir() { return test::shared_root() + "/models/smollm2-135m-instruct"; }
std::string smollm2_path() { return smollm2_dir() + "/SmolLM2-135M-Instruct.Q4_1.gguf"; }

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// A small valid file: two kvs and an F32 [2, 32] tensor and a Q8_0 [32] tensor.
GgufSpec small_spec() {
  GgufSpec s;
  s.kvs = {{"general.architecture", val_str("llama")}, {"test.count", val<uint32_t>(U32, 7)}};
  std::vector<float> a(64);
  for (int i = 0; i < 64; ++i) a[i] = 0.25f * static_cast<float>(i - 20);
  std::string q8 = Bytes().put<uint16_t>(0x3C00).b;  // d = 1.0
  for (int i = 0; i < 32; ++i) q8.push_back(static_cast<char>(i - 16));
  s.tensors = {tensor_spec("a", {32, 2}, 0, f32_bytes(a)), tensor_spec("q", {32}, 8, q8)};
  return s;
}

std::string write_temp(const std::string& name, const std::string& bytes) {
  const std::string path = test::make_temp_dir("gguf") + "/" + name;
  std::ofstream(path, std::ios::binary) << bytes;
  return path;
}

// The message of opening `bytes` as a GGUF file (named `name`).
std::string open_error(const std::string& bytes, const std::string& name = "bad.gguf") {
  const std::string path = write_temp(name, bytes);
  return error_of([&] { GgufFile f(path); });
}

uint32_t bits_of(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

}  // namespace

// ---- types and decoding ---------------------------------------------------------------------------

TEST(GgufTypes, TableMatchesGgml) {
  EXPECT_EQ(ggml_type_name(12), "Q4_K");
  EXPECT_EQ(ggml_type_name(99), "type 99");
  EXPECT_EQ(ggml_type_name(4), "type 4");  // removed Q4_2
  for (uint32_t t : {0u, 1u, 2u, 3u, 6u, 7u, 8u, 12u, 13u, 14u, 30u}) EXPECT_TRUE(ggml_type_supported(t)) << t;
  for (uint32_t t : {9u, 10u, 11u, 15u, 16u, 23u, 24u, 28u, 99u}) EXPECT_FALSE(ggml_type_supported(t)) << t;
  const std::vector<std::pair<uint32_t, std::pair<int64_t, int64_t>>> sizes = {
      {0, {1, 4}},     {1, {1, 2}},      {30, {1, 2}},     {8, {32, 34}},  {2, {32, 18}},  {3, {32, 20}},
      {6, {32, 22}},   {7, {32, 24}},    {12, {256, 144}}, {13, {256, 176}}, {14, {256, 210}}, {10, {256, 84}},
      {11, {256, 110}}, {15, {256, 292}}, {99, {0, 0}}};
  for (const auto& [t, sb] : sizes) {
    EXPECT_EQ(ggml_block_size(t), sb.first) << ggml_type_name(t);
    EXPECT_EQ(ggml_block_bytes(t), sb.second) << ggml_type_name(t);
  }
}

// Every f16 bit pattern against the definition: subnormals are m * 2^-24, exponent 31 is inf/NaN.
TEST(GgufDequant, EveryHalfValue) {
  std::vector<uint16_t> h(65536);
  for (uint32_t i = 0; i < 65536; ++i) h[i] = static_cast<uint16_t>(i);
  std::vector<float> out(65536);
  dequantize_ggml(1, reinterpret_cast<const uint8_t*>(h.data()), out.data(), 65536);
  for (uint32_t i = 0; i < 65536; ++i) {
    const int e = (i >> 10) & 31, m = i & 1023;
    const double mag = e == 0 ? std::ldexp(m, -24) : e == 31 ? (m ? NAN : INFINITY) : std::ldexp(1024 + m, e - 25);
    const double want = (i & 0x8000) ? -mag : mag;
    if (std::isnan(want)) {
      ASSERT_TRUE(std::isnan(out[i])) << std::hex << i;
      ASSERT_EQ(std::signbit(out[i]), (i & 0x8000) != 0) << std::hex << i;
    } else {
      ASSERT_EQ(bits_of(out[i]), bits_of(static_cast<float>(want))) << std::hex << i;
    }
  }
}

// Every supported type decodes to exactly what gguf-py's gguf.quants.dequantize gives on the same
// bytes (random quantized bytes; subnormal, zero and largest f16 scales; f16/bf16/f32 specials).
TEST(GgufGolden, EveryTypeMatchesGgufPy) {
  GgufFile f(test::test_data("gguf/types.gguf"));
  SafetensorsFile want(test::test_data("gguf/types_expected.safetensors"));
  ASSERT_EQ(want.metadata().at("saelab_golden"), "1");
  std::vector<std::string> seen;
  for (const std::string& name : want.names()) {
    const GgufTensorInfo& t = f.tensor(name);
    EXPECT_EQ(t.shape(), want.entry(name).shape) << name;
    const std::vector<float> got = f.dequantize(name), expect = want.read_f32(name);
    ASSERT_EQ(got.size(), expect.size()) << name;
    for (size_t i = 0; i < got.size(); ++i)
      ASSERT_EQ(bits_of(got[i]), bits_of(expect[i])) << name << " value " << i << ": " << got[i] << " vs " << expect[i];
    seen.push_back(ggml_type_name(t.type));
  }
  for (const char* type : {"F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q4_K", "Q5_K", "Q6_K"})
    EXPECT_NE(std::find(seen.begin(), seen.end(), type), seen.end()) << type << " has no golden";
}

TEST(GgufGolden, LayoutOfTheGgufPyFile) {
  const std::string path = test::test_data("gguf/types.gguf");
  GgufFile f(path);
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.alignment(), 64u);
  EXPECT_EQ(f.data_offset(), 1600u);  // as gguf.GGUFReader reports
  const GgufTensorInfo& t = f.tensor("t.Q8_0.3d");
  EXPECT_EQ(t.ne, (std::vector<int64_t>{64, 3, 2}));
  EXPECT_EQ(t.shape(), (std::vector<int64_t>{2, 3, 64}));
  EXPECT_EQ(t.nbytes, 6u * 2 * 34);
  EXPECT_EQ(f.tensor("t.F16").offset, 5696u);
  const std::string bytes = read_file(path);
  EXPECT_EQ(std::memcmp(f.raw(t), bytes.data() + t.offset, t.nbytes), 0);
  EXPECT_EQ(f.find("nope"), nullptr);
  const std::string msg = error_of([&] { f.tensor("nope"); });
  EXPECT_TRUE(contains(msg, "types.gguf") && contains(msg, "'nope'")) << msg;
}

TEST(GgufGolden, UnsupportedTypeOpensButDoesNotDequantize) {
  GgufFile f(test::test_data("gguf/types.gguf"));
  const std::string msg = error_of([&] { f.dequantize("t.Q2_K"); });
  EXPECT_TRUE(contains(msg, "types.gguf") && contains(msg, "'t.Q2_K'") && contains(msg, "Q2_K")) << msg;
}

void expect_gguf_py_metadata(const GgufFile& f) {
  const json& m = f.metadata();
  EXPECT_EQ(f.keys().front(), "general.architecture");
  EXPECT_EQ(f.keys().size(), m.size());
  EXPECT_EQ(f.get_string("general.architecture"), "saelab-test");
  EXPECT_EQ(f.get_int("test.u8"), 200);
  EXPECT_EQ(f.get_int("test.i8"), -100);
  EXPECT_EQ(f.get_int("test.u16"), 60000);
  EXPECT_EQ(f.get_int("test.i16"), -30000);
  EXPECT_EQ(f.get_int("test.u32"), 4000000000);
  EXPECT_EQ(f.get_int("test.i32"), -2000000000);
  EXPECT_EQ(f.get_float("test.f32"), static_cast<double>(0.1f));
  EXPECT_TRUE(f.get_bool("test.bool"));
  EXPECT_EQ(f.get_string("test.string"), "h\xc3\xa9llo, GGUF");
  EXPECT_EQ(m["test.u64"].get<uint64_t>(), UINT64_MAX);
  EXPECT_EQ(f.get_int("test.i64"), INT64_MIN);
  EXPECT_EQ(f.get_float("test.f64"), 0.1);
  EXPECT_EQ(f.get_array("test.arr_i32"), json({1, -2, 3}));
  EXPECT_EQ(f.get_array("test.arr_str"), json({"a", "", "\xc3\xbc"}));
  EXPECT_EQ(f.get_array("test.arr_f32"), json({0.5, -1.25}));
  EXPECT_EQ(f.get_array("test.arr_bool"), json({true, false, true}));
  EXPECT_EQ(f.get_array("test.arr_u8"), json({1, 2, 255}));
  EXPECT_EQ(f.get_array("test.arr_u64"), json({UINT64_MAX, 0u}));
  EXPECT_EQ(f.get_array("test.arr_f64"), json({0.1, -2.0}));
  EXPECT_EQ(f.get_array("test.nested"), json::parse("[[1, 2], [3]]"));
  EXPECT_EQ(f.get_array("test.nested3"), json::parse(R"([[["x"]], [["y", "z"]]])"));
}

TEST(GgufGolden, MetadataOfEveryValueType) {
  GgufFile f(test::test_data("gguf/types.gguf"));
  expect_gguf_py_metadata(f);
  EXPECT_EQ(error_of([&] { f.get_int("test.u64"); }).find("test.u64") != std::string::npos, true);
  const std::string msg = error_of([&] { f.get_string("test.u8"); });
  EXPECT_TRUE(contains(msg, "types.gguf") && contains(msg, "'test.u8'") && contains(msg, "a string")) << msg;
  EXPECT_TRUE(contains(error_of([&] { f.get_bool("absent.key"); }), "'absent.key'"));
  EXPECT_EQ(f.get_float("test.u16"), 60000.0);  // integers are accepted as floats
}

// Versions 2 and 3 differ only in the version field for little-endian files.
TEST(GgufGolden, ReadsTheSameFileAsVersion2) {
  std::string bytes = read_file(test::test_data("gguf/types.gguf"));
  bytes[4] = 2;
  GgufFile f(write_temp("v2.gguf", bytes));
  EXPECT_EQ(f.version(), 2u);
  expect_gguf_py_metadata(f);
  GgufFile v3(test::test_data("gguf/types.gguf"));
  EXPECT_EQ(f.dequantize("t.Q6_K"), v3.dequantize("t.Q6_K"));
}

TEST(GgufGolden, RefusesBigEndian) {
  const std::string msg = error_of([] { GgufFile f(test::test_data("gguf/big_endian.gguf")); });
  EXPECT_TRUE(contains(msg, "big_endian.gguf") && contains(msg, "big-endian")) << msg;
}

// ---- hand-built files ----------------------------------------------------------------------------

TEST(GgufHandBuilt, Version2WithEveryValueType) {
  GgufSpec s = small_spec();
  s.version = 2;
  const std::string strs = Bytes().str("x").str("").b;
  const std::string inner = Bytes().put<uint32_t>(I16).put<uint64_t>(2).put<int16_t>(-1).put<int16_t>(2).b;
  s.kvs = {{"u8", val<uint8_t>(U8, 255)},       {"i8", val<int8_t>(I8, -128)},
           {"u16", val<uint16_t>(U16, 65535)},  {"i16", val<int16_t>(I16, -32768)},
           {"u32", val<uint32_t>(U32, 1u << 31)}, {"i32", val<int32_t>(I32, -5)},
           {"f32", val<float>(F32, -1.5f)},     {"bool", val<uint8_t>(BOOL, 0)},
           {"string", val_str("s")},            {"u64", val<uint64_t>(U64, 1ull << 40)},
           {"i64", val<int64_t>(I64, -(1ll << 40))}, {"f64", val<double>(F64, 1e300)},
           {"strings", val_arr(STRING, 2, strs)}, {"empty", val_arr(U32, 0, "")},
           {"nested", val_arr(ARRAY, 2, inner + inner)}, {"general.alignment", val<uint32_t>(U32, 32)}};
  GgufFile f(write_temp("v2.gguf", s.build()));
  EXPECT_EQ(f.version(), 2u);
  std::vector<std::string> order;
  for (const auto& kv : s.kvs) order.push_back(kv.first);
  EXPECT_EQ(f.keys(), order);
  const json want = json::parse(R"({"u8": 255, "i8": -128, "u16": 65535, "i16": -32768, "u32": 2147483648,
    "i32": -5, "f32": -1.5, "bool": false, "string": "s", "u64": 1099511627776, "i64": -1099511627776,
    "f64": 1e300, "strings": ["x", ""], "empty": [], "nested": [[-1, 2], [-1, 2]], "general.alignment": 32})");
  EXPECT_EQ(f.metadata(), want);
  EXPECT_EQ(f.dequantize("a")[63], 0.25f * 43);
  std::vector<float> q(32);
  for (int i = 0; i < 32; ++i) q[i] = static_cast<float>(i - 16);
  EXPECT_EQ(f.dequantize("q"), q);
}

// general.alignment 1 lets an F16 tensor start at an odd byte; decoding must not assume alignment.
TEST(GgufHandBuilt, OddAlignmentAndUnalignedHalfData) {
  const std::string h = Bytes().put<uint16_t>(0x3C00).put<uint16_t>(0x0001).put<uint16_t>(0xFC00).b;
  bool odd = false;
  for (int64_t pad : {1, 2}) {  // an I8 tensor (known, unsupported) of 1 or 2 bytes goes first
    GgufSpec s;
    s.pad_to = 1;
    s.kvs = {{"general.alignment", val<uint32_t>(U32, 1)}, {"x", val<uint8_t>(U8, 1)}};
    s.tensors = {tensor_spec("pad", {pad}, 24, std::string(static_cast<size_t>(pad), '\x01')),
                 tensor_spec("h", {3}, 1, h)};
    GgufFile f(write_temp("a1.gguf", s.build()));
    EXPECT_EQ(f.alignment(), 1u);
    if (f.tensor("h").offset % 2 == 0) continue;
    odd = true;
    const std::vector<float> v = f.dequantize("h");
    EXPECT_EQ(v[0], 1.0f);
    EXPECT_EQ(v[1], std::ldexp(1.0f, -24));
    EXPECT_EQ(v[2], -INFINITY);
  }
  EXPECT_TRUE(odd);
}

TEST(GgufHandBuilt, ZeroSizedTensorAndNoTensors) {
  GgufSpec s = small_spec();
  s.tensors.push_back(tensor_spec("empty", {0, 4}, 0, ""));
  GgufFile f(write_temp("z.gguf", s.build()));
  EXPECT_EQ(f.tensor("empty").numel(), 0);
  EXPECT_TRUE(f.dequantize("empty").empty());
  GgufSpec kv_only = small_spec();
  kv_only.tensors.clear();
  std::string bytes = kv_only.build();
  bytes.resize(bytes.find("llama") + 5 + 8 + 10 + 4 + 4);  // ends after the last kv, unpadded
  GgufFile g(write_temp("kv_only.gguf", bytes));
  EXPECT_EQ(g.get_int("test.count"), 7);
  EXPECT_TRUE(g.tensors().empty());
}

// ---- defects: each one Error naming the file and the thing ------------------------------------

struct Defect {
  const char* what;
  std::string bytes;
  std::vector<std::string> says;  // substrings the message must contain (besides the file name)
};

std::vector<Defect> defects() {
  const GgufSpec ok = small_spec();
  const std::string good = ok.build();
  auto with = [&](auto edit) {
    GgufSpec s = ok;
    edit(s);
    return s.build();
  };
  auto value = [&](const std::string& v) { return with([&](GgufSpec& s) { s.kvs[1].second = v; }); };
  auto alignment = [&](const std::string& v) {
    return with([&](GgufSpec& s) { s.kvs.push_back({"general.alignment", v}); });
  };
  auto tensor = [&](size_t i, auto edit) { return with([&](GgufSpec& s) { edit(s.tensors[i]); }); };
  std::string magic = good, too_many_kvs = good;
  magic[3] = 'X';
  too_many_kvs.replace(16, 8, Bytes().put<uint64_t>(1ull << 60).b);
  // A key whose length runs past the end (padded so the header's counts still fit).
  const std::string long_key = "GGUF" + Bytes().put<uint32_t>(3).put<uint64_t>(0).put<uint64_t>(1).b +
                               Bytes().put<uint64_t>(1ull << 40).b + std::string(13, 0);
  // Cut inside the value of the first key (a long string, so the header's counts still fit).
  const std::string long_value = with([](GgufSpec& s) { s.kvs[0].second = val_str(std::string(500, 'x')); });
  std::string deep = Bytes().put<uint32_t>(U32).put<uint64_t>(1).put<uint32_t>(1).b;
  for (int i = 0; i < 40; ++i) deep = Bytes().put<uint32_t>(ARRAY).put<uint64_t>(1).b + deep;

  return {
      {"bad magic", magic, {"not a GGUF file", "magic"}},
      {"v1", with([](GgufSpec& s) { s.version = 1; }), {"version 1", "not supported"}},
      {"v4", with([](GgufSpec& s) { s.version = 4; }), {"version 4", "expected 2 or 3"}},
      {"big-endian v3", with([](GgufSpec& s) { s.version = 0x03000000; }), {"big-endian"}},
      {"truncated header", good.substr(0, 10), {"truncated", "the header"}},
      {"truncated counts", good.substr(0, 20), {"truncated", "the header"}},
      {"truncated in metadata", long_value.substr(0, 24 + 8 + 20 + 4 + 8 + 300),
       {"truncated", "metadata key 'general.architecture'"}},
      {"key length past EOF", long_key, {"truncated", "metadata entry 0 of 1"}},
      {"string length past EOF", value(Bytes().put<uint32_t>(STRING).put<uint64_t>(1ull << 40).b),
       {"truncated", "'test.count'", "1099511627776 bytes"}},
      {"huge array count", value(val_arr(U32, 1ull << 62, "\x01\x02\x03\x04")),
       {"'test.count'", "array of 4611686018427387904 u32"}},
      {"huge string array", value(val_arr(STRING, UINT64_MAX, "")), {"'test.count'", "array"}},
      {"arrays nested too deep", value(val_arr(ARRAY, 1, deep)), {"'test.count'", "nested more than 16"}},
      {"unknown value type", value(val<uint32_t>(13, 0)), {"'test.count'", "unknown value type 13"}},
      {"unknown array type", value(val_arr(77, 1, "x")), {"'test.count'", "unknown value type 77"}},
      {"duplicate key", with([](GgufSpec& s) { s.kvs.push_back(s.kvs[0]); }), {"'general.architecture'", "twice"}},
      {"too many kvs", too_many_kvs, {"header declares 1152921504606846976 metadata entries"}},
      {"tensor data past EOF", good.substr(0, good.size() - 5), {"truncated", "tensor 'q'", "Q8_0"}},
      {"unknown tensor type", tensor(1, [](TensorSpec& t) { t.type = 99; }), {"tensor 'q'", "type 99"}},
      {"misaligned offset", tensor(1, [](TensorSpec& t) { t.offset = 8; }), {"tensor 'q'", "offset 8", "alignment 32"}},
      {"n_dims 0", tensor(0, [](TensorSpec& t) { t.n_dims = 0; }), {"tensor 'a'", "0 dimensions"}},
      {"n_dims 5", tensor(0, [](TensorSpec& t) { t.ne = {32, 2, 1, 1, 1}; }), {"tensor 'a'", "5 dimensions"}},
      {"negative ne", tensor(0, [](TensorSpec& t) { t.ne = {32, -2}; }), {"tensor 'a'", "size -2"}},
      {"numel overflow", tensor(0, [](TensorSpec& t) { t.ne = {1ll << 32, 1ll << 32}; }),
       {"tensor 'a'", "more than 2^63"}},
      {"bytes overflow", tensor(0, [](TensorSpec& t) { t.ne = {1ll << 31, 1ll << 31}; }),
       {"tensor 'a'", "more than 2^64 bytes"}},
      {"partial block", tensor(1, [](TensorSpec& t) { t.ne = {16, 2}; }),
       {"tensor 'q'", "Q8_0", "rows of 16 values", "block size 32"}},
      {"alignment 48", alignment(val<uint32_t>(U32, 48)), {"general.alignment is 48", "power of two"}},
      {"alignment 0", alignment(val<uint32_t>(U32, 0)), {"general.alignment is 0"}},
      {"alignment string", alignment(val_str("32")), {"general.alignment is \"32\""}},
      {"duplicate tensor", tensor(1, [&](TensorSpec& t) { t = ok.tensors[0]; }), {"tensor 'a'", "twice"}},
      {"overlapping tensors", tensor(1, [](TensorSpec& t) { t.offset = 0; }), {"'a' and 'q' overlap"}},
  };
}

TEST(GgufDefects, EachIsOneClearError) {
  for (const Defect& d : defects()) {
    const std::string msg = open_error(d.bytes, "defect.gguf");
    EXPECT_TRUE(contains(msg, "defect.gguf")) << d.what << ": " << msg;
    for (const std::string& s : d.says) EXPECT_TRUE(contains(msg, s)) << d.what << ": '" << s << "' not in: " << msg;
  }
}

// Cut at any byte, the small file fails with an Error naming it (never a crash or a silent success).
TEST(GgufDefects, EveryTruncationIsAnError) {
  const std::string good = small_spec().build();
  for (size_t cut = 0; cut < good.size(); ++cut) {
    const std::string msg = open_error(good.substr(0, cut), "cut.gguf");
    EXPECT_TRUE(contains(msg, "cut.gguf")) << "cut at " << cut << ": " << msg;
  }
}

TEST(GgufDefects, NotAFile) {
  const std::string dir = test::make_temp_dir("gguf_dir");
  EXPECT_TRUE(contains(error_of([&] { GgufFile f(dir); }), "not a regular file"));
  EXPECT_TRUE(contains(error_of([&] { GgufFile f(dir + "/missing.gguf"); }), "cannot open GGUF file"));
  EXPECT_TRUE(contains(open_error("", "empty.gguf"), "empty.gguf' is empty"));
}

// ---- the real model --------------------------------------------------------------------------

TEST(GgufSmolLM2, Header) {
  GgufFile f(smollm2_path());
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.alignment(), 32u);
  EXPECT_EQ(f.data_offset(), 1785664u);
  ASSERT_EQ(f.tensors().size(), 272u);
  std::map<std::string, int> census;
  for (const GgufTensorInfo& t : f.tensors()) ++census[ggml_type_name(t.type)];
  EXPECT_EQ(census, (std::map<std::string, int>{{"Q4_1", 210}, {"F32", 61}, {"Q8_0", 1}}));
  const GgufTensorInfo& emb = f.tensor("token_embd.weight");
  EXPECT_EQ(emb.ne, (std::vector<int64_t>{576, 49152}));
  EXPECT_EQ(emb.shape(), (std::vector<int64_t>{49152, 576}));
  EXPECT_EQ(f.tensor("blk.0.ffn_down.weight").shape(), (std::vector<int64_t>{576, 1536}));
  EXPECT_EQ(f.find("output.weight"), nullptr);  // tied embeddings
}

TEST(GgufSmolLM2, Metadata) {
  GgufFile f(smollm2_path());
  EXPECT_EQ(f.get_string("general.architecture"), "llama");
  EXPECT_EQ(f.get_int("llama.block_count"), 30);
  EXPECT_EQ(f.get_int("llama.embedding_length"), 576);
  EXPECT_EQ(f.get_int("general.file_type"), 3);
  EXPECT_NEAR(f.get_float("llama.attention.layer_norm_rms_epsilon"), 1e-5, 1e-12);
  EXPECT_EQ(f.get_string("tokenizer.ggml.model"), "gpt2");
  const json& tokens = f.get_array("tokenizer.ggml.tokens");
  ASSERT_EQ(tokens.size(), 49152u);
  EXPECT_EQ(tokens[1], "<|im_start|>");
  EXPECT_EQ(f.get_array("tokenizer.ggml.merges").size(), 48900u);
  const json& types = f.get_array("tokenizer.ggml.token_type");
  ASSERT_EQ(types.size(), 49152u);
  int control = 0;
  for (const json& t : types) control += t.get<int>() == 3;
  EXPECT_EQ(control, 17);
  EXPECT_EQ(f.get_int("tokenizer.ggml.bos_token_id"), 1);
  EXPECT_FALSE(f.get_bool("tokenizer.ggml.add_bos_token"));
  // Every key in file order, scalars equal, arrays by length and first entries
  // (gguf_metadata.json was dumped from the file with gguf-py).
  const auto dump = nlohmann::ordered_json::parse(
      read_file(smollm2_dir() + "/gguf_metadata.json"));
  std::vector<std::string> keys;
  for (const auto& [key, want] : dump.at("metadata").items()) {
    keys.push_back(key);
    const json& got = f.metadata()[key];
    if (want.is_object()) {
      ASSERT_TRUE(got.is_array()) << key;
      EXPECT_EQ(got.size(), want.at("array_len").get<size_t>()) << key;
      for (size_t i = 0; i < want.at("first5").size(); ++i) EXPECT_EQ(got[i], json(want.at("first5")[i])) << key;
    } else if (want.is_number_float()) {
      EXPECT_EQ(got.get<double>(), want.get<double>()) << key;
    } else {
      EXPECT_EQ(got, json(want)) << key;
    }
  }
  EXPECT_EQ(f.keys(), keys);
}

// Every tensor against the goldens of ../shared/models/smollm2-135m-instruct/golden (bytes decoded
// by hand in numpy, equal to gguf.quants.dequantize): float64 sum and L2 norm, first and last 8.
TEST(GgufSmolLM2, EveryTensorMatchesTheGoldens) {
  GgufFile f(smollm2_path());
  const json g = json::parse(read_file(smollm2_dir() + "/golden/dequant_goldens.json"));
  const json& tensors = g.at("tensors");
  EXPECT_EQ(tensors.size(), 272u);
  for (const auto& [name, want] : tensors.items()) {
    const GgufTensorInfo& t = f.tensor(name);
    EXPECT_EQ(ggml_type_name(t.type), want.at("type").get<std::string>()) << name;
    EXPECT_EQ(t.shape(), want.at("numpy_shape").get<std::vector<int64_t>>()) << name;
    const std::vector<float> w = f.dequantize(name);
    double sum = 0, sq = 0;
    for (float v : w) sum += v, sq += static_cast<double>(v) * v;
    const double l2 = want.at("l2").get<double>();
    EXPECT_NEAR(sum, want.at("sum").get<double>(), kTolSum * (std::abs(want.at("sum").get<double>()) + l2)) << name;
    EXPECT_NEAR(std::sqrt(sq), l2, kTolSum * l2) << name;
    for (int i = 0; i < 8; ++i) {
      EXPECT_EQ(w[i], want.at("first8")[i].get<double>()) << name << " value " << i;
      EXPECT_EQ(w[w.size() - 8 + i], want.at("last8")[i].get<double>()) << name << " value " << w.size() - 8 + i;
    }
  }
}

TEST(GgufSmolLM2, FirstBlockBytesAndValues) {
  GgufFile f(smollm2_path());
  const json g = json::parse(read_file(smollm2_dir() + "/golden/dequant_goldens.json"));
  for (const auto& [name, want] : g.at("block_examples").items()) {
    const GgufTensorInfo& t = f.tensor(name);
    const std::string hex = want.at("block0_bytes_hex").get<std::string>();
    ASSERT_EQ(static_cast<int64_t>(hex.size()), 2 * ggml_block_bytes(t.type)) << name;
    for (size_t i = 0; i < hex.size() / 2; ++i)
      EXPECT_EQ(f.raw(t)[i], std::stoul(hex.substr(2 * i, 2), nullptr, 16)) << name << " byte " << i;
    std::vector<float> v(32);
    dequantize_ggml(t.type, f.raw(t), v.data(), 32);
    for (int i = 0; i < 32; ++i) EXPECT_EQ(v[i], want.at("block0_values")[i].get<double>()) << name << " " << i;
  }
}

// The row-parallel GgufFile::dequantize equals one serial dequantize_ggml call over the tensor.
TEST(GgufSmolLM2, ParallelEqualsSerial) {
  GgufFile f(smollm2_path());
  for (const char* name : {"token_embd.weight", "blk.7.ffn_up.weight"}) {
    const GgufTensorInfo& t = f.tensor(name);
    std::vector<float> serial(static_cast<size_t>(t.numel()));
    dequantize_ggml(t.type, f.raw(t), serial.data(), t.numel());
    EXPECT_EQ(f.dequantize(name), serial) << name;
  }
}
