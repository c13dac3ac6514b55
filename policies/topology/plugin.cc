// The topology policy as a plugin (io.novacron.policy.topology); the logic is in
// topology_policy.{h,cc} (policy_topology_core), tested directly.
#include "novacron/sdk/export.hpp"
#include "policies/topology/topology_policy.h"

using novacron::policy::topology::TopologyPolicy;

NOVACRON_PLUGIN(TopologyPolicy)
