// The constraints policy (docs/design/scheduler.md 3.4) over the engine's node columns: the
// design's example, missing labels, attributes from the columns, request errors with their
// columns, the label-only bitset cache across allocation and layout changes, dynamic
// expressions that follow allocations, the LRU bound, and concurrent callers.
#include "policies/constraints/constraints_policy.h"

#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <numeric>
#include <string>
#include <thread>
#include <vector>

#include "host/scheduler/engine.h"
#include "tests/policies/policy_test_support.h"

namespace novacron::policy::constraints {
namespace {

using scheduler::NodeTable;
using scheduler::NodeView;
using scheduler::PlacementQuery;
using scheduler::PolicyContext;

constexpr const char* kDesignExample = R"(zone == "eu-1" && !(rack in ["r3", "r4"]) && mem_free_mib > 4096)";

NodeView node(const std::string& name, std::map<std::string, std::string> labels, std::int64_t memory_mib = 65536,
              std::int64_t allocated_mib = 0) {
  NodeView v;
  v.name = name;
  v.capacity = {16000, memory_mib, 500};
  v.reserved = {1000, 2048, 0};
  v.allocated = {0, allocated_mib, 0};
  v.labels = std::move(labels);
  v.drivers = {{"kvm", {"live_migration", "snapshots"}}};
  return v;
}

// node-a fits; node-b is in rack r3; node-c has exactly 4096 MiB free (not > 4096); node-d is
// in eu-2; node-e has no rack (so it is not in r3 or r4); node-f has no zone.
std::vector<NodeView> six_nodes() {
  std::vector<NodeView> v = {node("node-a", {{"zone", "eu-1"}, {"rack", "r1"}}, 65536, 8192),
                             node("node-b", {{"zone", "eu-1"}, {"rack", "r3"}}),
                             node("node-c", {{"zone", "eu-1"}, {"rack", "r2"}}, 8192, 2048),
                             node("node-d", {{"zone", "eu-2"}, {"rack", "r1"}}),
                             node("node-e", {{"zone", "eu-1"}}),
                             node("node-f", {{"rack", "r1"}})};
  v[5].drivers = {{"kvm", {}}, {"lxc", {"snapshots"}}};
  return v;
}

NodeTable table_of(const std::vector<NodeView>& views) {
  std::string error;
  auto t = NodeTable::build(views, error);
  EXPECT_TRUE(t) << error;
  return std::move(*t);
}

PlacementQuery query(const std::string& constraints, const std::string& driver = "") {
  PlacementQuery q;
  q.name = "vm-1";
  q.resources = {1000, 1024, 10};
  q.driver = driver;
  q.constraints = constraints;
  return q;
}

using Codes = std::vector<std::uint8_t>;
constexpr std::uint8_t kNo = ConstraintsPolicy::kRejectConstraint;

class ConstraintsPolicyTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(policy_.init(host_, "{}").is_ok()); }

  Codes filter(const PlacementQuery& q, const NodeTable& table) {
    const PolicyContext ctx(q, table);
    std::vector<std::uint32_t> rows(table.rows());
    std::iota(rows.begin(), rows.end(), 0u);
    Codes out(rows.size(), 0xff);
    const sdk::Status s = policy_.filter_rows(ctx.sdk_query(), ctx.columns, rows, out);
    EXPECT_TRUE(s.is_ok()) << s.message();
    return out;
  }
  Codes filter(const std::string& text) { return filter(query(text), table_); }

  // Straight evaluation, no cache: what the policy must agree with.
  Codes uncached(const std::string& text, const NodeTable& table) { return uncached(query(text), table); }
  Codes uncached(const PlacementQuery& q, const NodeTable& table) {
    const auto parsed = Expression::parse(q.constraints);
    const auto* e = std::get_if<Expression>(&parsed);
    EXPECT_NE(e, nullptr);
    const PolicyContext ctx(q, table);
    ColumnFacts facts(ctx.columns, ctx.sdk_query());
    Codes out;
    for (std::uint32_t r = 0; r < table.rows(); ++r) {
      facts.set_row(r);
      out.push_back(e != nullptr && e->matches(facts) ? 0 : kNo);
    }
    return out;
  }

