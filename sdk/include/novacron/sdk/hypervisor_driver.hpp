// HypervisorDriver: runs VMs or containers of one technology (KVM through libvirt, LXC) on
// this node, for the host's VM inventory.
//
// The host owns the VM records (ids, names, specs, desired state) and calls the driver to
// make the hypervisor match them. Every method may block (hypervisor calls, disk I/O): the
// host calls them on its blocking executor, possibly from several threads at once:
// lifecycle calls (define_vm .. destroy_vm) never run concurrently for the same VM, but
// vm_status and list_vms may run alongside them. Paths in a spec (images, kernel,
// initrd, console file, the VM's folder) have been resolved and checked by the host
// beneath its configured roots: a driver uses them as given and creates files only inside
// VmSpec::vm_dir.
//
// Errors: kInvalidArgument with the spec field first ("/disks/0/format: ..."), kNotFound
// for an unknown VM, kFailedPrecondition for an action in the wrong state ("vm is not
// running"), kUnavailable when the hypervisor cannot be reached (the host answers 503 and
// tries again on the next call).
//
// Interface version 1 (SDK 1.2).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "novacron/sdk/host_services.hpp"
#include "novacron/sdk/plugin.hpp"

namespace novacron::sdk {

struct DiskSpec {
  std::string path;              // absolute; an existing image, or the file to create (size_gib > 0)
  std::string format = "qcow2";  // "qcow2" | "raw"
  std::string bus = "virtio";    // "virtio" | "sata" | "scsi" | "ide"
  std::int64_t size_gib = 0;     // > 0: create an empty disk of this size at `path`
  bool read_only = false;
};

struct BootSpec {
  std::string from = "disk";  // "disk" | "kernel"
  std::string kernel;         // absolute, with from == "kernel"
  std::string initrd;         // absolute or ""
  std::string cmdline;
};

struct NicSpec {
  std::string type = "user";  // "user" | "bridge"
  std::string bridge;         // with type == "bridge"
  std::string mac;            // "" = the hypervisor picks one
};

// What a container runs (LXC); VM drivers refuse a spec that sets any of it.
struct ContainerSpec {
  std::string template_name;                             // an LXC template, e.g. "busybox"; "" = the driver's default
  std::string rootfs_tarball;                            // absolute (beneath the image root): unpacked as the rootfs
  std::vector<std::pair<std::string, std::string>> env;  // environment of the init command
  std::vector<std::string> init;                         // the init command and its arguments; empty = /sbin/init

  bool empty() const { return template_name.empty() && rootfs_tarball.empty() && env.empty() && init.empty(); }
};

struct VmSpec {
  std::string id;    // the host's id: a UUID, stable for the VM's life
  std::string name;  // unique on the node
  int vcpus = 1;
  std::int64_t memory_mib = 128;
  std::vector<DiskSpec> disks;
  BootSpec boot;
  std::vector<NicSpec> nics;  // empty: no network
  Labels labels;
  std::string console_log;  // serial console output goes to this file
  std::string vm_dir;       // a folder of its own for files the driver creates
  ContainerSpec container;  // containers only
  // Driver-specific settings (JSON object); "{}" when none.
  std::string driver_options_json = "{}";
};

enum class VmPowerState : int {
  kUnknown = 0,
  kStopped = 1,  // defined, not running
  kRunning = 2,
  kPaused = 3,  // suspended / frozen
  kCrashed = 4,
  kStarting = 5,  // transitional states some hypervisors report
  kStopping = 6,
};
inline const char* vm_power_state_name(VmPowerState s) noexcept;

// Measured use; fields a driver cannot measure stay at -1.
struct VmStats {
  std::int64_t cpu_time_ns = -1;
  std::int64_t memory_used_kib = -1;     // in the guest (balloon stats) or the container's cgroup
  std::int64_t memory_balloon_kib = -1;  // current balloon size (VMs)
  std::int64_t disk_read_bytes = -1;
  std::int64_t disk_write_bytes = -1;
  std::int64_t net_rx_bytes = -1;
  std::int64_t net_tx_bytes = -1;
};

struct VmStatus {
  std::string id;  // VmSpec::id; for a domain the host did not create, the hypervisor's uuid
  std::string name;
  bool managed = false;  // created by NovaCron (the driver recognises its own marker)
  VmPowerState state = VmPowerState::kUnknown;
  std::string reason;  // the hypervisor's reason for the state, e.g. "shutdown", "destroyed"
  VmStats stats;
};

struct NodeResources {
  int cpus = 0;
  std::int64_t memory_total_mib = 0;
  std::int64_t memory_free_mib = 0;
  std::string cpu_model;
  std::string hypervisor;  // e.g. "QEMU 7.2.0 (TCG)", "LXC 5.0.2"
};

// What the driver can do; the scheduler matches requests against these.
struct DriverCapabilities {
  bool live_migration = false;
  bool save_restore = false;
  bool snapshots = false;
  bool suspend = false;
  bool reboot = false;
  bool console_log = false;
};

// A lifecycle change the hypervisor reported on its own (the VM shut down inside, crashed,
// was destroyed behind the host's back).
struct VmEvent {
  std::string id;  // VmStatus::id
  std::string name;
  VmPowerState state = VmPowerState::kUnknown;
  std::string reason;
};
using VmEventSink = std::function<void(const VmEvent&)>;

class HypervisorDriver : public PluginInstance {
 public:
  using Interface = HypervisorDriver;
  static constexpr NovacronPluginKind kKind = NOVACRON_KIND_HYPERVISOR_DRIVER;
  static constexpr std::uint32_t kInterfaceVersion = 1;

