// Time for the transport's pure parts (token buckets, rate measurements), injected so that
// tests drive it instead of waiting on the wall clock.
#pragma once

#include <chrono>
#include <cstdint>

namespace novacron::transport {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual std::int64_t now_ns() const = 0;
};

class SteadyClock final : public Clock {
 public:
  std::int64_t now_ns() const override {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }
};

// A clock that moves only when told (tests).
class FakeClock final : public Clock {
 public:
  explicit FakeClock(std::int64_t start_ns = 0) : now_(start_ns) {}
  std::int64_t now_ns() const override { return now_; }
  void advance(std::int64_t ns) { now_ += ns; }

 private:
  std::int64_t now_;
};

}  // namespace novacron::transport
