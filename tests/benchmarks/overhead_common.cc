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

void ApiRunner::run_once(const json& spec, int n, Series& up, Series& down) {
  json s = spec;
  s["name"] = "api-" + std::to_string(n);
  s["start"] = true;
  auto t0 = Clock::now();
  auto r = impl_->client->request("POST", "/v1/vms?wait=120", s.dump(), impl_->auth);
  if (!r || r->status != 201) die("api create: " + (r ? r->body : r.error().message));
  up.values.push_back(ms_since(t0));
  std::string id = json::parse(r->body)["vm"]["id"];
  t0 = Clock::now();
  r = impl_->client->request("DELETE", "/v1/vms/" + id + "?wait=120", "", impl_->auth);
  if (!r || r->status != 200) die("api delete: " + (r ? r->body : r.error().message));
  down.values.push_back(ms_since(t0));
}

void print_overhead(const std::string& direct_name, int count, const Series& direct_up, const Series& direct_down,
                    const Series& api_up, const Series& api_down) {
  std::printf("%d runs each; ms: median (p90)\n", count);
  std::printf("%-22s %18s %18s %18s %10s\n", "operation", direct_name.c_str(), "through the API", "NovaCron adds",
              "ratio");
  auto row = [](const char* name, const Series& d, const Series& a) {
    double dm = d.pct(0.5), am = a.pct(0.5);
    std::printf("%-22s %10.2f (%5.2f) %10.2f (%5.2f) %12.2f ms %9.1f%%\n", name, dm, d.pct(0.9), am, a.pct(0.9),
                am - dm, dm > 0 ? (am - dm) / dm * 100 : 0.0);
  };
  row("create+start", direct_up, api_up);
  row("stop+delete", direct_down, api_down);
}

}  // namespace novacron::bench
