#include "tree_frames.h"

#include <xxhash.h>

#include <cstring>

#include "safe_path.h"
#include "transfer_frames.h"

namespace novacron::transport {

const char* entry_type_name(EntryType type) {
  switch (type) {
    case EntryType::kDirectory:
      return "directory";
    case EntryType::kRegular:
      return "file";
    case EntryType::kSymlink:
      return "symlink";
    case EntryType::kHardlink:
      return "hardlink";
    case EntryType::kCharDevice:
      return "char device";
    case EntryType::kBlockDevice:
      return "block device";
    case EntryType::kFifo:
      return "fifo";
    case EntryType::kSocket:
      return "socket";
  }
  return "unknown";
}

namespace {

// The fixed fields, in wire order (also what the digest covers).
void write_fixed(ByteWriter& w, const TreeEntry& e) {
  w.u32(e.id);
  w.u8(static_cast<std::uint8_t>(e.type));
  w.u8(0);
  w.u16(0);
  w.u32(e.mode);
  w.u32(e.uid);
  w.u32(e.gid);
  w.i64(e.mtime_ns);
  w.i64(e.atime_ns);
  w.u64(e.size);
  w.u64(e.rdev);
  w.u32(e.link_entry);
  w.u64(e.first_block);
}

void write_rest(ByteWriter& w, const TreeEntry& e) {
  w.str(e.path);
  w.str(e.symlink_target);
  w.u16(static_cast<std::uint16_t>(e.xattrs.size()));
  for (const Xattr& x : e.xattrs) {
    w.str(x.name);
    w.u32(static_cast<std::uint32_t>(x.value.size()));
    w.bytes(x.value);
  }
}

bool valid_entry(const TreeEntry& e) {
  if (e.mode > 07777) return false;
  if (e.id == 0) {
    if (!e.path.empty() || e.type != EntryType::kDirectory) return false;
  } else if (check_relative_path(e.path)) {
    return false;  // empty, absolute, "..", "." or an empty component
  }
  if ((e.type == EntryType::kSymlink) == e.symlink_target.empty()) return false;
  if (e.type != EntryType::kRegular && (e.size != 0 || e.first_block != 0)) return false;
  if (e.type == EntryType::kHardlink ? e.link_entry >= e.id : e.link_entry != 0) return false;
  const bool device = e.type == EntryType::kCharDevice || e.type == EntryType::kBlockDevice;
  if (!device && e.rdev != 0) return false;
  for (size_t i = 0; i < e.xattrs.size(); ++i) {
    if (e.xattrs[i].name.empty()) return false;
    if (i > 0 && !(e.xattrs[i - 1].name < e.xattrs[i].name)) return false;  // sorted, no duplicates
  }
  return true;
}

}  // namespace

std::vector<std::uint8_t> TreeEntry::encode() const {
  ByteWriter w;
  write_fixed(w, *this);
  write_rest(w, *this);
  return std::move(w.data());
}

std::optional<TreeEntry> TreeEntry::decode(std::span<const std::uint8_t> payload) {
  ByteReader r(payload);
  TreeEntry e;
  std::uint8_t type = 0, pad8 = 0;
  std::uint16_t pad16 = 0, n = 0;
  if (!r.u32(e.id) || !r.u8(type) || !r.u8(pad8) || !r.u16(pad16) || !r.u32(e.mode) || !r.u32(e.uid) || !r.u32(e.gid) ||
      !r.i64(e.mtime_ns) || !r.i64(e.atime_ns) || !r.u64(e.size) || !r.u64(e.rdev) || !r.u32(e.link_entry) ||
      !r.u64(e.first_block) || !r.str(e.path, kMaxPathText) || !r.str(e.symlink_target, kMaxPathText) || !r.u16(n)) {
    return std::nullopt;
  }
  if (type < 1 || type > 8 || pad8 != 0 || pad16 != 0 || n > kMaxXattrs) return std::nullopt;
  e.type = static_cast<EntryType>(type);
  e.xattrs.resize(n);
  for (Xattr& x : e.xattrs) {
    std::uint32_t len = 0;
    std::span<const std::uint8_t> value;
    if (!r.str(x.name, kMaxXattrName) || !r.u32(len) || len > kMaxXattrValue || !r.bytes(len, value)) {
      return std::nullopt;
    }
    x.value.assign(value.begin(), value.end());
  }
  if (!r.at_end() || !valid_entry(e)) return std::nullopt;
  return e;
}

std::vector<std::uint8_t> EntriesEnd::encode() const {
  ByteWriter w;
  w.u32(entries);
  w.u64(total_blocks);
  return std::move(w.data());
}

std::optional<EntriesEnd> EntriesEnd::decode(std::span<const std::uint8_t> payload) {
  ByteReader r(payload);
  EntriesEnd e;
  if (!r.u32(e.entries) || !r.u64(e.total_blocks) || !r.at_end()) return std::nullopt;
  return e;
}

std::vector<std::uint8_t> Want::encode() const {
  ByteWriter w;
  w.u32(static_cast<std::uint32_t>(decisions.size()));
  for (const auto& [id, decision] : decisions) {
    w.u32(id);
    w.u8(static_cast<std::uint8_t>(decision));
  }
  return std::move(w.data());
}

std::optional<Want> Want::decode(std::span<const std::uint8_t> payload) {
  ByteReader r(payload);
  std::uint32_t n = 0;
  if (!r.u32(n) || n > kMaxWantsPerFrame || r.remaining() != static_cast<size_t>(n) * 5) return std::nullopt;
  Want w;
  w.decisions.reserve(n);
  for (std::uint32_t i = 0; i < n; ++i) {
    std::uint32_t id = 0;
    std::uint8_t d = 0;
    if (!r.u32(id) || !r.u8(d) || d > 1) return std::nullopt;
    w.decisions.emplace_back(id, static_cast<WantDecision>(d));
  }
  return w;
}

struct TreeDigest::State {
  XXH3_state_t* xxh = XXH3_createState();
  State() = default;
  State(const State&) = delete;
  State& operator=(const State&) = delete;
  ~State() { XXH3_freeState(xxh); }
};

TreeDigest::TreeDigest() : state_(std::make_unique<State>()) {
  XXH3_128bits_reset(state_->xxh);
  XXH3_128bits_update(state_->xxh, "NCTD1T", 6);
}

TreeDigest::~TreeDigest() = default;

void TreeDigest::add(const TreeEntry& entry, const std::optional<Hash128>& content) {
  ByteWriter w;
  write_fixed(w, entry);
  write_rest(w, entry);
  w.u8(content ? 1 : 0);
  if (content) w.hash(*content);
  XXH3_128bits_update(state_->xxh, w.data().data(), w.data().size());
}

Hash128 TreeDigest::finish() {
  XXH128_canonical_t c;
  XXH128_canonicalFromHash(&c, XXH3_128bits_digest(state_->xxh));
  Hash128 out;
  std::memcpy(out.data(), c.digest, out.size());
  return out;
}

}  // namespace novacron::transport
