#include "host/placement/usage_collector.h"

#include <spdlog/spdlog.h>

#include <cmath>
#include <utility>
#include <vector>

namespace novacron {
using nlohmann::json;
using scheduler::Metric;

namespace {

constexpr std::int64_t kBucketMs = 300000;

std::int64_t sum_counters(std::int64_t a, std::int64_t b) { return a < 0 || b < 0 ? -1 : a + b; }

}  // namespace

UsageCollector::UsageCollector(Database& db, Options options) : db_(db), options_(options) {}

UsageCollector::Vm& UsageCollector::vm(const std::string& id) {
  auto it = vms_.find(id);
  if (it == vms_.end()) it = vms_.emplace(id, Vm(options_.half_life_seconds)).first;
  return it->second;
}

void UsageCollector::load() {
  const std::int64_t since =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count() -
      std::int64_t{options_.retention_days} * 86400000;
  auto rows = db_.with_lock([&]() -> Expected<size_t> {
    auto stmt = db_.prepare(
        "SELECT vm_id, bucket_start, cpu_mean, cpu_max, mem_mean, mem_max, io_max, net_max, samples FROM vm_usage "
        "WHERE bucket_start >= ? ORDER BY vm_id, bucket_start");
    if (!stmt) return tl::unexpected(stmt.error());
    stmt->bind(1, since);
    size_t n = 0;
    std::lock_guard<std::mutex> lock(mutex_);
    while (true) {
      auto row = stmt->step();
      if (!row) return tl::unexpected(row.error());
      if (!*row) break;
      // One sample per stored bucket at its peak: the p95 of peaks is exact, the EWMA leans
      // high after a restart until new samples come in (the safe side for placement).
      scheduler::UsageSample s;
      s.at_seconds = static_cast<double>(stmt->integer(1)) / 1000.0;
      s.value = {stmt->real(3), stmt->real(5), stmt->real(6), stmt->real(7)};
      Vm& v = vm(stmt->text(0));
      v.model.add(s);
      // The VM's latest bucket is where its next samples go if they fall in the same five
      // minutes (a restart, or a flush at shutdown): sums from the means, and the peaks.
      const auto samples = static_cast<int>(stmt->integer(8));
      v.bucket = Bucket{stmt->integer(1), {}, {}, samples};
      v.bucket.sum[0] = stmt->real(2) * samples;
      v.bucket.sum[1] = stmt->real(4) * samples;
      v.bucket.max = {stmt->real(3), stmt->real(5), stmt->real(6), stmt->real(7)};
      ++n;
    }
    return n;
  });
  if (!rows) {
    spdlog::warn("usage history not loaded: {}", rows.error().message);
    return;
  }
  (void)db_.with_lock([&]() -> Expected<void> {
    auto stmt = db_.prepare("DELETE FROM vm_usage WHERE bucket_start < ?");
    if (!stmt) return tl::unexpected(stmt.error());
    stmt->bind(1, since);
    return stmt->run();
  });
  spdlog::info("usage history: {} five-minute buckets of {} VMs loaded", *rows, vms_.size());
}

void UsageCollector::observe(const std::string& vm_id, int vcpus, std::int64_t memory_mib, const sdk::VmStats& stats,
                             std::int64_t at_ms) {
  std::optional<Bucket> finished;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    Vm& v = vm(vm_id);
    Counters now{at_ms, stats.cpu_time_ns, sum_counters(stats.disk_read_bytes, stats.disk_write_bytes),
                 sum_counters(stats.net_rx_bytes, stats.net_tx_bytes)};
    const Counters prev = v.last;
    v.last = now;
    const double dt = static_cast<double>(at_ms - prev.at_ms) / 1000.0;
    if (prev.at_ms == 0 || dt <= 0 || now.cpu_time_ns < 0 || prev.cpu_time_ns < 0 ||
        now.cpu_time_ns < prev.cpu_time_ns || vcpus <= 0 || memory_mib <= 0) {
      return;  // the first sight, a restart (counters went back) or unknown counters
    }
    const auto rate = [&](std::int64_t a, std::int64_t b) {
      return a < 0 || b < 0 || a < b ? 0.0 : static_cast<double>(a - b) / dt;
    };
    scheduler::UsageSample s;
    s.at_seconds = static_cast<double>(at_ms) / 1000.0;
    s.value[static_cast<size_t>(Metric::kCpu)] =
        static_cast<double>(now.cpu_time_ns - prev.cpu_time_ns) / (dt * vcpus * 1e9);
    s.value[static_cast<size_t>(Metric::kMemory)] =
        stats.memory_used_kib < 0
            ? 0.0
            : static_cast<double>(stats.memory_used_kib) / (static_cast<double>(memory_mib) * 1024);
    s.value[static_cast<size_t>(Metric::kDiskIo)] = rate(now.disk_bytes, prev.disk_bytes);
    s.value[static_cast<size_t>(Metric::kNetwork)] = rate(now.net_bytes, prev.net_bytes);
    if (!v.model.add(s)) return;
    const std::int64_t start = at_ms / kBucketMs * kBucketMs;
    if (v.bucket.start_ms >= 0 && v.bucket.start_ms != start) finished = v.bucket;
    if (v.bucket.start_ms != start) v.bucket = Bucket{start, {}, {}, 0};
    for (size_t m = 0; m < scheduler::kMetrics; ++m) {
      v.bucket.sum[m] += s.value[m];
      v.bucket.max[m] = std::max(v.bucket.max[m], s.value[m]);
    }
    ++v.bucket.samples;
  }
  if (finished) store_bucket(vm_id, *finished);
}

