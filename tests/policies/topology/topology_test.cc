// The topology policy (docs/design/scheduler.md 3.5, with the model in the plugin's config):
// the TopologyModel's relations and links, close and spread scores, `within`, missing labels,
// explanations, config errors, applies(), and a rack-spread group placed through the engine.
#include "policies/topology/topology_policy.h"

#include <gtest/gtest.h>

#include <map>
#include <numeric>
#include <set>
#include <string>
#include <vector>

#include "host/scheduler/engine.h"
#include "host/scheduler/plugin_policy.h"
#include "tests/policies/policy_test_support.h"

namespace novacron::policy::topology {
namespace {

using scheduler::GroupMembers;
using scheduler::GroupSpec;
using scheduler::NodeTable;
using scheduler::NodeView;
using scheduler::PlacementQuery;
using scheduler::PolicyContext;

constexpr auto kAnti = sdk::GroupAffinity::kAntiAffinity;
constexpr auto kAff = sdk::GroupAffinity::kAffinity;

NodeView node(const std::string& name, std::map<std::string, std::string> labels) {
  NodeView v;
  v.name = name;
  v.capacity = {16000, 65536, 500};
  v.labels = std::move(labels);
  v.drivers = {{"kvm", {}}};
  return v;
}

std::map<std::string, std::string> at(const std::string& dc, const std::string& rack) {
  return {{"datacenter", dc}, {"rack", rack}};
}

// Row: 0 a dc-1/r1, 1 b dc-1/r1, 2 c dc-1/r2, 3 d dc-1/r3, 4 e dc-2/r1 (another "r1"),
// 5 f dc-2/r2, 6 g dc-3/r1, 7 h no labels, 8 i dc-1 without a rack, 9 j dc-1 without a rack,
// 10 k no labels.
NodeTable cluster() {
  std::string error;
  auto t = NodeTable::build(
      {node("node-a", at("dc-1", "r1")), node("node-b", at("dc-1", "r1")), node("node-c", at("dc-1", "r2")),
       node("node-d", at("dc-1", "r3")), node("node-e", at("dc-2", "r1")), node("node-f", at("dc-2", "r2")),
       node("node-g", at("dc-3", "r1")), node("node-h", {}), node("node-i", {{"datacenter", "dc-1"}}),
       node("node-j", {{"datacenter", "dc-1"}}), node("node-k", {})},
      error);
  EXPECT_TRUE(t) << error;
  return std::move(*t);
}

GroupSpec group(const std::string& name, sdk::GroupAffinity affinity, const std::string& scope = "node") {
  return {name, affinity, /*hard=*/false, scope, 0};
}

GroupMembers members(std::vector<std::uint32_t> rows, std::vector<std::uint32_t> counts, std::uint32_t total = 0) {
  GroupMembers m;
  m.rows = std::move(rows);
  m.counts = std::move(counts);
  m.members = total != 0 ? total : std::accumulate(m.counts.begin(), m.counts.end(), 0u);
  return m;
}

PlacementQuery query(std::vector<GroupSpec> groups, std::vector<GroupMembers> m) {
  PlacementQuery q;
  q.name = "vm-1";
  q.resources = {1000, 1024, 10};
  q.groups = std::move(groups);
  q.members = std::move(m);
  return q;
}

class TopologyTest : public ::testing::Test {
 protected:
  void SetUp() override { configure("{}"); }

  void configure(const std::string& config) {
    const sdk::Status s = policy_.init(host_, config);
    ASSERT_TRUE(s.is_ok()) << s.message();
  }
  std::vector<double> score(const PlacementQuery& q) {
    const PolicyContext ctx(q, table_);
    std::vector<std::uint32_t> rows(table_.rows());
    std::iota(rows.begin(), rows.end(), 0u);
    std::vector<double> out(rows.size(), -1);
    const sdk::Status s = policy_.score_rows(ctx.sdk_query(), ctx.columns, rows, out);
    EXPECT_TRUE(s.is_ok()) << s.message();
    return out;
  }
  sdk::NodeScore explain(const PlacementQuery& q, std::uint32_t row) {
    const PolicyContext ctx(q, table_);
    sdk::FilterVerdict verdict;
    sdk::NodeScore score;
    const sdk::Status s = policy_.explain_row(ctx.sdk_query(), ctx.columns, row, verdict, score);
    EXPECT_TRUE(s.is_ok()) << s.message();
    EXPECT_TRUE(verdict.pass);
    return score;
  }
  std::uint32_t applies(const PlacementQuery& q) {
    const PolicyContext ctx(q, table_);
    return policy_.applies(ctx.sdk_query());
  }

