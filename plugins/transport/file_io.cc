#include "file_io.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>

namespace novacron::transport {

bool pread_full(int fd, std::uint8_t* buf, size_t len, std::uint64_t offset) {
  size_t done = 0;
  while (done < len) {
    const ssize_t n = ::pread(fd, buf + done, len - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

bool pwrite_full(int fd, const std::uint8_t* buf, size_t len, std::uint64_t offset) {
  size_t done = 0;
  while (done < len) {
    const ssize_t n = ::pwrite(fd, buf + done, len - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

bool copy_range(int from, std::uint64_t from_off, int to, std::uint64_t to_off, std::uint64_t len,
                std::vector<std::uint8_t>& scratch) {
  auto in = static_cast<off_t>(from_off);
  auto out = static_cast<off_t>(to_off);
  std::uint64_t left = len;
  while (left > 0) {
    const ssize_t n = ::copy_file_range(from, &in, to, &out, left, 0);
    if (n > 0) {
      left -= static_cast<std::uint64_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n == 0) return false;  // the source ended early
    break;                     // EXDEV, EINVAL, ENOSYS...: copy through memory
  }
  while (left > 0) {
    const size_t chunk = static_cast<size_t>(std::min<std::uint64_t>(left, 1u << 20));
    scratch.resize(chunk);
    if (!pread_full(from, scratch.data(), chunk, static_cast<std::uint64_t>(in)) ||
        !pwrite_full(to, scratch.data(), chunk, static_cast<std::uint64_t>(out))) {
      return false;
    }
    in += static_cast<off_t>(chunk);
    out += static_cast<off_t>(chunk);
    left -= chunk;
  }
  return true;
}

}  // namespace novacron::transport
