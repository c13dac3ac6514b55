// io.novacron.policy.resource-fit: the filter every placement runs first
// (docs/design/scheduler.md 3.1). SchedulingPolicy interface 2 (SDK 1.4); interface-1
// callers (filter() over NodeCandidate) get the same verdicts.
//
// A node passes when
//   - it has the requested driver, and the requested capabilities are all capabilities of
//     *that* driver on the node (without a driver: some loaded driver has them all);
//   - for cpu (milli-vCPU), memory (MiB) and disk (GiB):
//       floor(capacity x ratio) - reserved - allocated >= requested,
//     exact integers (ratios are taken to 6 decimals: 1.1 x 1000 MiB = 1100 MiB). A disk
//     capacity of 0 means unknown and is not checked.
// A node whose reserved amount exceeds its capacity is rejected as misconfigured.
//
// Config (config_keys.json): cpu_allocation_ratio 4.0 (0.01-1000), memory_allocation_ratio
// 1.0 (0.01-100), disk_allocation_ratio 1.0 (0.01-100).
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "novacron/sdk/scheduling_policy.hpp"
#include "policies/common/columns.hpp"

namespace novacron::policies {

class ResourceFit final : public sdk::SchedulingPolicyBase {
 public:
  // Reject codes: reason_codes()[code - 1] names them.
  enum Code : std::uint8_t {
    kFits = 0,
    kDriver = 1,
    kCapability = 2,
    kCpu = 3,  // kCpu + resource index: cpu, memory, disk
    kMemory = 4,
    kDisk = 5,
    kReservedExceedsCapacity = 6,
  };

  // Exact amounts of one node, indexed by sdk::ResourceIndex.
  struct Amounts {
    std::int64_t capacity[sdk::kResourceCount] = {};
    std::int64_t reserved[sdk::kResourceCount] = {};
    std::int64_t allocated[sdk::kResourceCount] = {};
  };

  // Reads the plugin's config (what init() does); kInvalidArgument naming the key.
  sdk::Status configure(std::string_view config_json);

  std::uint32_t roles() const noexcept override { return sdk::kPolicyFilters; }
  sdk::ScoreScale score_scale() const noexcept override { return sdk::ScoreScale::kRelative; }
  std::span<const sdk::ReasonCode> reason_codes() const noexcept override;

  // The resource verdict (kFits, kCpu..kDisk or kReservedExceedsCapacity) and its words.
  std::uint8_t resource_code(const Amounts& node, const std::int64_t* requested) const {
    for (std::uint32_t r = 0; r < sdk::kResourceCount; ++r) {
      if (checked(node, r) && node.reserved[r] > node.capacity[r]) return kReservedExceedsCapacity;
    }
    for (std::uint32_t r = 0; r < sdk::kResourceCount; ++r) {
      if (checked(node, r) && room(node, r) < requested[r]) return static_cast<std::uint8_t>(kCpu + r);
    }
    return kFits;
  }
  std::string resource_text(const Amounts& node, const std::int64_t* requested, std::uint8_t code) const;

  // floor(capacity x ratio) - reserved - allocated for one resource.
  std::int64_t room(const Amounts& node, std::uint32_t r) const {
    return ratios_[r].limit(node.capacity[r]) - node.reserved[r] - node.allocated[r];
  }
  double ratio(std::uint32_t r) const { return ratios_[r].value(); }

 protected:
  sdk::Status on_init(std::string_view config_json) override { return configure(config_json); }
  sdk::Status on_filter(const sdk::PlacementRequest& request, std::span<const sdk::NodeCandidate> nodes,
                        std::span<sdk::FilterVerdict> out) override;
  sdk::Status on_filter_rows(const sdk::PlacementQuery& query, const sdk::NodeColumns& nodes,
                             std::span<const std::uint32_t> rows, std::span<std::uint8_t> reject) override;
  sdk::Status on_explain_row(const sdk::PlacementQuery& query, const sdk::NodeColumns& nodes, std::uint32_t row,
                             sdk::FilterVerdict& verdict, sdk::NodeScore& score) override;

 private:
  // Per node and resource, floor(capacity x ratio) - reserved (or "unchecked"), and whether
  // the node reserves more than it has: what the filter compares allocations with. They
  // change only with the layout, so they are computed once per layout epoch.
  struct Headroom {
    std::uint64_t epoch = 0;
    std::uint32_t rows = 0;
    std::vector<std::int64_t> usable[sdk::kResourceCount];
    std::vector<std::uint8_t> misconfigured;
  };
  static constexpr std::int64_t kUnchecked = INT64_MAX;  // = fit_kernel::kUnchecked
  std::shared_ptr<const Headroom> headroom(const sdk::NodeColumns& c) const;
  static void filter_with_headroom(const Headroom& h, const sdk::PlacementQuery& q, const sdk::NodeColumns& c,
                                   std::uint32_t driver_mask, std::span<const std::uint32_t> rows,
                                   std::span<std::uint8_t> reject);

  mutable std::mutex headroom_mutex_;
  mutable std::shared_ptr<const Headroom> headroom_;

  // Disk capacity 0 = unknown: not checked. CPU and memory are always checked.
  static bool checked(const Amounts& node, std::uint32_t r) { return r != sdk::kDiskGib || node.capacity[r] != 0; }

  FixedRatio ratios_[sdk::kResourceCount] = {FixedRatio::of(4.0), FixedRatio::of(1.0), FixedRatio::of(1.0)};
};

}  // namespace novacron::policies
