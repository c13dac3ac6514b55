// LXC containers through the REST API of a real novacrond with the lxc driver plugin,
// checked with liblxc directly: a busybox container created, started (its init writing to
// the console log), frozen, thawed, stopped (gracefully, and forced when its init ignores
// the signal) and deleted; a rootfs from a tarball (and a malicious tarball refused);
// spec errors; reconciliation after a container is stopped behind the host's back; an
// unmanaged container listed, never touched; a killed helper replaced; the shipped
// example config serving LXC while libvirtd is down. Needs root (CI runs as root).
#include <gtest/gtest.h>
#include <lxc/lxccontainer.h>
#include <signal.h>
#include <unistd.h>

#include <fstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "tests/support/archive_writer.h"
#include "tests/support/test_env.h"

namespace novacron {
namespace {

using namespace novacron::testing;  // NOLINT(google-build-using-namespace)
using nlohmann::json;

const std::vector<std::pair<std::string, std::string>> kAdmin = {{"Authorization", "Test admin:root"}};

// A liblxc handle for checking what the driver did.
class LxcHandle {
 public:
  LxcHandle(const std::string& name, const fs::path& lxcpath) : c_(lxc_container_new(name.c_str(), lxcpath.c_str())) {}
  ~LxcHandle() {
    if (c_ != nullptr) lxc_container_put(c_);
  }
  LxcHandle(const LxcHandle&) = delete;
  LxcHandle& operator=(const LxcHandle&) = delete;
  lxc_container* operator->() const { return c_; }
  bool defined() const { return c_ != nullptr && c_->is_defined(c_); }
  std::string state() const { return c_ != nullptr ? c_->state(c_) : "?"; }
  std::string cgroup(const char* key) const {
    char buf[256] = "";
    int n = c_->get_cgroup_item(c_, key, buf, sizeof buf);
    std::string v = n > 0 ? std::string(buf) : "";
    while (!v.empty() && (v.back() == '\n' || v.back() == ' ')) v.pop_back();
    return v;
  }

