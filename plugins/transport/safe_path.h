// Path safety for the transport (docs/design/migration-transport.md, section 7.4).
//
// Plugins include only the SDK, so host/common/path_beneath.h is out of reach: this file
// re-implements its semantics and error codes. Everything a peer names must stay beneath a
// root the host configured: the text is checked before any file-system call, then the kernel
// resolves it with openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS), so
// a concurrent rename or symlink swap cannot race the check. Where openat2 is missing
// (ENOSYS) or denied by seccomp (EPERM), the path is walked one component at a time with
// O_NOFOLLOW. Unlike the host's open_beneath, every symlink is refused, even one that stays
// inside the root: a transfer target never needs one, and refusing is simpler to reason about.
//
// Error codes: "path_invalid", "path_escapes_root", "symlink", "not_found", "io".
#pragma once

#include <sys/types.h>
#include <unistd.h>

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace novacron::transport {

struct PathError {
  std::string code;     // one of the codes above
  std::string message;  // one line for the log and the peer, naming the path
};

// A value or the PathError that prevented it (the plugin has no Expected type).
template <typename T>
class PathResult {
 public:
  PathResult(T value) : v_(std::move(value)) {}          // NOLINT(google-explicit-constructor)
  PathResult(PathError error) : v_(std::move(error)) {}  // NOLINT(google-explicit-constructor)

  bool ok() const { return std::holds_alternative<T>(v_); }
  explicit operator bool() const { return ok(); }
  T& value() { return std::get<T>(v_); }
  const T& value() const { return std::get<T>(v_); }
  T& operator*() { return value(); }
  T* operator->() { return &value(); }
  const PathError& error() const { return std::get<PathError>(v_); }

 private:
  std::variant<T, PathError> v_;
};

// Owns a file descriptor; closes it on destruction. Move-only.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Fd& operator=(Fd&& other) noexcept {
    if (this != &other) reset(std::exchange(other.fd_, -1));
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { reset(); }

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  // Gives up ownership: the caller closes the returned fd.
  int release() { return std::exchange(fd_, -1); }
  void reset(int fd = -1) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

// Checks a peer's relative path text without touching the file system: non-empty, at most
// 4096 bytes, no NUL, relative, every component non-empty (so no "//" and no trailing "/"),
// not "." or "..", at most 255 bytes. "path_escapes_root" for an absolute path or "..",
// "path_invalid" for the rest; nullopt when the text is fine.
std::optional<PathError> check_relative_path(std::string_view path);

struct SplitPath {
  std::string dir;   // "" when the path has one component
  std::string name;  // the last component
};
// Splits a path that passes check_relative_path into its parent and last component;
// nullopt when it does not pass.
std::optional<SplitPath> split_parent(std::string_view rel_path);

// Opens the root folder `absolute_dir` (O_PATH | O_DIRECTORY | O_CLOEXEC). Symlinks in it are
// followed: the root comes from the host's configuration, not from a peer.
PathResult<Fd> open_root(const std::string& absolute_dir);

// Opens the folder `rel_dir` beneath `root_fd` as O_PATH | O_DIRECTORY | O_CLOEXEC; "" is the
// root itself. With `create_missing`, missing components are created one at a time with
// mkdirat(`mode`, minus the umask), each then opened with O_NOFOLLOW, so a symlink planted
// meanwhile is refused rather than followed.
PathResult<Fd> open_dir_beneath(int root_fd, std::string_view rel_dir, bool create_missing, mode_t mode = 0750);

// Opens the regular file `rel_path` beneath `root_fd` with open(2) `flags` (O_CLOEXEC and
// O_NOFOLLOW always added; `mode` is used with O_CREAT). Its parent is opened as by
// open_dir_beneath without creating anything. A symlink as the last component is "symlink";
// a folder, device, FIFO or socket is "path_invalid", refused before it is opened where it
// can be (opening a device or FIFO can block or have effects).
PathResult<Fd> open_file_beneath(int root_fd, std::string_view rel_path, int flags, mode_t mode = 0600);

namespace internal {
// open_dir_beneath's fallback where openat2 is missing, exposed for its tests.
PathResult<Fd> open_dir_beneath_by_walk(int root_fd, std::string_view rel_dir, bool create_missing, mode_t mode = 0750);
}  // namespace internal

}  // namespace novacron::transport
