#include "host/cluster/peer_monitor.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <latch>

#include <nlohmann/json.hpp>

#include "host/services/event_bus.h"
#include "host/services/executors.h"
#include "host/services/metrics_registry.h"

namespace novacron {
namespace {

using nlohmann::json;

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

PeerState state_for_error(const std::string& code) {
  if (code == "untrusted_certificate" || code == "name_mismatch") return PeerState::kUntrusted;
  if (code == "tls_failed") return PeerState::kRefused;
  return PeerState::kUnreachable;
}

}  // namespace

const char* peer_state_name(PeerState state) {
  switch (state) {
    case PeerState::kUnknown:
      return "unknown";
    case PeerState::kReachable:
      return "reachable";
    case PeerState::kUnreachable:
      return "unreachable";
    case PeerState::kUntrusted:
      return "untrusted";
    case PeerState::kRefused:
      return "refused";
  }
  return "unknown";
}

PeerMonitor::PeerMonitor(const HostConfig& config, EventBus& events, MetricsRegistry& metrics, ExecutorPools& pools)
    : config_(config), events_(events), metrics_(metrics), pools_(pools) {
  if (config_.cluster) {
    for (const auto& p : config_.cluster->peers) status_[p.name] = PeerStatus{};
  }
}

PeerMonitor::~PeerMonitor() { stop(); }

void PeerMonitor::start() {
  if (!config_.cluster || config_.cluster->peers.empty() || thread_.joinable()) return;
  thread_ = std::thread([this] { run(); });
}

void PeerMonitor::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

std::vector<PeerView> PeerMonitor::peers() const {
  std::vector<PeerView> out;
  if (!config_.cluster) return out;
  std::lock_guard lock(mutex_);
  for (const auto& p : config_.cluster->peers) out.push_back({p, status_.at(p.name)});
  return out;
}

Expected<HttpClientResponse> PeerMonitor::call(const std::string& peer, const std::string& method,
                                               const std::string& target, const std::string& body,
                                               std::chrono::milliseconds timeout) {
  if (!config_.cluster) return make_error("unknown_peer", "this node has no /cluster section: it has no peers");
  const PeerConfig* found = nullptr;
  for (const auto& p : config_.cluster->peers) {
    if (p.name == peer) found = &p;
  }
  if (found == nullptr) return make_error("unknown_peer", "\"" + peer + "\" is not a peer in /cluster/peers");
  HttpClientOptions options;
  options.base_url = found->api_url;
  options.ca_file = config_.cluster->ca.string();
  options.cert_file = config_.cluster->cert.string();
  options.key_file = config_.cluster->key.string();
  options.server_name = found->name;  // the certificate must name the peer, whatever the address
  options.timeout = timeout.count() > 0 ? timeout : std::chrono::milliseconds(config_.cluster->probe_timeout_ms);
  auto client = HttpClient::create(std::move(options));
  if (!client) return tl::unexpected(client.error());
  return client->request(method, target, body);
}

PeerStatus PeerMonitor::probe(const PeerConfig& peer) {
  PeerStatus status;
  auto t0 = std::chrono::steady_clock::now();
  auto res = call(peer.name, "GET", "/v1/nodes/self");
  status.checked_at_ms = now_ms();
  if (!res) {
    status.state = state_for_error(res.error().code);
    status.error_code = res.error().code;
    status.message = res.error().message;
  } else if (res->status == 401 || res->status == 403) {
    status.state = PeerState::kRefused;
    status.error_code = "peer_refused";
    json err = json::parse(res->body, nullptr, false);
    std::string why = err.is_object() && err.contains("error") ? err["error"].value("message", "") : res->body;
    status.message = peer.api_url + " refused this node's certificate (HTTP " + std::to_string(res->status) +
                     "): " + why + "; load io.novacron.auth.mtls there";
  } else if (res->status != 200) {
    status.state = PeerState::kUnreachable;
    status.error_code = "peer_error";
    status.message = peer.api_url + " answered HTTP " + std::to_string(res->status) + " to GET /v1/nodes/self";
  } else {
    json self = json::parse(res->body, nullptr, false);
    if (!self.is_object() || self.value("name", "") != peer.name) {
      status.state = PeerState::kUntrusted;
      status.error_code = "name_mismatch";
      status.message = peer.api_url + " says it is \"" + (self.is_object() ? self.value("name", "?") : "?") +
                       "\", not \"" + peer.name + "\"";
    } else {
      status.state = PeerState::kReachable;
      status.version = self.value("version", "");
      status.last_seen_ms = status.checked_at_ms;
      status.latency_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    }
  }
  record(peer.name, status);
  return status;
}

void PeerMonitor::record(const std::string& name, PeerStatus status) {
  PeerState previous;
  {
    std::lock_guard lock(mutex_);
    auto& slot = status_[name];
    previous = slot.state;
    if (status.state != PeerState::kReachable) status.last_seen_ms = slot.last_seen_ms;
    slot = status;
  }
  metrics_.gauge_set("novacron_peer_up", "Whether a peer answered the last mutual-TLS probe (1) or not (0)",
                     {{"peer", name}}, status.state == PeerState::kReachable ? 1 : 0);
  if (status.state == previous) return;
  if (status.state == PeerState::kReachable) {
    spdlog::info("peer {} is reachable (novacrond {})", name, status.version);
  } else {
    spdlog::warn("peer {} is {}: {}", name, peer_state_name(status.state), status.message);
  }
  json payload = {{"node", name},
                  {"state", peer_state_name(status.state)},
                  {"previous", peer_state_name(previous)},
                  {"message", status.message}};
  events_.publish("node.state_changed", "node/" + name, "host", payload.dump());
}

void PeerMonitor::run() {
  const auto interval = std::chrono::seconds(config_.cluster->probe_interval_seconds);
  ScopedExecutor probes(pools_.blocking(), "peer monitor");
  for (;;) {
    const auto& peers = config_.cluster->peers;
    std::latch done(static_cast<std::ptrdiff_t>(peers.size()));
    for (const auto& p : peers) {
      probes.post([this, &p, &done] {
        probe(p);
        done.count_down();
      });
    }
    done.wait();
    std::unique_lock lock(mutex_);
    if (wake_.wait_for(lock, interval, [this] { return stopping_; })) return;
  }
}

}  // namespace novacron
