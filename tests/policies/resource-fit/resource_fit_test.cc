// io.novacron.policy.resource-fit on interface 2 (filter_rows, explain_row over the node
// table's columns) and interface 1 (filter over NodeCandidate): exact limits at the
// boundary, ratios, reservations, unknown disk, driver-scoped capabilities, the reason
// codes and texts, and the engine reading them through PluginPolicy.
#include "policies/resource-fit/resource_fit.h"

#include <gtest/gtest.h>

#include <numeric>
#include <string>
#include <vector>

#include "host/scheduler/engine.h"
#include "host/scheduler/node_table.h"
#include "host/scheduler/plugin_policy.h"
#include "host/scheduler/policy.h"
#include "tests/policies/policy_test_support.h"

namespace novacron::policies {
namespace {

using scheduler::DriverView;
using scheduler::NodeTable;
using scheduler::NodeView;
using scheduler::PlacementQuery;
using scheduler::PolicyContext;
using scheduler::ResourceVector;

NodeView node(const std::string& name, ResourceVector capacity, ResourceVector reserved = {},
              ResourceVector allocated = {}, std::vector<DriverView> drivers = {{"kvm", {}}}) {
  NodeView v;
  v.name = name;
  v.capacity = capacity;
  v.reserved = reserved;
  v.allocated = allocated;
  v.drivers = std::move(drivers);
  return v;
}

NodeTable table(const std::vector<NodeView>& views) {
  std::string error;
  auto t = NodeTable::build(views, error);
  EXPECT_TRUE(t) << error;
  return std::move(*t);
}

PlacementQuery vm(ResourceVector resources, std::string driver = "", std::vector<std::string> capabilities = {}) {
  PlacementQuery q;
  q.name = "vm-1";
  q.resources = resources;
  q.driver = std::move(driver);
  q.capabilities = std::move(capabilities);
  return q;
}

class ResourceFitTest : public testing::Test {
 protected:
  void init(const std::string& config) { ASSERT_TRUE(fit_.init(host_, config).is_ok()) << config; }

  // Interface 2: the code of every row.
  std::vector<std::uint8_t> codes(const NodeTable& t, const PlacementQuery& q) {
    const PolicyContext ctx(q, t);
    std::vector<std::uint32_t> rows(t.rows());
    std::iota(rows.begin(), rows.end(), 0u);
    std::vector<std::uint8_t> reject(rows.size(), 99);
    EXPECT_TRUE(fit_.filter_rows(ctx.sdk_query(), ctx.columns, rows, reject).is_ok());
    return reject;
  }
  std::uint8_t code(const NodeTable& t, const PlacementQuery& q) { return codes(t, q).at(0); }

  // Interface 2: the words for one row.
  sdk::FilterVerdict explain(const NodeTable& t, const PlacementQuery& q, std::uint32_t row = 0) {
    const PolicyContext ctx(q, t);
    sdk::FilterVerdict verdict;
    sdk::NodeScore score;
    EXPECT_TRUE(fit_.explain_row(ctx.sdk_query(), ctx.columns, row, verdict, score).is_ok());
    return verdict;
  }

  // Interface 1: filter() over NodeCandidate records of the same rows.
  std::vector<sdk::FilterVerdict> v1(const NodeTable& t, const PlacementQuery& q) {
    const PolicyContext ctx(q, t);
    std::vector<sdk::NodeCandidate> records;
    for (std::uint32_t row = 0; row < t.rows(); ++row) records.push_back(sdk::candidate_of(ctx.columns, row));
    std::vector<sdk::FilterVerdict> out(records.size());
    EXPECT_TRUE(fit_.filter(*ctx.sdk_query().request, records, out).is_ok());
    return out;
  }

