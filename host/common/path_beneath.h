// Resolving client-supplied paths beneath a configured root.
//
// Every path that comes from a client (disk images, kernels, transfer targets) goes through
// here: it must name something inside `root`, and nothing in it may lead out (no "..", no
// absolute path, no symlink or /proc magic link pointing outside). The kernel enforces it
// with openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS), so a concurrent rename or symlink
// swap cannot race the check; on kernels without openat2 the path is walked one component at
// a time with O_NOFOLLOW and symlinks are refused outright.
#pragma once

#include <fcntl.h>
#include <sys/types.h>

#include <filesystem>
#include <string>
#include <string_view>

#include "host/common/error.h"
#include "host/common/unique_fd.h"

namespace novacron {

struct BeneathOptions {
  // Symlinks that stay inside the root are followed; with false, any symlink is refused.
  bool follow_symlinks_inside = true;
  int flags = O_RDONLY;  // open(2) flags; O_CLOEXEC is always added
  mode_t mode = 0600;    // with O_CREAT
};

// Checks the client's path text (relative, no "..", no NUL, not too long) without touching
// the filesystem. Errors "path_invalid" and "path_escapes_root" name the offending part.
Expected<void> check_client_path(std::string_view client_path);

// Opens `client_path` beneath the folder `root`. Errors: "path_invalid", "path_escapes_root",
// "symlink" (a symlink where none is allowed), "not_found", "io".
Expected<UniqueFd> open_beneath(const std::filesystem::path& root, std::string_view client_path,
                                const BeneathOptions& options = {});

// Resolves `client_path` beneath `root` to the absolute path of what it names (opened with
// O_PATH, then read back from /proc/self/fd): for libraries that want a path, not an fd.
// Prefer open_beneath where an fd will do: a path can be swapped after it is returned.
Expected<std::filesystem::path> resolve_beneath(const std::filesystem::path& root, std::string_view client_path,
                                                bool follow_symlinks_inside = true);

namespace internal {
// The fallback used where openat2 is missing (ENOSYS), exposed for its tests.
Expected<UniqueFd> open_beneath_without_openat2(const std::filesystem::path& root, std::string_view client_path,
                                                int flags = O_RDONLY, mode_t mode = 0600);
}  // namespace internal

}  // namespace novacron
