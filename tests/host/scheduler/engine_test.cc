// The placement engine with small test policies (a fit filter, packing and spreading
// scorers): reasons when nothing fits, exact boundaries, deterministic ties that do not
// depend on node order, weights, normalisation, commits and the candidate cap.
#include "host/scheduler/engine.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>

namespace novacron::scheduler {
namespace {

class FitFilter : public PlacementPolicy {
 public:
  std::string_view name() const override { return "fit"; }
  std::uint32_t roles() const override { return kFilter; }
  std::string filter(const PolicyContext& ctx, std::span<const std::uint32_t> rows,
                     std::span<std::uint8_t> reject) const override {
    [[maybe_unused]] const auto& q = ctx.query;
    [[maybe_unused]] const auto& t = ctx.table;
    for (size_t i = 0; i < rows.size(); ++i) {
      reject[i] = 0;
      for (size_t r = 0; r < kResources && reject[i] == 0; ++r) {
        if (t.free(rows[i], static_cast<Resource>(r)) < q.resources[r]) reject[i] = static_cast<std::uint8_t>(r + 1);
      }
    }
    return {};
  }
  std::string reason(std::uint8_t code) const override {
    return code == 1 ? "not enough cpu" : code == 2 ? "not enough memory" : "not enough disk";
  }
};

// Dominant share after placement: kUnit, higher = fuller (pack) or emptier (spread).
class ShareScorer : public PlacementPolicy {
 public:
  explicit ShareScorer(bool pack) : pack_(pack) {}
  std::string_view name() const override { return pack_ ? "pack" : "spread"; }
  std::uint32_t roles() const override { return kScorer; }
  ScoreScale scale() const override { return ScoreScale::kUnit; }
  std::string score(const PolicyContext& ctx, std::span<const std::uint32_t> rows,
                    std::span<double> out) const override {
    [[maybe_unused]] const auto& q = ctx.query;
    [[maybe_unused]] const auto& t = ctx.table;
    for (size_t i = 0; i < rows.size(); ++i) {
      double share = 0;
      for (size_t r = 0; r < kResources; ++r) {
        const auto res = static_cast<Resource>(r);
        const auto usable = static_cast<double>(t.capacity(res)[rows[i]] - t.reserved(res)[rows[i]]);
        share = std::max(share, static_cast<double>(t.allocated(res)[rows[i]] + q.resources[r]) / usable);
      }
      out[i] = pack_ ? share : 1 - share;
    }
    return {};
  }