  sdk::Status check(const std::string& text) {
    const PlacementQuery q = query(text);
    const PolicyContext ctx(q, table_);
    return policy_.check_request(ctx.sdk_query());
  }

  sdk::FilterVerdict explain(const std::string& text, std::uint32_t row) {
    const PlacementQuery q = query(text);
    const PolicyContext ctx(q, table_);
    sdk::FilterVerdict verdict;
    sdk::NodeScore score;
    const sdk::Status s = policy_.explain_row(ctx.sdk_query(), ctx.columns, row, verdict, score);
    EXPECT_TRUE(s.is_ok()) << s.message();
    return verdict;
  }

  test::StubHostServices host_;
  ConstraintsPolicy policy_;
  NodeTable table_ = table_of(six_nodes());
};

TEST_F(ConstraintsPolicyTest, DesignExample) {
  EXPECT_EQ(filter(kDesignExample), (Codes{0, kNo, kNo, kNo, 0, kNo}));
  EXPECT_TRUE(check(kDesignExample).is_ok());

  const sdk::FilterVerdict no = explain(kDesignExample, 1);
  EXPECT_FALSE(no.pass);
  EXPECT_EQ(no.reason, std::string("does not match: ") + kDesignExample);
  const sdk::FilterVerdict yes = explain(kDesignExample, 0);
  EXPECT_TRUE(yes.pass);
  EXPECT_EQ(yes.reason, std::string("matches: ") + kDesignExample);

  const auto codes = policy_.reason_codes();
  ASSERT_EQ(codes.size(), 1u);
  EXPECT_EQ(codes[0].code, "constraint");
  EXPECT_EQ(codes[0].text, "does not match the constraints");
}

TEST_F(ConstraintsPolicyTest, AppliesOnlyWithConstraints) {
  const PlacementQuery none = query("");
  const PolicyContext ctx(none, table_);
  EXPECT_EQ(policy_.applies(ctx.sdk_query()), 0u);
  EXPECT_TRUE(policy_.check_request(ctx.sdk_query()).is_ok());
  const PlacementQuery some = query("true");
  const PolicyContext ctx2(some, table_);
  EXPECT_EQ(policy_.applies(ctx2.sdk_query()), sdk::kPolicyFilters);
}

TEST_F(ConstraintsPolicyTest, MissingLabelsCompareFalse) {
  // node-f has no zone: every comparison with it is false, != included; its negation is true.
  EXPECT_EQ(filter(R"(zone == "eu-1")"), (Codes{0, 0, 0, kNo, 0, kNo}));
  EXPECT_EQ(filter(R"(zone != "eu-1")"), (Codes{kNo, kNo, kNo, 0, kNo, kNo}));
  EXPECT_EQ(filter(R"(!(zone == "eu-1"))"), (Codes{kNo, kNo, kNo, 0, kNo, 0}));
  EXPECT_EQ(filter(R"(rack not in ["r1"])"), (Codes{kNo, 0, 0, kNo, kNo, kNo}));
  EXPECT_EQ(filter("has(rack)"), (Codes{0, 0, 0, 0, kNo, 0}));
  EXPECT_EQ(filter(R"(gpu == "a100")"), (Codes{kNo, kNo, kNo, kNo, kNo, kNo})) << "a label no node has";
}

