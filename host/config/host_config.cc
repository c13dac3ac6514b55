#include "host/config/host_config.h"

#include <arpa/inet.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "host/common/identifiers.h"

namespace novacron {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

// Walks a JSON document, recording errors with their JSON paths and remembering which keys
// were read so that unknown (usually misspelt) keys are reported too.
class Checker {
 public:
  void fail(const std::string& path, const std::string& what) {
    errors_.push_back((path.empty() ? "/" : path) + ": " + what);
  }
  bool ok() const { return errors_.empty(); }
  std::string message() const {
    std::string out;
    for (const auto& e : errors_) out += (out.empty() ? "" : "\n") + e;
    return out;
  }

  // Checks that `obj` at `path` is an object with only `known` keys.
  bool object(const json& obj, const std::string& path, const std::set<std::string>& known) {
    if (!obj.is_object()) {
      fail(path, std::string("expected an object, got ") + obj.type_name());
      return false;
    }
    for (const auto& [key, value] : obj.items()) {
      if (known.count(key) == 0) {
        std::string list;
        for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
        fail(path + "/" + key, "unknown key (known keys: " + list + ")");
      }
    }
    return true;
  }

  std::optional<std::string> string(const json& obj, const std::string& path, const std::string& key,
                                    bool required = false) {
    auto it = obj.find(key);
    if (it == obj.end()) {
      if (required) fail(path + "/" + key, "is required");
      return std::nullopt;
    }
    if (!it->is_string() || it->get<std::string>().empty()) {
      fail(path + "/" + key, "expected a non-empty string, got " + it->dump());
      return std::nullopt;
    }
    return it->get<std::string>();
  }

  std::optional<bool> boolean(const json& obj, const std::string& path, const std::string& key) {
    auto it = obj.find(key);
    if (it == obj.end()) return std::nullopt;
    if (!it->is_boolean()) {
      fail(path + "/" + key, "expected true or false, got " + it->dump());
      return std::nullopt;
    }
    return it->get<bool>();
  }

  std::optional<std::int64_t> integer(const json& obj, const std::string& path, const std::string& key,
                                      std::int64_t min, std::int64_t max) {
    auto it = obj.find(key);
    if (it == obj.end()) return std::nullopt;
    if (!it->is_number_integer() || it->get<std::int64_t>() < min || it->get<std::int64_t>() > max) {
      fail(path + "/" + key,
           "expected an integer from " + std::to_string(min) + " to " + std::to_string(max) + ", got " + it->dump());
      return std::nullopt;
    }
    return it->get<std::int64_t>();
  }

  std::optional<std::string> choice(const json& obj, const std::string& path, const std::string& key,
                                    const std::vector<std::string>& allowed) {
    auto s = string(obj, path, key);
    if (s && std::find(allowed.begin(), allowed.end(), *s) == allowed.end()) {
      std::string list;
      for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
      fail(path + "/" + key, "expected one of " + list + ", got \"" + *s + "\"");
      return std::nullopt;
    }
    return s;
  }

  std::vector<std::string> string_list(const json& obj, const std::string& path, const std::string& key) {
    std::vector<std::string> out;
    auto it = obj.find(key);
    if (it == obj.end()) return out;
    if (!it->is_array()) {
      fail(path + "/" + key, std::string("expected an array of strings, got ") + it->type_name());
      return out;
    }
    for (size_t i = 0; i < it->size(); ++i) {
      const json& v = (*it)[i];
      if (!v.is_string() || v.get<std::string>().empty()) {
        fail(path + "/" + key + "/" + std::to_string(i), "expected a non-empty string, got " + v.dump());
      } else {
        out.push_back(v.get<std::string>());
      }
    }
    return out;
  }

