// migration-cost: a scorer (kUnit) on SchedulingPolicy interface 2 over the pre-copy model of
// migration_model.h, and a filter when choosing a migration target under a hard downtime limit
// (docs/design/scheduler.md 3.7).
//
// Placement (query.source_row < 0): new VMs avoid nodes likely to need an eviction soon.
//   u     = max over cpu and memory of (predicted_p95, or allocated when unknown, + requested)
//           / (capacity - reserved)
//   risk  = σ((u - 0.9) / 0.05)
//   T     = the estimated time to move this VM (memory = requested MiB, its class's dirty
//           rate) over a same-rack link
//   score = 1 - min(1, risk · T / time_cap_s)
// Migration target (query.source_row >= 0, the row the VM runs on):
//   score = 1 - min(1, T / time_cap_s), T from source_row to the row over the link the
//           topology model gives them (relation defaults or `links`); source_row itself is
//           not a target and scores 0. With
//           hard_downtime_limit_ms > 0 the policy also filters: a target whose estimated
//           downtime exceeds the limit is rejected (code `downtime`); a target on which the
//           pre-copy does not converge is flagged in the explanation.
//
// Calibration: observe_migration() moves the class's dirty rate (kind "migration") and the
// link's efficiency (both kinds) a step toward what was seen (Calibration, EWMA 0.2). A link
// is calibrated per relation (same_node, same_rack, same_datacenter, between_datacenters):
// its efficiency is the usable share of the nominal bandwidth, which `links` overrides may
// set per pair of domains. Observations name nodes: the policy keeps the names and topology
// labels of the latest node layout it was called with (one copy per layout epoch) to find
// their relation; an observation between nodes it has not seen is ignored (and logged).
// The calibration is kept in the plugin's kv store under "calibration/v1" (written after each
// observation that was used, read in init; kv errors are logged and otherwise ignored).
//
// Config (config_keys.json): max_downtime_ms 300, max_rounds 30, switchover_ms 50,
// efficiency 0.8, dirty_rate_mib_s {"<class>": MiB/s} (defaults idle 1, cpu-bound 20,
// io-bound 50, mixed 50, bursty 100, unknown 100, memory-bound 200), time_cap_s 600,
// hard_downtime_limit_ms 0 (off), copy_disk false (true: the VM's disk is copied too, not on
// shared storage), and the topology keys of the topology policy: levels, latency_ms,
// bandwidth_mbps, links.
//
// Thread safety: scoring calls run concurrently with each other and with observations; the
// calibrated parameters are copied under a mutex once per call. Rows are scored without
// allocating.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "migration_model.h"
#include "novacron/sdk/scheduling_policy.hpp"
#include "policies/topology/topology_policy.h"

namespace novacron::policy::migration_cost {

inline constexpr std::string_view kCalibrationKey = "calibration/v1";

struct MigrationCostConfig {
  ModelParams model;
  std::array<double, kWorkloadClasses> dirty_rate{};  // per class; < 0: the model's default
  double time_cap_s = 600;
  double hard_downtime_limit_ms = 0;  // 0: off
  bool copy_disk = false;
  topology::TopologyConfig topology;

  MigrationCostConfig() { dirty_rate.fill(-1); }
  // Parses the plugin config (a JSON object); errors name the JSON path and are "; "-joined.
  // Unknown keys are errors.
  static sdk::Result<MigrationCostConfig> parse(std::string_view config_json);
};

// The calibrated inputs one call uses, copied once per call.
struct CalibratedParams {
  std::array<double, kWorkloadClasses> dirty_rate{};      // MiB/s per class
  std::array<double, topology::kRelations> efficiency{};  // per relation
};

// What one row's score is made of (explanations show it).
struct RowCost {
  bool target_mode = false;
  bool source = false;  // target mode: the row the VM runs on (not a target: scores 0, not filtered)
  // Placement mode.
  double utilisation_after = 0;  // u (p95, or allocated where unknown)
  bool predicted = true;         // the node's p95 was known for cpu and memory
  double risk = 0;
  // Both modes: the move (placement: of this VM over a same-rack link).
  topology::LinkInfo link;
  double efficiency = 0;
  double dirty_rate = 0;
  MigrationEstimate estimate;
  double score = 0;
};

class MigrationCostPolicy final : public sdk::SchedulingPolicyBase {
 public:
  std::uint32_t roles() const noexcept override { return sdk::kPolicyScores | sdk::kPolicyFilters; }
  sdk::ScoreScale score_scale() const noexcept override { return sdk::ScoreScale::kUnit; }
  std::span<const sdk::ReasonCode> reason_codes() const noexcept override;
  // Scores always; filters only when choosing a migration target with a hard downtime limit.
  std::uint32_t applies(const sdk::PlacementQuery& query) noexcept override;

  const MigrationCostConfig& config() const { return config_; }
  // The calibrated parameters scoring uses now.
  CalibratedParams calibrated() const;
  // Observations used for calibration since init (those loaded from the kv store included).
  std::uint64_t observations() const;
  // The calibration as stored under kCalibrationKey.
  std::string calibration_json() const;

  RowCost cost(const sdk::PlacementQuery& query, const sdk::NodeColumns& nodes, const topology::TopologyModel& model,
               const CalibratedParams& params, std::uint32_t row) const;

 protected:
  sdk::Status on_init(std::string_view config_json) override;
  sdk::Status on_check_request(const sdk::PlacementQuery& query) override;
  sdk::Status on_filter_rows(const sdk::PlacementQuery& query, const sdk::NodeColumns& nodes,
                             std::span<const std::uint32_t> rows, std::span<std::uint8_t> reject) override;
  sdk::Status on_score_rows(const sdk::PlacementQuery& query, const sdk::NodeColumns& nodes,
                            std::span<const std::uint32_t> rows, std::span<double> out) override;
  sdk::Status on_explain_row(const sdk::PlacementQuery& query, const sdk::NodeColumns& nodes, std::uint32_t row,
                             sdk::FilterVerdict& verdict, sdk::NodeScore& score) override;
  void on_observe_migration(const sdk::MigrationObservation& observation) override;

 private:
  struct Layout;  // names and topology labels of one node layout, for observations

  sdk::Status check_rows(const sdk::PlacementQuery& query, const sdk::NodeColumns& nodes);
  MigrationInput input_of(const sdk::PlacementQuery& query, double dirty_rate) const;
  // What every row of a call shares (placement: the move over a same-rack link).
  RowCost base_cost(const sdk::PlacementQuery& query, const CalibratedParams& params) const;
  RowCost row_cost(const RowCost& base, const sdk::PlacementQuery& query, const sdk::NodeColumns& nodes,
                   const topology::TopologyModel& model, const CalibratedParams& params, std::uint32_t row) const;
  void remember_layout(const sdk::NodeColumns& nodes);
  void load_calibration();
  void store_calibration();
  std::string calibration_json_locked() const;

  MigrationCostConfig config_;
  topology::LinkCache links_;

  mutable std::mutex mu_;  // calibration_, observations_
  Calibration calibration_;
  std::uint64_t observations_ = 0;

  std::mutex layout_mu_;
  std::shared_ptr<const Layout> layout_;

  std::mutex store_mu_;  // serialises kv writes, so the last one written is the newest
};

}  // namespace novacron::policy::migration_cost
