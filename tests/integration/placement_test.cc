// Placement across three real novacrond nodes on loopback (mutual TLS between them), each
// with the kvm driver on libvirt's test:///default hypervisor and declared capacities:
// VMs created through node-a are placed by the scheduler's policy plugins and created on the
// chosen node through its /v1/vms:claim; a hard anti-affinity group spreads over the three
// nodes and its fourth member is refused with each node's reason; a dry run changes nothing;
// decisions are stored; a node that cannot take a VM after all answers 409 and the next
// candidate is tried.
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>

#include "host/api/http_client.h"
#include "tests/support/test_env.h"

namespace novacron {
namespace {

using namespace novacron::testing;  // NOLINT(google-build-using-namespace)
using nlohmann::json;

const std::vector<std::pair<std::string, std::string>> kAdmin = {{"Authorization", "Test admin:root"}};

struct NodeSpec {
  std::string name, rack;
  json capacity;
  std::map<std::string, json> peer_capacity;  // what this node declares about a peer
};

class PlacementTest : public ::testing::Test {
 protected:
  void SetUp() override {
    cli({"cert", "init", "--dir", (dir_ / "ca").string()});
    for (const char* node : {"node-a", "node-b", "node-c"}) {
      cli({"cert", "issue", node, "--ca-dir", (dir_ / "ca").string(), "--out", (dir_ / "certs").string()});
    }
  }

  void cli(const std::vector<std::string>& args) {
    std::vector<std::string> argv{(bin_dir() / "novacron").string()};
    argv.insert(argv.end(), args.begin(), args.end());
    auto r = run(argv);
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  }

  // Starts the three nodes, each listing the other two as peers, with the scheduler set up
  // by `scheduler` (the same on every node).
  void start_cluster(const std::vector<NodeSpec>& nodes, const json& scheduler) {
    for (const auto& n : nodes) ports_[n.name] = unused_loopback_port();
    for (const auto& n : nodes) {
      fs::path data = dir_ / ("data-" + n.name);
      fs::create_directories(dir_ / ("images-" + n.name));
      write_file(dir_ / ("images-" + n.name) / "base.raw", std::string(4096, '\0'));
      cli({"plugin", "install", "--data-dir", data.string(), fixture("io.novacron.test.auth").string()});
      json peers = json::array();
      for (const auto& p : nodes) {
        if (p.name == n.name) continue;
        json entry = {{"name", p.name}, {"api", "https://127.0.0.1:" + std::to_string(ports_[p.name])}};
        if (auto it = n.peer_capacity.find(p.name); it != n.peer_capacity.end()) entry["capacity"] = it->second;
        peers.push_back(entry);
      }
      json load =
          json::array({{{"id", "io.novacron.auth.mtls"}, {"required", true}},
                       {{"id", "io.novacron.auth.token"}, {"required", true}},
                       {{"id", "io.novacron.test.auth"}, {"required", true}},
                       {{"id", "io.novacron.driver.kvm"}, {"required", true}, {"config", {{"uri", "test:///default"}}}},
                       {{"id", "io.novacron.policy.resource-fit"}, {"required", true}},
                       {{"id", "io.novacron.policy.affinity"}, {"required", true}},
                       {{"id", "io.novacron.policy.binpack"}, {"required", true}},
                       {{"id", "io.novacron.policy.spread"}, {"required", true}}});
      json cfg = {{"node", {{"name", n.name}, {"labels", {{"rack", n.rack}}}, {"capacity", n.capacity}}},
                  {"data_dir", data.string()},
                  {"listen", {{"address", "127.0.0.1"}, {"port", ports_[n.name]}}},
                  {"vms", {{"image_root", (dir_ / ("images-" + n.name)).string()}, {"stop_timeout_seconds", 5}}},
                  {"cluster",
                   {{"ca", (dir_ / "ca/ca.crt").string()},
                    {"cert", (dir_ / "certs" / (n.name + ".crt")).string()},
                    {"key", (dir_ / "certs" / (n.name + ".key")).string()},
                    {"probe_interval_seconds", 3600},
                    {"probe_timeout_ms", 5000},
                    {"peers", peers}}},
                  {"plugins", {{"load", load}}},
                  {"scheduler", scheduler}};
      fs::path file = dir_ / (n.name + ".json");
      write_file(file, cfg.dump(2));
      auto p = std::make_unique<Process>(
          std::vector<std::string>{(bin_dir() / "novacrond").string(), "--config", file.string()}, dir_.path());
      ASSERT_TRUE(p->wait_for_output("novacrond ready")) << p->err();
      daemons_.push_back(std::move(p));
    }
  }

