// binpack-lite: the SDK's worked example of a scheduling policy.
//   filter: rejects nodes where, after placement, less than `headroom_mib` of memory is free;
//   score:  the less memory left free after placement, the higher the score (bin-packing).
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "novacron/sdk/export.hpp"
#include "novacron/sdk/json_config.hpp"
#include "novacron/sdk/scheduling_policy.hpp"

namespace {

using novacron::sdk::FilterVerdict;
using novacron::sdk::NodeCandidate;
using novacron::sdk::NodeScore;
using novacron::sdk::PlacementRequest;
using novacron::sdk::Status;

std::int64_t free_after(const NodeCandidate& node, const PlacementRequest& request) {
  return node.capacity.memory_mib - node.reserved.memory_mib - node.allocated.memory_mib - request.resources.memory_mib;
}

class BinpackLite final : public novacron::sdk::SchedulingPolicyBase {
 public:
  std::uint32_t roles() const noexcept override { return novacron::sdk::kPolicyFilters | novacron::sdk::kPolicyScores; }

 protected:
  Status on_init(std::string_view config_json) override {
    novacron::sdk::ConfigReader cfg(config_json);
    headroom_mib_ = cfg.integer("headroom_mib", 0, 0, 1 << 30);
    cfg.reject_unknown_keys();
    if (!cfg.ok()) return novacron::sdk::invalid_argument(cfg.error());
    return Status::ok();
  }

  Status on_start() override {
    host().log(novacron::sdk::LogLevel::kInfo, "binpack-lite ready", {{"headroom_mib", std::to_string(headroom_mib_)}});
    return Status::ok();
  }

  Status on_filter(const PlacementRequest& request, std::span<const NodeCandidate> nodes,
                   std::span<FilterVerdict> out) override {
    for (size_t i = 0; i < nodes.size(); ++i) {
      std::int64_t left = free_after(nodes[i], request);
      out[i] = left >= headroom_mib_ ? FilterVerdict{true, ""}
                                     : FilterVerdict{false, std::to_string(left) + " MiB would be left, headroom is " +
                                                                std::to_string(headroom_mib_) + " MiB"};
    }
    return Status::ok();
  }

  Status on_score(const PlacementRequest& request, std::span<const NodeCandidate> nodes,
                  std::span<NodeScore> out) override {
    for (size_t i = 0; i < nodes.size(); ++i) {
      std::int64_t left = free_after(nodes[i], request);
      out[i] = {-static_cast<double>(left), std::to_string(left) + " MiB left after placement"};
    }
    return Status::ok();
  }

 private:
  std::int64_t headroom_mib_ = 0;
};

}  // namespace

NOVACRON_PLUGIN(BinpackLite)
