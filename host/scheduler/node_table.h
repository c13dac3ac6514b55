// The placement engine's view of the cluster's nodes (docs/design/scheduler.md 1.1), built
// once per change of the node list and read by every placement: columns (structure of
// arrays) of exact integer resources, interned labels, driver and capability bit sets, so
// that a filter over 10,000 nodes is a few tight loops. Allocations change through commit()
// and release() and leave the layout (and the policies' caches keyed by it) alone. Pure.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "novacron/sdk/scheduling_policy.hpp"

namespace novacron::scheduler {

// Milli-vCPU, MiB, GiB: exact integers, so that over-commit limits are exact at the boundary.
enum Resource : std::uint8_t { kCpu = 0, kMemory = 1, kDisk = 2 };
inline constexpr size_t kResources = 3;
using ResourceVector = std::array<std::int64_t, kResources>;

enum class NodeState : std::uint8_t { kReady, kUnreachable, kCordoned };

inline constexpr float kUnknownUsage = __builtin_nanf("");

struct DriverView {
  std::string name;                       // "kvm", "lxc"
  std::vector<std::string> capabilities;  // "live_migration", "snapshots", ...
};

// One node as the node registry assembles it (the local node, configured peers).
struct NodeView {
  std::string name;
  NodeState state = NodeState::kReady;
  ResourceVector capacity{}, reserved{}, allocated{};
  std::map<std::string, std::string> labels;
  std::vector<DriverView> drivers;
  // Predicted use of the node's VMs (milli-vCPU, MiB; disk unused), NaN = unknown.
  std::array<float, kResources> predicted_mean{kUnknownUsage, kUnknownUsage, kUnknownUsage};
  std::array<float, kResources> predicted_p95{kUnknownUsage, kUnknownUsage, kUnknownUsage};
  std::array<std::uint16_t, sdk::kWorkloadClassCount> class_counts{};  // VMs per workload class
};

class NodeTable {
 public:
  static constexpr size_t kMaxDrivers = 32;       // driver_bits is a 32-bit set
  static constexpr size_t kMaxCapabilities = 32;  // per-driver capability sets too

  // Builds the columns; nullopt with `error` for duplicate names or too many distinct
  // drivers or capabilities.
  static std::optional<NodeTable> build(const std::vector<NodeView>& nodes, std::string& error);

  // Views into the columns (SDK 1.4 NodeColumns) point at this table's storage: a table moves
  // but is not copied (clone() makes an independent copy with its own views).
  NodeTable() = default;
  NodeTable(NodeTable&&) noexcept = default;
  NodeTable& operator=(NodeTable&&) noexcept = default;
  NodeTable(const NodeTable&) = delete;
  NodeTable& operator=(const NodeTable&) = delete;
  NodeTable clone() const;

  // The columns as policy plugins see them; valid while the table lives and is not moved from.
  sdk::NodeColumns columns() const;

  size_t rows() const { return names_.size(); }
  std::uint64_t layout_epoch() const { return layout_epoch_; }

  const std::string& name(std::uint32_t row) const { return names_[row]; }
  // FNV-1a of the name, for order-independent tie-breaks without hashing strings per placement.
  std::uint64_t name_hash(std::uint32_t row) const { return name_hashes_[row]; }
  std::optional<std::uint32_t> row_of(std::string_view name) const;
  NodeState state(std::uint32_t row) const { return states_[row]; }
  // The ready rows, ascending: where every placement starts (states change only by a rebuild).
  const std::vector<std::uint32_t>& ready_rows() const { return ready_rows_; }
  // The other rows (unreachable or cordoned), ascending.
  const std::vector<std::uint32_t>& not_ready_rows() const { return not_ready_rows_; }

  // Columns, one value per row.
  const std::vector<std::int64_t>& capacity(Resource r) const { return capacity_[r]; }
  const std::vector<std::int64_t>& reserved(Resource r) const { return reserved_[r]; }
  const std::vector<std::int64_t>& allocated(Resource r) const { return allocated_[r]; }
  // 1 / (capacity - reserved), 0 when nothing is usable: fill shares without divisions.
  const std::vector<double>& inv_usable(Resource r) const { return inv_usable_[r]; }
  // capacity - reserved - allocated: what is left without over-commit.
  std::int64_t free(std::uint32_t row, Resource r) const {
    return capacity_[r][row] - reserved_[r][row] - allocated_[r][row];
  }

