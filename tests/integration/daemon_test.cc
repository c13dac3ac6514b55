// novacrond as a real process: start-up with the bundled plugins, health, graceful stop,
// refused start-ups, the crash-loop guard with a plugin that aborts, the data dir lock.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <nlohmann/json.hpp>

#include "tests/support/test_env.h"

namespace novacron {
namespace {

using namespace novacron::testing;  // NOLINT(google-build-using-namespace)

class DaemonTest : public ::testing::Test {
 protected:
  // Writes a config with the bundled policies plus `extra_load` entries; port 0 = any free port.
  fs::path write_config(const std::string& extra_load = "", const std::string& bundled_required = "true") {
    fs::path cfg = dir_ / "novacrond.json";
    write_file(cfg, R"({
      "node": {"name": "it-node"},
      "data_dir": ")" + (dir_ / "data").string() +
                        R"(",
      "listen": {"address": "127.0.0.1", "port": 0},
      "plugins": {"load": [
        {"id": "io.novacron.policy.resource-fit", "required": )" +
                        bundled_required + R"(},
        {"id": "io.novacron.policy.binpack"},
        {"id": "io.novacron.policy.spread"})" +
                        extra_load + R"(
      ]}
    })");
    return cfg;
  }

  std::unique_ptr<Process> start(const fs::path& cfg) {
    return std::make_unique<Process>(
        std::vector<std::string>{(bin_dir() / "novacrond").string(), "--config", cfg.string()}, dir_.path());
  }

  SubprocessResult cli(std::vector<std::string> args) {
    args.insert(args.begin(), (bin_dir() / "novacron").string());
    return run(args);
  }

  TempDir dir_;
};

TEST_F(DaemonTest, StartsWithBundledPluginsServesHealthAndStopsOnSigterm) {
  auto d = start(write_config());
  ASSERT_TRUE(d->wait_for_output("novacrond ready")) << d->err();
  int port = ready_port(d->out());
  ASSERT_GT(port, 0) << d->out();
  EXPECT_NE(d->out().find("3 plugins running"), std::string::npos) << d->out();

  std::string health = http_get(port, "/v1/health");
  ASSERT_EQ(health.substr(0, 4), "200 ") << health;
  auto body = nlohmann::json::parse(health.substr(4));
  EXPECT_EQ(body["status"], "ok");
  EXPECT_EQ(body["node"], "it-node");
  EXPECT_EQ(body["plugins"]["running"], 3);
  EXPECT_EQ(http_get(port, "/v1/nope").substr(0, 4), "401 ");  // unknown routes too need credentials

  EXPECT_EQ(d->stop(SIGTERM), 0) << d->err();
  // Plugins stop in reverse order of start.
  std::string err = d->err();
  auto spread = err.find("plugin stopped id=io.novacron.policy.spread");
  auto fit = err.find("plugin stopped id=io.novacron.policy.resource-fit");
  ASSERT_NE(spread, std::string::npos) << err;
  ASSERT_NE(fit, std::string::npos) << err;
  EXPECT_LT(spread, fit);
}

TEST_F(DaemonTest, RequiredPluginMissingRefusesStartUp) {
  auto d = start(write_config(R"(, {"id": "io.novacron.test.not-installed", "required": true})"));
  EXPECT_EQ(d->wait(), 1);
  EXPECT_NE(d->err().find("start-up refused: required plugin io.novacron.test.not-installed"), std::string::npos)
      << d->err();
  EXPECT_EQ(d->out().find("ready"), std::string::npos);
}

TEST_F(DaemonTest, OptionalPluginMissingIsReportedAndSkipped) {
  auto d = start(write_config(R"(, {"id": "io.novacron.test.not-installed"})"));
  ASSERT_TRUE(d->wait_for_output("novacrond ready")) << d->err();
  EXPECT_NE(d->err().find("plugin not loaded id=io.novacron.test.not-installed"), std::string::npos) << d->err();
  EXPECT_EQ(d->stop(SIGTERM), 0);
}

TEST_F(DaemonTest, InvalidConfigNamesTheJsonPathAndExits) {
  fs::path cfg = dir_ / "bad.json";
  write_file(cfg, R"({"listen": {"port": "eighty"}, "plugins": {"load": [{"id": "io.novacron.x", "requird": true}]}})");
  auto d = start(cfg);
  EXPECT_EQ(d->wait(), 2);
  EXPECT_NE(d->err().find("/listen/port"), std::string::npos) << d->err();
  EXPECT_NE(d->err().find("/plugins/load/0/requird: unknown key"), std::string::npos) << d->err();
  EXPECT_NE(d->err().find("hint: `novacron config validate"), std::string::npos) << d->err();
}

