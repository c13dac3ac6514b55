// A real guest through the REST API: a libvirtd of the test's own (private mount namespace,
// tests/support/libvirtd-node.sh), the tiny test guest (tests/guest/build-guest.sh: Debian's
// kernel + a busybox initramfs printing a counter to the serial console) booted under QEMU's
// TCG (domain_type "qemu": some sandboxes have a /dev/kvm that hangs guests), its counter
// seen advancing through
// GET /v1/vms/{id}/console, stats from libvirt, reconciliation after a domain is destroyed
// and another defined behind the host's back (virsh), then stop and delete. Needs root
// (libvirtd, mount namespaces); everything it starts is stopped in TearDown, also on failure.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <regex>
#include <thread>

#include "tests/support/test_env.h"

namespace novacron {
namespace {

using namespace novacron::testing;  // NOLINT(google-build-using-namespace)
using nlohmann::json;

const std::vector<std::pair<std::string, std::string>> kAdmin = {{"Authorization", "Test admin:root"}};

class KvmGuestTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root: it starts its own libvirtd (CI runs as root)";
    // Cached in the build tree: built once per build dir (about 10 s: one kernel package).
    auto guest = run({"/bin/bash", (source_dir() / "tests/guest/build-guest.sh").string(),
                      (bin_dir().parent_path() / "guest").string()},
                     std::chrono::minutes(5));
    ASSERT_EQ(guest.exit_code, 0) << guest.err;
    fs::path guest_dir = guest.out.substr(0, guest.out.find_last_not_of("\n") + 1);
    fs::create_directories(dir_ / "images");
    fs::copy_file(guest_dir / "vmlinuz", dir_ / "images/vmlinuz");
    fs::copy_file(guest_dir / "initrd.gz", dir_ / "images/initrd.gz");

    auto node = run({"/bin/bash", (source_dir() / "tests/support/libvirtd-node.sh").string(), "start",
                     (dir_ / "libvirt").string()});
    ASSERT_EQ(node.exit_code, 0) << node.err;
    libvirt_started_ = true;
    uri_ = node.out.substr(0, node.out.find('\n'));

    auto r = run({(bin_dir() / "novacron").string(), "plugin", "install", "--data-dir", (dir_ / "data").string(),
                  fixture("io.novacron.test.auth").string()});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    write_file(dir_ / "cfg.json",
               json{{"node", {{"name", "guest-node"}}},
                    {"data_dir", (dir_ / "data").string()},
                    {"listen", {{"port", 0}}},
                    {"vms", {{"image_root", (dir_ / "images").string()}, {"stop_timeout_seconds", 3}}},
                    {"plugins",
                     {{"load",
                       {{{"id", "io.novacron.test.auth"}, {"required", true}},
                        {{"id", "io.novacron.driver.kvm"},
                         {"required", true},
                         {"config", {{"uri", uri_}, {"domain_type", "qemu"}}}}}}}}}
                   .dump());
    daemon_ = start_novacrond(dir_ / "cfg.json", dir_.path(), port_);
    ASSERT_GT(port_, 0) << daemon_->err();
  }

  void TearDown() override {
    if (daemon_) daemon_->stop(SIGTERM);
    if (libvirt_started_) {
      run({"/bin/bash", (source_dir() / "tests/support/libvirtd-node.sh").string(), "stop",
           (dir_ / "libvirt").string()});
    }
  }

  HttpResult call(const std::string& method, const std::string& target, const json& body = nullptr) {
    return http_request(port_, method, target, kAdmin, body.is_null() ? "" : body.dump());
  }
  SubprocessResult virsh(const std::vector<std::string>& args) {
    std::vector<std::string> argv{"/usr/bin/virsh", "-q", "-c", uri_};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv);
  }
  // The highest counter the guest has printed so far (-1: none yet).
  int counter(const std::string& id) {
    auto r = call("GET", "/v1/vms/" + id + "/console");
    std::regex re("novacron-guest counter ([0-9]+)");
    int last = -1;
    for (auto it = std::sregex_iterator(r.body.begin(), r.body.end(), re); it != std::sregex_iterator(); ++it) {
      last = std::stoi((*it)[1]);
    }
    return last;
  }
  int wait_for_counter(const std::string& id, int above, std::chrono::seconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    int c = -1;
    while (std::chrono::steady_clock::now() < deadline) {
      c = counter(id);
      if (c > above) return c;
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
    return c;
  }

  TempDir dir_;
  bool libvirt_started_ = false;
  std::string uri_;
  std::unique_ptr<Process> daemon_;
  int port_ = 0;
};

