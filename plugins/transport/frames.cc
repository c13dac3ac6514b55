#include "frames.h"

#include <algorithm>

#include "wire_format.h"

namespace novacron::transport {

std::vector<std::uint8_t> Hello::encode() const {
  ByteWriter w;
  w.u16(min_version);
  w.u16(max_version);
  w.u32(caps);
  w.u32(max_frame);
  w.u8(static_cast<std::uint8_t>(purpose));
  w.str(node);
  return std::move(w.data());
}

std::optional<Hello> Hello::decode(std::span<const std::uint8_t> payload) {
  ByteReader r(payload);
  Hello h;
  std::uint8_t purpose = 0;
  if (!r.u16(h.min_version) || !r.u16(h.max_version) || !r.u32(h.caps) || !r.u32(h.max_frame) || !r.u8(purpose) ||
      !r.str(h.node, kMaxNodeName) || !r.at_end()) {
    return std::nullopt;
  }
  if (purpose != 1 && purpose != 2) return std::nullopt;
  if (h.min_version == 0 || h.min_version > h.max_version || h.node.empty()) return std::nullopt;
  h.purpose = static_cast<Purpose>(purpose);
  return h;
}

std::vector<std::uint8_t> HelloOk::encode() const {
  ByteWriter w;
  w.u16(version);
  w.u32(caps);
  w.u32(max_frame);
  w.str(node);
  return std::move(w.data());
}

std::optional<HelloOk> HelloOk::decode(std::span<const std::uint8_t> payload) {
  ByteReader r(payload);
  HelloOk h;
  if (!r.u16(h.version) || !r.u32(h.caps) || !r.u32(h.max_frame) || !r.str(h.node, kMaxNodeName) || !r.at_end() ||
      h.version == 0 || h.node.empty()) {
    return std::nullopt;
  }
  return h;
}

std::vector<std::uint8_t> ErrorFrame::encode() const {
  ByteWriter w;
  w.u16(code);
  w.u16(0);
  w.u64(context);
  w.str(message.substr(0, kMaxErrorMessage));
  return std::move(w.data());
}

std::optional<ErrorFrame> ErrorFrame::decode(std::span<const std::uint8_t> payload) {
  ByteReader r(payload);
  ErrorFrame e;
  std::uint16_t zero = 1;
  if (!r.u16(e.code) || !r.u16(zero) || zero != 0 || !r.u64(e.context) || !r.str(e.message, kMaxErrorMessage) ||
      !r.at_end()) {
    return std::nullopt;
  }
  return e;
}

std::vector<std::uint8_t> Ping::encode() const {
  ByteWriter w;
  w.u64(nonce);
  w.u64(sent_ns);
  return std::move(w.data());
}

std::optional<Ping> Ping::decode(std::span<const std::uint8_t> payload) {
  ByteReader r(payload);
  Ping p;
  if (!r.u64(p.nonce) || !r.u64(p.sent_ns) || !r.at_end()) return std::nullopt;
  return p;
}

std::vector<std::uint8_t> Ack::encode() const {
  ByteWriter w;
  w.u64(applied_through);
  w.u64(bytes_written);
  return std::move(w.data());
}

std::optional<Ack> Ack::decode(std::span<const std::uint8_t> payload) {
  ByteReader r(payload);
  Ack a;
  if (!r.u64(a.applied_through) || !r.u64(a.bytes_written) || !r.at_end()) return std::nullopt;
  return a;
}

std::optional<std::uint16_t> negotiate_version(const Hello& hello, std::uint16_t our_min, std::uint16_t our_max) {
  std::uint16_t low = std::max(hello.min_version, our_min), high = std::min(hello.max_version, our_max);
  if (low > high) return std::nullopt;
  return high;
}

}  // namespace novacron::transport
