// A token bucket for bandwidth limits (docs/design/migration-transport.md, section 6).
//
// Debt model: a take succeeds whenever the bucket is not in debt and may leave it negative,
// so a frame larger than the burst still passes and the long-run rate stays exact (the
// debt is paid back before the next take). Times come from the caller (a Clock), never
// from the wall clock inside, so tests are exact.
#pragma once

#include <cstdint>

namespace novacron::transport {

class TokenBucket {
 public:
  // rate_bytes_per_second 0 = unlimited. The burst is max(64 KiB, 20 ms of the rate).
  TokenBucket(std::int64_t rate_bytes_per_second, std::int64_t now_ns);

  // Changes the rate from `now_ns` on: tokens earned until then count at the old rate.
  void set_rate(std::int64_t rate_bytes_per_second, std::int64_t now_ns);
  // Takes `bytes` if the bucket is not in debt at `now_ns`; false (nothing taken) else.
  bool try_take(std::int64_t bytes, std::int64_t now_ns);
  // How long until try_take can succeed (0: now).
  std::int64_t ns_until_ready(std::int64_t now_ns) const;

  std::int64_t rate() const { return rate_; }
  std::int64_t burst() const { return burst_; }
  // Tokens at `now_ns` (negative: debt).
  std::int64_t tokens(std::int64_t now_ns) const;

  static std::int64_t burst_for(std::int64_t rate_bytes_per_second);

 private:
  void refill(std::int64_t now_ns);

  std::int64_t rate_ = 0;
  std::int64_t burst_ = 0;
  // Kept in byte-nanoseconds (bytes x 1e9): rate x elapsed is exact, so frequent refills
  // lose no fractions of a byte.
  __int128 credit_ = 0;
  std::int64_t last_ns_ = 0;
};

}  // namespace novacron::transport
