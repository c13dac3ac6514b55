// MigrationTransport: moves files, block devices, directory trees and byte streams between
// this node and a peer node, for migrations (docs/transport-protocol.md has the wire
// protocol, docs/api.md and docs/cli.md the operator's view).
//
// The host calls it from its blocking executor, possibly from several threads at once; only
// wait_transfer blocks for long. Paths in a SendRequest were resolved by the host (beneath
// its transfers root); paths that come from peers are resolved by the plugin beneath
// ReceivePolicy::root, never outside it.
//
// Errors: kInvalidArgument naming the field ("id: ..."), kAlreadyExists for an id that is
// running, kNotFound for an unknown transfer, kFailedPrecondition for an unknown peer or a
// transfer that has ended, kUnavailable while the plugin has no receive policy or identity.
//
// Interface version 1 (SDK 1.3).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "novacron/sdk/plugin.hpp"

namespace novacron::sdk {

enum class TransferKind : int { kFile = 1, kBlockDevice = 2, kDirectory = 3, kTunnel = 4 };
enum class TransferDirection : int { kSend = 1, kReceive = 2 };
// Shares of the node's bandwidth limit: a higher class waiting for node bandwidth holds back
// the lower ones.
enum class TransferPriority : int { kLive = 0, kCold = 1, kBackground = 2 };
enum class TransferState : int {
  kQueued = 0,
  kConnecting = 1,
  kRunning = 2,
  kVerifying = 3,
  kRetrying = 4,
  kPartial = 5,  // receive side: interrupted, resumable until the retention time ends
  kSucceeded = 6,
  kFailed = 7,
  kCancelled = 8,
  kListening = 9,  // tunnels: waiting for the local connection
  kClosed = 10,    // tunnels: ended cleanly
};

struct SendRequest {
  std::string id;  // [a-z0-9][a-z0-9-]{0,63}; sending an id again (after a failure) resumes it
  TransferKind kind = TransferKind::kFile;
  std::string source;  // absolute, on this node
  std::string peer;    // node name of a cluster peer
  std::string target;  // on the peer: relative to its receive root
  std::string base;    // on the peer, relative; "" = the target itself when it exists
  TransferPriority priority = TransferPriority::kCold;
  std::int64_t bwlimit_bytes_per_second = 0;  // 0 = none; the node limit always applies
  int compression = -1;                       // -1 adaptive, 0 off, 1..19 a fixed zstd level
  std::uint32_t block_size = 0;               // 0 = the plugin's default (4096); a power of 2, 4 KiB..1 MiB
  // Update an existing target in place instead of writing a temp file and renaming it: only
  // changed blocks are written; the target is incomplete (listed as partial) until verified.
  bool in_place = false;
};

struct TunnelRequest {
  std::string id;
  std::string peer;
  std::string target_address;                // "HOST:PORT" on the peer, inside its tunnel_targets
  std::string listen_address = "127.0.0.1";  // loopback only; the port is picked
  TransferPriority priority = TransferPriority::kLive;
  std::int64_t bwlimit_bytes_per_second = 0;
  int compression = -1;
  std::chrono::seconds accept_timeout{300};
};

// What peers may do on this node.
struct ReceivePolicy {
  std::string root;                         // file targets and bases resolve beneath it
  std::vector<std::string> block_devices;   // devices a peer may write (later)
  std::vector<std::string> tunnel_targets;  // CIDRs a tunnel may connect to
  std::vector<std::string> allowed_peers;   // empty = every cluster peer
};

struct TransferStats {
  std::int64_t bytes_total = 0;  // raw bytes of the source (tunnels: -1)
  std::int64_t bytes_done = 0;
  std::int64_t wire_bytes_sent = 0;  // TLS bytes this side wrote to its socket
  std::int64_t wire_bytes_received = 0;
  std::int64_t literal_raw_bytes = 0;   // block data sent (or received) as data
  std::int64_t literal_wire_bytes = 0;  // the same after compression
  std::int64_t blocks_total = 0;
  std::int64_t blocks_literal = 0;
  std::int64_t blocks_delta = 0;  // already on the receiver (KEEP) or copied from its base
  std::int64_t blocks_dedup = 0;  // repeats of an earlier block of this transfer
  std::int64_t blocks_zero = 0;
  std::int64_t blocks_resumed = 0;  // kept from an interrupted attempt
  std::int64_t files_total = 0;
  std::int64_t files_skipped = 0;
  std::int64_t eta_ms = -1;
  std::int64_t elapsed_ms = 0;
  int compression_level = 0;  // last level used; 0 = raw
  int attempts = 0;
  double throughput_bytes_per_second = 0;  // raw bytes per second over the last seconds
};

struct TransferStatus {
  std::string id;
  std::string peer;
  std::string source;  // "" on the receive side
  std::string target;
  TransferKind kind = TransferKind::kFile;
  TransferDirection direction = TransferDirection::kSend;
  TransferState state = TransferState::kQueued;
  std::string error_code;  // protocol error names ("verification_failed", "connection_lost", ...)
  std::string error_message;
  TransferPriority priority = TransferPriority::kCold;
  std::int64_t bwlimit_bytes_per_second = 0;
  std::int64_t created_at_ms = 0;  // Unix time
  std::int64_t updated_at_ms = 0;
  int compression = -1;
  std::string local_address;  // tunnels: the loopback endpoint
  std::string digest;         // "xxh3-128:<32 hex>" once verified
  TransferStats stats;
};

class MigrationTransport : public PluginInstance {
 public:
  using Interface = MigrationTransport;
  static constexpr NovacronPluginKind kKind = NOVACRON_KIND_MIGRATION_TRANSPORT;
  static constexpr std::uint32_t kInterfaceVersion = 1;

