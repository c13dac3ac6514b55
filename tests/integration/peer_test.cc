// Node identity and static peers with real novacrond processes on loopback: certificates
// from `novacron cert`, mutual TLS between hosts, GET /v1/nodes with reachability, and the
// refusals: a peer whose certificate comes from another CA, one whose certificate names
// another node, one that does not accept this node, one that is down; a client certificate
// from another CA refused by the listener.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <thread>

#include "host/api/http_client.h"
#include "tests/support/test_env.h"

namespace novacron {
namespace {

using namespace novacron::testing;  // NOLINT(google-build-using-namespace)
using nlohmann::json;

class PeerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    cli({"cert", "init", "--dir", (dir_ / "ca").string()});
    cli({"cert", "init", "--dir", (dir_ / "rogue-ca").string(), "--name", "Rogue CA"});
    for (const char* node : {"node-a", "node-b", "node-d"}) {
      cli({"cert", "issue", node, "--ca-dir", (dir_ / "ca").string(), "--out", (dir_ / "certs").string()});
    }
    cli({"cert", "issue", "node-r", "--ca-dir", (dir_ / "rogue-ca").string(), "--out", (dir_ / "rogue").string()});
  }

  void cli(const std::vector<std::string>& args) {
    std::vector<std::string> argv{(bin_dir() / "novacron").string()};
    argv.insert(argv.end(), args.begin(), args.end());
    auto r = run(argv);
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  }

  // Starts a node with the test auth provider (for operators' calls) and, when `mtls`,
  // io.novacron.auth.mtls (for peers). Returns its port.
  int start_node(const std::string& name, const fs::path& ca, const fs::path& cert_dir, const json& peers,
                 bool mtls = true) {
    fs::path data = dir_ / ("data-" + name);
    cli({"plugin", "install", "--data-dir", data.string(), fixture("io.novacron.test.auth").string()});
    json load = json::array();
    if (mtls) load.push_back({{"id", "io.novacron.auth.mtls"}, {"required", true}});
    load.push_back({{"id", "io.novacron.test.auth"}, {"required", true}});
    json cfg = {{"node", {{"name", name}, {"labels", {{"zone", "eu-1"}}}, {"capacity", {{"vcpus", 8}}}}},
                {"data_dir", data.string()},
                {"listen", {{"address", "127.0.0.1"}, {"port", 0}}},
                {"cluster",
                 {{"ca", ca.string()},
                  {"cert", (cert_dir / (name + ".crt")).string()},
                  {"key", (cert_dir / (name + ".key")).string()},
                  {"probe_interval_seconds", 1},
                  {"probe_timeout_ms", 2000},
                  {"peers", peers}}},
                {"plugins", {{"load", load}}}};
    fs::path file = dir_ / (name + ".json");
    write_file(file, cfg.dump(2));
    auto p = std::make_unique<Process>(
        std::vector<std::string>{(bin_dir() / "novacrond").string(), "--config", file.string()}, dir_.path());
    EXPECT_TRUE(p->wait_for_output("novacrond ready")) << p->err();
    EXPECT_NE(p->out().find("https://"), std::string::npos) << "a cluster node serves TLS: " << p->out();
    int port = ready_port(p->out());
    daemons_.push_back(std::move(p));
    return port;
  }

  // A client of `port` that trusts the cluster CA and expects `server_name`; with a client
  // certificate when `cert` is given.
  HttpClient client(int port, const std::string& server_name, const fs::path& cert = {}, const fs::path& key = {}) {
    HttpClientOptions o;
    o.base_url = "https://127.0.0.1:" + std::to_string(port);
    o.ca_file = (dir_ / "ca/ca.crt").string();
    o.server_name = server_name;
    o.cert_file = cert.string();
    o.key_file = key.string();
    o.timeout = std::chrono::seconds(5);
    auto c = HttpClient::create(o);
    EXPECT_TRUE(c.has_value()) << c.error().message;
    return std::move(*c);
  }

