// workload-aware: a scorer (kUnit) on SchedulingPolicy interface 2 that places a VM by what
// the node's VMs are predicted to use, not by what they requested, and next to VMs whose
// workload complements its own (docs/design/scheduler.md 3.6).
//
//   score = (1 - α)·s_fit + α·s_comp                       α = complement_weight (0.3)
//
// s_fit: with u = max over cpu and memory of (pred_r + req_r) / usable_r (usable = capacity -
// reserved), s_fit = 1 - max(0, u - target) / (1 - target), clamped to [0, 1]:
//   pred_r  the node's predicted use, predicted_p95 (`predict` "p95") or predicted_mean
//           ("ewma"); unknown (NaN, or a host without usage columns): allocated_r ×
//           unknown_vm_utilisation, and the explanation says so.
//   req_r   the VM's own predicted use (PlacementQuery::predicted) when known, else its
//           requested resources × unknown_vm_utilisation (0.5).
// A node whose prediction after placement exceeds its usable capacity (u > 1), or that has
// no usable cpu or memory, scores 0 overall (the complement does not rescue it).
//
// s_comp: the mean over the node's VMs (class_counts) of M[request class][VM class]; a node
// without VMs: 0.5. Default M (symmetric): cpu-bound/memory-bound 1.0, io-bound/cpu-bound
// 0.8, io-bound/memory-bound 0.8, the same class 0.2 (idle with idle 0.6), anything with
// idle or unknown, and every other pair, 0.5. `complement` overrides single entries, one
// direction each: {"cpu-bound": {"memory-bound": 0.9}} is M[cpu-bound][memory-bound].
//
// Config (config_keys.json): complement_weight 0.3 (0-1), target_utilisation 0.8
// (0.05-0.99), predict "p95" | "ewma", unknown_vm_utilisation 0.5 (0-1), complement {}.
// Scoring a row reads a few columns and a 7-entry row of M: nothing allocates.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "novacron/sdk/scheduling_policy.hpp"

namespace novacron::policy::workload_aware {

inline constexpr size_t kClasses = sdk::kWorkloadClassCount;
using ComplementMatrix = std::array<std::array<double, kClasses>, kClasses>;  // [request class][VM class]

// The default complement matrix (see above).
ComplementMatrix default_complements();
// The class with this name ("cpu-bound"); false when there is none.
bool workload_class_of(std::string_view name, sdk::WorkloadClass& out);

struct WorkloadAwareConfig {
  double complement_weight = 0.3;
  double target_utilisation = 0.8;
  bool use_p95 = true;  // predict: "p95" (true) or "ewma"
  double unknown_vm_utilisation = 0.5;
  ComplementMatrix complements = default_complements();

  // Parses the plugin config (a JSON object); errors name the JSON path. Unknown keys are errors.
  static sdk::Result<WorkloadAwareConfig> parse(std::string_view config_json);
};

// Everything a row's score is made of (what explanations show).
struct RowTerms {
  double predicted_after[2] = {0, 0};  // (pred + req) / usable, cpu and memory; not clamped
  bool node_known[2] = {true, true};   // the node's prediction was known (else allocated was used)
  bool vm_known = true;                // the VM's own prediction was known
  bool usable = true;                  // cpu and memory have usable capacity
  double fit = 0;
  double complement = 0.5;
  std::uint32_t vms = 0;  // VMs on the node (class counts)
  double score = 0;
};

class WorkloadAwarePolicy final : public sdk::SchedulingPolicyBase {
 public:
  std::uint32_t roles() const noexcept override { return sdk::kPolicyScores; }
  sdk::ScoreScale score_scale() const noexcept override { return sdk::ScoreScale::kUnit; }

  // Reads the plugin's config (what init() does); kInvalidArgument naming the key.
  sdk::Status configure(std::string_view config_json);
  const WorkloadAwareConfig& config() const { return config_; }

  // The terms of one row (no allocation).
  RowTerms terms(const sdk::PlacementQuery& query, const sdk::NodeColumns& nodes, std::uint32_t row) const;
  std::string reason_of(const sdk::PlacementQuery& query, const sdk::NodeColumns& nodes, std::uint32_t row,
                        const RowTerms& t) const;

 protected:
  sdk::Status on_init(std::string_view config_json) override { return configure(config_json); }
  sdk::Status on_score_rows(const sdk::PlacementQuery& query, const sdk::NodeColumns& nodes,
                            std::span<const std::uint32_t> rows, std::span<double> out) override;
  sdk::Status on_explain_row(const sdk::PlacementQuery& query, const sdk::NodeColumns& nodes, std::uint32_t row,
                             sdk::FilterVerdict& verdict, sdk::NodeScore& score) override;

 private:
  WorkloadAwareConfig config_;
};

}  // namespace novacron::policy::workload_aware
