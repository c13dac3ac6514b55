// SchedulingPolicy: filters and/or scores candidate nodes for a placement request.
//
// The host's placement engine runs every enabled filter policy, then every scoring policy,
// weights their scores with multipliers from the config, normalises and picks the best node.
// A policy is pure computation over the inputs it is given: it must not block, and it may be
// called concurrently from several threads (for different requests).
//
// Interface version 1 (SDK 1.0).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "novacron/sdk/host_services.hpp"
#include "novacron/sdk/plugin.hpp"

namespace novacron::sdk {

// Amounts of the resources the scheduler tracks.
struct Resources {
  double vcpus = 0;
  std::int64_t memory_mib = 0;
  std::int64_t disk_gib = 0;
};

// One node the engine may place on, as the engine sees it at decision time.
struct NodeCandidate {
  std::string name;
  Labels labels;                          // e.g. {"zone","eu-1"}, {"rack","r3"}
  Resources capacity;                     // physical capacity
  Resources allocated;                    // sum of what placed VMs requested
  Resources reserved;                     // kept back for the host itself
  Resources used;                         // measured usage (0 when unknown)
  std::vector<std::string> drivers;       // loaded hypervisor drivers, e.g. "kvm", "lxc"
  std::vector<std::string> capabilities;  // e.g. "live_migration", "snapshots"
};

// What is being placed.
struct PlacementRequest {
  std::string name;  // VM name
  std::string tenant;
  Resources resources;                    // requested
  std::string driver;                     // required driver, "" = any
  std::vector<std::string> capabilities;  // required capabilities
  Labels labels;                          // the VM's labels
  std::vector<std::string> groups;        // server groups the VM belongs to
};

struct FilterVerdict {
  bool pass = true;
  std::string reason;  // why it was rejected (or a note when it passed); shown to operators
};

struct NodeScore {
  double score = 0;    // higher is better; any finite value, the engine normalises
  std::string reason;  // short explanation, e.g. "free after placement: 62% cpu, 48% mem"
};

enum PolicyRole : std::uint32_t {
  kPolicyFilters = 1u << 0,
  kPolicyScores = 1u << 1,
};

class SchedulingPolicy : public PluginInstance {
 public:
  using Interface = SchedulingPolicy;
  static constexpr NovacronPluginKind kKind = NOVACRON_KIND_SCHEDULING_POLICY;
  static constexpr std::uint32_t kInterfaceVersion = 1;

  // Bitmask of PolicyRole: which of filter() and score() the engine should call.
  virtual std::uint32_t roles() const noexcept = 0;

  // Sets out[i] to the verdict for nodes[i]. `out` has nodes.size() elements on entry.
  virtual Status filter(const PlacementRequest& request, std::span<const NodeCandidate> nodes,
                        std::span<FilterVerdict> out) noexcept = 0;

  // Sets out[i] to the score of nodes[i]. `out` has nodes.size() elements on entry.
  virtual Status score(const PlacementRequest& request, std::span<const NodeCandidate> nodes,
                       std::span<NodeScore> out) noexcept = 0;
};

// Base for policy authors: override roles() and on_filter() and/or on_score().
class SchedulingPolicyBase : public PluginBase<SchedulingPolicy> {
 public:
  Status filter(const PlacementRequest& request, std::span<const NodeCandidate> nodes,
                std::span<FilterVerdict> out) noexcept final {
    return guard_status("filter", [&] { return on_filter(request, nodes, out); });
  }
  Status score(const PlacementRequest& request, std::span<const NodeCandidate> nodes,
               std::span<NodeScore> out) noexcept final {
    return guard_status("score", [&] { return on_score(request, nodes, out); });
  }

 protected:
  virtual Status on_filter(const PlacementRequest& /*request*/, std::span<const NodeCandidate> /*nodes*/,
                           std::span<FilterVerdict> /*out*/) {
    return {StatusCode::kUnimplemented, "this policy does not filter"};
  }
  virtual Status on_score(const PlacementRequest& /*request*/, std::span<const NodeCandidate> /*nodes*/,
                          std::span<NodeScore> /*out*/) {
    return {StatusCode::kUnimplemented, "this policy does not score"};
  }
};

}  // namespace novacron::sdk
