// The receiving side's first look at a BLOCKS frame, shared by files, devices and trees:
// the frame must continue exactly where the last one ended and stay within the transfer,
// its literal bytes must be as long as its LITERAL blocks, and a zstd payload must decode
// to exactly that length. Pure apart from the decompressor's buffers.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "codec.h"
#include "error_codes.h"
#include "transfer_frames.h"

namespace novacron::transport {

struct DecodedBlocks {
  BlocksView view;
  std::span<const std::uint8_t> literal;  // raw literal bytes, in block order
};

struct BlocksRefusal {
  ErrorCode code;
  std::string message;
};

// `block_len(j)` is the length of block j of the transfer; `decoded` holds decompressed
// bytes (the result's `literal` may point into it or into `payload`).
std::variant<DecodedBlocks, BlocksRefusal> decode_blocks_at(
    std::span<const std::uint8_t> payload, std::uint64_t next_block, std::uint64_t total_blocks,
    const std::function<std::uint32_t(std::uint64_t)>& block_len, BatchDecompressor& decompressor,
    std::vector<std::uint8_t>& decoded);

}  // namespace novacron::transport
