#include "kvm_driver.h"

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>

#include "domain_xml.h"
#include "novacron/sdk/json_config.hpp"

extern char** environ;

namespace novacron::kvm {
namespace {

using sdk::Status;
using sdk::StatusCode;

// libvirt prints every error to stderr unless told otherwise; errors are returned instead.
void ignore_libvirt_error(void* /*user_data*/, virErrorPtr /*error*/) {}

// The last libvirt error as a Status for `what` ("start nc-web"), with a code the host acts on.
Status libvirt_error(const std::string& what) {
  virErrorPtr e = virGetLastError();
  std::string message = what + ": " + (e != nullptr && e->message != nullptr ? e->message : "unknown libvirt error");
  int code = e != nullptr ? e->code : VIR_ERR_INTERNAL_ERROR;
  switch (code) {
    case VIR_ERR_NO_DOMAIN:
      return {StatusCode::kNotFound, message};
    case VIR_ERR_OPERATION_INVALID:
      return {StatusCode::kFailedPrecondition, message};
    case VIR_ERR_DOM_EXIST:
      return {StatusCode::kAlreadyExists, message};
    case VIR_ERR_XML_ERROR:
    case VIR_ERR_XML_DETAIL:
    case VIR_ERR_CONFIG_UNSUPPORTED:
    case VIR_ERR_INVALID_ARG:
      return {StatusCode::kInvalidArgument, message};
    case VIR_ERR_NO_CONNECT:
    case VIR_ERR_INVALID_CONN:
    case VIR_ERR_SYSTEM_ERROR:
    case VIR_ERR_RPC:
    case VIR_ERR_AUTH_FAILED:
      return {StatusCode::kUnavailable, message};
    default:
      return {StatusCode::kInternal, message};
  }
}

sdk::VmPowerState power_state(int state) {
  switch (state) {
    case VIR_DOMAIN_RUNNING:
      return sdk::VmPowerState::kRunning;
    case VIR_DOMAIN_BLOCKED:
      return sdk::VmPowerState::kRunning;  // running, waiting on I/O
    case VIR_DOMAIN_PAUSED:
    case VIR_DOMAIN_PMSUSPENDED:
      return sdk::VmPowerState::kPaused;
    case VIR_DOMAIN_SHUTDOWN:
      return sdk::VmPowerState::kStopping;
    case VIR_DOMAIN_SHUTOFF:
      return sdk::VmPowerState::kStopped;
    case VIR_DOMAIN_CRASHED:
      return sdk::VmPowerState::kCrashed;
    default:
      return sdk::VmPowerState::kUnknown;
  }
}

std::string stopped_reason(int reason) {
  switch (reason) {
    case VIR_DOMAIN_SHUTOFF_SHUTDOWN:
      return "shutdown";
    case VIR_DOMAIN_SHUTOFF_DESTROYED:
      return "destroyed";
    case VIR_DOMAIN_SHUTOFF_CRASHED:
      return "crashed";
    case VIR_DOMAIN_SHUTOFF_FAILED:
      return "failed";
    case VIR_DOMAIN_SHUTOFF_SAVED:
      return "saved";
    case VIR_DOMAIN_SHUTOFF_MIGRATED:
      return "migrated";
    default:
      return "";
  }
}

bool file_exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

// Images, kernels and initrds must be regular files (or block devices for disks).
bool usable_image(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && (S_ISREG(st.st_mode) || S_ISBLK(st.st_mode));
}

// Runs qemu-img (no shell) and waits for it.
Status run_qemu_img(const std::vector<std::string>& args) {
  std::vector<char*> argv;
  argv.push_back(const_cast<char*>("qemu-img"));
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = 0;
  if (::posix_spawnp(&pid, "qemu-img", nullptr, nullptr, argv.data(), environ) != 0) {
    return {StatusCode::kUnavailable, "cannot run qemu-img (install qemu-utils)"};
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return {StatusCode::kInternal, "qemu-img failed"};
  return Status::ok();
}

// Reads typed parameters of one domain's stats record into VmStats.
sdk::VmStats stats_from(const virDomainStatsRecordPtr record) {
  sdk::VmStats s;
  std::int64_t rd = 0, wr = 0, rx = 0, tx = 0, available = -1, unused = -1;
  bool any_block = false, any_net = false;
  for (int i = 0; i < record->nparams; ++i) {
    const virTypedParameter& p = record->params[i];
    std::string field = p.field;
    auto as_int = [&p]() -> std::int64_t {
      switch (p.type) {
        case VIR_TYPED_PARAM_ULLONG:
          return static_cast<std::int64_t>(p.value.ul);
        case VIR_TYPED_PARAM_LLONG:
          return p.value.l;
        case VIR_TYPED_PARAM_UINT:
          return p.value.ui;
        case VIR_TYPED_PARAM_INT:
          return p.value.i;
        default:
          return 0;
      }
    };
    auto ends_with = [&field](const char* suffix) {
      size_t n = std::strlen(suffix);
      return field.size() >= n && field.compare(field.size() - n, n, suffix) == 0;
    };
    if (field == "cpu.time") {
      s.cpu_time_ns = as_int();
    } else if (field == "balloon.current") {
      s.memory_balloon_kib = as_int();
    } else if (field == "balloon.available") {
      available = as_int();
    } else if (field == "balloon.unused") {
      unused = as_int();
    } else if (field.rfind("block.", 0) == 0 && ends_with(".rd.bytes")) {
      rd += as_int();
      any_block = true;
    } else if (field.rfind("block.", 0) == 0 && ends_with(".wr.bytes")) {
      wr += as_int();
      any_block = true;
    } else if (field.rfind("net.", 0) == 0 && ends_with(".rx.bytes")) {
      rx += as_int();
      any_net = true;
    } else if (field.rfind("net.", 0) == 0 && ends_with(".tx.bytes")) {
      tx += as_int();
      any_net = true;
    }
  }
  // Memory the guest uses, from its balloon driver's report (absent without one).
  if (available >= 0 && unused >= 0) s.memory_used_kib = available - unused;
  if (any_block) {
    s.disk_read_bytes = rd;
    s.disk_write_bytes = wr;
  }
  if (any_net) {
    s.net_rx_bytes = rx;
    s.net_tx_bytes = tx;
  }
  return s;
}

constexpr unsigned int kStatsWanted = VIR_DOMAIN_STATS_STATE | VIR_DOMAIN_STATS_CPU_TOTAL | VIR_DOMAIN_STATS_BALLOON |
                                      VIR_DOMAIN_STATS_BLOCK | VIR_DOMAIN_STATS_INTERFACE;

}  // namespace

struct KvmDriver::Domain {
  virDomainPtr ptr = nullptr;
  explicit Domain(virDomainPtr p) : ptr(p) {}
  Domain(Domain&& o) noexcept : ptr(std::exchange(o.ptr, nullptr)) {}
  Domain& operator=(Domain&&) = delete;
  ~Domain() {
    if (ptr != nullptr) virDomainFree(ptr);
  }
};

KvmDriver::~KvmDriver() { on_stop(); }

namespace {

// The domain's state, checked before an action so that "already running" and the like are
// kFailedPrecondition with a plain message, whatever error code the hypervisor would give.
Status require_state(virDomainPtr dom, std::initializer_list<int> allowed, const char* action) {
  int state = 0, reason = 0;
  if (virDomainGetState(dom, &state, &reason, 0) < 0)
    return libvirt_error(std::string("reading the state for ") + action);
  for (int a : allowed) {
    if (state == a) return Status::ok();
  }
  return {StatusCode::kFailedPrecondition, std::string("cannot ") + action + " " + virDomainGetName(dom) + ": it is " +
                                               sdk::vm_power_state_name(power_state(state))};
}

}  // namespace

Status KvmDriver::on_init(std::string_view config_json) {
  sdk::ConfigReader cfg(config_json);
  uri_ = cfg.string("uri", "qemu:///system");
  configured_type_ = cfg.string("domain_type", "auto");
  shutdown_poll_ = std::chrono::milliseconds(cfg.integer("shutdown_poll_ms", 200, 10, 10000));
  cfg.reject_unknown_keys();
  if (!cfg.ok()) return sdk::invalid_argument(cfg.error());
  if (configured_type_ != "auto" && configured_type_ != "kvm" && configured_type_ != "qemu" &&
      configured_type_ != "test") {
    return sdk::invalid_argument("/domain_type: expected auto, kvm, qemu or test, got \"" + configured_type_ + "\"");
  }
  return Status::ok();
}

Status KvmDriver::on_start() {
  virSetErrorFunc(nullptr, ignore_libvirt_error);
  // libvirt's default event loop, once per process (a driver reloaded later reuses it).
  static const int registered = virEventRegisterDefaultImpl();
  if (registered < 0) return libvirt_error("starting libvirt's event loop");
  // A periodic timer wakes the loop so that the thread notices stop(); stop() fires it at once.
  wake_timer_ = virEventAddTimeout(
      1000, [](int, void*) {}, nullptr, nullptr);
  stopping_ = false;
  event_thread_ = std::thread([this] { run_event_loop(); });
  // libvirtd may be down: the driver still starts and reports itself unavailable.
  if (auto c = connection(); !c) {
    host().log(sdk::LogLevel::kWarn, "libvirt not reachable; retrying on use",
               {{"uri", uri_}, {"error", c.status().message()}});
  }
  return Status::ok();
}

void KvmDriver::on_stop() {
  if (event_thread_.joinable()) {
    stopping_ = true;
    virEventUpdateTimeout(wake_timer_, 0);
    event_thread_.join();
  }
  if (wake_timer_ >= 0) {
    virEventRemoveTimeout(wake_timer_);
    wake_timer_ = -1;
  }
  drop_connection();
}

void KvmDriver::run_event_loop() {
  while (!stopping_) {
    if (virEventRunDefaultImpl() < 0) break;
  }
}

void KvmDriver::retire_connection_locked() {
  if (conn_ == nullptr) return;
  if (lifecycle_callback_ >= 0) virConnectDomainEventDeregisterAny(conn_, lifecycle_callback_);
  virConnectUnregisterCloseCallback(conn_, on_connection_closed);
  // Not closed yet: another thread may still be in a call on it. Closed at stop.
  retired_.push_back(conn_);
  conn_ = nullptr;
  lifecycle_callback_ = -1;
}

void KvmDriver::drop_connection() {
  std::lock_guard<std::mutex> lock(mutex_);
  retire_connection_locked();
  for (virConnectPtr c : retired_) virConnectClose(c);
  retired_.clear();
}

void KvmDriver::on_connection_closed(virConnectPtr, int reason, void* opaque) {
  auto* self = static_cast<KvmDriver*>(opaque);
  // Not closed here (libvirt holds the connection during the callback): the next call
  // sees it is no longer alive and reconnects.
  self->host().log(sdk::LogLevel::kWarn, "libvirt connection closed", {{"reason", std::to_string(reason)}});
}

sdk::Result<virConnectPtr> KvmDriver::connection() {
  // One lock around the whole check-and-reconnect: two callers never both open one.
  std::lock_guard<std::mutex> lock(mutex_);
  if (conn_ != nullptr && virConnectIsAlive(conn_) == 1) return conn_;
  retire_connection_locked();
  auto now = std::chrono::steady_clock::now();
  if (now < next_attempt_) {
    auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(next_attempt_ - now).count();
    return Status{StatusCode::kUnavailable,
                  uri_ + ": " + last_error_ + " (next attempt in " + std::to_string(wait) + " ms)"};
  }
  virConnectPtr c = virConnectOpen(uri_.c_str());
  if (c == nullptr) {
    virErrorPtr e = virGetLastError();
    last_error_ = e != nullptr && e->message != nullptr ? e->message : "cannot connect";
    next_attempt_ = now + backoff_;
    backoff_ = std::min(backoff_ * 2, std::chrono::milliseconds(30000));
    return Status{StatusCode::kUnavailable, uri_ + ": " + last_error_};
  }
  backoff_ = std::chrono::milliseconds(1000);
  last_error_.clear();
  conn_ = c;
  virConnectRegisterCloseCallback(conn_, on_connection_closed, this, nullptr);
  lifecycle_callback_ = virConnectDomainEventRegisterAny(conn_, nullptr, VIR_DOMAIN_EVENT_ID_LIFECYCLE,
                                                         VIR_DOMAIN_EVENT_CALLBACK(on_lifecycle_event), this, nullptr);
  return conn_;
}

void KvmDriver::on_lifecycle_event(virConnectPtr, virDomainPtr dom, int event, int detail, void* opaque) {
  auto* self = static_cast<KvmDriver*>(opaque);
  sdk::VmEvent ev;
  char uuid[VIR_UUID_STRING_BUFLEN] = {};
  virDomainGetUUIDString(dom, uuid);
  ev.id = uuid;
  ev.name = virDomainGetName(dom);
  switch (event) {
    case VIR_DOMAIN_EVENT_STARTED:
    case VIR_DOMAIN_EVENT_RESUMED:
      ev.state = sdk::VmPowerState::kRunning;
      ev.reason = event == VIR_DOMAIN_EVENT_STARTED ? "started" : "resumed";
      break;
    case VIR_DOMAIN_EVENT_SUSPENDED:
      ev.state = sdk::VmPowerState::kPaused;
      ev.reason = "suspended";
      break;
    case VIR_DOMAIN_EVENT_STOPPED:
      ev.state = sdk::VmPowerState::kStopped;
      ev.reason = stopped_reason(detail == VIR_DOMAIN_EVENT_STOPPED_SHUTDOWN    ? VIR_DOMAIN_SHUTOFF_SHUTDOWN
                                 : detail == VIR_DOMAIN_EVENT_STOPPED_DESTROYED ? VIR_DOMAIN_SHUTOFF_DESTROYED
                                 : detail == VIR_DOMAIN_EVENT_STOPPED_CRASHED   ? VIR_DOMAIN_SHUTOFF_CRASHED
                                 : detail == VIR_DOMAIN_EVENT_STOPPED_FAILED    ? VIR_DOMAIN_SHUTOFF_FAILED
                                 : detail == VIR_DOMAIN_EVENT_STOPPED_MIGRATED  ? VIR_DOMAIN_SHUTOFF_MIGRATED
                                 : detail == VIR_DOMAIN_EVENT_STOPPED_SAVED     ? VIR_DOMAIN_SHUTOFF_SAVED
                                                                                : -1);
      break;
    case VIR_DOMAIN_EVENT_SHUTDOWN:
      ev.state = sdk::VmPowerState::kStopping;
      ev.reason = "shutting down";
      break;
    case VIR_DOMAIN_EVENT_CRASHED:
      ev.state = sdk::VmPowerState::kCrashed;
      ev.reason = "crashed";
      break;
    case VIR_DOMAIN_EVENT_UNDEFINED:
      ev.state = sdk::VmPowerState::kUnknown;
      ev.reason = "undefined";
      break;
    case VIR_DOMAIN_EVENT_DEFINED:
      ev.state = sdk::VmPowerState::kStopped;
      ev.reason = "defined";
      break;
    default:
      return;
  }
  self->emit(ev);
}

std::string KvmDriver::domain_type() {
  if (configured_type_ != "auto") return configured_type_;
  std::lock_guard<std::mutex> lock(mutex_);
  if (!domain_type_.empty() || conn_ == nullptr) return domain_type_;
  char* caps = virConnectGetCapabilities(conn_);
  if (caps == nullptr) return "";
  std::string xml(caps);
  std::free(caps);
  // libvirt may list kvm where /dev/kvm is missing (sandboxes, nested guests without
  // virtualisation): kvm only when this machine has the device, else QEMU's TCG.
  const bool have_kvm = ::access("/dev/kvm", R_OK | W_OK) == 0;
  for (const char* t : {"kvm", "qemu", "test"}) {
    if (std::string(t) == "kvm" && !have_kvm) continue;
    if (xml.find(std::string("<domain type='") + t + "'") != std::string::npos) {
      domain_type_ = t;
      break;
    }
  }
  return domain_type_;
}

Status KvmDriver::on_check_available() {
  auto c = connection();
  return c ? Status::ok() : c.status();
}

sdk::Result<sdk::DriverCapabilities> KvmDriver::on_capabilities() {
  auto c = connection();
  if (!c) return c.status();
  sdk::DriverCapabilities caps;
  bool real = domain_type() != "test";  // libvirt's test driver cannot migrate
  caps.live_migration = real;
  caps.save_restore = true;
  caps.snapshots = true;
  caps.suspend = true;
  caps.reboot = true;
  caps.console_log = real;
  return caps;
}

sdk::Result<sdk::NodeResources> KvmDriver::on_node_resources() {
  auto c = connection();
  if (!c) return c.status();
  virNodeInfo info{};
  if (virNodeGetInfo(c.value(), &info) < 0) return libvirt_error("reading node info");
  sdk::NodeResources r;
  r.cpus = static_cast<int>(info.cpus);
  r.memory_total_mib = static_cast<std::int64_t>(info.memory / 1024);
  unsigned long long free_bytes = virNodeGetFreeMemory(c.value());
  r.memory_free_mib = static_cast<std::int64_t>(free_bytes / (1024 * 1024));
  r.cpu_model = info.model;
  const char* type = virConnectGetType(c.value());
  unsigned long version = 0;
  virConnectGetVersion(c.value(), &version);
  r.hypervisor = std::string(type != nullptr ? type : "?") + " " + std::to_string(version / 1000000) + "." +
                 std::to_string(version / 1000 % 1000) + "." + std::to_string(version % 1000) + " (" + domain_type() +
                 ")";
  return r;
}

Status KvmDriver::on_validate(const sdk::VmSpec& spec) {
  if (Status s = check_spec(spec); !s) return s;
  if (!spec.container.empty()) {
    return sdk::invalid_argument(
        "/container: the kvm driver runs virtual machines; container settings need driver lxc");
  }
  for (size_t i = 0; i < spec.disks.size(); ++i) {
    const auto& d = spec.disks[i];
    const std::string p = "/disks/" + std::to_string(i);
    if (d.size_gib > 0) {
      if (file_exists(d.path))
        return sdk::invalid_argument(p + "/path: " + d.path + " exists; size_gib creates a new disk");
      if (d.path.rfind(spec.vm_dir + "/", 0) != 0) {
        return sdk::invalid_argument(p + "/path: a new disk must be created in the VM's folder " + spec.vm_dir);
      }
    } else if (!usable_image(d.path)) {
      return sdk::invalid_argument(p + "/path: " + d.path + " is not an image file");
    }
  }
  if (spec.boot.from == "kernel") {
    if (!usable_image(spec.boot.kernel)) {
      return sdk::invalid_argument("/boot/kernel: " + spec.boot.kernel + " is not a file");
    }
    if (!spec.boot.initrd.empty() && !usable_image(spec.boot.initrd)) {
      return sdk::invalid_argument("/boot/initrd: " + spec.boot.initrd + " is not a file");
    }
  }
  return Status::ok();
}

Status KvmDriver::create_disks(const sdk::VmSpec& spec) {
  for (size_t i = 0; i < spec.disks.size(); ++i) {
    const auto& d = spec.disks[i];
    if (d.size_gib <= 0) continue;
    if (Status s = run_qemu_img({"create", "-q", "-f", d.format, d.path, std::to_string(d.size_gib) + "G"}); !s) {
      return Status{s.code(), "/disks/" + std::to_string(i) + ": creating " + d.path + ": " + s.message()};
    }
  }
  return Status::ok();
}

Status KvmDriver::on_define(const sdk::VmSpec& spec) {
  if (Status s = on_validate(spec); !s) return s;
  auto c = connection();
  if (!c) return c.status();
  if (virDomainPtr existing = virDomainLookupByName(c.value(), spec.name.c_str())) {
    virDomainFree(existing);
    return {StatusCode::kAlreadyExists, "a domain named " + spec.name + " already exists in libvirt"};
  }
  std::string type = domain_type();
  if (type.empty()) return {StatusCode::kUnavailable, "libvirt offers no kvm, qemu or test domain type"};
  if (Status s = create_disks(spec); !s) return s;
  std::string xml = domain_xml(spec, type);
  virDomainPtr dom = virDomainDefineXML(c.value(), xml.c_str());
  if (dom == nullptr) {
    Status err = libvirt_error("defining " + spec.name);
    for (const auto& d : spec.disks) {
      if (d.size_gib > 0) ::unlink(d.path.c_str());  // created above: not left behind
    }
    return err;
  }
  virDomainFree(dom);
  return Status::ok();
}

sdk::Result<KvmDriver::Domain> KvmDriver::lookup(std::string_view id) {
  auto c = connection();
  if (!c) return c.status();
  std::string uuid(id);
  virDomainPtr dom = virDomainLookupByUUIDString(c.value(), uuid.c_str());
  if (dom == nullptr) return libvirt_error("vm " + uuid);
  return Domain(dom);
}

Status KvmDriver::on_start_vm(std::string_view id) {
  auto dom = lookup(id);
  if (!dom) return dom.status();
  if (Status s = require_state(dom->ptr, {VIR_DOMAIN_SHUTOFF, VIR_DOMAIN_CRASHED}, "start"); !s) return s;
  if (virDomainCreate(dom->ptr) < 0) return libvirt_error("starting " + std::string(virDomainGetName(dom->ptr)));
  return Status::ok();
}

Status KvmDriver::on_stop_vm(std::string_view id, std::chrono::milliseconds timeout) {
  auto dom = lookup(id);
  if (!dom) return dom.status();
  const std::string name = virDomainGetName(dom->ptr);
  if (virDomainIsActive(dom->ptr) != 1) return {StatusCode::kFailedPrecondition, name + " is not running"};
  // Graceful first (ACPI power button); a guest that ignores it is forced off at the deadline.
  if (virDomainShutdown(dom->ptr) == 0) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      int state = 0, reason = 0;
      if (virDomainGetState(dom->ptr, &state, &reason, 0) == 0 && state == VIR_DOMAIN_SHUTOFF) return Status::ok();
      std::this_thread::sleep_for(shutdown_poll_);
    }
  }
  if (virDomainIsActive(dom->ptr) != 1) return Status::ok();
  if (virDomainDestroy(dom->ptr) < 0) return libvirt_error("forcing off " + name);
  host().log(sdk::LogLevel::kInfo, "vm forced off after the shutdown timeout", {{"vm", name}});
  return Status::ok();
}

