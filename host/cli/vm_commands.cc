// novacron vm ...: create (from a spec file or flags), list, show, start|stop|reboot|suspend|
// resume|delete (waiting for the operation with a progress bar), console; node show.
#include <fstream>
#include <sstream>
#include <thread>

#include "host/cli/api_client.h"
#include "host/cli/commands.h"

namespace novacron::cli {
namespace {

using nlohmann::json;

std::string field(const json& j, const char* key) {
  if (!j.contains(key) || j[key].is_null()) return "-";
  return j[key].is_string() ? j[key].get<std::string>() : j[key].dump();
}

bool looks_like_uuid(const std::string& s) { return s.size() == 36 && s[8] == '-' && s[13] == '-'; }

// A VM id from an id or a name.
tl::expected<std::string, ApiFailure> resolve_vm(ApiClient& api, const std::string& id_or_name) {
  if (looks_like_uuid(id_or_name)) return id_or_name;
  auto found = api.call("GET", "/v1/vms?name=" + url_encode(id_or_name));
  if (!found) return tl::unexpected(found.error());
  if ((*found)["items"].empty()) {
    return tl::unexpected(ApiFailure{"not_found", "no VM named " + id_or_name, "novacron vm list shows them", 404});
  }
  return (*found)["items"][0]["id"].get<std::string>();
}

struct CreateFlags {
  std::string file;
  bool explain = false;
  std::string name, driver = "kvm", image, format = "qcow2", kernel, initrd, cmdline, network = "none";
  std::string container_template, rootfs_tarball, init;  // containers (lxc)
  std::vector<std::string> env;
  int vcpus = 1;
  std::int64_t memory_mib = 512, disk_gib = 0;
  std::vector<std::string> labels;
  bool no_start = false, no_wait = false;
  double wait_timeout = 600;
};

tl::expected<json, std::string> spec_from(const CreateFlags& f) {
  json spec;
  if (!f.file.empty()) {
    std::ifstream in(f.file);
    if (!in) return tl::unexpected(f.file + ": cannot read the spec file");
    std::stringstream ss;
    ss << in.rdbuf();
    spec = json::parse(ss.str(), nullptr, false, /*ignore_comments=*/true);
    if (spec.is_discarded() || !spec.is_object()) return tl::unexpected(f.file + ": not a JSON object");
    if (!f.name.empty()) spec["name"] = f.name;  // --name overrides the file's name; other flags are ignored
    return spec;
  }
  if (f.name.empty()) return tl::unexpected(std::string("give -f SPEC.json or at least --name"));
  spec = {{"name", f.name}, {"driver", f.driver}, {"vcpus", f.vcpus}, {"memory_mib", f.memory_mib}};
  json disks = json::array();
  if (!f.image.empty()) disks.push_back({{"image", f.image}, {"format", f.format}});
  if (f.disk_gib > 0) disks.push_back({{"size_gib", f.disk_gib}, {"format", f.format}});
  spec["disks"] = disks;
  if (!f.kernel.empty()) {
    spec["boot"] = {{"from", "kernel"}, {"kernel", f.kernel}};
    if (!f.initrd.empty()) spec["boot"]["initrd"] = f.initrd;
    if (!f.cmdline.empty()) spec["boot"]["cmdline"] = f.cmdline;
  } else {
    spec["boot"] = {{"from", "disk"}};
  }
  if (f.network == "none") {
    spec["network"] = json::array();
  } else if (f.network == "user") {
    spec["network"] = json::array({{{"type", "user"}}});
  } else {
    spec["network"] = json::array({{{"type", "bridge"}, {"bridge", f.network}}});
  }
  json labels = json::object();
  for (const auto& l : f.labels) {
    auto eq = l.find('=');
    if (eq == std::string::npos) return tl::unexpected("--label " + l + ": expected KEY=VALUE");
    labels[l.substr(0, eq)] = l.substr(eq + 1);
  }
  spec["labels"] = labels;
  if (!f.container_template.empty() || !f.rootfs_tarball.empty() || !f.init.empty() || !f.env.empty()) {
    json c = json::object();
    if (!f.container_template.empty()) c["template"] = f.container_template;
    if (!f.rootfs_tarball.empty()) c["rootfs_tarball"] = f.rootfs_tarball;
    if (!f.init.empty()) c["init"] = json::array({"/bin/sh", "-c", f.init});
    for (const auto& e : f.env) {
      auto eq = e.find('=');
      if (eq == std::string::npos) return tl::unexpected("--env " + e + ": expected NAME=VALUE");
      c["env"][e.substr(0, eq)] = e.substr(eq + 1);
    }
    spec["container"] = c;
  }
  spec["start"] = !f.no_start;
  return spec;
}

void print_vm(const json& vm) {
  std::cout << "ID          " << field(vm, "id") << "\n"
            << "Name        " << field(vm, "name") << "\n"
            << "Driver      " << field(vm, "driver") << " on node " << field(vm, "node") << "\n"
            << "State       " << field(vm, "state")
            << (vm.value("state_reason", "").empty() ? "" : " (" + vm.value("state_reason", "") + ")") << "\n";
  if (vm.contains("live") && vm["live"].is_object()) {
    const json& live = vm["live"];
    if (live.contains("error")) {
      std::cout << "Live        " << live["error"].value("message", "") << "\n";
    } else {
      std::cout << "Live        " << field(live, "state") << "\n";
      for (const auto& [k, v] : live["stats"].items()) {
        if (!v.is_null()) std::cout << "  " << k << " = " << v.dump() << "\n";
      }
    }
  } else if (vm.contains("driver_available") && !vm["driver_available"].get<bool>()) {
    std::cout << "Live        driver unavailable\n";
  }
  const json& spec = vm["spec"];
  std::cout << "vCPUs       " << field(spec, "vcpus") << "\nMemory      " << field(spec, "memory_mib") << " MiB\n";
  if (spec.contains("labels")) std::cout << "Labels      " << spec["labels"].dump() << "\n";
}

void add_create(CLI::App* vm, Output& out, int& exit_code, ConnectionFlags& flags) {
  auto f = std::make_shared<CreateFlags>();
  auto* cmd = vm->add_subcommand("create", "Create a VM from a spec file (-f) or from flags; waits unless --no-wait");
  cmd->add_option("-f,--file", f->file, "Spec (JSON; docs/drivers.md lists the fields)");
  cmd->add_option("--name", f->name, "VM name");
  cmd->add_option("--driver", f->driver, "kvm or lxc (default kvm)");
  cmd->add_option("--vcpus", f->vcpus, "Virtual CPUs (default 1)")->check(CLI::Range(1, 512));
  cmd->add_option("--memory", f->memory_mib, "Memory in MiB (default 512)");
  cmd->add_option("--image", f->image, "Disk image, relative to the host's vms.image_root");
  cmd->add_option("--disk-size", f->disk_gib, "A new empty disk of this many GiB");
  cmd->add_option("--format", f->format, "qcow2 or raw (default qcow2)");
  cmd->add_option("--kernel", f->kernel, "Boot this kernel (relative to the image root)");
  cmd->add_option("--initrd", f->initrd, "Its initrd");
  cmd->add_option("--cmdline", f->cmdline, "Kernel command line");
  cmd->add_option("--network", f->network, "none, user or a bridge name (default none)");
  cmd->add_option("--label", f->labels, "KEY=VALUE (repeatable)");
  cmd->add_option("--template", f->container_template, "lxc: LXC template for the rootfs (default busybox)");
  cmd->add_option("--rootfs-tarball", f->rootfs_tarball, "lxc: rootfs tarball, relative to the image root");
  cmd->add_option("--init", f->init, "lxc: init command, run by /bin/sh -c in the container");
  cmd->add_option("--env", f->env, "lxc: NAME=VALUE for the init command (repeatable)");
  cmd->add_flag("--no-start", f->no_start, "Create it stopped");
  cmd->add_flag("--no-wait", f->no_wait, "Print the operation and return at once");
  cmd->add_flag("--explain", f->explain, "Print the placement decision: rejections, candidates and their scores");
  cmd->add_option("--wait-timeout", f->wait_timeout, "Stop waiting after this many seconds (default 600)");
  cmd->callback([&out, &exit_code, &flags, f] {
    auto spec = spec_from(*f);
    if (!spec) {
      exit_code = out.error("usage", spec.error(), "novacron vm create --help");
      return;
    }
    with_api(flags, out, exit_code, [&](ApiClient& api) {
      auto r = api.call("POST", std::string("/v1/vms") + (f->explain ? "?explain=compact" : ""), spec->dump());
      if (!r && f->explain && !out.json && r.error().body.contains("placement")) {
        print_placement(r.error().body["placement"]);  // why nothing was created
        std::cout << "\n";
      }
      if (!r) return ApiClient::fail(out, r.error());
      json op = (*r)["operation"];
      if (f->explain && !out.json && r->contains("placement")) {
        print_placement((*r)["placement"]);
        std::cout << "\n";
      }
      if (f->no_wait) {
        if (out.json) return out.emit_json(*r);
        std::cout << "vm " << field((*r)["vm"], "name") << " (" << field((*r)["vm"], "id") << ") is being created; "
                  << "follow it with: novacron operation wait " << field(op, "id") << "\n";
        return 0;
      }
      return wait_for_operation(api, out, op, f->wait_timeout);
    });
  });
}

void add_list_show(CLI::App* vm, Output& out, int& exit_code, ConnectionFlags& flags) {
  auto* list = vm->add_subcommand("list", "VMs on the host, by name");
  auto state = std::make_shared<std::string>();
  auto driver = std::make_shared<std::string>();
  auto label = std::make_shared<std::string>();
  list->add_option("--state", *state, "Only VMs in this state");
  list->add_option("--driver", *driver, "Only VMs of this driver");
  list->add_option("--label", *label, "KEY=VALUE: only VMs with this label");
  list->callback([&out, &exit_code, &flags, state, driver, label] {
    with_api(flags, out, exit_code, [&](ApiClient& api) {
      std::string path = "/v1/vms";
      std::string query;
      if (!state->empty()) query += "&state=" + url_encode(*state);
      if (!driver->empty()) query += "&driver=" + url_encode(*driver);
      if (!label->empty()) query += "&label=" + url_encode(*label);
      // fetch_all adds ?limit=...; filters follow as further parameters.
      auto all = fetch_all(api, path + (query.empty() ? "" : "?" + query.substr(1)));
      if (!all) return ApiClient::fail(out, all.error());
      if (out.json) return out.emit_json({{"items", *all}});
      std::vector<std::vector<std::string>> rows;
      for (const auto& v : *all) {
        std::string driver_cell = field(v, "driver") + (v.value("driver_available", true) ? "" : " (unavailable)");
        rows.push_back({field(v, "name"), field(v, "id"), field(v, "state"), driver_cell, field(v["spec"], "vcpus"),
                        field(v["spec"], "memory_mib"), field(v, "node")});
      }
      print_table({"NAME", "ID", "STATE", "DRIVER", "VCPUS", "MEMORY_MIB", "NODE"}, rows);
      return 0;
    });
  });

  auto* show = vm->add_subcommand("show", "A VM with its live state and stats");
  auto id = std::make_shared<std::string>();
  show->add_option("VM", *id, "VM id or name")->required();
  show->callback([&out, &exit_code, &flags, id] {
    with_api(flags, out, exit_code, [&](ApiClient& api) {
      auto vm_id = resolve_vm(api, *id);
      if (!vm_id) return ApiClient::fail(out, vm_id.error());
      auto r = api.call("GET", "/v1/vms/" + *vm_id);
      if (!r) return ApiClient::fail(out, r.error());
      if (out.json) return out.emit_json(*r);
      print_vm(*r);
      return 0;
    });
  });
}

void add_actions(CLI::App* vm, Output& out, int& exit_code, ConnectionFlags& flags) {
  for (const char* name : {"start", "stop", "reboot", "suspend", "resume", "delete"}) {
    std::string action = name;
    auto* cmd = vm->add_subcommand(
        action, action == "delete"
                    ? "Delete a VM (forced off, removed with the disks NovaCron created; images are kept)"
                    : action + " a VM; waits unless --no-wait");
    auto id = std::make_shared<std::string>();
    auto no_wait = std::make_shared<bool>(false);
    auto timeout = std::make_shared<double>(600);
    cmd->add_option("VM", *id, "VM id or name")->required();
    cmd->add_flag("--no-wait", *no_wait, "Print the operation and return at once");
    cmd->add_option("--wait-timeout", *timeout, "Stop waiting after this many seconds (default 600)");
    cmd->callback([&out, &exit_code, &flags, id, no_wait, timeout, action] {
      with_api(flags, out, exit_code, [&](ApiClient& api) {
        auto vm_id = resolve_vm(api, *id);
        if (!vm_id) return ApiClient::fail(out, vm_id.error());
        auto r = action == "delete" ? api.call("DELETE", "/v1/vms/" + *vm_id)
                                    : api.call("POST", "/v1/vms/" + *vm_id + "/" + action);
        if (!r) return ApiClient::fail(out, r.error());
        json op = (*r)["operation"];
        if (*no_wait) {
          if (out.json) return out.emit_json(*r);
          std::cout << "operation " << field(op, "id") << " started (" << field(op, "kind")
                    << "); follow it with: novacron operation wait " << field(op, "id") << "\n";
          return 0;
        }
        return wait_for_operation(api, out, op, *timeout);
      });
    });
  }
}

void add_console(CLI::App* vm, Output& out, int& exit_code, ConnectionFlags& flags) {
  auto* cmd = vm->add_subcommand("console", "Print the VM's serial console output (--follow: keep printing)");
  auto id = std::make_shared<std::string>();
  auto follow = std::make_shared<bool>(false);
  cmd->add_option("VM", *id, "VM id or name")->required();
  cmd->add_flag("-f,--follow", *follow, "Keep printing new output until interrupted");
  cmd->callback([&out, &exit_code, &flags, id, follow] {
    with_api(flags, out, exit_code, [&](ApiClient& api) {
      auto vm_id = resolve_vm(api, *id);
      if (!vm_id) return ApiClient::fail(out, vm_id.error());
      std::int64_t offset = 0;
      for (;;) {
        auto r = api.raw("GET", "/v1/vms/" + *vm_id + "/console?offset=" + std::to_string(offset));
        if (!r) return ApiClient::fail(out, r.error());
        std::cout << r->body << std::flush;
        std::string next = r->header("x-console-offset");
        std::int64_t advanced = next.empty() ? offset : std::strtoll(next.c_str(), nullptr, 10);
        if (advanced == offset) {
          if (!*follow) return 0;
          std::this_thread::sleep_for(std::chrono::milliseconds(500));
        }
        offset = advanced;
      }
    });
  });
}

}  // namespace

void add_vm_commands(CLI::App& app, Output& out, int& exit_code, ConnectionFlags& flags) {
  auto* vm = app.add_subcommand("vm", "Virtual machines and containers on a host");
  vm->require_subcommand(1);
  add_create(vm, out, exit_code, flags);
  add_list_show(vm, out, exit_code, flags);
  add_actions(vm, out, exit_code, flags);
  add_console(vm, out, exit_code, flags);
}

}  // namespace novacron::cli
