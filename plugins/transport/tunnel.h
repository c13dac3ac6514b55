// The stream tunnel (docs/transport-protocol.md, "Stream tunnel"): a byte stream between a
// loopback endpoint on this node and a target endpoint on a peer, for a hypervisor's
// live-migration stream. The source side opens the TLS connection, has the destination
// connect its target (TUNNEL_OPEN -> TUNNEL_READY), then binds a loopback listener that
// accepts exactly one connection. Each side then pumps both directions: local reads go out
// at once as TUNNEL_DATA chunks (each an independent zstd frame, or raw when that does not
// pay), so latency stays one chunk; local EOF becomes TUNNEL_EOF (a half-close), a local
// error TUNNEL_RESET. No resume: a broken tunnel fails, as a migration expects.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "frame_connection.h"
#include "transfer_entry.h"

namespace novacron::transport {

class BandwidthGate;

struct TunnelEnd {
  std::string error_code;  // "" = both directions ended cleanly
  std::string message;
};

// Pumps both directions between `local_fd` (a connected TCP socket, owned by the caller)
// and `conn` until both have ended or either fails; updates the entry's byte counts.
// compression: 0 raw, else a zstd level (adaptive maps to 1).
TunnelEnd pump_tunnel(FrameConnection& conn, int local_fd, int compression, BandwidthGate* gate, std::uint64_t gate_key,
                      TransferEntry& entry);

// "HOST:PORT" whose host is an IP address inside one of `cidrs` ("127.0.0.0/8", "::1/128").
bool tunnel_target_allowed(const std::string& target, const std::vector<std::string>& cidrs);

// Whether `cidr` is an IPv4 or IPv6 network with a prefix length ("10.0.0.0/8").
bool valid_cidr(const std::string& cidr);

// True for 127.0.0.0/8 and ::1.
bool is_loopback_address(const std::string& host);

// A listening TCP socket on `host`:0; the port is returned through `port`. -1 with `error`.
int listen_loopback(const std::string& host, std::uint16_t& port, std::string& error);

// Connects to "HOST:PORT" within `timeout_ms`; -1 with `error`.
int connect_tcp(const std::string& address, int timeout_ms, std::string& error);

}  // namespace novacron::transport
