// Safe extraction of plugin packages (.tar.zst, also .tar.gz/.tar) with libarchive.
#pragma once

#include <cstdint>
#include <filesystem>

#include "host/common/error.h"

namespace novacron {

struct ExtractLimits {
  std::uint64_t max_total_bytes = 512ull << 20;  // uncompressed
  std::uint64_t max_entries = 1000;
};

// Extracts `archive` into the existing empty folder `dest`. Refuses, before writing anything
// outside `dest`: entries with "..", absolute paths, symbolic or hard links, device nodes,
// FIFOs, and anything over the limits. On error, `dest` may hold partial output: the caller
// extracts into a private staging folder and deletes it.
// Error codes: "archive_unsafe", "archive_invalid", "archive_too_large", "io".
Expected<void> extract_plugin_archive(const std::filesystem::path& archive, const std::filesystem::path& dest,
                                      const ExtractLimits& limits = {});

}  // namespace novacron
