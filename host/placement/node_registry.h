// The cluster's nodes as the placement engine sees them (docs/scheduler.md, "Nodes"):
//   - this node: capacity and reserved resources from the config (node.capacity,
//     node.reserved), else what its drivers measure; allocation summed from its VM records;
//     its available drivers with their capabilities; the groups its VMs belong to;
//   - each configured peer (cluster.peers): its own summary, fetched over mutual TLS
//     (GET /v1/nodes/self/scheduler) at each placement, with the config's capacity, reserved
//     resources and labels winning. A peer that does not answer is not ready.
// Static peers are few, so a fresh summary per placement is exact and cheap; cluster
// membership through etcd will replace the list.
#pragma once

#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "host/config/host_config.h"
#include "host/scheduler/node_table.h"

namespace novacron {

class PeerMonitor;
class UsageCollector;
class VmService;
class VmStore;

struct NodeSummary {
  scheduler::NodeView view;
  std::map<std::string, std::uint32_t> groups;  // group name -> members on this node
  std::string error;                            // why the node is not ready ("" when it is)
};

class NodeRegistry {
 public:
  // `usage` (may be null) predicts what this node's VMs will use.
  NodeRegistry(const HostConfig& config, VmStore& vms, VmService& service, PeerMonitor* peers,
               const UsageCollector* usage);

  // This node's summary, as peers fetch it. Blocking (state store, drivers).
  nlohmann::json local_summary();
  NodeSummary local();
  // This node first, then the peers in config order.
  std::vector<NodeSummary> collect();

  // A summary from its JSON, with the config's declared values winning (exposed for tests).
  static NodeSummary from_json(const nlohmann::json& summary, const std::string& name, const NodeCapacity& capacity,
                               const NodeCapacity& reserved, const std::map<std::string, std::string>& labels);

 private:
  NodeSummary peer(const PeerConfig& peer);

  const HostConfig& config_;
  VmStore& vms_;
  VmService& service_;
  PeerMonitor* peers_;
  const UsageCollector* usage_;
};

nlohmann::json summary_to_json(const NodeSummary& s);

}  // namespace novacron
