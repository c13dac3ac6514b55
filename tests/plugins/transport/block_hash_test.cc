// Block hashes (XXH3-128, canonical bytes), zero detection and the streaming file digest.
#include "block_hash.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace novacron::transport {
namespace {

std::string hex(const Hash128& h) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (auto b : h) {
    out += kHex[b >> 4];
    out += kHex[b & 0xf];
  }
  return out;
}

TEST(BlockHashTest, IsXxh3Of128BitsInCanonicalForm) {
  // The published XXH3_128bits of the empty input (xxHash's test vectors), big-endian.
  EXPECT_EQ(hex(block_hash({})), "99aa06d3014798d86001c324468d497f");
  std::vector<std::uint8_t> a(4096, 7), b = a;
  EXPECT_EQ(block_hash(a), block_hash(b));
  b[4095] = 8;
  EXPECT_NE(block_hash(a), block_hash(b));
}

TEST(BlockHashTest, ZeroBlocks) {
  std::vector<std::uint8_t> zeros(4096, 0);
  EXPECT_TRUE(is_zero(zeros));
  EXPECT_TRUE(is_zero({}));
  for (size_t at : {size_t{0}, size_t{7}, size_t{8}, size_t{4095}}) {
    auto one = zeros;
    one[at] = 1;
    EXPECT_FALSE(is_zero(one)) << at;
  }
  std::vector<std::uint8_t> odd(13, 0);  // a short tail
  EXPECT_TRUE(is_zero(odd));
  odd[12] = 1;
  EXPECT_FALSE(is_zero(odd));
  EXPECT_EQ(zero_block_hash(4096), block_hash(zeros));
  EXPECT_EQ(zero_block_hash(13), block_hash(std::vector<std::uint8_t>(13, 0)));
  EXPECT_NE(zero_block_hash(4096), zero_block_hash(13));
}

Hash128 digest_of(const std::vector<std::uint8_t>& file, std::uint32_t block_size) {
  FileDigest d(block_size, file.size());
  for (size_t at = 0; at < file.size(); at += block_size) {
    size_t n = std::min<size_t>(block_size, file.size() - at);
    d.add(block_hash({file.data() + at, n}));
  }
  return d.finish().value();
}

TEST(FileDigestTest, CoversEveryBlockInOrderAndTheFileShape) {
  std::vector<std::uint8_t> file(3 * 4096 + 100);
  for (size_t i = 0; i < file.size(); ++i) file[i] = static_cast<std::uint8_t>(i * 31 + 7);
  EXPECT_EQ(FileDigest::blocks_for(file.size(), 4096), 4u);
  EXPECT_EQ(FileDigest::blocks_for(8192, 4096), 2u);
  EXPECT_EQ(FileDigest::blocks_for(0, 4096), 0u);
  Hash128 d = digest_of(file, 4096);
  EXPECT_EQ(d, digest_of(file, 4096)) << "deterministic";
  auto changed = file;
  changed[5000] ^= 1;
  EXPECT_NE(digest_of(changed, 4096), d);
  EXPECT_NE(digest_of(file, 8192), d) << "the block size is part of the digest";
  auto longer = file;
  longer.push_back(0);
  EXPECT_NE(digest_of(longer, 4096), d) << "so is the length";

  // Blocks swapped: same hashes, other order, other digest.
  FileDigest swapped(4096, std::uint64_t{2} * 4096);
  std::vector<std::uint8_t> x(4096, 1), y(4096, 2);
  swapped.add(block_hash(y));
  swapped.add(block_hash(x));
  FileDigest straight(4096, std::uint64_t{2} * 4096);
  straight.add(block_hash(x));
  straight.add(block_hash(y));
  EXPECT_NE(swapped.finish().value(), straight.finish().value());

  FileDigest short_by_one(4096, file.size());
  short_by_one.add(block_hash(x));
  EXPECT_FALSE(short_by_one.finish().has_value()) << "fewer blocks than the file has";
  FileDigest empty(4096, 0);
  EXPECT_TRUE(empty.finish().has_value());
}

}  // namespace
}  // namespace novacron::transport