  // Labels: a column of value ids per key (0 = the node has no such label).
  std::optional<std::string_view> label(std::uint32_t row, std::string_view key) const;
  const std::vector<std::uint32_t>* label_column(std::string_view key) const;
  // The id of a label value, 0 when no node has it (then no row can match it).
  std::uint32_t label_value_id(std::string_view value) const;
  std::string_view label_value(std::uint32_t id) const { return label_values_[id]; }

  // Drivers and capabilities: bit i of driver_bits(row) = driver_names()[i] is loaded.
  std::uint32_t driver_bits(std::uint32_t row) const { return driver_bits_[row]; }
  std::optional<std::uint32_t> driver_index(std::string_view driver) const;
  std::optional<std::uint32_t> capability_index(std::string_view capability) const;
  // Capabilities (bit set over capability_names()) of driver `driver` on `row`.
  std::uint32_t capabilities(std::uint32_t row, std::uint32_t driver) const {
    return driver_caps_[static_cast<size_t>(row) * kMaxDrivers + driver];
  }
  const std::vector<std::string>& driver_names() const { return driver_names_; }
  const std::vector<std::string>& capability_names() const { return capability_names_; }

  // Usage columns (NaN = unknown) and workload classes.
  const std::vector<float>& predicted_mean(Resource r) const { return predicted_mean_[r]; }
  const std::vector<float>& predicted_p95(Resource r) const { return predicted_p95_[r]; }
  std::uint16_t class_count(std::uint32_t row, sdk::WorkloadClass c) const {
    return class_counts_[static_cast<size_t>(row) * sdk::kWorkloadClassCount + static_cast<size_t>(c)];
  }

  // Fill buckets: rows by their dominant share in use (1024 buckets of 1/1024; a row with nothing
  // usable counts as full). Kept up to date by commit() and release() in O(1), so that the
  // engine finds the fullest and emptiest rows without looking at every row.
  static constexpr int kFillBuckets = 1024;
  const std::vector<std::uint32_t>& fill_bucket(int bucket) const { return bucket_rows_[bucket]; }
  // The next bucket with rows at or above `from` (upwards) or at or below it (downwards),
  // -1 when there is none: a walk over the buckets skips empty ones 64 at a time.
  int next_filled_bucket(int from, bool upwards) const;
  const std::vector<std::uint64_t>& name_hashes() const { return name_hashes_; }
  int bucket_of_row(std::uint32_t row) const { return row_bucket_[row]; }
  // The rows ordered by name hash (then name): a fixed pseudo-random order that does not
  // depend on the order the nodes were listed in. Seeded windows of it are samples.
  const std::vector<std::uint32_t>& by_name_hash() const { return by_hash_; }

  // A placement's resources join (or leave) a row's allocation.
  void commit(std::uint32_t row, const ResourceVector& amount);
  void release(std::uint32_t row, const ResourceVector& amount);

 private:
  static std::uint64_t next_epoch();
  void build_views();
  int bucket_of(std::uint32_t row) const;
  void rebucket(std::uint32_t row);  // after its allocation changed
  void build_buckets();

  std::uint64_t layout_epoch_ = 0;
  std::vector<std::string> names_;
  std::vector<std::uint64_t> name_hashes_;
  std::unordered_map<std::string, std::uint32_t> row_by_name_;
  std::vector<NodeState> states_;
  std::vector<std::uint32_t> ready_rows_, not_ready_rows_;
  std::array<std::vector<std::int64_t>, kResources> capacity_, reserved_, allocated_;
  std::array<std::vector<double>, kResources> inv_usable_;
  std::map<std::string, std::vector<std::uint32_t>, std::less<>> labels_;
  std::vector<std::string> label_values_{""};  // id 0: absent
  std::unordered_map<std::string, std::uint32_t> label_value_ids_;
  std::vector<std::uint32_t> driver_bits_;
  std::vector<std::uint32_t> driver_caps_;  // rows x kMaxDrivers
  std::array<std::vector<float>, kResources> predicted_mean_, predicted_p95_;
  std::vector<std::uint16_t> class_counts_;  // rows x kWorkloadClassCount
  std::vector<std::string> driver_names_, capability_names_;
  std::vector<std::string_view> name_views_;  // over names_
  std::array<std::vector<std::uint32_t>, kFillBuckets> bucket_rows_;
  std::array<std::uint64_t, kFillBuckets / 64> filled_buckets_{};  // bit b: bucket b has rows
  std::vector<std::uint16_t> row_bucket_;
  std::vector<std::uint32_t> bucket_pos_;  // index of the row in its bucket
  std::vector<std::uint32_t> by_hash_;
  std::vector<sdk::LabelColumn> label_columns_;  // over labels_, sorted by key
};

}  // namespace novacron::scheduler
