// The plugin entry of io.novacron.policy.spread (the policy itself: spread.h).
#include "novacron/sdk/export.hpp"
#include "policies/spread/spread.h"

NOVACRON_PLUGIN(novacron::policies::Spread)