TEST_F(ConstraintsPolicyTest, AttributesComeFromTheColumns) {
  // Capacity 16 vCPUs, 1 reserved, none allocated: 15 free.
  EXPECT_EQ(filter("vcpus == 16 && cpu_free == 15 && cpu_used == 0"), (Codes{0, 0, 0, 0, 0, 0}));
  // node-a: 65536 - 2048 - 8192 = 55296 free, 8192 used; node-c: 8192 - 2048 - 2048 = 4096.
  EXPECT_EQ(filter("mem_free_mib == 55296 && mem_used_mib == 8192 && memory_mib == 65536"),
            (Codes{0, kNo, kNo, kNo, kNo, kNo}));
  EXPECT_EQ(filter("mem_free_mib == 4096"), (Codes{kNo, kNo, 0, kNo, kNo, kNo}));
  EXPECT_EQ(filter("disk_gib == 500 && disk_free_gib == 500"), (Codes{0, 0, 0, 0, 0, 0}));
  EXPECT_EQ(filter(R"(name == "node-d")"), (Codes{kNo, kNo, kNo, 0, kNo, kNo}));
  // driver: the request's when the node has it, else the node's first loaded driver.
  EXPECT_EQ(filter(R"(driver == "kvm")"), (Codes{0, 0, 0, 0, 0, 0}));
  EXPECT_EQ(filter(query(R"(driver == "lxc")", "lxc"), table_), (Codes{kNo, kNo, kNo, kNo, kNo, 0}));
  // has_capability: any loaded driver's.
  EXPECT_EQ(filter(R"(has_capability("live_migration"))"), (Codes{0, 0, 0, 0, 0, kNo}));
  EXPECT_EQ(filter(R"(has_capability("snapshots"))"), (Codes{0, 0, 0, 0, 0, 0}));
  EXPECT_EQ(filter(R"(has_capability("gpu_passthrough"))"), (Codes{kNo, kNo, kNo, kNo, kNo, kNo}));
}

TEST_F(ConstraintsPolicyTest, RequestErrorsNameTheFieldAndColumn) {
  struct Case {
    const char* input;
    const char* message;
  };
  const Case cases[] = {
      {R"(zone = "eu-1")", "/placement/constraints: column 6: unknown operator '=' (did you mean '=='?)"},
      {R"(rack in ["r3", "r4")",
       "/placement/constraints: column 20: expected ',' or ']' in the list, found end of expression"},
      {R"(mem_free_mib > "big")",
       "/placement/constraints: column 16: mem_free_mib is a number; it cannot be compared with a string"},
      {R"((zone == "a")",
       "/placement/constraints: column 13: expected ')' to close the '(' at column 1, found end of expression"},
  };
  for (const Case& c : cases) {
    const sdk::Status s = check(c.input);
    EXPECT_EQ(s.code(), sdk::StatusCode::kInvalidArgument) << c.input;
    EXPECT_EQ(s.message(), c.message) << c.input;
    // filter_rows without a check first refuses the same way (a constraint is never skipped).
    const PlacementQuery q = query(c.input);
    const PolicyContext ctx(q, table_);
    std::vector<std::uint32_t> rows = {0, 1};
    Codes out(2);
    const sdk::Status f = policy_.filter_rows(ctx.sdk_query(), ctx.columns, rows, out);
    EXPECT_EQ(f.code(), sdk::StatusCode::kInvalidArgument);
    EXPECT_EQ(f.message(), c.message);
  }
  // The error is cached with the text: parsed once.
  const auto before = policy_.cache_stats().compiles;
  EXPECT_FALSE(check(R"(zone = "eu-1")").is_ok());
  EXPECT_EQ(policy_.cache_stats().compiles, before);
}

