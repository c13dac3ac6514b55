// io.novacron.policy.spread on interface 2 (score_rows, explain_row over the node table's
// columns) and interface 1 (score over NodeCandidate): 1 - the busiest resource's use,
// the emptier node first, weights, reservations and nodes without usable capacity.
#include "policies/spread/spread.h"

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

class SpreadTest : public testing::Test {
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
  Spread policy_;
};

TEST_F(SpreadTest, OneMinusTheBusiestResource) {
  init("{}");
  EXPECT_EQ(policy_.score_scale(), sdk::ScoreScale::kUnit);
  EXPECT_EQ(policy_.roles(), sdk::kPolicyScores);
  static_assert(Spread::kInterfaceVersion == 2);
  const auto t = table({node("a", {10000, 10000, 0}, {6000, 4400, 0})});
  EXPECT_NEAR(scores(t, vm({1000, 1000, 0}))[0], 0.3, 1e-12);
  const auto e = explain(t, vm({1000, 1000, 0}));
  EXPECT_NEAR(e.score, 0.3, 1e-12);
  EXPECT_EQ(e.reason, "spreads: 70% used after placement (cpu 70%, memory 54%)");
}

TEST_F(SpreadTest, PrefersTheEmptierNode) {
  init("{}");
  const auto t = table({node("empty", {16000, 16384, 100}), node("half", {16000, 16384, 100}, {8000, 8192, 0}),
                        node("full", {16000, 16384, 100}, {14000, 14336, 0})});
  const auto s = scores(t, vm({1000, 1024, 5}));
  EXPECT_GT(s[0], s[1]);
  EXPECT_GT(s[1], s[2]);
}

TEST_F(SpreadTest, WeightsAndReservations) {
  // Usable = capacity - reserved: cpu (3000 + 1000) / 8000 = 0.5, memory (5000 + 1000) / 8000 = 0.75.
  const auto t = table({node("a", {10000, 10000, 0}, {3000, 5000, 0}, {2000, 2000, 0})});
  init("{}");
  EXPECT_NEAR(scores(t, vm({1000, 1000, 0}))[0], 0.25, 1e-12);
  init(R"({"memory_weight": 0})");  // cpu only
  EXPECT_NEAR(scores(t, vm({1000, 1000, 0}))[0], 0.5, 1e-12);
  init(R"({"cpu_weight": 2, "memory_weight": 1})");  // max(0.5, 0.5 x 0.75)
  EXPECT_NEAR(scores(t, vm({1000, 1000, 0}))[0], 0.5, 1e-12);
}

TEST_F(SpreadTest, NoUsableCapacityScoresZeroAndOverCommitIsClamped) {
  init("{}");
  const auto t =
      table({node("reserved-all", {4000, 4096, 0}, {}, {0, 8192, 0}), node("over", {4000, 4096, 0}, {8000, 0, 0})});
  const auto s = scores(t, vm({1000, 1024, 0}));
  EXPECT_EQ(s[0], 0.0);
  EXPECT_EQ(s[1], 0.0);
  EXPECT_EQ(explain(t, vm({1000, 1024, 0})).reason,
            "spreads: no usable capacity (cpu or memory: capacity - reserved <= 0)");
  EXPECT_EQ(explain(t, vm({1000, 1024, 0}), 1).reason, "spreads: 100% used after placement (cpu 100%, memory 25%)");
}

TEST_F(SpreadTest, ScoresStayInTheUnitRange) {
  init(R"({"cpu_weight": 0.5})");
  std::mt19937_64 rng(7);
  std::vector<NodeView> views;
  views.reserve(500);
  for (int i = 0; i < 500; ++i) {
    views.push_back(node("n" + std::to_string(i),
                         {static_cast<std::int64_t>(rng() % 64000), static_cast<std::int64_t>(rng() % 262144), 0},
                         {static_cast<std::int64_t>(rng() % 80000), static_cast<std::int64_t>(rng() % 300000), 0},
                         {static_cast<std::int64_t>(rng() % 8000), static_cast<std::int64_t>(rng() % 8192), 0}));
  }
  const auto t = table(views);
  for (const double s : scores(t, vm({2000, 4096, 0}))) {
    EXPECT_GE(s, 0.0);
    EXPECT_LE(s, 1.0);
  }
}

TEST_F(SpreadTest, InterfaceOneGivesTheSameScores) {
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

TEST_F(SpreadTest, ConfigErrorsNameTheKey) {
  auto s = policy_.init(host_, R"({"cpu_weight": -1})");
  EXPECT_EQ(s.code(), sdk::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("/cpu_weight"), std::string::npos) << s.message();
  s = policy_.init(host_, R"({"cpu_weight": 0, "memory_weight": 0})");
  EXPECT_NE(s.message().find("cannot both be 0"), std::string::npos) << s.message();
  EXPECT_EQ(policy_.init(host_, R"({"balance_weight": 1})").code(), sdk::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace novacron::policies