TEST_F(DaemonTest, SecondDaemonOnTheSameDataDirIsRefused) {
  fs::path cfg = write_config();
  auto first = start(cfg);
  ASSERT_TRUE(first->wait_for_output("novacrond ready")) << first->err();
  auto second = start(cfg);
  EXPECT_EQ(second->wait(), 1);
  EXPECT_NE(second->err().find("is in use by another novacrond"), std::string::npos) << second->err();
  // Offline commands refuse too, with a hint.
  auto install =
      cli({"plugin", "install", "--data-dir", (dir_ / "data").string(), fixture("io.novacron.test.good").string()});
  EXPECT_EQ(install.exit_code, 1);
  EXPECT_NE(install.err.find("stop novacrond first"), std::string::npos) << install.err;
  EXPECT_EQ(first->stop(SIGTERM), 0);
}

TEST_F(DaemonTest, ServesTlsWhenConfiguredAndRefusesAnExposedKey) {
  // A self-signed certificate for 127.0.0.1, made with the openssl tool.
  auto gen = run({"/usr/bin/openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                  "-keyout", (dir_ / "node.key").string(), "-out", (dir_ / "node.crt").string(), "-days", "2", "-subj",
                  "/CN=it-node", "-addext", "subjectAltName=IP:127.0.0.1"});
  ASSERT_EQ(gen.exit_code, 0) << gen.err;
  ::chmod((dir_ / "node.key").c_str(), 0600);
  fs::path cfg = dir_ / "tls.json";
  write_file(cfg, R"({"data_dir": ")" + (dir_ / "data").string() + R"(", "listen": {"port": 0},
    "tls": {"cert": "node.crt", "key": "node.key"}})");
  auto d = start(cfg);
  ASSERT_TRUE(d->wait_for_output("novacrond ready")) << d->err();
  EXPECT_NE(d->out().find("listening on https://"), std::string::npos) << d->out();
  int port = ready_port(d->out());
  auto curl = run({"/usr/bin/curl", "-sS", "--cacert", (dir_ / "node.crt").string(),
                   "https://127.0.0.1:" + std::to_string(port) + "/v1/health"});
  EXPECT_EQ(curl.exit_code, 0) << curl.err;
  EXPECT_NE(curl.out.find("\"status\":\"ok\""), std::string::npos) << curl.out;
  // Plain HTTP on the TLS port gets no answer.
  EXPECT_EQ(http_get(port, "/v1/health").substr(0, 4).find("200"), std::string::npos);
  EXPECT_EQ(d->stop(SIGTERM), 0);

  ::chmod((dir_ / "node.key").c_str(), 0644);
  auto exposed = start(cfg);
  EXPECT_EQ(exposed->wait(), 1);
  EXPECT_NE(exposed->err().find("node.key is readable by group or others; run chmod 600"), std::string::npos)
      << exposed->err();
}

TEST_F(DaemonTest, PluginAbortingInStartIsQuarantinedOnTheNextStart) {
  auto install = cli(
      {"plugin", "install", "--data-dir", (dir_ / "data").string(), fixture("io.novacron.test.start-aborts").string()});
  ASSERT_EQ(install.exit_code, 0) << install.err;
  fs::path cfg = write_config(R"(, {"id": "io.novacron.test.start-aborts"})");

  auto crashing = start(cfg);
  EXPECT_EQ(crashing->wait(), 128 + SIGABRT) << crashing->err();

  auto recovered = start(cfg);
  ASSERT_TRUE(recovered->wait_for_output("novacrond ready")) << recovered->err();
  EXPECT_NE(recovered->err().find("plugin quarantined id=io.novacron.test.start-aborts"), std::string::npos)
      << recovered->err();
  EXPECT_NE(recovered->out().find("3 plugins running"), std::string::npos);
  EXPECT_EQ(recovered->stop(SIGTERM), 0);

  auto list = cli({"--json", "plugin", "list", "--data-dir", (dir_ / "data").string()});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  bool found = false;
  const auto listed = nlohmann::json::parse(list.out);
  for (const auto& p : listed["items"]) {
    if (p["id"] == "io.novacron.test.start-aborts") {
      found = true;
      EXPECT_EQ(p["state"], "quarantined");
      EXPECT_NE(p["reason"].get<std::string>().find("died while running the start step"), std::string::npos);
    }
  }
  EXPECT_TRUE(found) << list.out;

  // Still quarantined on the start after: no crash loop.
  auto again = start(cfg);
  ASSERT_TRUE(again->wait_for_output("novacrond ready")) << again->err();
  EXPECT_NE(again->err().find("code=quarantined"), std::string::npos) << again->err();
  EXPECT_EQ(again->stop(SIGTERM), 0);

  auto enable = cli({"plugin", "enable", "--data-dir", (dir_ / "data").string(), "io.novacron.test.start-aborts"});
  EXPECT_EQ(enable.exit_code, 0) << enable.err;
  EXPECT_NE(enable.out.find("enabled"), std::string::npos);
}

}  // namespace
}  // namespace novacron