 private:
  bool pack_;
};

class ConstantScorer : public PlacementPolicy {
 public:
  std::string_view name() const override { return "constant"; }
  std::uint32_t roles() const override { return kScorer; }
  std::string score(const PolicyContext& ctx, std::span<const std::uint32_t>, std::span<double> out) const override {
    [[maybe_unused]] const auto& q = ctx.query;
    [[maybe_unused]] const auto& t = ctx.table;
    std::fill(out.begin(), out.end(), 42.0);
    return {};
  }
};

NodeView node(const std::string& name, ResourceVector capacity, ResourceVector allocated = {},
              NodeState state = NodeState::kReady) {
  NodeView v;
  v.name = name;
  v.state = state;
  v.capacity = capacity;
  v.allocated = allocated;
  return v;
}

NodeTable table(const std::vector<NodeView>& views) {
  std::string error;
  auto t = NodeTable::build(views, error);
  EXPECT_TRUE(t) << error;
  return std::move(*t);
}

PlacementQuery vm(const std::string& name, ResourceVector resources) {
  PlacementQuery q;
  q.name = name;
  q.resources = resources;
  q.seed = seed_of(name);
  return q;
}

const FitFilter kFit;
const ShareScorer kPack(true), kSpread(false);
const ConstantScorer kConstant;

TEST(EngineTest, NothingFitsAndEachReasonIsCounted) {
  auto t = table({node("a", {4000, 4096, 100}), node("b", {16000, 1024, 100}), node("c", {1000, 1024, 10}),
                  node("d", {64000, 65536, 1000}, {}, NodeState::kUnreachable)});
  const Engine engine({{&kFit}}, {{&kPack}});
  const Decision d = engine.place(vm("web-1", {8000, 2048, 20}), t, true);
  EXPECT_FALSE(d.placed);
  EXPECT_EQ(d.feasible, 0u);
  ASSERT_EQ(d.filters.size(), 2u);
  EXPECT_EQ(d.filters[0].policy, "engine");
  ASSERT_EQ(d.filters[0].reasons[0].examples.size(), 1u);
  EXPECT_EQ(d.filters[0].reasons[0].examples[0].node, "d");
  EXPECT_EQ(d.filters[1].policy, "fit");
  EXPECT_EQ(d.filters[1].rejected, 3u);
  std::set<std::string> texts;
  for (const auto& r : d.filters[1].reasons) texts.insert(r.text + ":" + std::to_string(r.nodes));
  EXPECT_EQ(texts, (std::set<std::string>{"not enough cpu:2", "not enough memory:1"}));
  EXPECT_NE(d.summary.find("fit: 2 not enough cpu"), std::string::npos) << d.summary;
  EXPECT_EQ(t.allocated(kCpu)[0], 0);  // nothing committed
}

TEST(EngineTest, ExactFitAtTheBoundaryPasses) {
  auto t = table({node("a", {4000, 4096, 100}, {2000, 2048, 50})});
  const Engine engine({{&kFit}}, {{&kPack}});
  EXPECT_TRUE(engine.place(vm("x", {2000, 2048, 50}), t, false).placed);
  EXPECT_FALSE(engine.place(vm("x", {2001, 2048, 50}), t, false).placed);
}

TEST(EngineTest, PackingAndSpreadingPickOppositeEnds) {
  auto t = table({node("empty", {16000, 16384, 100}), node("half", {16000, 16384, 100}, {8000, 8192, 50}),
                  node("full", {16000, 16384, 100}, {14000, 14336, 90})});
  const auto q = vm("db-1", {1000, 1024, 5});
  EXPECT_EQ(Engine({{&kFit}}, {{&kPack}}).place(q, t, false).node, "full");
  EXPECT_EQ(Engine({{&kFit}}, {{&kSpread}}).place(q, t, false).node, "empty");
  // Weights decide between the two: spread twice as heavy wins.
  const Decision d = Engine({{&kFit}}, {{&kPack, 1.0}, {&kSpread, 2.0}}).place(q, t, false);
  EXPECT_EQ(d.node, "empty");
  ASSERT_EQ(d.top.size(), 3u);
  EXPECT_EQ(d.scorers, (std::vector<std::string>{"pack", "spread"}));
  EXPECT_NEAR(d.top[0].weighted[1], 2.0 * d.top[0].normalised[1], 1e-12);
  EXPECT_GE(d.top[0].total, d.top[1].total);
}

TEST(EngineTest, EqualRelativeScoresHaveNoInfluence) {
  auto t = table({node("a", {16000, 16384, 100}), node("b", {16000, 16384, 100}, {8000, 8192, 50})});
  const Decision d = Engine({{&kFit}}, {{&kPack}, {&kConstant, 100.0}}).place(vm("x", {1000, 1024, 1}), t, false);
  EXPECT_EQ(d.node, "b");  // the constant scorer, however heavy, changed nothing
  EXPECT_EQ(d.top[0].normalised[1], 0.0);
}

TEST(EngineTest, TiesAreDeterministicSpreadAndIndependentOfNodeOrder) {
  std::vector<NodeView> views;
  for (int i = 0; i < 10; ++i) views.push_back(node("node-" + std::to_string(i), {16000, 16384, 100}));
  auto forward = table(views);
  std::reverse(views.begin(), views.end());
  auto backward = table(views);
  const Engine engine({{&kFit}}, {{&kPack}});
  std::set<std::string> chosen;
  for (int i = 0; i < 20; ++i) {
    const auto q = vm("vm-" + std::to_string(i), {1000, 1024, 1});
    const Decision a = engine.place(q, forward, false);
    const Decision b = engine.place(q, backward, false);
    EXPECT_EQ(a.node, b.node);
    EXPECT_TRUE(a.tie);
    EXPECT_EQ(a.node, engine.place(q, forward, false).node);  // the same request, the same node
    chosen.insert(a.node);
  }
  EXPECT_GE(chosen.size(), 5u);  // equal nodes: the choice spreads, not always node-0
}

TEST(EngineTest, CommitsFillNodesUntilNothingFits) {
  auto t = table({node("a", {4000, 4096, 100}), node("b", {4000, 4096, 100})});
  const Engine engine({{&kFit}}, {{&kPack}});
  int placed = 0;
  for (int i = 0; i < 10; ++i) {
    if (engine.place(vm("vm-" + std::to_string(i), {1000, 1024, 10}), t, true).placed) ++placed;
  }
  EXPECT_EQ(placed, 8);
  EXPECT_EQ(t.allocated(kCpu)[0] + t.allocated(kCpu)[1], 8000);
  EXPECT_EQ(t.free(0, kMemory), 0);
}

TEST(EngineTest, CandidateCapKeepsTheFullestNodesForPacking) {
  std::vector<NodeView> views;
  for (int i = 0; i < 200; ++i) {
    // Fill levels spread over the nodes; node-137 is the fullest that still fits.
    const std::int64_t used = i == 137 ? 15000 : (i * 53) % 14000;
    views.push_back(node("node-" + std::to_string(i), {16000, 16384, 100}, {used, 0, 0}));
  }
  auto t = table(views);
  const Engine capped({{&kFit}}, {{&kPack}}, EngineOptions{3, 16});
  const Decision d = capped.place(vm("x", {1000, 1024, 1}), t, false);
  EXPECT_EQ(d.scored, 16u);
  EXPECT_EQ(d.feasible, 200u);
  EXPECT_EQ(d.node, "node-137");
  // The sampled part of the candidates does not depend on the order of the nodes either.
  std::reverse(views.begin(), views.end());
  auto reversed = table(views);
  const Engine spread({{&kFit}}, {{&kSpread}, {&kConstant}}, EngineOptions{3, 16});
  for (int i = 0; i < 10; ++i) {
    const auto q = vm("s-" + std::to_string(i), {1000, 1024, 1});
    EXPECT_EQ(spread.place(q, t, false).node, spread.place(q, reversed, false).node);
  }
}

// Rejects a row when `reject_row(row)`, with code 1; records the rows it was asked about.
class PatternFilter : public PlacementPolicy {
 public:
  PatternFilter(std::string name, bool (*reject_row)(std::uint32_t)) : name_(std::move(name)), reject_(reject_row) {}
  std::string_view name() const override { return name_; }
  std::uint32_t roles() const override { return kFilter; }
  std::string filter(const PolicyContext& ctx, std::span<const std::uint32_t> rows,
                     std::span<std::uint8_t> reject) const override {
    [[maybe_unused]] const auto& t = ctx.table;
    asked.assign(rows.begin(), rows.end());
    for (size_t i = 0; i < rows.size(); ++i) reject[i] = reject_(rows[i]) ? 1 : 0;
    return {};
  }
  std::string reason(std::uint8_t /*code*/) const override { return "matches the pattern"; }
  mutable std::vector<std::uint32_t> asked;

