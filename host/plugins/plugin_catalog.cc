#include "host/plugins/plugin_catalog.h"

#include <unistd.h>

namespace novacron {
namespace {

constexpr const char* kColumns =
    "id, version, dir, library, sha256, manifest_sha256, kind, source, installed_at, pinned_by";

CatalogEntry entry_from_row(const Statement& s) {
  return CatalogEntry{s.text(0), s.text(1), s.text(2), s.text(3), s.text(4),
                      s.text(5), s.text(6), s.text(7), s.text(9), s.integer(8)};
}

}  // namespace

const char* plugin_state_name(PluginState s) {
  switch (s) {
    case PluginState::kEnabled: return "enabled";
    case PluginState::kDisabled: return "disabled";
    case PluginState::kQuarantined: return "quarantined";
  }
  return "unknown";
}

Expected<std::optional<CatalogEntry>> PluginCatalog::find(const std::string& id, const std::string& version) {
  return db_.with_lock([&]() -> Expected<std::optional<CatalogEntry>> {
    auto stmt = db_.prepare(std::string("SELECT ") + kColumns + " FROM plugin_catalog WHERE id = ? AND version = ?");
    if (!stmt) return tl::unexpected(stmt.error());
    stmt->bind(1, id).bind(2, version);
    auto row = stmt->step();
    if (!row) return tl::unexpected(row.error());
    if (!*row) return std::optional<CatalogEntry>();
    return std::optional<CatalogEntry>(entry_from_row(*stmt));
  });
}

Expected<std::vector<CatalogEntry>> PluginCatalog::list() {
  return db_.with_lock([&]() -> Expected<std::vector<CatalogEntry>> {
    auto stmt = db_.prepare(std::string("SELECT ") + kColumns + " FROM plugin_catalog ORDER BY id, version");
    if (!stmt) return tl::unexpected(stmt.error());
    std::vector<CatalogEntry> out;
    for (;;) {
      auto row = stmt->step();
      if (!row) return tl::unexpected(row.error());
      if (!*row) break;
      out.push_back(entry_from_row(*stmt));
    }
    return out;
  });
}

Expected<void> PluginCatalog::pin(const CatalogEntry& e) {
  return db_.transaction([&]() -> Expected<void> {
    auto exists = db_.prepare("SELECT dir FROM plugin_catalog WHERE id = ? AND version = ?");
    if (!exists) return tl::unexpected(exists.error());
    exists->bind(1, e.id).bind(2, e.version);
    auto row = exists->step();
    if (!row) return tl::unexpected(row.error());
    if (*row) {
      return make_error("already_installed", e.id + " " + e.version + " is already installed in " +
                                                 exists->text(0) + "; an upgrade needs a new version");
    }
    auto stmt = db_.prepare(std::string("INSERT INTO plugin_catalog(") + kColumns +
                            ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, strftime('%s','now'), ?)");
    if (!stmt) return tl::unexpected(stmt.error());
    stmt->bind(1, e.id).bind(2, e.version).bind(3, e.dir).bind(4, e.library).bind(5, e.sha256);
    stmt->bind(6, e.manifest_sha256).bind(7, e.kind).bind(8, e.source).bind(9, e.pinned_by);
    return stmt->run();
  });
}

Expected<void> PluginCatalog::repin(const CatalogEntry& e) {
  return db_.with_lock([&]() -> Expected<void> {
    auto stmt = db_.prepare(
        "UPDATE plugin_catalog SET dir = ?, library = ?, sha256 = ?, manifest_sha256 = ?, kind = ?, "
        "pinned_by = ?, installed_at = strftime('%s','now') WHERE id = ? AND version = ? AND source = 'bundled'");
    if (!stmt) return tl::unexpected(stmt.error());
    stmt->bind(1, e.dir).bind(2, e.library).bind(3, e.sha256).bind(4, e.manifest_sha256).bind(5, e.kind);
    stmt->bind(6, e.pinned_by).bind(7, e.id).bind(8, e.version);
    return stmt->run();
  });
}

Expected<void> PluginCatalog::remove(const std::string& id, const std::string& version) {
  return db_.with_lock([&]() -> Expected<void> {
    auto stmt = db_.prepare("DELETE FROM plugin_catalog WHERE id = ? AND version = ?");
    if (!stmt) return tl::unexpected(stmt.error());
    stmt->bind(1, id).bind(2, version);
    return stmt->run();
  });
}

Expected<PluginStateRecord> PluginCatalog::state(const std::string& id) {
  return db_.with_lock([&]() -> Expected<PluginStateRecord> {
    auto stmt = db_.prepare("SELECT state, reason, updated_at FROM plugin_state WHERE id = ?");
    if (!stmt) return tl::unexpected(stmt.error());
    stmt->bind(1, id);
    auto row = stmt->step();
    if (!row) return tl::unexpected(row.error());
    PluginStateRecord rec;
    if (!*row) return rec;
    std::string s = stmt->text(0);
    rec.state = s == "disabled" ? PluginState::kDisabled
                : s == "quarantined" ? PluginState::kQuarantined
                                     : PluginState::kEnabled;
    rec.reason = stmt->text(1);
    rec.updated_at = stmt->integer(2);
    return rec;
  });
}

Expected<void> PluginCatalog::set_state(const std::string& id, PluginState state, const std::string& reason) {
  return db_.with_lock([&]() -> Expected<void> {
    auto stmt = db_.prepare(
        "INSERT INTO plugin_state(id, state, reason, updated_at) VALUES (?, ?, ?, strftime('%s','now')) "
        "ON CONFLICT(id) DO UPDATE SET state = excluded.state, reason = excluded.reason, "
        "updated_at = excluded.updated_at");
    if (!stmt) return tl::unexpected(stmt.error());
    stmt->bind(1, id).bind(2, plugin_state_name(state)).bind(3, reason);
    return stmt->run();
  });
}

Expected<void> PluginCatalog::guard_enter(const std::string& id, const std::string& version,
                                          const std::string& phase) {
  return db_.with_lock([&]() -> Expected<void> {
    auto stmt = db_.prepare(
        "INSERT OR REPLACE INTO boot_guard(slot, plugin_id, version, phase, pid, started_at) "
        "VALUES (1, ?, ?, ?, ?, strftime('%s','now'))");
    if (!stmt) return tl::unexpected(stmt.error());
    stmt->bind(1, id).bind(2, version).bind(3, phase).bind(4, static_cast<std::int64_t>(::getpid()));
    return stmt->run();
  });
}

Expected<void> PluginCatalog::guard_clear() {
  return db_.with_lock([&]() -> Expected<void> { return db_.exec("DELETE FROM boot_guard"); });
}

Expected<std::optional<BootGuardRecord>> PluginCatalog::guard_read() {
  return db_.with_lock([&]() -> Expected<std::optional<BootGuardRecord>> {
    auto stmt = db_.prepare("SELECT plugin_id, version, phase, pid, started_at FROM boot_guard WHERE slot = 1");
    if (!stmt) return tl::unexpected(stmt.error());
    auto row = stmt->step();
    if (!row) return tl::unexpected(row.error());
    if (!*row) return std::optional<BootGuardRecord>();
    return std::optional<BootGuardRecord>(
        BootGuardRecord{stmt->text(0), stmt->text(1), stmt->text(2), stmt->integer(3), stmt->integer(4)});
  });
}

}  // namespace novacron
