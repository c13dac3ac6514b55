// io.novacron.policy.binpack on interface 2 (score_rows, explain_row over the node table's
// columns) and interface 1 (score over NodeCandidate): unit-scale scores, the fuller node
// first, the imbalance penalty, reservations, over-commit and nodes without usable capacity.
#include "policies/binpack/binpack.h"

#include <gtest/gtest.h>

#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "host/scheduler/node_table.h"
#include "host/scheduler/policy.h"
#include "tests/policies/policy_test_support.h"

namespace novacron::policies {
namespace {

using scheduler::NodeTable;
using scheduler::NodeView;
using scheduler::PlacementQuery;
using scheduler::PolicyContext;
using scheduler::ResourceVector;

NodeView node(const std::string& name, ResourceVector capacity, ResourceVector allocated = {},
              ResourceVector reserved = {}) {
  NodeView v;
  v.name = name;
  v.capacity = capacity;
  v.allocated = allocated;
  v.reserved = reserved;
  v.drivers = {{"kvm", {}}};
  return v;
}

NodeTable table(const std::vector<NodeView>& views) {
  std::string error;
  auto t = NodeTable::build(views, error);
  EXPECT_TRUE(t) << error;
  return std::move(*t);
}

PlacementQuery vm(ResourceVector resources) {
  PlacementQuery q;
  q.name = "vm-1";
  q.resources = resources;
  return q;
}

class BinpackTest : public testing::Test {
 protected:
  void init(const std::string& config) { ASSERT_TRUE(policy_.init(host_, config).is_ok()) << config; }

  std::vector<double> scores(const NodeTable& t, const PlacementQuery& q) {
    const PolicyContext ctx(q, t);
    std::vector<std::uint32_t> rows(t.rows());
    std::iota(rows.begin(), rows.end(), 0u);
    std::vector<double> out(rows.size(), -1.0);
    EXPECT_TRUE(policy_.score_rows(ctx.sdk_query(), ctx.columns, rows, out).is_ok());
    return out;
  }
  sdk::NodeScore explain(const NodeTable& t, const PlacementQuery& q, std::uint32_t row = 0) {
    const PolicyContext ctx(q, t);
    sdk::FilterVerdict verdict;
    sdk::NodeScore score;
    EXPECT_TRUE(policy_.explain_row(ctx.sdk_query(), ctx.columns, row, verdict, score).is_ok());
    return score;
  }
  std::vector<sdk::NodeScore> v1(const NodeTable& t, const PlacementQuery& q) {
    const PolicyContext ctx(q, t);
    std::vector<sdk::NodeCandidate> records;
    for (std::uint32_t row = 0; row < t.rows(); ++row) records.push_back(sdk::candidate_of(ctx.columns, row));
    std::vector<sdk::NodeScore> out(records.size());
    EXPECT_TRUE(policy_.score(*ctx.sdk_query().request, records, out).is_ok());
    return out;
  }

