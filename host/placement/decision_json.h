// The placement engine's decisions as JSON: the compact record stored for every decision
// (GET /v1/placements/{id}) and the full per-node detail produced on request.
#pragma once

#include <vector>

#include <nlohmann/json.hpp>

#include "host/scheduler/engine.h"

namespace novacron {

nlohmann::json decision_to_json(const scheduler::Decision& d);
nlohmann::json detail_to_json(const std::vector<scheduler::NodeDetail>& detail,
                              const std::vector<std::string>& scorers);

}  // namespace novacron
