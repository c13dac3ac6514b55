#include "tunnel_frames.h"

#include "transfer_frames.h"
#include "wire_format.h"

namespace novacron::transport {

std::vector<std::uint8_t> TunnelOpen::encode() const {
  ByteWriter w;
  w.str(id);
  w.str(target);
  return std::move(w.data());
}

std::optional<TunnelOpen> TunnelOpen::decode(std::span<const std::uint8_t> payload) {
  ByteReader r(payload);
  TunnelOpen t;
  if (!r.str(t.id, kMaxTransferId) || !r.str(t.target, 300) || !r.at_end() || !valid_transfer_id(t.id) ||
      t.target.empty()) {
    return std::nullopt;
  }
  return t;
}

std::optional<TunnelDataView> TunnelDataView::decode(std::span<const std::uint8_t> payload) {
  ByteReader r(payload);
  TunnelDataView v;
  std::uint8_t pad8 = 0;
  std::uint16_t pad16 = 0;
  if (!r.u8(v.codec) || !r.u8(pad8) || !r.u16(pad16) || !r.u32(v.raw_len)) return std::nullopt;
  if (v.codec > 1 || pad8 != 0 || pad16 != 0 || v.raw_len == 0 || v.raw_len > kMaxTunnelChunk) return std::nullopt;
  if (!r.bytes(r.remaining(), v.bytes)) return std::nullopt;
  if (v.codec == 0 && v.bytes.size() != v.raw_len) return std::nullopt;
  return v;
}

std::vector<std::uint8_t> tunnel_data_prefix(std::uint8_t codec, std::uint32_t raw_len, size_t header_room) {
  ByteWriter w;
  for (size_t i = 0; i < header_room; ++i) w.u8(0);
  w.u8(codec);
  w.u8(0);
  w.u16(0);
  w.u32(raw_len);
  return std::move(w.data());
}

std::vector<std::uint8_t> TunnelReset::encode() const {
  ByteWriter w;
  w.u16(code);
  return std::move(w.data());
}

std::optional<TunnelReset> TunnelReset::decode(std::span<const std::uint8_t> payload) {
  ByteReader r(payload);
  TunnelReset t;
  if (!r.u16(t.code) || !r.at_end()) return std::nullopt;
  return t;
}

}  // namespace novacron::transport
