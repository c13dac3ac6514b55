#include "lxc_operations.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <lxc/lxccontainer.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <sstream>
#include <vector>

#include "helper_protocol.h"

namespace novacron::lxc {
namespace {

using json = nlohmann::json;

// Thrown by the operations below and turned into an error response by handle_request.
struct Failure {
  std::string code;
  std::string message;
};
[[noreturn]] void fail(const char* code, std::string message) { throw Failure{code, std::move(message)}; }

bool is_valid_name(const std::string& n) {
  if (n.empty() || n.size() > 63 || !std::isalnum(static_cast<unsigned char>(n[0]))) return false;
  for (unsigned char c : n) {
    if (!std::isalnum(c) && c != '-' && c != '.' && c != '_') return false;
  }
  return true;
}

std::string string_field(const json& req, const char* key, bool required) {
  auto it = req.find(key);
  if (it == req.end() || it->is_null()) {
    if (required) fail("invalid_argument", std::string("request needs \"") + key + "\"");
    return "";
  }
  if (!it->is_string()) fail("invalid_argument", std::string("\"") + key + "\" must be a string");
  return it->get<std::string>();
}

std::string name_field(const json& req) {
  std::string name = string_field(req, "name", true);
  if (!is_valid_name(name)) fail("invalid_argument", "\"" + name + "\" is not a valid container name");
  return name;
}

// An open handle on lxcpath/NAME (defined or not).
class Container {
 public:
  Container(const HelperContext& ctx, const std::string& name) : name_(name) {
    c_ = lxc_container_new(name.c_str(), ctx.lxcpath.c_str());
    if (c_ == nullptr) fail("internal", "liblxc cannot open container " + name + " in " + ctx.lxcpath);
  }
  ~Container() { lxc_container_put(c_); }
  Container(const Container&) = delete;
  Container& operator=(const Container&) = delete;

  lxc_container* operator->() const { return c_; }
  lxc_container* get() const { return c_; }
  const std::string& name() const { return name_; }
  std::string state() const {
    const char* s = c_->state(c_);
    return s != nullptr ? s : "UNKNOWN";
  }
  // liblxc's reason for the last failure, and where its log is.
  std::string error(const std::string& what) const {
    std::string reason = c_->error_string != nullptr ? c_->error_string : "";
    char log[4096] = "";
    if (c_->get_config_item(c_, "lxc.log.file", log, sizeof log) <= 0) log[0] = '\0';
    return what + " " + name_ + " failed" + (reason.empty() ? "" : ": " + reason) +
           (log[0] != '\0' ? std::string(" (liblxc's log: ") + log + ")" : "");
  }
  std::string config_item(const char* key) const {
    int n = c_->get_config_item(c_, key, nullptr, 0);
    if (n <= 0) return "";
    std::string out(static_cast<size_t>(n) + 1, '\0');
    c_->get_config_item(c_, key, out.data(), n + 1);
    out.resize(static_cast<size_t>(n));
    return out;
  }
  std::string rootfs() const {
    std::string r = config_item("lxc.rootfs.path");
    if (r.rfind("dir:", 0) == 0) r.erase(0, 4);
    return r;
  }

 private:
  std::string name_;
  lxc_container* c_ = nullptr;
};

std::unique_ptr<Container> open_defined(const HelperContext& ctx, const json& req) {
  auto c = std::make_unique<Container>(ctx, name_field(req));
  if (!(*c)->is_defined(c->get())) fail("not_found", "container " + c->name() + " does not exist in " + ctx.lxcpath);
  return c;
}

std::string marker_path(const HelperContext& ctx, const std::string& name) {
  return ctx.lxcpath + "/" + name + "/" + kMarkerFile;
}

json read_marker(const HelperContext& ctx, const std::string& name) {
  std::ifstream in(marker_path(ctx, name));
  if (!in) return nullptr;
  json m = json::parse(in, nullptr, /*allow_exceptions=*/false);
  return m.is_object() ? m : json(nullptr);
}

// Written to a temporary file and renamed, 0600: a half-written marker never exists.
void write_marker(const HelperContext& ctx, const std::string& name, const json& marker) {
  std::string path = marker_path(ctx, name), tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) fail("internal", "cannot write " + tmp);
  std::string data = marker.dump(2) + "\n";
  bool ok = ::write(fd, data.data(), data.size()) == static_cast<ssize_t>(data.size()) && ::fsync(fd) == 0;
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) {
    ::unlink(tmp.c_str());
    fail("internal", "cannot write " + path);
  }
}

