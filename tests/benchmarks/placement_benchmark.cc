// Placement latency and throughput of the engine core (issue 6) at 1,000, 10,000 and 100,000
// simulated nodes, each placement committing its allocation before the next is computed.
// Percentiles come from per-placement timings (Google Benchmark alone reports means).
//
// PRELIMINARY: the policies here are the engine's own minimal set (a resource fit filter,
// packing and spreading scorers over the node table), not yet the plugins of policies/
// through SDK 1.4; the figures show the engine's own cost. docs/performance.md says so.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <deque>
#include <random>
#include <vector>

#include "host/scheduler/engine.h"

namespace novacron::scheduler {
namespace {

class Fit : public PlacementPolicy {
 public:
  std::string_view name() const override { return "fit"; }
  std::uint32_t roles() const override { return kFilter; }
  std::string filter(const PolicyContext& ctx, std::span<const std::uint32_t> rows,
                     std::span<std::uint8_t> reject) const override {
    [[maybe_unused]] const auto& q = ctx.query;
    [[maybe_unused]] const auto& t = ctx.table;
    const auto& cap_c = t.capacity(kCpu);
    const auto& cap_m = t.capacity(kMemory);
    const auto& res_c = t.reserved(kCpu);
    const auto& res_m = t.reserved(kMemory);
    const auto& all_c = t.allocated(kCpu);
    const auto& all_m = t.allocated(kMemory);
    for (size_t i = 0; i < rows.size(); ++i) {
      const auto r = rows[i];
      const bool cpu = cap_c[r] - res_c[r] - all_c[r] >= q.resources[kCpu];
      const bool mem = cap_m[r] - res_m[r] - all_m[r] >= q.resources[kMemory];
      reject[i] = static_cast<std::uint8_t>(cpu ? (mem ? 0 : 2) : 1);
    }
    return {};
  }
};

class Share : public PlacementPolicy {
 public:
  explicit Share(bool pack) : pack_(pack) {}
  std::string_view name() const override { return pack_ ? "binpack" : "spread"; }
  std::uint32_t roles() const override { return kScorer; }
  ScoreScale scale() const override { return ScoreScale::kUnit; }
  std::string score(const PolicyContext& ctx, std::span<const std::uint32_t> rows,
                    std::span<double> out) const override {
    [[maybe_unused]] const auto& q = ctx.query;
    [[maybe_unused]] const auto& t = ctx.table;
    for (size_t i = 0; i < rows.size(); ++i) {
      const auto r = rows[i];
      const double c = static_cast<double>(t.allocated(kCpu)[r] + q.resources[kCpu]) /
                       static_cast<double>(t.capacity(kCpu)[r] - t.reserved(kCpu)[r]);
      const double m = static_cast<double>(t.allocated(kMemory)[r] + q.resources[kMemory]) /
                       static_cast<double>(t.capacity(kMemory)[r] - t.reserved(kMemory)[r]);
      out[i] = pack_ ? std::max(c, m) : 1 - std::max(c, m);
    }
    return {};
  }

 private:
  bool pack_;
};

NodeTable cluster(size_t n) {
  std::mt19937_64 rng(42);
  std::vector<NodeView> views;
  views.reserve(n);
  const std::int64_t sizes[] = {32000, 64000, 96000, 128000};
  for (size_t i = 0; i < n; ++i) {
    NodeView v;
    v.name = "node-" + std::to_string(i);
    const std::int64_t cpu = sizes[rng() % 4];
    v.capacity = {cpu, cpu * 8, 2000};
    v.reserved = {2000, 8192, 50};
    v.labels = {{"zone", "z" + std::to_string(i % 3)}, {"rack", "r" + std::to_string(i % 40)}};
    v.drivers = {{"kvm", {"live_migration"}}};
    views.push_back(std::move(v));
  }
  std::string error;
  return std::move(*NodeTable::build(views, error));
}

void BM_Place(benchmark::State& state) {
  const auto n = static_cast<size_t>(state.range(0));
  NodeTable nodes = cluster(n);
  const Fit fit;
  const Share pack(true), spread(false);
  const Engine engine({{&fit}}, {{&pack, 1.0}, {&spread, 0.2}}, EngineOptions{3, static_cast<size_t>(state.range(1))});
  std::mt19937_64 rng(7);
  const std::int64_t vcpus[] = {1, 1, 1, 2, 2, 4, 8, 16};
  std::vector<double> micros;
  std::uint64_t i = 0, placed = 0;
  // Steady state: once 60 % of the cluster's cpu is allocated, the oldest VMs leave (outside
  // the timing), so every placement searches a cluster that still has room.
  std::int64_t usable_cpu = 0, allocated_cpu = 0;
  for (std::uint32_t r = 0; r < nodes.rows(); ++r) usable_cpu += nodes.capacity(kCpu)[r] - nodes.reserved(kCpu)[r];
  std::deque<std::pair<std::uint32_t, ResourceVector>> running;
  for (auto _ : state) {
    while (allocated_cpu * 10 > usable_cpu * 6 && !running.empty()) {
      nodes.release(running.front().first, running.front().second);
      allocated_cpu -= running.front().second[kCpu];
      running.pop_front();
    }
    const std::int64_t c = vcpus[rng() % 8];
    PlacementQuery q;
    q.name = "vm-" + std::to_string(i++);
    q.resources = {c * 1000, c * 1024 * static_cast<std::int64_t>(1 + rng() % 4), 20};
    q.seed = seed_of(q.name);
    const auto t0 = std::chrono::steady_clock::now();
    const Decision d = engine.place(q, nodes, true);
    micros.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
    if (d.placed) {
      ++placed;
      running.emplace_back(*d.row, q.resources);
      allocated_cpu += q.resources[kCpu];
    }
    benchmark::DoNotOptimize(d);
  }
  std::sort(micros.begin(), micros.end());
  const auto pct = [&](double p) {
    return micros[std::min(micros.size() - 1, static_cast<size_t>(p * micros.size()))];
  };
  state.counters["p50_us"] = pct(0.50);
  state.counters["p99_us"] = pct(0.99);
  state.counters["max_us"] = micros.back();
  state.counters["placed"] = static_cast<double>(placed);
  state.counters["placements_per_s"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_Place)
    ->Args({1000, 1024})
    ->Args({10000, 1024})
    ->Args({10000, 0})
    ->Args({100000, 1024})
    ->Unit(benchmark::kMicrosecond)
    ->MinTime(2.0);

}  // namespace
}  // namespace novacron::scheduler

BENCHMARK_MAIN();
