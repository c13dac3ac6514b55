// The two-node fixture of the transport tests: two TransportNodes in one process on loopback,
// each with its own data dir, port and node certificate from a real cluster CA (real TLS 1.3
// between them, real files on disk), test data generators, and a hostile peer that speaks
// frames by hand.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "asio_net.h"
#include "block_hash.h"
#include "block_index.h"
#include "error_codes.h"
#include "frames.h"
#include "host/identity/certificates.h"
#include "novacron/sdk/migration_transport.hpp"
#include "tests/support/fault_proxy.h"
#include "tests/support/test_env.h"
#include "transfer_frames.h"
#include "transport_node.h"
#include "tunnel.h"

namespace novacron::transport::test {

namespace fs = std::filesystem;
using novacron::testing::FaultProxy;
using novacron::testing::TempDir;
using sdk::TransferState;

constexpr std::uint32_t kBlock = 4096;

// Deterministic test data: 64 KiB extents of zeros, text-like bytes, or random bytes.
inline std::vector<std::uint8_t> mixed_data(size_t bytes, std::uint32_t seed, int zero_pct = 40, int text_pct = 40) {
  std::mt19937_64 rng(seed);
  std::vector<std::uint8_t> out(bytes, 0);
  static const char* kWords[] = {"virtual ", "machine ", "migration ", "kernel ", "block ", "page ",
                                 "node ",    "the ",     "of ",        "and ",    "disk ",  "image "};
  for (size_t off = 0; off < bytes; off += 65536) {
    const size_t end = std::min(bytes, off + 65536);
    const int pick = static_cast<int>(rng() % 100);
    if (pick < zero_pct) continue;
    if (pick < zero_pct + text_pct) {
      size_t i = off;
      while (i < end) {
        const char* w = kWords[rng() % 12];
        for (size_t k = 0; w[k] != 0 && i < end; ++k) out[i++] = static_cast<std::uint8_t>(w[k]);
      }
    } else {
      for (size_t i = off; i < end; i += 8) {
        const std::uint64_t v = rng();
        std::memcpy(out.data() + i, &v, std::min<size_t>(8, end - i));
      }
    }
  }
  return out;
}

inline std::vector<std::uint8_t> random_data(size_t bytes, std::uint32_t seed) { return mixed_data(bytes, seed, 0, 0); }

inline void write_bytes(const fs::path& path, const std::vector<std::uint8_t>& data) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
}

inline std::vector<std::uint8_t> read_bytes(const fs::path& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

// Temp files (".NAME.nctmp-ID") anywhere under `dir`.
inline int temp_files_under(const fs::path& dir) {
  int n = 0;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (e.path().filename().string().find(".nctmp-") != std::string::npos) ++n;
  }
  return n;
}

struct NodeCerts {
  std::string ca, cert, key;
};

class TransportPairTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(create_cluster_ca(dir_ / "ca", "test-ca", 1));
    ASSERT_TRUE(create_cluster_ca(dir_ / "other-ca", "other-ca", 1));
    fs::create_directories(dir_ / "a" / "root");
    fs::create_directories(dir_ / "b" / "root");
  }

  NodeCerts certs(const std::string& node, const std::string& ca = "ca") {
    const fs::path out = dir_ / (ca + "-certs");
    fs::create_directories(out);
    if (!fs::exists(out / (node + ".crt"))) {
      auto issued = issue_node_certificate(dir_ / ca, node, out, {"127.0.0.1"}, 1);
      EXPECT_TRUE(issued) << node;
    }
    return {(dir_ / ca / "ca.crt").string(), (out / (node + ".crt")).string(), (out / (node + ".key")).string()};
  }

  std::unique_ptr<TransportNode> make_node(const std::string& name, const std::string& dir,
                                           std::map<std::string, std::string> peers, const std::string& ca = "ca",
                                           const std::string& cert_name = "") {
    const NodeCerts c = certs(cert_name.empty() ? name : cert_name, ca);
    TransportOptions o;
    o.node_name = name;
    o.identity = {c.ca, c.cert, c.key};
    o.listen_address = "127.0.0.1:0";
    o.peers = std::move(peers);
    o.data_dir = (dir_ / dir).string();
    o.retry_initial_backoff = std::chrono::milliseconds(100);
    o.fsync = false;
    o.log = [this, name](bool, const std::string& message) {
      std::lock_guard lock(logs_mu_);
      logs_.push_back(name + ": " + message);
    };
    auto node = std::make_unique<TransportNode>(o);
    const auto s = node->start();
    EXPECT_TRUE(s.is_ok()) << s.message();
    sdk::ReceivePolicy policy;
    policy.root = (dir_ / dir / "root").string();
    EXPECT_TRUE(node->set_receive_policy(policy).is_ok());
    return node;
  }

  // node-a's options, for tests that change some before start_pair.
  TransportOptions a_options() {
    const NodeCerts c = certs("node-a");
    TransportOptions o;
    o.node_name = "node-a";
    o.identity = {c.ca, c.cert, c.key};
    o.data_dir = (dir_ / "a").string();
    o.retry_initial_backoff = std::chrono::milliseconds(100);
    o.fsync = false;
    return o;
  }

  // node-a sends to node-b; node-b's address as node-a sees it may be a proxy.
  void start_pair(const std::function<std::string(const std::string&)>& route = nullptr,
                  TransportOptions* a_options = nullptr) {
    b_ = make_node("node-b", "b", {{"node-a", "127.0.0.1:1"}});
    const std::string b_addr = route ? route(b_->listen_address()) : b_->listen_address();
    if (a_options != nullptr) {
      a_options->peers = {{"node-b", b_addr}};
      a_ = std::make_unique<TransportNode>(*a_options);
      ASSERT_TRUE(a_->start().is_ok());
    } else {
      a_ = make_node("node-a", "a", {{"node-b", b_addr}});
    }
  }

  sdk::TransferStatus send(const std::string& id, const fs::path& source, const std::string& target,
                           int compression = 1, const std::string& base = "", bool in_place = false) {
    sdk::SendRequest r;
    r.id = id;
    r.source = source.string();
    r.peer = "node-b";
    r.target = target;
    r.base = base;
    r.compression = compression;
    r.in_place = in_place;
    auto started = a_->send(r);
    EXPECT_TRUE(started.is_ok()) << started.status().message();
    auto done = a_->wait(id, std::chrono::seconds(120));
    EXPECT_TRUE(done.is_ok());
    return done.value();
  }

  sdk::TransferStatus received(const std::string& id) {
    auto st = b_->wait(id, std::chrono::seconds(30));
    EXPECT_TRUE(st.is_ok());
    return st.value();
  }

  fs::path b_root() const { return dir_ / "b" / "root"; }
  fs::path a_file(const std::string& name) const { return dir_ / "a" / name; }

  // Whether a node logged a line containing every one of `parts`.
  bool logged(const std::vector<std::string>& parts) {
    std::lock_guard lock(logs_mu_);
    for (const auto& line : logs_) {
      bool all = true;
      for (const auto& p : parts) all = all && line.find(p) != std::string::npos;
      if (all) return true;
    }
    return false;
  }

  TempDir dir_;
  std::mutex logs_mu_;
  std::vector<std::string> logs_;
  std::unique_ptr<TransportNode> b_;
  std::unique_ptr<TransportNode> a_;
};

class HostilePeerTest : public TransportPairTest {
 protected:
  std::unique_ptr<FrameConnection> connect_as_a() {
    b_ = make_node("node-b", "b", {{"node-a", "127.0.0.1:1"}});
    const NodeCerts c = certs("node-a");
    std::string error;
    net_ = NetService::create({c.ca, c.cert, c.key}, NetLimits{}, error);
    EXPECT_TRUE(net_) << error;
    ConnectError ce;
    auto conn = net_->connect(b_->listen_address(), "node-b", ce);
    EXPECT_TRUE(conn) << ce.message;
    Hello h;
    h.node = "node-a";
    h.max_frame = kMaxFrame;
    conn->send(FrameType::kHello, 0, h.encode());
    auto r = conn->receive(std::chrono::seconds(10));
    EXPECT_EQ(r.frame.header.type, FrameType::kHelloOk);
    return conn;
  }

  Offer offer(const std::string& target, std::uint64_t bytes) {
    Offer o;
    o.id = "hostile-1";
    o.block_size = kBlock;
    o.total_bytes = bytes;
    o.total_blocks = (bytes + kBlock - 1) / kBlock;
    o.target = target;
    o.mode = 0600;
    return o;
  }

  // The ERROR that ends the connection, skipping ACCEPT/HASHES.
  std::optional<ErrorFrame> error_from(FrameConnection& conn) {
    while (true) {
      auto r = conn.receive(std::chrono::seconds(10));
      if (r.status != Received::Status::kFrame) return std::nullopt;
      if (r.frame.header.type == FrameType::kError) return ErrorFrame::decode(r.frame.payload);
    }
  }

  void TearDown() override {
    if (net_) net_->stop();
  }

  std::unique_ptr<NetService> net_;
};

}  // namespace novacron::transport::test
