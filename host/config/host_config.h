// The host's config file: JSON with comments, validated on load. Every error names the JSON
// path of the offending value; the daemon refuses to start on any error.
// Reference: docs/config.md.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "host/common/error.h"

namespace novacron {

struct PluginLoadSpec {
  std::string id;                      // reverse-DNS plugin id
  std::optional<std::string> version;  // exact version; newest installed when absent
  bool required = false;               // a required plugin that cannot load stops start-up
  std::string config_json = "{}";      // the plugin's own section, passed to init()
  std::string config_pointer;          // its JSON path in the host config, for messages
};

struct TlsConfig {
  std::filesystem::path cert;
  std::filesystem::path key;
};

struct HostConfig {
  std::filesystem::path source;  // file the config came from ("" for a string)
  std::string node_name;
  std::filesystem::path data_dir = "/var/lib/novacron";
  std::string listen_address = "127.0.0.1";
  std::uint16_t listen_port = 8470;
  std::size_t api_body_limit = 1 << 20;                   // bytes of a request body (uploads have their own limit)
  std::size_t event_retention = 10000;                    // events kept for /v1/events?since=
  std::size_t api_upload_limit = std::size_t{256} << 20;  // bytes of a plugin package upload
  std::optional<TlsConfig> tls;

  // Plugin dirs in search order. DATA_DIR/plugins (where `novacron plugin install` puts
  // plugins) is always searched first; the bundled dir (plugins shipped with the host,
  // pinned automatically on first sight) last.
  std::vector<std::filesystem::path> plugin_dirs;
  std::filesystem::path bundled_plugin_dir;         // empty = <exe>/../lib/novacron/plugins
  std::vector<std::filesystem::path> trusted_keys;  // Ed25519 public keys (PEM)
  bool require_signatures = false;
  std::vector<PluginLoadSpec> plugins;

  std::string log_level = "info";   // trace|debug|info|warn|error
  std::string log_format = "text";  // text|json
  int io_threads = 2;
  int blocking_threads = 4;
};

// Parses and validates config text. Relative paths resolve against `base_dir`.
// On error, Error::message lists every problem found, one per line, each as
// "<json path>: <what is wrong>".
Expected<HostConfig> parse_host_config(const std::string& text, const std::filesystem::path& base_dir);

// Reads and parses a config file; the error names the file.
Expected<HostConfig> load_host_config(const std::filesystem::path& file);

}  // namespace novacron
