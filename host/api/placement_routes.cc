// /v1/placements, /v1/scheduler and the node-to-node claim (host/placement). Creating a VM
// through the scheduler is POST /v1/vms (vm_routes.cc), which calls the same service.
#include <charconv>

#include "host/api/api_server.h"
#include "host/api/pagination.h"
#include "host/placement/placement_service.h"

namespace novacron {
using nlohmann::json;

HttpResponse placement_response(const RequestContext& ctx, const PlacementAnswer& a) {
  if (a.error_code.empty()) return api_json(a.status, a.body);
  HttpResponse r = api_error(ctx, a.status == 0 ? 503 : a.status, a.error_code, a.message);
  json body = json::parse(r.body, nullptr, false);
  if (body.is_object()) {
    for (const auto& [k, v] : a.body.items()) body[k] = v;
    r.body = body.dump();
  }
  return r;
}

Expected<std::string> parse_explain(const RequestContext& ctx) {
  auto it = ctx.query.find("explain");
  if (it == ctx.query.end()) return std::string();
  if (it->second != "compact" && it->second != "full") {
    return make_error("invalid_parameter", "explain: expected compact or full, got \"" + it->second + "\"");
  }
  return it->second;
}

void ApiServer::add_placement_routes() {
  if (ctx_.placements == nullptr) return;
  PlacementService* placements = ctx_.placements;

  router_.add({"POST",
               "/v1/placements:simulate",
               Access::kRead,
               "Decide where a VM spec would go, with the reasons; nothing is created, held or stored",
               [this, placements](RequestContext& ctx, const HttpServer::Responder& respond) {
                 json body = json::parse(ctx.http.body, nullptr, false);
                 if (body.is_discarded()) {
                   return respond(api_error(ctx, 400, "invalid_json", "the body is not valid JSON"));
                 }
                 auto explain = parse_explain(ctx);
                 if (!explain) return respond(api_error(ctx, 400, explain.error().code, explain.error().message));
                 RequestContext copy = ctx;
                 std::string mode = *explain;
                 ctx_.pools->blocking().post([placements, copy, body, mode, respond] {
                   respond(placement_response(copy, placements->simulate(body, mode)));
                 });
               },
               {{"explain", "string", "full: every node's verdicts and scores too"}}});

  router_.add({"GET", "/v1/placements/{id}", Access::kRead,
               "A stored placement decision: rejections by reason, the top candidates with each scorer's scores",
               [this, placements](RequestContext& ctx, const HttpServer::Responder& respond) {
                 RequestContext copy = ctx;
                 ctx_.pools->blocking().post([placements, copy, respond] {
                   auto r = placements->store().get(copy.params.at("id"));
                   if (!r) return respond(api_error(copy, 503, "state_store", r.error().message));
                   if (!*r) {
                     return respond(api_error(copy, 404, "not_found",
                                              "no placement " + copy.params.at("id") + " was decided on this node"));
                   }
                   respond(api_json(200, PlacementStore::to_json(**r)));
                 });
               }});

  router_.add(
      {"GET",
       "/v1/placements",
       Access::kRead,
       "Placement decisions of this node, newest first",
       [this, placements](RequestContext& ctx, const HttpServer::Responder& respond) {
         auto page = parse_page_request(ctx.query);
         if (!page) return respond(api_error(ctx, 400, page.error().code, page.error().message));
         RequestContext copy = ctx;
         PageRequest wanted = *page;
         const std::string vm = ctx.query.count("vm") ? ctx.query.at("vm") : "";
         const std::string outcome = ctx.query.count("outcome") ? ctx.query.at("outcome") : "";
         ctx_.pools->blocking().post([placements, copy, wanted, vm, outcome, respond] {
           auto list = placements->store().list(vm, outcome, wanted.after, wanted.limit + 1);
           if (!list) return respond(api_error(copy, 503, "state_store", list.error().message));
           const bool more = list->size() > wanted.limit;
           if (more) list->resize(wanted.limit);
           json items = json::array();
           for (const auto& r : *list) items.push_back(PlacementStore::to_json(r));
           respond(api_json(
               200, {{"items", items}, {"next_cursor", more ? json(encode_cursor(list->back().id)) : json(nullptr)}}));
         });
       },
       {{"vm", "string", "Only decisions for this VM (name or id)"},
        {"outcome", "string", "Only this outcome (placed, no_feasible_node, ...)"}},
       /*paginated=*/true});

  router_.add({"POST",
               "/v1/placements:rebalance",
               Access::kNode,
               "Propose migrations that would raise the cluster's placement score (?dry_run=true; executing them "
               "comes with the migration orchestrator)",
               [this, placements](RequestContext& ctx, const HttpServer::Responder& respond) {
                 const auto q = [&](const char* k, const std::string& d) {
                   return ctx.query.count(k) ? ctx.query.at(k) : d;
                 };
                 if (q("dry_run", "false") != "true") {
                   return respond(api_error(ctx, 501, "not_implemented",
                                            "only ?dry_run=true: executing migrations comes with the migration "
                                            "orchestrator; the proposal is the output for now"));
                 }
                 size_t max = 0;
                 const std::string max_text = q("max", "10");
                 const auto [end, ec] = std::from_chars(max_text.data(), max_text.data() + max_text.size(), max);
                 if (ec != std::errc() || end != max_text.data() + max_text.size() || max == 0 || max > 1000) {
                   return respond(api_error(ctx, 400, "invalid_parameter", "max: expected 1 to 1000"));
                 }
                 RequestContext copy = ctx;
                 const std::string scope = q("scope", "cluster");
                 ctx_.pools->blocking().post([placements, copy, scope, max, respond] {
                   respond(placement_response(copy, placements->rebalance(scope, max)));
                 });
               },
               {{"dry_run", "boolean", "Must be true: only proposals are made"},
                {"max", "integer", "At most this many moves (default 10)"},
                {"scope", "string", "cluster (default: every node's VMs) or local (this node's)"}}});

  router_.add({"GET", "/v1/scheduler", Access::kRead,
               "The effective scheduler: filters, scorers with weights and scales, engine limits",
               [this, placements](RequestContext&, const HttpServer::Responder& respond) {
                 ctx_.pools->blocking().post([placements, respond] { respond(api_json(200, placements->describe())); });
               }});

  router_.add({"GET", "/v1/nodes/self/scheduler", Access::kRead,
               "This node as the scheduler sees it: capacity, reserved, allocated, drivers, group members",
               [this, placements](RequestContext&, const HttpServer::Responder& respond) {
                 ctx_.pools->blocking().post(
                     [placements, respond] { respond(api_json(200, placements->local_summary())); });
               }});

  router_.add({"GET", "/v1/vms/{id}/usage", Access::kRead,
               "What a VM has used, as the scheduler predicts it: EWMA and p95 of cpu, memory, disk and network, and "
               "its workload class with the rule that chose it",
               [this, placements](RequestContext& ctx, const HttpServer::Responder& respond) {
                 RequestContext copy = ctx;
                 ctx_.pools->blocking().post([placements, copy, respond] {
                   const std::string& id = copy.params.at("id");
                   json usage = placements->usage().vm_usage(id);
                   if (usage.is_null()) {
                     return respond(api_error(
                         copy, 404, "not_found",
                         "no usage of VM " + id + " yet (it is sampled at each reconciliation while it runs)"));
                   }
                   usage["vm_id"] = id;
                   respond(api_json(200, usage));
                 });
               }});

  router_.add({"POST", "/v1/vms:claim", Access::kNode,
               "Node to node: create a VM another node placed here, if it still fits (409 capacity_conflict if not)",
               [this, placements](RequestContext& ctx, const HttpServer::Responder& respond) {
                 json body = json::parse(ctx.http.body, nullptr, false);
                 if (body.is_discarded()) {
                   return respond(api_error(ctx, 400, "invalid_json", "the body is not valid JSON"));
                 }
                 RequestContext copy = ctx;
                 ctx_.pools->blocking().post([placements, copy, body, respond] {
                   // The VM is created on behalf of the deciding node's caller.
                   std::string principal = copy.principal.name;
                   if (body.is_object() && body.contains("requested_by") && body["requested_by"].is_string()) {
                     principal = body["requested_by"].get<std::string>() + " via " + principal;
                   }
                   respond(placement_response(copy, placements->claim(body, principal)));
                 });
               }});
}

}  // namespace novacron
