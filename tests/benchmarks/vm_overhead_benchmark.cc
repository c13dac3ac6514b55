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

#include <string>

#include <nlohmann/json.hpp>

#include "domain_xml.h"
#include "host/vms/vm_spec.h"
#include "overhead_common.h"

using namespace novacron::bench;  // NOLINT(google-build-using-namespace)
using nlohmann::json;

int main(int argc, char** argv) {
  auto args = parse_args(argc, argv, {"--url", "--token", "--libvirt", "--domain-type", "--spec", "--image-root"});
  const int count = args.count("--count") ? std::stoi(args["--count"]) : 20;
  json spec = read_json_file(args["--spec"]);

  // Direct libvirt calls, each followed by the same through the API.
  virSetErrorFunc(nullptr, [](void*, virErrorPtr) {});
  virConnectPtr conn = virConnectOpen(args["--libvirt"].c_str());
  if (conn == nullptr) die("cannot connect to " + args["--libvirt"]);
  Series direct_up, direct_down, api_up, api_down;
  ApiRunner api(args["--url"], args["--token"]);
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
    api.run_once(spec, i, api_up, api_down);
  }
  virConnectClose(conn);

  print_overhead("libvirt directly", count,
                 {{"create+start", direct_up, api_up}, {"stop+delete", direct_down, api_down}});
  return 0;
}
