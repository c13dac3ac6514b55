// Payloads of the tunnel frames (docs/transport-protocol.md, "Stream tunnel"):
// TUNNEL_OPEN, TUNNEL_DATA and TUNNEL_RESET; TUNNEL_READY and TUNNEL_EOF are empty.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace novacron::transport {

inline constexpr std::uint32_t kMaxTunnelChunk = 256u << 10;

struct TunnelOpen {
  std::string id;
  std::string target;  // "HOST:PORT" on the destination, inside its tunnel_targets
  std::vector<std::uint8_t> encode() const;
  static std::optional<TunnelOpen> decode(std::span<const std::uint8_t> payload);
};

struct TunnelDataView {
  std::uint8_t codec = 0;  // 0 raw, 1 zstd (each chunk one complete frame)
  std::uint32_t raw_len = 0;
  std::span<const std::uint8_t> bytes;
  static std::optional<TunnelDataView> decode(std::span<const std::uint8_t> payload);
};

// Header room + TUNNEL_DATA prefix; the caller appends the bytes.
std::vector<std::uint8_t> tunnel_data_prefix(std::uint8_t codec, std::uint32_t raw_len, size_t header_room);

struct TunnelReset {
  std::uint16_t code = 0;
  std::vector<std::uint8_t> encode() const;
  static std::optional<TunnelReset> decode(std::span<const std::uint8_t> payload);
};

}  // namespace novacron::transport
