// The LXC side of a VmSpec: which config items a container gets, which cgroup keys this
// host needs, and the marker file that says a container belongs to NovaCron. Pure
// functions (no liblxc), so they are unit-tested directly.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "novacron/sdk/hypervisor_driver.hpp"

namespace novacron::lxc {

// The cgroup hierarchy the host runs: v1 (or the hybrid layout, whose controllers are v1)
// takes lxc.cgroup.* keys, the unified v2 hierarchy lxc.cgroup2.*; liblxc refuses the
// other family.
enum class CgroupLayout { kV1, kV2 };
const char* cgroup_layout_name(CgroupLayout layout);

// Looks at the filesystem mounted at `root` (/sys/fs/cgroup): cgroup2 means v2.
CgroupLayout detect_cgroup_layout(const std::string& root = "/sys/fs/cgroup");

// An ordered list of LXC config items. A key with an empty value clears every item under
// that key first (the template's "lxc.net" from /etc/lxc/default.conf must go).
using ConfigItems = std::vector<std::pair<std::string, std::string>>;

// CPU quota period for vcpus: quota = vcpus * period.
inline constexpr long kCpuPeriodUs = 100000;

// The items NovaCron sets on a new container: limits, network, environment, console and
// liblxc log files in the VM's folder.
ConfigItems container_config(const sdk::VmSpec& spec, CgroupLayout layout);

// The marker file (novacron.json in the container's folder): the VM's id, name, labels
// and init command. A container without one is not NovaCron's (listed as unmanaged).
inline constexpr const char* kMarkerFile = "novacron.json";
nlohmann::json marker_for(const sdk::VmSpec& spec);

// The argv that starts `init` with the container's console as its stdio: liblxc gives an
// init passed by argv /dev/null as stdio, so a shell (when the rootfs has one) re-opens
// /dev/console first. Empty `init`: empty result (the rootfs's own /sbin/init).
std::vector<std::string> init_argv(const std::vector<std::string>& init, bool rootfs_has_shell);

// Container states as liblxc names them -> the SDK's.
sdk::VmPowerState power_state_from_lxc(const std::string& state);

}  // namespace novacron::lxc
