#include "host/common/sha256.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <vector>

namespace novacron {
namespace {

struct MdCtxDeleter {
  void operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }
};
using MdCtx = std::unique_ptr<EVP_MD_CTX, MdCtxDeleter>;

}  // namespace

Expected<Sha256Digest> sha256_fd(int fd) {
  MdCtx ctx(EVP_MD_CTX_new());
  if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1) {
    return make_error("crypto", "cannot initialise SHA-256");
  }
  // 256 KiB: large enough that syscalls do not dominate, small enough for the stack of
  // a blocking-pool thread when moved to the heap.
  constexpr size_t kBufferSize = size_t{256} << 10;
  std::unique_ptr<unsigned char[]> buffer(new unsigned char[kBufferSize]);  // not zero-filled
  off_t offset = 0;
  for (;;) {
    ssize_t n = ::pread(fd, buffer.get(), kBufferSize, offset);
    if (n < 0) {
      if (errno == EINTR) continue;
      return make_error("io", std::string("read failed while hashing: ") + std::strerror(errno));
    }
    if (n == 0) break;
    EVP_DigestUpdate(ctx.get(), buffer.get(), static_cast<size_t>(n));
    offset += n;
  }
  Sha256Digest digest{};
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx.get(), digest.data(), &len);
  return digest;
}

Expected<Sha256Digest> sha256_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return make_error("io", path + ": " + std::strerror(errno));
  auto result = sha256_fd(fd);
  ::close(fd);
  return result;
}

Sha256Digest sha256_bytes(std::string_view bytes) {
  Sha256Digest digest{};
  unsigned int len = 0;
  EVP_Digest(bytes.data(), bytes.size(), digest.data(), &len, EVP_sha256(), nullptr);
  return digest;
}

std::string to_hex(const Sha256Digest& digest) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(digest.size() * 2);
  for (std::uint8_t b : digest) {
    out.push_back(kHex[b >> 4]);
    out.push_back(kHex[b & 0xf]);
  }
  return out;
}

bool from_hex(std::string_view hex, Sha256Digest& out) {
  if (hex.size() != out.size() * 2) return false;
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (size_t i = 0; i < out.size(); ++i) {
    int hi = nibble(hex[2 * i]);
    int lo = nibble(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    out[i] = static_cast<std::uint8_t>((hi << 4) | lo);
  }
  return true;
}

}  // namespace novacron
