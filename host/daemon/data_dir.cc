#include "host/daemon/data_dir.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace novacron {
namespace fs = std::filesystem;

namespace {

Expected<void> make_dir(const fs::path& p, mode_t mode) {
  if (::mkdir(p.c_str(), mode) != 0 && errno != EEXIST) {
    return make_error("data_dir", p.string() + ": " + std::strerror(errno));
  }
  struct stat st {};
  if (::lstat(p.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return make_error("data_dir", p.string() + " is not a folder");
  }
  return {};
}

}  // namespace

Expected<DataDirLock> DataDirLock::acquire(const fs::path& data_dir) {
  std::error_code ec;
  fs::create_directories(data_dir.parent_path(), ec);
  if (auto r = make_dir(data_dir, 0700); !r) return tl::unexpected(r.error());
  if (auto r = make_dir(data_dir / "plugins", 0755); !r) return tl::unexpected(r.error());
  if (auto r = make_dir(data_dir / "tmp", 0700); !r) return tl::unexpected(r.error());

  fs::path lock_path = data_dir / "novacrond.lock";
  UniqueFd fd(::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (!fd.valid()) return make_error("data_dir", lock_path.string() + ": " + std::strerror(errno));
  if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    char buf[32] = {};
    ssize_t n = ::pread(fd.get(), buf, sizeof buf - 1, 0);
    std::string holder = n > 0 ? std::string(buf, static_cast<size_t>(n)) : "?";
    while (!holder.empty() && (holder.back() == '\n' || holder.back() == ' ')) holder.pop_back();
    return make_error("data_dir_locked", data_dir.string() +
                                             " is in use by another novacrond or novacron "
                                             "process (pid " +
                                             holder + ")");
  }
  std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd.get(), 0) != 0 || ::pwrite(fd.get(), pid.data(), pid.size(), 0) < 0) {
    return make_error("data_dir", lock_path.string() + ": " + std::strerror(errno));
  }
  return DataDirLock(data_dir, std::move(fd));
}

}  // namespace novacron
