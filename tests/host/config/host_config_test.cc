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
  ASSERT_EQ(cfg->plugins.size(), 6u);
  EXPECT_EQ(cfg->plugins[0].id, "io.novacron.auth.token");
  EXPECT_EQ(cfg->plugins[1].id, "io.novacron.policy.resource-fit");
  EXPECT_TRUE(cfg->plugins[1].required);
  EXPECT_EQ(nlohmann::json::parse(cfg->plugins[1].config_json)["cpu_allocation_ratio"], 4.0);
  EXPECT_EQ(cfg->plugins[3].config_json, "{}");
  EXPECT_EQ(cfg->plugins[4].id, "io.novacron.driver.kvm");
  EXPECT_FALSE(cfg->plugins[4].required) << "a host without libvirtd still starts";
  EXPECT_EQ(cfg->plugins[5].id, "io.novacron.driver.lxc");
  EXPECT_EQ(nlohmann::json::parse(cfg->plugins[5].config_json)["lxcpath"], "") << "DATA_DIR/lxc";
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

TEST(HostConfigTest, MultiNodeExamplesAreValidAndNameEachOther) {
  for (const char* name : {"node-a", "node-b", "node-c"}) {
    auto cfg = load_host_config(testing::source_dir() / "docs/examples/cluster" / (std::string(name) + ".json"));
    ASSERT_TRUE(cfg.has_value()) << name << ": " << cfg.error().message;
    EXPECT_EQ(cfg->node_name, name);
    ASSERT_TRUE(cfg->cluster.has_value());
    EXPECT_EQ(cfg->cluster->peers.size(), 2u);
    for (const auto& peer : cfg->cluster->peers) EXPECT_NE(peer.name, name);
    // TLS on the API is on in the multi-node example: the node certificate, client CA = cluster CA.
    ASSERT_TRUE(cfg->tls.has_value());
    EXPECT_EQ(cfg->tls->cert, cfg->cluster->cert);
    EXPECT_EQ(cfg->tls->client_ca, cfg->cluster->ca);
    // Each node loads the transport and receives beneath its own images folder.
    EXPECT_EQ(cfg->plugins.back().id, "io.novacron.transport");
    EXPECT_EQ(cfg->transfer_root, std::string("/var/lib/novacron/") + name + "/images");
  }
}

TEST(HostConfigTest, ClusterPeersAreParsed) {
  auto cfg =
      parse(R"({"node": {"name": "a", "labels": {"zone": "z1"}, "capacity": {"vcpus": 4}, "transport": "10.0.0.1:8570"},
    "tls": {"cert": "api.crt", "key": "api.key"},
    "cluster": {"ca": "ca.crt", "cert": "a.crt", "key": "a.key", "probe_interval_seconds": 5,
      "peers": [{"name": "b", "api": "https://[::1]:8471", "transport": "10.0.0.2:8570",
                 "capacity": {"vcpus": 8, "memory_mib": 1024}, "labels": {"rack": "r2"}}]}})");
  ASSERT_TRUE(cfg.has_value()) << cfg.error().message;
  EXPECT_EQ(cfg->node_labels.at("zone"), "z1");
  EXPECT_EQ(cfg->node_capacity.vcpus, 4);
  EXPECT_FALSE(cfg->node_capacity.memory_mib.has_value());
  EXPECT_EQ(cfg->transport_address, "10.0.0.1:8570");
  EXPECT_EQ(cfg->cluster->ca, "/etc/novacron/ca.crt");
  EXPECT_EQ(cfg->cluster->probe_interval_seconds, 5);
  ASSERT_EQ(cfg->cluster->peers.size(), 1u);
  const auto& b = cfg->cluster->peers[0];
  EXPECT_EQ(b.api_url, "https://[::1]:8471");
  EXPECT_EQ(b.capacity.memory_mib, 1024);
  EXPECT_EQ(b.labels.at("rack"), "r2");
  // An explicit API certificate is kept; client certificates are still checked against the cluster CA.
  EXPECT_EQ(cfg->tls->cert, "/etc/novacron/api.crt");
  EXPECT_EQ(cfg->tls->client_ca, "/etc/novacron/ca.crt");
}