  test::StubHostServices host_;
  TopologyPolicy policy_;
  NodeTable table_ = cluster();
};

TEST_F(TopologyTest, AppliesOnlyWithGroups) {
  EXPECT_EQ(applies(query({}, {})), 0u);
  EXPECT_EQ(applies(query({group("web", kAff)}, {})), sdk::kPolicyScores);
  EXPECT_EQ(policy_.roles(), sdk::kPolicyScores);
  EXPECT_EQ(policy_.score_scale(), sdk::ScoreScale::kUnit);
}

TEST_F(TopologyTest, ModelRelationsAndDefaults) {
  const TopologyConfig& c = policy_.config();
  EXPECT_EQ(c.levels, (std::vector<std::string>{"datacenter", "rack"}));
  const sdk::NodeColumns cols = table_.columns();
  const TopologyModel m(c, cols);
  EXPECT_EQ(m.relation_kind(0, 0), Relation::kSameNode);
  EXPECT_EQ(m.relation_kind(0, 1), Relation::kSameRack);
  EXPECT_EQ(m.relation_kind(0, 2), Relation::kSameDatacenter);
  EXPECT_EQ(m.relation_kind(0, 4), Relation::kBetweenDatacenters) << "r1 of dc-2 is another rack";
  EXPECT_EQ(m.relation_kind(0, 8), Relation::kSameDatacenter) << "no rack label: shares the datacenter only";
  EXPECT_EQ(m.relation_kind(8, 9), Relation::kSameDatacenter) << "two missing racks are not one rack";
  EXPECT_EQ(m.relation_kind(7, 10), Relation::kBetweenDatacenters) << "unknown equals nothing";
  const LinkInfo same_rack = m.relation(1, 0);
  EXPECT_DOUBLE_EQ(same_rack.latency_ms, 0.2);
  EXPECT_DOUBLE_EQ(same_rack.bandwidth_mbps, 25000);
  EXPECT_FALSE(same_rack.link);
  EXPECT_DOUBLE_EQ(m.relation(0, 0).latency_ms, 0.05);
  EXPECT_DOUBLE_EQ(m.relation(0, 0).bandwidth_mbps, 100000);
  EXPECT_DOUBLE_EQ(m.relation(0, 3).bandwidth_mbps, 10000);
  EXPECT_DOUBLE_EQ(m.relation(0, 6).latency_ms, 30);
  EXPECT_DOUBLE_EQ(m.relation(0, 6).bandwidth_mbps, 1000);
  EXPECT_DOUBLE_EQ(m.worst_latency_ms(), 30);
  EXPECT_STREQ(relation_name(Relation::kSameRack), "same_rack");
}

TEST_F(TopologyTest, ClosePrefersSameNodeThenRackThenDatacenter) {
  // An affinity group without a config entry: close at the node level. One member on node-a.
  const auto q = query({group("web", kAff)}, {members({0}, {1})});
  const auto s = score(q);
  EXPECT_NEAR(s[0], 1 - 0.05 / 30, 1e-9);
  EXPECT_NEAR(s[1], 1 - 0.2 / 30, 1e-9);
  EXPECT_NEAR(s[2], 1 - 1.0 / 30, 1e-9);
  EXPECT_NEAR(s[4], 0.0, 1e-9);
  EXPECT_GT(s[0], s[1]);
  EXPECT_GT(s[1], s[2]);
  EXPECT_GT(s[2], s[4]);
  EXPECT_DOUBLE_EQ(s[7], 0.0) << "no labels: between datacenters";
  EXPECT_NEAR(s[8], s[2], 1e-12) << "no rack label, same datacenter";
  EXPECT_EQ(explain(q, 1).reason, "close to group web: mean latency 0.2 ms to 1 member, score 0.99");
  EXPECT_EQ(explain(q, 7).reason,
            "close to group web: mean latency 30 ms to 1 member (datacenter label missing: counted as between "
            "datacenters), score 0.00");

  // Weighted by counts: 2 members on node-a, 1 on node-c; from node-b: (2 x 0.2 + 1 x 1) / 3.
  const auto weighted = query({group("web", kAff)}, {members({0, 2}, {2, 1})});
  EXPECT_NEAR(score(weighted)[1], 1 - (2 * 0.2 + 1.0) / 3 / 30, 1e-9);
  EXPECT_EQ(explain(weighted, 1).reason, "close to group web: mean latency 0.467 ms to 3 members, score 0.98");

  // No members yet: neutral.
  EXPECT_EQ(score(query({group("web", kAff)}, {})), std::vector<double>(table_.rows(), 0.5));
  EXPECT_EQ(explain(query({group("web", kAff)}, {}), 3).reason, "close to group web: no members yet, neutral (0.50)");
}

TEST_F(TopologyTest, CloseByRackTreatsTheRackAsOneNode) {
  configure(R"({"groups": {"web": {"mode": "close", "level": "rack"}}})");
  const auto s = score(query({group("web", kAff)}, {members({0}, {1})}));
  EXPECT_NEAR(s[0], 1 - 0.2 / 30, 1e-9);
  EXPECT_NEAR(s[1], s[0], 1e-12);
  EXPECT_NEAR(s[2], 1 - 1.0 / 30, 1e-9);
}

TEST_F(TopologyTest, SpreadAcrossRacksPrefersAnEmptyRack) {
  // An anti-affinity group without a config entry: spread down to the rack; weights 2/3 for
  // the datacenter, 1/3 for the rack. Members on node-a (dc-1/r1) and node-e (dc-2/r1).
  const auto q = query({group("db", kAnti, "rack")}, {members({0, 4}, {1, 1})});
  const auto s = score(q);
  EXPECT_NEAR(s[1], 2.0 / 3 * (1 - 1.0 / 3) + 1.0 / 3 * (1 - 1.0 / 3), 1e-9);  // dc-1/r1: used rack
  EXPECT_NEAR(s[2], 2.0 / 3 * (1 - 1.0 / 3) + 1.0 / 3, 1e-9);                  // dc-1/r2: empty rack
  EXPECT_NEAR(s[6], 1.0, 1e-9);  // dc-3/r1: an empty datacenter (its "r1" is another rack)
  EXPECT_GT(s[2], s[1]);
  EXPECT_GT(s[6], s[2]);
  EXPECT_EQ(explain(q, 2).reason,
            "spread group db over rack: r2 holds 0 of 2 members, datacenter dc-1 holds 1, "
            "score 0.78");
}

TEST_F(TopologyTest, SpreadAcrossDatacentersWeighsOuterLevelsMore) {
  // Two members in dc-1 (racks r1 and r2), one in dc-2 (r1); 4 = members + 1.
  const auto q = query({group("db", kAnti)}, {members({0, 2, 4}, {1, 1, 1})});
  const auto s = score(q);
  const double empty_rack_busy_dc = 2.0 / 3 * (1 - 2.0 / 4) + 1.0 / 3;  // node-d, dc-1/r3
  const double used_rack_quiet_dc = 2.0 / 3 * (1 - 1.0 / 4) + 1.0 / 3 * (1 - 1.0 / 4);
  EXPECT_NEAR(s[3], empty_rack_busy_dc, 1e-9);
  EXPECT_NEAR(s[4], used_rack_quiet_dc, 1e-9);
  EXPECT_GT(s[4], s[3]) << "a used rack in the quieter datacenter beats an empty rack in the busier one";
  EXPECT_GT(s[5], s[4]);  // dc-2/r2: empty rack, quieter datacenter
  EXPECT_GT(s[6], s[5]);  // dc-3: nothing there
  EXPECT_NEAR(s[6], 1.0, 1e-9);

  // Spread over datacenters only: racks do not matter.
  configure(R"({"groups": {"db": {"mode": "spread", "level": "datacenter"}}})");
  const auto dc = score(q);
  EXPECT_NEAR(dc[3], 1 - 2.0 / 4, 1e-9);
  EXPECT_NEAR(dc[1], dc[3], 1e-12);
  EXPECT_NEAR(dc[4], 1 - 1.0 / 4, 1e-9);
  EXPECT_EQ(explain(q, 5).reason, "spread group db over datacenter: dc-2 holds 1 of 3 members, score 0.75");

  // Down to the node: weights 4/7, 2/7, 1/7.
  configure(R"({"groups": {"db": {"mode": "spread", "level": "node"}}})");
  const auto n = score(q);
  EXPECT_NEAR(n[0], 4.0 / 7 * (1 - 2.0 / 4) + 2.0 / 7 * (1 - 1.0 / 4) + 1.0 / 7 * (1 - 1.0 / 4), 1e-9);
  EXPECT_NEAR(n[1], 4.0 / 7 * (1 - 2.0 / 4) + 2.0 / 7 * (1 - 1.0 / 4) + 1.0 / 7, 1e-9);
  EXPECT_EQ(explain(q, 1).reason,
            "spread group db over node: node-b holds 0 of 3 members, rack r1 holds 1, datacenter dc-1 holds 2, "
            "score 0.64");
}

TEST_F(TopologyTest, WithinConfinesToTheFirstMembersDatacenter) {
  configure(R"({"groups": {"db": {"mode": "spread", "level": "rack", "within": "datacenter"}}})");
  // The first member listed (node-e) is in dc-2; a later one in dc-1.
  const auto q = query({group("db", kAnti)}, {members({4, 0}, {1, 1})});
  const auto s = score(q);
  EXPECT_GT(s[5], 0.0);  // dc-2/r2
  EXPECT_GT(s[5], s[4]);
  for (const std::uint32_t row : {0u, 1u, 2u, 3u, 6u, 7u, 8u}) EXPECT_DOUBLE_EQ(s[row], 0.0) << row;
  EXPECT_EQ(explain(q, 2).reason, "spread group db over rack: outside datacenter dc-2 of the first member, score 0.00");
  EXPECT_EQ(explain(q, 7).reason,
            "spread group db over rack: outside datacenter dc-2 of the first member (datacenter label missing: not "
            "known to be inside), score 0.00");
  // No members yet: nothing to confine to.
  const auto first = score(query({group("db", kAnti)}, {}));
  EXPECT_EQ(first, std::vector<double>(table_.rows(), 1.0));

  // Close within a datacenter too.
  configure(R"({"groups": {"web": {"mode": "close", "within": "datacenter"}}})");
  const auto c = score(query({group("web", kAff)}, {members({0}, {1})}));
  EXPECT_GT(c[3], 0.9);
  EXPECT_DOUBLE_EQ(c[4], 0.0);
}

TEST_F(TopologyTest, MissingLabelsShareOneUnknownDomain) {
  // One member on node-i (dc-1, no rack): node-j (also without a rack) is in the same unknown
  // rack, not an independent one.
  const auto q = query({group("db", kAnti)}, {members({8}, {1})});
  const auto s = score(q);
  EXPECT_NEAR(s[9], 2.0 / 3 * 0.5 + 1.0 / 3 * 0.5, 1e-9);
  EXPECT_NEAR(s[2], 2.0 / 3 * 0.5 + 1.0 / 3, 1e-9);
  EXPECT_GT(s[2], s[9]);
  EXPECT_EQ(explain(q, 9).reason,
            "spread group db over rack: unknown rack holds 1 of 1 member, datacenter dc-1 holds 1 (rack label "
            "missing: counted as one unknown rack), score 0.50");

  // A member on an unlabelled node: other unlabelled nodes share its unknown datacenter and rack.
  const auto none = query({group("db", kAnti)}, {members({7}, {1})});
  const auto n = score(none);
  EXPECT_NEAR(n[10], 0.5, 1e-9);
  EXPECT_NEAR(n[0], 1.0, 1e-9);
  const std::string text = explain(none, 10).reason;
  EXPECT_NE(text.find("rack label missing: counted as one unknown rack"), std::string::npos) << text;
  EXPECT_NE(text.find("datacenter label missing: counted as one unknown datacenter"), std::string::npos) << text;
}

TEST_F(TopologyTest, LinksOverrideTheDefaults) {
  configure(R"({"links": [
      {"between": ["dc-1", "dc-2"], "latency_ms": 5, "bandwidth_mbps": 5000},
      {"between": ["dc-1/r1", "dc-1/r2"], "latency_ms": 0.1},
      {"between": ["dc-3", "dc-9"], "latency_ms": 80}]})");
  const sdk::NodeColumns cols = table_.columns();
  LinkCache cache;
  const TopologyModel m(policy_.config(), cols, &cache);
  const LinkInfo eu = m.relation(4, 0);  // either direction
  EXPECT_TRUE(eu.link);
  EXPECT_EQ(eu.relation, Relation::kBetweenDatacenters);
  EXPECT_DOUBLE_EQ(eu.latency_ms, 5);
  EXPECT_DOUBLE_EQ(eu.bandwidth_mbps, 5000);
  EXPECT_DOUBLE_EQ(m.relation(0, 6).latency_ms, 30);
  const LinkInfo racks = m.relation(0, 2);
  EXPECT_TRUE(racks.link);
  EXPECT_DOUBLE_EQ(racks.latency_ms, 0.1);
  EXPECT_DOUBLE_EQ(racks.bandwidth_mbps, 10000) << "not given: the same_datacenter default";
  EXPECT_DOUBLE_EQ(m.relation(0, 3).latency_ms, 1.0);
  EXPECT_FALSE(m.relation(4, 5).link) << "dc-1/r1-dc-1/r2 is not dc-2's r1-r2";
  EXPECT_DOUBLE_EQ(m.worst_latency_ms(), 80) << "a slower link is the worst latency";
  // The cache serves the same layout again.
  EXPECT_EQ(cache.get(policy_.config(), cols).get(), cache.get(policy_.config(), cols).get());

