// CLI commands that talk to a running host's REST API: version, login, token, node, events,
// operation. Connection settings: api_client.h.
#include <fcntl.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <iomanip>
#include <thread>

#include "host/cli/api_client.h"
#include "host/cli/commands.h"
#include "host/cli/progress.h"

namespace novacron::cli {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string format_time_ms(const json& ms) {
  if (!ms.is_number()) return "-";
  std::time_t t = static_cast<std::time_t>(ms.get<std::int64_t>() / 1000);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%SZ", &tm);
  return buf;
}

std::string str(const json& j, const char* key, const std::string& fallback = "-") {
  if (!j.contains(key) || j[key].is_null()) return fallback;
  return j[key].is_string() ? j[key].get<std::string>() : j[key].dump();
}

std::string labels_text(const json& labels) {
  std::string out;
  if (!labels.is_object()) return "-";
  for (const auto& [k, v] : labels.items()) out += (out.empty() ? "" : ",") + k + "=" + v.get<std::string>();
  return out.empty() ? "-" : out;
}

}  // namespace

tl::expected<json, ApiFailure> fetch_all(ApiClient& api, const std::string& path) {
  json all = json::array();
  std::string cursor;
  for (;;) {
    const char* sep = path.find('?') == std::string::npos ? "?" : "&";
    auto page = api.call("GET", path + sep + "limit=1000" + (cursor.empty() ? "" : "&cursor=" + url_encode(cursor)));
    if (!page) return tl::unexpected(page.error());
    for (auto& item : (*page)["items"]) all.push_back(std::move(item));
    if (!page->contains("next_cursor") || (*page)["next_cursor"].is_null()) return all;
    cursor = (*page)["next_cursor"].get<std::string>();
  }
}

bool operation_finished(const json& op) { return op.value("state", "running") != "running"; }

// Polls the operation until it ends (with a progress bar on a terminal) or `timeout_s`
// passes; prints the outcome. 0 when it succeeded.
int wait_for_operation(ApiClient& api, const Output& out, json op, double timeout_s) {
  const std::string id = op.value("id", "");
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(static_cast<long>(timeout_s * 1000));
  {
    ProgressBar bar(!out.json);
    while (!operation_finished(op)) {
      bar.update(op.value("progress", 0.0),
                 op.value("kind", "") + " " + op.value("object", "") + ": " + op.value("message", "running"));
      if (std::chrono::steady_clock::now() >= deadline) {
        bar.finish();
        return out.error("timeout",
                         "operation " + id + " is still running after " + std::to_string(int(timeout_s)) + " s",
                         "wait longer: novacron operation wait " + id + " --wait-timeout SECONDS");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      auto next = api.call("GET", "/v1/operations/" + url_encode(id));
      if (!next) {
        bar.finish();
        return ApiClient::fail(out, next.error());
      }
      op = std::move(*next);
    }
    if (op.value("state", "") == "succeeded") bar.update(1.0, op.value("kind", "") + " " + op.value("object", ""));
  }
  const std::string state = op.value("state", "");
  const int code = state == "succeeded" ? 0 : 1;
  if (out.json) return out.emit_json(op, code);
  if (code == 0) {
    std::cout << "operation " << id << " (" << op.value("kind", "") << " " << op.value("object", "") << ") succeeded\n";
    return 0;
  }
  std::string why = op.contains("error") ? op["error"].value("message", "") : op.value("message", "");
  return out.error(op.contains("error") ? op["error"].value("code", state) : state,
                   "operation " + id + " " + state + ": " + why,
                   state == "interrupted" ? "novacrond restarted while it ran; start it again" : "");
}

void print_operation(const json& op) {
  std::cout << "ID          " << str(op, "id") << "\n"
            << "Kind        " << str(op, "kind") << "\n"
            << "Object      " << str(op, "object") << "\n"
            << "State       " << str(op, "state") << "\n"
            << "Progress    " << static_cast<int>(op.value("progress", 0.0) * 100) << "%\n"
            << "Message     " << str(op, "message", "") << "\n"
            << "Requested   " << str(op, "requested_by") << " at " << format_time_ms(op["created_at_ms"]) << "\n"
            << "Updated     " << format_time_ms(op["updated_at_ms"]) << "\n";
  if (op.contains("error"))
    std::cout << "Error       " << op["error"].value("code", "") << ": " << op["error"].value("message", "") << "\n";
  if (op.contains("result")) std::cout << "Result      " << op["result"].dump() << "\n";
}

namespace {

// Reads a token from the terminal without echo (or a line from a pipe).
std::string prompt_token() {
  bool tty = ::isatty(STDIN_FILENO) == 1;
  termios old{};
  if (tty) {
    std::cerr << "Token: " << std::flush;
    ::tcgetattr(STDIN_FILENO, &old);
    termios quiet = old;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    ::tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
  }
  std::string token;
  std::getline(std::cin, token);
  if (tty) {
    ::tcsetattr(STDIN_FILENO, TCSANOW, &old);
    std::cerr << "\n";
  }
  while (!token.empty() && (token.back() == '\r' || token.back() == ' ')) token.pop_back();
  return token;
}

// Writes the CLI config with mode 0600 (temporary file, then rename).
Expected<void> write_cli_config(const fs::path& path, const json& content) {
  std::error_code ec;
  fs::create_directories(path.parent_path(), ec);
  if (ec) return make_error("io", path.parent_path().string() + ": " + ec.message());
  fs::path tmp = path.string() + ".tmp";
  ::unlink(tmp.c_str());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) return make_error("io", tmp.string() + ": " + std::strerror(errno));
  std::string text = content.dump(2) + "\n";
  bool ok = ::fchmod(fd, 0600) == 0 && ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
            ::fsync(fd) == 0;
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) {
    ::unlink(tmp.c_str());
    return make_error("io", path.string() + ": cannot write");
  }
  return {};
}

