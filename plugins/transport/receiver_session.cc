#include "receiver_session.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>

#include "block_hash.h"
#include "block_index.h"
#include "blocks_decoder.h"
#include "codec.h"
#include "file_io.h"
#include "frames.h"
#include "safe_path.h"
#include "tree_receiver.h"
#include "tunnel.h"
#include "tunnel_frames.h"

namespace novacron::transport {

namespace {

constexpr std::uint32_t kHashesPerFrame = 1024;
constexpr std::uint64_t kAckEveryBytes = 8u << 20;
constexpr auto kAckEvery = std::chrono::seconds(1);
constexpr auto kCheckpointEvery = std::chrono::seconds(2);
constexpr std::uint64_t kPrefillFlushEvery = 64u << 20;

std::string errno_text() { return std::strerror(errno); }

bool same_times(const struct stat& a, const struct stat& b) {
  return a.st_size == b.st_size && a.st_mtim.tv_sec == b.st_mtim.tv_sec && a.st_mtim.tv_nsec == b.st_mtim.tv_nsec &&
         a.st_ctim.tv_sec == b.st_ctim.tv_sec && a.st_ctim.tv_nsec == b.st_ctim.tv_nsec;
}

// A failure the receiver reports to the sender and keeps (or drops) its partial for.
struct Failure {
  ErrorCode code;
  std::string message;
  bool keep_partial;
};

class Receiver {
 public:
  Receiver(FrameConnection& conn, const ReceiveContext& ctx) : conn_(conn), ctx_(ctx) {}

  ReceiveResult run() {
    ReceiveResult result;
    result.outcome = session();
    result.entry = entry_;
    result.partial_kept = partial_kept_;
    result.tunnel = tunnel_;
    return result;
  }

 private:
  SessionOutcome session() {
    if (auto failed = hello()) return *failed;
    if (tunnel_) return tunnel_destination();
    if (auto failed = offer()) return *failed;
    if (offer_.kind == TransferKindCode::kDirectory) {
      auto tree = run_tree_receive(conn_, ctx_, offer_);
      entry_ = tree.entry;
      partial_kept_ = tree.partial_kept;
      return tree.outcome;
    }
    entry_->update([&](sdk::TransferStatus& st) { st.state = sdk::TransferState::kRunning; });
    if (auto failed = scan_and_accept()) return *failed;
    return receive_blocks();
  }

  // Ends the session with an ERROR to the peer; the partial is kept or discarded.
  SessionOutcome fail(const Failure& f, std::uint64_t context = 0) {
    send_error_and_close(conn_, f.code, f.message, context);
    if (!f.keep_partial) discard_partial();
    partial_kept_ = f.keep_partial && record_written_;
    return SessionOutcome::protocol(f.code, f.message);
  }

  std::optional<Received> next(const char* what, SessionOutcome& closed) {
    while (true) {
      Received r = conn_.receive(kIdleTimeout);
      if (r.status != Received::Status::kFrame) {
        closed = outcome_of_closed(r, what);
        partial_kept_ = record_written_;
        return std::nullopt;
      }
      if (r.frame.header.type == FrameType::kPing) {
        conn_.send(FrameType::kPong, 0, r.frame.payload);
        continue;
      }
      return r;
    }
  }

  std::optional<SessionOutcome> hello() {
    SessionOutcome closed;
    auto r = next("HELLO", closed);
    if (!r) return closed;
    if (r->frame.header.type != FrameType::kHello) return outcome_of_unexpected(conn_, r->frame, "HELLO");
    const auto h = Hello::decode(r->frame.payload);
    if (!h) return fail({ErrorCode::kMalformed, "bad HELLO", false});
    if (h->node != conn_.peer_name()) {
      return fail({ErrorCode::kUnknownPeer,
                   "HELLO names node '" + h->node + "' but the certificate is '" + conn_.peer_name() + "'", false});
    }
    const auto version = negotiate_version(*h, kProtocolVersion, kProtocolVersion);
    if (!version) return fail({ErrorCode::kUnsupportedVersion, "this node speaks protocol version 1 only", false});
    tunnel_ = h->purpose == Purpose::kTunnel;
    HelloOk ok;
    ok.version = *version;
    ok.caps = kCapZstd | kCapTrees | kCapTunnel;
    ok.max_frame = kMaxFrame;
    ok.node = ctx_.local_node;
    conn_.send(FrameType::kHelloOk, 0, ok.encode());
    return std::nullopt;
  }

  // The destination of a stream tunnel: TUNNEL_OPEN names a target inside the allowed
  // CIDRs (so a peer cannot use this node as an open proxy); once connected, READY, and
  // the bytes flow both ways until both sides have closed.
  SessionOutcome tunnel_destination() {
    SessionOutcome closed;
    auto r = next("TUNNEL_OPEN", closed);
    if (!r) return closed;
    if (r->frame.header.type != FrameType::kTunnelOpen) return outcome_of_unexpected(conn_, r->frame, "TUNNEL_OPEN");
    const auto open = TunnelOpen::decode(r->frame.payload);
    if (!open) return fail({ErrorCode::kMalformed, "bad TUNNEL_OPEN", false});
    if (!tunnel_target_allowed(open->target, ctx_.tunnel_targets)) {
      return fail({ErrorCode::kNotPermitted,
                   "tunnel target " + open->target +
                       " is not an address this node may connect "
                       "to (tunnel_targets)",
                   false});
    }
    std::string conflict;
    entry_ = ctx_.begin_tunnel(open->id, conn_.peer_name(), open->target, conflict);
    if (!entry_) return fail({ErrorCode::kBusy, conflict, false});
    std::string error;
    const int fd = connect_tcp(open->target, 10000, error);
    if (fd < 0) return fail({ErrorCode::kTargetRefused, "tunnel target: " + error, false});
    conn_.send(FrameType::kTunnelReady, 0, {});
    entry_->update([&](sdk::TransferStatus& st) { st.state = sdk::TransferState::kRunning; });
    const TunnelEnd end = pump_tunnel(conn_, fd, 1, nullptr, 0, *entry_);
    ::close(fd);
    if (!end.error_code.empty()) return SessionOutcome::failure(end.error_code, end.message, true);
    return SessionOutcome{};
  }

