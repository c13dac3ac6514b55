// The scheduler's benchmarks (issue 6; figures in docs/performance.md):
//
// BM_Place/NODES/MAX_SCORED/PREFILLED: placement latency and throughput with the default policies of
//   policies/ (filters resource-fit, constraints, affinity; scorers binpack x1, affinity x2),
//   each called through the engine's SDK 1.4 adapter exactly as in the host, at 1,000,
//   10,000 and 100,000 simulated nodes. Each placement commits before the next is computed;
//   percentiles come from per-placement timings (Google Benchmark alone reports means).
//   Requests: 75 % plain, 15 % members of hard rack anti-affinity groups (5 members), 10 %
//   with one of 8 constraints. Steady state: past 60 % of the cluster's cpu the oldest VMs
//   leave (outside the timing). PREFILLED 1: before the timing, the cluster is filled to
//   that 60 % directly (VMs of the same sizes packed node after node in a seeded order, as
//   binpack leaves them; they leave in random order), so every timed placement runs at the
//   steady state; PREFILLED 0: the cluster starts empty and the run measures it filling.
// BM_PackingBinpack/MAX_SCORED: packing quality. A seeded trace of 50,000 requests (vCPU
//   1/2/4/8/16 at 40/25/20/10/5 %, GiB per vCPU 1/2/4/8 at 15/35/35/15 %) placed online onto
//   identical 64 vCPU / 256 GiB nodes without over-commit, binpack only: nodes used against the
//   lower bound max_r ceil(total demand_r / capacity_r) and against offline first-fit
//   decreasing (by dominant share) on the same trace.
// BM_SpreadBalance: the same trace with spread on 1.25 x the bound's nodes: max/mean load.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <deque>
#include <map>
#include <memory>
#include <random>
#include <vector>

#include "host/scheduler/engine.h"
#include "host/scheduler/plugin_policy.h"
#include "policies/affinity/affinity_policy.h"
#include "policies/binpack/binpack.h"
#include "policies/constraints/constraints_policy.h"
#include "policies/resource-fit/resource_fit.h"
#include "policies/spread/spread.h"
#include "tests/policies/policy_test_support.h"

namespace novacron::scheduler {
namespace {

// The bundled policies, initialised as the host would, behind the engine's adapter.
struct Policies {
  test::StubHostServices host;
  policies::ResourceFit fit;
  policies::Binpack binpack;
  policies::Spread spread;
  policy::constraints::ConstraintsPolicy constraints;
  policy::affinity::AffinityPolicy affinity;
  std::vector<std::unique_ptr<PluginPolicy>> adapters;

  explicit Policies(const std::string& fit_config = "{}") {
    (void)fit.init(host, fit_config);
    (void)binpack.init(host, "{}");
    (void)spread.init(host, "{}");
    (void)constraints.init(host, "{}");
    (void)affinity.init(host, "{}");
  }
  const PlacementPolicy* adapt(const char* name, sdk::SchedulingPolicy& p) {
    adapters.push_back(std::make_unique<PluginPolicy>(name, &p, 2));
    return adapters.back().get();
  }
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
    v.labels = {{"zone", "z" + std::to_string(i % 3)}, {"rack", "r" + std::to_string(i / 40)}};
    v.drivers = {{"kvm", {"live_migration"}}};
    views.push_back(std::move(v));
  }
  std::string error;
  return std::move(*NodeTable::build(views, error));
}

double percentile(std::vector<double>& v, double p) {
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))];
}

struct Running {
  std::uint32_t row;
  ResourceVector resources;
  int group;  // -1 = none
};

