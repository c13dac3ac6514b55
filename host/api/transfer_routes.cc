// /v1/transfers and /v1/transport: files sent to peer nodes through the migration transport
// (host/transfers/transfer_service.h). Every call into the plugin runs on the blocking
// executor.
#include "host/api/api_server.h"
#include "host/api/pagination.h"
#include "host/transfers/transfer_service.h"

namespace novacron {
using nlohmann::json;

namespace {

int status_for(const std::string& code) {
  if (code == "invalid_argument" || code == "invalid_json" || code == "path_invalid" || code == "path_escapes_root" ||
      code == "symlink") {
    return 400;
  }
  if (code == "not_found") return 404;
  if (code == "not_permitted") return 403;
  if (code == "already_exists" || code == "failed_precondition") return 409;
  if (code == "unimplemented") return 501;
  if (code == "internal") return 500;
  return 503;  // transport_unavailable, io
}

// Reads {"bwlimit_bytes_per_second": N >= 0}.
std::optional<std::int64_t> parse_limit(const std::string& body) {
  const json j = json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("bwlimit_bytes_per_second")) return std::nullopt;
  const json& v = j["bwlimit_bytes_per_second"];
  if (!v.is_number_integer() || v.get<std::int64_t>() < 0) return std::nullopt;
  return v.get<std::int64_t>();
}

}  // namespace

void ApiServer::add_transfer_routes() {
  if (ctx_.transfers == nullptr) return;
  TransferService* transfers = ctx_.transfers;
  // Runs `work` on the blocking pool and answers with its JSON (under `key` when not empty).
  auto run = [this](RequestContext& ctx, const HttpServer::Responder& respond, int ok_status, const char* key,
                    std::function<Expected<json>()> work) {
    ctx_.pools->blocking().post([copy = ctx, respond, ok_status, key, work = std::move(work)] {
      auto result = work();
      if (!result) {
        return respond(api_error(copy, status_for(result.error().code), result.error().code, result.error().message));
      }
      respond(api_json(ok_status, key[0] != 0 ? json{{key, *result}} : *result));
    });
  };

  router_.add({"POST", "/v1/transfers", Access::kAdmin,
               "Send a file to a peer node (source beneath the transfers root; target on the peer): 201 with the "
               "transfer, which runs on; follow it with GET /v1/transfers/{id} or the transfer.* events",
               [run, transfers](RequestContext& ctx, const HttpServer::Responder& respond) {
                 json body = json::parse(ctx.http.body, nullptr, false);
                 if (body.is_discarded()) {
                   return respond(api_error(ctx, 400, "invalid_json", "the body is not valid JSON"));
                 }
                 run(ctx, respond, 201, "transfer", [transfers, body] { return transfers->send(body); });
               }});

  router_.add({"GET",
               "/v1/transfers",
               Access::kRead,
               "Transfers of this node in both directions, ordered by id",
               [this, transfers](RequestContext& ctx, const HttpServer::Responder& respond) {
                 auto page = parse_page_request(ctx.query);
                 if (!page) return respond(api_error(ctx, 400, page.error().code, page.error().message));
                 RequestContext copy = ctx;
                 PageRequest wanted = *page;
                 ctx_.pools->blocking().post([transfers, copy, wanted, respond] {
                   auto items = transfers->list(wanted.after, wanted.limit + 1);
                   if (!items) {
                     return respond(
                         api_error(copy, status_for(items.error().code), items.error().code, items.error().message));
                   }
                   const bool more = items->size() > wanted.limit;
                   if (more) items->resize(wanted.limit);
                   json next = more ? json(encode_cursor(items->back()["id"].get<std::string>())) : json(nullptr);
                   respond(api_json(200, {{"items", *items}, {"next_cursor", next}}));
                 });
               },
               {},
               /*paginated=*/true});

  router_.add({"GET", "/v1/transfers/{id}", Access::kRead, "A transfer with its progress and stats",
               [run, transfers](RequestContext& ctx, const HttpServer::Responder& respond) {
                 const std::string id = ctx.params["id"];
                 run(ctx, respond, 200, "transfer", [transfers, id] { return transfers->get(id); });
               }});

  router_.add({"POST", "/v1/transfers/{id}/cancel", Access::kAdmin,
               "Cancel a running transfer; the receiver discards what it received",
               [run, transfers](RequestContext& ctx, const HttpServer::Responder& respond) {
                 const std::string id = ctx.params["id"];
                 run(ctx, respond, 200, "transfer", [transfers, id] { return transfers->cancel(id); });
               }});

  router_.add({"PUT", "/v1/transfers/{id}/bwlimit", Access::kAdmin,
               "Change a running transfer's bandwidth limit: {\"bwlimit_bytes_per_second\": N} (0 = none)",
               [run, transfers](RequestContext& ctx, const HttpServer::Responder& respond) {
                 const auto limit = parse_limit(ctx.http.body);
                 if (!limit) {
                   return respond(
                       api_error(ctx, 400, "invalid_argument", "bwlimit_bytes_per_second: expected an integer >= 0"));
                 }
                 const std::string id = ctx.params["id"];
                 const std::int64_t bps = *limit;
                 run(ctx, respond, 200, "transfer", [transfers, id, bps] { return transfers->set_limit(id, bps); });
               }});

  router_.add({"POST", "/v1/tunnels", Access::kAdmin,
               "Open a stream tunnel: a loopback endpoint on this node (local_address in the answer) whose one "
               "connection is carried to target_address on the peer, e.g. for a live-migration stream",
               [run, transfers](RequestContext& ctx, const HttpServer::Responder& respond) {
                 json body = json::parse(ctx.http.body, nullptr, false);
                 if (body.is_discarded()) {
                   return respond(api_error(ctx, 400, "invalid_json", "the body is not valid JSON"));
                 }
                 run(ctx, respond, 201, "tunnel", [transfers, body] { return transfers->open_tunnel(body); });
               }});

  router_.add({"GET", "/v1/transport", Access::kRead, "The running transport plugin, its receive root and node limit",
               [run, transfers](RequestContext& ctx, const HttpServer::Responder& respond) {
                 run(ctx, respond, 200, "", [transfers] { return transfers->node_limits(); });
               }});

  router_.add({"PUT", "/v1/transport/bwlimit", Access::kAdmin,
               "Change the node's bandwidth limit for all transfers: {\"bwlimit_bytes_per_second\": N} (0 = none)",
               [run, transfers](RequestContext& ctx, const HttpServer::Responder& respond) {
                 const auto limit = parse_limit(ctx.http.body);
                 if (!limit) {
                   return respond(
                       api_error(ctx, 400, "invalid_argument", "bwlimit_bytes_per_second: expected an integer >= 0"));
                 }
                 const std::int64_t bps = *limit;
                 run(ctx, respond, 200, "", [transfers, bps] { return transfers->set_node_limit(bps); });
               }});
}

}  // namespace novacron
