#include "tree_sender.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>

#include "block_hash.h"
#include "delta_planner.h"
#include "frames.h"
#include "safe_path.h"
#include "transfer_frames.h"
#include "tree_frames.h"
#include "tree_fs.h"

namespace novacron::transport {

namespace {

constexpr size_t kMaxDedupEntries = 262144;
constexpr std::uint32_t kBatchBytes = 1u << 20;

// Adds `run` blocks of `op` to a batch's ops, extending the last run where it continues.
void append_op(std::vector<OpRun>& ops, const OpRun& next) {
  if (!ops.empty()) {
    OpRun& last = ops.back();
    const bool copy = next.op == BlockOp::kCopyOut || next.op == BlockOp::kCopyBase;
    if (last.op == next.op && (!copy || last.arg + last.run == next.arg)) {
      last.run += next.run;
      return;
    }
  }
  ops.push_back(next);
}

// Blocks of the tree's block space on their way into one BLOCKS frame.
struct TreeBatch {
  std::uint64_t first = 0;
  std::uint32_t blocks = 0;
  std::vector<OpRun> ops;
  std::shared_ptr<std::vector<std::uint8_t>> literal = std::make_shared<std::vector<std::uint8_t>>();
  std::int64_t raw_bytes = 0;
};

class TreeSender {
 public:
  TreeSender(FrameConnection& conn, const SendParams& params, SendServices services, TransferEntry& entry)
      : conn_(conn), p_(params), s_(services), entry_(entry), planner_(PlannerMode{}, kMaxDedupEntries) {}

  SessionOutcome run() {
    if (auto failed = walk_source()) return *failed;
    struct WireOnExit {  // wire bytes count also when the attempt fails
      TreeSender* s;
      ~WireOnExit() { s->record_wire(); }
    } wire_on_exit{this};
    if (auto failed = client_hello(conn_, p_.local_node, static_cast<std::uint8_t>(Purpose::kTransfer))) {
      return *failed;
    }
    if (auto failed = offer()) return *failed;
    entry_.update([&](sdk::TransferStatus& st) { st.state = sdk::TransferState::kRunning; });
    if (auto failed = send_entries()) return *failed;
    if (auto failed = read_wants()) return *failed;
    if (auto failed = stream_content()) return *failed;
    return finish();
  }

