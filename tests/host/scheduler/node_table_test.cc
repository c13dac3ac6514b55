// The engine's node table: columns built from node views, interned labels (absent = 0),
// driver and capability bit sets per driver, commit/release, and refused inputs.
#include "host/scheduler/node_table.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace novacron::scheduler {
namespace {

std::vector<NodeView> three_nodes() {
  NodeView a{"node-a", NodeState::kReady, {16000, 65536, 500}, {1000, 4096, 20}, {2000, 8192, 40}, {}, {}};
  a.labels = {{"zone", "eu-1"}, {"rack", "r1"}};
  a.drivers = {{"kvm", {"live_migration", "snapshots"}}, {"lxc", {}}};
  NodeView b{"node-b", NodeState::kCordoned, {8000, 32768, 250}, {}, {}, {}, {}};
  b.labels = {{"zone", "eu-1"}};
  b.drivers = {{"lxc", {"snapshots"}}};
  NodeView c{"node-c", NodeState::kReady, {32000, 131072, 1000}, {}, {}, {}, {}};
  c.labels = {{"rack", "r3"}, {"gpu", "a100"}};
  c.drivers = {{"kvm", {"snapshots"}}};
  return {a, b, c};
}

TEST(NodeTableTest, ColumnsLabelsAndDrivers) {
  std::string error;
  auto t = NodeTable::build(three_nodes(), error);
  ASSERT_TRUE(t) << error;
  EXPECT_EQ(t->rows(), 3u);
  EXPECT_EQ(t->row_of("node-c"), 2u);
  EXPECT_FALSE(t->row_of("node-z"));
  EXPECT_EQ(t->state(1), NodeState::kCordoned);
  EXPECT_EQ(t->capacity(kMemory)[0], 65536);
  EXPECT_EQ(t->free(0, kCpu), 16000 - 1000 - 2000);
  EXPECT_EQ(t->free(0, kDisk), 500 - 20 - 40);

  EXPECT_EQ(t->label(0, "zone"), "eu-1");
  EXPECT_EQ(t->label(1, "zone"), "eu-1");
  EXPECT_FALSE(t->label(2, "zone"));  // node-c has no zone
  EXPECT_FALSE(t->label(0, "gpu"));
  EXPECT_EQ(t->label(2, "gpu"), "a100");
  const auto* zone = t->label_column("zone");
  ASSERT_NE(zone, nullptr);
  EXPECT_EQ((*zone)[0], (*zone)[1]);  // one id per distinct value
  EXPECT_EQ((*zone)[2], 0u);
  EXPECT_EQ(t->label_value_id("eu-1"), (*zone)[0]);
  EXPECT_EQ(t->label_value_id("mars"), 0u);
  EXPECT_EQ(t->label_column("nope"), nullptr);

  const auto kvm = t->driver_index("kvm");
  const auto lxc = t->driver_index("lxc");
  const auto live = t->capability_index("live_migration");
  ASSERT_TRUE(kvm && lxc && live);
  EXPECT_TRUE(t->driver_bits(0) & (1u << *kvm));
  EXPECT_FALSE(t->driver_bits(1) & (1u << *kvm));
  EXPECT_TRUE(t->capabilities(0, *kvm) & (1u << *live));
  EXPECT_FALSE(t->capabilities(2, *kvm) & (1u << *live));  // kvm on node-c cannot migrate live
  EXPECT_FALSE(t->capabilities(0, *lxc) & (1u << *live));  // capabilities are per driver
}

TEST(NodeTableTest, CommitAndReleaseChangeOnlyAllocations) {
  std::string error;
  auto t = NodeTable::build(three_nodes(), error);
  ASSERT_TRUE(t);
  const auto epoch = t->layout_epoch();
  t->commit(2, {4000, 16384, 100});
  EXPECT_EQ(t->allocated(kCpu)[2], 4000);
  EXPECT_EQ(t->free(2, kMemory), 131072 - 16384);
  t->release(2, {4000, 16384, 100});
  EXPECT_EQ(t->allocated(kMemory)[2], 0);
  t->release(2, {1, 1, 1});  // never below zero
  EXPECT_EQ(t->allocated(kDisk)[2], 0);
  EXPECT_EQ(t->layout_epoch(), epoch);
  auto again = NodeTable::build(three_nodes(), error);
  EXPECT_NE(again->layout_epoch(), epoch);  // a rebuilt table is a new layout
}

// Fill buckets follow commits and releases, and the walk over filled buckets finds exactly
// the buckets with rows, from either end and from any start, also in a clone.
TEST(NodeTableTest, FilledBucketsFollowAllocations) {
  std::vector<NodeView> views;
  for (int i = 0; i < 4; ++i) {
    NodeView v;
    v.name = "n" + std::to_string(i);
    v.capacity = {10240, 10240, 0};
    views.push_back(v);
  }
  std::string error;
  auto t = NodeTable::build(views, error);
  ASSERT_TRUE(t) << error;
  const auto filled = [](const NodeTable& table, bool upwards) {
    std::vector<int> out;
    for (int b = table.next_filled_bucket(upwards ? 0 : NodeTable::kFillBuckets - 1, upwards); b >= 0;
         b = table.next_filled_bucket(upwards ? b + 1 : b - 1, upwards)) {
      out.push_back(b);
    }
    return out;
  };
  EXPECT_EQ(filled(*t, true), (std::vector<int>{0}));
  t->commit(1, {640, 0, 0});    // 1/16 full: bucket 64 (a word boundary)
  t->commit(2, {10230, 0, 0});  // almost full: bucket 1023
  t->commit(3, {630, 0, 0});    // bucket 63
  EXPECT_EQ(filled(*t, true), (std::vector<int>{0, 63, 64, 1023}));
  EXPECT_EQ(filled(*t, false), (std::vector<int>{1023, 64, 63, 0}));
  EXPECT_EQ(t->next_filled_bucket(65, true), 1023);
  EXPECT_EQ(t->next_filled_bucket(62, false), 0);
  EXPECT_EQ(t->next_filled_bucket(NodeTable::kFillBuckets, true), -1);
  EXPECT_EQ(t->fill_bucket(64), (std::vector<std::uint32_t>{1}));
  t->release(0, {0, 0, 0});
  t->commit(0, {10240, 0, 0});  // bucket 0 empties
  EXPECT_EQ(filled(*t, true), (std::vector<int>{63, 64, 1023}));
  EXPECT_EQ(t->next_filled_bucket(0, false), -1);
  const NodeTable copy = t->clone();
  t->release(2, {10230, 0, 0});
  EXPECT_EQ(filled(*t, true), (std::vector<int>{0, 63, 64, 1023}));
  EXPECT_EQ(filled(copy, true), (std::vector<int>{63, 64, 1023}));
}

TEST(NodeTableTest, RefusedInputsSayWhy) {
  auto nodes = three_nodes();
  nodes[2].name = "node-a";
  std::string error;
  EXPECT_FALSE(NodeTable::build(nodes, error));
  EXPECT_EQ(error, "node 'node-a' is listed twice");
  nodes = three_nodes();
  for (int i = 0; i < 40; ++i) nodes[0].drivers.push_back({"driver-" + std::to_string(i), {}});
  EXPECT_FALSE(NodeTable::build(nodes, error));
  EXPECT_EQ(error, "more than 32 distinct drivers across the nodes");
  auto empty = NodeTable::build({}, error);
  ASSERT_TRUE(empty);
  EXPECT_EQ(empty->rows(), 0u);
}

}  // namespace
}  // namespace novacron::scheduler
