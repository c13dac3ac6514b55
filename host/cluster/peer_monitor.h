// The static peer list of the config, with each peer's reachability: a background thread
// probes every peer over mutual TLS (GET /v1/nodes/self with this node's certificate,
// checking that the peer's certificate comes from the cluster CA and names the peer), and
// publishes node.state_changed events and novacron_peer_up metrics when a state changes.
// Cluster membership through etcd will replace the static list; the states stay.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "host/api/http_client.h"
#include "host/config/host_config.h"

namespace novacron {

class EventBus;
class ExecutorPools;
class MetricsRegistry;

// What the last probe of a peer found.
enum class PeerState {
  kUnknown,      // not probed yet
  kReachable,    // mutual TLS and an authenticated call succeeded
  kUnreachable,  // no connection, timeout, connection lost
  kUntrusted,    // its certificate is not from the cluster CA or does not name it
  kRefused,      // it refused this node (its TLS or its API did not accept our certificate)
};
const char* peer_state_name(PeerState state);

struct PeerStatus {
  PeerState state = PeerState::kUnknown;
  std::string error_code;  // of the failed probe ("" when reachable)
  std::string message;     // one line, for people
  std::int64_t checked_at_ms = 0;
  std::int64_t last_seen_ms = 0;  // last time it was reachable (0 = never)
  double latency_ms = 0;          // of the last successful probe
  std::string version;            // novacrond version the peer reports
};

struct PeerView {
  PeerConfig config;
  PeerStatus status;
};

class PeerMonitor {
 public:
  PeerMonitor(const HostConfig& config, EventBus& events, MetricsRegistry& metrics, ExecutorPools& pools);
  ~PeerMonitor();
  PeerMonitor(const PeerMonitor&) = delete;
  PeerMonitor& operator=(const PeerMonitor&) = delete;

  // Starts the probe thread (no-op without peers); the first round runs at once.
  void start();
  void stop();

  // Peers in config order with their latest status.
  std::vector<PeerView> peers() const;

  // Calls a peer's API over mutual TLS (this node's certificate; the peer's must come from
  // the cluster CA and name it). Error "unknown_peer" for a name not in the config.
  // `timeout` 0: the probe timeout (cluster.probe_timeout_ms).
  Expected<HttpClientResponse> call(const std::string& peer, const std::string& method, const std::string& target,
                                    const std::string& body = "",
                                    std::chrono::milliseconds timeout = std::chrono::milliseconds(0));

  // Probes one peer now and records the result (the probe thread uses it too).
  PeerStatus probe(const PeerConfig& peer);

 private:
  void run();
  void record(const std::string& name, PeerStatus status);

  const HostConfig& config_;
  EventBus& events_;
  MetricsRegistry& metrics_;
  ExecutorPools& pools_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::map<std::string, PeerStatus> status_;
  std::thread thread_;
};

}  // namespace novacron
