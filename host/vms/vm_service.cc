#include "host/vms/vm_service.h"

#include <spdlog/spdlog.h>

#include <fstream>
#include <map>

namespace novacron {
namespace {

using nlohmann::json;

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Error driver_error(const sdk::Status& s) { return Error{sdk::status_code_name(s.code()), s.message()}; }

// Which current states each action accepts.
const std::map<std::string, std::set<std::string>>& allowed_states() {
  static const std::map<std::string, std::set<std::string>> kAllowed = {
      {"start", {"stopped", "crashed"}},
      {"stop", {"running", "paused", "stopping"}},
      {"reboot", {"running"}},
      {"suspend", {"running"}},
      {"resume", {"paused"}},
  };
  return kAllowed;
}

json stats_json(const sdk::VmStats& s) {
  auto v = [](std::int64_t x) { return x < 0 ? json(nullptr) : json(x); };
  return {{"cpu_time_ns", v(s.cpu_time_ns)},
          {"memory_used_kib", v(s.memory_used_kib)},
          {"memory_balloon_kib", v(s.memory_balloon_kib)},
          {"disk_read_bytes", v(s.disk_read_bytes)},
          {"disk_write_bytes", v(s.disk_write_bytes)},
          {"net_rx_bytes", v(s.net_rx_bytes)},
          {"net_tx_bytes", v(s.net_tx_bytes)}};
}

}  // namespace

VmService::VmService(const HostConfig& config, VmStore& store, PluginManager& plugins, OperationManager& operations,
                     EventBus& events)
    : config_(config), store_(store), plugins_(plugins), operations_(operations), events_(events) {}

VmService::~VmService() {
  stop_reconciler();
  detach_drivers();
}

void VmService::detach_drivers() {
  std::lock_guard<std::mutex> lock(mutex_);
  for (const auto& [id, attachment] : attached_) {
    if (auto d = plugins_.hypervisor_driver(id); d && d.get() == attachment.driver) d->set_event_sink({});
  }
  attached_.clear();
}

void VmService::attach(const std::string& plugin_id, sdk::HypervisorDriver* driver) {
  // The pointer alone does not identify an instance: a plugin disabled and enabled again
  // may sit at the old one's address. Every start or stop changes the plugin manager's
  // generation, so (pointer, generation) does; the caller holds a borrow, so this instance
  // cannot be replaced while it is attached here.
  const std::uint64_t generation = plugins_.generation();
  std::lock_guard<std::mutex> lock(mutex_);
  Attachment& a = attached_[plugin_id];
  if (a.driver == driver && a.generation == generation) return;
  a = {driver, generation};
  driver->set_event_sink([this](const sdk::VmEvent& e) { on_driver_event(e); });
}

std::filesystem::path VmService::image_root() const {
  return config_.image_root.empty() ? config_.data_dir / "images" : config_.image_root;
}

std::filesystem::path VmService::vm_dir(const std::string& id) const { return config_.data_dir / "vms" / id; }

BorrowedPlugin<sdk::HypervisorDriver> VmService::driver(const std::string& name) {
  for (const auto& p : plugins_.list()) {
    if (p.kind != "hypervisor_driver" || p.state != "running") continue;
    auto d = plugins_.hypervisor_driver(p.id);
    if (!d || d->driver_name() != name) continue;
    attach(p.id, d.get());
    return d;
  }
  return {};
}

json VmService::driver_availability(const std::string& driver_name) {
  auto d = driver(driver_name);
  return availability_of(d, driver_name);
}

json VmService::availability_of(BorrowedPlugin<sdk::HypervisorDriver>& d, const std::string& driver_name) {
  if (!d) return {{"available", false}, {"error", "driver \"" + driver_name + "\" is not loaded on this node"}};
  if (auto up = d->check_available(); !up) return {{"available", false}, {"error", up.message()}};
  return {{"available", true}};
}

json VmService::to_json(const VmRecord& vm) {
  return {{"id", vm.id},
          {"name", vm.name},
          {"tenant", vm.tenant},
          {"driver", vm.driver},
          {"node", vm.node},
          {"state", vm.state},
          {"state_reason", vm.state_reason},
          {"spec", vm.spec},
          {"created_at_ms", vm.created_at},
          {"updated_at_ms", vm.updated_at},
          {"placement_id", vm.placement_id.empty() ? json(nullptr) : json(vm.placement_id)}};
}

json VmService::drivers() {
  json out = json::array();
  for (const auto& p : plugins_.list()) {
    if (p.kind != "hypervisor_driver" || p.state != "running") continue;
    auto d = plugins_.hypervisor_driver(p.id);
    if (!d) continue;
    json entry = {{"name", d->driver_name()}, {"plugin", p.id}, {"version", p.version}};
    sdk::Status up = d->check_available();
    entry["available"] = up.is_ok();
    entry["error"] =
        up.is_ok() ? json(nullptr) : json{{"code", sdk::status_code_name(up.code())}, {"message", up.message()}};
    if (auto caps = d->capabilities()) {
      const auto& c = caps.value();
      entry["capabilities"] = {{"live_migration", c.live_migration},
                               {"save_restore", c.save_restore},
                               {"snapshots", c.snapshots},
                               {"suspend", c.suspend},
                               {"reboot", c.reboot},
                               {"console_log", c.console_log}};
    } else {
      entry["capabilities"] = nullptr;
    }
    if (auto r = d->node_resources()) {
      const auto& n = r.value();
      entry["resources"] = {{"cpus", n.cpus},
                            {"memory_total_mib", n.memory_total_mib},
                            {"memory_free_mib", n.memory_free_mib},
                            {"cpu_model", n.cpu_model},
                            {"hypervisor", n.hypervisor}};
    } else {
      entry["resources"] = nullptr;
    }
    out.push_back(entry);
  }
  return out;
}

Expected<std::pair<VmRecord, Operation>> VmService::create(const json& body, const std::string& principal) {
  VmRecord vm;
  vm.id = new_uuid();
  auto request = parse_vm_spec(body, vm.id, vm_dir(vm.id), image_root());
  if (!request) return tl::unexpected(request.error());
  auto d = driver(request->driver);
  if (!d) {
    return make_error("driver_unavailable", "driver \"" + request->driver +
                                                "\" is not running on this node (load its plugin, e.g. "
                                                "io.novacron.driver." +
                                                request->driver + ")");
  }
  // A driver that cannot reach its hypervisor (libvirtd down) refuses at once: 503.
  if (auto up = d->check_available(); !up) {
    return make_error("driver_unavailable", "driver \"" + request->driver + "\" is unavailable: " + up.message());
  }
  if (auto s = d->validate(request->spec); !s) {
    if (s.code() == sdk::StatusCode::kInvalidArgument) return make_error("invalid_spec", s.message());
    return tl::unexpected(driver_error(s));
  }
  vm.name = request->spec.name;
  vm.driver = request->driver;
  vm.node = config_.node_name;
  vm.spec = body;
  vm.state = "creating";
  vm.created_at = vm.updated_at = now_ms();
  if (auto r = store_.insert(vm); !r) return tl::unexpected(r.error());

  auto spec = std::make_shared<sdk::VmSpec>(request->spec);
  const bool start = request->start;
  const std::string driver_name = request->driver;
  auto op = operations_.start(
      "vm.create", "vm/" + vm.id, principal, [this, spec, start, driver_name](OperationContext& ctx) -> Expected<json> {
        const std::string& id = spec->id;
        auto undo = [&](const Error& e) -> Expected<json> {
          // Nothing half-made is kept: the VM did not come to exist.
          (void)store_.remove(id);
          std::error_code ec;
          std::filesystem::remove_all(vm_dir(id), ec);
          return tl::unexpected(e);
        };
        auto d = driver(driver_name);
        if (!d) return undo(Error{"driver_unavailable", "driver \"" + driver_name + "\" stopped"});
        std::error_code ec;
        std::filesystem::create_directories(spec->vm_dir, ec);
        if (ec) return undo(Error{"io", spec->vm_dir + ": " + ec.message()});
        ctx.report_progress(0.1, "defining");
        if (auto s = d->define_vm(*spec); !s) return undo(driver_error(s));
        (void)store_.set_state(id, "stopped", "");
        events_.publish("vm.created", "vm/" + id, "host", json{{"id", id}, {"name", spec->name}}.dump());
        if (start) {
          ctx.report_progress(0.6, "starting");
          if (auto s = d->start_vm(id); !s) {
            (void)store_.set_state(id, "stopped", "start failed: " + s.message());
            return tl::unexpected(driver_error(s));
          }
          (void)store_.set_state(id, "running", "");
        }
        auto vm = store_.get(id);
        if (vm && *vm) return json{{"vm", to_json(**vm)}};
        return json{{"vm", {{"id", id}}}};
      });
  if (!op) {
    (void)store_.remove(vm.id);
    return tl::unexpected(op.error());
  }
  return std::make_pair(vm, *op);
}

Expected<Operation> VmService::act(const std::string& id, const std::string& action, const std::string& principal) {
  auto allowed = allowed_states().find(action);
  if (allowed == allowed_states().end()) return make_error("not_found", "no action " + action);
  auto vm = store_.get(id);
  if (!vm) return tl::unexpected(vm.error());
  if (!*vm) return make_error("not_found", "no VM with id " + id);
  auto d = driver((*vm)->driver);
  if (!d) return make_error("driver_unavailable", "driver \"" + (*vm)->driver + "\" is not running on this node");
  // The hypervisor's state, not the record's: it may have changed behind the host's back.
  auto live = d->vm_status(id);
  if (!live) return tl::unexpected(driver_error(live.status()));
  std::string state = sdk::vm_power_state_name(live.value().state);
  if (allowed->second.count(state) == 0) {
    std::string want;
    for (const auto& s : allowed->second) want += (want.empty() ? "" : " or ") + s;
    return make_error("wrong_state", "vm " + (*vm)->name + " is " + state + "; " + action + " needs it " + want);
  }
  const std::string driver_name = (*vm)->driver;
  const auto timeout = std::chrono::seconds(config_.vm_stop_timeout_seconds);
  return operations_.start("vm." + action, "vm/" + id, principal,
                           [this, id, action, driver_name, timeout](OperationContext& ctx) -> Expected<json> {
                             auto d = driver(driver_name);
                             if (!d) return make_error("driver_unavailable", "driver \"" + driver_name + "\" stopped");
                             ctx.report_progress(0.1, action);
                             sdk::Status s = action == "start"     ? d->start_vm(id)
                                             : action == "stop"    ? d->stop_vm(id, timeout)
                                             : action == "reboot"  ? d->reboot_vm(id)
                                             : action == "suspend" ? d->suspend_vm(id)
                                                                   : d->resume_vm(id);
                             if (!s) return tl::unexpected(driver_error(s));
                             auto live = d->vm_status(id);
                             std::string state = live ? sdk::vm_power_state_name(live.value().state) : "unknown";
                             (void)store_.set_state(id, state, "");
                             events_.publish("vm." + action +
                                                 (action == "stop"     ? "ped"
                                                  : action == "resume" ? "d"
                                                                       : "ed"),
                                             "vm/" + id, "host", json{{"id", id}, {"state", state}}.dump());
                             return json{{"id", id}, {"state", state}};
                           });
}

Expected<Operation> VmService::remove(const std::string& id, const std::string& principal) {
  auto vm = store_.get(id);
  if (!vm) return tl::unexpected(vm.error());
  if (!*vm) return make_error("not_found", "no VM with id " + id);
  const std::string driver_name = (*vm)->driver;
  const std::string name = (*vm)->name;
  return operations_.start(
      "vm.delete", "vm/" + id, principal, [this, id, name, driver_name](OperationContext& ctx) -> Expected<json> {
        auto d = driver(driver_name);
        if (!d) {
          return make_error("driver_unavailable", "driver \"" + driver_name + "\" is not running; the VM is kept");
        }
        (void)store_.set_state(id, "deleting", "");
        ctx.report_progress(0.2, "destroying");
        if (auto s = d->destroy_vm(id); !s && s.code() != sdk::StatusCode::kNotFound) {
          (void)store_.set_state(id, "error", "delete failed: " + s.message());
          return tl::unexpected(driver_error(s));
        }
        std::error_code ec;
        std::filesystem::remove_all(vm_dir(id), ec);
        if (auto r = store_.remove(id); !r) return tl::unexpected(r.error());
        events_.publish("vm.deleted", "vm/" + id, "host", json{{"id", id}, {"name", name}}.dump());
        return json{{"id", id}, {"deleted", true}};
      });
}

Expected<json> VmService::show(const std::string& id) {
  auto vm = store_.get(id);
  if (!vm) return tl::unexpected(vm.error());
  if (!*vm) return make_error("not_found", "no VM with id " + id);
  json out = to_json(**vm);
  out["live"] = nullptr;
  auto d = driver((*vm)->driver);
  json availability = availability_of(d, (*vm)->driver);
  out["driver_available"] = availability["available"];
  if (!availability["available"].get<bool>()) {
    out["driver_error"] = availability["error"];
    return out;
  }
  auto live = d->vm_status(id);
  if (live) {
    out["live"] = {{"state", sdk::vm_power_state_name(live.value().state)},
                   {"reason", live.value().reason},
                   {"stats", stats_json(live.value().stats)}};
  } else {
    out["live"] = {
        {"error", {{"code", sdk::status_code_name(live.status().code())}, {"message", live.status().message()}}}};
  }
  return out;
}

Expected<std::pair<std::string, std::int64_t>> VmService::console(const std::string& id, std::int64_t offset,
                                                                  size_t max) {
  auto vm = store_.get(id);
  if (!vm) return tl::unexpected(vm.error());
  if (!*vm) return make_error("not_found", "no VM with id " + id);
  // The record's id is a UUID the host made: the file is inside the VM's own folder.
  std::ifstream in(vm_dir(id) / "console.log", std::ios::binary);
  if (!in) return std::make_pair(std::string(), offset);  // nothing written yet
  in.seekg(0, std::ios::end);
  std::int64_t size = in.tellg();
  if (offset > size) offset = size;
  in.seekg(offset);
  std::string data(static_cast<size_t>(std::min<std::int64_t>(size - offset, static_cast<std::int64_t>(max))), '\0');
  in.read(data.data(), static_cast<std::streamsize>(data.size()));
  data.resize(static_cast<size_t>(in.gcount()));
  const std::int64_t next = offset + static_cast<std::int64_t>(data.size());
  return std::make_pair(std::move(data), next);
}

Expected<std::vector<VmRecord>> VmService::list(const VmFilter& filter, const std::string& after_name, size_t limit) {
  return store_.list(filter, after_name, limit);
}

Expected<VmService::ReconcileReport> VmService::reconcile() {
  std::lock_guard<std::mutex> one_at_a_time(reconcile_mutex_);
  ReconcileReport report;
  // Records changed after this instant are newer than the hypervisors' answers: left alone.
  const std::int64_t snapshot_ms = now_ms();
  // What every running driver has, by id.
  std::map<std::string, std::map<std::string, sdk::VmStatus>> live;  // driver -> id -> status
  for (const auto& p : plugins_.list()) {
    if (p.kind != "hypervisor_driver" || p.state != "running") continue;
    auto d = plugins_.hypervisor_driver(p.id);
    if (!d) continue;
    attach(p.id, d.get());
    auto all = d->list_vms();
    if (!all) {
      spdlog::warn("reconciliation: driver {} cannot list its VMs: {}", d->driver_name(), all.status().message());
      continue;
    }
    auto& by_id = live[d->driver_name()];
    for (auto& v : all.value()) by_id[v.id] = std::move(v);
  }
  std::set<std::string> known;
  std::string after;
  for (;;) {
    auto page = store_.list({}, after, 500);
    if (!page) return tl::unexpected(page.error());
    for (const auto& vm : *page) {
      known.insert(vm.id);
      auto driver_vms = live.find(vm.driver);
      if (driver_vms == live.end() || operations_.busy("vm/" + vm.id) || vm.updated_at > snapshot_ms) {
        ++report.skipped;
        continue;
      }
      ++report.checked;
      auto it = driver_vms->second.find(vm.id);
      const bool present = it != driver_vms->second.end();
      if (present && stats_observer_) stats_observer_(vm, it->second.stats);
      std::string state = present ? sdk::vm_power_state_name(it->second.state) : "missing";
      std::string reason = present ? it->second.reason : "not found in the hypervisor";
      // A create or delete that novacrond did not finish (it stopped meanwhile): say so.
      if (vm.state == "creating" && !present) {
        state = "error";
        reason = "the create was interrupted; delete it and create it again";
      } else if (vm.state == "deleting") {
        state = "error";
        reason = "the delete was interrupted; delete it again";
      }
      if (state == vm.state) continue;
      ++report.corrected;
      (void)store_.set_state(vm.id, state, reason);
      events_.publish("vm.state_changed", "vm/" + vm.id, "host",
                      json{{"id", vm.id},
                           {"name", vm.name},
                           {"state", state},
                           {"previous", vm.state},
                           {"reason", reason},
                           {"by", "reconciliation"}}
                          .dump());
      spdlog::info("reconciliation: vm {} is {} (was {})", vm.name, state, vm.state);
    }
    if (page->size() < 500) break;
    after = page->back().name;
  }
  json unmanaged = json::array();
  for (const auto& [driver, by_id] : live) {
    for (const auto& [id, v] : by_id) {
      if (known.count(id) != 0) continue;
      unmanaged.push_back({{"driver", driver},
                           {"id", id},
                           {"name", v.name},
                           {"state", sdk::vm_power_state_name(v.state)},
                           {"created_by_novacron", v.managed}});
    }
  }
  report.at_ms = now_ms();
  std::lock_guard<std::mutex> lock(mutex_);
  unmanaged_ = std::move(unmanaged);
  reconciled_at_ms_ = report.at_ms;
  return report;
}

void VmService::set_stats_observer(StatsObserver observer) { stats_observer_ = std::move(observer); }

json VmService::unmanaged() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return {{"items", unmanaged_},
          {"reconciled_at_ms", reconciled_at_ms_ == 0 ? json(nullptr) : json(reconciled_at_ms_)}};
}

