// The migration-cost policy as a plugin (io.novacron.policy.migration-cost); the logic is in
// migration_cost_policy.{h,cc} (policy_migration_cost_core) over migration_model.{h,cc},
// tested directly.
#include "novacron/sdk/export.hpp"
#include "policies/migration-cost/migration_cost_policy.h"

using novacron::policy::migration_cost::MigrationCostPolicy;

NOVACRON_PLUGIN(MigrationCostPolicy)
