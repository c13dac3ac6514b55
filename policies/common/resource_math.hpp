// Resource arithmetic shared by the bundled scheduling policies (header-only, SDK types only).
#pragma once

#include <algorithm>
#include <cmath>

#include "novacron/sdk/scheduling_policy.hpp"

namespace novacron::policies {

// Fraction [0, 1+] of a node's usable capacity (capacity minus reserved) that would be
// allocated after placing `request`, averaged over CPU and memory with the given weights.
inline double utilisation_after(const sdk::NodeCandidate& node, const sdk::Resources& request, double cpu_weight,
                                double memory_weight) {
  auto fraction = [](double allocated, double capacity) { return capacity > 0 ? allocated / capacity : 1.0; };
  double cpu = fraction(node.allocated.vcpus + request.vcpus, node.capacity.vcpus - node.reserved.vcpus);
  double mem = fraction(static_cast<double>(node.allocated.memory_mib + request.memory_mib),
                        static_cast<double>(node.capacity.memory_mib - node.reserved.memory_mib));
  double total = cpu_weight + memory_weight;
  return total > 0 ? (cpu * cpu_weight + mem * memory_weight) / total : 0.0;
}

inline int percent(double fraction) { return static_cast<int>(std::lround(std::clamp(fraction, 0.0, 9.99) * 100.0)); }

}  // namespace novacron::policies
