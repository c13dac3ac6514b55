// io.novacron.auth.mtls: authenticates callers by the TLS client certificate they presented.
//
// The host's listener verifies a client certificate against /tls/client_ca (the cluster CA
// when a /cluster section is configured) during the handshake and fills
// AuthRequest::tls_peer_names only for a certificate that verified, so this provider never
// parses certificates itself:
//   verified certificate       -> principal "node:<first name>", the configured role
//   no certificate             -> not ours (a token provider may know the caller)
// A name that is not a valid node name is rejected rather than passed on: a certificate
// from the cluster CA that names something odd is a mistake worth a clear 401.
#include <cctype>
#include <string>

#include "novacron/sdk/auth_provider.hpp"
#include "novacron/sdk/export.hpp"
#include "novacron/sdk/json_config.hpp"

namespace novacron::auth_mtls {
namespace {

using sdk::AuthOutcome;
using sdk::AuthResult;
using sdk::Status;

// The host's rule (host/common/identifiers.cc): 1-63 letters, digits, '.', '-', starting
// with a letter or digit.
bool is_node_name(const std::string& name) {
  if (name.empty() || name.size() > 63 || !std::isalnum(static_cast<unsigned char>(name.front()))) return false;
  for (unsigned char c : name) {
    if (!std::isalnum(c) && c != '-' && c != '.') return false;
  }
  return true;
}

class MtlsProvider final : public sdk::AuthProviderBase {
 protected:
  Status on_init(std::string_view config_json) override {
    sdk::ConfigReader cfg(config_json);
    role_ = cfg.string("role", "reader");
    cfg.reject_unknown_keys();
    if (!cfg.ok()) return sdk::invalid_argument(cfg.error());
    if (role_ != "reader" && role_ != "admin") return sdk::invalid_argument("/role: expected \"reader\" or \"admin\"");
    return Status::ok();
  }

  AuthResult on_authenticate(const sdk::AuthRequest& request) override {
    if (request.tls_peer_names.empty()) return {};
    const std::string& name = request.tls_peer_names.front();
    if (!is_node_name(name)) {
      return {AuthOutcome::kRejected, {}, "client certificate names \"" + name + "\", not a node name"};
    }
    return {AuthOutcome::kAuthenticated, {"node:" + name, "default", {role_}}, ""};
  }

 private:
  std::string role_;
};

}  // namespace
}  // namespace novacron::auth_mtls

NOVACRON_PLUGIN(novacron::auth_mtls::MtlsProvider)
