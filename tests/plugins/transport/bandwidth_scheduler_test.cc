// The bandwidth scheduler with an injected clock (never wall time): long-run rates, strict
// priority when the node is the limit, work conservation when a transfer's own limit is,
// round-robin within a class, rate changes, cancel and removal, exact wakeups. The blocking
// gate gets one small test with real threads that checks outcomes, not timing.
#include "bandwidth_scheduler.h"

#include <gtest/gtest.h>

#include <map>
#include <thread>

#include "clock.h"

namespace novacron::transport {
namespace {

constexpr std::int64_t kMs = 1'000'000;
constexpr std::int64_t kSecond = 1'000'000'000;
constexpr std::int64_t kFrame = std::int64_t{64} * 1024;
constexpr std::int64_t kMB = 1'000'000;

// Senders that always have kDepth frames waiting per transfer, as a busy pipeline does: each
// grant is answered by the next request; when nothing is granted the clock moves to the
// scheduler's next wakeup. kDepth frames exceed the largest node burst used here, so no
// sender runs dry within one poll (a transfer with nothing waiting rightly blocks nobody).
class Senders {
 public:
  static constexpr int kDepth = 4;

  Senders(BandwidthScheduler& scheduler, FakeClock& clock, const std::vector<std::uint64_t>& keys)
      : scheduler_(scheduler), clock_(clock) {
    for (std::uint64_t key : keys) {
      for (int i = 0; i < kDepth; ++i) submit(key);
    }
  }

  // Bytes granted per transfer over `duration_ns` of fake time.
  std::map<std::uint64_t, std::int64_t> run_for(std::int64_t duration_ns) {
    std::map<std::uint64_t, std::int64_t> sent;
    const std::int64_t end = clock_.now_ns() + duration_ns;
    while (clock_.now_ns() < end) {
      std::vector<std::uint64_t> granted = scheduler_.poll();
      for (std::uint64_t ticket : granted) {
        std::uint64_t key = owner_.at(ticket);
        owner_.erase(ticket);
        sent[key] += kFrame;
        submit(key);
      }
      if (granted.empty()) {
        // Something always waits, and as poll granted nothing now, the wakeup is later: else
        // stop rather than spin.
        std::optional<std::int64_t> at = scheduler_.next_wakeup_ns();
        if (!at || *at <= clock_.now_ns()) {
          ADD_FAILURE() << "no later wakeup although requests wait and poll granted nothing";
          break;
        }
        clock_.advance(*at - clock_.now_ns());
      }
    }
    return sent;
  }

 private:
  void submit(std::uint64_t key) { owner_[scheduler_.submit(key, kFrame)] = key; }

