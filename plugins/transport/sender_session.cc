#include "sender_session.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "block_hash.h"
#include "blocks_pipeline.h"
#include "delta_planner.h"
#include "frames.h"
#include "transfer_frames.h"

namespace novacron::transport {

namespace {

constexpr size_t kMaxDedupEntries = 262144;
constexpr std::uint32_t kBatchBytes = 1u << 20;

// Identifies the source's content cheaply: a resume is refused when it changed.
Hash128 source_fingerprint(const struct stat& st) {
  struct {
    std::uint64_t dev, ino, size;
    std::int64_t mtime_ns, ctime_ns;
  } fields{st.st_dev, st.st_ino, static_cast<std::uint64_t>(st.st_size),
           st.st_mtim.tv_sec * 1'000'000'000LL + st.st_mtim.tv_nsec,
           st.st_ctim.tv_sec * 1'000'000'000LL + st.st_ctim.tv_nsec};
  XXH128_canonical_t c;
  XXH128_canonicalFromHash(&c, XXH3_128bits(&fields, sizeof fields));
  Hash128 out;
  std::memcpy(out.data(), c.digest, out.size());
  return out;
}

class Sender {
 public:
  Sender(FrameConnection& conn, const SendParams& params, SendServices services, TransferEntry& entry)
      : conn_(conn), p_(params), s_(services), entry_(entry), planner_(PlannerMode{}, kMaxDedupEntries) {}

  ~Sender() {
    if (fd_ >= 0) ::close(fd_);
  }

  SessionOutcome run() {
    if (auto failed = open_source()) return *failed;
    struct WireOnExit {  // wire bytes count also when the attempt fails
      Sender* s;
      ~WireOnExit() { s->record_wire(); }
    } wire_on_exit{this};
    if (auto failed = handshake()) return *failed;
    if (auto failed = offer()) return *failed;
    entry_.update([&](sdk::TransferStatus& st) { st.state = sdk::TransferState::kRunning; });
    if (auto failed = stream_blocks()) return *failed;
    return finish();
  }

 private:
  std::optional<SessionOutcome> open_source() {
    fd_ = ::open(p_.source.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd_ < 0) {
      return SessionOutcome::failure("io", "cannot open the source " + p_.source + ": " + std::strerror(errno), true);
    }
    if (::fstat(fd_, &st_) != 0 || !(S_ISREG(st_.st_mode) || S_ISBLK(st_.st_mode))) {
      return SessionOutcome::failure("not_permitted", "the source " + p_.source + " is not a file or block device",
                                     true);
    }
    total_bytes_ = static_cast<std::uint64_t>(st_.st_size);
    if (S_ISBLK(st_.st_mode)) {
      std::uint64_t size = 0;
      if (::ioctl(fd_, BLKGETSIZE64, &size) != 0) {
        return SessionOutcome::failure("io", "cannot read the size of " + p_.source + ": " + std::strerror(errno),
                                       true);
      }
      total_bytes_ = size;
    }
    total_blocks_ = FileDigest::blocks_for(total_bytes_, p_.block_size);
    digest_ = std::make_unique<FileDigest>(p_.block_size, total_bytes_);
    ::posix_fadvise(fd_, 0, 0, POSIX_FADV_SEQUENTIAL);
    // Block counts and bytes describe this attempt; wire bytes add up over all attempts.
    entry_.update([&](sdk::TransferStatus& st) {
      st.stats.bytes_total = static_cast<std::int64_t>(total_bytes_);
      st.stats.blocks_total = static_cast<std::int64_t>(total_blocks_);
      st.stats.bytes_done = 0;
      st.stats.blocks_literal = st.stats.blocks_delta = st.stats.blocks_dedup = st.stats.blocks_zero = 0;
      st.stats.blocks_resumed = st.stats.literal_raw_bytes = st.stats.literal_wire_bytes = 0;
      wire_base_sent_ = st.stats.wire_bytes_sent;
      wire_base_received_ = st.stats.wire_bytes_received;
    });
    return std::nullopt;
  }

  std::optional<SessionOutcome> handshake() {
    return client_hello(conn_, p_.local_node, static_cast<std::uint8_t>(Purpose::kTransfer));
  }

  std::optional<SessionOutcome> offer() {
    Offer o;
    o.id = p_.id;
    o.kind = p_.block_device ? TransferKindCode::kBlockDevice : TransferKindCode::kFile;
    o.flags = static_cast<std::uint8_t>((p_.resume ? kOfferResume : 0) | (p_.allow_delta ? kOfferDeltaAllowed : 0) |
                                        (p_.in_place ? kOfferInPlace : 0));
    o.block_size = p_.block_size;
    o.total_bytes = total_bytes_;
    o.total_blocks = total_blocks_;
    o.source_fingerprint = source_fingerprint(st_);
    o.target = p_.target;
    o.base = p_.base;
    o.mode = st_.st_mode & 07777;
    o.uid = st_.st_uid;
    o.gid = st_.st_gid;
    o.mtime_ns = st_.st_mtim.tv_sec * 1'000'000'000LL + st_.st_mtim.tv_nsec;
    o.atime_ns = st_.st_atim.tv_sec * 1'000'000'000LL + st_.st_atim.tv_nsec;
    if (!conn_.send(FrameType::kOffer, 0, o.encode())) return closed("ACCEPT");
    auto r = await("ACCEPT");
    if (!r.frame) return r.outcome;
    if (r.frame->header.type != FrameType::kAccept) return outcome_of_unexpected(conn_, *r.frame, "ACCEPT");
    const auto a = Accept::decode(r.frame->payload);
    if (!a || a->block_size != p_.block_size || a->base_blocks > total_blocks_ ||
        a->resume_from_block > total_blocks_) {
      send_error_and_close(conn_, ErrorCode::kMalformed, "bad ACCEPT");
      return SessionOutcome::protocol(ErrorCode::kMalformed, "the peer sent a bad ACCEPT");
    }
    accept_ = *a;
    // COPY_BASE needs a view that is exactly the base, read from a file nobody writes: not a
    // resumed partial, not a target updated in place.
    const bool copy_base = a->resume_from_block == 0 && (a->flags & kAcceptInPlace) == 0;
    planner_ = DeltaPlanner(PlannerMode{.allow_copy_base = copy_base}, kMaxDedupEntries);
    return std::nullopt;
  }

  Awaited await(const char* what) { return await_frame(conn_, what); }
  SessionOutcome closed(const char* what) { return outcome_of_refused_send(conn_, what); }

  // Handles frames that may arrive while blocks stream: HASHES, ACK. Returns an outcome
  // when the session must end.
  std::optional<SessionOutcome> on_side_frame(const Frame& f) {
    if (f.header.type == FrameType::kHashes) {
      const auto h = Hashes::decode(f.payload);
      if (!h) {
        send_error_and_close(conn_, ErrorCode::kMalformed, "bad HASHES");
        return SessionOutcome::protocol(ErrorCode::kMalformed, "the peer sent a bad HASHES frame");
      }
      if (h->first_block != view_.blocks() || view_.blocks() + h->present.size() > accept_.base_blocks) {
        const std::string m = "HASHES for blocks " + std::to_string(h->first_block) + "+" +
                              std::to_string(h->present.size()) + " out of order or beyond the base";
        send_error_and_close(conn_, ErrorCode::kUnexpectedFrame, m);
        return SessionOutcome::protocol(ErrorCode::kUnexpectedFrame, m);
      }
      view_.append(*h);
      if (view_.blocks() == accept_.base_blocks) planner_.index_base(view_);
      return std::nullopt;
    }
    if (f.header.type == FrameType::kAck) {
      if (const auto a = Ack::decode(f.payload)) acked_ = a->applied_through;
      return std::nullopt;
    }
    if (f.header.type == FrameType::kPing) {
      conn_.send(FrameType::kPong, 0, f.payload);
      return std::nullopt;
    }
    return outcome_of_unexpected(conn_, f, "HASHES or ACK");
  }

  // Waits until the receiver's hashes cover `through` blocks (or all it has).
  std::optional<SessionOutcome> hashes_through(std::uint64_t through) {
    const std::uint64_t need = std::min(through, accept_.base_blocks);
    while (view_.blocks() < need) {
      auto r = await("HASHES");
      if (!r.frame) return r.outcome;
      if (auto failed = on_side_frame(*r.frame)) return failed;
    }
    return drain_side_frames();
  }

  // Handles whatever arrived (HASHES, ACKs), without waiting.
  std::optional<SessionOutcome> drain_side_frames() {
    while (true) {
      Received r = conn_.receive(std::chrono::milliseconds(0));
      if (r.status != Received::Status::kFrame) break;
      if (auto failed = on_side_frame(r.frame)) return failed;
    }
    return std::nullopt;
  }

  std::uint32_t block_len(std::uint64_t block) const {
    const std::uint64_t start = block * p_.block_size;
    return static_cast<std::uint32_t>(std::min<std::uint64_t>(p_.block_size, total_bytes_ - start));
  }

  // Reads and hashes blocks [first, first + n) into `data` and `blocks`.
  std::optional<SessionOutcome> read_batch(std::uint64_t first, std::uint32_t n, std::vector<std::uint8_t>& data,
                                           std::vector<SourceBlock>& blocks) {
    const std::uint64_t offset = first * p_.block_size;
    const std::uint64_t end = std::min<std::uint64_t>(total_bytes_, (first + n) * p_.block_size);
    const auto length = static_cast<size_t>(end - offset);
    data.resize(length);
    blocks.assign(n, SourceBlock{});
    // A hole over the whole batch is zeros without reading it.
    const off_t next_data = ::lseek(fd_, static_cast<off_t>(offset), SEEK_DATA);
    const bool all_hole = next_data < 0 ? errno == ENXIO : static_cast<std::uint64_t>(next_data) >= end;
    if (all_hole) {
      for (std::uint32_t k = 0; k < n; ++k) {
        blocks[k].zero = true;
        blocks[k].hash = zero_block_hash(block_len(first + k));
      }
      std::fill(data.begin(), data.end(), 0);
      return std::nullopt;
    }
    size_t done = 0;
    while (done < length) {
      const ssize_t got = ::pread(fd_, data.data() + done, length - done, static_cast<off_t>(offset + done));
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0) {
        return SessionOutcome::failure(got == 0 ? "source_changed" : "io",
                                       got == 0 ? "the source shrank while it was sent"
                                                : std::string("read of the source failed: ") + std::strerror(errno),
                                       got != 0);
      }
      done += static_cast<size_t>(got);
    }
    for (std::uint32_t k = 0; k < n; ++k) {
      const std::span<const std::uint8_t> b(data.data() + static_cast<size_t>(k) * p_.block_size, block_len(first + k));
      blocks[k].zero = is_zero(b);
      blocks[k].hash = blocks[k].zero ? zero_block_hash(static_cast<std::uint32_t>(b.size())) : block_hash(b);
    }
    return std::nullopt;
  }

  std::optional<SessionOutcome> stream_blocks() {
    const std::uint32_t batch_blocks = std::max<std::uint32_t>(1, kBatchBytes / p_.block_size);
    BlocksPipeline pipeline(conn_, s_, entry_, p_.pipeline_depth,
                            PipelineHooks{[this] { return drain_side_frames(); }, [this] { return cancel(); },
                                          [this](const char* what) { return closed(what); }},
                            wire_base_sent_, wire_base_received_);
    for (std::uint64_t first = 0; first < total_blocks_; first += batch_blocks) {
      if (entry_.cancelled().load()) return cancel();
      const auto n = static_cast<std::uint32_t>(std::min<std::uint64_t>(batch_blocks, total_blocks_ - first));
      auto data = std::make_shared<std::vector<std::uint8_t>>();
      std::vector<SourceBlock> blocks;
      if (auto failed = read_batch(first, n, *data, blocks)) return failed;
      for (const auto& b : blocks) digest_->add(b.hash);
      if (auto failed = hashes_through(first + n)) return failed;
      // Blocks beyond the receiver's view are holes in its new file (or, on resume, were
      // cut back to holes), so zero source blocks there need nothing.
      PlannedBatch plan = planner_.plan(first, blocks, view_, true);
      count_plan(first, plan, blocks);
      if (auto failed = push_batch(pipeline, first, n, std::move(plan), data)) return failed;
    }
    return pipeline.flush();
  }

  void count_plan(std::uint64_t first, const PlannedBatch& plan, const std::vector<SourceBlock>& blocks) {
    std::int64_t resumed = 0;
    if (accept_.resume_from_block > first) {
      // Non-zero KEEP blocks below the receiver's acknowledged point came from the earlier
      // attempt (zero blocks are counted as zero blocks).
      std::uint64_t i = first;
      for (const OpRun& op : plan.ops) {
        for (std::uint32_t k = 0; k < op.run; ++k, ++i) {
          if (op.op == BlockOp::kKeep && i < accept_.resume_from_block && !blocks[i - first].zero) ++resumed;
        }
      }
    }
    entry_.update([&](sdk::TransferStatus& st) {
      st.stats.blocks_literal += static_cast<std::int64_t>(plan.literal);
      st.stats.blocks_delta += static_cast<std::int64_t>(plan.keep + plan.copy_base) - resumed;
      st.stats.blocks_resumed += resumed;
      st.stats.blocks_dedup += static_cast<std::int64_t>(plan.dedup);
      st.stats.blocks_zero += static_cast<std::int64_t>(plan.zero);
    });
  }

  // The literal bytes in block order: a view into the read buffer when the literal blocks
  // are contiguous (a full copy: all but zero blocks), else gathered.
  std::optional<SessionOutcome> push_batch(BlocksPipeline& pipeline, std::uint64_t first, std::uint32_t n,
                                           PlannedBatch plan, const std::shared_ptr<std::vector<std::uint8_t>>& data) {
    const auto& lit = plan.literal_blocks;
    const bool contiguous = !lit.empty() && lit.back() - lit.front() + 1 == lit.size() && !p_.corrupt_literals;
    if (contiguous) {
      const size_t begin = static_cast<size_t>(lit.front()) * p_.block_size;
      const size_t end = static_cast<size_t>(lit.back()) * p_.block_size + block_len(first + lit.back());
      return pipeline.push(first, n, std::move(plan.ops),
                           std::span<const std::uint8_t>(data->data() + begin, end - begin), data,
                           static_cast<std::int64_t>(data->size()));
    }
    auto gathered = std::make_shared<std::vector<std::uint8_t>>();
    gathered->reserve(lit.size() * p_.block_size);
    for (const std::uint32_t k : lit) {
      const auto* b = data->data() + static_cast<size_t>(k) * p_.block_size;
      gathered->insert(gathered->end(), b, b + block_len(first + k));
    }
    if (p_.corrupt_literals && !gathered->empty()) p_.corrupt_literals(*gathered);
    const std::span<const std::uint8_t> literal(*gathered);
    return pipeline.push(first, n, std::move(plan.ops), literal, gathered, static_cast<std::int64_t>(data->size()));
  }

  SessionOutcome cancel() {
    return send_cancel(conn_, ErrorCode::kCancelled, "cancelled by the sender's operator", true);
  }

  SessionOutcome finish() {
    // The source must not have changed while it was read.
    struct stat now {};
    if (::fstat(fd_, &now) != 0 || now.st_size != st_.st_size || now.st_mtim.tv_sec != st_.st_mtim.tv_sec ||
        now.st_mtim.tv_nsec != st_.st_mtim.tv_nsec) {
      return send_cancel(conn_, ErrorCode::kSourceChanged, "the source changed while it was sent", false);
    }
    const auto digest = digest_->finish();
    End end;
    end.total_blocks = total_blocks_;
    end.total_bytes = total_bytes_;
    end.digest = digest.value_or(Hash128{});
    entry_.update([&](sdk::TransferStatus& st) { st.state = sdk::TransferState::kVerifying; });
    if (!conn_.send(FrameType::kEnd, 0, end.encode())) return closed("RESULT");
    return await_result(
        conn_, end.digest,
        [this](const Frame& f) -> std::optional<SessionOutcome> {
          if (f.header.type == FrameType::kAck || f.header.type == FrameType::kHashes) return on_side_frame(f);
          return outcome_of_unexpected(conn_, f, "RESULT");
        },
        [this] { record_wire(); });
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
  int fd_ = -1;
  struct stat st_ {};
  std::uint64_t total_bytes_ = 0;
  std::uint64_t total_blocks_ = 0;
  std::unique_ptr<FileDigest> digest_;
  Accept accept_;
  ReceiverView view_;
  DeltaPlanner planner_;
  std::uint64_t acked_ = 0;
  std::int64_t wire_base_sent_ = 0, wire_base_received_ = 0;
};

}  // namespace

SessionOutcome run_send_session(FrameConnection& conn, const SendParams& params, SendServices services,
                                TransferEntry& entry) {
  Sender sender(conn, params, services, entry);
  return sender.run();
}

}  // namespace novacron::transport
