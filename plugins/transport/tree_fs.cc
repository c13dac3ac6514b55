#include "tree_fs.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <utility>

#include "block_hash.h"
#include "transfer_frames.h"

namespace novacron::transport {

namespace {

constexpr int kMaxDepth = 512;

std::string fd_path(int dir_fd, const std::string& name) {
  std::string p = "/proc/self/fd/" + std::to_string(dir_fd);
  if (!name.empty()) p += "/" + name;
  return p;
}

// Lists and reads the xattrs at `path` (the last component not followed unless `follow`).
bool read_xattrs_at_path(const std::string& path, bool follow, std::vector<Xattr>& out) {
  out.clear();
  const auto list_fn = follow ? ::listxattr : ::llistxattr;
  const auto get_fn = follow ? ::getxattr : ::lgetxattr;
  std::vector<char> names;
  for (int tries = 0; tries < 4; ++tries) {
    const ssize_t size = list_fn(path.c_str(), nullptr, 0);
    if (size < 0) return errno == ENOTSUP;  // a file system without xattrs has none
    if (size == 0) return true;
    names.resize(static_cast<size_t>(size));
    const ssize_t got = list_fn(path.c_str(), names.data(), names.size());
    if (got >= 0) {
      names.resize(static_cast<size_t>(got));
      break;
    }
    if (errno != ERANGE) return false;  // ERANGE: the list grew meanwhile; ask again
  }
  for (size_t at = 0; at < names.size();) {
    std::string name(names.data() + at);
    at += name.size() + 1;
    if (name.empty()) continue;
    std::vector<std::uint8_t> value(kMaxXattrValue);
    const ssize_t len = get_fn(path.c_str(), name.c_str(), value.data(), value.size());
    if (len < 0) {
      if (errno == ENODATA) continue;  // removed since it was listed
      return false;
    }
    value.resize(static_cast<size_t>(len));
    out.push_back(Xattr{std::move(name), std::move(value)});
  }
  std::sort(out.begin(), out.end(), [](const Xattr& a, const Xattr& b) { return a.name < b.name; });
  if (out.size() > kMaxXattrs) {
    errno = E2BIG;
    return false;
  }
  return true;
}

// The names in the folder `dir_fd`, sorted bytewise, without "." and "..".
bool list_names(int dir_fd, std::vector<std::string>& names) {
  names.clear();
  const int dup = ::openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dup < 0) return false;
  DIR* dir = ::fdopendir(dup);
  if (dir == nullptr) {
    ::close(dup);
    return false;
  }
  errno = 0;
  while (const dirent* d = ::readdir(dir)) {
    const std::string name = d->d_name;
    if (name != "." && name != "..") names.push_back(name);
  }
  const int err = errno;
  ::closedir(dir);
  if (err != 0) {
    errno = err;
    return false;
  }
  std::sort(names.begin(), names.end());
  return true;
}

class Walker {
 public:
  Walker(std::uint32_t block_size, dev_t dev) : block_size_(block_size), dev_(dev) {}