TEST_F(ConstraintsPolicyTest, LabelOnlyCacheMatchesUncachedAfterAllocationsChange) {
  const std::string labels_only = R"(zone == "eu-1" && !(rack in ["r3", "r4"]))";
  EXPECT_EQ(filter(labels_only), uncached(labels_only, table_));
  EXPECT_EQ(filter(labels_only), (Codes{0, kNo, 0, kNo, 0, kNo}));
  auto stats = policy_.cache_stats();
  EXPECT_EQ(stats.bitset_builds, 1u);
  EXPECT_EQ(stats.bitset_hits, 1u);

  // Allocations change, the layout does not: the bitset still answers, and agrees.
  const std::uint64_t epoch = table_.layout_epoch();
  table_.commit(0, {8000, 50000, 100});
  table_.commit(4, {14000, 60000, 400});
  EXPECT_EQ(table_.layout_epoch(), epoch);
  EXPECT_EQ(filter(labels_only), uncached(labels_only, table_));
  stats = policy_.cache_stats();
  EXPECT_EQ(stats.bitset_builds, 1u);
  EXPECT_EQ(stats.bitset_hits, 2u);

  // A subset of rows, in another order, from the same bitset.
  {
    const PlacementQuery q = query(labels_only);
    const PolicyContext ctx(q, table_);
    const std::vector<std::uint32_t> rows = {5, 2, 1};
    Codes out(3, 0xff);
    ASSERT_TRUE(policy_.filter_rows(ctx.sdk_query(), ctx.columns, rows, out).is_ok());
    EXPECT_EQ(out, (Codes{kNo, 0, kNo}));
  }

  // The labels change: a new layout epoch, a new bitset.
  auto views = six_nodes();
  views[1].labels["rack"] = "r2";
  views[5].labels["zone"] = "eu-1";
  const NodeTable relabelled = table_of(views);
  EXPECT_NE(relabelled.layout_epoch(), epoch);
  EXPECT_EQ(filter(query(labels_only), relabelled), (Codes{0, 0, 0, kNo, 0, 0}));
  EXPECT_EQ(filter(query(labels_only), relabelled), uncached(labels_only, relabelled));
  EXPECT_EQ(policy_.cache_stats().bitset_builds, 2u);
}

TEST_F(ConstraintsPolicyTest, DynamicExpressionFollowsAllocations) {
  EXPECT_EQ(filter(kDesignExample), (Codes{0, kNo, kNo, kNo, 0, kNo}));
  // node-a: 55296 MiB free; leave it exactly 4096 (not > 4096), then one MiB more.
  table_.commit(0, {0, 55296 - 4096, 0});
  EXPECT_EQ(filter(kDesignExample), (Codes{kNo, kNo, kNo, kNo, 0, kNo}));
  EXPECT_EQ(filter(kDesignExample), uncached(kDesignExample, table_));
  table_.release(0, {0, 1, 0});
  EXPECT_EQ(filter(kDesignExample), (Codes{0, kNo, kNo, kNo, 0, kNo}));
  EXPECT_FALSE(explain(kDesignExample, 2).pass);
  // The label tests were computed once for the layout; mem_free_mib was read every time.
  EXPECT_EQ(policy_.cache_stats().bitset_builds, 1u);
  EXPECT_EQ(policy_.cache_stats().compiles, 1u);
}

