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
  if (out.json) return out.emit_json({{"plugins", arr}});
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

}  // namespace

void add_plugin_commands(CLI::App& app, Output& out, int& exit_code) {
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
    auto* cmd = plugin->add_subcommand("install", "Install a plugin folder or .tar.zst into a stopped host's data dir");
    auto loc = std::make_shared<HostLocation>();
    auto path = std::make_shared<std::string>();
    add_host_location(cmd, *loc);
    cmd->add_option("--trusted-key", loc->trusted_keys, "Additional trusted Ed25519 public key (PEM)");
    cmd->add_flag("--require-signature", loc->require_signature, "Refuse unsigned plugins");
    cmd->add_option("PATH", *path, "Plugin folder or .tar.zst package")->required();
    cmd->callback([&out, &exit_code, loc, path] {
      exit_code = with_offline_host(
          *loc, out, [&](const HostConfig& cfg, OfflineHost& host) { return install(out, cfg, host, *path); });
    });
  }

  // list -------------------------------------------------------------------------------
  {
    auto* cmd = plugin->add_subcommand("list", "List the plugins installed in a stopped host's catalog");
    auto loc = std::make_shared<HostLocation>();
    add_host_location(cmd, *loc);
    cmd->callback([&out, &exit_code, loc] {
      exit_code = with_offline_host(*loc, out, [&](const HostConfig&, OfflineHost& host) { return list(out, host); });
    });
  }

  // enable / disable -------------------------------------------------------------------
  for (bool enable : {true, false}) {
    auto* cmd = plugin->add_subcommand(
        enable ? "enable" : "disable",
        enable ? "Enable a plugin (also lifts a quarantine) in a stopped host" : "Disable a plugin in a stopped host");
    auto loc = std::make_shared<HostLocation>();
    auto id = std::make_shared<std::string>();
    add_host_location(cmd, *loc);
    cmd->add_option("ID", *id, "Plugin id")->required();
    cmd->callback([&out, &exit_code, loc, id, enable] {
      exit_code = with_offline_host(*loc, out, [&](const HostConfig& cfg, OfflineHost& host) {
        return set_enabled(out, cfg, host, *id, enable);
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
