// The KVM driver against libvirt's test:///default hypervisor (in-process, no daemon): full
// lifecycle, spec errors, unmanaged domains, an unreachable libvirt, and the domain XML.
// test:///default keeps its state inside this process and reports only state in its stats;
// stats and reconciliation against a real libvirtd (and a TCG guest) are still to be added.
#include <gtest/gtest.h>

#include <fstream>
#include <thread>

#include "domain_xml.h"
#include "host/services/event_bus.h"
#include "host/services/executors.h"
#include "host/services/metrics_registry.h"
#include "host/services/plugin_host_services.h"
#include "host/state/kv_store.h"
#include "host/state/schema.h"
#include "kvm_driver.h"
#include "tests/support/test_env.h"

namespace novacron {
namespace {

using sdk::StatusCode;
using sdk::VmPowerState;

// A driver with real host services (state store, events, metrics, executors).
class KvmDriverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    db_ = std::move(*open_host_database(dir_.path()));
    kv_ = std::make_unique<KvStore>(*db_);
    ctx_ = HostContext{"test-node", dir_.path().string(), kv_.get(), &events_, &metrics_, &pools_};
  }
  void TearDown() override {
    for (auto& d : drivers_) d->stop();
  }

  kvm::KvmDriver& driver(const std::string& config = R"({"uri": "test:///default"})") {
    services_.push_back(std::make_unique<PluginHostServices>(ctx_, "io.novacron.driver.kvm", config));
    drivers_.push_back(std::make_unique<kvm::KvmDriver>());
    auto& d = *drivers_.back();
    EXPECT_TRUE(d.init(*services_.back(), config).is_ok());
    EXPECT_TRUE(d.start().is_ok());
    return d;
  }

  sdk::VmSpec spec(const std::string& name, const std::string& id) {
    sdk::VmSpec s;
    s.id = id;
    s.name = name;
    s.vcpus = 2;
    s.memory_mib = 256;
    s.vm_dir = (dir_ / name).string();
    std::filesystem::create_directories(s.vm_dir);
    s.disks.push_back({s.vm_dir + "/root.qcow2", "qcow2", "virtio", 1, false});
    s.labels = {{"tier", "web"}};
    return s;
  }

  testing::TempDir dir_;
  std::unique_ptr<Database> db_;
  std::unique_ptr<KvStore> kv_;
  EventBus events_;
  MetricsRegistry metrics_;
  ExecutorPools pools_{1, 2};
  HostContext ctx_;
  std::vector<std::unique_ptr<PluginHostServices>> services_;
  std::vector<std::unique_ptr<kvm::KvmDriver>> drivers_;
};

constexpr const char* kId = "6f1b2a3c-4d5e-4f60-8a7b-9c0d1e2f3a4b";

TEST_F(KvmDriverTest, ReportsItselfAndTheNode) {
  auto& d = driver();
  EXPECT_TRUE(d.check_available().is_ok());
  EXPECT_EQ(d.driver_name(), "kvm");
  EXPECT_EQ(d.domain_type(), "test");
  auto caps = d.capabilities();
  ASSERT_TRUE(caps.is_ok());
  EXPECT_FALSE(caps->live_migration) << "the test hypervisor cannot migrate";
  EXPECT_TRUE(caps->suspend);
  auto node = d.node_resources();
  ASSERT_TRUE(node.is_ok()) << node.status().message();
  EXPECT_GT(node->cpus, 0);
  EXPECT_GT(node->memory_total_mib, 0);
  EXPECT_NE(node->hypervisor.find("(test)"), std::string::npos) << node->hypervisor;
}

