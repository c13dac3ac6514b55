#include "transfer_entry.h"

#include <cmath>

namespace novacron::transport {

std::int64_t unix_ms_now() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

TransferEntry::TransferEntry(sdk::TransferStatus initial) : status_(std::move(initial)) {
  status_.created_at_ms = status_.updated_at_ms = unix_ms_now();
}

sdk::TransferStatus TransferEntry::snapshot() const {
  std::lock_guard lock(mu_);
  sdk::TransferStatus copy = status_;
  if (!sdk::transfer_state_is_final(copy.state)) {
    copy.stats.elapsed_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started_).count();
  }
  return copy;
}

void TransferEntry::update(const std::function<void(sdk::TransferStatus&)>& change) {
  std::lock_guard lock(mu_);
  const bool was_final = sdk::transfer_state_is_final(status_.state);
  change(status_);
  status_.updated_at_ms = unix_ms_now();
  status_.stats.elapsed_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started_).count();
  if (!was_final && sdk::transfer_state_is_final(status_.state)) {
    status_.stats.eta_ms = 0;
    done_cv_.notify_all();
  }
}

void TransferEntry::add_progress(std::int64_t raw_bytes) {
  std::lock_guard lock(mu_);
  status_.stats.bytes_done += raw_bytes;
  rate_bytes_ += raw_bytes;
  const auto now = std::chrono::steady_clock::now();
  const double window = std::chrono::duration<double>(now - rate_at_).count();
  if (window >= 0.25) {
    // EWMA with a ~5 s time constant, weighted by the window's length.
    const double sample = static_cast<double>(rate_bytes_) / window;
    const double alpha = 1.0 - std::exp(-window / 5.0);
    double& tp = status_.stats.throughput_bytes_per_second;
    tp = tp == 0 ? sample : tp + alpha * (sample - tp);
    rate_at_ = now;
    rate_bytes_ = 0;
  }
  const std::int64_t left = status_.stats.bytes_total - status_.stats.bytes_done;
  const double tp = status_.stats.throughput_bytes_per_second;
  status_.stats.eta_ms =
      (tp > 0 && left >= 0) ? static_cast<std::int64_t>(1000.0 * static_cast<double>(left) / tp) : -1;
}

sdk::TransferStatus TransferEntry::wait(std::chrono::milliseconds timeout) const {
  std::unique_lock lock(mu_);
  done_cv_.wait_for(lock, timeout, [&] { return sdk::transfer_state_is_final(status_.state); });
  return status_;
}

bool TransferEntry::finished() const {
  std::lock_guard lock(mu_);
  return sdk::transfer_state_is_final(status_.state);
}

}  // namespace novacron::transport
