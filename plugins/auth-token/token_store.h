// Tokens of the auth-token plugin: generated, hashed, kept in memory for lookups on the
// request path, and persisted (hashes only) in the host's key-value store under "token/<id>".
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <shared_mutex>
#include <string>
#include <vector>

#include "novacron/sdk/auth_provider.hpp"
#include "novacron/sdk/host_services.hpp"

namespace novacron::auth_token {

// "nct_" + 43 base64url characters (32 random bytes): recognisable in leaked-secret scans.
inline constexpr const char* kTokenPrefix = "nct_";

std::string sha256_hex(const std::string& data);
std::string random_token();

class TokenStore {
 public:
  explicit TokenStore(sdk::HostServices& host) : host_(host) {}

  // Reads every stored token hash into memory.
  sdk::Status load();
  // Creates a token; returns it with its secret (the only time the secret exists in memory).
  sdk::Result<sdk::IssuedCredential> create(const std::string& name, const std::vector<std::string>& roles);
  sdk::Status revoke(const std::string& id);
  std::vector<sdk::CredentialInfo> list() const;
  // The token's record when `secret` is a live token.
  std::optional<sdk::CredentialInfo> find(const std::string& secret) const;
  bool empty() const;

 private:
  sdk::HostServices& host_;
  mutable std::shared_mutex mutex_;
  std::map<std::string, sdk::CredentialInfo> by_hash_;  // sha256(secret) -> token
  std::map<std::string, std::string> hash_by_id_;
};

}  // namespace novacron::auth_token
