// binpack: prefers the node that is fullest after placement, so that VMs land on fewer,
// fuller nodes. See policies/common/utilisation_scorer.hpp.
#include "novacron/sdk/export.hpp"
#include "policies/common/utilisation_scorer.hpp"

namespace {
using Binpack = novacron::policies::UtilisationScorer<novacron::policies::Prefer::kFullest>;
}  // namespace

NOVACRON_PLUGIN(Binpack)
