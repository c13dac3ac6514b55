// NovaCron's overhead per VM operation: the same create+start and stop+delete done
//   (1) directly with libvirt's C API (define, create; destroy, undefine), and
//   (2) through novacrond's REST API (POST /v1/vms?wait, DELETE /v1/vms/{id}?wait),
// in the same run, against the same kind of hypervisor, with the same domain XML. Prints
// medians, p90 and the difference per operation. Driven by scripts/bench-vm-ops.sh.
//
// Usage: vm_overhead_benchmark --url URL --token TOKEN --libvirt URI --domain-type TYPE
//          --spec SPEC.json --image-root DIR [--count N]
// SPEC.json is the API's VM spec (without name; paths relative to DIR); the direct run
// builds its XML from the same spec with the kvm driver's own domain_xml().
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "domain_xml.h"
#include "host/api/http_client.h"
#include "host/vms/vm_spec.h"

namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }

struct Series {
  std::vector<double> values;
  double pct(double p) const {
    std::vector<double> v = values;
    std::sort(v.begin(), v.end());
    return v.empty() ? 0 : v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))];
  }
};

[[noreturn]] void die(const std::string& what) {
  std::cerr << "vm_overhead_benchmark: " << what << "\n";
  std::exit(1);
}

}  // namespace

int main(int argc, char** argv) {
  std::map<std::string, std::string> args;
  for (int i = 1; i + 1 < argc; i += 2) args[argv[i]] = argv[i + 1];
  for (const char* k : {"--url", "--token", "--libvirt", "--domain-type", "--spec", "--image-root"}) {
    if (args.count(k) == 0) die(std::string("missing ") + k);
  }
  const int count = args.count("--count") ? std::stoi(args["--count"]) : 20;
  std::ifstream in(args["--spec"]);
  std::stringstream ss;
  ss << in.rdbuf();
  json spec = json::parse(ss.str());

  // (1) Direct libvirt calls.
  virSetErrorFunc(nullptr, [](void*, virErrorPtr) {});
  virConnectPtr conn = virConnectOpen(args["--libvirt"].c_str());
  if (conn == nullptr) die("cannot connect to " + args["--libvirt"]);
  Series direct_up, direct_down, api_up, api_down;
  const std::string dir = "/tmp/novacron-bench-direct";
  for (int i = 0; i < count; ++i) {
    json s = spec;
    s["name"] = "direct-" + std::to_string(i);
    auto req = novacron::parse_vm_spec(s, novacron::new_uuid(), dir, args["--image-root"]);
    if (!req) die(req.error().message);
    std::string xml = novacron::kvm::domain_xml(req->spec, args["--domain-type"]);
    auto t0 = Clock::now();
    virDomainPtr dom = virDomainDefineXML(conn, xml.c_str());
    if (dom == nullptr || virDomainCreate(dom) < 0) die(std::string("direct create: ") + virGetLastErrorMessage());
    direct_up.values.push_back(ms_since(t0));
    t0 = Clock::now();
    if (virDomainDestroy(dom) < 0 || virDomainUndefine(dom) < 0) die("direct delete failed");
    direct_down.values.push_back(ms_since(t0));
    virDomainFree(dom);
  }
  virConnectClose(conn);

  // (2) The same through the API.
  novacron::HttpClientOptions o;
  o.base_url = args["--url"];
  o.timeout = std::chrono::seconds(120);
  auto client = novacron::HttpClient::create(o);
  if (!client) die(client.error().message);
  const std::vector<std::pair<std::string, std::string>> auth = {{"Authorization", "Bearer " + args["--token"]}};
  for (int i = 0; i < count; ++i) {
    json s = spec;
    s["name"] = "api-" + std::to_string(i);
    s["start"] = true;
    auto t0 = Clock::now();
    auto r = client->request("POST", "/v1/vms?wait=120", s.dump(), auth);
    if (!r || r->status != 201) die("api create: " + (r ? r->body : r.error().message));
    api_up.values.push_back(ms_since(t0));
    std::string id = json::parse(r->body)["vm"]["id"];
    t0 = Clock::now();
    r = client->request("DELETE", "/v1/vms/" + id + "?wait=120", "", auth);
    if (!r || r->status != 200) die("api delete: " + (r ? r->body : r.error().message));
    api_down.values.push_back(ms_since(t0));
  }

  std::printf("%d runs each; ms: median (p90)\n", count);
  std::printf("%-22s %18s %18s %18s %10s\n", "operation", "libvirt directly", "through the API", "NovaCron adds",
              "ratio");
  auto row = [](const char* name, const Series& d, const Series& a) {
    double dm = d.pct(0.5), am = a.pct(0.5);
    std::printf("%-22s %10.2f (%5.2f) %10.2f (%5.2f) %12.2f ms %9.1f%%\n", name, dm, d.pct(0.9), am, a.pct(0.9),
                am - dm, dm > 0 ? (am - dm) / dm * 100 : 0.0);
  };
  row("create+start", direct_up, api_up);
  row("stop+delete", direct_down, api_down);
  return 0;
}
