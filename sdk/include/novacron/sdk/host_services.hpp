// HostServices: everything a plugin may ask of the host. A plugin includes only SDK headers;
// when it needs something from the host, it is a call on this interface.
//
// The host creates one HostServices per plugin instance, scoped to it: log lines carry the
// plugin's id, the key-value store is namespaced by the plugin's id, metrics are labelled
// with it. The object outlives the plugin instance and is safe to call from any thread.
//
// SDK 1.0 defined the methods up to blocking_executor(); data_dir() came with SDK 1.1,
// cluster_identity() and peers() with SDK 1.3.
// Methods added later are marked "since SDK 1.N"; a plugin may call them only when
// host_sdk_minor() >= N.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "novacron/sdk/executor.hpp"
#include "novacron/sdk/status.hpp"

namespace novacron::sdk {

enum class LogLevel : int { kTrace = 0, kDebug = 1, kInfo = 2, kWarn = 3, kError = 4 };

// This node's cluster identity (since SDK 1.3): the PEM files of the cluster CA and of the
// node's certificate and key, for plugins that talk to other nodes (the migration
// transport). Absolute paths; the key file is 0600.
struct ClusterIdentity {
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
  std::string transport_address;  // this node's transport address ("HOST:PORT"), "" when unset
};

// A peer node from the host config (since SDK 1.3).
struct PeerInfo {
  std::string name;               // its node name, as its certificate carries it
  std::string transport_address;  // "HOST:PORT" of its migration transport, "" when unset
};

// Labels on a metric or event: ordered name/value pairs.
using Labels = std::vector<std::pair<std::string, std::string>>;

// An event for the host's event bus (streamed to API clients as /v1/events).
struct Event {
  std::string type;          // dotted, e.g. "policy.cache_rebuilt"; the host prefixes nothing
  std::string object;        // the object it is about, e.g. "vm/3f2a..." or "" for none
  std::string payload_json;  // a JSON object with details; "{}" when there are none
};

class HostServices {
 public:
  virtual ~HostServices() = default;

  // --- Identity -----------------------------------------------------------------------
  // The SDK minor version of the host; lets a plugin built against a newer minor check
  // whether a method it wants exists in this host.
  virtual int host_sdk_minor() const = 0;
  // The name of the node this host runs as (from the host's config).
  virtual std::string node_name() const = 0;

  // --- Logging ------------------------------------------------------------------------
  // Writes one structured log line tagged with the plugin's id. `message` should be a short
  // sentence; put variable details in `fields` (rendered as key=value).
  virtual void log(LogLevel level, std::string_view message, const Labels& fields = {}) = 0;

  // --- Configuration -------------------------------------------------------------------
  // The plugin's own config section from the host config, as JSON text ("{}" when absent).
  // The same text was passed to init(); use sdk/json_config.hpp to read it.
  virtual std::string config_json() const = 0;

  // --- Key-value store -----------------------------------------------------------------
  // Durable, namespaced by the plugin's id, backed by the host's state store (SQLite in a
  // standalone host). Values are opaque bytes. Writes are atomic per call.
  virtual Result<std::optional<std::string>> kv_get(std::string_view key) = 0;
  virtual Status kv_put(std::string_view key, std::string_view value) = 0;
  virtual Status kv_delete(std::string_view key) = 0;
  // Keys beginning with `prefix`, in lexicographic order.
  virtual Result<std::vector<std::string>> kv_list(std::string_view prefix) = 0;

  // --- Events --------------------------------------------------------------------------
  // Publishes an event; the host stamps it with a sequence number, time and plugin id.
  virtual void publish_event(const Event& event) = 0;

  // --- Metrics -------------------------------------------------------------------------
  // Names follow Prometheus conventions ("novacron_" is prefixed by the host unless the name
  // already starts with it). The host adds a `plugin` label. `help` is used the first time a
  // name is seen. A name keeps the type it was first used with.
  virtual void counter_add(std::string_view name, std::string_view help, const Labels& labels, double delta) = 0;
  virtual void gauge_set(std::string_view name, std::string_view help, const Labels& labels, double value) = 0;
  // Observes a value into a histogram with the host's default latency buckets (seconds).
  virtual void histogram_observe(std::string_view name, std::string_view help, const Labels& labels, double value) = 0;

  // --- Executors -----------------------------------------------------------------------
  // For short, non-blocking work (network I/O completions, timers). Never block on it.
  virtual Executor& io_executor() = 0;
  // For work that blocks (library calls, disk I/O, subprocesses). Bounded; do not park
  // threads on it forever.
  virtual Executor& blocking_executor() = 0;

  // --- Since SDK 1.1 (call only when host_sdk_minor() >= 1) -----------------------------
  // The host's data dir (absolute). Files a plugin writes there belong to the operator's
  // host, e.g. the token plugin's DATA_DIR/admin.token; keep private state in the
  // key-value store instead.
  virtual std::string data_dir() const = 0;

  // --- Since SDK 1.3 (call only when host_sdk_minor() >= 3) -----------------------------
  // The node's certificate files; kFailedPrecondition when the host config has no cluster
  // section (no CA, no node certificate).
  virtual Result<ClusterIdentity> cluster_identity() const = 0;
  // The cluster's peer nodes (the static list of the host config; empty without a cluster).
  virtual std::vector<PeerInfo> peers() const = 0;
};

}  // namespace novacron::sdk
