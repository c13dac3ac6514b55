// topology: a scorer (kUnit) on SchedulingPolicy interface 2 that places the members of a VM
// group close together (communicating VMs: low latency) or spread over failure domains
// (replicas), over a model of the cluster's topology (docs/design/scheduler.md 3.5).
//
// The model comes from the plugin's own config (plugins.load[].config):
//   levels          label keys, outermost first (default ["datacenter", "rack"]); the node
//                   itself is the innermost level below them.
//   latency_ms      {"same_node", "same_rack", "same_datacenter", "between_datacenters"}
//   bandwidth_mbps  the same keys. Two rows' relation is their deepest shared level: the first
//                   level counts as the datacenter, the last (with two or more levels) as the
//                   rack, levels between them as the datacenter. A label missing on either row
//                   shares nothing from that level inwards (unknown equals nothing): a row
//                   without a datacenter label is between datacenters from every other row.
//   links           [{"between": ["dc-eu-1", "dc-us-1"], "latency_ms": 80, "bandwidth_mbps": 500}]
//                   overrides for a pair of domains at the level where two rows part (two
//                   datacenters, or two racks of one datacenter: "r1" or "dc-eu-1/r1").
//   groups          {"<group>": {"mode": "close"|"spread", "level": "<key>", "within": "<key>"}}.
//                   Without an entry: an affinity group is close at the node level, an
//                   anti-affinity group is spread down to the innermost configured level.
//
// Scores (per group, then the mean over the request's groups):
//   close   1 - mean latency to the members' rows (weighted by their counts) / worst latency
//           (between_datacenters, or a slower link), clamped; a relation inside `level`
//           counts as the `level` relation (close "by rack": same node = same rack); no
//           members located yet: 0.5.
//   spread  sum over levels L from the outermost down to `level` of
//           w_L * (1 - members in the row's L domain / (members + 1)), each level weighing
//           2x the next inner one, weights summing to 1. Rows without the label of a level
//           share one "unknown" domain there (never assumed independent).
//   within  (either mode) rows outside the `within` domain of the first member that has
//           that label score 0.
// Per call the policy builds, per group, a domain -> member count map from GroupState in
// O(members x levels); rows are scored without allocating.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "novacron/sdk/scheduling_policy.hpp"

namespace novacron::policy::topology {

inline constexpr std::uint32_t kMaxLevels = 8;

// How two rows relate; the index of TopologyConfig's latency and bandwidth arrays.
enum class Relation : std::uint8_t { kSameNode = 0, kSameRack = 1, kSameDatacenter = 2, kBetweenDatacenters = 3 };
inline constexpr size_t kRelations = 4;
// "same_node", "same_rack", "same_datacenter", "between_datacenters" (the config keys).
const char* relation_name(Relation r);

// An override for one pair of domains. An endpoint is a path of label values, outermost
// first: {"dc-eu-1"} (a value at any level) or {"dc-eu-1", "r2"} (rack r2 of dc-eu-1).
struct LinkSpec {
  std::array<std::vector<std::string>, 2> between;
  double latency_ms = -1;      // < 0: the relation's default
  double bandwidth_mbps = -1;  // < 0: the relation's default
};

enum class GroupMode : std::uint8_t { kClose, kSpread };

// How the policy treats one named group. `level` and `within` are label keys of `levels` or
// "node" (level only); "" = the default (close: node; spread: the innermost level; within:
// none).
struct GroupTopology {
  GroupMode mode = GroupMode::kSpread;
  std::string level;
  std::string within;
};

struct TopologyConfig {
  std::vector<std::string> levels{"datacenter", "rack"};
  std::array<double, kRelations> latency_ms{0.05, 0.2, 1.0, 30.0};
  std::array<double, kRelations> bandwidth_mbps{100000, 25000, 10000, 1000};
  std::vector<LinkSpec> links;
  std::map<std::string, GroupTopology, std::less<>> groups;

