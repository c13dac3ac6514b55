#include "lxc_driver.h"

#include <dlfcn.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "container_config.h"
#include "novacron/sdk/json_config.hpp"

namespace novacron::lxc {
namespace {

using json = nlohmann::json;
using sdk::Status;
using sdk::StatusCode;
using std::chrono::milliseconds;

// A string of config items liblxc would read as several lines must never reach it.
bool single_line(const std::string& s) { return s.find_first_of("\r\n") == std::string::npos; }

bool is_regular_file(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

bool is_directory(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// The folder this plugin's library was loaded from: the helper is installed beside it.
// The host loads verified libraries through /proc/self/fd/N (kept open), so the link is
// followed to the file's real place.
std::string plugin_dir() {
  Dl_info info{};
  if (::dladdr(reinterpret_cast<void*>(&plugin_dir), &info) == 0 || info.dli_fname == nullptr) return "";
  std::string path = info.dli_fname;
  if (path.rfind("/proc/self/fd/", 0) == 0) {
    std::error_code ec;
    auto target = std::filesystem::read_symlink(path, ec);
    if (ec) return "";
    path = target.string();
  }
  return std::filesystem::path(path).parent_path().string();
}

std::int64_t meminfo_kib(const std::string& key) {
  std::ifstream in("/proc/meminfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key + ":", 0) == 0) return std::stoll(line.substr(key.size() + 1));
  }
  return 0;
}

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) {
      auto value = line.find_first_not_of(' ', line.find(':') == std::string::npos ? line.size() : line.find(':') + 1);
      return value == std::string::npos ? "" : line.substr(value);
    }
  }
  return "";
}

std::int64_t int_field(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_number_integer() ? it->get<std::int64_t>() : -1;
}

std::string string_field(const json& j, const char* key) {
  auto it = j.is_object() ? j.find(key) : j.end();
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

// A container of the helper's list or status answer. Every field is checked: a malformed
// answer gives an unknown, unmanaged container, never an exception.
sdk::VmStatus status_from(const json& c) {
  sdk::VmStatus s;
  s.name = string_field(c, "name");
  auto marker = c.is_object() ? c.find("marker") : c.end();
  std::string vm_id = marker != c.end() ? string_field(*marker, "vm_id") : "";
  s.managed = !vm_id.empty();
  s.id = s.managed ? vm_id : s.name;  // containers have no uuid of their own
  std::string state = string_field(c, "state");
  s.state = power_state_from_lxc(state);
  s.reason = state == "STOPPED" ? "stopped" : "";
  if (auto st = c.is_object() ? c.find("stats") : c.end(); st != c.end() && st->is_object()) {
    s.stats.cpu_time_ns = int_field(*st, "cpu_time_ns");
    s.stats.memory_used_kib = int_field(*st, "memory_used_kib");
    s.stats.disk_read_bytes = int_field(*st, "disk_read_bytes");
    s.stats.disk_write_bytes = int_field(*st, "disk_write_bytes");
    s.stats.net_rx_bytes = int_field(*st, "net_rx_bytes");
    s.stats.net_tx_bytes = int_field(*st, "net_tx_bytes");
  }
  return s;
}

// The "containers" array of a list answer ([] when it has none).
const json& containers_of(const json& answer) {
  static const json kNone = json::array();
  auto it = answer.is_object() ? answer.find("containers") : answer.end();
  return it != answer.end() && it->is_array() ? *it : kNone;
}

}  // namespace

LxcDriver::~LxcDriver() { on_stop(); }

Status LxcDriver::on_init(std::string_view config_json) {
  sdk::ConfigReader cfg(config_json);
  lxcpath_ = cfg.string("lxcpath", "");
  default_template_ = cfg.string("template", "busybox");
  default_tarball_ = cfg.string("rootfs_tarball", "");
  template_dir_ = cfg.string("template_dir", "/usr/share/lxc/templates");
  helper_path_ = cfg.string("helper_path", "");
  helper_processes_ = static_cast<int>(cfg.integer("helper_processes", 2, 1, 64));
  request_timeout_ = std::chrono::seconds(cfg.integer("request_timeout_seconds", 60, 1, 3600));
  create_timeout_ = std::chrono::seconds(cfg.integer("create_timeout_seconds", 600, 1, 86400));
  shutdown_poll_ = milliseconds(cfg.integer("shutdown_poll_ms", 100, 10, 10000));
  state_poll_ = milliseconds(cfg.integer("state_poll_ms", 1000, 0, 600000));
  cfg.reject_unknown_keys();
  if (!cfg.ok()) return sdk::invalid_argument(cfg.error());
  for (const auto& [key, path] : {std::pair<const char*, std::string&>{"lxcpath", lxcpath_},
                                  {"rootfs_tarball", default_tarball_},
                                  {"template_dir", template_dir_},
                                  {"helper_path", helper_path_}}) {
    if (!path.empty() && (path[0] != '/' || !single_line(path))) {
      return sdk::invalid_argument(std::string("/") + key + ": expected an absolute path, got \"" + path + "\"");
    }
  }
  return Status::ok();
}

Status LxcDriver::on_start() {
  if (lxcpath_.empty()) {
    if (host().host_sdk_minor() < 1) return sdk::invalid_argument("/lxcpath: required with this host (no data dir)");
    lxcpath_ = host().data_dir() + "/lxc";
  }
  std::error_code ec;
  std::filesystem::create_directories(lxcpath_, ec);
  if (ec) return sdk::unavailable("cannot create lxcpath " + lxcpath_ + ": " + ec.message());
  ::chmod(lxcpath_.c_str(), 0700);  // container configs and rootfs are root's business
  if (helper_path_.empty()) helper_path_ = plugin_dir() + "/novacron-lxc-helper";
  pool_ = std::make_unique<HelperPool>(HelperPoolOptions{helper_path_, kHelperSha256, lxcpath_, helper_processes_});
  // A helper that cannot start makes the driver unavailable, not the host fail.
  if (Status s = on_check_available(); !s) {
    host().log(sdk::LogLevel::kWarn, "lxc driver unavailable; retrying on use", {{"error", s.message()}});
  }
  stopping_ = false;
  if (state_poll_.count() > 0) monitor_ = std::thread([this] { run_monitor(); });
  return Status::ok();
}

void LxcDriver::on_stop() {
  {
    std::lock_guard<std::mutex> lock(monitor_mutex_);
    stopping_ = true;
  }
  monitor_wake_.notify_all();
  if (monitor_.joinable()) monitor_.join();
  pool_.reset();
}

sdk::Result<json> LxcDriver::request(const std::string& op, const std::string& name, milliseconds timeout) {
  if (!pool_) return sdk::unavailable("the lxc driver is not started");
  json req = {{"op", op}};
  if (!name.empty()) req["name"] = name;
  return pool_->call(req, timeout.count() > 0 ? timeout : request_timeout_);
}

sdk::Result<std::string> LxcDriver::name_of(std::string_view id) {
  {
    std::lock_guard<std::mutex> lock(names_mutex_);
    if (auto it = names_.find(std::string(id)); it != names_.end()) return it->second;
  }
  auto listed = request("list", "");
  if (!listed) return listed.status();
  std::lock_guard<std::mutex> lock(names_mutex_);
  for (const auto& c : containers_of(listed.value())) {
    sdk::VmStatus s = status_from(c);
    if (s.managed) names_[s.id] = s.name;
  }
  if (auto it = names_.find(std::string(id)); it != names_.end()) return it->second;
  return Status{StatusCode::kNotFound, "no container for vm " + std::string(id) + " in " + lxcpath_};
}

sdk::Result<json> LxcDriver::request_for(const std::string& op, std::string_view id) {
  auto name = name_of(id);
  if (!name) return name.status();
  auto r = request(op, name.value());
  if (!r && r.status().code() == StatusCode::kNotFound) {
    std::lock_guard<std::mutex> lock(names_mutex_);  // gone behind our back: forget it
    names_.erase(std::string(id));
  }
  return r;
}

Status LxcDriver::on_check_available() {
  // A live helper answered its hello when it started and is replaced if it dies: that is
  // enough, and asking again would wait behind long calls (creates) on a busy pool.
  if (pool_ && !pool_->pids().empty()) return Status::ok();
  auto hello = request("hello", "", std::chrono::seconds(15));
  return hello ? Status::ok() : hello.status();
}

sdk::Result<sdk::DriverCapabilities> LxcDriver::on_capabilities() {
  sdk::DriverCapabilities c;
  c.live_migration = false;  // needs CRIU, which does not work on every kernel
  c.save_restore = false;
  c.snapshots = false;
  c.suspend = true;  // the cgroup freezer
  c.reboot = true;
  c.console_log = true;
  return c;
}

sdk::Result<sdk::NodeResources> LxcDriver::on_node_resources() {
  // The versions come from a helper's hello (the pool keeps the last one).
  sdk::Result<json> hello = pool_ ? pool_->hello() : json();
  if (!hello.value().is_object() || hello.value().empty()) hello = request("hello", "");
  if (!hello) return hello.status();
  sdk::NodeResources r;
  r.cpus = static_cast<int>(::sysconf(_SC_NPROCESSORS_ONLN));
  r.memory_total_mib = meminfo_kib("MemTotal") / 1024;
  r.memory_free_mib = meminfo_kib("MemAvailable") / 1024;
  r.cpu_model = cpu_model();
  r.hypervisor =
      "LXC " + hello.value().value("lxc_version", "?") + " (cgroup " + hello.value().value("cgroup", "?") + ")";
  return r;
}

Status LxcDriver::on_validate(const sdk::VmSpec& spec) {
  if (!spec.disks.empty()) {
    return sdk::invalid_argument(
        "/disks: containers have no disks; their root filesystem comes from /container/template or "
        "/container/rootfs_tarball");
  }
  if (spec.boot.from != "disk" || !spec.boot.kernel.empty()) {
    return sdk::invalid_argument("/boot: containers run /container/init on the host's kernel, they boot no kernel");
  }
  for (size_t i = 0; i < spec.nics.size(); ++i) {
    const auto& n = spec.nics[i];
    const std::string p = "/network/" + std::to_string(i);
    if (n.type != "bridge") {
      return sdk::invalid_argument(p +
                                   "/type: the lxc driver offers \"bridge\" (a veth pair on a host bridge) or "
                                   "no network, not \"" +
                                   n.type + "\"");
    }
    if (n.bridge.empty() || n.bridge.find('/') != std::string::npos || n.bridge.size() > 15) {
      return sdk::invalid_argument(p + "/bridge: expected a bridge interface name");
    }
    if (!is_directory("/sys/class/net/" + n.bridge + "/bridge")) {
      return sdk::invalid_argument(p + "/bridge: there is no bridge \"" + n.bridge + "\" on this node");
    }
  }
  const auto& c = spec.container;
  if (!c.rootfs_tarball.empty() && !is_regular_file(c.rootfs_tarball)) {
    return sdk::invalid_argument("/container/rootfs_tarball: " + c.rootfs_tarball + " is not a file");
  }
  const auto [tmpl, tarball] = rootfs_source(spec);
  if (!tarball.empty() && !is_regular_file(tarball)) {
    return sdk::invalid_argument("/container/rootfs_tarball: the driver's default " + tarball + " is not a file");
  }
  if (!tmpl.empty() && !is_regular_file(template_dir_ + "/lxc-" + tmpl)) {
    return sdk::invalid_argument("/container/template: there is no LXC template \"" + tmpl + "\" in " + template_dir_);
  }
  for (const auto& [k, v] : c.env) {
    if (!single_line(v)) return sdk::invalid_argument("/container/env/" + k + ": must be one line");
  }
  if (!single_line(spec.console_log) || !single_line(spec.vm_dir)) {
    return sdk::invalid_argument("/name: the VM's folder must be one line");
  }
  return Status::ok();
}

std::pair<std::string, std::string> LxcDriver::rootfs_source(const sdk::VmSpec& spec) const {
  const auto& c = spec.container;
  if (!c.template_name.empty()) return {c.template_name, ""};
  if (!c.rootfs_tarball.empty()) return {"", c.rootfs_tarball};
  if (!default_tarball_.empty()) return {"", default_tarball_};
  return {default_template_, ""};
}

Status LxcDriver::on_define(const sdk::VmSpec& spec) {
  if (Status s = on_validate(spec); !s) return s;
  const auto& c = spec.container;
  json req = {{"op", "create"}, {"name", spec.name}};
  const auto [tmpl, tarball] = rootfs_source(spec);
  ConfigItems items = container_config(spec, detect_cgroup_layout());
  if (!tarball.empty()) {
    req["tarball"] = tarball;
    // A bare rootfs gets LXC's distribution-neutral defaults (mounts, devices, capabilities).
    items.insert(items.begin(), {"lxc.include", "/usr/share/lxc/config/common.conf"});
    items.emplace_back("lxc.autodev", "1");
  } else {
    req["template"] = template_dir_ + "/lxc-" + tmpl;  // liblxc runs a template given by path
  }
  // An init command of the operator's gets SIGTERM to stop, as container runtimes send;
  // the templates' own init keeps the halt signal the template chose.
  if (!c.init.empty()) items.emplace_back("lxc.signal.halt", "SIGTERM");
  req["config"] = items;
  req["marker"] = marker_for(spec);
  std::error_code ec;
  std::filesystem::create_directories(spec.vm_dir, ec);
  if (!pool_) return sdk::unavailable("the lxc driver is not started");
  auto r = pool_->call(req, create_timeout_);
  if (!r) {
    // The helper died or was killed mid-create: remove what it left (only a container
    // whose provisional marker names this VM), so that the name is free again.
    if (r.status().code() == StatusCode::kUnavailable) {
      auto discarded = pool_->call({{"op", "discard"}, {"name", spec.name}, {"vm_id", spec.id}}, request_timeout_);
      if (!discarded) {
        host().log(sdk::LogLevel::kWarn, "could not remove an unfinished container",
                   {{"name", spec.name}, {"error", discarded.status().message()}});
      }
    }
    return r.status();
  }
  observe(spec.id, sdk::VmPowerState::kStopped);
  std::lock_guard<std::mutex> lock(names_mutex_);
  names_[spec.id] = spec.name;
  return Status::ok();
}

Status LxcDriver::on_start_vm(std::string_view id) {
  auto r = request_for("start", id);
  if (r) observe(id, sdk::VmPowerState::kRunning);
  return r ? Status::ok() : r.status();
}

Status LxcDriver::stop_container(const std::string& name, milliseconds timeout) {
  // A frozen container cannot act on the halt signal: thaw it first.
  if (auto st = request("status", name); st && string_field(st.value(), "state") == "FROZEN") {
    if (auto thawed = request("unfreeze", name); !thawed) return thawed.status();
  }
  auto asked = request("shutdown", name);
  if (!asked) return asked.status();
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    auto st = request("status", name);
    if (!st) return st.status();
    if (string_field(st.value(), "state") == "STOPPED") return Status::ok();
    std::this_thread::sleep_for(shutdown_poll_);
  }
  auto killed = request("stop", name);  // the init did not stop in time
  return killed ? Status::ok() : killed.status();
}

