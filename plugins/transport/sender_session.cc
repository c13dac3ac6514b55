#include "sender_session.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include <cerrno>
#include <cstring>
#include <deque>
#include <future>
#include <memory>

#include "bandwidth_scheduler.h"
#include "block_hash.h"
#include "codec.h"
#include "delta_planner.h"
#include "frames.h"
#include "level_controller.h"
#include "transfer_frames.h"
#include "worker_pool.h"

namespace novacron::transport {

namespace {

constexpr size_t kMaxDedupEntries = 262144;
constexpr std::uint32_t kBatchBytes = 1u << 20;

std::int64_t steady_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

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

struct BuiltBatch {
  std::vector<std::uint8_t> frame;  // header room + BLOCKS payload
  std::uint32_t blocks = 0;
  std::int64_t raw_bytes = 0;  // bytes of the source this batch covers
  std::int64_t literal_raw = 0;
  std::int64_t literal_wire = 0;
  int level_tried = 0;
  int level_used = 0;
  std::int64_t compress_ns = 0;
};

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

  struct Awaited {
    std::optional<Frame> frame;
    SessionOutcome outcome;
  };

  Awaited await(const char* what) {
    while (true) {
      Received r = conn_.receive(kIdleTimeout);
      if (r.status != Received::Status::kFrame) return {std::nullopt, outcome_of_closed(r, what)};
      if (r.frame.header.type == FrameType::kPing) {
        conn_.send(FrameType::kPong, 0, r.frame.payload);
        continue;
      }
      return {std::move(r.frame), {}};
    }
  }

  // The connection refused a frame: the peer's reason is often still queued (an ERROR
  // that closed it), and it says more than "connection lost".
  SessionOutcome closed(const char* what) {
    while (true) {
      Received r = conn_.receive(std::chrono::milliseconds(0));
      if (r.status != Received::Status::kFrame) return outcome_of_closed(r, what);
      const FrameType t = r.frame.header.type;
      if (t == FrameType::kError || t == FrameType::kCancel || t == FrameType::kResult) {
        if (t == FrameType::kResult) {
          if (const auto res = Result::decode(r.frame.payload); res && res->code != 0) {
            return SessionOutcome::failure(error_code_name(res->code), "the receiver reported: " + res->message,
                                           error_is_final(res->code));
          }
          continue;
        }
        return outcome_of_unexpected(conn_, r.frame, what);
      }
    }
  }

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
    std::deque<std::future<BuiltBatch>> pending;
    std::int64_t link_wait = 0;
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
      pending.push_back(build_async(first, n, std::move(plan), std::move(data)));
      while (pending.size() >= static_cast<size_t>(std::max(1, p_.pipeline_depth))) {
        if (auto failed = send_front(pending, link_wait)) return failed;
      }
    }
    while (!pending.empty()) {
      if (auto failed = send_front(pending, link_wait)) return failed;
    }
    return std::nullopt;
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

  std::future<BuiltBatch> build_async(std::uint64_t first, std::uint32_t n, PlannedBatch plan,
                                      const std::shared_ptr<std::vector<std::uint8_t>>& data) {
    const int level = s_.levels.next_level();
    const bool try_compress = level > 0 && detector_.should_try();
    BuiltBatch out;
    out.blocks = n;
    out.raw_bytes = static_cast<std::int64_t>(data->size());
    // The literal bytes in block order: a view into the read buffer when the literal blocks
    // are contiguous (a full copy: all but zero blocks), else gathered.
    const auto& lit = plan.literal_blocks;
    const bool contiguous = !lit.empty() && lit.back() - lit.front() + 1 == lit.size() && !p_.corrupt_literals;
    auto gathered = std::make_shared<std::vector<std::uint8_t>>();
    std::span<const std::uint8_t> literal;
    if (contiguous) {
      const size_t begin = static_cast<size_t>(lit.front()) * p_.block_size;
      const size_t end = static_cast<size_t>(lit.back()) * p_.block_size + block_len(first + lit.back());
      literal = std::span<const std::uint8_t>(data->data() + begin, end - begin);
    } else {
      gathered->reserve(lit.size() * p_.block_size);
      for (const std::uint32_t k : lit) {
        const auto* b = data->data() + static_cast<size_t>(k) * p_.block_size;
        gathered->insert(gathered->end(), b, b + block_len(first + k));
      }
      if (p_.corrupt_literals && !gathered->empty()) p_.corrupt_literals(*gathered);
      literal = *gathered;
    }
    out.literal_raw = static_cast<std::int64_t>(literal.size());
    BlocksHeader header;
    header.first_block = first;
    header.block_count = n;
    header.literal_raw_len = static_cast<std::uint32_t>(literal.size());
    auto ops = std::make_shared<std::vector<OpRun>>(std::move(plan.ops));
    // `data` and `gathered` ride along so that `literal` stays valid on the worker.
    return s_.workers.submit([out, header, ops, literal, data, gathered, level = try_compress ? level : 0]() mutable {
      const std::int64_t start = steady_ns();
      thread_local BatchCompressor compressor;
      // The frame in one buffer: header room, the fixed part and ops, then the body written
      // by the compressor in place (no copy of the compressed bytes).
      const size_t prefix_size = kBlocksFixedSize + kOpRecordSize * ops->size();
      out.frame.reserve(kHeaderSize + prefix_size + literal.size() + literal.size() / 64 + 1024);
      out.frame.resize(kHeaderSize + prefix_size);
      out.level_tried = level;
      out.level_used = literal.empty() ? 0 : compressor.compress(literal, level, out.frame);
      const size_t body = out.frame.size() - kHeaderSize - prefix_size;
      header.codec = out.level_used > 0 ? Codec::kZstd : Codec::kRaw;
      header.level = static_cast<std::uint8_t>(out.level_used);
      header.literal_wire_len = static_cast<std::uint32_t>(body);
      std::vector<std::uint8_t> prefix;
      encode_blocks_prefix(header, *ops, prefix);
      std::copy(prefix.begin(), prefix.end(), out.frame.begin() + kHeaderSize);
      out.literal_wire = static_cast<std::int64_t>(body);
      out.compress_ns = steady_ns() - start;
      return out;
    });
  }

