// write_dashboard_site: the whole site is written into `out_dir.tmp`, flushed, and renamed into
// place (an earlier site moves aside to `out_dir.tmp.old` for the instant between the renames, as
// checkpoints do), so a failure never leaves a half site or loses the previous one.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "dashboard_site.hpp"
#include "saelab/atomic_file.hpp"
#include "saelab/error.hpp"

namespace saelab {

namespace fs = std::filesystem;

namespace {

// Plain writes into the temporary directory; one syncfs before the rename makes them durable
// (an fsync per file would cost more than the writing for a 16k-latent SAE's hundreds of files).
class SiteWriter {
 public:
  explicit SiteWriter(std::string root) : root_(std::move(root)) {}
  void write(const std::string& rel, const std::string& contents) {
    const fs::path p = fs::path(root_) / rel;
    std::error_code ec;
    fs::create_directories(p.parent_path(), ec);
    if (ec) fail("cannot create '{}': {}", p.parent_path().string(), ec.message());
    std::FILE* f = std::fopen(p.c_str(), "wb");
    if (!f) fail("cannot create '{}': {}", p.string(), std::strerror(errno));
    const bool ok = std::fwrite(contents.data(), 1, contents.size(), f) == contents.size();
    const int err = errno;
    if (std::fclose(f) != 0 || !ok) fail("writing '{}' failed: {}", p.string(), std::strerror(ok ? errno : err));
  }
  void sync() const {
    const int fd = ::open(root_.c_str(), O_RDONLY | O_DIRECTORY);
    if (fd < 0) fail("cannot open '{}': {}", root_, std::strerror(errno));
    const int rc = ::syncfs(fd);
    const int err = errno;
    ::close(fd);
    if (rc != 0) fail("flushing '{}' failed: {}", root_, std::strerror(err));
  }

 private:
  std::string root_;
};

// An existing out_dir is replaced only when it is a dashboard (or empty): a mistyped --out must
// not delete a run directory.
void check_replaceable(const std::string& out) {
  std::error_code ec;
  const fs::file_status st = fs::symlink_status(out, ec);
  if (!fs::exists(st)) return;
  if (!fs::is_directory(st)) fail("cannot write the dashboard to '{}': it exists and is not a directory", out);
  if (fs::is_empty(out, ec)) return;
  if (!file_exists(out + "/data/meta.js") || !file_exists(out + "/index.html"))
    fail("cannot write the dashboard to '{}': it exists and is not a saelab dashboard (no index.html and "
         "data/meta.js); refusing to replace it",
         out);
}

}  // namespace

void write_dashboard_site(const DashboardData& data, const std::string& out_dir) {
  using namespace dashboard;
  check_dashboard_data(data);
  std::string out = fs::path(out_dir).lexically_normal().string();
  while (out.size() > 1 && out.back() == '/') out.pop_back();
  if (out.empty() || out == "." || out == "/") fail("write_dashboard_site: '{}' is not a usable output directory", out_dir);
  check_replaceable(out);

  const std::string tmp = out + ".tmp", old = out + ".tmp.old";
  std::error_code ec;
  fs::remove_all(tmp, ec);
  fs::create_directories(tmp, ec);
  if (ec) fail("cannot write the dashboard to '{}': creating '{}' failed: {}", out, tmp, ec.message());
  try {
    SiteWriter w(tmp);
    w.write("index.html", index_html());
    w.write("data/meta.js", data_script("meta", site_meta(data)));
    w.write("data/vocab.js", data_script("vocab", vocab_json(data)));
    for (size_t s = 0; s < data.saes.size(); ++s) {
      const int si = static_cast<int>(s);
      const std::string key = "sae" + std::to_string(s);
      w.write("data/" + key + "/latents.js", data_script(key + "/latents", latent_table(data, si)));
      w.write("data/" + key + "/search.js", data_script(key + "/search", search_windows(data, si)));
      for (int c = 0; c < n_chunks(data.saes[s]); ++c) {
        const std::string ck = key + "/chunk_" + std::to_string(c);
        w.write("data/" + ck + ".js", data_script(ck, latent_chunk(data, si, c)));
      }
    }
    if (data.cfg.export_batches)
      for (const auto& [rel, contents] : export_files(data)) w.write(rel, contents);
    w.sync();
    // Some complete site exists under out or out.tmp(.old) at every instant.
    fs::remove_all(old, ec);
    if (fs::exists(out)) {
      fs::rename(out, old, ec);
      if (ec) fail("cannot replace '{}': moving it to '{}' failed: {}", out, old, ec.message());
    }
    fs::rename(tmp, out, ec);
    if (ec) fail("cannot move '{}' to '{}': {}", tmp, out, ec.message());
    fs::remove_all(old, ec);
  } catch (...) {
    fs::remove_all(tmp, ec);
    if (!fs::exists(out) && fs::exists(old)) fs::rename(old, out, ec);  // put the earlier site back
    throw;
  }
}

}  // namespace saelab