  const auto s = score(query({group("web", kAff)}, {members({0}, {1})}));
  EXPECT_NEAR(s[4], 1 - 5.0 / 80, 1e-9);
  EXPECT_NEAR(s[6], 1 - 30.0 / 80, 1e-9);
  EXPECT_GT(s[4], s[6]);
  EXPECT_GT(s[2], s[3]) << "the fast rack link";
}

TEST_F(TopologyTest, SeveralGroupsScoreTheMean) {
  const auto q = query({group("web", kAff), group("db", kAnti)}, {members({0}, {1}), members({0}, {1})});
  const auto s = score(q);
  const double close = 1 - 0.2 / 30;
  const double spread = 2.0 / 3 * 0.5 + 1.0 / 3 * 0.5;
  EXPECT_NEAR(s[1], (close + spread) / 2, 1e-9);
  const std::string text = explain(q, 1).reason;
  EXPECT_NE(text.find("close to group web: "), std::string::npos) << text;
  EXPECT_NE(text.find("; spread group db over rack: "), std::string::npos) << text;
  EXPECT_NE(text.find("; mean 0.75"), std::string::npos) << text;
}

TEST_F(TopologyTest, ConfigErrorsAreRejected) {
  TopologyPolicy p;
  test::StubHostServices host;
  const auto error = [&](const std::string& config) {
    const sdk::Status s = p.init(host, config);
    EXPECT_EQ(s.code(), sdk::StatusCode::kInvalidArgument) << config;
    return s.message();
  };
  EXPECT_TRUE(p.init(host, "{}").is_ok());
  EXPECT_EQ(error(R"({"colour": "blue"})"), "/colour: unknown key");
  EXPECT_EQ(error(R"({"groups": {"db": {"mode": "apart"}}})"),
            "/groups/db/mode: expected \"close\" or \"spread\", got \"apart\"");
  EXPECT_EQ(error(R"({"groups": {"db": {"mode": "spread", "level": "zone"}}})"),
            "/groups/db/level: expected one of \"datacenter\", \"rack\", \"node\", got \"zone\"");
  EXPECT_EQ(error(R"({"groups": {"db": {"mode": "spread", "level": "datacenter", "within": "rack"}}})"),
            "/groups/db/within: \"rack\" must be a level outside \"datacenter\"");
  EXPECT_EQ(error(R"({"groups": {"db": {"mode": "close", "size": 3}}})"), "/groups/db/size: unknown key");
  EXPECT_EQ(error(R"({"latency_ms": {"same_rack": -1}})"),
            "/latency_ms/same_rack: expected a number between 0 and 1000000, got -1");
  EXPECT_EQ(error(R"({"latency_ms": {"same_shelf": 1}})"), "/latency_ms/same_shelf: unknown key");
  EXPECT_NE(error(R"({"levels": []})").find("/levels: expected an array of 1 to 8 label keys"), std::string::npos);
  EXPECT_EQ(error(R"({"levels": ["zone", "node"]})"),
            "/levels/1: \"node\" is the innermost level already; list only label keys");
  EXPECT_NE(error(R"({"links": [{"between": ["dc-1"], "latency_ms": 3}]})").find("/links/0/between: expected two"),
            std::string::npos);
  EXPECT_EQ(error(R"({"links": [{"between": ["dc-1", "dc-2"]}]})"),
            "/links/0: expected latency_ms, bandwidth_mbps or both");
  EXPECT_NE(error("{not json").find("config is not valid JSON"), std::string::npos);
  // Levels of the config are what groups may name.
  EXPECT_TRUE(p.init(host, R"({"levels": ["region", "zone"], "groups": {"db": {"mode": "spread", "level": "zone",
                              "within": "region"}}})")
                  .is_ok());
  EXPECT_EQ(p.config().levels, (std::vector<std::string>{"region", "zone"}));
}