void add_version(CLI::App& app, Output& out, int& exit_code, ConnectionFlags& flags) {
  auto* cmd = app.add_subcommand("version", "Versions of this CLI and of the host it talks to");
  cmd->callback([&out, &exit_code, &flags] {
    json client = {{"version", NOVACRON_VERSION}, {"sdk_version", NOVACRON_SDK_VERSION}};
    if (!out.json) std::cout << "client: novacron " << NOVACRON_VERSION << " (SDK " << NOVACRON_SDK_VERSION << ")\n";
    with_api(flags, out, exit_code, [&](ApiClient& api) {
      auto self = api.call("GET", "/v1/nodes/self");
      if (!self) {
        if (out.json) {
          return out.emit_json({{"client", client},
                                {"server", nullptr},
                                {"error", {{"code", self.error().code}, {"message", self.error().message}}}},
                               1);
        }
        return ApiClient::fail(out, self.error());
      }
      if (out.json) return out.emit_json({{"client", client}, {"server", *self}});
      std::cout << "server: novacrond " << str(*self, "version") << " (SDK " << str(*self, "sdk_version")
                << ") on node " << str(*self, "name") << " at " << api.settings().url << "\n";
      return 0;
    });
  });
}

void add_login(CLI::App& app, Output& out, int& exit_code, ConnectionFlags& flags) {
  auto* cmd = app.add_subcommand(
      "login", "Check a host URL and token, then save them (and --ca, --server-name) in the CLI config (mode 0600)");
  cmd->callback([&out, &exit_code, &flags] {
    ConnectionFlags f = flags;
    // A token from a flag, the environment or the existing config is used as is; only
    // without one is it asked for.
    auto resolved = resolve_connection(f);
    if (resolved && resolved->token.empty()) f.token = prompt_token();
    if (resolved && resolved->token.empty() && f.token.empty()) {
      exit_code = out.error("usage", "no token given", "pass --token-file FILE, set NOVACRON_TOKEN or type it");
      return;
    }
    with_api(f, out, exit_code, [&](ApiClient& api) {
      auto self = api.call("GET", "/v1/nodes/self");
      if (!self) return ApiClient::fail(out, self.error());
      const ConnectionSettings& s = api.settings();
      auto absolute = [](const std::string& p) { return fs::absolute(p).lexically_normal().string(); };
      // A token that lives in a file stays there: the config refers to the file.
      json saved = {{"url", s.url}};
      if (!f.token_file.empty()) {
        saved["token_file"] = absolute(f.token_file);
      } else {
        saved["token"] = s.token;
      }
      if (!s.ca.empty()) saved["ca"] = absolute(s.ca);
      if (!s.server_name.empty()) saved["server_name"] = s.server_name;
      if (!s.cert.empty()) saved["cert"] = absolute(s.cert);
      if (!s.key.empty()) saved["key"] = absolute(s.key);
      fs::path path = cli_config_path();
      if (auto w = write_cli_config(path, saved); !w) return out.error(w.error().code, w.error().message);
      if (out.json) return out.emit_json({{"config", path.string()}, {"url", s.url}, {"node", (*self)["name"]}});
      std::cout << "logged in to node " << str(*self, "name") << " at " << s.url << "; saved in " << path.string()
                << "\n";
      return 0;
    });
  });
}

