// AuthProvider: authenticates an API request and maps it to a principal.
//
// The host tries the configured providers in order; the first one that answers
// kAuthenticated or kRejected decides, kNotMine passes to the next. authenticate() runs on
// an I/O thread: it must not block (no network calls, no disk I/O). Keep what you need
// (token hashes, keys) in memory, loaded from the key-value store in start().
//
// Interface version 1 (SDK 1.0).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "novacron/sdk/host_services.hpp"
#include "novacron/sdk/plugin.hpp"

namespace novacron::sdk {

struct AuthRequest {
  std::string method;          // "GET", "POST", ...
  std::string target;          // path and query, e.g. "/v1/vms?limit=10"
  std::string remote_address;  // "ip:port" of the client
  // Request headers, names lower-cased. Secrets (Authorization) are here: never log them.
  std::vector<std::pair<std::string, std::string>> headers;
  // Subject and SANs of a verified TLS client certificate, empty without mutual TLS.
  std::string tls_peer_subject;
  std::vector<std::string> tls_peer_names;
};

struct Principal {
  std::string name;                // e.g. "token:ops-ci" or "node:node-2"
  std::string tenant;              // "default" until multi-tenancy arrives
  std::vector<std::string> roles;  // e.g. {"admin"} or {"reader"}
};

enum class AuthOutcome : int {
  kNotMine = 0,        // no credentials this provider understands: ask the next provider
  kAuthenticated = 1,  // `principal` is set
  kRejected = 2,       // credentials of this provider's kind, but wrong; `reason` says why
};

struct AuthResult {
  AuthOutcome outcome = AuthOutcome::kNotMine;
  Principal principal;
  std::string reason;  // for logs and the 401 answer; must not contain the secret
};

class AuthProvider : public PluginInstance {
 public:
  using Interface = AuthProvider;
  static constexpr NovacronPluginKind kKind = NOVACRON_KIND_AUTH_PROVIDER;
  static constexpr std::uint32_t kInterfaceVersion = 1;

  virtual AuthResult authenticate(const AuthRequest& request) noexcept = 0;
};

// Base for auth provider authors: override on_authenticate().
class AuthProviderBase : public PluginBase<AuthProvider> {
 public:
  AuthResult authenticate(const AuthRequest& request) noexcept final {
    AuthResult result;
    Status s = guard_status("authenticate", [&] {
      result = on_authenticate(request);
      return Status::ok();
    });
    if (!s.is_ok()) {
      result = AuthResult{AuthOutcome::kRejected, {}, s.message()};
    }
    return result;
  }

 protected:
  virtual AuthResult on_authenticate(const AuthRequest& request) = 0;
};

}  // namespace novacron::sdk
