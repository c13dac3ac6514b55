// libFuzzer target for the transport's frame reader and every frame decoder
// (plugins/transport): arbitrary bytes, fed in the chunk sizes the input's first byte
// picks, must give frames, NeedMore or one final error, never a crash, an over-read or
// unbounded buffering. A decoded BLOCKS frame's zstd payload is decoded too: it must never
// produce more than the literal length it announces.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "codec.h"
#include "frame_reader.h"
#include "frames.h"
#include "transfer_frames.h"
#include "tree_frames.h"

using namespace novacron::transport;  // NOLINT(google-build-using-namespace)

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const size_t chunk = 1 + data[0] % 64;
  FrameReader reader(64 * 1024);
  for (size_t at = 1; at < size; at += chunk) {
    reader.feed({data + at, std::min(chunk, size - at)});
    for (;;) {
      auto next = reader.next();
      if (std::holds_alternative<NeedMore>(next)) break;
      if (std::holds_alternative<FrameError>(next)) return 0;
      const Frame& f = std::get<Frame>(next);
      // A frame's payload is never larger than the cap it passed.
      if (f.payload.size() > 64 * 1024) std::abort();
      switch (f.header.type) {
        case FrameType::kHello:
          (void)Hello::decode(f.payload);
          break;
        case FrameType::kHelloOk:
          (void)HelloOk::decode(f.payload);
          break;
        case FrameType::kError:
          (void)ErrorFrame::decode(f.payload);
          break;
        case FrameType::kPing:
        case FrameType::kPong:
          (void)Ping::decode(f.payload);
          break;
        case FrameType::kAck:
          (void)Ack::decode(f.payload);
          break;
        case FrameType::kOffer:
          (void)Offer::decode(f.payload);
          break;
        case FrameType::kAccept:
          (void)Accept::decode(f.payload);
          break;
        case FrameType::kHashes:
          if (auto h = Hashes::decode(f.payload); h && h->hashes.size() > h->present.size()) std::abort();
          break;
        case FrameType::kBlocks:
          if (auto b = BlocksView::decode(f.payload); b && b->header.codec == Codec::kZstd) {
            static BatchDecompressor decompressor;
            std::vector<std::uint8_t> out;
            if (decompressor.decompress(b->literal, b->header.literal_raw_len, out) &&
                out.size() != b->header.literal_raw_len) {
              std::abort();
            }
          }
          break;
        case FrameType::kEntry:
          // A decoded entry never names a path that could leave the tree.
          if (auto e = TreeEntry::decode(f.payload)) {
            const std::string p = "/" + e->path + "/";
            if (p.find("/../") != std::string::npos || (!e->path.empty() && p.find("//") != std::string::npos)) {
              std::abort();
            }
          }
          break;
        case FrameType::kEntriesEnd:
          (void)EntriesEnd::decode(f.payload);
          break;
        case FrameType::kWant:
          (void)Want::decode(f.payload);
          break;
        case FrameType::kEnd:
          (void)End::decode(f.payload);
          break;
        case FrameType::kResult:
          (void)Result::decode(f.payload);
          break;
        case FrameType::kCancel:
          (void)Cancel::decode(f.payload);
          break;
        default:
          break;
      }
    }
    // Buffering stays bounded by one frame (header + the largest allowed payload).
    if (reader.buffered() > 16 + 64 * 1024 + 64) std::abort();
  }
  return 0;
}
