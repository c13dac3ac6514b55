// spread: Scorer: prefers the node that is emptiest after placement (load spread evenly).
// Score = 1.0 - u, where u is the weighted mean of CPU and memory utilisation of the node's
// usable capacity (capacity - reserved) after placing the request.
#include <string>

#include "novacron/sdk/export.hpp"
#include "novacron/sdk/json_config.hpp"
#include "novacron/sdk/scheduling_policy.hpp"
#include "policies/common/resource_math.hpp"

namespace {

using novacron::sdk::NodeCandidate;
using novacron::sdk::NodeScore;
using novacron::sdk::PlacementRequest;
using novacron::sdk::Status;

class Spread final : public novacron::sdk::SchedulingPolicyBase {
 public:
  std::uint32_t roles() const noexcept override { return novacron::sdk::kPolicyScores; }

 protected:
  Status on_init(std::string_view config_json) override {
    novacron::sdk::ConfigReader cfg(config_json);
    cpu_weight_ = cfg.number("cpu_weight", 1.0, 0, 1000);
    memory_weight_ = cfg.number("memory_weight", 1.0, 0, 1000);
    cfg.reject_unknown_keys();
    if (cpu_weight_ + memory_weight_ <= 0) cfg.fail("/", "cpu_weight and memory_weight cannot both be 0");
    if (!cfg.ok()) return novacron::sdk::invalid_argument(cfg.error());
    return Status::ok();
  }

  Status on_score(const PlacementRequest& request, std::span<const NodeCandidate> nodes,
                  std::span<NodeScore> out) override {
    for (size_t i = 0; i < nodes.size(); ++i) {
      double u = novacron::policies::utilisation_after(nodes[i], request.resources, cpu_weight_, memory_weight_);
      out[i] = {1.0 - u, "spreads: " + std::to_string(novacron::policies::percent(u)) + "% used after placement"};
    }
    return Status::ok();
  }

 private:
  double cpu_weight_ = 1.0;
  double memory_weight_ = 1.0;
};

}  // namespace

NOVACRON_PLUGIN(Spread)