  HttpClientResponse call(const std::string& node, const std::string& method, const std::string& target,
                          const json& body = nullptr,
                          const std::vector<std::pair<std::string, std::string>>& who = kAdmin) {
    HttpClientOptions o;
    o.base_url = "https://127.0.0.1:" + std::to_string(ports_.at(node));
    o.ca_file = (dir_ / "ca/ca.crt").string();
    o.server_name = node;
    o.timeout = std::chrono::seconds(60);
    auto c = HttpClient::create(o);
    EXPECT_TRUE(c.has_value()) << c.error().message;
    auto r = c->request(method, target, body.is_null() ? "" : body.dump(), who);
    EXPECT_TRUE(r.has_value()) << r.error().message;
    return r ? *r : HttpClientResponse{};
  }

  static json vm(const std::string& name, int vcpus, int memory_mib, const json& placement = nullptr) {
    json spec = {{"name", name},
                 {"driver", "kvm"},
                 {"vcpus", vcpus},
                 {"memory_mib", memory_mib},
                 {"disks", {{{"image", "base.raw"}, {"format", "raw"}}}},
                 {"boot", {{"from", "disk"}}},
                 {"start", true}};
    if (!placement.is_null()) spec["placement"] = placement;
    return spec;
  }

  // The novacron CLI against `node` as its admin (the token provider's first token).
  SubprocessResult cli_on(const std::string& node, const std::vector<std::string>& args) {
    std::string token = read_file(dir_ / ("data-" + node) / "admin.token");
    while (!token.empty() && (token.back() == '\n' || token.back() == '\r')) token.pop_back();
    EXPECT_FALSE(token.empty()) << "no admin token in " << (dir_ / ("data-" + node)).string();
    std::vector<std::string> argv{"/usr/bin/env",
                                  "-i",
                                  "HOME=" + (dir_ / "home").string(),
                                  "NOVACRON_URL=https://127.0.0.1:" + std::to_string(ports_.at(node)),
                                  "NOVACRON_CA=" + (dir_ / "ca/ca.crt").string(),
                                  "NOVACRON_TOKEN=" + token,
                                  (bin_dir() / "novacron").string(),
                                  "--server-name",
                                  node};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv);
  }

  // The names of the VMs each node owns.
  std::map<std::string, std::set<std::string>> vms_by_node() {
    std::map<std::string, std::set<std::string>> out;
    for (const auto& [node, port] : ports_) {
      json list = json::parse(call(node, "GET", "/v1/vms").body);
      for (const auto& v : list["items"]) out[node].insert(v["name"].get<std::string>());
    }
    return out;
  }

