#include "tree_receiver.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <unordered_map>

#include "block_hash.h"
#include "blocks_decoder.h"
#include "codec.h"
#include "file_io.h"
#include "frames.h"
#include "safe_path.h"
#include "tree_frames.h"
#include "tree_fs.h"

namespace novacron::transport {

namespace {

std::string errno_text() { return std::strerror(errno); }

struct Failure {
  ErrorCode code;
  std::string message;
  bool keep_partial;  // a broken session keeps the staging folder for the retry
};

// One open folder, reopened (beneath its root, following no link) when another is needed:
// entries come in pre-order, so consecutive entries mostly share a folder.
class DirCache {
 public:
  // The folder `dir` beneath `root_fd` (O_PATH), or -1 when it cannot be opened.
  int get(int root_fd, const std::string& dir) {
    if (fd_.valid() && path_ == dir) return fd_.get();
    auto opened = open_dir_beneath(root_fd, dir, false);
    if (!opened) return -1;
    fd_ = std::move(*opened);
    path_ = dir;
    return fd_.get();
  }

 private:
  std::string path_;
  Fd fd_;
};

class TreeReceiver {
 public:
  TreeReceiver(FrameConnection& conn, const ReceiveContext& ctx, const Offer& offer)
      : conn_(conn), ctx_(ctx), offer_(offer), owners_(::geteuid() == 0) {}

  TreeReceiveResult run() {
    TreeReceiveResult result;
    result.outcome = session();
    result.entry = entry_;
    result.partial_kept = partial_kept_;
    return result;
  }

 private:
  SessionOutcome session() {
    if (auto failed = prepare()) return *failed;
    entry_->update([&](sdk::TransferStatus& st) {
      st.state = sdk::TransferState::kRunning;
      st.stats.bytes_total = static_cast<std::int64_t>(offer_.total_bytes);
      st.stats.blocks_total = static_cast<std::int64_t>(offer_.total_blocks);
    });
    Accept a;
    a.block_size = offer_.block_size;
    conn_.send(FrameType::kAccept, 0, a.encode());
    if (auto failed = receive_entries()) return *failed;
    if (auto failed = send_wants()) return *failed;
    return receive_blocks();
  }

  SessionOutcome fail(const Failure& f, std::uint64_t context = 0) {
    // The staging folder goes before the peer hears why: nothing is left once it knows.
    if (f.keep_partial && record_written_) {
      partial_kept_ = true;
    } else {
      discard_partial();
    }
    send_error_and_close(conn_, f.code, f.message, context);
    return SessionOutcome::protocol(f.code, f.message);
  }

