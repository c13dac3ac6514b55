#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "host/common/error.h"

namespace novacron {

using Sha256Digest = std::array<std::uint8_t, 32>;

// Hashes everything readable from `fd`, starting at offset 0 (pread: the fd's position is
// not moved, so the same fd can be handed to dlopen afterwards).
Expected<Sha256Digest> sha256_fd(int fd);
Expected<Sha256Digest> sha256_file(const std::string& path);
Sha256Digest sha256_bytes(std::string_view bytes);

std::string to_hex(const Sha256Digest& digest);
// Parses 64 hex digits; returns false on anything else.
bool from_hex(std::string_view hex, Sha256Digest& out);

}  // namespace novacron
