#include "overhead_common.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>

#include "host/api/http_client.h"

namespace novacron::bench {

using nlohmann::json;

double Series::pct(double p) const {
  std::vector<double> v = values;
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))];
}

void die(const std::string& what) {
  std::cerr << "benchmark: " << what << "\n";
  std::exit(1);
}

std::map<std::string, std::string> parse_args(int argc, char** argv, const std::vector<std::string>& required) {
  std::map<std::string, std::string> args;
  for (int i = 1; i + 1 < argc; i += 2) args[argv[i]] = argv[i + 1];
  for (const auto& k : required) {
    if (args.count(k) == 0) die("missing " + k);
  }
  return args;
}

json read_json_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  json j = json::parse(ss.str(), nullptr, false);
  if (j.is_discarded()) die(path + " is not JSON");
  return j;
}

struct ApiRunner::Impl {
  std::optional<HttpClient> client;
  std::vector<std::pair<std::string, std::string>> auth;
};

ApiRunner::ApiRunner(const std::string& url, const std::string& token) : impl_(std::make_unique<Impl>()) {
  HttpClientOptions o;
  o.base_url = url;
  o.timeout = std::chrono::seconds(120);
  auto client = HttpClient::create(o);
  if (!client) die(client.error().message);
  impl_->client.emplace(std::move(*client));
  impl_->auth = {{"Authorization", "Bearer " + token}};
}

ApiRunner::~ApiRunner() = default;

namespace {

// POST /v1/vms?wait; returns the new VM's id.
std::string api_create(HttpClient& client, const std::vector<std::pair<std::string, std::string>>& auth,
                       const json& spec) {
  auto r = client.request("POST", "/v1/vms?wait=120", spec.dump(), auth);
  if (!r || r->status != 201) die("api create: " + (r ? r->body : r.error().message));
  return json::parse(r->body)["vm"]["id"];
}

void api_call(HttpClient& client, const std::vector<std::pair<std::string, std::string>>& auth,
              const std::string& method, const std::string& target) {
  auto r = client.request(method, target, "", auth);
  if (!r || r->status != 200) die("api " + method + " " + target + ": " + (r ? r->body : r.error().message));
}

}  // namespace

void ApiRunner::run_once(const json& spec, int n, Series& up, Series& down) {
  json s = spec;
  s["name"] = "api-" + std::to_string(n);
  s["start"] = true;
  auto t0 = Clock::now();
  std::string id = api_create(*impl_->client, impl_->auth, s);
  up.values.push_back(ms_since(t0));
  t0 = Clock::now();
  api_call(*impl_->client, impl_->auth, "DELETE", "/v1/vms/" + id + "?wait=120");
  down.values.push_back(ms_since(t0));
}

void ApiRunner::run_split(const json& spec, int n, Series& create, Series& start, Series& down) {
  json s = spec;
  s["name"] = "api-" + std::to_string(n);
  s["start"] = false;
  auto t0 = Clock::now();
  std::string id = api_create(*impl_->client, impl_->auth, s);
  create.values.push_back(ms_since(t0));
  t0 = Clock::now();
  api_call(*impl_->client, impl_->auth, "POST", "/v1/vms/" + id + "/start?wait=120");
  start.values.push_back(ms_since(t0));
  t0 = Clock::now();
  api_call(*impl_->client, impl_->auth, "DELETE", "/v1/vms/" + id + "?wait=120");
  down.values.push_back(ms_since(t0));
}

void print_overhead(const std::string& direct_name, int count, const std::vector<OverheadRow>& rows) {
  std::printf("%d runs each; ms: median (p90)\n", count);
  std::printf("%-22s %18s %18s %18s %10s\n", "operation", direct_name.c_str(), "through the API", "NovaCron adds",
              "ratio");
  for (const auto& row : rows) {
    double dm = row.direct.pct(0.5), am = row.api.pct(0.5);
    std::printf("%-22s %10.2f (%5.2f) %10.2f (%5.2f) %12.2f ms %9.1f%%\n", row.operation, dm, row.direct.pct(0.9), am,
                row.api.pct(0.9), am - dm, dm > 0 ? (am - dm) / dm * 100 : 0.0);
  }
}

}  // namespace novacron::bench
