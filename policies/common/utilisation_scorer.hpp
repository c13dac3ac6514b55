// The scorer behind the bundled binpack and spread policies: both score a node by its
// utilisation after placing the request and differ only in the direction they prefer.
#pragma once

#include <string>

#include "novacron/sdk/json_config.hpp"
#include "novacron/sdk/scheduling_policy.hpp"
#include "policies/common/resource_math.hpp"

namespace novacron::policies {

enum class Prefer { kFullest, kEmptiest };

// Score = u (kFullest) or 1 - u (kEmptiest), where u is the weighted mean of CPU and memory
// utilisation of the node's usable capacity (capacity - reserved) after placement.
// Config: cpu_weight, memory_weight (numbers >= 0, not both 0; default 1).
template <Prefer kPrefer>
class UtilisationScorer final : public sdk::SchedulingPolicyBase {
 public:
  std::uint32_t roles() const noexcept override { return sdk::kPolicyScores; }

 protected:
  sdk::Status on_init(std::string_view config_json) override {
    sdk::ConfigReader cfg(config_json);
    cpu_weight_ = cfg.number("cpu_weight", 1.0, 0, 1000);
    memory_weight_ = cfg.number("memory_weight", 1.0, 0, 1000);
    cfg.reject_unknown_keys();
    if (cpu_weight_ + memory_weight_ <= 0) cfg.fail("/", "cpu_weight and memory_weight cannot both be 0");
    if (!cfg.ok()) return sdk::invalid_argument(cfg.error());
    return sdk::Status::ok();
  }

  sdk::Status on_score(const sdk::PlacementRequest& request, std::span<const sdk::NodeCandidate> nodes,
                       std::span<sdk::NodeScore> out) override {
    for (size_t i = 0; i < nodes.size(); ++i) {
      double u = utilisation_after(nodes[i], request.resources, cpu_weight_, memory_weight_);
      const bool pack = kPrefer == Prefer::kFullest;
      out[i] = {pack ? u : 1.0 - u,
                std::string(pack ? "packs" : "spreads") + ": " + std::to_string(percent(u)) + "% used after placement"};
    }
    return sdk::Status::ok();
  }

 private:
  double cpu_weight_ = 1.0;
  double memory_weight_ = 1.0;
};

}  // namespace novacron::policies
