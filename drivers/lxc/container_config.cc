#include "container_config.h"

#include <linux/magic.h>
#include <sys/vfs.h>

namespace novacron::lxc {

const char* cgroup_layout_name(CgroupLayout layout) { return layout == CgroupLayout::kV2 ? "v2" : "v1"; }

CgroupLayout detect_cgroup_layout(const std::string& root) {
  struct statfs fs {};
  if (::statfs(root.c_str(), &fs) == 0 && fs.f_type == CGROUP2_SUPER_MAGIC) return CgroupLayout::kV2;
  return CgroupLayout::kV1;
}

namespace {

void add_limits(const sdk::VmSpec& spec, CgroupLayout layout, ConfigItems& out) {
  const std::string memory_bytes = std::to_string(spec.memory_mib * 1024 * 1024);
  const std::string quota = std::to_string(static_cast<long>(spec.vcpus) * kCpuPeriodUs);
  if (layout == CgroupLayout::kV2) {
    out.emplace_back("lxc.cgroup2.memory.max", memory_bytes);
    out.emplace_back("lxc.cgroup2.cpu.max", quota + " " + std::to_string(kCpuPeriodUs));
  } else {
    out.emplace_back("lxc.cgroup.memory.limit_in_bytes", memory_bytes);
    out.emplace_back("lxc.cgroup.cpu.cfs_period_us", std::to_string(kCpuPeriodUs));
    out.emplace_back("lxc.cgroup.cpu.cfs_quota_us", quota);
  }
}

void add_network(const sdk::VmSpec& spec, ConfigItems& out) {
  out.emplace_back("lxc.net", "");  // drop what the template or default.conf set
  if (spec.nics.empty()) {
    // "empty" = a network namespace with only loopback; "none" would share the host's.
    out.emplace_back("lxc.net.0.type", "empty");
    return;
  }
  for (size_t i = 0; i < spec.nics.size(); ++i) {
    const std::string k = "lxc.net." + std::to_string(i) + ".";
    out.emplace_back(k + "type", "veth");
    out.emplace_back(k + "link", spec.nics[i].bridge);
    out.emplace_back(k + "flags", "up");
    out.emplace_back(k + "name", "eth" + std::to_string(i));
    if (!spec.nics[i].mac.empty()) out.emplace_back(k + "hwaddr", spec.nics[i].mac);
  }
}

}  // namespace

ConfigItems container_config(const sdk::VmSpec& spec, CgroupLayout layout) {
  ConfigItems out;
  out.emplace_back("lxc.uts.name", spec.name);
  add_limits(spec, layout, out);
  add_network(spec, out);
  out.emplace_back("lxc.environment", "");
  for (const auto& [k, v] : spec.container.env) out.emplace_back("lxc.environment", k + "=" + v);
  out.emplace_back("lxc.console.logfile", spec.console_log);
  out.emplace_back("lxc.log.file", spec.vm_dir + "/lxc.log");
  out.emplace_back("lxc.log.level", "WARN");
  return out;
}

nlohmann::json marker_for(const sdk::VmSpec& spec) {
  nlohmann::json labels = nlohmann::json::object();
  for (const auto& [k, v] : spec.labels) labels[k] = v;
  return {{"vm_id", spec.id}, {"name", spec.name}, {"labels", labels}, {"init", spec.container.init}};
}

std::vector<std::string> init_argv(const std::vector<std::string>& init, bool rootfs_has_shell) {
  if (init.empty() || !rootfs_has_shell) return init;
  std::vector<std::string> argv = {"/bin/sh", "-c", "exec \"$@\" </dev/console >/dev/console 2>&1", "init"};
  argv.insert(argv.end(), init.begin(), init.end());
  return argv;
}

sdk::VmPowerState power_state_from_lxc(const std::string& state) {
  if (state == "RUNNING" || state == "THAWED") return sdk::VmPowerState::kRunning;
  if (state == "STOPPED") return sdk::VmPowerState::kStopped;
  if (state == "FROZEN" || state == "FREEZING") return sdk::VmPowerState::kPaused;
  if (state == "STARTING") return sdk::VmPowerState::kStarting;
  if (state == "STOPPING" || state == "ABORTING") return sdk::VmPowerState::kStopping;
  return sdk::VmPowerState::kUnknown;
}

}  // namespace novacron::lxc
