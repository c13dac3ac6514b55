// File-system work of directory-tree transfers (docs/design/migration-transport.md, 7.2):
// the sender's walk of a source tree into entries, and the receiver's helpers for building
// and removing trees without ever following a link. Every call works on folder descriptors
// this code opened and single path components (the *at calls with AT_SYMLINK_NOFOLLOW).
#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "safe_path.h"
#include "tree_frames.h"

namespace novacron::transport {

struct WalkedTree {
  std::vector<TreeEntry> entries;     // entry 0 is the root folder
  std::vector<std::uint64_t> inodes;  // per entry: its inode (the sender re-checks it on open)
  std::uint64_t total_bytes = 0;      // of regular files
  std::uint64_t total_blocks = 0;     // of regular files, each starting at a block boundary
  Hash128 fingerprint{};              // of every entry's metadata: a retry notices a changed tree
};

// Walks the folder `root_fd` (opened O_RDONLY | O_DIRECTORY): pre-order, names sorted, never
// into another file system (a mount point is sent as an empty folder). A further name of an
// inode with several links becomes a hard-link entry to its first name. Errors: "io", or
// "path_invalid" for a tree deeper than 512 levels or paths over 4096 bytes.
PathResult<WalkedTree> walk_tree(int root_fd, std::uint32_t block_size);

// The xattrs of `name` in the folder `dir_fd` (not following a symlink), sorted by name.
// False with errno set when they cannot be listed.
bool read_xattrs(int dir_fd, const std::string& name, std::vector<Xattr>& out);

// Sets owner (when `owners`), mode (not on symlinks), xattrs and times of `name` in `dir_fd`,
// in that order: a chown clears setuid bits and security.capability, so they come after it.
// An xattr outside user.* that the file system refuses is counted in `xattrs_dropped`; a
// refused user.* one is an error. "" on success, else what failed.
std::string apply_metadata(int dir_fd, const std::string& name, const TreeEntry& entry, bool owners,
                           int& xattrs_dropped);

// The same for an open regular file.
std::string apply_file_metadata(int fd, const TreeEntry& entry, bool owners, int& xattrs_dropped);

// True when `st` and `xattrs` describe the same regular file as `entry` (size, mtime to the
// nanosecond, mode, and owners when `owners`): rsync's quick check.
bool same_file(const struct stat& st, const std::vector<Xattr>& xattrs, const TreeEntry& entry, bool owners);

// Removes `name` in `parent_fd` and, for a folder, everything in it, depth first, following
// no link and never leaving the file system. False with errno set on the first failure.
bool remove_tree_at(int parent_fd, const std::string& name);

std::int64_t stat_mtime_ns(const struct stat& st);

}  // namespace novacron::transport
