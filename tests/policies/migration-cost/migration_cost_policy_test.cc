// The migration-cost policy (docs/design/scheduler.md 3.7): the model's estimates plumbed
// through both modes (migration targets over the topology's links, placements by eviction
// risk), the hard downtime limit as a filter, calibration from observations (and what it
// ignores), the calibration's round trip through the kv store, config errors and concurrent
// calls.
#include "policies/migration-cost/migration_cost_policy.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <map>
#include <mutex>
#include <numeric>
#include <string>
#include <thread>
#include <vector>

#include "host/scheduler/engine.h"
#include "host/scheduler/plugin_policy.h"
#include "policies/common/columns.hpp"
#include "tests/policies/policy_test_support.h"

namespace novacron::policy::migration_cost {
namespace {

using scheduler::NodeTable;
using scheduler::NodeView;
using scheduler::PlacementQuery;
using scheduler::PolicyContext;

constexpr float kNaN = __builtin_nanf("");
constexpr double kMib = 1048576.0;

// A HostServices with a working in-memory kv store (StubHostServices refuses writes),
// thread-safe like a real host's.
class MemoryKvHost final : public sdk::HostServices {
 public:
  std::map<std::string, std::string, std::less<>> kv;
  std::vector<std::string> logs;
  bool fail_reads = false;

  int host_sdk_minor() const override { return 4; }
  std::string node_name() const override { return "node-test"; }
  void log(sdk::LogLevel /*level*/, std::string_view message, const sdk::Labels& /*fields*/) override {
    const std::lock_guard<std::mutex> lock(mu_);
    logs.emplace_back(message);
  }
  std::string config_json() const override { return "{}"; }
  sdk::Result<std::optional<std::string>> kv_get(std::string_view key) override {
    const std::lock_guard<std::mutex> lock(mu_);
    if (fail_reads) return sdk::Status{sdk::StatusCode::kUnavailable, "state store is down"};
    const auto it = kv.find(key);
    return it == kv.end() ? std::optional<std::string>() : std::optional<std::string>(it->second);
  }
  sdk::Status kv_put(std::string_view key, std::string_view value) override {
    const std::lock_guard<std::mutex> lock(mu_);
    kv[std::string(key)] = std::string(value);
    return sdk::Status::ok();
  }
  sdk::Status kv_delete(std::string_view key) override {
    const std::lock_guard<std::mutex> lock(mu_);
    kv.erase(std::string(key));
    return sdk::Status::ok();
  }
  sdk::Result<std::vector<std::string>> kv_list(std::string_view /*prefix*/) override {
    return std::vector<std::string>();
  }
  void publish_event(const sdk::Event& /*event*/) override {}
  void counter_add(std::string_view, std::string_view, const sdk::Labels&, double) override {}
  void gauge_set(std::string_view, std::string_view, const sdk::Labels&, double) override {}
  void histogram_observe(std::string_view, std::string_view, const sdk::Labels&, double) override {}
  sdk::Executor& io_executor() override { return executor_; }
  sdk::Executor& blocking_executor() override { return executor_; }
  std::string data_dir() const override { return "/nonexistent"; }
  sdk::Result<sdk::ClusterIdentity> cluster_identity() const override {
    return sdk::Status{sdk::StatusCode::kFailedPrecondition, "no cluster in tests"};
  }
  std::vector<sdk::PeerInfo> peers() const override { return {}; }

