// Whole-range file I/O the receivers share: reads and writes that finish or fail (EINTR and
// short counts handled), and range copies that let the kernel share extents where it can.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace novacron::transport {

// Reads exactly `len` bytes at `offset`; false on an error or a short file.
bool pread_full(int fd, std::uint8_t* buf, size_t len, std::uint64_t offset);

// Writes exactly `len` bytes at `offset`; false on an error (errno set).
bool pwrite_full(int fd, const std::uint8_t* buf, size_t len, std::uint64_t offset);

// Copies a byte range between files (or within one): copy_file_range where the kernel can
// (reflinks on XFS and Btrfs), else through `scratch`.
bool copy_range(int from, std::uint64_t from_off, int to, std::uint64_t to_off, std::uint64_t len,
                std::vector<std::uint8_t>& scratch);

}  // namespace novacron::transport
