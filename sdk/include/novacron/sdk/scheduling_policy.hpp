// SchedulingPolicy: filters and/or scores candidate nodes for a placement request.
//
// The host's placement engine runs every enabled filter policy, then every scoring policy,
// weights their scores with multipliers from the config, normalises and picks the best node.
// A policy is pure computation over the inputs it is given: it must not block, and it may be
// called concurrently from several threads (for different requests).
//
// Interface version 1 (SDK 1.0): filter() and score() over NodeCandidate records.
// Interface version 2 (SDK 1.4): batch calls over host-owned columns (NodeColumns) that answer
// with reason codes and raw scores, words only for the rows an explanation shows; groups
// with affinity rules; constraint text. The engine calls the version-2 methods of plugins
// built against SDK 1.4 or later and adapts older plugins itself.
#pragma once

#include <algorithm>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
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

// --- Since SDK 1.4 (interface version 2) -------------------------------------------------

// How the engine combines a policy's scores with the others'.
enum class ScoreScale : std::uint32_t {
  kRelative = 0,  // only the order matters: min-max normalised over the scored nodes
  kUnit = 1,      // already in [0, 1] with a meaning (0.62 = 62 % used): taken as it is
};

// A filter's reject code N (1-based) is reason_codes()[N - 1]: a stable identifier for
// scripts ("memory") and a short text for people ("not enough memory").
struct ReasonCode {
  std::string_view code;
  std::string_view text;
};

// Resource indexes of the column arrays: exact integers, so limits are exact at the boundary.
enum ResourceIndex : std::uint32_t { kCpuMilli = 0, kMemoryMib = 1, kDiskGib = 2 };
inline constexpr std::uint32_t kResourceCount = 3;

// What a VM mostly does, as the host's usage model classifies it from its history.
enum class WorkloadClass : std::uint8_t { kUnknown, kIdle, kBursty, kCpuBound, kMemoryBound, kIoBound, kMixed };
inline constexpr std::uint32_t kWorkloadClassCount = 7;
inline const char* workload_class_name(WorkloadClass c) {
  switch (c) {
    case WorkloadClass::kIdle:
      return "idle";
    case WorkloadClass::kBursty:
      return "bursty";
    case WorkloadClass::kCpuBound:
      return "cpu-bound";
    case WorkloadClass::kMemoryBound:
      return "memory-bound";
    case WorkloadClass::kIoBound:
      return "io-bound";
    case WorkloadClass::kMixed:
      return "mixed";
    case WorkloadClass::kUnknown:
      break;
  }
  return "unknown";
}

// One label key: the value id of every row (0 = the node has no such label);
// NodeColumns::label_values[id] is the text.
struct LabelColumn {
  std::string_view key;
  const std::uint32_t* value_ids;
};

// The nodes of one placement, read-only and valid for the duration of one call. Row r of
// every array is the same node. Fields are only ever appended (check struct_size before
// reading a field added after the SDK you build against).
struct NodeColumns {
  std::uint32_t struct_size = sizeof(NodeColumns);
  std::uint32_t rows = 0;
  // Changes when rows, names, capacities, reservations, labels or drivers change; not on
  // allocation changes. Policies may cache what they derive from those per epoch.
  std::uint64_t layout_epoch = 0;
  const std::string_view* names = nullptr;
  const std::int64_t* capacity[kResourceCount] = {};   // milli-vCPU, MiB, GiB (0 = unknown)
  const std::int64_t* reserved[kResourceCount] = {};   // kept back for the host
  const std::int64_t* allocated[kResourceCount] = {};  // what placed VMs requested
  // Bit d of driver_bits[r]: driver_names[d] is loaded on row r. Its capabilities are the
  // bit set driver_caps[r * driver_caps_stride + d] over capability_names.
  const std::uint32_t* driver_bits = nullptr;
  const std::uint32_t* driver_caps = nullptr;
  std::uint32_t driver_caps_stride = 0;
  std::span<const std::string> driver_names;
  std::span<const std::string> capability_names;
  std::span<const std::string> label_values;  // id -> text; id 0 is ""
  std::span<const LabelColumn> labels;        // sorted by key
  // Predicted use of each row's VMs in the resource units (milli-vCPU, MiB; disk: NaN), NaN
  // when unknown: `mean` is the EWMA of recent use, `p95` the 95th percentile of 5-minute
  // peaks over the usage window. VMs without history count a share of what they requested.
  const float* predicted_mean[kResourceCount] = {};
  const float* predicted_p95[kResourceCount] = {};
  // VMs per workload class on each row: class_counts[row * kWorkloadClassCount + class].
  const std::uint16_t* class_counts = nullptr;