 private:
  std::optional<SessionOutcome> walk_source() {
    root_ = Fd(::open(p_.source.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!root_.valid()) {
      return SessionOutcome::failure(errno == ENOTDIR ? "not_permitted" : "io",
                                     "cannot open the source folder " + p_.source + ": " + std::strerror(errno), true);
    }
    auto walked = walk_tree(root_.get(), p_.block_size);
    if (!walked) return SessionOutcome::failure("io", "source " + p_.source + ": " + walked.error().message, true);
    tree_ = std::move(*walked);
    content_.assign(tree_.entries.size(), std::nullopt);
    entry_.update([&](sdk::TransferStatus& st) {
      st.stats.bytes_total = static_cast<std::int64_t>(tree_.total_bytes);
      st.stats.blocks_total = static_cast<std::int64_t>(tree_.total_blocks);
      st.stats.bytes_done = 0;
      st.stats.blocks_literal = st.stats.blocks_delta = st.stats.blocks_dedup = st.stats.blocks_zero = 0;
      st.stats.blocks_resumed = st.stats.literal_raw_bytes = st.stats.literal_wire_bytes = 0;
      wire_base_sent_ = st.stats.wire_bytes_sent;
      wire_base_received_ = st.stats.wire_bytes_received;
    });
    return std::nullopt;
  }

  std::optional<SessionOutcome> offer() {
    const TreeEntry& root = tree_.entries.front();
    Offer o;
    o.id = p_.id;
    o.kind = TransferKindCode::kDirectory;
    o.flags = static_cast<std::uint8_t>((p_.resume ? kOfferResume : 0) | kOfferDeltaAllowed);
    o.block_size = p_.block_size;
    o.total_bytes = tree_.total_bytes;
    o.total_blocks = tree_.total_blocks;
    o.entries = static_cast<std::uint32_t>(tree_.entries.size());
    o.source_fingerprint = tree_.fingerprint;
    o.target = p_.target;
    o.mode = root.mode;
    o.uid = root.uid;
    o.gid = root.gid;
    o.mtime_ns = root.mtime_ns;
    o.atime_ns = root.atime_ns;
    if (!conn_.send(FrameType::kOffer, 0, o.encode())) return outcome_of_refused_send(conn_, "ACCEPT");
    auto r = await_frame(conn_, "ACCEPT");
    if (!r.frame) return r.outcome;
    if (r.frame->header.type != FrameType::kAccept) return outcome_of_unexpected(conn_, *r.frame, "ACCEPT");
    const auto a = Accept::decode(r.frame->payload);
    if (!a || a->block_size != p_.block_size || a->base_blocks != 0 || a->resume_from_block != 0) {
      send_error_and_close(conn_, ErrorCode::kMalformed, "bad ACCEPT for a tree");
      return SessionOutcome::protocol(ErrorCode::kMalformed, "the peer sent a bad ACCEPT");
    }
    return std::nullopt;
  }

  std::optional<SessionOutcome> send_entries() {
    const std::uint32_t cap = *payload_cap(static_cast<std::uint8_t>(FrameType::kEntry));
    for (const TreeEntry& e : tree_.entries) {
      auto payload = e.encode();
      if (payload.size() > cap) {
        const std::string m = "the xattrs of " + e.path + " are too large for an ENTRY frame";
        return send_cancel(conn_, ErrorCode::kNotPermitted, m, true);
      }
      if (!conn_.send(FrameType::kEntry, 0, payload)) return outcome_of_refused_send(conn_, "ENTRY");
      if (entry_.cancelled().load()) return cancel();
    }
    EntriesEnd end;
    end.entries = static_cast<std::uint32_t>(tree_.entries.size());
    end.total_blocks = tree_.total_blocks;
    if (!conn_.send(FrameType::kEntriesEnd, 0, end.encode())) return outcome_of_refused_send(conn_, "WANT");
    return std::nullopt;
  }

  // One decision per regular file, in id order; the last WANT frame carries LAST.
  std::optional<SessionOutcome> read_wants() {
    std::vector<std::uint32_t> regular;
    for (const TreeEntry& e : tree_.entries) {
      if (e.type == EntryType::kRegular) regular.push_back(e.id);
    }
    send_.assign(tree_.entries.size(), false);
    size_t next = 0;
    while (true) {
      auto r = await_frame(conn_, "WANT");
      if (!r.frame) return r.outcome;
      if (r.frame->header.type != FrameType::kWant) return outcome_of_unexpected(conn_, *r.frame, "WANT");
      const auto w = Want::decode(r.frame->payload);
      if (!w) return malformed("bad WANT");
      for (const auto& [id, decision] : w->decisions) {
        if (next >= regular.size() || id != regular[next]) return unexpected("WANT for entry " + std::to_string(id));
        send_[id] = decision == WantDecision::kSend;
        ++next;
      }
      if ((r.frame->header.flags & kFlagLast) != 0) break;
    }
    if (next != regular.size()) return unexpected("WANT ended before every file had a decision");
    return std::nullopt;
  }

  std::optional<SessionOutcome> stream_content() {
    BlocksPipeline pipeline(conn_, s_, entry_, p_.pipeline_depth,
                            PipelineHooks{[this] { return drain_side_frames(); }, [this] { return cancel(); },
                                          [this](const char* what) { return outcome_of_refused_send(conn_, what); }},
                            wire_base_sent_, wire_base_received_);
    TreeBatch batch;
    for (const TreeEntry& e : tree_.entries) {
      if (e.type != EntryType::kRegular) continue;
      if (entry_.cancelled().load()) return cancel();
      auto failed = send_[e.id] ? send_file(e, pipeline, batch) : keep_file(e, pipeline, batch);
      if (failed) return failed;
    }
    if (batch.blocks > 0) {
      if (auto failed = push(pipeline, batch)) return failed;
    }
    return pipeline.flush();
  }

  std::optional<SessionOutcome> push(BlocksPipeline& pipeline, TreeBatch& batch) {
    TreeBatch b = std::move(batch);
    batch = TreeBatch{};
    batch.first = b.first + b.blocks;
    if (p_.corrupt_literals && !b.literal->empty()) p_.corrupt_literals(*b.literal);
    const std::span<const std::uint8_t> literal(*b.literal);
    return pipeline.push(b.first, b.blocks, std::move(b.ops), literal, b.literal, b.raw_bytes);
  }

  // A file the receiver already holds: KEEP over its blocks, nothing read.
  std::optional<SessionOutcome> keep_file(const TreeEntry& e, BlocksPipeline& pipeline, TreeBatch& batch) {
    const std::uint64_t blocks = FileDigest::blocks_for(e.size, p_.block_size);
    for (std::uint64_t done = 0; done < blocks;) {
      const auto n =
          static_cast<std::uint32_t>(std::min<std::uint64_t>(blocks - done, kMaxBlocksPerFrame - batch.blocks));
      append_op(batch.ops, OpRun{BlockOp::kKeep, n, 0});
      batch.blocks += n;
      batch.raw_bytes += static_cast<std::int64_t>(
          std::min<std::uint64_t>(static_cast<std::uint64_t>(n) * p_.block_size, e.size - done * p_.block_size));
      done += n;
      if (batch.blocks == kMaxBlocksPerFrame) {
        if (auto failed = push(pipeline, batch)) return failed;
      }
    }
    entry_.update([&](sdk::TransferStatus& st) { st.stats.blocks_delta += static_cast<std::int64_t>(blocks); });
    return std::nullopt;
  }

  std::optional<SessionOutcome> send_file(const TreeEntry& e, BlocksPipeline& pipeline, TreeBatch& batch) {
    auto file = open_file_beneath(root_.get(), e.path, O_RDONLY);
    struct stat st {};
    if (!file || ::fstat(file->get(), &st) != 0 || st.st_ino != tree_.inodes[e.id] || !unchanged(st, e)) {
      return source_changed(e.path);
    }
    ::posix_fadvise(file->get(), 0, 0, POSIX_FADV_SEQUENTIAL);
    FileDigest digest(p_.block_size, e.size);
    const std::uint64_t blocks = FileDigest::blocks_for(e.size, p_.block_size);
    const std::uint32_t per_batch = std::max<std::uint32_t>(1, kBatchBytes / p_.block_size);
    for (std::uint64_t done = 0; done < blocks;) {
      const std::uint32_t literal_room = static_cast<std::uint32_t>(
          (kBatchBytes - std::min<size_t>(kBatchBytes, batch.literal->size())) / p_.block_size);
      if (literal_room == 0 || batch.blocks == kMaxBlocksPerFrame) {
        if (auto failed = push(pipeline, batch)) return failed;
        continue;
      }
      const auto n = static_cast<std::uint32_t>(
          std::min<std::uint64_t>({blocks - done, per_batch, literal_room, kMaxBlocksPerFrame - batch.blocks}));
      if (auto failed = add_chunk(file->get(), e, done, n, digest, batch)) return failed;
      done += n;
    }
    if (::fstat(file->get(), &st) != 0 || !unchanged(st, e)) return source_changed(e.path);
    content_[e.id] = digest.finish();
    return std::nullopt;
  }

  // Reads blocks [first, first + n) of the file, plans them (zero, dedup, literal) and adds
  // them to the batch.
  std::optional<SessionOutcome> add_chunk(int fd, const TreeEntry& e, std::uint64_t first, std::uint32_t n,
                                          FileDigest& digest, TreeBatch& batch) {
    const std::uint64_t offset = first * p_.block_size;
    const std::uint64_t end = std::min<std::uint64_t>(e.size, (first + n) * p_.block_size);
    const auto length = static_cast<size_t>(end - offset);
    buffer_.resize(length);
    const off_t next_data = ::lseek(fd, static_cast<off_t>(offset), SEEK_DATA);
    const bool all_hole = next_data < 0 ? errno == ENXIO : static_cast<std::uint64_t>(next_data) >= end;
    if (all_hole) {
      std::fill(buffer_.begin(), buffer_.end(), 0);
    } else {
      for (size_t done = 0; done < length;) {
        const ssize_t got = ::pread(fd, buffer_.data() + done, length - done, static_cast<off_t>(offset + done));
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) return source_changed(e.path);
        done += static_cast<size_t>(got);
      }
    }
    std::vector<SourceBlock> blocks(n);
    for (std::uint32_t k = 0; k < n; ++k) {
      const size_t at = static_cast<size_t>(k) * p_.block_size;
      const std::span<const std::uint8_t> b(buffer_.data() + at, std::min<size_t>(p_.block_size, length - at));
      blocks[k].zero = all_hole || is_zero(b);
      blocks[k].hash = blocks[k].zero ? zero_block_hash(static_cast<std::uint32_t>(b.size())) : block_hash(b);
      digest.add(blocks[k].hash);
    }
    // The receiver creates each wanted file as one hole: zero blocks need nothing (KEEP).
    PlannedBatch plan = planner_.plan(e.first_block + first, blocks, empty_view_, true);
    for (const OpRun& op : plan.ops) append_op(batch.ops, op);
    for (const std::uint32_t k : plan.literal_blocks) {
      const size_t at = static_cast<size_t>(k) * p_.block_size;
      const auto* b = buffer_.data() + at;
      batch.literal->insert(batch.literal->end(), b, b + std::min<size_t>(p_.block_size, length - at));
    }
    batch.blocks += n;
    batch.raw_bytes += static_cast<std::int64_t>(length);
    entry_.update([&](sdk::TransferStatus& st) {
      st.stats.blocks_literal += static_cast<std::int64_t>(plan.literal);
      st.stats.blocks_dedup += static_cast<std::int64_t>(plan.dedup);
      st.stats.blocks_zero += static_cast<std::int64_t>(plan.zero);
    });
    return std::nullopt;
  }

