// The affinity policy as a plugin (io.novacron.policy.affinity); the logic is in
// affinity_policy.{h,cc} (policy_affinity_core), tested directly.
#include "novacron/sdk/export.hpp"
#include "policies/affinity/affinity_policy.h"

using novacron::policy::affinity::AffinityPolicy;

NOVACRON_PLUGIN(AffinityPolicy)
