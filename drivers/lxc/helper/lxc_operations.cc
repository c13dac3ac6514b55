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

// JSON text even when a string holds bytes that are not UTF-8 (liblxc's messages, entry
// names from a client's tarball): they become U+FFFD instead of an exception.
std::string dump_safe(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

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

// The marker when it is well-formed (an object with a string vm_id), else null: a file
// someone edited by hand makes the container unmanaged, never breaks a call.
json read_marker(const HelperContext& ctx, const std::string& name) {
  std::ifstream in(marker_path(ctx, name));
  if (!in) return nullptr;
  json m = json::parse(in, nullptr, /*allow_exceptions=*/false);
  auto id = m.is_object() ? m.find("vm_id") : json::iterator{};
  if (!m.is_object() || id == m.end() || !id->is_string() || id->get<std::string>().empty()) return nullptr;
  return m;
}

// What callers of status and list get of a marker: its id, and whether the create that
// wrote it was still running (kept small: list answers for every container).
json marker_summary(const json& marker) {
  if (!marker.is_object()) return nullptr;
  auto creating = marker.find("creating");
  return {{"vm_id", marker["vm_id"]}, {"creating", creating != marker.end() && *creating == true}};
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

// libarchive's error text, which may be NULL.
std::string archive_text(archive* a) {
  const char* s = archive_error_string(a);
  return s != nullptr ? s : "unknown error";
}

std::string entry_name(archive_entry* e) {
  const char* s = e != nullptr ? archive_entry_pathname(e) : "closing";
  return s != nullptr ? s : "(unnamed entry)";
}

// Unpacks a rootfs tarball into `rootfs` (owners, modes, times, xattrs kept; entries with
// "..", absolute paths or paths through symlinks refused; device nodes skipped: the
// container's /dev comes from lxc.autodev, and a device node in a client's tarball would
// be a way into the host's devices). A refused entry is invalid_argument; a write error
// (a full disk) is resource_exhausted or internal.
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
    fail("invalid_argument", "cannot read rootfs tarball " + tarball + ": " + archive_text(in.get()));
  }
  // Relative entries land beneath the rootfs: the helper is single-threaded, so changing
  // its working folder for the extraction is safe.
  if (::chdir(rootfs.c_str()) != 0) fail("internal", "cannot enter " + rootfs);
  std::string error;
  const char* code = "invalid_argument";
  auto write_failed = [&](archive_entry* entry) {
    int err = archive_errno(out.get());
    code = err == ENOSPC || err == EDQUOT ? "resource_exhausted" : "internal";
    error = entry_name(entry) + ": " + archive_text(out.get());
  };
  for (;;) {
    archive_entry* entry = nullptr;
    int r = archive_read_next_header(in.get(), &entry);
    if (r == ARCHIVE_EOF) break;
    if (r < ARCHIVE_WARN) {
      error = std::string("reading ") + tarball + ": " + archive_text(in.get());
      break;
    }
    mode_t type = archive_entry_filetype(entry);
    if (type == AE_IFCHR || type == AE_IFBLK) continue;
    r = archive_write_header(out.get(), entry);
    if (r < ARCHIVE_WARN) {
      // Refusals (.., absolute, through a symlink) are the client's; errno says a disk error.
      if (archive_errno(out.get()) == ENOSPC || archive_errno(out.get()) == EDQUOT) {
        write_failed(entry);
      } else {
        error = entry_name(entry) + ": " + archive_text(out.get());
      }
      break;
    }
    if (archive_entry_size(entry) > 0) {
      const void* buf = nullptr;
      size_t size = 0;
      la_int64_t offset = 0;
      bool write_error = false;
      while ((r = archive_read_data_block(in.get(), &buf, &size, &offset)) == ARCHIVE_OK) {
        if (archive_write_data_block(out.get(), buf, size, offset) < ARCHIVE_WARN) {
          write_error = true;
          break;
        }
      }
      if (write_error) {
        write_failed(entry);
        break;
      }
      if (r != ARCHIVE_EOF) {
        error = entry_name(entry) + ": " + archive_text(in.get());
        break;
      }
    }
    archive_write_finish_entry(out.get());
  }
  if (error.empty() && archive_write_close(out.get()) != ARCHIVE_OK) write_failed(nullptr);
  if (::chdir("/") != 0) error = "cannot leave " + rootfs;
  if (!error.empty()) fail(code, "rootfs tarball " + tarball + ": " + error);
}