 private:
  std::mutex mu_;
  test::InlineExecutor executor_;
};

NodeView node(const std::string& name, const std::string& dc, const std::string& rack, float cpu_p95 = kNaN,
              float mem_p95 = kNaN) {
  NodeView v;
  v.name = name;
  v.capacity = {64000, 262144, 2000};
  v.labels = {{"datacenter", dc}, {"rack", rack}};
  v.drivers = {{"kvm", {"live_migration"}}};
  v.predicted_p95 = {cpu_p95, mem_p95, kNaN};
  return v;
}

// Rows: 0 a dc-1/r1 and 1 b dc-1/r1 (same rack, 25 Gbit), 2 c dc-1/r2 (same datacenter,
// 10 Gbit), 3 d dc-2/r1 (another datacenter, 1 Gbit). p95: a quiet (memory 12.5 %), b busy
// (memory 68.7 %), c and d unknown.
NodeTable cluster() {
  std::string error;
  auto t = NodeTable::build({node("node-a", "dc-1", "r1", 8000, 32768), node("node-b", "dc-1", "r1", 16000, 180000),
                             node("node-c", "dc-1", "r2"), node("node-d", "dc-2", "r1")},
                            error);
  EXPECT_TRUE(t) << error;
  return std::move(*t);
}

PlacementQuery vm(std::int64_t memory_mib, sdk::WorkloadClass c, std::int32_t source_row = -1) {
  PlacementQuery q;
  q.name = "vm-1";
  q.resources = {4000, memory_mib, 40};
  q.workload_class = c;
  q.source_row = source_row;
  return q;
}

class MigrationCostTest : public ::testing::Test {
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
  std::vector<std::uint8_t> filter(const PlacementQuery& q) {
    const PolicyContext ctx(q, table_);
    std::vector<std::uint32_t> rows(table_.rows());
    std::iota(rows.begin(), rows.end(), 0u);
    std::vector<std::uint8_t> out(rows.size(), 99);
    const sdk::Status s = policy_.filter_rows(ctx.sdk_query(), ctx.columns, rows, out);
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
  RowCost cost(const PlacementQuery& q, std::uint32_t row) {
    const PolicyContext ctx(q, table_);
    const topology::TopologyModel model(policy_.config().topology, ctx.columns);
    return policy_.cost(ctx.sdk_query(), ctx.columns, model, policy_.calibrated(), row);
  }
  std::uint32_t applies(const PlacementQuery& q) {
    const PolicyContext ctx(q, table_);
    return policy_.applies(ctx.sdk_query());
  }

  MemoryKvHost host_;
  MigrationCostPolicy policy_;
  NodeTable table_ = cluster();
};

// An observation of what the model gives for the "true" parameters.
sdk::MigrationObservation observed(const MigrationEstimate& truth, std::int64_t memory_mib, sdk::WorkloadClass c,
                                   std::string_view source = "node-a", std::string_view target = "node-b") {
  sdk::MigrationObservation o;
  o.kind = "migration";
  o.source = source;
  o.target = target;
  o.workload_class = c;
  o.memory_mib = memory_mib;
  o.bytes = static_cast<std::uint64_t>(truth.copied_mib * kMib);
  o.duration_s = truth.total_seconds;
  o.downtime_ms = truth.downtime_ms;
  o.rounds = static_cast<std::uint32_t>(truth.rounds);
  return o;
}

TEST_F(MigrationCostTest, RolesAndApplies) {
  EXPECT_EQ(policy_.roles(), sdk::kPolicyScores | sdk::kPolicyFilters);
  EXPECT_EQ(policy_.score_scale(), sdk::ScoreScale::kUnit);
  ASSERT_EQ(policy_.reason_codes().size(), 1u);
  EXPECT_EQ(policy_.reason_codes()[0].code, "downtime");
  EXPECT_EQ(applies(vm(4096, sdk::WorkloadClass::kIdle)), sdk::kPolicyScores);
  EXPECT_EQ(applies(vm(4096, sdk::WorkloadClass::kIdle, 0)), sdk::kPolicyScores);  // no limit: no filter
  configure(R"({"hard_downtime_limit_ms": 300})");
  EXPECT_EQ(applies(vm(4096, sdk::WorkloadClass::kIdle)), sdk::kPolicyScores);  // placement: never a filter
  EXPECT_EQ(applies(vm(4096, sdk::WorkloadClass::kIdle, 0)), sdk::kPolicyScores | sdk::kPolicyFilters);
}

TEST_F(MigrationCostTest, TargetModeUsesTheModelOverTheTopologysLinks) {
  // A 4 GiB idle VM from node-a to node-b over the same-rack 25 Gbit link: 4096 MiB at
  // 25000 Mbit/s x 0.8 = 2384 MiB/s is 1.7 s, one round.
  const auto idle = vm(4096, sdk::WorkloadClass::kIdle, /*source_row=*/0);
  const RowCost near = cost(idle, 1);
  EXPECT_EQ(near.link.relation, topology::Relation::kSameRack);
  EXPECT_EQ(near.link.bandwidth_mbps, 25000);
  const MigrationEstimate expected =
      estimate_migration({.memory_mib = 4096, .dirty_mib_per_second = 1, .link_mbit_per_second = 25000});
  EXPECT_DOUBLE_EQ(near.estimate.total_seconds, expected.total_seconds);
  EXPECT_LT(near.estimate.total_seconds, 5.0);
  const auto s = score(idle);
  EXPECT_NEAR(s[1], 1.0 - expected.total_seconds / 600, 1e-12);
  EXPECT_GT(s[1], 0.99);
  EXPECT_EQ(s[0], 0.0);  // where it runs now is not a target
  EXPECT_EQ(explain(idle, 0).second.reason, "node-a runs the VM now: not a migration target, score 0.00");
  EXPECT_EQ(explain(idle, 1).second.reason,
            "a move from node-a over the same-rack link (25000 Mbit/s, 80% usable) would take 1.8 s in 1 round, "
            "downtime 51 ms, score 1.00");

  // A 64 GiB memory-bound VM: 200 MiB/s dirtied. To node-c (same datacenter, 10 Gbit) it
  // converges in a few rounds; to node-d over the 1 Gbit inter-datacenter link (95 MiB/s
  // usable) it does not, and the first copy alone takes over 11 minutes.
  const auto big = vm(65536, sdk::WorkloadClass::kMemoryBound, 0);
  const RowCost dc = cost(big, 2);
  const RowCost wan = cost(big, 3);
  EXPECT_EQ(dc.link.relation, topology::Relation::kSameDatacenter);
  EXPECT_TRUE(dc.estimate.converges);
  EXPECT_EQ(wan.link.relation, topology::Relation::kBetweenDatacenters);
  EXPECT_FALSE(wan.estimate.converges);
  EXPECT_GT(wan.estimate.total_seconds, 600);
  const auto sb = score(big);
  EXPECT_GT(sb[1], sb[2]);
  EXPECT_GT(sb[2], sb[3]);
  EXPECT_EQ(sb[3], 0.0);
  EXPECT_LT(sb[3], s[1] - 0.5);
  EXPECT_NE(explain(big, 3).second.reason.find("does not converge: memory-bound guests dirty ~200 MiB/s"),
            std::string::npos)
      << explain(big, 3).second.reason;

  // Without a limit nothing is filtered; with 300 ms the inter-datacenter target is rejected.
  EXPECT_EQ(filter(big), (std::vector<std::uint8_t>{0, 0, 0, 0}));
  configure(R"({"hard_downtime_limit_ms": 300})");
  EXPECT_EQ(filter(big), (std::vector<std::uint8_t>{0, 0, 0, 1}));
  EXPECT_EQ(filter(idle), (std::vector<std::uint8_t>{0, 0, 0, 0}));
  EXPECT_EQ(filter(vm(65536, sdk::WorkloadClass::kMemoryBound)), (std::vector<std::uint8_t>{0, 0, 0, 0}));
  const auto [verdict, why] = explain(big, 3);
  EXPECT_FALSE(verdict.pass);
  EXPECT_EQ(verdict.reason, "estimated downtime " +
                                ::novacron::policies::format_number(wan.estimate.downtime_ms / 1000, 2) +
                                " s > 0.3 s limit");
  EXPECT_TRUE(explain(big, 2).first.pass);

  // Through the engine: the migration goes to node-b, and node-d is rejected for downtime.
  scheduler::PluginPolicy plugin("io.novacron.policy.migration-cost", &policy_,
                                 sdk::SchedulingPolicy::kInterfaceVersion);
  const scheduler::Engine engine({{&plugin, 1.0}}, {{&plugin, 1.0}});
  const scheduler::Decision d = engine.place(big, table_, /*commit=*/false);
  ASSERT_EQ(d.outcome, scheduler::Outcome::kPlaced) << d.summary;
  EXPECT_EQ(d.node, "node-b") << d.summary;
  ASSERT_EQ(d.filters.size(), 1u);
  ASSERT_FALSE(d.filters[0].reasons.empty());
  EXPECT_EQ(d.filters[0].reasons[0].code_name, "downtime");
}

TEST_F(MigrationCostTest, LinksOverrideTheRelationsBandwidth) {
  configure(R"({"links": [{"between": ["dc-1", "dc-2"], "bandwidth_mbps": 40000}],
                "bandwidth_mbps": {"same_datacenter": 2000}})");
  const auto big = vm(65536, sdk::WorkloadClass::kMemoryBound, 0);
  EXPECT_EQ(cost(big, 3).link.bandwidth_mbps, 40000);
  EXPECT_EQ(cost(big, 2).link.bandwidth_mbps, 2000);
  const auto s = score(big);
  EXPECT_GT(s[3], s[2]);
}

TEST_F(MigrationCostTest, SourceRowOutsideTheTableIsAnError) {
  const auto q = vm(4096, sdk::WorkloadClass::kIdle, 9);
  const PolicyContext ctx(q, table_);
  std::vector<std::uint32_t> rows{0};
  std::vector<double> out(1);
  const sdk::Status s = policy_.score_rows(ctx.sdk_query(), ctx.columns, rows, out);
  EXPECT_FALSE(s.is_ok());
  EXPECT_NE(std::string(s.message()).find("/placement/source_row: row 9"), std::string::npos) << s.message();
}

TEST_F(MigrationCostTest, PlacementPrefersANodeWhoseP95StaysLow) {
  // 64 GiB memory-bound VM: on node-a the p95 after placement is (32768 + 65536) / 262144 =
  // 37.5 %, no risk; on node-b (180000 + 65536) / 262144 = 93.7 %: risk σ(0.73) = 68 %, times a
  // ~30 s move over the same-rack link.
  const auto q = vm(65536, sdk::WorkloadClass::kMemoryBound);
  const RowCost a = cost(q, 0);
  const RowCost b = cost(q, 1);
  EXPECT_NEAR(a.utilisation_after, 0.375, 1e-9);
  EXPECT_NEAR(b.utilisation_after, (180000.0 + 65536) / 262144, 1e-9);
  EXPECT_NEAR(b.risk, 1 / (1 + std::exp(-((180000.0 + 65536) / 262144 - 0.9) / 0.05)), 1e-9);
  EXPECT_EQ(a.link.relation, topology::Relation::kSameRack);
  EXPECT_NEAR(b.score, 1 - b.risk * b.estimate.total_seconds / 600, 1e-12);
  const auto s = score(q);
  EXPECT_GT(s[0], 0.999);
  EXPECT_GT(s[0], s[1]);
  EXPECT_EQ(
      explain(q, 1).second.reason, "eviction risk 68% (p95 after placement 94%); a move would take " +
                                       std::to_string(std::llround(b.estimate.total_seconds)) + " s, score " + [&] {
                                         char buf[16];
                                         std::snprintf(buf, sizeof buf, "%.2f", b.score);
                                         return std::string(buf);
                                       }());
  // Unknown p95 (node-c): what is allocated (nothing) counts instead, and the reason says so.
  EXPECT_NE(explain(q, 2).second.reason.find("(allocated after placement 25%, no usage prediction)"), std::string::npos)
      << explain(q, 2).second.reason;
}

TEST_F(MigrationCostTest, CalibrationMovesTheEstimateToWhatWasObserved) {
  // The truth: the same-rack link gives 50 % of its bandwidth and cpu-bound guests dirty
  // 60 MiB/s (the defaults say 80 % and 20 MiB/s).
  const std::int64_t memory = 8192;
  const MigrationEstimate truth = estimate_migration(
      {.memory_mib = 8192, .dirty_mib_per_second = 60, .link_mbit_per_second = 25000, .efficiency = 0.5});
  const auto q = vm(memory, sdk::WorkloadClass::kCpuBound, 0);
  const double before = cost(q, 1).estimate.total_seconds;
  EXPECT_GT(std::abs(before - truth.total_seconds) / truth.total_seconds, 0.3);

  // Nodes the policy has not seen in a layout yet: ignored.
  policy_.observe_migration(observed(truth, memory, sdk::WorkloadClass::kCpuBound, "node-x", "node-y"));
  EXPECT_EQ(policy_.observations(), 0u);

  score(q);  // the policy learns the layout (names and racks) from its calls
  for (int i = 0; i < 20; ++i) policy_.observe_migration(observed(truth, memory, sdk::WorkloadClass::kCpuBound));
  EXPECT_EQ(policy_.observations(), 20u);
  const CalibratedParams p = policy_.calibrated();
  EXPECT_NEAR(p.dirty_rate[static_cast<size_t>(sdk::WorkloadClass::kCpuBound)], 60, 6);
  EXPECT_NEAR(p.efficiency[static_cast<size_t>(topology::Relation::kSameRack)], 0.5, 0.05);
  EXPECT_EQ(p.dirty_rate[static_cast<size_t>(sdk::WorkloadClass::kIdle)], 1);  // other classes untouched
  EXPECT_EQ(p.efficiency[static_cast<size_t>(topology::Relation::kSameDatacenter)], 0.8);

  // Scoring reads the calibrated parameters.
  const double after = cost(q, 1).estimate.total_seconds;
  EXPECT_LT(std::abs(after - truth.total_seconds) / truth.total_seconds, 0.1)
      << "before " << before << " s, after " << after << " s, observed " << truth.total_seconds << " s";
  EXPECT_NEAR(score(q)[1], 1 - after / 600, 1e-12);

  // A transfer (node-a to node-c, same datacenter) calibrates that link's efficiency only.
  sdk::MigrationObservation t;
  t.kind = "transfer";
  t.source = "node-a";
  t.target = "node-c";
  t.bytes = static_cast<std::uint64_t>(10000 * 0.25 * 1e6 / 8);  // 25 % of 10 Gbit for 1 s
  t.duration_s = 1;
  policy_.observe_migration(t);
  const CalibratedParams p2 = policy_.calibrated();
  EXPECT_NEAR(p2.efficiency[static_cast<size_t>(topology::Relation::kSameDatacenter)], 0.8 + 0.2 * (0.25 - 0.8), 1e-9);
  EXPECT_EQ(p2.dirty_rate, p.dirty_rate);

  // Implausible observations change nothing.
  sdk::MigrationObservation bad = t;
  bad.duration_s = 0;
  policy_.observe_migration(bad);
  bad.kind = "teleport";
  bad.duration_s = 1;
  policy_.observe_migration(bad);
  EXPECT_EQ(policy_.observations(), 21u);
}

TEST_F(MigrationCostTest, CalibrationPersistsInTheKvStore) {
  const MigrationEstimate truth = estimate_migration(
      {.memory_mib = 8192, .dirty_mib_per_second = 60, .link_mbit_per_second = 25000, .efficiency = 0.5});
  score(vm(8192, sdk::WorkloadClass::kCpuBound, 0));
  for (int i = 0; i < 5; ++i) policy_.observe_migration(observed(truth, 8192, sdk::WorkloadClass::kCpuBound));
  ASSERT_EQ(host_.kv.count(std::string(kCalibrationKey)), 1u);
  EXPECT_EQ(host_.kv[std::string(kCalibrationKey)], policy_.calibration_json());

  // A new instance (a restart) on the same store starts from the stored calibration.
  MigrationCostPolicy restarted;
  ASSERT_TRUE(restarted.init(host_, "{}").is_ok());
  EXPECT_EQ(restarted.observations(), 5u);
  EXPECT_EQ(restarted.calibrated().dirty_rate, policy_.calibrated().dirty_rate);
  EXPECT_EQ(restarted.calibrated().efficiency, policy_.calibrated().efficiency);
  EXPECT_EQ(restarted.calibration_json(), policy_.calibration_json());

  // A store that fails, or holds garbage: logged, and the config's values are used.
  host_.fail_reads = true;
  MigrationCostPolicy unread;
  ASSERT_TRUE(unread.init(host_, R"({"dirty_rate_mib_s": {"cpu-bound": 30}})").is_ok());
  EXPECT_EQ(unread.calibrated().dirty_rate[static_cast<size_t>(sdk::WorkloadClass::kCpuBound)], 30);
  EXPECT_EQ(unread.observations(), 0u);
  EXPECT_NE(host_.logs.back().find("could not read the stored migration calibration"), std::string::npos);
  host_.fail_reads = false;
  host_.kv[std::string(kCalibrationKey)] = "{not json";
  MigrationCostPolicy garbage;
  ASSERT_TRUE(garbage.init(host_, "{}").is_ok());
  EXPECT_EQ(garbage.calibrated().dirty_rate[static_cast<size_t>(sdk::WorkloadClass::kCpuBound)], 20);
  EXPECT_NE(host_.logs.back().find("not valid"), std::string::npos);
}

TEST(MigrationCostStubHostTest, AStoreThatRefusesWritesIsLoggedAndTheCalibrationKept) {
  test::StubHostServices host;
  MigrationCostPolicy policy;
  ASSERT_TRUE(policy.init(host, "{}").is_ok());
  std::string error;
  auto table = NodeTable::build({node("node-a", "dc-1", "r1"), node("node-b", "dc-1", "r1")}, error);
  ASSERT_TRUE(table) << error;
  const auto q = vm(4096, sdk::WorkloadClass::kIdle, 0);
  const PolicyContext ctx(q, *table);
  std::vector<std::uint32_t> rows{0, 1};
  std::vector<double> out(2);
  ASSERT_TRUE(policy.score_rows(ctx.sdk_query(), ctx.columns, rows, out).is_ok());
  const MigrationEstimate truth =
      estimate_migration({.memory_mib = 4096, .dirty_mib_per_second = 1, .link_mbit_per_second = 25000});
  policy.observe_migration(observed(truth, 4096, sdk::WorkloadClass::kIdle));
  EXPECT_EQ(policy.observations(), 1u);
  ASSERT_FALSE(host.logs.empty());
  EXPECT_NE(host.logs.back().find("could not store the migration calibration"), std::string::npos);
}

TEST_F(MigrationCostTest, ConfigErrors) {
  MigrationCostPolicy p;
  const auto error = [&](const std::string& config) {
    const sdk::Status s = p.init(host_, config);
    EXPECT_FALSE(s.is_ok()) << config;
    return std::string(s.message());
  };
  EXPECT_NE(error(R"({"groups": {}})").find("/groups: unknown key"), std::string::npos);
  EXPECT_NE(error(R"({"max_rounds": 0})").find("/max_rounds: expected an integer between 1 and 1000"),
            std::string::npos);
  EXPECT_NE(error(R"({"dirty_rate_mib_s": {"busy": 3}})").find("/dirty_rate_mib_s/busy: unknown workload class"),
            std::string::npos);
  EXPECT_NE(error(R"({"levels": []})").find("/levels: expected an array of 1 to 8 label keys"), std::string::npos);
  EXPECT_NE(error(R"({"bandwidth_mbps": {"same_rack": 0}, "efficiency": 2})").find("/bandwidth_mbps/same_rack"),
            std::string::npos);
  EXPECT_NE(error(R"({"efficiency": 2})").find("/efficiency: expected a number between 0.05 and 1"), std::string::npos);
  const sdk::Status ok = p.init(host_, R"({"max_downtime_ms": 500, "max_rounds": 10, "switchover_ms": 20,
      "efficiency": 0.7, "dirty_rate_mib_s": {"memory-bound": 300}, "time_cap_s": 120,
      "hard_downtime_limit_ms": 1000, "copy_disk": true, "levels": ["zone", "rack"],
      "latency_ms": {"same_rack": 0.1}, "bandwidth_mbps": {"same_rack": 40000},
      "links": [{"between": ["z1", "z2"], "bandwidth_mbps": 5000}]})");
  ASSERT_TRUE(ok.is_ok()) << ok.message();
  EXPECT_EQ(p.config().model.max_rounds, 10);
  EXPECT_EQ(p.config().topology.levels, (std::vector<std::string>{"zone", "rack"}));
  EXPECT_EQ(p.calibrated().dirty_rate[static_cast<size_t>(sdk::WorkloadClass::kMemoryBound)], 300);
  EXPECT_EQ(p.calibrated().efficiency[static_cast<size_t>(topology::Relation::kSameRack)], 0.7);
}

TEST_F(MigrationCostTest, CopyDiskAddsTheDisk) {
  const auto q = vm(4096, sdk::WorkloadClass::kIdle, 0);
  const double shared = cost(q, 1).estimate.total_seconds;
  configure(R"({"copy_disk": true})");
  const double copied = cost(q, 1).estimate.total_seconds;
  EXPECT_NEAR(copied - shared, 40 * 1024 / (25000 * 1e6 / 8 / kMib * 0.8), 1e-9);
}

TEST_F(MigrationCostTest, ConcurrentScoresAndObservations) {
  const MigrationEstimate truth = estimate_migration(
      {.memory_mib = 8192, .dirty_mib_per_second = 60, .link_mbit_per_second = 25000, .efficiency = 0.5});
  const auto q = vm(8192, sdk::WorkloadClass::kCpuBound, 0);
  score(q);
  std::atomic<bool> bad{false};
  std::vector<std::thread> threads;
  threads.reserve(4);
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 200; ++i) {
        const auto s = score(q);
        if (!(s[1] >= 0 && s[1] <= 1)) bad = true;
      }
    });
  }
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 50; ++i) policy_.observe_migration(observed(truth, 8192, sdk::WorkloadClass::kCpuBound));
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_FALSE(bad);
  EXPECT_EQ(policy_.observations(), 100u);
  EXPECT_EQ(host_.kv[std::string(kCalibrationKey)], policy_.calibration_json());  // the last write is the newest
}

}  // namespace
}  // namespace novacron::policy::migration_cost
