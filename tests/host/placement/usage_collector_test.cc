// The usage history: rates from driver counters, dropped samples on restarts and unknown
// counters, predictions per node (VMs without history at a share of what they asked for),
// classes, and the 5-minute buckets kept in a real SQLite state store across a restart.
#include "host/placement/usage_collector.h"

#include <gtest/gtest.h>

#include "host/state/schema.h"
#include "tests/support/test_env.h"

namespace novacron {
namespace {

sdk::VmStats counters(std::int64_t cpu_ns, std::int64_t mem_kib, std::int64_t disk = 0, std::int64_t net = 0) {
  sdk::VmStats s;
  s.cpu_time_ns = cpu_ns;
  s.memory_used_kib = mem_kib;
  s.disk_read_bytes = disk;
  s.disk_write_bytes = 0;
  s.net_rx_bytes = net;
  s.net_tx_bytes = 0;
  return s;
}

class UsageCollectorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto db = open_host_database(dir_.path());
    ASSERT_TRUE(db.has_value()) << db.error().message;
    db_ = std::move(*db);
  }
  // A VM with 2 vCPUs and 1024 MiB using `cpu` of its vCPUs and `mem` of its memory for
  // `minutes`, sampled every 30 s from `start_ms`.
  static void feed(UsageCollector& c, const std::string& id, double cpu, double mem, int minutes,
                   std::int64_t start_ms = 1'800'000'000'000) {
    std::int64_t cpu_ns = 0;
    for (int i = 0; i <= minutes * 2; ++i) {
      c.observe(id, 2, 1024, counters(cpu_ns, static_cast<std::int64_t>(mem * 1024 * 1024)), start_ms + i * 30000);
      cpu_ns += static_cast<std::int64_t>(cpu * 2 * 30e9);
    }
  }
  testing::TempDir dir_;
  std::unique_ptr<Database> db_;
};

TEST_F(UsageCollectorTest, RatesClassesAndNodePredictions) {
  UsageCollector c(*db_, {});
  feed(c, "busy", 0.9, 0.2, 90);
  const auto usage = c.vm_usage("busy");
  ASSERT_FALSE(usage.is_null());
  EXPECT_NEAR(usage["cpu"]["ewma"].get<double>(), 0.9, 0.01);
  EXPECT_NEAR(usage["memory"]["ewma"].get<double>(), 0.2, 0.01);
  EXPECT_EQ(usage["class"], "cpu-bound") << usage.dump();
  EXPECT_NE(usage["rule"].get<std::string>().find("cpu-bound"), std::string::npos);
  // The node: busy's prediction plus a VM without history at half of what it asked for.
  const NodeUsage n = c.node_usage({{"busy", 2, 1024}, {"new", 4, 4096}});
  EXPECT_EQ(n.vms, 2u);
  EXPECT_EQ(n.vms_with_history, 1u);
  EXPECT_NEAR(n.mean[0], 0.9 * 2000 + 0.5 * 4000, 30);
  EXPECT_NEAR(n.mean[1], 0.2 * 1024 + 0.5 * 4096, 15);
  EXPECT_EQ(n.classes[static_cast<size_t>(sdk::WorkloadClass::kCpuBound)], 1);
  EXPECT_EQ(n.classes[static_cast<size_t>(sdk::WorkloadClass::kUnknown)], 1);
  EXPECT_TRUE(c.vm_usage("never").is_null());
}

TEST_F(UsageCollectorTest, CountersGoingBackOrUnknownDropTheSample) {
  UsageCollector c(*db_, {});
  const std::int64_t t = 1'800'000'000'000;
  c.observe("vm", 1, 1024, counters(100e9, 0), t);
  c.observe("vm", 1, 1024, counters(130e9, 0), t + 30000);  // 100 % of one vCPU
  c.observe("vm", 1, 1024, counters(5e9, 0), t + 60000);    // restarted: dropped
  c.observe("vm", 1, 1024, counters(-1, 0), t + 90000);     // unknown: dropped
  c.observe("vm", 1, 1024, counters(20e9, 0), t + 120000);  // after -1: no interval yet
  c.observe("vm", 1, 1024, counters(23e9, 0), t + 150000);  // 10 %
  const auto usage = c.vm_usage("vm");
  ASSERT_FALSE(usage.is_null());
  const double ewma = usage["cpu"]["ewma"].get<double>();
  EXPECT_GT(ewma, 0.1);
  EXPECT_LT(ewma, 1.0);
  EXPECT_NEAR(usage["cpu"]["p95"].get<double>(), 1.0, 0.01) << "the peak of the bucket";
}

TEST_F(UsageCollectorTest, HistorySurvivesARestart) {
  {
    UsageCollector c(*db_, {});
    feed(c, "db", 0.1, 0.9, 120,
         std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
                 .count() -
             3 * 3600 * 1000);
    ASSERT_EQ(c.vm_usage("db")["class"], "memory-bound");
  }
  UsageCollector again(*db_, {});
  again.load();
  const auto usage = again.vm_usage("db");
  ASSERT_FALSE(usage.is_null()) << "the stored buckets were loaded";
  EXPECT_GE(usage["buckets"].get<int>(), 20);
  EXPECT_EQ(usage["class"], "memory-bound") << usage.dump();
  again.forget("db");
  UsageCollector third(*db_, {});
  third.load();
  EXPECT_TRUE(third.vm_usage("db").is_null()) << "forget removes the stored buckets";
}

// The five-minute bucket in progress is stored at shutdown (flush) and continued after the
// restart: its samples from both sides of the restart end up in one stored bucket.
TEST_F(UsageCollectorTest, TheBucketInProgressSurvivesARestart) {
  const std::int64_t now =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count();
  const std::int64_t t0 = (now - 3600 * 1000) / 300000 * 300000;  // a bucket boundary an hour ago
  const auto observe = [&](UsageCollector& c, int second, double cpu_so_far_seconds) {
    c.observe("web", 2, 1024, counters(static_cast<std::int64_t>(cpu_so_far_seconds * 1e9), 512 * 1024),
              t0 + second * 1000);
  };
  {
    UsageCollector before(*db_, {});
    double cpu = 0;
    for (int s = 0; s <= 120; s += 30, cpu += 30) observe(before, s, cpu);  // half of 2 vCPUs: 4 samples
    before.flush();
  }
  UsageCollector after(*db_, {});
  after.load();
  double cpu = 1000;
  for (int s = 150; s <= 270; s += 30, cpu += 60) observe(after, s, cpu);  // both vCPUs: 4 samples
  observe(after, 300, cpu);  // the next bucket starts: the first one is stored
  auto stored = db_->with_lock([&]() -> Expected<std::pair<std::int64_t, double>> {
    auto stmt = db_->prepare("SELECT samples, cpu_mean FROM vm_usage WHERE vm_id = 'web' AND bucket_start = ?");
    if (!stmt) return tl::unexpected(stmt.error());
    stmt->bind(1, t0);
    auto row = stmt->step();
    if (!row) return tl::unexpected(row.error());
    if (!*row) return std::pair<std::int64_t, double>{0, 0.0};
    return std::pair<std::int64_t, double>{stmt->integer(0), stmt->real(1)};
  });
  ASSERT_TRUE(stored.has_value()) << stored.error().message;
  EXPECT_EQ(stored->first, 8) << "four samples before the restart and four after";
  EXPECT_NEAR(stored->second, 0.75, 1e-9);
}

}  // namespace
}  // namespace novacron
