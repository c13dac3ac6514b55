#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "host/services/event_bus.h"
#include "host/services/executors.h"
#include "host/services/metrics_registry.h"

namespace novacron {
namespace {

TEST(EventBusTest, SequenceContinuesAfterAReservationAndReservesAhead) {
  EventBus bus(10);
  std::vector<std::uint64_t> reservations;
  // A previous run reserved up to 100: this run starts at 101 with a reservation up to
  // 101 + kSeqBlock - 1; crossing it reserves the next block.
  const std::uint64_t first = 101, reserved = 100 + EventBus::kSeqBlock;
  bus.start_sequence_at(first, reserved, [&](std::uint64_t up_to) {
    reservations.push_back(up_to);
    return true;
  });
  EXPECT_EQ(bus.publish("t", "o", "host", "{}"), first);
  EXPECT_TRUE(reservations.empty());
  EXPECT_FALSE(bus.since(50).has_value()) << "a number from before the restart is too old";
  EXPECT_TRUE(bus.since(100).has_value());
  EXPECT_EQ(bus.oldest_retained_seq(), first);

  EventBus edge(10);
  edge.start_sequence_at(5, 5, [&](std::uint64_t up_to) {
    reservations.push_back(up_to);
    return true;
  });
  EXPECT_EQ(edge.publish("t", "o", "host", "{}"), 5u);
  EXPECT_EQ(edge.publish("t", "o", "host", "{}"), 6u);  // past the reservation: reserve first
  ASSERT_EQ(reservations.size(), 1u);
  EXPECT_EQ(reservations[0], 5 + EventBus::kSeqBlock);
  edge.publish("t", "o", "host", "{}");
  EXPECT_EQ(reservations.size(), 1u) << "one reservation per block";
}

TEST(EventBusTest, SequenceNumbersAndResume) {
  EventBus bus(3);
  std::vector<std::uint64_t> seen;
  auto sub = bus.subscribe([&](const HostEvent& e) { seen.push_back(e.seq); });
  for (int i = 0; i < 5; ++i) bus.publish("t", "o", "host", "{}");
  EXPECT_EQ(seen, (std::vector<std::uint64_t>{1, 2, 3, 4, 5}));
  auto recent = bus.since(3);
  ASSERT_TRUE(recent.has_value());
  ASSERT_EQ(recent->size(), 2u);
  EXPECT_EQ((*recent)[0].seq, 4u);
  EXPECT_FALSE(bus.since(1).has_value());  // 2 fell out of the retention window
  EXPECT_TRUE(bus.since(2).has_value());
  bus.unsubscribe(sub);
  bus.publish("t", "o", "host", "");
  EXPECT_EQ(seen.size(), 5u);
  EXPECT_EQ(bus.since(5)->front().payload_json, "{}");
}

TEST(MetricsRegistryTest, RendersPrometheusText) {
  MetricsRegistry m;
  EXPECT_TRUE(m.counter_add("novacron_x_total", "X things", {{"plugin", "a\"b"}}, 2));
  EXPECT_TRUE(m.counter_add("novacron_x_total", "X things", {{"plugin", "a\"b"}}, 1));
  EXPECT_FALSE(m.counter_add("novacron_x_total", "X", {}, -1));  // counters never go down
  EXPECT_FALSE(m.gauge_set("novacron_x_total", "X", {}, 1));     // type is fixed by first use
  EXPECT_FALSE(m.gauge_set("bad name", "X", {}, 1));
  EXPECT_FALSE(m.gauge_set("ok", "X", {{"__reserved", "v"}}, 1));
  EXPECT_TRUE(m.histogram_observe("novacron_lat_seconds", "Latency", {}, 0.02));
  std::string text = m.render_prometheus();
  EXPECT_NE(text.find("# TYPE novacron_x_total counter\n"), std::string::npos) << text;
  EXPECT_NE(text.find("novacron_x_total{plugin=\"a\\\"b\"} 3\n"), std::string::npos) << text;
  EXPECT_NE(text.find("novacron_lat_seconds_bucket{le=\"0.025\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("novacron_lat_seconds_bucket{le=\"0.01\"} 0\n"), std::string::npos) << text;
  EXPECT_NE(text.find("novacron_lat_seconds_count 1\n"), std::string::npos) << text;
}

TEST(ExecutorsTest, ScopedExecutorDropsWorkAfterCloseAndWaitsForRunningWork) {
  ExecutorPools pools(1, 2);
  ScopedExecutor scoped(pools.blocking(), "test");
  std::atomic<int> ran{0};
  std::atomic<bool> release{false};
  std::atomic<bool> started{false};
  scoped.post([&] {
    started = true;
    while (!release) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    ++ran;
  });
  while (!started) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  std::thread releaser([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    release = true;
  });
  EXPECT_TRUE(scoped.close());  // returns only after the running task finished
  EXPECT_EQ(ran.load(), 1);
  scoped.post([&] { ++ran; });
  scoped.post_after(std::chrono::milliseconds(1), [&] { ++ran; });
  releaser.join();
  pools.shutdown();
  EXPECT_EQ(ran.load(), 1);
}

TEST(ExecutorsTest, TimersAndExceptionsAreContained) {
  ExecutorPools pools(2, 2);
  std::atomic<int> ran{0};
  pools.io().post([] { throw std::runtime_error("boom"); });
  pools.io().post_after(std::chrono::milliseconds(5), [&] { ++ran; });
  pools.blocking().post_after(std::chrono::milliseconds(5), [&] { ++ran; });
  for (int i = 0; i < 500 && ran < 2; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  EXPECT_EQ(ran.load(), 2);
  EXPECT_EQ(pools.io().concurrency(), 2);
}

}  // namespace
}  // namespace novacron