  std::optional<SessionOutcome> offer() {
    SessionOutcome closed;
    auto r = next("OFFER", closed);
    if (!r) return closed;
    if (r->frame.header.type != FrameType::kOffer) return outcome_of_unexpected(conn_, r->frame, "OFFER");
    const auto o = Offer::decode(r->frame.payload);
    if (!o) return fail({ErrorCode::kMalformed, "bad OFFER", false});
    offer_ = *o;
    if (!ctx_.root) return fail({ErrorCode::kNotReady, "this node has no receive policy yet", false});
    if (offer_.kind == TransferKindCode::kBlockDevice) return offer_device();
    if (offer_.kind == TransferKindCode::kDirectory) return std::nullopt;  // tree_receiver.cc
    if (auto bad = check_relative_path(offer_.target)) {
      return fail({ErrorCode::kNotPermitted, "target: " + bad->message, false});
    }
    if (!offer_.base.empty()) {
      if (auto bad = check_relative_path(offer_.base)) {
        return fail({ErrorCode::kNotPermitted, "base: " + bad->message, false});
      }
    }
    std::string conflict;
    entry_ = ctx_.begin(offer_, conn_.peer_name(), conflict);
    if (!entry_) return fail({ErrorCode::kBusy, conflict, false});
    if (auto failed = open_target()) return failed;
    if (auto failed = open_base()) return failed;
    return prepare_temp();
  }

  // A block device target: on the policy's list (compared by device number, so that
  // /dev/vg0/x links work), opened exclusively (fails while mounted), written in place and
  // marked incomplete (the record) until its digest matched.
  std::optional<SessionOutcome> offer_device() {
    const std::string& path = offer_.target;
    if (path.empty() || path.front() != '/' || path.find('\0') != std::string::npos) {
      return fail({ErrorCode::kNotPermitted, "target: a block device is named by its absolute path", false});
    }
    struct stat st {};
    const bool listed =
        ::stat(path.c_str(), &st) == 0 && S_ISBLK(st.st_mode) &&
        std::find(ctx_.block_devices.begin(), ctx_.block_devices.end(), st.st_rdev) != ctx_.block_devices.end();
    if (!listed) {
      return fail({ErrorCode::kNotPermitted,
                   "target " + path + " is not a block device this node accepts (transfers.block_devices)", false});
    }
    std::string conflict;
    entry_ = ctx_.begin(offer_, conn_.peer_name(), conflict);
    if (!entry_) return fail({ErrorCode::kBusy, conflict, false});
    temp_ = Fd(::open(path.c_str(), O_RDWR | O_EXCL | O_CLOEXEC));
    struct stat opened {};
    if (!temp_.valid()) {
      return fail({errno == EBUSY ? ErrorCode::kBusy : ErrorCode::kIo,
                   "cannot open " + path + " exclusively: " + errno_text() + (errno == EBUSY ? " (mounted?)" : ""),
                   false});
    }
    if (::fstat(temp_.get(), &opened) != 0 || !S_ISBLK(opened.st_mode) || opened.st_rdev != st.st_rdev) {
      return fail({ErrorCode::kNotPermitted, "target " + path + " changed while it was opened", false});
    }
    std::uint64_t size = 0;
    if (::ioctl(temp_.get(), BLKGETSIZE64, &size) != 0 || size < offer_.total_bytes) {
      return fail({ErrorCode::kNoSpace,
                   path + " holds " + std::to_string(size) + " bytes, the source " + std::to_string(offer_.total_bytes),
                   false});
    }
    in_place_ = device_ = true;
    name_ = temp_name_ = path;
    record_ = PartialRecord{offer_.id,
                            conn_.peer_name(),
                            path,
                            path,
                            "",
                            offer_.total_bytes,
                            offer_.block_size,
                            hex(offer_.source_fingerprint),
                            0,
                            unix_ms_now(),
                            unix_ms_now(),
                            true};
    std::string error;
    if (!ctx_.partials->put(record_, error)) return fail({ErrorCode::kIo, error, false});
    record_written_ = true;
    held_ = offer_.total_blocks;  // the device's current blocks are the view
    return std::nullopt;
  }

