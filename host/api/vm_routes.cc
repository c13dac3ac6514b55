// /v1/vms: the VM inventory and lifecycle (host/vms/vm_service.h). Every mutating route
// starts an operation; every call that touches the state store or a driver runs on the
// blocking executor.
#include "host/api/api_server.h"
#include "host/api/pagination.h"
#include "host/common/identifiers.h"
#include "host/placement/placement_service.h"

namespace novacron {
using nlohmann::json;

namespace {

int status_for_code(const std::string& code) {
  if (code == "invalid_spec" || code == "invalid_argument" || code == "invalid_parameter") return 400;
  if (code == "not_found") return 404;
  if (code == "name_taken" || code == "wrong_state" || code == "conflict" || code == "already_exists" ||
      code == "failed_precondition" || code == "no_feasible_node" || code == "capacity_conflict") {
    return 409;
  }
  if (code == "internal") return 500;
  if (code == "cancelled") return 409;
  return 503;  // driver_unavailable, unavailable, state_store, io
}

// Parses ?state=, ?driver=, ?label=KEY=VALUE.
Expected<VmFilter> parse_filter(const RequestContext& ctx) {
  VmFilter f;
  if (auto it = ctx.query.find("name"); it != ctx.query.end()) f.name = it->second;
  if (auto it = ctx.query.find("state"); it != ctx.query.end()) f.state = it->second;
  if (auto it = ctx.query.find("driver"); it != ctx.query.end()) f.driver = it->second;
  if (auto it = ctx.query.find("label"); it != ctx.query.end()) {
    auto eq = it->second.find('=');
    f.label_key = it->second.substr(0, eq);
    bool key_ok = eq != std::string::npos && !f.label_key.empty() && f.label_key.size() <= 63 &&
                  std::all_of(f.label_key.begin(), f.label_key.end(), [](unsigned char c) {
                    return std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '/';
                  });
    if (!key_ok) return make_error("invalid_parameter", "label: expected KEY=VALUE, got \"" + it->second + "\"");
    f.label_value = it->second.substr(eq + 1);
  }
  return f;
}

}  // namespace

void ApiServer::add_vm_routes() {
  if (ctx_.vms == nullptr) return;
  VmService* vms = ctx_.vms;

  router_.add(
      {"POST", "/v1/vms", Access::kAdmin,
       "Create a VM from a spec (name, driver, vcpus, memory_mib, disks, boot, network, labels, start): 202 with "
       "the VM and its vm.create operation, 201 when it completed within ?wait",
       [this, vms](RequestContext& ctx, const HttpServer::Responder& respond) {
         json body = json::parse(ctx.http.body, nullptr, false);
         if (body.is_discarded()) return respond(api_error(ctx, 400, "invalid_json", "the body is not valid JSON"));
         auto wait = parse_wait(ctx);
         if (!wait) return respond(api_error(ctx, 400, wait.error().code, wait.error().message));
         auto explain = parse_explain(ctx);
         if (!explain) return respond(api_error(ctx, 400, explain.error().code, explain.error().message));
         RequestContext copy = ctx;
         long wait_seconds = *wait;
         std::string mode = *explain;
         ctx_.pools->blocking().post([this, vms, copy, body, respond, wait_seconds, mode] {
           json vm, extra = json::object();
           Operation op;
           if (ctx_.placements != nullptr && ctx_.placements->enabled()) {
             // Through the scheduler: decided across the nodes, claimed on the chosen one.
             PlacementAnswer a = ctx_.placements->create(body, copy.principal.name, 0, mode);
             if (!a.error_code.empty() || a.status == 201) return respond(placement_response(copy, a));
             vm = a.body["vm"];
             for (const auto& [k, v] : a.body.items()) {
               if (k != "vm" && k != "operation") extra[k] = v;
             }
             auto found = ctx_.operations->get(a.body["operation"].value("id", std::string()));
             if (!found) return respond(api_json(202, a.body));
             op = *found;
           } else {
             auto created = vms->create(body, copy.principal.name);
             if (!created) {
               return respond(api_error(copy, status_for_code(created.error().code), created.error().code,
                                        created.error().message));
             }
             vm = VmService::to_json(created->first);
             op = created->second;
           }
           const auto with_extra = [extra](json out) {
             for (const auto& [k, v] : extra.items()) out[k] = v;
             return out;
           };
           if (wait_seconds == 0) return respond(api_json(202, with_extra({{"vm", vm}, {"operation", op.to_json()}})));
           ctx_.operations->wait(
               op.id, std::chrono::seconds(wait_seconds), [copy, respond, vm, with_extra](Operation done) {
                 if (!done.finished()) {
                   return respond(api_json(202, with_extra({{"vm", vm}, {"operation", done.to_json()}})));
                 }
                 if (done.state != "succeeded") {
                   return respond(api_error(copy, status_for_code(done.error_code), done.error_code,
                                            "create failed: " + done.error_message));
                 }
                 json result_vm = done.result.contains("vm") ? done.result["vm"] : vm;
                 respond(api_json(201, with_extra({{"vm", result_vm}, {"operation", done.to_json()}})));
               });
         });
       }});

  router_.add({"GET",
               "/v1/vms",
               Access::kRead,
               "VMs on this node, ordered by name; filters ?name= ?state= ?driver= ?label=K=V",
               [this, vms](RequestContext& ctx, const HttpServer::Responder& respond) {
                 auto page = parse_page_request(ctx.query);
                 if (!page) return respond(api_error(ctx, 400, page.error().code, page.error().message));
                 auto filter = parse_filter(ctx);
                 if (!filter) return respond(api_error(ctx, 400, filter.error().code, filter.error().message));
                 RequestContext copy = ctx;
                 PageRequest wanted = *page;
                 VmFilter f = *filter;
                 ctx_.pools->blocking().post([vms, copy, wanted, f, respond] {
                   auto list = vms->list(f, wanted.after, wanted.limit + 1);
                   if (!list) return respond(api_error(copy, 503, "state_store", list.error().message));
                   bool more = list->size() > wanted.limit;
                   if (more) list->resize(wanted.limit);
                   json items = json::array();
                   // Whether each VM's driver is up, asked once per driver per page.
                   std::map<std::string, json> drivers;
                   for (const auto& vm : *list) {
                     auto d = drivers.find(vm.driver);
                     if (d == drivers.end()) d = drivers.emplace(vm.driver, vms->driver_availability(vm.driver)).first;
                     json item = VmService::to_json(vm);
                     item["driver_available"] = d->second["available"];
                     if (!d->second["available"].get<bool>()) item["driver_error"] = d->second["error"];
                     items.push_back(std::move(item));
                   }
                   respond(
                       api_json(200, {{"items", items},
                                      {"next_cursor", more ? json(encode_cursor(list->back().name)) : json(nullptr)}}));
                 });
               },
               {{"name", "string", "Only the VM of this name"},
                {"state", "string", "Only VMs in this state (running, stopped, ...)"},
                {"driver", "string", "Only VMs of this driver (kvm, lxc)"},
                {"label", "string", "KEY=VALUE: only VMs with this label"}},
               /*paginated=*/true});

  router_.add({"GET", "/v1/nodes/self/drivers", Access::kRead,
               "This node's hypervisor drivers: available or why not, capabilities, resources",
               [this, vms](RequestContext&, const HttpServer::Responder& respond) {
                 ctx_.pools->blocking().post([vms, respond] { respond(api_json(200, {{"items", vms->drivers()}})); });
               }});

  router_.add(
      {"GET", "/v1/vms:unmanaged", Access::kRead,
       "Domains and containers the hypervisors have that are not in the inventory (found by the last "
       "reconciliation); never touched by NovaCron",
       [vms](RequestContext&, const HttpServer::Responder& respond) { respond(api_json(200, vms->unmanaged())); }});

  router_.add({"POST", "/v1/vms:reconcile", Access::kAdmin,
               "Compare the inventory with the hypervisors now (it also runs every vms.reconcile_interval_seconds)",
               [this, vms](RequestContext& ctx, const HttpServer::Responder& respond) {
                 RequestContext copy = ctx;
                 ctx_.pools->blocking().post([vms, copy, respond] {
                   auto r = vms->reconcile();
                   if (!r) return respond(api_error(copy, 503, r.error().code, r.error().message));
                   respond(api_json(200, {{"checked", r->checked},
                                          {"corrected", r->corrected},
                                          {"skipped", r->skipped},
                                          {"reconciled_at_ms", r->at_ms}}));
                 });
               }});

  router_.add({"GET", "/v1/vms/{id}", Access::kRead, "A VM with its live state and stats from its driver",
               [this, vms](RequestContext& ctx, const HttpServer::Responder& respond) {
                 RequestContext copy = ctx;
                 PlacementService* placements = ctx_.placements;
                 ctx_.pools->blocking().post([vms, placements, copy, respond] {
                   auto vm = vms->show(copy.params.at("id"));
                   if (!vm) {
                     // A VM this node placed on a peer: the peer owns its record; say where.
                     if (vm.error().code == "not_found" && placements != nullptr) {
                       auto placed = placements->store().list(copy.params.at("id"), "placed", "", 1);
                       if (placed && !placed->empty() && !placed->front().node.empty()) {
                         const auto& p = placed->front();
                         return respond(api_error(copy, 404, "not_found",
                                                  "vm " + copy.params.at("id") + " runs on " + p.node + " (placement " +
                                                      p.id + "): ask " + p.node + " for it"));
                       }
                     }
                     return respond(
                         api_error(copy, status_for_code(vm.error().code), vm.error().code, vm.error().message));
                   }
                   respond(api_json(200, *vm));
                 });
               }});

  auto start_op = [this](RequestContext& ctx, const HttpServer::Responder& respond,
                         std::function<Expected<Operation>(const RequestContext&)> begin) {
    auto wait = parse_wait(ctx);
    if (!wait) return respond(api_error(ctx, 400, wait.error().code, wait.error().message));
    RequestContext copy = ctx;
    long wait_seconds = *wait;
    ctx_.pools->blocking().post([this, copy, respond, begin, wait_seconds] {
      auto op = begin(copy);
      if (!op) return respond(api_error(copy, status_for_code(op.error().code), op.error().code, op.error().message));
      if (wait_seconds == 0) return respond(api_json(202, {{"operation", op->to_json()}}));
      ctx_.operations->wait(op->id, std::chrono::seconds(wait_seconds), [respond](Operation done) {
        respond(api_json(done.finished() ? 200 : 202, {{"operation", done.to_json()}}));
      });
    });
  };

  for (const char* action : {"start", "stop", "reboot", "suspend", "resume"}) {
    std::string a = action;
    router_.add({"POST", "/v1/vms/{id}/" + a, Access::kAdmin,
                 a + " a VM (an operation; 409 wrong_state when its current state does not allow it)",
                 [vms, a, start_op](RequestContext& ctx, const HttpServer::Responder& respond) {
                   start_op(ctx, respond, [vms, a](const RequestContext& c) {
                     return vms->act(c.params.at("id"), a, c.principal.name);
                   });
                 }});
  }

  router_.add({"GET",
               "/v1/vms/{id}/console",
               Access::kRead,
               "The VM's serial console output from ?offset= (bytes, default 0), at most 64 KiB per call; "
               "the answer's X-Console-Offset header is where the next call continues",
               [this, vms](RequestContext& ctx, const HttpServer::Responder& respond) {
                 std::int64_t offset = 0;
                 if (auto it = ctx.query.find("offset"); it != ctx.query.end()) {
                   char* end = nullptr;
                   offset = std::strtoll(it->second.c_str(), &end, 10);
                   if (it->second.empty() || *end != '\0' || offset < 0) {
                     return respond(api_error(ctx, 400, "invalid_parameter", "offset: expected bytes from 0"));
                   }
                 }
                 RequestContext copy = ctx;
                 ctx_.pools->blocking().post([vms, copy, respond, offset] {
                   auto chunk = vms->console(copy.params.at("id"), offset, 64 * 1024);
                   if (!chunk) {
                     return respond(api_error(copy, status_for_code(chunk.error().code), chunk.error().code,
                                              chunk.error().message));
                   }
                   HttpResponse r{200, "text/plain; charset=utf-8", std::move(chunk->first), {}};
                   r.headers.emplace_back("X-Console-Offset", std::to_string(chunk->second));
                   respond(std::move(r));
                 });
               },
               {{"offset", "integer", "Byte offset to read from"}}});

  router_.add({"DELETE", "/v1/vms/{id}", Access::kAdmin,
               "Delete a VM: forced off, removed from its hypervisor, its folder and its record (an operation)",
               [vms, start_op](RequestContext& ctx, const HttpServer::Responder& respond) {
                 start_op(ctx, respond,
                          [vms](const RequestContext& c) { return vms->remove(c.params.at("id"), c.principal.name); });
               }});
}

}  // namespace novacron