  BandwidthScheduler& scheduler_;
  FakeClock& clock_;
  std::map<std::uint64_t, std::uint64_t> owner_;  // waiting ticket -> transfer
};

double rate_of(std::int64_t bytes, std::int64_t duration_ns) {
  return static_cast<double>(bytes) * kSecond / static_cast<double>(duration_ns);
}

TEST(BandwidthSchedulerTest, RateOverSixtySimulatedSeconds) {
  FakeClock clock;
  BandwidthScheduler scheduler(clock);
  const std::int64_t node_rate = 12'500'000;  // 100 Mbit/s
  scheduler.set_node_rate(node_rate);
  scheduler.add_transfer(1, Priority::kCold, 0);
  Senders senders(scheduler, clock, {1});
  auto sent = senders.run_for(60 * kSecond);
  EXPECT_NEAR(rate_of(sent[1], 60 * kSecond), node_rate, node_rate * 0.01);

  // The same with the transfer's own limit as the bottleneck.
  FakeClock clock2;
  BandwidthScheduler capped(clock2);
  capped.add_transfer(7, Priority::kLive, 5 * kMB);
  Senders one(capped, clock2, {7});
  auto got = one.run_for(60 * kSecond);
  EXPECT_NEAR(rate_of(got[7], 60 * kSecond), 5 * kMB, 5 * kMB * 0.01);
}

TEST(BandwidthSchedulerTest, LiveBeforeCold) {
  FakeClock clock;
  BandwidthScheduler scheduler(clock);
  scheduler.set_node_rate(10 * kMB);
  scheduler.add_transfer(1, Priority::kBackground, 0);
  scheduler.add_transfer(2, Priority::kCold, 0);
  scheduler.add_transfer(3, Priority::kLive, 0);
  Senders senders(scheduler, clock, {1, 2, 3});
  auto sent = senders.run_for(10 * kSecond);
  EXPECT_NEAR(rate_of(sent[3], 10 * kSecond), 10 * kMB, 10 * kMB * 0.01);
  EXPECT_EQ(sent[2], 0) << "live waits only for node tokens: cold gets none";
  EXPECT_EQ(sent[1], 0);

  // Once live is gone, cold takes the node and background still waits.
  scheduler.remove_transfer(3);
  sent = senders.run_for(10 * kSecond);
  EXPECT_NEAR(rate_of(sent[2], 10 * kSecond), 10 * kMB, 10 * kMB * 0.01);
  EXPECT_EQ(sent[1], 0);
}

TEST(BandwidthSchedulerTest, NodeWaitBlocksLowerClassesEvenIfTheyAskedFirst) {
  FakeClock clock;
  BandwidthScheduler scheduler(clock);
  scheduler.set_node_rate(kMB);  // burst 64 KiB
  scheduler.add_transfer(1, Priority::kLive, 0);
  scheduler.add_transfer(2, Priority::kCold, 0);
  std::uint64_t big = scheduler.submit(1, kMB);
  EXPECT_EQ(scheduler.poll(), std::vector<std::uint64_t>{big});  // the node is now in debt
  std::uint64_t cold = scheduler.submit(2, kFrame);
  std::uint64_t live = scheduler.submit(1, kFrame);
  EXPECT_TRUE(scheduler.poll().empty());
  clock.advance(*scheduler.next_wakeup_ns() - clock.now_ns());
  EXPECT_EQ(scheduler.poll(), std::vector<std::uint64_t>{live}) << "live first; then the node is in debt again";
  clock.advance(*scheduler.next_wakeup_ns() - clock.now_ns());
  EXPECT_EQ(scheduler.poll(), std::vector<std::uint64_t>{cold});
}

TEST(BandwidthSchedulerTest, OwnBucketWaitBlocksNobody) {
  FakeClock clock;
  BandwidthScheduler scheduler(clock);
  scheduler.set_node_rate(10 * kMB);  // burst 200 KB
  scheduler.add_transfer(1, Priority::kLive, kMB);
  scheduler.add_transfer(2, Priority::kBackground, 0);
  std::uint64_t big = scheduler.submit(1, kMB);
  EXPECT_EQ(scheduler.poll(), std::vector<std::uint64_t>{big});
  std::uint64_t live = scheduler.submit(1, kFrame);
  std::uint64_t background = scheduler.submit(2, kFrame);
  // The node pays its 800 KB debt back in 80 ms; live's own bucket needs about 0.93 s.
  std::int64_t wakeup = *scheduler.next_wakeup_ns();
  EXPECT_EQ(wakeup, 80 * kMs);
  clock.advance(wakeup);
  EXPECT_EQ(scheduler.poll(), std::vector<std::uint64_t>{background});
  clock.advance(kSecond);
  EXPECT_EQ(scheduler.poll(), std::vector<std::uint64_t>{live});
}

TEST(BandwidthSchedulerTest, WorkConservingWhenLiveCapped) {
  FakeClock clock;
  BandwidthScheduler scheduler(clock);
  scheduler.set_node_rate(10 * kMB);
  scheduler.add_transfer(1, Priority::kLive, 3 * kMB);
  scheduler.add_transfer(2, Priority::kCold, 0);
  Senders senders(scheduler, clock, {1, 2});
  auto sent = senders.run_for(60 * kSecond);
  EXPECT_NEAR(rate_of(sent[1], 60 * kSecond), 3 * kMB, 3 * kMB * 0.01) << "live gets all its own limit allows";
  EXPECT_NEAR(rate_of(sent[2], 60 * kSecond), 7 * kMB, 7 * kMB * 0.01) << "cold gets the rest of the node";

  // Three classes: each capped class takes its cap, background the remainder.
  FakeClock clock3;
  BandwidthScheduler three(clock3);
  three.set_node_rate(10 * kMB);
  three.add_transfer(1, Priority::kLive, 2 * kMB);
  three.add_transfer(2, Priority::kCold, 3 * kMB);
  three.add_transfer(3, Priority::kBackground, 0);
  Senders all(three, clock3, {1, 2, 3});
  sent = all.run_for(60 * kSecond);
  EXPECT_NEAR(rate_of(sent[1], 60 * kSecond), 2 * kMB, 2 * kMB * 0.01);
  EXPECT_NEAR(rate_of(sent[2], 60 * kSecond), 3 * kMB, 3 * kMB * 0.01);
  EXPECT_NEAR(rate_of(sent[3], 60 * kSecond), 5 * kMB, 5 * kMB * 0.01);
}

TEST(BandwidthSchedulerTest, WorkConservingWithinAClass) {
  FakeClock clock;
  BandwidthScheduler scheduler(clock);
  scheduler.set_node_rate(10 * kMB);
  scheduler.add_transfer(1, Priority::kCold, kMB);  // its turn comes first, but it is capped
  scheduler.add_transfer(2, Priority::kCold, 0);
  Senders senders(scheduler, clock, {1, 2});
  auto sent = senders.run_for(60 * kSecond);
  EXPECT_NEAR(rate_of(sent[1], 60 * kSecond), kMB, kMB * 0.01);
  EXPECT_NEAR(rate_of(sent[2], 60 * kSecond), 9 * kMB, 9 * kMB * 0.01);
}

TEST(BandwidthSchedulerTest, RoundRobinWithinClass) {
  FakeClock clock;
  BandwidthScheduler scheduler(clock);
  for (std::uint64_t key : {10, 20, 30}) scheduler.add_transfer(key, Priority::kCold, 0);
  std::map<std::uint64_t, std::string> name;
  for (int i = 1; i <= 3; ++i) {
    for (std::uint64_t key : {10, 20, 30}) {
      name[scheduler.submit(key, kFrame)] = std::to_string(key) + "#" + std::to_string(i);
    }
  }
  std::vector<std::string> order;
  for (std::uint64_t ticket : scheduler.poll()) order.push_back(name[ticket]);
  EXPECT_EQ(order, (std::vector<std::string>{"10#1", "20#1", "30#1", "10#2", "20#2", "30#2", "10#3", "20#3", "30#3"}));

  // With the node as the limit, the class shares it evenly.
  scheduler.set_node_rate(9 * kMB);
  Senders senders(scheduler, clock, {10, 20, 30});
  auto sent = senders.run_for(60 * kSecond);
  for (std::uint64_t key : {10, 20, 30}) EXPECT_NEAR(rate_of(sent[key], 60 * kSecond), 3 * kMB, 3 * kMB * 0.01);
}

TEST(BandwidthSchedulerTest, SetTransferRateMidway) {
  FakeClock clock;
  BandwidthScheduler scheduler(clock);
  scheduler.add_transfer(1, Priority::kCold, kMB);
  Senders senders(scheduler, clock, {1});
  auto slow = senders.run_for(30 * kSecond);
  scheduler.set_transfer_rate(1, 4 * kMB);
  auto fast = senders.run_for(30 * kSecond);
  EXPECT_NEAR(rate_of(slow[1], 30 * kSecond), kMB, kMB * 0.01);
  EXPECT_NEAR(rate_of(fast[1], 30 * kSecond), 4 * kMB, 4 * kMB * 0.01);
  // A node limit set midway caps it at once.
  scheduler.set_node_rate(2 * kMB);
  auto capped = senders.run_for(30 * kSecond);
  EXPECT_NEAR(rate_of(capped[1], 30 * kSecond), 2 * kMB, 2 * kMB * 0.01);
}

TEST(BandwidthSchedulerTest, RemovingATransferDropsItsTickets) {
  FakeClock clock;
  BandwidthScheduler scheduler(clock);
  scheduler.add_transfer(1, Priority::kLive, kMB);
  scheduler.add_transfer(2, Priority::kCold, kMB);
  std::uint64_t first = scheduler.submit(1, 2 * kMB);
  EXPECT_EQ(scheduler.poll(), std::vector<std::uint64_t>{first});
  std::vector<std::uint64_t> dropped = {scheduler.submit(1, kFrame), scheduler.submit(1, kFrame)};
  std::uint64_t other = scheduler.submit(2, kFrame);
  EXPECT_EQ(scheduler.poll(), std::vector<std::uint64_t>{other});
  for (std::uint64_t t : dropped) EXPECT_TRUE(scheduler.waiting(t));
  scheduler.remove_transfer(1);
  for (std::uint64_t t : dropped) EXPECT_FALSE(scheduler.waiting(t));
  EXPECT_EQ(scheduler.next_wakeup_ns(), std::nullopt) << "nothing waits any more";
  clock.advance(10 * kSecond);
  EXPECT_TRUE(scheduler.poll().empty());
  EXPECT_EQ(scheduler.submit(1, kFrame), 0u) << "an unknown transfer gets no ticket";
  scheduler.set_transfer_rate(1, kMB);  // unknown: ignored
  scheduler.remove_transfer(1);
}

TEST(BandwidthSchedulerTest, CancelDropsOneTicket) {
  FakeClock clock;
  BandwidthScheduler scheduler(clock);
  scheduler.add_transfer(1, Priority::kCold, kMB);
  std::uint64_t big = scheduler.submit(1, kMB);
  ASSERT_EQ(scheduler.poll(), std::vector<std::uint64_t>{big});
  std::uint64_t a = scheduler.submit(1, 10);
  std::uint64_t b = scheduler.submit(1, 10);
  std::uint64_t c = scheduler.submit(1, 10);
  scheduler.cancel(b);
  scheduler.cancel(b);    // twice: ignored
  scheduler.cancel(big);  // granted already: ignored
  EXPECT_FALSE(scheduler.waiting(b));
  clock.advance(2 * kSecond);
  EXPECT_EQ(scheduler.poll(), (std::vector<std::uint64_t>{a, c}));
}

TEST(BandwidthSchedulerTest, NextWakeupIsExact) {
  FakeClock clock(5 * kSecond);
  BandwidthScheduler scheduler(clock);
  EXPECT_EQ(scheduler.next_wakeup_ns(), std::nullopt);
  scheduler.add_transfer(1, Priority::kCold, kMB);  // burst 64 KiB
  std::uint64_t big = scheduler.submit(1, 2 * kMB);
  EXPECT_EQ(scheduler.next_wakeup_ns(), clock.now_ns()) << "grantable now";
  EXPECT_EQ(scheduler.poll(), std::vector<std::uint64_t>{big});
  EXPECT_EQ(scheduler.next_wakeup_ns(), std::nullopt);
  std::uint64_t next = scheduler.submit(1, 1);
  const std::int64_t wait = (2 * kMB - kFrame) * 1000;  // the debt at 1 byte per microsecond
  EXPECT_EQ(scheduler.next_wakeup_ns(), clock.now_ns() + wait);
  clock.advance(wait - 1);
  EXPECT_TRUE(scheduler.poll().empty());
  clock.advance(1);
  EXPECT_EQ(scheduler.poll(), std::vector<std::uint64_t>{next});
}

TEST(BandwidthSchedulerTest, ChangingPriorityMovesATransfer) {
  FakeClock clock;
  BandwidthScheduler scheduler(clock);
  scheduler.set_node_rate(10 * kMB);
  scheduler.add_transfer(1, Priority::kLive, 0);
  scheduler.add_transfer(2, Priority::kBackground, 0);
  scheduler.add_transfer(1, Priority::kBackground, 0);  // demoted
  scheduler.add_transfer(2, Priority::kLive, 0);        // promoted
  Senders senders(scheduler, clock, {1, 2});
  auto sent = senders.run_for(10 * kSecond);
  EXPECT_EQ(sent[1], 0);
  EXPECT_GT(sent[2], 0);
}

TEST(BandwidthGateTest, GrantsAcrossThreadsAndCancelReturnsFalse) {
  BandwidthGate gate;
  gate.set_node_rate(200 * kMB);
  gate.add_transfer(1, Priority::kLive, 0);
  gate.add_transfer(2, Priority::kCold, 0);
  std::atomic<bool> never{false};
  std::atomic<int> granted{0};
  std::vector<std::thread> threads;
  for (std::uint64_t key : {1, 2}) {
    threads.emplace_back([&, key] {
      for (int i = 0; i < 50; ++i) granted += gate.acquire(key, kFrame, never) ? 1 : 0;
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(granted.load(), 100);

  // A transfer deep in debt: the next acquire blocks until cancelled.
  gate.add_transfer(3, Priority::kCold, 1000);
  ASSERT_TRUE(gate.acquire(3, kMB, never));
  std::atomic<bool> cancelled{false};
  std::atomic<int> result{-1};
  std::thread blocked([&] { result = gate.acquire(3, kFrame, cancelled) ? 1 : 0; });
  while (gate.waiters() == 0) std::this_thread::yield();
  cancelled = true;
  blocked.join();
  EXPECT_EQ(result.load(), 0);
  EXPECT_EQ(gate.waiters(), 0u);

  // Removing the transfer releases its waiters with false too.
  std::thread removed([&] { result = gate.acquire(3, kFrame, never) ? 1 : 0; });
  while (gate.waiters() == 0) std::this_thread::yield();
  gate.remove_transfer(3);
  removed.join();
  EXPECT_EQ(result.load(), 0);
  EXPECT_FALSE(gate.acquire(3, kFrame, never)) << "unknown transfer";
  EXPECT_FALSE(gate.acquire(1, kFrame, cancelled)) << "cancelled before asking";
}

}  // namespace
}  // namespace novacron::transport
