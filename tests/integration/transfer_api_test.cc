// Transfers between two real novacrond on loopback, each with its own data dir, API port,
// transport port and node certificate from `novacron cert`: the CLI's `transfer send`,
// GET /v1/transfers on both nodes, the transfer.* events, a path escape refused with 400, a
// cancel, the node limit, and a host without the transport answering 503.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "host/api/http_client.h"
#include "tests/support/test_env.h"

namespace novacron {
namespace {

using namespace novacron::testing;  // NOLINT(google-build-using-namespace)
using nlohmann::json;

void write_random(const fs::path& path, size_t bytes, unsigned seed) {
  std::mt19937_64 rng(seed);
  std::vector<std::uint64_t> words(bytes / 8);
  for (auto& w : words) w = rng();
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(words.data()), static_cast<std::streamsize>(bytes));
}

struct Node {
  std::string name;
  std::unique_ptr<Process> daemon;
  std::string url;
  std::string token;
  fs::path root;  // transfers root
};

class TransferApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::create_directories(dir_ / "home");
    ASSERT_EQ(cli({"cert", "init", "--dir", (dir_ / "ca").string()}).exit_code, 0);
    for (const char* n : {"node-a", "node-b"}) {
      auto r = cli({"cert", "issue", n, "--ca-dir", (dir_ / "ca").string(), "--out", (dir_ / "certs").string()});
      ASSERT_EQ(r.exit_code, 0) << r.err;
    }
    transport_port_["node-a"] = unused_loopback_port();
    transport_port_["node-b"] = unused_loopback_port();
  }

  SubprocessResult cli(const std::vector<std::string>& args, const std::vector<std::string>& env = {}) {
    std::vector<std::string> argv{"/usr/bin/env", "-i", "HOME=" + (dir_ / "home").string()};
    argv.insert(argv.end(), env.begin(), env.end());
    argv.push_back((bin_dir() / "novacron").string());
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv);
  }

  SubprocessResult as_admin(const Node& n, const std::vector<std::string>& args) {
    std::vector<std::string> with_server = args;
    with_server.insert(with_server.end(), {"--server-name", n.name});
    return cli(with_server,
               {"NOVACRON_URL=" + n.url, "NOVACRON_TOKEN=" + n.token, "NOVACRON_CA=" + (dir_ / "ca/ca.crt").string()});
  }

  Node start(const std::string& name, const std::string& peer, bool with_transport = true) {
    Node n;
    n.name = name;
    const fs::path data = dir_ / ("data-" + name);
    n.root = dir_ / ("root-" + name);
    fs::create_directories(n.root);
    json load = json::array({{{"id", "io.novacron.auth.token"}, {"required", true}}});
    if (with_transport) {
      load.push_back({{"id", "io.novacron.transport"},
                      {"required", true},
                      {"config", {{"durability", "none"}, {"retry_max_backoff_ms", 500}}}});
    }
    const json cfg = {{"node", {{"name", name}, {"transport", "127.0.0.1:" + std::to_string(transport_port_[name])}}},
                      {"data_dir", data.string()},
                      {"listen", {{"address", "127.0.0.1"}, {"port", 0}}},
                      {"transfers", {{"root", n.root.string()}}},
                      {"cluster",
                       {{"ca", (dir_ / "ca/ca.crt").string()},
                        {"cert", (dir_ / "certs" / (name + ".crt")).string()},
                        {"key", (dir_ / "certs" / (name + ".key")).string()},
                        {"probe_interval_seconds", 60},
                        {"peers",
                         {{{"name", peer},
                           {"api", "https://127.0.0.1:1"},
                           {"transport", "127.0.0.1:" + std::to_string(transport_port_[peer])}}}}}},
                      {"plugins", {{"load", load}}}};
    const fs::path file = dir_ / (name + ".json");
    write_file(file, cfg.dump(2));
    n.daemon = std::make_unique<Process>(
        std::vector<std::string>{(bin_dir() / "novacrond").string(), "--config", file.string()}, dir_.path());
    EXPECT_TRUE(n.daemon->wait_for_output("novacrond ready")) << n.daemon->err();
    n.url = "https://127.0.0.1:" + std::to_string(ready_port(n.daemon->out()));
    n.token = read_file(data / "admin.token");
    while (!n.token.empty() && n.token.back() == '\n') n.token.pop_back();
    return n;
  }

  TempDir dir_;
  std::map<std::string, int> transport_port_;
};

