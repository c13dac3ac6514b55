// Block hashes and the file digest of the transport (docs/design/migration-transport.md,
// 3.6): XXH3-128 per block (seed 0, canonical big-endian bytes), a constant for zero
// blocks and holes, and the streaming digest D over a file's block hashes, which both
// sides compute in block order so that memory does not grow with the file.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>

#include "wire_format.h"

namespace novacron::transport {

inline constexpr std::uint32_t kDefaultBlockSize = 4096;

// XXH3-128 of `data` in canonical (big-endian) form.
Hash128 block_hash(std::span<const std::uint8_t> data);

// True when every byte is zero (such blocks are never sent).
bool is_zero(std::span<const std::uint8_t> data);

// H_i of a zero block or hole of `length` bytes (the file's last block may be short), for
// the block sizes in use; computed once per length.
Hash128 zero_block_hash(std::uint32_t length);

// D = XXH3_128("NCTD1" || u32 block_size || u64 total_bytes || u64 total_blocks || H_0 ...).
// Feed the block hashes in order; finish() checks that as many came as announced.
class FileDigest {
 public:
  FileDigest(std::uint32_t block_size, std::uint64_t total_bytes);
  ~FileDigest();
  FileDigest(const FileDigest&) = delete;
  FileDigest& operator=(const FileDigest&) = delete;

  void add(const Hash128& block);
  // The digest, or nullopt when the number of blocks added is not the file's.
  std::optional<Hash128> finish();

  std::uint64_t total_blocks() const { return total_blocks_; }
  static std::uint64_t blocks_for(std::uint64_t total_bytes, std::uint32_t block_size);

 private:
  struct State;
  std::unique_ptr<State> state_;
  std::uint64_t total_blocks_;
  std::uint64_t added_ = 0;
};

}  // namespace novacron::transport
