// Turns a batch of source blocks into BLOCKS ops (docs/transport-protocol.md, "Delta"):
// for each non-zero source block, first match wins: the receiver's view already holds it
// (KEEP), an earlier output block of this transfer has it (COPY_OUT, dedup), some block of
// a separate base has it (COPY_BASE, fresh mode only), else its bytes are sent (LITERAL).
// A zero block is KEEP where the receiver's view is zero too, else ZERO. Neighbouring equal
// ops merge into runs. Pure: the caller supplies the hashes.
#pragma once

#include <cstdint>
#include <optional>
#include <unordered_map>
#include <vector>

#include "transfer_frames.h"
#include "wire_format.h"

namespace novacron::transport {

struct Hash128Hasher {
  size_t operator()(const Hash128& h) const noexcept;
};

// hash -> block index, capped: past `max_entries`, nothing more is inserted (dedup and
// base matches then miss, which costs bytes, never correctness).
class BlockHashTable {
 public:
  explicit BlockHashTable(size_t max_entries) : max_entries_(max_entries) {}
  // Keeps the first block seen for a hash.
  void insert(const Hash128& hash, std::uint64_t block);
  std::optional<std::uint64_t> find(const Hash128& hash) const;
  size_t size() const { return map_.size(); }

 private:
  size_t max_entries_;
  std::unordered_map<Hash128, std::uint64_t, Hash128Hasher> map_;
};

// The receiver's view as the sender learnt it from HASHES: per block, a hash or zero.
struct ReceiverView {
  std::vector<bool> present;    // indexed by block; false = zero block or hole
  std::vector<Hash128> hashes;  // indexed by block; meaningful where present
  std::uint64_t blocks() const { return present.size(); }
  void append(const Hashes& frame);
};

struct SourceBlock {
  bool zero = false;
  Hash128 hash{};
};

struct PlannedBatch {
  std::vector<OpRun> ops;
  std::vector<std::uint32_t> literal_blocks;  // indexes into the batch, in order
  std::uint64_t keep = 0, zero = 0, dedup = 0, copy_base = 0, literal = 0;
};

struct PlannerMode {
  bool allow_copy_base = false;  // fresh mode with a separate base only
};

class DeltaPlanner {
 public:
  DeltaPlanner(PlannerMode mode, size_t max_table_entries);

  // The receiver view must already cover [first_block, first_block + blocks.size()) as far
  // as it reaches; blocks beyond the view are treated as absent. Also records the output
  // blocks for later COPY_OUT matches.
  PlannedBatch plan(std::uint64_t first_block, const std::vector<SourceBlock>& blocks, const ReceiverView& view,
                    bool receiver_zero_beyond_view);

  // Call once the receiver view is complete, before planning, when COPY_BASE is allowed.
  void index_base(const ReceiverView& view);

 private:
  PlannerMode mode_;
  BlockHashTable output_;  // non-zero output blocks already planned
  BlockHashTable base_;    // receiver's base blocks (COPY_BASE)
};

}  // namespace novacron::transport