  // Replaces the receive policy; incoming transfers are refused (not_ready) until the first call.
  virtual Status set_receive_policy(const ReceivePolicy& policy) noexcept = 0;
  // Starts a send and returns at once (state queued).
  virtual Result<TransferStatus> send(const SendRequest& request) noexcept = 0;
  // Connects to the peer, has it connect target_address, then binds the loopback endpoint
  // (local_address in the answer, state listening) that accepts exactly one connection.
  virtual Result<TransferStatus> open_tunnel(const TunnelRequest& request) noexcept = 0;
  virtual Result<TransferStatus> transfer_status(std::string_view id) noexcept = 0;
  // Both directions, ordered by id, after `after` (exclusive), at most `limit`.
  virtual Result<std::vector<TransferStatus>> list_transfers(std::string_view after, std::size_t limit) noexcept = 0;
  // Blocks until the transfer has ended or `timeout` passed; returns its status then.
  virtual Result<TransferStatus> wait_transfer(std::string_view id, std::chrono::milliseconds timeout) noexcept = 0;
  virtual Status cancel_transfer(std::string_view id) noexcept = 0;
  // Bytes per second, 0 = none; takes effect within milliseconds, also mid-transfer.
  virtual Status set_transfer_limit(std::string_view id, std::int64_t bytes_per_second) noexcept = 0;
  virtual Status set_node_limit(std::int64_t bytes_per_second) noexcept = 0;
  virtual Result<std::int64_t> node_limit() noexcept = 0;
};

// Base for transport plugins: every call is guarded (no exception crosses the boundary).
class MigrationTransportBase : public PluginBase<MigrationTransport> {
 public:
  Status set_receive_policy(const ReceivePolicy& policy) noexcept final {
    return guard_status("set_receive_policy", [&] { return on_set_receive_policy(policy); });
  }
  Result<TransferStatus> send(const SendRequest& request) noexcept final {
    return guard_result<TransferStatus>("send", [&] { return on_send(request); });
  }
  Result<TransferStatus> open_tunnel(const TunnelRequest& request) noexcept final {
    return guard_result<TransferStatus>("open_tunnel", [&] { return on_open_tunnel(request); });
  }
  Result<TransferStatus> transfer_status(std::string_view id) noexcept final {
    return guard_result<TransferStatus>("transfer_status", [&] { return on_transfer_status(id); });
  }
  Result<std::vector<TransferStatus>> list_transfers(std::string_view after, std::size_t limit) noexcept final {
    return guard_result<std::vector<TransferStatus>>("list_transfers", [&] { return on_list_transfers(after, limit); });
  }
  Result<TransferStatus> wait_transfer(std::string_view id, std::chrono::milliseconds timeout) noexcept final {
    return guard_result<TransferStatus>("wait_transfer", [&] { return on_wait_transfer(id, timeout); });
  }
  Status cancel_transfer(std::string_view id) noexcept final {
    return guard_status("cancel_transfer", [&] { return on_cancel_transfer(id); });
  }
  Status set_transfer_limit(std::string_view id, std::int64_t bytes_per_second) noexcept final {
    return guard_status("set_transfer_limit", [&] { return on_set_transfer_limit(id, bytes_per_second); });
  }
  Status set_node_limit(std::int64_t bytes_per_second) noexcept final {
    return guard_status("set_node_limit", [&] { return on_set_node_limit(bytes_per_second); });
  }
  Result<std::int64_t> node_limit() noexcept final {
    return guard_result<std::int64_t>("node_limit", [&] { return on_node_limit(); });
  }

