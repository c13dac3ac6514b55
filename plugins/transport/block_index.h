// The cached block index of a file (docs/transport-protocol.md, "Index cache"): the
// XXH3-128 hash of every block of a file this node received, so that the next transfer
// against it (the file as a base, or as the old target) need not read and hash it again.
// One file per inode under DATA_DIR/transport/index, valid only while the file's device,
// inode, size, mtime and ctime (which every write changes and nobody can set) and the block
// size are what they were when it was written; a checksum over the whole index catches a
// torn or damaged one. A receiver that uses it still reads back every block it keeps and
// compares it with the cached hash, so a stale index costs one retry, never a bad file.
#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "wire_format.h"

namespace novacron::transport {

struct BlockIndex {
  std::uint32_t block_size = 0;
  std::uint64_t size = 0;
  std::uint64_t dev = 0, ino = 0;
  std::int64_t mtime_ns = 0, ctime_ns = 0;
  std::vector<bool> present;    // per block: false = zero block or hole
  std::vector<Hash128> hashes;  // per block (zero blocks: the zero constant)

  // The identity fields from a stat of the file.
  void identify(const struct stat& st);
  bool matches(const struct stat& st, std::uint32_t wanted_block_size) const;
};

// DIR/<16 hex of XXH3-64(dev, ino)>.idx
std::string block_index_path(const std::string& dir, std::uint64_t dev, std::uint64_t ino);

// Writes atomically (temp + rename, 0600). False with `error`.
bool write_block_index(const std::string& dir, const BlockIndex& index, std::string& error);

// The index of the file `st` describes, when one exists, is intact and still matches it.
std::optional<BlockIndex> read_block_index(const std::string& dir, const struct stat& st, std::uint32_t block_size);

void remove_block_index(const std::string& dir, std::uint64_t dev, std::uint64_t ino);

}  // namespace novacron::transport