 private:
  lxc_container* c_;
};

// Stops and removes every container in `lxcpath` (also those a failed test left behind).
void destroy_all(const fs::path& lxcpath) {
  char** names = nullptr;
  int n = list_all_containers(lxcpath.c_str(), &names, nullptr);
  for (int i = 0; i < n; ++i) {
    LxcHandle c(names[i], lxcpath);
    if (c->is_running(c.operator->())) c->stop(c.operator->());
    if (c.defined()) c->destroy(c.operator->());
    // liblxc leaves the monitor's (empty) cgroup behind; rmdir removes only empty ones.
    std::error_code ec;
    for (const auto& h : fs::directory_iterator("/sys/fs/cgroup", ec)) {
      for (const auto& e : fs::directory_iterator(h.path(), ec)) {
        if (e.path().filename().string().rfind(std::string("lxc.monitor.") + names[i], 0) == 0)
          ::rmdir(e.path().c_str());
      }
    }
    std::free(names[i]);
  }
  std::free(static_cast<void*>(names));
}

bool lxc_usable(std::string* why) {
  if (::geteuid() != 0) {
    *why = "needs root: liblxc creates containers as root (CI runs as root)";
  } else if (!fs::exists("/usr/share/lxc/templates/lxc-busybox")) {
    *why = "needs lxc-templates (busybox template)";
  } else if (!fs::exists("/bin/busybox")) {
    *why = "needs busybox-static";
  }
  return why->empty();
}

// Loops forever printing a counter and $GREETING; on SIGTERM says bye and exits.
const std::vector<std::string> kCounterInit = {
    "/bin/sh", "-c",
    "trap 'echo bye; exit 0' TERM; i=0; while true; do echo \"counter $i $GREETING\"; i=$((i+1)); sleep 0.2; done"};

class LxcApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::string why; !lxc_usable(&why)) GTEST_SKIP() << why;
    auto r = run({(bin_dir() / "novacron").string(), "plugin", "install", "--data-dir", (dir_ / "data").string(),
                  fixture("io.novacron.test.auth").string()});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    fs::create_directories(dir_ / "images");
  }
  void TearDown() override {
    if (daemon_) daemon_->stop(SIGTERM);
    destroy_all(lxcpath());
  }

  fs::path lxcpath() const { return dir_ / "data/lxc"; }

  // `auth`: the test's provider ("Test admin:root" headers) or the bundled token provider
  // (DATA_DIR/admin.token), which the CLI speaks.
  void start_daemon(int stop_timeout_seconds = 10, const std::string& auth = "io.novacron.test.auth") {
    write_file(
        dir_ / "cfg.json",
        json{{"node", {{"name", "lxc-node"}}},
             {"data_dir", (dir_ / "data").string()},
             {"listen", {{"port", 0}}},
             {"vms",
              {{"image_root", (dir_ / "images").string()},
               {"stop_timeout_seconds", stop_timeout_seconds},
               {"reconcile_interval_seconds", 3600}}},
             {"plugins",
              {{"load",
                {{{"id", auth}, {"required", true}},
                 {{"id", "io.novacron.driver.lxc"}, {"required", true}, {"config", {{"state_poll_ms", 200}}}}}}}}}
            .dump());
    daemon_ = start_novacrond(dir_ / "cfg.json", dir_.path(), port_);
    ASSERT_GT(port_, 0) << daemon_->err();
  }

  HttpResult call(const std::string& method, const std::string& target, const json& body = nullptr) {
    return http_request(port_, method, target, kAdmin, body.is_null() ? "" : body.dump());
  }
  json ok(const std::string& method, const std::string& target, const json& body = nullptr) {
    auto r = call(method, target, body);
    EXPECT_TRUE(r.status >= 200 && r.status < 300) << method << " " << target << ": " << r.status << " " << r.body;
    return json::parse(r.body, nullptr, false);
  }
  static json spec(const std::string& name) {
    return {{"name", name},
            {"driver", "lxc"},
            {"vcpus", 1},
            {"memory_mib", 64},
            {"network", "none"},
            {"labels", {{"tier", "web"}}},
            {"container", {{"template", "busybox"}, {"env", {{"GREETING", "hello"}}}, {"init", kCounterInit}}},
            {"start", true}};
  }
  void expect_invalid(const json& s, const std::string& field) {
    auto r = call("POST", "/v1/vms?wait=60", s);
    EXPECT_EQ(r.status, 400) << field << ": " << r.body;
    EXPECT_NE(r.body.find(field), std::string::npos) << r.body;
  }
  // Waits until `pred` holds for the console log of VM `id` (5 s at most).
  std::string console_until(const std::string& id, const std::function<bool(const std::string&)>& pred) {
    std::string text;
    for (int i = 0; i < 100; ++i) {
      text =
          fs::exists(dir_ / "data/vms" / id / "console.log") ? read_file(dir_ / "data/vms" / id / "console.log") : "";
      if (pred(text)) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return text;
  }

  TempDir dir_;
  std::unique_ptr<Process> daemon_;
  int port_ = 0;
};

