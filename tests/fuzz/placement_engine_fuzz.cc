// libFuzzer target for the placement engine with the bundled policies (resource-fit,
// constraints, affinity filters; binpack, spread, affinity scorers) through the SDK 1.4
// adapter. The input describes a small cluster and a stream of requests. Invariants:
//   - a chosen node passes every filter when asked again on its own;
//   - after the commit, no resource of the chosen node is allocated past
//     floor(capacity x ratio) - reserved (resource-fit's limit);
//   - the same request on the same nodes listed in another order gets the same node;
//   - a refusal lists a reason for every node (up to the 100 kept).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "host/scheduler/engine.h"
#include "host/scheduler/plugin_policy.h"
#include "policies/affinity/affinity_policy.h"
#include "policies/binpack/binpack.h"
#include "policies/constraints/constraints_policy.h"
#include "policies/resource-fit/resource_fit.h"
#include "policies/spread/spread.h"
#include "tests/policies/policy_test_support.h"

namespace {

using namespace novacron;             // NOLINT(google-build-using-namespace)
using namespace novacron::scheduler;  // NOLINT(google-build-using-namespace)

class Bytes {
 public:
  Bytes(const std::uint8_t* data, size_t size) : data_(data), size_(size) {}
  std::uint8_t next() { return pos_ < size_ ? data_[pos_++] : 0; }
  bool done() const { return pos_ >= size_; }

