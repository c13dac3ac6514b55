// NovaCron's overhead per container operation: the same create, start and stop+delete done
//   (1) directly with liblxc's C API in this process (create from the busybox template, the
//       same config items the driver sets; start daemonized; stop, destroy), and
//   (2) through novacrond's REST API with the lxc driver (POST /v1/vms?wait with start
//       false, POST /v1/vms/{id}/start?wait, DELETE /v1/vms/{id}?wait),
// alternately, in separate lxcpaths. Create and start are timed apart: the template run
// (hundreds of ms, varying by tens) would hide a start's few ms. Driven by
// scripts/bench-vm-ops.sh (mode lxc).
//
// Usage: lxc_overhead_benchmark --url URL --token TOKEN --spec SPEC.json --lxcpath DIR [--count N]
#include <lxc/lxccontainer.h>
#include <sys/stat.h>

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "container_config.h"
#include "host/vms/vm_spec.h"
#include "overhead_common.h"

using namespace novacron::bench;  // NOLINT(google-build-using-namespace)
using nlohmann::json;

int main(int argc, char** argv) {
  auto args = parse_args(argc, argv, {"--url", "--token", "--spec", "--lxcpath"});
  const int count = args.count("--count") ? std::stoi(args["--count"]) : 20;
  json spec = read_json_file(args["--spec"]);
  const std::string lxcpath = args["--lxcpath"];
  ::mkdir(lxcpath.c_str(), 0700);

  Series direct_create, direct_start, direct_down, api_create, api_start, api_down;
  ApiRunner api(args["--url"], args["--token"]);
  auto direct_once = [&](int i) {
    json s = spec;
    s["name"] = "direct-" + std::to_string(i);
    const std::string vm_dir = lxcpath + "/../direct-vm-" + std::to_string(i);
    ::mkdir(vm_dir.c_str(), 0700);
    auto req = novacron::parse_vm_spec(s, novacron::new_uuid(), vm_dir, "/");
    if (!req) die(req.error().message);
    auto items = novacron::lxc::container_config(req->spec, novacron::lxc::detect_cgroup_layout());
    std::vector<std::string> init = req->spec.container.init;
    std::vector<char*> argvs;
    argvs.reserve(init.size() + 1);
    for (auto& a : init) argvs.push_back(a.data());
    argvs.push_back(nullptr);

    auto t0 = Clock::now();
    lxc_container* c = lxc_container_new(req->spec.name.c_str(), lxcpath.c_str());
    if (c == nullptr || !c->create(c, "busybox", "dir", nullptr, LXC_CREATE_QUIET, nullptr)) die("direct create");
    for (const auto& [k, v] : items) {
      if (v.empty()) {
        c->clear_config_item(c, k.c_str());
      } else {
        c->set_config_item(c, k.c_str(), v.c_str());
      }
    }
    c->save_config(c, nullptr);
    direct_create.values.push_back(ms_since(t0));
    t0 = Clock::now();
    c->want_daemonize(c, true);
    if (!c->start(c, 0, init.empty() ? nullptr : argvs.data())) die("direct start");
    direct_start.values.push_back(ms_since(t0));
    t0 = Clock::now();
    if (!c->stop(c) || !c->destroy(c)) die("direct stop+destroy");
    direct_down.values.push_back(ms_since(t0));
    lxc_container_put(c);
  };
  // Alternate which side goes first: the second of a pair finds the template's files in
  // the page cache.
  for (int i = 0; i < count; ++i) {
    if (i % 2 == 0) {
      direct_once(i);
      api.run_split(spec, i, api_create, api_start, api_down);
    } else {
      api.run_split(spec, i, api_create, api_start, api_down);
      direct_once(i);
    }
  }

  print_overhead("liblxc directly", count,
                 {{"create", direct_create, api_create},
                  {"start", direct_start, api_start},
                  {"stop+delete", direct_down, api_down}});
  return 0;
}