TEST_F(LxcApiTest, BusyboxLifecycleCheckedWithLiblxc) {
  start_daemon();
  auto created = call("POST", "/v1/vms?wait=60", spec("web-1"));
  ASSERT_EQ(created.status, 201) << created.body;
  json vm = json::parse(created.body)["vm"];
  const std::string id = vm["id"];
  EXPECT_EQ(vm["state"], "running");
  EXPECT_EQ(vm["driver"], "lxc");

  LxcHandle c("web-1", lxcpath());
  ASSERT_TRUE(c.defined()) << "the container lives in the node's lxcpath " << lxcpath();
  EXPECT_EQ(c.state(), "RUNNING");
  EXPECT_EQ(c.cgroup("memory.limit_in_bytes"), std::to_string(64 * 1024 * 1024));
  EXPECT_EQ(c.cgroup("cpu.cfs_quota_us"), "100000");
  std::string console = console_until(id, [](const std::string& t) { return t.find("counter 3 hello") != t.npos; });
  EXPECT_NE(console.find("counter 3 hello"), std::string::npos) << "init's output with its env: " << console;

  json shown = ok("GET", "/v1/vms/" + id);
  EXPECT_EQ(shown["live"]["state"], "running") << shown.dump();
  EXPECT_GT(shown["live"]["stats"]["cpu_time_ns"].get<std::int64_t>(), 0) << shown.dump();
  EXPECT_GT(shown["live"]["stats"]["memory_used_kib"].get<std::int64_t>(), 0) << shown.dump();

  ASSERT_EQ(ok("POST", "/v1/vms/" + id + "/suspend?wait=30")["operation"]["state"], "succeeded");
  EXPECT_EQ(c.state(), "FROZEN");
  EXPECT_EQ(ok("GET", "/v1/vms/" + id)["state"], "paused");
  ASSERT_EQ(ok("POST", "/v1/vms/" + id + "/resume?wait=30")["operation"]["state"], "succeeded");
  EXPECT_EQ(c.state(), "RUNNING");
  auto again = call("POST", "/v1/vms/" + id + "/start");
  EXPECT_EQ(again.status, 409) << again.body;

  ASSERT_EQ(ok("POST", "/v1/vms/" + id + "/stop?wait=30")["operation"]["state"], "succeeded");
  EXPECT_EQ(c.state(), "STOPPED");
  console = console_until(id, [](const std::string& t) { return t.find("bye") != t.npos; });
  EXPECT_NE(console.find("bye"), std::string::npos) << "the graceful stop reached init's TERM trap";
  EXPECT_EQ(ok("GET", "/v1/vms?driver=lxc&state=stopped")["items"].size(), 1u);

  ASSERT_EQ(ok("POST", "/v1/vms/" + id + "/start?wait=30")["operation"]["state"], "succeeded");
  EXPECT_EQ(c.state(), "RUNNING");
  ASSERT_EQ(ok("DELETE", "/v1/vms/" + id + "?wait=30")["operation"]["state"], "succeeded");
  LxcHandle gone("web-1", lxcpath());
  EXPECT_FALSE(gone.defined());
  EXPECT_FALSE(fs::exists(lxcpath() / "web-1"));
  EXPECT_EQ(call("GET", "/v1/vms/" + id).status, 404);
}

// A bridge of the test's own, removed when the test ends.
class TestBridge {
 public:
  TestBridge() : name_("nc-br" + std::to_string(::getpid() % 100000)) {
    ok_ = run({"/usr/sbin/ip", "link", "add", name_, "type", "bridge"}).exit_code == 0 &&
          run({"/usr/sbin/ip", "link", "set", name_, "up"}).exit_code == 0;
  }
  ~TestBridge() { run({"/usr/sbin/ip", "link", "del", name_}); }
  TestBridge(const TestBridge&) = delete;
  TestBridge& operator=(const TestBridge&) = delete;
  bool ok() const { return ok_; }
  const std::string& name() const { return name_; }

 private:
  std::string name_;
  bool ok_ = false;
};

TEST_F(LxcApiTest, VethOnANamedBridgeAndNodeResources) {
  TestBridge bridge;
  if (!bridge.ok()) GTEST_SKIP() << "cannot create a bridge here (ip link add ... type bridge)";
  start_daemon();
  json s = spec("bridged");
  s["network"] = json::array({{{"type", "bridge"}, {"bridge", bridge.name()}, {"mac", "52:54:00:aa:bb:cc"}}});
  auto created = call("POST", "/v1/vms?wait=60", s);
  ASSERT_EQ(created.status, 201) << created.body;
  LxcHandle c("bridged", lxcpath());
  ASSERT_EQ(c.state(), "RUNNING");
  // One veth end is enslaved to the bridge; the other is eth0 in the container, with the MAC.
  EXPECT_EQ(std::distance(fs::directory_iterator("/sys/class/net/" + bridge.name() + "/brif"), {}), 1);
  pid_t init = c->init_pid(c.operator->());
  std::string dev = read_file("/proc/" + std::to_string(init) + "/net/dev");
  EXPECT_NE(dev.find("eth0:"), std::string::npos) << dev;
  auto r = run({"/usr/bin/nsenter", "-t", std::to_string(init), "-n", "/usr/sbin/ip", "-o", "link", "show", "eth0"});
  EXPECT_NE(r.out.find("52:54:00:aa:bb:cc"), std::string::npos) << r.out << r.err;

  json drivers = ok("GET", "/v1/nodes/self/drivers")["items"];
  ASSERT_EQ(drivers.size(), 1u) << drivers.dump();
  EXPECT_EQ(drivers[0]["name"], "lxc");
  EXPECT_GT(drivers[0]["resources"]["cpus"].get<int>(), 0) << drivers.dump();
  EXPECT_GT(drivers[0]["resources"]["memory_total_mib"].get<std::int64_t>(), 0) << drivers.dump();
  EXPECT_NE(drivers[0]["resources"]["hypervisor"].get<std::string>().find("LXC "), std::string::npos);
  EXPECT_EQ(drivers[0]["capabilities"]["suspend"], true);
  EXPECT_EQ(drivers[0]["capabilities"]["live_migration"], false);
}