  static bool unchanged(const struct stat& st, const TreeEntry& e) {
    return S_ISREG(st.st_mode) && static_cast<std::uint64_t>(st.st_size) == e.size && stat_mtime_ns(st) == e.mtime_ns;
  }

  std::optional<SessionOutcome> drain_side_frames() {
    while (true) {
      Received r = conn_.receive(std::chrono::milliseconds(0));
      if (r.status != Received::Status::kFrame) return std::nullopt;
      if (r.frame.header.type == FrameType::kPing) {
        conn_.send(FrameType::kPong, 0, r.frame.payload);
        continue;
      }
      if (r.frame.header.type == FrameType::kAck) continue;
      return outcome_of_unexpected(conn_, r.frame, "nothing while BLOCKS stream");
    }
  }

  SessionOutcome finish() {
    TreeDigest digest;
    for (const TreeEntry& e : tree_.entries) digest.add(e, content_[e.id]);
    End end;
    end.total_blocks = tree_.total_blocks;
    end.total_bytes = tree_.total_bytes;
    end.digest = digest.finish();
    entry_.update([&](sdk::TransferStatus& st) { st.state = sdk::TransferState::kVerifying; });
    if (!conn_.send(FrameType::kEnd, 0, end.encode())) return outcome_of_refused_send(conn_, "RESULT");
    return await_result(
        conn_, end.digest,
        [this](const Frame& f) -> std::optional<SessionOutcome> {
          if (f.header.type == FrameType::kAck) return std::nullopt;
          return outcome_of_unexpected(conn_, f, "RESULT");
        },
        [this] { record_wire(); });
  }

