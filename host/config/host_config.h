// The host's config file: JSON with comments, validated on load. Every error names the JSON
// path of the offending value; the daemon refuses to start on any error.
// Reference: docs/config.md.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
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
  // CA whose client certificates the listener accepts (mutual TLS, optional for clients:
  // token callers need none). Defaults to /cluster/ca when the cluster section is present.
  std::filesystem::path client_ca;
};

// What a node offers to placement; absent values are measured from the drivers later.
struct NodeCapacity {
  std::optional<std::int64_t> vcpus;
  std::optional<std::int64_t> memory_mib;
  std::optional<std::int64_t> disk_gib;
};

// A statically configured peer node (cluster membership through etcd will replace the list).
struct PeerConfig {
  std::string name;               // node name; its certificate must carry it
  std::string api_url;            // https://host:port of its API (mutual TLS)
  std::string transport_address;  // host:port of its migration transport
  NodeCapacity capacity;
  NodeCapacity reserved;  // kept back for the host itself (absent = 0)
  std::map<std::string, std::string> labels;
};

// The placement engine (docs/scheduler.md): which policies filter and score, with what
// weights, and the engine's limits. Each policy's own parameters stay in plugins.load[].config.
struct SchedulerPolicyRef {
  std::string id;         // plugin id, one of plugins.load
  double weight = 1.0;    // scorers: multiplier of the normalised score
  bool optional = false;  // scorers: skipped with a note when not running (filters never are)
};
struct SchedulerConfig {
  bool configured = false;  // the section is present; else every running policy by its roles
  std::vector<std::string> filters;
  std::vector<SchedulerPolicyRef> scorers;
  std::size_t max_scored = 1024;  // candidates scored per placement (0 = every feasible node)
  std::size_t top_k = 3;          // candidates kept in a decision record
  std::size_t max_detail_nodes = 1000;
  int claim_max_attempts = 3;  // candidates tried when a target answers 409
  int claim_timeout_ms = 5000;
  std::size_t decisions_max_rows = 100000;
  int decisions_retention_days = 30;
  // The rebalancer: proposals on demand, and every interval_minutes (0 = only on demand).
  int rebalance_interval_minutes = 0;
  double rebalance_min_gain = 0.05;
  std::size_t rebalance_max_migrations = 10;
  double rebalance_max_bytes_gib = 256;
  double rebalance_cost_weight = 0.5;
};

// Node identity and peers: host-to-host calls use mutual TLS with node certificates issued
// by the cluster CA (`novacron cert init` / `novacron cert issue NODE`).
struct ClusterConfig {
  std::filesystem::path ca;    // cluster CA certificate
  std::filesystem::path cert;  // this node's certificate (names node_name)
  std::filesystem::path key;   // its key (0600)
  std::vector<PeerConfig> peers;
  int probe_interval_seconds = 10;  // reachability checks of each peer
  int probe_timeout_ms = 3000;
};

struct HostConfig {
  std::filesystem::path source;  // file the config came from ("" for a string)
  std::string node_name;
  std::map<std::string, std::string> node_labels;
  NodeCapacity node_capacity;
  NodeCapacity node_reserved;
  SchedulerConfig scheduler;
  std::string transport_address;  // host:port of this node's migration transport ("" = none yet)
  std::optional<ClusterConfig> cluster;
  // VMs: image, kernel and initrd paths of specs resolve beneath image_root (empty:
  // DATA_DIR/images, whatever data dir the daemon ends up with); a graceful stop waits this
  // long before forcing a VM off.
  std::filesystem::path image_root;
  // Transfers (the migration transport): API sources and peers' targets resolve beneath
  // transfer_root (empty: the image root); allowed_peers empty = every cluster peer.
  std::filesystem::path transfer_root;
  std::vector<std::string> transfer_allowed_peers;
  std::vector<std::string> transfer_tunnel_targets;
  // Block devices this node may send from and peers may write to (absolute paths).
  std::vector<std::string> transfer_block_devices;  // CIDRs peers' tunnels may reach (empty: loopback)
  int vm_stop_timeout_seconds = 60;
  int vm_reconcile_interval_seconds = 30;  // inventory vs. hypervisors (0 = at start and on request)
  std::filesystem::path data_dir = "/var/lib/novacron";
  std::string listen_address = "127.0.0.1";
  std::uint16_t listen_port = 8470;
  std::size_t api_body_limit = 1 << 20;                   // bytes of a request body (uploads have their own limit)
  std::size_t event_retention = 10000;                    // events kept for /v1/events?since=
  std::size_t api_upload_limit = std::size_t{256} << 20;  // bytes of a plugin package upload
  // TLS on the API listener. Optional without a cluster section; with one, it defaults to
  // the node certificate and always accepts client certificates from the cluster CA.
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
