// The workload-aware policy (docs/design/scheduler.md 3.6): the fit on predicted use (p95 or
// ewma, the VM's own prediction or a share of its request, a node without a prediction),
// over-capacity, the complement matrix and its overrides, explanations, config errors, and a
// placement through the engine.
#include "policies/workload-aware/workload_aware_policy.h"

#include <gtest/gtest.h>

#include <cmath>
#include <numeric>
#include <string>
#include <vector>

#include "host/scheduler/engine.h"
#include "host/scheduler/plugin_policy.h"
#include "tests/policies/policy_test_support.h"

namespace novacron::policy::workload_aware {
namespace {

using scheduler::NodeTable;
using scheduler::NodeView;
using scheduler::PlacementQuery;
using scheduler::PolicyContext;
using sdk::WorkloadClass;

constexpr float kNaN = __builtin_nanf("");

struct Usage {
  float cpu_p95 = kNaN, mem_p95 = kNaN;
  float cpu_mean = kNaN, mem_mean = kNaN;
};

NodeView node(const std::string& name, Usage u, std::array<std::uint16_t, sdk::kWorkloadClassCount> classes = {},
              scheduler::ResourceVector allocated = {}) {
  NodeView v;
  v.name = name;
  v.capacity = {16000, 65536, 500};
  v.allocated = allocated;
  v.drivers = {{"kvm", {}}};
  v.predicted_p95 = {u.cpu_p95, u.mem_p95, kNaN};
  v.predicted_mean = {u.cpu_mean, u.mem_mean, kNaN};
  v.class_counts = classes;
  return v;
}

std::array<std::uint16_t, sdk::kWorkloadClassCount> classes(WorkloadClass c, std::uint16_t n,
                                                            WorkloadClass c2 = WorkloadClass::kUnknown,
                                                            std::uint16_t n2 = 0) {
  std::array<std::uint16_t, sdk::kWorkloadClassCount> out{};
  out[static_cast<size_t>(c)] += n;
  out[static_cast<size_t>(c2)] += n2;
  return out;
}

// Rows: 0 a quiet (p95 25%/25%), 3 memory-bound VMs; 1 b busy cpu (p95 75%), 4 cpu-bound VMs;
// 2 c nearly full cpu (p95 97%); 3 d no prediction, 8 vCPUs and 32 GiB allocated;
// 4 e quiet, no VMs; 5 f quiet, 3 memory-bound and 1 cpu-bound VM.
NodeTable cluster() {
  std::string error;
  auto t = NodeTable::build(
      {node("node-a", {4000, 16384, 2000, 8192}, classes(WorkloadClass::kMemoryBound, 3)),
       node("node-b", {12000, 16384, 6000, 8192}, classes(WorkloadClass::kCpuBound, 4)),
       node("node-c", {15500, 16384, 9000, 8192}, classes(WorkloadClass::kIdle, 2)),
       node("node-d", {}, classes(WorkloadClass::kUnknown, 2), {8000, 32768, 100}),
       node("node-e", {4000, 16384, 2000, 8192}),
       node("node-f", {4000, 16384, 2000, 8192}, classes(WorkloadClass::kMemoryBound, 3, WorkloadClass::kCpuBound, 1))},
      error);
  EXPECT_TRUE(t) << error;
  return std::move(*t);
}

PlacementQuery query(WorkloadClass c = WorkloadClass::kUnknown, bool predicted = true) {
  PlacementQuery q;
  q.name = "vm-1";
  q.resources = {2000, 4096, 20};
  q.workload_class = c;
  if (predicted) q.predicted = {1000, 2048, kNaN};
  return q;
}

class WorkloadAwareTest : public ::testing::Test {
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
  RowTerms terms(const PlacementQuery& q, std::uint32_t row) {
    const PolicyContext ctx(q, table_);
    return policy_.terms(ctx.sdk_query(), ctx.columns, row);
  }