 private:
  std::string name_;
  bool (*reject_)(std::uint32_t);
};

// Filters see exactly the rows the filters before them kept, in ascending order, and the
// counts are exact, for rejections alone, in runs, at block edges and in the tail.
TEST(EngineTest, EachFilterSeesExactlyTheSurvivorsOfThoseBefore) {
  std::vector<NodeView> views;
  for (int i = 0; i < 1003; ++i) {
    views.push_back(
        node("n" + std::to_string(i), {4000, 4096, 10}, {}, i % 97 == 5 ? NodeState::kCordoned : NodeState::kReady));
  }
  NodeTable t = table(views);
  const PatternFilter first("first", [](std::uint32_t row) { return row % 7 == 3 || (row >= 100 && row < 140); });
  const PatternFilter second("second", [](std::uint32_t row) { return row % 8 == 0 || row >= 1000; });
  const Engine engine({{&first}, {&second}}, {{&kConstant, 1.0}}, EngineOptions{});
  const Decision d = engine.place(vm("v", {1000, 1024, 1}), t, false);
  ASSERT_TRUE(d.placed);

  std::vector<std::uint32_t> ready, after_first, after_second;
  for (std::uint32_t row = 0; row < 1003; ++row) {
    if (row % 97 == 5) continue;
    ready.push_back(row);
    if (row % 7 == 3 || (row >= 100 && row < 140)) continue;
    after_first.push_back(row);
    if (row % 8 == 0 || row >= 1000) continue;
    after_second.push_back(row);
  }
  EXPECT_EQ(first.asked, ready);
  EXPECT_EQ(second.asked, after_first);
  EXPECT_EQ(d.feasible, after_second.size());
  ASSERT_EQ(d.filters.size(), 3u);  // not ready, first, second
  EXPECT_EQ(d.filters[0].rejected, 1003 - ready.size());
  EXPECT_EQ(d.filters[1].rejected, ready.size() - after_first.size());
  EXPECT_EQ(d.filters[2].rejected, after_first.size() - after_second.size());
  EXPECT_TRUE(std::find(after_second.begin(), after_second.end(), *d.row) != after_second.end());
}

}  // namespace
}  // namespace novacron::scheduler
