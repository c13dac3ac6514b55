#include "host/state/schema.h"

namespace novacron {

const std::vector<Database::Migration>& host_schema_migrations() {
  static const std::vector<Database::Migration> kMigrations = {
      // 1: plugin catalog, plugin state, plugin key-value store.
      R"sql(
        CREATE TABLE plugin_catalog (
          id           TEXT NOT NULL,
          version      TEXT NOT NULL,
          dir          TEXT NOT NULL,      -- absolute folder holding plugin.json and the library
          library      TEXT NOT NULL,      -- file name of the library inside dir
          sha256       TEXT NOT NULL,      -- pinned hash of the installed library
          manifest_sha256 TEXT NOT NULL,   -- pinned hash of its plugin.json
          kind         TEXT NOT NULL,
          source       TEXT NOT NULL,      -- 'installed' | 'bundled'
          pinned_by    TEXT NOT NULL DEFAULT '',  -- bundled: build-id of the host that pinned it
          installed_at INTEGER NOT NULL,
          PRIMARY KEY (id, version)
        );
        CREATE TABLE plugin_state (
          id         TEXT PRIMARY KEY,
          state      TEXT NOT NULL CHECK (state IN ('enabled', 'disabled', 'quarantined')),
          reason     TEXT NOT NULL DEFAULT '',
          updated_at INTEGER NOT NULL
        );
        CREATE TABLE plugin_kv (
          namespace  TEXT NOT NULL,
          key        TEXT NOT NULL,
          value      BLOB NOT NULL,
          updated_at INTEGER NOT NULL,
          PRIMARY KEY (namespace, key)
        ) WITHOUT ROWID;
      )sql",
  };
  return kMigrations;
}

Expected<std::unique_ptr<Database>> open_host_database(const std::filesystem::path& data_dir) {
  return Database::open(data_dir / "state.db", host_schema_migrations());
}

}  // namespace novacron
