// A frame connection to a peer, as the transfer and tunnel sessions see it: blocking calls
// from a session thread, with the socket, TLS and framing done on the transport's network
// thread (asio_net.cc). Reading and writing run independently, so a session can stream
// BLOCKS while HASHES and ACKs arrive. No Asio or OpenSSL types here.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "frame_reader.h"
#include "wire_format.h"

namespace novacron::transport {

struct Received {
  enum class Status { kFrame, kTimeout, kClosed };
  Status status = Status::kClosed;
  Frame frame;
  std::string reason;  // kClosed: why ("peer closed the connection", "truncated frame", a TLS alert, ...)
  // kClosed: the peer refused our certificate (a TLS alert after the handshake).
  bool certificate_refused = false;
};

class FrameConnection {
 public:
  virtual ~FrameConnection() = default;

  // Queues a frame (the seq is stamped here). `buffer` holds kHeaderSize bytes of room
  // followed by the payload, so the frame goes out without another copy. Blocks while more
  // than the connection's write budget is queued; false once the connection is closed.
  virtual bool send_prepared(FrameType type, std::uint16_t flags, std::vector<std::uint8_t> buffer) = 0;

  // Waits until a frame can be queued without blocking (or the connection closed): false
  // after `timeout`. A session that must keep reading while it sends (the sender draining
  // HASHES) waits here instead of blocking in send_prepared.
  virtual bool wait_writable(std::chrono::milliseconds timeout) = 0;

  // The next frame, waiting at most `timeout`.
  virtual Received receive(std::chrono::milliseconds timeout) = 0;

  // Sends what is queued, then closes TLS (close_notify) and the socket. Waits up to
  // `timeout` for that.
  virtual void close(std::chrono::milliseconds timeout) = 0;

  // Closes the socket at once; queued frames are dropped and blocked calls return.
  virtual void abort(const std::string& reason) = 0;

  // The node name in the peer's certificate (checked against the expected one).
  virtual const std::string& peer_name() const = 0;
  // TLS bytes this connection wrote to and read from its socket (records, alerts, handshake).
  virtual std::int64_t wire_bytes_sent() const = 0;
  virtual std::int64_t wire_bytes_received() const = 0;

  // Convenience: copies `payload` behind header room.
  bool send(FrameType type, std::uint16_t flags, const std::vector<std::uint8_t>& payload) {
    std::vector<std::uint8_t> buffer(kHeaderSize + payload.size());
    std::copy(payload.begin(), payload.end(), buffer.begin() + kHeaderSize);
    return send_prepared(type, flags, std::move(buffer));
  }
};

}  // namespace novacron::transport
