// What the placement engine asks of a policy (docs/design/scheduler.md 1.2): batch calls
// over the node table's rows, answering with reason codes and raw scores, words only for the
// few rows an explanation shows. Plugins (SDK SchedulingPolicy) reach the engine through
// PluginPolicy (plugin_policy.h); the engine itself knows only this interface.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "host/scheduler/node_table.h"
#include "novacron/sdk/scheduling_policy.hpp"

namespace novacron::scheduler {

// A group the VM joins, with its rule (from the VM spec's placement block).
struct GroupSpec {
  std::string name;
  sdk::GroupAffinity affinity = sdk::GroupAffinity::kAntiAffinity;
  bool hard = true;
  std::string scope = "node";  // "node" or a label key (rack, zone, datacenter)
  std::uint32_t max_per_domain = 0;
};

// Where a group's members run now: rows and member counts (filled by the node registry).
struct GroupMembers {
  std::vector<std::uint32_t> rows, counts;
  std::uint32_t members = 0;
};

// What is being placed, as the engine and its policies see it.
struct PlacementQuery {
  std::string name;  // the VM's name
  std::string tenant;
  ResourceVector resources{};
  std::string driver;                     // "" = any
  std::vector<std::string> capabilities;  // required of the driver
  std::map<std::string, std::string> labels;
  std::vector<GroupSpec> groups;
  std::vector<GroupMembers> members;  // parallel to groups; empty = no members yet
  std::string constraints;            // expression text ("" = none)
  std::int32_t source_row = -1;       // set when choosing a migration target
  sdk::WorkloadClass workload_class = sdk::WorkloadClass::kUnknown;
  std::array<float, kResources> predicted{kUnknownUsage, kUnknownUsage, kUnknownUsage};  // milli-vCPU, MiB
  std::uint64_t seed = 0;  // tie-breaking; derived from the name by default
};

// One placement's inputs in both shapes: the engine's and the SDK's (built once per
// placement, so that each plugin call costs one virtual call and no conversion).
class PolicyContext {
 public:
  PolicyContext(const PlacementQuery& query, const NodeTable& table);
  PolicyContext(const PolicyContext&) = delete;
  PolicyContext& operator=(const PolicyContext&) = delete;

  const PlacementQuery& query;
  const NodeTable& table;
  const sdk::NodeColumns columns;
  const sdk::PlacementQuery& sdk_query() const { return sdk_; }

 private:
  sdk::PlacementRequest request_v1_;
  std::vector<sdk::GroupState> groups_;
  sdk::PlacementQuery sdk_;
};

enum class ScoreScale : std::uint8_t {
  kRelative,  // only the order matters: min-max normalised over the candidates
  kUnit,      // already in [0, 1] with a meaning (0.62 = 62 % used): taken as it is
};

// Each call returns "" on success, else why the policy failed (a filter that fails makes the
// placement fail: a constraint is never skipped silently; a scorer that fails counts 0).
class PlacementPolicy {
 public:
  static constexpr std::uint32_t kFilter = 1;
  static constexpr std::uint32_t kScorer = 2;

  virtual ~PlacementPolicy() = default;
  virtual std::string_view name() const = 0;
  virtual std::uint32_t roles() const = 0;
  virtual ScoreScale scale() const { return ScoreScale::kRelative; }

  // The roles that apply to this request (affinity without groups: none, so it is skipped).
  virtual std::uint32_t applies(const PolicyContext&) const { return roles(); }
  // Refuses a request the policy cannot evaluate; the message names the field.
  virtual std::string check(const PolicyContext&) const { return {}; }

  // Writes a code per row: 0 = passes, else a reason code (reason() says it in words).
  virtual std::string filter(const PolicyContext&, std::span<const std::uint32_t> rows,
                             std::span<std::uint8_t> reject) const {
    (void)rows;
    std::fill(reject.begin(), reject.end(), 0);
    return {};
  }
  virtual std::string reason(std::uint8_t code) const { return "rejected (code " + std::to_string(code) + ")"; }
  // The highest reject code filter() may write; the engine refuses a decision on a higher one
  // (a plugin's bug) rather than explain it with a reason that does not exist.
  virtual std::uint8_t max_code() const { return 255; }
  // Stable identifier of a reason code, for scripts ("memory").
  virtual std::string reason_code(std::uint8_t code) const { return "code_" + std::to_string(code); }

  // Writes a raw score per row: higher is better.
  virtual std::string score(const PolicyContext&, std::span<const std::uint32_t> rows, std::span<double> out) const {
    (void)rows;
    std::fill(out.begin(), out.end(), 0.0);
    return {};
  }

  // Words for one row: why a filter rejects or passes it, what a score means.
  struct Explanation {
    bool pass = true;
    std::string verdict;  // filters
    std::string score;    // scorers
  };
  virtual Explanation explain(const PolicyContext&, std::uint32_t row) const {
    (void)row;
    return {};
  }
};

}  // namespace novacron::scheduler
