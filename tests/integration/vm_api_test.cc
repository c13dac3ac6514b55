// VMs through the REST API of a real novacrond with the KVM driver plugin on libvirt's
// test:///default hypervisor (in the daemon's process): create, act, show, list, delete,
// and the refusals (bad specs, paths out of the image root, unknown driver, wrong state,
// duplicate names, read-only tokens). Tests against a real libvirtd and a booting TCG guest
// are still to be added.
#include <gtest/gtest.h>
#include <signal.h>

#include <thread>

#include <nlohmann/json.hpp>

#include "tests/support/test_env.h"

namespace novacron {
namespace {

using namespace novacron::testing;  // NOLINT(google-build-using-namespace)
using nlohmann::json;

const std::vector<std::pair<std::string, std::string>> kAdmin = {{"Authorization", "Test admin:root"}};
const std::vector<std::pair<std::string, std::string>> kReader = {{"Authorization", "Test alice"}};

class VmApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto r = run({(bin_dir() / "novacron").string(), "plugin", "install", "--data-dir", (dir_ / "data").string(),
                  fixture("io.novacron.test.auth").string()});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    fs::create_directories(dir_ / "images");
    write_file(dir_ / "images/base.raw", std::string(4096, '\0'));
    write_file(
        dir_ / "cfg.json",
        json{{"node", {{"name", "vm-node"}}},
             {"data_dir", (dir_ / "data").string()},
             {"listen", {{"port", 0}}},
             {"vms", {{"image_root", (dir_ / "images").string()}, {"stop_timeout_seconds", 5}}},
             {"plugins",
              {{"load",
                {{{"id", "io.novacron.test.auth"}, {"required", true}},
                 {{"id", "io.novacron.driver.kvm"}, {"required", true}, {"config", {{"uri", "test:///default"}}}}}}}}}
            .dump());
    daemon_ = start_novacrond(dir_ / "cfg.json", dir_.path(), port_);
    ASSERT_GT(port_, 0) << daemon_->err();
  }

  HttpResult call(const std::string& method, const std::string& target, const json& body = nullptr,
                  const std::vector<std::pair<std::string, std::string>>& who = kAdmin) {
    return http_request(port_, method, target, who, body.is_null() ? "" : body.dump());
  }
  static json spec(const std::string& name) {
    return {{"name", name},
            {"driver", "kvm"},
            {"vcpus", 1},
            {"memory_mib", 128},
            {"disks", {{{"image", "base.raw"}, {"format", "raw"}}}},
            {"boot", {{"from", "disk"}}},
            {"network", json::array({{{"type", "user"}}})},
            {"labels", {{"tier", "web"}}},
            {"start", true}};
  }
  static void expect_error(const HttpResult& r, int status, const std::string& code, const std::string& text = "") {
    EXPECT_EQ(r.status, status) << r.body;
    json j = json::parse(r.body, nullptr, false);
    ASSERT_TRUE(j.is_object()) << r.body;
    EXPECT_EQ(j["error"]["code"], code) << r.body;
    if (!text.empty()) EXPECT_NE(j["error"]["message"].get<std::string>().find(text), std::string::npos) << r.body;
  }

  TempDir dir_;
  std::unique_ptr<Process> daemon_;
  int port_ = 0;
};

TEST_F(VmApiTest, LifecycleThroughTheApi) {
  auto created = call("POST", "/v1/vms?wait=30", spec("web-1"));
  ASSERT_EQ(created.status, 201) << created.body;
  json vm = json::parse(created.body)["vm"];
  const std::string id = vm["id"];
  EXPECT_EQ(vm["state"], "running");
  EXPECT_EQ(vm["driver"], "kvm");
  EXPECT_EQ(vm["node"], "vm-node");

  auto shown = call("GET", "/v1/vms/" + id, nullptr, kReader);
  ASSERT_EQ(shown.status, 200) << shown.body;
  json s = json::parse(shown.body);
  EXPECT_EQ(s["live"]["state"], "running");
  EXPECT_EQ(s["driver_available"], true);
  EXPECT_TRUE(s["live"]["stats"].contains("cpu_time_ns"));

  expect_error(call("POST", "/v1/vms/" + id + "/start"), 409, "wrong_state", "is running");
  expect_error(call("POST", "/v1/vms/" + id + "/resume"), 409, "wrong_state");
  for (const char* action : {"suspend", "resume", "reboot", "stop"}) {
    auto r = call("POST", "/v1/vms/" + id + "/" + action + "?wait=30");
    ASSERT_EQ(r.status, 200) << action << ": " << r.body;
    EXPECT_EQ(json::parse(r.body)["operation"]["state"], "succeeded") << action << ": " << r.body;
  }
  auto stopped = json::parse(call("GET", "/v1/vms?state=stopped").body);
  ASSERT_EQ(stopped["items"].size(), 1u);
  EXPECT_EQ(stopped["items"][0]["id"], id);
  EXPECT_EQ(json::parse(call("GET", "/v1/vms?state=running").body)["items"].size(), 0u);
  EXPECT_EQ(json::parse(call("GET", "/v1/vms?label=tier=web").body)["items"].size(), 1u);
  EXPECT_EQ(json::parse(call("GET", "/v1/vms?label=tier=db").body)["items"].size(), 0u);

  auto deleted = call("DELETE", "/v1/vms/" + id + "?wait=30");
  ASSERT_EQ(deleted.status, 200) << deleted.body;
  EXPECT_EQ(json::parse(deleted.body)["operation"]["state"], "succeeded");
  expect_error(call("GET", "/v1/vms/" + id), 404, "not_found");
  EXPECT_FALSE(fs::exists(dir_ / "data/vms" / id));
}

