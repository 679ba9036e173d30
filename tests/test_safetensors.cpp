#include <gtest/gtest.h>

#include <cstring>
#include <fstream>

#include "saelab/atomic_file.hpp"
#include "saelab/npy.hpp"
#include "saelab/safetensors.hpp"
#include "test_util.hpp"

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

template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
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