// Removes a container that create() left half made, with its folder (liblxc's destroy
// needs a config; a create that failed early has none).
void discard(const HelperContext& ctx, Container& c) {
  if (c->is_defined(c.get())) {
    if (c->is_running(c.get())) c->stop(c.get());
    c->destroy(c.get());
  }
  std::error_code ec;
  std::filesystem::remove_all(ctx.lxcpath + "/" + c.name(), ec);
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
  const json items = req.value("config", json::array());
  json marker = req.value("marker", json::object());
  if (!items.is_array() || !marker.is_object() || !marker.contains("vm_id") || !marker["vm_id"].is_string()) {
    fail("invalid_argument", "config must be an array, marker an object with a vm_id");
  }
  for (const auto& item : items) {
    if (!item.is_array() || item.size() != 2 || !item[0].is_string() || !item[1].is_string()) {
      fail("invalid_argument", "config items are [key, value] string pairs");
    }
    if (item[1].get<std::string>().find_first_of("\r\n") != std::string::npos) {
      fail("invalid_argument", "config values are one line: " + item[0].get<std::string>());
    }
  }
  // A provisional marker first, before liblxc writes anything: a create that never ends
  // (the helper killed at its deadline, the daemon gone) leaves a container the driver can
  // recognise as its own and discard.
  const std::string dir = ctx.lxcpath + "/" + c.name();
  if (::mkdir(dir.c_str(), 0770) != 0) {
    fail(errno == EEXIST ? "already_exists" : "internal", "cannot create " + dir + ": " + std::strerror(errno));
  }
  json provisional = marker;
  provisional["creating"] = true;
  try {
    write_marker(ctx, c.name(), provisional);
    // The log settings first, so that a failing template run is logged there.
    for (const auto& item : items) {
      if (item[0] == "lxc.log.file") c->set_config_item(c.get(), "lxc.log.file", item[1].get<std::string>().c_str());
    }
    bool created = tmpl.empty() ? c->create(c.get(), nullptr, "dir", nullptr, LXC_CREATE_QUIET, nullptr)
                                : c->create(c.get(), tmpl.c_str(), "dir", nullptr, LXC_CREATE_QUIET, nullptr);
    if (!created) fail("internal", c.error("creating container (template " + (tmpl.empty() ? "none" : tmpl) + ")"));
    if (!tarball.empty()) {
      // Without a template liblxc records no rootfs: it is lxcpath/NAME/rootfs, made here.
      std::string rootfs = c.rootfs();
      if (rootfs.empty()) {
        rootfs = dir + "/rootfs";
        if (::mkdir(rootfs.c_str(), 0755) != 0 && errno != EEXIST) fail("internal", "cannot create " + rootfs);
        c->set_config_item(c.get(), "lxc.rootfs.path", ("dir:" + rootfs).c_str());
      }
      extract_tarball(tarball, rootfs);
    }
    for (const auto& item : items) {
      std::string key = item[0].get<std::string>(), value = item[1].get<std::string>();
      bool ok = value.empty() ? c->clear_config_item(c.get(), key.c_str())
                              : c->set_config_item(c.get(), key.c_str(), value.c_str());
      if (!ok && !value.empty()) fail("invalid_argument", "liblxc refused config " + key + " = " + value);
    }
    if (!c->save_config(c.get(), nullptr)) fail("internal", c.error("saving the config of"));
    write_marker(ctx, c.name(), marker);  // final: no longer "creating"
  } catch (const Failure&) {
    discard(ctx, c);
    throw;
  }
  return {{"ok", true}};
}

// Removes what an unfinished create of `vm_id` left (see op_create); anything else under
// that name is not touched.
json op_discard(const HelperContext& ctx, const json& req) {
  Container c(ctx, name_field(req));
  std::string vm_id = string_field(req, "vm_id", true);
  json marker = read_marker(ctx, c.name());
  if (!marker.is_object() || marker["vm_id"] != vm_id || marker.value("creating", false) != true) {
    return {{"ok", true}, {"discarded", false}};
  }
  discard(ctx, c);
  return {{"ok", true}, {"discarded", true}};
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
    // Whatever happens here ends in _exit: an exception must never unwind into the
    // helper's main loop in the child (it would answer on the driver's channel).
    try {
      ::close(p[0]);
      json r;
      try {
        r = fn();
      } catch (const Failure& f) {
        r = {{"ok", false}, {"code", f.code}, {"error", f.message}};
      }
      (void)write_message(p[1], dump_safe(r));
    } catch (...) {
    }
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

// One container for status and list: name, state, the marker's summary, and (status only)
// init pid and stats. Kept small: list answers for every container in one message.
json describe(const HelperContext& ctx, const Container& c, bool detailed, bool with_stats) {
  std::string state = c.state();
  json out = {{"name", c.name()}, {"state", state}, {"marker", marker_summary(read_marker(ctx, c.name()))}};
  if (detailed && state != "STOPPED") out["init_pid"] = c->init_pid(c.get());
  if (detailed && with_stats && state != "STOPPED") out["stats"] = stats_of(ctx, c);
  return out;
}

json op_status(const HelperContext& ctx, const json& req) {
  auto c = open_defined(ctx, req);
  auto stats = req.find("stats");
  json out = describe(ctx, *c, true, stats != req.end() && *stats == true);
  out["ok"] = true;
  return out;
}

json op_list(const HelperContext& ctx) {
  char** names = nullptr;
  int n = list_all_containers(ctx.lxcpath.c_str(), &names, nullptr);
  if (n < 0) fail("internal", "liblxc cannot list the containers in " + ctx.lxcpath);
  std::vector<std::string> all;
  for (int i = 0; i < n; ++i) {
    all.emplace_back(names[i]);
    std::free(names[i]);
  }
  std::free(static_cast<void*>(names));
  json containers = json::array();
  for (const auto& name : all) {
    if (!is_valid_name(name)) continue;
    // One container liblxc cannot read (a broken config) must not hide the others.
    try {
      Container c(ctx, name);
      containers.push_back(describe(ctx, c, false, false));
    } catch (const Failure& f) {
      containers.push_back({{"name", name}, {"state", "UNKNOWN"}, {"marker", nullptr}, {"error", f.message}});
    }
  }
  return {{"ok", true}, {"containers", containers}};
}

}  // namespace

std::string response_text(const json& response) { return dump_safe(response); }

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
    if (op == "discard") return op_discard(ctx, request);
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
