// The crash-loop guard's marker: a small file, DATA_DIR/plugin-guard, holding the plugin the
// host is loading, initialising or starting. It is written before each step that runs a
// plugin's code (dlopen, init, start) and cleared once the plugin is running or refused; if
// the process dies in between, the next start finds it and quarantines the plugin.
//
// A file rather than a state-store row: the marker only has to survive the process dying
// (the page cache keeps it; power loss is not a crash loop), it is rewritten three times per
// plugin on every start, and a pwrite costs microseconds where a SQLite commit costs tens.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include "host/common/error.h"
#include "host/common/unique_fd.h"

namespace novacron {

struct BootGuardRecord {
  std::string plugin_id;
  std::string version;
  std::string phase;  // "load" | "init" | "start"
  std::int64_t pid = 0;
  std::int64_t started_at = 0;  // Unix seconds
};

class BootGuard {
 public:
  static constexpr size_t kRecordSize = 256;

  // Opens (creating, 0600) the marker file.
  static Expected<BootGuard> open(const std::filesystem::path& file);

  // Ids and versions are validated before they get here: no spaces, at most 192 bytes.
  Expected<void> enter(const std::string& id, const std::string& version, const std::string& phase);
  Expected<void> clear();
  // The marker left by the previous process, if any. A torn or foreign file reads as a
  // marker with an empty plugin id (the caller reports it and clears it).
  Expected<std::optional<BootGuardRecord>> read() const;

 private:
  BootGuard(UniqueFd fd, std::filesystem::path path) : fd_(std::move(fd)), path_(std::move(path)) {}
  UniqueFd fd_;
  std::filesystem::path path_;
};

}  // namespace novacron