TEST_F(KvmGuestTest, BootsTheGuestSeesItsCounterAndReconciles) {
  json spec = {{"name", "guest-1"},
               {"driver", "kvm"},
               {"vcpus", 1},
               {"memory_mib", 128},
               {"boot",
                {{"from", "kernel"},
                 {"kernel", "vmlinuz"},
                 {"initrd", "initrd.gz"},
                 {"cmdline", "console=ttyS0 quiet panic=-1"}}},
               {"network", "none"},
               {"start", true}};
  auto created = call("POST", "/v1/vms?wait=60", spec);
  ASSERT_EQ(created.status, 201) << created.body << "\n" << daemon_->err();
  const std::string id = json::parse(created.body)["vm"]["id"];

  // The guest boots and counts: the console shows the counter advancing.
  int first = wait_for_counter(id, -1, std::chrono::seconds(90));
  ASSERT_GE(first, 0) << "no counter on the console; console: " << call("GET", "/v1/vms/" + id + "/console").body;
  int later = wait_for_counter(id, first, std::chrono::seconds(30));
  EXPECT_GT(later, first);

  json shown = json::parse(call("GET", "/v1/vms/" + id).body);
  EXPECT_EQ(shown["live"]["state"], "running") << shown.dump();
  EXPECT_GT(shown["live"]["stats"]["cpu_time_ns"].get<std::int64_t>(), 0) << shown.dump();
  // The guest's balloon driver reports its memory use (QEMU polls it every 5 s).
  json memory = nullptr;
  for (int i = 0; i < 60 && !memory.is_number(); ++i) {
    memory = json::parse(call("GET", "/v1/vms/" + id).body)["live"]["stats"]["memory_used_kib"];
    if (!memory.is_number()) std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  ASSERT_TRUE(memory.is_number()) << "no balloon statistics from the guest";
  EXPECT_GT(memory.get<std::int64_t>(), 0);
  EXPECT_LT(memory.get<std::int64_t>(), 128 * 1024) << "used memory within the guest's 128 MiB";

  // Behind the host's back: the domain is destroyed, another one is defined.
  ASSERT_EQ(virsh({"destroy", "guest-1"}).exit_code, 0);
  write_file(dir_ / "foreign.xml",
             "<domain type='qemu'><name>foreign-1</name><memory unit='MiB'>64</memory><os><type "
             "arch='x86_64'>hvm</type></os></domain>");
  ASSERT_EQ(virsh({"define", (dir_ / "foreign.xml").string()}).exit_code, 0);
  auto report = call("POST", "/v1/vms:reconcile");
  ASSERT_EQ(report.status, 200) << report.body;
  json vm = json::parse(call("GET", "/v1/vms/" + id).body);
  EXPECT_EQ(vm["state"], "stopped") << vm.dump();  // by the lifecycle event or by reconciliation
  json unmanaged = json::parse(call("GET", "/v1/vms:unmanaged").body);
  ASSERT_EQ(unmanaged["items"].size(), 1u) << unmanaged.dump();
  EXPECT_EQ(unmanaged["items"][0]["name"], "foreign-1");
  EXPECT_EQ(virsh({"domstate", "foreign-1"}).exit_code, 0) << "never deleted";

  // Start again, then stop (graceful; the busybox guest ignores ACPI: forced at the timeout).
  auto started = call("POST", "/v1/vms/" + id + "/start?wait=60");
  ASSERT_EQ(started.status, 200) << started.body;
  EXPECT_EQ(json::parse(started.body)["operation"]["state"], "succeeded") << started.body;
  auto stopped = call("POST", "/v1/vms/" + id + "/stop?wait=60");
  ASSERT_EQ(stopped.status, 200) << stopped.body;
  EXPECT_EQ(json::parse(stopped.body)["operation"]["state"], "succeeded") << stopped.body;

  auto deleted = call("DELETE", "/v1/vms/" + id + "?wait=60");
  ASSERT_EQ(deleted.status, 200) << deleted.body;
  EXPECT_NE(virsh({"domstate", "guest-1"}).exit_code, 0) << "the domain is gone from libvirt";
  EXPECT_FALSE(fs::exists(dir_ / "data/vms" / id));
}

}  // namespace
}  // namespace novacron
