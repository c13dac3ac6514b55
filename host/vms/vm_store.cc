#include "host/vms/vm_store.h"

#include <chrono>

namespace novacron {
namespace {

constexpr const char* kColumns =
    "id, name, tenant, driver, node, spec, state, state_reason, created_at, updated_at, placement_id";

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

VmRecord from_row(const Statement& s) {
  VmRecord vm;
  vm.id = s.text(0);
  vm.name = s.text(1);
  vm.tenant = s.text(2);
  vm.driver = s.text(3);
  vm.node = s.text(4);
  vm.spec = nlohmann::json::parse(s.text(5), nullptr, false);
  vm.state = s.text(6);
  vm.state_reason = s.text(7);
  vm.created_at = s.integer(8);
  vm.updated_at = s.integer(9);
  vm.placement_id = s.text(10);
  return vm;
}

}  // namespace

Expected<void> VmStore::insert(const VmRecord& vm) {
  return db_.with_lock([&]() -> Expected<void> {
    auto exists = db_.prepare("SELECT id FROM vms WHERE name = ?");
    if (!exists) return tl::unexpected(exists.error());
    exists->bind(1, vm.name);
    auto row = exists->step();
    if (!row) return tl::unexpected(row.error());
    if (*row) return make_error("name_taken", "a VM named " + vm.name + " exists (" + exists->text(0) + ")");
    auto stmt = db_.prepare(std::string("INSERT INTO vms(") + kColumns + ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
    if (!stmt) return tl::unexpected(stmt.error());
    stmt->bind(1, vm.id).bind(2, vm.name).bind(3, vm.tenant).bind(4, vm.driver).bind(5, vm.node);
    stmt->bind(6, vm.spec.dump()).bind(7, vm.state).bind(8, vm.state_reason);
    stmt->bind(9, vm.created_at).bind(10, vm.updated_at).bind(11, vm.placement_id);
    return stmt->run();
  });
}

Expected<void> VmStore::set_state(const std::string& id, const std::string& state, const std::string& reason) {
  return db_.with_lock([&]() -> Expected<void> {
    auto stmt = db_.prepare("UPDATE vms SET state = ?, state_reason = ?, updated_at = ? WHERE id = ?");
    if (!stmt) return tl::unexpected(stmt.error());
    stmt->bind(1, state).bind(2, reason).bind(3, now_ms()).bind(4, id);
    return stmt->run();
  });
}

Expected<void> VmStore::set_placement(const std::string& id, const std::string& placement_id) {
  return db_.with_lock([&]() -> Expected<void> {
    auto stmt = db_.prepare("UPDATE vms SET placement_id = ? WHERE id = ?");
    if (!stmt) return tl::unexpected(stmt.error());
    stmt->bind(1, placement_id).bind(2, id);
    return stmt->run();
  });
}

Expected<void> VmStore::remove(const std::string& id) {
  return db_.with_lock([&]() -> Expected<void> {
    auto stmt = db_.prepare("DELETE FROM vms WHERE id = ?");
    if (!stmt) return tl::unexpected(stmt.error());
    stmt->bind(1, id);
    return stmt->run();
  });
}

Expected<std::optional<VmRecord>> VmStore::get(const std::string& id) {
  return db_.with_lock([&]() -> Expected<std::optional<VmRecord>> {
    auto stmt = db_.prepare(std::string("SELECT ") + kColumns + " FROM vms WHERE id = ?");
    if (!stmt) return tl::unexpected(stmt.error());
    stmt->bind(1, id);
    auto row = stmt->step();
    if (!row) return tl::unexpected(row.error());
    if (!*row) return std::optional<VmRecord>();
    return std::optional<VmRecord>(from_row(*stmt));
  });
}

Expected<std::optional<VmRecord>> VmStore::find_by_name(const std::string& name) {
  return db_.with_lock([&]() -> Expected<std::optional<VmRecord>> {
    auto stmt = db_.prepare(std::string("SELECT ") + kColumns + " FROM vms WHERE name = ?");
    if (!stmt) return tl::unexpected(stmt.error());
    stmt->bind(1, name);
    auto row = stmt->step();
    if (!row) return tl::unexpected(row.error());
    if (!*row) return std::optional<VmRecord>();
    return std::optional<VmRecord>(from_row(*stmt));
  });
}

Expected<std::vector<VmRecord>> VmStore::list(const VmFilter& filter, const std::string& after_name, size_t limit) {
  return db_.with_lock([&]() -> Expected<std::vector<VmRecord>> {
    std::string sql = std::string("SELECT ") + kColumns + " FROM vms WHERE name > ?";
    if (!filter.name.empty()) sql += " AND name = ?";
    if (!filter.state.empty()) sql += " AND state = ?";
    if (!filter.driver.empty()) sql += " AND driver = ?";
    // Label keys are checked by the caller (letters, digits, - _ . /): safe inside the quotes.
    if (!filter.label_key.empty()) sql += " AND json_extract(spec, '$.labels.\"" + filter.label_key + "\"') = ?";
    sql += " ORDER BY name LIMIT ?";
    auto stmt = db_.prepare(sql);
    if (!stmt) return tl::unexpected(stmt.error());
    int i = 1;
    stmt->bind(i++, after_name);
    if (!filter.name.empty()) stmt->bind(i++, filter.name);
    if (!filter.state.empty()) stmt->bind(i++, filter.state);
    if (!filter.driver.empty()) stmt->bind(i++, filter.driver);
    if (!filter.label_key.empty()) stmt->bind(i++, filter.label_value);
    stmt->bind(i, static_cast<std::int64_t>(limit));
    std::vector<VmRecord> out;
    for (;;) {
      auto row = stmt->step();
      if (!row) return tl::unexpected(row.error());
      if (!*row) break;
      out.push_back(from_row(*stmt));
    }
    return out;
  });
}

}  // namespace novacron
