#include "host/placement/placement_store.h"

namespace novacron {
using nlohmann::json;

namespace {

constexpr const char* kColumns = "id, vm_name, vm_id, outcome, node, attempts, record, requested_by, created_at";

PlacementRecord from_row(const Statement& s) {
  PlacementRecord r;
  r.id = s.text(0);
  r.vm_name = s.text(1);
  r.vm_id = s.text(2);
  r.outcome = s.text(3);
  r.node = s.text(4);
  r.attempts = static_cast<int>(s.integer(5));
  r.record = json::parse(s.text(6), nullptr, false);
  r.requested_by = s.text(7);
  r.created_at = s.integer(8);
  return r;
}

}  // namespace

Expected<void> PlacementStore::insert(const PlacementRecord& r) {
  return db_.with_lock([&]() -> Expected<void> {
    auto stmt = db_.prepare(std::string("INSERT INTO placements(") + kColumns + ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)");
    if (!stmt) return tl::unexpected(stmt.error());
    stmt->bind(1, r.id).bind(2, r.vm_name).bind(3, r.vm_id).bind(4, r.outcome).bind(5, r.node);
    stmt->bind(6, static_cast<std::int64_t>(r.attempts)).bind(7, r.record.dump()).bind(8, r.requested_by);
    stmt->bind(9, r.created_at);
    return stmt->run();
  });
}

Expected<void> PlacementStore::set_vm(const std::string& id, const std::string& vm_id) {
  return db_.with_lock([&]() -> Expected<void> {
    auto stmt = db_.prepare("UPDATE placements SET vm_id = ? WHERE id = ?");
    if (!stmt) return tl::unexpected(stmt.error());
    stmt->bind(1, vm_id).bind(2, id);
    return stmt->run();
  });
}

Expected<std::optional<PlacementRecord>> PlacementStore::get(const std::string& id) {
  return db_.with_lock([&]() -> Expected<std::optional<PlacementRecord>> {
    auto stmt = db_.prepare(std::string("SELECT ") + kColumns + " FROM placements WHERE id = ?");
    if (!stmt) return tl::unexpected(stmt.error());
    stmt->bind(1, id);
    auto row = stmt->step();
    if (!row) return tl::unexpected(row.error());
    if (!*row) return std::optional<PlacementRecord>();
    return std::optional<PlacementRecord>(from_row(*stmt));
  });
}

Expected<std::vector<PlacementRecord>> PlacementStore::list(const std::string& vm, const std::string& outcome,
                                                            const std::string& before_id, size_t limit) {
  return db_.with_lock([&]() -> Expected<std::vector<PlacementRecord>> {
    auto stmt = db_.prepare(std::string("SELECT ") + kColumns +
                            " FROM placements WHERE (?1 = '' OR vm_name = ?1 OR vm_id = ?1)"
                            " AND (?2 = '' OR outcome = ?2) AND (?3 = '' OR id < ?3) ORDER BY id DESC LIMIT ?4");
    if (!stmt) return tl::unexpected(stmt.error());
    stmt->bind(1, vm).bind(2, outcome).bind(3, before_id).bind(4, static_cast<std::int64_t>(limit));
    std::vector<PlacementRecord> out;
    while (true) {
      auto row = stmt->step();
      if (!row) return tl::unexpected(row.error());
      if (!*row) break;
      out.push_back(from_row(*stmt));
    }
    return out;
  });
}

Expected<size_t> PlacementStore::prune(size_t max_rows, std::int64_t max_age_ms, std::int64_t now_ms) {
  return db_.with_lock([&]() -> Expected<size_t> {
    auto old = db_.prepare("DELETE FROM placements WHERE created_at < ?1");
    if (!old) return tl::unexpected(old.error());
    old->bind(1, now_ms - max_age_ms);
    if (auto r = old->run(); !r) return tl::unexpected(r.error());
    auto removed = static_cast<size_t>(db_.changes());
    // The count bound by rowid, which grows with every insert: the rows kept are the last
    // max_rows rowids (fewer when rows in between are gone), found through the table's own
    // b-tree in O(log n) instead of walking max_rows index entries after every decision.
    auto over = db_.prepare("DELETE FROM placements WHERE rowid <= (SELECT MAX(rowid) FROM placements) - ?1");
    if (!over) return tl::unexpected(over.error());
    over->bind(1, static_cast<std::int64_t>(max_rows));
    if (auto r = over->run(); !r) return tl::unexpected(r.error());
    removed += static_cast<size_t>(db_.changes());
    return removed;
  });
}

json PlacementStore::to_json(const PlacementRecord& r) {
  json out = r.record.is_object() ? r.record : json::object();
  out["id"] = r.id;
  out["vm"] = {{"name", r.vm_name}, {"id", r.vm_id.empty() ? json(nullptr) : json(r.vm_id)}};
  out["outcome"] = r.outcome;
  out["node"] = r.node.empty() ? json(nullptr) : json(r.node);
  out["attempts_count"] = r.attempts;
  out["requested_by"] = r.requested_by;
  out["created_at"] = r.created_at;
  return out;
}

}  // namespace novacron