// Unpacks a rootfs tarball into `rootfs` (owners, modes, times, xattrs kept; entries with
// "..", absolute paths or paths through symlinks refused).
void extract_tarball(const std::string& tarball, const std::string& rootfs) {
  std::unique_ptr<archive, decltype(&archive_read_free)> in(archive_read_new(), archive_read_free);
  std::unique_ptr<archive, decltype(&archive_write_free)> out(archive_write_disk_new(), archive_write_free);
  archive_read_support_filter_all(in.get());
  archive_read_support_format_tar(in.get());
  archive_read_support_format_gnutar(in.get());
  archive_write_disk_set_options(out.get(), ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_OWNER |
                                                ARCHIVE_EXTRACT_ACL | ARCHIVE_EXTRACT_XATTR | ARCHIVE_EXTRACT_FFLAGS |
                                                ARCHIVE_EXTRACT_SECURE_NODOTDOT | ARCHIVE_EXTRACT_SECURE_SYMLINKS |
                                                ARCHIVE_EXTRACT_SECURE_NOABSOLUTEPATHS);
  if (archive_read_open_filename(in.get(), tarball.c_str(), 1 << 16) != ARCHIVE_OK) {
    fail("invalid_argument", "cannot read rootfs tarball " + tarball + ": " + archive_error_string(in.get()));
  }
  // Relative entries land beneath the rootfs: the helper is single-threaded, so changing
  // its working folder for the extraction is safe.
  if (::chdir(rootfs.c_str()) != 0) fail("internal", "cannot enter " + rootfs);
  std::string error;
  for (;;) {
    archive_entry* entry = nullptr;
    int r = archive_read_next_header(in.get(), &entry);
    if (r == ARCHIVE_EOF) break;
    if (r < ARCHIVE_WARN) {
      error = std::string("reading ") + tarball + ": " + archive_error_string(in.get());
      break;
    }
    r = archive_write_header(out.get(), entry);
    if (r < ARCHIVE_WARN) {
      error = std::string(archive_entry_pathname(entry)) + ": " + archive_error_string(out.get());
      break;
    }
    if (archive_entry_size(entry) > 0) {
      const void* buf = nullptr;
      size_t size = 0;
      la_int64_t offset = 0;
      while ((r = archive_read_data_block(in.get(), &buf, &size, &offset)) == ARCHIVE_OK) {
        if (archive_write_data_block(out.get(), buf, size, offset) < ARCHIVE_WARN) {
          r = ARCHIVE_FATAL;
          break;
        }
      }
      if (r != ARCHIVE_EOF) {
        error = std::string(archive_entry_pathname(entry)) + ": " + archive_error_string(in.get());
        break;
      }
    }
    archive_write_finish_entry(out.get());
  }
  if (error.empty() && archive_write_close(out.get()) != ARCHIVE_OK) error = archive_error_string(out.get());
  if (::chdir("/") != 0) error = "cannot leave " + rootfs;
  if (!error.empty()) fail("invalid_argument", "rootfs tarball " + tarball + ": " + error);
}

// Removes a container that create() left half made.
void discard(Container& c) {
  if (c->is_defined(c.get())) c->destroy(c.get());
}

