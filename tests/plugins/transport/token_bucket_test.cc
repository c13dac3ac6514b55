// The token bucket with an injected clock (never wall time): long-run rate, bursts, frames
// larger than the burst, rate changes while running, unlimited, and huge time gaps.
#include "token_bucket.h"

#include <gtest/gtest.h>

#include "clock.h"

namespace novacron::transport {
namespace {

constexpr std::int64_t kMs = 1'000'000;
constexpr std::int64_t kSecond = 1'000'000'000;
constexpr std::int64_t kFrame = std::int64_t{64} * 1024;

// Sends `chunk`-byte frames as fast as the bucket allows for `duration_ns` of fake time,
// stepping the clock to when the bucket is ready; returns the bytes sent.
std::int64_t drive(TokenBucket& bucket, FakeClock& clock, std::int64_t chunk, std::int64_t duration_ns) {
  std::int64_t sent = 0;
  const std::int64_t end = clock.now_ns() + duration_ns;
  while (clock.now_ns() < end) {
    if (bucket.try_take(chunk, clock.now_ns())) {
      sent += chunk;
    } else {
      clock.advance(std::max<std::int64_t>(1, bucket.ns_until_ready(clock.now_ns())));
    }
  }
  return sent;
}

TEST(TokenBucketTest, LongRunRateIsTheConfiguredRate) {
  FakeClock clock;
  const std::int64_t rate = 12'500'000;  // 100 Mbit/s
  TokenBucket bucket(rate, clock.now_ns());
  std::int64_t sent = drive(bucket, clock, kFrame, 10 * kSecond);
  // 10 s at the rate, plus the initial burst, plus at most one frame of debt.
  std::int64_t expected = rate * 10 + bucket.burst();
  EXPECT_GE(sent, expected - kFrame);
  EXPECT_LE(sent, expected + kFrame);
}

TEST(TokenBucketTest, AFrameLargerThanTheBurstPassesAndIsPaidBack) {
  FakeClock clock;
  TokenBucket bucket(1'000'000, clock.now_ns());  // 1 MB/s, burst 64 KiB
  EXPECT_EQ(bucket.burst(), kFrame);
  EXPECT_TRUE(bucket.try_take(2'000'000, clock.now_ns())) << "not in debt: it passes";
  EXPECT_FALSE(bucket.try_take(1, clock.now_ns())) << "now in debt";
  // The debt is 2,000,000 - 65,536 bytes: paid back in about 1.93 s.
  std::int64_t wait = bucket.ns_until_ready(clock.now_ns());
  EXPECT_EQ(wait, (2'000'000 - 65'536) * 1000);
  clock.advance(wait - 1);
  EXPECT_FALSE(bucket.try_take(1, clock.now_ns()));
  clock.advance(1);
  EXPECT_TRUE(bucket.try_take(1, clock.now_ns()));
}

TEST(TokenBucketTest, RateChangesApplyFromTheirMoment) {
  FakeClock clock;
  TokenBucket bucket(1'000'000, clock.now_ns());
  std::int64_t slow = drive(bucket, clock, 10'000, 5 * kSecond);
  bucket.set_rate(4'000'000, clock.now_ns());
  EXPECT_EQ(bucket.burst(), 80'000) << "20 ms of the new rate";
  std::int64_t fast = drive(bucket, clock, 10'000, 5 * kSecond);
  EXPECT_NEAR(static_cast<double>(slow), 5'000'000.0 + 65'536, 20'000);
  EXPECT_NEAR(static_cast<double>(fast), 20'000'000.0, 100'000);
  // Lowering the rate clamps saved-up tokens to the new burst.
  clock.advance(10 * kSecond);
  bucket.set_rate(100'000, clock.now_ns());
  EXPECT_EQ(bucket.tokens(clock.now_ns()), kFrame);
}

TEST(TokenBucketTest, UnlimitedAndOddClocks) {
  FakeClock clock(5 * kSecond);
  TokenBucket unlimited(0, clock.now_ns());
  for (int i = 0; i < 1000; ++i) EXPECT_TRUE(unlimited.try_take(1 << 30, clock.now_ns()));
  EXPECT_EQ(unlimited.ns_until_ready(clock.now_ns()), 0);

  TokenBucket bucket(1'000'000, clock.now_ns());
  ASSERT_TRUE(bucket.try_take(1'000'000, clock.now_ns()));
  // A clock that goes back earns nothing and breaks nothing.
  EXPECT_FALSE(bucket.try_take(1, clock.now_ns() - kSecond));
  // A gap of centuries neither overflows nor saves more than one burst.
  EXPECT_EQ(bucket.tokens(INT64_MAX), bucket.burst());
  EXPECT_TRUE(bucket.try_take(1, INT64_MAX));
  TokenBucket fast(INT64_MAX, 0);
  EXPECT_TRUE(fast.try_take(INT64_MAX / 2, 0));
  EXPECT_GE(fast.ns_until_ready(10 * kMs), 0);
}

}  // namespace
}  // namespace novacron::transport
