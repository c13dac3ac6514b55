#include "transfer_frames.h"

#include <bit>

#include "frames.h"

namespace novacron::transport {

namespace {

bool valid_block_size(std::uint32_t size) {
  return size >= kMinBlockSize && size <= kMaxBlockSize && std::has_single_bit(size);
}

std::uint64_t blocks_of(std::uint64_t bytes, std::uint32_t block_size) {
  return bytes / block_size + (bytes % block_size != 0 ? 1 : 0);
}

}  // namespace

bool valid_transfer_id(std::string_view id) {
  if (id.empty() || id.size() > kMaxTransferId) return false;
  for (size_t i = 0; i < id.size(); ++i) {
    const char c = id[i];
    const bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
    if (!alnum && (i == 0 || c != '-')) return false;
  }
  return true;
}

std::vector<std::uint8_t> Offer::encode() const {
  ByteWriter w;
  w.str(id);
  w.u8(static_cast<std::uint8_t>(kind));
  w.u8(flags);
  w.u16(0);
  w.u32(block_size);
  w.u64(total_bytes);
  w.u64(total_blocks);
  w.u32(entries);
  w.hash(source_fingerprint);
  w.str(target);
  w.str(base);
  w.u32(mode);
  w.u32(uid);
  w.u32(gid);
  w.i64(mtime_ns);
  w.i64(atime_ns);
  return std::move(w.data());
}

std::optional<Offer> Offer::decode(std::span<const std::uint8_t> payload) {
  ByteReader r(payload);
  Offer o;
  std::uint8_t kind = 0;
  std::uint16_t zero = 0;
  if (!r.str(o.id, kMaxTransferId) || !r.u8(kind) || !r.u8(o.flags) || !r.u16(zero) || !r.u32(o.block_size) ||
      !r.u64(o.total_bytes) || !r.u64(o.total_blocks) || !r.u32(o.entries) || !r.hash(o.source_fingerprint) ||
      !r.str(o.target, kMaxPathText) || !r.str(o.base, kMaxPathText) || !r.u32(o.mode) || !r.u32(o.uid) ||
      !r.u32(o.gid) || !r.i64(o.mtime_ns) || !r.i64(o.atime_ns) || !r.at_end()) {
    return std::nullopt;
  }
  if (kind < 1 || kind > 3 || zero != 0 || (o.flags & ~0xFu) != 0) return std::nullopt;
  if (!valid_transfer_id(o.id) || o.target.empty() || !valid_block_size(o.block_size)) return std::nullopt;
  // A tree's files each start at a block boundary: every file but one may add a short block.
  const std::uint64_t least = blocks_of(o.total_bytes, o.block_size);
  const bool tree = kind == static_cast<std::uint8_t>(TransferKindCode::kDirectory);
  if (tree ? o.total_blocks < least || o.total_blocks - least > o.entries : o.total_blocks != least) {
    return std::nullopt;
  }
  o.kind = static_cast<TransferKindCode>(kind);
  return o;
}

std::vector<std::uint8_t> Accept::encode() const {
  ByteWriter w;
  w.u32(block_size);
  w.u8(flags);
  w.u8(0);
  w.u16(0);
  w.u64(resume_from_block);
  w.u64(base_blocks);
  return std::move(w.data());
}

std::optional<Accept> Accept::decode(std::span<const std::uint8_t> payload) {
  ByteReader r(payload);
  Accept a;
  std::uint8_t pad8 = 0;
  std::uint16_t pad16 = 0;
  if (!r.u32(a.block_size) || !r.u8(a.flags) || !r.u8(pad8) || !r.u16(pad16) || !r.u64(a.resume_from_block) ||
      !r.u64(a.base_blocks) || !r.at_end()) {
    return std::nullopt;
  }
  if (pad8 != 0 || pad16 != 0 || (a.flags & ~0x3u) != 0 || !valid_block_size(a.block_size)) return std::nullopt;
  return a;
}

std::vector<std::uint8_t> Hashes::encode() const {
  ByteWriter w;
  w.u64(first_block);
  w.u32(static_cast<std::uint32_t>(present.size()));
  std::vector<std::uint8_t> bitmap((present.size() + 7) / 8, 0);
  for (size_t i = 0; i < present.size(); ++i) {
    if (present[i]) bitmap[i / 8] |= static_cast<std::uint8_t>(1u << (i % 8));
  }
  w.bytes(bitmap);
  for (const Hash128& h : hashes) w.hash(h);
  return std::move(w.data());
}

std::optional<Hashes> Hashes::decode(std::span<const std::uint8_t> payload) {
  ByteReader r(payload);
  Hashes h;
  std::uint32_t count = 0;
  std::span<const std::uint8_t> bitmap;
  if (!r.u64(h.first_block) || !r.u32(count) || count == 0 || count > kMaxHashesPerFrame ||
      !r.bytes((count + 7) / 8, bitmap)) {
    return std::nullopt;
  }
  h.present.resize(count);
  size_t expected = 0;
  for (std::uint32_t i = 0; i < count; ++i) {
    h.present[i] = (bitmap[i / 8] >> (i % 8) & 1u) != 0;
    expected += h.present[i] ? 1 : 0;
  }
  // Bits past `count` in the last byte must be clear: one encoding per frame.
  if (count % 8 != 0 && (bitmap.back() >> (count % 8)) != 0) return std::nullopt;
  if (r.remaining() != expected * sizeof(Hash128)) return std::nullopt;
  h.hashes.resize(expected);
  for (Hash128& hash : h.hashes) r.hash(hash);
  return h;
}

void encode_blocks_prefix(const BlocksHeader& header, const std::vector<OpRun>& ops, std::vector<std::uint8_t>& out) {
  ByteWriter w;
  w.u64(header.first_block);
  w.u32(header.block_count);
  w.u16(static_cast<std::uint16_t>(ops.size()));
  w.u8(static_cast<std::uint8_t>(header.codec));
  w.u8(header.level);
  w.u32(header.literal_raw_len);
  w.u32(header.literal_wire_len);
  for (const OpRun& op : ops) {
    w.u8(static_cast<std::uint8_t>(op.op));
    w.u8(0);
    w.u16(0);
    w.u32(op.run);
    w.u64(op.arg);
  }
  out = std::move(w.data());
}

std::optional<BlocksView> BlocksView::decode(std::span<const std::uint8_t> payload) {
  ByteReader r(payload);
  BlocksView v;
  std::uint16_t op_count = 0;
  std::uint8_t codec = 0;
  if (!r.u64(v.header.first_block) || !r.u32(v.header.block_count) || !r.u16(op_count) || !r.u8(codec) ||
      !r.u8(v.header.level) || !r.u32(v.header.literal_raw_len) || !r.u32(v.header.literal_wire_len)) {
    return std::nullopt;
  }
  if (v.header.block_count == 0 || v.header.block_count > kMaxBlocksPerFrame || op_count == 0 ||
      op_count > kMaxOpsPerFrame || codec > 1 || v.header.literal_raw_len > kMaxLiteralBytes) {
    return std::nullopt;
  }
  v.header.codec = static_cast<Codec>(codec);
  if (v.header.codec == Codec::kRaw && v.header.literal_wire_len != v.header.literal_raw_len) return std::nullopt;
  v.ops.resize(op_count);
  std::uint64_t runs = 0;
  for (OpRun& op : v.ops) {
    std::uint8_t code = 0;
    std::uint8_t pad8 = 0;
    std::uint16_t pad16 = 0;
    if (!r.u8(code) || !r.u8(pad8) || !r.u16(pad16) || !r.u32(op.run) || !r.u64(op.arg)) return std::nullopt;
    if (code < 1 || code > 5 || pad8 != 0 || pad16 != 0 || op.run == 0) return std::nullopt;
    op.op = static_cast<BlockOp>(code);
    if (op.op != BlockOp::kCopyBase && op.op != BlockOp::kCopyOut && op.arg != 0) return std::nullopt;
    runs += op.run;
  }
  if (runs != v.header.block_count) return std::nullopt;
  if (r.remaining() != v.header.literal_wire_len) return std::nullopt;
  if (!r.bytes(v.header.literal_wire_len, v.literal)) return std::nullopt;
  return v;
}

std::vector<std::uint8_t> End::encode() const {
  ByteWriter w;
  w.u64(total_blocks);
  w.u64(total_bytes);
  w.u8(digest_alg);
  w.hash(digest);
  return std::move(w.data());
}

std::optional<End> End::decode(std::span<const std::uint8_t> payload) {
  ByteReader r(payload);
  End e;
  if (!r.u64(e.total_blocks) || !r.u64(e.total_bytes) || !r.u8(e.digest_alg) || !r.hash(e.digest) || !r.at_end() ||
      e.digest_alg != kDigestXxh3Tree) {
    return std::nullopt;
  }
  return e;
}

std::vector<std::uint8_t> Result::encode() const {
  ByteWriter w;
  w.u16(code);
  w.hash(receiver_digest);
  w.u8(flags);
  w.str(message.substr(0, kMaxErrorMessage));
  return std::move(w.data());
}

std::optional<Result> Result::decode(std::span<const std::uint8_t> payload) {
  ByteReader r(payload);
  Result res;
  if (!r.u16(res.code) || !r.hash(res.receiver_digest) || !r.u8(res.flags) || !r.str(res.message, kMaxErrorMessage) ||
      !r.at_end() || (res.flags & ~0x1u) != 0) {
    return std::nullopt;
  }
  return res;
}

std::vector<std::uint8_t> Cancel::encode() const {
  ByteWriter w;
  w.u16(code);
  w.str(message.substr(0, kMaxErrorMessage));
  return std::move(w.data());
}

std::optional<Cancel> Cancel::decode(std::span<const std::uint8_t> payload) {
  ByteReader r(payload);
  Cancel c;
  if (!r.u16(c.code) || !r.str(c.message, kMaxErrorMessage) || !r.at_end()) return std::nullopt;
  return c;
}

}  // namespace novacron::transport