 private:
  const std::uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

struct Policies {
  test::StubHostServices host;
  policies::ResourceFit fit;
  policies::Binpack binpack;
  policies::Spread spread;
  policy::constraints::ConstraintsPolicy constraints;
  policy::affinity::AffinityPolicy affinity;
  std::vector<std::unique_ptr<PluginPolicy>> adapters;
  Policies() {
    (void)fit.init(host, R"({"cpu_allocation_ratio": 1.5, "memory_allocation_ratio": 1.0})");
    (void)binpack.init(host, "{}");
    (void)spread.init(host, "{}");
    (void)constraints.init(host, "{}");
    (void)affinity.init(host, "{}");
    for (const auto& [name, policy] :
         std::initializer_list<std::pair<const char*, sdk::SchedulingPolicy*>>{{"resource-fit", &fit},
                                                                               {"constraints", &constraints},
                                                                               {"affinity", &affinity},
                                                                               {"binpack", &binpack},
                                                                               {"spread", &spread}}) {
      adapters.push_back(std::make_unique<PluginPolicy>(name, policy, 2));
    }
  }
};

const char* kConstraints[] = {"",
                              R"(rack == "r1")",
                              R"(!(rack in ["r0", "r2"]))",
                              R"(mem_free_mib > 2048)",
                              R"(has_capability("live_migration") || zone != "z1")",
                              R"(cpu_free >= 4 && has(zone))"};

NodeTable build(const std::vector<NodeView>& views) {
  std::string error;
  auto t = NodeTable::build(views, error);
  if (!t) std::abort();
  return std::move(*t);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, size_t size) {
  static Policies p;
  Bytes in(data, size);
  const size_t n = 1 + in.next() % 24;
  std::vector<NodeView> views(n);
  for (size_t i = 0; i < n; ++i) {
    NodeView& v = views[i];
    v.name = "node-" + std::to_string(i);
    v.state = in.next() % 11 == 0 ? NodeState::kUnreachable : NodeState::kReady;
    v.capacity = {1000 * (1 + in.next() % 64), 1024 * (1 + in.next() % 64), in.next() % 3 == 0 ? 0 : 100};
    v.reserved = {500 * (in.next() % 3), 512 * (in.next() % 3), 0};
    v.allocated = {250 * (in.next() % 64), 256 * (in.next() % 64), in.next() % 50};
    if (in.next() % 4 != 0) v.labels["rack"] = "r" + std::to_string(in.next() % 3);
    if (in.next() % 2 != 0) v.labels["zone"] = "z" + std::to_string(in.next() % 2);
    if (in.next() % 5 != 0) {
      v.drivers.push_back(
          {"kvm", in.next() % 2 == 0 ? std::vector<std::string>{"live_migration"} : std::vector<std::string>{}});
    }
    if (in.next() % 3 == 0) v.drivers.push_back({"lxc", {}});
  }
  std::vector<NodeView> reversed(views.rbegin(), views.rend());
  NodeTable table = build(views);
  NodeTable other = build(reversed);
  const auto& a = p.adapters;
  const size_t max_scored = in.next() % 2 == 0 ? 0 : 2 + in.next() % 6;
  const Engine engine({{a[0].get()}, {a[1].get()}, {a[2].get()}},
                      {{a[3].get(), 1.0}, {a[4].get(), 0.5}, {a[2].get(), 2.0}}, EngineOptions{3, max_scored});
  std::vector<std::uint32_t> members(n, 0), members_other(n, 0);  // of group "g", by row
  for (int r = 0; r < 16 && !in.done(); ++r) {
    PlacementQuery q;
    q.name = "vm-" + std::to_string(r);
    q.seed = seed_of(q.name);
    q.resources = {250 * (1 + in.next() % 32), 256 * (1 + in.next() % 32), in.next() % 20};
    const std::uint8_t d = in.next() % 4;
    q.driver = d == 1 ? "kvm" : d == 2 ? "lxc" : "";
    if (in.next() % 4 == 0) q.capabilities = {"live_migration"};
    q.constraints = kConstraints[in.next() % 6];
    const bool grouped = in.next() % 2 == 0;
    if (grouped) {
      GroupSpec g;
      g.name = "g";
      g.affinity = in.next() % 3 == 0 ? sdk::GroupAffinity::kAffinity : sdk::GroupAffinity::kAntiAffinity;
      g.hard = in.next() % 2 == 0;
      g.scope = in.next() % 2 == 0 ? "node" : "rack";
      g.max_per_domain = in.next() % 3;
      q.groups.push_back(g);
    }
    const auto with_members = [&](const NodeTable& t, const std::vector<std::uint32_t>& m) {
      PlacementQuery x = q;
      if (!grouped) return x;
      GroupMembers gm;
      for (std::uint32_t row = 0; row < t.rows(); ++row) {
        if (m[row] == 0) continue;
        gm.rows.push_back(row);
        gm.counts.push_back(m[row]);
        gm.members += m[row];
      }
      x.members.push_back(gm);
      return x;
    };
    const PlacementQuery qa = with_members(table, members);
    const PlacementQuery qb = with_members(other, members_other);
    const Decision da = engine.place(qa, table, false);
    const Decision db = engine.place(qb, other, false);
    if (da.placed != db.placed || da.node != db.node) std::abort();  // node order changed the choice
    if (!da.placed) {
      if (da.outcome == Outcome::kNoFeasibleNode && da.node_reasons.size() != std::min<size_t>(n, 100)) std::abort();
      continue;
    }
    // The chosen node passes every filter on its own.
    const PolicyContext ctx(qa, table);
    for (const auto& f : engine.filters()) {
      if ((f.policy->applies(ctx) & PlacementPolicy::kFilter) == 0) continue;
      const std::uint32_t one[] = {*da.row};
      std::uint8_t code = 0;
      if (!f.policy->filter(ctx, one, std::span<std::uint8_t>(&code, 1)).empty() || code != 0) std::abort();
    }
    // Commit both; the limit holds on the chosen node.
    const std::uint32_t row = *da.row;
    table.commit(row, qa.resources);
    other.commit(*db.row, qb.resources);
    if (grouped) {
      ++members[row];
      ++members_other[*db.row];
    }
    const std::int64_t cpu_limit = table.capacity(kCpu)[row] * 3 / 2 - table.reserved(kCpu)[row];
    const std::int64_t mem_limit = table.capacity(kMemory)[row] - table.reserved(kMemory)[row];
    if (table.allocated(kCpu)[row] > std::max(cpu_limit, table.allocated(kCpu)[row] - qa.resources[kCpu])) {
      std::abort();
    }
    if (table.allocated(kMemory)[row] > std::max(mem_limit, table.allocated(kMemory)[row] - qa.resources[kMemory])) {
      std::abort();
    }
  }
  return 0;
}
