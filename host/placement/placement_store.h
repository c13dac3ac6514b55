// Stored placement decisions (table placements, schema migration 4): one row per decision
// this node made, failures included, with the compact record as JSON. Simulations are not
// stored. Old rows are pruned by count and age (scheduler.decisions).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "host/common/error.h"
#include "host/state/database.h"

namespace novacron {

struct PlacementRecord {
  std::string id;  // pl-<unix ms>-<node>-<random>: sortable by time, names the deciding node
  std::string vm_name;
  std::string vm_id;    // "" when nothing was created
  std::string outcome;  // placed | no_feasible_node | invalid | scheduler_unavailable | claim_failed
  std::string node;     // where the VM went ("" when nowhere)
  int attempts = 0;
  nlohmann::json record;  // the compact decision, plus the claim attempts
  std::string requested_by;
  std::int64_t created_at = 0;  // Unix ms
};

class PlacementStore {
 public:
  explicit PlacementStore(Database& db) : db_(db) {}

  Expected<void> insert(const PlacementRecord& r);
  Expected<void> set_vm(const std::string& id, const std::string& vm_id);
  Expected<std::optional<PlacementRecord>> get(const std::string& id);
  // Newest first; `vm` filters by VM name or id, `outcome` by outcome; ids before `before_id`.
  Expected<std::vector<PlacementRecord>> list(const std::string& vm, const std::string& outcome,
                                              const std::string& before_id, size_t limit);
  // Keeps at most `max_rows` (the latest inserted), none older than `max_age_ms`. Returns the
  // rows removed.
  Expected<size_t> prune(size_t max_rows, std::int64_t max_age_ms, std::int64_t now_ms);

  static nlohmann::json to_json(const PlacementRecord& r);

 private:
  Database& db_;
};

}  // namespace novacron
