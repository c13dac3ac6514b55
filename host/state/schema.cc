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
      // 2: long-running operations (host/operations).
      R"sql(
        CREATE TABLE operations (
          id                TEXT PRIMARY KEY,   -- sorts by creation time
          kind              TEXT NOT NULL,
          object            TEXT NOT NULL,
          state             TEXT NOT NULL,      -- running | succeeded | failed | cancelled | interrupted
          progress_permille INTEGER NOT NULL DEFAULT 0,
          message           TEXT NOT NULL DEFAULT '',
          result            TEXT NOT NULL DEFAULT 'null',
          error_code        TEXT NOT NULL DEFAULT '',
          error_message     TEXT NOT NULL DEFAULT '',
          requested_by      TEXT NOT NULL DEFAULT '',
          created_at        INTEGER NOT NULL,   -- Unix ms
          updated_at        INTEGER NOT NULL
        );
        CREATE INDEX operations_by_state ON operations(state);
      )sql",
      // 3: the VM inventory (host/vms).
      R"sql(
        CREATE TABLE vms (
          id           TEXT PRIMARY KEY,     -- UUID, also the hypervisor's uuid
          name         TEXT NOT NULL UNIQUE,
          tenant       TEXT NOT NULL DEFAULT 'default',
          driver       TEXT NOT NULL,        -- kvm | lxc
          node         TEXT NOT NULL,
          spec         TEXT NOT NULL,        -- the create request (JSON)
          state        TEXT NOT NULL,
          state_reason TEXT NOT NULL DEFAULT '',
          created_at   INTEGER NOT NULL,     -- Unix ms
          updated_at   INTEGER NOT NULL
        );
        CREATE INDEX vms_by_state ON vms(state);
      )sql",
      // 4: placement decisions (host/placement) and the placement that put each VM here.
      R"sql(
        CREATE TABLE placements (
          id           TEXT PRIMARY KEY,     -- pl-<unix ms>-<node>-<random>, sortable by time
          vm_name      TEXT NOT NULL,
          vm_id        TEXT NOT NULL DEFAULT '',
          outcome      TEXT NOT NULL,        -- placed | no_feasible_node | invalid | ...
          node         TEXT NOT NULL DEFAULT '',
          attempts     INTEGER NOT NULL DEFAULT 0,
          record       TEXT NOT NULL,        -- the compact decision (JSON)
          requested_by TEXT NOT NULL,
          created_at   INTEGER NOT NULL      -- Unix ms
        );
        CREATE INDEX placements_by_vm ON placements(vm_name);
        CREATE INDEX placements_by_time ON placements(created_at);
        ALTER TABLE vms ADD COLUMN placement_id TEXT NOT NULL DEFAULT '';
      )sql",
      // 5: what each VM used, in 5-minute buckets (host/placement/usage_collector); cpu and
      // memory are fractions of what the VM was given, io and net bytes per second.
      R"sql(
        CREATE TABLE vm_usage (
          vm_id        TEXT NOT NULL,
          bucket_start INTEGER NOT NULL,   -- Unix ms
          cpu_mean     REAL NOT NULL,
          cpu_max      REAL NOT NULL,
          mem_mean     REAL NOT NULL,
          mem_max      REAL NOT NULL,
          io_max       REAL NOT NULL,
          net_max      REAL NOT NULL,
          samples      INTEGER NOT NULL,
          PRIMARY KEY (vm_id, bucket_start)
        ) WITHOUT ROWID;
      )sql",
  };
  return kMigrations;
}

Expected<std::unique_ptr<Database>> open_host_database(const std::filesystem::path& data_dir) {
  return Database::open(data_dir / "state.db", host_schema_migrations());
}

}  // namespace novacron