TEST_F(TopologyTest, CheckRequestRefusesUnevenMembers) {
  const PlacementQuery q = query({group("db", kAnti)}, {members({0, 1}, {1})});
  const PolicyContext ctx(q, table_);
  const sdk::Status s = policy_.check_request(ctx.sdk_query());
  EXPECT_EQ(s.code(), sdk::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "/placement/groups/0: 2 member rows but 1 counts");
}

TEST(TopologyEngineTest, ThreeMemberRackSpreadGroupLandsOnThreeRacks) {
  std::string error;
  std::vector<NodeView> nodes;
  for (const std::string rack : {"r1", "r2", "r3"}) {
    for (const std::string n : {"a", "b"}) nodes.push_back(node("node-" + rack + n, at("dc-1", rack)));
  }
  auto table = NodeTable::build(nodes, error);
  ASSERT_TRUE(table) << error;

  test::StubHostServices host;
  TopologyPolicy policy;
  ASSERT_TRUE(policy.init(host, R"({"groups": {"db": {"mode": "spread", "level": "rack"}}})").is_ok());
  scheduler::PluginPolicy plugin("io.novacron.policy.topology", &policy, sdk::SchedulingPolicy::kInterfaceVersion);
  const scheduler::Engine engine({}, {{&plugin, 1.0}});

  GroupMembers placed;
  std::set<std::string> racks;
  for (int i = 0; i < 3; ++i) {
    PlacementQuery q = query({group("db", kAnti, "rack")}, {placed});
    q.name = "db-" + std::to_string(i);
    const scheduler::Decision d = engine.place(q, *table, /*commit=*/true);
    ASSERT_EQ(d.outcome, scheduler::Outcome::kPlaced) << d.summary;
    ASSERT_TRUE(d.row.has_value());
    racks.insert(std::string(*table->label(*d.row, "rack")));
    placed.rows.push_back(*d.row);
    placed.counts.push_back(1);
    ++placed.members;
    if (i > 0) {
      ASSERT_FALSE(d.top.empty());
      ASSERT_EQ(d.top[0].reasons.size(), 1u);
      EXPECT_NE(d.top[0].reasons[0].find(" holds 0 of " + std::to_string(i)), std::string::npos) << d.top[0].reasons[0];
    }
  }
  EXPECT_EQ(racks, (std::set<std::string>{"r1", "r2", "r3"}));
}

}  // namespace
}  // namespace novacron::policy::topology
