// The constraints policy as a plugin (io.novacron.policy.constraints); the logic is in
// constraints_policy.{h,cc} (policy_constraints_core) over expression.{h,cc}, tested directly.
#include "novacron/sdk/export.hpp"
#include "policies/constraints/constraints_policy.h"

using novacron::policy::constraints::ConstraintsPolicy;

NOVACRON_PLUGIN(ConstraintsPolicy)
