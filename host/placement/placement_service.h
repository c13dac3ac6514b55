// Placement across the cluster's nodes (docs/scheduler.md): decides with the placement
// engine over the policy plugins the config names, then claims the chosen node:
//   - this node: the claim re-runs the filters on its own row, against exact state and under
//     a lock, then creates the VM (VmService::create);
//   - a peer: POST /v1/vms:claim over mutual TLS; the peer does the same under its own lock
//     and answers 409 capacity_conflict when the VM no longer fits (a race with another
//     placement): the next candidate is tried, up to scheduler.claim.max_attempts.
// Every decision the engine makes is stored (GET /v1/placements/{id}), refusals included (a
// spec that does not parse never reaches the engine and is only answered 400); a simulation
// decides the same way and changes nothing. The node that runs a VM owns its record.
#pragma once

#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "host/config/host_config.h"
#include "host/placement/node_registry.h"
#include "host/placement/placement_store.h"
#include "host/placement/usage_collector.h"
#include "host/vms/vm_service.h"

namespace novacron {

class EventBus;
class OperationManager;
class PeerMonitor;
class PluginManager;

// An answer for the API: the HTTP status, and either the body or an error with the body's
// extra fields (the placement record of a failed placement).
struct PlacementAnswer {
  int status = 200;
  std::string error_code;  // "" on success
  std::string message;
  nlohmann::json body = nlohmann::json::object();
};

class PlacementService {
 public:
  PlacementService(const HostConfig& config, VmStore& vms, VmService& service, PluginManager& plugins,
                   OperationManager& operations, PeerMonitor* peers, Database& db, EventBus& events);

  // POST /v1/vms: decide, claim, create. `explain`: "" (the placement summary), "compact"
  // (the stored record) or "full" (plus every node's verdicts and scores). Blocking.
  PlacementAnswer create(const nlohmann::json& spec, const std::string& principal, long wait_seconds,
                         const std::string& explain);
  // POST /v1/placements:simulate: the same decision, nothing claimed or stored.
  PlacementAnswer simulate(const nlohmann::json& spec, const std::string& explain);
  // POST /v1/vms:claim (from the deciding node): this node, checked and created atomically.
  PlacementAnswer claim(const nlohmann::json& body, const std::string& principal);

  // VMs go through the scheduler when the config has a scheduler section or peers; without
  // either there is one node and POST /v1/vms creates locally as before.
  bool enabled() const;

  nlohmann::json local_summary() { return registry_.local_summary(); }
  PlacementStore& store() { return store_; }
  UsageCollector& usage() { return usage_; }
  // GET /v1/scheduler: the effective policies with their roles, weights and state.
  nlohmann::json describe();

  // POST /v1/placements:rebalance?dry_run=true: moves of this node's VMs that would raise
  // the cluster's score (scope "local"), or every node's merged (scope "cluster", asking the
  // peers for theirs), at most `max`. Nothing is executed.
  PlacementAnswer rebalance(const std::string& scope, size_t max);
  // Runs rebalance("local") every scheduler.rebalance.interval_minutes (0: never) and
  // publishes each non-empty proposal as scheduler.rebalance_proposed.
  void start_periodic_rebalance();
  // A transfer event's payload (transfer.succeeded, sent by this node): what the link really
  // did, handed to every policy that calibrates a cost model (observe_migration, kind
  // "transfer"). Blocking (policies may store their calibration).
  void observe_transfer(const nlohmann::json& event);
  void stop_periodic_rebalance();
  ~PlacementService();

 private:
  struct Decided;
  Decided decide(const nlohmann::json& spec, bool local_only, const std::string& explain);
  PlacementAnswer claim_local(const nlohmann::json& spec, const std::string& principal,
                              const std::string& placement_id);
  PlacementAnswer claim_remote(const std::string& node, const nlohmann::json& spec, const std::string& principal,
                               const std::string& placement_id, long wait_seconds);
  void record(const std::string& id, const std::string& vm_name, const std::string& vm_id, const std::string& outcome,
              const std::string& node, int attempts, const nlohmann::json& record, const std::string& principal);

  const HostConfig& config_;
  VmService& service_;
  PluginManager& plugins_;
  OperationManager& operations_;
  PeerMonitor* peers_;
  EventBus& events_;
  UsageCollector usage_;
  NodeRegistry registry_;
  PlacementStore store_;
  VmStore& vms_;
  std::mutex decide_mutex_;  // one decision + claim at a time on this entry node
  std::mutex claim_mutex_;   // one claim at a time on this node (check + record)
  std::mutex timer_mutex_;
  std::condition_variable timer_wake_;
  bool timer_stopping_ = false;
  std::thread timer_;
};

}  // namespace novacron
