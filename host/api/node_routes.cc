// GET /v1/nodes (this node and its configured peers, with reachability) and
// GET /v1/nodes/self (what peers probe over mutual TLS).
#include <algorithm>

#include "host/api/api_server.h"
#include "host/api/pagination.h"
#include "novacron/sdk/version.hpp"

namespace novacron {
using nlohmann::json;

namespace {

json capacity_json(const NodeCapacity& c) {
  json out = json::object();
  if (c.vcpus) out["vcpus"] = *c.vcpus;
  if (c.memory_mib) out["memory_mib"] = *c.memory_mib;
  if (c.disk_gib) out["disk_gib"] = *c.disk_gib;
  return out;
}

json ms_or_null(std::int64_t ms) { return ms == 0 ? json(nullptr) : json(ms); }

json peer_json(const PeerView& p) {
  json out = {{"name", p.config.name},
              {"self", false},
              {"state", peer_state_name(p.status.state)},
              {"api_url", p.config.api_url},
              {"transport", p.config.transport_address.empty() ? json(nullptr) : json(p.config.transport_address)},
              {"labels", p.config.labels},
              {"capacity", capacity_json(p.config.capacity)},
              {"version", p.status.version.empty() ? json(nullptr) : json(p.status.version)},
              {"checked_at_ms", ms_or_null(p.status.checked_at_ms)},
              {"last_seen_ms", ms_or_null(p.status.last_seen_ms)},
              {"latency_ms", p.status.state == PeerState::kReachable ? json(p.status.latency_ms) : json(nullptr)},
              {"error", nullptr}};
  if (!p.status.error_code.empty()) out["error"] = {{"code", p.status.error_code}, {"message", p.status.message}};
  return out;
}

}  // namespace

json ApiServer::self_node_json() const {
  const HostConfig& cfg = *ctx_.config;
  // A wildcard listener has no address to tell: the node name is what certificates carry.
  std::string host = cfg.listen_address == "0.0.0.0" || cfg.listen_address == "::" ? cfg.node_name
                     : cfg.listen_address.find(':') != std::string::npos           ? "[" + cfg.listen_address + "]"
                                                                                   : cfg.listen_address;
  return {{"name", cfg.node_name},
          {"self", true},
          {"state", "ready"},
          {"api_url", std::string(cfg.tls ? "https://" : "http://") + host + ":" + std::to_string(bound_port_)},
          {"transport", cfg.transport_address.empty() ? json(nullptr) : json(cfg.transport_address)},
          {"labels", cfg.node_labels},
          {"capacity", capacity_json(cfg.node_capacity)},
          {"version", NOVACRON_VERSION},
          {"sdk_version", NOVACRON_SDK_VERSION},
          {"started_at_ms", ctx_.started_at_ms},
          {"mutual_tls", cfg.tls && !cfg.tls->client_ca.empty()}};
}

void ApiServer::add_node_routes() {
  router_.add({"GET",
               "/v1/nodes",
               Access::kRead,
               "This node and its peers (from /cluster/peers) with reachability over mutual TLS, ordered by name",
               [this](RequestContext& ctx, const HttpServer::Responder& respond) {
                 auto page = parse_page_request(ctx.query);
                 if (!page) return respond(api_error(ctx, 400, page.error().code, page.error().message));
                 std::vector<json> nodes{self_node_json()};
                 if (ctx_.peers != nullptr) {
                   for (const auto& p : ctx_.peers->peers()) nodes.push_back(peer_json(p));
                 }
                 std::sort(nodes.begin(), nodes.end(),
                           [](const json& a, const json& b) { return a["name"] < b["name"]; });
                 json items = json::array();
                 bool more = false;
                 for (const auto& n : nodes) {
                   if (n["name"].get<std::string>() <= page->after) continue;
                   if (items.size() == page->limit) {
                     more = true;
                     break;
                   }
                   items.push_back(n);
                 }
                 json next = more ? json(encode_cursor(items.back()["name"].get<std::string>())) : json(nullptr);
                 respond(api_json(200, {{"items", items}, {"next_cursor", next}}));
               },
               {},
               /*paginated=*/true});

  router_.add(
      {"GET", "/v1/nodes/self", Access::kRead,
       "This node: name, version, API and transport addresses, labels, capacity",
       [this](RequestContext&, const HttpServer::Responder& respond) { respond(api_json(200, self_node_json())); }});
}

}  // namespace novacron