  std::optional<SessionOutcome> open_target() {
    const auto split = split_parent(offer_.target);
    name_ = split->name;
    auto parent = open_dir_beneath(ctx_.root->get(), split->dir, /*create_missing=*/true);
    if (!parent) return fail({ErrorCode::kNotPermitted, "target: " + parent.error().message, false});
    // O_PATH fds serve the *at calls; fsync of the folder needs a real one.
    parent_ = Fd(::openat(parent->get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!parent_.valid()) return fail({ErrorCode::kIo, "target folder: " + errno_text(), false});
    struct stat st {};
    if (::fstatat(parent_.get(), name_.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISREG(st.st_mode)) {
      return fail({ErrorCode::kNotPermitted, "target " + offer_.target + " exists and is not a regular file", false});
    }
    return std::nullopt;
  }

  std::optional<SessionOutcome> open_base() {
    if (!offer_.base.empty()) {
      auto base = open_file_beneath(ctx_.root->get(), offer_.base, O_RDONLY);
      if (!base) return fail({ErrorCode::kNotPermitted, "base: " + base.error().message, false});
      base_ = std::move(*base);
    } else {
      base_ = Fd(::openat(parent_.get(), name_.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));  // the old target
    }
    if (base_.valid()) {
      if (::fstat(base_.get(), &base_stat_) != 0 || !S_ISREG(base_stat_.st_mode)) base_.reset();
    }
    return std::nullopt;
  }

  std::optional<SessionOutcome> prepare_temp() {
    if ((offer_.flags & kOfferInPlace) != 0 && offer_.base.empty() && base_.valid()) return prepare_in_place();
    temp_name_ = temp_name_for(name_, offer_.id);
    const std::string peer = conn_.peer_name();
    const std::string fingerprint = hex(offer_.source_fingerprint);
    auto record = ctx_.partials->get(peer, offer_.id);
    if (record && record->target == offer_.target && record->total_bytes == offer_.total_bytes &&
        record->block_size == offer_.block_size && record->fingerprint == fingerprint &&
        record->temp_name == temp_name_) {
      temp_ = Fd(::openat(parent_.get(), temp_name_.c_str(), O_RDWR | O_NOFOLLOW | O_CLOEXEC));
      if (temp_.valid()) {
        acked_ = std::min<std::uint64_t>(record->acked_blocks, offer_.total_blocks);
        held_ = acked_;
        record_ = *record;
        record_written_ = true;
        // Whatever was written past the acknowledged point is cut back to a hole: the
        // view the sender plans against must be exactly what the hashes say.
        if (::ftruncate(temp_.get(), static_cast<off_t>(acked_ * offer_.block_size)) != 0 ||
            ::ftruncate(temp_.get(), static_cast<off_t>(offer_.total_bytes)) != 0) {
          return fail({ErrorCode::kIo, "cannot reset the partial file: " + errno_text(), true});
        }
        return std::nullopt;
      }
    }
    if (record) {  // another transfer under this id, or its file is gone: start afresh
      remove_stale_temp(*record);
      ctx_.partials->remove(peer, offer_.id);
    }
    record_ = PartialRecord{
        offer_.id,   peer, offer_.target, temp_name_,   offer_.base, offer_.total_bytes, offer_.block_size,
        fingerprint, 0,    unix_ms_now(), unix_ms_now()};
    std::string error;
    // The record first: a crash leaves a record without a file, never a file without one.
    if (!ctx_.partials->put(record_, error)) return fail({ErrorCode::kIo, error, false});
    record_written_ = true;
    ::unlinkat(parent_.get(), temp_name_.c_str(), 0);
    temp_ = Fd(::openat(parent_.get(), temp_name_.c_str(), O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!temp_.valid()) return fail({ErrorCode::kIo, "cannot create the temp file: " + errno_text(), false});
    struct statvfs vfs {};
    if (::fstatvfs(temp_.get(), &vfs) == 0 &&
        static_cast<std::uint64_t>(vfs.f_bavail) * vfs.f_frsize < offer_.total_bytes) {
      return fail(
          {ErrorCode::kNoSpace, "not enough free space for " + std::to_string(offer_.total_bytes) + " bytes", false});
    }
    if (::ftruncate(temp_.get(), static_cast<off_t>(offer_.total_bytes)) != 0) {
      return fail({errno == ENOSPC ? ErrorCode::kNoSpace : ErrorCode::kIo, "cannot size the temp file: " + errno_text(),
                   false});
    }
    return std::nullopt;
  }

  // The temp file of an earlier record under this id, in that record's own folder. An
  // in-place record names the target itself, which is never deleted.
  void remove_stale_temp(const PartialRecord& r) {
    if (r.in_place) return;
    const auto split = split_parent(r.target);
    if (!split || r.temp_name.find(".nctmp-") == std::string::npos) return;
    auto dir = open_dir_beneath(ctx_.root->get(), split->dir, false);
    if (dir) ::unlinkat(dir->get(), r.temp_name.c_str(), 0);
  }

  // Writes straight into the existing target: the record marks it incomplete first, then
  // the file takes the new length and its current blocks are the view (so a retry after a
  // failure is simply a delta against what it holds now).
  std::optional<SessionOutcome> prepare_in_place() {
    in_place_ = true;
    base_.reset();  // the view is the target itself, read through temp_
    temp_name_ = name_;
    temp_ = Fd(::openat(parent_.get(), name_.c_str(), O_RDWR | O_NOFOLLOW | O_CLOEXEC));
    struct stat st {};
    if (!temp_.valid() || ::fstat(temp_.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
      return fail({ErrorCode::kIo, "cannot open the target for an in-place update: " + errno_text(), false});
    }
    record_ = PartialRecord{offer_.id, conn_.peer_name(),  offer_.target,     name_,
                            "",        offer_.total_bytes, offer_.block_size, hex(offer_.source_fingerprint),
                            0,         unix_ms_now(),      unix_ms_now(),     true};
    std::string error;
    if (!ctx_.partials->put(record_, error)) return fail({ErrorCode::kIo, error, false});
    record_written_ = true;
    if (::ftruncate(temp_.get(), static_cast<off_t>(offer_.total_bytes)) != 0) {
      return fail(
          {errno == ENOSPC ? ErrorCode::kNoSpace : ErrorCode::kIo, "cannot size the target: " + errno_text(), true});
    }
    held_ = std::min(FileDigest::blocks_for(static_cast<std::uint64_t>(st.st_size), offer_.block_size),
                     offer_.total_blocks);
    return std::nullopt;
  }

  std::uint32_t block_len(std::uint64_t block) const {
    return static_cast<std::uint32_t>(
        std::min<std::uint64_t>(offer_.block_size, offer_.total_bytes - block * offer_.block_size));
  }

  std::uint32_t base_block_len(std::uint64_t block) const {
    const std::uint64_t size = static_cast<std::uint64_t>(base_stat_.st_size);
    return static_cast<std::uint32_t>(std::min<std::uint64_t>(offer_.block_size, size - block * offer_.block_size));
  }

  // The view: blocks [0, acked) of the partial, then the base's blocks, up to the file's
  // length. Its hashes go to the sender as they are computed.
  std::optional<SessionOutcome> scan_and_accept() {
    const std::uint64_t base_blocks =
        base_.valid() ? FileDigest::blocks_for(static_cast<std::uint64_t>(base_stat_.st_size), offer_.block_size) : 0;
    view_blocks_ = std::max(held_, std::min(base_blocks, offer_.total_blocks));
    // The cache is looked up before ACCEPT, which says whether it is used.
    if (held_ == 0 && base_.valid() && !ctx_.index_dir.empty() && (offer_.flags & kOfferNoIndexCache) == 0) {
      index_ = read_block_index(ctx_.index_dir, base_stat_, offer_.block_size);
    }
    Accept a;
    a.block_size = offer_.block_size;
    a.flags = static_cast<std::uint8_t>((in_place_ ? kAcceptInPlace : 0) | (index_ ? kAcceptFromIndexCache : 0));
    a.resume_from_block = acked_;
    a.base_blocks = view_blocks_;
    conn_.send(FrameType::kAccept, 0, a.encode());
    view_present_.assign(view_blocks_, false);
    view_hash_.assign(view_blocks_, Hash128{});
    log_view_source();
    if (auto failed = start_prefill()) return failed;
    for (std::uint64_t first = 0; first < view_blocks_; first += kHashesPerFrame) {
      const auto n = static_cast<std::uint32_t>(std::min<std::uint64_t>(kHashesPerFrame, view_blocks_ - first));
      Hashes frame;
      frame.first_block = first;
      frame.present.resize(n);
      // One read per source: the partial's prefix, then the base (beyond a shorter base: holes).
      for (std::uint64_t j = first; j < first + n;) {
        const bool from_temp = j < held_;
        const std::uint64_t end = from_temp ? std::min(first + n, held_) : std::min(first + n, base_blocks);
        if (end <= j) break;
        if (auto failed = scan_range(from_temp, j, end, frame)) return failed;
        j = end;
      }
      if (!conn_.send(FrameType::kHashes, first + n == view_blocks_ ? kFlagLast : 0, frame.encode())) break;
    }
    if (prefill_ != Prefill::kNone) held_ = view_blocks_;  // the temp file now holds the whole view
    entry_->update([&](sdk::TransferStatus& st) {
      st.stats.bytes_total = static_cast<std::int64_t>(offer_.total_bytes);
      st.stats.blocks_total = static_cast<std::int64_t>(offer_.total_blocks);
    });
    out_hash_.assign(offer_.total_blocks, Hash128{});
    digest_ = std::make_unique<FileDigest>(offer_.block_size, offer_.total_bytes);
    last_ack_ = last_checkpoint_ = std::chrono::steady_clock::now();
    return std::nullopt;
  }

  // A fresh temp file starts as a copy of the base, so that kept blocks cost nothing later
  // (as in place) instead of one copy per run of them: a reflink of the whole base where the
  // file system shares extents (one FICLONE), else the base's non-zero blocks are written
  // while the scan has them in memory anyway. Not with hashes from the index cache: those
  // blocks must be read back and checked as they are kept.
  std::optional<SessionOutcome> start_prefill() {
    if (in_place_ || device_ || !base_.valid() || index_ || held_ > 0 || view_blocks_ == 0) return std::nullopt;
    if (::ioctl(temp_.get(), FICLONE, base_.get()) == 0) {
      if (::ftruncate(temp_.get(), static_cast<off_t>(offer_.total_bytes)) != 0) {
        return fail({ErrorCode::kIo, "cannot size the temp file: " + errno_text(), true});
      }
      prefill_ = Prefill::kCloned;
      return std::nullopt;
    }
    prefill_ = Prefill::kWritten;
    return std::nullopt;
  }

  // Writes the non-zero blocks [j, end) just read from the base (in scratch_) into the temp
  // file at the same offsets; zero blocks stay holes.
  std::optional<SessionOutcome> prefill_chunk(std::uint64_t j, std::uint64_t end, std::uint64_t bytes) {
    for (std::uint64_t b = j; b < end;) {
      if (!view_present_[b]) {
        ++b;
        continue;
      }
      std::uint64_t run_end = b;
      while (run_end < end && view_present_[run_end]) ++run_end;
      const std::uint64_t at = (b - j) * offer_.block_size;
      const std::uint64_t len = std::min<std::uint64_t>((run_end - b) * offer_.block_size, bytes - at);
      if (!pwrite_full(temp_.get(), scratch_.data() + at, len, b * offer_.block_size)) {
        return fail({errno == ENOSPC ? ErrorCode::kNoSpace : ErrorCode::kIo,
                     "cannot copy the base into the temp file: " + errno_text(), true});
      }
      b = run_end;
    }
    // Start writeback as the copy goes (asynchronous): ext4 allocates and submits the
    // delayed blocks of a file renamed over another at the rename (auto_da_alloc), which
    // would otherwise stall END for all of them at once.
    const std::uint64_t done = end * offer_.block_size;
    if (done - prefill_flushed_ >= kPrefillFlushEvery) {
      ::sync_file_range(temp_.get(), static_cast<off_t>(prefill_flushed_), static_cast<off_t>(done - prefill_flushed_),
                        SYNC_FILE_RANGE_WRITE);
      prefill_flushed_ = done;
    }
    return std::nullopt;
  }

  // Hashes view blocks [j, end) of one source into the view and `frame`.
  std::optional<SessionOutcome> scan_range(bool from_temp, std::uint64_t j, std::uint64_t end, Hashes& frame) {
    const std::uint64_t per_read = std::max<std::uint64_t>(1, (4u << 20) / offer_.block_size);
    for (std::uint64_t at = j; at < end; at += per_read) {
      if (auto failed = scan_chunk(from_temp, at, std::min(end, at + per_read), frame)) return failed;
    }
    return std::nullopt;
  }

  std::optional<SessionOutcome> scan_chunk(bool from_temp, std::uint64_t j, std::uint64_t end, Hashes& frame) {
    if (!from_temp && index_) {  // the base's hashes come from its index: nothing to read
      for (std::uint64_t b = j; b < end; ++b) {
        if (!index_->present[b]) continue;
        view_present_[b] = true;
        view_hash_[b] = index_->hashes[b];
        frame.present[b - frame.first_block] = true;
        frame.hashes.push_back(view_hash_[b]);
      }
      return std::nullopt;
    }
    const std::uint64_t offset = j * offer_.block_size;
    const std::uint64_t last_len = from_temp ? block_len(end - 1) : base_block_len(end - 1);
    const std::uint64_t bytes = (end - 1 - j) * offer_.block_size + last_len;
    scratch_.resize(bytes);
    if (!pread_full(from_temp ? temp_.get() : base_.get(), scratch_.data(), bytes, offset)) {
      return fail({ErrorCode::kIo,
                   "cannot read blocks " + std::to_string(j) + ".." + std::to_string(end) + " of the base", true});
    }
    for (std::uint64_t b = j; b < end; ++b) {
      const size_t at = (b - j) * offer_.block_size;
      const std::span<const std::uint8_t> block(scratch_.data() + at, std::min<size_t>(offer_.block_size, bytes - at));
      if (is_zero(block)) continue;
      view_present_[b] = true;
      view_hash_[b] = block_hash(block);
      frame.present[b - frame.first_block] = true;
      frame.hashes.push_back(view_hash_[b]);
    }
    if (!from_temp && prefill_ == Prefill::kWritten) return prefill_chunk(j, end, bytes);
    return std::nullopt;
  }

  SessionOutcome receive_blocks() {
    while (true) {
      SessionOutcome closed;
      auto r = next("BLOCKS or END", closed);
      if (!r) {
        record_progress(true);
        return closed;
      }
      if (entry_->cancelled().load()) {
        Cancel c;
        c.code = static_cast<std::uint16_t>(ErrorCode::kCancelled);
        c.message = "cancelled on the receiving node";
        conn_.send(FrameType::kCancel, 0, c.encode());
        discard_partial();
        conn_.close(std::chrono::seconds(2));
        return SessionOutcome::failure("cancelled", "the transfer was cancelled on this node", true);
      }
      const Frame& f = r->frame;
      if (f.header.type == FrameType::kBlocks) {
        if (auto failure = apply(f)) return fail(*failure, next_block_);
        continue;
      }
      if (f.header.type == FrameType::kEnd) return finish(f);
      if (f.header.type == FrameType::kCancel) {
        discard_partial();
        conn_.close(std::chrono::seconds(2));
        return SessionOutcome::failure("cancelled", "the sender cancelled the transfer", true);
      }
      record_progress(true);
      partial_kept_ = record_written_;
      return outcome_of_unexpected(conn_, f, "BLOCKS or END");
    }
  }

  std::optional<Failure> apply(const Frame& f) {
    auto decoded = decode_blocks_at(
        f.payload, next_block_, offer_.total_blocks, [this](std::uint64_t b) { return block_len(b); }, decompressor_,
        decoded_);
    if (const auto* refused = std::get_if<BlocksRefusal>(&decoded))
      return Failure{refused->code, refused->message, true};
    const auto& [v, literal] = std::get<DecodedBlocks>(decoded);
    const BlocksHeader& h = v.header;
    size_t literal_pos = 0;
    std::uint64_t bytes = 0;
    batch_counts_ = {};
    std::uint64_t j = h.first_block;
    for (const OpRun& op : v.ops) {
      for (std::uint32_t k = 0; k < op.run; ++k, ++j) {
        const std::uint32_t len = block_len(j);
        Hash128 hash{};
        if (auto failure = apply_block(op, k, j, len, literal, literal_pos, hash)) return failure;
        out_hash_[j] = hash;
        digest_->add(hash);
        bytes += len;
      }
    }
    if (auto failure = flush_io()) return failure;
    next_block_ = j;
    bytes_written_ += bytes;
    entry_->add_progress(static_cast<std::int64_t>(bytes));
    entry_->update([&](sdk::TransferStatus& st) {
      st.stats.blocks_literal += batch_counts_.blocks_literal;
      st.stats.blocks_delta += batch_counts_.blocks_delta;
      st.stats.blocks_dedup += batch_counts_.blocks_dedup;
      st.stats.blocks_zero += batch_counts_.blocks_zero;
      st.stats.blocks_resumed += batch_counts_.blocks_resumed;
      st.stats.literal_raw_bytes += h.literal_raw_len;
      st.stats.literal_wire_bytes += h.literal_wire_len;
      st.stats.compression_level = h.level;
      st.stats.wire_bytes_sent = conn_.wire_bytes_sent();
      st.stats.wire_bytes_received = conn_.wire_bytes_received();
    });
    maybe_ack();
    return std::nullopt;
  }

  std::optional<Failure> apply_block(const OpRun& op, std::uint32_t k, std::uint64_t j, std::uint32_t len,
                                     std::span<const std::uint8_t> literal, size_t& literal_pos, Hash128& hash) {
    const std::uint64_t offset = j * offer_.block_size;
    switch (op.op) {
      case BlockOp::kKeep: {
        const bool in_view = j < view_blocks_;
        if (in_view && view_present_[j]) {
          if (j >= held_) {
            if (auto failure = queue({base_.get(), offset, offset, len, nullptr, index_.has_value()})) return failure;
          }
          hash = view_hash_[j];
          count(&sdk::TransferStats::blocks_delta, j < acked_);
        } else {
          hash = zero_block_hash(len);
          count(&sdk::TransferStats::blocks_zero, false);
        }
        return std::nullopt;
      }
      case BlockOp::kZero:
        if (j < held_ && j < view_blocks_ && view_present_[j]) {
          if (auto failure = flush_io()) return failure;
          if (::fallocate(temp_.get(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(offset), len) !=
              0) {
            // Devices and file systems without hole punching: write the zeros.
            zeros_.assign(len, 0);
            if (!pwrite_full(temp_.get(), zeros_.data(), len, offset)) {
              return Failure{ErrorCode::kIo, "cannot zero block " + std::to_string(j) + ": " + errno_text(), true};
            }
          }
        }
        hash = zero_block_hash(len);
        count(&sdk::TransferStats::blocks_zero, false);
        return std::nullopt;
      case BlockOp::kLiteral: {
        const auto bytes = literal.subspan(literal_pos, len);
        literal_pos += len;
        if (auto failure = queue({-1, 0, offset, len, bytes.data()})) return failure;
        hash = block_hash(bytes);
        count(&sdk::TransferStats::blocks_literal, false);
        return std::nullopt;
      }
      case BlockOp::kCopyBase: {
        const std::uint64_t src = op.arg + k;
        // The sender plans COPY_BASE only when the view is exactly the base (not a resumed
        // partial, not a target updated in place).
        const bool view_is_base = acked_ == 0 && !in_place_;
        if (!view_is_base || !base_.valid() || src >= view_blocks_ || !view_present_[src] ||
            base_block_len(src) != len) {
          return Failure{ErrorCode::kUnexpectedFrame, "COPY_BASE of block " + std::to_string(src) + " not allowed",
                         true};
        }
        if (auto failure = queue({base_.get(), src * offer_.block_size, offset, len, nullptr, index_.has_value()})) {
          return failure;
        }
        hash = view_hash_[src];
        count(&sdk::TransferStats::blocks_delta, false);
        return std::nullopt;
      }
      case BlockOp::kCopyOut: {
        const std::uint64_t src = op.arg + k;
        if (src >= j) {
          return Failure{ErrorCode::kUnexpectedFrame, "COPY_OUT of block " + std::to_string(src) + " not yet written",
                         true};
        }
        // It reads the temp file: what is queued for it must be written first.
        if (auto failure = flush_io()) return failure;
        if (!copy_range(temp_.get(), src * offer_.block_size, temp_.get(), offset, len, scratch_)) {
          return Failure{ErrorCode::kIo, "copy within the file failed at block " + std::to_string(j), true};
        }
        hash = out_hash_[src];
        count(&sdk::TransferStats::blocks_dedup, false);
        return std::nullopt;
      }
    }
    return Failure{ErrorCode::kMalformed, "unknown block op", true};
  }

  void log_view_source() {
    if (index_ && ctx_.log_info) {
      ctx_.log_info("transport receive id=" + offer_.id + " view of the base from its index cache");
    }
  }

  // One pending write into the temp file: a copy from the base (from_fd >= 0) or literal
  // bytes (data). Contiguous blocks merge, so a run of KEEP or LITERAL blocks costs one
  // system call instead of one per block.
  struct PendingIo {
    int from_fd = -1;
    std::uint64_t from_offset = 0;
    std::uint64_t to_offset = 0;
    std::uint64_t length = 0;
    const std::uint8_t* data = nullptr;
    bool verify = false;  // a copy from the base whose hashes came from the index cache
  };

  std::optional<Failure> queue(const PendingIo& io) {
    PendingIo& p = pending_;
    const bool contiguous = p.length > 0 && p.to_offset + p.length == io.to_offset && p.verify == io.verify &&
                            (io.data != nullptr ? p.data != nullptr && p.data + p.length == io.data
                                                : p.data == nullptr && p.from_fd == io.from_fd &&
                                                      p.from_offset + p.length == io.from_offset);
    if (contiguous) {
      p.length += io.length;
      return std::nullopt;
    }
    if (auto failure = flush_io()) return failure;
    pending_ = io;
    return std::nullopt;
  }

  std::optional<Failure> flush_io() {
    PendingIo p = pending_;
    pending_ = {};
    if (p.length == 0) return std::nullopt;
    if (p.verify) return verified_copy(p);
    if (p.data != nullptr) {
      if (!pwrite_full(temp_.get(), p.data, p.length, p.to_offset)) {
        return Failure{errno == ENOSPC ? ErrorCode::kNoSpace : ErrorCode::kIo,
                       "write at offset " + std::to_string(p.to_offset) + " failed: " + errno_text(), true};
      }
    } else if (!copy_range(p.from_fd, p.from_offset, temp_.get(), p.to_offset, p.length, scratch_)) {
      return Failure{errno == ENOSPC ? ErrorCode::kNoSpace : ErrorCode::kIo,
                     "copy from the base failed at offset " + std::to_string(p.from_offset), true};
    }
    return std::nullopt;
  }

  // A copy from the base when its hashes came from the index cache: the bytes are read
  // back and hashed before they are written, so a stale index (a base changed behind the
  // file's times) fails this attempt (base_changed: the sender retries, and the index is
  // gone) instead of installing wrong blocks.
  std::optional<Failure> verified_copy(const PendingIo& p) {
    scratch_.resize(p.length);
    if (!pread_full(p.from_fd, scratch_.data(), p.length, p.from_offset)) {
      return Failure{ErrorCode::kIo, "cannot read the base at offset " + std::to_string(p.from_offset), true};
    }
    const std::uint32_t bs = offer_.block_size;
    for (std::uint64_t at = 0; at < p.length; at += bs) {
      const std::uint64_t block = (p.from_offset + at) / bs;
      const std::span<const std::uint8_t> bytes(scratch_.data() + at, std::min<std::uint64_t>(bs, p.length - at));
      if (block >= view_blocks_ || block_hash(bytes) != view_hash_[block]) {
        remove_block_index(ctx_.index_dir, base_stat_.st_dev, base_stat_.st_ino);
        return Failure{ErrorCode::kBaseChanged,
                       "block " + std::to_string(block) + " of the base differs from its cached index", false};
      }
    }
    // The check read the bytes; the copy itself still goes through copy_file_range so that
    // file systems with reflinks share the extents instead of writing them.
    if (!copy_range(p.from_fd, p.from_offset, temp_.get(), p.to_offset, p.length, scratch_)) {
      return Failure{errno == ENOSPC ? ErrorCode::kNoSpace : ErrorCode::kIo,
                     "copy from the base failed at offset " + std::to_string(p.from_offset), true};
    }
    return std::nullopt;
  }

  // After a verified file is in place: its block index, for the next transfer against it.
  void write_index() {
    if (ctx_.index_dir.empty() || device_) return;
    struct stat st {};
    if (::fstat(temp_.get(), &st) != 0) return;
    BlockIndex index;
    index.block_size = offer_.block_size;
    index.identify(st);
    index.hashes = out_hash_;
    index.present.resize(out_hash_.size());
    for (std::uint64_t j = 0; j < out_hash_.size(); ++j)
      index.present[j] = out_hash_[j] != zero_block_hash(block_len(j));
    std::string ignored;  // without an index the next transfer scans: slower, not wrong
    write_block_index(ctx_.index_dir, index, ignored);
  }

  // Counted per batch and added to the entry with the batch's other stats.
  void count(std::int64_t sdk::TransferStats::*field, bool resumed) {
    if (resumed) {
      ++batch_counts_.blocks_resumed;
    } else {
      ++(batch_counts_.*field);
    }
  }

  void maybe_ack() {
    const auto now = std::chrono::steady_clock::now();
    if (bytes_written_ - bytes_at_last_ack_ >= kAckEveryBytes || now - last_ack_ >= kAckEvery) {
      Ack a;
      a.applied_through = next_block_;
      a.bytes_written = bytes_written_;
      conn_.send(FrameType::kAck, 0, a.encode());
      bytes_at_last_ack_ = bytes_written_;
      last_ack_ = now;
    }
    record_progress(false);
  }

  // Refreshes the resume record (at most every 2 s, or now).
  void record_progress(bool now) {
    if (!record_written_ || !digest_) return;
    const auto t = std::chrono::steady_clock::now();
    if (!now && t - last_checkpoint_ < kCheckpointEvery) return;
    if (next_block_ <= record_.acked_blocks) return;
    record_.acked_blocks = next_block_;
    record_.updated_ms = unix_ms_now();
    std::string ignored;  // a failed checkpoint only costs a longer resume
    ctx_.partials->put(record_, ignored);
    last_checkpoint_ = t;
  }

  SessionOutcome finish(const Frame& f) {
    const auto e = End::decode(f.payload);
    if (!e) return fail({ErrorCode::kMalformed, "bad END", true});
    if (e->total_blocks != offer_.total_blocks || e->total_bytes != offer_.total_bytes ||
        next_block_ != offer_.total_blocks) {
      return fail(
          {ErrorCode::kUnexpectedFrame,
           "END after " + std::to_string(next_block_) + " of " + std::to_string(offer_.total_blocks) + " blocks",
           true});
    }
    entry_->update([&](sdk::TransferStatus& st) { st.state = sdk::TransferState::kVerifying; });
    struct stat now {};
    if (base_.valid() && (::fstat(base_.get(), &now) != 0 || !same_times(now, base_stat_))) {
      return result_failure(ErrorCode::kBaseChanged, "the base changed during the transfer");
    }
    const auto digest = digest_->finish();
    if (!digest || *digest != e->digest) {
      return result_failure(ErrorCode::kVerificationFailed,
                            in_place_ ? "the received file's digest differs from the sender's; the target was updated "
                                        "in place and stays marked incomplete until it is sent again"
                                      : "the received file's digest differs from the sender's; the target was left as "
                                        "it was");
    }
    if (auto failure = install()) return result_failure(failure->code, failure->message);
    write_index();
    ctx_.partials->remove(record_.peer, record_.id);
    record_written_ = false;
    Result res;
    res.code = 0;
    res.receiver_digest = *digest;
    if (::geteuid() != 0) res.flags |= kResultOwnersNotPreserved;
    conn_.send(FrameType::kResult, 0, res.encode());
    conn_.close(std::chrono::seconds(5));
    SessionOutcome ok;
    ok.digest = digest_text(*digest);
    return ok;
  }

  std::optional<Failure> install() {
    const int fd = temp_.get();
    if (device_) {  // a device has no owner, mode or times to set; only its data must be durable
      if (ctx_.fsync && ::fsync(fd) != 0) return Failure{ErrorCode::kIo, "fsync: " + errno_text(), false};
      return std::nullopt;
    }
    if (::geteuid() == 0 && ::fchown(fd, offer_.uid, offer_.gid) != 0) {
      return Failure{ErrorCode::kIo, "chown: " + errno_text(), false};
    }
    if (::fchmod(fd, offer_.mode & 07777) != 0) return Failure{ErrorCode::kIo, "chmod: " + errno_text(), false};
    const timespec times[2] = {{offer_.atime_ns / 1'000'000'000, offer_.atime_ns % 1'000'000'000},
                               {offer_.mtime_ns / 1'000'000'000, offer_.mtime_ns % 1'000'000'000}};
    if (::futimens(fd, times) != 0) return Failure{ErrorCode::kIo, "utimens: " + errno_text(), false};
    if (ctx_.fsync && ::fsync(fd) != 0) return Failure{ErrorCode::kIo, "fsync: " + errno_text(), false};
    if (in_place_) return std::nullopt;
    if (::renameat(parent_.get(), temp_name_.c_str(), parent_.get(), name_.c_str()) != 0) {
      return Failure{ErrorCode::kIo, "rename into place: " + errno_text(), false};
    }
    if (ctx_.fsync) ::fsync(parent_.get());
    return std::nullopt;
  }

  // RESULT with an error; the partial goes (a verified failure is not resumable).
  SessionOutcome result_failure(ErrorCode code, const std::string& message) {
    discard_partial();
    return send_failed_result(conn_, code, message);
  }

  void discard_partial() {
    if (in_place_) {
      // The target holds a mix of old and new blocks: it stays marked incomplete (the
      // record) until a transfer of it succeeds.
      partial_kept_ = record_written_;
      return;
    }
    if (parent_.valid() && !temp_name_.empty() && temp_.valid()) ::unlinkat(parent_.get(), temp_name_.c_str(), 0);
    if (record_written_) ctx_.partials->remove(record_.peer, record_.id);
    record_written_ = false;
    partial_kept_ = false;
  }

  FrameConnection& conn_;
  const ReceiveContext& ctx_;
  std::shared_ptr<TransferEntry> entry_;
  Offer offer_;
  std::string name_, temp_name_;
  Fd parent_, base_, temp_;
  struct stat base_stat_ {};
  PartialRecord record_;
  bool record_written_ = false;
  bool partial_kept_ = false;
  std::uint64_t acked_ = 0;  // blocks of a resumed partial acknowledged before
  std::uint64_t held_ = 0;   // leading view blocks the output file already holds (resume, in place, prefill)
  enum class Prefill { kNone, kCloned, kWritten };
  Prefill prefill_ = Prefill::kNone;   // how the temp file got the base's blocks
  std::uint64_t prefill_flushed_ = 0;  // bytes of the prefill whose writeback was started
  bool in_place_ = false;
  bool device_ = false;
  bool tunnel_ = false;
  std::vector<std::uint8_t> zeros_;
  std::optional<BlockIndex> index_;  // the base's cached hashes, when valid
  std::uint64_t view_blocks_ = 0;
  std::vector<bool> view_present_;
  std::vector<Hash128> view_hash_;
  std::vector<Hash128> out_hash_;
  std::unique_ptr<FileDigest> digest_;
  BatchDecompressor decompressor_;
  std::vector<std::uint8_t> decoded_, scratch_;
  sdk::TransferStats batch_counts_;
  PendingIo pending_;
  std::uint64_t next_block_ = 0;
  std::uint64_t bytes_written_ = 0, bytes_at_last_ack_ = 0;
  std::chrono::steady_clock::time_point last_ack_, last_checkpoint_;
};

}  // namespace

ReceiveResult run_receive_session(FrameConnection& conn, const ReceiveContext& ctx) {
  Receiver receiver(conn, ctx);
  return receiver.run();
}

}  // namespace novacron::transport