  test::StubHostServices host_;
  Binpack policy_;
};

TEST_F(BinpackTest, ScoresUsedFractionOnTheUnitScale) {
  init("{}");
  EXPECT_EQ(policy_.score_scale(), sdk::ScoreScale::kUnit);
  EXPECT_EQ(policy_.roles(), sdk::kPolicyScores);
  static_assert(Binpack::kInterfaceVersion == 2);
  const auto t = table({node("a", {10000, 10000, 0}, {5000, 5200, 0})});
  EXPECT_NEAR(scores(t, vm({1200, 1000, 0}))[0], 0.62, 1e-12);
  const auto e = explain(t, vm({1200, 1000, 0}));
  EXPECT_NEAR(e.score, 0.62, 1e-12);
  EXPECT_EQ(e.reason, "packs: 62% used after placement (cpu 62%, memory 62%)");
}

TEST_F(BinpackTest, PrefersTheFullerNode) {
  init("{}");
  const auto t = table({node("empty", {16000, 16384, 100}), node("half", {16000, 16384, 100}, {8000, 8192, 0}),
                        node("full", {16000, 16384, 100}, {14000, 14336, 0})});
  const auto s = scores(t, vm({1000, 1024, 5}));
  EXPECT_LT(s[0], s[1]);
  EXPECT_LT(s[1], s[2]);
}

TEST_F(BinpackTest, PenalisesImbalance) {
  init("{}");
  // Mean 0.6 but cpu 0.9 / memory 0.3: 0.6 - 0.25 x 0.6 = 0.45; balanced 0.5 / 0.5: 0.5.
  const auto t = table(
      {node("lopsided", {10000, 10000, 0}, {8000, 2000, 0}), node("balanced", {10000, 10000, 0}, {4000, 4000, 0})});
  const auto s = scores(t, vm({1000, 1000, 0}));
  EXPECT_NEAR(s[0], 0.45, 1e-12);
  EXPECT_NEAR(s[1], 0.5, 1e-12);
  EXPECT_EQ(explain(t, vm({1000, 1000, 0})).reason,
            "packs: 60% used after placement (cpu 90%, memory 30%; imbalance penalty 0.15)");
  // Without the penalty the fuller mean wins again.
  init(R"({"balance_weight": 0})");
  const auto plain = scores(t, vm({1000, 1000, 0}));
  EXPECT_NEAR(plain[0], 0.6, 1e-12);
  EXPECT_GT(plain[0], plain[1]);
  // A large penalty clamps at 0.
  init(R"({"balance_weight": 10})");
  EXPECT_EQ(scores(t, vm({1000, 1000, 0}))[0], 0.0);
}

TEST_F(BinpackTest, WeightsAndReservations) {
  init(R"({"cpu_weight": 3, "memory_weight": 1, "balance_weight": 0})");
  // Usable = capacity - reserved: cpu (3000 + 1000) / 8000 = 0.5, memory (1000 + 1000) / 8000 = 0.25.
  const auto t = table({node("a", {10000, 10000, 0}, {3000, 1000, 0}, {2000, 2000, 0})});
  EXPECT_NEAR(scores(t, vm({1000, 1000, 0}))[0], 0.75 * 0.5 + 0.25 * 0.25, 1e-12);
  // A weight of 0 leaves that resource out of the penalty too.
  init(R"({"memory_weight": 0})");
  EXPECT_NEAR(scores(t, vm({1000, 1000, 0}))[0], 0.5, 1e-12);
}

TEST_F(BinpackTest, NoUsableCapacityScoresZeroAndOverCommitIsClamped) {
  init("{}");
  const auto t = table({node("reserved-all", {4000, 4096, 0}, {}, {4000, 0, 0}), node("no-memory", {4000, 0, 0}),
                        node("over", {4000, 4096, 0}, {8000, 8192, 0})});
  const auto s = scores(t, vm({1000, 1024, 0}));
  EXPECT_EQ(s[0], 0.0);
  EXPECT_EQ(s[1], 0.0);
  EXPECT_EQ(s[2], 1.0);
  EXPECT_EQ(explain(t, vm({1000, 1024, 0})).reason,
            "packs: no usable capacity (cpu or memory: capacity - reserved <= 0)");
  EXPECT_EQ(explain(t, vm({1000, 1024, 0}), 2).reason, "packs: 100% used after placement (cpu 100%, memory 100%)");
}

TEST_F(BinpackTest, ScoresStayInTheUnitRange) {
  init(R"({"balance_weight": 0.5})");
  std::mt19937_64 rng(20261126);
  std::vector<NodeView> views;
  views.reserve(500);
  for (int i = 0; i < 500; ++i) {
    const std::int64_t cpu = static_cast<std::int64_t>(rng() % 64000);
    const std::int64_t mem = static_cast<std::int64_t>(rng() % 262144);
    views.push_back(node("n" + std::to_string(i), {cpu, mem, 0},
                         {static_cast<std::int64_t>(rng() % 80000), static_cast<std::int64_t>(rng() % 300000), 0},
                         {static_cast<std::int64_t>(rng() % 8000), static_cast<std::int64_t>(rng() % 8192), 0}));
  }
  const auto t = table(views);
  for (const double s : scores(t, vm({2000, 4096, 0}))) {
    EXPECT_GE(s, 0.0);
    EXPECT_LE(s, 1.0);
  }
}

TEST_F(BinpackTest, InterfaceOneGivesTheSameScores) {
  init("{}");
  const auto t = table({node("a", {10000, 10000, 0}, {8000, 2000, 0}), node("b", {16000, 16384, 0}, {1500, 4096, 0}),
                        node("c", {4000, 4096, 0}, {}, {4000, 0, 0})});
  const auto q = vm({1500, 1000, 0});
  const auto v2 = scores(t, q);
  const auto old = v1(t, q);
  for (std::uint32_t row = 0; row < t.rows(); ++row) {
    EXPECT_DOUBLE_EQ(old[row].score, v2[row]) << t.name(row);
    EXPECT_EQ(old[row].reason, explain(t, q, row).reason) << t.name(row);
  }
}

TEST_F(BinpackTest, ConfigErrorsNameTheKey) {
  auto s = policy_.init(host_, R"({"balance_weight": -1})");
  EXPECT_EQ(s.code(), sdk::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("/balance_weight"), std::string::npos) << s.message();
  s = policy_.init(host_, R"({"cpu_weight": 0, "memory_weight": 0})");
  EXPECT_NE(s.message().find("cannot both be 0"), std::string::npos) << s.message();
  EXPECT_EQ(policy_.init(host_, R"({"balance": 1})").code(), sdk::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace novacron::policies
