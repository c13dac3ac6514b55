#include "host/common/path_beneath.h"

#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <vector>

namespace novacron {
namespace fs = std::filesystem;

namespace {

constexpr size_t kMaxClientPath = 4096;

Error escape_error(std::string_view client_path, const fs::path& root, const std::string& why) {
  return Error{"path_escapes_root",
               "\"" + std::string(client_path) + "\" " + why + " (paths must stay beneath " + root.string() + ")"};
}

Error errno_error(int err, std::string_view client_path, const fs::path& root) {
  switch (err) {
    case EXDEV:
      return escape_error(client_path, root, "leads out of its root through a symlink or \"..\"");
    case ELOOP:
      return Error{"symlink",
                   "\"" + std::string(client_path) + "\" goes through a symbolic link, which is not allowed here"};
    case ENOENT:
      return Error{"not_found", "\"" + std::string(client_path) + "\" does not exist beneath " + root.string()};
    default:
      return Error{"io", "\"" + std::string(client_path) + "\" beneath " + root.string() + ": " + std::strerror(err)};
  }
}

// Fallback for kernels without openat2: every component opened with O_NOFOLLOW, so any
// symlink is refused, and ".." was refused by check_client_path already.
Expected<UniqueFd> walk_nofollow(int root_fd, std::string_view client_path, const fs::path& root, int flags,
                                 mode_t mode) {
  fs::path rel(client_path);
  UniqueFd dir(::fcntl(root_fd, F_DUPFD_CLOEXEC, 0));
  std::vector<fs::path> parts;
  for (const auto& p : rel) {
    if (!p.empty() && p != ".") parts.push_back(p);
  }
  if (parts.empty()) {
    return UniqueFd(::openat(root_fd, ".", flags | O_CLOEXEC, mode));
  }
  for (size_t i = 0; i < parts.size(); ++i) {
    bool last = i + 1 == parts.size();
    int f = last ? (flags | O_NOFOLLOW | O_CLOEXEC) : (O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    // A symlink is refused before opening: with O_PATH, O_NOFOLLOW would open the link itself.
    struct stat st {};
    if (::fstatat(dir.get(), parts[i].c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode)) {
      return tl::unexpected(errno_error(ELOOP, client_path, root));
    }
    UniqueFd next(::openat(dir.get(), parts[i].c_str(), f, mode));
    if (!next.valid()) return tl::unexpected(errno_error(errno, client_path, root));
    if (::fstat(next.get(), &st) == 0 && S_ISLNK(st.st_mode)) {  // swapped in after the check
      return tl::unexpected(errno_error(ELOOP, client_path, root));
    }
    dir = std::move(next);
  }
  return dir;
}

}  // namespace

Expected<void> check_client_path(std::string_view client_path) {
  if (client_path.empty()) return make_error("path_invalid", "empty path");
  if (client_path.size() > kMaxClientPath) {
    return make_error("path_invalid", "path longer than " + std::to_string(kMaxClientPath) + " bytes");
  }
  if (client_path.find('\0') != std::string_view::npos) return make_error("path_invalid", "path contains a NUL byte");
  if (client_path.front() == '/') {
    return make_error("path_escapes_root",
                      "\"" + std::string(client_path) + "\" is absolute; give a path relative to the root");
  }
  for (const auto& part : fs::path(client_path)) {
    if (part == "..") {
      return make_error("path_escapes_root", "\"" + std::string(client_path) + "\" contains \"..\"");
    }
  }
  return {};
}

Expected<UniqueFd> open_beneath(const fs::path& root, std::string_view client_path, const BeneathOptions& options) {
  if (auto r = check_client_path(client_path); !r) return tl::unexpected(r.error());
  UniqueFd root_fd(::open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!root_fd.valid()) return make_error("io", "root " + root.string() + ": " + std::strerror(errno));

  open_how how{};
  how.flags = static_cast<std::uint64_t>(options.flags | O_CLOEXEC);
  how.mode = (options.flags & (O_CREAT | O_TMPFILE)) != 0 ? options.mode : 0;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS | (options.follow_symlinks_inside ? 0 : RESOLVE_NO_SYMLINKS);
  std::string path(client_path);
  long fd = ::syscall(SYS_openat2, root_fd.get(), path.c_str(), &how, sizeof how);
  if (fd >= 0) return UniqueFd(static_cast<int>(fd));
  // ENOSYS: kernel before 5.6; EPERM: seccomp profiles that deny openat2.
  if (errno == ENOSYS || errno == EPERM)
    return walk_nofollow(root_fd.get(), client_path, root, options.flags, options.mode);
  if (errno == EAGAIN) {  // a concurrent rename raced the lookup: once more
    fd = ::syscall(SYS_openat2, root_fd.get(), path.c_str(), &how, sizeof how);
    if (fd >= 0) return UniqueFd(static_cast<int>(fd));
  }
  return tl::unexpected(errno_error(errno, client_path, root));
}

namespace internal {
Expected<UniqueFd> open_beneath_without_openat2(const fs::path& root, std::string_view client_path, int flags,
                                                mode_t mode) {
  if (auto r = check_client_path(client_path); !r) return tl::unexpected(r.error());
  UniqueFd root_fd(::open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!root_fd.valid()) return make_error("io", "root " + root.string() + ": " + std::strerror(errno));
  return walk_nofollow(root_fd.get(), client_path, root, flags, mode);
}
}  // namespace internal

Expected<fs::path> resolve_beneath(const fs::path& root, std::string_view client_path, bool follow_symlinks_inside) {
  BeneathOptions options;
  options.follow_symlinks_inside = follow_symlinks_inside;
  options.flags = O_PATH;
  auto fd = open_beneath(root, client_path, options);
  if (!fd) return tl::unexpected(fd.error());
  std::error_code ec;
  fs::path resolved = fs::read_symlink("/proc/self/fd/" + std::to_string(fd->get()), ec);
  if (ec) return make_error("io", "cannot read back the resolved path: " + ec.message());
  return resolved;
}

}  // namespace novacron
