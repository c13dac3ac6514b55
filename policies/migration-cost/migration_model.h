// The migration-cost model of the scheduler (docs/design/scheduler.md 3.7): how long moving
// a VM takes and how long it stops, from a pre-copy live migration's rounds, and how the
// model's two uncertain inputs (each workload class's memory dirty rate, each link's usable
// share of its bandwidth) follow what real migrations and transfers showed. Pure: no I/O.
//
// Pre-copy: round 0 copies all memory M at bandwidth B; while it runs the guest dirties
// D MiB/s, so round i copies what round i-1 left dirty (V_i = min(M, D * t_{i-1})), until a
// round is short enough to be the stop-and-copy (V_i / B <= max_downtime) or max_rounds are
// used. The downtime is that last copy plus the switchover. With D close to B the rounds do
// not shrink: the estimate says it does not converge.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <string>

#include "novacron/sdk/scheduling_policy.hpp"

namespace novacron::policy::migration_cost {

using sdk::workload_class_name;
using sdk::WorkloadClass;
inline constexpr size_t kWorkloadClasses = sdk::kWorkloadClassCount;

struct ModelParams {
  double efficiency = 0.8;       // usable share of a link's nominal bandwidth, before calibration
  double max_downtime_ms = 300;  // a round this short becomes the stop-and-copy
  int max_rounds = 30;           // rounds of pre-copy before the VM is stopped anyway
  double switchover_ms = 50;     // device state and the switch itself
  double converge_ratio = 0.9;   // D >= ratio * B: flagged as not converging
};

struct MigrationInput {
  double memory_mib = 0;
  double dirty_mib_per_second = 0;
  double link_mbit_per_second = 0;  // nominal bandwidth between the two nodes
  double efficiency = 0.8;          // the link's calibrated share (ModelParams::efficiency by default)
  double disk_gib = 0;              // copied before memory (0: shared storage)
};

struct MigrationEstimate {
  double total_seconds = 0;  // disk, pre-copy rounds and the stop-and-copy
  double downtime_ms = 0;
  int rounds = 0;         // pre-copy rounds, the stop-and-copy not counted
  double copied_mib = 0;  // memory and disk bytes over the link
  bool converges = true;
  bool possible = true;  // false without bandwidth: nothing can be moved
};

MigrationEstimate estimate_migration(const MigrationInput& input, const ModelParams& params = {});

// What a finished migration (or, until migrations exist, a finished bulk transfer) showed.
struct Observation {
  enum class Kind : std::uint8_t { kMigration, kTransfer };
  Kind kind = Kind::kMigration;
  std::string link;  // which link's efficiency it informs (a node pair or a relation: "rack", "dc")
  double link_mbit_per_second = 0;
  WorkloadClass workload = WorkloadClass::kUnknown;
  double memory_mib = 0;  // migrations: the guest's memory
  double copied_mib = 0;  // bytes over the link
  double duration_seconds = 0;
  double downtime_ms = 0;  // migrations
};

// The calibrated inputs: per workload class its dirty rate, per link its efficiency. Each
// observation moves them a step (EWMA, `step`) toward what it showed; implausible
// observations (no time, no bytes, a share above 1) are ignored and counted.
class Calibration {
 public:
  explicit Calibration(double default_efficiency = 0.8, double step = 0.2);

  double dirty_rate(WorkloadClass c) const { return dirty_[static_cast<size_t>(c)]; }
  double efficiency(const std::string& link) const;
  // True when the observation was used.
  bool observe(const Observation& o);
  int ignored() const { return ignored_; }

  const std::map<std::string, double>& links() const { return efficiency_; }
  void set_dirty_rate(WorkloadClass c, double mib_per_second) { dirty_[static_cast<size_t>(c)] = mib_per_second; }
  void set_efficiency(const std::string& link, double share) { efficiency_[link] = share; }

 private:
  double default_efficiency_;
  double step_;
  std::array<double, kWorkloadClasses> dirty_;
  std::map<std::string, double> efficiency_;
  int ignored_ = 0;
};

}  // namespace novacron::policy::migration_cost