  // Parses the plugin config (a JSON object); errors name the JSON path and are "; "-joined.
  // Unknown keys are errors.
  static sdk::Result<TopologyConfig> parse(std::string_view config_json);
  // The index of a level key in `levels`, or levels.size() for "node"; -1 when unknown.
  int level_index(std::string_view key) const;
};

struct LinkInfo {
  Relation relation = Relation::kBetweenDatacenters;
  double latency_ms = 0;
  double bandwidth_mbps = 0;
  bool link = false;  // an entry of `links` applied
};

// Link endpoints resolved to label value ids for one node layout (NodeColumns::layout_epoch).
struct ResolvedLinks {
  struct Link {
    std::array<std::vector<std::uint32_t>, 2> between;  // value-id paths
    double latency_ms = 0, bandwidth_mbps = 0;
  };
  std::vector<Link> links;
};

// Keeps the resolved links of the latest layout epoch (thread-safe; one per policy).
class LinkCache {
 public:
  std::shared_ptr<const ResolvedLinks> get(const TopologyConfig& config, const sdk::NodeColumns& nodes);
  void clear();

 private:
  std::mutex mu_;
  std::uint64_t epoch_ = 0;
  std::shared_ptr<const ResolvedLinks> links_;
};

// The topology model bound to the columns of one call: which domain each row is in at each
// level, and the latency and bandwidth between two rows. Cheap to build (no per-row work;
// resolving links scans the label values once unless a LinkCache has them); relation() does
// not allocate. Reusable by other policies (e.g. migration-cost: bandwidth between source and
// target).
class TopologyModel {
 public:
  TopologyModel(const TopologyConfig& config, const sdk::NodeColumns& nodes, LinkCache* cache = nullptr);

  const TopologyConfig& config() const { return *config_; }
  std::uint32_t levels() const { return levels_; }
  std::uint32_t rows() const { return nodes_->rows; }
  std::string_view level_key(std::uint32_t level) const { return config_->levels[level]; }
  // The value id of `row`'s label at `level` (0: the row has no such label).
  std::uint32_t domain(std::uint32_t level, std::uint32_t row) const {
    return columns_[level] != nullptr ? columns_[level][row] : 0;
  }
  std::string_view domain_text(std::uint32_t level, std::uint32_t row) const {
    return nodes_->label_values[domain(level, row)];
  }
  // The number of outer levels both rows share (labelled and equal, from the outermost in):
  // 0 = nothing (or a label missing at the datacenter level), levels() = the same innermost
  // domain.
  std::uint32_t shared_levels(std::uint32_t a, std::uint32_t b) const;
  Relation relation_kind(std::uint32_t a, std::uint32_t b) const;
  LinkInfo relation(std::uint32_t a, std::uint32_t b) const;
  // The slowest latency the model gives: between_datacenters or a slower link.
  double worst_latency_ms() const { return worst_latency_; }

 private:
  Relation kind_of(std::uint32_t shared) const;
  bool endpoint_matches(const std::vector<std::uint32_t>& path, std::uint32_t row, std::uint32_t level) const;

  const TopologyConfig* config_;
  const sdk::NodeColumns* nodes_;
  std::uint32_t levels_ = 0;
  std::array<const std::uint32_t*, kMaxLevels> columns_{};
  std::shared_ptr<const ResolvedLinks> links_;
  double worst_latency_ = 0;
};

class TopologyPolicy final : public sdk::SchedulingPolicyBase {
 public:
  std::uint32_t roles() const noexcept override { return sdk::kPolicyScores; }
  sdk::ScoreScale score_scale() const noexcept override { return sdk::ScoreScale::kUnit; }
  // The score bit when the request has at least one group, else 0.
  std::uint32_t applies(const sdk::PlacementQuery& query) noexcept override;

  const TopologyConfig& config() const { return config_; }

 protected:
  sdk::Status on_init(std::string_view config_json) override;
  sdk::Status on_check_request(const sdk::PlacementQuery& query) override;
  sdk::Status on_score_rows(const sdk::PlacementQuery& query, const sdk::NodeColumns& nodes,
                            std::span<const std::uint32_t> rows, std::span<double> out) override;
  sdk::Status on_explain_row(const sdk::PlacementQuery& query, const sdk::NodeColumns& nodes, std::uint32_t row,
                             sdk::FilterVerdict& verdict, sdk::NodeScore& score) override;

 private:
  TopologyConfig config_;
  LinkCache links_;
};

}  // namespace novacron::policy::topology