TEST(HostConfigTest, BadPeersAreRefusedWithTheirPath) {
  const std::string head =
      R"({"node": {"name": "a"}, "cluster": {"ca": "c", "cert": "a.crt", "key": "a.key", "peers": )";
  expect_error(head + R"([{"name": "b", "api": "http://10.0.0.2:8470"}]}})", "/cluster/peers/0/api",
               "expected https://HOST:PORT");
  expect_error(head + R"([{"name": "b", "api": "https://10.0.0.2"}]}})", "/cluster/peers/0/api", "expected https://");
  expect_error(head + R"([{"name": "a", "api": "https://10.0.0.2:1"}]}})", "/cluster/peers/0/name",
               "this node's own name");
  expect_error(head + R"([{"name": "b", "api": "https://h:1"}, {"name": "b", "api": "https://h:2"}]}})",
               "/cluster/peers/1/name", "listed twice");
  expect_error(head + R"([{"name": "b c", "api": "https://h:1"}]}})", "/cluster/peers/0/name", "not a valid node name");
  expect_error(head + R"([{"api": "https://h:1"}]}})", "/cluster/peers/0/name", "is required");
  expect_error(head + R"([{"name": "b", "api": "https://h:1", "transport": "h"}]}})", "/cluster/peers/0/transport",
               "expected HOST:PORT");
  expect_error(head + R"([{"name": "b", "api": "https://h:1", "capacity": {"vcpus": -1}}]}})",
               "/cluster/peers/0/capacity/vcpus", "expected an integer");
  expect_error(head + R"([{"name": "b", "api": "https://h:1", "labels": {"zone": 3}}]}})",
               "/cluster/peers/0/labels/zone", "expected a string");
  expect_error(head + R"({"name": "b"}}})", "/cluster/peers", "expected an array");
  expect_error(R"({"cluster": {"ca": "c", "cert": "a.crt", "key": "a.key"}})", "/node/name",
               "is required with /cluster");
  expect_error(R"({"node": {"name": "a"}, "cluster": {"cert": "a.crt", "key": "a.key"}})", "/cluster/ca",
               "is required");
}

// The scheduler section: which policies, their weights, the engine's limits; every error
// names its JSON path.
TEST(HostConfigTest, SchedulerSection) {
  const std::string load = R"("plugins": {"load": [{"id": "io.novacron.policy.resource-fit"},
                                                  {"id": "io.novacron.policy.binpack"}]})";
  auto cfg = parse("{" + load + R"(, "node": {"reserved": {"vcpus": 2, "memory_mib": 2048}},
    "scheduler": {"filters": ["io.novacron.policy.resource-fit"],
                  "scorers": [{"id": "io.novacron.policy.binpack", "weight": 2.5}],
                  "candidates": {"max_scored": 0}, "explain": {"top_k": 5}, "claim": {"max_attempts": 2}}})");
  ASSERT_TRUE(cfg.has_value()) << cfg.error().message;
  EXPECT_TRUE(cfg->scheduler.configured);
  EXPECT_EQ(cfg->scheduler.filters, (std::vector<std::string>{"io.novacron.policy.resource-fit"}));
  ASSERT_EQ(cfg->scheduler.scorers.size(), 1u);
  EXPECT_EQ(cfg->scheduler.scorers[0].weight, 2.5);
  EXPECT_EQ(cfg->scheduler.max_scored, 0u);
  EXPECT_EQ(cfg->scheduler.top_k, 5u);
  EXPECT_EQ(cfg->scheduler.claim_max_attempts, 2);
  EXPECT_EQ(cfg->node_reserved.vcpus, 2);
  EXPECT_EQ(cfg->node_reserved.memory_mib, 2048);
  // Without the section: not configured (every running policy by its roles).
  auto plain = parse("{" + load + "}");
  ASSERT_TRUE(plain.has_value());
  EXPECT_FALSE(plain->scheduler.configured);

  expect_error("{" + load + R"(, "scheduler": {"filters": ["io.novacron.policy.affinity"]}})", "/scheduler/filters/0",
               "io.novacron.policy.affinity is not in /plugins/load");
  expect_error("{" + load + R"(, "scheduler": {"scorers": [{"id": "io.novacron.policy.binpack", "weight": -1}]}})",
               "/scheduler/scorers/0/weight", "expected a number from 0 to 1000");
  expect_error(
      "{" + load + R"(, "scheduler": {"scorers": ["io.novacron.policy.binpack", "io.novacron.policy.binpack"]}})",
      "/scheduler/scorers/1", "listed twice");
  expect_error("{" + load + R"(, "scheduler": {"candidates": {"max_scored": -5}}})", "/scheduler/candidates/max_scored",
               "expected an integer");
  expect_error("{" + load + R"(, "scheduler": {"weights": {}}})", "/scheduler/weights", "unknown key");
  expect_error("{" + load + R"(, "node": {"reserved": {"cores": 1}}})", "/node/reserved/cores", "unknown key");
}

}  // namespace
}  // namespace novacron
