#include "policies/binpack/binpack.h"

#include "novacron/sdk/json_config.hpp"

namespace novacron::policies {

sdk::Status Binpack::configure(std::string_view config_json) {
  sdk::ConfigReader cfg(config_json);
  const double cpu = cfg.number("cpu_weight", 1.0, 0, 1000);
  const double memory = cfg.number("memory_weight", 1.0, 0, 1000);
  const double balance = cfg.number("balance_weight", 0.25, 0, 10);
  cfg.reject_unknown_keys();
  if (cpu + memory <= 0) cfg.fail("/", "cpu_weight and memory_weight cannot both be 0");
  if (!cfg.ok()) return sdk::invalid_argument(cfg.error());
  cpu_share_ = cpu / (cpu + memory);
  memory_share_ = memory / (cpu + memory);
  balance_ = cpu > 0 && memory > 0 ? balance : 0.0;
  return sdk::Status::ok();
}

std::string Binpack::reason_of(const CpuMemory& u) const {
  if (!u.usable) return "packs: no usable capacity (cpu or memory: capacity - reserved <= 0)";
  std::string text = "packs: " + std::to_string(percent(mean(u))) + "% used after placement (cpu " +
                     std::to_string(percent(u.cpu)) + "%, memory " + std::to_string(percent(u.memory)) + "%";
  if (const double p = penalty(u); p >= 0.005) text += "; imbalance penalty " + format_number(p, 2);
  return text + ")";
}

sdk::Status Binpack::on_score_rows(const sdk::PlacementQuery& query, const sdk::NodeColumns& nodes,
                                   std::span<const std::uint32_t> rows, std::span<double> out) {
  for (size_t i = 0; i < rows.size(); ++i) out[i] = score_of(cpu_memory_after(nodes, rows[i], query));
  return sdk::Status::ok();
}

sdk::Status Binpack::on_explain_row(const sdk::PlacementQuery& query, const sdk::NodeColumns& nodes, std::uint32_t row,
                                    sdk::FilterVerdict& /*verdict*/, sdk::NodeScore& score) {
  const CpuMemory u = cpu_memory_after(nodes, row, query);
  score = {score_of(u), reason_of(u)};
  return sdk::Status::ok();
}

sdk::Status Binpack::on_score(const sdk::PlacementRequest& request, std::span<const sdk::NodeCandidate> nodes,
                              std::span<sdk::NodeScore> out) {
  for (size_t i = 0; i < nodes.size(); ++i) {
    const CpuMemory u = cpu_memory_after(nodes[i], request.resources);
    out[i] = {score_of(u), reason_of(u)};
  }
  return sdk::Status::ok();
}

}  // namespace novacron::policies