 private:
  std::vector<std::string> errors_;
};

fs::path resolve(const fs::path& base, const std::string& p) {
  fs::path path(p);
  return (path.is_absolute() ? path : base / path).lexically_normal();
}

// Converts a byte offset in `text` into "line L, column C" for parse errors.
std::string position_of(const std::string& text, size_t byte) {
  size_t line = 1, column = 1;
  for (size_t i = 0; i < byte && i < text.size(); ++i) {
    if (text[i] == '\n') {
      ++line;
      column = 1;
    } else {
      ++column;
    }
  }
  return "line " + std::to_string(line) + ", column " + std::to_string(column);
}

// Labels: {"key": "value"} with short printable keys, as Kubernetes-style selectors expect.
std::map<std::string, std::string> parse_labels(Checker& c, const json& obj, const std::string& path) {
  std::map<std::string, std::string> out;
  auto it = obj.find("labels");
  if (it == obj.end()) return out;
  if (!it->is_object()) {
    c.fail(path + "/labels", std::string("expected an object of strings, got ") + it->type_name());
    return out;
  }
  for (const auto& [key, value] : it->items()) {
    const std::string p = path + "/labels/" + key;
    bool key_ok = !key.empty() && key.size() <= 63 && std::all_of(key.begin(), key.end(), [](unsigned char ch) {
      return std::isalnum(ch) || ch == '-' || ch == '_' || ch == '.' || ch == '/';
    });
    if (!key_ok) {
      c.fail(p, "label keys are 1-63 letters, digits, '-', '_', '.', '/'");
    } else if (!value.is_string() || value.get<std::string>().size() > 255) {
      c.fail(p, "expected a string of at most 255 characters, got " + value.dump());
    } else {
      out[key] = value.get<std::string>();
    }
  }
  return out;
}

NodeCapacity parse_capacity(Checker& c, const json& obj, const std::string& path, const std::string& key = "capacity") {
  NodeCapacity cap;
  auto it = obj.find(key);
  if (it == obj.end() || !c.object(*it, path + "/" + key, {"vcpus", "memory_mib", "disk_gib"})) return cap;
  const std::string p = path + "/" + key;
  cap.vcpus = c.integer(*it, p, "vcpus", 0, 1 << 20);
  cap.memory_mib = c.integer(*it, p, "memory_mib", 0, std::int64_t{1} << 40);
  cap.disk_gib = c.integer(*it, p, "disk_gib", 0, std::int64_t{1} << 40);
  return cap;
}

// "host:port" or "[v6]:port" with a port from 1 to 65535.
bool is_host_port(const std::string& s) {
  auto colon = s.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == s.size()) return false;
  const std::string port = s.substr(colon + 1);
  if (port.size() > 5 || !std::all_of(port.begin(), port.end(), ::isdigit)) return false;
  int n = std::stoi(port);
  return n >= 1 && n <= 65535;
}

void parse_peer(Checker& c, const json& entry, const std::string& p, HostConfig& cfg, std::set<std::string>& seen) {
  if (!c.object(entry, p, {"name", "api", "transport", "capacity", "reserved", "labels"})) return;
  PeerConfig peer;
  if (auto name = c.string(entry, p, "name", true)) {
    if (!is_valid_node_name(*name)) {
      c.fail(p + "/name", "\"" + *name + "\" is not a valid node name (letters, digits, '.', '-'; at most 63)");
    } else if (*name == cfg.node_name) {
      c.fail(p + "/name", "\"" + *name + "\" is this node's own name (/node/name)");
    } else if (!seen.insert(*name).second) {
      c.fail(p + "/name", "peer \"" + *name + "\" is listed twice");
    }
    peer.name = *name;
  }
  if (auto api = c.string(entry, p, "api", true)) {
    if (api->rfind("https://", 0) != 0 || api->find('/', 8) != std::string::npos || !is_host_port(api->substr(8))) {
      c.fail(p + "/api", "expected https://HOST:PORT (peers are called over mutual TLS), got \"" + *api + "\"");
    }
    peer.api_url = *api;
  }
  if (auto t = c.string(entry, p, "transport")) {
    if (!is_host_port(*t)) c.fail(p + "/transport", "expected HOST:PORT, got \"" + *t + "\"");
    peer.transport_address = *t;
  }
  peer.capacity = parse_capacity(c, entry, p);
  peer.reserved = parse_capacity(c, entry, p, "reserved");
  peer.labels = parse_labels(c, entry, p);
  cfg.cluster->peers.push_back(std::move(peer));
}

