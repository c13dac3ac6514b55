// The CLI's connection to a running host: where it is, how to trust it and which token to
// send, from (first wins) flags, the environment and the CLI config file:
//
//   --url URL          NOVACRON_URL     "url"          default http://127.0.0.1:8470
//   --token TOKEN      NOVACRON_TOKEN   "token"        (or --token-file / "token_file")
//   --ca FILE          NOVACRON_CA      "ca"           CA of the host's TLS certificate
//   --server-name N                     "server_name"  name the certificate must carry
//   --cert/--key                        "cert"/"key"   client certificate (mutual TLS)
//
// The config file is $NOVACRON_CLI_CONFIG, else $XDG_CONFIG_HOME/novacron/cli.json, else
// ~/.config/novacron/cli.json; `novacron login` writes it with mode 0600. A file that holds
// a token must not be readable by group or others.
#pragma once

#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "host/api/http_client.h"
#include "host/cli/output.h"
#include "host/common/error.h"

namespace novacron::cli {

struct ConnectionFlags {
  std::string url;
  std::string token;
  std::string token_file;
  std::string ca;
  std::string server_name;
  std::string cert;
  std::string key;
  double timeout_seconds = 30;
};

// Adds the connection options to `app` (global, so they may follow any subcommand).
void add_connection_flags(CLI::App& app, ConnectionFlags& flags);

struct ConnectionSettings {
  std::string url;
  std::string token;         // "" = none
  std::string token_source;  // where the token came from, for hints ("NOVACRON_TOKEN", ...)
  std::string ca;
  std::string server_name;
  std::string cert;
  std::string key;
  double timeout_seconds = 30;
};

std::filesystem::path cli_config_path();

// Flags over environment over the config file.
Expected<ConnectionSettings> resolve_connection(const ConnectionFlags& flags);

// An API error with what the operator can do about it.
struct ApiFailure {
  std::string code;
  std::string message;
  std::string hint;
  int http_status = 0;  // 0: no HTTP answer
  nlohmann::json body;  // the error answer as sent (e.g. a refused placement's decision)
};

class ApiClient {
 public:
  // Resolves the settings and prepares the connection (reads CA/cert files).
  static std::optional<ApiClient> connect(const ConnectionFlags& flags, const Output& out, int& exit_code);

  // A JSON request; a non-2xx answer or a transport error is an ApiFailure.
  tl::expected<nlohmann::json, ApiFailure> call(const std::string& method, const std::string& target,
                                                const std::string& body = "",
                                                const std::string& content_type = "application/json");
  // A request whose answer is not JSON (console output); non-2xx answers are failures.
  tl::expected<HttpClientResponse, ApiFailure> raw(const std::string& method, const std::string& target);
  // Opens GET /v1/events?... as a WebSocket.
  tl::expected<std::unique_ptr<WebSocketConnection>, ApiFailure> events(const std::string& query);

  // Prints the failure (one line and a hint; JSON with --json) and returns the exit code.
  static int fail(const Output& out, const ApiFailure& f);

  const ConnectionSettings& settings() const { return settings_; }

 private:
  ApiClient(ConnectionSettings settings, HttpClient client)
      : settings_(std::move(settings)), client_(std::move(client)) {}
  std::vector<std::pair<std::string, std::string>> auth_headers() const;
  ApiFailure transport_failure(const Error& e) const;
  ApiFailure http_failure(int status, const std::string& body) const;

  ConnectionSettings settings_;
  HttpClient client_;
};

// Runs `command` with a client for the resolved connection and stores its exit code;
// connection errors are printed instead.
void with_api(const ConnectionFlags& flags, const Output& out, int& exit_code,
              const std::function<int(ApiClient&)>& command);

// Percent-encodes a path segment or query value.
std::string url_encode(const std::string& s);

}  // namespace novacron::cli
