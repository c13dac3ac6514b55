// The transport's network side (docs/transport-protocol.md, "Connections"): one thread
// running an Asio io_context for every socket of the node: the listener, TLS 1.3 with mutual
// authentication by node certificates of the cluster CA, ALPN "novacron-transport/1", and
// the FrameConnections handed to sessions. This header exposes no Asio or OpenSSL types; the
// .cc is the only translation unit of the transport that includes them.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "frame_connection.h"

namespace novacron::transport {

struct TlsIdentity {
  std::string ca_file;    // the cluster CA (PEM)
  std::string cert_file;  // this node's certificate (PEM)
  std::string key_file;   // its private key (PEM, 0600)
};

// Why a connect failed; `code` is one of the client-side codes of the protocol document:
// connect_failed, tls_failed, untrusted_certificate, name_mismatch, timeout.
struct ConnectError {
  std::string code;
  std::string message;
};

struct NetLimits {
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds handshake_timeout{10000};
  size_t write_budget_bytes = 8u << 20;  // send_prepared blocks above it
  size_t read_budget_bytes = 32u << 20;  // reading pauses while this much waits in receive()
  std::uint32_t max_frame = kMaxFrame;
  // Told why the listener refused or closed a connection before a session had it (TLS
  // failures, no ALPN, not a peer, bad frames): one line for the log.
  std::function<void(const std::string& message)> log_refusal;
};

class NetService {
 public:
  // A connection that passed TLS; the callback decides (on the network thread, quickly)
  // and usually hands it to a session thread.
  using AcceptHandler = std::function<void(std::unique_ptr<FrameConnection>)>;
  // Whether a client with this certificate name may connect at all (peers list).
  using PeerFilter = std::function<bool(const std::string& name)>;

  virtual ~NetService() = default;

  // Loads the identity (errors name the file) and starts the network thread.
  static std::unique_ptr<NetService> create(const TlsIdentity& identity, const NetLimits& limits, std::string& error);

  // Listens on "HOST:PORT" (port 0 = any); returns the bound port, or 0 with `error`.
  virtual std::uint16_t listen(const std::string& address, PeerFilter filter, AcceptHandler handler,
                               std::string& error) = 0;

  // Connects to `address` ("HOST:PORT") and requires the server's certificate to carry
  // `peer_name`. Blocks the calling thread (never call it on the network thread).
  virtual std::unique_ptr<FrameConnection> connect(const std::string& address, const std::string& peer_name,
                                                   ConnectError& error) = 0;

  // Closes the listener and every connection, and joins the thread.
  virtual void stop() = 0;
};

// Splits "HOST:PORT" / "[v6]:PORT"; false when malformed.
bool split_host_port(const std::string& address, std::string& host, std::uint16_t& port);

}  // namespace novacron::transport