  test::StubHostServices host_;
  WorkloadAwarePolicy policy_;
  NodeTable table_ = cluster();
};

TEST_F(WorkloadAwareTest, RolesAndScale) {
  EXPECT_EQ(policy_.roles(), sdk::kPolicyScores);
  EXPECT_EQ(policy_.score_scale(), sdk::ScoreScale::kUnit);
  const auto q = query();
  const PolicyContext ctx(q, table_);
  EXPECT_EQ(policy_.applies(ctx.sdk_query()), sdk::kPolicyScores);
}

TEST_F(WorkloadAwareTest, FitOnPredictedP95) {
  const auto s = score(query());
  // a: (4000 + 1000) / 16000 = 31% cpu, (16384 + 2048) / 65536 = 28% memory: under the 80 %
  // target, fit 1; the VM's class is unknown: complement 0.5. 0.7 x 1 + 0.3 x 0.5.
  EXPECT_NEAR(s[0], 0.85, 1e-9);
  // b: (12000 + 1000) / 16000 = 81.25 %: fit 1 - 0.0125 / 0.2 = 0.9375.
  EXPECT_NEAR(terms(query(), 1).fit, 0.9375, 1e-9);
  EXPECT_NEAR(s[1], 0.7 * 0.9375 + 0.3 * 0.5, 1e-9);
  // c: 15500 + 1000 > 16000: predicted over capacity, 0 whatever the complement.
  EXPECT_EQ(s[2], 0.0);
  EXPECT_EQ(explain(query(), 2).reason,
            "predicted after placement: cpu 103%, memory 28% (p95); predicted over capacity, score 0.00");
  EXPECT_GT(s[0], s[1]);
  for (const double v : s) {
    EXPECT_GE(v, 0.0);
    EXPECT_LE(v, 1.0);
  }
}

TEST_F(WorkloadAwareTest, UnknownPredictionsUseAShareOfAllocatedAndRequested) {
  // d has no prediction: 50 % of its 8000 / 32768 allocated; the VM has none either: 50 % of
  // its 2000 / 4096 requested. (4000 + 1000) / 16000 = 31 %, (16384 + 2048) / 65536 = 28 %.
  const RowTerms t = terms(query(WorkloadClass::kUnknown, /*predicted=*/false), 3);
  EXPECT_FALSE(t.node_known[0]);
  EXPECT_FALSE(t.node_known[1]);
  EXPECT_FALSE(t.vm_known);
  EXPECT_NEAR(t.predicted_after[0], 0.3125, 1e-9);
  EXPECT_NEAR(t.predicted_after[1], 0.28125, 1e-9);
  EXPECT_EQ(explain(query(WorkloadClass::kUnknown, false), 3).reason,
            "predicted after placement: cpu 31%, memory 28% (p95) (node usage unknown: 50% of allocated assumed) "
            "(no history for this VM: 50% of requested assumed); next to 2 unknown VMs (0.50) (this VM's "
            "class is unknown), score 0.85");
  // unknown_vm_utilisation changes both shares.
  configure(R"({"unknown_vm_utilisation": 1.0})");
  EXPECT_NEAR(terms(query(WorkloadClass::kUnknown, false), 3).predicted_after[0], (8000.0 + 2000) / 16000, 1e-9);
}

TEST_F(WorkloadAwareTest, EwmaUsesTheMean) {
  configure(R"({"predict": "ewma"})");
  // b's mean is 6000: (6000 + 1000) / 16000 = 43.75 %, under the target.
  const RowTerms t = terms(query(), 1);
  EXPECT_NEAR(t.predicted_after[0], 0.4375, 1e-9);
  EXPECT_EQ(t.fit, 1.0);
  EXPECT_NE(explain(query(), 1).reason.find("(ewma)"), std::string::npos);
}

TEST_F(WorkloadAwareTest, TargetUtilisation) {
  configure(R"({"target_utilisation": 0.5})");
  // b at 81.25 %: 1 - 0.3125 / 0.5 = 0.375.
  EXPECT_NEAR(terms(query(), 1).fit, 0.375, 1e-9);
  EXPECT_NE(explain(query(), 1).reason.find("over the 50% target: fit 0.38"), std::string::npos)
      << explain(query(), 1).reason;
}

TEST_F(WorkloadAwareTest, Complements) {
  const auto cpu = query(WorkloadClass::kCpuBound);
  EXPECT_NEAR(terms(cpu, 0).complement, 1.0, 1e-12);  // next to memory-bound VMs
  EXPECT_NEAR(terms(cpu, 1).complement, 0.2, 1e-12);  // next to its own class
  EXPECT_NEAR(terms(cpu, 2).complement, 0.5, 1e-12);  // idle: neutral
  EXPECT_NEAR(terms(cpu, 4).complement, 0.5, 1e-12);  // no VMs: neutral
  EXPECT_NEAR(terms(cpu, 5).complement, (3 * 1.0 + 0.2) / 4, 1e-12);
  EXPECT_NEAR(terms(query(WorkloadClass::kIoBound), 0).complement, 0.8, 1e-12);
  EXPECT_NEAR(terms(query(WorkloadClass::kIdle), 2).complement, 0.6, 1e-12);
  EXPECT_NEAR(terms(query(WorkloadClass::kMemoryBound), 1).complement, 1.0, 1e-12);

  EXPECT_EQ(explain(cpu, 0).reason,
            "predicted after placement: cpu 31%, memory 28% (p95); complements 3 memory-bound VMs (1.00), score 1.00");
  EXPECT_EQ(explain(cpu, 5).reason,
            "predicted after placement: cpu 31%, memory 28% (p95); complements 3 memory-bound VMs and 1 more (0.80), "
            "score 0.94");
  EXPECT_NE(explain(cpu, 1).reason.find("competes with 4 cpu-bound VMs (0.20)"), std::string::npos);
  EXPECT_NE(explain(cpu, 4).reason.find("no VMs to complement (0.50)"), std::string::npos);

  // Same fit, so the complement decides: a (memory-bound mix) over e (empty) over... and the
  // weight scales it.
  const auto s = score(cpu);
  EXPECT_GT(s[0], s[4]);
  EXPECT_GT(s[0], s[5]);
  configure(R"({"complement_weight": 0})");
  const auto flat = score(cpu);
  EXPECT_DOUBLE_EQ(flat[0], flat[4]);
}

TEST_F(WorkloadAwareTest, ComplementOverrides) {
  configure(R"({"complement": {"cpu-bound": {"memory-bound": 0.4, "cpu-bound": 0.9}}})");
  const auto cpu = query(WorkloadClass::kCpuBound);
  EXPECT_NEAR(terms(cpu, 0).complement, 0.4, 1e-12);
  EXPECT_NEAR(terms(cpu, 1).complement, 0.9, 1e-12);
  // One direction only: a memory-bound VM next to cpu-bound ones keeps the default.
  EXPECT_NEAR(terms(query(WorkloadClass::kMemoryBound), 1).complement, 1.0, 1e-12);
  EXPECT_EQ(policy_.config().complements[static_cast<size_t>(WorkloadClass::kCpuBound)]
                                        [static_cast<size_t>(WorkloadClass::kMemoryBound)],
            0.4);
}

TEST_F(WorkloadAwareTest, ConfigErrors) {
  WorkloadAwarePolicy p;
  const auto error = [&](const std::string& config) {
    const sdk::Status s = p.init(host_, config);
    EXPECT_FALSE(s.is_ok()) << config;
    return std::string(s.message());
  };
  EXPECT_NE(error(R"({"complement_weight": 2})").find("/complement_weight: expected a number between 0 and 1"),
            std::string::npos);
  EXPECT_NE(error(R"({"predict": "p99"})").find(R"(/predict: expected one of "p95", "ewma", got "p99")"),
            std::string::npos);
  EXPECT_NE(error(R"({"target_utilisation": 1})").find("/target_utilisation"), std::string::npos);
  EXPECT_NE(error(R"({"complements": {}})").find("/complements: unknown key"), std::string::npos);
  EXPECT_NE(error(R"({"complement": {"cpu": {"idle": 1}}})").find("/complement/cpu: unknown workload class"),
            std::string::npos);
  EXPECT_NE(error(R"({"complement": {"cpu-bound": {"idle": 1.5}}})")
                .find("/complement/cpu-bound/idle: expected a number between 0 and 1, got 1.5"),
            std::string::npos);
  EXPECT_NE(error(R"({"complement": [1]})").find("/complement: expected an object of objects"), std::string::npos);
  EXPECT_TRUE(p.init(host_, R"({"complement_weight": 0.5, "predict": "ewma", "target_utilisation": 0.7,
                                "unknown_vm_utilisation": 0.25, "complement": {"idle": {"idle": 1}}})")
                  .is_ok());
}

TEST_F(WorkloadAwareTest, NoUsableCapacityScoresZero) {
  std::string error;
  NodeView broken = node("node-x", {100, 100, 100, 100});
  broken.reserved = {16000, 0, 0};
  auto t = NodeTable::build({broken}, error);
  ASSERT_TRUE(t) << error;
  table_ = std::move(*t);
  EXPECT_EQ(score(query())[0], 0.0);
  EXPECT_NE(explain(query(), 0).reason.find("no usable capacity"), std::string::npos);
}

TEST_F(WorkloadAwareTest, PlacesThroughTheEngine) {
  // A cpu-bound VM goes next to the memory-bound VMs of node-a, not onto busy cpu-bound node-b.
  scheduler::PluginPolicy plugin("io.novacron.policy.workload-aware", &policy_,
                                 sdk::SchedulingPolicy::kInterfaceVersion);
  const scheduler::Engine engine({}, {{&plugin, 1.0}});
  const scheduler::Decision d = engine.place(query(WorkloadClass::kCpuBound), table_, /*commit=*/false);
  ASSERT_EQ(d.outcome, scheduler::Outcome::kPlaced) << d.summary;
  EXPECT_EQ(d.node, "node-a") << d.summary;
}

}  // namespace
}  // namespace novacron::policy::workload_aware
