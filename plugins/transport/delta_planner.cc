#include "delta_planner.h"

#include <cstring>

namespace novacron::transport {

size_t Hash128Hasher::operator()(const Hash128& h) const noexcept {
  // The bytes are already a good hash; fold the low half.
  std::uint64_t v = 0;
  std::memcpy(&v, h.data() + 8, sizeof(v));
  return static_cast<size_t>(v);
}

void BlockHashTable::insert(const Hash128& hash, std::uint64_t block) {
  if (map_.size() >= max_entries_) return;
  map_.try_emplace(hash, block);
}

std::optional<std::uint64_t> BlockHashTable::find(const Hash128& hash) const {
  const auto it = map_.find(hash);
  if (it == map_.end()) return std::nullopt;
  return it->second;
}

void ReceiverView::append(const Hashes& frame) {
  size_t next = 0;
  for (const bool p : frame.present) {
    present.push_back(p);
    hashes.push_back(p ? frame.hashes[next++] : Hash128{});
  }
}

DeltaPlanner::DeltaPlanner(PlannerMode mode, size_t max_table_entries)
    : mode_(mode), output_(max_table_entries), base_(mode.allow_copy_base ? max_table_entries : 0) {}

void DeltaPlanner::index_base(const ReceiverView& view) {
  if (!mode_.allow_copy_base) return;
  for (std::uint64_t i = 0; i < view.blocks(); ++i) {
    if (view.present[i]) base_.insert(view.hashes[i], i);
  }
}

namespace {

void push_op(std::vector<OpRun>& ops, BlockOp op, std::uint64_t arg) {
  if (!ops.empty()) {
    OpRun& last = ops.back();
    const bool contiguous_copy = (op == BlockOp::kCopyBase || op == BlockOp::kCopyOut) && last.arg + last.run == arg;
    const bool plain = op != BlockOp::kCopyBase && op != BlockOp::kCopyOut;
    if (last.op == op && (plain || contiguous_copy)) {
      ++last.run;
      return;
    }
  }
  ops.push_back(OpRun{op, 1, (op == BlockOp::kCopyBase || op == BlockOp::kCopyOut) ? arg : 0});
}

}  // namespace

PlannedBatch DeltaPlanner::plan(std::uint64_t first_block, const std::vector<SourceBlock>& blocks,
                                const ReceiverView& view, bool receiver_zero_beyond_view) {
  PlannedBatch out;
  for (std::uint32_t k = 0; k < blocks.size(); ++k) {
    const std::uint64_t i = first_block + k;
    const bool in_view = i < view.blocks();
    const bool view_zero = in_view ? !view.present[i] : receiver_zero_beyond_view;
    const SourceBlock& b = blocks[k];
    if (b.zero) {
      push_op(out.ops, view_zero ? BlockOp::kKeep : BlockOp::kZero, 0);
      ++out.zero;
      continue;
    }
    if (in_view && view.present[i] && view.hashes[i] == b.hash) {
      push_op(out.ops, BlockOp::kKeep, 0);
      ++out.keep;
    } else if (const auto earlier = output_.find(b.hash)) {
      push_op(out.ops, BlockOp::kCopyOut, *earlier);
      ++out.dedup;
    } else if (const auto base = base_.find(b.hash); base && mode_.allow_copy_base) {
      push_op(out.ops, BlockOp::kCopyBase, *base);
      ++out.copy_base;
    } else {
      push_op(out.ops, BlockOp::kLiteral, 0);
      out.literal_blocks.push_back(k);
      ++out.literal;
    }
    output_.insert(b.hash, i);
  }
  return out;
}

}  // namespace novacron::transport
