#include "host/api/router.h"

#include <algorithm>
#include <cctype>
#include <string_view>

namespace novacron {
namespace {

// Splits on `sep`, skipping empty parts. No streams: this runs for every request.
std::vector<std::string_view> split(std::string_view text, char sep) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find(sep, start);
    if (end == std::string_view::npos) end = text.size();
    if (end > start) parts.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return parts;
}

std::vector<std::string_view> split_path(std::string_view path) { return split(path, '/'); }

bool match_pattern(const std::string& pattern, const std::string& path, std::map<std::string, std::string>& params) {
  auto p = split_path(pattern);
  auto s = split_path(path);
  if (p.size() != s.size()) return false;
  std::map<std::string, std::string> found;
  for (size_t i = 0; i < p.size(); ++i) {
    if (p[i].size() > 2 && p[i].front() == '{' && p[i].back() == '}') {
      found[std::string(p[i].substr(1, p[i].size() - 2))] = std::string(s[i]);
    } else if (p[i] != s[i]) {
      return false;
    }
  }
  params = std::move(found);
  return true;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool percent_decode(std::string_view in, std::string& out) {
  out.clear();
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '+') {
      out += ' ';
    } else if (in[i] == '%') {
      if (i + 2 >= in.size()) return false;
      int hi = hex_value(in[i + 1]);
      int lo = hex_value(in[i + 2]);
      if (hi < 0 || lo < 0) return false;
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else {
      out += in[i];
    }
  }
  return true;
}

}  // namespace

bool parse_query(const std::string& query, std::map<std::string, std::string>& out) {
  for (std::string_view pair : split(query, '&')) {
    auto eq = pair.find('=');
    std::string key, value;
    if (!percent_decode(pair.substr(0, eq), key)) return false;
    if (eq != std::string::npos && !percent_decode(pair.substr(eq + 1), value)) return false;
    out[key] = value;
  }
  return true;
}

void Router::add(Route route) { routes_.push_back(std::move(route)); }

Router::Match Router::match(const std::string& method, const std::string& path) const {
  Match m;
  for (const Route& r : routes_) {
    std::map<std::string, std::string> params;
    if (!match_pattern(r.pattern, path, params)) continue;
    if (r.method == method) {
      m.route = &r;
      m.params = std::move(params);
      return m;
    }
    m.allowed_methods.push_back(r.method);
  }
  return m;
}

nlohmann::json Router::openapi(const std::string& version) const {
  using nlohmann::json;
  json paths = json::object();
  for (const Route& r : routes_) {
    json op = {{"summary", r.summary}, {"operationId", r.method + " " + r.pattern}};
    json parameters = json::array();
    for (const auto& part : split_path(r.pattern)) {
      if (part.size() > 2 && part.front() == '{') {
        parameters.push_back({{"name", std::string(part.substr(1, part.size() - 2))},
                              {"in", "path"},
                              {"required", true},
                              {"schema", {{"type", "string"}}}});
      }
    }
    auto add_query = [&](const QueryParam& q) {
      parameters.push_back(
          {{"name", q.name}, {"in", "query"}, {"description", q.description}, {"schema", {{"type", q.type}}}});
    };
    if (r.paginated) {
      add_query({"limit", "integer", "Items per page, 1 to 1000 (default 100)"});
      add_query({"cursor", "string", "Opaque cursor from the previous page's next_cursor"});
    }
    for (const auto& q : r.query) add_query(q);
    if (!parameters.empty()) op["parameters"] = parameters;
    op["security"] = r.access == Access::kPublic ? json::array() : json::array({{{"bearer", json::array()}}});
    if (r.access == Access::kAdmin) op["description"] = "Requires the admin role.";
    if (r.access == Access::kNode) op["description"] = "Cluster peers (node certificates) and admins only.";
    op["responses"]["200"] = {{"description", "OK"}};
    op["responses"]["default"] = {
        {"description", "Error"},
        {"content", {{"application/json", {{"schema", {{"$ref", "#/components/schemas/Error"}}}}}}}};
    std::string method = r.method;
    std::transform(method.begin(), method.end(), method.begin(), [](unsigned char c) { return std::tolower(c); });
    paths[r.pattern][method] = op;
  }
  return {{"openapi", "3.0.3"},
          {"info", {{"title", "NovaCron host API"}, {"version", version}}},
          {"paths", paths},
          {"components",
           {{"securitySchemes", {{"bearer", {{"type", "http"}, {"scheme", "bearer"}}}}},
            {"schemas",
             {{"Error",
               {{"type", "object"},
                {"properties",
                 {{"error",
                   {{"type", "object"},
                    {"properties",
                     {{"code", {{"type", "string"}}},
                      {"message", {{"type", "string"}}},
                      {"request_id", {{"type", "string"}}}}}}}}}}}}}}}};
}

}  // namespace novacron
