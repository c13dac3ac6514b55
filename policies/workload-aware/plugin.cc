// The workload-aware policy as a plugin (io.novacron.policy.workload-aware); the logic is in
// workload_aware_policy.{h,cc} (policy_workload_aware_core), tested directly.
#include "novacron/sdk/export.hpp"
#include "policies/workload-aware/workload_aware_policy.h"

using novacron::policy::workload_aware::WorkloadAwarePolicy;

NOVACRON_PLUGIN(WorkloadAwarePolicy)