  const LabelColumn* label(std::string_view key) const {
    auto it = std::lower_bound(labels.begin(), labels.end(), key,
                               [](const LabelColumn& c, std::string_view k) { return c.key < k; });
    return it != labels.end() && it->key == key ? &*it : nullptr;
  }
  std::string_view label_of(std::uint32_t row, std::string_view key) const {
    const LabelColumn* c = label(key);
    return c != nullptr ? std::string_view(label_values[c->value_ids[row]]) : std::string_view();
  }
};

enum class GroupAffinity : std::uint32_t {
  kAffinity = 0,      // members together (in one domain)
  kAntiAffinity = 1,  // members apart (at most max_per_domain per domain)
};

// A VM group the request belongs to, with its rule and where its members run now.
struct GroupRule {
  std::string_view name;
  GroupAffinity affinity = GroupAffinity::kAntiAffinity;
  bool hard = true;                  // hard: a filter; soft: a preference (score)
  std::string_view scope;            // "node", or a label key whose value is the domain (rack, zone)
  std::uint32_t max_per_domain = 0;  // 0 = the rule's default (anti-affinity 1, affinity none)
};
struct GroupState {
  GroupRule rule;
  std::span<const std::uint32_t> rows;    // rows that hold members
  std::span<const std::uint32_t> counts;  // members on each of those rows
  std::uint32_t members = 0;              // in the whole cluster (also on rows not listed)
};

// One placement, as interface 2 sees it.
struct PlacementQuery {
  std::uint32_t struct_size = sizeof(PlacementQuery);
  const PlacementRequest* request = nullptr;    // the interface-1 view, unchanged
  std::int64_t resources[kResourceCount] = {};  // milli-vCPU, MiB, GiB
  std::int32_t driver = -1;                     // index into driver_names; -1 = any
  std::uint32_t capabilities = 0;               // bits over capability_names
  bool unknown_capability = false;              // a requested capability no node has
  std::span<const GroupState> groups;
  std::string_view constraints;                            // expression text ("" = none)
  std::int32_t source_row = -1;                            // set when choosing a migration target
  std::uint64_t seed = 0;                                  // per request, for tie-breaks and samples
  WorkloadClass workload_class = WorkloadClass::kUnknown;  // the VM's (or its group's) class
  // The VM's own predicted use (milli-vCPU, MiB), NaN when unknown (a new VM).
  float predicted[kResourceCount] = {__builtin_nanf(""), __builtin_nanf(""), __builtin_nanf("")};
};

// A finished migration (or, until migrations exist, a transfer between two nodes), for
// policies that calibrate a cost model from what really happened.
struct MigrationObservation {
  std::string_view kind;    // "migration" | "transfer"
  std::string_view source;  // node names
  std::string_view target;
  WorkloadClass workload_class = WorkloadClass::kUnknown;
  std::int64_t memory_mib = 0;
  std::int64_t disk_gib = 0;
  std::uint64_t bytes = 0;  // sent over the link
  double duration_s = 0;
  double downtime_ms = 0;  // 0 for transfers
  std::uint32_t rounds = 0;
};

