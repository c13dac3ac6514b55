// Human and machine output for the CLI: tables for lists, one-line errors with a hint,
// and --json everywhere.
#pragma once

#include <iostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace novacron::cli {

struct Output {
  bool json = false;

  // Prints `value` as JSON (--json) and returns `code`.
  int emit_json(const nlohmann::json& value, int code = 0) const {
    std::cout << value.dump(2) << "\n";
    return code;
  }

  // One-line error plus an optional hint; with --json an {"error": {...}} object on stdout.
  int error(const std::string& code, const std::string& message, const std::string& hint = "",
            int exit_code = 1) const {
    if (json) {
      nlohmann::json e = {{"code", code}, {"message", message}};
      if (!hint.empty()) e["hint"] = hint;
      return emit_json({{"error", e}}, exit_code);
    }
    std::cerr << "error: " << message << "\n";
    if (!hint.empty()) std::cerr << "hint: " << hint << "\n";
    return exit_code;
  }
};

// Prints rows as an aligned table with a header row.
inline void print_table(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width(header.size());
  for (size_t i = 0; i < header.size(); ++i) width[i] = header[i].size();
  for (const auto& r : rows) {
    for (size_t i = 0; i < r.size() && i < width.size(); ++i) width[i] = std::max(width[i], r[i].size());
  }
  auto line = [&](const std::vector<std::string>& r) {
    for (size_t i = 0; i < header.size(); ++i) {
      std::string cell = i < r.size() ? r[i] : "";
      std::cout << cell;
      if (i + 1 < header.size()) std::cout << std::string(width[i] - cell.size() + 2, ' ');
    }
    std::cout << "\n";
  };
  line(header);
  for (const auto& r : rows) line(r);
}

}  // namespace novacron::cli
