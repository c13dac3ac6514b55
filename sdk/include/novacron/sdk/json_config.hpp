// Header-only helper for reading a plugin's JSON config with nlohmann/json, on the plugin's
// own side of the boundary (config reaches a plugin as JSON text; no nlohmann type crosses).
// Needs nlohmann/json (Debian: nlohmann-json3-dev); the rest of the SDK does not.
//
//   novacron::sdk::ConfigReader cfg(config_json);
//   double ratio = cfg.number("cpu_allocation_ratio", 1.0, /*min=*/0.1, /*max=*/64);
//   bool strict = cfg.boolean("strict", false);
//   cfg.reject_unknown_keys();
//   if (!cfg.ok()) return novacron::sdk::invalid_argument(cfg.error());
//
// Errors name the JSON path of the offending value, e.g. "/cpu_allocation_ratio: expected a
// number between 0.1 and 64, got -1".
#pragma once

#include <algorithm>
#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "novacron/sdk/status.hpp"

namespace novacron::sdk {

class ConfigReader {
 public:
  explicit ConfigReader(std::string_view config_json, std::string base_path = "") : base_(std::move(base_path)) {
    root_ = nlohmann::json::parse(config_json, nullptr, /*allow_exceptions=*/false,
                                  /*ignore_comments=*/true);
    if (root_.is_discarded()) {
      fail(base_.empty() ? "/" : base_, "config is not valid JSON");
      root_ = nlohmann::json::object();
    } else if (!root_.is_object()) {
      fail(base_.empty() ? "/" : base_, "expected a JSON object, got " + type_name(root_));
      root_ = nlohmann::json::object();
    }
  }

  bool ok() const { return error_.empty(); }
  // All errors found so far, "; "-separated.
  const std::string& error() const { return error_; }
  const nlohmann::json& root() const { return root_; }

  double number(const std::string& key, double fallback, double min = -1e300, double max = 1e300) {
    const nlohmann::json* v = find(key);
    if (v == nullptr) return fallback;
    if (!v->is_number() || v->get<double>() < min || v->get<double>() > max) {
      fail(path(key), "expected a number between " + fmt_num(min) + " and " + fmt_num(max) + ", got " + v->dump());
      return fallback;
    }
    return v->get<double>();
  }

  std::int64_t integer(const std::string& key, std::int64_t fallback, std::int64_t min = INT64_MIN,
                       std::int64_t max = INT64_MAX) {
    const nlohmann::json* v = find(key);
    if (v == nullptr) return fallback;
    if (!v->is_number_integer() || v->get<std::int64_t>() < min || v->get<std::int64_t>() > max) {
      fail(path(key),
           "expected an integer between " + std::to_string(min) + " and " + std::to_string(max) + ", got " + v->dump());
      return fallback;
    }
    return v->get<std::int64_t>();
  }

  bool boolean(const std::string& key, bool fallback) {
    const nlohmann::json* v = find(key);
    if (v == nullptr) return fallback;
    if (!v->is_boolean()) {
      fail(path(key), "expected true or false, got " + v->dump());
      return fallback;
    }
    return v->get<bool>();
  }

  std::string string(const std::string& key, const std::string& fallback,
                     const std::vector<std::string>& allowed = {}) {
    const nlohmann::json* v = find(key);
    if (v == nullptr) return fallback;
    if (!v->is_string()) {
      fail(path(key), "expected a string, got " + v->dump());
      return fallback;
    }
    std::string s = v->get<std::string>();
    if (!allowed.empty() && std::find(allowed.begin(), allowed.end(), s) == allowed.end()) {
      std::string list;
      for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + ("\"" + a + "\"");
      fail(path(key), "expected one of " + list + ", got \"" + s + "\"");
      return fallback;
    }
    return s;
  }

  // Records an error for keys that were never asked for: catches typos in configs.
  void reject_unknown_keys() {
    for (const auto& [key, value] : root_.items()) {
      if (seen_.count(key) == 0) fail(path(key), "unknown key");
    }
  }

  void fail(const std::string& where, const std::string& what) {
    if (!error_.empty()) error_ += "; ";
    error_ += where + ": " + what;
  }

  std::string path(const std::string& key) const { return base_ + "/" + key; }

 private:
  const nlohmann::json* find(const std::string& key) {
    seen_.insert(key);
    auto it = root_.find(key);
    return it == root_.end() ? nullptr : &*it;
  }
  static std::string type_name(const nlohmann::json& v) { return v.type_name(); }
  static std::string fmt_num(double d) {
    std::string s = std::to_string(d);
    while (!s.empty() && s.back() == '0') s.pop_back();
    if (!s.empty() && s.back() == '.') s.pop_back();
    return s;
  }

  nlohmann::json root_;
  std::string base_;
  std::string error_;
  std::set<std::string> seen_;
};

}  // namespace novacron::sdk
