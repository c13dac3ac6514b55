#include "host/plugins/installer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>

#include "host/common/sha256.h"
#include "host/common/unique_fd.h"
#include "host/plugins/archive_extract.h"

namespace novacron {
namespace fs = std::filesystem;

namespace {

// A private, empty folder under `parent` (0700), removed when the guard goes.
class StagingDir {
 public:
  static Expected<StagingDir> create(const fs::path& parent, const std::string& prefix) {
    std::error_code ec;
    fs::create_directories(parent, ec);
    if (ec) return make_error("io", parent.string() + ": " + ec.message());
    std::string templ = (parent / (prefix + "XXXXXX")).string();
    if (::mkdtemp(templ.data()) == nullptr) return make_error("io", templ + ": " + std::strerror(errno));
    return StagingDir(templ);
  }
  StagingDir(StagingDir&& o) noexcept : path_(std::exchange(o.path_, fs::path())) {}
  StagingDir(const StagingDir&) = delete;
  ~StagingDir() {
    if (!path_.empty()) {
      std::error_code ec;
      fs::remove_all(path_, ec);
    }
  }
  const fs::path& path() const { return path_; }
  void release() { path_.clear(); }

 private:
  explicit StagingDir(fs::path p) : path_(std::move(p)) {}
  fs::path path_;
};

// Copies a regular file with a fixed mode and fsyncs it.
Expected<void> copy_file_synced(const fs::path& from, const fs::path& to, mode_t mode) {
  UniqueFd in(::open(from.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (!in.valid()) return make_error("io", from.string() + ": " + std::strerror(errno));
  UniqueFd out(::open(to.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode));
  if (!out.valid()) return make_error("io", to.string() + ": " + std::strerror(errno));
  ::fchmod(out.get(), mode);
  char buf[1 << 16];
  for (;;) {
    ssize_t n = ::read(in.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return make_error("io", from.string() + ": " + std::strerror(errno));
    if (n == 0) break;
    for (ssize_t off = 0; off < n;) {
      ssize_t w = ::write(out.get(), buf + off, static_cast<size_t>(n - off));
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) return make_error("io", to.string() + ": " + std::strerror(errno));
      off += w;
    }
  }
  if (::fsync(out.get()) != 0) return make_error("io", to.string() + ": " + std::strerror(errno));
  return {};
}

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

void fsync_dir(const fs::path& dir) {
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.valid()) ::fsync(fd.get());
}

// The folder of the package inside an extracted archive: its root, or its only subfolder.
fs::path package_root(const fs::path& extracted) {
  std::error_code ec;
  if (fs::exists(extracted / "plugin.json", ec)) return extracted;
  std::vector<fs::path> dirs;
  for (fs::directory_iterator it(extracted, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->is_directory(ec)) dirs.push_back(it->path());
  }
  return dirs.size() == 1 ? dirs.front() : extracted;
}

}  // namespace

bool looks_like_archive(const fs::path& p) {
  std::string s = p.filename().string();
  return s.ends_with(".tar.zst") || s.ends_with(".tzst") || s.ends_with(".tar.gz") || s.ends_with(".tgz") ||
         s.ends_with(".tar");
}

namespace {

// Companion files (the lxc driver's helper executable, data files): every other regular
// file of the package's top folder, executables kept executable. Symlinks, folders and
// devices are skipped. The host pins only the library and its manifest; a plugin that runs
// or trusts a companion file verifies it itself (the lxc driver checks its helper against
// a digest compiled into the library).
Expected<void> copy_companion_files(const fs::path& folder, const fs::path& to, const std::string& library) {
  constexpr size_t kMaxFiles = 64;
  size_t copied = 0;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(folder, ec)) {
    const std::string name = e.path().filename().string();
    if (name == library || name == "plugin.json" || name == library + ".sig") continue;
    auto st = fs::symlink_status(e.path(), ec);
    if (ec || !fs::is_regular_file(st)) continue;
    if (++copied > kMaxFiles) {
      return make_error("invalid_package", folder.string() + ": more than " + std::to_string(kMaxFiles) + " files");
    }
    bool executable = (st.permissions() & fs::perms::owner_exec) != fs::perms::none;
    if (auto r = copy_file_synced(e.path(), to / name, executable ? 0755 : 0644); !r) return r;
  }
  if (ec) return make_error("io", folder.string() + ": " + ec.message());
  return {};
}

}  // namespace

Expected<InstallResult> install_plugin(const fs::path& source, const InstallOptions& options, PluginCatalog& catalog) {
  fs::path folder = source;
  std::optional<StagingDir> extracted;
  if (looks_like_archive(source)) {
    auto staging = StagingDir::create(options.staging_dir, "extract-");
    if (!staging) return tl::unexpected(staging.error());
    if (auto r = extract_plugin_archive(source, staging->path()); !r) return tl::unexpected(r.error());
    folder = package_root(staging->path());
    extracted.emplace(std::move(*staging));
  } else if (std::error_code ec; !fs::is_directory(fs::symlink_status(source, ec))) {
    return make_error("invalid_package", source.string() + " is neither a plugin folder nor a .tar.zst archive of one");
  }

  PackageCheckOptions checks = options.checks;
  checks.require_manifest = true;
  checks.check_owner_and_mode = false;  // the installed copy gets its own owner and mode
  PackageReport report = check_plugin_package(folder, checks);
  if (const CheckVerdict* f = report.first_failure(); f != nullptr) {
    return make_error(f->code, source.string() + ": " + f->name + " check failed: " + f->detail);
  }
  const PluginManifest& m = *report.manifest;
  if (options.precheck) {
    if (auto r = options.precheck(m); !r) return tl::unexpected(r.error());
  }

  fs::path final_dir = options.plugins_dir / m.id / m.version;
  if (auto pinned = catalog.find(m.id, m.version); !pinned) {
    return tl::unexpected(pinned.error());
  } else if (*pinned) {
    return make_error("already_installed", m.id + " " + m.version + " is already installed in " + (*pinned)->dir +
                                               "; a version is never replaced in place: build a new version");
  }
  std::error_code ec;
  if (fs::exists(fs::symlink_status(final_dir, ec))) {
    return make_error("already_installed", final_dir.string() + " already exists; remove it or build a new version");
  }

  auto staging = StagingDir::create(options.staging_dir, "install-");
  if (!staging) return tl::unexpected(staging.error());
  ::chmod(staging->path().c_str(), 0755);
  if (auto r = copy_file_synced(report.library, staging->path() / m.library, 0755); !r)
    return tl::unexpected(r.error());
  if (auto r = copy_file_synced(folder / "plugin.json", staging->path() / "plugin.json", 0644); !r) {
    return tl::unexpected(r.error());
  }
  fs::path sig = report.library.string() + ".sig";
  if (fs::is_regular_file(fs::symlink_status(sig, ec))) {
    if (auto r = copy_file_synced(sig, staging->path() / (m.library + ".sig"), 0644); !r)
      return tl::unexpected(r.error());
  }
  if (auto r = copy_companion_files(folder, staging->path(), m.library); !r) return tl::unexpected(r.error());
  // Hash what was written, not what was read: the pins are of the installed files.
  if (to_hex(sha256_bytes(read_all((staging->path() / "plugin.json").string()))) != report.manifest_sha256) {
    return make_error("io", "plugin.json changed while it was being installed");
  }
  auto installed_hash = sha256_file((staging->path() / m.library).string());
  if (!installed_hash) return tl::unexpected(installed_hash.error());
  if (to_hex(*installed_hash) != report.sha256) {
    return make_error("io", "the copied library differs from its source (disk error?)");
  }

  fs::create_directories(final_dir.parent_path(), ec);
  if (ec) return make_error("io", final_dir.parent_path().string() + ": " + ec.message());
  ::chmod(options.plugins_dir.c_str(), 0755);
  ::chmod(final_dir.parent_path().c_str(), 0755);
  if (::rename(staging->path().c_str(), final_dir.c_str()) != 0) {
    return make_error("io", "cannot move the plugin into " + final_dir.string() + ": " + std::strerror(errno));
  }
  staging->release();
  fsync_dir(final_dir.parent_path());

  CatalogEntry entry{
      m.id, m.version, final_dir.string(), m.library, report.sha256, report.manifest_sha256, m.kind, "installed",
      "",   0};
  if (auto r = catalog.pin(entry); !r) {
    fs::remove_all(final_dir, ec);
    return tl::unexpected(r.error());
  }
  return InstallResult{std::move(entry), std::move(report)};
}

}  // namespace novacron