  std::optional<SessionOutcome> send_front(std::deque<std::future<BuiltBatch>>& pending, std::int64_t& link_wait) {
    const std::int64_t wait_start = steady_ns();
    BuiltBatch b = pending.front().get();
    pending.pop_front();
    const std::int64_t cpu_wait = steady_ns() - wait_start;
    if (b.level_tried > 0 && b.literal_raw > 0) {
      detector_.record(b.level_used > 0);
      s_.levels.observe_ratio(b.level_tried, b.literal_raw, b.level_used > 0 ? b.literal_wire : b.literal_raw);
    }
    const std::int64_t send_start = steady_ns();
    const auto frame_bytes = static_cast<std::int64_t>(b.frame.size());
    if (s_.gate != nullptr && !s_.gate->acquire(s_.gate_key, frame_bytes, entry_.cancelled())) return cancel();
    // Keep reading while the socket is full: the receiver may still be sending HASHES, and
    // it reads our BLOCKS only once they are out (both sides blocked would never end).
    while (!conn_.wait_writable(std::chrono::milliseconds(50))) {
      if (auto failed = drain_side_frames()) return failed;
      if (entry_.cancelled().load()) return cancel();
    }
    if (!conn_.send_prepared(FrameType::kBlocks, 0, std::move(b.frame))) return closed("sending BLOCKS");
    link_wait = steady_ns() - send_start;
    s_.levels.observe_waits(link_wait, cpu_wait);
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

  SessionOutcome cancel() {
    Cancel c;
    c.code = static_cast<std::uint16_t>(ErrorCode::kCancelled);
    c.message = "cancelled by the sender's operator";
    conn_.send(FrameType::kCancel, 0, c.encode());
    conn_.close(std::chrono::seconds(2));
    return SessionOutcome::failure("cancelled", "the transfer was cancelled", true);
  }

  SessionOutcome finish() {
    // The source must not have changed while it was read.
    struct stat now {};
    if (::fstat(fd_, &now) != 0 || now.st_size != st_.st_size || now.st_mtim.tv_sec != st_.st_mtim.tv_sec ||
        now.st_mtim.tv_nsec != st_.st_mtim.tv_nsec) {
      Cancel c;
      c.code = static_cast<std::uint16_t>(ErrorCode::kSourceChanged);
      c.message = "the source changed while it was sent";
      conn_.send(FrameType::kCancel, 0, c.encode());
      conn_.close(std::chrono::seconds(2));
      return SessionOutcome::failure("source_changed", "the source changed while it was sent", false);
    }
    const auto digest = digest_->finish();
    End end;
    end.total_blocks = total_blocks_;
    end.total_bytes = total_bytes_;
    end.digest = digest.value_or(Hash128{});
    entry_.update([&](sdk::TransferStatus& st) { st.state = sdk::TransferState::kVerifying; });
    if (!conn_.send(FrameType::kEnd, 0, end.encode())) return closed("RESULT");
    while (true) {
      auto r = await("RESULT");
      if (!r.frame) return r.outcome;
      if (r.frame->header.type == FrameType::kAck || r.frame->header.type == FrameType::kHashes) {
        if (auto failed = on_side_frame(*r.frame)) return *failed;
        continue;
      }
      if (r.frame->header.type != FrameType::kResult) return outcome_of_unexpected(conn_, *r.frame, "RESULT");
      const auto res = Result::decode(r.frame->payload);
      conn_.close(std::chrono::seconds(2));
      record_wire();
      if (!res) return SessionOutcome::protocol(ErrorCode::kMalformed, "the peer sent a bad RESULT");
      if (res->code != 0) {
        return SessionOutcome::failure(error_code_name(res->code), "the receiver reported: " + res->message,
                                       error_is_final(res->code));
      }
      if (res->receiver_digest != end.digest) {
        return SessionOutcome::protocol(ErrorCode::kVerificationFailed,
                                        "the receiver's digest differs from the sender's");
      }
      SessionOutcome ok;
      ok.digest = digest_text(end.digest);
      return ok;
    }
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
  IncompressibleDetector detector_;
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