json op_create(const HelperContext& ctx, const json& req) {
  Container c(ctx, name_field(req));
  if (c->is_defined(c.get())) fail("already_exists", "container " + c.name() + " already exists in " + ctx.lxcpath);
  std::string tmpl = string_field(req, "template", false);
  std::string tarball = string_field(req, "tarball", false);
  if (tmpl.empty() == tarball.empty()) fail("invalid_argument", "create needs exactly one of template and tarball");
  if (!tmpl.empty() && tmpl.find('/') != std::string::npos && tmpl[0] != '/') {
    fail("invalid_argument", "template must be a name or an absolute path");
  }
  if (!tarball.empty() && tarball[0] != '/') fail("invalid_argument", "tarball must be an absolute path");
  const json& items = req.value("config", json::array());
  const json& marker = req.value("marker", json::object());
  if (!items.is_array() || !marker.is_object()) fail("invalid_argument", "config must be an array, marker an object");
  // The log settings first, so that a failing template run is logged there.
  for (const auto& item : items) {
    if (item.is_array() && item.size() == 2 && item[0] == "lxc.log.file") {
      c->set_config_item(c.get(), "lxc.log.file", item[1].get<std::string>().c_str());
    }
  }
  bool created = tmpl.empty() ? c->create(c.get(), nullptr, "dir", nullptr, LXC_CREATE_QUIET, nullptr)
                              : c->create(c.get(), tmpl.c_str(), "dir", nullptr, LXC_CREATE_QUIET, nullptr);
  if (!created) {
    std::string message = c.error("creating container (template " + (tmpl.empty() ? "none" : tmpl) + ")");
    discard(c);
    fail("internal", message);
  }
  try {
    if (!tarball.empty()) {
      // Without a template liblxc records no rootfs: it is lxcpath/NAME/rootfs, made here.
      std::string rootfs = c.rootfs();
      if (rootfs.empty()) {
        rootfs = ctx.lxcpath + "/" + c.name() + "/rootfs";
        if (::mkdir(rootfs.c_str(), 0755) != 0 && errno != EEXIST) fail("internal", "cannot create " + rootfs);
        c->set_config_item(c.get(), "lxc.rootfs.path", ("dir:" + rootfs).c_str());
      }
      extract_tarball(tarball, rootfs);
    }
    for (const auto& item : items) {
      if (!item.is_array() || item.size() != 2 || !item[0].is_string() || !item[1].is_string()) {
        fail("invalid_argument", "config items are [key, value] string pairs");
      }
      std::string key = item[0].get<std::string>(), value = item[1].get<std::string>();
      bool ok = value.empty() ? c->clear_config_item(c.get(), key.c_str())
                              : c->set_config_item(c.get(), key.c_str(), value.c_str());
      if (!ok && !value.empty()) fail("invalid_argument", "liblxc refused config " + key + " = " + value);
    }
    if (!c->save_config(c.get(), nullptr)) fail("internal", c.error("saving the config of"));
    write_marker(ctx, c.name(), marker);
  } catch (const Failure&) {
    discard(c);
    throw;
  }
  return {{"ok", true}};
}

// liblxc 5.0 leaves the monitor's cgroup ("lxc.monitor.NAME", or NAME-N when that was
// taken) behind on cgroup v1 hosts; over a host's life they pile up. rmdir removes only
// empty cgroups, so one still in use (a same-named container of another lxcpath) stays.
// Returns how many are left (in use).
int remove_monitor_cgroups(const std::string& name) {
  int left = 0;
  std::error_code ec;
  const std::string prefix = "lxc.monitor." + name;
  auto matches = [&](const std::string& entry) {
    if (entry == prefix) return true;
    if (entry.rfind(prefix + "-", 0) != 0 || entry.size() == prefix.size() + 1) return false;
    return entry.find_first_not_of("0123456789", prefix.size() + 1) == std::string::npos;
  };
  std::vector<std::filesystem::path> roots = {"/sys/fs/cgroup"};
  for (const auto& h : std::filesystem::directory_iterator("/sys/fs/cgroup", ec)) roots.push_back(h.path());
  for (const auto& root : roots) {
    for (const auto& e : std::filesystem::directory_iterator(root, ec)) {
      if (e.is_directory(ec) && matches(e.path().filename().string()) && ::rmdir(e.path().c_str()) != 0) ++left;
    }
  }
  return left;
}