 protected:
  virtual Status on_set_receive_policy(const ReceivePolicy& policy) = 0;
  virtual Result<TransferStatus> on_send(const SendRequest& request) = 0;
  virtual Result<TransferStatus> on_open_tunnel(const TunnelRequest& request) = 0;
  virtual Result<TransferStatus> on_transfer_status(std::string_view id) = 0;
  virtual Result<std::vector<TransferStatus>> on_list_transfers(std::string_view after, std::size_t limit) = 0;
  virtual Result<TransferStatus> on_wait_transfer(std::string_view id, std::chrono::milliseconds timeout) = 0;
  virtual Status on_cancel_transfer(std::string_view id) = 0;
  virtual Status on_set_transfer_limit(std::string_view id, std::int64_t bytes_per_second) = 0;
  virtual Status on_set_node_limit(std::int64_t bytes_per_second) = 0;
  virtual Result<std::int64_t> on_node_limit() = 0;
};

inline const char* transfer_state_name(TransferState s) noexcept {
  switch (s) {
    case TransferState::kQueued:
      return "queued";
    case TransferState::kConnecting:
      return "connecting";
    case TransferState::kRunning:
      return "running";
    case TransferState::kVerifying:
      return "verifying";
    case TransferState::kRetrying:
      return "retrying";
    case TransferState::kPartial:
      return "partial";
    case TransferState::kSucceeded:
      return "succeeded";
    case TransferState::kFailed:
      return "failed";
    case TransferState::kCancelled:
      return "cancelled";
    case TransferState::kListening:
      return "listening";
    case TransferState::kClosed:
      return "closed";
  }
  return "unknown";
}

inline bool transfer_state_is_final(TransferState s) noexcept {
  return s == TransferState::kSucceeded || s == TransferState::kFailed || s == TransferState::kCancelled ||
         s == TransferState::kClosed || s == TransferState::kPartial;
}

inline const char* transfer_kind_name(TransferKind k) noexcept {
  switch (k) {
    case TransferKind::kFile:
      return "file";
    case TransferKind::kBlockDevice:
      return "block_device";
    case TransferKind::kDirectory:
      return "directory";
    case TransferKind::kTunnel:
      return "tunnel";
  }
  return "unknown";
}

inline const char* transfer_priority_name(TransferPriority p) noexcept {
  switch (p) {
    case TransferPriority::kLive:
      return "live";
    case TransferPriority::kCold:
      return "cold";
    case TransferPriority::kBackground:
      return "background";
  }
  return "unknown";
}

}  // namespace novacron::sdk
