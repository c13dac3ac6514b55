// The migration-cost model: pre-copy rounds worked out by hand, the boundaries (no bandwidth,
// a dirty rate the link cannot outrun, the round limit, disk), and calibration moving toward
// what observations show while ignoring implausible ones.
#include "migration_model.h"

#include <gtest/gtest.h>

#include <cmath>

namespace novacron::policy::migration_cost {
namespace {

constexpr double kTenGbit = 10000;  // Mbit/s; at 0.8 efficiency 953.674 MiB/s

TEST(MigrationModelTest, IdleGuestStopsAfterOneRound) {
  // 1 GiB at 953.674 MiB/s: 1.0737 s; 1.07 MiB dirtied meanwhile: a 1.13 ms stop-and-copy.
  const auto e = estimate_migration({.memory_mib = 1024, .dirty_mib_per_second = 1, .link_mbit_per_second = kTenGbit});
  EXPECT_TRUE(e.possible);
  EXPECT_TRUE(e.converges);
  EXPECT_EQ(e.rounds, 1);
  EXPECT_NEAR(e.downtime_ms, 51.1259, 1e-3);
  EXPECT_NEAR(e.total_seconds, 1.124868, 1e-5);
}

TEST(MigrationModelTest, BusyGuestTakesRoundsThatShrink) {
  // 8 GiB dirtied at 400 MiB/s: rounds of 8.59, 3.60, 1.51 and 0.63 s, then 266 ms stopped.
  const auto e =
      estimate_migration({.memory_mib = 8192, .dirty_mib_per_second = 400, .link_mbit_per_second = kTenGbit});
  EXPECT_EQ(e.rounds, 4);
  EXPECT_NEAR(e.downtime_ms, 315.8456, 1e-3);
  EXPECT_NEAR(e.total_seconds, 14.65364, 1e-4);
  EXPECT_NEAR(e.copied_mib, 13927.119, 1e-2);
  EXPECT_TRUE(e.converges);  // 316 ms: within the 300 ms target plus the switchover
}

TEST(MigrationModelTest, DirtyRateNearTheLinkDoesNotConverge) {
  ModelParams p;
  const auto e =
      estimate_migration({.memory_mib = 4096, .dirty_mib_per_second = 900, .link_mbit_per_second = kTenGbit}, p);
  EXPECT_FALSE(e.converges);
  EXPECT_EQ(e.rounds, p.max_rounds);  // each round only 0.944x the last: the limit stops them
  EXPECT_NEAR(e.downtime_ms, 4096 / 953.67431640625 * std::pow(900 / 953.67431640625, 30) * 1000 + 50, 1e-6);
  EXPECT_GT(e.downtime_ms, 800);  // 0.8 s stopped, far over the 300 ms target
  // Dirtying faster than the link: each round is all of memory again, never more.
  const auto worse =
      estimate_migration({.memory_mib = 4096, .dirty_mib_per_second = 5000, .link_mbit_per_second = kTenGbit}, p);
  EXPECT_FALSE(worse.converges);
  EXPECT_NEAR(worse.downtime_ms, 4096 / 953.67431640625 * 1000 + 50, 1e-6);
}

TEST(MigrationModelTest, NoBandwidthIsImpossibleAndDiskComesFirst) {
  const auto none = estimate_migration({.memory_mib = 1024, .link_mbit_per_second = 0});
  EXPECT_FALSE(none.possible);
  EXPECT_TRUE(std::isinf(none.total_seconds));
  const auto shared = estimate_migration({.memory_mib = 1024, .link_mbit_per_second = kTenGbit});
  const auto copied = estimate_migration({.memory_mib = 1024, .link_mbit_per_second = kTenGbit, .disk_gib = 10});
  EXPECT_NEAR(copied.total_seconds - shared.total_seconds, 10 * 1024 / 953.67431640625, 1e-9);
  EXPECT_EQ(copied.downtime_ms, shared.downtime_ms);  // the disk is copied while the guest runs
}

TEST(MigrationModelTest, CalibrationMovesTowardWhatWasSeen) {
  Calibration c(0.8, 0.2);
  EXPECT_EQ(c.efficiency("node-a/node-b"), 0.8);
  EXPECT_EQ(c.dirty_rate(WorkloadClass::kIdle), 1);
  // A transfer ran at 50 % of a 10 Gbit link: efficiency 0.8 -> 0.74.
  Observation t{.kind = Observation::Kind::kTransfer,
                .link = "node-a/node-b",
                .link_mbit_per_second = kTenGbit,
                .copied_mib = 596.046447753906,  // 0.5 * 1192.09 MiB/s for 1 s
                .duration_seconds = 1};
  EXPECT_TRUE(c.observe(t));
  EXPECT_NEAR(c.efficiency("node-a/node-b"), 0.74, 1e-9);
  EXPECT_EQ(c.dirty_rate(WorkloadClass::kIdle), 1);  // a transfer says nothing of dirty rates
  // A cpu-bound migration: 2 GiB of memory, 3 GiB copied in 10.2 s with 200 ms stopped:
  // 1 GiB re-sent over 10 s of pre-copy = 102.4 MiB/s seen; 20 -> 36.48.
  Observation m{.kind = Observation::Kind::kMigration,
                .link = "node-a/node-b",
                .link_mbit_per_second = kTenGbit,
                .workload = WorkloadClass::kCpuBound,
                .memory_mib = 2048,
                .copied_mib = 3072,
                .duration_seconds = 10.2,
                .downtime_ms = 200};
  EXPECT_TRUE(c.observe(m));
  EXPECT_NEAR(c.dirty_rate(WorkloadClass::kCpuBound), 36.48, 1e-9);
  EXPECT_EQ(c.ignored(), 0);
}

TEST(MigrationModelTest, ImplausibleObservationsAreIgnored) {
  Calibration c;
  Observation bad{.link = "x", .link_mbit_per_second = kTenGbit, .copied_mib = 100, .duration_seconds = 0};
  EXPECT_FALSE(c.observe(bad));
  bad.duration_seconds = 0.01;  // 10,000 MiB/s over a 10 Gbit link
  bad.copied_mib = 100;
  EXPECT_FALSE(c.observe(bad));
  bad.link.clear();
  EXPECT_FALSE(c.observe(bad));
  EXPECT_EQ(c.ignored(), 3);
  EXPECT_TRUE(c.links().empty());
  // Efficiency never drops below 5 %, whatever is seen.
  Observation slow{.kind = Observation::Kind::kTransfer,
                   .link = "wan",
                   .link_mbit_per_second = kTenGbit,
                   .copied_mib = 0.001,
                   .duration_seconds = 100};
  for (int i = 0; i < 100; ++i) c.observe(slow);
  EXPECT_NEAR(c.efficiency("wan"), 0.05, 1e-12);
}

}  // namespace
}  // namespace novacron::policy::migration_cost