// Runs `fn` in a child process and returns its response (or its failure).
json in_child(const std::function<json()>& fn) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) fail("internal", "pipe: " + std::string(std::strerror(errno)));
  pid_t pid = ::fork();
  if (pid < 0) {
    ::close(p[0]);
    ::close(p[1]);
    fail("internal", "fork: " + std::string(std::strerror(errno)));
  }
  if (pid == 0) {
    ::close(p[0]);
    json r;
    try {
      r = fn();
    } catch (const Failure& f) {
      r = {{"ok", false}, {"code", f.code}, {"error", f.message}};
    }
    (void)write_message(p[1], r.dump());
    ::_exit(0);  // no destructors: the parent owns the liblxc handles
  }
  ::close(p[1]);
  LineReader reader(p[0]);
  auto line = reader.next();
  ::close(p[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  json r = line.is_ok() ? json::parse(line.value(), nullptr, /*allow_exceptions=*/false) : json();
  if (!r.is_object()) fail("internal", "the start process ended without an answer");
  if (!r.value("ok", false)) throw Failure{r.value("code", "internal"), r.value("error", "start failed")};
  return r;
}

json op_start(const HelperContext& ctx, const json& req) {
  auto c = open_defined(ctx, req);
  if ((*c)->is_running(c->get())) fail("failed_precondition", "container " + c->name() + " is already running");
  json marker = read_marker(ctx, c->name());
  std::vector<std::string> init;
  if (marker.is_object() && marker.contains("init") && marker["init"].is_array()) {
    for (const auto& a : marker["init"]) {
      if (a.is_string()) init.push_back(a.get<std::string>());
    }
  }
  struct stat st {};
  bool has_shell = ::lstat((c->rootfs() + "/bin/sh").c_str(), &st) == 0;
  std::vector<std::string> argv = init_argv(init, has_shell);
  remove_monitor_cgroups(c->name());  // the last run's, so that this monitor gets the plain name
  std::vector<char*> args;
  args.reserve(argv.size() + 1);
  for (auto& a : argv) args.push_back(a.data());
  args.push_back(nullptr);
  (*c)->want_daemonize(c->get(), true);
  (*c)->want_close_all_fds(c->get(), true);
  // liblxc moves the process that calls start() into the container's monitor cgroup; a
  // child makes that call (as LXD's forkstart does), so the helper stays where it is and
  // the monitor cgroup empties when the container stops.
  return in_child([&]() -> json {
    if (!(*c)->start(c->get(), 0, argv.empty() ? nullptr : args.data())) fail("internal", c->error("starting"));
    return {{"ok", true}};  // no init_pid: one more round trip to the monitor nobody needs
  });
}

json op_shutdown(const HelperContext& ctx, const json& req) {
  auto c = open_defined(ctx, req);
  if (!(*c)->is_running(c->get())) fail("failed_precondition", "container " + c->name() + " is not running");
  // Timeout 0: send the halt signal (lxc.signal.halt) and return; the driver polls.
  bool signalled = (*c)->shutdown(c->get(), 0);
  return {{"ok", true}, {"signalled", signalled}};
}

json op_stop(const HelperContext& ctx, const json& req) {
  auto c = open_defined(ctx, req);
  if (!(*c)->is_running(c->get())) return {{"ok", true}, {"was_running", false}};
  if (!(*c)->stop(c->get())) fail("internal", c->error("stopping"));
  return {{"ok", true}, {"was_running", true}};
}

json op_freeze(const HelperContext& ctx, const json& req, bool freeze) {
  auto c = open_defined(ctx, req);
  std::string state = c->state();
  if (freeze && state != "RUNNING") fail("failed_precondition", "container " + c->name() + " is not running");
  if (!freeze && state != "FROZEN") fail("failed_precondition", "container " + c->name() + " is not frozen");
  bool ok = freeze ? (*c)->freeze(c->get()) : (*c)->unfreeze(c->get());
  if (!ok) fail("internal", c->error(freeze ? "freezing" : "unfreezing"));
  return {{"ok", true}};
}

json op_destroy(const HelperContext& ctx, const json& req) {
  auto c = open_defined(ctx, req);
  if ((*c)->is_running(c->get()) && !(*c)->stop(c->get())) fail("internal", c->error("stopping"));
  if (!(*c)->destroy(c->get())) fail("internal", c->error("destroying"));
  // A monitor that has just stopped the container may take a moment to leave its cgroup.
  for (int i = 0; i < 20 && remove_monitor_cgroups(c->name()) > 0; ++i) ::usleep(50 * 1000);
  return {{"ok", true}};
}

// Reads one cgroup file of a running container ("" when liblxc cannot).
std::string cgroup_item(const Container& c, const char* key) {
  std::vector<char> buf(65536);
  int n = c->get_cgroup_item(c.get(), key, buf.data(), static_cast<int>(buf.size()));
  return n > 0 ? std::string(buf.data(), static_cast<size_t>(std::min<int>(n, static_cast<int>(buf.size())))) : "";
}

std::int64_t to_int(const std::string& s) {
  char* end = nullptr;
  long long v = std::strtoll(s.c_str(), &end, 10);
  return end == s.c_str() ? -1 : v;
}

// blkio.throttle.io_service_bytes (v1: "8:0 Read N") or io.stat (v2: "8:0 rbytes=N wbytes=N").
void add_block_io(const std::string& text, bool v2, json& stats) {
  std::int64_t read = 0, write = 0;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream words(line);
    std::string device, a, b;
    words >> device >> a >> b;
    if (device == "Total") continue;
    if (v2) {
      for (const std::string& w : {a, b}) {
        if (w.rfind("rbytes=", 0) == 0) read += to_int(w.substr(7));
        if (w.rfind("wbytes=", 0) == 0) write += to_int(w.substr(7));
      }
      std::string w;
      while (words >> w) {
        if (w.rfind("rbytes=", 0) == 0) read += to_int(w.substr(7));
        if (w.rfind("wbytes=", 0) == 0) write += to_int(w.substr(7));
      }
    } else if (a == "Read") {
      read += to_int(b);
    } else if (a == "Write") {
      write += to_int(b);
    }
  }
  stats["disk_read_bytes"] = read;
  stats["disk_write_bytes"] = write;
}

