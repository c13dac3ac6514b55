// The rebalancer with small test policies: nothing to do when balanced, bounded moves off an
// overloaded node that raise the score, fixes first, and costs that outweigh small gains.
#include "host/scheduler/rebalancer.h"

#include <gtest/gtest.h>

namespace novacron::scheduler {
namespace {

class FitFilter : public PlacementPolicy {
 public:
  std::string_view name() const override { return "fit"; }
  std::uint32_t roles() const override { return kFilter; }
  std::string filter(const PolicyContext& ctx, std::span<const std::uint32_t> rows,
                     std::span<std::uint8_t> reject) const override {
    for (size_t i = 0; i < rows.size(); ++i) {
      reject[i] = 0;
      for (size_t r = 0; r < kResources; ++r) {
        if (ctx.table.free(rows[i], static_cast<Resource>(r)) < ctx.query.resources[r]) reject[i] = 1;
      }
    }
    return {};
  }
};

// 1 - dominant share after placement (kUnit).
class SpreadScorer : public PlacementPolicy {
 public:
  std::string_view name() const override { return "spread"; }
  std::uint32_t roles() const override { return kScorer; }
  ScoreScale scale() const override { return ScoreScale::kUnit; }
  std::string score(const PolicyContext& ctx, std::span<const std::uint32_t> rows,
                    std::span<double> out) const override {
    for (size_t i = 0; i < rows.size(); ++i) {
      double share = 0;
      for (size_t r = 0; r < 2; ++r) {
        const auto res = static_cast<Resource>(r);
        share = std::max(share, static_cast<double>(ctx.table.allocated(res)[rows[i]] + ctx.query.resources[r]) *
                                    ctx.table.inv_usable(res)[rows[i]]);
      }
      out[i] = 1 - share;
    }
    return {};
  }
};

const FitFilter kFit;
const SpreadScorer kSpread;

struct Cluster {
  NodeTable table;
  std::vector<RebalanceVm> vms;
};

// `layout[i]`: how many 2-vCPU / 2 GiB VMs node i runs (16 vCPU, 16 GiB nodes).
Cluster cluster(const std::vector<int>& layout, ResourceVector capacity = {16000, 16384, 100}) {
  std::vector<NodeView> views;
  Cluster c;
  for (size_t n = 0; n < layout.size(); ++n) {
    NodeView v;
    v.name = "node-" + std::to_string(n);
    v.capacity = capacity;
    v.allocated = {2000 * layout[n], 2048 * layout[n], 0};
    views.push_back(v);
    for (int i = 0; i < layout[n]; ++i) {
      RebalanceVm vm;
      vm.name = "vm-" + std::to_string(n) + "-" + std::to_string(i);
      vm.id = vm.name;
      vm.row = static_cast<std::uint32_t>(n);
      vm.query.name = vm.name;
      vm.query.resources = {2000, 2048, 0};
      vm.query.seed = seed_of(vm.name);
      c.vms.push_back(vm);
    }
  }
  std::string error;
  c.table = std::move(*NodeTable::build(views, error));
  return c;
}

MoveCost cheap(const RebalanceVm&, std::uint32_t, std::uint32_t) { return {10, 50, 2.0 * (1 << 30), true}; }

TEST(RebalancerTest, BalancedClusterProposesNothing) {
  auto c = cluster({2, 2, 2});
  const Engine engine({{&kFit}}, {{&kSpread, 1.0}}, EngineOptions{3, 0});
  const RebalancePlan plan = plan_rebalance(engine, c.table, c.vms, cheap, {});
  EXPECT_TRUE(plan.moves.empty()) << plan.summary;
  EXPECT_NE(plan.summary.find("balanced"), std::string::npos);
  EXPECT_EQ(plan.evaluated, 6u);
}

TEST(RebalancerTest, MovesOffTheFullNodeAreBoundedAndRaiseTheScore) {
  auto c = cluster({7, 0, 0});
  const Engine engine({{&kFit}}, {{&kSpread, 1.0}}, EngineOptions{3, 0});
  RebalanceOptions o;
  o.max_migrations = 3;
  const RebalancePlan plan = plan_rebalance(engine, c.table, c.vms, cheap, o);
  ASSERT_EQ(plan.moves.size(), 3u) << plan.summary;
  for (const auto& m : plan.moves) {
    EXPECT_EQ(m.from, "node-0");
    EXPECT_NE(m.to, "node-0");
    EXPECT_GE(m.gain, o.min_gain);
    EXPECT_FALSE(m.fixes);
  }
  // The first two go to different empty nodes (spreading), and the score rises.
  EXPECT_NE(plan.moves[0].to, plan.moves[1].to);
  EXPECT_GT(plan.score_after, plan.score_before);
  // The input table is not changed: it is a proposal.
  EXPECT_EQ(c.table.allocated(kCpu)[0], 14000);
}

TEST(RebalancerTest, ABrokenRuleIsFixedFirst) {
  // node-0 is overcommitted: 9 VMs of 2 GiB on 16 GiB (its capacity shrank since).
  auto c = cluster({9, 1, 1}, {16000, 16384, 100});
  const Engine engine({{&kFit}}, {{&kSpread, 1.0}}, EngineOptions{3, 0});
  RebalanceOptions o;
  o.max_migrations = 1;
  const RebalancePlan plan = plan_rebalance(engine, c.table, c.vms, cheap, o);
  ASSERT_EQ(plan.moves.size(), 1u);
  EXPECT_TRUE(plan.moves[0].fixes) << plan.moves[0].reason;
  EXPECT_EQ(plan.moves[0].from, "node-0");
}

TEST(RebalancerTest, CostsOutweighSmallGainsAndTheByteBudgetHolds) {
  auto c = cluster({4, 2, 2});
  const Engine engine({{&kFit}}, {{&kSpread, 1.0}}, EngineOptions{3, 0});
  const auto slow = [](const RebalanceVm&, std::uint32_t, std::uint32_t) { return MoveCost{3600, 500, 1e9, true}; };
  EXPECT_TRUE(plan_rebalance(engine, c.table, c.vms, slow, {}).moves.empty());
  auto big = cluster({7, 0, 0});
  RebalanceOptions o;
  o.max_bytes = 5.0 * (1 << 30);  // room for two 2 GiB moves
  EXPECT_EQ(plan_rebalance(engine, big.table, big.vms, cheap, o).moves.size(), 2u);
}

// Rejects node-1 as a migration target (as migration-cost's downtime limit would), and only
// when the query is a migration (source_row set).
class NoMigrationToNode1 : public PlacementPolicy {
 public:
  std::string_view name() const override { return "no-move-to-node-1"; }
  std::uint32_t roles() const override { return kFilter; }
  std::uint32_t applies(const PolicyContext& ctx) const override { return ctx.query.source_row >= 0 ? kFilter : 0; }
  std::string filter(const PolicyContext& ctx, std::span<const std::uint32_t> rows,
                     std::span<std::uint8_t> reject) const override {
    for (size_t i = 0; i < rows.size(); ++i) reject[i] = ctx.table.name(rows[i]) == "node-1" ? 1 : 0;
    return {};
  }
};

TEST(RebalancerTest, TargetsAreChosenAsMigrations) {
  auto c = cluster({7, 0, 0});
  const NoMigrationToNode1 no_move;
  const Engine engine({{&kFit}, {&no_move}}, {{&kSpread, 1.0}}, EngineOptions{3, 0});
  RebalanceOptions o;
  o.max_migrations = 2;
  const RebalancePlan plan = plan_rebalance(engine, c.table, c.vms, cheap, o);
  ASSERT_FALSE(plan.moves.empty()) << plan.summary;
  for (const auto& m : plan.moves) EXPECT_EQ(m.to, "node-2") << "node-1 is refused as a migration target";
}

}  // namespace
}  // namespace novacron::scheduler
