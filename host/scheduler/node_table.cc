#include "host/scheduler/node_table.h"

#include <algorithm>
#include <atomic>
#include <bit>

namespace novacron::scheduler {

namespace {

// The index of `name` in `names`, added when new; nullopt past `limit` names.
std::optional<std::uint32_t> intern(std::vector<std::string>& names, const std::string& name, size_t limit) {
  const auto it = std::find(names.begin(), names.end(), name);
  if (it != names.end()) return static_cast<std::uint32_t>(it - names.begin());
  if (names.size() == limit) return std::nullopt;
  names.push_back(name);
  return static_cast<std::uint32_t>(names.size() - 1);
}

}  // namespace

std::uint64_t NodeTable::next_epoch() {
  static std::atomic<std::uint64_t> epoch{0};
  return ++epoch;
}

std::optional<NodeTable> NodeTable::build(const std::vector<NodeView>& nodes, std::string& error) {
  NodeTable t;
  t.layout_epoch_ = next_epoch();
  const size_t n = nodes.size();
  t.names_.reserve(n);
  t.states_.reserve(n);
  for (size_t r = 0; r < kResources; ++r) {
    t.capacity_[r].resize(n);
    t.reserved_[r].resize(n);
    t.allocated_[r].resize(n);
    t.inv_usable_[r].resize(n);
  }
  t.driver_bits_.assign(n, 0);
  for (size_t r = 0; r < kResources; ++r) {
    t.predicted_mean_[r].resize(n);
    t.predicted_p95_[r].resize(n);
  }
  t.class_counts_.assign(n * sdk::kWorkloadClassCount, 0);
  t.driver_caps_.assign(n * kMaxDrivers, 0);
  for (size_t row = 0; row < n; ++row) {
    const NodeView& v = nodes[row];
    if (!t.row_by_name_.emplace(v.name, static_cast<std::uint32_t>(row)).second) {
      error = "node '" + v.name + "' is listed twice";
      return std::nullopt;
    }
    t.names_.push_back(v.name);
    std::uint64_t h = 1469598103934665603ULL;  // FNV-1a
    for (const char c : v.name) {
      h ^= static_cast<unsigned char>(c);
      h *= 1099511628211ULL;
    }
    t.name_hashes_.push_back(h);
    t.states_.push_back(v.state);
    for (size_t c = 0; c < sdk::kWorkloadClassCount; ++c) {
      t.class_counts_[row * sdk::kWorkloadClassCount + c] = v.class_counts[c];
    }
    for (size_t r = 0; r < kResources; ++r) {
      t.predicted_mean_[r][row] = v.predicted_mean[r];
      t.predicted_p95_[r][row] = v.predicted_p95[r];
      t.capacity_[r][row] = v.capacity[r];
      t.reserved_[r][row] = v.reserved[r];
      t.allocated_[r][row] = v.allocated[r];
      const std::int64_t usable = v.capacity[r] - v.reserved[r];
      t.inv_usable_[r][row] = usable > 0 ? 1.0 / static_cast<double>(usable) : 0.0;
    }
    for (const auto& [key, value] : v.labels) {
      auto& column = t.labels_[key];
      column.resize(n, 0);
      auto [it, added] = t.label_value_ids_.emplace(value, static_cast<std::uint32_t>(t.label_values_.size()));
      if (added) t.label_values_.push_back(value);
      column[row] = it->second;
    }
    for (const DriverView& d : v.drivers) {
      const auto driver = intern(t.driver_names_, d.name, kMaxDrivers);
      if (!driver) {
        error = "more than " + std::to_string(kMaxDrivers) + " distinct drivers across the nodes";
        return std::nullopt;
      }
      t.driver_bits_[row] |= 1u << *driver;
      for (const auto& c : d.capabilities) {
        const auto cap = intern(t.capability_names_, c, kMaxCapabilities);
        if (!cap) {
          error = "more than " + std::to_string(kMaxCapabilities) + " distinct capabilities across the nodes";
          return std::nullopt;
        }
        t.driver_caps_[row * kMaxDrivers + *driver] |= 1u << *cap;
      }
    }
  }
  t.build_views();
  t.build_buckets();
  for (std::uint32_t row = 0; row < n; ++row) {
    (t.states_[row] == NodeState::kReady ? t.ready_rows_ : t.not_ready_rows_).push_back(row);
  }
  t.by_hash_.resize(n);
  for (std::uint32_t row = 0; row < n; ++row) t.by_hash_[row] = row;
  std::sort(t.by_hash_.begin(), t.by_hash_.end(), [&t](std::uint32_t a, std::uint32_t b) {
    return t.name_hashes_[a] != t.name_hashes_[b] ? t.name_hashes_[a] < t.name_hashes_[b] : t.names_[a] < t.names_[b];
  });
  return t;
}

int NodeTable::bucket_of(std::uint32_t row) const {
  double share = 0;
  bool usable = false;
  for (size_t r = 0; r < 2; ++r) {  // cpu and memory: what packing is about
    if (inv_usable_[r][row] <= 0) continue;
    usable = true;
    share = std::max(share, static_cast<double>(allocated_[r][row]) * inv_usable_[r][row]);
  }
  if (!usable) return kFillBuckets - 1;
  return std::clamp(static_cast<int>(share * kFillBuckets), 0, kFillBuckets - 1);
}

void NodeTable::build_buckets() {
  for (auto& b : bucket_rows_) b.clear();
  filled_buckets_.fill(0);
  row_bucket_.assign(names_.size(), 0);
  bucket_pos_.assign(names_.size(), 0);
  for (std::uint32_t row = 0; row < names_.size(); ++row) {
    const int b = bucket_of(row);
    row_bucket_[row] = static_cast<std::uint16_t>(b);
    bucket_pos_[row] = static_cast<std::uint32_t>(bucket_rows_[b].size());
    bucket_rows_[b].push_back(row);
    filled_buckets_[b / 64] |= std::uint64_t{1} << (b % 64);
  }
}

int NodeTable::next_filled_bucket(int from, bool upwards) const {
  if (from < 0 || from >= kFillBuckets) return -1;
  int word = from / 64;
  const int bit = from % 64;
  if (upwards) {
    std::uint64_t bits = filled_buckets_[word] & (~std::uint64_t{0} << bit);
    while (bits == 0) {
      if (++word == kFillBuckets / 64) return -1;
      bits = filled_buckets_[word];
    }
    return word * 64 + std::countr_zero(bits);
  }
  std::uint64_t bits = filled_buckets_[word] & (~std::uint64_t{0} >> (63 - bit));
  while (bits == 0) {
    if (--word < 0) return -1;
    bits = filled_buckets_[word];
  }
  return word * 64 + 63 - std::countl_zero(bits);
}

void NodeTable::rebucket(std::uint32_t row) {
  const int to = bucket_of(row);
  const int from = row_bucket_[row];
  if (to == from) return;
  auto& old_rows = bucket_rows_[from];
  const std::uint32_t pos = bucket_pos_[row];
  old_rows[pos] = old_rows.back();  // swap-remove
  bucket_pos_[old_rows[pos]] = pos;
  old_rows.pop_back();
  if (old_rows.empty()) filled_buckets_[from / 64] &= ~(std::uint64_t{1} << (from % 64));
  bucket_pos_[row] = static_cast<std::uint32_t>(bucket_rows_[to].size());
  bucket_rows_[to].push_back(row);
  filled_buckets_[to / 64] |= std::uint64_t{1} << (to % 64);
  row_bucket_[row] = static_cast<std::uint16_t>(to);
}

void NodeTable::build_views() {
  name_views_.assign(names_.begin(), names_.end());
  label_columns_.clear();
  for (const auto& [key, column] : labels_) label_columns_.push_back({key, column.data()});
}

NodeTable NodeTable::clone() const {
  NodeTable t;
  t.layout_epoch_ = layout_epoch_;
  t.names_ = names_;
  t.name_hashes_ = name_hashes_;
  t.row_by_name_ = row_by_name_;
  t.states_ = states_;
  t.ready_rows_ = ready_rows_;
  t.not_ready_rows_ = not_ready_rows_;
  t.capacity_ = capacity_;
  t.reserved_ = reserved_;
  t.allocated_ = allocated_;
  t.inv_usable_ = inv_usable_;
  t.bucket_rows_ = bucket_rows_;
  t.filled_buckets_ = filled_buckets_;
  t.row_bucket_ = row_bucket_;
  t.bucket_pos_ = bucket_pos_;
  t.by_hash_ = by_hash_;
  t.labels_ = labels_;
  t.label_values_ = label_values_;
  t.label_value_ids_ = label_value_ids_;
  t.driver_bits_ = driver_bits_;
  t.driver_caps_ = driver_caps_;
  t.driver_names_ = driver_names_;
  t.capability_names_ = capability_names_;
  t.predicted_mean_ = predicted_mean_;
  t.predicted_p95_ = predicted_p95_;
  t.class_counts_ = class_counts_;
  t.build_views();
  return t;
}

sdk::NodeColumns NodeTable::columns() const {
  sdk::NodeColumns c;
  c.rows = static_cast<std::uint32_t>(names_.size());
  c.layout_epoch = layout_epoch_;
  c.names = name_views_.data();
  for (size_t r = 0; r < kResources; ++r) {
    c.capacity[r] = capacity_[r].data();
    c.reserved[r] = reserved_[r].data();
    c.allocated[r] = allocated_[r].data();
    c.predicted_mean[r] = predicted_mean_[r].data();
    c.predicted_p95[r] = predicted_p95_[r].data();
  }
  c.class_counts = class_counts_.data();
  c.driver_bits = driver_bits_.data();
  c.driver_caps = driver_caps_.data();
  c.driver_caps_stride = kMaxDrivers;
  c.driver_names = driver_names_;
  c.capability_names = capability_names_;
  c.label_values = label_values_;
  c.labels = label_columns_;
  return c;
}

std::optional<std::uint32_t> NodeTable::row_of(std::string_view name) const {
  const auto it = row_by_name_.find(std::string(name));
  if (it == row_by_name_.end()) return std::nullopt;
  return it->second;
}

const std::vector<std::uint32_t>* NodeTable::label_column(std::string_view key) const {
  const auto it = labels_.find(key);
  return it == labels_.end() ? nullptr : &it->second;
}

std::optional<std::string_view> NodeTable::label(std::uint32_t row, std::string_view key) const {
  const auto* column = label_column(key);
  if (column == nullptr || (*column)[row] == 0) return std::nullopt;
  return std::string_view(label_values_[(*column)[row]]);
}

std::uint32_t NodeTable::label_value_id(std::string_view value) const {
  const auto it = label_value_ids_.find(std::string(value));
  return it == label_value_ids_.end() ? 0 : it->second;
}

std::optional<std::uint32_t> NodeTable::driver_index(std::string_view driver) const {
  const auto it = std::find(driver_names_.begin(), driver_names_.end(), driver);
  if (it == driver_names_.end()) return std::nullopt;
  return static_cast<std::uint32_t>(it - driver_names_.begin());
}

std::optional<std::uint32_t> NodeTable::capability_index(std::string_view capability) const {
  const auto it = std::find(capability_names_.begin(), capability_names_.end(), capability);
  if (it == capability_names_.end()) return std::nullopt;
  return static_cast<std::uint32_t>(it - capability_names_.begin());
}

void NodeTable::commit(std::uint32_t row, const ResourceVector& amount) {
  for (size_t r = 0; r < kResources; ++r) allocated_[r][row] += amount[r];
  rebucket(row);
}

void NodeTable::release(std::uint32_t row, const ResourceVector& amount) {
  for (size_t r = 0; r < kResources; ++r) {
    allocated_[r][row] = std::max<std::int64_t>(0, allocated_[r][row] - amount[r]);
  }
  rebucket(row);
}

}  // namespace novacron::scheduler