Status KvmDriver::on_reboot(std::string_view id) {
  auto dom = lookup(id);
  if (!dom) return dom.status();
  if (Status s = require_state(dom->ptr, {VIR_DOMAIN_RUNNING, VIR_DOMAIN_BLOCKED}, "reboot"); !s) return s;
  if (virDomainReboot(dom->ptr, 0) < 0) return libvirt_error("rebooting " + std::string(virDomainGetName(dom->ptr)));
  return Status::ok();
}

Status KvmDriver::on_suspend(std::string_view id) {
  auto dom = lookup(id);
  if (!dom) return dom.status();
  if (Status s = require_state(dom->ptr, {VIR_DOMAIN_RUNNING, VIR_DOMAIN_BLOCKED}, "suspend"); !s) return s;
  if (virDomainSuspend(dom->ptr) < 0) return libvirt_error("suspending " + std::string(virDomainGetName(dom->ptr)));
  return Status::ok();
}

Status KvmDriver::on_resume(std::string_view id) {
  auto dom = lookup(id);
  if (!dom) return dom.status();
  if (Status s = require_state(dom->ptr, {VIR_DOMAIN_PAUSED}, "resume"); !s) return s;
  if (virDomainResume(dom->ptr) < 0) return libvirt_error("resuming " + std::string(virDomainGetName(dom->ptr)));
  return Status::ok();
}

