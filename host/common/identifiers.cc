#include "host/common/identifiers.h"

#include <algorithm>

namespace novacron {

// Hand-written matchers instead of std::regex: they run several times per plugin load, and
// std::regex costs microseconds per match.

// ^[a-z0-9]+(\.[a-z0-9-]+)+$
bool is_valid_plugin_id(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  auto lower_digit = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  size_t segments = 0, seg_len = 0;
  for (size_t i = 0; i < id.size(); ++i) {
    char c = id[i];
    if (c == '.') {
      if (seg_len == 0) return false;
      ++segments;
      seg_len = 0;
    } else if (lower_digit(c) || (c == '-' && segments > 0)) {
      ++seg_len;
    } else {
      return false;
    }
  }
  return seg_len > 0 && segments >= 1;
}

// ^[0-9]+\.[0-9]+\.[0-9]+([-+][0-9A-Za-z.-]+)?$
bool is_valid_plugin_version(std::string_view version) {
  if (version.empty() || version.size() > 64) return false;
  size_t i = 0;
  for (int part = 0; part < 3; ++part) {
    size_t start = i;
    while (i < version.size() && version[i] >= '0' && version[i] <= '9') ++i;
    if (i == start) return false;
    if (part < 2) {
      if (i >= version.size() || version[i] != '.') return false;
      ++i;
    }
  }
  if (i == version.size()) return true;
  if (version[i] != '-' && version[i] != '+') return false;
  if (++i == version.size()) return false;
  for (; i < version.size(); ++i) {
    char c = version[i];
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '.' || c == '-')) {
      return false;
    }
  }
  return true;
}

// ^[A-Za-z0-9][A-Za-z0-9.-]{0,62}$
bool is_valid_node_name(std::string_view name) {
  auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); };
  if (name.empty() || name.size() > 63 || !alnum(name.front())) return false;
  return std::all_of(name.begin(), name.end(), [&](char c) { return alnum(c) || c == '.' || c == '-'; });
}

}  // namespace novacron
