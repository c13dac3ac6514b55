// The plugin catalog in the state store: which plugins are installed where, the SHA-256
// pinned for each at install (re-checked before every load), the operator's enable/disable
// choice and quarantines.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
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
  std::string source;     // "installed" | "bundled"
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

// Reads are served from an in-memory copy loaded with one query per table on first use:
// the data dir lock guarantees that this process is the only writer, and every write goes
// through this object, which updates the copy after the database.
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

 private:
  Expected<void> load_cache();  // with cache_mutex_ held

  Database& db_;
  std::mutex cache_mutex_;
  bool cached_ = false;
  std::map<std::pair<std::string, std::string>, CatalogEntry> entries_;
  std::map<std::string, PluginStateRecord> states_;
};

}  // namespace novacron
