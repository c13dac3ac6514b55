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
                                       ", not by root or the daemon's user (uid " + std::to_string(::geteuid()) + ")");
  }
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", st.st_mode & 07777);
    return make_error("writable", what + " is writable by " +
                                      std::string((st.st_mode & S_IWOTH) != 0 ? "everyone" : "its group") + " (mode " +
                                      mode + "); run chmod go-w on it");
  }
  return {};
}

namespace {

// Opens one component beneath `dir` without following a symlink, and checks it.
Expected<UniqueFd> open_component(int dir, const fs::path& name, const fs::path& shown, bool want_dir,
                                  struct stat& st) {
  // lstat first for a precise message; O_NOFOLLOW below makes the check race-free.
  if (::fstatat(dir, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    return make_error(errno == ENOENT ? "not_found" : "io", shown.string() + ": " + std::strerror(errno));
  }
  if (S_ISLNK(st.st_mode)) {
    return make_error("symlink", shown.string() + " is a symbolic link; plugin files must be real files");
  }
  int flags = O_RDONLY | O_NOFOLLOW | O_CLOEXEC | (want_dir ? O_DIRECTORY : 0);
  UniqueFd fd(::openat(dir, name.c_str(), flags));
  if (!fd.valid()) return make_error(errno == ELOOP ? "symlink" : "io", shown.string() + ": " + std::strerror(errno));
  ::fstat(fd.get(), &st);
  if (auto r = check_owner_and_mode(st, shown.string()); !r) return tl::unexpected(r.error());
  if (!want_dir && !S_ISREG(st.st_mode)) return make_error("not_regular", shown.string() + " is not a regular file");
  return fd;
}

Expected<void> check_relative(const fs::path& relative) {
  if (relative.is_absolute() || relative.empty()) {
    return make_error("path_outside_plugin_dir", relative.string() + " is not a path inside a plugin dir");
  }
  for (const auto& part : relative) {
    if (part == ".." || part == ".") {
      return make_error("path_outside_plugin_dir", relative.string() + " leaves its plugin dir (\"..\")");
    }
  }
  return {};
}

// Walks `relative` beneath `plugin_dir`; the last component is a folder or a file.
Expected<std::pair<UniqueFd, struct stat>> walk(const fs::path& plugin_dir, const fs::path& relative,
                                                bool last_is_dir) {
  if (auto r = check_relative(relative); !r) return tl::unexpected(r.error());
  UniqueFd dir(::open(plugin_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir.valid()) return make_error("io", plugin_dir.string() + ": " + std::strerror(errno));
  struct stat st {};
  ::fstat(dir.get(), &st);
  if (auto r = check_owner_and_mode(st, "plugin dir " + plugin_dir.string()); !r) return tl::unexpected(r.error());
  fs::path walked = plugin_dir;
  auto last = std::prev(relative.end());
  for (auto it = relative.begin(); it != relative.end(); ++it) {
    walked /= *it;
    auto next = open_component(dir.get(), *it, walked, it != last || last_is_dir, st);
    if (!next) return tl::unexpected(next.error());
    dir = std::move(*next);
  }
  return std::make_pair(std::move(dir), st);
}

}  // namespace

Expected<OpenedFile> open_plugin_file(const fs::path& plugin_dir, const fs::path& relative) {
  auto opened = walk(plugin_dir, relative, /*last_is_dir=*/false);
  if (!opened) return tl::unexpected(opened.error());
  OpenedFile file;
  file.fd = std::move(opened->first);
  file.st = opened->second;
  file.path = plugin_dir / relative;
  return file;
}

Expected<OpenedDir> open_plugin_dir(const fs::path& plugin_dir, const fs::path& relative) {
  auto opened = walk(plugin_dir, relative, /*last_is_dir=*/true);
  if (!opened) return tl::unexpected(opened.error());
  return OpenedDir{std::move(opened->first), plugin_dir / relative};
}

Expected<OpenedFile> open_in_dir(const OpenedDir& dir, const std::string& name) {
  if (name.empty() || name.find('/') != std::string::npos || name == "." || name == "..") {
    return make_error("path_outside_plugin_dir", "\"" + name + "\" is not a file name");
  }
  OpenedFile file;
  file.path = dir.path / name;
  auto fd = open_component(dir.fd.get(), name, file.path, /*want_dir=*/false, file.st);
  if (!fd) return tl::unexpected(fd.error());
  file.fd = std::move(*fd);
  return file;
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
