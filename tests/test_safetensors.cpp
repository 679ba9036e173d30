#include <gtest/gtest.h>

#include <cstring>
#include <fstream>

#include "saelab/atomic_file.hpp"
#include "saelab/npy.hpp"
#include "saelab/safetensors.hpp"
#include "test_util.hpp"

using saelab::test::error_of;

using namespace saelab;

namespace {

std::string write_sample(const std::string& dir) {
  const std::vector<float> a{1.f, -2.f, 3.5f, 0.25f, 5.f, 6.f};
  std::vector<uint16_t> h(a.size()), b(a.size());
  convert_from_f32(h.data(), DType::F16, a.data(), a.size());
  convert_from_f32(b.data(), DType::BF16, a.data(), a.size());
  const std::vector<int32_t> ids{7, -1, 2048};
  const std::string path = dir + "/sample.safetensors";
  write_safetensors(path,
                    {{"a", DType::F32, {2, 3}, a.data()},
                     {"h", DType::F16, {3, 2}, h.data()},
                     {"b", DType::BF16, {6}, b.data()},
                     {"ids", DType::I32, {3}, ids.data()}},
                    {{"format", "pt"}});
  return path;
}

// Rewrites the file's header with `edit` applied to the JSON text (keeps the data section).
void patch_header(const std::string& path, const std::string& from, const std::string& to) {
  std::string buf = read_file(path);
  uint64_t len = 0;
  std::memcpy(&len, buf.data(), 8);
  std::string header = buf.substr(8, len), data = buf.substr(8 + len);
  const size_t p = header.find(from);
  ASSERT_NE(p, std::string::npos) << header;
  header.replace(p, from.size(), to);
  len = header.size();
  std::string out(8, '\0');
  std::memcpy(out.data(), &len, 8);
  std::ofstream(path, std::ios::binary) << out << header << data;
}


}  // namespace

TEST(Safetensors, RoundTripsEveryDtype) {
  const std::string path = write_sample(test::make_temp_dir("st"));
  SafetensorsFile f(path);
  EXPECT_EQ(f.metadata().at("format"), "pt");
  const std::vector<float> want{1.f, -2.f, 3.5f, 0.25f, 5.f, 6.f};
  EXPECT_EQ(f.read_f32("a", {2, 3}), want);
  EXPECT_EQ(f.read_f32("h"), want);  // exactly representable in f16 and bf16
  EXPECT_EQ(f.read_f32("b"), want);
  EXPECT_EQ(f.read_i32("ids"), (std::vector<int32_t>{7, -1, 2048}));
  EXPECT_EQ(f.entry("h").shape, (std::vector<int64_t>{3, 2}));
}

TEST(Safetensors, ReadsTheRealModelFile) {
  SafetensorsFile f(test::shared_root() + "/models/tinystories-656k/model.safetensors");
  EXPECT_EQ(f.entry("model.norm.weight").shape, std::vector<int64_t>{128});
  EXPECT_EQ(f.read_f32("lm_head.weight", {2048, 128}).size(), 2048u * 128u);
}

TEST(Safetensors, RejectsTruncatedFile) {
  const std::string dir = test::make_temp_dir("st");
  const std::string path = write_sample(dir);
  std::string buf = read_file(path);
  for (size_t cut : {size_t{0}, size_t{5}, size_t{20}, buf.size() - 1}) {
    const std::string p = dir + "/cut.safetensors";
    std::ofstream(p, std::ios::binary) << buf.substr(0, cut);
    const std::string msg = error_of([&] { SafetensorsFile f(p); });
    EXPECT_NE(msg.find("cut.safetensors"), std::string::npos) << "cut at " << cut << ": " << msg;
    EXPECT_TRUE(msg.find("truncated") != std::string::npos || msg.find("not a safetensors") != std::string::npos ||
                msg.find("corrupt") != std::string::npos)
        << msg;
  }
}

TEST(Safetensors, RejectsCorruptHeaders) {
  const std::string dir = test::make_temp_dir("st");
  struct Case { std::string from, to, expect; };
  for (const Case& c : {Case{"\"F32\"", "\"Q7\"", "unknown dtype"},
                        Case{"[2,3]", "[2,4]", "needs"},
                        Case{"\"data_offsets\":[0,24]", "\"data_offsets\":[0,9999]", "truncated"},
                        Case{"\"data_offsets\":[24,36]", "\"data_offsets\":[20,32]", "overlap"},
                        Case{"{\"__metadata__\"", "[\"__metadata__\"", "JSON"}}) {
    const std::string path = write_sample(dir);
    patch_header(path, c.from, c.to);
    const std::string msg = error_of([&] { SafetensorsFile f(path); });
    EXPECT_NE(msg.find(c.expect), std::string::npos) << c.from << " -> " << c.to << ": " << msg;
  }
}

TEST(Safetensors, MissingTensorAndWrongShapeAreClearErrors) {
  SafetensorsFile f(write_sample(test::make_temp_dir("st")));
  EXPECT_NE(error_of([&] { f.read_f32("nope"); }).find("no tensor named 'nope'"), std::string::npos);
  EXPECT_NE(error_of([&] { f.read_f32("a", {3, 2}); }).find("expected [3, 2]"), std::string::npos);
  EXPECT_NE(error_of([&] { f.read_i32("a"); }).find("expected I32"), std::string::npos);
}

