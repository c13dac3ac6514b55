// The plugin entry of io.novacron.policy.resource-fit (the policy itself: resource_fit.h).
#include "novacron/sdk/export.hpp"
#include "policies/resource-fit/resource_fit.h"

NOVACRON_PLUGIN(novacron::policies::ResourceFit)