void VmService::start_reconciler(std::chrono::seconds interval) {
  if (reconciler_.joinable()) return;
  reconciler_ = std::thread([this, interval] {
    using Clock = std::chrono::steady_clock;
    auto next_full = Clock::now();
    for (;;) {
      if (Clock::now() >= next_full) {
        if (auto r = reconcile(); !r) spdlog::warn("reconciliation failed: {}", r.error().message);
        next_full = interval.count() == 0 ? Clock::time_point::max() : Clock::now() + interval;
      }
      std::vector<sdk::VmEvent> events;
      {
        std::unique_lock<std::mutex> lock(loop_mutex_);
        auto ready = [this] { return stopping_ || !pending_events_.empty(); };
        if (next_full == Clock::time_point::max()) {
          wake_.wait(lock, ready);
        } else {
          wake_.wait_until(lock, next_full, ready);
        }
        if (stopping_) return;
        events.swap(pending_events_);
      }
      for (const auto& e : events) apply_driver_event(e);
    }
  });
}

void VmService::stop_reconciler() {
  {
    std::lock_guard<std::mutex> lock(loop_mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (reconciler_.joinable()) reconciler_.join();
}

void VmService::on_driver_event(const sdk::VmEvent& event) {
  // Runs on the driver's thread, inside its sink lock: only queue it. The reconciler thread
  // handles it (apply_driver_event).
  {
    std::lock_guard<std::mutex> lock(loop_mutex_);
    if (pending_events_.size() >= 10000) pending_events_.erase(pending_events_.begin());  // bounded
    pending_events_.push_back(event);
  }
  wake_.notify_all();
}

void VmService::apply_driver_event(const sdk::VmEvent& event) {
  // An event says "look again", not what to record: it can arrive after an operation has
  // moved the VM on (libvirt delivers asynchronously), so the state recorded is the one the
  // driver reports now. A VM with an operation in flight is left to the operation, which
  // records the state it leaves.
  auto vm = store_.get(event.id);
  if (!vm || !*vm || (*vm)->state == "creating" || (*vm)->state == "deleting") return;
  if (operations_.busy("vm/" + event.id)) return;
  auto d = driver((*vm)->driver);
  if (!d) return;
  auto live = d->vm_status(event.id);
  if (!live || live.value().state == sdk::VmPowerState::kUnknown) return;
  std::string state = sdk::vm_power_state_name(live.value().state);
  if (state == (*vm)->state) return;
  std::string reason = live.value().state == event.state ? event.reason : live.value().reason;
  (void)store_.set_state(event.id, state, reason);
  events_.publish(
      "vm.state_changed", "vm/" + event.id, "host",
      json{{"id", event.id}, {"name", event.name}, {"state", state}, {"previous", (*vm)->state}, {"reason", reason}}
          .dump());
}

}  // namespace novacron
