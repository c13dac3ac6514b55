#include "policies/resource-fit/fit_kernel.h"

#include <cstring>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define NOVACRON_FIT_KERNEL_AVX2 1
#endif

namespace novacron::policies::fit_kernel {

namespace {

constexpr std::uint8_t kFits = 0, kDriver = 1, kCpu = 3, kMemory = 4, kDisk = 5, kReserved = 6;

// usable - allocated < requested, never for kUnchecked. The subtraction is unsigned so that
// the sentinel cannot overflow; the comparisons combine without branches.
inline bool short_of(std::int64_t usable, std::int64_t allocated, std::int64_t requested) {
  const auto left =
      static_cast<std::int64_t>(static_cast<std::uint64_t>(usable) - static_cast<std::uint64_t>(allocated));
  return (usable != kUnchecked) & (left < requested);
}

inline std::uint8_t code_of(const Columns& c, const Request& q, std::uint32_t row) {
  std::uint8_t code = short_of(c.usable[2][row], c.allocated[2][row], q.amount[2]) ? kDisk : kFits;
  code = short_of(c.usable[1][row], c.allocated[1][row], q.amount[1]) ? kMemory : code;
  code = short_of(c.usable[0][row], c.allocated[0][row], q.amount[0]) ? kCpu : code;
  code = c.misconfigured[row] != 0 ? kReserved : code;
  return (c.driver_bits[row] & q.driver_mask) != q.driver_mask ? kDriver : code;
}

#ifdef NOVACRON_FIT_KERNEL_AVX2
// Four rows per step: per resource a 64-bit compare of (usable - allocated) with the
// request, the codes chosen by blends in 64-bit lanes, then packed to four bytes.
__attribute__((target("avx2"))) void codes_avx2(const Columns& c, const Request& q, size_t n, std::uint8_t* out) {
  const __m256i unchecked = _mm256_set1_epi64x(kUnchecked);
  const __m256i driver_mask = _mm256_set1_epi64x(q.driver_mask);
  const __m256i zero = _mm256_setzero_si256();
  const __m256i code_driver = _mm256_set1_epi64x(kDriver), code_reserved = _mm256_set1_epi64x(kReserved);
  const __m256i code_resource[3] = {_mm256_set1_epi64x(kCpu), _mm256_set1_epi64x(kMemory), _mm256_set1_epi64x(kDisk)};
  const __m256i requested[3] = {_mm256_set1_epi64x(q.amount[0]), _mm256_set1_epi64x(q.amount[1]),
                                _mm256_set1_epi64x(q.amount[2])};
  const __m256i low_dwords = _mm256_setr_epi32(0, 2, 4, 6, 0, 2, 4, 6);
  size_t row = 0;
  for (; row + 4 <= n; row += 4) {
    __m256i code = zero;
    for (int r = 2; r >= 0; --r) {  // cpu last: the first short resource names the code
      const __m256i usable = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(c.usable[r] + row));
      const __m256i allocated = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(c.allocated[r] + row));
      const __m256i left = _mm256_sub_epi64(usable, allocated);
      const __m256i is_short =
          _mm256_andnot_si256(_mm256_cmpeq_epi64(usable, unchecked), _mm256_cmpgt_epi64(requested[r], left));
      code = _mm256_blendv_epi8(code, code_resource[r], is_short);
    }
    std::uint32_t mis4 = 0, bits4[4];
    std::memcpy(&mis4, c.misconfigured + row, sizeof mis4);
    std::memcpy(bits4, c.driver_bits + row, sizeof bits4);
    const __m256i misconfigured = _mm256_cvtepu8_epi64(_mm_cvtsi32_si128(static_cast<int>(mis4)));
    code = _mm256_blendv_epi8(code_reserved, code, _mm256_cmpeq_epi64(misconfigured, zero));
    const __m256i bits = _mm256_cvtepu32_epi64(_mm_loadu_si128(reinterpret_cast<const __m128i*>(bits4)));
    const __m256i has_driver = _mm256_cmpeq_epi64(_mm256_and_si256(bits, driver_mask), driver_mask);
    code = _mm256_blendv_epi8(code_driver, code, has_driver);
    // Lanes hold 0..6: the low dword of each lane, then bytes.
    const __m128i dwords = _mm256_castsi256_si128(_mm256_permutevar8x32_epi32(code, low_dwords));
    const __m128i bytes = _mm_packus_epi16(_mm_packus_epi32(dwords, dwords), _mm_setzero_si128());
    const auto packed = static_cast<std::uint32_t>(_mm_cvtsi128_si32(bytes));
    std::memcpy(out + row, &packed, sizeof packed);
  }
  for (; row < n; ++row) out[row] = code_of(c, q, static_cast<std::uint32_t>(row));
}

bool cpu_has_avx2() {
  static const bool has = __builtin_cpu_supports("avx2") != 0;
  return has;
}
#endif

}  // namespace

void codes_of_rows(const Columns& c, const Request& q, const std::uint32_t* rows, size_t n, std::uint8_t* out) {
  for (size_t i = 0; i < n; ++i) out[i] = code_of(c, q, rows[i]);
}

void codes_of_all_portable(const Columns& c, const Request& q, size_t n, std::uint8_t* out) {
  for (size_t row = 0; row < n; ++row) out[row] = code_of(c, q, static_cast<std::uint32_t>(row));
}

bool codes_of_all_avx2(const Columns& c, const Request& q, size_t n, std::uint8_t* out) {
#ifdef NOVACRON_FIT_KERNEL_AVX2
  if (cpu_has_avx2()) {
    codes_avx2(c, q, n, out);
    return true;
  }
#endif
  (void)c, (void)q, (void)n, (void)out;
  return false;
}

void codes_of_all(const Columns& c, const Request& q, size_t n, std::uint8_t* out) {
  if (!codes_of_all_avx2(c, q, n, out)) codes_of_all_portable(c, q, n, out);
}

}  // namespace novacron::policies::fit_kernel
