// Stored placement decisions in a real SQLite state store (schema 4 over the earlier ones):
// records round-trip, lists filter and page newest first, pruning keeps the newest rows and
// drops old ones; and peer summaries as the node registry reads them, with the config's
// declared values winning.
#include "host/placement/placement_store.h"

#include <gtest/gtest.h>

#include "host/placement/node_registry.h"
#include "host/state/schema.h"
#include "tests/support/test_env.h"

namespace novacron {
namespace {

using nlohmann::json;

class PlacementStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto db = open_host_database(dir_.path());
    ASSERT_TRUE(db.has_value()) << db.error().message;
    db_ = std::move(*db);
  }
  PlacementRecord record(const std::string& id, const std::string& vm, const std::string& outcome, std::int64_t at_ms) {
    return {id,
            vm,
            outcome == "placed" ? "uuid-" + vm : "",
            outcome,
            outcome == "placed" ? "node-b" : "",
            1,
            json{{"summary", "why " + vm}, {"top", json::array()}},
            "admin",
            at_ms};
  }
  testing::TempDir dir_;
  std::unique_ptr<Database> db_;
};

TEST_F(PlacementStoreTest, RoundTripListAndPrune) {
  PlacementStore store(*db_);
  ASSERT_TRUE(store.insert(record("pl-1000-a-1", "web-1", "placed", 1000)));
  ASSERT_TRUE(store.insert(record("pl-2000-a-2", "web-2", "no_feasible_node", 2000)));
  ASSERT_TRUE(store.insert(record("pl-3000-a-3", "web-1", "placed", 3000)));
  auto got = store.get("pl-2000-a-2");
  ASSERT_TRUE(got.has_value());
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ((*got)->outcome, "no_feasible_node");
  EXPECT_EQ((*got)->record["summary"], "why web-2");
  const json j = PlacementStore::to_json(**got);
  EXPECT_EQ(j["id"], "pl-2000-a-2");
  EXPECT_TRUE(j["vm"]["id"].is_null());
  EXPECT_TRUE(j["node"].is_null());
  EXPECT_FALSE(store.get("pl-nope")->has_value());

  auto web1 = store.list("web-1", "", "", 10);
  ASSERT_TRUE(web1.has_value());
  ASSERT_EQ(web1->size(), 2u);
  EXPECT_EQ((*web1)[0].id, "pl-3000-a-3") << "newest first";
  EXPECT_EQ(store.list("uuid-web-1", "", "", 10)->size(), 2u) << "by VM id too";
  EXPECT_EQ(store.list("", "no_feasible_node", "", 10)->size(), 1u);
  auto page = store.list("", "", "pl-3000-a-3", 1);
  ASSERT_EQ(page->size(), 1u);
  EXPECT_EQ((*page)[0].id, "pl-2000-a-2") << "the page after the cursor";
  ASSERT_TRUE(store.set_vm("pl-2000-a-2", "uuid-x"));
  EXPECT_EQ((*store.get("pl-2000-a-2"))->vm_id, "uuid-x");

  // Keep at most 2 rows, none older than 1500 ms before 3000.
  auto removed = store.prune(2, 1500, 3000);
  ASSERT_TRUE(removed.has_value());
  EXPECT_EQ(*removed, 1u);
  EXPECT_FALSE(store.get("pl-1000-a-1")->has_value());
  EXPECT_EQ(store.list("", "", "", 10)->size(), 2u);
  EXPECT_EQ(*store.prune(1, 1000000, 3000), 1u);
  EXPECT_EQ(store.list("", "", "", 10)->size(), 1u);
}

