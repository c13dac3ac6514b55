// Payloads of the directory-tree frames (docs/transport-protocol.md, "A directory tree"):
// ENTRY (one file-system object of the tree), ENTRIES_END and WANT, and the tree digest both
// sides compute. Decoding checks structure (lengths, enums, a path that stays relative and
// has no "." or ".." components); whether an entry fits the tree (its parent exists and is a
// folder of this transfer, a hard link names an earlier file) is the receiver's check. Pure:
// no I/O.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "wire_format.h"

namespace novacron::transport {

inline constexpr std::uint32_t kMaxTreeEntries = 10'000'000;
inline constexpr size_t kMaxXattrName = 255;
inline constexpr size_t kMaxXattrValue = 65536;
inline constexpr std::uint16_t kMaxXattrs = 64;
inline constexpr std::uint32_t kMaxWantsPerFrame = 4096;

enum class EntryType : std::uint8_t {
  kDirectory = 1,
  kRegular = 2,
  kSymlink = 3,
  kHardlink = 4,  // a further name of an earlier entry's inode (`link_entry`)
  kCharDevice = 5,
  kBlockDevice = 6,
  kFifo = 7,
  kSocket = 8,
};
const char* entry_type_name(EntryType type);

struct Xattr {
  std::string name;
  std::vector<std::uint8_t> value;
  bool operator==(const Xattr&) const = default;
};

// One object of the tree. Entry 0 is the tree's root folder (empty path); the others are
// in pre-order with names sorted, so a folder always comes before what it holds.
struct TreeEntry {
  std::uint32_t id = 0;
  EntryType type = EntryType::kRegular;
  std::uint32_t mode = 0;  // permission bits and setuid/setgid/sticky (07777)
  std::uint32_t uid = 0, gid = 0;
  std::int64_t mtime_ns = 0, atime_ns = 0;
  std::uint64_t size = 0;         // regular files
  std::uint64_t rdev = 0;         // devices
  std::uint32_t link_entry = 0;   // hard links
  std::uint64_t first_block = 0;  // regular files: their blocks in the transfer's block space
  std::string path;               // relative to the tree's root; "" for the root
  std::string symlink_target;     // stored as sent, never followed
  std::vector<Xattr> xattrs;      // sorted by name

  std::vector<std::uint8_t> encode() const;
  static std::optional<TreeEntry> decode(std::span<const std::uint8_t> payload);
};

struct EntriesEnd {
  std::uint32_t entries = 0;
  std::uint64_t total_blocks = 0;

  std::vector<std::uint8_t> encode() const;
  static std::optional<EntriesEnd> decode(std::span<const std::uint8_t> payload);
};

// The receiver's answer per regular file: send its content, or skip it (the receiver
// already holds an identical file: same size, mtime, mode, owner and xattrs).
enum class WantDecision : std::uint8_t { kSend = 0, kSkip = 1 };

struct Want {
  std::vector<std::pair<std::uint32_t, WantDecision>> decisions;

  std::vector<std::uint8_t> encode() const;
  static std::optional<Want> decode(std::span<const std::uint8_t> payload);
};

// XXH3_128("NCTD1T" || per entry in id order: its fixed fields, path, symlink target,
// xattrs, and for a regular file whose content was sent, its file digest D). Both sides feed
// the entries in id order; a skipped file contributes its metadata only.
class TreeDigest {
 public:
  TreeDigest();
  ~TreeDigest();
  TreeDigest(const TreeDigest&) = delete;
  TreeDigest& operator=(const TreeDigest&) = delete;

  void add(const TreeEntry& entry, const std::optional<Hash128>& content);
  Hash128 finish();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace novacron::transport
