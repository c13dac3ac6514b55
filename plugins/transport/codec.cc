#include "codec.h"

#include <zstd.h>

namespace novacron::transport {

namespace {
constexpr size_t kNeverCompressBelow = 512;
constexpr int kMaxWindowLog = 20;  // 1 MiB: a batch's literals never need more
}  // namespace

struct BatchCompressor::Context {
  ZSTD_CCtx* cctx = ZSTD_createCCtx();
  ~Context() { ZSTD_freeCCtx(cctx); }
};

BatchCompressor::BatchCompressor() : ctx_(std::make_unique<Context>()) {}
BatchCompressor::~BatchCompressor() = default;

int BatchCompressor::compress(std::span<const std::uint8_t> raw, int level, std::vector<std::uint8_t>& out) {
  const size_t start = out.size();
  if (level > 0 && raw.size() >= kNeverCompressBelow) {
    out.resize(start + ZSTD_compressBound(raw.size()));
    ZSTD_CCtx_reset(ctx_->cctx, ZSTD_reset_session_only);
    ZSTD_CCtx_setParameter(ctx_->cctx, ZSTD_c_compressionLevel, level);
    ZSTD_CCtx_setParameter(ctx_->cctx, ZSTD_c_windowLog, kMaxWindowLog);
    ZSTD_CCtx_setParameter(ctx_->cctx, ZSTD_c_contentSizeFlag, 1);
    ZSTD_CCtx_setParameter(ctx_->cctx, ZSTD_c_checksumFlag, 0);
    const size_t n = ZSTD_compress2(ctx_->cctx, out.data() + start, out.size() - start, raw.data(), raw.size());
    if (!ZSTD_isError(n) && n * 100 < raw.size() * 97) {
      out.resize(start + n);
      return level;
    }
  }
  out.resize(start);
  out.insert(out.end(), raw.begin(), raw.end());
  return 0;
}

struct BatchDecompressor::Context {
  ZSTD_DCtx* dctx = ZSTD_createDCtx();
  Context() { ZSTD_DCtx_setParameter(dctx, ZSTD_d_windowLogMax, kMaxWindowLog); }
  ~Context() { ZSTD_freeDCtx(dctx); }
};

BatchDecompressor::BatchDecompressor() : ctx_(std::make_unique<Context>()) {}
BatchDecompressor::~BatchDecompressor() = default;

bool BatchDecompressor::decompress(std::span<const std::uint8_t> compressed, std::uint32_t raw_len,
                                   std::vector<std::uint8_t>& out) {
  // One frame, exactly: its header must announce raw_len, and it must span the whole input.
  const unsigned long long declared = ZSTD_getFrameContentSize(compressed.data(), compressed.size());
  if (declared != raw_len) return false;
  if (ZSTD_findFrameCompressedSize(compressed.data(), compressed.size()) != compressed.size()) return false;
  out.resize(raw_len);
  ZSTD_DCtx_reset(ctx_->dctx, ZSTD_reset_session_only);
  ZSTD_inBuffer in{compressed.data(), compressed.size(), 0};
  ZSTD_outBuffer o{out.data(), out.size(), 0};
  const size_t rc = ZSTD_decompressStream(ctx_->dctx, &o, &in);
  // rc == 0: the frame is complete and fully flushed.
  return !ZSTD_isError(rc) && rc == 0 && in.pos == in.size && o.pos == raw_len;
}

}  // namespace novacron::transport