void UsageCollector::store_bucket(const std::string& vm_id, const Bucket& b) {
  auto r = db_.with_lock([&]() -> Expected<void> {
    auto stmt = db_.prepare(
        "INSERT OR REPLACE INTO vm_usage(vm_id, bucket_start, cpu_mean, cpu_max, mem_mean, mem_max, io_max, net_max, "
        "samples) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)");
    if (!stmt) return tl::unexpected(stmt.error());
    const double n = std::max(1, b.samples);
    stmt->bind(1, vm_id).bind(2, b.start_ms);
    stmt->bind_real(3, b.sum[0] / n).bind_real(4, b.max[0]).bind_real(5, b.sum[1] / n).bind_real(6, b.max[1]);
    stmt->bind_real(7, b.max[2]).bind_real(8, b.max[3]).bind(9, std::int64_t{b.samples});
    return stmt->run();
  });
  if (!r) spdlog::warn("usage of vm {} not stored: {}", vm_id, r.error().message);
}

void UsageCollector::flush() {
  std::vector<std::pair<std::string, Bucket>> open;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto& [id, v] : vms_) {
      if (v.bucket.start_ms >= 0 && v.bucket.samples > 0) open.emplace_back(id, v.bucket);
    }
  }
  for (const auto& [id, b] : open) store_bucket(id, b);
}

void UsageCollector::forget(const std::string& vm_id) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    vms_.erase(vm_id);
  }
  (void)db_.with_lock([&]() -> Expected<void> {
    auto stmt = db_.prepare("DELETE FROM vm_usage WHERE vm_id = ?");
    if (!stmt) return tl::unexpected(stmt.error());
    stmt->bind(1, vm_id);
    return stmt->run();
  });
}

NodeUsage UsageCollector::node_usage(const std::vector<VmSize>& vms) const {
  NodeUsage out;
  std::lock_guard<std::mutex> lock(mutex_);
  for (const auto& size : vms) {
    ++out.vms;
    const double cpu_milli = size.vcpus * 1000.0, mem = static_cast<double>(size.memory_mib);
    auto it = vms_.find(size.id);
    const scheduler::Classification c =
        it == vms_.end() ? scheduler::Classification{} : it->second.model.classify(options_.thresholds);
    ++out.classes[static_cast<size_t>(c.workload)];
    if (it == vms_.end() || c.workload == sdk::WorkloadClass::kUnknown) {
      const double share = options_.unknown_vm_utilisation;
      out.mean[0] += static_cast<float>(share * cpu_milli);
      out.mean[1] += static_cast<float>(share * mem);
      out.p95[0] += static_cast<float>(share * cpu_milli);
      out.p95[1] += static_cast<float>(share * mem);
      continue;
    }
    ++out.vms_with_history;
    const auto& m = it->second.model;
    out.mean[0] += static_cast<float>(std::min(1.0, m.ewma(Metric::kCpu)) * cpu_milli);
    out.mean[1] += static_cast<float>(std::min(1.0, m.ewma(Metric::kMemory)) * mem);
    out.p95[0] += static_cast<float>(std::min(1.0, m.p95(Metric::kCpu)) * cpu_milli);
    out.p95[1] += static_cast<float>(std::min(1.0, m.p95(Metric::kMemory)) * mem);
  }
  return out;
}

scheduler::Classification UsageCollector::classify(const std::string& vm_id) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = vms_.find(vm_id);
  return it == vms_.end() ? scheduler::Classification{} : it->second.model.classify(options_.thresholds);
}

json UsageCollector::vm_usage(const std::string& vm_id) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = vms_.find(vm_id);
  if (it == vms_.end()) return nullptr;
  const auto& m = it->second.model;
  const auto c = m.classify(options_.thresholds);
  const auto metric = [&](Metric x) { return json{{"ewma", m.ewma(x)}, {"p95", m.p95(x)}}; };
  return {{"cpu", metric(Metric::kCpu)},
          {"memory", metric(Metric::kMemory)},
          {"disk_bytes_per_s", metric(Metric::kDiskIo)},
          {"network_bytes_per_s", metric(Metric::kNetwork)},
          {"buckets", m.buckets()},
          {"class", sdk::workload_class_name(c.workload)},
          {"rule", c.rule}};
}

}  // namespace novacron
