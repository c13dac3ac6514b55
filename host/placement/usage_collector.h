// What each VM on this node uses, for the scheduler (docs/scheduler.md, "Usage"): the
// reconciler hands over every VM's driver counters; rates are derived here (cpu time over
// wall time and vCPUs, memory in use over memory given, disk and network bytes per second),
// fed into a UsageModel per VM (EWMA and p95 of 5-minute peaks, the workload class), and
// kept in the state store as 5-minute buckets (table vm_usage), so that a restart keeps
// the history. A counter that goes backwards (a VM restarted) or is unknown (-1) drops
// that sample; the next one starts a new interval.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>

#include <nlohmann/json.hpp>

#include "host/scheduler/usage_model.h"
#include "host/state/database.h"
#include "novacron/sdk/hypervisor_driver.hpp"

namespace novacron {

struct NodeUsage {
  std::array<float, 2> mean{};  // predicted use of the node's VMs: milli-vCPU, MiB
  std::array<float, 2> p95{};
  std::array<std::uint16_t, sdk::kWorkloadClassCount> classes{};
  size_t vms_with_history = 0;
  size_t vms = 0;
};

class UsageCollector {
 public:
  struct Options {
    double half_life_seconds = 3600;
    double unknown_vm_utilisation = 0.5;  // share of what a VM without history is predicted to use
    scheduler::ClassThresholds thresholds;
    int retention_days = 7;
  };

  UsageCollector(Database& db, Options options);

  // Loads the stored buckets of the last retention window into the models.
  void load();
  // One observation of a VM's counters at `at_ms` (Unix ms). `vcpus` and `memory_mib` are
  // what the VM was given.
  void observe(const std::string& vm_id, int vcpus, std::int64_t memory_mib, const sdk::VmStats& stats,
               std::int64_t at_ms);
  // Forgets a VM (deleted).
  void forget(const std::string& vm_id);
  // Stores every VM's five-minute bucket in progress (at shutdown); load() continues them
  // when the daemon is back within the same five minutes.
  void flush();

  // The node's predicted use and class counts over `vms` (id, vcpus, memory_mib).
  struct VmSize {
    std::string id;
    int vcpus = 0;
    std::int64_t memory_mib = 0;
  };
  NodeUsage node_usage(const std::vector<VmSize>& vms) const;
  // One VM: ewma, p95, class and the rule that chose it; null when never observed.
  nlohmann::json vm_usage(const std::string& vm_id) const;
  scheduler::Classification classify(const std::string& vm_id) const;

 private:
  struct Counters {
    std::int64_t at_ms = 0;
    std::int64_t cpu_time_ns = -1, disk_bytes = -1, net_bytes = -1;
  };
  struct Bucket {
    std::int64_t start_ms = -1;
    std::array<double, scheduler::kMetrics> sum{}, max{};
    int samples = 0;
  };
  struct Vm {
    scheduler::UsageModel model;
    Counters last;
    Bucket bucket;
    explicit Vm(double half_life) : model(half_life) {}
  };
  void store_bucket(const std::string& vm_id, const Bucket& b);
  Vm& vm(const std::string& id);

  Database& db_;
  Options options_;
  mutable std::mutex mutex_;
  std::map<std::string, Vm> vms_;
};

}  // namespace novacron
