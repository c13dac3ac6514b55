// Payloads of the transfer frames (docs/transport-protocol.md, "Frame types"): OFFER,
// ACCEPT, HASHES, BLOCKS, END, RESULT and CANCEL. Decoding checks structure only (lengths,
// counts, enums, runs adding up); whether a frame fits the transfer's state (block ranges,
// sizes against the OFFER) is the session's check. Pure: no I/O.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "wire_format.h"

namespace novacron::transport {

inline constexpr size_t kMaxTransferId = 64;
inline constexpr size_t kMaxPathText = 4096;
inline constexpr std::uint32_t kMinBlockSize = 4096;
inline constexpr std::uint32_t kMaxBlockSize = 1u << 20;
inline constexpr std::uint32_t kMaxLiteralBytes = 1u << 20;  // raw literal bytes per BLOCKS
inline constexpr std::uint32_t kMaxBlocksPerFrame = 65536;
inline constexpr std::uint16_t kMaxOpsPerFrame = 4096;
inline constexpr std::uint32_t kMaxHashesPerFrame = 4096;

enum class TransferKindCode : std::uint8_t { kFile = 1, kBlockDevice = 2, kDirectory = 3 };

inline constexpr std::uint8_t kOfferResume = 1u << 0;
inline constexpr std::uint8_t kOfferDeltaAllowed = 1u << 1;
inline constexpr std::uint8_t kOfferNoIndexCache = 1u << 2;
// Update an existing target in place (only changed blocks are written); it is marked
// incomplete until verified. For large images on file systems without reflinks.
inline constexpr std::uint8_t kOfferInPlace = 1u << 3;

inline constexpr std::uint8_t kAcceptFromIndexCache = 1u << 0;
// The receiver writes into the file its hashes describe: COPY_BASE is not allowed.
inline constexpr std::uint8_t kAcceptInPlace = 1u << 1;

struct Offer {
  std::string id;
  TransferKindCode kind = TransferKindCode::kFile;
  std::uint8_t flags = 0;
  std::uint32_t block_size = 0;
  std::uint64_t total_bytes = 0;
  std::uint64_t total_blocks = 0;
  std::uint32_t entries = 0;
  Hash128 source_fingerprint{};
  std::string target;
  std::string base;
  std::uint32_t mode = 0, uid = 0, gid = 0;
  std::int64_t mtime_ns = 0, atime_ns = 0;

  std::vector<std::uint8_t> encode() const;
  // Also checks: block size a power of two in [4 KiB, 1 MiB], total_blocks matching
  // total_bytes (for a tree, whose files each start at a block boundary: between the blocks
  // of total_bytes and that plus one per entry), a non-empty id and target.
  static std::optional<Offer> decode(std::span<const std::uint8_t> payload);
};

struct Accept {
  std::uint32_t block_size = 0;
  std::uint8_t flags = 0;  // bit 0: hashes come from an index cache
  std::uint64_t resume_from_block = 0;
  std::uint64_t base_blocks = 0;  // blocks HASHES will cover; 0 = none

  std::vector<std::uint8_t> encode() const;
  static std::optional<Accept> decode(std::span<const std::uint8_t> payload);
};

// The receiver's view of blocks [first_block, first_block + count): a hash per non-zero
// block, nothing for zero blocks and holes.
struct Hashes {
  std::uint64_t first_block = 0;
  std::vector<bool> present;    // count entries; false = zero block or hole
  std::vector<Hash128> hashes;  // one per present entry, in order

  std::vector<std::uint8_t> encode() const;
  static std::optional<Hashes> decode(std::span<const std::uint8_t> payload);
};

enum class BlockOp : std::uint8_t { kKeep = 1, kZero = 2, kLiteral = 3, kCopyBase = 4, kCopyOut = 5 };

struct OpRun {
  BlockOp op = BlockOp::kKeep;
  std::uint32_t run = 0;  // >= 1
  std::uint64_t arg = 0;  // COPY_BASE / COPY_OUT: first source block
};

enum class Codec : std::uint8_t { kRaw = 0, kZstd = 1 };

inline constexpr size_t kBlocksFixedSize = 24;
inline constexpr size_t kOpRecordSize = 16;

struct BlocksHeader {
  std::uint64_t first_block = 0;
  std::uint32_t block_count = 0;
  Codec codec = Codec::kRaw;
  std::uint8_t level = 0;
  std::uint32_t literal_raw_len = 0;
  std::uint32_t literal_wire_len = 0;
};

// A decoded BLOCKS frame; `literal` points into the frame's payload.
struct BlocksView {
  BlocksHeader header;
  std::vector<OpRun> ops;
  std::span<const std::uint8_t> literal;

  static std::optional<BlocksView> decode(std::span<const std::uint8_t> payload);
};

// Writes the fixed part and the op records of a BLOCKS payload into `out` (cleared first);
// the caller appends the literal payload and must set literal_wire_len to its size.
void encode_blocks_prefix(const BlocksHeader& header, const std::vector<OpRun>& ops, std::vector<std::uint8_t>& out);

inline constexpr std::uint8_t kDigestXxh3Tree = 1;

struct End {
  std::uint64_t total_blocks = 0;
  std::uint64_t total_bytes = 0;
  std::uint8_t digest_alg = kDigestXxh3Tree;
  Hash128 digest{};

  std::vector<std::uint8_t> encode() const;
  static std::optional<End> decode(std::span<const std::uint8_t> payload);
};

inline constexpr std::uint8_t kResultOwnersNotPreserved = 1;

struct Result {
  std::uint16_t code = 0;  // error_codes.h; 0 = ok
  Hash128 receiver_digest{};
  std::uint8_t flags = 0;
  std::string message;

  std::vector<std::uint8_t> encode() const;
  static std::optional<Result> decode(std::span<const std::uint8_t> payload);
};

struct Cancel {
  std::uint16_t code = 0;
  std::string message;

  std::vector<std::uint8_t> encode() const;
  static std::optional<Cancel> decode(std::span<const std::uint8_t> payload);
};

// Transfer ids: [a-z0-9][a-z0-9-]{0,63}.
bool valid_transfer_id(std::string_view id);

}  // namespace novacron::transport
