// The host's REST API (/v1): request ids, authentication through the AuthProvider plugins,
// access roles, JSON errors, pagination, metrics per route, and the routes themselves.
// Conventions: docs/api.md.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "host/api/http_server.h"
#include "host/api/router.h"
#include "host/cluster/peer_monitor.h"
#include "host/config/host_config.h"
#include "host/operations/operation_manager.h"
#include "host/plugins/plugin_manager.h"
#include "host/services/event_bus.h"
#include "host/services/executors.h"
#include "host/services/metrics_registry.h"
#include "host/vms/vm_service.h"

namespace novacron {

class TransferService;
class PlacementService;
struct PlacementAnswer;
struct RequestContext;

struct ApiContext {
  const HostConfig* config = nullptr;
  PluginManager* plugins = nullptr;
  PluginCatalog* catalog = nullptr;
  MetricsRegistry* metrics = nullptr;
  EventBus* events = nullptr;
  ExecutorPools* pools = nullptr;
  OperationManager* operations = nullptr;
  PeerMonitor* peers = nullptr;
  VmService* vms = nullptr;                // the VM routes are added when set
  TransferService* transfers = nullptr;    // the transfer routes are added when set
  PlacementService* placements = nullptr;  // VMs are placed across the nodes when set
  std::int64_t started_at_ms = 0;
  // AuthProvider plugin ids, tried in this order (the order of plugins.load).
  std::vector<std::string> auth_providers;
};

class ApiServer {
 public:
  explicit ApiServer(ApiContext context);
  ~ApiServer();

  // Binds the listener from the config; returns the bound port.
  Expected<std::uint16_t> start();
  void stop();

  const Router& router() const { return router_; }

 private:
  void add_routes();
  void dispatch(HttpRequest request, HttpServer::Responder respond);
  // Runs the providers; returns an error response when the request may not proceed.
  std::optional<HttpResponse> authenticate(RequestContext& ctx, Access access);
  void add_token_routes();
  void add_event_routes();
  void add_operation_routes();
  // Starts `work` as an operation on `object`: 202 with it, or (?wait=SECONDS) 200 once it
  // has ended within the wait; 409 when the object is busy with another operation.
  void start_operation(RequestContext& ctx, HttpServer::Responder respond, const std::string& kind,
                       const std::string& object, OperationWork work);
  void add_plugin_package_routes();
  void add_node_routes();       // node_routes.cc
  void add_vm_routes();         // vm_routes.cc
  void add_transfer_routes();   // transfer_routes.cc
  void add_placement_routes();  // placement_routes.cc
  nlohmann::json self_node_json() const;
  // The first running auth provider that issues credentials (interface version >= 2).
  BorrowedPlugin<sdk::AuthProvider> credential_manager() const;

  // Answers of read routes about plugins, rendered once per PluginManager::generation():
  // building and serialising the JSON costs more than everything else in such a request.
  bool cached_response(const std::string& key, HttpResponse& out);
  void store_response(const std::string& key, std::uint64_t generation, const HttpResponse& response);

  ApiContext ctx_;
  Router router_;
  std::mutex cache_mutex_;
  std::uint64_t cache_generation_ = 0;
  std::unordered_map<std::string, HttpResponse> cache_;
  std::unique_ptr<HttpServer> server_;
  std::uint16_t bound_port_ = 0;
};

// ?wait=SECONDS of a call that starts an operation (0 to 300; 0 when absent).
Expected<long> parse_wait(const RequestContext& ctx);

// {"error": {...}} with the request id, for handlers.
HttpResponse api_error(const RequestContext& ctx, int status, const std::string& code, const std::string& message);
HttpResponse api_json(int status, const nlohmann::json& body);
// A placement service answer as a response (placement_routes.cc).
HttpResponse placement_response(const RequestContext& ctx, const PlacementAnswer& answer);
// ?explain=compact|full ("" when absent).
Expected<std::string> parse_explain(const RequestContext& ctx);

}  // namespace novacron
