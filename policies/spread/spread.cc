#include "policies/spread/spread.h"

#include <algorithm>

#include "novacron/sdk/json_config.hpp"

namespace novacron::policies {

sdk::Status Spread::configure(std::string_view config_json) {
  sdk::ConfigReader cfg(config_json);
  const double cpu = cfg.number("cpu_weight", 1.0, 0, 1000);
  const double memory = cfg.number("memory_weight", 1.0, 0, 1000);
  cfg.reject_unknown_keys();
  if (cpu + memory <= 0) cfg.fail("/", "cpu_weight and memory_weight cannot both be 0");
  if (!cfg.ok()) return sdk::invalid_argument(cfg.error());
  const double top = std::max(cpu, memory);
  cpu_share_ = cpu / top;
  memory_share_ = memory / top;
  return sdk::Status::ok();
}

std::string Spread::reason_of(const CpuMemory& u) const {
  if (!u.usable) return "spreads: no usable capacity (cpu or memory: capacity - reserved <= 0)";
  return "spreads: " + std::to_string(percent(busiest(u))) + "% used after placement (cpu " +
         std::to_string(percent(u.cpu)) + "%, memory " + std::to_string(percent(u.memory)) + "%)";
}

sdk::Status Spread::on_score_rows(const sdk::PlacementQuery& query, const sdk::NodeColumns& nodes,
                                  std::span<const std::uint32_t> rows, std::span<double> out) {
  for (size_t i = 0; i < rows.size(); ++i) out[i] = score_of(cpu_memory_after(nodes, rows[i], query));
  return sdk::Status::ok();
}

sdk::Status Spread::on_explain_row(const sdk::PlacementQuery& query, const sdk::NodeColumns& nodes, std::uint32_t row,
                                   sdk::FilterVerdict& /*verdict*/, sdk::NodeScore& score) {
  const CpuMemory u = cpu_memory_after(nodes, row, query);
  score = {score_of(u), reason_of(u)};
  return sdk::Status::ok();
}

sdk::Status Spread::on_score(const sdk::PlacementRequest& request, std::span<const sdk::NodeCandidate> nodes,
                             std::span<sdk::NodeScore> out) {
  for (size_t i = 0; i < nodes.size(); ++i) {
    const CpuMemory u = cpu_memory_after(nodes[i], request.resources);
    out[i] = {score_of(u), reason_of(u)};
  }
  return sdk::Status::ok();
}

}  // namespace novacron::policies
