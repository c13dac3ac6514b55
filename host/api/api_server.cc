#include "host/api/api_server.h"

#include <openssl/rand.h>
#include <unistd.h>

#include <spdlog/spdlog.h>
#include <cerrno>
#include <cstring>

#include <chrono>
#include <map>

#include "host/api/pagination.h"
#include "novacron/sdk/version.hpp"

namespace novacron {
using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

std::string new_request_id() {
  unsigned char raw[8];
  RAND_bytes(raw, sizeof raw);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id;
  for (unsigned char b : raw) {
    id += kHex[b >> 4];
    id += kHex[b & 0xf];
  }
  return id;
}

// A client-chosen request id is kept when it is short and plain, so that it can be logged.
bool acceptable_request_id(const std::string& id) {
  if (id.size() < 8 || id.size() > 64) return false;
  return std::all_of(id.begin(), id.end(),
                     [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_'; });
}

std::string header(const HttpRequest& r, const std::string& name) {
  for (const auto& [k, v] : r.headers) {
    if (k == name) return v;
  }
  return "";
}

}  // namespace

HttpResponse api_json(int status, const json& body) {
  return HttpResponse{status, "application/json", body.dump(-1, ' ', false, json::error_handler_t::replace), {}};
}

HttpResponse api_error(const RequestContext& ctx, int status, const std::string& code, const std::string& message) {
  return json_error(status, code, message, ctx.request_id);
}

ApiServer::ApiServer(ApiContext context) : ctx_(std::move(context)) { add_routes(); }

bool ApiServer::cached_response(const std::string& key, HttpResponse& out) {
  std::lock_guard<std::mutex> lock(cache_mutex_);
  if (cache_generation_ != ctx_.plugins->generation()) return false;
  auto it = cache_.find(key);
  if (it == cache_.end()) return false;
  out = it->second;
  return true;
}

void ApiServer::store_response(const std::string& key, std::uint64_t generation, const HttpResponse& response) {
  constexpr size_t kMaxEntries = 256;  // distinct pages and ids; a new generation starts afresh
  std::lock_guard<std::mutex> lock(cache_mutex_);
  if (generation != cache_generation_) {
    cache_.clear();
    cache_generation_ = generation;
  }
  if (cache_.size() < kMaxEntries) cache_[key] = response;
}

ApiServer::~ApiServer() { stop(); }

Expected<std::uint16_t> ApiServer::start() {
  HttpServerOptions options;
  options.address = ctx_.config->listen_address;
  options.port = ctx_.config->listen_port;
  options.body_limit = ctx_.config->api_body_limit;
  options.body_limit_for = [body = ctx_.config->api_body_limit, upload = ctx_.config->api_upload_limit](
                               const std::string& method, const std::string& target) {
    // Compared segment by segment, as the router matches ("/v1/plugins/" is the same route).
    std::string path = target.substr(0, target.find('?'));
    std::string normal;
    for (size_t i = 0; i < path.size(); ++i) {
      if (path[i] == '/' && (normal.empty() || normal.back() == '/')) continue;
      normal += path[i];
    }
    if (!normal.empty() && normal.back() == '/') normal.pop_back();
    return method == "POST" && normal == "v1/plugins" ? upload : body;
  };
  options.check_before_body = [this](const HttpRequest& head) -> std::optional<HttpResponse> {
    RequestContext ctx;
    ctx.http = head;
    ctx.path = head.target.substr(0, head.target.find('?'));
    ctx.request_id = new_request_id();
    Router::Match match = router_.match(head.method, ctx.path);
    auto refused = authenticate(ctx, match.route != nullptr ? match.route->access : Access::kAdmin);
    if (refused) {
      refused->headers.emplace_back("X-Request-Id", ctx.request_id);
      spdlog::info("request id={} method={} path={} status={} refused before reading its body", ctx.request_id,
                   head.method, ctx.path, refused->status);
    }
    return refused;
  };
  if (ctx_.config->tls) {
    options.tls_cert_file = ctx_.config->tls->cert.string();
    options.tls_key_file = ctx_.config->tls->key.string();
    options.tls_client_ca_file = ctx_.config->tls->client_ca.string();
  }
  server_ = std::make_unique<HttpServer>(*ctx_.pools, options, [this](HttpRequest req, HttpServer::Responder respond) {
    dispatch(std::move(req), std::move(respond));
  });
  auto port = server_->start();
  if (port) bound_port_ = *port;
  return port;
}

void ApiServer::stop() {
  if (server_) server_->stop();
  server_.reset();
}

std::optional<HttpResponse> ApiServer::authenticate(RequestContext& ctx, Access access) {
  if (access == Access::kPublic) return std::nullopt;
  sdk::AuthRequest req;
  req.method = ctx.http.method;
  req.target = ctx.http.target;
  req.remote_address = ctx.http.remote_address;
  req.tls_peer_subject = ctx.http.tls_peer_subject;
  req.tls_peer_names = ctx.http.tls_peer_names;
  req.headers = ctx.http.headers;
  bool any_provider = false;
  for (const auto& id : ctx_.auth_providers) {
    auto provider = ctx_.plugins->auth_provider(id);  // borrowed for this call only
    if (!provider) continue;
    any_provider = true;
    sdk::AuthResult result = provider->authenticate(req);
    if (result.outcome == sdk::AuthOutcome::kNotMine) continue;
    if (result.outcome == sdk::AuthOutcome::kRejected) {
      return api_error(ctx, 401, "unauthenticated", "credentials refused: " + result.reason);
    }
    ctx.principal = std::move(result.principal);
    const bool admin =
        std::find(ctx.principal.roles.begin(), ctx.principal.roles.end(), "admin") != ctx.principal.roles.end();
    if (access == Access::kNode && !admin) {
      // Only the configured peers, authenticated by their node certificates.
      const bool peer = ctx_.config->cluster &&
                        std::any_of(ctx_.config->cluster->peers.begin(), ctx_.config->cluster->peers.end(),
                                    [&](const PeerConfig& p) { return ctx.principal.name == "node:" + p.name; });
      if (peer) return std::nullopt;
      return api_error(ctx, 403, "permission_denied",
                       ctx.principal.name + " may not " + ctx.http.method + " " + ctx.path +
                           ": only cluster peers (node certificates of /cluster/peers) and admins may");
    }
    if (access == Access::kAdmin && !admin) {
      return api_error(
          ctx, 403, "permission_denied",
          ctx.principal.name + " may not " + ctx.http.method + " " + ctx.path + ": it needs the admin role");
    }
    return std::nullopt;
  }
  if (!any_provider) {
    return api_error(ctx, 401, "unauthenticated",
                     "no authentication provider is running on this host; load one (plugins.load), e.g. "
                     "io.novacron.auth.token");
  }
  return api_error(ctx, 401, "unauthenticated",
                   "no credentials: send \"Authorization: Bearer <token>\" (novacron uses NOVACRON_TOKEN)");
}

void ApiServer::dispatch(HttpRequest request, HttpServer::Responder respond) {
  auto t0 = Clock::now();
  auto ctx = std::make_shared<RequestContext>();
  ctx->http = std::move(request);
  std::string client_id = header(ctx->http, "x-request-id");
  ctx->request_id = acceptable_request_id(client_id) ? client_id : new_request_id();
  auto q = ctx->http.target.find('?');
  ctx->path = ctx->http.target.substr(0, q);

  Router::Match match = router_.match(ctx->http.method, ctx->path);
  std::string route_label = match.route != nullptr ? match.route->pattern : "unmatched";

  // Every response leaves through here: request id header, metrics, access log.
  auto finish = [this, ctx, respond = std::move(respond), t0, route_label](HttpResponse out) {
    out.headers.emplace_back("X-Request-Id", ctx->request_id);
    double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    ctx_.metrics->counter_add(
        "novacron_http_requests_total", "HTTP requests by route, method and status",
        {{"route", route_label}, {"method", ctx->http.method}, {"status", std::to_string(out.status)}}, 1);
    ctx_.metrics->histogram_observe("novacron_http_request_duration_seconds", "HTTP request latency by route",
                                    {{"route", route_label}}, seconds);
    auto level = out.status >= 500   ? spdlog::level::err
                 : out.status >= 400 ? spdlog::level::info
                                     : spdlog::level::debug;
    spdlog::log(level, "request id={} method={} path={} status={} ms={:.2f} principal={}", ctx->request_id,
                ctx->http.method, ctx->path, out.status, seconds * 1000,
                ctx->principal.name.empty() ? "-" : ctx->principal.name);
    respond(std::move(out));
  };

  if (ctx->http.protocol_error_status != 0) {
    return finish(api_error(*ctx, ctx->http.protocol_error_status, ctx->http.protocol_error_code,
                            ctx->http.protocol_error_message));
  }
  if (q != std::string::npos && !parse_query(ctx->http.target.substr(q + 1), ctx->query)) {
    return finish(api_error(*ctx, 400, "invalid_query", "the query string is not valid percent-encoding"));
  }
  if (match.route == nullptr) {
    // Unknown routes answer only to authenticated callers: no route discovery for strangers.
    if (auto refused = authenticate(*ctx, Access::kRead)) return finish(std::move(*refused));
    if (!match.allowed_methods.empty()) {
      std::string allowed;
      for (const auto& m : match.allowed_methods) allowed += (allowed.empty() ? "" : ", ") + m;
      HttpResponse r = api_error(*ctx, 405, "method_not_allowed",
                                 ctx->http.method + " is not allowed on " + ctx->path + "; use " + allowed);
      r.headers.emplace_back("Allow", allowed);
      return finish(std::move(r));
    }
    return finish(
        api_error(*ctx, 404, "not_found",
                  "no route for " + ctx->http.method + " " + ctx->path + " (GET /v1/openapi.json lists the routes)"));
  }
  if (auto refused = authenticate(*ctx, match.route->access)) return finish(std::move(*refused));
  ctx->params = std::move(match.params);
  match.route->handler(*ctx, [ctx, finish](HttpResponse out) { finish(std::move(out)); });
}

namespace {

json plugin_json(const PluginStatus* status, const std::vector<CatalogEntry>& installed,
                 const PluginStateRecord& state) {
  json j;
  if (status != nullptr) {
    j = {{"id", status->id},
         {"version", status->version},
         {"kind", status->kind},
         {"state", status->state},
         {"message", status->message},
         {"error_code", status->error_code},
         {"required", status->required},
         {"dir", status->dir},
         {"sdk_version", status->sdk_version},
         {"interface_version", status->interface_version},
         {"load_ms", status->load_ms},
         {"verify_ms", status->verify_ms},
         {"start_ms", status->start_ms}};
  } else {
    j = {{"id", installed.front().id}, {"state", "installed"}, {"kind", installed.back().kind}};
  }
  j["catalog_state"] = plugin_state_name(state.state);
  if (!state.reason.empty()) j["catalog_reason"] = state.reason;
  json versions = json::array();
  for (const auto& e : installed) {
    versions.push_back({{"version", e.version}, {"source", e.source}, {"dir", e.dir}, {"sha256", e.sha256}});
  }
  j["installed"] = versions;
  return j;
}

}  // namespace

BorrowedPlugin<sdk::AuthProvider> ApiServer::credential_manager() const {
  for (const auto& id : ctx_.auth_providers) {
    auto status = ctx_.plugins->status(id);
    // Never call a method newer than the plugin's interface version.
    if (!status || status->interface_version < 2) continue;
    auto provider = ctx_.plugins->auth_provider(id);
    if (provider && provider->manages_credentials()) return provider;
  }
  return {};
}

namespace {

json credential_json(const sdk::CredentialInfo& c) {
  return {{"id", c.id}, {"name", c.name}, {"roles", c.roles}, {"created_at", c.created_at}};
}

int status_for(sdk::StatusCode code) {
  switch (code) {
    case sdk::StatusCode::kInvalidArgument:
      return 400;
    case sdk::StatusCode::kNotFound:
      return 404;
    case sdk::StatusCode::kAlreadyExists:
      return 409;
    case sdk::StatusCode::kPermissionDenied:
      return 403;
    case sdk::StatusCode::kUnimplemented:
      return 501;
    default:
      return 503;
  }
}

}  // namespace

void ApiServer::add_token_routes() {
  const std::string no_manager = "no running auth provider issues tokens; load io.novacron.auth.token (plugins.load)";

  router_.add(
      {"POST", "/v1/tokens", Access::kAdmin,
       "Create a token: body {\"name\": \"...\", \"role\": \"reader\"|\"admin\"}; the secret is returned once",
       [this, no_manager](RequestContext& ctx, HttpServer::Responder respond) {
         json body = json::parse(ctx.http.body, nullptr, false);
         if (body.is_discarded() || !body.is_object()) {
           return respond(api_error(ctx, 400, "invalid_json", "the body must be a JSON object"));
         }
         for (const auto& [key, value] : body.items()) {
           if (key != "name" && key != "role") {
             return respond(api_error(ctx, 400, "invalid_field", "/" + key + ": unknown field (known: name, role)"));
           }
         }
         if (!body.contains("name") || !body["name"].is_string()) {
           return respond(api_error(ctx, 400, "invalid_field", "/name: expected a string"));
         }
         std::string role = "reader";
         if (body.contains("role")) {
           if (!body["role"].is_string())
             return respond(api_error(ctx, 400, "invalid_field", "/role: expected a string"));
           role = body["role"].get<std::string>();
         }
         sdk::CredentialRequest request{body["name"].get<std::string>(), {role}};
         RequestContext copy = ctx;
         // The provider persists the token: blocking work, off the I/O thread.
         ctx_.pools->blocking().post([this, request, copy, respond, no_manager] {
           auto manager = credential_manager();
           if (!manager) return respond(api_error(copy, 503, "unavailable", no_manager));
           auto issued = manager->create_credential(request);
           if (!issued) {
             return respond(api_error(copy, status_for(issued.status().code()),
                                      sdk::status_code_name(issued.status().code()), issued.status().message()));
           }
           ctx_.events->publish(
               "token.created", "token/" + issued.value().info.id, "host",
               json{{"id", issued.value().info.id}, {"name", issued.value().info.name}, {"by", copy.principal.name}}
                   .dump());
           json out = credential_json(issued.value().info);
           out["token"] = issued.value().secret;
           respond(api_json(201, out));
         });
       }});

  router_.add({"GET",
               "/v1/tokens",
               Access::kAdmin,
               "Tokens (without their secrets), ordered by id",
               [this, no_manager](RequestContext& ctx, HttpServer::Responder respond) {
                 auto page = parse_page_request(ctx.query);
                 if (!page) return respond(api_error(ctx, 400, page.error().code, page.error().message));
                 RequestContext copy = ctx;
                 PageRequest wanted = *page;
                 // Off the I/O thread: a provider may read its store to list credentials.
                 ctx_.pools->blocking().post([this, copy, wanted, respond, no_manager] {
                   auto manager = credential_manager();
                   if (!manager) return respond(api_error(copy, 503, "unavailable", no_manager));
                   auto all = manager->list_credentials();
                   if (!all) return respond(api_error(copy, 503, "unavailable", all.status().message()));
                   json items = json::array();
                   std::string last;
                   bool more = false;
                   for (const auto& c : all.value()) {
                     if (!wanted.after.empty() && c.id <= wanted.after) continue;
                     if (items.size() == wanted.limit) {
                       more = true;
                       break;
                     }
                     items.push_back(credential_json(c));
                     last = c.id;
                   }
                   respond(api_json(
                       200, {{"items", items}, {"next_cursor", more ? json(encode_cursor(last)) : json(nullptr)}}));
                 });
               },
               {},
               /*paginated=*/true});

  router_.add(
      {"DELETE", "/v1/tokens/{id}", Access::kAdmin, "Revoke a token; it stops working at once",
       [this, no_manager](RequestContext& ctx, HttpServer::Responder respond) {
         RequestContext copy = ctx;
         ctx_.pools->blocking().post([this, copy, respond, no_manager] {
           auto manager = credential_manager();
           if (!manager) return respond(api_error(copy, 503, "unavailable", no_manager));
           const std::string& id = copy.params.at("id");
           sdk::Status s = manager->revoke_credential(id);
           if (!s) return respond(api_error(copy, status_for(s.code()), sdk::status_code_name(s.code()), s.message()));
           ctx_.events->publish(
               "token.revoked", "token/" + id, "host",
               json{{"id", id}, {"by", copy.principal.name}}.dump(-1, ' ', false, json::error_handler_t::replace));
           respond(api_json(200, {{"id", id}, {"revoked", true}}));
         });
       }});
}

void ApiServer::add_plugin_package_routes() {
  router_.add(
      {"POST", "/v1/plugins", Access::kAdmin,
       "Install a plugin package: the body is a .tar.zst (or .tar.gz, .tar) of a plugin folder (its own "
       "size limit, api.upload_limit_bytes); the same checks as an offline install",
       [this](RequestContext& ctx, HttpServer::Responder respond) {
         if (ctx.http.body.empty()) {
           return respond(api_error(ctx, 400, "invalid_package", "the body must be a .tar.zst plugin package"));
         }
         // The body moves into the task (no second copy of a large upload in memory).
         auto body = std::make_shared<std::string>(std::move(ctx.http.body));
         RequestContext copy = ctx;
         ctx_.pools->blocking().post([this, copy = std::move(copy), body, respond]() mutable {
           // The archive goes to a private file under DATA_DIR/tmp for the installer.
           std::string path = (ctx_.config->data_dir / "tmp" / "upload-XXXXXX.tar.zst").string();
           int fd = ::mkstemps(path.data(), 8);
           if (fd < 0) {
             return respond(
                 api_error(copy, 503, "io", std::string("cannot store the upload: ") + std::strerror(errno)));
           }
           std::string write_error;
           for (size_t off = 0; off < body->size();) {
             ssize_t n = ::write(fd, body->data() + off, body->size() - off);
             if (n < 0 && errno == EINTR) continue;
             if (n <= 0) {
               write_error = std::strerror(errno);
               break;
             }
             off += static_cast<size_t>(n);
           }
           ::close(fd);
           body.reset();
           if (!write_error.empty()) {
             ::unlink(path.c_str());
             return respond(api_error(copy, 503, "io", "cannot store the upload: " + write_error));
           }
           auto installed = ctx_.plugins->install(path);
           ::unlink(path.c_str());
           if (!installed) {
             const std::string& code = installed.error().code;
             int status = code == "already_installed" || code == "plugin_loaded" ? 409
                          : code == "io" || code == "state_store"                ? 503
                                                                                 : 400;
             // The temporary file's name means nothing to the client.
             std::string message = installed.error().message;
             for (auto pos = message.find(path); pos != std::string::npos; pos = message.find(path)) {
               message.replace(pos, path.size(), "the upload");
             }
             return respond(api_error(copy, status, code, message));
           }
           const CatalogEntry& e = installed->entry;
           ctx_.events->publish("plugin.installed", "plugin/" + e.id, "host",
                                json{{"id", e.id}, {"version", e.version}, {"by", copy.principal.name}}.dump(
                                    -1, ' ', false, json::error_handler_t::replace));
           respond(api_json(
               201, {{"id", e.id}, {"version", e.version}, {"kind", e.kind}, {"dir", e.dir}, {"sha256", e.sha256}}));
         });
       }});

  router_.add({"DELETE", "/v1/plugins/{id}/{version}", Access::kAdmin,
               "Remove an installed plugin version (refused while it runs, and for bundled plugins)",
               [this](RequestContext& ctx, HttpServer::Responder respond) {
                 RequestContext copy = ctx;
                 ctx_.pools->blocking().post([this, copy, respond] {
                   auto r = ctx_.plugins->remove(copy.params.at("id"), copy.params.at("version"));
                   if (!r) {
                     const std::string& code = r.error().code;
                     int status = code == "not_found" ? 404 : code == "plugin_loaded" || code == "bundled" ? 409 : 503;
                     return respond(api_error(copy, status, code, r.error().message));
                   }
                   respond(api_json(
                       200, {{"id", copy.params.at("id")}, {"version", copy.params.at("version")}, {"removed", true}}));
                 });
               }});
}

// ?wait=SECONDS (0 to 300; 0 when absent). Error "invalid_parameter" naming the value.
Expected<long> parse_wait(const RequestContext& ctx) {
  auto it = ctx.query.find("wait");
  if (it == ctx.query.end()) return 0L;
  char* end = nullptr;
  long seconds = std::strtol(it->second.c_str(), &end, 10);
  if (it->second.empty() || *end != '\0' || seconds < 0 || seconds > 300) {
    return make_error("invalid_parameter", "wait: expected whole seconds from 0 to 300, got \"" + it->second + "\"");
  }
  return seconds;
}

void ApiServer::start_operation(RequestContext& ctx, HttpServer::Responder respond, const std::string& kind,
                                const std::string& object, OperationWork work) {
  auto wait = parse_wait(ctx);
  if (!wait) return respond(api_error(ctx, 400, wait.error().code, wait.error().message));
  long wait_seconds = *wait;
  // Starting persists the operation (SQLite): off the I/O thread.
  RequestContext copy = ctx;
  auto shared_work = std::make_shared<OperationWork>(std::move(work));
  ctx_.pools->blocking().post([this, copy, respond, kind, object, shared_work, wait_seconds] {
    auto op = ctx_.operations->start(kind, object, copy.principal.name, std::move(*shared_work));
    if (!op) {
      int status = op.error().code == "conflict" ? 409 : 503;
      return respond(api_error(copy, status, op.error().code, op.error().message));
    }
    if (wait_seconds == 0) return respond(api_json(202, {{"operation", op->to_json()}}));
    // Answers when the operation ends or the wait is over, whichever comes first; no thread
    // is held meanwhile.
    ctx_.operations->wait(op->id, std::chrono::seconds(wait_seconds), [respond](Operation done) {
      respond(api_json(done.finished() ? 200 : 202, {{"operation", done.to_json()}}));
    });
  });
}

void ApiServer::add_operation_routes() {
  router_.add(
      {"GET",
       "/v1/operations",
       Access::kRead,
       "Operations, oldest first",
       [this](RequestContext& ctx, HttpServer::Responder respond) {
         auto page = parse_page_request(ctx.query);
         if (!page) return respond(api_error(ctx, 400, page.error().code, page.error().message));
         RequestContext copy = ctx;
         PageRequest wanted = *page;
         ctx_.pools->blocking().post([this, copy, wanted, respond] {
           auto ops = ctx_.operations->list(wanted.after, wanted.limit + 1);
           if (!ops) return respond(api_error(copy, 503, "state_store", ops.error().message));
           bool more = ops->size() > wanted.limit;
           if (more) ops->resize(wanted.limit);
           json items = json::array();
           for (const auto& op : *ops) items.push_back(op.to_json());
           respond(api_json(
               200, {{"items", items}, {"next_cursor", more ? json(encode_cursor(ops->back().id)) : json(nullptr)}}));
         });
       },
       {},
       /*paginated=*/true});

  router_.add({"GET",
               "/v1/operations/{id}",
               Access::kRead,
               "One operation: state, progress, result or error; ?wait=SECONDS waits for it to end",
               [this](RequestContext& ctx, HttpServer::Responder respond) {
                 std::string id = ctx.params["id"];
                 auto wait = parse_wait(ctx);
                 if (!wait) return respond(api_error(ctx, 400, wait.error().code, wait.error().message));
                 long wait_seconds = *wait;
                 RequestContext copy = ctx;
                 ctx_.pools->blocking().post([this, copy, id, wait_seconds, respond] {
                   auto found = ctx_.operations->find(id);
                   if (!found) return respond(api_error(copy, 503, "state_store", found.error().message));
                   auto& op = *found;
                   if (!op) return respond(api_error(copy, 404, "not_found", "operation " + id + " does not exist"));
                   if (op->finished() || wait_seconds == 0) return respond(api_json(200, op->to_json()));
                   ctx_.operations->wait(id, std::chrono::seconds(wait_seconds),
                                         [respond](Operation done) { respond(api_json(200, done.to_json())); });
                 });
               },
               {{"wait", "integer", "Seconds to wait for the operation to end (0 to 300)"}}});

  router_.add({"POST", "/v1/operations/{id}/cancel", Access::kAdmin,
               "Ask a running operation to stop; it ends as cancelled when it notices",
               [this](RequestContext& ctx, HttpServer::Responder respond) {
                 RequestContext copy = ctx;
                 ctx_.pools->blocking().post([this, copy, respond] {
                   auto op = ctx_.operations->cancel(copy.params.at("id"));
                   if (!op) {
                     int status = op.error().code == "not_found" ? 404 : 409;
                     return respond(api_error(copy, status, op.error().code, op.error().message));
                   }
                   respond(api_json(202, op->to_json()));
                 });
               }});
}

namespace {

// Sends the events of one /v1/events subscriber: replays what the bus still holds after
// `since`, then live events, in sequence order without gaps or repeats. Live events that
// arrive during the replay wait in `pending`.
struct EventForwarder {
  std::shared_ptr<WebSocketChannel> channel;
  std::vector<std::string> type_prefixes;  // empty = every type
  std::string object;                      // "" = every object
  std::mutex mutex;
  std::uint64_t last_sent = 0;
  bool replaying = true;
  bool bookmark = false;  // ?bookmark=true: mark the end of the replay
  std::vector<HostEvent> pending;

  bool wanted(const HostEvent& e) const {
    if (!object.empty() && e.object != object) return false;
    if (type_prefixes.empty()) return true;
    return std::any_of(type_prefixes.begin(), type_prefixes.end(),
                       [&](const std::string& p) { return p.back() == '.' ? e.type.rfind(p, 0) == 0 : e.type == p; });
  }
  void send_locked(const HostEvent& e) {
    if (e.seq <= last_sent) return;
    last_sent = e.seq;
    if (!wanted(e)) return;
    json payload = json::parse(e.payload_json, nullptr, false);
    channel->send(json{{"seq", e.seq},
                       {"time_ms", e.time_ms},
                       {"type", e.type},
                       {"object", e.object},
                       {"source", e.source},
                       {"payload", payload.is_discarded() ? json::object() : payload}}
                      .dump(-1, ' ', false, json::error_handler_t::replace));
  }
  void live(const HostEvent& e) {
    std::lock_guard<std::mutex> lock(mutex);
    if (replaying) {
      pending.push_back(e);
    } else {
      send_locked(e);
    }
  }
};

}  // namespace

void ApiServer::add_event_routes() {
  router_.add(
      {"GET",
       "/v1/events",
       Access::kRead,
       "WebSocket stream of events (one JSON text message each, with a sequence number); "
       "?since=SEQ resumes after SEQ, ?type=a.b,c. filters by type (a trailing dot matches a prefix), "
       "?object= by object",
       [this](RequestContext& ctx, HttpServer::Responder respond) {
         auto fwd = std::make_shared<EventForwarder>();
         std::uint64_t since = ctx_.events->last_seq();  // by default: only what happens from now on
         if (auto it = ctx.query.find("since"); it != ctx.query.end() && it->second == "earliest") {
           since = ctx_.events->oldest_retained_seq() - 1;  // everything still kept: never too old
         } else if (it != ctx.query.end()) {
           char* end = nullptr;
           since = std::strtoull(it->second.c_str(), &end, 10);
           if (it->second.empty() || *end != '\0' || !std::isdigit(static_cast<unsigned char>(it->second[0])) ||
               since > ctx_.events->last_seq()) {
             return respond(api_error(ctx, 400, "invalid_parameter",
                                      "since: expected a sequence number up to the newest event (" +
                                          std::to_string(ctx_.events->last_seq()) + ")"));
           }
           // Past the retention window the stream cannot be resumed without a gap: say so
           // before upgrading, so that the client resynchronises.
           if (!ctx_.events->can_resume_from(since)) {
             return respond(api_error(ctx, 410, "too_old",
                                      "events after " + it->second + " are no longer kept (the bus keeps the last " +
                                          std::to_string(ctx_.config->event_retention) +
                                          "); resynchronise and resume from a newer sequence number"));
           }
         }
         if (auto it = ctx.query.find("type"); it != ctx.query.end()) {
           std::string list = it->second;
           for (size_t start = 0; start <= list.size();) {
             size_t comma = list.find(',', start);
             if (comma == std::string::npos) comma = list.size();
             if (comma > start) fwd->type_prefixes.push_back(list.substr(start, comma - start));
             start = comma + 1;
           }
         }
         if (auto it = ctx.query.find("object"); it != ctx.query.end()) fwd->object = it->second;
         if (auto it = ctx.query.find("bookmark"); it != ctx.query.end()) {
           if (it->second != "true" && it->second != "false") {
             return respond(api_error(ctx, 400, "invalid_parameter", "bookmark: expected true or false"));
           }
           fwd->bookmark = it->second == "true";
         }
         if (!ctx.http.websocket_upgrade) {
           HttpResponse r =
               api_error(ctx, 426, "upgrade_required", "GET /v1/events is a WebSocket: send an upgrade request");
           r.headers.emplace_back("Upgrade", "websocket");
           return respond(std::move(r));
         }
         fwd->last_sent = since;
         HttpResponse r;
         r.status = 101;
         const bool earliest = ctx.query.count("since") != 0 && ctx.query.at("since") == "earliest";
         r.upgrade = [events = ctx_.events, fwd, since, earliest](std::shared_ptr<WebSocketChannel> channel) {
           fwd->channel = channel;
           // Subscribe first, then replay: nothing published in between is lost.
           std::uint64_t sub = events->subscribe([fwd](const HostEvent& e) { fwd->live(e); });
           channel->on_close([events, sub] { events->unsubscribe(sub); });
           // Every event up to `head` is either in the history or was filtered out: the
           // bookmark after the replay tells a client that it has seen all of them.
           std::uint64_t head = events->last_seq();
           auto history = events->since(since);
           // The window may have moved since the request was checked: "earliest" follows it,
           // a resume from a sequence number that is now gone ends the stream, never skips.
           while (!history && earliest) history = events->since(events->oldest_retained_seq() - 1);
           if (!history) {
             channel->close("too_old: events after " + std::to_string(since) + " are no longer kept");
             return;
           }
           channel->allow_burst(history->size() + 1);  // the replay goes out at once
           std::lock_guard<std::mutex> lock(fwd->mutex);
           if (history) {
             for (const auto& e : *history) {
               if (e.seq <= head) fwd->send_locked(e);
             }
           }
           if (fwd->bookmark) {
             channel->send(json{{"type", "stream.bookmark"}, {"seq", std::max(head, since)}}.dump());
           }
           if (history) {
             for (const auto& e : *history) {
               if (e.seq > head) fwd->send_locked(e);
             }
           }
           for (const auto& e : fwd->pending) fwd->send_locked(e);
           fwd->pending.clear();
           fwd->replaying = false;
         };
         respond(std::move(r));
       },
       {{"since", "string",
         "Resume after this sequence number, or \"earliest\" for every event still kept (default: from now)"},
        {"type", "string", "Comma-separated types; a trailing dot matches a prefix, e.g. plugin."},
        {"object", "string", "Only events about this object, e.g. plugin/io.novacron.auth.token"},
        {"bookmark", "boolean",
         "true: after the replay, one {\"type\": \"stream.bookmark\", \"seq\": N} message: every matching "
         "event up to N has been sent"}}});
}

void ApiServer::add_routes() {
  add_token_routes();
  add_event_routes();
  add_operation_routes();
  add_plugin_package_routes();
  add_node_routes();
  add_vm_routes();
  add_placement_routes();
  add_transfer_routes();
  router_.add({"GET", "/v1/health", Access::kPublic, "Liveness and a summary of the host",
               [this](RequestContext&, HttpServer::Responder respond) {
                 size_t running = 0, not_running = 0;
                 for (const auto& p : ctx_.plugins->list()) {
                   running += p.state == "running" ? 1 : 0;
                   not_running += p.state == "failed" || p.state == "quarantined" ? 1 : 0;
                 }
                 respond(api_json(200, {{"status", "ok"},
                                        {"node", ctx_.config->node_name},
                                        {"sdk_version", NOVACRON_SDK_VERSION_STRING},
                                        {"plugins", {{"running", running}, {"not_running", not_running}}}}));
               }});

  router_.add({"GET", "/v1/openapi.json", Access::kRead, "This API's OpenAPI 3 document",
               [this](RequestContext&, HttpServer::Responder respond) {
                 respond(api_json(200, router_.openapi(NOVACRON_VERSION)));
               }});

  router_.add(
      {"GET", "/metrics", Access::kRead, "Host and plugin metrics in the Prometheus text format",
       [this](RequestContext&, HttpServer::Responder respond) {
         respond(HttpResponse{200, "text/plain; version=0.0.4; charset=utf-8", ctx_.metrics->render_prometheus(), {}});
       }});

  router_.add({"GET",
               "/v1/plugins",
               Access::kRead,
               "Installed and configured plugins, ordered by id",
               [this](RequestContext& ctx, HttpServer::Responder respond) {
                 // Read the generation before the data: a change while rendering makes the stored
                 // answer stale at once instead of wrong for a whole generation.
                 const std::uint64_t generation = ctx_.plugins->generation();
                 if (HttpResponse hit; cached_response(ctx.http.target, hit)) return respond(std::move(hit));
                 auto page = parse_page_request(ctx.query);
                 if (!page) return respond(api_error(ctx, 400, page.error().code, page.error().message));
                 auto installed = ctx_.catalog->list();
                 if (!installed) return respond(api_error(ctx, 503, "state_store", installed.error().message));
                 std::map<std::string, std::vector<CatalogEntry>> by_id;
                 for (auto& e : *installed) by_id[e.id].push_back(e);
                 std::map<std::string, PluginStatus> statuses;
                 for (auto& s : ctx_.plugins->list()) {
                   by_id[s.id];
                   statuses[s.id] = s;
                 }
                 json items = json::array();
                 std::string last;
                 bool more = false;
                 for (auto it = by_id.upper_bound(page->after); it != by_id.end(); ++it) {
                   if (items.size() == page->limit) {
                     more = true;
                     break;
                   }
                   auto st = statuses.find(it->first);
                   auto state = ctx_.catalog->state(it->first);
                   items.push_back(plugin_json(st == statuses.end() ? nullptr : &st->second, it->second,
                                               state ? *state : PluginStateRecord{}));
                   last = it->first;
                 }
                 HttpResponse r = api_json(
                     200, {{"items", items}, {"next_cursor", more ? json(encode_cursor(last)) : json(nullptr)}});
                 store_response(ctx.http.target, generation, r);
                 respond(std::move(r));
               },
               {},
               /*paginated=*/true});

  router_.add(
      {"GET", "/v1/plugins/{id}", Access::kRead, "One plugin: runtime state and installed versions",
       [this](RequestContext& ctx, HttpServer::Responder respond) {
         const std::uint64_t generation = ctx_.plugins->generation();
         if (HttpResponse hit; cached_response(ctx.http.target, hit)) return respond(std::move(hit));
         const std::string& id = ctx.params["id"];
         auto installed = ctx_.catalog->list();
         if (!installed) return respond(api_error(ctx, 503, "state_store", installed.error().message));
         std::vector<CatalogEntry> versions;
         for (auto& e : *installed) {
           if (e.id == id) versions.push_back(e);
         }
         auto status = ctx_.plugins->status(id);
         if (!status && versions.empty()) {
           return respond(api_error(ctx, 404, "not_found", "plugin " + id + " is neither installed nor configured"));
         }
         auto state = ctx_.catalog->state(id);
         HttpResponse r =
             api_json(200, plugin_json(status ? &*status : nullptr, versions, state ? *state : PluginStateRecord{}));
         store_response(ctx.http.target, generation, r);
         respond(std::move(r));
       }});

  for (bool enable : {true, false}) {
    router_.add({"POST", std::string("/v1/plugins/{id}/") + (enable ? "enable" : "disable"), Access::kAdmin,
                 enable ? "Enable a plugin (lifts a quarantine) and start it" : "Stop a plugin and keep it disabled",
                 [this, enable](RequestContext& ctx, HttpServer::Responder respond) {
                   std::string id = ctx.params["id"];
                   auto installed = ctx_.catalog->list();
                   if (!installed) return respond(api_error(ctx, 503, "state_store", installed.error().message));
                   bool known = ctx_.plugins->status(id).has_value();
                   for (auto& e : *installed) known |= e.id == id;
                   if (!known) return respond(api_error(ctx, 404, "not_found", "plugin " + id + " is not installed"));
                   if (!enable) {
                     // The same check runs again, authoritatively, under the manager's lock; this
                     // early answer spares the caller a failed operation in the common case.
                     if (auto r = ctx_.plugins->check_not_last_auth_provider(id, ctx_.auth_providers); !r) {
                       return respond(api_error(ctx, 409, r.error().code, r.error().message));
                     }
                   }
                   std::string by = ctx.principal.name;
                   // Starting and stopping plugins runs their code and may block: an operation.
                   start_operation(ctx, std::move(respond), enable ? "plugin.enable" : "plugin.disable", "plugin/" + id,
                                   [this, enable, id, by](OperationContext& op) -> Expected<json> {
                                     // Cancellation is honoured until the plugin's own code runs;
                                     // a plugin's start or stop is not interrupted.
                                     if (op.cancel_requested()) {
                                       return make_error("cancelled", "cancelled before it started");
                                     }
                                     if (enable) {
                                       auto r = ctx_.plugins->enable(id);
                                       if (!r) return tl::unexpected(r.error());
                                     } else {
                                       auto r = ctx_.plugins->disable(id, "disabled by " + by + " through the API",
                                                                      &ctx_.auth_providers);
                                       if (!r) return tl::unexpected(r.error());
                                     }
                                     auto status = ctx_.plugins->status(id);
                                     return json{{"id", id}, {"state", status ? status->state : "unknown"}};
                                   });
                 }});
  }
}

}  // namespace novacron
