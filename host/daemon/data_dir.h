// The host's data dir: state.db, plugins/, tmp/, admin secrets later. Exactly one process
// owns it at a time (an flock on DATA_DIR/novacrond.lock), so the offline CLI commands
// refuse to touch a data dir that a running host uses.
#pragma once

#include <filesystem>

#include "host/common/error.h"
#include "host/common/unique_fd.h"

namespace novacron {

class DataDirLock {
 public:
  // Creates the data dir (0700) and its plugins/ (0755) and tmp/ (0700) folders if needed,
  // and takes the lock. Error "data_dir_locked" names the holder's pid.
  static Expected<DataDirLock> acquire(const std::filesystem::path& data_dir);

  const std::filesystem::path& dir() const { return dir_; }

 private:
  DataDirLock(std::filesystem::path dir, UniqueFd fd) : dir_(std::move(dir)), fd_(std::move(fd)) {}
  std::filesystem::path dir_;
  UniqueFd fd_;
};

}  // namespace novacron