Status KvmDriver::on_destroy(std::string_view id) {
  auto dom = lookup(id);
  if (!dom) return dom.status();
  const std::string name = virDomainGetName(dom->ptr);
  if (virDomainIsActive(dom->ptr) == 1 && virDomainDestroy(dom->ptr) < 0) return libvirt_error("forcing off " + name);
  constexpr unsigned int kFlags =
      VIR_DOMAIN_UNDEFINE_MANAGED_SAVE | VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA | VIR_DOMAIN_UNDEFINE_NVRAM;
  if (virDomainUndefineFlags(dom->ptr, kFlags) < 0 && virDomainUndefine(dom->ptr) < 0) {
    return libvirt_error("undefining " + name);
  }
  return Status::ok();
}

sdk::VmStatus KvmDriver::status_of(virDomainPtr dom) {
  sdk::VmStatus st;
  char uuid[VIR_UUID_STRING_BUFLEN] = {};
  virDomainGetUUIDString(dom, uuid);
  st.id = uuid;
  st.name = virDomainGetName(dom);
  if (char* meta = virDomainGetMetadata(dom, VIR_DOMAIN_METADATA_ELEMENT, kMetadataUri, 0)) {
    st.managed = true;
    std::free(meta);
  }
  int state = 0, reason = 0;
  if (virDomainGetState(dom, &state, &reason, 0) == 0) {
    st.state = power_state(state);
    if (state == VIR_DOMAIN_SHUTOFF) st.reason = stopped_reason(reason);
  }
  return st;
}

