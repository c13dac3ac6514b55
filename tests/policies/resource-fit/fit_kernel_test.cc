// The resource-fit kernel: the AVX2 version (where the CPU has it), the portable version and
// the row-list version give the same code for every row, on seeded random columns that
// include exact boundaries, unchecked resources, misconfigured rows, missing drivers and
// lengths that are not a multiple of four.
#include "policies/resource-fit/fit_kernel.h"

#include <gtest/gtest.h>

#include <random>
#include <vector>

namespace novacron::policies::fit_kernel {
namespace {

struct Table {
  std::vector<std::int64_t> usable[3], allocated[3];
  std::vector<std::uint8_t> misconfigured;
  std::vector<std::uint32_t> bits;
  Columns columns() const {
    Columns c{};
    for (int r = 0; r < 3; ++r) {
      c.usable[r] = usable[r].data();
      c.allocated[r] = allocated[r].data();
    }
    c.misconfigured = misconfigured.data();
    c.driver_bits = bits.data();
    return c;
  }
};

Table random_table(size_t n, std::mt19937_64& rng, const Request& q) {
  Table t;
  for (int r = 0; r < 3; ++r) {
    t.usable[r].resize(n);
    t.allocated[r].resize(n);
    for (size_t i = 0; i < n; ++i) {
      const auto usable = static_cast<std::int64_t>(rng() % 100000);
      t.usable[r][i] = rng() % 11 == 0 ? kUnchecked : usable;
      // Around the boundary usable - allocated == requested, and far from it either way.
      const std::int64_t edge = usable - q.amount[r];
      const std::int64_t choices[] = {edge - 1, edge,       edge + 1,
                                      0,        usable * 2, static_cast<std::int64_t>(rng() % 50000)};
      t.allocated[r][i] = choices[rng() % 6];
    }
  }
  t.misconfigured.resize(n);
  t.bits.resize(n);
  for (size_t i = 0; i < n; ++i) {
    t.misconfigured[i] = rng() % 13 == 0 ? 1 : 0;
    t.bits[i] = static_cast<std::uint32_t>(rng() % 8);
  }
  return t;
}

// What the codes mean, written out: the reference the kernels are held to.
std::uint8_t expected(const Table& t, const Request& q, size_t row) {
  if ((t.bits[row] & q.driver_mask) != q.driver_mask) return 1;
  if (t.misconfigured[row] != 0) return 6;
  for (int r = 0; r < 3; ++r) {
    if (t.usable[r][row] != kUnchecked && t.usable[r][row] - t.allocated[r][row] < q.amount[r]) {
      return static_cast<std::uint8_t>(3 + r);
    }
  }
  return 0;
}

TEST(FitKernelTest, EveryVersionGivesTheReferenceCodes) {
  std::mt19937_64 rng(20261127);
  for (const size_t n : {0u, 1u, 3u, 4u, 5u, 64u, 1001u}) {
    for (const std::uint32_t mask : {0u, 1u, 6u}) {
      const Request q{{2000, 4096, 20}, mask};
      const Table t = random_table(n, rng, q);
      const Columns c = t.columns();
      std::vector<std::uint8_t> portable(n, 0xff), fastest(n, 0xff), avx2(n, 0xff), listed(n, 0xff);
      codes_of_all_portable(c, q, n, portable.data());
      codes_of_all(c, q, n, fastest.data());
      std::vector<std::uint32_t> rows(n);
      for (size_t i = 0; i < n; ++i) rows[i] = static_cast<std::uint32_t>(n - 1 - i);  // any order
      codes_of_rows(c, q, rows.data(), n, listed.data());
      const bool ran_avx2 = codes_of_all_avx2(c, q, n, avx2.data());
      std::vector<int> seen(7, 0);
      for (size_t row = 0; row < n; ++row) {
        const std::uint8_t want = expected(t, q, row);
        ++seen[want];
        ASSERT_EQ(portable[row], want) << "row " << row << " of " << n;
        ASSERT_EQ(fastest[row], want) << "row " << row << " of " << n;
        ASSERT_EQ(listed[n - 1 - row], want) << "row " << row << " of " << n;
        if (ran_avx2) ASSERT_EQ(avx2[row], want) << "row " << row << " of " << n;
      }
      if (n == 1001) {  // the data reaches every code
        for (const int code : {0, 3, 4, 5, 6}) EXPECT_GT(seen[code], 0) << code;
        if (mask != 0) EXPECT_GT(seen[1], 0);
      }
    }
  }
}

}  // namespace
}  // namespace novacron::policies::fit_kernel