  bool walk(int dir_fd, const std::string& prefix, int depth) {
    if (depth > kMaxDepth) return fail("path_invalid", "the tree is deeper than " + std::to_string(kMaxDepth));
    std::vector<std::string> names;
    if (!list_names(dir_fd, names)) return fail("io", "cannot list " + shown(prefix) + ": " + std::strerror(errno));
    for (const std::string& name : names) {
      const std::string path = prefix.empty() ? name : prefix + "/" + name;
      if (path.size() > kMaxPathText) return fail("path_invalid", "path longer than 4096 bytes: " + path);
      struct stat st {};
      if (::fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno == ENOENT) continue;  // removed while walking
        return fail("io", "cannot stat " + path + ": " + std::strerror(errno));
      }
      if (!add(dir_fd, name, path, st)) return false;
      if (S_ISDIR(st.st_mode) && st.st_dev == dev_) {
        Fd child(::openat(dir_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        struct stat opened {};
        if (!child.valid() || ::fstat(child.get(), &opened) != 0 || opened.st_ino != st.st_ino) {
          return fail("io", "cannot open the folder " + path);
        }
        if (!walk(child.get(), path, depth + 1)) return false;
      }
    }
    return true;
  }

  bool add_root(int root_fd) {
    struct stat st {};
    if (::fstat(root_fd, &st) != 0 || !S_ISDIR(st.st_mode)) return fail("path_invalid", "the source is not a folder");
    TreeEntry e = fields(st);
    e.type = EntryType::kDirectory;
    if (!read_xattrs_at_path(fd_path(root_fd, ""), true, e.xattrs)) {
      return fail("io", std::string("cannot read the xattrs of the source folder: ") + std::strerror(errno));
    }
    push(std::move(e), st.st_ino);
    return true;
  }

  WalkedTree take() {
    XXH3_state_t* state = XXH3_createState();
    XXH3_128bits_reset(state);
    for (const TreeEntry& e : out_.entries) {
      const auto bytes = e.encode();
      XXH3_128bits_update(state, bytes.data(), bytes.size());
    }
    XXH128_canonical_t c;
    XXH128_canonicalFromHash(&c, XXH3_128bits_digest(state));
    XXH3_freeState(state);
    std::memcpy(out_.fingerprint.data(), c.digest, out_.fingerprint.size());
    return std::move(out_);
  }

  const PathError& error() const { return error_; }

 private:
  static std::string shown(const std::string& path) { return path.empty() ? "the source folder" : path; }

  bool fail(std::string code, std::string message) {
    error_ = PathError{std::move(code), std::move(message)};
    return false;
  }

  static TreeEntry fields(const struct stat& st) {
    TreeEntry e;
    e.mode = st.st_mode & 07777;
    e.uid = st.st_uid;
    e.gid = st.st_gid;
    e.mtime_ns = stat_mtime_ns(st);
    e.atime_ns = st.st_atim.tv_sec * 1'000'000'000LL + st.st_atim.tv_nsec;
    return e;
  }

  void push(TreeEntry e, std::uint64_t ino) {
    e.id = static_cast<std::uint32_t>(out_.entries.size());
    out_.entries.push_back(std::move(e));
    out_.inodes.push_back(ino);
  }

  bool add(int dir_fd, const std::string& name, const std::string& path, const struct stat& st) {
    if (out_.entries.size() >= kMaxTreeEntries) return fail("path_invalid", "the tree has too many entries");
    TreeEntry e = fields(st);
    e.path = path;
    if (!S_ISDIR(st.st_mode) && st.st_nlink > 1) {
      const auto [it, first] =
          links_.try_emplace({st.st_dev, st.st_ino}, static_cast<std::uint32_t>(out_.entries.size()));
      if (!first) {
        e.type = EntryType::kHardlink;
        e.link_entry = it->second;
        e.mode = e.uid = e.gid = 0;
        e.mtime_ns = e.atime_ns = 0;  // an inode's metadata travels with its first name
        push(std::move(e), st.st_ino);
        return true;
      }
    }
    if (S_ISDIR(st.st_mode)) {
      e.type = EntryType::kDirectory;
    } else if (S_ISREG(st.st_mode)) {
      e.type = EntryType::kRegular;
      e.size = static_cast<std::uint64_t>(st.st_size);
      e.first_block = out_.total_blocks;
      out_.total_blocks += FileDigest::blocks_for(e.size, block_size_);
      out_.total_bytes += e.size;
    } else if (S_ISLNK(st.st_mode)) {
      e.type = EntryType::kSymlink;
      std::string target(kMaxPathText + 1, '\0');
      const ssize_t n = ::readlinkat(dir_fd, name.c_str(), target.data(), target.size());
      if (n <= 0 || static_cast<size_t>(n) > kMaxPathText) return fail("io", "cannot read the symlink " + path);
      target.resize(static_cast<size_t>(n));
      e.symlink_target = std::move(target);
      e.mode = 0;  // a symlink's mode means nothing on Linux
    } else if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) {
      e.type = S_ISCHR(st.st_mode) ? EntryType::kCharDevice : EntryType::kBlockDevice;
      e.rdev = st.st_rdev;
    } else if (S_ISFIFO(st.st_mode)) {
      e.type = EntryType::kFifo;
    } else if (S_ISSOCK(st.st_mode)) {
      e.type = EntryType::kSocket;
    } else {
      return fail("path_invalid", "unknown file type at " + path);
    }
    if (!read_xattrs_at_path(fd_path(dir_fd, name), false, e.xattrs)) {
      return fail("io", "cannot read the xattrs of " + path + ": " + std::strerror(errno));
    }
    push(std::move(e), st.st_ino);
    return true;
  }