// Builds the interface-1 record of one row (adapters and explanations; not for hot loops).
inline NodeCandidate candidate_of(const NodeColumns& c, std::uint32_t row) {
  NodeCandidate n;
  n.name = std::string(c.names[row]);
  for (const LabelColumn& l : c.labels) {
    if (l.value_ids[row] != 0) n.labels.emplace_back(std::string(l.key), c.label_values[l.value_ids[row]]);
  }
  const auto fill = [&](const std::int64_t* const* col, Resources& out) {
    out.vcpus = static_cast<double>(col[kCpuMilli][row]) / 1000.0;
    out.memory_mib = col[kMemoryMib][row];
    out.disk_gib = col[kDiskGib][row];
  };
  fill(c.capacity, n.capacity);
  fill(c.reserved, n.reserved);
  fill(c.allocated, n.allocated);
  for (std::uint32_t d = 0; d < c.driver_names.size(); ++d) {
    if ((c.driver_bits[row] >> d & 1u) == 0) continue;
    n.drivers.push_back(c.driver_names[d]);
    const std::uint32_t caps = c.driver_caps[static_cast<size_t>(row) * c.driver_caps_stride + d];
    for (std::uint32_t b = 0; b < c.capability_names.size(); ++b) {
      if ((caps >> b & 1u) != 0 &&
          std::find(n.capabilities.begin(), n.capabilities.end(), c.capability_names[b]) == n.capabilities.end()) {
        n.capabilities.push_back(c.capability_names[b]);
      }
    }
  }
  return n;
}

// --- Interface ---------------------------------------------------------------------------

class SchedulingPolicy : public PluginInstance {
 public:
  using Interface = SchedulingPolicy;
  static constexpr NovacronPluginKind kKind = NOVACRON_KIND_SCHEDULING_POLICY;
  static constexpr std::uint32_t kInterfaceVersion = 2;

  // Bitmask of PolicyRole: which of filter() and score() the engine should call.
  virtual std::uint32_t roles() const noexcept = 0;

  // Sets out[i] to the verdict for nodes[i]. `out` has nodes.size() elements on entry.
  virtual Status filter(const PlacementRequest& request, std::span<const NodeCandidate> nodes,
                        std::span<FilterVerdict> out) noexcept = 0;

  // Sets out[i] to the score of nodes[i]. `out` has nodes.size() elements on entry.
  virtual Status score(const PlacementRequest& request, std::span<const NodeCandidate> nodes,
                       std::span<NodeScore> out) noexcept = 0;

  // --- Interface version 2 (SDK 1.4). The host calls these only on plugins that report
  // interface version 2 or later; older plugins get filter()/score() above.

  virtual ScoreScale score_scale() const noexcept = 0;
  // The filter's reject codes; code N is element N - 1. At most 255.
  virtual std::span<const ReasonCode> reason_codes() const noexcept = 0;
  // Which roles (PolicyRole bits) apply to this request: an affinity policy without groups
  // in the request answers 0 and is skipped.
  virtual std::uint32_t applies(const PlacementQuery& query) noexcept = 0;
  // Refuses a request this policy cannot evaluate (kInvalidArgument, the message naming the
  // field: "/placement/constraints: column 6: ..."). Called once per placement.
  virtual Status check_request(const PlacementQuery& query) noexcept = 0;
  // reject[i] for node rows[i]: 0 = passes, else a 1-based index into reason_codes().
  // The host passes distinct rows in ascending order (all of them when every node is ready).
  virtual Status filter_rows(const PlacementQuery& query, const NodeColumns& nodes, std::span<const std::uint32_t> rows,
                             std::span<std::uint8_t> reject) noexcept = 0;
  // out[i]: the raw score of node rows[i], higher is better (in [0, 1] for kUnit).
  virtual Status score_rows(const PlacementQuery& query, const NodeColumns& nodes, std::span<const std::uint32_t> rows,
                            std::span<double> out) noexcept = 0;
  // The words for one row, for explanations: the verdict with its reason (filters) and the
  // score with its reason (scorers). Called for a few rows per placement, or every row when
  // an operator asks for the full detail.
  virtual Status explain_row(const PlacementQuery& query, const NodeColumns& nodes, std::uint32_t row,
                             FilterVerdict& verdict, NodeScore& score) noexcept = 0;
  // A migration or transfer finished; a policy with a cost model may calibrate it.
  virtual void observe_migration(const MigrationObservation& observation) noexcept = 0;
};