// The "scheduler" section; policy ids must be among plugins.load (parsed before it).
void parse_scheduler(Checker& c, const json& root, HostConfig& cfg) {
  auto it = root.find("scheduler");
  if (it == root.end()) return;
  const std::string path = "/scheduler";
  if (!c.object(*it, path, {"filters", "scorers", "candidates", "explain", "claim", "decisions", "rebalance"})) return;
  SchedulerConfig& s = cfg.scheduler;
  s.configured = true;
  const auto loaded = [&](const std::string& id, const std::string& p) {
    const bool found = std::any_of(cfg.plugins.begin(), cfg.plugins.end(), [&](const auto& l) { return l.id == id; });
    if (!found) c.fail(p, id + " is not in /plugins/load (load the policy plugin to use it)");
  };
  const std::vector<std::string> filters = c.string_list(*it, path, "filters");
  for (size_t i = 0; i < filters.size(); ++i) {
    const std::string p = path + "/filters/" + std::to_string(i);
    if (std::count(filters.begin(), filters.end(), filters[i]) > 1) c.fail(p, filters[i] + " is listed twice");
    loaded(filters[i], p);
  }
  s.filters = filters;
  if (auto scorers = it->find("scorers"); scorers != it->end()) {
    if (!scorers->is_array()) {
      c.fail(path + "/scorers", std::string("expected an array of {\"id\", \"weight\"}, got ") + scorers->type_name());
    } else {
      for (size_t i = 0; i < scorers->size(); ++i) {
        const std::string p = path + "/scorers/" + std::to_string(i);
        const json& entry = (*scorers)[i];
        SchedulerPolicyRef ref;
        if (entry.is_string()) {
          ref.id = entry.get<std::string>();
        } else if (c.object(entry, p, {"id", "weight", "optional"})) {
          if (auto id = c.string(entry, p, "id", true)) ref.id = *id;
          if (auto w = entry.find("weight"); w != entry.end()) {
            if (!w->is_number() || w->get<double>() < 0 || w->get<double>() > 1000) {
              c.fail(p + "/weight", "expected a number from 0 to 1000, got " + w->dump());
            } else {
              ref.weight = w->get<double>();
            }
          }
          if (auto o = c.boolean(entry, p, "optional")) ref.optional = *o;
        } else {
          continue;
        }
        if (ref.id.empty()) continue;
        for (const auto& other : s.scorers) {
          if (other.id == ref.id) c.fail(p, ref.id + " is listed twice");
        }
        loaded(ref.id, p + (entry.is_string() ? "" : "/id"));
        s.scorers.push_back(std::move(ref));
      }
    }
  }
  if (s.filters.size() + s.scorers.size() > 16) c.fail(path, "at most 16 policies (filters and scorers together)");
  if (auto cand = it->find("candidates"); cand != it->end() && c.object(*cand, path + "/candidates", {"max_scored"})) {
    if (auto n = c.integer(*cand, path + "/candidates", "max_scored", 0, 1000000)) s.max_scored = size_t(*n);
  }
  if (auto ex = it->find("explain");
      ex != it->end() && c.object(*ex, path + "/explain", {"top_k", "max_detail_nodes"})) {
    if (auto n = c.integer(*ex, path + "/explain", "top_k", 1, 32)) s.top_k = size_t(*n);
    if (auto n = c.integer(*ex, path + "/explain", "max_detail_nodes", 1, 100000)) s.max_detail_nodes = size_t(*n);
  }
  if (auto cl = it->find("claim"); cl != it->end() && c.object(*cl, path + "/claim", {"max_attempts", "timeout_ms"})) {
    if (auto n = c.integer(*cl, path + "/claim", "max_attempts", 1, 32)) s.claim_max_attempts = int(*n);
    if (auto n = c.integer(*cl, path + "/claim", "timeout_ms", 100, 120000)) s.claim_timeout_ms = int(*n);
  }
  if (auto d = it->find("decisions");
      d != it->end() && c.object(*d, path + "/decisions", {"max_rows", "retention_days"})) {
    if (auto n = c.integer(*d, path + "/decisions", "max_rows", 100, 100000000)) s.decisions_max_rows = size_t(*n);
    if (auto n = c.integer(*d, path + "/decisions", "retention_days", 1, 3650)) s.decisions_retention_days = int(*n);
  }
  if (auto r = it->find("rebalance");
      r != it->end() && c.object(*r, path + "/rebalance",
                                 {"interval_minutes", "min_gain", "max_migrations", "max_bytes_gib", "cost_weight"})) {
    const std::string p = path + "/rebalance";
    if (auto n = c.integer(*r, p, "interval_minutes", 0, 10080)) s.rebalance_interval_minutes = int(*n);
    if (auto n = c.integer(*r, p, "max_migrations", 1, 1000)) s.rebalance_max_migrations = size_t(*n);
    const auto number = [&](const char* key, double lo, double hi, double& out) {
      auto v = r->find(key);
      if (v == r->end()) return;
      if (!v->is_number() || v->get<double>() < lo || v->get<double>() > hi) {
        c.fail(p + "/" + key, "expected a number from " + std::to_string(lo).substr(0, 4) + " to " +
                                  std::to_string(static_cast<long>(hi)) + ", got " + v->dump());
        return;
      }
      out = v->get<double>();
    };
    number("min_gain", 0, 1000, s.rebalance_min_gain);
    number("max_bytes_gib", 0, 1e9, s.rebalance_max_bytes_gib);
    number("cost_weight", 0, 1000, s.rebalance_cost_weight);
  }
}

