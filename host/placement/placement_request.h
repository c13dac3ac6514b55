// What placement reads from a VM spec (POST /v1/vms, POST /v1/placements:simulate): the
// resources, driver and labels, and the optional "placement" block:
//
//   "placement": {"node": "node-b",                       // pin (still checked by the filters)
//                 "groups": [{"name": "db", "affinity": "anti-affinity", "hard": true,
//                             "scope": "rack", "max_per_domain": 1}],
//                 "constraints": "zone == \"eu-1\" && mem_free_mib > 4096",
//                 "capabilities": ["live_migration"],
//                 "workload_class": "memory-bound"}              // else learned from its usage
//
// The rest of the spec (disks, boot, network) is checked by the node that creates the VM.
// Errors are "invalid_spec" with "/field: what" lines, like the spec's own.
#pragma once

#include <optional>
#include <set>
#include <string>

#include <nlohmann/json.hpp>

#include "host/common/error.h"
#include "host/scheduler/policy.h"

namespace novacron {

struct PlacementSpec {
  scheduler::PlacementQuery query;  // members are filled later, from the nodes
  std::string pinned_node;          // "" = any
};

Expected<PlacementSpec> parse_placement_spec(const nlohmann::json& body);

// The group names a stored VM spec belongs to (for counting members per node).
std::set<std::string> group_names_of(const nlohmann::json& spec);

// The resources a stored VM spec requested: milli-vCPU, MiB, GiB of the disks it creates.
scheduler::ResourceVector resources_of(const nlohmann::json& spec);

}  // namespace novacron
