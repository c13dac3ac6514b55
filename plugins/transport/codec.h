// zstd for BLOCKS payloads (docs/transport-protocol.md, "Compression"): each payload is one
// complete zstd frame, so a batch decodes alone (resume, parallel decoding) and a level
// change applies at the next batch. Incompressible data is detected and sent raw: a payload
// that does not shrink below 97 % goes raw, and after 8 such batches in a row the next 32
// are sent raw untried. Decoding refuses a window over 1 MiB and any output size other than
// the announced one, so a peer cannot make the receiver allocate or write more than a batch.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

namespace novacron::transport {

class BatchCompressor {
 public:
  BatchCompressor();
  ~BatchCompressor();
  BatchCompressor(const BatchCompressor&) = delete;
  BatchCompressor& operator=(const BatchCompressor&) = delete;

  // Appends `raw` to `out`, compressed at `level` (1..19) when it shrinks below 97 %, else
  // raw. Returns the level used: 0 = raw.
  int compress(std::span<const std::uint8_t> raw, int level, std::vector<std::uint8_t>& out);

 private:
  struct Context;
  std::unique_ptr<Context> ctx_;
};

// Per transfer: after 8 batches in a row that did not compress, the next 32 are sent raw
// untried (random data costs the compressor time for nothing).
class IncompressibleDetector {
 public:
  bool should_try() {
    if (skip_left_ > 0) {
      --skip_left_;
      return false;
    }
    return true;
  }
  void record(bool compressed) {
    raw_streak_ = compressed ? 0 : raw_streak_ + 1;
    if (raw_streak_ >= kStreak) {
      raw_streak_ = 0;
      skip_left_ = kSkip;
    }
  }

 private:
  static constexpr int kStreak = 8;
  static constexpr int kSkip = 32;
  int raw_streak_ = 0;
  int skip_left_ = 0;
};

class BatchDecompressor {
 public:
  BatchDecompressor();
  ~BatchDecompressor();
  BatchDecompressor(const BatchDecompressor&) = delete;
  BatchDecompressor& operator=(const BatchDecompressor&) = delete;

  // Decodes one zstd frame into `out` (resized to raw_len); false when the input is not
  // exactly one frame of exactly raw_len bytes within the window limit.
  bool decompress(std::span<const std::uint8_t> compressed, std::uint32_t raw_len, std::vector<std::uint8_t>& out);

 private:
  struct Context;
  std::unique_ptr<Context> ctx_;
};

}  // namespace novacron::transport
