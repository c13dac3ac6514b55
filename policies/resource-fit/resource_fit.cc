// resource-fit: the filter every placement runs first. A node passes when, for CPU, memory
// and disk, capacity x allocation ratio - reserved - allocated >= requested, and when it has
// the requested driver and every requested capability. The rejection reason names the first
// resource that does not fit and the numbers behind it.
#include <algorithm>
#include <cmath>
#include <string>

#include "novacron/sdk/export.hpp"
#include "novacron/sdk/json_config.hpp"
#include "novacron/sdk/scheduling_policy.hpp"

namespace {

using novacron::sdk::FilterVerdict;
using novacron::sdk::NodeCandidate;
using novacron::sdk::PlacementRequest;
using novacron::sdk::Status;

std::string fmt(double v) {
  std::string s = std::to_string(std::round(v * 100) / 100);
  while (s.back() == '0') s.pop_back();
  if (s.back() == '.') s.pop_back();
  return s;
}

class ResourceFit final : public novacron::sdk::SchedulingPolicyBase {
 public:
  std::uint32_t roles() const noexcept override { return novacron::sdk::kPolicyFilters; }

 protected:
  Status on_init(std::string_view config_json) override {
    novacron::sdk::ConfigReader cfg(config_json);
    cpu_ratio_ = cfg.number("cpu_allocation_ratio", 4.0, 0.01, 1000);
    memory_ratio_ = cfg.number("memory_allocation_ratio", 1.0, 0.01, 100);
    disk_ratio_ = cfg.number("disk_allocation_ratio", 1.0, 0.01, 100);
    cfg.reject_unknown_keys();
    if (!cfg.ok()) return novacron::sdk::invalid_argument(cfg.error());
    return Status::ok();
  }

  Status on_filter(const PlacementRequest& request, std::span<const NodeCandidate> nodes,
                   std::span<FilterVerdict> out) override {
    for (size_t i = 0; i < nodes.size(); ++i) out[i] = verdict(request, nodes[i]);
    return Status::ok();
  }

 private:
  FilterVerdict check(const char* what, const char* unit, double requested, double capacity, double ratio,
                      double reserved, double allocated) const {
    double free = capacity * ratio - reserved - allocated;
    if (requested <= free + 1e-9) return {true, ""};
    return {false, std::string(what) + ": needs " + fmt(requested) + unit + ", " + fmt(std::max(free, 0.0)) + unit +
                       " free (" + fmt(capacity) + unit + " x " + fmt(ratio) + " - " + fmt(reserved) + " reserved - " +
                       fmt(allocated) + " allocated)"};
  }

  FilterVerdict verdict(const PlacementRequest& r, const NodeCandidate& n) const {
    if (!r.driver.empty() && std::find(n.drivers.begin(), n.drivers.end(), r.driver) == n.drivers.end()) {
      return {false, "driver " + r.driver + " is not available on this node"};
    }
    for (const auto& cap : r.capabilities) {
      if (std::find(n.capabilities.begin(), n.capabilities.end(), cap) == n.capabilities.end()) {
        return {false, "capability " + cap + " is not available on this node"};
      }
    }
    for (const FilterVerdict& v :
         {check("cpu", " vcpus", r.resources.vcpus, n.capacity.vcpus, cpu_ratio_, n.reserved.vcpus, n.allocated.vcpus),
          check("memory", " MiB", static_cast<double>(r.resources.memory_mib),
                static_cast<double>(n.capacity.memory_mib), memory_ratio_, static_cast<double>(n.reserved.memory_mib),
                static_cast<double>(n.allocated.memory_mib)),
          check("disk", " GiB", static_cast<double>(r.resources.disk_gib), static_cast<double>(n.capacity.disk_gib),
                disk_ratio_, static_cast<double>(n.reserved.disk_gib), static_cast<double>(n.allocated.disk_gib))}) {
      if (!v.pass) return v;
    }
    return {true, "fits"};
  }

  double cpu_ratio_ = 4.0;
  double memory_ratio_ = 1.0;
  double disk_ratio_ = 1.0;
};

}  // namespace

NOVACRON_PLUGIN(ResourceFit)
