// io.novacron.driver.kvm: VMs through libvirt's C API (KVM, or QEMU's TCG emulation where
// the host has no /dev/kvm; libvirt's test:///default for tests).
//
// Config: {"uri": "qemu:///system", "domain_type": "auto" | "kvm" | "qemu",
//          "shutdown_poll_ms": 200}
//
// Threads: one event-loop thread (libvirt delivers domain lifecycle events only while
// virEventRunDefaultImpl runs); calls from the host run on its blocking executor. The
// connection is shared (libvirt connections are thread-safe); when it breaks, calls fail
// with kUnavailable and the next call reconnects, no more often than the backoff allows
// (1 s doubling to 30 s).
//
// Domains: name = VM name, uuid = VM id, a <novacron:vm> metadata element (namespace
// kMetadataUri) marks those NovaCron created; any other domain is listed as unmanaged and
// never touched.
#pragma once

#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "novacron/sdk/hypervisor_driver.hpp"

typedef struct _virConnect* virConnectPtr;  // NOLINT: libvirt's own spelling
typedef struct _virDomain* virDomainPtr;    // NOLINT

namespace novacron::kvm {

class KvmDriver final : public sdk::HypervisorDriverBase {
 public:
  KvmDriver() = default;
  ~KvmDriver() override;

  std::string driver_name() const noexcept override { return "kvm"; }

  // The domain type chosen from the hypervisor's capabilities ("kvm", "qemu", "test").
  std::string domain_type();

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
  struct Domain;  // RAII virDomainPtr

  // The live connection, reconnecting when allowed; kUnavailable when there is none.
  sdk::Result<virConnectPtr> connection();
  void drop_connection();  // at stop: closes the current and every retired connection
  void retire_connection_locked();
  sdk::Result<Domain> lookup(std::string_view id);
  sdk::VmStatus status_of(virDomainPtr dom);
  sdk::Status create_disks(const sdk::VmSpec& spec);
  void run_event_loop();
  static void on_lifecycle_event(virConnectPtr, virDomainPtr dom, int event, int detail, void* opaque);
  static void on_connection_closed(virConnectPtr, int reason, void* opaque);

  std::string uri_ = "qemu:///system";
  std::string configured_type_ = "auto";
  std::chrono::milliseconds shutdown_poll_{200};

  std::mutex mutex_;  // guards the fields below
  virConnectPtr conn_ = nullptr;
  std::vector<virConnectPtr> retired_;  // dead connections, closed at stop
  int lifecycle_callback_ = -1;
  std::string domain_type_;
  std::string last_error_;
  std::chrono::steady_clock::time_point next_attempt_{};
  std::chrono::milliseconds backoff_{1000};

  std::atomic<bool> stopping_{false};
  int wake_timer_ = -1;
  std::thread event_thread_;
};

}  // namespace novacron::kvm
