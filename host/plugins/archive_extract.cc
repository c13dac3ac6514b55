#include "host/plugins/archive_extract.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "host/common/unique_fd.h"

namespace novacron {
namespace fs = std::filesystem;

namespace {

struct ArchiveDeleter {
  void operator()(archive* a) const { archive_read_free(a); }
};

// Validates an entry name: relative, no "..", no empty or "." components after "./".
Expected<fs::path> safe_relative_path(const char* raw) {
  if (raw == nullptr || *raw == '\0') return make_error("archive_unsafe", "entry without a name");
  std::string name(raw);
  if (name.front() == '/') return make_error("archive_unsafe", "entry \"" + name + "\" has an absolute path");
  fs::path clean;
  for (const auto& part : fs::path(name)) {
    if (part == "..") return make_error("archive_unsafe", "entry \"" + name + "\" contains \"..\"");
    if (part.empty() || part == ".") continue;
    clean /= part;
  }
  return clean;
}

}  // namespace

Expected<void> extract_plugin_archive(const fs::path& archive_path, const fs::path& dest, const ExtractLimits& limits) {
  std::unique_ptr<archive, ArchiveDeleter> a(archive_read_new());
  archive_read_support_filter_zstd(a.get());
  archive_read_support_filter_gzip(a.get());
  archive_read_support_filter_none(a.get());
  archive_read_support_format_tar(a.get());
  if (archive_read_open_filename(a.get(), archive_path.c_str(), size_t{64} << 10) != ARCHIVE_OK) {
    return make_error("archive_invalid", archive_path.string() + ": " + archive_error_string(a.get()));
  }
  std::uint64_t total = 0, entries = 0;
  archive_entry* entry = nullptr;
  for (;;) {
    int rc = archive_read_next_header(a.get(), &entry);
    if (rc == ARCHIVE_EOF) break;
    if (rc != ARCHIVE_OK) {
      return make_error("archive_invalid", archive_path.string() + ": " + archive_error_string(a.get()));
    }
    if (++entries > limits.max_entries) {
      return make_error("archive_too_large",
                        archive_path.string() + ": more than " + std::to_string(limits.max_entries) + " entries");
    }
    const char* name = archive_entry_pathname(entry);
    auto rel = safe_relative_path(name);
    if (!rel) return make_error(rel.error().code, archive_path.string() + ": " + rel.error().message);
    if (archive_entry_hardlink(entry) != nullptr) {
      return make_error("archive_unsafe", archive_path.string() + ": entry \"" + name + "\" is a hard link");
    }
    mode_t type = archive_entry_filetype(entry);
    if (type == AE_IFLNK) {
      return make_error("archive_unsafe", archive_path.string() + ": entry \"" + name +
                                              "\" is a symbolic link (plugin packages hold only files and folders)");
    }
    if (rel->empty()) continue;  // "./"
    fs::path target = dest / *rel;
    if (type == AE_IFDIR) {
      std::error_code ec;
      fs::create_directories(target, ec);
      if (ec) return make_error("io", target.string() + ": " + ec.message());
      ::chmod(target.c_str(), 0755);
      continue;
    }
    if (type != AE_IFREG) {
      return make_error("archive_unsafe",
                        archive_path.string() + ": entry \"" + name + "\" is not a regular file or folder");
    }
    std::int64_t size = archive_entry_size(entry);
    if (size < 0 || total + static_cast<std::uint64_t>(size) > limits.max_total_bytes) {
      return make_error("archive_too_large", archive_path.string() + ": more than " +
                                                 std::to_string(limits.max_total_bytes) + " bytes uncompressed");
    }
    total += static_cast<std::uint64_t>(size);
    std::error_code ec;
    fs::create_directories(target.parent_path(), ec);
    if (ec) return make_error("io", target.parent_path().string() + ": " + ec.message());
    // O_EXCL + O_NOFOLLOW: a name that appears twice, or anything pre-existing, is refused.
    mode_t mode = (archive_entry_perm(entry) & 0111) != 0 ? 0755 : 0644;
    UniqueFd out(::open(target.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode));
    if (!out.valid()) {
      return make_error(errno == EEXIST ? "archive_unsafe" : "io",
                        target.string() + ": " + std::strerror(errno) + " (entry \"" + name + "\")");
    }
    ::fchmod(out.get(), mode);  // independent of the umask
    const void* buf = nullptr;
    size_t len = 0;
    la_int64_t offset = 0;
    while ((rc = archive_read_data_block(a.get(), &buf, &len, &offset)) == ARCHIVE_OK) {
      if (static_cast<std::uint64_t>(offset) + len > static_cast<std::uint64_t>(size)) {
        return make_error("archive_invalid",
                          archive_path.string() + ": entry \"" + name + "\" is longer than its header says");
      }
      if (::pwrite(out.get(), buf, len, offset) != static_cast<ssize_t>(len)) {
        return make_error("io", target.string() + ": " + std::strerror(errno));
      }
    }
    if (rc != ARCHIVE_EOF) {
      return make_error("archive_invalid", archive_path.string() + ": " + archive_error_string(a.get()));
    }
    if (::ftruncate(out.get(), size) != 0) return make_error("io", target.string() + ": " + std::strerror(errno));
  }
  return {};
}

}  // namespace novacron
