// Helpers shared by the bundled scheduling policies over the SDK 1.4 node columns
// (sdk::NodeColumns, sdk::PlacementQuery): exact integer limits, utilisation after placement
// and the number formatting of their explanations. Header-only, SDK types only; nothing here
// allocates except the formatters (which only explanations call).
#pragma once

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <string>

#include "novacron/sdk/scheduling_policy.hpp"

namespace novacron::policies {

// An allocation ratio as an exact fixed-point number (millionths), so that limits are exact
// integers: 1.1 x 1000 MiB is 1100 MiB, not 1100.0000000000002 or 1099.9999999999998.
struct FixedRatio {
  static constexpr std::int64_t kOne = 1000000;
  std::int64_t whole = 1;  // integral part
  std::int64_t micro = 0;  // fractional part, in millionths

  static FixedRatio of(double ratio) {
    const std::int64_t m = std::llround(ratio * static_cast<double>(kOne));
    return {m / kOne, m % kOne};
  }
  double value() const { return static_cast<double>(whole) + static_cast<double>(micro) / kOne; }

  // floor(amount x ratio) for amount >= 0, saturating at INT64_MAX.
  std::int64_t limit(std::int64_t amount) const {
    if (amount <= 0) return amount;
    // floor(amount x micro / kOne) without overflowing: split amount at kOne.
    const std::int64_t frac = (amount / kOne) * micro + (amount % kOne) * micro / kOne;
    std::int64_t base = 0;
    std::int64_t out = 0;
    if (__builtin_mul_overflow(amount, whole, &base) || __builtin_add_overflow(base, frac, &out)) {
      return std::numeric_limits<std::int64_t>::max();  // beyond any real capacity
    }
    return out;
  }
};

// Capacity left for VMs after what the host keeps back (may be <= 0 when misconfigured).
inline std::int64_t usable(const sdk::NodeColumns& c, std::uint32_t row, std::uint32_t resource) {
  return c.capacity[resource][row] - c.reserved[resource][row];
}

// Fraction of the usable capacity in use after placing `requested`, clamped to [0, 1]
// (over-commit counts as full); negative when there is no usable capacity.
inline double utilisation_after(std::int64_t capacity, std::int64_t reserved, std::int64_t allocated,
                                std::int64_t requested) {
  const std::int64_t usable = capacity - reserved;
  if (usable <= 0) return -1.0;
  const double u = static_cast<double>(allocated + requested) / static_cast<double>(usable);
  return std::clamp(u, 0.0, 1.0);
}

inline double utilisation_after(const sdk::NodeColumns& c, std::uint32_t row, const sdk::PlacementQuery& q,
                                std::uint32_t resource) {
  return utilisation_after(c.capacity[resource][row], c.reserved[resource][row], c.allocated[resource][row],
                           q.resources[resource]);
}

// CPU and memory utilisation after placement (what binpack and spread score).
struct CpuMemory {
  double cpu = 0;
  double memory = 0;
  bool usable = false;  // false when either resource has no usable capacity (scores 0)
};

inline CpuMemory cpu_memory_after(const sdk::NodeColumns& c, std::uint32_t row, const sdk::PlacementQuery& q) {
  CpuMemory out;
  out.cpu = utilisation_after(c, row, q, sdk::kCpuMilli);
  out.memory = utilisation_after(c, row, q, sdk::kMemoryMib);
  out.usable = out.cpu >= 0 && out.memory >= 0;
  return out;
}

// The same from an interface-1 record (vCPUs as doubles: rounded to milli-vCPU first).
inline std::int64_t milli_of(double vcpus) { return std::llround(vcpus * 1000.0); }

inline CpuMemory cpu_memory_after(const sdk::NodeCandidate& n, const sdk::Resources& request) {
  CpuMemory out;
  out.cpu = utilisation_after(milli_of(n.capacity.vcpus), milli_of(n.reserved.vcpus), milli_of(n.allocated.vcpus),
                              milli_of(request.vcpus));
  out.memory =
      utilisation_after(n.capacity.memory_mib, n.reserved.memory_mib, n.allocated.memory_mib, request.memory_mib);
  out.usable = out.cpu >= 0 && out.memory >= 0;
  return out;
}

// Whole percent of a fraction, for explanations.
inline int percent(double fraction) { return static_cast<int>(std::lround(std::clamp(fraction, 0.0, 1.0) * 100.0)); }

// `value` with at most `decimals` decimals and no trailing zeros: 1.5, 2, 0.125.
inline std::string format_number(double value, int decimals = 3) {
  // to_chars: the same digits as printf's %.*f, without the locale and format parsing
  // (explanations are written on every placement). Fixed notation of the largest double
  // needs 309 digits before the point.
  char buf[400];
  const auto [end, ec] =
      std::to_chars(buf, buf + sizeof(buf), value, std::chars_format::fixed, std::clamp(decimals, 0, 17));
  if (ec != std::errc()) return std::isnan(value) ? "nan" : value < 0 ? "-inf" : "inf";
  std::string s(buf, end);
  if (s.find('.') != std::string::npos) {
    while (s.back() == '0') s.pop_back();
    if (s.back() == '.') s.pop_back();
  }
  if (s == "-0") s = "0";
  return s;
}

// An amount of a resource column in its display unit: milli-vCPU as vCPUs (up to 3 decimals,
// exact), MiB and GiB as integers.
inline std::string format_amount(std::int64_t amount, std::uint32_t resource) {
  if (resource != sdk::kCpuMilli) return std::to_string(amount);
  const bool negative = amount < 0;
  const std::uint64_t a = negative ? 0 - static_cast<std::uint64_t>(amount) : static_cast<std::uint64_t>(amount);
  std::string s = std::to_string(a / 1000);
  if (const std::uint64_t frac = a % 1000; frac != 0) {
    const char digits[] = {'.', static_cast<char>('0' + frac / 100), static_cast<char>('0' + frac / 10 % 10),
                           static_cast<char>('0' + frac % 10)};
    s.append(digits, sizeof digits);
    while (s.back() == '0') s.pop_back();
  }
  return negative ? "-" + s : s;
}

}  // namespace novacron::policies
