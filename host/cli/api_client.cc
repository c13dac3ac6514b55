#include "host/cli/api_client.h"

#include <sys/stat.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

namespace novacron::cli {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr const char* kDefaultUrl = "http://127.0.0.1:8470";

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr ? "" : v;
}

Expected<std::string> read_token_file(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && (st.st_mode & 077) != 0) {
    return make_error("token_unreadable",
                      path + " is readable by group or others; a token file must not be: run chmod 600 " + path);
  }
  std::ifstream in(path);
  if (!in) return make_error("token_unreadable", path + ": cannot read the token file");
  std::string token;
  std::getline(in, token);
  while (!token.empty() && (token.back() == '\r' || token.back() == ' ')) token.pop_back();
  if (token.empty()) return make_error("token_unreadable", path + ": the token file is empty");
  return token;
}

// The CLI config file, or an empty object when there is none.
Expected<json> load_cli_config(const fs::path& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) return json::object();
  std::ifstream in(path);
  if (!in) return make_error("cli_config", path.string() + ": cannot read");
  std::stringstream ss;
  ss << in.rdbuf();
  json j = json::parse(ss.str(), nullptr, false, /*ignore_comments=*/true);
  if (j.is_discarded() || !j.is_object()) return make_error("cli_config", path.string() + ": not a JSON object");
  for (const auto& [key, value] : j.items()) {
    static const std::set<std::string> kKnown = {"url", "token", "token_file", "ca", "server_name", "cert", "key"};
    if (kKnown.count(key) == 0) return make_error("cli_config", path.string() + ": /" + key + ": unknown key");
    if (!value.is_string()) return make_error("cli_config", path.string() + ": /" + key + ": expected a string");
  }
  struct stat st {};
  if (j.contains("token") && ::stat(path.c_str(), &st) == 0 && (st.st_mode & 077) != 0) {
    return make_error(
        "cli_config",
        path.string() + " holds a token but is readable by group or others; run chmod 600 " + path.string());
  }
  return j;
}

}  // namespace

void add_connection_flags(CLI::App& app, ConnectionFlags& flags) {
  const char* group = "Connection (also NOVACRON_URL, NOVACRON_TOKEN, NOVACRON_CA, ~/.config/novacron/cli.json)";
  app.add_option("--url", flags.url, "Host API URL, e.g. https://node-1:8470")->group(group)->configurable(false);
  app.add_option("--token", flags.token, "API token (prefer NOVACRON_TOKEN or --token-file: flags show in ps)")
      ->group(group);
  app.add_option("--token-file", flags.token_file, "File holding the API token")->group(group);
  app.add_option("--ca", flags.ca, "CA certificate (PEM) that issued the host's TLS certificate")->group(group);
  app.add_option("--server-name", flags.server_name, "Name the host's certificate must carry (default: URL host)")
      ->group(group);
  app.add_option("--cert", flags.cert, "Client certificate (PEM) for mutual TLS")->group(group);
  app.add_option("--key", flags.key, "Key of --cert")->group(group);
  app.add_option("--timeout", flags.timeout_seconds, "Seconds to wait for each API answer (default 30)")
      ->group(group)
      ->check(CLI::Range(0.1, 3600.0));
}

fs::path cli_config_path() {
  if (auto p = env("NOVACRON_CLI_CONFIG"); !p.empty()) return p;
  if (auto x = env("XDG_CONFIG_HOME"); !x.empty()) return fs::path(x) / "novacron/cli.json";
  return fs::path(env("HOME")) / ".config/novacron/cli.json";
}

Expected<ConnectionSettings> resolve_connection(const ConnectionFlags& flags) {
  fs::path config_path = cli_config_path();
  auto file = load_cli_config(config_path);
  if (!file) return tl::unexpected(file.error());
  auto pick = [&](const std::string& flag, const char* env_name, const char* key) -> std::string {
    if (!flag.empty()) return flag;
    if (env_name != nullptr && !env(env_name).empty()) return env(env_name);
    return file->value(key, "");
  };
  ConnectionSettings s;
  s.url = pick(flags.url, "NOVACRON_URL", "url");
  if (s.url.empty()) s.url = kDefaultUrl;
  s.ca = pick(flags.ca, "NOVACRON_CA", "ca");
  s.server_name = pick(flags.server_name, nullptr, "server_name");
  s.cert = pick(flags.cert, nullptr, "cert");
  s.key = pick(flags.key, nullptr, "key");
  s.timeout_seconds = flags.timeout_seconds;

  // The token: --token, --token-file, NOVACRON_TOKEN, then the file's token or token_file.
  if (!flags.token.empty()) {
    s.token = flags.token;
    s.token_source = "--token";
  } else if (!flags.token_file.empty()) {
    auto t = read_token_file(flags.token_file);
    if (!t) return tl::unexpected(t.error());
    s.token = *t;
    s.token_source = "--token-file " + flags.token_file;
  } else if (!env("NOVACRON_TOKEN").empty()) {
    s.token = env("NOVACRON_TOKEN");
    s.token_source = "NOVACRON_TOKEN";
  } else if (file->contains("token")) {
    s.token = (*file)["token"];
    s.token_source = config_path.string();
  } else if (file->contains("token_file")) {
    auto t = read_token_file((*file)["token_file"]);
    if (!t) return tl::unexpected(t.error());
    s.token = *t;
    s.token_source = (*file)["token_file"].get<std::string>();
  }
  if (!s.cert.empty() && s.key.empty()) return make_error("usage", "--cert needs --key");
  return s;
}