TEST_F(LxcApiTest, StopKillsAnInitThatIgnoresTheSignal) {
  start_daemon(/*stop_timeout_seconds=*/1);
  json s = spec("stubborn");
  s["container"]["init"] = json::array({"/bin/sh", "-c", "trap '' TERM; while true; do sleep 0.2; done"});
  auto created = call("POST", "/v1/vms?wait=60", s);
  ASSERT_EQ(created.status, 201) << created.body;
  const std::string id = json::parse(created.body)["vm"]["id"];
  ASSERT_EQ(ok("POST", "/v1/vms/" + id + "/stop?wait=30")["operation"]["state"], "succeeded");
  EXPECT_EQ(LxcHandle("stubborn", lxcpath()).state(), "STOPPED");
}

TEST_F(LxcApiTest, RootfsFromATarballAndAMaliciousTarballRefused) {
  std::string busybox = read_file("/bin/busybox");
  std::vector<ArchiveEntry> rootfs = {{"bin", ArchiveEntry::Type::kDir, "", "", 0755},
                                      {"bin/busybox", ArchiveEntry::Type::kFile, busybox, "", 0755},
                                      {"bin/sh", ArchiveEntry::Type::kSymlink, "", "busybox", 0777}};
  for (const char* d : {"dev", "proc", "sys", "tmp", "etc", "root"}) {
    rootfs.push_back({d, ArchiveEntry::Type::kDir, "", "", 0755});
  }
  write_archive(dir_ / "images/mini.tar.zst", rootfs);
  std::vector<ArchiveEntry> evil = rootfs;
  evil.push_back({"../../escaped", ArchiveEntry::Type::kFile, "x", "", 0644});
  write_archive(dir_ / "images/evil.tar.zst", evil);
  start_daemon();

  json s = spec("from-tar");
  s["container"] = {{"rootfs_tarball", "mini.tar.zst"},
                    {"init", json::array({"/bin/busybox", "sh", "-c", "echo from-tarball; sleep 1000"})}};
  auto created = call("POST", "/v1/vms?wait=60", s);
  ASSERT_EQ(created.status, 201) << created.body;
  const std::string id = json::parse(created.body)["vm"]["id"];
  EXPECT_EQ(LxcHandle("from-tar", lxcpath()).state(), "RUNNING");
  EXPECT_TRUE(fs::exists(lxcpath() / "from-tar/rootfs/bin/busybox"));
  std::string console = console_until(id, [](const std::string& t) { return t.find("from-tarball") != t.npos; });
  EXPECT_NE(console.find("from-tarball"), std::string::npos) << console;

  s = spec("evil");
  s["container"] = {{"rootfs_tarball", "evil.tar.zst"}};
  auto refused = call("POST", "/v1/vms?wait=60", s);
  EXPECT_EQ(refused.status, 400) << refused.body;
  EXPECT_NE(refused.body.find("evil.tar.zst"), std::string::npos) << refused.body;
  EXPECT_NE(refused.body.find("'..'"), std::string::npos) << refused.body;
  EXPECT_FALSE(LxcHandle("evil", lxcpath()).defined()) << "nothing half-made is kept";
  EXPECT_FALSE(fs::exists(dir_ / "escaped"));
  EXPECT_FALSE(fs::exists(lxcpath() / "escaped"));
  EXPECT_EQ(ok("GET", "/v1/vms")["items"].size(), 1u) << "only from-tar is in the inventory";
}