void parse_cluster(Checker& c, const json& root, const fs::path& base, HostConfig& cfg) {
  auto it = root.find("cluster");
  if (it == root.end()) return;
  const std::string path = "/cluster";
  if (!c.object(*it, path, {"ca", "cert", "key", "peers", "probe_interval_seconds", "probe_timeout_ms"})) return;
  ClusterConfig cluster;
  if (auto v = c.string(*it, path, "ca", true)) cluster.ca = resolve(base, *v);
  if (auto v = c.string(*it, path, "cert", true)) cluster.cert = resolve(base, *v);
  if (auto v = c.string(*it, path, "key", true)) cluster.key = resolve(base, *v);
  if (auto n = c.integer(*it, path, "probe_interval_seconds", 1, 3600)) cluster.probe_interval_seconds = int(*n);
  if (auto n = c.integer(*it, path, "probe_timeout_ms", 100, 60000)) cluster.probe_timeout_ms = int(*n);
  cfg.cluster = std::move(cluster);
  if (auto peers = it->find("peers"); peers != it->end()) {
    if (!peers->is_array()) {
      c.fail(path + "/peers", std::string("expected an array of peer objects, got ") + peers->type_name());
      return;
    }
    std::set<std::string> seen;
    for (size_t i = 0; i < peers->size(); ++i) {
      parse_peer(c, (*peers)[i], path + "/peers/" + std::to_string(i), cfg, seen);
    }
  }
}

