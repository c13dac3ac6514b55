// Test data for scripts/bench-transport.sh: a disk-image-like file and a mutated copy.
//
//   transport_datagen OUT SIZE_MIB SEED                 writes OUT: extents of 64 KiB - 4 MiB,
//       by bytes about 40 % zeros (written as data, not holes, so the transport's zero
//       detection is measured), 40 % text (Zipf-distributed words from a 4096-word list,
//       tuned so that zstd -1 compresses the whole file about 3.3:1) and 20 % random bytes
//   transport_datagen --mutate IN OUT FRACTION SEED     copies IN to OUT with FRACTION of its
//       4 KiB blocks (distinct, uniformly spread) replaced by random bytes
//
// Fixed seeds make every run of the benchmark see the same bytes.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <unordered_set>
#include <vector>

namespace {

constexpr size_t kBlock = 4096;

std::vector<std::string> make_words(std::mt19937_64& rng) {
  std::vector<std::string> words(4096);
  for (auto& w : words) {
    const size_t len = 2 + rng() % 9;
    for (size_t i = 0; i < len; ++i) w.push_back(static_cast<char>('a' + rng() % 26));
    w.push_back(rng() % 12 == 0 ? '\n' : ' ');
  }
  return words;
}

void fill_text(std::mt19937_64& rng, const std::vector<std::string>& words, const std::vector<double>& cdf,
               std::uint8_t* out, size_t n) {
  std::uniform_real_distribution<double> u(0, 1);
  size_t i = 0;
  while (i < n) {
    const size_t w = static_cast<size_t>(std::lower_bound(cdf.begin(), cdf.end(), u(rng)) - cdf.begin());
    const std::string& word = words[std::min(w, words.size() - 1)];
    const size_t take = std::min(word.size(), n - i);
    std::memcpy(out + i, word.data(), take);
    i += take;
  }
}

void fill_random(std::mt19937_64& rng, std::uint8_t* out, size_t n) {
  for (size_t i = 0; i < n; i += 8) {
    const std::uint64_t v = rng();
    std::memcpy(out + i, &v, std::min<size_t>(8, n - i));
  }
}

int generate(const char* path, size_t size, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  const auto words = make_words(rng);
  std::vector<double> cdf(words.size());
  double total = 0;
  for (size_t k = 0; k < words.size(); ++k) total += 1.0 / std::pow(static_cast<double>(k + 1), 1.15);
  double acc = 0;
  for (size_t k = 0; k < words.size(); ++k) cdf[k] = (acc += 1.0 / std::pow(static_cast<double>(k + 1), 1.15) / total);
  FILE* f = std::fopen(path, "wb");
  if (f == nullptr) return std::perror(path), 1;
  std::vector<std::uint8_t> buf;
  size_t written = 0;
  while (written < size) {
    const size_t extent = std::min(size - written, (64u << 10) * (1 + rng() % 64));  // 64 KiB .. 4 MiB
    buf.assign(extent, 0);
    const int pick = static_cast<int>(rng() % 100);
    if (pick >= 40 && pick < 80) fill_text(rng, words, cdf, buf.data(), extent);
    if (pick >= 80) fill_random(rng, buf.data(), extent);
    if (std::fwrite(buf.data(), 1, extent, f) != extent) return std::perror(path), 1;
    written += extent;
  }
  return std::fclose(f) == 0 ? 0 : 1;
}

int mutate(const char* in, const char* out, double fraction, std::uint64_t seed) {
  FILE* src = std::fopen(in, "rb");
  if (src == nullptr) return std::perror(in), 1;
  std::fseek(src, 0, SEEK_END);
  const auto size = static_cast<size_t>(std::ftell(src));
  std::fseek(src, 0, SEEK_SET);
  std::vector<std::uint8_t> data(size);
  if (std::fread(data.data(), 1, size, src) != size) return std::perror(in), 1;
  std::fclose(src);
  std::mt19937_64 rng(seed);
  const size_t blocks = size / kBlock;
  const auto changes = static_cast<size_t>(static_cast<double>(blocks) * fraction);
  std::unordered_set<size_t> picked;
  while (picked.size() < changes) picked.insert(rng() % blocks);
  for (const size_t b : picked) fill_random(rng, data.data() + b * kBlock, kBlock);
  FILE* dst = std::fopen(out, "wb");
  if (dst == nullptr || std::fwrite(data.data(), 1, size, dst) != size) return std::perror(out), 1;
  std::fclose(dst);
  std::printf("%zu\n", changes);  // blocks changed
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 6 && std::string(argv[1]) == "--mutate") {
    return mutate(argv[2], argv[3], std::atof(argv[4]), std::strtoull(argv[5], nullptr, 10));
  }
  if (argc == 4) return generate(argv[1], std::strtoull(argv[2], nullptr, 10) << 20, std::strtoull(argv[3], nullptr, 10));
  std::fprintf(stderr, "usage: transport_datagen OUT SIZE_MIB SEED | --mutate IN OUT FRACTION SEED\n");
  return 2;
}
