#include "host/plugins/boot_guard.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <sstream>

namespace novacron {

Expected<BootGuard> BootGuard::open(const std::filesystem::path& file) {
  UniqueFd fd(::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (!fd.valid()) return make_error("io", file.string() + ": " + std::strerror(errno));
  return BootGuard(std::move(fd), file);
}

Expected<void> BootGuard::enter(const std::string& id, const std::string& version, const std::string& phase) {
  // One fixed-size record written with a single pwrite: a reader sees the previous record or
  // this one (a torn record only after a machine crash; it reads as unknown and is cleared).
  // The record is padded to a fixed size so that an overwrite needs no truncate.
  std::string line = "v1 " + id + " " + version + " " + phase + " " + std::to_string(::getpid()) + " " +
                     std::to_string(std::time(nullptr));
  line.resize(std::max<size_t>(line.size() + 1, kRecordSize), ' ');
  line.back() = '\n';
  if (::pwrite(fd_.get(), line.data(), line.size(), 0) != static_cast<ssize_t>(line.size())) {
    return make_error("io", path_.string() + ": " + std::strerror(errno));
  }
  return {};
}

Expected<void> BootGuard::clear() {
  // "-" marks an empty guard; overwriting keeps the file's size (cheaper than truncating).
  std::string blank(kRecordSize, ' ');
  blank.front() = '-';
  blank.back() = '\n';
  if (::pwrite(fd_.get(), blank.data(), blank.size(), 0) != static_cast<ssize_t>(blank.size())) {
    return make_error("io", path_.string() + ": " + std::strerror(errno));
  }
  return {};
}

Expected<std::optional<BootGuardRecord>> BootGuard::read() const {
  char buf[512];
  ssize_t n = ::pread(fd_.get(), buf, sizeof buf - 1, 0);
  if (n < 0) return make_error("io", path_.string() + ": " + std::strerror(errno));
  if (n == 0 || buf[0] == '-') return std::optional<BootGuardRecord>();
  std::istringstream in(std::string(buf, static_cast<size_t>(n)));
  std::string tag;
  BootGuardRecord r;
  if (!(in >> tag >> r.plugin_id >> r.version >> r.phase >> r.pid >> r.started_at) || tag != "v1") {
    r = BootGuardRecord{};
  }
  return std::optional<BootGuardRecord>(r);
}

}  // namespace novacron