TEST_F(TransferApiTest, CliSendsAFileAndBothNodesListIt) {
  Node b = start("node-b", "node-a");
  Node a = start("node-a", "node-b");
  write_random(a.root / "disk.img", 6u << 20, 1);

  auto sent = as_admin(a, {"transfer", "send", (a.root / "disk.img").string(), "--to", "node-b:vms/disk.img", "--id",
                           "api-1", "--json"});
  ASSERT_EQ(sent.exit_code, 0) << sent.out << sent.err;
  const json t = json::parse(sent.out)["transfer"];
  EXPECT_EQ(t["state"], "succeeded");
  EXPECT_EQ(t["direction"], "send");
  EXPECT_EQ(t["stats"]["bytes_done"], 6 << 20);
  EXPECT_EQ(read_file(b.root / "vms/disk.img"), read_file(a.root / "disk.img"));

  auto listed_a = as_admin(a, {"transfer", "list", "--json"});
  ASSERT_EQ(listed_a.exit_code, 0) << listed_a.err;
  EXPECT_EQ(json::parse(listed_a.out)["items"][0]["id"], "api-1");
  auto shown_b = as_admin(b, {"transfer", "show", "api-1", "--json"});
  ASSERT_EQ(shown_b.exit_code, 0) << shown_b.err;
  const json rx = json::parse(shown_b.out)["transfer"];
  EXPECT_EQ(rx["direction"], "receive");
  EXPECT_EQ(rx["state"], "succeeded");
  EXPECT_EQ(rx["peer"], "node-a");
  EXPECT_EQ(rx["digest"], t["digest"]);

  // A human summary and a table, too.
  write_random(a.root / "small.img", 256u << 10, 2);
  auto human = as_admin(a, {"transfer", "send", (a.root / "small.img").string(), "--to", "node-b:small.img"});
  ASSERT_EQ(human.exit_code, 0) << human.err;
  EXPECT_EQ(human.out.rfind("sent ", 0), 0u) << human.out;
  EXPECT_NE(human.out.find("small.img to node-b:small.img"), std::string::npos) << human.out;
  EXPECT_NE(human.out.find("digest xxh3-128:"), std::string::npos) << human.out;
  auto table = as_admin(a, {"transfer", "list"});
  EXPECT_NE(table.out.find("api-1"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("succeeded"), std::string::npos) << table.out;
}

TEST_F(TransferApiTest, CliSendsAFolderAsADirectoryTree) {
  Node b = start("node-b", "node-a");
  Node a = start("node-a", "node-b");
  const fs::path src = a.root / "ct1";
  fs::create_directories(src / "etc");
  write_random(src / "etc" / "blob", 300u << 10, 3);
  fs::create_symlink("blob", src / "etc" / "link");
  fs::permissions(src / "etc", fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec);

  auto sent =
      as_admin(a, {"transfer", "send", src.string(), "--to", "node-b:containers/ct1", "--id", "tree-api-1", "--json"});
  ASSERT_EQ(sent.exit_code, 0) << sent.out << sent.err;
  const json t = json::parse(sent.out)["transfer"];
  EXPECT_EQ(t["state"], "succeeded");
  EXPECT_EQ(t["kind"], "directory");
  EXPECT_EQ(read_file(b.root / "containers/ct1/etc/blob"), read_file(src / "etc" / "blob"));
  EXPECT_EQ(fs::read_symlink(b.root / "containers/ct1/etc/link"), "blob");
  EXPECT_EQ(fs::status(b.root / "containers/ct1/etc").permissions(), fs::status(src / "etc").permissions());
  auto shown_b = as_admin(b, {"transfer", "show", "tree-api-1", "--json"});
  ASSERT_EQ(shown_b.exit_code, 0) << shown_b.err;
  EXPECT_EQ(json::parse(shown_b.out)["transfer"]["kind"], "directory");
  EXPECT_EQ(json::parse(shown_b.out)["transfer"]["digest"], t["digest"]);
}

TEST_F(TransferApiTest, BadRequestsAreRefusedWithTheField) {
  Node b = start("node-b", "node-a");
  Node a = start("node-a", "node-b");
  fs::create_directories(dir_ / "outside");
  write_random(dir_ / "outside" / "secret.img", 4096, 3);
  write_random(a.root / "ok.img", 4096, 4);

  auto escape = as_admin(a, {"transfer", "send", (dir_ / "outside" / "secret.img").string(), "--to", "node-b:x.img"});
  EXPECT_EQ(escape.exit_code, 1);
  EXPECT_NE(escape.err.find("not beneath the transfers root"), std::string::npos) << escape.err;

  auto target_escape = as_admin(a, {"transfer", "send", (a.root / "ok.img").string(), "--to", "node-b:../x.img"});
  EXPECT_EQ(target_escape.exit_code, 1);
  EXPECT_NE(target_escape.err.find("target"), std::string::npos) << target_escape.err;

  auto unknown_peer = as_admin(a, {"transfer", "send", (a.root / "ok.img").string(), "--to", "node-z:x.img"});
  EXPECT_EQ(unknown_peer.exit_code, 1);
  EXPECT_NE(unknown_peer.err.find("node-z"), std::string::npos) << unknown_peer.err;

  auto bad_rate =
      as_admin(a, {"transfer", "send", (a.root / "ok.img").string(), "--to", "node-b:x.img", "--bwlimit", "fast"});
  EXPECT_EQ(bad_rate.exit_code, 1);
  EXPECT_NE(bad_rate.err.find("--bwlimit"), std::string::npos) << bad_rate.err;

  auto missing = as_admin(a, {"transfer", "show", "no-such", "--json"});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_FALSE(fs::exists(b.root / "x.img"));
  EXPECT_FALSE(fs::exists(dir_ / "x.img"));
  // The daemons are still serving.
  EXPECT_EQ(as_admin(a, {"transfer", "list", "--json"}).exit_code, 0);
}

TEST_F(TransferApiTest, LimitsAndCancelThroughTheApi) {
  Node b = start("node-b", "node-a");
  Node a = start("node-a", "node-b");
  write_random(a.root / "big.img", 16u << 20, 5);

  auto limit = as_admin(a, {"transfer", "node-limit", "1MiB", "--json"});
  ASSERT_EQ(limit.exit_code, 0) << limit.err;
  EXPECT_EQ(json::parse(limit.out)["node_bwlimit_bytes_per_second"], 1 << 20);

  // At 1 MiB/s the 16 MiB transfer runs long enough to be cancelled.
  auto started = as_admin(a, {"transfer", "send", (a.root / "big.img").string(), "--to", "node-b:big.img", "--id",
                              "slow-1", "--compression", "off", "--no-wait", "--json"});
  ASSERT_EQ(started.exit_code, 0) << started.err;
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  auto shown = as_admin(a, {"transfer", "show", "slow-1", "--json"});
  const json running = json::parse(shown.out)["transfer"];
  EXPECT_LT(running["stats"]["bytes_done"].get<std::int64_t>(), 16 << 20);
  auto cancelled = as_admin(a, {"transfer", "cancel", "slow-1", "--json"});
  ASSERT_EQ(cancelled.exit_code, 0) << cancelled.err;
  EXPECT_EQ(json::parse(cancelled.out)["transfer"]["state"], "cancelled");
  // The receiver discarded what it had.
  for (int i = 0; i < 50; ++i) {
    auto rx = as_admin(b, {"transfer", "show", "slow-1", "--json"});
    if (rx.exit_code == 0 && json::parse(rx.out)["transfer"]["state"] == "cancelled") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(json::parse(as_admin(b, {"transfer", "show", "slow-1", "--json"}).out)["transfer"]["state"], "cancelled");
  EXPECT_FALSE(fs::exists(b.root / "big.img"));
  for (const auto& e : fs::directory_iterator(b.root)) ADD_FAILURE() << "left behind: " << e.path();
}

TEST_F(TransferApiTest, TunnelThroughTheApiCarriesAnEchoedStream) {
  Node b = start("node-b", "node-a");
  Node a = start("node-a", "node-b");
  // The target on node-b's side: an echo server on loopback.
  const int listener = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ::listen(listener, 1);
  socklen_t len = sizeof addr;
  ::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len);
  std::thread echo([listener] {
    const int c = ::accept(listener, nullptr, nullptr);
    char buf[65536];
    ssize_t n = 0;
    while ((n = ::recv(c, buf, sizeof buf, 0)) > 0) ::send(c, buf, static_cast<size_t>(n), MSG_NOSIGNAL);
    ::close(c);
  });

  HttpClientOptions o;
  o.base_url = a.url;
  o.ca_file = (dir_ / "ca/ca.crt").string();
  o.server_name = "node-a";
  auto client = HttpClient::create(o);
  ASSERT_TRUE(client.has_value()) << client.error().message;
  const std::vector<std::pair<std::string, std::string>> auth{{"Authorization", "Bearer " + a.token}};
  const json body = {
      {"id", "tun-api"}, {"peer", "node-b"}, {"target_address", "127.0.0.1:" + std::to_string(ntohs(addr.sin_port))}};
  auto opened = client->request("POST", "/v1/tunnels", body.dump(), auth);
  ASSERT_TRUE(opened.has_value()) << opened.error().message;
  ASSERT_EQ(opened->status, 201) << opened->body;
  const json tunnel = json::parse(opened->body)["tunnel"];
  EXPECT_EQ(tunnel["state"], "listening");
  const std::string local = tunnel["local_address"];
  const int port = std::stoi(local.substr(local.rfind(':') + 1));

  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  to.sin_port = htons(static_cast<std::uint16_t>(port));
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to), 0);
  std::string sent(1 << 20, 'x');
  for (size_t i = 0; i < sent.size(); ++i) sent[i] = static_cast<char>('a' + (i * 7919) % 26);
  std::thread writer([&] {
    ::send(fd, sent.data(), sent.size(), MSG_NOSIGNAL);
    ::shutdown(fd, SHUT_WR);
  });
  std::string echoed;
  char buf[65536];
  ssize_t n = 0;
  while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) echoed.append(buf, static_cast<size_t>(n));
  writer.join();
  ::close(fd);
  echo.join();
  ::close(listener);
  EXPECT_EQ(echoed, sent);

  // A target outside the allowed networks: 403, nothing opened.
  auto refused =
      client->request("POST", "/v1/tunnels", json{{"peer", "node-b"}, {"target_address", "10.9.9.9:22"}}.dump(), auth);
  ASSERT_TRUE(refused.has_value());
  EXPECT_EQ(refused->status, 403) << refused->body;

  for (int i = 0; i < 50; ++i) {
    auto st = as_admin(a, {"transfer", "show", "tun-api", "--json"});
    if (st.exit_code == 0 && json::parse(st.out)["transfer"]["state"] == "closed") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(json::parse(as_admin(a, {"transfer", "show", "tun-api", "--json"}).out)["transfer"]["state"], "closed");
}

TEST_F(TransferApiTest, HostWithoutTransportAnswers503) {
  Node a = start("node-a", "node-b", /*with_transport=*/false);
  write_random(a.root / "ok.img", 4096, 6);
  auto r = as_admin(a, {"transfer", "list", "--json"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.out.find("transport_unavailable"), std::string::npos) << r.out << r.err;
}

}  // namespace
}  // namespace novacron