TEST_F(LxcApiTest, BadSpecsNameTheField) {
  start_daemon();
  json s = spec("bad");
  s["network"] = json::array({{{"type", "user"}}});
  expect_invalid(s, "/network/0/type");
  s = spec("bad");
  s["network"] = json::array({{{"type", "bridge"}, {"bridge", "br-absent"}}});
  expect_invalid(s, "/network/0/bridge");
  s = spec("bad");
  s["disks"] = json::array({{{"size_gib", 1}}});
  expect_invalid(s, "/disks");
  s = spec("bad");
  s["container"]["template"] = "../../bin/sh";
  expect_invalid(s, "/container/template");
  s = spec("bad");
  s["container"]["template"] = "nosuchdistro";
  expect_invalid(s, "/container/template");
  s = spec("bad");
  s["container"]["rootfs_tarball"] = "../../../etc/shadow";
  s["container"].erase("template");
  expect_invalid(s, "/container/rootfs_tarball");
  s = spec("bad");
  s["container"]["init"] = json::array({"sh"});
  expect_invalid(s, "/container/init/0");
  s = spec("bad");
  s["container"]["init"] = "/bin/sh";
  expect_invalid(s, "/container/init");
  s = spec("bad");
  s["container"]["env"] = {{"1BAD", "x"}};
  expect_invalid(s, "/container/env/1BAD");
  s = spec("bad");
  s["container"]["env"] = {{"OK", "two\nlines"}};
  expect_invalid(s, "/container/env/OK");
  s = spec("bad");
  s["container"]["rootfs_tarball"] = "x.tar";
  expect_invalid(s, "either template or rootfs_tarball");
  s = spec("bad");
  s["memory_mib"] = std::int64_t{1} << 40;
  expect_invalid(s, "/memory_mib");
  s = spec("bad");
  s["driver"] = "kvm";
  auto no_kvm = call("POST", "/v1/vms", s);
  EXPECT_EQ(no_kvm.status, 503) << no_kvm.body;
  EXPECT_NE(no_kvm.body.find("kvm"), std::string::npos);
  EXPECT_EQ(ok("GET", "/v1/vms")["items"].size(), 0u) << "nothing was created";
  char** names = nullptr;
  EXPECT_EQ(list_all_containers(lxcpath().c_str(), &names, nullptr), 0);
  std::free(static_cast<void*>(names));
}

