#include "host/scheduler/usage_model.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace novacron::scheduler {

namespace {

// Byte rates spread over decades: bins grow by 10 % from 1 kB/s (bin 0 holds everything
// below); 200 bins reach beyond 10^11 bytes/s.
constexpr double kRateBase = 1000;
constexpr double kRateGrowth = 1.1;

bool fraction_metric(Metric m) { return m == Metric::kCpu || m == Metric::kMemory; }

std::string fmt(const char* format, double a, double b = 0) {
  char buf[160];
  std::snprintf(buf, sizeof buf, format, a, b);
  return buf;
}

}  // namespace

UsageModel::UsageModel(double half_life_seconds) : half_life_(half_life_seconds), ring_(kBuckets) {}

size_t UsageModel::bin_of(Metric m, double value) {
  if (fraction_metric(m)) {
    // 0.5 % bins over [0, 1]; anything above 1 (a burst over the allowance) in the last.
    return std::min(kBins - 1, static_cast<size_t>(value * (kBins - 1)));
  }
  if (value < kRateBase) return 0;
  const double bin = std::log(value / kRateBase) / std::log(kRateGrowth) + 1;
  return std::min(kBins - 1, static_cast<size_t>(bin));
}

double UsageModel::bin_upper(Metric m, size_t bin) {
  if (fraction_metric(m)) return static_cast<double>(bin + 1) / (kBins - 1);
  return kRateBase * std::pow(kRateGrowth, static_cast<double>(bin));
}

bool UsageModel::add(const UsageSample& s) {
  for (const double v : s.value) {
    if (!(v >= 0) || !std::isfinite(v)) return false;
  }
  if (!std::isfinite(s.at_seconds) || (started_ && s.at_seconds < last_at_)) return false;
  // EWMA over irregular intervals: the weight of the new sample grows with the time since
  // the last one (alpha = 1 - 2^(-dt / half_life)); the first sample is taken as it is.
  const double alpha = started_ ? 1 - std::exp2(-(s.at_seconds - last_at_) / half_life_) : 1.0;
  for (size_t m = 0; m < kMetrics; ++m) ewma_[m] += alpha * (s.value[m] - ewma_[m]);
  const auto index = static_cast<std::int64_t>(std::floor(s.at_seconds / kBucketSeconds));
  if (bucket_open_ && index != bucket_index_) close_bucket();
  if (!bucket_open_) {
    bucket_open_ = true;
    bucket_index_ = index;
    bucket_max_ = s.value;
  } else {
    for (size_t m = 0; m < kMetrics; ++m) bucket_max_[m] = std::max(bucket_max_[m], s.value[m]);
  }
  started_ = true;
  last_at_ = s.at_seconds;
  return true;
}

void UsageModel::close_bucket() {
  auto& slot = ring_[ring_next_];
  if (ring_size_ == kBuckets) {  // the oldest bucket leaves the histograms
    for (size_t m = 0; m < kMetrics; ++m) --histogram_[m][slot[m]];
  } else {
    ++ring_size_;
  }
  for (size_t m = 0; m < kMetrics; ++m) {
    slot[m] = static_cast<std::uint8_t>(bin_of(static_cast<Metric>(m), bucket_max_[m]));
    ++histogram_[m][slot[m]];
  }
  ring_next_ = (ring_next_ + 1) % kBuckets;
  bucket_open_ = false;
}

double UsageModel::p95(Metric m) const {
  // The open bucket counts too: a VM minutes old has a p95 of what it did so far.
  const auto& h = histogram_[static_cast<size_t>(m)];
  const size_t open_bin = bucket_open_ ? bin_of(m, bucket_max_[static_cast<size_t>(m)]) : kBins;
  const size_t total = ring_size_ + (bucket_open_ ? 1 : 0);
  if (total == 0) return 0;
  // The smallest bin at or below which 95 % of the buckets lie.
  const auto need = static_cast<size_t>(std::ceil(0.95 * static_cast<double>(total)));
  size_t seen = 0;
  for (size_t bin = 0; bin < kBins; ++bin) {
    seen += h[bin] + (bin == open_bin ? 1 : 0);
    if (seen >= need) return bin_upper(m, bin);
  }
  return bin_upper(m, kBins - 1);
}

Classification UsageModel::classify(const ClassThresholds& t) const {
  const size_t history = ring_size_ + (bucket_open_ ? 1 : 0);
  if (history < t.min_buckets) {
    return {WorkloadClass::kUnknown, "unknown: " + std::to_string(history) + " of " + std::to_string(t.min_buckets) +
                                         " five-minute buckets of history"};
  }
  const double cpu = ewma(Metric::kCpu), cpu95 = p95(Metric::kCpu), mem = ewma(Metric::kMemory);
  const double io = ewma(Metric::kDiskIo), net = ewma(Metric::kNetwork);
  if (cpu95 < t.idle_cpu_p95 && io < t.idle_io_bytes && net < t.idle_net_bytes) {
    return {WorkloadClass::kIdle, fmt("idle: cpu p95 %.3f, disk %.0f B/s", cpu95, io) + fmt(", network %.0f B/s", net)};
  }
  if (cpu95 >= t.bursty_cpu_p95 && cpu95 >= t.bursty_peak_ratio * cpu) {
    return {WorkloadClass::kBursty, fmt("bursty: cpu p95 %.3f is at least 3x its average %.3f", cpu95, cpu)};
  }
  if (cpu >= t.cpu_bound_cpu && mem < t.cpu_bound_max_memory) {
    return {WorkloadClass::kCpuBound, fmt("cpu-bound: cpu %.3f, memory %.3f", cpu, mem)};
  }
  if (mem >= t.memory_bound_memory && cpu < t.memory_bound_max_cpu) {
    return {WorkloadClass::kMemoryBound, fmt("memory-bound: memory %.3f, cpu %.3f", mem, cpu)};
  }
  if (io >= t.io_bound_bytes || net >= t.io_bound_bytes) {
    return {WorkloadClass::kIoBound, fmt("io-bound: disk %.0f B/s, network %.0f B/s", io, net)};
  }
  return {WorkloadClass::kMixed, fmt("mixed: cpu %.3f, memory %.3f", cpu, mem)};
}

}  // namespace novacron::scheduler