void parse_plugins(Checker& c, const json& root, const fs::path& base, HostConfig& cfg) {
  auto it = root.find("plugins");
  if (it == root.end()) return;
  const std::string path = "/plugins";
  if (!c.object(*it, path, {"dirs", "bundled_dir", "trusted_keys", "require_signatures", "load"})) return;
  for (const auto& d : c.string_list(*it, path, "dirs")) cfg.plugin_dirs.push_back(resolve(base, d));
  if (auto b = c.string(*it, path, "bundled_dir"); b && *b != "auto") cfg.bundled_plugin_dir = resolve(base, *b);
  for (const auto& k : c.string_list(*it, path, "trusted_keys")) cfg.trusted_keys.push_back(resolve(base, k));
  if (auto r = c.boolean(*it, path, "require_signatures")) cfg.require_signatures = *r;
  if (cfg.require_signatures && cfg.trusted_keys.empty()) {
    c.fail(path + "/require_signatures", "is true but /plugins/trusted_keys is empty: no plugin could load");
  }

  auto load = it->find("load");
  if (load == it->end()) return;
  if (!load->is_array()) {
    c.fail(path + "/load", std::string("expected an array of plugins, got ") + load->type_name());
    return;
  }
  std::set<std::string> seen;
  for (size_t i = 0; i < load->size(); ++i) {
    const std::string p = path + "/load/" + std::to_string(i);
    const json& entry = (*load)[i];
    if (!c.object(entry, p, {"id", "version", "required", "config"})) continue;
    PluginLoadSpec spec;
    if (auto id = c.string(entry, p, "id", /*required=*/true)) {
      if (!is_valid_plugin_id(*id)) {
        c.fail(p + "/id", "\"" + *id + "\" is not a reverse-DNS plugin id (e.g. io.novacron.policy.binpack)");
      } else if (!seen.insert(*id).second) {
        c.fail(p + "/id", "plugin \"" + *id + "\" is listed twice");
      }
      spec.id = *id;
    }
    if (auto v = c.string(entry, p, "version")) {
      if (!is_valid_plugin_version(*v)) c.fail(p + "/version", "\"" + *v + "\" is not MAJOR.MINOR.PATCH");
      spec.version = *v;
    }
    spec.config_pointer = p + "/config";
    if (auto r = c.boolean(entry, p, "required")) spec.required = *r;
    if (auto conf = entry.find("config"); conf != entry.end()) {
      if (!conf->is_object()) {
        c.fail(p + "/config", std::string("expected an object, got ") + conf->type_name());
      } else {
        spec.config_json = conf->dump();
      }
    }
    cfg.plugins.push_back(std::move(spec));
  }
}

}  // namespace

