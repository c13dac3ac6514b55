// Shared by the per-operation overhead benchmarks (vm_overhead_benchmark for libvirt,
// lxc_overhead_benchmark for liblxc): timing series, the API half of the comparison and
// the report table.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace novacron::bench {

using Clock = std::chrono::steady_clock;

inline double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

struct Series {
  std::vector<double> values;
  double pct(double p) const;
};

[[noreturn]] void die(const std::string& what);

// "--key value" pairs; dies naming the first of `required` that is missing.
std::map<std::string, std::string> parse_args(int argc, char** argv, const std::vector<std::string>& required);
nlohmann::json read_json_file(const std::string& path);

// create+start (POST /v1/vms?wait) and stop+delete (DELETE /v1/vms/{id}?wait) of one VM
// named api-N from `spec`, through the API at `url`. The benchmarks alternate it with the
// direct calls, so that drifting load on the machine hits both sides alike.
class ApiRunner {
 public:
  ApiRunner(const std::string& url, const std::string& token);
  ~ApiRunner();
  void run_once(const nlohmann::json& spec, int n, Series& up, Series& down);
  // The same with create (start: false) and start timed apart.
  void run_split(const nlohmann::json& spec, int n, Series& create, Series& start, Series& down);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Medians, p90s and what NovaCron adds, for one direct tool against the API: one row per
// operation, {name, direct series, API series}.
struct OverheadRow {
  const char* operation;
  const Series& direct;
  const Series& api;
};
void print_overhead(const std::string& direct_name, int count, const std::vector<OverheadRow>& rows);

}  // namespace novacron::bench