std::optional<ApiClient> ApiClient::connect(const ConnectionFlags& flags, const Output& out, int& exit_code) {
  auto settings = resolve_connection(flags);
  if (!settings) {
    exit_code = out.error(settings.error().code, settings.error().message);
    return std::nullopt;
  }
  HttpClientOptions o;
  o.base_url = settings->url;
  o.ca_file = settings->ca;
  o.server_name = settings->server_name;
  o.cert_file = settings->cert;
  o.key_file = settings->key;
  o.timeout = std::chrono::milliseconds(static_cast<long>(settings->timeout_seconds * 1000));
  auto client = HttpClient::create(o);
  if (!client) {
    std::string hint = client.error().code == "bad_url" ? "set --url or NOVACRON_URL, e.g. https://node-1:8470" : "";
    exit_code = out.error(client.error().code, client.error().message, hint);
    return std::nullopt;
  }
  return ApiClient(std::move(*settings), std::move(*client));
}

std::vector<std::pair<std::string, std::string>> ApiClient::auth_headers() const {
  if (settings_.token.empty()) return {};
  return {{"Authorization", "Bearer " + settings_.token}};
}

ApiFailure ApiClient::transport_failure(const Error& e) const {
  ApiFailure f{e.code, e.message, "", 0};
  const std::string& url = settings_.url;
  if (e.code == "connect_failed" || e.code == "timeout") {
    f.hint = "is novacrond running at " + url + "? set --url or NOVACRON_URL (or run novacron login)";
  } else if ((e.code == "connection_lost" || e.code == "protocol_error") && url.rfind("http://", 0) == 0) {
    f.hint = "if the host serves TLS, use https:// in --url or NOVACRON_URL";
  } else if (e.code == "untrusted_certificate") {
    f.hint = "give the CA that issued the host's certificate: --ca FILE or NOVACRON_CA (the cluster's ca.crt)";
  } else if (e.code == "name_mismatch") {
    f.hint = "connect with a name the certificate carries, or set --server-name NODE to the host's node name";
  } else if (e.code == "tls_failed") {
    f.hint = "is " + url + " a TLS listener? a certificate from another CA is refused (--cert/--key)";
  }
  return f;
}

ApiFailure ApiClient::http_failure(int status, const std::string& body) const {
  ApiFailure f{"http_" + std::to_string(status), "HTTP " + std::to_string(status), "", status};
  json j = json::parse(body, nullptr, false);
  if (j.is_object() && j.contains("error") && j["error"].is_object()) {
    f.code = j["error"].value("code", f.code);
    f.message = j["error"].value("message", f.message);
    f.body = j;
  }
  if (f.body.contains("placement") && f.body["placement"].is_object() && f.body["placement"].contains("id")) {
    f.hint = "every node's reason: novacron schedule show " + f.body["placement"]["id"].get<std::string>();
  }
  if (status == 401) {
    f.hint = settings_.token.empty()
                 ? "no token: set NOVACRON_TOKEN or run novacron login"
                 : "the token from " + settings_.token_source +
                       " was refused (revoked or mistyped): set NOVACRON_TOKEN or run novacron login";
  } else if (status == 403) {
    f.hint = "this needs an admin token (an admin can create one: novacron token create NAME --role admin)";
  } else if (status == 409 && f.code == "conflict") {
    // "<object> is busy with operation <id> (<kind>); ..."
    std::string id = "ID";
    if (auto at = f.message.find("operation "); at != std::string::npos) {
      id = f.message.substr(at + 10, f.message.find(' ', at + 10) - (at + 10));
    }
    f.hint = "wait for it: novacron operation wait " + id + " (or cancel it: novacron operation cancel " + id + ")";
  }
  return f;
}

tl::expected<json, ApiFailure> ApiClient::call(const std::string& method, const std::string& target,
                                               const std::string& body, const std::string& content_type) {
  auto headers = auth_headers();
  if (!body.empty()) headers.emplace_back("Content-Type", content_type);
  auto r = client_.request(method, target, body, headers);
  if (!r) return tl::unexpected(transport_failure(r.error()));
  if (r->status < 200 || r->status >= 300) return tl::unexpected(http_failure(r->status, r->body));
  if (r->body.empty()) return json::object();
  json j = json::parse(r->body, nullptr, false);
  if (j.is_discarded()) {
    return tl::unexpected(ApiFailure{"protocol_error", settings_.url + target + ": the answer is not JSON",
                                     "is --url a NovaCron host?", r->status});
  }
  return j;
}

tl::expected<HttpClientResponse, ApiFailure> ApiClient::raw(const std::string& method, const std::string& target) {
  auto r = client_.request(method, target, "", auth_headers());
  if (!r) return tl::unexpected(transport_failure(r.error()));
  if (r->status < 200 || r->status >= 300) return tl::unexpected(http_failure(r->status, r->body));
  return std::move(*r);
}

tl::expected<std::unique_ptr<WebSocketConnection>, ApiFailure> ApiClient::events(const std::string& query) {
  auto ws = client_.websocket("/v1/events" + query, auth_headers());
  if (ws) return std::move(*ws);
  const Error& e = ws.error();
  if (e.code.rfind("http_", 0) == 0) {
    return tl::unexpected(http_failure(static_cast<int>(std::strtol(e.code.c_str() + 5, nullptr, 10)), e.message));
  }
  return tl::unexpected(transport_failure(e));
}

int ApiClient::fail(const Output& out, const ApiFailure& f) { return out.error(f.code, f.message, f.hint); }

void with_api(const ConnectionFlags& flags, const Output& out, int& exit_code,
              const std::function<int(ApiClient&)>& command) {
  auto client = ApiClient::connect(flags, out, exit_code);
  if (client) exit_code = command(*client);
}

std::string url_encode(const std::string& s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    }
  }
  return out;
}

}  // namespace novacron::cli