sdk::Result<sdk::VmStatus> KvmDriver::on_status(std::string_view id) {
  auto dom = lookup(id);
  if (!dom) return dom.status();
  sdk::VmStatus st = status_of(dom->ptr);
  virDomainPtr doms[] = {dom->ptr, nullptr};
  virDomainStatsRecordPtr* records = nullptr;
  int n = virDomainListGetStats(doms, kStatsWanted, &records, 0);
  if (n > 0) st.stats = stats_from(records[0]);
  if (records != nullptr) virDomainStatsRecordListFree(records);
  return st;
}

sdk::Result<std::vector<sdk::VmStatus>> KvmDriver::on_list() {
  auto c = connection();
  if (!c) return c.status();
  virDomainPtr* doms = nullptr;
  int n = virConnectListAllDomains(c.value(), &doms, 0);
  if (n < 0) return libvirt_error("listing domains");
  std::vector<sdk::VmStatus> out;
  out.reserve(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    out.push_back(status_of(doms[i]));
    virDomainFree(doms[i]);
  }
  std::free(doms);
  // One stats call for every domain (not one per domain: thousands of VMs per node).
  virDomainStatsRecordPtr* records = nullptr;
  int m = virConnectGetAllDomainStats(c.value(), kStatsWanted, &records, 0);
  if (m > 0) {
    std::map<std::string, sdk::VmStats> by_id;
    for (int i = 0; i < m; ++i) {
      char uuid[VIR_UUID_STRING_BUFLEN] = {};
      virDomainGetUUIDString(records[i]->dom, uuid);
      by_id[uuid] = stats_from(records[i]);
    }
    for (auto& st : out) {
      if (auto it = by_id.find(st.id); it != by_id.end()) st.stats = it->second;
    }
  }
  if (records != nullptr) virDomainStatsRecordListFree(records);
  return out;
}

}  // namespace novacron::kvm
