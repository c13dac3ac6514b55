#include "host/plugins/plugin_catalog.h"

#include <ctime>

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
    case PluginState::kEnabled:
      return "enabled";
    case PluginState::kDisabled:
      return "disabled";
    case PluginState::kQuarantined:
      return "quarantined";
  }
  return "unknown";
}

Expected<void> PluginCatalog::load_cache() {
  if (cached_) return {};
  auto loaded = db_.with_lock([&]() -> Expected<void> {
    auto stmt = db_.prepare(std::string("SELECT ") + kColumns + " FROM plugin_catalog");
    if (!stmt) return tl::unexpected(stmt.error());
    for (;;) {
      auto row = stmt->step();
      if (!row) return tl::unexpected(row.error());
      if (!*row) break;
      CatalogEntry e = entry_from_row(*stmt);
      entries_[{e.id, e.version}] = e;
    }
    auto st = db_.prepare("SELECT id, state, reason, updated_at FROM plugin_state");
    if (!st) return tl::unexpected(st.error());
    for (;;) {
      auto row = st->step();
      if (!row) return tl::unexpected(row.error());
      if (!*row) break;
      std::string s = st->text(1);
      PluginStateRecord rec;
      rec.state = s == "disabled"      ? PluginState::kDisabled
                  : s == "quarantined" ? PluginState::kQuarantined
                                       : PluginState::kEnabled;
      rec.reason = st->text(2);
      rec.updated_at = st->integer(3);
      states_[st->text(0)] = rec;
    }
    return {};
  });
  if (!loaded) {
    entries_.clear();
    states_.clear();
    return loaded;
  }
  cached_ = true;
  return {};
}

Expected<std::optional<CatalogEntry>> PluginCatalog::find(const std::string& id, const std::string& version) {
  std::lock_guard<std::mutex> lock(cache_mutex_);
  if (auto r = load_cache(); !r) return tl::unexpected(r.error());
  auto it = entries_.find({id, version});
  if (it == entries_.end()) return std::optional<CatalogEntry>();
  return std::optional<CatalogEntry>(it->second);
}

Expected<std::vector<CatalogEntry>> PluginCatalog::list() {
  std::lock_guard<std::mutex> lock(cache_mutex_);
  if (auto r = load_cache(); !r) return tl::unexpected(r.error());
  std::vector<CatalogEntry> out;
  for (const auto& [key, e] : entries_) out.push_back(e);
  return out;
}

Expected<void> PluginCatalog::pin(const CatalogEntry& e) {
  std::lock_guard<std::mutex> lock(cache_mutex_);
  if (auto r = load_cache(); !r) return r;
  auto written = db_.transaction([&]() -> Expected<void> {
    auto exists = db_.prepare("SELECT dir FROM plugin_catalog WHERE id = ? AND version = ?");
    if (!exists) return tl::unexpected(exists.error());
    exists->bind(1, e.id).bind(2, e.version);
    auto row = exists->step();
    if (!row) return tl::unexpected(row.error());
    if (*row) {
      return make_error("already_installed", e.id + " " + e.version + " is already installed in " + exists->text(0) +
                                                 "; an upgrade needs a new version");
    }
    auto stmt = db_.prepare(std::string("INSERT INTO plugin_catalog(") + kColumns +
                            ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, strftime('%s','now'), ?)");
    if (!stmt) return tl::unexpected(stmt.error());
    stmt->bind(1, e.id).bind(2, e.version).bind(3, e.dir).bind(4, e.library).bind(5, e.sha256);
    stmt->bind(6, e.manifest_sha256).bind(7, e.kind).bind(8, e.source).bind(9, e.pinned_by);
    return stmt->run();
  });
  if (written) {
    CatalogEntry cached = e;
    cached.installed_at = static_cast<std::int64_t>(std::time(nullptr));
    entries_[{e.id, e.version}] = cached;
  }
  return written;
}

Expected<void> PluginCatalog::repin(const CatalogEntry& e) {
  std::lock_guard<std::mutex> lock(cache_mutex_);
  if (auto r = load_cache(); !r) return r;
  auto written = db_.with_lock([&]() -> Expected<void> {
    auto stmt = db_.prepare(
        "UPDATE plugin_catalog SET dir = ?, library = ?, sha256 = ?, manifest_sha256 = ?, kind = ?, "
        "pinned_by = ?, installed_at = strftime('%s','now') WHERE id = ? AND version = ? AND source = 'bundled'");
    if (!stmt) return tl::unexpected(stmt.error());
    stmt->bind(1, e.dir).bind(2, e.library).bind(3, e.sha256).bind(4, e.manifest_sha256).bind(5, e.kind);
    stmt->bind(6, e.pinned_by).bind(7, e.id).bind(8, e.version);
    return stmt->run();
  });
  if (written) entries_[{e.id, e.version}] = e;
  return written;
}

Expected<void> PluginCatalog::remove(const std::string& id, const std::string& version) {
  std::lock_guard<std::mutex> lock(cache_mutex_);
  if (auto r = load_cache(); !r) return r;
  auto written = db_.with_lock([&]() -> Expected<void> {
    auto stmt = db_.prepare("DELETE FROM plugin_catalog WHERE id = ? AND version = ?");
    if (!stmt) return tl::unexpected(stmt.error());
    stmt->bind(1, id).bind(2, version);
    return stmt->run();
  });
  if (written) entries_.erase({id, version});
  return written;
}

Expected<PluginStateRecord> PluginCatalog::state(const std::string& id) {
  std::lock_guard<std::mutex> lock(cache_mutex_);
  if (auto r = load_cache(); !r) return tl::unexpected(r.error());
  auto it = states_.find(id);
  return it == states_.end() ? PluginStateRecord{} : it->second;
}

Expected<void> PluginCatalog::set_state(const std::string& id, PluginState state, const std::string& reason) {
  std::lock_guard<std::mutex> lock(cache_mutex_);
  if (auto r = load_cache(); !r) return r;
  auto written = db_.with_lock([&]() -> Expected<void> {
    auto stmt = db_.prepare(
        "INSERT INTO plugin_state(id, state, reason, updated_at) VALUES (?, ?, ?, strftime('%s','now')) "
        "ON CONFLICT(id) DO UPDATE SET state = excluded.state, reason = excluded.reason, "
        "updated_at = excluded.updated_at");
    if (!stmt) return tl::unexpected(stmt.error());
    stmt->bind(1, id).bind(2, plugin_state_name(state)).bind(3, reason);
    return stmt->run();
  });
  if (written) states_[id] = PluginStateRecord{state, reason, static_cast<std::int64_t>(std::time(nullptr))};
  return written;
}

}  // namespace novacron