// The count bound holds decision after decision with one prune per insert (as the service
// prunes), keeps the newest rows, and holds when another writer adds or removes rows.
TEST_F(PlacementStoreTest, CountBoundKeepsTheNewestAcrossWriters) {
  PlacementStore store(*db_);
  const auto id = [](int i) { return "pl-" + std::to_string(1000000 + i) + "-a-" + std::to_string(i); };
  for (int i = 0; i < 40; ++i) {
    ASSERT_TRUE(store.insert(record(id(i), "vm-" + std::to_string(i), "placed", 1000000 + i)));
    auto removed = store.prune(10, 1000000000, 1000000 + i);
    ASSERT_TRUE(removed.has_value());
    EXPECT_EQ(*removed, i >= 10 ? 1u : 0u) << i;
  }
  auto rows = store.list("", "", "", 100);
  ASSERT_EQ(rows->size(), 10u);
  EXPECT_EQ(rows->front().id, id(39));
  EXPECT_EQ(rows->back().id, id(30));

  // Another writer (a second store on the same database) adds five rows.
  PlacementStore other(*db_);
  for (int i = 40; i < 45; ++i) ASSERT_TRUE(other.insert(record(id(i), "vm", "placed", 1000000 + i)));
  EXPECT_EQ(*store.prune(10, 1000000000, 1000045), 5u);
  EXPECT_EQ(*store.prune(10, 1000000000, 1000045), 0u);
  rows = store.list("", "", "", 100);
  ASSERT_EQ(rows->size(), 10u);
  EXPECT_EQ(rows->back().id, id(35));

  // ... and removes rows behind its back: the bound still holds and the newest stay.
  ASSERT_TRUE(db_->exec("DELETE FROM placements WHERE id IN ('" + id(35) + "', '" + id(36) + "')"));
  ASSERT_TRUE(store.insert(record(id(45), "vm", "placed", 1000045)));
  ASSERT_TRUE(store.prune(10, 1000000000, 1000045).has_value());
  rows = store.list("", "", "", 100);
  EXPECT_LE(rows->size(), 10u);
  EXPECT_GE(rows->size(), 8u);
  EXPECT_EQ(rows->front().id, id(45));
}

TEST(NodeRegistryTest, PeerSummariesWithDeclaredValuesWinning) {
  const json summary = {
      {"ready", true},
      {"capacity", {{"cpu_milli", 32000}, {"memory_mib", 65536}, {"disk_gib", 500}}},
      {"reserved", {{"cpu_milli", 1000}, {"memory_mib", 1024}, {"disk_gib", 0}}},
      {"allocated", {{"cpu_milli", 4000}, {"memory_mib", 8192}, {"disk_gib", 40}}},
      {"labels", {{"rack", "r9"}, {"zone", "eu-1"}}},
      {"drivers", {{{"name", "kvm"}, {"capabilities", {"live_migration", "snapshots"}}}}},
      {"groups", {{"db", 2}}},
      {"predicted", {{"mean", {{"cpu_milli", 1500.0}, {"memory_mib", nullptr}}}, {"classes", {{"idle", 3}}}}}};
  NodeCapacity declared;
  declared.memory_mib = 32768;  // the config says less than the peer reports
  const NodeSummary s = NodeRegistry::from_json(summary, "node-b", declared, {}, {{"rack", "r2"}});
  EXPECT_EQ(s.view.name, "node-b");
  EXPECT_EQ(s.view.state, scheduler::NodeState::kReady);
  EXPECT_EQ(s.view.capacity, (scheduler::ResourceVector{32000, 32768, 500}));
  EXPECT_EQ(s.view.reserved, (scheduler::ResourceVector{1000, 1024, 0}));
  EXPECT_EQ(s.view.allocated, (scheduler::ResourceVector{4000, 8192, 40}));
  EXPECT_EQ(s.view.labels.at("rack"), "r2") << "config labels win";
  EXPECT_EQ(s.view.labels.at("zone"), "eu-1");
  ASSERT_EQ(s.view.drivers.size(), 1u);
  EXPECT_EQ(s.view.drivers[0].capabilities, (std::vector<std::string>{"live_migration", "snapshots"}));
  EXPECT_EQ(s.groups.at("db"), 2u);
  EXPECT_EQ(s.view.predicted_mean[scheduler::kCpu], 1500.0f);
  EXPECT_TRUE(std::isnan(s.view.predicted_mean[scheduler::kMemory]));
  EXPECT_EQ(s.view.class_counts[static_cast<size_t>(sdk::WorkloadClass::kIdle)], 3);
  // A node that says it is not ready is not ready, with its reason.
  const NodeSummary down =
      NodeRegistry::from_json({{"ready", false}, {"error", "state store: locked"}}, "node-c", {}, {}, {});
  EXPECT_EQ(down.view.state, scheduler::NodeState::kUnreachable);
  EXPECT_EQ(down.error, "state store: locked");
}

}  // namespace
}  // namespace novacron