  test::StubHostServices host_;
  ResourceFit fit_;
};

constexpr const char* kRatios15 =
    R"({"cpu_allocation_ratio": 1.5, "memory_allocation_ratio": 1.5, "disk_allocation_ratio": 1.5})";

TEST_F(ResourceFitTest, ExactlyTheFreeAmountPassesAndOneUnitMoreFails) {
  init(kRatios15);
  // 16 vCPU x 1.5 - 2 reserved - 20 allocated = 2 vCPU; 16384 MiB x 1.5 - 2048 - 20480 = 2048 MiB;
  // 160 GiB x 1.5 - 20 - 200 = 20 GiB.
  const auto t = table({node("a", {16000, 16384, 160}, {2000, 2048, 20}, {20000, 20480, 200})});
  EXPECT_EQ(code(t, vm({2000, 0, 0})), ResourceFit::kFits);
  EXPECT_EQ(code(t, vm({2001, 0, 0})), ResourceFit::kCpu);
  EXPECT_EQ(code(t, vm({0, 2048, 0})), ResourceFit::kFits);
  EXPECT_EQ(code(t, vm({0, 2049, 0})), ResourceFit::kMemory);
  EXPECT_EQ(code(t, vm({0, 0, 20})), ResourceFit::kFits);
  EXPECT_EQ(code(t, vm({0, 0, 21})), ResourceFit::kDisk);
  EXPECT_EQ(code(t, vm({2000, 2048, 20})), ResourceFit::kFits);

  EXPECT_EQ(explain(t, vm({2001, 0, 0})).reason,
            "cpu: needs 2.001 vcpus, 2 vcpus free (16 vcpus x 1.5 - 2 reserved - 20 allocated)");
  EXPECT_EQ(explain(t, vm({0, 2049, 0})).reason,
            "memory: needs 2049 MiB, 2048 MiB free (16384 MiB x 1.5 - 2048 reserved - 20480 allocated)");
  EXPECT_EQ(explain(t, vm({0, 0, 21})).reason,
            "disk: needs 21 GiB, 20 GiB free (160 GiB x 1.5 - 20 reserved - 200 allocated)");
  const auto pass = explain(t, vm({2000, 2048, 20}));
  EXPECT_TRUE(pass.pass);
  EXPECT_EQ(pass.reason, "fits: cpu 2 of 2 vcpus free, memory 2048 of 2048 MiB free, disk 20 of 20 GiB free");
  EXPECT_FALSE(explain(t, vm({2001, 0, 0})).pass);
}

TEST_F(ResourceFitTest, TheDesignsMemoryExample) {
  init("{}");
  const auto t = table({node("a", {64000, 65536, 0}, {0, 2048, 0}, {0, 59392, 0})});
  EXPECT_EQ(code(t, vm({1000, 8192, 0})), ResourceFit::kMemory);
  EXPECT_EQ(explain(t, vm({1000, 8192, 0})).reason,
            "memory: needs 8192 MiB, 4096 MiB free (65536 MiB x 1 - 2048 reserved - 59392 allocated)");
  // Default cpu ratio 4: 64 x 4 = 256 vCPUs.
  EXPECT_EQ(explain(t, vm({1500, 4096, 0})).reason,
            "fits: cpu 1.5 of 256 vcpus free, memory 4096 of 4096 MiB free, disk not checked (capacity unknown)");
}

TEST_F(ResourceFitTest, RatiosAreExactIntegers) {
  init(R"({"memory_allocation_ratio": 1.1, "cpu_allocation_ratio": 1.15})");
  const auto t = table({node("a", {20000, 1000, 0})});
  EXPECT_EQ(code(t, vm({0, 1100, 0})), ResourceFit::kFits);  // 1000 x 1.1 = 1100 exactly
  EXPECT_EQ(code(t, vm({0, 1101, 0})), ResourceFit::kMemory);
  EXPECT_EQ(code(t, vm({23000, 0, 0})), ResourceFit::kFits);  // 20 x 1.15 = 23 (22.999999999999996 in doubles)
  EXPECT_EQ(code(t, vm({23001, 0, 0})), ResourceFit::kCpu);
  EXPECT_EQ(explain(t, vm({0, 1101, 0})).reason,
            "memory: needs 1101 MiB, 1100 MiB free (1000 MiB x 1.1 - 0 reserved - 0 allocated)");
}

TEST(FixedRatioTest, LimitIsTheExactFloor) {
  for (std::int64_t m = 10000; m <= 1000000000; m = m * 7 / 3 + 12345) {  // ratios 0.01 .. 1000, 6 decimals
    const FixedRatio ratio = FixedRatio::of(static_cast<double>(m) / 1e6);
    for (const std::int64_t amount :
         {std::int64_t{0}, std::int64_t{1}, std::int64_t{999}, std::int64_t{1000}, std::int64_t{65536},
          std::int64_t{1048576}, std::int64_t{123456789}, std::int64_t{4000000000000}}) {
      const auto exact = static_cast<std::int64_t>(static_cast<__int128>(amount) * m / 1000000);
      EXPECT_EQ(ratio.limit(amount), exact) << amount << " x " << m << "e-6";
    }
  }
  EXPECT_EQ(FixedRatio::of(1.1).limit(1000), 1100);
  EXPECT_EQ(FixedRatio::of(0.7).limit(10), 7);
  EXPECT_EQ(FixedRatio::of(1000).limit(INT64_MAX / 2), INT64_MAX);  // saturates instead of wrapping
}

TEST_F(ResourceFitTest, ReservedAboveCapacityIsRejectedAsSuch) {
  init("{}");
  const auto t = table({node("a", {4000, 1024, 100}, {0, 2048, 0}), node("b", {4000, 4096, 100}, {0, 1024, 0})});
  EXPECT_EQ(codes(t, vm({1000, 1, 0})), (std::vector<std::uint8_t>{ResourceFit::kReservedExceedsCapacity, 0}));
  EXPECT_EQ(explain(t, vm({1000, 1, 0})).reason, "memory: 2048 MiB reserved exceeds the capacity of 1024 MiB");
  // Even with an over-commit ratio that would leave room.
  init(R"({"cpu_allocation_ratio": 10})");
  const auto c = table({node("c", {4000, 4096, 100}, {6000, 0, 0})});
  EXPECT_EQ(code(c, vm({1000, 1, 0})), ResourceFit::kReservedExceedsCapacity);
  EXPECT_EQ(explain(c, vm({1000, 1, 0})).reason, "cpu: 6 vcpus reserved exceeds the capacity of 4 vcpus");
}

TEST_F(ResourceFitTest, UnknownDiskCapacityIsNotChecked) {
  init("{}");
  const auto t = table({node("a", {4000, 4096, 0}, {}, {0, 0, 900}), node("b", {4000, 4096, 10})});
  EXPECT_EQ(codes(t, vm({1000, 1024, 500})), (std::vector<std::uint8_t>{0, ResourceFit::kDisk}));
  const auto v = explain(t, vm({1000, 1024, 500}));
  EXPECT_TRUE(v.pass);
  EXPECT_NE(v.reason.find("disk not checked (capacity unknown)"), std::string::npos) << v.reason;
}

TEST_F(ResourceFitTest, CapabilitiesAreThoseOfTheRequestedDriver) {
  init("{}");
  const ResourceVector cap = {16000, 16384, 100};
  const auto t = table({node("both", cap, {}, {}, {{"kvm", {"live_migration"}}, {"lxc", {}}}),
                        node("lxc-only", cap, {}, {}, {{"lxc", {}}})});
  using V = std::vector<std::uint8_t>;
  EXPECT_EQ(codes(t, vm({1000, 1024, 1}, "lxc", {"live_migration"})),
            (V{ResourceFit::kCapability, ResourceFit::kCapability}));
  EXPECT_EQ(codes(t, vm({1000, 1024, 1}, "kvm", {"live_migration"})), (V{0, ResourceFit::kDriver}));
  EXPECT_EQ(codes(t, vm({1000, 1024, 1}, "", {"live_migration"})), (V{0, ResourceFit::kCapability}));
  EXPECT_EQ(codes(t, vm({1000, 1024, 1}, "lxc")), (V{0, 0}));
  EXPECT_EQ(explain(t, vm({1000, 1024, 1}, "lxc", {"live_migration"})).reason,
            "capability live_migration is not available with driver lxc on this node");
  EXPECT_EQ(explain(t, vm({1000, 1024, 1}, "", {"live_migration"}), 1).reason,
            "capability live_migration is not available on this node");
  EXPECT_EQ(explain(t, vm({1000, 1024, 1}, "kvm"), 1).reason, "driver kvm is not available on this node");
  // A driver no node has: every row, by the driver code, before capabilities.
  EXPECT_EQ(codes(t, vm({1000, 1024, 1}, "xen", {"live_migration"})), (V{ResourceFit::kDriver, ResourceFit::kDriver}));
  EXPECT_EQ(explain(t, vm({1000, 1024, 1}, "xen")).reason, "driver xen is not available on this node");
}

TEST_F(ResourceFitTest, NoSingleDriverWithAllTheCapabilities) {
  init("{}");
  const auto t =
      table({node("split", {16000, 16384, 100}, {}, {}, {{"kvm", {"live_migration"}}, {"lxc", {"snapshots"}}})});
  EXPECT_EQ(code(t, vm({1000, 1024, 1}, "", {"live_migration", "snapshots"})), ResourceFit::kCapability);
  EXPECT_EQ(explain(t, vm({1000, 1024, 1}, "", {"live_migration", "snapshots"})).reason,
            "no single driver on this node has all of the capabilities live_migration, snapshots");
  EXPECT_EQ(code(t, vm({1000, 1024, 1}, "", {"snapshots"})), ResourceFit::kFits);
}

TEST_F(ResourceFitTest, UnknownCapabilityRejectsEveryNode) {
  init("{}");
  const auto t =
      table({node("a", {16000, 16384, 100}, {}, {}, {{"kvm", {"live_migration"}}}), node("b", {16000, 16384, 100})});
  EXPECT_EQ(codes(t, vm({1000, 1024, 1}, "", {"live_migration", "gpu"})),
            (std::vector<std::uint8_t>{ResourceFit::kCapability, ResourceFit::kCapability}));
  EXPECT_EQ(explain(t, vm({1000, 1024, 1}, "", {"live_migration", "gpu"})).reason,
            "capability gpu is not available on any node");
}

TEST_F(ResourceFitTest, ReasonCodesAndRoles) {
  init("{}");
  const auto codes = fit_.reason_codes();
  ASSERT_EQ(codes.size(), 6u);
  const char* names[] = {"driver", "capability", "cpu", "memory", "disk", "reserved_exceeds_capacity"};
  for (size_t i = 0; i < codes.size(); ++i) EXPECT_EQ(codes[i].code, names[i]);
  EXPECT_EQ(codes[ResourceFit::kMemory - 1].code, "memory");
  EXPECT_EQ(fit_.roles(), sdk::kPolicyFilters);
  static_assert(ResourceFit::kInterfaceVersion == 2);
}

TEST_F(ResourceFitTest, ConfigErrorsNameTheKey) {
  auto s = fit_.init(host_, R"({"cpu_allocation_ratio": 0})");
  EXPECT_EQ(s.code(), sdk::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("/cpu_allocation_ratio"), std::string::npos) << s.message();
  s = fit_.init(host_, R"({"memory_ratio": 1})");
  EXPECT_NE(s.message().find("/memory_ratio: unknown key"), std::string::npos) << s.message();
}

TEST_F(ResourceFitTest, InterfaceOneGivesTheSameVerdicts) {
  init(kRatios15);
  const auto t = table({node("a", {16000, 16384, 160}, {2000, 2048, 20}, {20000, 20480, 200}),
                        node("b", {16000, 16384, 0}, {2000, 2048, 0}, {20000, 20480, 900}),
                        node("c", {4000, 1024, 100}, {0, 2048, 0}),
                        node("d", {64000, 65536, 1000}, {}, {}, {{"lxc", {"snapshots"}}})});
  for (const auto& q :
       {vm({2000, 2048, 20}), vm({2001, 0, 0}), vm({0, 2049, 0}), vm({0, 0, 21}), vm({1, 1, 1}, "kvm"),
        vm({1, 1, 1}, "lxc", {"snapshots"}), vm({1, 1, 1}, "", {"snapshots"}), vm({1, 1, 1}, "", {"gpu"})}) {
    const auto v2 = codes(t, q);
    const auto old = v1(t, q);
    for (std::uint32_t row = 0; row < t.rows(); ++row) {
      EXPECT_EQ(old[row].pass, v2[row] == 0) << t.name(row) << ": " << old[row].reason;
      const auto words = explain(t, q, row);
      EXPECT_EQ(words.pass, v2[row] == 0);
      if (v2[row] >= ResourceFit::kCpu) EXPECT_EQ(old[row].reason, words.reason) << t.name(row);
    }
  }
}

TEST_F(ResourceFitTest, TheEngineReadsCodesAndTextsThroughThePluginAdapter) {
  init("{}");
  auto t = table({node("small", {2000, 1024, 100}), node("big", {16000, 16384, 100}),
                  node("full", {16000, 16384, 100}, {}, {0, 16384, 0})});
  const scheduler::PluginPolicy adapter("io.novacron.policy.resource-fit", &fit_, 2);
  EXPECT_TRUE(adapter.batch());
  EXPECT_EQ(adapter.reason_code(ResourceFit::kMemory), "memory");
  EXPECT_EQ(adapter.reason(ResourceFit::kMemory), "not enough memory");
  const scheduler::Engine engine({{&adapter}}, {});
  const auto d = engine.place(vm({1000, 2048, 10}), t, false);
  ASSERT_TRUE(d.placed);
  EXPECT_EQ(d.node, "big");
  ASSERT_EQ(d.filters.size(), 1u);  // every node is ready: no engine step
  const auto& fit = d.filters[0];
  EXPECT_EQ(fit.policy, "io.novacron.policy.resource-fit");
  EXPECT_EQ(fit.rejected, 2u);
  ASSERT_EQ(fit.reasons.size(), 1u);
  EXPECT_EQ(fit.reasons[0].code_name, "memory");
  ASSERT_EQ(fit.reasons[0].examples.size(), 2u);
  EXPECT_EQ(fit.reasons[0].examples[0].text,
            "memory: needs 2048 MiB, 1024 MiB free (1024 MiB x 1 - 0 reserved - 0 allocated)");
}

}  // namespace
}  // namespace novacron::policies
