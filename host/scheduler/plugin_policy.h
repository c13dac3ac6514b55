// A SchedulingPolicy plugin as the engine's PlacementPolicy. Plugins of interface version 2
// (SDK 1.4) get the batch calls over the node columns; older ones get filter()/score() over
// NodeCandidate records built per call (correct, and slower: docs/design/scheduler.md 1.4).
// The caller keeps the plugin running (a BorrowedPlugin) while the adapter is in use.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "host/scheduler/policy.h"
#include "novacron/sdk/scheduling_policy.hpp"

namespace novacron::scheduler {

class PluginPolicy final : public PlacementPolicy {
 public:
  // `name` is what decisions show (the plugin id); `interface_version` as the plugin declared.
  PluginPolicy(std::string name, sdk::SchedulingPolicy* plugin, std::uint32_t interface_version);

  std::string_view name() const override { return name_; }
  std::uint32_t roles() const override { return roles_; }
  ScoreScale scale() const override { return scale_; }
  std::uint32_t applies(const PolicyContext& ctx) const override;
  std::string check(const PolicyContext& ctx) const override;
  std::string filter(const PolicyContext& ctx, std::span<const std::uint32_t> rows,
                     std::span<std::uint8_t> reject) const override;
  std::string reason(std::uint8_t code) const override;
  std::string reason_code(std::uint8_t code) const override;
  // Interface 2: its reason codes; interface 1: 1 (the adapter's generic rejection).
  std::uint8_t max_code() const override;
  std::string score(const PolicyContext& ctx, std::span<const std::uint32_t> rows,
                    std::span<double> out) const override;
  Explanation explain(const PolicyContext& ctx, std::uint32_t row) const override;

  bool batch() const { return v2_; }

 private:
  std::string name_;
  sdk::SchedulingPolicy* plugin_;
  bool v2_;
  std::uint32_t roles_;
  ScoreScale scale_ = ScoreScale::kRelative;
  std::span<const sdk::ReasonCode> codes_;
};

}  // namespace novacron::scheduler