Status LxcDriver::on_stop_vm(std::string_view id, milliseconds timeout) {
  auto name = name_of(id);
  if (!name) return name.status();
  Status s = stop_container(name.value(), timeout);
  if (s) observe(id, sdk::VmPowerState::kStopped);
  return s;
}

Status LxcDriver::on_reboot(std::string_view id) {
  auto name = name_of(id);
  if (!name) return name.status();
  auto st = request("status", name.value());
  if (!st) return st.status();
  if (string_field(st.value(), "state") != "RUNNING") {
    return Status{StatusCode::kFailedPrecondition, "container " + name.value() + " is not running"};
  }
  if (Status s = stop_container(name.value(), std::chrono::seconds(10)); !s) return s;
  auto started = request("start", name.value());
  if (started) observe(id, sdk::VmPowerState::kRunning);
  return started ? Status::ok() : started.status();
}

Status LxcDriver::on_suspend(std::string_view id) {
  auto r = request_for("freeze", id);
  if (r) observe(id, sdk::VmPowerState::kPaused);
  return r ? Status::ok() : r.status();
}

Status LxcDriver::on_resume(std::string_view id) {
  auto r = request_for("unfreeze", id);
  if (r) observe(id, sdk::VmPowerState::kRunning);
  return r ? Status::ok() : r.status();
}

