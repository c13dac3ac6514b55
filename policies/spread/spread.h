// io.novacron.policy.spread: prefers the node that is emptiest after placement, so that load
// is spread evenly (docs/design/scheduler.md 3.2). SchedulingPolicy interface 2 (SDK 1.4),
// scores on the unit scale (0.3 = the busiest resource 70 % used); interface-1 callers
// (score() over NodeCandidate) get the same scores.
//
// With u_r = (allocated_r + requested_r) / (capacity_r - reserved_r), clamped to [0, 1]:
//   score = 1 - max(w_cpu x u_cpu, w_mem x u_mem) / max(w_cpu, w_mem)
// i.e. 1 - max(u_cpu, u_mem) with the default equal weights; a weight of 0 leaves that
// resource out. A node without usable cpu or memory scores 0.
//
// Config (config_keys.json): cpu_weight 1.0, memory_weight 1.0 (0-1000, not both 0).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "novacron/sdk/scheduling_policy.hpp"
#include "policies/common/columns.hpp"

namespace novacron::policies {

class Spread final : public sdk::SchedulingPolicyBase {
 public:
  // Reads the plugin's config (what init() does); kInvalidArgument naming the key.
  sdk::Status configure(std::string_view config_json);

  std::uint32_t roles() const noexcept override { return sdk::kPolicyScores; }
  sdk::ScoreScale score_scale() const noexcept override { return sdk::ScoreScale::kUnit; }

  // The weighted utilisation of the busiest resource after placement, in [0, 1].
  double busiest(const CpuMemory& u) const {
    const double c = cpu_share_ * u.cpu;
    const double m = memory_share_ * u.memory;
    return c > m ? c : m;
  }
  // The score of a node with these utilisations after placement, in [0, 1].
  double score_of(const CpuMemory& u) const {
    if (!u.usable) return 0.0;
    const double s = 1.0 - busiest(u);
    return s < 0.0 ? 0.0 : (s > 1.0 ? 1.0 : s);
  }
  std::string reason_of(const CpuMemory& u) const;

 protected:
  sdk::Status on_init(std::string_view config_json) override { return configure(config_json); }
  sdk::Status on_score(const sdk::PlacementRequest& request, std::span<const sdk::NodeCandidate> nodes,
                       std::span<sdk::NodeScore> out) override;
  sdk::Status on_score_rows(const sdk::PlacementQuery& query, const sdk::NodeColumns& nodes,
                            std::span<const std::uint32_t> rows, std::span<double> out) override;
  sdk::Status on_explain_row(const sdk::PlacementQuery& query, const sdk::NodeColumns& nodes, std::uint32_t row,
                             sdk::FilterVerdict& verdict, sdk::NodeScore& score) override;

 private:
  double cpu_share_ = 1.0;     // cpu_weight / max(cpu_weight, memory_weight)
  double memory_share_ = 1.0;  // memory_weight / max(cpu_weight, memory_weight)
};

}  // namespace novacron::policies
