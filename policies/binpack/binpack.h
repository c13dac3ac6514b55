// io.novacron.policy.binpack: prefers the node that is fullest after placement, so that VMs
// land on fewer, fuller nodes (docs/design/scheduler.md 3.2). SchedulingPolicy interface 2
// (SDK 1.4), scores on the unit scale (0.62 = 62 % used); interface-1 callers (score() over
// NodeCandidate) get the same scores.
//
// With u_r = (allocated_r + requested_r) / (capacity_r - reserved_r), clamped to [0, 1]:
//   score = clamp(mean_w(u_cpu, u_mem) - balance_weight x |u_cpu - u_mem|, 0, 1)
// where mean_w weighs cpu by cpu_weight and memory by memory_weight. The balance term
// penalises stranding one resource (a node full on memory with idle CPUs); it applies only
// when both weights are above 0. A node without usable cpu or memory scores 0.
//
// Config (config_keys.json): cpu_weight 1.0, memory_weight 1.0 (0-1000, not both 0),
// balance_weight 0.25 (0-10).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "novacron/sdk/scheduling_policy.hpp"
#include "policies/common/columns.hpp"

namespace novacron::policies {

class Binpack final : public sdk::SchedulingPolicyBase {
 public:
  // Reads the plugin's config (what init() does); kInvalidArgument naming the key.
  sdk::Status configure(std::string_view config_json);

  std::uint32_t roles() const noexcept override { return sdk::kPolicyScores; }
  sdk::ScoreScale score_scale() const noexcept override { return sdk::ScoreScale::kUnit; }

  // Mean utilisation weighted by cpu_weight and memory_weight.
  double mean(const CpuMemory& u) const { return cpu_share_ * u.cpu + memory_share_ * u.memory; }
  // The imbalance penalty (balance_weight x |u_cpu - u_mem|; 0 when a weight is 0).
  double penalty(const CpuMemory& u) const {
    return balance_ * (u.cpu > u.memory ? u.cpu - u.memory : u.memory - u.cpu);
  }
  // The score of a node with these utilisations after placement, in [0, 1].
  double score_of(const CpuMemory& u) const {
    if (!u.usable) return 0.0;
    const double s = mean(u) - penalty(u);
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
  double cpu_share_ = 0.5;     // cpu_weight / (cpu_weight + memory_weight)
  double memory_share_ = 0.5;  // memory_weight / (cpu_weight + memory_weight)
  double balance_ = 0.25;      // balance_weight, or 0 when a resource has weight 0
};

}  // namespace novacron::policies
