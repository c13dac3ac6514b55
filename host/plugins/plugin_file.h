// Opening a plugin's files safely: the first checks of the load sequence.
//
// A file is opened by walking from its plugin dir one component at a time with openat() and
// O_NOFOLLOW, so the file that is checked is the file that is later hashed and loaded
// (through /proc/self/fd/N), with no window to swap it. Every component must be owned by root
// or the daemon's user and not writable by group or others.
#pragma once

#include <sys/stat.h>

#include <filesystem>
#include <string>

#include "host/common/error.h"
#include "host/common/unique_fd.h"

namespace novacron {

struct OpenedFile {
  UniqueFd fd;
  std::filesystem::path path;  // plugin dir / relative, for messages
  struct stat st {};
};

struct OpenedDir {
  UniqueFd fd;
  std::filesystem::path path;
};

// Opens `relative` (e.g. "io.novacron.x/1.0.0/libx.so") beneath `plugin_dir`.
// Errors: "path_outside_plugin_dir", "symlink", "bad_owner", "writable", "not_regular",
// "not_found", "io".
Expected<OpenedFile> open_plugin_file(const std::filesystem::path& plugin_dir, const std::filesystem::path& relative);

// Opens the folder `relative` (e.g. "io.novacron.x/1.0.0") beneath `plugin_dir` with the same
// checks, so that the files in it can be opened with open_in_dir without walking again.
Expected<OpenedDir> open_plugin_dir(const std::filesystem::path& plugin_dir, const std::filesystem::path& relative);

// Opens the regular file `name` (no '/') inside an opened plugin folder, with the same checks.
Expected<OpenedFile> open_in_dir(const OpenedDir& dir, const std::string& name);

// Owner root or the current effective user, not group/world writable.
Expected<void> check_owner_and_mode(const struct stat& st, const std::string& what);

// Reads a whole small file from an OpenedFile (manifests, signatures), at most `limit` bytes.
Expected<std::string> read_opened_file(const OpenedFile& file, size_t limit);

}  // namespace novacron
