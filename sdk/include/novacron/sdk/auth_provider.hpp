// AuthProvider: authenticates an API request and maps it to a principal.
//
// The host tries the configured providers in order; the first one that answers
// kAuthenticated or kRejected decides, kNotMine passes to the next. authenticate() runs on
// an I/O thread: it must not block (no network calls, no disk I/O). Keep what you need
// (token hashes, keys) in memory, loaded from the key-value store in start().
//
// Interface version 2 (SDK 1.1): version 1 plus credential management, for providers that
// issue their own credentials (tokens). The host calls the version-2 methods only on plugins
// whose descriptor declares interface version 2 or newer.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
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

// A credential a provider issued (never includes the secret).
struct CredentialInfo {
  std::string id;    // stable, not secret, e.g. "a1b2c3d4e5f60718"
  std::string name;  // operator's label, e.g. "ci-pipeline"
  std::vector<std::string> roles;
  std::int64_t created_at = 0;  // Unix seconds
};

struct CredentialRequest {
  std::string name;
  std::vector<std::string> roles;  // "admin" or "reader" until multi-tenancy brings more
};

struct IssuedCredential {
  CredentialInfo info;
  std::string secret;  // returned once, to the caller; the provider keeps only a hash
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
  static constexpr std::uint32_t kInterfaceVersion = 2;

  virtual AuthResult authenticate(const AuthRequest& request) noexcept = 0;

  // --- Interface version 2 (SDK 1.1) ----------------------------------------------------
  // Whether this provider issues credentials (the other three methods work).
  virtual bool manages_credentials() const noexcept = 0;
  // Issues a credential. Revocation and creation take effect for the next request.
  virtual Result<IssuedCredential> create_credential(const CredentialRequest& request) noexcept = 0;
  // Every live credential, ordered by id.
  virtual Result<std::vector<CredentialInfo>> list_credentials() noexcept = 0;
  // kNotFound for an unknown id.
  virtual Status revoke_credential(std::string_view id) noexcept = 0;
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

  bool manages_credentials() const noexcept override { return false; }
  Result<IssuedCredential> create_credential(const CredentialRequest& request) noexcept final {
    std::optional<IssuedCredential> out;
    Status s = guard_status("create_credential", [&] {
      auto r = on_create_credential(request);
      if (!r) return r.status();
      out = std::move(r.value());
      return Status::ok();
    });
    if (!s) return s;
    return std::move(*out);
  }
  Result<std::vector<CredentialInfo>> list_credentials() noexcept final {
    std::optional<std::vector<CredentialInfo>> out;
    Status s = guard_status("list_credentials", [&] {
      auto r = on_list_credentials();
      if (!r) return r.status();
      out = std::move(r.value());
      return Status::ok();
    });
    if (!s) return s;
    return std::move(*out);
  }
  Status revoke_credential(std::string_view id) noexcept final {
    return guard_status("revoke_credential", [&] { return on_revoke_credential(id); });
  }

 protected:
  virtual AuthResult on_authenticate(const AuthRequest& request) = 0;
  // Override these (and manages_credentials) in providers that issue credentials.
  virtual Result<IssuedCredential> on_create_credential(const CredentialRequest& /*request*/) {
    return Status{StatusCode::kUnimplemented, "this provider does not issue credentials"};
  }
  virtual Result<std::vector<CredentialInfo>> on_list_credentials() {
    return Status{StatusCode::kUnimplemented, "this provider does not issue credentials"};
  }
  virtual Status on_revoke_credential(std::string_view /*id*/) {
    return {StatusCode::kUnimplemented, "this provider does not issue credentials"};
  }
};

}  // namespace novacron::sdk
