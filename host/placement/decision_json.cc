#include "host/placement/decision_json.h"

namespace novacron {
using nlohmann::json;

json decision_to_json(const scheduler::Decision& d) {
  json filters = json::array();
  for (const auto& f : d.filters) {
    json reasons = json::array();
    for (const auto& r : f.reasons) {
      json examples = json::array();
      for (const auto& e : r.examples) examples.push_back({{"node", e.node}, {"text", e.text}});
      reasons.push_back({{"code", r.code_name}, {"text", r.text}, {"nodes", r.nodes}, {"examples", examples}});
    }
    filters.push_back({{"policy", f.policy}, {"rejected", f.rejected}, {"reasons", reasons}});
  }
  json top = json::array();
  for (size_t rank = 0; rank < d.top.size(); ++rank) {
    const auto& c = d.top[rank];
    json scores = json::array();
    for (size_t p = 0; p < c.raw.size() && p < d.scorers.size(); ++p) {
      scores.push_back({{"policy", d.scorers[p]},
                        {"raw", c.raw[p]},
                        {"normalised", c.normalised[p]},
                        {"weight", p < d.weights.size() ? d.weights[p] : 1.0},
                        {"weighted", c.weighted[p]},
                        {"reason", p < c.reasons.size() ? c.reasons[p] : ""}});
    }
    top.push_back({{"rank", rank + 1}, {"node", c.node}, {"total", c.total}, {"scores", scores}});
  }
  json out = {{"outcome", scheduler::outcome_name(d.outcome)},
              {"node", d.placed ? json(d.node) : json(nullptr)},
              {"summary", d.summary},
              {"nodes_total", d.nodes_total},
              {"nodes_feasible", d.feasible},
              {"nodes_scored", d.scored},
              {"tie", d.tie},
              {"filters", filters},
              {"top", top}};
  if (!d.error.empty()) out["error"] = d.error;
  if (!d.skipped.empty()) out["skipped"] = d.skipped;
  if (!d.notes.empty()) out["notes"] = d.notes;
  if (!d.node_reasons.empty()) {
    json nodes = json::array();
    for (const auto& n : d.node_reasons) {
      nodes.push_back({{"node", n.node}, {"policy", n.policy}, {"code", n.code}, {"text", n.text}});
    }
    out["node_reasons"] = nodes;
  }
  return out;
}

json detail_to_json(const std::vector<scheduler::NodeDetail>& detail, const std::vector<std::string>& scorers) {
  json out = json::array();
  for (const auto& n : detail) {
    json filters = json::array();
    for (const auto& v : n.filters) {
      filters.push_back({{"policy", v.policy}, {"pass", v.pass}, {"code", v.code}, {"text", v.text}});
    }
    json scores = json::array();
    for (size_t p = 0; p < n.raw.size() && p < scorers.size(); ++p) {
      scores.push_back({{"policy", scorers[p]},
                        {"raw", n.raw[p]},
                        {"normalised", n.normalised[p]},
                        {"reason", p < n.reasons.size() ? n.reasons[p] : ""}});
    }
    out.push_back({{"node", n.node},
                   {"ready", n.ready},
                   {"feasible", n.feasible},
                   {"rank", n.rank == 0 ? json(nullptr) : json(n.rank)},
                   {"total", n.feasible ? json(n.total) : json(nullptr)},
                   {"filters", filters},
                   {"scores", scores}});
  }
  return out;
}

}  // namespace novacron
