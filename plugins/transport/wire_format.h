// The transport's wire format, version 1 (docs/design/migration-transport.md, section 3):
// the 16-byte frame header, the frame types with their payload caps, and bounds-checked
// little-endian readers and writers for payloads. Pure: no I/O.
//
//   offset size field
//   0      2    magic "NC"
//   2      1    version (1)
//   3      1    type
//   4      2    flags (bit 0 LAST; other bits must be 0)
//   6      2    reserved (0)
//   8      4    length of the payload (<= the type's cap and the connection's max frame)
//   12     4    seq: frames this side sent before this one
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace novacron::transport {

inline constexpr std::uint8_t kProtocolVersion = 1;
inline constexpr size_t kHeaderSize = 16;
inline constexpr std::uint32_t kMaxFrame = 2u << 20;  // 2 MiB, the largest cap (BLOCKS)
inline constexpr std::uint16_t kFlagLast = 1;

enum class FrameType : std::uint8_t {
  kHello = 0x01,
  kHelloOk = 0x02,
  kError = 0x03,
  kPing = 0x04,
  kPong = 0x05,
  kOffer = 0x10,
  kAccept = 0x11,
  kHashes = 0x12,
  kEntry = 0x13,
  kEntriesEnd = 0x14,
  kWant = 0x15,
  kBlocks = 0x20,
  kAck = 0x21,
  kEnd = 0x22,
  kResult = 0x23,
  kCancel = 0x24,
  kTunnelOpen = 0x30,
  kTunnelReady = 0x31,
  kTunnelData = 0x32,
  kTunnelEof = 0x33,
  kTunnelReset = 0x34,
};

// The payload cap of a frame type; nullopt for a type that does not exist.
std::optional<std::uint32_t> payload_cap(std::uint8_t type);
const char* frame_type_name(FrameType type);

struct FrameHeader {
  std::uint8_t version = kProtocolVersion;
  FrameType type = FrameType::kPing;
  std::uint16_t flags = 0;
  std::uint32_t length = 0;
  std::uint32_t seq = 0;
};

std::array<std::uint8_t, kHeaderSize> encode_header(const FrameHeader& header);

// Why a frame was refused; each closes the connection (section 3.7).
enum class WireError {
  kBadMagic,
  kBadVersion,
  kUnknownType,
  kBadFlags,
  kTooLarge,
  kOutOfOrder,
  kMalformed,
};
const char* wire_error_name(WireError error);

using Hash128 = std::array<std::uint8_t, 16>;

// Reads a payload front to back; every read checks the bounds and fails (false, nothing
// read) past the end. A payload is well-formed only when it is read to exactly its end.
class ByteReader {
 public:
  explicit ByteReader(std::span<const std::uint8_t> data) : data_(data) {}

  bool u8(std::uint8_t& v);
  bool u16(std::uint16_t& v);
  bool u32(std::uint32_t& v);
  bool u64(std::uint64_t& v);
  bool i64(std::int64_t& v);
  bool hash(Hash128& v);
  bool bytes(size_t n, std::span<const std::uint8_t>& out);
  // A u16 length and that many bytes: no NUL, at most `max` bytes.
  bool str(std::string& v, size_t max);

  bool at_end() const { return pos_ == data_.size(); }
  size_t offset() const { return pos_; }
  size_t remaining() const { return data_.size() - pos_; }

 private:
  bool take(size_t n, const std::uint8_t*& p);
  std::span<const std::uint8_t> data_;
  size_t pos_ = 0;
};

class ByteWriter {
 public:
  void u8(std::uint8_t v) { out_.push_back(v); }
  void u16(std::uint16_t v);
  void u32(std::uint32_t v);
  void u64(std::uint64_t v);
  void i64(std::int64_t v) { u64(static_cast<std::uint64_t>(v)); }
  void hash(const Hash128& v) { out_.insert(out_.end(), v.begin(), v.end()); }
  void bytes(std::span<const std::uint8_t> v) { out_.insert(out_.end(), v.begin(), v.end()); }
  // Strings longer than 65535 bytes are the caller's bug: cut, never wrapped.
  void str(const std::string& v);

  std::vector<std::uint8_t>& data() { return out_; }

 private:
  std::vector<std::uint8_t> out_;
};

}  // namespace novacron::transport