  // The target's folder, the old tree (if any), the resume record and a fresh staging folder.
  std::optional<SessionOutcome> prepare() {
    if (auto bad = check_relative_path(offer_.target)) {
      return fail({ErrorCode::kNotPermitted, "target: " + bad->message, false});
    }
    if (!offer_.base.empty()) return fail({ErrorCode::kNotPermitted, "base: a tree has no base", false});
    if ((offer_.flags & kOfferInPlace) != 0) {
      return fail({ErrorCode::kNotPermitted, "a tree is never updated in place", false});
    }
    if (offer_.entries == 0 || offer_.entries > kMaxTreeEntries) {
      return fail({ErrorCode::kNotPermitted, "a tree of " + std::to_string(offer_.entries) + " entries", false});
    }
    std::string conflict;
    entry_ = ctx_.begin(offer_, conn_.peer_name(), conflict);
    if (!entry_) return fail({ErrorCode::kBusy, conflict, false});
    const auto split = split_parent(offer_.target);
    name_ = split->name;
    auto parent = open_dir_beneath(ctx_.root->get(), split->dir, /*create_missing=*/true);
    if (!parent) return fail({ErrorCode::kNotPermitted, "target: " + parent.error().message, false});
    parent_ = Fd(::openat(parent->get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!parent_.valid()) return fail({ErrorCode::kIo, "target folder: " + errno_text(), false});
    struct stat st {};
    if (::fstatat(parent_.get(), name_.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
      if (!S_ISDIR(st.st_mode)) {
        return fail({ErrorCode::kNotPermitted, "target " + offer_.target + " exists and is not a folder", false});
      }
      old_ = Fd(::openat(parent_.get(), name_.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    }
    staging_name_ = temp_name_for(name_, offer_.id);
    prev_name_ = temp_name_for(name_, offer_.id, ".ncprev-");
    if (auto failed = keep_interrupted_attempt()) return failed;
    record_ = PartialRecord{offer_.id, conn_.peer_name(),  offer_.target,     staging_name_,
                            "",        offer_.total_bytes, offer_.block_size, hex(offer_.source_fingerprint),
                            0,         unix_ms_now(),      unix_ms_now(),     false,
                            true};
    std::string error;
    // The record first: a crash leaves a record without a folder, never a folder without one.
    if (!ctx_.partials->put(record_, error)) return fail({ErrorCode::kIo, error, false});
    record_written_ = true;
    if (!remove_tree_at(parent_.get(), staging_name_) || ::mkdirat(parent_.get(), staging_name_.c_str(), 0700) != 0) {
      return fail({ErrorCode::kIo, "cannot create the staging folder: " + errno_text(), false});
    }
    staging_ = Fd(::openat(parent_.get(), staging_name_.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!staging_.valid()) return fail({ErrorCode::kIo, "cannot open the staging folder: " + errno_text(), false});
    return std::nullopt;
  }

  // A retry of this transfer: the earlier attempt's staging folder becomes a second source
  // of finished files for the quick check (`.<name>.ncprev-<id>`), so the retry sends only
  // the files that did not complete.
  std::optional<SessionOutcome> keep_interrupted_attempt() {
    const auto record = ctx_.partials->get(conn_.peer_name(), offer_.id);
    if (!record) return std::nullopt;
    const bool same = record->tree && record->target == offer_.target && record->temp_name == staging_name_ &&
                      record->block_size == offer_.block_size;
    struct stat st {};
    if (same && ::fstatat(parent_.get(), staging_name_.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode)) {
      if (!remove_tree_at(parent_.get(), prev_name_) ||
          ::renameat(parent_.get(), staging_name_.c_str(), parent_.get(), prev_name_.c_str()) != 0) {
        return fail({ErrorCode::kIo, "cannot keep the interrupted attempt: " + errno_text(), false});
      }
      prev_ = Fd(::openat(parent_.get(), prev_name_.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      return std::nullopt;
    }
    remove_stale(*record);
    ctx_.partials->remove(record->peer, record->id);
    return std::nullopt;
  }

  // The staging folder of an earlier record under this id, in that record's own folder.
  void remove_stale(const PartialRecord& r) {
    const auto split = split_parent(r.target);
    if (!split || r.temp_name.find(".nctmp-") == std::string::npos || r.in_place) return;
    auto dir = open_dir_beneath(ctx_.root->get(), split->dir, false);
    if (!dir) return;
    if (r.tree) {
      remove_tree_at(dir->get(), r.temp_name);
    } else {
      ::unlinkat(dir->get(), r.temp_name.c_str(), 0);
    }
  }

  void discard_partial() {
    if (parent_.valid() && staging_.valid()) remove_tree_at(parent_.get(), staging_name_);
    if (parent_.valid() && prev_.valid()) remove_tree_at(parent_.get(), prev_name_);
    if (record_written_) ctx_.partials->remove(record_.peer, record_.id);
    record_written_ = false;
    partial_kept_ = false;
  }

  std::optional<Frame> next(const char* what, SessionOutcome& closed) {
    while (true) {
      auto r = await_frame(conn_, what);
      if (!r.frame) {
        closed = r.outcome;
        partial_kept_ = record_written_;
        return std::nullopt;
      }
      if (r.frame->header.type == FrameType::kCancel) {
        discard_partial();
        conn_.close(std::chrono::seconds(2));
        closed = SessionOutcome::failure("cancelled", "the sender cancelled the transfer", true);
        return std::nullopt;
      }
      if (entry_->cancelled().load()) {
        discard_partial();
        closed = send_cancel(conn_, ErrorCode::kCancelled, "cancelled on the receiving node", true);
        return std::nullopt;
      }
      return std::move(r.frame);
    }
  }

  std::optional<SessionOutcome> receive_entries() {
    while (true) {
      SessionOutcome closed;
      auto f = next("ENTRY or ENTRIES_END", closed);
      if (!f) return closed;
      if (f->header.type == FrameType::kEntriesEnd) return entries_end(*f);
      if (f->header.type != FrameType::kEntry) {
        partial_kept_ = record_written_;
        return outcome_of_unexpected(conn_, *f, "ENTRY or ENTRIES_END");
      }
      auto e = TreeEntry::decode(f->payload);
      if (!e) return fail({ErrorCode::kMalformed, "bad ENTRY after " + std::to_string(entries_.size()), false});
      if (e->id != entries_.size() || entries_.size() >= offer_.entries) {
        return fail({ErrorCode::kUnexpectedFrame, "ENTRY " + std::to_string(e->id) + " out of order", false});
      }
      if (auto failure = create(*e)) return fail(*failure, e->id);
      entries_.push_back(std::move(*e));
    }
  }

  std::optional<SessionOutcome> entries_end(const Frame& f) {
    const auto end = EntriesEnd::decode(f.payload);
    if (!end || end->entries != entries_.size() || end->entries != offer_.entries ||
        end->total_blocks != offer_.total_blocks || next_first_block_ != offer_.total_blocks ||
        bytes_seen_ != offer_.total_bytes) {
      return fail({ErrorCode::kUnexpectedFrame, "ENTRIES_END does not match the OFFER and the entries", false});
    }
    struct statvfs vfs {};
    if (::fstatvfs(staging_.get(), &vfs) == 0 &&
        static_cast<std::uint64_t>(vfs.f_bavail) * vfs.f_frsize < bytes_wanted_) {
      return fail(
          {ErrorCode::kNoSpace, "not enough free space for " + std::to_string(bytes_wanted_) + " bytes", false});
    }
    out_hash_.assign(offer_.total_blocks, Hash128{});
    return std::nullopt;
  }

  // Creates one entry in the staging folder. Its parent must be a folder of this tree.
  std::optional<Failure> create(const TreeEntry& e) {
    content_.push_back(std::nullopt);
    send_.push_back(false);
    if (e.id == 0) {
      dirs_.emplace("", 0);
      return std::nullopt;
    }
    const auto split = split_parent(e.path);
    if (!dirs_.contains(split->dir)) {
      return Failure{ErrorCode::kNotPermitted, "ENTRY " + e.path + ": its parent is not a folder of this tree", false};
    }
    const int dir = staging_dirs_.get(staging_.get(), split->dir);
    if (dir < 0) return Failure{ErrorCode::kIo, "ENTRY " + e.path + ": cannot open its folder", false};
    const std::string& name = split->name;
    const std::string what = std::string(entry_type_name(e.type)) + " " + e.path + ": ";
    switch (e.type) {
      case EntryType::kDirectory:
        if (::mkdirat(dir, name.c_str(), 0700) != 0) return io(what + errno_text());
        dirs_.emplace(e.path, e.id);
        return std::nullopt;
      case EntryType::kRegular:
        return create_file(dir, name, e);
      case EntryType::kSymlink:
        if (::symlinkat(e.symlink_target.c_str(), dir, name.c_str()) != 0) return io(what + errno_text());
        break;
      case EntryType::kHardlink:
        return create_link(dir, name, e);
      case EntryType::kCharDevice:
      case EntryType::kBlockDevice:
        if (!owners_) return Failure{ErrorCode::kNotPermitted, what + "device nodes need a root receiver", false};
        if (::mknodat(dir, name.c_str(), (e.type == EntryType::kCharDevice ? S_IFCHR : S_IFBLK) | 0600,
                      static_cast<dev_t>(e.rdev)) != 0) {
          return io(what + errno_text());
        }
        break;
      case EntryType::kFifo:
      case EntryType::kSocket:
        if (::mknodat(dir, name.c_str(), (e.type == EntryType::kFifo ? S_IFIFO : S_IFSOCK) | 0600, 0) != 0) {
          return io(what + errno_text());
        }
        break;
    }
    if (auto failed = apply_metadata(dir, name, e, owners_, xattrs_dropped_); !failed.empty()) return io(what + failed);
    return std::nullopt;
  }

  static Failure io(std::string message) { return Failure{ErrorCode::kIo, std::move(message), false}; }

  std::optional<Failure> create_file(int dir, const std::string& name, const TreeEntry& e) {
    if (e.first_block != next_first_block_) {
      return Failure{ErrorCode::kUnexpectedFrame,
                     "file " + e.path + " does not start at block " + std::to_string(next_first_block_), false};
    }
    const std::uint64_t blocks = FileDigest::blocks_for(e.size, offer_.block_size);
    next_first_block_ += blocks;
    bytes_seen_ += e.size;
    if (next_first_block_ > offer_.total_blocks || bytes_seen_ > offer_.total_bytes) {
      return Failure{ErrorCode::kUnexpectedFrame, "file " + e.path + " lies beyond the offered size", false};
    }
    files_.push_back(e.id);
    if (link_identical(dir, name, e)) return std::nullopt;
    send_.back() = true;
    bytes_wanted_ += e.size;
    const Fd fd(::openat(dir, name.c_str(), O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!fd.valid()) return io("file " + e.path + ": " + errno_text());
    if (::ftruncate(fd.get(), static_cast<off_t>(e.size)) != 0) {
      return Failure{errno == ENOSPC ? ErrorCode::kNoSpace : ErrorCode::kIo, "file " + e.path + ": " + errno_text(),
                     false};
    }
    if (blocks == 0) {  // an empty file is complete now
      FileDigest digest(offer_.block_size, 0);
      content_.back() = digest.finish();
      if (auto failed = apply_file_metadata(fd.get(), e, owners_, xattrs_dropped_); !failed.empty()) {
        return io("file " + e.path + ": " + failed);
      }
    }
    return std::nullopt;
  }

  // The quick check: a file with the same size, mtime, mode, owner and xattrs in the
  // interrupted attempt or in the existing target is hard-linked into staging, not sent.
  bool link_identical(int dir, const std::string& name, const TreeEntry& e) {
    const auto split = split_parent(e.path);
    const std::pair<const Fd*, DirCache*> sources[] = {{&prev_, &prev_dirs_}, {&old_, &old_dirs_}};
    for (const auto& [root, cache] : sources) {
      if (!root->valid()) continue;
      const int from = cache->get(root->get(), split->dir);
      struct stat st {};
      std::vector<Xattr> xattrs;
      if (from < 0 || ::fstatat(from, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode) ||
          !read_xattrs(from, name, xattrs) || !same_file(st, xattrs, e, owners_)) {
        continue;
      }
      if (::linkat(from, name.c_str(), dir, name.c_str(), 0) != 0) continue;
      const auto blocks = static_cast<std::int64_t>(FileDigest::blocks_for(e.size, offer_.block_size));
      const bool resumed = root == &prev_;  // (clang 14 cannot capture a structured binding)
      entry_->update(
          [&](sdk::TransferStatus& s) { (resumed ? s.stats.blocks_resumed : s.stats.blocks_delta) += blocks; });
      return true;
    }
    return false;
  }

  std::optional<Failure> create_link(int dir, const std::string& name, const TreeEntry& e) {
    const TreeEntry& to = entries_[e.link_entry];  // decode checked link_entry < id
    if (to.type == EntryType::kDirectory || to.type == EntryType::kHardlink) {
      return Failure{ErrorCode::kNotPermitted, "hardlink " + e.path + " names a " + entry_type_name(to.type), false};
    }
    const auto split = split_parent(to.path);
    auto from = open_dir_beneath(staging_.get(), split->dir, false);
    if (!from || ::linkat(from->get(), split->name.c_str(), dir, name.c_str(), 0) != 0) {
      return io("hardlink " + e.path + ": " + errno_text());
    }
    return std::nullopt;
  }

  std::optional<SessionOutcome> send_wants() {
    Want w;
    for (size_t i = 0; i < files_.size(); ++i) {
      const std::uint32_t id = files_[i];
      w.decisions.emplace_back(id, send_[id] ? WantDecision::kSend : WantDecision::kSkip);
      if (w.decisions.size() == kMaxWantsPerFrame && i + 1 < files_.size()) {
        conn_.send(FrameType::kWant, 0, w.encode());
        w.decisions.clear();
      }
    }
    conn_.send(FrameType::kWant, kFlagLast, w.encode());
    return std::nullopt;
  }

  SessionOutcome receive_blocks() {
    while (true) {
      SessionOutcome closed;
      auto f = next("BLOCKS or END", closed);
      if (!f) return closed;
      if (f->header.type == FrameType::kBlocks) {
        if (auto failure = apply(*f)) return fail(*failure, next_block_);
        continue;
      }
      if (f->header.type == FrameType::kEnd) return finish(*f);
      partial_kept_ = record_written_;
      return outcome_of_unexpected(conn_, *f, "BLOCKS or END");
    }
  }

  // The regular file holding block `j` of the tree's block space (index into files_).
  size_t file_of(std::uint64_t j) const {
    const auto it = std::upper_bound(files_.begin(), files_.end(), j, [&](std::uint64_t block, std::uint32_t id) {
      return block < entries_[id].first_block;
    });
    return static_cast<size_t>(it - files_.begin()) - 1;
  }

  std::uint32_t block_len(const TreeEntry& e, std::uint64_t j) const {
    const std::uint64_t at = (j - e.first_block) * offer_.block_size;
    return static_cast<std::uint32_t>(std::min<std::uint64_t>(offer_.block_size, e.size - at));
  }

  std::optional<Failure> apply(const Frame& f) {
    auto decoded = decode_blocks_at(
        f.payload, next_block_, offer_.total_blocks,
        [this](std::uint64_t b) { return block_len(entries_[files_[file_of(b)]], b); }, decompressor_, decoded_);
    if (const auto* refused = std::get_if<BlocksRefusal>(&decoded))
      return Failure{refused->code, refused->message, true};
    const auto& [v, literal] = std::get<DecodedBlocks>(decoded);
    const BlocksHeader& h = v.header;
    size_t literal_pos = 0;
    std::uint64_t bytes = 0;
    counts_ = {};
    std::uint64_t j = h.first_block;
    for (const OpRun& op : v.ops) {
      for (std::uint32_t k = 0; k < op.run; ++k, ++j) {
        const size_t fi = file_of(j);
        const TreeEntry& e = entries_[files_[fi]];
        if (auto failure = apply_block(op, k, j, fi, literal, literal_pos)) return failure;
        bytes += block_len(e, j);
      }
    }
    if (auto failure = flush_write()) return failure;
    next_block_ = j;
    entry_->add_progress(static_cast<std::int64_t>(bytes));
    entry_->update([&](sdk::TransferStatus& st) {
      st.stats.blocks_literal += counts_.blocks_literal;
      st.stats.blocks_dedup += counts_.blocks_dedup;
      st.stats.blocks_zero += counts_.blocks_zero;
      st.stats.literal_raw_bytes += h.literal_raw_len;
      st.stats.literal_wire_bytes += h.literal_wire_len;
      st.stats.compression_level = h.level;
      st.stats.wire_bytes_sent = conn_.wire_bytes_sent();
      st.stats.wire_bytes_received = conn_.wire_bytes_received();
    });
    return std::nullopt;
  }

  std::optional<Failure> apply_block(const OpRun& op, std::uint32_t k, std::uint64_t j, size_t fi,
                                     std::span<const std::uint8_t> literal, size_t& literal_pos) {
    const TreeEntry& e = entries_[files_[fi]];
    const std::uint32_t len = block_len(e, j);
    if (!send_[e.id]) {  // a file this node already holds: nothing but KEEP
      if (op.op != BlockOp::kKeep) {
        return Failure{ErrorCode::kUnexpectedFrame, "content for " + e.path + ", which was skipped", true};
      }
      return std::nullopt;
    }
    if (j == e.first_block || current_file_ != fi) {
      if (auto failure = open_current(fi)) return failure;
    }
    const std::uint64_t offset = (j - e.first_block) * offer_.block_size;
    Hash128 hash = zero_block_hash(len);
    switch (op.op) {
      case BlockOp::kKeep:  // the new file is one hole: a zero block needs nothing
      case BlockOp::kZero:
        ++counts_.blocks_zero;
        break;
      case BlockOp::kLiteral: {
        const auto bytes = literal.subspan(literal_pos, len);
        literal_pos += len;
        if (auto failure = queue_write(offset, bytes)) return failure;
        hash = block_hash(bytes);
        ++counts_.blocks_literal;
        break;
      }
      case BlockOp::kCopyOut: {
        const std::uint64_t src = op.arg + k;
        if (auto failure = copy_out(src, j, offset, len)) return failure;
        hash = out_hash_[src];
        ++counts_.blocks_dedup;
        break;
      }
      case BlockOp::kCopyBase:
        return Failure{ErrorCode::kUnexpectedFrame, "COPY_BASE in a tree", true};
    }
    out_hash_[j] = hash;
    current_digest_->add(hash);
    if (j + 1 == e.first_block + FileDigest::blocks_for(e.size, offer_.block_size)) return close_current();
    return std::nullopt;
  }

  std::optional<Failure> open_current(size_t fi) {
    if (auto failure = close_current()) return failure;
    const TreeEntry& e = entries_[files_[fi]];
    auto fd = open_file_beneath(staging_.get(), e.path, O_RDWR);
    if (!fd) return Failure{ErrorCode::kIo, "file " + e.path + ": " + fd.error().message, true};
    current_ = std::move(*fd);
    current_file_ = fi;
    current_digest_ = std::make_unique<FileDigest>(offer_.block_size, e.size);
    return std::nullopt;
  }

  // A file's last block arrived: its digest, then its metadata (owner before mode: a chown
  // clears setuid bits).
  std::optional<Failure> close_current() {
    if (!current_.valid()) return std::nullopt;
    if (auto failure = flush_write()) return failure;
    const TreeEntry& e = entries_[files_[current_file_]];
    content_[e.id] = current_digest_->finish();
    if (auto failed = apply_file_metadata(current_.get(), e, owners_, xattrs_dropped_); !failed.empty()) {
      return Failure{ErrorCode::kIo, "file " + e.path + ": " + failed, true};
    }
    current_.reset();
    current_digest_.reset();
    return std::nullopt;
  }

  // A repeated block: copied from the earlier file of this transfer that holds it.
  std::optional<Failure> copy_out(std::uint64_t src, std::uint64_t j, std::uint64_t offset, std::uint32_t len) {
    const size_t sfi = src < j ? file_of(src) : files_.size();
    if (sfi >= files_.size() || !send_[files_[sfi]] || block_len(entries_[files_[sfi]], src) != len) {
      return Failure{ErrorCode::kUnexpectedFrame, "COPY_OUT of block " + std::to_string(src) + " not allowed", true};
    }
    if (auto failure = flush_write()) return failure;
    const TreeEntry& from = entries_[files_[sfi]];
    int from_fd = current_.get();
    if (sfi != current_file_) {
      if (copy_src_file_ != sfi) {
        auto fd = open_file_beneath(staging_.get(), from.path, O_RDONLY);
        if (!fd) return Failure{ErrorCode::kIo, "file " + from.path + ": " + fd.error().message, true};
        copy_src_ = std::move(*fd);
        copy_src_file_ = sfi;
      }
      from_fd = copy_src_.get();
    }
    const std::uint64_t from_offset = (src - from.first_block) * offer_.block_size;
    if (!copy_range(from_fd, from_offset, current_.get(), offset, len, scratch_)) {
      return Failure{ErrorCode::kIo, "copy of a repeated block failed: " + errno_text(), true};
    }
    return std::nullopt;
  }

  // Literal bytes for the current file; contiguous blocks become one pwrite.
  std::optional<Failure> queue_write(std::uint64_t offset, std::span<const std::uint8_t> bytes) {
    if (pending_len_ > 0 && pending_offset_ + pending_len_ == offset && pending_data_ + pending_len_ == bytes.data()) {
      pending_len_ += bytes.size();
      return std::nullopt;
    }
    if (auto failure = flush_write()) return failure;
    pending_offset_ = offset;
    pending_data_ = bytes.data();
    pending_len_ = bytes.size();
    return std::nullopt;
  }

  std::optional<Failure> flush_write() {
    if (pending_len_ == 0) return std::nullopt;
    const size_t len = std::exchange(pending_len_, 0);
    if (!pwrite_full(current_.get(), pending_data_, len, pending_offset_)) {
      return Failure{errno == ENOSPC ? ErrorCode::kNoSpace : ErrorCode::kIo,
                     "write of " + entries_[files_[current_file_]].path + " failed: " + errno_text(), true};
    }
    return std::nullopt;
  }

  SessionOutcome finish(const Frame& f) {
    const auto end = End::decode(f.payload);
    if (!end) return fail({ErrorCode::kMalformed, "bad END", true});
    if (end->total_blocks != offer_.total_blocks || end->total_bytes != offer_.total_bytes ||
        next_block_ != offer_.total_blocks || current_.valid()) {
      return fail(
          {ErrorCode::kUnexpectedFrame,
           "END after " + std::to_string(next_block_) + " of " + std::to_string(offer_.total_blocks) + " blocks",
           true});
    }
    entry_->update([&](sdk::TransferStatus& st) { st.state = sdk::TransferState::kVerifying; });
    TreeDigest digest;
    for (const TreeEntry& e : entries_) digest.add(e, content_[e.id]);
    const Hash128 ours = digest.finish();
    if (ours != end->digest) {
      return result_failure(ErrorCode::kVerificationFailed,
                            "the received tree's digest differs from the sender's; the target was left as it was");
    }
    if (auto failure = install()) return result_failure(failure->code, failure->message);
    ctx_.partials->remove(record_.peer, record_.id);
    record_written_ = false;
    if (xattrs_dropped_ > 0 && ctx_.log_info) {
      ctx_.log_info("transport receive id=" + offer_.id + " tree " + offer_.target + ": " +
                    std::to_string(xattrs_dropped_) + " xattrs outside user.* were refused by this file system");
    }
    Result res;
    res.receiver_digest = ours;
    if (!owners_) res.flags |= kResultOwnersNotPreserved;
    conn_.send(FrameType::kResult, 0, res.encode());
    conn_.close(std::chrono::seconds(5));
    SessionOutcome ok;
    ok.digest = digest_text(ours);
    return ok;
  }

  // Folder metadata deepest first (setting it writes nothing into them after), durability,
  // then the atomic swap with the old tree, which is removed afterwards.
  std::optional<Failure> install() {
    for (auto it = entries_.rbegin(); it != entries_.rend(); ++it) {
      if (it->type != EntryType::kDirectory) continue;
      const bool root = it->id == 0;
      const auto split = split_parent(root ? name_ : it->path);
      const int dir = root ? parent_.get() : staging_dirs_.get(staging_.get(), split->dir);
      const std::string name = root ? staging_name_ : split->name;
      if (dir < 0) return Failure{ErrorCode::kIo, "folder " + it->path + ": cannot reopen its parent", false};
      if (auto failed = apply_metadata(dir, name, *it, owners_, xattrs_dropped_); !failed.empty()) {
        return Failure{ErrorCode::kIo, "folder " + (root ? offer_.target : it->path) + ": " + failed, false};
      }
    }
    if (ctx_.fsync && ::syncfs(staging_.get()) != 0) return Failure{ErrorCode::kIo, "syncfs: " + errno_text(), false};
    const unsigned flags = old_.valid() ? RENAME_EXCHANGE : RENAME_NOREPLACE;
    if (::renameat2(parent_.get(), staging_name_.c_str(), parent_.get(), name_.c_str(), flags) != 0) {
      return Failure{ErrorCode::kIo, "cannot put the tree in place: " + errno_text(), false};
    }
    if (ctx_.fsync) ::fsync(parent_.get());
    staging_.reset();
    // The old tree now has the staging name; the new one is in place whatever happens next.
    if (old_.valid() && !remove_tree_at(parent_.get(), staging_name_) && ctx_.log_info) {
      ctx_.log_info("transport receive id=" + offer_.id + " could not remove the old tree " + staging_name_ + ": " +
                    errno_text());
    }
    if (prev_.valid()) remove_tree_at(parent_.get(), prev_name_);
    return std::nullopt;
  }

  SessionOutcome result_failure(ErrorCode code, const std::string& message) {
    discard_partial();
    return send_failed_result(conn_, code, message);
  }

  FrameConnection& conn_;
  const ReceiveContext& ctx_;
  const Offer& offer_;
  const bool owners_;  // only root can give files away
  std::shared_ptr<TransferEntry> entry_;
  std::string name_, staging_name_, prev_name_;
  Fd parent_, old_, staging_, prev_;
  PartialRecord record_;
  bool record_written_ = false;
  bool partial_kept_ = false;
  std::vector<TreeEntry> entries_;
  std::vector<bool> send_;                               // per entry: its content is sent
  std::vector<std::optional<Hash128>> content_;          // per entry: digest D of received content
  std::unordered_map<std::string, std::uint32_t> dirs_;  // folders this transfer created
  std::vector<std::uint32_t> files_;                     // regular entries, in block order
  std::uint64_t next_first_block_ = 0, bytes_seen_ = 0, bytes_wanted_ = 0;
  DirCache staging_dirs_, old_dirs_, prev_dirs_;
  int xattrs_dropped_ = 0;
  std::vector<Hash128> out_hash_;
  std::uint64_t next_block_ = 0;
  Fd current_, copy_src_;
  size_t current_file_ = SIZE_MAX, copy_src_file_ = SIZE_MAX;
  std::unique_ptr<FileDigest> current_digest_;
  std::uint64_t pending_offset_ = 0;
  const std::uint8_t* pending_data_ = nullptr;
  size_t pending_len_ = 0;
  BatchDecompressor decompressor_;
  std::vector<std::uint8_t> decoded_, scratch_;
  sdk::TransferStats counts_;
};

}  // namespace

TreeReceiveResult run_tree_receive(FrameConnection& conn, const ReceiveContext& ctx, const Offer& offer) {
  TreeReceiver receiver(conn, ctx, offer);
  return receiver.run();
}

}  // namespace novacron::transport
