#include "block_index.h"

#include <fcntl.h>
#include <unistd.h>
#include <xxhash.h>

#include <cerrno>
#include <cstring>
#include <span>

namespace novacron::transport {

namespace {

constexpr char kMagic[8] = {'N', 'C', 'B', 'I', 'D', 'X', '0', '1'};
constexpr std::uint32_t kVersion = 1;
constexpr std::uint64_t kMaxBlocks = std::uint64_t{1} << 32;  // 16 TiB of 4 KiB blocks

std::int64_t ns_of(const timespec& t) { return t.tv_sec * 1'000'000'000LL + t.tv_nsec; }

Hash128 checksum(std::span<const std::uint8_t> bytes) {
  XXH128_canonical_t c;
  XXH128_canonicalFromHash(&c, XXH3_128bits(bytes.data(), bytes.size()));
  Hash128 out;
  std::memcpy(out.data(), c.digest, out.size());
  return out;
}

bool read_all(const std::string& path, std::vector<std::uint8_t>& out) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return false;
  struct stat st {};
  bool ok = ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size >= 0 &&
            static_cast<std::uint64_t>(st.st_size) <= (kMaxBlocks * 17);
  if (ok) {
    out.resize(static_cast<size_t>(st.st_size));
    size_t done = 0;
    while (ok && done < out.size()) {
      const ssize_t n = ::read(fd, out.data() + done, out.size() - done);
      if (n < 0 && errno == EINTR) continue;
      ok = n > 0;
      if (ok) done += static_cast<size_t>(n);
    }
  }
  ::close(fd);
  return ok;
}

}  // namespace

void BlockIndex::identify(const struct stat& st) {
  size = static_cast<std::uint64_t>(st.st_size);
  dev = st.st_dev;
  ino = st.st_ino;
  mtime_ns = ns_of(st.st_mtim);
  ctime_ns = ns_of(st.st_ctim);
}

bool BlockIndex::matches(const struct stat& st, std::uint32_t wanted_block_size) const {
  return block_size == wanted_block_size && size == static_cast<std::uint64_t>(st.st_size) && dev == st.st_dev &&
         ino == st.st_ino && mtime_ns == ns_of(st.st_mtim) && ctime_ns == ns_of(st.st_ctim);
}

std::string block_index_path(const std::string& dir, std::uint64_t dev, std::uint64_t ino) {
  const std::uint64_t key[2] = {dev, ino};
  char name[32];
  std::snprintf(name, sizeof name, "%016llx.idx", static_cast<unsigned long long>(XXH3_64bits(key, sizeof key)));
  return dir + "/" + name;
}

bool write_block_index(const std::string& dir, const BlockIndex& index, std::string& error) {
  ByteWriter w;
  w.bytes(std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(kMagic), sizeof kMagic));
  w.u32(kVersion);
  w.u32(index.block_size);
  w.u64(index.size);
  w.u64(index.dev);
  w.u64(index.ino);
  w.i64(index.mtime_ns);
  w.i64(index.ctime_ns);
  w.u64(index.hashes.size());
  std::vector<std::uint8_t> bitmap((index.present.size() + 7) / 8, 0);
  for (size_t i = 0; i < index.present.size(); ++i) {
    if (index.present[i]) bitmap[i / 8] |= static_cast<std::uint8_t>(1u << (i % 8));
  }
  w.bytes(bitmap);
  for (const Hash128& h : index.hashes) w.hash(h);
  w.hash(checksum(w.data()));
  const std::string path = block_index_path(dir, index.dev, index.ino);
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    error = "cannot write " + tmp + ": " + std::strerror(errno);
    return false;
  }
  const auto& bytes = w.data();
  const bool written = ::write(fd, bytes.data(), bytes.size()) == static_cast<ssize_t>(bytes.size());
  ::close(fd);
  // No fsync: a torn index fails its checksum and is ignored.
  if (!written || ::rename(tmp.c_str(), path.c_str()) != 0) {
    error = "cannot write " + path + ": " + std::strerror(errno);
    ::unlink(tmp.c_str());
    return false;
  }
  return true;
}

std::optional<BlockIndex> read_block_index(const std::string& dir, const struct stat& st, std::uint32_t block_size) {
  std::vector<std::uint8_t> bytes;
  if (dir.empty() || !read_all(block_index_path(dir, st.st_dev, st.st_ino), bytes)) return std::nullopt;
  if (bytes.size() < sizeof kMagic + 16 || std::memcmp(bytes.data(), kMagic, sizeof kMagic) != 0) return std::nullopt;
  const std::span<const std::uint8_t> body(bytes.data(), bytes.size() - 16);
  Hash128 stored;
  std::memcpy(stored.data(), bytes.data() + body.size(), stored.size());
  if (checksum(body) != stored) return std::nullopt;
  ByteReader r(body.subspan(sizeof kMagic));
  BlockIndex index;
  std::uint32_t version = 0;
  std::uint64_t n = 0;
  if (!r.u32(version) || version != kVersion || !r.u32(index.block_size) || !r.u64(index.size) || !r.u64(index.dev) ||
      !r.u64(index.ino) || !r.i64(index.mtime_ns) || !r.i64(index.ctime_ns) || !r.u64(n) || n > kMaxBlocks) {
    return std::nullopt;
  }
  std::span<const std::uint8_t> bitmap;
  if (index.block_size == 0 || n != index.size / index.block_size + (index.size % index.block_size != 0 ? 1 : 0)) {
    return std::nullopt;
  }
  if (!r.bytes((n + 7) / 8, bitmap) || r.remaining() != n * sizeof(Hash128)) return std::nullopt;
  index.present.resize(n);
  index.hashes.resize(n);
  for (std::uint64_t i = 0; i < n; ++i) {
    index.present[i] = (bitmap[i / 8] >> (i % 8) & 1u) != 0;
    r.hash(index.hashes[i]);
  }
  if (!index.matches(st, block_size)) return std::nullopt;
  return index;
}

void remove_block_index(const std::string& dir, std::uint64_t dev, std::uint64_t ino) {
  if (!dir.empty()) ::unlink(block_index_path(dir, dev, ino).c_str());
}

}  // namespace novacron::transport
