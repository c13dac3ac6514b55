// The resource-fit verdict over columns: the loop every placement runs over every node, so
// it has a portable version and, on x86-64 CPUs with AVX2 (chosen at run time), one that
// decides four rows per step. Both give the same codes; fit_kernel_test.cc holds them to it.
#pragma once

#include <cstddef>
#include <cstdint>

namespace novacron::policies::fit_kernel {

inline constexpr std::int64_t kUnchecked = INT64_MAX;  // a resource the node does not limit

// Codes as ResourceFit::Code: 0 fits, 1 driver, 3 cpu, 4 memory, 5 disk, 6 reserved exceeds
// capacity (the kernel never answers 2, capability; the policy checks those after it).
struct Columns {
  const std::int64_t* usable[3];      // floor(capacity x ratio) - reserved, or kUnchecked
  const std::int64_t* allocated[3];   // per resource: cpu (milli), memory (MiB), disk (GiB)
  const std::uint8_t* misconfigured;  // 1 = reserves more than its capacity
  const std::uint32_t* driver_bits;   // loaded drivers
};

struct Request {
  std::int64_t amount[3];
  std::uint32_t driver_mask;  // drivers the node must have (0 = any)
};

// out[i] = the code of row rows[i] (portable).
void codes_of_rows(const Columns& c, const Request& q, const std::uint32_t* rows, size_t n, std::uint8_t* out);
// out[row] = the code of row `row` for rows 0..n-1, with the fastest version this CPU runs.
void codes_of_all(const Columns& c, const Request& q, size_t n, std::uint8_t* out);
// The same, portable; and whether the AVX2 version ran (false where the CPU lacks it).
void codes_of_all_portable(const Columns& c, const Request& q, size_t n, std::uint8_t* out);
bool codes_of_all_avx2(const Columns& c, const Request& q, size_t n, std::uint8_t* out);

}  // namespace novacron::policies::fit_kernel
