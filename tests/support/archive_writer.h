// Builds tar archives (optionally zstd-compressed) for install tests, including malicious
// ones (entries with "..", absolute paths, links), with libarchive's writer.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace novacron::testing {

struct ArchiveEntry {
  enum class Type { kFile, kDir, kSymlink, kHardlink };
  std::string name;
  Type type = Type::kFile;
  std::string content;  // file content
  std::string target;   // link target
  int mode = 0644;
};

void write_archive(const std::filesystem::path& file, const std::vector<ArchiveEntry>& entries, bool zstd = true);

// Entries for a plugin folder on disk, placed under `prefix` in the archive.
std::vector<ArchiveEntry> entries_of_folder(const std::filesystem::path& folder, const std::string& prefix);

}  // namespace novacron::testing