Expected<HostConfig> parse_host_config(const std::string& text, const fs::path& base_dir) {
  json root;
  try {
    root = json::parse(text, nullptr, /*allow_exceptions=*/true, /*ignore_comments=*/true);
  } catch (const json::exception& e) {  // parse_error, and out_of_range for numbers that overflow
    // nlohmann's message: "[json.exception.parse_error.101] parse error at line 3, column 15:
    // syntax error while parsing object key - invalid literal; last read: '{p'; expected ..."
    std::string what = e.what();
    if (auto pos = what.find("] "); pos != std::string::npos) what = what.substr(pos + 2);
    if (const auto* pe = dynamic_cast<const json::parse_error*>(&e);
        pe != nullptr && what.find("line ") == std::string::npos) {
      what = position_of(text, pe->byte) + ": " + what;
    }
    return make_error("config_invalid", "/: not valid JSON: " + what);
  }

  Checker c;
  HostConfig cfg;
  if (!c.object(root, "",
                {"node", "data_dir", "listen", "api", "events", "tls", "cluster", "vms", "transfers", "plugins", "log",
                 "threads", "scheduler"})) {
    return make_error("config_invalid", c.message());
  }

  if (auto node = root.find("node");
      node != root.end() && c.object(*node, "/node", {"name", "labels", "capacity", "reserved", "transport"})) {
    if (auto name = c.string(*node, "/node", "name")) {
      if (!is_valid_node_name(*name)) {
        c.fail("/node/name", "\"" + *name + "\" is not a valid node name (letters, digits, '.', '-'; at most 63)");
      }
      cfg.node_name = *name;
    }
    cfg.node_labels = parse_labels(c, *node, "/node");
    cfg.node_capacity = parse_capacity(c, *node, "/node");
    cfg.node_reserved = parse_capacity(c, *node, "/node", "reserved");
    if (auto t = c.string(*node, "/node", "transport")) {
      if (!is_host_port(*t)) c.fail("/node/transport", "expected HOST:PORT, got \"" + *t + "\"");
      cfg.transport_address = *t;
    }
  }
  if (cfg.node_name.empty()) {
    char host[256] = {};
    ::gethostname(host, sizeof host - 1);
    std::string name(host);
    name = name.substr(0, name.find('.'));  // short host name
    cfg.node_name = is_valid_node_name(name) ? name : "node-1";
  }

  if (auto d = c.string(root, "", "data_dir")) cfg.data_dir = resolve(base_dir, *d);

  if (auto listen = root.find("listen"); listen != root.end() && c.object(*listen, "/listen", {"address", "port"})) {
    if (auto a = c.string(*listen, "/listen", "address")) {
      unsigned char buf[sizeof(in6_addr)];
      if (::inet_pton(AF_INET, a->c_str(), buf) != 1 && ::inet_pton(AF_INET6, a->c_str(), buf) != 1) {
        c.fail("/listen/address", "\"" + *a + "\" is not an IPv4 or IPv6 address (e.g. 127.0.0.1, 0.0.0.0, ::)");
      }
      cfg.listen_address = *a;
    }
    if (auto p = c.integer(*listen, "/listen", "port", 0, 65535)) cfg.listen_port = static_cast<std::uint16_t>(*p);
  }

  if (auto api = root.find("api");
      api != root.end() && c.object(*api, "/api", {"body_limit_bytes", "upload_limit_bytes"})) {
    if (auto n = c.integer(*api, "/api", "upload_limit_bytes", 1024, std::int64_t{4} << 30)) {
      cfg.api_upload_limit = static_cast<std::size_t>(*n);
    }
    if (auto n = c.integer(*api, "/api", "body_limit_bytes", 1024, std::int64_t{64} << 20)) {
      cfg.api_body_limit = static_cast<std::size_t>(*n);
    }
  }

  if (auto ev = root.find("events"); ev != root.end() && c.object(*ev, "/events", {"retention"})) {
    if (auto n = c.integer(*ev, "/events", "retention", 10, 10000000))
      cfg.event_retention = static_cast<std::size_t>(*n);
  }

  if (auto tls = root.find("tls"); tls != root.end() && c.object(*tls, "/tls", {"cert", "key", "client_ca"})) {
    auto cert = c.string(*tls, "/tls", "cert", true);
    auto key = c.string(*tls, "/tls", "key", true);
    if (cert && key) cfg.tls = TlsConfig{resolve(base_dir, *cert), resolve(base_dir, *key), {}};
    if (auto ca = c.string(*tls, "/tls", "client_ca"); ca && cfg.tls) cfg.tls->client_ca = resolve(base_dir, *ca);
  }

  parse_cluster(c, root, base_dir, cfg);
  if (cfg.cluster) {
    if (root.find("node") == root.end() || !root["node"].is_object() || !root["node"].contains("name")) {
      c.fail("/node/name", "is required with /cluster: peers check it against this node's certificate");
    }
    // Peers call this node's API over mutual TLS: the listener serves TLS (the node
    // certificate unless /tls names another) and accepts client certificates of the cluster.
    if (!cfg.tls) cfg.tls = TlsConfig{cfg.cluster->cert, cfg.cluster->key, {}};
    if (cfg.tls->client_ca.empty()) cfg.tls->client_ca = cfg.cluster->ca;
  }

  if (auto vms = root.find("vms");
      vms != root.end() &&
      c.object(*vms, "/vms", {"image_root", "stop_timeout_seconds", "reconcile_interval_seconds"})) {
    if (auto r = c.string(*vms, "/vms", "image_root")) cfg.image_root = resolve(base_dir, *r);
    if (auto n = c.integer(*vms, "/vms", "stop_timeout_seconds", 1, 3600)) cfg.vm_stop_timeout_seconds = int(*n);
    if (auto n = c.integer(*vms, "/vms", "reconcile_interval_seconds", 0, 86400)) {
      cfg.vm_reconcile_interval_seconds = int(*n);
    }
  }

  if (auto transfers = root.find("transfers");
      transfers != root.end() &&
      c.object(*transfers, "/transfers", {"root", "allowed_peers", "tunnel_targets", "block_devices"})) {
    if (auto r = c.string(*transfers, "/transfers", "root")) cfg.transfer_root = resolve(base_dir, *r);
    if (auto peers = transfers->find("allowed_peers"); peers != transfers->end()) {
      if (!peers->is_array()) {
        c.fail("/transfers/allowed_peers", "expected an array of node names");
      } else {
        for (size_t i = 0; i < peers->size(); ++i) {
          const json& name = (*peers)[i];
          if (!name.is_string() || name.get<std::string>().empty()) {
            c.fail("/transfers/allowed_peers/" + std::to_string(i), "expected a node name, got " + name.dump());
          } else {
            cfg.transfer_allowed_peers.push_back(name.get<std::string>());
          }
        }
      }
    }
    if (auto devices = transfers->find("block_devices"); devices != transfers->end()) {
      if (!devices->is_array()) {
        c.fail("/transfers/block_devices", "expected an array of absolute device paths");
      } else {
        for (size_t i = 0; i < devices->size(); ++i) {
          const json& d = (*devices)[i];
          if (!d.is_string() || d.get<std::string>().empty() || d.get<std::string>().front() != '/') {
            c.fail("/transfers/block_devices/" + std::to_string(i), "expected an absolute path, got " + d.dump());
          } else {
            cfg.transfer_block_devices.push_back(d.get<std::string>());
          }
        }
      }
    }
    if (auto cidrs = transfers->find("tunnel_targets"); cidrs != transfers->end()) {
      if (!cidrs->is_array()) {
        c.fail("/transfers/tunnel_targets", "expected an array of CIDRs, e.g. [\"127.0.0.0/8\"]");
      } else {
        for (size_t i = 0; i < cidrs->size(); ++i) {
          const json& cidr = (*cidrs)[i];
          if (!cidr.is_string() || cidr.get<std::string>().find('/') == std::string::npos) {
            c.fail("/transfers/tunnel_targets/" + std::to_string(i),
                   "expected a CIDR like 10.0.0.0/8, got " + cidr.dump());
          } else {
            cfg.transfer_tunnel_targets.push_back(cidr.get<std::string>());
          }
        }
      }
    }
  }

  parse_plugins(c, root, base_dir, cfg);
  parse_scheduler(c, root, cfg);

  if (auto log = root.find("log"); log != root.end() && c.object(*log, "/log", {"level", "format"})) {
    if (auto l = c.choice(*log, "/log", "level", {"trace", "debug", "info", "warn", "error"})) cfg.log_level = *l;
    if (auto f = c.choice(*log, "/log", "format", {"text", "json"})) cfg.log_format = *f;
  }
  if (auto th = root.find("threads"); th != root.end() && c.object(*th, "/threads", {"io", "blocking"})) {
    if (auto n = c.integer(*th, "/threads", "io", 1, 64)) cfg.io_threads = static_cast<int>(*n);
    if (auto n = c.integer(*th, "/threads", "blocking", 1, 256)) cfg.blocking_threads = static_cast<int>(*n);
  }

  if (!c.ok()) return make_error("config_invalid", c.message());
  return cfg;
}

Expected<HostConfig> load_host_config(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return make_error("config_unreadable", file.string() + ": cannot open config file");
  std::stringstream ss;
  ss << in.rdbuf();
  auto cfg = parse_host_config(ss.str(), fs::absolute(file).parent_path());
  if (!cfg) {
    return make_error(cfg.error().code, file.string() + ": " + cfg.error().message);
  }
  cfg->source = fs::absolute(file);
  return cfg;
}

}  // namespace novacron
