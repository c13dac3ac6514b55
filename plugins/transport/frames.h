// Payloads of the connection-level frames (docs/design/migration-transport.md, 3.3):
// HELLO, HELLO_OK, ERROR, PING/PONG and ACK. Each decodes only when the payload is read to
// exactly its end; strings are checked for length and NUL. The transfer frames (OFFER,
// HASHES, BLOCKS, ...) follow with the engines.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace novacron::transport {

inline constexpr std::uint32_t kCapZstd = 1u << 0;
inline constexpr std::uint32_t kCapTrees = 1u << 1;
inline constexpr std::uint32_t kCapTunnel = 1u << 2;
inline constexpr size_t kMaxNodeName = 63;
inline constexpr size_t kMaxErrorMessage = 1024;

enum class Purpose : std::uint8_t { kTransfer = 1, kTunnel = 2 };

struct Hello {
  std::uint16_t min_version = 1;
  std::uint16_t max_version = 1;
  std::uint32_t caps = 0;
  std::uint32_t max_frame = 0;
  Purpose purpose = Purpose::kTransfer;
  std::string node;

  std::vector<std::uint8_t> encode() const;
  static std::optional<Hello> decode(std::span<const std::uint8_t> payload);
};

struct HelloOk {
  std::uint16_t version = 1;
  std::uint32_t caps = 0;
  std::uint32_t max_frame = 0;
  std::string node;

  std::vector<std::uint8_t> encode() const;
  static std::optional<HelloOk> decode(std::span<const std::uint8_t> payload);
};

struct ErrorFrame {
  std::uint16_t code = 0;  // section 3.7
  std::uint64_t context = 0;
  std::string message;

  std::vector<std::uint8_t> encode() const;
  static std::optional<ErrorFrame> decode(std::span<const std::uint8_t> payload);
};

struct Ping {  // PONG echoes it
  std::uint64_t nonce = 0;
  std::uint64_t sent_ns = 0;

  std::vector<std::uint8_t> encode() const;
  static std::optional<Ping> decode(std::span<const std::uint8_t> payload);
};

struct Ack {
  std::uint64_t applied_through = 0;  // blocks below it are written
  std::uint64_t bytes_written = 0;

  std::vector<std::uint8_t> encode() const;
  static std::optional<Ack> decode(std::span<const std::uint8_t> payload);
};

// The version both sides speak, or nullopt: the highest version in both ranges.
std::optional<std::uint16_t> negotiate_version(const Hello& hello, std::uint16_t our_min, std::uint16_t our_max);

}  // namespace novacron::transport