  TempDir dir_;
  std::map<std::string, int> ports_;
  std::vector<std::unique_ptr<Process>> daemons_;
};

const json kFitAffinityBinpack = {{"filters", {"io.novacron.policy.resource-fit", "io.novacron.policy.affinity"}},
                                  {"scorers",
                                   {{{"id", "io.novacron.policy.binpack"}, {"weight", 1.0}},
                                    {{"id", "io.novacron.policy.affinity"}, {"weight", 2.0}}}}};

std::vector<NodeSpec> three_nodes() {
  return {{"node-a", "r1", {{"vcpus", 8}, {"memory_mib", 8192}, {"disk_gib", 100}}, {}},
          {"node-b", "r2", {{"vcpus", 8}, {"memory_mib", 8192}, {"disk_gib", 100}}, {}},
          {"node-c", "r3", {{"vcpus", 8}, {"memory_mib", 8192}, {"disk_gib", 100}}, {}}};
}

TEST_F(PlacementTest, HardAntiAffinitySpreadsAGroupOverThreeNodesAndRefusesTheFourth) {
  start_cluster(three_nodes(), kFitAffinityBinpack);
  const json group = {{"groups", {{{"name", "db"}, {"affinity", "anti-affinity"}, {"hard", true}, {"scope", "node"}}}}};
  std::set<std::string> nodes;
  for (int i = 1; i <= 3; ++i) {
    auto r = call("node-a", "POST", "/v1/vms?wait=60", vm("db-" + std::to_string(i), 1, 512, group));
    ASSERT_EQ(r.status, 201) << r.body;
    json j = json::parse(r.body);
    const std::string node = j["placement"]["node"];
    EXPECT_EQ(j["vm"]["node"], node) << "the VM runs where the scheduler put it: " << r.body;
    EXPECT_EQ(j["vm"]["state"], "running") << r.body;
    nodes.insert(node);
    if (node != "node-a") {
      // The entry node does not own a VM it placed elsewhere, and says where it runs.
      auto elsewhere = call("node-a", "GET", "/v1/vms/" + j["vm"]["id"].get<std::string>());
      EXPECT_EQ(elsewhere.status, 404) << elsewhere.body;
      EXPECT_NE(elsewhere.body.find("runs on " + node + " (placement " + j["placement"]["id"].get<std::string>()),
                std::string::npos)
          << elsewhere.body;
    }
  }
  EXPECT_EQ(nodes, (std::set<std::string>{"node-a", "node-b", "node-c"})) << "one member per node";

  // The fourth member fits nowhere: every node already runs one; each node's reason is given.
  auto r = call("node-a", "POST", "/v1/vms?wait=60", vm("db-4", 1, 512, group));
  ASSERT_EQ(r.status, 409) << r.body;
  json j = json::parse(r.body);
  EXPECT_EQ(j["error"]["code"], "no_feasible_node") << r.body;
  EXPECT_NE(j["error"]["message"].get<std::string>().find("anti"), std::string::npos) << r.body;
  ASSERT_EQ(j["placement"]["node_reasons"].size(), 3u) << r.body;
  for (const auto& reason : j["placement"]["node_reasons"]) {
    EXPECT_EQ(reason["policy"], "io.novacron.policy.affinity") << r.body;
    EXPECT_NE(reason["text"].get<std::string>().find("db"), std::string::npos) << r.body;
  }
  // Each node owns exactly its member; db-4 exists nowhere.
  auto owned = vms_by_node();
  for (const auto& [node, names] : owned) {
    EXPECT_EQ(names.size(), 1u) << node;
    EXPECT_EQ(names.count("db-4"), 0u) << node;
  }
  // The refusal is stored with its reasons.
  json failed = json::parse(call("node-a", "GET", "/v1/placements?outcome=no_feasible_node").body);
  ASSERT_EQ(failed["items"].size(), 1u) << failed.dump();
  EXPECT_EQ(failed["items"][0]["vm"]["name"], "db-4");
}

TEST_F(PlacementTest, BinpackFillsOneNodeSimulationChangesNothingAndDecisionsAreStored) {
  start_cluster(three_nodes(), kFitAffinityBinpack);
  // A dry run decides but creates, holds and stores nothing.
  auto sim = call("node-a", "POST", "/v1/placements:simulate?explain=full", vm("web-1", 2, 1024));
  ASSERT_EQ(sim.status, 200) << sim.body;
  json s = json::parse(sim.body);
  EXPECT_EQ(s["placement"]["outcome"], "placed");
  EXPECT_EQ(s["placement"]["nodes_total"], 3);
  EXPECT_EQ(s["detail"].size(), 3u) << "every node in the full detail";
  EXPECT_EQ(json::parse(call("node-a", "GET", "/v1/placements").body)["items"].size(), 0u);
  for (const auto& [node, names] : vms_by_node()) EXPECT_TRUE(names.empty()) << node;

  auto first = call("node-a", "POST", "/v1/vms?wait=60&explain=compact", vm("web-1", 2, 1024));
  ASSERT_EQ(first.status, 201) << first.body;
  json f = json::parse(first.body);
  const std::string packed = f["placement"]["node"];
  EXPECT_EQ(f["placement"]["top"].size(), 3u) << first.body;
  // Binpack puts the next VM on the node that is now fuller.
  auto second = call("node-a", "POST", "/v1/vms?wait=60", vm("web-2", 2, 1024));
  ASSERT_EQ(second.status, 201) << second.body;
  EXPECT_EQ(json::parse(second.body)["placement"]["node"], packed);

  // The stored decision, with each scorer's raw and weighted score for the top candidates.
  const std::string id = f["placement"]["id"];
  auto stored = call("node-a", "GET", "/v1/placements/" + id);
  ASSERT_EQ(stored.status, 200) << stored.body;
  json p = json::parse(stored.body);
  EXPECT_EQ(p["outcome"], "placed");
  EXPECT_EQ(p["node"], packed);
  EXPECT_EQ(p["vm"]["name"], "web-1");
  ASSERT_FALSE(p["top"].empty());
  EXPECT_EQ(p["top"][0]["node"], packed);
  EXPECT_EQ(p["top"][0]["scores"][0]["policy"], "io.novacron.policy.binpack");
  // The target records which placement put the VM there.
  json owned = json::parse(call(packed, "GET", "/v1/vms?name=web-1").body);
  ASSERT_EQ(owned["items"].size(), 1u);
  EXPECT_EQ(owned["items"][0]["placement_id"], id);
  // A VM too big for any node is refused with the resource named, and nothing is created.
  auto huge = call("node-a", "POST", "/v1/vms?wait=60", vm("huge", 64, 1024));
  ASSERT_EQ(huge.status, 409) << huge.body;
  EXPECT_NE(huge.body.find("cpu"), std::string::npos) << huge.body;
}

TEST_F(PlacementTest, ATargetThatCannotTakeTheVmAnswers409AndTheNextCandidateIsTried) {
  // node-a believes node-b has 8 GiB (its config says so); node-b has 4 GiB. Binpack ranks
  // node-b first for a 6000 MiB VM; node-b's claim re-checks its own state and refuses.
  auto nodes = three_nodes();
  nodes[0].capacity = {{"vcpus", 8}, {"memory_mib", 2048}, {"disk_gib", 100}};
  nodes[1].capacity = {{"vcpus", 8}, {"memory_mib", 4096}, {"disk_gib", 100}};
  nodes[2].capacity = {{"vcpus", 8}, {"memory_mib", 32768}, {"disk_gib", 100}};
  nodes[0].peer_capacity["node-b"] = {{"memory_mib", 8192}};
  start_cluster(nodes, kFitAffinityBinpack);
  auto r = call("node-a", "POST", "/v1/vms?wait=60&explain=compact", vm("big", 1, 6000));
  ASSERT_EQ(r.status, 201) << r.body;
  json j = json::parse(r.body);
  EXPECT_EQ(j["placement"]["node"], "node-c") << r.body;
  ASSERT_EQ(j["placement"]["attempts"].size(), 2u) << r.body;
  EXPECT_EQ(j["placement"]["attempts"][0]["node"], "node-b");
  EXPECT_EQ(j["placement"]["attempts"][0]["code"], "capacity_conflict");
  EXPECT_NE(j["placement"]["attempts"][0]["message"].get<std::string>().find("memory"), std::string::npos) << r.body;
  EXPECT_EQ(j["placement"]["attempts"][1]["node"], "node-c");
  auto owned = vms_by_node();
  EXPECT_EQ(owned["node-c"], (std::set<std::string>{"big"}));
  EXPECT_TRUE(owned["node-b"].empty());
  // Only cluster peers (and admins) may claim: a reader may not.
  auto claim = call("node-b", "POST", "/v1/vms:claim", {{"spec", vm("x", 1, 128)}}, {{"Authorization", "Test alice"}});
  EXPECT_EQ(claim.status, 403) << claim.body;
  EXPECT_TRUE(vms_by_node()["node-b"].empty());
}

TEST_F(PlacementTest, RebalanceProposesMovesOffAPackedNodeAndChangesNothing) {
  const json spread = {{"filters", {"io.novacron.policy.resource-fit", "io.novacron.policy.affinity"}},
                       {"scorers", {{{"id", "io.novacron.policy.spread"}, {"weight", 1.0}}}}};
  start_cluster(three_nodes(), spread);
  for (int i = 1; i <= 3; ++i) {
    auto r =
        call("node-a", "POST", "/v1/vms?wait=60", vm("packed-" + std::to_string(i), 2, 2048, {{"node", "node-b"}}));
    ASSERT_EQ(r.status, 201) << r.body;
    EXPECT_EQ(json::parse(r.body)["placement"]["node"], "node-b");
  }
  auto refused = call("node-a", "POST", "/v1/placements:rebalance");
  EXPECT_EQ(refused.status, 501) << refused.body;
  auto r = call("node-a", "POST", "/v1/placements:rebalance?dry_run=true&max=2");
  ASSERT_EQ(r.status, 200) << r.body;
  json plan = json::parse(r.body);
  ASSERT_EQ(plan["moves"].size(), 2u) << r.body;
  std::set<std::string> targets;
  for (const auto& m : plan["moves"]) {
    EXPECT_EQ(m["from"], "node-b") << r.body;
    EXPECT_GT(m["gain"].get<double>(), 0.05) << r.body;
    EXPECT_GT(m["estimated_seconds"].get<double>(), 0) << r.body;
    targets.insert(m["to"].get<std::string>());
  }
  EXPECT_EQ(targets.size(), 2u) << "spread over the two empty nodes: " << r.body;
  // A proposal only: every VM is where it was.
  EXPECT_EQ(vms_by_node()["node-b"].size(), 3u);
}

TEST_F(PlacementTest, TheCliSimulatesExplainsListsAndShowsDecisions) {
  start_cluster(three_nodes(), kFitAffinityBinpack);
  write_file(dir_ / "web.json", vm("web-1", 2, 1024).dump());
  auto sim = cli_on("node-a", {"schedule", "simulate", "-f", (dir_ / "web.json").string(), "--full"});
  ASSERT_EQ(sim.exit_code, 0) << sim.out << sim.err;
  EXPECT_NE(sim.out.find("simulation -> node-"), std::string::npos) << sim.out;
  EXPECT_NE(sim.out.find("Candidates"), std::string::npos) << sim.out;
  EXPECT_NE(sim.out.find("Every node"), std::string::npos) << sim.out;
  EXPECT_EQ(json::parse(call("node-a", "GET", "/v1/placements").body)["items"].size(), 0u)
      << "a dry run stores nothing";

  auto created = cli_on("node-a", {"vm", "create", "-f", (dir_ / "web.json").string(), "--explain"});
  ASSERT_EQ(created.exit_code, 0) << created.out << created.err;
  EXPECT_NE(created.out.find("binpack"), std::string::npos) << "the scorer's column: " << created.out;
  auto list = cli_on("node-a", {"schedule", "list", "--json"});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  const json items = json::parse(list.out)["items"];
  ASSERT_EQ(items.size(), 1u) << list.out;
  const std::string id = items[0]["id"];
  auto show = cli_on("node-a", {"schedule", "show", id});
  ASSERT_EQ(show.exit_code, 0) << show.err;
  EXPECT_NE(show.out.find(id + " -> " + items[0]["node"].get<std::string>()), std::string::npos) << show.out;

  // Refused: the decision is printed, and the hint says where to see it again.
  write_file(dir_ / "huge.json", vm("huge", 64, 1024).dump());
  auto refused = cli_on("node-a", {"vm", "create", "-f", (dir_ / "huge.json").string(), "--explain"});
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_NE(refused.out.find("Why each node was rejected"), std::string::npos) << refused.out;
  EXPECT_NE(refused.err.find("hint: every node's reason: novacron schedule show pl-"), std::string::npos)
      << refused.err;

  auto config = cli_on("node-a", {"schedule", "config"});
  ASSERT_EQ(config.exit_code, 0) << config.err;
  EXPECT_NE(config.out.find("io.novacron.policy.binpack"), std::string::npos) << config.out;
  auto rebalance = cli_on("node-a", {"schedule", "rebalance", "--dry-run", "--json"});
  ASSERT_EQ(rebalance.exit_code, 0) << rebalance.err;
  EXPECT_TRUE(json::parse(rebalance.out).contains("moves")) << rebalance.out;
  EXPECT_NE(cli_on("node-a", {"schedule", "rebalance"}).exit_code, 0) << "only --dry-run";
}

}  // namespace
}  // namespace novacron
