#include "host/config/host_config.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "tests/support/test_env.h"

namespace novacron {
namespace {

Expected<HostConfig> parse(const std::string& text) { return parse_host_config(text, "/etc/novacron"); }

// The error must name `path` and say `what`.
void expect_error(const std::string& text, const std::string& path, const std::string& what) {
  auto cfg = parse(text);
  ASSERT_FALSE(cfg.has_value()) << "accepted: " << text;
  EXPECT_EQ(cfg.error().code, "config_invalid");
  EXPECT_NE(cfg.error().message.find(path + ": "), std::string::npos) << cfg.error().message;
  EXPECT_NE(cfg.error().message.find(what), std::string::npos) << cfg.error().message;
}

TEST(HostConfigTest, EmbeddedDefaultIsValid) {
  auto cfg = load_host_config(testing::source_dir() / "docs/examples/novacrond.json");
  ASSERT_TRUE(cfg.has_value()) << cfg.error().message;
  EXPECT_EQ(cfg->node_name, "node-1");
  EXPECT_EQ(cfg->listen_port, 8470);
  ASSERT_EQ(cfg->plugins.size(), 4u);
  EXPECT_EQ(cfg->plugins[0].id, "io.novacron.auth.token");
  EXPECT_EQ(cfg->plugins[1].id, "io.novacron.policy.resource-fit");
  EXPECT_TRUE(cfg->plugins[1].required);
  EXPECT_EQ(nlohmann::json::parse(cfg->plugins[1].config_json)["cpu_allocation_ratio"], 4.0);
  EXPECT_EQ(cfg->plugins[3].config_json, "{}");
}

TEST(HostConfigTest, CommentsAndRelativePaths) {
  auto cfg = parse(R"({
    // a comment
    "data_dir": "data",  /* block comment */
    "plugins": {"dirs": ["extra", "/abs/plugins"], "trusted_keys": ["keys/a.pub"]},
    "tls": {"cert": "tls/node.crt", "key": "tls/node.key"}
  })");
  ASSERT_TRUE(cfg.has_value()) << cfg.error().message;
  EXPECT_EQ(cfg->data_dir, "/etc/novacron/data");
  EXPECT_EQ(cfg->plugin_dirs[0], "/etc/novacron/extra");
  EXPECT_EQ(cfg->plugin_dirs[1], "/abs/plugins");
  EXPECT_EQ(cfg->trusted_keys[0], "/etc/novacron/keys/a.pub");
  ASSERT_TRUE(cfg->tls.has_value());
  EXPECT_EQ(cfg->tls->key, "/etc/novacron/tls/node.key");
}

TEST(HostConfigTest, DefaultsApply) {
  auto cfg = parse("{}");
  ASSERT_TRUE(cfg.has_value());
  EXPECT_EQ(cfg->data_dir, "/var/lib/novacron");
  EXPECT_EQ(cfg->listen_address, "127.0.0.1");
  EXPECT_FALSE(cfg->node_name.empty());
  EXPECT_TRUE(cfg->plugins.empty());
}

TEST(HostConfigTest, ErrorsNameTheJsonPath) {
  expect_error(R"({"listen": {"port": 70000}})", "/listen/port", "expected an integer from 0 to 65535");
  expect_error(R"({"listen": {"port": "80"}})", "/listen/port", "got \"80\"");
  expect_error(R"({"lisen": {}})", "/lisen", "unknown key");
  expect_error(R"({"plugins": {"load": [{"id": "io.novacron.a"}, {"id": "io.novacron.b", "required": "yes"}]}})",
               "/plugins/load/1/required", "expected true or false");
  expect_error(R"({"plugins": {"load": [{"id": "Not An Id"}]}})", "/plugins/load/0/id", "reverse-DNS");
  expect_error(R"({"plugins": {"load": [{"id": "io.novacron.a"}, {"id": "io.novacron.a"}]}})", "/plugins/load/1/id",
               "listed twice");
  expect_error(R"({"plugins": {"load": [{"version": "1.0.0"}]}})", "/plugins/load/0/id", "is required");
  expect_error(R"({"plugins": {"load": [{"id": "io.novacron.a", "config": []}]}})", "/plugins/load/0/config",
               "expected an object");
  expect_error(R"({"log": {"level": "loud"}})", "/log/level", "expected one of trace, debug, info, warn, error");
  expect_error(R"({"tls": {"cert": "a.crt"}})", "/tls/key", "is required");
  expect_error(R"({"threads": {"io": 0}})", "/threads/io", "from 1 to 64");
  expect_error(R"({"node": {"name": "bad name!"}})", "/node/name", "not a valid node name");
  expect_error(R"([1, 2])", "/", "expected an object");
  expect_error(R"({"listen": {"address": "localhost"}})", "/listen/address", "not an IPv4 or IPv6 address");
  expect_error(R"({"plugins": {"require_signatures": true}})", "/plugins/require_signatures", "trusted_keys is empty");
  expect_error(R"({"plugins": {"load": [{"id": "io.novacron.a", "version": "latest"}]}})", "/plugins/load/0/version",
               "not MAJOR.MINOR.PATCH");
}

TEST(HostConfigTest, EveryErrorIsReportedNotJustTheFirst) {
  auto cfg = parse(R"({"listen": {"port": -1}, "log": {"format": "xml"}})");
  ASSERT_FALSE(cfg.has_value());
  EXPECT_NE(cfg.error().message.find("/listen/port"), std::string::npos);
  EXPECT_NE(cfg.error().message.find("/log/format"), std::string::npos);
}

TEST(HostConfigTest, SyntaxErrorsGiveLineAndColumn) {
  auto cfg = parse("{\n  \"data_dir\": \"x\",\n  \"listen\": {port: 1}\n}");
  ASSERT_FALSE(cfg.has_value());
  EXPECT_NE(cfg.error().message.find("line 3"), std::string::npos) << cfg.error().message;
}

TEST(HostConfigTest, NumberOverflowIsAnErrorNotACrash) {
  // Found by tests/fuzz/config_fuzz.cc: nlohmann throws out_of_range, not parse_error, here.
  auto cfg = parse(R"({"listen": {"port": 22.22e1520566004}})");
  ASSERT_FALSE(cfg.has_value());
  EXPECT_NE(cfg.error().message.find("number overflow"), std::string::npos) << cfg.error().message;
}

TEST(HostConfigTest, UnreadableFileIsNamed) {
  auto cfg = load_host_config("/nonexistent/novacrond.json");
  ASSERT_FALSE(cfg.has_value());
  EXPECT_EQ(cfg.error().code, "config_unreadable");
  EXPECT_NE(cfg.error().message.find("/nonexistent/novacrond.json"), std::string::npos);
}

}  // namespace
}  // namespace novacron
