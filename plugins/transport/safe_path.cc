#include "safe_path.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include <cerrno>
#include <cstdint>
#include <system_error>
#include <vector>

namespace novacron::transport {
namespace {

constexpr size_t kMaxPath = 4096;
constexpr size_t kMaxComponent = 255;
constexpr size_t kMaxQuoted = 200;  // a peer's path in a message, enough to recognise it

// The path in quotes for a message: cut short and with control bytes replaced, since it
// comes from a peer and ends up in logs.
std::string quoted(std::string_view path) {
  std::string out = "\"";
  for (char c : path.substr(0, kMaxQuoted)) out += static_cast<unsigned char>(c) < 0x20 ? '?' : c;
  if (path.size() > kMaxQuoted) out += "...";
  return out + "\"";
}

PathError error(std::string code, std::string_view path, const std::string& why) {
  return PathError{std::move(code), quoted(path) + " " + why};
}

PathError errno_error(int err, std::string_view path) {
  switch (err) {
    case EXDEV:
      return error("path_escapes_root", path, "leads out of its root");
    case ELOOP:
      return error("symlink", path, "goes through a symbolic link, which is not allowed here");
    case ENOENT:
      return error("not_found", path, "does not exist beneath the root");
    default:
      // std::generic_category, not strerror: the plugin is multithreaded.
      return error("io", path, "beneath the root: " + std::generic_category().message(err));
  }
}

std::vector<std::string_view> components(std::string_view path) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (true) {
    size_t slash = path.find('/', start);
    parts.push_back(path.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start));
    if (slash == std::string_view::npos) return parts;
    start = slash + 1;
  }
}

std::optional<PathError> check_component(std::string_view part, std::string_view path) {
  if (part.empty()) {
    return error("path_invalid", path, "has an empty component (\"//\" or a leading or trailing \"/\")");
  }
  if (part == "..") return error("path_escapes_root", path, "contains \"..\"");
  if (part == ".") return error("path_invalid", path, "contains \".\"");
  if (part.size() > kMaxComponent) {
    return error("path_invalid", path, "has a component longer than " + std::to_string(kMaxComponent) + " bytes");
  }
  return std::nullopt;
}

// A fresh O_PATH fd of the root, so callers own what they get whatever `root_fd` was opened as.
PathResult<Fd> reopen_root(int root_fd) {
  Fd fd(::openat(root_fd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) return errno_error(errno, ".");
  return fd;
}

// openat2 beneath `root_fd`, following no symlink at all. EAGAIN means a concurrent rename
// raced the lookup: tried once more. Returns an invalid Fd and sets *err on failure.
Fd openat2_beneath(int root_fd, std::string_view rel, std::uint64_t flags, int* err) {
  open_how how{};
  how.flags = flags;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
  const std::string path(rel);
  for (int attempt = 0; attempt < 2; ++attempt) {
    long fd = ::syscall(SYS_openat2, root_fd, path.c_str(), &how, sizeof how);
    if (fd >= 0) return Fd(static_cast<int>(fd));
    *err = errno;
    if (*err != EAGAIN) break;
  }
  return Fd();
}

bool is_symlink(int dir, const char* name) {
  struct stat st {};
  return ::fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode);
}

// Opens the single component `name` of `dir` as a folder, following nothing. Returns 0 or an
// errno (ELOOP for a symlink). The fstatat first is needed: with O_PATH, O_NOFOLLOW does not
// fail on a symlink (O_DIRECTORY makes it ENOTDIR, which would read as "not a folder").
int open_child_dir(int dir, const char* name, Fd* out) {
  struct stat st {};
  if (::fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW) != 0) return errno;
  if (S_ISLNK(st.st_mode)) return ELOOP;
  Fd child(::openat(dir, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!child.valid()) {
    int err = errno;
    return err == ENOTDIR && is_symlink(dir, name) ? ELOOP : err;  // swapped in after the fstatat
  }
  if (::fstat(child.get(), &st) != 0) return errno;
  if (!S_ISDIR(st.st_mode)) return S_ISLNK(st.st_mode) ? ELOOP : ENOTDIR;
  *out = std::move(child);
  return 0;
}

// Refuses what is not a regular file before it is opened: opening a FIFO blocks and opening
// a device can have effects. A missing name is fine only when it is to be created.
std::optional<PathError> check_existing_is_file(int parent, const std::string& name, int flags, std::string_view path) {
  struct stat st {};
  if (::fstatat(parent, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT && (flags & O_CREAT) != 0) return std::nullopt;
    return errno_error(errno, path);
  }
  if (S_ISLNK(st.st_mode)) return errno_error(ELOOP, path);
  if (S_ISDIR(st.st_mode)) return error("path_invalid", path, "is a folder, not a file");
  if (!S_ISREG(st.st_mode)) return error("path_invalid", path, "is not a regular file");
  return std::nullopt;
}

