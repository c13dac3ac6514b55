// The plugin entry of io.novacron.policy.binpack (the policy itself: binpack.h).
#include "novacron/sdk/export.hpp"
#include "policies/binpack/binpack.h"

NOVACRON_PLUGIN(novacron::policies::Binpack)