// Column-at-a-time evaluation agrees with the per-row interpreter for every kind of test:
// layout tests (cached per epoch), number comparisons either way round, attribute against
// attribute, labels read as numbers, the request's driver, NOT over mixed parts; on every
// row and on subsets in any order, before and after allocations change.
TEST_F(ConstraintsPolicyTest, ColumnEvaluationAgreesWithThePerRowInterpreter) {
  const std::vector<std::string> expressions = {
      kDesignExample,
      R"(4096 < mem_free_mib)",
      R"(mem_free_mib >= 53248 || rack == "r3")",
      R"(!(cpu_free > 14.5) && zone == "eu-1")",
      R"(cpu_free < vcpus)",
      R"(mem_used_mib != 0 || 15 == cpu_free)",
      R"(driver == "lxc" || has_capability("live_migration"))",
      R"(disk_free_gib == 500 && !has(rack))",
      R"(rack in ["r1", "r2"] && !(mem_free_mib <= 8192))",
      R"(rack > 2 || vcpus >= 16)",
      R"(true && !(false || cpu_used > 0))",
  };
  const auto check_all = [&](const std::string& when) {
    for (const auto& text : expressions) {
      for (const char* driver : {"", "lxc"}) {
        const PlacementQuery q = query(text, driver);
        EXPECT_EQ(filter(q, table_), uncached(q, table_)) << text << " (driver '" << driver << "') " << when;
        // A subset in another order reads the same answers.
        const PolicyContext ctx(q, table_);
        const std::vector<std::uint32_t> rows = {5, 2, 1};
        Codes out(rows.size(), 0xff);
        ASSERT_TRUE(policy_.filter_rows(ctx.sdk_query(), ctx.columns, rows, out).is_ok());
        const Codes all = uncached(q, table_);
        EXPECT_EQ(out, (Codes{all[5], all[2], all[1]})) << text << " " << when;
      }
    }
  };
  check_all("at first");
  table_.commit(0, {14000, 40000, 100});
  table_.commit(2, {500, 2048, 500});
  check_all("after commits");
  table_.release(0, {14000, 40000, 100});
  check_all("after a release");
  EXPECT_EQ(policy_.cache_stats().bitset_builds, expressions.size()) << "one build per expression and layout";
}

TEST_F(ConstraintsPolicyTest, TheProgramCacheIsBounded) {
  for (size_t i = 0; i < ConstraintsPolicy::kCacheEntries + 10; ++i) {
    EXPECT_TRUE(check("zone == \"z" + std::to_string(i) + "\"").is_ok());
  }
  auto stats = policy_.cache_stats();
  EXPECT_EQ(stats.programs, ConstraintsPolicy::kCacheEntries);
  EXPECT_EQ(stats.compiles, ConstraintsPolicy::kCacheEntries + 10);
  // The most recent is still there; the first was evicted.
  EXPECT_TRUE(check("zone == \"z" + std::to_string(ConstraintsPolicy::kCacheEntries + 9) + "\"").is_ok());
  EXPECT_EQ(policy_.cache_stats().compiles, stats.compiles);
  EXPECT_TRUE(check(R"(zone == "z0")").is_ok());
  EXPECT_EQ(policy_.cache_stats().compiles, stats.compiles + 1);
}

TEST_F(ConstraintsPolicyTest, ConcurrentCallersAgree) {
  const std::vector<std::string> texts = {
      kDesignExample,         R"(zone == "eu-1")", "has(rack)", R"(rack in ["r1", "r2"])",
      "mem_free_mib > 10000", R"(zone = "x")"};
  std::vector<Codes> expected;
  expected.reserve(texts.size());
  for (const auto& t : texts) expected.push_back(t == R"(zone = "x")" ? Codes{} : uncached(t, table_));
  std::vector<std::thread> threads;
  threads.reserve(4);
  std::atomic<int> mismatches{0};
  for (int th = 0; th < 4; ++th) {
    threads.emplace_back([&, th] {
      std::vector<std::uint32_t> rows(table_.rows());
      std::iota(rows.begin(), rows.end(), 0u);
      for (int i = 0; i < 300; ++i) {
        const size_t k = static_cast<size_t>(i + th) % texts.size();
        const PlacementQuery q = query(texts[k]);
        const PolicyContext ctx(q, table_);
        Codes out(rows.size(), 0xff);
        const sdk::Status s = policy_.filter_rows(ctx.sdk_query(), ctx.columns, rows, out);
        if (expected[k].empty() ? s.is_ok() : (!s.is_ok() || out != expected[k])) ++mismatches;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(mismatches.load(), 0);
}

TEST_F(ConstraintsPolicyTest, ConfigHasNoKeys) {
  ConstraintsPolicy p;
  test::StubHostServices host;
  EXPECT_TRUE(p.init(host, "{}").is_ok());
  EXPECT_EQ(p.init(host, R"({"cache": 5})").code(), sdk::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace novacron::policy::constraints