TEST_F(VmApiTest, NodeDriversReportAvailabilityCapabilitiesAndResources) {
  auto r = call("GET", "/v1/nodes/self/drivers", nullptr, kReader);
  ASSERT_EQ(r.status, 200) << r.body;
  json items = json::parse(r.body)["items"];
  ASSERT_EQ(items.size(), 1u) << r.body;
  EXPECT_EQ(items[0]["name"], "kvm");
  EXPECT_EQ(items[0]["plugin"], "io.novacron.driver.kvm");
  EXPECT_EQ(items[0]["available"], true);
  EXPECT_EQ(items[0]["capabilities"]["live_migration"], false) << "the test hypervisor cannot migrate";
  EXPECT_GT(items[0]["resources"]["cpus"].get<int>(), 0);
}

TEST_F(VmApiTest, CreateWithoutWaitAndANewDisk) {
  json s = spec("db-1");
  s["start"] = false;
  s["disks"] = json::array({{{"size_gib", 1}, {"format", "qcow2"}}});
  auto accepted = call("POST", "/v1/vms", s);
  ASSERT_EQ(accepted.status, 202) << accepted.body;
  json body = json::parse(accepted.body);
  const std::string id = body["vm"]["id"];
  EXPECT_EQ(body["vm"]["state"], "creating");
  const std::string op = body["operation"]["id"];
  json done;
  for (int i = 0; i < 100; ++i) {
    done = json::parse(call("GET", "/v1/operations/" + op).body);
    if (done["state"] != "running") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(done["state"], "succeeded") << done.dump();
  EXPECT_TRUE(fs::exists(dir_ / "data/vms" / id / "disk-0.qcow2"));
  EXPECT_EQ(json::parse(call("GET", "/v1/vms/" + id).body)["state"], "stopped");
  expect_error(call("POST", "/v1/vms/" + id + "/stop"), 409, "wrong_state", "is stopped");
}

TEST_F(VmApiTest, BadSpecsAreRefusedWithTheField) {
  auto with = [](const std::string& key, const json& value) {
    json s = spec("bad");
    s[key] = value;
    return s;
  };
  expect_error(call("POST", "/v1/vms", with("vcpus", "two")), 400, "invalid_spec", "/vcpus: expected an integer");
  expect_error(call("POST", "/v1/vms", with("memory_mib", 1LL << 50)), 400, "invalid_spec", "/memory_mib: expected");
  expect_error(call("POST", "/v1/vms", with("memory_mib", 18446744073709551615ULL)), 400, "invalid_spec",
               "/memory_mib");
  expect_error(call("POST", "/v1/vms", with("colour", "blue")), 400, "invalid_spec", "/colour: unknown field");
  expect_error(call("POST", "/v1/vms", with("name", "has space")), 400, "invalid_spec", "/name");
  expect_error(call("POST", "/v1/vms", with("disks", json::array({{{"image", "../../etc/passwd"}}}))), 400,
               "invalid_spec", "/disks/0/image");
  expect_error(call("POST", "/v1/vms", with("disks", json::array({{{"image", "/etc/passwd"}}}))), 400, "invalid_spec",
               "/disks/0/image");
  expect_error(call("POST", "/v1/vms", with("disks", json::array({{{"image", "missing.qcow2"}}}))), 400, "invalid_spec",
               "/disks/0/image");
  expect_error(call("POST", "/v1/vms", with("disks", json::array({{{"image", "base.raw"}, {"format", "vmdk"}}}))), 400,
               "invalid_spec", "/disks/0/format");
  expect_error(call("POST", "/v1/vms", with("driver", "xen")), 503, "driver_unavailable", "\"xen\"");
  expect_error(call("POST", "/v1/vms", with("network", "lots")), 400, "invalid_spec", "/network");
  EXPECT_EQ(call("POST", "/v1/vms", "{not json").status, 400);
  // Several problems at once: all of them, one per line.
  json many = spec("bad");
  many["vcpus"] = 0;
  many["memory_mib"] = 1;
  auto r = call("POST", "/v1/vms", many);
  EXPECT_NE(r.body.find("/vcpus"), std::string::npos);
  EXPECT_NE(r.body.find("/memory_mib"), std::string::npos) << r.body;
  // Nothing was stored by any of them, and the daemon still serves.
  EXPECT_EQ(json::parse(call("GET", "/v1/vms").body)["items"].size(), 0u);
}

TEST_F(VmApiTest, NamesAreUniqueAndReadersCannotMutate) {
  ASSERT_EQ(call("POST", "/v1/vms?wait=30", spec("app-1")).status, 201);
  expect_error(call("POST", "/v1/vms?wait=30", spec("app-1")), 409, "name_taken", "app-1");
  expect_error(call("POST", "/v1/vms", spec("app-2"), kReader), 403, "permission_denied");
  expect_error(call("POST", "/v1/vms/00000000-0000-4000-8000-000000000000/start"), 404, "not_found");
  // A name libvirt already has (test:///default's own domain "test"): the create fails,
  // and nothing of it is kept.
  auto clash = call("POST", "/v1/vms?wait=30", spec("test"));
  expect_error(clash, 409, "already_exists");
  EXPECT_EQ(json::parse(call("GET", "/v1/vms").body)["items"].size(), 1u);
}

TEST_F(VmApiTest, ReconciliationListsUnmanagedDomainsAndKeepsRecords) {
  ASSERT_EQ(call("POST", "/v1/vms?wait=30", spec("rec-1")).status, 201);
  auto report = call("POST", "/v1/vms:reconcile");
  ASSERT_EQ(report.status, 200) << report.body;
  json r = json::parse(report.body);
  EXPECT_EQ(r["checked"], 1);
  EXPECT_EQ(r["corrected"], 0) << "the record already matches the hypervisor";
  expect_error(call("POST", "/v1/vms:reconcile", nullptr, kReader), 403, "permission_denied");

  auto unmanaged = call("GET", "/v1/vms:unmanaged", nullptr, kReader);
  ASSERT_EQ(unmanaged.status, 200) << unmanaged.body;
  json u = json::parse(unmanaged.body);
  ASSERT_EQ(u["items"].size(), 1u) << u.dump();
  EXPECT_EQ(u["items"][0]["name"], "test") << "test:///default's own domain";
  EXPECT_EQ(u["items"][0]["created_by_novacron"], false);
  EXPECT_TRUE(u["reconciled_at_ms"].is_number());
  // Listed, never adopted or deleted: it is still there, and not in the inventory.
  EXPECT_EQ(json::parse(call("GET", "/v1/vms").body)["items"].size(), 1u);
  EXPECT_EQ(json::parse(call("GET", "/v1/vms:unmanaged").body)["items"].size(), 1u);
}

// libvirtd down: the driver still loads, reports itself unavailable with the reason, and VM
// calls answer 503 while the host keeps serving.
TEST(VmDriverDownTest, UnavailableDriverIs503AndReported) {
  TempDir dir;
  auto r = run({(bin_dir() / "novacron").string(), "plugin", "install", "--data-dir", (dir / "data").string(),
                fixture("io.novacron.test.auth").string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  fs::create_directories(dir / "images");
  write_file(dir / "images/base.raw", std::string(512, '\0'));
  write_file(dir / "cfg.json",
             json{{"data_dir", (dir / "data").string()},
                  {"listen", {{"port", 0}}},
                  {"vms", {{"image_root", (dir / "images").string()}}},
                  {"plugins",
                   {{"load",
                     {{{"id", "io.novacron.test.auth"}, {"required", true}},
                      {{"id", "io.novacron.driver.kvm"},
                       {"config", {{"uri", "qemu+unix:///system?socket=" + (dir / "no-libvirt-sock").string()}}}}}}}}}
                 .dump());
  int port = 0;
  auto daemon = start_novacrond(dir / "cfg.json", dir.path(), port);
  ASSERT_GT(port, 0) << daemon->err();
  auto drivers = http_request(port, "GET", "/v1/nodes/self/drivers", kReader);
  ASSERT_EQ(drivers.status, 200);
  json d = json::parse(drivers.body)["items"][0];
  EXPECT_EQ(d["available"], false) << d.dump();
  EXPECT_EQ(d["error"]["code"], "unavailable");
  json s = {{"name", "x"},
            {"driver", "kvm"},
            {"vcpus", 1},
            {"memory_mib", 64},
            {"disks", {{{"image", "base.raw"}, {"format", "raw"}}}}};
  auto created = http_request(port, "POST", "/v1/vms", kAdmin, s.dump());
  EXPECT_EQ(created.status, 503) << created.body;
  EXPECT_EQ(http_request(port, "GET", "/v1/health").status, 200);
}

// The CLI's vm commands against a daemon with the token provider and the kvm driver on
// test:///default.
TEST(VmCliTest, CreateListShowActAndDeleteByName) {
  TempDir dir;
  fs::create_directories(dir / "images");
  write_file(dir / "images/base.raw", std::string(4096, '\0'));
  write_file(dir / "cfg.json",
             json{{"node", {{"name", "cli-vm-node"}}},
                  {"data_dir", (dir / "data").string()},
                  {"listen", {{"port", 0}}},
                  {"vms", {{"image_root", (dir / "images").string()}}},
                  {"plugins",
                   {{"load",
                     {{{"id", "io.novacron.auth.token"}, {"required", true}},
                      {{"id", "io.novacron.driver.kvm"}, {"config", {{"uri", "test:///default"}}}}}}}}}
                 .dump());
  int port = 0;
  auto daemon = start_novacrond(dir / "cfg.json", dir.path(), port);
  ASSERT_GT(port, 0) << daemon->err();
  const std::string url = "http://127.0.0.1:" + std::to_string(port);
  const std::string token_file = (dir / "data/admin.token").string();
  auto nc = [&](std::vector<std::string> args) {
    std::vector<std::string> argv{
        "/usr/bin/env", "-i",      "HOME=" + dir.path().string(), (bin_dir() / "novacron").string(), "--url", url,
        "--token-file", token_file};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv);
  };

  auto created = nc({"vm", "create", "--name", "cli-1", "--image", "base.raw", "--format", "raw", "--memory", "128",
                     "--label", "tier=web", "--json"});
  ASSERT_EQ(created.exit_code, 0) << created.out << created.err;
  EXPECT_EQ(json::parse(created.out)["state"], "succeeded");

  auto listed = nc({"vm", "list"});
  ASSERT_EQ(listed.exit_code, 0) << listed.err;
  EXPECT_NE(listed.out.find("NAME"), std::string::npos);
  EXPECT_NE(listed.out.find("cli-1"), std::string::npos);
  EXPECT_NE(listed.out.find("running"), std::string::npos) << listed.out;

  auto shown = nc({"vm", "show", "cli-1"});
  ASSERT_EQ(shown.exit_code, 0) << shown.err;
  EXPECT_NE(shown.out.find("Live        running"), std::string::npos) << shown.out;

  auto again = nc({"vm", "start", "cli-1"});
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_NE(again.err.find("is running; start needs it"), std::string::npos) << again.err;

  ASSERT_EQ(nc({"vm", "stop", "cli-1"}).exit_code, 0);
  EXPECT_EQ(json::parse(nc({"vm", "list", "--state", "stopped", "--json"}).out)["items"].size(), 1u);
  EXPECT_EQ(nc({"vm", "console", "cli-1"}).exit_code, 0);  // the test hypervisor writes no console
  auto node = nc({"node", "show"});
  EXPECT_NE(node.out.find("Name        cli-vm-node"), std::string::npos) << node.out;

  auto bad = nc({"vm", "create", "--name", "cli-2", "--image", "../outside.raw"});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.err.find("/disks/0/image"), std::string::npos) << bad.err;
  auto unknown = nc({"vm", "show", "nope"});
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_NE(unknown.err.find("no VM named nope"), std::string::npos);

  ASSERT_EQ(nc({"vm", "delete", "cli-1"}).exit_code, 0);
  EXPECT_EQ(json::parse(nc({"vm", "list", "--json"}).out)["items"].size(), 0u);
}

}  // namespace
}  // namespace novacron
