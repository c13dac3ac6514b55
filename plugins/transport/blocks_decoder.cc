#include "blocks_decoder.h"

namespace novacron::transport {

std::variant<DecodedBlocks, BlocksRefusal> decode_blocks_at(
    std::span<const std::uint8_t> payload, std::uint64_t next_block, std::uint64_t total_blocks,
    const std::function<std::uint32_t(std::uint64_t)>& block_len, BatchDecompressor& decompressor,
    std::vector<std::uint8_t>& decoded) {
  auto v = BlocksView::decode(payload);
  if (!v) return BlocksRefusal{ErrorCode::kMalformed, "bad BLOCKS frame"};
  const BlocksHeader& h = v->header;
  if (h.first_block != next_block || h.first_block + h.block_count > total_blocks) {
    return BlocksRefusal{ErrorCode::kUnexpectedFrame, "BLOCKS for " + std::to_string(h.first_block) + "+" +
                                                          std::to_string(h.block_count) + " but block " +
                                                          std::to_string(next_block) + " is next"};
  }
  std::uint64_t literal_expected = 0;
  std::uint64_t j = h.first_block;
  for (const OpRun& op : v->ops) {
    for (std::uint32_t k = 0; k < op.run; ++k, ++j) {
      if (op.op == BlockOp::kLiteral) literal_expected += block_len(j);
    }
  }
  if (literal_expected != h.literal_raw_len) {
    return BlocksRefusal{ErrorCode::kUnexpectedFrame, "BLOCKS literal length does not match its ops"};
  }
  std::span<const std::uint8_t> literal = v->literal;
  if (h.codec == Codec::kZstd) {
    if (!decompressor.decompress(v->literal, h.literal_raw_len, decoded)) {
      return BlocksRefusal{ErrorCode::kUnexpectedFrame, "BLOCKS zstd payload does not decode to its length"};
    }
    literal = decoded;
  }
  return DecodedBlocks{std::move(*v), literal};
}

}  // namespace novacron::transport
