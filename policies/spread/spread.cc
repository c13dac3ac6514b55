// spread: prefers the node that is emptiest after placement, so that load is spread evenly.
// See policies/common/utilisation_scorer.hpp.
#include "novacron/sdk/export.hpp"
#include "policies/common/utilisation_scorer.hpp"

namespace {
using Spread = novacron::policies::UtilisationScorer<novacron::policies::Prefer::kEmptiest>;
}  // namespace

NOVACRON_PLUGIN(Spread)