// /proc/PID/net/dev of the container's init: its network namespace's interfaces but lo.
void add_network_io(pid_t pid, json& stats) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/net/dev");
  if (!in) return;
  std::string line;
  std::int64_t rx = 0, tx = 0;
  for (int i = 0; std::getline(in, line); ++i) {
    auto colon = line.find(':');
    if (i < 2 || colon == std::string::npos) continue;
    std::string iface = line.substr(0, colon);
    iface.erase(0, iface.find_first_not_of(' '));
    if (iface == "lo") continue;
    std::istringstream fields(line.substr(colon + 1));
    std::int64_t v[9] = {};
    for (auto& f : v) fields >> f;
    rx += v[0];
    tx += v[8];
  }
  stats["net_rx_bytes"] = rx;
  stats["net_tx_bytes"] = tx;
}

json stats_of(const HelperContext& ctx, const Container& c) {
  json stats = json::object();
  const bool v2 = ctx.cgroup == CgroupLayout::kV2;
  if (v2) {
    std::string cpu = cgroup_item(c, "cpu.stat");
    if (auto at = cpu.find("usage_usec "); at != std::string::npos) {
      stats["cpu_time_ns"] = to_int(cpu.substr(at + 11)) * 1000;
    }
    if (auto m = to_int(cgroup_item(c, "memory.current")); m >= 0) stats["memory_used_kib"] = m / 1024;
    add_block_io(cgroup_item(c, "io.stat"), true, stats);
  } else {
    if (auto cpu = to_int(cgroup_item(c, "cpuacct.usage")); cpu >= 0) stats["cpu_time_ns"] = cpu;
    if (auto m = to_int(cgroup_item(c, "memory.usage_in_bytes")); m >= 0) stats["memory_used_kib"] = m / 1024;
    add_block_io(cgroup_item(c, "blkio.throttle.io_service_bytes"), false, stats);
  }
  add_network_io(c->init_pid(c.get()), stats);
  return stats;
}

json describe(const HelperContext& ctx, const Container& c, bool with_stats) {
  std::string state = c.state();
  json out = {{"name", c.name()}, {"state", state}, {"marker", read_marker(ctx, c.name())}};
  if (state != "STOPPED") out["init_pid"] = c->init_pid(c.get());
  if (with_stats && state != "STOPPED") out["stats"] = stats_of(ctx, c);
  return out;
}

json op_status(const HelperContext& ctx, const json& req) {
  auto c = open_defined(ctx, req);
  json out = describe(ctx, *c, req.value("stats", false));
  out["ok"] = true;
  return out;
}

json op_list(const HelperContext& ctx) {
  char** names = nullptr;
  int n = list_all_containers(ctx.lxcpath.c_str(), &names, nullptr);
  if (n < 0) fail("internal", "liblxc cannot list the containers in " + ctx.lxcpath);
  json containers = json::array();
  for (int i = 0; i < n; ++i) {
    std::string name = names[i];
    std::free(names[i]);
    if (!is_valid_name(name)) continue;
    Container c(ctx, name);
    containers.push_back(describe(ctx, c, false));
  }
  std::free(static_cast<void*>(names));
  return {{"ok", true}, {"containers", containers}};
}

}  // namespace

json handle_request(const HelperContext& ctx, const json& request) {
  try {
    if (!request.is_object()) fail("invalid_argument", "a request is a JSON object");
    std::string op = string_field(request, "op", true);
    if (op == "hello") {
      return {{"ok", true},
              {"protocol", kHelperProtocolVersion},
              {"lxc_version", lxc_get_version()},
              {"cgroup", cgroup_layout_name(ctx.cgroup)},
              {"pid", ::getpid()}};
    }
    if (op == "create") return op_create(ctx, request);
    if (op == "start") return op_start(ctx, request);
    if (op == "shutdown") return op_shutdown(ctx, request);
    if (op == "stop") return op_stop(ctx, request);
    if (op == "freeze") return op_freeze(ctx, request, true);
    if (op == "unfreeze") return op_freeze(ctx, request, false);
    if (op == "destroy") return op_destroy(ctx, request);
    if (op == "status") return op_status(ctx, request);
    if (op == "list") return op_list(ctx);
    fail("invalid_argument", "unknown operation \"" + op + "\"");
  } catch (const Failure& f) {
    return {{"ok", false}, {"code", f.code}, {"error", f.message}};
  } catch (const std::exception& e) {
    return {{"ok", false}, {"code", "internal"}, {"error", std::string("helper: ") + e.what()}};
  }
}

}  // namespace novacron::lxc
