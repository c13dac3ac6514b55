#include "frame_reader.h"

#include <algorithm>
#include <cstring>

namespace novacron::transport {

void FrameReader::feed(std::span<const std::uint8_t> bytes) {
  if (failed_) return;
  // Drop what was consumed before growing: the buffer stays near one frame.
  if (start_ > 0 && start_ >= buffer_.size() / 2) {
    buffer_.erase(buffer_.begin(), buffer_.begin() + static_cast<std::ptrdiff_t>(start_));
    start_ = 0;
  }
  buffer_.insert(buffer_.end(), bytes.begin(), bytes.end());
}

std::variant<Frame, NeedMore, FrameError> FrameReader::fail(WireError code, std::string reason) {
  failed_ = FrameError{code, std::move(reason), stream_offset_};
  buffer_.clear();
  start_ = 0;
  return *failed_;
}

std::variant<Frame, NeedMore, FrameError> FrameReader::next() {
  if (failed_) return *failed_;
  if (buffered() < kHeaderSize) return NeedMore{};
  ByteReader r({buffer_.data() + start_, kHeaderSize});
  std::uint8_t m0 = 0, m1 = 0, version = 0, type = 0;
  std::uint16_t flags = 0, reserved = 0;
  std::uint32_t length = 0, seq = 0;
  r.u8(m0);
  r.u8(m1);
  r.u8(version);
  r.u8(type);
  r.u16(flags);
  r.u16(reserved);
  r.u32(length);
  r.u32(seq);
  if (m0 != 'N' || m1 != 'C') return fail(WireError::kBadMagic, "not a NovaCron transport frame");
  if (version != version_) {
    return fail(WireError::kBadVersion,
                "frame version " + std::to_string(version) + ", expected " + std::to_string(version_));
  }
  auto cap = payload_cap(type);
  if (!cap) return fail(WireError::kUnknownType, "unknown frame type " + std::to_string(type));
  const char* name = frame_type_name(static_cast<FrameType>(type));
  if ((flags & ~kFlagLast) != 0 || reserved != 0) {
    return fail(WireError::kBadFlags, std::string(name) + " with reserved bits set");
  }
  if (length > *cap || length > max_frame_) {
    return fail(WireError::kTooLarge, std::string(name) + " of " + std::to_string(length) + " bytes (at most " +
                                          std::to_string(std::min(*cap, max_frame_)) + ")");
  }
  if (seq != expected_seq_) {
    return fail(WireError::kOutOfOrder,
                std::string(name) + " with seq " + std::to_string(seq) + ", expected " + std::to_string(expected_seq_));
  }
  if (buffered() < kHeaderSize + length) return NeedMore{};
  Frame f;
  f.header = {version, static_cast<FrameType>(type), flags, length, seq};
  const std::uint8_t* payload = buffer_.data() + start_ + kHeaderSize;
  f.payload.assign(payload, payload + length);
  start_ += kHeaderSize + length;
  stream_offset_ += kHeaderSize + length;
  ++expected_seq_;
  if (start_ == buffer_.size()) {
    buffer_.clear();
    start_ = 0;
  }
  return f;
}

std::vector<std::uint8_t> encode_frame(FrameType type, std::uint16_t flags, std::uint32_t seq,
                                       std::span<const std::uint8_t> payload) {
  FrameHeader h{kProtocolVersion, type, flags, static_cast<std::uint32_t>(payload.size()), seq};
  auto header = encode_header(h);
  std::vector<std::uint8_t> out(header.begin(), header.end());
  out.insert(out.end(), payload.begin(), payload.end());
  return out;
}

}  // namespace novacron::transport
