// What each VM has been using, as the scheduler predicts it (docs/design/scheduler.md 3.6):
// per metric an EWMA with a half-life and a p95 over the last 7 days of 5-minute maxima, and
// the workload class that follows from them, with the rule that chose it. Pure: samples come
// in with their times (the collector reads them from the drivers' stats).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "novacron/sdk/scheduling_policy.hpp"

namespace novacron::scheduler {

enum class Metric : std::uint8_t { kCpu, kMemory, kDiskIo, kNetwork };
inline constexpr size_t kMetrics = 4;

// One observation of a VM. cpu and memory are fractions of what the VM was given (0..1,
// cpu may exceed 1 briefly); disk and network are bytes per second.
struct UsageSample {
  double at_seconds = 0;  // monotonic time of the sample
  std::array<double, kMetrics> value{};
};

using sdk::workload_class_name;
using sdk::WorkloadClass;

struct ClassThresholds {
  size_t min_buckets = 12;  // less history than an hour: unknown
  double idle_cpu_p95 = 0.05;
  double idle_io_bytes = 1e6;  // per second
  double idle_net_bytes = 1e5;
  double bursty_cpu_p95 = 0.2;
  double bursty_peak_ratio = 3;  // cpu p95 / cpu ewma
  double cpu_bound_cpu = 0.6;
  double cpu_bound_max_memory = 0.5;
  double memory_bound_memory = 0.7;
  double memory_bound_max_cpu = 0.4;
  double io_bound_bytes = 20e6;  // disk or network, per second
};

struct Classification {
  WorkloadClass workload = WorkloadClass::kUnknown;
  std::string rule;  // which rule matched, with the values it saw
};

class UsageModel {
 public:
  static constexpr double kBucketSeconds = 300;
  static constexpr size_t kBuckets = size_t{7} * 24 * 12;  // 7 days of 5-minute maxima
  static constexpr size_t kBins = 200;

  explicit UsageModel(double half_life_seconds = 3600);

  // Samples arrive in time order; one older than the last is ignored (false), as is one
  // with a negative or non-finite value.
  bool add(const UsageSample& sample);

  double ewma(Metric m) const { return ewma_[static_cast<size_t>(m)]; }
  // The 95th percentile of the 5-minute maxima kept, from a histogram: exact to one bin
  // (0.5 % for cpu and memory; a factor of 1.1 for byte rates). 0 without history.
  double p95(Metric m) const;
  size_t buckets() const { return ring_size_; }

  Classification classify(const ClassThresholds& t = {}) const;

 private:
  static size_t bin_of(Metric m, double value);
  static double bin_upper(Metric m, size_t bin);
  void close_bucket();

  double half_life_;
  bool started_ = false;
  double last_at_ = 0;
  std::array<double, kMetrics> ewma_{};
  // The open 5-minute bucket.
  std::int64_t bucket_index_ = 0;
  std::array<double, kMetrics> bucket_max_{};
  bool bucket_open_ = false;
  // Closed buckets: a ring of their maxima as bins, and per metric a histogram of the ring.
  std::vector<std::array<std::uint8_t, kMetrics>> ring_;
  size_t ring_next_ = 0, ring_size_ = 0;
  std::array<std::array<std::uint32_t, kBins>, kMetrics> histogram_{};
};

}  // namespace novacron::scheduler
