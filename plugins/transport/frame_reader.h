// Cuts a byte stream into frames (wire_format.h) and refuses bad ones as early as it can:
// a header is judged as soon as its 16 bytes are in (magic, version, type, flags, length
// against the type's cap and the connection's max frame, seq), before any payload is
// buffered, so a peer cannot make the receiver hold more than one frame's worth of bytes.
// An error is final: the connection closes (docs/design/migration-transport.md, 3.7).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "wire_format.h"

namespace novacron::transport {

struct Frame {
  FrameHeader header;
  std::vector<std::uint8_t> payload;
};

struct FrameError {
  WireError code;
  std::string reason;    // one line for the log
  std::uint64_t offset;  // of the offending frame's first byte in the stream
};

struct NeedMore {};

class FrameReader {
 public:
  explicit FrameReader(std::uint32_t max_frame = kMaxFrame) : max_frame_(max_frame) {}

  // Appends received bytes.
  void feed(std::span<const std::uint8_t> bytes);
  // The next complete frame, NeedMore, or the error that ends the connection (returned
  // again on every later call).
  std::variant<Frame, NeedMore, FrameError> next();

  // After HELLO_OK: the version frames must carry from now on.
  void set_version(std::uint8_t version) { version_ = version; }
  // Bytes buffered and not yet returned as frames.
  size_t buffered() const { return buffer_.size() - start_; }

 private:
  std::variant<Frame, NeedMore, FrameError> fail(WireError code, std::string reason);

  std::uint32_t max_frame_;
  std::uint8_t version_ = kProtocolVersion;
  std::vector<std::uint8_t> buffer_;
  size_t start_ = 0;                 // first unconsumed byte of buffer_
  std::uint64_t stream_offset_ = 0;  // of buffer_[start_]
  std::uint32_t expected_seq_ = 0;
  std::optional<FrameError> failed_;
};

// A whole frame: header and payload.
std::vector<std::uint8_t> encode_frame(FrameType type, std::uint16_t flags, std::uint32_t seq,
                                       std::span<const std::uint8_t> payload);

}  // namespace novacron::transport