void BM_Place(benchmark::State& state) {
  const auto n = static_cast<size_t>(state.range(0));
  NodeTable nodes = cluster(n);
  Policies p;
  const auto* fit = p.adapt("resource-fit", p.fit);
  const auto* constraints = p.adapt("constraints", p.constraints);
  const auto* affinity = p.adapt("affinity", p.affinity);
  const auto* binpack = p.adapt("binpack", p.binpack);
  const Engine engine({{fit}, {constraints}, {affinity}}, {{binpack, 1.0}, {affinity, 2.0}},
                      EngineOptions{3, static_cast<size_t>(state.range(1))});
  const char* kConstraints[] = {R"(zone == "z1")",
                                R"(zone != "z2" && mem_free_mib > 65536)",
                                R"(!(rack in ["r3", "r4", "r5"]))",
                                R"(has_capability("live_migration"))",
                                R"(zone in ["z0", "z2"] || cpu_free >= 32)",
                                R"(vcpus >= 64)",
                                R"(rack != "r1" && zone == "z0")",
                                R"(mem_free_mib > 131072)"};
  std::mt19937_64 rng(7);
  const std::int64_t vcpus[] = {1, 1, 1, 2, 2, 4, 8, 16};
  // Groups: member rows and counts, kept as VMs come and go.
  constexpr int kGroups = 512;
  std::vector<std::map<std::uint32_t, std::uint32_t>> members(kGroups);
  std::vector<double> micros;
  std::uint64_t i = 0, placed = 0;
  std::int64_t usable_cpu = 0, allocated_cpu = 0;
  for (std::uint32_t r = 0; r < nodes.rows(); ++r) usable_cpu += nodes.capacity(kCpu)[r] - nodes.reserved(kCpu)[r];
  std::deque<Running> running;
  if (state.range(2) != 0) {
    // Pack VMs node after node (a seeded order) up to the limits resource-fit enforces
    // (cpu x4, memory x1) until 60 % of the cpu is allocated; they leave in random order.
    std::vector<std::uint32_t> order(nodes.rows());
    for (std::uint32_t r = 0; r < nodes.rows(); ++r) order[r] = r;
    std::shuffle(order.begin(), order.end(), rng);
    std::vector<Running> prefill;
    for (size_t k = 0; k < order.size() && allocated_cpu * 10 < usable_cpu * 6; ++k) {
      const std::uint32_t row = order[k];
      while (allocated_cpu * 10 < usable_cpu * 6) {
        const std::int64_t c = vcpus[rng() % 8];
        const ResourceVector vm = {c * 1000, c * 1024 * static_cast<std::int64_t>(1 + rng() % 4), 20};
        bool fits = true;
        for (size_t r = 0; r < kResources; ++r) {
          const auto res = static_cast<Resource>(r);
          const std::int64_t limit = (r == kCpu ? 4 : 1) * nodes.capacity(res)[row] - nodes.reserved(res)[row];
          fits = fits && nodes.allocated(res)[row] + vm[r] <= limit;
        }
        if (!fits) break;
        nodes.commit(row, vm);
        allocated_cpu += vm[kCpu];
        prefill.push_back({row, vm, -1});
      }
    }
    std::shuffle(prefill.begin(), prefill.end(), rng);
    running.assign(prefill.begin(), prefill.end());
  }
  for (auto _ : state) {
    while (allocated_cpu * 10 > usable_cpu * 6 && !running.empty()) {
      const Running& old = running.front();
      nodes.release(old.row, old.resources);
      allocated_cpu -= old.resources[kCpu];
      if (old.group >= 0 && --members[old.group][old.row] == 0) members[old.group].erase(old.row);
      running.pop_front();
    }
    const std::int64_t c = vcpus[rng() % 8];
    PlacementQuery q;
    q.name = "vm-" + std::to_string(i++);
    q.resources = {c * 1000, c * 1024 * static_cast<std::int64_t>(1 + rng() % 4), 20};
    q.seed = seed_of(q.name);
    const unsigned kind = rng() % 100;
    int group = -1;
    if (kind < 15) {
      group = static_cast<int>(rng() % kGroups);
      q.groups.push_back({"g" + std::to_string(group), sdk::GroupAffinity::kAntiAffinity, true, "rack", 1});
      GroupMembers m;
      for (const auto& [row, count] : members[group]) {
        m.rows.push_back(row);
        m.counts.push_back(count);
        m.members += count;
      }
      // A group of 5: once full, its oldest member's slot is reused (a new group).
      if (m.members >= 5) {
        members[group].clear();
        m = {};
      }
      q.members.push_back(std::move(m));
    } else if (kind < 25) {
      q.constraints = kConstraints[rng() % 8];
    }
    const auto t0 = std::chrono::steady_clock::now();
    const Decision d = engine.place(q, nodes, true);
    micros.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
    if (d.placed) {
      ++placed;
      running.push_back({*d.row, q.resources, group});
      if (group >= 0) ++members[group][*d.row];
      allocated_cpu += q.resources[kCpu];
    }
    benchmark::DoNotOptimize(d);
  }
  const double count = static_cast<double>(micros.size());
  state.counters["p50_us"] = percentile(micros, 0.50);
  state.counters["p90_us"] = percentile(micros, 0.90);
  state.counters["p99_us"] = percentile(micros, 0.99);
  state.counters["p999_us"] = percentile(micros, 0.999);
  state.counters["max_us"] = micros.back();
  state.counters["placed_pct"] = 100.0 * static_cast<double>(placed) / count;
  state.counters["placements_per_s"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_Place)
    ->Args({1000, 1024, 0})
    ->Args({10000, 1024, 0})
    ->Args({10000, 1024, 1})
    ->Args({10000, 0, 0})
    ->Args({100000, 1024, 0})
    ->Args({100000, 1024, 1})
    ->Unit(benchmark::kMicrosecond)
    ->MinTime(2.0);

// The packing trace (seed 20261126), documented above; `cpu` in vCPU, `mem` in GiB.
struct TraceVm {
  int cpu;
  int mem_gib;
};
std::vector<TraceVm> packing_trace() {
  std::mt19937_64 rng(20261126);
  std::discrete_distribution<int> size({40, 25, 20, 10, 5});
  std::discrete_distribution<int> per({15, 35, 35, 15});
  const int sizes[] = {1, 2, 4, 8, 16};
  const int gib[] = {1, 2, 4, 8};
  std::vector<TraceVm> out(50000);
  for (auto& v : out) {
    v.cpu = sizes[size(rng)];
    v.mem_gib = v.cpu * gib[per(rng)];
  }
  return out;
}

constexpr int kNodeCpu = 64, kNodeMemGib = 256;

size_t lower_bound_nodes(const std::vector<TraceVm>& trace) {
  std::int64_t cpu = 0, mem = 0;
  for (const auto& v : trace) {
    cpu += v.cpu;
    mem += v.mem_gib;
  }
  return static_cast<size_t>(std::max((cpu + kNodeCpu - 1) / kNodeCpu, (mem + kNodeMemGib - 1) / kNodeMemGib));
}

// Offline first-fit decreasing by dominant share.
size_t ffd_nodes(std::vector<TraceVm> trace) {
  const auto share = [](const TraceVm& v) {
    return std::max(static_cast<double>(v.cpu) / kNodeCpu, static_cast<double>(v.mem_gib) / kNodeMemGib);
  };
  std::stable_sort(trace.begin(), trace.end(), [&](const TraceVm& a, const TraceVm& b) { return share(a) > share(b); });
  std::vector<std::pair<int, int>> free;  // per node: cpu, GiB left
  for (const auto& v : trace) {
    auto it = std::find_if(free.begin(), free.end(),
                           [&](const auto& f) { return f.first >= v.cpu && f.second >= v.mem_gib; });
    if (it == free.end()) {
      free.emplace_back(kNodeCpu, kNodeMemGib);
      it = free.end() - 1;
    }
    it->first -= v.cpu;
    it->second -= v.mem_gib;
  }
  return free.size();
}

NodeTable identical_nodes(size_t n) {
  std::vector<NodeView> views(n);
  for (size_t i = 0; i < n; ++i) {
    views[i].name = "node-" + std::to_string(i);
    views[i].capacity = {kNodeCpu * 1000, kNodeMemGib * 1024, 0};
    views[i].drivers = {{"kvm", {}}};
  }
  std::string error;
  return std::move(*NodeTable::build(views, error));
}

// Places the whole trace online; returns the rows' dominant-share loads (used rows only).
std::vector<double> place_trace(const std::vector<TraceVm>& trace, NodeTable& nodes, const Engine& engine,
                                size_t& refused) {
  refused = 0;
  for (size_t i = 0; i < trace.size(); ++i) {
    PlacementQuery q;
    q.name = "t-" + std::to_string(i);
    q.resources = {trace[i].cpu * 1000, std::int64_t{trace[i].mem_gib} * 1024, 0};
    q.seed = seed_of(q.name);
    if (!engine.place(q, nodes, true).placed) ++refused;
  }
  std::vector<double> loads;
  for (std::uint32_t r = 0; r < nodes.rows(); ++r) {
    const double cpu = static_cast<double>(nodes.allocated(kCpu)[r]) / (kNodeCpu * 1000);
    const double mem = static_cast<double>(nodes.allocated(kMemory)[r]) / (kNodeMemGib * 1024);
    if (cpu > 0 || mem > 0) loads.push_back(std::max(cpu, mem));
  }
  return loads;
}

void BM_PackingBinpack(benchmark::State& state) {
  const auto trace = packing_trace();
  const size_t bound = lower_bound_nodes(trace);
  const size_t ffd = ffd_nodes(trace);
  Policies p(R"({"cpu_allocation_ratio": 1.0})");
  const auto* fit = p.adapt("resource-fit", p.fit);
  const auto* binpack = p.adapt("binpack", p.binpack);
  const Engine engine({{fit}}, {{binpack, 1.0}}, EngineOptions{3, static_cast<size_t>(state.range(0))});
  size_t used = 0, refused = 0;
  for (auto _ : state) {
    NodeTable nodes = identical_nodes(bound * 13 / 10);
    used = place_trace(trace, nodes, engine, refused).size();
  }
  state.counters["nodes_used"] = static_cast<double>(used);
  state.counters["lower_bound"] = static_cast<double>(bound);
  state.counters["ffd_nodes"] = static_cast<double>(ffd);
  state.counters["vs_bound"] = static_cast<double>(used) / static_cast<double>(bound);
  state.counters["vs_ffd"] = static_cast<double>(used) / static_cast<double>(ffd);
  state.counters["refused"] = static_cast<double>(refused);
}
BENCHMARK(BM_PackingBinpack)->Arg(1024)->Arg(0)->Iterations(1)->Unit(benchmark::kMillisecond);

void BM_SpreadBalance(benchmark::State& state) {
  const auto trace = packing_trace();
  const size_t nodes_n = lower_bound_nodes(trace) * 5 / 4;
  Policies p(R"({"cpu_allocation_ratio": 1.0})");
  const auto* fit = p.adapt("resource-fit", p.fit);
  const auto* spread = p.adapt("spread", p.spread);
  const Engine engine({{fit}}, {{spread, 1.0}}, EngineOptions{3, 1024});
  std::vector<double> loads;
  size_t refused = 0;
  for (auto _ : state) {
    NodeTable nodes = identical_nodes(nodes_n);
    loads = place_trace(trace, nodes, engine, refused);
  }
  double sum = 0, max = 0;
  for (const double l : loads) {
    sum += l;
    max = std::max(max, l);
  }
  state.counters["nodes"] = static_cast<double>(nodes_n);
  state.counters["nodes_used"] = static_cast<double>(loads.size());
  state.counters["max_over_mean"] = max / (sum / static_cast<double>(loads.size()));
  state.counters["refused"] = static_cast<double>(refused);
}
BENCHMARK(BM_SpreadBalance)->Iterations(1)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace novacron::scheduler

BENCHMARK_MAIN();
