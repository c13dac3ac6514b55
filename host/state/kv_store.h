#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "host/state/database.h"

namespace novacron {

// Namespaced key-value records in the state store (HostServices::kv_* for plugins).
class KvStore {
 public:
  // Keys and values are capped so that one plugin cannot bloat the state store by accident.
  static constexpr size_t kMaxKeyBytes = 1024;
  static constexpr size_t kMaxValueBytes = 1 << 20;

  explicit KvStore(Database& db) : db_(db) {}

  Expected<std::optional<std::string>> get(std::string_view ns, std::string_view key);
  Expected<void> put(std::string_view ns, std::string_view key, std::string_view value);
  Expected<void> remove(std::string_view ns, std::string_view key);
  Expected<std::vector<std::string>> list(std::string_view ns, std::string_view prefix);

 private:
  Database& db_;
};

}  // namespace novacron