// Opens the last component. O_NONBLOCK is added so that a FIFO swapped in after the check
// cannot block us; it is taken off again once the fd is known to be a regular file.
PathResult<Fd> open_regular(int parent, const std::string& name, int flags, mode_t mode, std::string_view path) {
  Fd fd(::openat(parent, name.c_str(), flags | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK, mode));
  if (!fd.valid()) {
    if (errno == EISDIR) return error("path_invalid", path, "is a folder, not a file");
    return errno_error(errno, path);
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return errno_error(errno, path);
  if (S_ISLNK(st.st_mode)) return errno_error(ELOOP, path);  // O_PATH | O_NOFOLLOW opens the link itself
  if (!S_ISREG(st.st_mode)) return error("path_invalid", path, "is not a regular file");
  if ((flags & (O_NONBLOCK | O_PATH)) == 0) {
    int fl = ::fcntl(fd.get(), F_GETFL);
    if (fl < 0 || ::fcntl(fd.get(), F_SETFL, fl & ~O_NONBLOCK) != 0) return errno_error(errno, path);
  }
  return fd;
}

}  // namespace

std::optional<PathError> check_relative_path(std::string_view path) {
  if (path.empty()) return PathError{"path_invalid", "empty path"};
  if (path.size() > kMaxPath) {
    return error("path_invalid", path, "is longer than " + std::to_string(kMaxPath) + " bytes");
  }
  if (path.find('\0') != std::string_view::npos) return error("path_invalid", path, "contains a NUL byte");
  if (path.front() == '/') return error("path_escapes_root", path, "is absolute; give a path relative to the root");
  for (std::string_view part : components(path)) {
    if (auto e = check_component(part, path)) return e;
  }
  return std::nullopt;
}

std::optional<SplitPath> split_parent(std::string_view rel_path) {
  if (check_relative_path(rel_path)) return std::nullopt;
  size_t slash = rel_path.rfind('/');
  if (slash == std::string_view::npos) return SplitPath{"", std::string(rel_path)};
  return SplitPath{std::string(rel_path.substr(0, slash)), std::string(rel_path.substr(slash + 1))};
}

PathResult<Fd> open_root(const std::string& absolute_dir) {
  if (absolute_dir.empty() || absolute_dir.front() != '/' || absolute_dir.find('\0') != std::string::npos) {
    return error("path_invalid", absolute_dir, "is not an absolute path, as a root must be");
  }
  Fd fd(::open(absolute_dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (fd.valid()) return fd;
  if (errno == ENOENT) return error("not_found", absolute_dir, "does not exist (the root)");
  return error("io", absolute_dir, "(the root): " + std::generic_category().message(errno));
}

PathResult<Fd> open_dir_beneath(int root_fd, std::string_view rel_dir, bool create_missing, mode_t mode) {
  if (rel_dir.empty()) return reopen_root(root_fd);
  if (auto e = check_relative_path(rel_dir)) return *e;
  int err = 0;
  Fd fd = openat2_beneath(root_fd, rel_dir, O_PATH | O_DIRECTORY | O_CLOEXEC, &err);
  if (fd.valid()) return fd;
  // ENOSYS: kernel before 5.6; EPERM: a seccomp profile denying openat2. Creating walks too:
  // components are made one at a time, each opened without following anything.
  if (err == ENOSYS || err == EPERM || (err == ENOENT && create_missing)) {
    return internal::open_dir_beneath_by_walk(root_fd, rel_dir, create_missing, mode);
  }
  return errno_error(err, rel_dir);
}

PathResult<Fd> open_file_beneath(int root_fd, std::string_view rel_path, int flags, mode_t mode) {
  if (auto e = check_relative_path(rel_path)) return *e;
  std::optional<SplitPath> split = split_parent(rel_path);
  auto parent = open_dir_beneath(root_fd, split->dir, /*create_missing=*/false);
  if (!parent) return parent.error();  // names the folder at fault
  if (auto e = check_existing_is_file(parent->get(), split->name, flags, rel_path)) return *e;
  return open_regular(parent->get(), split->name, flags, mode, rel_path);
}

namespace internal {

// Safe without openat2 because ".." was refused by the text check and each step is one
// component opened with O_NOFOLLOW from a folder this walk opened itself.
PathResult<Fd> open_dir_beneath_by_walk(int root_fd, std::string_view rel_dir, bool create_missing, mode_t mode) {
  if (!rel_dir.empty()) {
    if (auto e = check_relative_path(rel_dir)) return *e;
  }
  auto dir = reopen_root(root_fd);
  if (!dir || rel_dir.empty()) return dir;
  Fd current = std::move(*dir);
  for (std::string_view part : components(rel_dir)) {
    const std::string name(part);
    Fd next;
    int err = open_child_dir(current.get(), name.c_str(), &next);
    if (err == ENOENT && create_missing) {
      // EEXIST: made meanwhile by someone else; the open below still refuses a symlink.
      if (::mkdirat(current.get(), name.c_str(), mode) != 0 && errno != EEXIST) return errno_error(errno, rel_dir);
      err = open_child_dir(current.get(), name.c_str(), &next);
    }
    if (err != 0) return errno_error(err, rel_dir);
    current = std::move(next);
  }
  return current;
}

}  // namespace internal

}  // namespace novacron::transport