  // Short name used in specs and on the command line: "kvm", "lxc".
  virtual std::string driver_name() const noexcept = 0;
  // Ok when the hypervisor is reachable; else kUnavailable with why.
  virtual Status check_available() noexcept = 0;
  virtual Result<DriverCapabilities> capabilities() noexcept = 0;
  virtual Result<NodeResources> node_resources() noexcept = 0;

  // Checks a spec without changing anything (the host has checked the common fields).
  virtual Status validate(const VmSpec& spec) noexcept = 0;
  // Creates the VM (stopped): disks to create, the hypervisor's definition.
  virtual Status define_vm(const VmSpec& spec) noexcept = 0;
  virtual Status start_vm(std::string_view id) noexcept = 0;
  // Asks the guest to shut down and waits up to `timeout`; then forces it off.
  virtual Status stop_vm(std::string_view id, std::chrono::milliseconds timeout) noexcept = 0;
  virtual Status reboot_vm(std::string_view id) noexcept = 0;
  virtual Status suspend_vm(std::string_view id) noexcept = 0;
  virtual Status resume_vm(std::string_view id) noexcept = 0;
  // Forces the VM off (if running) and removes its definition and the disks define() made.
  virtual Status destroy_vm(std::string_view id) noexcept = 0;

  virtual Result<VmStatus> vm_status(std::string_view id) noexcept = 0;
  // Every VM or domain the hypervisor has, managed or not (for reconciliation).
  virtual Result<std::vector<VmStatus>> list_vms() noexcept = 0;

  // Where lifecycle events go. The host sets it when it starts using the driver and clears
  // it (an empty function) before it stops; events before that are dropped. The sink may be
  // called from the driver's own threads.
  virtual void set_event_sink(VmEventSink sink) noexcept = 0;
};

// Base for driver authors: the exception guard around every call, on_* hooks to override.
class HypervisorDriverBase : public PluginBase<HypervisorDriver> {
 public:
  Status check_available() noexcept final {
    return guard_status("check_available", [&] { return on_check_available(); });
  }
  Result<DriverCapabilities> capabilities() noexcept final {
    return guard_result<DriverCapabilities>("capabilities", [&] { return on_capabilities(); });
  }
  Result<NodeResources> node_resources() noexcept final {
    return guard_result<NodeResources>("node_resources", [&] { return on_node_resources(); });
  }
  Status validate(const VmSpec& spec) noexcept final {
    return guard_status("validate", [&] { return on_validate(spec); });
  }
  Status define_vm(const VmSpec& spec) noexcept final {
    return guard_status("define_vm", [&] { return on_define(spec); });
  }
  Status start_vm(std::string_view id) noexcept final {
    return guard_status("start_vm", [&] { return on_start_vm(id); });
  }
  Status stop_vm(std::string_view id, std::chrono::milliseconds timeout) noexcept final {
    return guard_status("stop_vm", [&] { return on_stop_vm(id, timeout); });
  }
  Status reboot_vm(std::string_view id) noexcept final {
    return guard_status("reboot_vm", [&] { return on_reboot(id); });
  }
  Status suspend_vm(std::string_view id) noexcept final {
    return guard_status("suspend_vm", [&] { return on_suspend(id); });
  }
  Status resume_vm(std::string_view id) noexcept final {
    return guard_status("resume_vm", [&] { return on_resume(id); });
  }
  Status destroy_vm(std::string_view id) noexcept final {
    return guard_status("destroy_vm", [&] { return on_destroy(id); });
  }
  Result<VmStatus> vm_status(std::string_view id) noexcept final {
    return guard_result<VmStatus>("vm_status", [&] { return on_status(id); });
  }
  Result<std::vector<VmStatus>> list_vms() noexcept final {
    return guard_result<std::vector<VmStatus>>("list_vms", [&] { return on_list(); });
  }
  void set_event_sink(VmEventSink sink) noexcept final {
    std::lock_guard<std::mutex> lock(sink_mutex_);
    sink_ = std::move(sink);
  }

 protected:
  virtual Status on_check_available() = 0;
  virtual Result<DriverCapabilities> on_capabilities() = 0;
  virtual Result<NodeResources> on_node_resources() = 0;
  virtual Status on_validate(const VmSpec& spec) = 0;
  virtual Status on_define(const VmSpec& spec) = 0;
  virtual Status on_start_vm(std::string_view id) = 0;
  virtual Status on_stop_vm(std::string_view id, std::chrono::milliseconds timeout) = 0;
  virtual Status on_reboot(std::string_view id) = 0;
  virtual Status on_suspend(std::string_view id) = 0;
  virtual Status on_resume(std::string_view id) = 0;
  virtual Status on_destroy(std::string_view id) = 0;
  virtual Result<VmStatus> on_status(std::string_view id) = 0;
  virtual Result<std::vector<VmStatus>> on_list() = 0;

  // Sends an event to the host, if it has set a sink.
  void emit(const VmEvent& event) const {
    std::lock_guard<std::mutex> lock(sink_mutex_);  // the host may be replacing the sink
    if (sink_) sink_(event);
  }

 private:
  mutable std::mutex sink_mutex_;
  VmEventSink sink_;
};

inline const char* vm_power_state_name(VmPowerState s) noexcept {
  switch (s) {
    case VmPowerState::kStopped:
      return "stopped";
    case VmPowerState::kRunning:
      return "running";
    case VmPowerState::kPaused:
      return "paused";
    case VmPowerState::kCrashed:
      return "crashed";
    case VmPowerState::kStarting:
      return "starting";
    case VmPowerState::kStopping:
      return "stopping";
    default:
      return "unknown";
  }
}

}  // namespace novacron::sdk