  // GET /v1/nodes until no peer is "unknown" any more (the first probe round has run).
  json nodes_after_first_probes(HttpClient& c) {
    for (int i = 0; i < 200; ++i) {
      auto r = c.request("GET", "/v1/nodes", "", {{"Authorization", "Test alice"}});
      EXPECT_TRUE(r.has_value()) << r.error().message;
      if (!r) return {};
      json j = json::parse(r->body);
      bool all_probed = true;
      for (const auto& n : j["items"]) all_probed = all_probed && n["state"] != "unknown";
      if (all_probed) return j;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ADD_FAILURE() << "peers were never probed";
    return {};
  }

  TempDir dir_;
  std::vector<std::unique_ptr<Process>> daemons_;
};

json peer_entry(const std::string& name, int port) {
  return {{"name", name},
          {"api", "https://127.0.0.1:" + std::to_string(port)},
          {"transport", "127.0.0.1:" + std::to_string(port + 1)},
          {"labels", {{"rack", "r1"}}}};
}

TEST_F(PeerTest, NodesListsPeersWithReachabilityOverMutualTls) {
  fs::path ca = dir_ / "ca/ca.crt";
  int b = start_node("node-b", ca, dir_ / "certs", json::array());
  int d = start_node("node-d", ca, dir_ / "certs", json::array(), /*mtls=*/false);  // accepts no node certificates
  int r = start_node("node-r", dir_ / "rogue-ca/ca.crt", dir_ / "rogue", json::array());
  json peers =
      json::array({peer_entry("node-b", b), peer_entry("node-d", d),  // up, but refuses node-a (no mTLS provider)
                   peer_entry("node-m", d),                           // node-d answers there: wrong name
                   peer_entry("node-r", r),                           // certificate from another CA
                   peer_entry("node-z", unused_loopback_port())});
  int a = start_node("node-a", ca, dir_ / "certs", peers);

  auto c = client(a, "node-a");
  json nodes = nodes_after_first_probes(c);
  ASSERT_EQ(nodes["items"].size(), 6u) << nodes.dump(2);
  std::map<std::string, json> by_name;
  std::vector<std::string> order;
  for (const auto& n : nodes["items"]) {
    by_name[n["name"]] = n;
    order.push_back(n["name"]);
  }
  EXPECT_EQ(order, (std::vector<std::string>{"node-a", "node-b", "node-d", "node-m", "node-r", "node-z"}));

  EXPECT_EQ(by_name["node-a"]["self"], true);
  EXPECT_EQ(by_name["node-a"]["state"], "ready");
  EXPECT_EQ(by_name["node-a"]["mutual_tls"], true);
  EXPECT_EQ(by_name["node-a"]["labels"]["zone"], "eu-1");
  EXPECT_EQ(by_name["node-a"]["capacity"]["vcpus"], 8);

  EXPECT_EQ(by_name["node-b"]["state"], "reachable") << by_name["node-b"].dump();
  EXPECT_EQ(by_name["node-b"]["version"], NOVACRON_VERSION);
  EXPECT_EQ(by_name["node-b"]["labels"]["rack"], "r1");
  EXPECT_TRUE(by_name["node-b"]["error"].is_null());
  EXPECT_TRUE(by_name["node-b"]["latency_ms"].is_number());

  EXPECT_EQ(by_name["node-d"]["state"], "refused") << by_name["node-d"].dump();
  EXPECT_EQ(by_name["node-d"]["error"]["code"], "peer_refused");
  EXPECT_EQ(by_name["node-m"]["state"], "untrusted") << by_name["node-m"].dump();
  EXPECT_EQ(by_name["node-m"]["error"]["code"], "name_mismatch");
  EXPECT_EQ(by_name["node-r"]["state"], "untrusted") << by_name["node-r"].dump();
  EXPECT_EQ(by_name["node-r"]["error"]["code"], "untrusted_certificate");
  EXPECT_EQ(by_name["node-z"]["state"], "unreachable") << by_name["node-z"].dump();
  EXPECT_EQ(by_name["node-z"]["error"]["code"], "connect_failed");
  EXPECT_TRUE(by_name["node-z"]["last_seen_ms"].is_null());

  // Pagination walks the same list without loss or duplicates.
  std::vector<std::string> walked;
  std::string cursor;
  for (int pages = 0; pages < 10; ++pages) {
    auto page = c.request("GET", "/v1/nodes?limit=4" + (cursor.empty() ? "" : "&cursor=" + cursor), "",
                          {{"Authorization", "Test alice"}});
    ASSERT_TRUE(page.has_value());
    json j = json::parse(page->body);
    for (const auto& n : j["items"]) walked.push_back(n["name"]);
    if (j["next_cursor"].is_null()) break;
    cursor = j["next_cursor"];
  }
  EXPECT_EQ(walked, order);

  // The reachability gauge, per peer.
  auto metrics = c.request("GET", "/metrics", "", {{"Authorization", "Test alice"}});
  ASSERT_TRUE(metrics.has_value());
  EXPECT_NE(metrics->body.find("novacron_peer_up{peer=\"node-b\"} 1"), std::string::npos) << metrics->body;
  EXPECT_NE(metrics->body.find("novacron_peer_up{peer=\"node-r\"} 0"), std::string::npos);
}

TEST_F(PeerTest, ListenerRefusesClientCertificatesFromAnotherCa) {
  int b = start_node("node-b", dir_ / "ca/ca.crt", dir_ / "certs", json::array());

  // A node certificate of the cluster authenticates as node:<name>, with the reader role.
  auto member = client(b, "node-b", dir_ / "certs/node-a.crt", dir_ / "certs/node-a.key");
  auto self = member.request("GET", "/v1/nodes/self");
  ASSERT_TRUE(self.has_value()) << self.error().message;
  EXPECT_EQ(self->status, 200) << self->body;
  EXPECT_EQ(json::parse(self->body)["name"], "node-b");
  auto admin_only = member.request("POST", "/v1/tokens", R"({"name": "x", "role": "reader"})");
  ASSERT_TRUE(admin_only.has_value());
  EXPECT_EQ(admin_only->status, 403) << admin_only->body;
  EXPECT_NE(admin_only->body.find("node:node-a"), std::string::npos) << admin_only->body;

  // The same request with a certificate from another CA never reaches the API.
  auto rogue = client(b, "node-b", dir_ / "rogue/node-r.crt", dir_ / "rogue/node-r.key");
  auto refused = rogue.request("GET", "/v1/nodes/self");
  ASSERT_FALSE(refused.has_value()) << refused->status << " " << refused->body;
  EXPECT_EQ(refused.error().code, "tls_failed") << refused.error().message;

  // Without a certificate the listener still serves token (here: test provider) clients.
  auto anonymous = client(b, "node-b");
  auto none = anonymous.request("GET", "/v1/nodes/self");
  ASSERT_TRUE(none.has_value());
  EXPECT_EQ(none->status, 401);
  auto with_credentials = anonymous.request("GET", "/v1/nodes/self", "", {{"Authorization", "Test alice"}});
  ASSERT_TRUE(with_credentials.has_value());
  EXPECT_EQ(with_credentials->status, 200);

  // The daemon kept serving through the refused handshake.
  EXPECT_TRUE(daemons_.back()->running());
}

TEST_F(PeerTest, DaemonRefusesToStartWithACertificateThatDoesNotNameIt) {
  fs::path data = dir_ / "data-x";
  json cfg = {{"node", {{"name", "node-x"}}},
              {"data_dir", data.string()},
              {"listen", {{"port", 0}}},
              {"cluster",
               {{"ca", (dir_ / "ca/ca.crt").string()},
                {"cert", (dir_ / "certs/node-b.crt").string()},
                {"key", (dir_ / "certs/node-b.key").string()}}}};
  write_file(dir_ / "x.json", cfg.dump());
  Process p({(bin_dir() / "novacrond").string(), "--config", (dir_ / "x.json").string()}, dir_.path());
  EXPECT_NE(p.wait(), 0);
  EXPECT_NE(p.err().find("does not name node node-x"), std::string::npos) << p.err();
  EXPECT_NE(p.err().find("novacron cert issue node-x"), std::string::npos) << p.err();
}

}  // namespace
}  // namespace novacron
