#include "host/plugins/plugin_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace novacron {
namespace fs = std::filesystem;

Expected<void> check_owner_and_mode(const struct stat& st, const std::string& what) {
  if (st.st_uid != 0 && st.st_uid != ::geteuid()) {
    return make_error("bad_owner", what + " is owned by uid " + std::to_string(st.st_uid) +
                                       ", not by root or the daemon's user (uid " +
                                       std::to_string(::geteuid()) + ")");
  }
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", st.st_mode & 07777);
    return make_error("writable", what + " is writable by " +
                                      std::string((st.st_mode & S_IWOTH) != 0 ? "everyone" : "its group") +
                                      " (mode " + mode + "); run chmod go-w on it");
  }
  return {};
}

Expected<OpenedFile> open_plugin_file(const fs::path& plugin_dir, const fs::path& relative) {
  if (relative.is_absolute() || relative.empty()) {
    return make_error("path_outside_plugin_dir", relative.string() + " is not a path inside a plugin dir");
  }
  for (const auto& part : relative) {
    if (part == ".." || part == ".") {
      return make_error("path_outside_plugin_dir", relative.string() + " leaves its plugin dir (\"..\")");
    }
  }
  UniqueFd dir(::open(plugin_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir.valid()) return make_error("io", plugin_dir.string() + ": " + std::strerror(errno));
  struct stat st {};
  ::fstat(dir.get(), &st);
  if (auto r = check_owner_and_mode(st, "plugin dir " + plugin_dir.string()); !r) return tl::unexpected(r.error());

  fs::path walked = plugin_dir;
  auto last = std::prev(relative.end());
  for (auto it = relative.begin(); it != relative.end(); ++it) {
    walked /= *it;
    const bool is_last = it == last;
    // lstat first for a precise message; O_NOFOLLOW below makes the check race-free.
    if (::fstatat(dir.get(), it->c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      return make_error(errno == ENOENT ? "not_found" : "io", walked.string() + ": " + std::strerror(errno));
    }
    if (S_ISLNK(st.st_mode)) {
      return make_error("symlink", walked.string() + " is a symbolic link; plugin files must be real files");
    }
    int flags = O_RDONLY | O_NOFOLLOW | O_CLOEXEC | (is_last ? 0 : O_DIRECTORY);
    UniqueFd next(::openat(dir.get(), it->c_str(), flags));
    if (!next.valid()) {
      return make_error(errno == ELOOP ? "symlink" : "io", walked.string() + ": " + std::strerror(errno));
    }
    ::fstat(next.get(), &st);
    if (auto r = check_owner_and_mode(st, walked.string()); !r) return tl::unexpected(r.error());
    if (is_last) {
      if (!S_ISREG(st.st_mode)) return make_error("not_regular", walked.string() + " is not a regular file");
      OpenedFile file;
      file.fd = std::move(next);
      file.path = walked;
      file.st = st;
      return file;
    }
    dir = std::move(next);
  }
  return make_error("io", "unreachable");
}

Expected<std::string> read_opened_file(const OpenedFile& file, size_t limit) {
  if (static_cast<size_t>(file.st.st_size) > limit) {
    return make_error("io", file.path.string() + " is larger than " + std::to_string(limit) + " bytes");
  }
  std::string data(static_cast<size_t>(file.st.st_size), '\0');
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::pread(file.fd.get(), data.data() + done, data.size() - done, static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return make_error("io", file.path.string() + ": read failed");
    done += static_cast<size_t>(n);
  }
  return data;
}

}  // namespace novacron
