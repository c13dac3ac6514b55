#include "host/state/kv_store.h"

namespace novacron {

Expected<std::optional<std::string>> KvStore::get(std::string_view ns, std::string_view key) {
  return db_.with_lock([&]() -> Expected<std::optional<std::string>> {
    auto stmt = db_.prepare("SELECT value FROM plugin_kv WHERE namespace = ? AND key = ?");
    if (!stmt) return tl::unexpected(stmt.error());
    stmt->bind(1, ns).bind(2, key);
    auto row = stmt->step();
    if (!row) return tl::unexpected(row.error());
    if (!*row) return std::optional<std::string>();
    return std::optional<std::string>(stmt->text(0));
  });
}

Expected<void> KvStore::put(std::string_view ns, std::string_view key, std::string_view value) {
  if (key.empty() || key.size() > kMaxKeyBytes) {
    return make_error("invalid_argument", "key must be 1 to " + std::to_string(kMaxKeyBytes) + " bytes");
  }
  if (value.size() > kMaxValueBytes) {
    return make_error("invalid_argument", "value of " + std::to_string(value.size()) + " bytes exceeds the limit of " +
                                              std::to_string(kMaxValueBytes));
  }
  return db_.with_lock([&]() -> Expected<void> {
    auto stmt = db_.prepare(
        "INSERT INTO plugin_kv(namespace, key, value, updated_at) VALUES (?, ?, ?, strftime('%s','now')) "
        "ON CONFLICT(namespace, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at");
    if (!stmt) return tl::unexpected(stmt.error());
    stmt->bind(1, ns).bind(2, key).bind_blob(3, value);
    return stmt->run();
  });
}

Expected<void> KvStore::remove(std::string_view ns, std::string_view key) {
  return db_.with_lock([&]() -> Expected<void> {
    auto stmt = db_.prepare("DELETE FROM plugin_kv WHERE namespace = ? AND key = ?");
    if (!stmt) return tl::unexpected(stmt.error());
    stmt->bind(1, ns).bind(2, key);
    return stmt->run();
  });
}

Expected<std::vector<std::string>> KvStore::list(std::string_view ns, std::string_view prefix) {
  return db_.with_lock([&]() -> Expected<std::vector<std::string>> {
    // Byte-wise substr() instead of LIKE: prefixes may contain % and _.
    auto stmt = db_.prepare(
        "SELECT key FROM plugin_kv WHERE namespace = ? AND "
        "substr(CAST(key AS BLOB), 1, ?) = CAST(? AS BLOB) ORDER BY key");
    if (!stmt) return tl::unexpected(stmt.error());
    stmt->bind(1, ns).bind(2, static_cast<std::int64_t>(prefix.size())).bind(3, prefix);
    std::vector<std::string> keys;
    for (;;) {
      auto row = stmt->step();
      if (!row) return tl::unexpected(row.error());
      if (!*row) break;
      keys.push_back(stmt->text(0));
    }
    return keys;
  });
}

}  // namespace novacron
