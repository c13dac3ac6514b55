#include "wire_format.h"

#include <algorithm>
#include <cstring>

namespace novacron::transport {

std::optional<std::uint32_t> payload_cap(std::uint8_t type) {
  switch (static_cast<FrameType>(type)) {
    case FrameType::kHello:
    case FrameType::kHelloOk:
    case FrameType::kTunnelOpen:
      return 1024;
    case FrameType::kError:
    case FrameType::kResult:
    case FrameType::kCancel:
      return 2048;
    case FrameType::kPing:
    case FrameType::kPong:
    case FrameType::kAck:
      return 16;
    case FrameType::kOffer:
      return 16 * 1024;
    case FrameType::kAccept:
      return 32;
    case FrameType::kHashes:
      return 66060;  // 16 + 512 bitmap bytes + 4096 hashes, rounded as the design says
    case FrameType::kEntry:
      return 288 * 1024;
    case FrameType::kEntriesEnd:
      return 12;
    case FrameType::kWant:
      return 20484;
    case FrameType::kBlocks:
      return kMaxFrame;
    case FrameType::kEnd:
      return 33;
    case FrameType::kTunnelReady:
    case FrameType::kTunnelEof:
      return 0;
    case FrameType::kTunnelData:
      return 272 * 1024;
    case FrameType::kTunnelReset:
      return 2;
  }
  return std::nullopt;
}

const char* frame_type_name(FrameType type) {
  switch (type) {
    case FrameType::kHello:
      return "HELLO";
    case FrameType::kHelloOk:
      return "HELLO_OK";
    case FrameType::kError:
      return "ERROR";
    case FrameType::kPing:
      return "PING";
    case FrameType::kPong:
      return "PONG";
    case FrameType::kOffer:
      return "OFFER";
    case FrameType::kAccept:
      return "ACCEPT";
    case FrameType::kHashes:
      return "HASHES";
    case FrameType::kEntry:
      return "ENTRY";
    case FrameType::kEntriesEnd:
      return "ENTRIES_END";
    case FrameType::kWant:
      return "WANT";
    case FrameType::kBlocks:
      return "BLOCKS";
    case FrameType::kAck:
      return "ACK";
    case FrameType::kEnd:
      return "END";
    case FrameType::kResult:
      return "RESULT";
    case FrameType::kCancel:
      return "CANCEL";
    case FrameType::kTunnelOpen:
      return "TUNNEL_OPEN";
    case FrameType::kTunnelReady:
      return "TUNNEL_READY";
    case FrameType::kTunnelData:
      return "TUNNEL_DATA";
    case FrameType::kTunnelEof:
      return "TUNNEL_EOF";
    case FrameType::kTunnelReset:
      return "TUNNEL_RESET";
  }
  return "UNKNOWN";
}

const char* wire_error_name(WireError error) {
  switch (error) {
    case WireError::kBadMagic:
      return "bad magic";
    case WireError::kBadVersion:
      return "unsupported version";
    case WireError::kUnknownType:
      return "unknown frame type";
    case WireError::kBadFlags:
      return "reserved bits set";
    case WireError::kTooLarge:
      return "frame too large";
    case WireError::kOutOfOrder:
      return "frame out of order";
    case WireError::kMalformed:
      return "malformed payload";
  }
  return "unknown";
}

std::array<std::uint8_t, kHeaderSize> encode_header(const FrameHeader& h) {
  ByteWriter w;
  w.u8('N');
  w.u8('C');
  w.u8(h.version);
  w.u8(static_cast<std::uint8_t>(h.type));
  w.u16(h.flags);
  w.u16(0);
  w.u32(h.length);
  w.u32(h.seq);
  std::array<std::uint8_t, kHeaderSize> out{};
  std::memcpy(out.data(), w.data().data(), kHeaderSize);
  return out;
}

bool ByteReader::take(size_t n, const std::uint8_t*& p) {
  if (n > data_.size() - pos_) return false;
  p = data_.data() + pos_;
  pos_ += n;
  return true;
}

bool ByteReader::u8(std::uint8_t& v) {
  const std::uint8_t* p = nullptr;
  if (!take(1, p)) return false;
  v = p[0];
  return true;
}

bool ByteReader::u16(std::uint16_t& v) {
  const std::uint8_t* p = nullptr;
  if (!take(2, p)) return false;
  v = static_cast<std::uint16_t>(p[0] | (p[1] << 8));
  return true;
}

bool ByteReader::u32(std::uint32_t& v) {
  const std::uint8_t* p = nullptr;
  if (!take(4, p)) return false;
  v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | p[i];
  return true;
}

bool ByteReader::u64(std::uint64_t& v) {
  const std::uint8_t* p = nullptr;
  if (!take(8, p)) return false;
  v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return true;
}

bool ByteReader::i64(std::int64_t& v) {
  std::uint64_t u = 0;
  if (!u64(u)) return false;
  v = static_cast<std::int64_t>(u);
  return true;
}

bool ByteReader::hash(Hash128& v) {
  const std::uint8_t* p = nullptr;
  if (!take(v.size(), p)) return false;
  std::memcpy(v.data(), p, v.size());
  return true;
}

bool ByteReader::bytes(size_t n, std::span<const std::uint8_t>& out) {
  const std::uint8_t* p = nullptr;
  if (!take(n, p)) return false;
  out = {p, n};
  return true;
}

bool ByteReader::str(std::string& v, size_t max) {
  size_t start = pos_;
  std::uint16_t len = 0;
  std::span<const std::uint8_t> raw;
  if (!u16(len) || len > max || !bytes(len, raw) || std::memchr(raw.data(), 0, raw.size()) != nullptr) {
    pos_ = start;
    return false;
  }
  v.assign(reinterpret_cast<const char*>(raw.data()), raw.size());
  return true;
}

void ByteWriter::u16(std::uint16_t v) {
  out_.push_back(static_cast<std::uint8_t>(v));
  out_.push_back(static_cast<std::uint8_t>(v >> 8));
}

void ByteWriter::u32(std::uint32_t v) {
  for (int i = 0; i < 4; ++i) out_.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
}

void ByteWriter::u64(std::uint64_t v) {
  for (int i = 0; i < 8; ++i) out_.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
}

void ByteWriter::str(const std::string& v) {
  size_t n = std::min<size_t>(v.size(), 0xffff);
  u16(static_cast<std::uint16_t>(n));
  out_.insert(out_.end(), v.begin(), v.begin() + static_cast<std::ptrdiff_t>(n));
}

}  // namespace novacron::transport
