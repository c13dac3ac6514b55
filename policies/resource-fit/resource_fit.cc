#include "policies/resource-fit/resource_fit.h"

#include <algorithm>
#include <bit>

#include "novacron/sdk/json_config.hpp"
#include "policies/resource-fit/fit_kernel.h"

namespace novacron::policies {

namespace {

using sdk::FilterVerdict;
using sdk::NodeCandidate;
using sdk::NodeColumns;
using sdk::PlacementQuery;
using sdk::PlacementRequest;
using sdk::Status;

constexpr sdk::ReasonCode kCodes[] = {
    {"driver", "the requested driver is not loaded on the node"},
    {"capability", "the node's driver lacks a requested capability"},
    {"cpu", "not enough cpu"},
    {"memory", "not enough memory"},
    {"disk", "not enough disk"},
    {"reserved_exceeds_capacity", "the node reserves more than its capacity"},
};

constexpr const char* kNames[sdk::kResourceCount] = {"cpu", "memory", "disk"};
constexpr const char* kUnits[sdk::kResourceCount] = {" vcpus", " MiB", " GiB"};

std::string amount(std::int64_t v, std::uint32_t r) { return format_amount(v, r) + kUnits[r]; }

ResourceFit::Amounts amounts_of(const NodeColumns& c, std::uint32_t row) {
  ResourceFit::Amounts a;
  for (std::uint32_t r = 0; r < sdk::kResourceCount; ++r) {
    a.capacity[r] = c.capacity[r][row];
    a.reserved[r] = c.reserved[r][row];
    a.allocated[r] = c.allocated[r][row];
  }
  return a;
}

ResourceFit::Amounts amounts_of(const NodeCandidate& n) {
  ResourceFit::Amounts a;
  const auto fill = [](const sdk::Resources& in, std::int64_t* out) {
    out[sdk::kCpuMilli] = milli_of(in.vcpus);
    out[sdk::kMemoryMib] = in.memory_mib;
    out[sdk::kDiskGib] = in.disk_gib;
  };
  fill(n.capacity, a.capacity);
  fill(n.reserved, a.reserved);
  fill(n.allocated, a.allocated);
  return a;
}

void requested_of(const sdk::Resources& in, std::int64_t* out) {
  out[sdk::kCpuMilli] = milli_of(in.vcpus);
  out[sdk::kMemoryMib] = in.memory_mib;
  out[sdk::kDiskGib] = in.disk_gib;
}

// Whether some driver in `drivers` (bits) has every capability in `want` on `row`.
bool some_driver_has(const NodeColumns& c, std::uint32_t row, std::uint32_t drivers, std::uint32_t want) {
  for (std::uint32_t bits = drivers; bits != 0; bits &= bits - 1) {
    const auto d = static_cast<std::uint32_t>(std::countr_zero(bits));
    if (d < c.driver_caps_stride &&
        (c.driver_caps[static_cast<size_t>(row) * c.driver_caps_stride + d] & want) == want) {
      return true;
    }
  }
  return false;
}

std::string driver_name(const PlacementQuery& q, const NodeColumns& c) {
  if (q.request != nullptr && !q.request->driver.empty()) return q.request->driver;
  if (q.driver >= 0 && static_cast<size_t>(q.driver) < c.driver_names.size()) return c.driver_names[q.driver];
  return "#" + std::to_string(q.driver);
}

std::string capability_list(const NodeColumns& c, std::uint32_t bits) {
  std::string out;
  for (; bits != 0; bits &= bits - 1) {
    const auto b = static_cast<size_t>(std::countr_zero(bits));
    if (!out.empty()) out += ", ";
    out += b < c.capability_names.size() ? c.capability_names[b] : "#" + std::to_string(b);
  }
  return out;
}

std::string capability_text(const PlacementQuery& q, const NodeColumns& c, std::uint32_t row) {
  if (q.unknown_capability) {
    if (q.request != nullptr) {
      for (const auto& cap : q.request->capabilities) {
        if (std::find(c.capability_names.begin(), c.capability_names.end(), cap) == c.capability_names.end()) {
          return "capability " + cap + " is not available on any node";
        }
      }
    }
    return "a requested capability is not available on any node";
  }
  const size_t base = static_cast<size_t>(row) * c.driver_caps_stride;
  if (q.driver >= 0) {
    const std::uint32_t missing = q.capabilities & ~c.driver_caps[base + static_cast<size_t>(q.driver)];
    return "capability " + capability_list(c, missing & (0u - missing)) + " is not available with driver " +
           driver_name(q, c) + " on this node";
  }
  std::uint32_t all = 0;
  for (std::uint32_t bits = c.driver_bits[row]; bits != 0; bits &= bits - 1) {
    const auto d = static_cast<std::uint32_t>(std::countr_zero(bits));
    if (d < c.driver_caps_stride) all |= c.driver_caps[base + d];
  }
  if (const std::uint32_t missing = q.capabilities & ~all; missing != 0) {
    return "capability " + capability_list(c, missing & (0u - missing)) + " is not available on this node";
  }
  return "no single driver on this node has all of the capabilities " + capability_list(c, q.capabilities);
}

}  // namespace

std::span<const sdk::ReasonCode> ResourceFit::reason_codes() const noexcept { return kCodes; }

Status ResourceFit::configure(std::string_view config_json) {
  {
    std::lock_guard<std::mutex> lock(headroom_mutex_);
    headroom_.reset();  // computed with the old ratios
  }
  sdk::ConfigReader cfg(config_json);
  const double cpu = cfg.number("cpu_allocation_ratio", 4.0, 0.01, 1000);
  const double memory = cfg.number("memory_allocation_ratio", 1.0, 0.01, 100);
  const double disk = cfg.number("disk_allocation_ratio", 1.0, 0.01, 100);
  cfg.reject_unknown_keys();
  if (!cfg.ok()) return sdk::invalid_argument(cfg.error());
  ratios_[sdk::kCpuMilli] = FixedRatio::of(cpu);
  ratios_[sdk::kMemoryMib] = FixedRatio::of(memory);
  ratios_[sdk::kDiskGib] = FixedRatio::of(disk);
  return Status::ok();
}

std::string ResourceFit::resource_text(const Amounts& node, const std::int64_t* requested, std::uint8_t code) const {
  if (code == kReservedExceedsCapacity) {
    for (std::uint32_t r = 0; r < sdk::kResourceCount; ++r) {
      if (checked(node, r) && node.reserved[r] > node.capacity[r]) {
        return std::string(kNames[r]) + ": " + amount(node.reserved[r], r) + " reserved exceeds the capacity of " +
               amount(node.capacity[r], r);
      }
    }
  }
  if (code >= kCpu && code <= kDisk) {
    const std::uint32_t r = code - kCpu;
    return std::string(kNames[r]) + ": needs " + amount(requested[r], r) + ", " +
           amount(std::max<std::int64_t>(room(node, r), 0), r) + " free (" + amount(node.capacity[r], r) + " x " +
           format_number(ratio(r), 6) + " - " + format_amount(node.reserved[r], r) + " reserved - " +
           format_amount(node.allocated[r], r) + " allocated)";
  }
  std::string text = "fits:";
  for (std::uint32_t r = 0; r < sdk::kResourceCount; ++r) {
    text += r == 0 ? " " : ", ";
    if (!checked(node, r)) {
      text += std::string(kNames[r]) + " not checked (capacity unknown)";
      continue;
    }
    text += std::string(kNames[r]) + " " + format_amount(requested[r], r) + " of " + amount(room(node, r), r) + " free";
  }
  return text;
}

Status ResourceFit::on_filter_rows(const PlacementQuery& q, const NodeColumns& c, std::span<const std::uint32_t> rows,
                                   std::span<std::uint8_t> reject) {
  // A driver no node has (the engine passes an index past driver_names): every row fails.
  if (q.driver >= 0 && static_cast<size_t>(q.driver) >= c.driver_names.size()) {
    std::fill(reject.begin(), reject.end(), kDriver);
    return Status::ok();
  }
  const std::uint32_t driver_mask = q.driver >= 0 ? 1u << static_cast<std::uint32_t>(q.driver) : 0u;
  const auto h = headroom(c);
  if (h) {
    filter_with_headroom(*h, q, c, driver_mask, rows, reject);
  } else {
    for (size_t i = 0; i < rows.size(); ++i) {
      const std::uint32_t row = rows[i];
      reject[i] = (c.driver_bits[row] & driver_mask) != driver_mask ? std::uint8_t{kDriver}
                                                                    : resource_code(amounts_of(c, row), q.resources);
    }
  }
  // Capabilities rank after the driver and before resources.
  if (q.unknown_capability || q.capabilities != 0) {
    for (size_t i = 0; i < rows.size(); ++i) {
      const std::uint32_t row = rows[i];
      if (reject[i] == kDriver) continue;
      if (q.unknown_capability ||
          !some_driver_has(c, row, driver_mask != 0 ? driver_mask : c.driver_bits[row], q.capabilities)) {
        reject[i] = kCapability;
      }
    }
  }
  return Status::ok();
}

// The hot loop of every placement (fit_kernel.h). The engine passes ascending distinct rows,
// so a list as long as the table is the table itself, read without the indirection.
void ResourceFit::filter_with_headroom(const Headroom& h, const PlacementQuery& q, const NodeColumns& c,
                                       std::uint32_t driver_mask, std::span<const std::uint32_t> rows,
                                       std::span<std::uint8_t> reject) {
  fit_kernel::Columns columns{};
  fit_kernel::Request request{};
  for (std::uint32_t r = 0; r < sdk::kResourceCount; ++r) {
    columns.usable[r] = h.usable[r].data();
    columns.allocated[r] = c.allocated[r];
    request.amount[r] = q.resources[r];
  }
  columns.misconfigured = h.misconfigured.data();
  columns.driver_bits = c.driver_bits;
  request.driver_mask = driver_mask;
  const size_t n = rows.size();
  if (n == h.rows && n > 0 && rows[0] == 0 && rows[n - 1] == n - 1) {
    fit_kernel::codes_of_all(columns, request, n, reject.data());
  } else {
    fit_kernel::codes_of_rows(columns, request, rows.data(), n, reject.data());
  }
}

std::shared_ptr<const ResourceFit::Headroom> ResourceFit::headroom(const NodeColumns& c) const {
  if (c.layout_epoch == 0) return nullptr;  // columns without an epoch: computed per row
  std::lock_guard<std::mutex> lock(headroom_mutex_);
  if (headroom_ && headroom_->epoch == c.layout_epoch && headroom_->rows == c.rows) return headroom_;
  auto h = std::make_shared<Headroom>();
  h->epoch = c.layout_epoch;
  h->rows = c.rows;
  h->misconfigured.assign(c.rows, 0);
  for (std::uint32_t r = 0; r < sdk::kResourceCount; ++r) h->usable[r].resize(c.rows);
  for (std::uint32_t row = 0; row < c.rows; ++row) {
    const Amounts a = amounts_of(c, row);
    for (std::uint32_t r = 0; r < sdk::kResourceCount; ++r) {
      if (!checked(a, r)) {
        h->usable[r][row] = kUnchecked;
        continue;
      }
      if (a.reserved[r] > a.capacity[r]) h->misconfigured[row] = 1;
      h->usable[r][row] = ratios_[r].limit(a.capacity[r]) - a.reserved[r];
    }
  }
  headroom_ = h;
  return h;
}

Status ResourceFit::on_explain_row(const PlacementQuery& q, const NodeColumns& c, std::uint32_t row,
                                   FilterVerdict& verdict, sdk::NodeScore& /*score*/) {
  std::uint8_t code = 0;
  const std::uint32_t one[] = {row};
  if (Status s = on_filter_rows(q, c, one, std::span<std::uint8_t>(&code, 1)); !s.is_ok()) return s;
  verdict.pass = code == kFits;
  if (code == kDriver) {
    verdict.reason = "driver " + driver_name(q, c) + " is not available on this node";
  } else if (code == kCapability) {
    verdict.reason = capability_text(q, c, row);
  } else {
    verdict.reason = resource_text(amounts_of(c, row), q.resources, code);
  }
  return Status::ok();
}

Status ResourceFit::on_filter(const PlacementRequest& request, std::span<const NodeCandidate> nodes,
                              std::span<FilterVerdict> out) {
  std::int64_t requested[sdk::kResourceCount];
  requested_of(request.resources, requested);
  for (size_t i = 0; i < nodes.size(); ++i) {
    const NodeCandidate& n = nodes[i];
    FilterVerdict& v = out[i];
    v = {};
    if (!request.driver.empty() && std::find(n.drivers.begin(), n.drivers.end(), request.driver) == n.drivers.end()) {
      v = {false, "driver " + request.driver + " is not available on this node"};
      continue;
    }
    for (const auto& cap : request.capabilities) {
      if (std::find(n.capabilities.begin(), n.capabilities.end(), cap) == n.capabilities.end()) {
        v = {false, "capability " + cap + " is not available on this node"};
        break;
      }
    }
    if (!v.pass) continue;
    const Amounts a = amounts_of(n);
    const std::uint8_t code = resource_code(a, requested);
    v = {code == kFits, resource_text(a, requested, code)};
  }
  return Status::ok();
}

}  // namespace novacron::policies