void add_token(CLI::App& app, Output& out, int& exit_code, ConnectionFlags& flags) {
  auto* token = app.add_subcommand("token", "Create, list and revoke API tokens (admin)");
  token->require_subcommand(1);
  {
    auto* cmd = token->add_subcommand("create", "Create a token; its secret is shown once");
    auto name = std::make_shared<std::string>();
    auto role = std::make_shared<std::string>("reader");
    cmd->add_option("NAME", *name, "Label, e.g. ci-pipeline")->required();
    cmd->add_option("--role", *role, "reader (read-only) or admin")->check(CLI::IsMember({"reader", "admin"}));
    cmd->callback([&out, &exit_code, &flags, name, role] {
      with_api(flags, out, exit_code, [&](ApiClient& api) {
        auto r = api.call("POST", "/v1/tokens", json{{"name", *name}, {"role", *role}}.dump());
        if (!r) return ApiClient::fail(out, r.error());
        if (out.json) return out.emit_json(*r);
        std::cout << "token " << str(*r, "id") << " (" << *name << ", " << *role << ") created:\n"
                  << str(*r, "token") << "\n"
                  << "It is shown only now: store it (e.g. NOVACRON_TOKEN, or a 0600 file for --token-file).\n";
        return 0;
      });
    });
  }
  {
    auto* cmd = token->add_subcommand("list", "List live tokens (never their secrets)");
    cmd->callback([&out, &exit_code, &flags] {
      with_api(flags, out, exit_code, [&](ApiClient& api) {
        auto all = fetch_all(api, "/v1/tokens");
        if (!all) return ApiClient::fail(out, all.error());
        if (out.json) return out.emit_json({{"items", *all}});
        std::vector<std::vector<std::string>> rows;
        for (const auto& t : *all) {
          std::string roles;
          for (const auto& r : t["roles"]) roles += (roles.empty() ? "" : ",") + r.get<std::string>();
          rows.push_back({str(t, "id"), str(t, "name"), roles,
                          format_time_ms(json(t.value("created_at", std::int64_t{0}) * 1000))});
        }
        print_table({"ID", "NAME", "ROLES", "CREATED"}, rows);
        return 0;
      });
    });
  }
  {
    auto* cmd = token->add_subcommand("revoke", "Revoke a token; it is refused from the next request");
    auto id = std::make_shared<std::string>();
    cmd->add_option("ID", *id, "Token id (novacron token list)")->required();
    cmd->callback([&out, &exit_code, &flags, id] {
      with_api(flags, out, exit_code, [&](ApiClient& api) {
        auto r = api.call("DELETE", "/v1/tokens/" + url_encode(*id));
        if (!r) return ApiClient::fail(out, r.error());
        if (out.json) return out.emit_json(*r);
        std::cout << "token " << *id << " revoked\n";
        return 0;
      });
    });
  }
}