// Base for policy authors: override roles() and on_filter() and/or on_score() (correct,
// and enough for small clusters), or the on_*_rows() hooks of interface 2 for speed. The
// interface-2 defaults adapt to on_filter()/on_score() one node record at a time.
class SchedulingPolicyBase : public PluginBase<SchedulingPolicy> {
 public:
  ScoreScale score_scale() const noexcept override { return ScoreScale::kRelative; }
  std::span<const ReasonCode> reason_codes() const noexcept override { return generic_reasons(); }
  std::uint32_t applies(const PlacementQuery& /*query*/) noexcept override { return roles(); }
  Status check_request(const PlacementQuery& query) noexcept final {
    return guard_status("check_request", [&] { return on_check_request(query); });
  }
  Status filter_rows(const PlacementQuery& query, const NodeColumns& nodes, std::span<const std::uint32_t> rows,
                     std::span<std::uint8_t> reject) noexcept final {
    return guard_status("filter_rows", [&] { return on_filter_rows(query, nodes, rows, reject); });
  }
  Status score_rows(const PlacementQuery& query, const NodeColumns& nodes, std::span<const std::uint32_t> rows,
                    std::span<double> out) noexcept final {
    return guard_status("score_rows", [&] { return on_score_rows(query, nodes, rows, out); });
  }
  Status explain_row(const PlacementQuery& query, const NodeColumns& nodes, std::uint32_t row, FilterVerdict& verdict,
                     NodeScore& score) noexcept final {
    return guard_status("explain_row", [&] { return on_explain_row(query, nodes, row, verdict, score); });
  }
  void observe_migration(const MigrationObservation& observation) noexcept final {
    (void)guard_status("observe_migration", [&] {
      on_observe_migration(observation);
      return Status::ok();
    });
  }

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

  // Interface-2 hooks. The defaults go through on_filter()/on_score() with one
  // NodeCandidate per row; a rejection is the generic code 1 ("rejected").
  virtual Status on_check_request(const PlacementQuery& /*query*/) { return Status::ok(); }
  virtual void on_observe_migration(const MigrationObservation& /*observation*/) {}
  virtual Status on_filter_rows(const PlacementQuery& query, const NodeColumns& nodes,
                                std::span<const std::uint32_t> rows, std::span<std::uint8_t> reject) {
    std::vector<NodeCandidate> records = candidates_of(nodes, rows);
    std::vector<FilterVerdict> verdicts(records.size());
    Status s = on_filter(*query.request, records, verdicts);
    if (!s.is_ok()) return s;
    for (size_t i = 0; i < rows.size(); ++i) reject[i] = verdicts[i].pass ? 0 : 1;
    return Status::ok();
  }
  virtual Status on_score_rows(const PlacementQuery& query, const NodeColumns& nodes,
                               std::span<const std::uint32_t> rows, std::span<double> out) {
    std::vector<NodeCandidate> records = candidates_of(nodes, rows);
    std::vector<NodeScore> scores(records.size());
    Status s = on_score(*query.request, records, scores);
    if (!s.is_ok()) return s;
    for (size_t i = 0; i < rows.size(); ++i) out[i] = scores[i].score;
    return Status::ok();
  }
  virtual Status on_explain_row(const PlacementQuery& query, const NodeColumns& nodes, std::uint32_t row,
                                FilterVerdict& verdict, NodeScore& score) {
    const NodeCandidate record = candidate_of(nodes, row);
    const std::uint32_t r = roles();
    if ((r & kPolicyFilters) != 0) {
      Status s =
          on_filter(*query.request, std::span<const NodeCandidate>(&record, 1), std::span<FilterVerdict>(&verdict, 1));
      if (!s.is_ok()) return s;
    }
    if ((r & kPolicyScores) != 0) {
      return on_score(*query.request, std::span<const NodeCandidate>(&record, 1), std::span<NodeScore>(&score, 1));
    }
    return Status::ok();
  }

 private:
  static std::span<const ReasonCode> generic_reasons() noexcept {
    static constexpr ReasonCode kGeneric[] = {{"rejected", "rejected by the policy"}};
    return kGeneric;
  }

  static std::vector<NodeCandidate> candidates_of(const NodeColumns& nodes, std::span<const std::uint32_t> rows) {
    std::vector<NodeCandidate> out;
    out.reserve(rows.size());
    for (const std::uint32_t row : rows) out.push_back(candidate_of(nodes, row));
    return out;
  }
};

}  // namespace novacron::sdk
