// One node's migration transport: the listener, outgoing transfers with retries, incoming
// transfers, resume records and their janitor, bandwidth limits, and the table of transfers
// the API reads. The plugin (plugin.cc) wraps it for the host; tests run two of them in one
// process on loopback.
//
// Threads: the network thread (asio_net), `workers` compression threads, one thread per
// running transfer (sender or receiver session), and the janitor.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "asio_net.h"
#include "novacron/sdk/migration_transport.hpp"
#include "novacron/sdk/status.hpp"
#include "safe_path.h"
#include "transfer_frames.h"

namespace novacron::transport {

class BandwidthGate;
class PartialStore;
class TransferEntry;
class WorkerPool;

struct TransportOptions {
  std::string node_name;
  TlsIdentity identity;
  std::string listen_address = "127.0.0.1:0";
  std::map<std::string, std::string> peers;  // node name -> transport address
  std::string data_dir;                      // partial records under data_dir/transport
  int workers = 2;
  int retries = 5;  // attempts after the first
  std::chrono::milliseconds retry_initial_backoff{500};
  std::chrono::milliseconds retry_max_backoff{30000};
  std::chrono::seconds partial_retention{24 * 3600};
  std::chrono::seconds janitor_interval{60};
  bool fsync = true;  // durability of received files
  std::int64_t node_bwlimit_bytes_per_second = 0;
  std::uint32_t default_block_size = 4096;
  int max_compression_level = 9;     // adaptive mode's ceiling
  size_t max_transfers_kept = 1000;  // finished transfers listed before the oldest go
  int max_incoming = 16;
  bool index_cache = true;  // keep block indexes of received files (the plugin's default: off)             // receive
                            // sessions at once; more are refused busy (retried)
  NetLimits net;
  // Where the node's log lines go (the plugin: HostServices::log); warnings carry the
  // reason a connection or an attempt ended.
  std::function<void(bool warning, const std::string& message)> log;
  // Tests only: corrupts literal bytes after hashing (see SendParams).
  std::function<void(std::vector<std::uint8_t>&)> corrupt_literals;
};

// Events: "transfer.started", "transfer.progress" (at most once a second per transfer),
// "transfer.retrying", "transfer.succeeded", "transfer.failed", "transfer.cancelled",
// "transfer.partial".
using TransferEventSink = std::function<void(const std::string& type, const sdk::TransferStatus& status)>;

class TransportNode {
 public:
  explicit TransportNode(TransportOptions options);
  ~TransportNode();
  TransportNode(const TransportNode&) = delete;
  TransportNode& operator=(const TransportNode&) = delete;

  // Loads the identity, listens, starts the janitor. kInvalidArgument / kUnavailable with
  // the reason.
  sdk::Status start();
  void stop();
  // The bound "HOST:PORT" after start.
  std::string listen_address() const;

  void set_event_sink(TransferEventSink sink);
  sdk::Status set_receive_policy(const sdk::ReceivePolicy& policy);
  sdk::Result<sdk::TransferStatus> send(const sdk::SendRequest& request);
  // Connects to the peer, has it connect its target, binds the loopback endpoint; returns
  // the tunnel in state listening with its local_address.
  sdk::Result<sdk::TransferStatus> open_tunnel(const sdk::TunnelRequest& request);
  sdk::Result<sdk::TransferStatus> status(std::string_view id) const;
  std::vector<sdk::TransferStatus> list(std::string_view after, size_t limit) const;
  sdk::Result<sdk::TransferStatus> wait(std::string_view id, std::chrono::milliseconds timeout) const;
  sdk::Status cancel(std::string_view id);
  sdk::Status set_transfer_limit(std::string_view id, std::int64_t bytes_per_second);
  sdk::Status set_node_limit(std::int64_t bytes_per_second);
  std::int64_t node_limit() const;

  // Removes partials older than the retention now (the janitor's work; tests call it).
  size_t clean_partials(std::chrono::milliseconds retention);

 private:
  struct SessionThread {
    std::thread thread;
    std::shared_ptr<std::atomic<bool>> done;
  };

  void run_send(const std::shared_ptr<TransferEntry>& entry, const sdk::SendRequest& request, std::uint64_t key);
  void on_connection(std::unique_ptr<FrameConnection> conn);
  void run_tunnel_source(const std::shared_ptr<TransferEntry>& entry, const std::shared_ptr<FrameConnection>& conn,
                         int listen_fd, const sdk::TunnelRequest& request, std::uint64_t key);
  sdk::Status tunnel_handshake(FrameConnection& conn, const sdk::TunnelRequest& request);
  std::shared_ptr<TransferEntry> begin_tunnel(const std::string& id, const std::string& peer, const std::string& target,
                                              std::string& error);
  std::shared_ptr<TransferEntry> begin_receive(const Offer& offer, const std::string& peer, std::string& error);
  void emit(const std::string& type, const sdk::TransferStatus& status);
  void spawn(std::function<void()> fn);
  void janitor_loop();
  void trim_finished();
  bool peer_allowed(const std::string& name) const;

  TransportOptions opt_;
  std::unique_ptr<NetService> net_;
  std::unique_ptr<WorkerPool> workers_;
  std::unique_ptr<BandwidthGate> gate_;
  std::unique_ptr<PartialStore> partials_;
  std::string bound_address_;
  std::string index_dir_;  // "" = no index cache
  std::atomic<std::int64_t> node_limit_{0};

  mutable std::mutex mu_;
  std::condition_variable stop_cv_;
  bool stopping_ = false;
  std::shared_ptr<const Fd> root_;  // the receive root; sessions hold their own reference
  int active_receives_ = 0;
  std::vector<std::string> allowed_peers_;
  std::vector<std::string> tunnel_targets_{"127.0.0.0/8", "::1/128"};
  std::vector<dev_t> block_devices_;
  std::map<std::string, std::shared_ptr<TransferEntry>, std::less<>> transfers_;
  std::map<std::string, std::uint64_t, std::less<>> gate_keys_;
  std::uint64_t next_key_ = 1;
  TransferEventSink sink_;
  std::vector<SessionThread> threads_;
  std::thread janitor_;
};

}  // namespace novacron::transport
