// constraints: a filter that keeps the nodes matching the request's constraint expression
// (placement.constraints; the language is expression.h, docs/design/scheduler.md 3.4), on
// SchedulingPolicy interface 2.
//
// Compiled expressions are kept in an LRU of kCacheEntries programs by text, shared by all
// threads (a mutex guards it; parsing and evaluation run outside the lock).
//
// Evaluation is column at a time: each test of the expression yields a bitset over the
// table's rows and the postfix code combines them word by word, so a row costs a few bit
// operations instead of an interpreter run. Tests that read only the layout (labels, names,
// capacities, capabilities) are computed once per layout_epoch and kept with the program;
// `attribute <op> number` tests on free or used amounts are one tight loop over the columns;
// anything else (the driver attribute, attributes compared with labels) is evaluated per
// row over ColumnFacts. Columns without an epoch (hand-made) are evaluated per row.
//
// Attributes over NodeColumns (ColumnFacts): vcpus = capacity cpu / 1000, memory_mib and
// disk_gib = capacity; cpu_free, mem_free_mib, disk_free_gib = capacity - reserved -
// allocated (no over-commit ratios); cpu_used and mem_used_mib = the predicted use of the
// node's VMs (EWMA) where the host knows it, else allocated; name; driver = the request's driver when the node
// has it loaded, else the node's first loaded driver ("" without any); has_capability(c) =
// some loaded driver of the node has c. A capacity of 0 means unknown, and reads as 0.
#pragma once

#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <variant>
#include <vector>

#include "novacron/sdk/scheduling_policy.hpp"
#include "policies/constraints/expression.h"

namespace novacron::policy::constraints {

// NodeFacts of one row of NodeColumns (set_row() moves it); valid while the columns are.
class ColumnFacts final : public NodeFacts {
 public:
  ColumnFacts(const sdk::NodeColumns& nodes, const sdk::PlacementQuery& query) : nodes_(nodes), query_(query) {}
  void set_row(std::uint32_t row) { row_ = row; }

  // Label columns and capability bits are resolved once per key and reused for every row.
  std::optional<std::string_view> label(std::string_view key) const override;
  double number(NumberAttribute attribute) const override;
  std::string_view text(TextAttribute attribute) const override;
  bool has_capability(std::string_view capability) const override;

 private:
  const sdk::LabelColumn* column(std::string_view key) const;
  mutable std::vector<std::pair<std::string_view, const sdk::LabelColumn*>> columns_;
  mutable std::vector<std::pair<std::string_view, int>> capability_bits_;  // -1: no node has it
  const sdk::NodeColumns& nodes_;
  const sdk::PlacementQuery& query_;
  std::uint32_t row_ = 0;
};

// The value of a number attribute on one row, as expressions see it.
double number_at(const sdk::NodeColumns& nodes, std::uint32_t row, NumberAttribute attribute);

class ConstraintsPolicy final : public sdk::SchedulingPolicyBase {
 public:
  static constexpr size_t kCacheEntries = 1024;  // compiled programs kept, by text
  static constexpr std::uint8_t kRejectConstraint = 1;

  std::uint32_t roles() const noexcept override { return sdk::kPolicyFilters; }
  std::span<const sdk::ReasonCode> reason_codes() const noexcept override;
  // The filter bit when the request has constraints, else 0 (skipped).
  std::uint32_t applies(const sdk::PlacementQuery& query) noexcept override;

  struct CacheStats {
    size_t programs = 0;              // in the LRU now
    std::uint64_t compiles = 0;       // texts parsed (cache misses)
    std::uint64_t bitset_builds = 0;  // layout-test results computed for a layout epoch
    std::uint64_t bitset_hits = 0;    // filter calls that reused them
  };
  CacheStats cache_stats() const;

 protected:
  sdk::Status on_init(std::string_view config_json) override;
  sdk::Status on_check_request(const sdk::PlacementQuery& query) override;
  sdk::Status on_filter_rows(const sdk::PlacementQuery& query, const sdk::NodeColumns& nodes,
                             std::span<const std::uint32_t> rows, std::span<std::uint8_t> reject) override;
  sdk::Status on_explain_row(const sdk::PlacementQuery& query, const sdk::NodeColumns& nodes, std::uint32_t row,
                             sdk::FilterVerdict& verdict, sdk::NodeScore& score) override;

 private:
  using Words = std::vector<std::uint64_t>;  // a bitset over the table's rows
  // The results of the expression's layout tests for one layout epoch.
  struct LayoutResults {
    std::uint32_t rows = 0;
    std::vector<Words> tests;  // per test; empty for tests that are not layout tests
    Words combined;            // the whole expression when every test is a layout test
  };
  struct Program {
    std::string text;
    std::variant<Expression, ParseError> compiled;
    // Guarded by mu_: the layout results for layout epoch `epoch`.
    std::uint64_t epoch = 0;
    std::shared_ptr<const LayoutResults> layout;
  };
  using Lru = std::list<std::shared_ptr<Program>>;

  // The compiled program of `text` (or its parse error), from the LRU or parsed now.
  std::shared_ptr<Program> compile(std::string_view text);
  // The compiled expression, or kInvalidArgument naming /placement/constraints.
  static sdk::Status expression_of(const Program& program, const Expression*& out);
  std::shared_ptr<const LayoutResults> layout_results(Program& program, const sdk::NodeColumns& nodes,
                                                      const sdk::PlacementQuery& query);
  // The expression's value on `rows` (bits of other rows are unspecified).
  static const Words& evaluate(const Expression& expression, const LayoutResults& layout, const sdk::NodeColumns& nodes,
                               const sdk::PlacementQuery& query, std::span<const std::uint32_t> rows);

  mutable std::mutex mu_;
  Lru lru_;                                                    // most recently used first
  std::unordered_map<std::string_view, Lru::iterator> index_;  // keys view Program::text
  CacheStats stats_;
};

}  // namespace novacron::policy::constraints
