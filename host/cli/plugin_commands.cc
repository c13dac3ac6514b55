#include <fstream>
#include <functional>
#include <memory>

#include "host/cli/commands.h"
#include "host/common/sha256.h"
#include "host/config/host_config.h"
#include "host/daemon/data_dir.h"
#include "host/plugins/boot_guard.h"
#include "host/plugins/installer.h"
#include "host/plugins/package_check.h"
#include "host/plugins/plugin_catalog.h"
#include "host/state/schema.h"

namespace novacron::cli {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

const char* outcome_name(CheckVerdict::Outcome o) {
  switch (o) {
    case CheckVerdict::Outcome::kPass:
      return "pass";
    case CheckVerdict::Outcome::kFail:
      return "FAIL";
    case CheckVerdict::Outcome::kSkip:
      return "skip";
  }
  return "?";
}

json report_json(const PackageReport& r) {
  json checks = json::array();
  for (const auto& c : r.checks) {
    json j = {{"check", c.name}, {"outcome", outcome_name(c.outcome)}, {"detail", c.detail}};
    if (!c.code.empty()) j["code"] = c.code;
    checks.push_back(j);
  }
  json out = {{"path", r.library.empty() ? r.folder.string() : r.library.string()},
              {"verdict", r.ok() ? "valid" : "invalid"},
              {"checks", checks}};
  if (r.manifest) {
    out["manifest"] = {{"id", r.manifest->id},
                       {"version", r.manifest->version},
                       {"kind", r.manifest->kind},
                       {"sdk_version", r.manifest->sdk_version},
                       {"description", r.manifest->description},
                       {"license", r.manifest->license},
                       {"config_keys", json::parse(r.manifest->config_keys_json, nullptr, false)}};
  }
  if (!r.sha256.empty()) out["sha256"] = r.sha256;
  return out;
}

void print_report(const PackageReport& r) {
  if (r.manifest) {
    std::cout << "Plugin      " << r.manifest->id << " " << r.manifest->version << "\n"
              << "Kind        " << r.manifest->kind << "\n"
              << "SDK         " << r.manifest->sdk_version << "\n"
              << "License     " << r.manifest->license << "\n"
              << "Description " << r.manifest->description << "\n";
    json keys = json::parse(r.manifest->config_keys_json, nullptr, false);
    if (keys.is_array() && !keys.empty()) {
      std::cout << "Config keys\n";
      for (const auto& k : keys) {
        std::cout << "  " << k.value("name", "?") << " (" << k.value("type", "?") << ", default "
                  << (k.contains("default") ? k["default"].dump() : "none") << "): " << k.value("description", "")
                  << "\n";
      }
    }
    std::cout << "\n";
  }
  std::vector<std::vector<std::string>> rows;
  for (const auto& c : r.checks) rows.push_back({outcome_name(c.outcome), c.name, c.detail});
  print_table({"RESULT", "CHECK", "DETAIL"}, rows);
  std::cout << "\nverdict: " << (r.ok() ? "valid" : "INVALID") << "\n";
}

struct HostLocation {
  std::string config_file;
  std::string data_dir;
  std::vector<std::string> trusted_keys;
  bool require_signature = false;
};

// Resolves the data dir and trust settings from --config and/or --data-dir.
Expected<HostConfig> resolve_host(const HostLocation& loc) {
  HostConfig cfg;
  if (!loc.config_file.empty()) {
    auto loaded = load_host_config(loc.config_file);
    if (!loaded) return loaded;
    cfg = *loaded;
  } else if (loc.data_dir.empty()) {
    return make_error("usage", "give --data-dir DIR or --config FILE");
  }
  if (!loc.data_dir.empty()) cfg.data_dir = fs::absolute(loc.data_dir).lexically_normal();
  for (const auto& k : loc.trusted_keys) cfg.trusted_keys.push_back(fs::absolute(k));
  cfg.require_signatures = cfg.require_signatures || loc.require_signature;
  return cfg;
}

void add_host_location(CLI::App* cmd, HostLocation& loc) {
  cmd->add_option("--data-dir", loc.data_dir, "Data dir of a stopped host");
  cmd->add_option("--config", loc.config_file, "Host config (for its data dir and trusted keys)");
}

// Opens the catalog of a stopped host (takes the data dir's lock).
struct OfflineHost {
  DataDirLock lock;
  std::unique_ptr<Database> db;
};
Expected<OfflineHost> open_offline(const fs::path& data_dir) {
  auto lock = DataDirLock::acquire(data_dir);
  if (!lock) return tl::unexpected(lock.error());
  auto db = open_host_database(data_dir);
  if (!db) return tl::unexpected(db.error());
  return OfflineHost{std::move(*lock), std::move(*db)};
}

int offline_error(const Output& out, const Error& e) {
  if (e.code == "data_dir_locked") {
    return out.error(e.code, e.message, "stop novacrond first, or use the REST API of the running host");
  }
  return out.error(e.code, e.message);
}

// Resolves the host from --config/--data-dir, takes its data dir lock, opens its state and
// runs `command`, which returns the exit code; errors on the way are printed.
int with_offline_host(const HostLocation& loc, const Output& out,
                      const std::function<int(const HostConfig&, OfflineHost&)>& command) {
  auto cfg = resolve_host(loc);
  if (!cfg) return out.error(cfg.error().code, cfg.error().message);
  auto host = open_offline(cfg->data_dir);
  if (!host) return offline_error(out, host.error());
  return command(*cfg, *host);
}

int install(const Output& out, const HostConfig& cfg, OfflineHost& host, const std::string& path) {
  auto keys = TrustedKeys::load(cfg.trusted_keys);
  if (!keys) return out.error(keys.error().code, keys.error().message);
  PluginCatalog catalog(*host.db);
  InstallOptions options;
  options.plugins_dir = cfg.data_dir / "plugins";
  options.staging_dir = cfg.data_dir / "tmp";
  options.checks.inspect_helper = default_inspect_helper();
  options.checks.trusted_keys = &*keys;
  options.checks.require_signature = cfg.require_signatures;
  auto result = install_plugin(path, options, catalog);
  if (!result) {
    return out.error(result.error().code, result.error().message, "`novacron plugin validate PATH` shows every check");
  }
  const CatalogEntry& e = result->entry;
  if (out.json) {
    return out.emit_json(
        {{"installed",
          {{"id", e.id}, {"version", e.version}, {"kind", e.kind}, {"dir", e.dir}, {"sha256", e.sha256}}}});
  }
  std::cout << "installed " << e.id << " " << e.version << " (" << e.kind << ") into " << e.dir << "\npinned sha256 "
            << e.sha256 << "\n";
  return 0;
}

int list(const Output& out, OfflineHost& host) {
  PluginCatalog catalog(*host.db);
  auto entries = catalog.list();
  if (!entries) return out.error(entries.error().code, entries.error().message);

  json arr = json::array();
  std::vector<std::vector<std::string>> rows;
  for (const auto& e : *entries) {
    auto st = catalog.state(e.id);
    std::string state = st ? plugin_state_name(st->state) : "?";
    std::string reason = st ? st->reason : "";
    arr.push_back({{"id", e.id},
                   {"version", e.version},
                   {"kind", e.kind},
                   {"source", e.source},
                   {"state", state},
                   {"reason", reason},
                   {"dir", e.dir},
                   {"sha256", e.sha256}});
    rows.push_back({e.id, e.version, e.kind, e.source, state, e.sha256.substr(0, 12)});
  }
  if (out.json) return out.emit_json({{"items", arr}});  // the same key as the API lists
  print_table({"ID", "VERSION", "KIND", "SOURCE", "STATE", "SHA256"}, rows);
  return 0;
}

// enable also clears a crash marker naming the plugin: a marker left by a host that died on
// it would quarantine it again at the next start, and enabling is the operator's answer.
int set_enabled(const Output& out, const HostConfig& cfg, OfflineHost& host, const std::string& id, bool enable) {
  PluginCatalog catalog(*host.db);
  if (enable) {
    if (auto guard = BootGuard::open(cfg.data_dir / "plugin-guard"); guard) {
      auto marker = guard->read();
      if (marker && *marker && (*marker)->plugin_id == id) (void)guard->clear();
    }
  }
  auto r = catalog.set_state(id, enable ? PluginState::kEnabled : PluginState::kDisabled,
                             enable ? "" : "disabled by operator (novacron plugin disable)");
  if (!r) return out.error(r.error().code, r.error().message);
  if (out.json) return out.emit_json({{"id", id}, {"state", enable ? "enabled" : "disabled"}});
  std::cout << id << ": " << (enable ? "enabled" : "disabled") << "\n";
  return 0;
}

bool offline(const HostLocation& loc) { return !loc.data_dir.empty() || !loc.config_file.empty(); }

std::string field(const json& j, const char* key) {
  if (!j.contains(key) || j[key].is_null()) return "-";
  return j[key].is_string() ? j[key].get<std::string>() : j[key].dump();
}

int api_list(ApiClient& api, const Output& out) {
  auto all = fetch_all(api, "/v1/plugins");
  if (!all) return ApiClient::fail(out, all.error());
  if (out.json) return out.emit_json({{"items", *all}});
  std::vector<std::vector<std::string>> rows;
  for (const auto& p : *all) {
    std::string version = field(p, "version");
    if (version == "-" && p.contains("installed") && !p["installed"].empty()) {
      version = field(p["installed"].back(), "version");
    }
    std::string why = field(p, "message");
    rows.push_back({field(p, "id"), version, field(p, "kind"), field(p, "state"), field(p, "catalog_state"),
                    why == "-" || why.empty() ? "" : why});
  }
  print_table({"ID", "VERSION", "KIND", "STATE", "CATALOG", "MESSAGE"}, rows);
  return 0;
}

int api_inspect(ApiClient& api, const Output& out, const std::string& id) {
  auto p = api.call("GET", "/v1/plugins/" + url_encode(id));
  if (!p) return ApiClient::fail(out, p.error());
  if (out.json) return out.emit_json(*p);
  const json& j = *p;
  std::cout << "Plugin      " << field(j, "id") << " " << field(j, "version") << "\n"
            << "Kind        " << field(j, "kind") << " (interface " << field(j, "interface_version") << ", SDK "
            << field(j, "sdk_version") << ")\n"
            << "State       " << field(j, "state")
            << (j.value("message", "").empty() ? "" : ": " + j.value("message", "")) << "\n"
            << "Catalog     " << field(j, "catalog_state")
            << (j.contains("catalog_reason") ? " (" + field(j, "catalog_reason") + ")" : "") << "\n"
            << "Required    " << field(j, "required") << "\n";
  if (j.contains("load_ms")) {
    std::cout << "Load        " << field(j, "load_ms") << " ms (verify " << field(j, "verify_ms") << " ms, start "
              << field(j, "start_ms") << " ms)\n";
  }
  if (j.contains("dir")) std::cout << "Folder      " << field(j, "dir") << "\n";
  std::vector<std::vector<std::string>> rows;
  for (const auto& v : j.value("installed", json::array())) {
    rows.push_back({field(v, "version"), field(v, "source"), field(v, "sha256").substr(0, 16), field(v, "dir")});
  }
  if (!rows.empty()) {
    std::cout << "\n";
    print_table({"INSTALLED", "SOURCE", "SHA256", "FOLDER"}, rows);
  }
  return 0;
}

int api_install(ApiClient& api, const Output& out, const std::string& path) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    return out.error("usage", path + " is a folder; the API takes a package file",
                     "pack it: tar --zstd -cf plugin.tar.zst -C " + path +
                         " . (or install offline into a stopped host with --data-dir)");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return out.error("io", path + ": cannot read the package");
  std::string body((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto r = api.call("POST", "/v1/plugins", body, "application/octet-stream");
  if (!r) {
    ApiFailure f = r.error();
    if (f.hint.empty() && f.http_status == 400) f.hint = "`novacron plugin validate` shows every check";
    return ApiClient::fail(out, f);
  }
  if (out.json) return out.emit_json(*r);
  std::cout << "installed " << field(*r, "id") << " " << field(*r, "version") << " (" << field(*r, "kind") << ") into "
            << field(*r, "dir") << "\npinned sha256 " << field(*r, "sha256") << "\nenable it: novacron plugin enable "
            << field(*r, "id") << "\n";
  return 0;
}

int api_set_enabled(ApiClient& api, const Output& out, const std::string& id, bool enable, bool wait, double timeout) {
  auto r = api.call("POST", "/v1/plugins/" + url_encode(id) + (enable ? "/enable" : "/disable"));
  if (!r) return ApiClient::fail(out, r.error());
  json op = (*r)["operation"];
  if (!wait) {
    if (out.json) return out.emit_json(*r);
    std::cout << "operation " << field(op, "id") << " started (" << field(op, "kind") << " " << field(op, "object")
              << "); follow it with: novacron operation wait " << field(op, "id") << "\n";
    return 0;
  }
  return wait_for_operation(api, out, op, timeout);
}

}  // namespace

void add_plugin_commands(CLI::App& app, Output& out, int& exit_code, ConnectionFlags& flags) {
  auto* plugin = app.add_subcommand("plugin", "Inspect, install and manage plugins");
  plugin->require_subcommand(1);

  // validate ---------------------------------------------------------------------------
  {
    auto* cmd = plugin->add_subcommand("validate", "Check a plugin library or folder without a host, like gst-inspect");
    auto path = std::make_shared<std::string>();
    auto keys = std::make_shared<std::vector<std::string>>();
    auto require = std::make_shared<bool>(false);
    cmd->add_option("PATH", *path, "lib<name>.so or a plugin folder with plugin.json")->required();
    cmd->add_option("--trusted-key", *keys, "Ed25519 public key (PEM) to check the signature against");
    cmd->add_flag("--require-signature", *require, "Fail when the plugin is not signed");
    cmd->callback([&out, &exit_code, path, keys, require] {
      std::vector<fs::path> key_paths(keys->begin(), keys->end());
      auto trusted = TrustedKeys::load(key_paths);
      if (!trusted) {
        exit_code = out.error(trusted.error().code, trusted.error().message);
        return;
      }
      PackageCheckOptions options;
      options.inspect_helper = default_inspect_helper();
      options.trusted_keys = &*trusted;
      options.require_signature = *require;
      options.require_manifest = false;
      PackageReport report = check_plugin_package(*path, options);
      if (out.json) {
        exit_code = out.emit_json(report_json(report), report.ok() ? 0 : 1);
        return;
      }
      print_report(report);
      exit_code = report.ok() ? 0 : 1;
    });
  }

  // install ----------------------------------------------------------------------------
  {
    auto* cmd = plugin->add_subcommand(
        "install",
        "Install a .tar.zst package through the API, or a folder or package into a stopped host (--data-dir)");
    auto loc = std::make_shared<HostLocation>();
    auto path = std::make_shared<std::string>();
    add_host_location(cmd, *loc);
    cmd->add_option("--trusted-key", loc->trusted_keys, "Additional trusted Ed25519 public key (PEM), offline only");
    cmd->add_flag("--require-signature", loc->require_signature, "Refuse unsigned plugins, offline only");
    cmd->add_option("PATH", *path, "Plugin folder (offline) or .tar.zst package")->required();
    cmd->callback([&out, &exit_code, &flags, loc, path] {
      if (!offline(*loc)) {
        if (!loc->trusted_keys.empty() || loc->require_signature) {
          exit_code = out.error("usage", "--trusted-key and --require-signature apply to offline installs",
                                "a running host checks with its own plugins.trusted_keys; add --data-dir for offline");
          return;
        }
        return with_api(flags, out, exit_code, [&](ApiClient& api) { return api_install(api, out, *path); });
      }
      exit_code = with_offline_host(
          *loc, out, [&](const HostConfig& cfg, OfflineHost& host) { return install(out, cfg, host, *path); });
    });
  }

  // list -------------------------------------------------------------------------------
  {
    auto* cmd =
        plugin->add_subcommand("list", "List plugins and their state (a stopped host's catalog with --data-dir)");
    auto loc = std::make_shared<HostLocation>();
    add_host_location(cmd, *loc);
    cmd->callback([&out, &exit_code, &flags, loc] {
      if (!offline(*loc)) return with_api(flags, out, exit_code, [&](ApiClient& api) { return api_list(api, out); });
      exit_code = with_offline_host(*loc, out, [&](const HostConfig&, OfflineHost& host) { return list(out, host); });
    });
  }

  // enable / disable -------------------------------------------------------------------
  for (bool enable : {true, false}) {
    auto* cmd = plugin->add_subcommand(
        enable ? "enable" : "disable",
        enable ? "Load and start a plugin (also lifts a quarantine); waits for the operation unless --no-wait"
               : "Stop a plugin and keep it stopped across restarts; waits unless --no-wait");
    auto loc = std::make_shared<HostLocation>();
    auto id = std::make_shared<std::string>();
    auto no_wait = std::make_shared<bool>(false);
    auto timeout = std::make_shared<double>(600);
    add_host_location(cmd, *loc);
    cmd->add_option("ID", *id, "Plugin id")->required();
    cmd->add_flag("--no-wait", *no_wait, "Print the operation id and return at once");
    cmd->add_option("--wait-timeout", *timeout, "Stop waiting after this many seconds (default 600)")
        ->check(CLI::PositiveNumber);
    cmd->callback([&out, &exit_code, &flags, loc, id, enable, no_wait, timeout] {
      if (!offline(*loc)) {
        return with_api(flags, out, exit_code,
                        [&](ApiClient& api) { return api_set_enabled(api, out, *id, enable, !*no_wait, *timeout); });
      }
      exit_code = with_offline_host(*loc, out, [&](const HostConfig& cfg, OfflineHost& host) {
        return set_enabled(out, cfg, host, *id, enable);
      });
    });
  }

  // inspect / remove (API) ------------------------------------------------------------
  {
    auto* cmd = plugin->add_subcommand("inspect", "Runtime status, catalog state and installed versions of a plugin");
    auto id = std::make_shared<std::string>();
    cmd->add_option("ID", *id, "Plugin id")->required();
    cmd->callback([&out, &exit_code, &flags, id] {
      with_api(flags, out, exit_code, [&](ApiClient& api) { return api_inspect(api, out, *id); });
    });
  }
  {
    auto* cmd = plugin->add_subcommand("remove", "Remove an installed plugin version (refused while it is loaded)");
    auto id = std::make_shared<std::string>();
    auto version = std::make_shared<std::string>();
    cmd->add_option("ID", *id, "Plugin id")->required();
    cmd->add_option("VERSION", *version, "Version to remove")->required();
    cmd->callback([&out, &exit_code, &flags, id, version] {
      with_api(flags, out, exit_code, [&](ApiClient& api) {
        auto r = api.call("DELETE", "/v1/plugins/" + url_encode(*id) + "/" + url_encode(*version));
        if (!r) {
          ApiFailure f = r.error();
          if (f.code == "plugin_loaded") f.hint = "disable it first: novacron plugin disable " + *id;
          return ApiClient::fail(out, f);
        }
        if (out.json) return out.emit_json(*r);
        std::cout << "removed " << *id << " " << *version << "\n";
        return 0;
      });
    });
  }

  // sign -------------------------------------------------------------------------------
  {
    auto* cmd = plugin->add_subcommand("sign", "Write lib<name>.so.sig for a plugin folder with an Ed25519 key");
    auto key = std::make_shared<std::string>();
    auto path = std::make_shared<std::string>();
    cmd->add_option("--key", *key, "Ed25519 private key (PEM), e.g. from `openssl genpkey -algorithm ed25519`")
        ->required();
    cmd->add_option("PATH", *path, "Plugin folder with plugin.json")->required();
    cmd->callback([&out, &exit_code, key, path] {
      std::ifstream in(fs::path(*path) / "plugin.json");
      if (!in) {
        exit_code = out.error("manifest_missing", (fs::path(*path) / "plugin.json").string() + ": cannot open",
                              "PATH must be a plugin folder holding plugin.json and its library");
        return;
      }
      std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      auto m = parse_manifest(text, (fs::path(*path) / "plugin.json").string());
      if (!m) {
        exit_code = out.error(m.error().code, m.error().message);
        return;
      }
      fs::path lib = fs::path(*path) / m->library;
      auto digest = sha256_file(lib.string());
      if (!digest) {
        exit_code = out.error(digest.error().code, digest.error().message);
        return;
      }
      auto sig = sign_with_key_file(*key, plugin_signature_message(m->id, m->version, to_hex(*digest)));
      if (!sig) {
        exit_code = out.error(sig.error().code, sig.error().message);
        return;
      }
      fs::path sig_path = lib.string() + ".sig";
      std::ofstream sig_out(sig_path, std::ios::trunc);
      sig_out << *sig << "\n";
      sig_out.close();
      if (!sig_out) {
        exit_code = out.error("io", sig_path.string() + ": cannot write the signature");
        return;
      }
      if (out.json) {
        exit_code = out.emit_json({{"signature", sig_path.string()}, {"id", m->id}, {"version", m->version}});
        return;
      }
      std::cout << "wrote " << sig_path.string() << "\n";
      exit_code = 0;
    });
  }
}

}  // namespace novacron::cli