TEST(Npy, RoundTripAndTruncation) {
  const std::string dir = test::make_temp_dir("npy");
  const std::vector<float> a{1, 2, 3, 4, 5, 6};
  write_npy(dir + "/a.npy", DType::F32, {2, 3}, a.data());
  NpyArray r = read_npy(dir + "/a.npy");
  EXPECT_EQ(r.shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(r.dtype, DType::F32);
  EXPECT_EQ(std::memcmp(r.bytes.data(), a.data(), 24), 0);
  const std::string buf = read_file(dir + "/a.npy");
  EXPECT_EQ(buf.size() % 64, 24u % 64);  // header padded to 64 bytes
  std::ofstream(dir + "/b.npy", std::ios::binary) << buf.substr(0, buf.size() - 4);
  EXPECT_THROW(read_npy(dir + "/b.npy"), Error);
}

TEST(AtomicFile, UncommittedWriteLeavesTheOldFile) {
  const std::string dir = test::make_temp_dir("atomic");
  write_file_atomic(dir + "/x", "old");
  {
    AtomicFile f(dir + "/x");
    f.write("new, but never committed");
  }
  EXPECT_EQ(read_file(dir + "/x"), "old");
}

// FuzzRegression: inputs the fuzz targets found; BadInput: defects found while writing them (fuzz/,
// docs/reliability.md "Bad inputs found by fuzzing"). Each must be a clean result or a saelab::Error
// naming the file.
namespace {
std::string write_raw(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
  return path;
}
size_t mapping_count() {
  std::ifstream maps("/proc/self/maps");
  size_t n = 0;
  for (std::string line; std::getline(maps, line);) ++n;
  return n;
}
}  // namespace

TEST(FuzzRegression, RejectedSafetensorsFilesDoNotLeakTheirMapping) {
  // A header that is not JSON: the constructor throws after mapping the file. Each rejected file
  // used to keep its mapping until the process ran out of them.
  const std::string path = write_raw(test::make_temp_dir("fuzz") + "/bad.safetensors",
                                     std::string("\x02\x00\x00\x00\x00\x00\x00\x00{x", 10));
  const size_t before = mapping_count();
  for (int i = 0; i < 500; ++i) EXPECT_NE(error_of([&] { SafetensorsFile f(path); }).find("bad.safetensors"), std::string::npos);
  EXPECT_LT(mapping_count(), before + 50);
}

TEST(BadInput, SafetensorsShapeWhoseByteCountOverflows) {
  // [2^62, 4] F32 wraps to 0 bytes in 64 bits, matching an empty span.
  const std::string dir = test::make_temp_dir("fuzz");
  std::string h = R"({"a":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,0]}})";
  std::string buf(8, '\0');
  buf[0] = static_cast<char>(h.size());
  const std::string msg = error_of([&] { SafetensorsFile f(write_raw(dir + "/big.safetensors", buf + h)); });
  EXPECT_NE(msg.find("big.safetensors"), std::string::npos) << msg;
  EXPECT_NE(msg.find("more than 2^64"), std::string::npos) << msg;
}

TEST(FuzzRegression, EmptyTensorsAndArraysRead) {
  // Zero-element tensors passed a null pointer to memcpy (undefined behaviour).
  const std::string dir = test::make_temp_dir("fuzz");
  write_safetensors(dir + "/e.safetensors", {{"f", DType::F32, {0, 4}, nullptr}, {"i", DType::I32, {0}, nullptr}});
  SafetensorsFile f(dir + "/e.safetensors");
  EXPECT_TRUE(f.read_f32("f", {0, 4}).empty());
  EXPECT_TRUE(f.read_i32("i").empty());
  write_npy(dir + "/e.npy", DType::F32, {0, 3}, nullptr);
  const NpyArray a = read_npy(dir + "/e.npy");
  EXPECT_EQ(a.shape, (std::vector<int64_t>{0, 3}));
  std::vector<float> out;
  convert_to_f32(out.data(), a.bytes.data(), a.dtype, 0);
}

TEST(FuzzRegression, NpyWithAMegabyteHeaderIsAnErrorNotAStackOverflow) {
  // std::regex recursed once per header character: a 1 MB header overflowed the stack (SIGSEGV).
  const std::string dir = test::make_temp_dir("fuzz");
  const std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + std::string(1 << 20, ' ') + "), }\n";
  std::string buf("\x93NUMPY\x02\x00", 8);
  for (int i = 0; i < 4; ++i) buf.push_back(static_cast<char>((header.size() >> (8 * i)) & 0xff));
  const std::string msg = error_of([&] { read_npy(write_raw(dir + "/long.npy", buf + header)); });
  EXPECT_NE(msg.find("long.npy"), std::string::npos) << msg.substr(0, 200);
  EXPECT_NE(msg.find("needs 4 data bytes, file has 0"), std::string::npos) << msg.substr(0, 200);
}

TEST(BadInput, NpyShapesThatOverflowOrAreNotIntegers) {
  const std::string dir = test::make_temp_dir("fuzz");
  auto npy = [&](const std::string& shape) {
    const std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + shape + "), }\n";
    std::string buf("\x93NUMPY\x01\x00", 8);
    buf.push_back(static_cast<char>(header.size() & 0xff));
    buf.push_back(static_cast<char>(header.size() >> 8));
    return write_raw(dir + "/s.npy", buf + header + std::string(16, '\0'));
  };
  EXPECT_EQ(read_npy(npy("2, 2")).shape, (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(read_npy(npy("4L,")).shape, (std::vector<int64_t>{4}));  // Python 2's long literal
  for (const char* bad : {"4294967296, 4294967296, 4", "99999999999999999999", "2, -2", "2.5"})
    EXPECT_NE(error_of([&] { read_npy(npy(bad)); }).find("s.npy"), std::string::npos) << bad;
}