TEST_F(LxcApiTest, StoppedBehindTheHostsBackAndUnmanagedContainers) {
  start_daemon();
  auto created = call("POST", "/v1/vms?wait=60", spec("db-1"));
  ASSERT_EQ(created.status, 201) << created.body;
  const std::string id = json::parse(created.body)["vm"]["id"];
  {
    LxcHandle c("db-1", lxcpath());
    ASSERT_TRUE(c->stop(c.operator->()));
  }
  // The driver's monitor reports the change as an event; reconciliation agrees.
  std::string state;
  for (int i = 0; i < 100 && state != "stopped"; ++i) {
    state = ok("GET", "/v1/vms/" + id)["state"];
    if (state != "stopped") std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(state, "stopped");
  WsClient events(port_, "/v1/events?since=earliest&type=vm.state_changed", kAdmin);
  ASSERT_EQ(events.status(), 101) << events.body();
  std::string seen, message;
  while (seen.find("\"stopped\"") == std::string::npos && !(message = events.next(std::chrono::seconds(5))).empty()) {
    seen += message;
  }
  EXPECT_NE(seen.find("\"stopped\""), std::string::npos) << "a vm.state_changed event: " << seen;
  ok("POST", "/v1/vms:reconcile");
  EXPECT_EQ(ok("GET", "/v1/vms/" + id)["state"], "stopped");

  {  // A container NovaCron did not create, in the same lxcpath.
    LxcHandle other("handmade", lxcpath());
    ASSERT_TRUE(other->create(other.operator->(), "busybox", "dir", nullptr, LXC_CREATE_QUIET, nullptr));
  }
  ok("POST", "/v1/vms:reconcile");
  json unmanaged = ok("GET", "/v1/vms:unmanaged");
  bool listed = false;
  for (const auto& u : unmanaged["items"]) listed = listed || (u["name"] == "handmade" && u["driver"] == "lxc");
  EXPECT_TRUE(listed) << unmanaged.dump();
  EXPECT_TRUE(LxcHandle("handmade", lxcpath()).defined()) << "reconciliation never deletes";
  EXPECT_EQ(ok("GET", "/v1/vms")["items"].size(), 1u);
}

TEST_F(LxcApiTest, CliCreatesListsTailsAndDeletesAContainer) {
  start_daemon(10, "io.novacron.auth.token");
  std::string token = read_file(dir_ / "data/admin.token");
  while (!token.empty() && token.back() == '\n') token.pop_back();
  ASSERT_FALSE(token.empty()) << daemon_->err();
  auto nc = [&](std::vector<std::string> args) {
    std::vector<std::string> argv{"/usr/bin/env",
                                  "-i",
                                  "HOME=" + dir_.path().string(),
                                  "NOVACRON_URL=http://127.0.0.1:" + std::to_string(port_),
                                  "NOVACRON_TOKEN=" + token,
                                  (bin_dir() / "novacron").string()};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv);
  };
  auto created = nc({"vm", "create", "--name", "cli-1", "--driver", "lxc", "--memory", "64", "--template", "busybox",
                     "--env", "WHO=cli", "--init", "echo hello from $WHO; sleep 1000", "--json"});
  ASSERT_EQ(created.exit_code, 0) << created.out << created.err;
  EXPECT_EQ(LxcHandle("cli-1", lxcpath()).state(), "RUNNING");
  auto list = nc({"vm", "list"});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  EXPECT_NE(list.out.find("cli-1"), std::string::npos) << list.out;
  EXPECT_NE(list.out.find("lxc"), std::string::npos) << list.out;
  std::string console;
  for (int i = 0; i < 50 && console.find("hello from cli") == std::string::npos; ++i) {
    console = nc({"vm", "console", "cli-1"}).out;
    if (console.find("hello from cli") == std::string::npos)
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_NE(console.find("hello from cli"), std::string::npos) << console;
  auto deleted = nc({"vm", "delete", "cli-1"});
  ASSERT_EQ(deleted.exit_code, 0) << deleted.out << deleted.err;
  EXPECT_FALSE(LxcHandle("cli-1", lxcpath()).defined());
}

TEST_F(LxcApiTest, VmsOfADriverThatIsNotLoadedAreKeptAndMarked) {
  start_daemon();
  auto created = call("POST", "/v1/vms?wait=60", spec("kept-1"));
  ASSERT_EQ(created.status, 201) << created.body;
  const std::string id = json::parse(created.body)["vm"]["id"];
  json disabled = ok("POST", "/v1/plugins/io.novacron.driver.lxc/disable?wait=30");
  ASSERT_EQ(disabled["operation"]["state"], "succeeded") << disabled.dump();

  json items = ok("GET", "/v1/vms")["items"];
  ASSERT_EQ(items.size(), 1u) << items.dump();
  EXPECT_EQ(items[0]["driver_available"], false) << items.dump();
  EXPECT_NE(items[0]["driver_error"].get<std::string>().find("not loaded"), std::string::npos) << items.dump();
  EXPECT_EQ(ok("GET", "/v1/vms/" + id)["driver_available"], false);
  ok("POST", "/v1/vms:reconcile");
  EXPECT_EQ(ok("GET", "/v1/vms")["items"].size(), 1u) << "reconciliation keeps it";
  auto refused = call("POST", "/v1/vms/" + id + "/stop");
  EXPECT_EQ(refused.status, 503) << refused.body;
  EXPECT_NE(refused.body.find("lxc"), std::string::npos) << refused.body;
  EXPECT_EQ(LxcHandle("kept-1", lxcpath()).state(), "RUNNING") << "the container never noticed";

  ASSERT_EQ(ok("POST", "/v1/plugins/io.novacron.driver.lxc/enable?wait=30")["operation"]["state"], "succeeded");
  json back = ok("GET", "/v1/vms")["items"][0];
  EXPECT_EQ(back["driver_available"], true) << back.dump();
  EXPECT_EQ(back["state"], "running");
}

// The helpers are children of the daemon whose argv[0] is novacron-lxc-helper.
std::vector<pid_t> helper_pids(pid_t daemon) {
  std::vector<pid_t> out;
  for (const auto& e : fs::directory_iterator("/proc")) {
    std::string n = e.path().filename();
    if (n.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream cmdline(e.path() / "cmdline");
    std::string arg0;
    std::getline(cmdline, arg0, '\0');
    if (arg0 != "novacron-lxc-helper") continue;
    std::ifstream stat(e.path() / "stat");
    std::string line;
    std::getline(stat, line);
    auto close = line.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream rest(line.substr(close + 2));
    char st = 0;
    pid_t ppid = 0;
    rest >> st >> ppid;
    if (ppid == daemon) out.push_back(std::stoi(n));
  }
  return out;
}

TEST_F(LxcApiTest, AKilledHelperIsReplaced) {
  start_daemon();
  auto created = call("POST", "/v1/vms?wait=60", spec("survivor"));
  ASSERT_EQ(created.status, 201) << created.body;
  const std::string id = json::parse(created.body)["vm"]["id"];
  auto before = helper_pids(daemon_->pid());
  ASSERT_FALSE(before.empty());
  for (pid_t p : before) ::kill(p, SIGKILL);
  // Calls that find a dead helper fail with a clear reason; the next gets a new one.
  json shown;
  for (int i = 0; i < 20; ++i) {
    shown = ok("GET", "/v1/vms/" + id);
    if (shown["live"].contains("state")) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(shown["live"]["state"], "running") << shown.dump();
  auto after = helper_pids(daemon_->pid());
  ASSERT_FALSE(after.empty());
  for (pid_t p : after) EXPECT_EQ(std::count(before.begin(), before.end(), p), 0);
  EXPECT_EQ(LxcHandle("survivor", lxcpath()).state(), "RUNNING") << "containers outlive their helper";
  ASSERT_EQ(ok("POST", "/v1/vms/" + id + "/stop?wait=30")["operation"]["state"], "succeeded");
}

TEST_F(LxcApiTest, ShippedExampleServesLxcWhenLibvirtdIsDown) {
  std::ifstream in(source_dir() / "docs/examples/novacrond.json");
  json cfg = json::parse(in, nullptr, /*allow_exceptions=*/true, /*ignore_comments=*/true);
  cfg["data_dir"] = (dir_ / "data").string();
  cfg["listen"] = {{"address", "127.0.0.1"}, {"port", 0}};
  // Only the test's auth provider instead of token files, everything else as shipped.
  for (auto& p : cfg["plugins"]["load"]) {
    if (p["id"] == "io.novacron.auth.token") p = {{"id", "io.novacron.test.auth"}, {"required", true}};
  }
  write_file(dir_ / "cfg.json", cfg.dump());
  daemon_ = start_novacrond(dir_ / "cfg.json", dir_.path(), port_);
  ASSERT_GT(port_, 0) << daemon_->err();

  json drivers = ok("GET", "/v1/nodes/self/drivers")["items"];
  std::map<std::string, json> by_name;
  for (const auto& d : drivers) by_name[d["name"]] = d;
  ASSERT_EQ(by_name.count("lxc"), 1u) << drivers.dump();
  ASSERT_EQ(by_name.count("kvm"), 1u) << drivers.dump();
  EXPECT_EQ(by_name["lxc"]["available"], true) << drivers.dump();
  if (!fs::exists("/run/libvirt/libvirt-sock")) {
    EXPECT_EQ(by_name["kvm"]["available"], false) << "no libvirtd here: " << drivers.dump();
  }
  json s = spec("example-1");
  auto created = call("POST", "/v1/vms?wait=60", s);
  ASSERT_EQ(created.status, 201) << created.body;
  EXPECT_EQ(LxcHandle("example-1", lxcpath()).state(), "RUNNING");
  const std::string id = json::parse(created.body)["vm"]["id"];
  ASSERT_EQ(ok("DELETE", "/v1/vms/" + id + "?wait=30")["operation"]["state"], "succeeded");
}

}  // namespace
}  // namespace novacron