Status LxcDriver::on_destroy(std::string_view id) {
  auto r = request_for("destroy", id);
  if (!r) return r.status();
  observe(id, std::nullopt);
  std::lock_guard<std::mutex> lock(names_mutex_);
  names_.erase(std::string(id));
  return Status::ok();
}

sdk::Result<sdk::VmStatus> LxcDriver::on_status(std::string_view id) {
  auto name = name_of(id);
  if (!name) return name.status();
  if (!pool_) return sdk::unavailable("the lxc driver is not started");
  auto r = pool_->call({{"op", "status"}, {"name", name.value()}, {"stats", true}}, request_timeout_);
  if (!r) return r.status();
  return status_from(r.value());
}

std::vector<sdk::VmStatus> LxcDriver::statuses_of(const json& containers) {
  std::vector<sdk::VmStatus> out;
  if (!containers.is_array()) return out;
  for (const auto& c : containers) out.push_back(status_from(c));
  return out;
}

sdk::Result<std::vector<sdk::VmStatus>> LxcDriver::on_list() {
  auto r = request("list", "");
  if (!r) return r.status();
  return statuses_of(containers_of(r.value()));
}

void LxcDriver::observe(std::string_view id, std::optional<sdk::VmPowerState> state) {
  std::lock_guard<std::mutex> lock(observed_mutex_);
  if (state) {
    observed_[std::string(id)] = *state;
  } else {
    observed_.erase(std::string(id));
  }
}

