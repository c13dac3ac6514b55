// affinity: server-group rules (docs/design/scheduler.md 3.3), a filter for hard rules and a
// scorer (kUnit) for soft ones, on SchedulingPolicy interface 2.
//
// Each group of the request carries a rule: affinity (members together) or anti-affinity
// (members apart), hard or soft, a scope ("node", or a label key such as rack or zone whose
// value is the domain) and max_per_domain (0 = the default: anti-affinity 1, affinity
// unbounded). Per call, a domain -> member count map is built from the GroupState rows and
// counts, in O(members); nothing is cached across calls.
//
// Hard rules (filter):
//   anti-affinity   rejects a row whose domain already holds >= max members (anti_affinity_full);
//   affinity        once the group has members, rejects a row whose domain holds none
//                   (affinity_elsewhere) or holds max_per_domain already (max_per_domain);
//   either          rejects a row without the scope label (scope_label_missing).
// Conflicting hard rules simply reject every row; each rejecting row carries the first
// failing group's code, so the engine's summary names the rules that emptied the set.
//
// Soft rules (scorer): affinity scores count_in_domain / members (0.5 without members),
// anti-affinity 1 - count_in_domain / max(members, 1); a row without the scope label is
// neutral (0.5). Several soft groups: the mean.
//
// Members on rows without the scope label belong to no domain; members on nodes outside the
// table (GroupState::members counts them) count for the scores' denominators only.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "novacron/sdk/scheduling_policy.hpp"

namespace novacron::policy::affinity {

// Reject codes: index + 1 into AffinityPolicy::reason_codes().
enum Reject : std::uint8_t {
  kPass = 0,
  kAntiAffinityFull = 1,
  kAffinityElsewhere = 2,
  kScopeLabelMissing = 3,
  kMaxPerDomain = 4,
};

class AffinityPolicy final : public sdk::SchedulingPolicyBase {
 public:
  std::uint32_t roles() const noexcept override { return sdk::kPolicyFilters | sdk::kPolicyScores; }
  sdk::ScoreScale score_scale() const noexcept override { return sdk::ScoreScale::kUnit; }
  std::span<const sdk::ReasonCode> reason_codes() const noexcept override;
  // 0 without groups; the filter bit when a rule is hard, the score bit when one is soft.
  std::uint32_t applies(const sdk::PlacementQuery& query) noexcept override;

 protected:
  sdk::Status on_init(std::string_view config_json) override;
  sdk::Status on_check_request(const sdk::PlacementQuery& query) override;
  sdk::Status on_filter_rows(const sdk::PlacementQuery& query, const sdk::NodeColumns& nodes,
                             std::span<const std::uint32_t> rows, std::span<std::uint8_t> reject) override;
  sdk::Status on_score_rows(const sdk::PlacementQuery& query, const sdk::NodeColumns& nodes,
                            std::span<const std::uint32_t> rows, std::span<double> out) override;
  sdk::Status on_explain_row(const sdk::PlacementQuery& query, const sdk::NodeColumns& nodes, std::uint32_t row,
                             sdk::FilterVerdict& verdict, sdk::NodeScore& score) override;
};

}  // namespace novacron::policy::affinity
