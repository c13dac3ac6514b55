// The scheduler's usage model: EWMA over irregular intervals, p95 of 5-minute maxima over a
// 7-day ring (old buckets leave), bad samples refused, and each workload class with the rule
// that chose it.
#include "host/scheduler/usage_model.h"

#include <gtest/gtest.h>

#include <cmath>

namespace novacron::scheduler {
namespace {

UsageSample at(double seconds, double cpu, double mem = 0.2, double io = 0, double net = 0) {
  return UsageSample{seconds, {cpu, mem, io, net}};
}

// One sample per 5-minute bucket for `hours`, all the same.
void steady(UsageModel& m, double start, double hours, double cpu, double mem, double io = 0, double net = 0) {
  for (double t = start; t < start + hours * 3600; t += UsageModel::kBucketSeconds) {
    ASSERT_TRUE(m.add(at(t, cpu, mem, io, net)));
  }
}

TEST(UsageModelTest, EwmaWeighsByTimeWithAHalfLife) {
  UsageModel m(3600);
  ASSERT_TRUE(m.add(at(0, 0.0)));
  EXPECT_EQ(m.ewma(Metric::kCpu), 0.0);  // the first sample is taken as it is
  ASSERT_TRUE(m.add(at(3600, 1.0)));     // one half-life later: halfway
  EXPECT_NEAR(m.ewma(Metric::kCpu), 0.5, 1e-12);
  ASSERT_TRUE(m.add(at(7200, 1.0)));
  EXPECT_NEAR(m.ewma(Metric::kCpu), 0.75, 1e-12);
  ASSERT_TRUE(m.add(at(7200, 1.0)));  // no time passed: no weight
  EXPECT_NEAR(m.ewma(Metric::kCpu), 0.75, 1e-12);
}

TEST(UsageModelTest, BadSamplesAreRefusedAndChangeNothing) {
  UsageModel m;
  ASSERT_TRUE(m.add(at(1000, 0.5)));
  EXPECT_FALSE(m.add(at(999, 0.9)));  // older than the last
  EXPECT_FALSE(m.add(at(2000, -0.1)));
  EXPECT_FALSE(m.add(at(2000, NAN)));
  EXPECT_FALSE(m.add(at(INFINITY, 0.5)));
  EXPECT_EQ(m.ewma(Metric::kCpu), 0.5);
  EXPECT_NEAR(m.p95(Metric::kCpu), 0.5, 0.006);
}

TEST(UsageModelTest, P95OfFiveMinuteMaxima) {
  UsageModel m;
  EXPECT_EQ(m.p95(Metric::kCpu), 0.0);
  // 100 buckets whose maxima are 0.00, 0.01, ..., 0.99 (a low sample in each, too).
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE(m.add(at(i * 300.0, 0.001)));
    ASSERT_TRUE(m.add(at(i * 300.0 + 100, i / 100.0)));
  }
  EXPECT_NEAR(m.p95(Metric::kCpu), 0.945, 0.006);
  // Byte rates: within a bin's 10 %.
  UsageModel r;
  steady(r, 0, 2, 0.1, 0.1, 0, 50e6);
  EXPECT_NEAR(r.p95(Metric::kNetwork), 50e6, 5e6);
  EXPECT_LT(r.p95(Metric::kDiskIo), 1001);  // nothing: the lowest bin
}

TEST(UsageModelTest, BucketsOlderThanSevenDaysLeave) {
  UsageModel m;
  steady(m, 0, 7 * 24, 0.9, 0.2);
  EXPECT_EQ(m.buckets(), UsageModel::kBuckets - 1);  // the last bucket is still open
  EXPECT_NEAR(m.p95(Metric::kCpu), 0.9, 0.006);
  steady(m, 7 * 24 * 3600, 7 * 24, 0.1, 0.2);  // a quiet week after a busy one
  EXPECT_EQ(m.buckets(), UsageModel::kBuckets);
  EXPECT_NEAR(m.p95(Metric::kCpu), 0.1, 0.006);
}

TEST(UsageModelTest, ClassesWithTheRuleThatChoseThem) {
  UsageModel young;
  steady(young, 0, 0.5, 0.9, 0.1);
  EXPECT_EQ(young.classify().workload, WorkloadClass::kUnknown);
  EXPECT_EQ(young.classify().rule, "unknown: 6 of 12 five-minute buckets of history");

  UsageModel idle;
  steady(idle, 0, 3, 0.01, 0.3, 1000, 500);
  EXPECT_EQ(idle.classify().workload, WorkloadClass::kIdle);
  EXPECT_EQ(idle.classify().rule.rfind("idle: cpu p95 0.010", 0), 0u) << idle.classify().rule;

  UsageModel cpu;
  steady(cpu, 0, 3, 0.85, 0.2);
  EXPECT_EQ(cpu.classify().workload, WorkloadClass::kCpuBound);
  EXPECT_NE(cpu.classify().rule.find("cpu 0.850"), std::string::npos) << cpu.classify().rule;

  UsageModel memory;
  steady(memory, 0, 3, 0.1, 0.9);
  EXPECT_EQ(memory.classify().workload, WorkloadClass::kMemoryBound);

  UsageModel io;
  steady(io, 0, 3, 0.3, 0.3, 80e6, 0);
  EXPECT_EQ(io.classify().workload, WorkloadClass::kIoBound);

  UsageModel mixed;
  steady(mixed, 0, 3, 0.5, 0.5, 1e6, 1e6);
  EXPECT_EQ(mixed.classify().workload, WorkloadClass::kMixed);

  // Bursty: mostly quiet, with peaks in more than 5 % of the buckets.
  UsageModel bursty(3600);
  for (int i = 0; i < 72; ++i) {
    const double t = i * 300.0;
    ASSERT_TRUE(bursty.add(at(t, 0.02, 0.3)));
    if (i % 10 == 0) ASSERT_TRUE(bursty.add(at(t + 1, 0.9, 0.3)));
    ASSERT_TRUE(bursty.add(at(t + 2, 0.02, 0.3)));
  }
  EXPECT_EQ(bursty.classify().workload, WorkloadClass::kBursty) << bursty.classify().rule;
}

}  // namespace
}  // namespace novacron::scheduler
