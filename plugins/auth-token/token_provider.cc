// io.novacron.auth.token: bearer tokens for the host API.
//
//   Authorization: Bearer nct_...   -> the token's principal ("token:<name>", its roles)
//   a Bearer value without "nct_"  -> not ours (another provider may know it)
//   an unknown or revoked nct_ token -> rejected
//
// Tokens are 256 random bits; only their SHA-256 is stored (host key-value store). On the
// first start, when no token exists yet, an admin token is created and written to
// DATA_DIR/admin.token (mode 0600), the only place its plain text is kept; it is not logged.
#include <fcntl.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <string>

#include "novacron/sdk/auth_provider.hpp"
#include "novacron/sdk/export.hpp"
#include "novacron/sdk/json_config.hpp"
#include "token_store.h"

namespace novacron::auth_token {
namespace {

using sdk::AuthOutcome;
using sdk::AuthResult;
using sdk::Status;

// Writes `content` to `path` with mode 0600, atomically (temporary file, then rename).
Status write_secret_file(const std::string& path, const std::string& content) {
  std::string tmp = path + ".tmp";
  ::unlink(tmp.c_str());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) return {sdk::StatusCode::kUnavailable, tmp + ": " + std::strerror(errno)};
  bool ok = ::fchmod(fd, 0600) == 0 &&
            ::write(fd, content.data(), content.size()) == static_cast<ssize_t>(content.size()) && ::fsync(fd) == 0;
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) {
    ::unlink(tmp.c_str());
    return {sdk::StatusCode::kUnavailable, path + ": " + std::strerror(errno)};
  }
  return Status::ok();
}

bool valid_roles(const std::vector<std::string>& roles) {
  if (roles.size() != 1) return false;
  return roles[0] == "admin" || roles[0] == "reader";
}

class TokenProvider final : public sdk::AuthProviderBase {
 public:
  bool manages_credentials() const noexcept override { return true; }

 protected:
  Status on_init(std::string_view config_json) override {
    if (host().host_sdk_minor() < 1) {
      return {sdk::StatusCode::kFailedPrecondition, "needs a host with SDK 1.1 or newer (data_dir)"};
    }
    sdk::ConfigReader cfg(config_json);
    admin_token_file_ = cfg.string("admin_token_file", host().data_dir() + "/admin.token");
    // A relative path is relative to the data dir, not to wherever novacrond was started.
    if (!admin_token_file_.empty() && admin_token_file_.front() != '/') {
      admin_token_file_ = host().data_dir() + "/" + admin_token_file_;
    }
    cfg.reject_unknown_keys();
    if (!cfg.ok()) return sdk::invalid_argument(cfg.error());
    return Status::ok();
  }

  Status on_start() override {
    store_ = std::make_unique<TokenStore>(host());
    if (Status s = store_->load(); !s) return s;
    auto bootstrapped = host().kv_get("bootstrap-done");
    if (!bootstrapped) return bootstrapped.status();
    if (!bootstrapped.value().has_value() && store_->empty()) {
      auto admin = store_->create("admin", {"admin"});
      if (!admin) return admin.status();
      if (Status s = write_secret_file(admin_token_file_, admin.value().secret + "\n"); !s) {
        (void)store_->revoke(admin.value().info.id);
        return s;
      }
      host().log(sdk::LogLevel::kWarn, "admin token created; it is stored in plain text only in this file (mode 0600)",
                 {{"file", admin_token_file_}, {"token_id", admin.value().info.id}});
    }
    // Once any token existed, the host is never bootstrapped again: deleting admin.token or
    // revoking every token must not mint a fresh admin token on the next start.
    return host().kv_put("bootstrap-done", "1");
  }

  AuthResult on_authenticate(const sdk::AuthRequest& request) override {
    for (const auto& [name, value] : request.headers) {
      if (name != "authorization") continue;
      if (value.size() < 7 || strncasecmp(value.c_str(), "Bearer ", 7) != 0) return {};
      std::string secret = value.substr(7);
      while (!secret.empty() && secret.front() == ' ') secret.erase(0, 1);
      if (secret.rfind(kTokenPrefix, 0) != 0) return {};  // someone else's bearer credential
      auto token = store_->find(secret);
      if (!token) return {AuthOutcome::kRejected, {}, "unknown or revoked token"};
      return {AuthOutcome::kAuthenticated, {"token:" + token->name, "default", token->roles}, ""};
    }
    return {};
  }

  sdk::Result<sdk::IssuedCredential> on_create_credential(const sdk::CredentialRequest& request) override {
    if (request.name.empty() || request.name.size() > 64) {
      return sdk::invalid_argument("name: expected 1 to 64 characters");
    }
    if (!valid_roles(request.roles)) {
      return sdk::invalid_argument("/role: expected \"admin\" or \"reader\"");
    }
    return store_->create(request.name, request.roles);
  }

  sdk::Result<std::vector<sdk::CredentialInfo>> on_list_credentials() override { return store_->list(); }

  Status on_revoke_credential(std::string_view id) override { return store_->revoke(std::string(id)); }

 private:
  std::string admin_token_file_;
  std::unique_ptr<TokenStore> store_;
};

}  // namespace
}  // namespace novacron::auth_token

NOVACRON_PLUGIN(novacron::auth_token::TokenProvider)
