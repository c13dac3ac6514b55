// The host's VMs: create, act on and delete them through the HypervisorDriver plugins, each
// change an operation (one at a time per VM), records in the state store, events on the bus.
// HTTP-agnostic: host/api/vm_routes.cc maps its error codes to statuses.
//
// Error codes: invalid_spec (400), name_taken (409), wrong_state (409), conflict (409, an
// operation is running on the VM), not_found (404), driver_unavailable (503, names the
// driver), state_store (503); a driver's failure keeps the driver's status code name.
#pragma once

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "host/config/host_config.h"
#include "host/operations/operation_manager.h"
#include "host/plugins/plugin_manager.h"
#include "host/services/event_bus.h"
#include "host/vms/vm_spec.h"
#include "host/vms/vm_store.h"

namespace novacron {

class VmService {
 public:
  VmService(const HostConfig& config, VmStore& store, PluginManager& plugins, OperationManager& operations,
            EventBus& events);
  ~VmService();  // detaches from the drivers' events
  VmService(const VmService&) = delete;
  VmService& operator=(const VmService&) = delete;

  // Creates the record ("creating") and starts the vm.create operation (define, then start
  // when the spec says so). Blocking (state store, driver validation).
  Expected<std::pair<VmRecord, Operation>> create(const nlohmann::json& body, const std::string& principal);
  // start | stop | reboot | suspend | resume, as an operation; wrong_state when the VM's
  // current state does not allow it.
  Expected<Operation> act(const std::string& id, const std::string& action, const std::string& principal);
  // The vm.delete operation: forces it off, removes it from the hypervisor, its folder and
  // its record.
  Expected<Operation> remove(const std::string& id, const std::string& principal);

  // The record with the driver's live state and stats.
  Expected<nlohmann::json> show(const std::string& id);
  // Up to `max` bytes of the serial console file from `offset`, and the offset after them.
  Expected<std::pair<std::string, std::int64_t>> console(const std::string& id, std::int64_t offset, size_t max);
  // Records only (no driver calls), ordered by name.
  Expected<std::vector<VmRecord>> list(const VmFilter& filter, const std::string& after_name, size_t limit);

  static nlohmann::json to_json(const VmRecord& vm);
  // {"available": true} or {"available": false, "error": why} (not loaded, or it cannot
  // reach its hypervisor).
  nlohmann::json driver_availability(const std::string& driver_name);

  // Every running hypervisor driver: availability (with the reason when unavailable),
  // capabilities and the node's resources as the driver sees them. Blocking.
  nlohmann::json drivers();

  // Reconciliation: compares the inventory with what each running driver reports. A VM that
  // died or changed behind the host's back gets its real state (vm.state_changed); one whose
  // domain is gone becomes "missing"; VMs with an operation in flight, or whose driver is
  // not running, are left as they are. Nothing is ever deleted. Domains the host did not
  // create are remembered as unmanaged.
  struct ReconcileReport {
    size_t checked = 0;    // records compared with their hypervisor
    size_t corrected = 0;  // records whose state changed
    size_t skipped = 0;    // busy, or driver not running
    std::int64_t at_ms = 0;
  };
  Expected<ReconcileReport> reconcile();
  // Called by reconcile() with every present VM's counters (the scheduler's usage history).
  using StatsObserver = std::function<void(const VmRecord& vm, const sdk::VmStats& stats)>;
  void set_stats_observer(StatsObserver observer);
  // The domains found by the last reconciliation that are not in the inventory.
  nlohmann::json unmanaged() const;
  // Runs reconcile() now and then every `interval` on a thread of its own (0: never); the
  // same thread records the state changes drivers report (without it they are dropped).
  void start_reconciler(std::chrono::seconds interval);
  void stop_reconciler();

  // The running driver plugin whose driver_name() is `name`; attaches the event sink on
  // first use.
  BorrowedPlugin<sdk::HypervisorDriver> driver(const std::string& name);
  // Clears the event sinks this service set: before the drivers stop or it goes away.
  void detach_drivers();

 private:
  void on_driver_event(const sdk::VmEvent& event);     // queues it
  void apply_driver_event(const sdk::VmEvent& event);  // on the reconciler thread
  void attach(const std::string& plugin_id, sdk::HypervisorDriver* driver);
  static nlohmann::json availability_of(BorrowedPlugin<sdk::HypervisorDriver>& d, const std::string& driver_name);
  std::filesystem::path image_root() const;
  std::filesystem::path vm_dir(const std::string& id) const;

  const HostConfig& config_;
  VmStore& store_;
  PluginManager& plugins_;
  OperationManager& operations_;
  EventBus& events_;
  mutable std::mutex mutex_;
  // Driver instances whose event sink points here, by plugin id (a re-enabled plugin is a
  // new instance and gets the sink again).
  struct Attachment {
    sdk::HypervisorDriver* driver = nullptr;
    std::uint64_t generation = 0;  // the plugin manager's when the sink was set
  };
  std::map<std::string, Attachment> attached_;
  StatsObserver stats_observer_;  // set before the reconciler starts
  nlohmann::json unmanaged_ = nlohmann::json::array();
  std::int64_t reconciled_at_ms_ = 0;
  std::mutex reconcile_mutex_;  // one reconciliation at a time
  // Guards stopping_ and pending_events_. Not mutex_: drivers call on_driver_event holding
  // their sink lock, and attach() holds mutex_ while it sets a sink.
  std::mutex loop_mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::vector<sdk::VmEvent> pending_events_;
  std::thread reconciler_;
};

}  // namespace novacron
