// The placement block of a VM spec: groups, constraints, capabilities, a pinned node, with
// every error naming its field; and what stored specs count for (resources, groups).
#include "host/placement/placement_request.h"

#include <gtest/gtest.h>

#include "host/scheduler/engine.h"

namespace novacron {
namespace {

using nlohmann::json;

json base() { return {{"name", "db-1"}, {"driver", "kvm"}, {"vcpus", 4}, {"memory_mib", 8192}}; }

void expect_error(const json& spec, const std::string& text) {
  auto r = parse_placement_spec(spec);
  ASSERT_FALSE(r.has_value()) << spec.dump();
  EXPECT_EQ(r.error().code, "invalid_spec");
  EXPECT_NE(r.error().message.find(text), std::string::npos) << r.error().message;
}

TEST(PlacementRequestTest, ReadsResourcesAndThePlacementBlock) {
  json spec = base();
  spec["disks"] = json::array({{{"image", "a.qcow2"}}, {{"size_gib", 20}}, {{"size_gib", 5}}});
  spec["labels"] = {{"tier", "db"}};
  spec["placement"] = {{"node", "node-b"},
                       {"constraints", "zone == \"eu-1\""},
                       {"capabilities", {"live_migration"}},
                       {"groups",
                        {{{"name", "db"}, {"affinity", "anti-affinity"}, {"scope", "rack"}, {"max_per_domain", 2}},
                         {{"name", "web"}, {"affinity", "affinity"}, {"hard", false}}}}};
  auto r = parse_placement_spec(spec);
  ASSERT_TRUE(r.has_value()) << r.error().message;
  const auto& q = r->query;
  EXPECT_EQ(q.name, "db-1");
  EXPECT_EQ(q.resources, (scheduler::ResourceVector{4000, 8192, 25})) << "image disks are not counted";
  EXPECT_EQ(q.labels.at("tier"), "db");
  EXPECT_EQ(r->pinned_node, "node-b");
  EXPECT_EQ(q.constraints, "zone == \"eu-1\"");
  EXPECT_EQ(q.capabilities, (std::vector<std::string>{"live_migration"}));
  ASSERT_EQ(q.groups.size(), 2u);
  EXPECT_EQ(q.groups[0].affinity, sdk::GroupAffinity::kAntiAffinity);
  EXPECT_TRUE(q.groups[0].hard);
  EXPECT_EQ(q.groups[0].scope, "rack");
  EXPECT_EQ(q.groups[0].max_per_domain, 2u);
  EXPECT_EQ(q.groups[1].affinity, sdk::GroupAffinity::kAffinity);
  EXPECT_FALSE(q.groups[1].hard);
  EXPECT_EQ(q.groups[1].scope, "node");
  EXPECT_EQ(q.seed, scheduler::seed_of("db-1"));
  EXPECT_EQ(group_names_of(spec), (std::set<std::string>{"db", "web"}));
}

TEST(PlacementRequestTest, BadInputNamesTheField) {
  json no_vcpus = base();
  no_vcpus.erase("vcpus");
  expect_error(no_vcpus, "/vcpus: is required");
  json zero = base();
  zero["memory_mib"] = 0;
  expect_error(zero, "/memory_mib: expected a positive integer");
  json p = base();
  p["placement"] = {{"zone", "eu"}};
  expect_error(p, "/placement/zone: unknown field");
  p["placement"] = {{"groups", {{{"name", "db"}, {"affinity", "together"}}}}};
  expect_error(p, "/placement/groups/0/affinity: expected \"affinity\" or \"anti-affinity\"");
  p["placement"] = {{"groups", {{{"name", "db"}}, {{"name", "db"}}}}};
  expect_error(p, "/placement/groups/1/name: group \"db\" is listed twice");
  p["placement"] = {{"groups", {{{"name", "db"}, {"max_per_domain", 0}}}}};
  expect_error(p, "/placement/groups/0/max_per_domain: expected an integer from 1");
  p["placement"] = {{"constraints", 5}};
  expect_error(p, "/placement/constraints: expected an expression");
  p["placement"] = {{"capabilities", {""}}};
  expect_error(p, "/placement/capabilities/0: expected a capability name");
  p["placement"] = "anywhere";
  expect_error(p, "/placement: expected an object");
  expect_error(json::array(), "expected a VM spec");
}

}  // namespace
}  // namespace novacron
