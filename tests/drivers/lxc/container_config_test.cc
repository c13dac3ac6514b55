// The spec -> LXC config mapping, the marker, the init wrapper and cgroup detection (no
// liblxc involved).
#include "container_config.h"

#include <gtest/gtest.h>

#include <algorithm>

namespace novacron::lxc {
namespace {

sdk::VmSpec spec() {
  sdk::VmSpec s;
  s.id = "0b7c9a2e-0000-4000-8000-000000000001";
  s.name = "web-1";
  s.vcpus = 2;
  s.memory_mib = 64;
  s.vm_dir = "/var/lib/novacron/vms/0b7c";
  s.console_log = s.vm_dir + "/console.log";
  s.labels = {{"tier", "web"}};
  s.container.env = {{"MODE", "prod"}, {"EMPTY", ""}};
  s.container.init = {"/bin/sh", "-c", "echo hi"};
  return s;
}

std::vector<std::string> values(const ConfigItems& items, const std::string& key) {
  std::vector<std::string> out;
  for (const auto& [k, v] : items) {
    if (k == key) out.push_back(v);
  }
  return out;
}

TEST(ContainerConfigTest, LimitsUseTheKeysOfTheHostsCgroupLayout) {
  ConfigItems v1 = container_config(spec(), CgroupLayout::kV1);
  EXPECT_EQ(values(v1, "lxc.cgroup.memory.limit_in_bytes"), std::vector<std::string>{"67108864"});
  EXPECT_EQ(values(v1, "lxc.cgroup.cpu.cfs_quota_us"), std::vector<std::string>{"200000"});
  EXPECT_EQ(values(v1, "lxc.cgroup.cpu.cfs_period_us"), std::vector<std::string>{"100000"});
  EXPECT_TRUE(values(v1, "lxc.cgroup2.memory.max").empty());

  ConfigItems v2 = container_config(spec(), CgroupLayout::kV2);
  EXPECT_EQ(values(v2, "lxc.cgroup2.memory.max"), std::vector<std::string>{"67108864"});
  EXPECT_EQ(values(v2, "lxc.cgroup2.cpu.max"), std::vector<std::string>{"200000 100000"});
  EXPECT_TRUE(values(v2, "lxc.cgroup.memory.limit_in_bytes").empty());
}

TEST(ContainerConfigTest, NoNetworkIsAnEmptyNamespaceNeverTheHosts) {
  ConfigItems items = container_config(spec(), CgroupLayout::kV1);
  // The template's network is cleared first, then only loopback remains.
  auto clear = std::find(items.begin(), items.end(), std::pair<std::string, std::string>{"lxc.net", ""});
  auto empty = std::find(items.begin(), items.end(), std::pair<std::string, std::string>{"lxc.net.0.type", "empty"});
  ASSERT_NE(clear, items.end());
  ASSERT_NE(empty, items.end());
  EXPECT_LT(clear, empty);
  EXPECT_TRUE(values(items, "lxc.net.0.link").empty());
}

TEST(ContainerConfigTest, BridgedInterfacesAreVethPairs) {
  sdk::VmSpec s = spec();
  s.nics = {{"bridge", "br-nc", "52:54:00:12:34:56"}, {"bridge", "br-b", ""}};
  ConfigItems items = container_config(s, CgroupLayout::kV1);
  EXPECT_EQ(values(items, "lxc.net.0.type"), std::vector<std::string>{"veth"});
  EXPECT_EQ(values(items, "lxc.net.0.link"), std::vector<std::string>{"br-nc"});
  EXPECT_EQ(values(items, "lxc.net.0.hwaddr"), std::vector<std::string>{"52:54:00:12:34:56"});
  EXPECT_EQ(values(items, "lxc.net.1.link"), std::vector<std::string>{"br-b"});
  EXPECT_TRUE(values(items, "lxc.net.1.hwaddr").empty());
  EXPECT_EQ(values(items, "lxc.net.1.name"), std::vector<std::string>{"eth1"});
}

TEST(ContainerConfigTest, EnvironmentConsoleAndLogGoWhereTheHostSays) {
  ConfigItems items = container_config(spec(), CgroupLayout::kV1);
  EXPECT_EQ(values(items, "lxc.environment"), (std::vector<std::string>{"", "MODE=prod", "EMPTY="}));
  EXPECT_EQ(values(items, "lxc.console.logfile"), std::vector<std::string>{"/var/lib/novacron/vms/0b7c/console.log"});
  EXPECT_EQ(values(items, "lxc.log.file"), std::vector<std::string>{"/var/lib/novacron/vms/0b7c/lxc.log"});
  EXPECT_EQ(values(items, "lxc.uts.name"), std::vector<std::string>{"web-1"});
}

TEST(ContainerConfigTest, MarkerCarriesIdLabelsAndInit) {
  nlohmann::json m = marker_for(spec());
  EXPECT_EQ(m["vm_id"], "0b7c9a2e-0000-4000-8000-000000000001");
  EXPECT_EQ(m["name"], "web-1");
  EXPECT_EQ(m["labels"]["tier"], "web");
  EXPECT_EQ(m["init"], nlohmann::json::array({"/bin/sh", "-c", "echo hi"}));
}

TEST(ContainerConfigTest, InitIsWrappedToWriteToTheConsoleWhenThereIsAShell) {
  std::vector<std::string> init = {"/usr/bin/app", "--flag", "two words"};
  auto wrapped = init_argv(init, /*rootfs_has_shell=*/true);
  ASSERT_EQ(wrapped.size(), 7u);
  EXPECT_EQ(wrapped[0], "/bin/sh");
  EXPECT_NE(wrapped[2].find("exec \"$@\""), std::string::npos);
  EXPECT_EQ(std::vector<std::string>(wrapped.begin() + 4, wrapped.end()), init) << "arguments pass through untouched";
  EXPECT_EQ(init_argv(init, /*rootfs_has_shell=*/false), init);
  EXPECT_TRUE(init_argv({}, true).empty()) << "no init: the rootfs's own /sbin/init";
}

TEST(ContainerConfigTest, LxcStatesMapToPowerStates) {
  EXPECT_EQ(power_state_from_lxc("RUNNING"), sdk::VmPowerState::kRunning);
  EXPECT_EQ(power_state_from_lxc("STOPPED"), sdk::VmPowerState::kStopped);
  EXPECT_EQ(power_state_from_lxc("FROZEN"), sdk::VmPowerState::kPaused);
  EXPECT_EQ(power_state_from_lxc("STARTING"), sdk::VmPowerState::kStarting);
  EXPECT_EQ(power_state_from_lxc("ABORTING"), sdk::VmPowerState::kStopping);
  EXPECT_EQ(power_state_from_lxc("nonsense"), sdk::VmPowerState::kUnknown);
}

TEST(ContainerConfigTest, DetectsTheCgroupFilesystem) {
  // /proc is no cgroup2 mount: v1 keys. Where a cgroup2 hierarchy is mounted (the hybrid
  // layout's /sys/fs/cgroup/unified, or /sys/fs/cgroup itself on a v2 host) it says v2.
  EXPECT_EQ(detect_cgroup_layout("/proc"), CgroupLayout::kV1);
  for (const char* p : {"/sys/fs/cgroup/unified", "/sys/fs/cgroup"}) {
    std::string mounts;
    FILE* f = std::fopen("/proc/self/mounts", "r");
    ASSERT_NE(f, nullptr);
    char line[1024];
    bool is_cgroup2 = false;
    while (std::fgets(line, sizeof line, f) != nullptr) {
      std::string l = line;
      if (l.find(std::string(" ") + p + " cgroup2 ") != std::string::npos) is_cgroup2 = true;
    }
    std::fclose(f);
    EXPECT_EQ(detect_cgroup_layout(p) == CgroupLayout::kV2, is_cgroup2) << p;
  }
}

}  // namespace
}  // namespace novacron::lxc
