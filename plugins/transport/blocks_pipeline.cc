#include "blocks_pipeline.h"

#include <algorithm>
#include <chrono>

#include "bandwidth_scheduler.h"
#include "level_controller.h"
#include "worker_pool.h"

namespace novacron::transport {

namespace {

std::int64_t steady_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

struct BlocksPipeline::Built {
  std::vector<std::uint8_t> frame;  // header room + BLOCKS payload
  std::int64_t raw_bytes = 0;       // bytes of the source this batch covers
  std::int64_t literal_raw = 0;
  std::int64_t literal_wire = 0;
  int level_tried = 0;
  int level_used = 0;
};

BlocksPipeline::BlocksPipeline(FrameConnection& conn, SendServices services, TransferEntry& entry, int depth,
                               PipelineHooks hooks, std::int64_t wire_base_sent, std::int64_t wire_base_received)
    : conn_(conn),
      s_(services),
      entry_(entry),
      depth_(static_cast<size_t>(std::max(1, depth))),
      hooks_(std::move(hooks)),
      wire_base_sent_(wire_base_sent),
      wire_base_received_(wire_base_received) {}

BlocksPipeline::~BlocksPipeline() {
  // Batches still on the workers reference buffers they keep alive themselves; wait for
  // them so that no task outlives the session's services.
  for (auto& f : pending_) f.wait();
}

std::optional<SessionOutcome> BlocksPipeline::push(std::uint64_t first, std::uint32_t n, std::vector<OpRun> ops,
                                                   std::span<const std::uint8_t> literal,
                                                   std::shared_ptr<const void> keep_alive, std::int64_t raw_bytes) {
  const int level = s_.levels.next_level();
  const bool try_compress = level > 0 && detector_.should_try();
  Built out;
  out.raw_bytes = raw_bytes;
  out.literal_raw = static_cast<std::int64_t>(literal.size());
  BlocksHeader header;
  header.first_block = first;
  header.block_count = n;
  header.literal_raw_len = static_cast<std::uint32_t>(literal.size());
  auto shared_ops = std::make_shared<std::vector<OpRun>>(std::move(ops));
  pending_.push_back(s_.workers.submit([out, header, shared_ops, literal, keep_alive = std::move(keep_alive),
                                        level = try_compress ? level : 0]() mutable {
    thread_local BatchCompressor compressor;
    // The frame in one buffer: header room, the fixed part and ops, then the body written
    // by the compressor in place (no copy of the compressed bytes).
    const size_t prefix_size = kBlocksFixedSize + kOpRecordSize * shared_ops->size();
    out.frame.reserve(kHeaderSize + prefix_size + literal.size() + literal.size() / 64 + 1024);
    out.frame.resize(kHeaderSize + prefix_size);
    out.level_tried = level;
    out.level_used = literal.empty() ? 0 : compressor.compress(literal, level, out.frame);
    const size_t body = out.frame.size() - kHeaderSize - prefix_size;
    header.codec = out.level_used > 0 ? Codec::kZstd : Codec::kRaw;
    header.level = static_cast<std::uint8_t>(out.level_used);
    header.literal_wire_len = static_cast<std::uint32_t>(body);
    std::vector<std::uint8_t> prefix;
    encode_blocks_prefix(header, *shared_ops, prefix);
    std::copy(prefix.begin(), prefix.end(), out.frame.begin() + kHeaderSize);
    out.literal_wire = static_cast<std::int64_t>(body);
    return out;
  }));
  while (pending_.size() >= depth_) {
    if (auto failed = send_front()) return failed;
  }
  return std::nullopt;
}

std::optional<SessionOutcome> BlocksPipeline::flush() {
  while (!pending_.empty()) {
    if (auto failed = send_front()) return failed;
  }
  return std::nullopt;
}

std::optional<SessionOutcome> BlocksPipeline::send_front() {
  const std::int64_t wait_start = steady_ns();
  Built b = pending_.front().get();
  pending_.pop_front();
  const std::int64_t cpu_wait = steady_ns() - wait_start;
  if (b.level_tried > 0 && b.literal_raw > 0) {
    detector_.record(b.level_used > 0);
    s_.levels.observe_ratio(b.level_tried, b.literal_raw, b.level_used > 0 ? b.literal_wire : b.literal_raw);
  }
  const std::int64_t send_start = steady_ns();
  const auto frame_bytes = static_cast<std::int64_t>(b.frame.size());
  if (s_.gate != nullptr && !s_.gate->acquire(s_.gate_key, frame_bytes, entry_.cancelled())) return hooks_.cancel();
  // Keep reading while the socket is full: the receiver may still be sending HASHES, and
  // it reads our BLOCKS only once they are out (both sides blocked would never end).
  while (!conn_.wait_writable(std::chrono::milliseconds(50))) {
    if (auto failed = hooks_.drain_side_frames()) return failed;
    if (entry_.cancelled().load()) return hooks_.cancel();
  }
  if (!conn_.send_prepared(FrameType::kBlocks, 0, std::move(b.frame))) return hooks_.closed("sending BLOCKS");
  s_.levels.observe_waits(steady_ns() - send_start, cpu_wait);
  entry_.add_progress(b.raw_bytes);
  entry_.update([&](sdk::TransferStatus& st) {
    st.stats.literal_raw_bytes += b.literal_raw;
    st.stats.literal_wire_bytes += b.literal_wire;
    st.stats.compression_level = b.level_used;
    st.stats.wire_bytes_sent = wire_base_sent_ + conn_.wire_bytes_sent();
    st.stats.wire_bytes_received = wire_base_received_ + conn_.wire_bytes_received();
  });
  return std::nullopt;
}

}  // namespace novacron::transport
