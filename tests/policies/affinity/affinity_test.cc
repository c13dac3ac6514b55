// The affinity policy (docs/design/scheduler.md 3.3): hard and soft rules per node and per
// label domain, max_per_domain at the boundary, missing scope labels, conflicting hard rules
// (through the engine), explanations, request checks and applies().
#include "policies/affinity/affinity_policy.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <numeric>
#include <string>
#include <vector>

#include "host/scheduler/engine.h"
#include "host/scheduler/plugin_policy.h"
#include "tests/policies/policy_test_support.h"

namespace novacron::policy::affinity {
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

// Rows 0..4: node-a and node-b in rack r1, node-c without a rack, node-d and node-e in r2.
NodeTable five_nodes() {
  std::string error;
  auto t = NodeTable::build({node("node-a", {{"rack", "r1"}, {"zone", "z1"}}),
                             node("node-b", {{"rack", "r1"}, {"zone", "z1"}}), node("node-c", {{"zone", "z2"}}),
                             node("node-d", {{"rack", "r2"}, {"zone", "z2"}}), node("node-e", {{"rack", "r2"}})},
                            error);
  EXPECT_TRUE(t) << error;
  return std::move(*t);
}

GroupSpec group(const std::string& name, sdk::GroupAffinity affinity, bool hard, const std::string& scope,
                std::uint32_t max_per_domain = 0) {
  return {name, affinity, hard, scope, max_per_domain};
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

class AffinityTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(policy_.init(host_, "{}").is_ok()); }

