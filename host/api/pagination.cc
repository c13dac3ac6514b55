#include "host/api/pagination.h"

#include <openssl/evp.h>

#include <charconv>

namespace novacron {
namespace {

constexpr std::size_t kMaxLimit = 1000;
constexpr const char* kCursorPrefix = "c1:";  // versioned, so the format can change later

std::string base64url(const std::string& raw) {
  std::string out(4 * ((raw.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(raw.data()), static_cast<int>(raw.size()));
  out.resize(static_cast<std::size_t>(n));
  for (char& c : out) {
    if (c == '+') c = '-';
    if (c == '/') c = '_';
  }
  while (!out.empty() && out.back() == '=') out.pop_back();
  return out;
}

std::optional<std::string> unbase64url(std::string text) {
  if (text.size() > 4096) return std::nullopt;
  for (char& c : text) {
    if (c == '-')
      c = '+';
    else if (c == '_')
      c = '/';
    else if (!std::isalnum(static_cast<unsigned char>(c)))
      return std::nullopt;
  }
  std::size_t padding = (4 - text.size() % 4) % 4;
  if (padding == 3) return std::nullopt;
  text.append(padding, '=');
  std::string out(text.size() / 4 * 3, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(text.data()), static_cast<int>(text.size()));
  if (n < 0) return std::nullopt;
  out.resize(static_cast<std::size_t>(n) - padding);
  return out;
}

}  // namespace

Expected<PageRequest> parse_page_request(const std::map<std::string, std::string>& query) {
  PageRequest page;
  if (auto it = query.find("limit"); it != query.end()) {
    std::size_t value = 0;
    auto [ptr, ec] = std::from_chars(it->second.data(), it->second.data() + it->second.size(), value);
    if (ec != std::errc() || ptr != it->second.data() + it->second.size() || value == 0 || value > kMaxLimit) {
      return make_error("invalid_parameter", "limit: expected an integer from 1 to " + std::to_string(kMaxLimit) +
                                                 ", got \"" + it->second + "\"");
    }
    page.limit = value;
  }
  if (auto it = query.find("cursor"); it != query.end() && !it->second.empty()) {
    auto decoded = unbase64url(it->second);
    if (!decoded || decoded->rfind(kCursorPrefix, 0) != 0) {
      return make_error("invalid_parameter", "cursor: not a cursor returned by this API (pass next_cursor as is)");
    }
    page.after = decoded->substr(std::char_traits<char>::length(kCursorPrefix));
  }
  return page;
}

std::string encode_cursor(const std::string& last_key) { return base64url(kCursorPrefix + last_key); }

}  // namespace novacron