TEST_F(KvmDriverTest, FullLifecycle) {
  auto& d = driver();
  std::vector<sdk::VmEvent> seen;
  std::mutex m;
  d.set_event_sink([&](const sdk::VmEvent& e) {
    std::lock_guard<std::mutex> lock(m);
    seen.push_back(e);
  });
  auto s = spec("web-1", kId);
  ASSERT_TRUE(d.define_vm(s).is_ok());
  EXPECT_TRUE(std::filesystem::exists(s.disks[0].path)) << "the empty disk was created with qemu-img";

  auto st = d.vm_status(kId);
  ASSERT_TRUE(st.is_ok()) << st.status().message();
  EXPECT_EQ(st->name, "web-1");
  EXPECT_TRUE(st->managed);
  EXPECT_EQ(st->state, VmPowerState::kStopped);

  ASSERT_TRUE(d.start_vm(kId).is_ok());
  EXPECT_EQ(d.vm_status(kId)->state, VmPowerState::kRunning);
  EXPECT_EQ(d.start_vm(kId).code(), StatusCode::kFailedPrecondition) << "already running";
  ASSERT_TRUE(d.suspend_vm(kId).is_ok());
  EXPECT_EQ(d.vm_status(kId)->state, VmPowerState::kPaused);
  ASSERT_TRUE(d.resume_vm(kId).is_ok());
  EXPECT_EQ(d.vm_status(kId)->state, VmPowerState::kRunning);
  ASSERT_TRUE(d.reboot_vm(kId).is_ok());
  ASSERT_TRUE(d.stop_vm(kId, std::chrono::seconds(5)).is_ok());
  EXPECT_EQ(d.vm_status(kId)->state, VmPowerState::kStopped);
  EXPECT_EQ(d.stop_vm(kId, std::chrono::seconds(1)).code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(d.resume_vm(kId).code(), StatusCode::kFailedPrecondition);

  ASSERT_TRUE(d.start_vm(kId).is_ok());
  ASSERT_TRUE(d.destroy_vm(kId).is_ok()) << "a running VM is forced off, then undefined";
  EXPECT_EQ(d.vm_status(kId).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(d.start_vm(kId).code(), StatusCode::kNotFound);

  // The test hypervisor queues lifecycle events for the event loop thread, which delivers
  // them in order but on its own time (slower under sanitizers): wait for the start event.
  auto saw_start = [&] {
    std::lock_guard<std::mutex> lock(m);
    for (const auto& e : seen) {
      if (e.id == kId && e.state == VmPowerState::kRunning) return true;
    }
    return false;
  };
  for (int i = 0; i < 200 && !saw_start(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  bool started = saw_start();
  d.set_event_sink({});  // `seen` goes away with this scope; the driver runs on until TearDown
  EXPECT_TRUE(started) << "no start event for the VM arrived within 10 s";
}

TEST_F(KvmDriverTest, ListsUnmanagedDomainsToo) {
  auto& d = driver();
  ASSERT_TRUE(d.define_vm(spec("db-1", kId)).is_ok());
  auto all = d.list_vms();
  ASSERT_TRUE(all.is_ok());
  bool ours = false, foreign = false;
  for (const auto& v : all.value()) {
    if (v.id == kId) ours = v.managed;
    if (v.name == "test") foreign = !v.managed;  // test:///default's own domain
  }
  EXPECT_TRUE(ours);
  EXPECT_TRUE(foreign);
  ASSERT_TRUE(d.destroy_vm(kId).is_ok());
}

TEST_F(KvmDriverTest, SpecErrorsNameTheField) {
  auto& d = driver();
  auto s = spec("bad-1", kId);
  s.disks[0].format = "vmdk";
  auto r = d.validate(s);
  EXPECT_EQ(r.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.message().find("/disks/0/format"), std::string::npos) << r.message();

  s = spec("bad-2", kId);
  s.disks[0].size_gib = 0;  // an existing image that is not there
  EXPECT_NE(d.validate(s).message().find("/disks/0/path: " + s.disks[0].path + " is not an image file"),
            std::string::npos);

  s = spec("bad-3", kId);
  s.disks[0].path = "/tmp/outside.qcow2";  // a new disk outside the VM's folder
  EXPECT_NE(d.define_vm(s).message().find("must be created in the VM's folder"), std::string::npos);

  s = spec("bad-4", kId);
  s.boot.from = "kernel";
  s.boot.kernel = "/nonexistent/vmlinuz";
  EXPECT_NE(d.validate(s).message().find("/boot/kernel"), std::string::npos);

  s = spec("bad-5", kId);
  s.nics.push_back({"bridge", "", ""});
  EXPECT_NE(d.validate(s).message().find("/network/0/bridge"), std::string::npos);

  // A name libvirt already has.
  auto taken = spec("test", "7f1b2a3c-4d5e-4f60-8a7b-9c0d1e2f3a4b");
  EXPECT_EQ(d.define_vm(taken).code(), StatusCode::kAlreadyExists);
  EXPECT_FALSE(std::filesystem::exists(taken.disks[0].path)) << "nothing is created for a refused define";
}

TEST_F(KvmDriverTest, UnreachableLibvirtIsUnavailableNotFatal) {
  auto& d = driver(R"({"uri": "qemu+unix:///system?socket=/nonexistent/libvirt-sock"})");
  auto first = d.check_available();
  EXPECT_EQ(first.code(), StatusCode::kUnavailable);
  auto second = d.define_vm(spec("x", kId));
  EXPECT_EQ(second.code(), StatusCode::kUnavailable);
  EXPECT_NE(second.message().find("next attempt in"), std::string::npos) << "backoff: " << second.message();
}

TEST_F(KvmDriverTest, BadConfigIsRefusedAtInit) {
  PluginHostServices services(ctx_, "io.novacron.driver.kvm", "{}");
  kvm::KvmDriver d;
  auto r = d.init(services, R"({"domain_type": "xen"})");
  EXPECT_EQ(r.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.message().find("/domain_type"), std::string::npos);
  EXPECT_EQ(d.init(services, R"({"urii": "x"})").code(), StatusCode::kInvalidArgument);
}

TEST(DomainXmlTest, KernelBootConsoleAndEscaping) {
  sdk::VmSpec s;
  s.id = kId;
  s.name = "a<b>&'c\"";
  s.vcpus = 1;
  s.memory_mib = 128;
  s.boot = {"kernel", "/images/vmlinuz", "/images/initrd.gz", "console=ttyS0 quiet"};
  s.console_log = "/var/lib/novacron/vms/x/console.log";
  s.nics = {{"user", "", "52:54:00:12:34:56"}};
  s.labels = {{"zone", "eu<1>"}};
  ASSERT_TRUE(kvm::check_spec(s).is_ok());
  std::string xml = kvm::domain_xml(s, "qemu");
  EXPECT_NE(xml.find("<domain type='qemu'>"), std::string::npos);
  EXPECT_NE(xml.find("<name>a&lt;b&gt;&amp;&apos;c&quot;</name>"), std::string::npos) << xml;
  EXPECT_NE(xml.find("<kernel>/images/vmlinuz</kernel>"), std::string::npos);
  EXPECT_NE(xml.find("<cmdline>console=ttyS0 quiet</cmdline>"), std::string::npos);
  EXPECT_NE(xml.find("<serial type='file'>"), std::string::npos);
  EXPECT_NE(xml.find("<mac address='52:54:00:12:34:56'/>"), std::string::npos);
  EXPECT_NE(xml.find("eu&lt;1&gt;"), std::string::npos);
  EXPECT_EQ(xml.find("<graphics"), std::string::npos);
  EXPECT_NE(xml.find("https://novacron.io/xmlns/vm/1"), std::string::npos);

  s.disks = {{"/d/a.qcow2", "qcow2", "virtio", 0, false},
             {"/d/b.raw", "raw", "virtio", 0, true},
             {"/d/c.raw", "raw", "sata", 0, false}};
  xml = kvm::domain_xml(s, "kvm");
  EXPECT_NE(xml.find("<target dev='vda' bus='virtio'/>"), std::string::npos);
  EXPECT_NE(xml.find("<target dev='vdb' bus='virtio'/>"), std::string::npos);
  EXPECT_NE(xml.find("<target dev='sda' bus='sata'/>"), std::string::npos);
  EXPECT_NE(xml.find("<readonly/>"), std::string::npos);

  s.boot.from = "floppy";
  EXPECT_NE(kvm::check_spec(s).message().find("/boot/from"), std::string::npos);
}

}  // namespace
}  // namespace novacron
