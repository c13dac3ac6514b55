// The engine's adapter for SDK policy plugins (host/scheduler/plugin_policy.cc): a plugin
// that answers a reject code past its reason codes makes the decision "scheduler
// unavailable", naming the code, wherever among the rows the bad code is.
#include "host/scheduler/plugin_policy.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "host/scheduler/engine.h"

namespace novacron::scheduler {
namespace {

// A filter with one reason code that answers `bad_code` for row `bad_row`, 0 elsewhere.
class BadCodeFilter final : public sdk::SchedulingPolicyBase {
 public:
  BadCodeFilter(std::uint32_t bad_row, std::uint8_t bad_code) : bad_row_(bad_row), bad_code_(bad_code) {}
  std::uint32_t roles() const noexcept override { return sdk::kPolicyFilters; }
  std::span<const sdk::ReasonCode> reason_codes() const noexcept override { return kCodes; }

 protected:
  sdk::Status on_filter_rows(const sdk::PlacementQuery& /*query*/, const sdk::NodeColumns& /*nodes*/,
                             std::span<const std::uint32_t> rows, std::span<std::uint8_t> reject) override {
    for (size_t i = 0; i < rows.size(); ++i) reject[i] = rows[i] == bad_row_ ? bad_code_ : 0;
    return sdk::Status::ok();
  }

 private:
  static constexpr sdk::ReasonCode kCodes[] = {{"full", "the node is full"}};
  std::uint32_t bad_row_;
  std::uint8_t bad_code_;
};

NodeTable nodes(size_t n) {
  std::vector<NodeView> views(n);
  for (size_t i = 0; i < n; ++i) {
    views[i].name = "node-" + std::to_string(i);
    views[i].capacity = {16000, 65536, 100};
    views[i].drivers = {{"kvm", {}}};
  }
  std::string error;
  return std::move(*NodeTable::build(views, error));
}

TEST(PluginPolicyTest, ARejectCodePastTheReasonCodesMakesTheSchedulerUnavailable) {
  NodeTable table = nodes(21);
  PlacementQuery q;
  q.name = "vm-1";
  q.resources = {1000, 1024, 1};
  for (const std::uint32_t bad_row : {0u, 7u, 13u, 20u}) {  // in a block of eight, and in the tail
    BadCodeFilter plugin(bad_row, 7);
    const PluginPolicy policy("bad-code", &plugin, 2);
    const Engine engine({{&policy}}, {}, EngineOptions{});
    const Decision d = engine.place(q, table, false);
    EXPECT_EQ(d.outcome, Outcome::kUnavailable) << bad_row;
    EXPECT_EQ(d.error, "bad-code: reject code 7 is not among its reason codes") << bad_row;
  }
  // Its own code 1 is a rejection like any other.
  BadCodeFilter plugin(13, 1);
  const PluginPolicy policy("bad-code", &plugin, 2);
  const Engine engine({{&policy}}, {}, EngineOptions{});
  const Decision d = engine.place(q, table, false);
  ASSERT_TRUE(d.placed);
  ASSERT_EQ(d.filters.size(), 1u);
  EXPECT_EQ(d.filters[0].rejected, 1u);
  EXPECT_EQ(d.filters[0].reasons.at(0).code_name, "full");
  EXPECT_EQ(d.filters[0].reasons.at(0).examples.at(0).node, "node-13");
  EXPECT_EQ(d.feasible, 20u);
}

}  // namespace
}  // namespace novacron::scheduler
