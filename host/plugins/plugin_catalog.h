// The plugin catalog in the state store: which plugins are installed where, the SHA-256
// pinned for each at install (re-checked before every load), the operator's enable/disable
// choice, quarantines, and the crash-loop guard's marker.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "host/state/database.h"

namespace novacron {

struct CatalogEntry {
  std::string id;
  std::string version;
  std::string dir;      // absolute folder <plugin dir>/<id>/<version>
  std::string library;  // file name inside dir
  std::string sha256;   // pinned hash of the library
  std::string manifest_sha256;
  std::string kind;
  std::string source;   // "installed" | "bundled"
  std::string pinned_by;  // bundled: build-id of the novacrond that pinned it
  std::int64_t installed_at = 0;
};

enum class PluginState { kEnabled, kDisabled, kQuarantined };
const char* plugin_state_name(PluginState s);

struct PluginStateRecord {
  PluginState state = PluginState::kEnabled;
  std::string reason;
  std::int64_t updated_at = 0;
};

struct BootGuardRecord {
  std::string plugin_id;
  std::string version;
  std::string phase;  // "load" | "init" | "start"
  std::int64_t pid = 0;
  std::int64_t started_at = 0;
};

class PluginCatalog {
 public:
  explicit PluginCatalog(Database& db) : db_(db) {}

  Expected<std::optional<CatalogEntry>> find(const std::string& id, const std::string& version);
  Expected<std::vector<CatalogEntry>> list();
  // Records a newly installed plugin; refuses an (id, version) that is already pinned.
  Expected<void> pin(const CatalogEntry& entry);
  Expected<void> remove(const std::string& id, const std::string& version);
  // Replaces the pin of a bundled plugin after a host upgrade.
  Expected<void> repin(const CatalogEntry& entry);

  // Enabled when never set.
  Expected<PluginStateRecord> state(const std::string& id);
  Expected<void> set_state(const std::string& id, PluginState state, const std::string& reason);

  // Crash-loop guard: the marker is written to the WAL (it survives the process dying, not a
  // power loss: synchronous=NORMAL) before the host runs a plugin's code during start-up, and
  // cleared once that step returned.
  Expected<void> guard_enter(const std::string& id, const std::string& version, const std::string& phase);
  Expected<void> guard_clear();
  Expected<std::optional<BootGuardRecord>> guard_read();

 private:
  Database& db_;
};

}  // namespace novacron