  std::uint32_t block_size_;
  dev_t dev_;
  WalkedTree out_;
  std::map<std::pair<dev_t, ino_t>, std::uint32_t> links_;
  PathError error_;
};

std::string set_xattrs(const std::string& path, int fd, const TreeEntry& entry, int& dropped) {
  for (const Xattr& x : entry.xattrs) {
    const int rc = fd >= 0 ? ::fsetxattr(fd, x.name.c_str(), x.value.data(), x.value.size(), 0)
                           : ::lsetxattr(path.c_str(), x.name.c_str(), x.value.data(), x.value.size(), 0);
    if (rc == 0) continue;
    if (x.name.rfind("user.", 0) == 0) return "xattr " + x.name + ": " + std::strerror(errno);
    ++dropped;  // security.*, trusted.*, system.*: the file system or our privileges refuse it
  }
  return {};
}

timespec to_timespec(std::int64_t ns) {
  return timespec{static_cast<time_t>(ns / 1'000'000'000), static_cast<long>(ns % 1'000'000'000)};
}

}  // namespace

std::int64_t stat_mtime_ns(const struct stat& st) { return st.st_mtim.tv_sec * 1'000'000'000LL + st.st_mtim.tv_nsec; }

PathResult<WalkedTree> walk_tree(int root_fd, std::uint32_t block_size) {
  struct stat st {};
  if (::fstat(root_fd, &st) != 0)
    return PathError{"io", std::string("cannot stat the source: ") + std::strerror(errno)};
  Walker walker(block_size, st.st_dev);
  if (!walker.add_root(root_fd) || !walker.walk(root_fd, "", 1)) return walker.error();
  return walker.take();
}

bool read_xattrs(int dir_fd, const std::string& name, std::vector<Xattr>& out) {
  return read_xattrs_at_path(fd_path(dir_fd, name), false, out);
}

std::string apply_metadata(int dir_fd, const std::string& name, const TreeEntry& entry, bool owners,
                           int& xattrs_dropped) {
  const char* n = name.c_str();
  if (owners && ::fchownat(dir_fd, n, entry.uid, entry.gid, AT_SYMLINK_NOFOLLOW) != 0) {
    return std::string("chown: ") + std::strerror(errno);
  }
  if (entry.type != EntryType::kSymlink && ::fchmodat(dir_fd, n, entry.mode, 0) != 0) {
    return std::string("chmod: ") + std::strerror(errno);
  }
  if (auto failed = set_xattrs(fd_path(dir_fd, name), -1, entry, xattrs_dropped); !failed.empty()) return failed;
  const timespec times[2] = {to_timespec(entry.atime_ns), to_timespec(entry.mtime_ns)};
  if (::utimensat(dir_fd, n, times, AT_SYMLINK_NOFOLLOW) != 0) return std::string("utimes: ") + std::strerror(errno);
  return {};
}

std::string apply_file_metadata(int fd, const TreeEntry& entry, bool owners, int& xattrs_dropped) {
  if (owners && ::fchown(fd, entry.uid, entry.gid) != 0) return std::string("chown: ") + std::strerror(errno);
  if (::fchmod(fd, entry.mode) != 0) return std::string("chmod: ") + std::strerror(errno);
  if (auto failed = set_xattrs({}, fd, entry, xattrs_dropped); !failed.empty()) return failed;
  const timespec times[2] = {to_timespec(entry.atime_ns), to_timespec(entry.mtime_ns)};
  if (::futimens(fd, times) != 0) return std::string("utimes: ") + std::strerror(errno);
  return {};
}

bool same_file(const struct stat& st, const std::vector<Xattr>& xattrs, const TreeEntry& entry, bool owners) {
  return S_ISREG(st.st_mode) && static_cast<std::uint64_t>(st.st_size) == entry.size &&
         stat_mtime_ns(st) == entry.mtime_ns && (st.st_mode & 07777) == entry.mode &&
         (!owners || (st.st_uid == entry.uid && st.st_gid == entry.gid)) && xattrs == entry.xattrs;
}

bool remove_tree_at(int parent_fd, const std::string& name) {
  struct stat st {};
  if (::fstatat(parent_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return errno == ENOENT;
  if (!S_ISDIR(st.st_mode)) return ::unlinkat(parent_fd, name.c_str(), 0) == 0 || errno == ENOENT;
  struct stat parent {};
  if (::fstat(parent_fd, &parent) != 0) return false;
  if (parent.st_dev != st.st_dev) {  // a mount point: never removed into
    errno = EXDEV;
    return false;
  }
  {
    const Fd dir(::openat(parent_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!dir.valid()) return false;
    ::fchmod(dir.get(), 0700);  // a read-only folder's entries could not be removed otherwise
    std::vector<std::string> names;
    if (!list_names(dir.get(), names)) return false;
    for (const std::string& child : names) {
      if (!remove_tree_at(dir.get(), child)) return false;
    }
  }
  return ::unlinkat(parent_fd, name.c_str(), AT_REMOVEDIR) == 0 || errno == ENOENT;
}

}  // namespace novacron::transport
