#include "migration_model.h"

#include <algorithm>
#include <cmath>

namespace novacron::policy::migration_cost {

namespace {

constexpr double kMibPerMbit = 1e6 / 8.0 / 1048576.0;
// Dirty rates before any migration was observed, MiB/s (design 3.7): unknown and mixed
// guests are assumed busy rather than idle, so that a first estimate errs long.
constexpr std::array<double, kWorkloadClasses> kDefaultDirty = {100, 1, 100, 20, 200, 50, 50};
constexpr double kMinEfficiency = 0.05;

}  // namespace

MigrationEstimate estimate_migration(const MigrationInput& in, const ModelParams& p) {
  MigrationEstimate out;
  const double bandwidth = in.link_mbit_per_second * kMibPerMbit * std::clamp(in.efficiency, 0.0, 1.0);  // MiB/s
  if (!(bandwidth > 0) || !std::isfinite(bandwidth)) {
    out.possible = out.converges = false;
    out.total_seconds = out.downtime_ms = INFINITY;
    return out;
  }
  const double memory = std::max(0.0, in.memory_mib);
  const double dirty = std::max(0.0, in.dirty_mib_per_second);
  const double disk = std::max(0.0, in.disk_gib) * 1024.0;
  out.total_seconds = disk / bandwidth;
  out.copied_mib = disk + memory;
  double round_seconds = memory / bandwidth;  // round 0: all of memory
  out.total_seconds += round_seconds;
  out.rounds = 1;
  while (true) {
    // What the last round left dirty: never more than all of memory.
    const double left = std::min(memory, dirty * round_seconds);
    const double copy_seconds = left / bandwidth;
    if (copy_seconds * 1000.0 <= p.max_downtime_ms || out.rounds >= p.max_rounds) {
      out.downtime_ms = copy_seconds * 1000.0 + p.switchover_ms;
      out.total_seconds += copy_seconds + p.switchover_ms / 1000.0;
      out.copied_mib += left;
      break;
    }
    round_seconds = copy_seconds;
    out.total_seconds += round_seconds;
    out.copied_mib += left;
    ++out.rounds;
  }
  out.converges = dirty < p.converge_ratio * bandwidth && out.downtime_ms <= p.max_downtime_ms + p.switchover_ms;
  return out;
}

Calibration::Calibration(double default_efficiency, double step)
    : default_efficiency_(default_efficiency), step_(step), dirty_(kDefaultDirty) {}

double Calibration::efficiency(const std::string& link) const {
  const auto it = efficiency_.find(link);
  return it == efficiency_.end() ? default_efficiency_ : it->second;
}

bool Calibration::observe(const Observation& o) {
  const bool plausible = o.duration_seconds > 0 && std::isfinite(o.duration_seconds) && o.copied_mib > 0 &&
                         std::isfinite(o.copied_mib) && o.link_mbit_per_second > 0 && !o.link.empty();
  if (!plausible) {
    ++ignored_;
    return false;
  }
  const double seen_share = o.copied_mib / o.duration_seconds / (o.link_mbit_per_second * kMibPerMbit);
  if (seen_share > 1.05) {  // faster than the link: the link's figure or the observation is wrong
    ++ignored_;
    return false;
  }
  double& share = efficiency_.try_emplace(o.link, default_efficiency_).first->second;
  share = std::clamp(share + step_ * (seen_share - share), kMinEfficiency, 1.0);
  if (o.kind == Observation::Kind::kMigration && o.memory_mib > 0) {
    // Bytes beyond one copy of memory were pages dirtied during the pre-copy time.
    const double precopy_seconds = o.duration_seconds - o.downtime_ms / 1000.0;
    if (precopy_seconds > 0) {
      const double seen_dirty = std::max(0.0, o.copied_mib - o.memory_mib) / precopy_seconds;
      double& d = dirty_[static_cast<size_t>(o.workload)];
      d = std::max(0.0, d + step_ * (seen_dirty - d));
    }
  }
  return true;
}

}  // namespace novacron::policy::migration_cost
