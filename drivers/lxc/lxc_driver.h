// io.novacron.driver.lxc: system and application containers through liblxc.
//
// Config (config_keys.json): {"lxcpath": "" (= DATA_DIR/lxc), "template": "busybox",
//   "rootfs_tarball": "", "template_dir": "/usr/share/lxc/templates", "helper_path": "",
//   "helper_processes": 2, "request_timeout_seconds": 60, "create_timeout_seconds": 600,
//   "shutdown_poll_ms": 100, "state_poll_ms": 1000}
//
// liblxc never runs in the daemon: every call goes to novacron-lxc-helper processes
// (helper_pool.h, protocol in helper_protocol.h), verified against the digest built into
// this plugin, restarted when they die.
//
// Threads: one monitor thread polls the containers' states every state_poll_ms (liblxc has
// no event API a library can subscribe to) and reports changes as lifecycle events.
//
// Containers: name = VM name, in the node's own lxcpath (several hosts on one machine keep
// apart); a novacron.json marker in the container's folder carries the VM id, labels and
// init command. Containers without it are listed as unmanaged and never touched.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "helper_pool.h"
#include "novacron/sdk/hypervisor_driver.hpp"

namespace novacron::lxc {

// The SHA-256 of the novacron-lxc-helper built with this driver (generated at build time).
extern const char* const kHelperSha256;

class LxcDriver final : public sdk::HypervisorDriverBase {
 public:
  LxcDriver() = default;
  ~LxcDriver() override;

  std::string driver_name() const noexcept override { return "lxc"; }

  const std::string& lxcpath() const { return lxcpath_; }
  // For tests: the helper pool (pids, replacements).
  HelperPool* helpers() { return pool_.get(); }

 protected:
  sdk::Status on_init(std::string_view config_json) override;
  sdk::Status on_start() override;
  void on_stop() override;
  sdk::Status on_health() override { return on_check_available(); }

  sdk::Status on_check_available() override;
  sdk::Result<sdk::DriverCapabilities> on_capabilities() override;
  sdk::Result<sdk::NodeResources> on_node_resources() override;
  sdk::Status on_validate(const sdk::VmSpec& spec) override;
  sdk::Status on_define(const sdk::VmSpec& spec) override;
  sdk::Status on_start_vm(std::string_view id) override;
  sdk::Status on_stop_vm(std::string_view id, std::chrono::milliseconds timeout) override;
  sdk::Status on_reboot(std::string_view id) override;
  sdk::Status on_suspend(std::string_view id) override;
  sdk::Status on_resume(std::string_view id) override;
  sdk::Status on_destroy(std::string_view id) override;
  sdk::Result<sdk::VmStatus> on_status(std::string_view id) override;
  sdk::Result<std::vector<sdk::VmStatus>> on_list() override;

 private:
  // One helper request with the usual timeout.
  sdk::Result<nlohmann::json> request(const std::string& op, const std::string& name,
                                      std::chrono::milliseconds timeout = std::chrono::milliseconds(0));
  // The container name of a VM id (from the markers; cached).
  sdk::Result<std::string> name_of(std::string_view id);
  // A name-addressed request for a VM id.
  sdk::Result<nlohmann::json> request_for(const std::string& op, std::string_view id);
  // Where the rootfs comes from: {template, ""} or {"", tarball}; the spec, else the config.
  std::pair<std::string, std::string> rootfs_source(const sdk::VmSpec& spec) const;
  sdk::Status stop_container(const std::string& name, std::chrono::milliseconds timeout);
  std::vector<sdk::VmStatus> statuses_of(const nlohmann::json& containers);
  void run_monitor();
  // One poll of the monitor: events for containers whose state differs from observed_.
  void poll_states(bool& first);
  // Records the state this driver just put a container in (nullopt: it is gone).
  void observe(std::string_view id, std::optional<sdk::VmPowerState> state);

  // Config.
  std::string lxcpath_;
  std::string default_template_ = "busybox";
  std::string default_tarball_;
  std::string template_dir_ = "/usr/share/lxc/templates";
  std::string helper_path_;
  int helper_processes_ = 2;
  std::chrono::milliseconds request_timeout_{60000};
  std::chrono::milliseconds create_timeout_{600000};
  std::chrono::milliseconds shutdown_poll_{100};
  std::chrono::milliseconds state_poll_{1000};

  std::unique_ptr<HelperPool> pool_;

  std::mutex names_mutex_;
  std::map<std::string, std::string> names_;  // VM id -> container name

  std::mutex observed_mutex_;
  std::map<std::string, sdk::VmPowerState> observed_;  // VM id -> last state polled or set

  std::mutex monitor_mutex_;
  std::condition_variable monitor_wake_;
  bool stopping_ = false;
  std::thread monitor_;
};

}  // namespace novacron::lxc
