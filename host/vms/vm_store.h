// The VM inventory in the state store (table vms, schema migration 3). The node that runs a
// VM owns its record; names are unique per node.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "host/common/error.h"
#include "host/state/database.h"

namespace novacron {

struct VmRecord {
  std::string id;  // UUID
  std::string name;
  std::string tenant = "default";
  std::string driver;  // "kvm", "lxc"
  std::string node;
  nlohmann::json spec;  // the create request as given
  std::string state;    // creating | stopped | running | paused | crashed | stopping | deleting | error | unknown
  std::string state_reason;
  std::int64_t created_at = 0;  // Unix ms
  std::int64_t updated_at = 0;
  std::string placement_id;  // the placement decision that put it here ("" = none recorded)
};

struct VmFilter {
  std::string name;  // exact name
  std::string state;
  std::string driver;
  std::string label_key;  // with label_value: only VMs with this label
  std::string label_value;
};

class VmStore {
 public:
  explicit VmStore(Database& db) : db_(db) {}

  // Error "name_taken" when a VM of that name exists.
  Expected<void> insert(const VmRecord& vm);
  Expected<void> set_state(const std::string& id, const std::string& state, const std::string& reason);
  Expected<void> remove(const std::string& id);
  Expected<void> set_placement(const std::string& id, const std::string& placement_id);
  Expected<std::optional<VmRecord>> get(const std::string& id);
  Expected<std::optional<VmRecord>> find_by_name(const std::string& name);
  // Ordered by name, after `after_name`, at most `limit`.
  Expected<std::vector<VmRecord>> list(const VmFilter& filter, const std::string& after_name, size_t limit);

 private:
  Database& db_;
};

}  // namespace novacron
