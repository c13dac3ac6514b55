#include "token_bucket.h"

#include <algorithm>

namespace novacron::transport {
namespace {

constexpr std::int64_t kNsPerSecond = 1'000'000'000;
constexpr std::int64_t kMinBurst = std::int64_t{64} * 1024;

// Bytes earned at `rate` over `elapsed_ns`, without overflow for any 64-bit inputs.
std::int64_t earned(std::int64_t rate, std::int64_t elapsed_ns) {
  __int128 e = static_cast<__int128>(rate) * elapsed_ns / kNsPerSecond;
  return e > INT64_MAX ? INT64_MAX : static_cast<std::int64_t>(e);
}

}  // namespace

std::int64_t TokenBucket::burst_for(std::int64_t rate) {
  return std::max<std::int64_t>(kMinBurst, earned(rate, 20'000'000));  // 20 ms of the rate
}

TokenBucket::TokenBucket(std::int64_t rate, std::int64_t now_ns)
    : rate_(std::max<std::int64_t>(rate, 0)),
      burst_(burst_for(rate_)),
      credit_(static_cast<__int128>(burst_) * kNsPerSecond),
      last_ns_(now_ns) {}

void TokenBucket::refill(std::int64_t now_ns) {
  if (now_ns <= last_ns_) return;  // a clock that did not move (or went back) earns nothing
  if (rate_ > 0) {
    // rate (< 2^63) x elapsed (< 2^64) fits in 128 bits; the bucket caps at its burst.
    const __int128 full = static_cast<__int128>(burst_) * kNsPerSecond;
    const __int128 add = static_cast<__int128>(rate_) * (static_cast<__int128>(now_ns) - last_ns_);
    credit_ = add >= full - credit_ ? full : credit_ + add;
  }
  last_ns_ = now_ns;
}

void TokenBucket::set_rate(std::int64_t rate, std::int64_t now_ns) {
  refill(now_ns);
  rate_ = std::max<std::int64_t>(rate, 0);
  burst_ = burst_for(rate_);
  credit_ = std::min(credit_, static_cast<__int128>(burst_) * kNsPerSecond);
}

bool TokenBucket::try_take(std::int64_t bytes, std::int64_t now_ns) {
  if (rate_ == 0) return true;
  refill(now_ns);
  if (credit_ < 0) return false;
  credit_ -= static_cast<__int128>(std::max<std::int64_t>(bytes, 0)) * kNsPerSecond;
  return true;
}

std::int64_t TokenBucket::tokens(std::int64_t now_ns) const {
  TokenBucket copy = *this;
  copy.refill(now_ns);
  __int128 t = copy.credit_ / kNsPerSecond;  // toward zero: a debt of a fraction shows as 0
  if (copy.credit_ < 0 && copy.credit_ % kNsPerSecond != 0) t -= 1;
  return t > INT64_MAX ? INT64_MAX : t < INT64_MIN ? INT64_MIN : static_cast<std::int64_t>(t);
}

std::int64_t TokenBucket::ns_until_ready(std::int64_t now_ns) const {
  if (rate_ == 0) return 0;
  TokenBucket copy = *this;
  copy.refill(now_ns);
  if (copy.credit_ >= 0) return 0;
  __int128 ns = (-copy.credit_ + rate_ - 1) / rate_;  // byte-ns / (bytes/s) = ns, rounded up
  return ns > INT64_MAX ? INT64_MAX : static_cast<std::int64_t>(ns);
}

}  // namespace novacron::transport
