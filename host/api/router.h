// The REST router: routes with path parameters ("/v1/plugins/{id}"), the access each needs,
// and the OpenAPI document generated from the same table, so that every route is described.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "host/api/http_server.h"
#include "novacron/sdk/auth_provider.hpp"

namespace novacron {

enum class Access {
  kPublic,  // no authentication (only /v1/health)
  kRead,    // any authenticated principal
  kAdmin,   // a principal with the "admin" role
  kNode,    // a cluster peer (node:<name> of /cluster/peers, mutual TLS) or an admin
};

struct RequestContext {
  HttpRequest http;
  std::string path;                           // target without the query
  std::map<std::string, std::string> params;  // path parameters
  std::map<std::string, std::string> query;   // decoded query parameters
  std::string request_id;
  sdk::Principal principal;
};

using RouteHandler = std::function<void(RequestContext&, HttpServer::Responder)>;

struct QueryParam {
  std::string name;
  std::string type;  // OpenAPI type: "integer", "string", "boolean"
  std::string description;
};

struct Route {
  std::string method;   // "GET", "POST", "DELETE"
  std::string pattern;  // "/v1/plugins/{id}"
  Access access = Access::kRead;
  std::string summary;
  RouteHandler handler;
  std::vector<QueryParam> query;  // documented query parameters
  bool paginated = false;         // adds limit and cursor
};

class Router {
 public:
  void add(Route route);

  struct Match {
    const Route* route = nullptr;
    std::map<std::string, std::string> params;
    std::vector<std::string> allowed_methods;  // when the path matched but the method did not
  };
  Match match(const std::string& method, const std::string& path) const;

  const std::vector<Route>& routes() const { return routes_; }
  // OpenAPI 3.0 document of every route.
  nlohmann::json openapi(const std::string& version) const;

 private:
  std::vector<Route> routes_;
};

// Splits "a=1&b=x%20y" into decoded pairs; false on malformed percent-encoding.
bool parse_query(const std::string& query, std::map<std::string, std::string>& out);

}  // namespace novacron
