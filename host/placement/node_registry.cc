#include "host/placement/node_registry.h"

#include <cmath>
#include <future>

#include "host/cluster/peer_monitor.h"
#include "host/placement/placement_request.h"
#include "host/placement/usage_collector.h"
#include "host/vms/vm_service.h"
#include "host/vms/vm_store.h"

namespace novacron {
using nlohmann::json;
using scheduler::kCpu;
using scheduler::kDisk;
using scheduler::kMemory;

namespace {

constexpr size_t kPageSize = 1000;

json resources_json(const scheduler::ResourceVector& r) {
  return {{"cpu_milli", r[kCpu]}, {"memory_mib", r[kMemory]}, {"disk_gib", r[kDisk]}};
}

scheduler::ResourceVector resources_from(const json& j) {
  scheduler::ResourceVector r{};
  if (!j.is_object()) return r;
  r[kCpu] = j.value("cpu_milli", std::int64_t{0});
  r[kMemory] = j.value("memory_mib", std::int64_t{0});
  r[kDisk] = j.value("disk_gib", std::int64_t{0});
  return r;
}

// Declared values (the config) over measured ones.
void apply_declared(scheduler::ResourceVector& r, const NodeCapacity& c) {
  if (c.vcpus) r[kCpu] = *c.vcpus * 1000;
  if (c.memory_mib) r[kMemory] = *c.memory_mib;
  if (c.disk_gib) r[kDisk] = *c.disk_gib;
}

json usage_json(const scheduler::NodeView& v) {
  const auto amount = [](float x) { return std::isnan(x) ? json(nullptr) : json(x); };
  json classes = json::object();
  for (std::uint32_t c = 0; c < sdk::kWorkloadClassCount; ++c) {
    if (v.class_counts[c] != 0)
      classes[sdk::workload_class_name(static_cast<sdk::WorkloadClass>(c))] = v.class_counts[c];
  }
  return {{"mean", {{"cpu_milli", amount(v.predicted_mean[kCpu])}, {"memory_mib", amount(v.predicted_mean[kMemory])}}},
          {"p95", {{"cpu_milli", amount(v.predicted_p95[kCpu])}, {"memory_mib", amount(v.predicted_p95[kMemory])}}},
          {"classes", classes}};
}

void usage_from_json(const json& j, scheduler::NodeView& v) {
  if (!j.is_object()) return;
  const auto read = [](const json& o, const char* key) {
    return o.is_object() && o.contains(key) && o[key].is_number() ? o[key].get<float>() : scheduler::kUnknownUsage;
  };
  const json mean = j.value("mean", json::object()), p95 = j.value("p95", json::object());
  v.predicted_mean[kCpu] = read(mean, "cpu_milli");
  v.predicted_mean[kMemory] = read(mean, "memory_mib");
  v.predicted_p95[kCpu] = read(p95, "cpu_milli");
  v.predicted_p95[kMemory] = read(p95, "memory_mib");
  if (j.contains("classes") && j["classes"].is_object()) {
    for (std::uint32_t c = 0; c < sdk::kWorkloadClassCount; ++c) {
      const char* name = sdk::workload_class_name(static_cast<sdk::WorkloadClass>(c));
      if (j["classes"].contains(name) && j["classes"][name].is_number_integer() &&
          j["classes"][name].get<std::int64_t>() >= 0) {
        v.class_counts[c] =
            static_cast<std::uint16_t>(std::min<std::int64_t>(j["classes"][name].get<std::int64_t>(), 65535));
      }
    }
  }
}

}  // namespace

NodeRegistry::NodeRegistry(const HostConfig& config, VmStore& vms, VmService& service, PeerMonitor* peers,
                           const UsageCollector* usage)
    : config_(config), vms_(vms), service_(service), peers_(peers), usage_(usage) {}

NodeSummary NodeRegistry::local() {
  NodeSummary s;
  auto& v = s.view;
  v.name = config_.node_name;
  v.labels = config_.node_labels;
  // Drivers: the available ones, with the capabilities they report; measured capacity is the
  // largest any driver sees (they share the machine).
  for (const json& d : service_.drivers()) {
    if (!d.value("available", false)) continue;
    scheduler::DriverView driver;
    driver.name = d.value("name", std::string());
    if (d.contains("capabilities") && d["capabilities"].is_object()) {
      for (const auto& [cap, on] : d["capabilities"].items()) {
        if (on.is_boolean() && on.get<bool>()) driver.capabilities.push_back(cap);
      }
    }
    if (d.contains("resources") && d["resources"].is_object()) {
      const json& r = d["resources"];
      v.capacity[kCpu] = std::max<std::int64_t>(v.capacity[kCpu], r.value("cpus", std::int64_t{0}) * 1000);
      v.capacity[kMemory] = std::max<std::int64_t>(v.capacity[kMemory], r.value("memory_total_mib", std::int64_t{0}));
    }
    v.drivers.push_back(std::move(driver));
  }
  apply_declared(v.capacity, config_.node_capacity);
  apply_declared(v.reserved, config_.node_reserved);
  // Allocation and group members from the records (every VM this node owns counts, stopped
  // ones too: they may start at any time).
  std::string after;
  std::vector<UsageCollector::VmSize> sizes;
  while (true) {
    auto page = vms_.list(VmFilter{}, after, kPageSize);
    if (!page) {
      // Without its records the node's allocation is unknown: it takes nothing new.
      s.error = "state store: " + page.error().message;
      v.state = scheduler::NodeState::kUnreachable;
      break;
    }
    for (const auto& vm : *page) {
      if (vm.state == "missing") continue;  // gone from its hypervisor: holds nothing
      const auto r = resources_of(vm.spec);
      for (size_t i = 0; i < scheduler::kResources; ++i) v.allocated[i] += r[i];
      for (const auto& g : group_names_of(vm.spec)) ++s.groups[g];
      sizes.push_back({vm.id, static_cast<int>(r[kCpu] / 1000), r[kMemory]});
    }
    if (page->size() < kPageSize) break;
    after = page->back().name;
  }
  if (usage_ != nullptr) {
    const NodeUsage u = usage_->node_usage(sizes);
    for (size_t r = 0; r < 2; ++r) {
      v.predicted_mean[r] = u.mean[r];
      v.predicted_p95[r] = u.p95[r];
    }
    v.class_counts = u.classes;
  }
  return s;
}

json NodeRegistry::local_summary() { return summary_to_json(local()); }

json summary_to_json(const NodeSummary& s) {
  json drivers = json::array();
  for (const auto& d : s.view.drivers) drivers.push_back({{"name", d.name}, {"capabilities", d.capabilities}});
  return {{"name", s.view.name},
          {"ready", s.error.empty() && s.view.state == scheduler::NodeState::kReady},
          {"error", s.error.empty() ? json(nullptr) : json(s.error)},
          {"capacity", resources_json(s.view.capacity)},
          {"reserved", resources_json(s.view.reserved)},
          {"allocated", resources_json(s.view.allocated)},
          {"labels", s.view.labels},
          {"drivers", drivers},
          {"groups", s.groups},
          {"predicted", usage_json(s.view)}};
}

NodeSummary NodeRegistry::from_json(const json& j, const std::string& name, const NodeCapacity& capacity,
                                    const NodeCapacity& reserved, const std::map<std::string, std::string>& labels) {
  NodeSummary s;
  auto& v = s.view;
  v.name = name;
  v.capacity = resources_from(j.value("capacity", json::object()));
  v.reserved = resources_from(j.value("reserved", json::object()));
  v.allocated = resources_from(j.value("allocated", json::object()));
  apply_declared(v.capacity, capacity);
  apply_declared(v.reserved, reserved);
  if (j.contains("labels") && j["labels"].is_object()) {
    for (const auto& [k, val] : j["labels"].items()) {
      if (val.is_string()) v.labels[k] = val.get<std::string>();
    }
  }
  for (const auto& [k, val] : labels) v.labels[k] = val;
  if (j.contains("drivers") && j["drivers"].is_array()) {
    for (const json& d : j["drivers"]) {
      if (!d.is_object() || !d.contains("name") || !d["name"].is_string()) continue;
      scheduler::DriverView driver{d["name"].get<std::string>(), {}};
      if (d.contains("capabilities") && d["capabilities"].is_array()) {
        for (const json& c : d["capabilities"]) {
          if (c.is_string()) driver.capabilities.push_back(c.get<std::string>());
        }
      }
      v.drivers.push_back(std::move(driver));
    }
  }
  usage_from_json(j.value("predicted", json::object()), v);
  if (j.contains("groups") && j["groups"].is_object()) {
    for (const auto& [g, n] : j["groups"].items()) {
      if (n.is_number_integer() && n.get<std::int64_t>() >= 0) {
        s.groups[g] = static_cast<std::uint32_t>(std::min<std::int64_t>(n.get<std::int64_t>(), UINT32_MAX));
      }
    }
  }
  if (!j.value("ready", true)) {
    v.state = scheduler::NodeState::kUnreachable;
    s.error = j.contains("error") && j["error"].is_string() ? j["error"].get<std::string>() : "not ready";
  }
  return s;
}

NodeSummary NodeRegistry::peer(const PeerConfig& p) {
  const auto unreachable = [&](const std::string& why) {
    NodeSummary s = from_json(json::object(), p.name, p.capacity, p.reserved, p.labels);
    s.view.state = scheduler::NodeState::kUnreachable;
    s.error = why;
    return s;
  };
  if (peers_ == nullptr) return unreachable("no cluster connection");
  auto res = peers_->call(p.name, "GET", "/v1/nodes/self/scheduler");
  if (!res) return unreachable(res.error().code + ": " + res.error().message);
  if (res->status != 200) return unreachable("its API answered " + std::to_string(res->status));
  json j = json::parse(res->body, nullptr, false);
  if (!j.is_object()) return unreachable("its summary is not JSON");
  return from_json(j, p.name, p.capacity, p.reserved, p.labels);
}

std::vector<NodeSummary> NodeRegistry::collect() {
  std::vector<NodeSummary> out;
  std::vector<std::future<NodeSummary>> pending;
  if (config_.cluster) {
    for (const auto& p : config_.cluster->peers) {
      pending.push_back(std::async(std::launch::async, [this, p] { return peer(p); }));
    }
  }
  out.push_back(local());
  for (auto& f : pending) out.push_back(f.get());
  return out;
}

}  // namespace novacron