void LxcDriver::run_monitor() {
  bool first = true;
  std::unique_lock<std::mutex> lock(monitor_mutex_);
  while (!stopping_) {
    lock.unlock();
    try {
      poll_states(first);
    } catch (const std::exception& e) {  // never let this thread take the daemon down
      host().log(sdk::LogLevel::kWarn, "lxc state poll failed", {{"error", e.what()}});
    }
    lock.lock();
    monitor_wake_.wait_for(lock, state_poll_, [this] { return stopping_; });
  }
}

void LxcDriver::poll_states(bool& first) {
  auto r = request("list", "", std::chrono::seconds(10));
  if (!r) return;
  std::vector<sdk::VmEvent> changes;
  {
    // Compared with what the last poll saw or this driver last did (a start between two
    // polls followed by a stop behind the host's back must still count as a change).
    std::lock_guard<std::mutex> lock(observed_mutex_);
    std::map<std::string, sdk::VmPowerState> now;
    for (const auto& s : statuses_of(containers_of(r.value()))) {
      if (!s.managed) continue;
      now[s.id] = s.state;
      auto before = observed_.find(s.id);
      // The first poll only learns the states; later ones report changes.
      if (!first && (before == observed_.end() || before->second != s.state)) {
        changes.push_back({s.id, s.name, s.state, s.reason.empty() ? "observed" : s.reason});
      }
    }
    observed_.swap(now);
    first = false;
  }
  for (const auto& e : changes) emit(e);
}

}  // namespace novacron::lxc