void add_node(CLI::App& app, Output& out, int& exit_code, ConnectionFlags& flags) {
  auto* node = app.add_subcommand("node", "Nodes of the cluster");
  node->require_subcommand(1);
  auto* show = node->add_subcommand("show", "This node: name, version, addresses, labels, capacity");
  show->callback([&out, &exit_code, &flags] {
    with_api(flags, out, exit_code, [&](ApiClient& api) {
      auto self = api.call("GET", "/v1/nodes/self");
      if (!self) return ApiClient::fail(out, self.error());
      if (out.json) return out.emit_json(*self);
      std::cout << "Name        " << str(*self, "name") << "\n"
                << "Version     novacrond " << str(*self, "version") << " (SDK " << str(*self, "sdk_version") << ")\n"
                << "API         " << str(*self, "api_url") << (self->value("mutual_tls", false) ? " (mutual TLS)" : "")
                << "\n"
                << "Transport   " << str(*self, "transport") << "\n"
                << "Labels      " << labels_text((*self)["labels"]) << "\n"
                << "Capacity    " << (*self)["capacity"].dump() << "\n"
                << "Started     " << format_time_ms((*self)["started_at_ms"]) << "\n";
      auto drivers = api.call("GET", "/v1/nodes/self/drivers");
      if (drivers && !(*drivers)["items"].empty()) {
        std::cout << "\n";
        std::vector<std::vector<std::string>> rows;
        for (const auto& d : (*drivers)["items"]) {
          std::string state = d.value("available", false) ? "available" : "unavailable";
          if (d["error"].is_object()) state += ": " + d["error"].value("message", "");
          std::string res = d["resources"].is_object()
                                ? std::to_string(d["resources"].value("cpus", 0)) + " cpus, " +
                                      std::to_string(d["resources"].value("memory_total_mib", 0)) + " MiB, " +
                                      d["resources"].value("hypervisor", "")
                                : "-";
          rows.push_back({str(d, "name"), str(d, "plugin"), state, res});
        }
        print_table({"DRIVER", "PLUGIN", "STATE", "RESOURCES"}, rows);
      }
      return 0;
    });
  });
  auto* cmd = node->add_subcommand("list", "This node and its peers, with reachability over mutual TLS");
  cmd->callback([&out, &exit_code, &flags] {
    with_api(flags, out, exit_code, [&](ApiClient& api) {
      auto all = fetch_all(api, "/v1/nodes");
      if (!all) return ApiClient::fail(out, all.error());
      if (out.json) return out.emit_json({{"items", *all}});
      std::vector<std::vector<std::string>> rows;
      for (const auto& n : *all) {
        std::string name = str(n, "name") + (n.value("self", false) ? " (this node)" : "");
        std::string detail = n.contains("error") && n["error"].is_object() ? n["error"].value("message", "")
                             : n.contains("latency_ms") && n["latency_ms"].is_number()
                                 ? std::to_string(int(n["latency_ms"].get<double>())) + " ms"
                                 : "";
        rows.push_back({name, str(n, "state"), str(n, "api_url"), str(n, "transport"), labels_text(n["labels"]),
                        str(n, "version"), detail});
      }
      print_table({"NAME", "STATE", "API", "TRANSPORT", "LABELS", "VERSION", "DETAIL"}, rows);
      return 0;
    });
  });
}

// Prints one event message: NDJSON with --json, a line for people otherwise.
void print_event(const Output& out, const json& e) {
  if (out.json) {
    std::cout << e.dump() << std::endl;
    return;
  }
  std::cout << std::left << std::setw(8) << e.value("seq", 0) << " " << format_time_ms(e["time_ms"]) << "  "
            << std::setw(26) << e.value("type", "") << " " << std::setw(40) << e.value("object", "") << " "
            << (e.contains("payload") ? e["payload"].dump() : "") << std::endl;
}

void add_events(CLI::App& app, Output& out, int& exit_code, ConnectionFlags& flags) {
  auto* cmd = app.add_subcommand("events", "Show the host's events (--follow: keep streaming; --json: one per line)");
  auto follow = std::make_shared<bool>(false);
  auto since = std::make_shared<std::string>();
  auto types = std::make_shared<std::string>();
  auto object = std::make_shared<std::string>();
  cmd->add_flag("-f,--follow", *follow, "Keep streaming new events until interrupted");
  cmd->add_option("--since", *since,
                  "Start after this sequence number (default: every event still kept; with --follow: from now)");
  cmd->add_option("--type", *types, "Comma-separated types; a trailing dot matches a prefix (plugin.,operation.)");
  cmd->add_option("--object", *object, "Only events about this object, e.g. plugin/io.novacron.auth.token");
  cmd->callback([&out, &exit_code, &flags, follow, since, types, object] {
    with_api(flags, out, exit_code, [&](ApiClient& api) {
      std::string query = "?bookmark=" + std::string(*follow ? "false" : "true");
      if (!since->empty()) {
        query += "&since=" + url_encode(*since);
      } else if (!*follow) {
        query += "&since=earliest";
      }
      if (!types->empty()) query += "&type=" + url_encode(*types);
      if (!object->empty()) query += "&object=" + url_encode(*object);
      auto ws = api.events(query);
      if (!ws) {
        ApiFailure f = ws.error();
        if (f.code == "too_old") f.hint = "resynchronise: novacron events --since earliest";
        return ApiClient::fail(out, f);
      }
      for (;;) {
        auto msg = (*ws)->read();
        if (!msg) {
          if (msg.error().message.find("too_old") != std::string::npos) {
            return out.error("too_old", msg.error().message, "resynchronise: novacron events --since earliest");
          }
          return out.error(msg.error().code, msg.error().message, "reconnect with --since LAST_SEQ to resume");
        }
        json e = json::parse(*msg, nullptr, false);
        if (!e.is_object()) continue;
        if (e.value("type", "") == "stream.bookmark") return 0;  // every retained event has been shown
        print_event(out, e);
      }
    });
  });
}