  std::vector<std::uint8_t> filter(const PlacementQuery& q) {
    const PolicyContext ctx(q, table_);
    std::vector<std::uint32_t> rows(table_.rows());
    std::iota(rows.begin(), rows.end(), 0u);
    std::vector<std::uint8_t> out(rows.size(), 0xff);
    const sdk::Status s = policy_.filter_rows(ctx.sdk_query(), ctx.columns, rows, out);
    EXPECT_TRUE(s.is_ok()) << s.message();
    return out;
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
  std::pair<sdk::FilterVerdict, sdk::NodeScore> explain(const PlacementQuery& q, std::uint32_t row) {
    const PolicyContext ctx(q, table_);
    sdk::FilterVerdict verdict;
    sdk::NodeScore score;
    const sdk::Status s = policy_.explain_row(ctx.sdk_query(), ctx.columns, row, verdict, score);
    EXPECT_TRUE(s.is_ok()) << s.message();
    return {verdict, score};
  }
  sdk::Status check(const PlacementQuery& q) {
    const PolicyContext ctx(q, table_);
    return policy_.check_request(ctx.sdk_query());
  }
  std::uint32_t applies(const PlacementQuery& q) {
    const PolicyContext ctx(q, table_);
    return policy_.applies(ctx.sdk_query());
  }

  test::StubHostServices host_;
  AffinityPolicy policy_;
  NodeTable table_ = five_nodes();
};

using Codes = std::vector<std::uint8_t>;

TEST_F(AffinityTest, AppliesOnlyWithGroups) {
  EXPECT_EQ(applies(query({}, {})), 0u);
  EXPECT_EQ(applies(query({group("db", kAnti, true, "node")}, {})), sdk::kPolicyFilters);
  EXPECT_EQ(applies(query({group("db", kAnti, false, "node")}, {})), sdk::kPolicyScores);
  EXPECT_EQ(applies(query({group("db", kAnti, true, "node"), group("web", kAff, false, "rack")}, {})),
            sdk::kPolicyFilters | sdk::kPolicyScores);
  EXPECT_EQ(policy_.score_scale(), sdk::ScoreScale::kUnit);
  const auto codes = policy_.reason_codes();
  ASSERT_EQ(codes.size(), 4u);
  EXPECT_EQ(codes[kAntiAffinityFull - 1].code, "anti_affinity_full");
  EXPECT_EQ(codes[kAffinityElsewhere - 1].code, "affinity_elsewhere");
  EXPECT_EQ(codes[kScopeLabelMissing - 1].code, "scope_label_missing");
  EXPECT_EQ(codes[kMaxPerDomain - 1].code, "max_per_domain");
}

TEST_F(AffinityTest, HardAntiAffinityPerNode) {
  const auto q = query({group("db", kAnti, true, "node")}, {members({1}, {1})});
  EXPECT_EQ(filter(q), (Codes{0, kAntiAffinityFull, 0, 0, 0}));
  const auto [rejected, s1] = explain(q, 1);
  EXPECT_FALSE(rejected.pass);
  EXPECT_EQ(rejected.reason, "anti-affinity group db (hard, node): node-b already runs 1 member (max 1)");
  const auto [passed, s2] = explain(q, 0);
  EXPECT_TRUE(passed.pass);
  EXPECT_EQ(passed.reason, "anti-affinity group db (hard, node): node-a runs 0 members (max 1)");
  // The first member: nothing is full.
  EXPECT_EQ(filter(query({group("db", kAnti, true, "node")}, {})), (Codes{0, 0, 0, 0, 0}));
}

TEST_F(AffinityTest, HardAntiAffinityPerRackAndMissingLabel) {
  const auto q = query({group("db", kAnti, true, "rack")}, {members({0}, {1})});
  EXPECT_EQ(filter(q), (Codes{kAntiAffinityFull, kAntiAffinityFull, kScopeLabelMissing, 0, 0}));
  EXPECT_EQ(explain(q, 1).first.reason,
            "anti-affinity group db (hard, rack): rack r1 (node-b) already runs 1 member (max 1)");
  const auto [missing, s] = explain(q, 2);
  EXPECT_FALSE(missing.pass);
  EXPECT_EQ(missing.reason, "node-c has no label rack, required by anti-affinity group db (hard, rack)");
  // A label no node has: every row lacks it.
  EXPECT_EQ(
      filter(query({group("db", kAnti, true, "datacenter")}, {members({0}, {1})})),
      (Codes{kScopeLabelMissing, kScopeLabelMissing, kScopeLabelMissing, kScopeLabelMissing, kScopeLabelMissing}));
}

TEST_F(AffinityTest, MaxPerDomainBoundary) {
  // Rack r1 holds 1 member (node-a), rack r2 holds 2 (node-d, node-e): with 2 allowed per
  // rack, r1 takes one more and r2 is at the max.
  const auto anti = query({group("db", kAnti, true, "rack", 2)}, {members({0, 3, 4}, {1, 1, 1})});
  EXPECT_EQ(filter(anti), (Codes{0, 0, kScopeLabelMissing, kAntiAffinityFull, kAntiAffinityFull}));
  EXPECT_EQ(explain(anti, 4).first.reason,
            "anti-affinity group db (hard, rack, max 2): rack r2 (node-e) already runs 2 members (max 2)");

  const auto aff = query({group("web", kAff, true, "rack", 2)}, {members({0, 3, 4}, {1, 1, 1})});
  EXPECT_EQ(filter(aff), (Codes{0, 0, kScopeLabelMissing, kMaxPerDomain, kMaxPerDomain}));
  EXPECT_EQ(explain(aff, 3).first.reason,
            "affinity group web (hard, rack, max 2): rack r2 (node-d) already runs 2 members (max 2)");
  EXPECT_EQ(explain(aff, 1).first.reason,
            "affinity group web (hard, rack, max 2): rack r1 (node-b) runs 1 of its 3 members");

  // Per node, 2 allowed: a node with 1 passes, a node with 2 is full.
  const auto per_node = query({group("db", kAnti, true, "node", 2)}, {members({0, 1}, {1, 2})});
  EXPECT_EQ(filter(per_node), (Codes{0, kAntiAffinityFull, 0, 0, 0}));
}

TEST_F(AffinityTest, HardAffinityJoinsTheMembers) {
  // No members yet: anywhere.
  EXPECT_EQ(filter(query({group("web", kAff, true, "node")}, {})), (Codes{0, 0, 0, 0, 0}));
  EXPECT_EQ(explain(query({group("web", kAff, true, "node")}, {}), 2).first.reason,
            "affinity group web (hard, node): no members yet, node-c may hold the first");

  const auto per_node = query({group("web", kAff, true, "node")}, {members({3}, {2})});
  EXPECT_EQ(filter(per_node),
            (Codes{kAffinityElsewhere, kAffinityElsewhere, kAffinityElsewhere, 0, kAffinityElsewhere}));
  EXPECT_EQ(explain(per_node, 0).first.reason, "affinity group web (hard, node): node-a runs none of its 2 members");

  const auto per_rack = query({group("web", kAff, true, "rack")}, {members({3}, {2})});
  EXPECT_EQ(filter(per_rack), (Codes{kAffinityElsewhere, kAffinityElsewhere, kScopeLabelMissing, 0, 0}));
  EXPECT_TRUE(explain(per_rack, 4).first.pass);
  EXPECT_EQ(explain(per_rack, 4).first.reason,
            "affinity group web (hard, rack): rack r2 (node-e) runs 2 of its 2 members");

  // Members only on nodes outside the table: no row holds them, so every row is elsewhere.
  const auto outside = query({group("web", kAff, true, "node")}, {members({}, {}, 3)});
  EXPECT_EQ(filter(outside), (Codes{kAffinityElsewhere, kAffinityElsewhere, kAffinityElsewhere, kAffinityElsewhere,
                                    kAffinityElsewhere}));
}

TEST_F(AffinityTest, ConflictingHardRulesRejectEveryRow) {
  // A must join its member on node-a; B must avoid its member, also on node-a.
  const auto q =
      query({group("a", kAff, true, "node"), group("b", kAnti, true, "node")}, {members({0}, {1}), members({0}, {1})});
  EXPECT_EQ(filter(q),
            (Codes{kAntiAffinityFull, kAffinityElsewhere, kAffinityElsewhere, kAffinityElsewhere, kAffinityElsewhere}));
  EXPECT_EQ(explain(q, 0).first.reason, "anti-affinity group b (hard, node): node-a already runs 1 member (max 1)");

  // Through the engine: nothing fits, and the summary names both rules' codes.
  scheduler::PluginPolicy plugin("io.novacron.policy.affinity", &policy_, sdk::SchedulingPolicy::kInterfaceVersion);
  const scheduler::Engine engine({{&plugin, 1.0}}, {{&plugin, 1.0}});
  const scheduler::Decision d = engine.place(q, table_, /*commit=*/false);
  EXPECT_EQ(d.outcome, scheduler::Outcome::kNoFeasibleNode) << d.summary;
  ASSERT_EQ(d.filters.size(), 1u);
  std::vector<std::string> codes;
  for (const auto& r : d.filters[0].reasons) codes.push_back(r.code_name);
  EXPECT_NE(std::find(codes.begin(), codes.end(), "anti_affinity_full"), codes.end()) << d.summary;
  EXPECT_NE(std::find(codes.begin(), codes.end(), "affinity_elsewhere"), codes.end()) << d.summary;
  EXPECT_NE(d.summary.find(std::string(policy_.reason_codes()[kAntiAffinityFull - 1].text)), std::string::npos)
      << d.summary;
  EXPECT_NE(d.summary.find(std::string(policy_.reason_codes()[kAffinityElsewhere - 1].text)), std::string::npos)
      << d.summary;
}

TEST_F(AffinityTest, SoftScores) {
  // Anti-affinity per node, 3 members: node-a holds 2, node-b 1.
  const auto anti = query({group("db", kAnti, false, "node")}, {members({0, 1}, {2, 1})});
  EXPECT_EQ(filter(anti), (Codes{0, 0, 0, 0, 0})) << "soft rules never reject";
  auto s = score(anti);
  EXPECT_NEAR(s[0], 1.0 / 3, 1e-9);
  EXPECT_NEAR(s[1], 2.0 / 3, 1e-9);
  EXPECT_DOUBLE_EQ(s[2], 1.0);
  EXPECT_EQ(explain(anti, 0).second.reason,
            "anti-affinity group db (soft, node): node-a runs 2 of its 3 members, score 0.33");

  // Affinity per rack, 4 members: 3 in r1, 1 in r2; node-c has no rack: neutral.
  const auto aff = query({group("web", kAff, false, "rack")}, {members({0, 3}, {3, 1})});
  s = score(aff);
  EXPECT_DOUBLE_EQ(s[0], 0.75);
  EXPECT_DOUBLE_EQ(s[1], 0.75);
  EXPECT_DOUBLE_EQ(s[2], 0.5);
  EXPECT_DOUBLE_EQ(s[3], 0.25);
  EXPECT_DOUBLE_EQ(s[4], 0.25);

  // Without members, affinity is neutral.
  EXPECT_EQ(score(query({group("web", kAff, false, "node")}, {})), (std::vector<double>(5, 0.5)));

  // Two soft groups: the mean.
  const auto both = query({group("db", kAnti, false, "node"), group("web", kAff, false, "rack")},
                          {members({0, 1}, {2, 1}), members({0, 3}, {3, 1})});
  s = score(both);
  EXPECT_NEAR(s[0], (1.0 / 3 + 0.75) / 2, 1e-9);
  EXPECT_NEAR(s[2], (1.0 + 0.5) / 2, 1e-9);
  const auto [v, sc] = explain(both, 2);
  EXPECT_TRUE(v.pass);
  EXPECT_NEAR(sc.score, 0.75, 1e-9);
  EXPECT_NE(sc.reason.find("mean 0.75"), std::string::npos) << sc.reason;
}

TEST_F(AffinityTest, MissingScopeLabelIsNeutralUnderASoftRule) {
  const auto q = query({group("db", kAnti, false, "rack")}, {members({0}, {1})});
  EXPECT_EQ(filter(q), (Codes{0, 0, 0, 0, 0}));
  const auto s = score(q);
  EXPECT_DOUBLE_EQ(s[0], 0.0);  // r1 holds the only member
  EXPECT_DOUBLE_EQ(s[2], 0.5);
  EXPECT_DOUBLE_EQ(s[3], 1.0);
  const auto [verdict, sc] = explain(q, 2);
  EXPECT_TRUE(verdict.pass);
  EXPECT_DOUBLE_EQ(sc.score, 0.5);
  EXPECT_EQ(sc.reason, "node-c has no label rack: neutral (0.50) for anti-affinity group db (soft, rack)");
}

TEST_F(AffinityTest, CheckRequestRefusesContradictions) {
  EXPECT_TRUE(check(query({group("db", kAnti, true, "rack")}, {})).is_ok());
  EXPECT_TRUE(check(query({}, {})).is_ok());

  const sdk::Status no_scope = check(query({group("db", kAnti, true, "")}, {}));
  EXPECT_EQ(no_scope.code(), sdk::StatusCode::kInvalidArgument);
  EXPECT_EQ(no_scope.message().rfind("/placement/groups/0/scope: ", 0), 0u) << no_scope.message();

  const sdk::Status no_name = check(query({group("db", kAnti, true, "node"), group("", kAff, true, "node")}, {}));
  EXPECT_EQ(no_name.message().rfind("/placement/groups/1/name: ", 0), 0u) << no_name.message();

  const sdk::Status twice = check(
      query({group("web", kAff, true, "node"), group("db", kAnti, true, "rack"), group("db", kAff, true, "rack")}, {}));
  EXPECT_EQ(twice.code(), sdk::StatusCode::kInvalidArgument);
  EXPECT_EQ(twice.message(),
            "/placement/groups/2: group db appears twice with different rules: anti-affinity group db (hard, rack) at "
            "/placement/groups/1, affinity group db (hard, rack) here");
  // The same rule twice is no contradiction.
  EXPECT_TRUE(check(query({group("db", kAnti, true, "rack"), group("db", kAnti, true, "rack")}, {})).is_ok());
}

TEST_F(AffinityTest, ConfigHasNoKeys) {
  AffinityPolicy p;
  test::StubHostServices host;
  EXPECT_TRUE(p.init(host, "{}").is_ok());
  const sdk::Status s = p.init(host, R"({"max_per_domain": 2})");
  EXPECT_EQ(s.code(), sdk::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("/max_per_domain: unknown key"), std::string::npos) << s.message();
}

// The filter's per-request rule tables give the same verdict as the per-row explanation for
// every row: anti-affinity and affinity, node and rack scope, limits, rows without the
// scope label, groups spread over more domains than the short scan handles, several
// groups at once, and rows asked in any order.
TEST(AffinityRuleTableTest, FilterAgreesWithExplanationOnEveryRow) {
  std::vector<NodeView> views;
  for (int i = 0; i < 120; ++i) {
    std::map<std::string, std::string> labels;
    if (i % 9 != 4) labels["rack"] = "r" + std::to_string(i % 40);  // some rows have no rack
    views.push_back(node("n" + std::to_string(i), labels));
  }
  std::string error;
  auto built = NodeTable::build(views, error);
  ASSERT_TRUE(built) << error;
  const NodeTable table = std::move(*built);
  test::StubHostServices host;
  AffinityPolicy policy;
  ASSERT_TRUE(policy.init(host, "{}").is_ok());

  std::vector<GroupMembers> spreads;
  // 3 members on 2 rows; 30 members over 30 rows (past the scan); none yet.
  spreads.push_back(members({7, 50}, {2, 1}));
  {
    std::vector<std::uint32_t> rows, counts;
    for (std::uint32_t r = 0; r < 30; ++r) {
      rows.push_back(r * 4);
      counts.push_back(1 + r % 3);
    }
    spreads.push_back(members(rows, counts));
  }
  spreads.push_back(members({}, {}));
  const std::vector<GroupSpec> rules = {
      group("a", kAnti, true, "node"),        group("b", kAnti, true, "rack"), group("c", kAnti, true, "rack", 2),
      group("d", kAff, true, "rack"),         group("e", kAff, true, "rack", 3), group("f", kAff, true, "node", 2),
      group("g", kAnti, true, "no-such-label"),
  };
  std::vector<std::uint32_t> rows(table.rows());
  std::iota(rows.begin(), rows.end(), 0u);
  std::reverse(rows.begin(), rows.end());
  size_t checked = 0, rejected = 0;
  const auto agree = [&](const PlacementQuery& q, const std::string& what) {
    const PolicyContext ctx(q, table);
    std::vector<std::uint8_t> codes(rows.size(), 0xff);
    ASSERT_TRUE(policy.filter_rows(ctx.sdk_query(), ctx.columns, rows, codes).is_ok());
    for (size_t i = 0; i < rows.size(); ++i) {
      sdk::FilterVerdict verdict;
      sdk::NodeScore score;
      ASSERT_TRUE(policy.explain_row(ctx.sdk_query(), ctx.columns, rows[i], verdict, score).is_ok());
      EXPECT_EQ(codes[i] == 0, verdict.pass) << what << " row " << rows[i] << ": " << verdict.reason;
      ++checked;
      rejected += codes[i] != 0 ? 1 : 0;
    }
  };
  for (const auto& rule : rules) {
    for (size_t m = 0; m < spreads.size(); ++m) {
      agree(query({rule}, {spreads[m]}), rule.name + " with spread " + std::to_string(m));
    }
  }
  agree(query({rules[1], rules[4]}, {spreads[0], spreads[1]}), "two groups");
  EXPECT_EQ(checked, (rules.size() * spreads.size() + 1) * table.rows());
  EXPECT_GT(rejected, checked / 10);  // the cases reject a fair share of rows
}

}  // namespace
}  // namespace novacron::policy::affinity