  SessionOutcome cancel() {
    return send_cancel(conn_, ErrorCode::kCancelled, "cancelled by the sender's operator", true);
  }

  SessionOutcome source_changed(const std::string& path) {
    return send_cancel(conn_, ErrorCode::kSourceChanged, "the source file " + path + " changed while it was sent",
                       false);
  }

  SessionOutcome malformed(const std::string& what) {
    send_error_and_close(conn_, ErrorCode::kMalformed, what);
    return SessionOutcome::protocol(ErrorCode::kMalformed, "the peer sent a " + what);
  }

  SessionOutcome unexpected(const std::string& what) {
    send_error_and_close(conn_, ErrorCode::kUnexpectedFrame, what);
    return SessionOutcome::protocol(ErrorCode::kUnexpectedFrame, what);
  }

  void record_wire() {
    entry_.update([&](sdk::TransferStatus& st) {
      st.stats.wire_bytes_sent = wire_base_sent_ + conn_.wire_bytes_sent();
      st.stats.wire_bytes_received = wire_base_received_ + conn_.wire_bytes_received();
    });
  }

  FrameConnection& conn_;
  const SendParams& p_;
  SendServices s_;
  TransferEntry& entry_;
  Fd root_;
  WalkedTree tree_;
  std::vector<bool> send_;                       // per entry: the receiver wants its content
  std::vector<std::optional<Hash128>> content_;  // per entry: file digest D of sent content
  DeltaPlanner planner_;
  ReceiverView empty_view_;
  std::vector<std::uint8_t> buffer_;
  std::int64_t wire_base_sent_ = 0, wire_base_received_ = 0;
};

}  // namespace

SessionOutcome run_tree_send_session(FrameConnection& conn, const SendParams& params, SendServices services,
                                     TransferEntry& entry) {
  TreeSender sender(conn, params, services, entry);
  return sender.run();
}

}  // namespace novacron::transport