void add_operation(CLI::App& app, Output& out, int& exit_code, ConnectionFlags& flags) {
  auto* operation = app.add_subcommand("operation", "Long-running operations: show, wait for, cancel, list");
  operation->require_subcommand(1);
  {
    auto* cmd = operation->add_subcommand("list", "Operations, oldest first");
    cmd->callback([&out, &exit_code, &flags] {
      with_api(flags, out, exit_code, [&](ApiClient& api) {
        auto all = fetch_all(api, "/v1/operations");
        if (!all) return ApiClient::fail(out, all.error());
        if (out.json) return out.emit_json({{"items", *all}});
        std::vector<std::vector<std::string>> rows;
        for (const auto& op : *all) {
          rows.push_back({str(op, "id"), str(op, "kind"), str(op, "object"), str(op, "state"),
                          std::to_string(static_cast<int>(op.value("progress", 0.0) * 100)) + "%",
                          format_time_ms(op["created_at_ms"])});
        }
        print_table({"ID", "KIND", "OBJECT", "STATE", "PROGRESS", "CREATED"}, rows);
        return 0;
      });
    });
  }
  {
    auto* cmd = operation->add_subcommand("show", "State, progress, result or error of an operation");
    auto id = std::make_shared<std::string>();
    cmd->add_option("ID", *id, "Operation id")->required();
    cmd->callback([&out, &exit_code, &flags, id] {
      with_api(flags, out, exit_code, [&](ApiClient& api) {
        auto op = api.call("GET", "/v1/operations/" + url_encode(*id));
        if (!op) return ApiClient::fail(out, op.error());
        if (out.json) return out.emit_json(*op);
        print_operation(*op);
        return 0;
      });
    });
  }
  {
    auto* cmd = operation->add_subcommand("wait", "Wait for an operation to end, with a progress bar");
    auto id = std::make_shared<std::string>();
    auto timeout = std::make_shared<double>(600);
    cmd->add_option("ID", *id, "Operation id")->required();
    cmd->add_option("--wait-timeout", *timeout, "Give up after this many seconds (default 600)")
        ->check(CLI::PositiveNumber);
    cmd->callback([&out, &exit_code, &flags, id, timeout] {
      with_api(flags, out, exit_code, [&](ApiClient& api) {
        auto op = api.call("GET", "/v1/operations/" + url_encode(*id));
        if (!op) return ApiClient::fail(out, op.error());
        return wait_for_operation(api, out, *op, *timeout);
      });
    });
  }
  {
    auto* cmd = operation->add_subcommand("cancel", "Ask a running operation to stop");
    auto id = std::make_shared<std::string>();
    cmd->add_option("ID", *id, "Operation id")->required();
    cmd->callback([&out, &exit_code, &flags, id] {
      with_api(flags, out, exit_code, [&](ApiClient& api) {
        auto op = api.call("POST", "/v1/operations/" + url_encode(*id) + "/cancel");
        if (!op) return ApiClient::fail(out, op.error());
        if (out.json) return out.emit_json(*op);
        std::cout << "cancel requested for operation " << *id << " (state " << str(*op, "state")
                  << "); follow it with: novacron operation wait " << *id << "\n";
        return 0;
      });
    });
  }
}

}  // namespace

void add_api_commands(CLI::App& app, Output& out, int& exit_code, ConnectionFlags& flags) {
  add_version(app, out, exit_code, flags);
  add_login(app, out, exit_code, flags);
  add_token(app, out, exit_code, flags);
  add_node(app, out, exit_code, flags);
  add_events(app, out, exit_code, flags);
  add_operation(app, out, exit_code, flags);
}

}  // namespace novacron::cli
