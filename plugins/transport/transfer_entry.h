// One transfer as the node tracks it: its status (shared between the session thread that
// runs it and the API threads that read it), its cancel flag, and waiters for its end.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>

#include "novacron/sdk/migration_transport.hpp"

namespace novacron::transport {

std::int64_t unix_ms_now();

class TransferEntry {
 public:
  explicit TransferEntry(sdk::TransferStatus initial);

  sdk::TransferStatus snapshot() const;
  // Changes the status under the lock and stamps updated_at_ms; wakes waiters when the
  // state became final.
  void update(const std::function<void(sdk::TransferStatus&)>& change);
  // Adds raw bytes done and refreshes throughput (EWMA over ~5 s) and ETA.
  void add_progress(std::int64_t raw_bytes);

  // Waits until the state is final (or `timeout`); returns the status then.
  sdk::TransferStatus wait(std::chrono::milliseconds timeout) const;
  bool finished() const;

  void request_cancel() { cancelled_.store(true); }
  const std::atomic<bool>& cancelled() const { return cancelled_; }

 private:
  mutable std::mutex mu_;
  mutable std::condition_variable done_cv_;
  sdk::TransferStatus status_;
  std::atomic<bool> cancelled_{false};
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point rate_at_ = started_;
  std::int64_t rate_bytes_ = 0;
};

}  // namespace novacron::transport
