#include "policies/constraints/constraints_policy.h"

#include <cmath>

#include <algorithm>
#include <utility>

#include "novacron/sdk/json_config.hpp"

namespace novacron::policy::constraints {

namespace {

constexpr sdk::ReasonCode kCodes[] = {{"constraint", "does not match the constraints"}};

double milli(std::int64_t v) { return static_cast<double>(v) / 1000.0; }

}  // namespace

// --- ColumnFacts ---------------------------------------------------------------------------

const sdk::LabelColumn* ColumnFacts::column(std::string_view key) const {
  for (const auto& [k, c] : columns_) {
    if (k == key) return c;
  }
  columns_.emplace_back(key, nodes_.label(key));
  return columns_.back().second;
}

std::optional<std::string_view> ColumnFacts::label(std::string_view key) const {
  const sdk::LabelColumn* column = this->column(key);
  if (column == nullptr || column->value_ids[row_] == 0) return std::nullopt;
  return std::string_view(nodes_.label_values[column->value_ids[row_]]);
}

double ColumnFacts::number(NumberAttribute attribute) const { return number_at(nodes_, row_, attribute); }

double number_at(const sdk::NodeColumns& nodes, std::uint32_t row, NumberAttribute attribute) {
  const auto free = [&](sdk::ResourceIndex r) {
    return nodes.capacity[r][row] - nodes.reserved[r][row] - nodes.allocated[r][row];
  };
  const auto used = [&](sdk::ResourceIndex r) {
    const float* predicted = nodes.struct_size >= sizeof(sdk::NodeColumns) ? nodes.predicted_mean[r] : nullptr;
    if (predicted != nullptr && !std::isnan(predicted[row])) return static_cast<double>(predicted[row]);
    return static_cast<double>(nodes.allocated[r][row]);
  };
  switch (attribute) {
    case NumberAttribute::kVcpus:
      return milli(nodes.capacity[sdk::kCpuMilli][row]);
    case NumberAttribute::kMemoryMib:
      return static_cast<double>(nodes.capacity[sdk::kMemoryMib][row]);
    case NumberAttribute::kDiskGib:
      return static_cast<double>(nodes.capacity[sdk::kDiskGib][row]);
    case NumberAttribute::kCpuFree:
      return milli(free(sdk::kCpuMilli));
    case NumberAttribute::kMemFreeMib:
      return static_cast<double>(free(sdk::kMemoryMib));
    case NumberAttribute::kDiskFreeGib:
      return static_cast<double>(free(sdk::kDiskGib));
    // "used" is the predicted use of the node's VMs (EWMA) when the host knows it, else what
    // placed VMs requested.
    case NumberAttribute::kCpuUsed:
      return used(sdk::kCpuMilli) / 1000.0;
    case NumberAttribute::kMemUsedMib:
      return used(sdk::kMemoryMib);
  }
  return 0;
}

std::string_view ColumnFacts::text(TextAttribute attribute) const {
  if (attribute == TextAttribute::kName) return nodes_.names[row_];
  const std::uint32_t bits = nodes_.driver_bits[row_];
  const auto drivers = static_cast<std::uint32_t>(nodes_.driver_names.size());
  if (query_.driver >= 0 && static_cast<std::uint32_t>(query_.driver) < drivers &&
      (bits >> static_cast<std::uint32_t>(query_.driver) & 1u) != 0) {
    return nodes_.driver_names[static_cast<size_t>(query_.driver)];
  }
  for (std::uint32_t d = 0; d < drivers && d < 32; ++d) {
    if ((bits >> d & 1u) != 0) return nodes_.driver_names[d];
  }
  return {};
}

bool ColumnFacts::has_capability(std::string_view capability) const {
  int found = -2;
  for (const auto& [name, bit] : capability_bits_) {
    if (name == capability) found = bit;
  }
  if (found == -2) {
    const auto names = nodes_.capability_names;
    const auto it = std::find(names.begin(), names.end(), capability);
    found = it == names.end() ? -1 : static_cast<int>(it - names.begin());
    capability_bits_.emplace_back(capability, found);
  }
  if (found < 0) return false;
  const auto bit = static_cast<std::uint32_t>(found);
  const std::uint32_t bits = nodes_.driver_bits[row_];
  const auto drivers = static_cast<std::uint32_t>(nodes_.driver_names.size());
  for (std::uint32_t d = 0; d < drivers && d < 32; ++d) {
    if ((bits >> d & 1u) == 0) continue;
    const std::uint32_t caps = nodes_.driver_caps[static_cast<size_t>(row_) * nodes_.driver_caps_stride + d];
    if ((caps >> bit & 1u) != 0) return true;
  }
  return false;
}

// --- ConstraintsPolicy ---------------------------------------------------------------------

std::span<const sdk::ReasonCode> ConstraintsPolicy::reason_codes() const noexcept { return kCodes; }

std::uint32_t ConstraintsPolicy::applies(const sdk::PlacementQuery& query) noexcept {
  return query.constraints.empty() ? 0u : static_cast<std::uint32_t>(sdk::kPolicyFilters);
}

ConstraintsPolicy::CacheStats ConstraintsPolicy::cache_stats() const {
  const std::lock_guard<std::mutex> lock(mu_);
  CacheStats s = stats_;
  s.programs = lru_.size();
  return s;
}

sdk::Status ConstraintsPolicy::on_init(std::string_view config_json) {
  sdk::ConfigReader cfg(config_json);
  cfg.reject_unknown_keys();
  if (!cfg.ok()) return sdk::invalid_argument(cfg.error());
  return sdk::Status::ok();
}

std::shared_ptr<ConstraintsPolicy::Program> ConstraintsPolicy::compile(std::string_view text) {
  {
    const std::lock_guard<std::mutex> lock(mu_);
    const auto it = index_.find(text);
    if (it != index_.end()) {
      lru_.splice(lru_.begin(), lru_, it->second);
      return *it->second;
    }
  }
  // Parse outside the lock; another thread may have cached the same text meanwhile.
  auto program = std::make_shared<Program>(Program{std::string(text), Expression::parse(text), 0, nullptr});
  const std::lock_guard<std::mutex> lock(mu_);
  ++stats_.compiles;
  const auto it = index_.find(text);
  if (it != index_.end()) {
    lru_.splice(lru_.begin(), lru_, it->second);
    return *it->second;
  }
  lru_.push_front(program);
  index_.emplace(std::string_view(program->text), lru_.begin());
  while (lru_.size() > kCacheEntries) {
    index_.erase(std::string_view(lru_.back()->text));
    lru_.pop_back();
  }
  return program;
}

sdk::Status ConstraintsPolicy::expression_of(const Program& program, const Expression*& out) {
  if (const auto* error = std::get_if<ParseError>(&program.compiled)) {
    return sdk::invalid_argument("/placement/constraints: " + error->text());
  }
  out = &std::get<Expression>(program.compiled);
  return sdk::Status::ok();
}

namespace {

using Words = std::vector<std::uint64_t>;

bool test_bit(const Words& w, std::uint32_t row) { return (w[row >> 6] >> (row & 63) & 1u) != 0; }

void compare_rows(const sdk::NodeColumns& nodes, std::span<const std::uint32_t> rows,
                  const Expression::NumberComparison& c, Words& out) {
  const auto test = [&](std::uint32_t row) {
    return static_cast<std::uint64_t>(ordered(number_at(nodes, row, c.attribute), c.constant, c.compare));
  };
  // Dense when most rows are asked for: 64 rows per word, no scattered writes.
  if (rows.size() * 2 >= nodes.rows) {
    for (std::uint32_t base = 0; base < nodes.rows; base += 64) {
      std::uint64_t word = 0;
      const std::uint32_t end = std::min<std::uint32_t>(base + 64, nodes.rows);
      for (std::uint32_t row = base; row < end; ++row) word |= test(row) << (row - base);
      out[base >> 6] = word;
    }
    return;
  }
  for (const std::uint32_t row : rows) out[row >> 6] |= test(row) << (row & 63);
}

// One test that is not a layout test, on `rows`, into `out` (zeroed first).
void evaluate_dynamic(const Expression& e, size_t test, const sdk::NodeColumns& nodes, const sdk::PlacementQuery& query,
                      std::span<const std::uint32_t> rows, Words& out) {
  std::fill(out.begin(), out.end(), 0);
  if (const auto c = e.number_comparison(test)) return compare_rows(nodes, rows, *c, out);
  ColumnFacts facts(nodes, query);
  for (const std::uint32_t row : rows) {
    facts.set_row(row);
    if (e.evaluate_test(test, facts)) out[row >> 6] |= std::uint64_t{1} << (row & 63);
  }
}

}  // namespace

std::shared_ptr<const ConstraintsPolicy::LayoutResults> ConstraintsPolicy::layout_results(
    Program& program, const sdk::NodeColumns& nodes, const sdk::PlacementQuery& query) {
  {
    const std::lock_guard<std::mutex> lock(mu_);
    if (program.layout != nullptr && program.epoch == nodes.layout_epoch && program.layout->rows == nodes.rows) {
      ++stats_.bitset_hits;
      return program.layout;
    }
  }
  const Expression& expression = std::get<Expression>(program.compiled);
  auto layout = std::make_shared<LayoutResults>();
  layout->rows = nodes.rows;
  layout->tests.resize(expression.test_count());
  const size_t words = (static_cast<size_t>(nodes.rows) + 63) / 64;
  ColumnFacts facts(nodes, query);
  bool all_layout = true;
  for (size_t t = 0; t < expression.test_count(); ++t) {
    if (expression.dependence(t) != Expression::Dependence::kLayout) {
      all_layout = false;
      continue;
    }
    Words& bits = layout->tests[t];
    bits.assign(words, 0);
    for (std::uint32_t row = 0; row < nodes.rows; ++row) {
      facts.set_row(row);
      if (expression.evaluate_test(t, facts)) bits[row >> 6] |= std::uint64_t{1} << (row & 63);
    }
  }
  if (all_layout) {
    std::vector<std::uint32_t> every(nodes.rows);
    for (std::uint32_t row = 0; row < nodes.rows; ++row) every[row] = row;
    layout->combined = evaluate(expression, *layout, nodes, query, every);
  }
  const std::lock_guard<std::mutex> lock(mu_);
  ++stats_.bitset_builds;
  program.epoch = nodes.layout_epoch;
  program.layout = layout;
  return layout;
}

const ConstraintsPolicy::Words& ConstraintsPolicy::evaluate(const Expression& expression, const LayoutResults& layout,
                                                            const sdk::NodeColumns& nodes,
                                                            const sdk::PlacementQuery& query,
                                                            std::span<const std::uint32_t> rows) {
  if (!layout.combined.empty()) return layout.combined;
  // A stack of bitsets, one per pending test result; per-thread scratch that keeps its
  // capacity between calls.
  thread_local std::vector<Words> stack;
  const size_t words = (static_cast<size_t>(nodes.rows) + 63) / 64;
  size_t top = 0;
  for (const Expression::Instruction& in : expression.code()) {
    switch (in.op) {
      case Expression::Instruction::Op::kTest: {
        if (stack.size() <= top) stack.resize(top + 1);
        Words& out = stack[top++];
        out.resize(words);
        const Words& cached = layout.tests[in.test];
        if (!cached.empty()) {
          std::copy(cached.begin(), cached.end(), out.begin());
        } else {
          evaluate_dynamic(expression, in.test, nodes, query, rows, out);
        }
        break;
      }
      case Expression::Instruction::Op::kNot:
        for (auto& w : stack[top - 1]) w = ~w;
        break;
      case Expression::Instruction::Op::kAnd:
      case Expression::Instruction::Op::kOr: {
        const Words& b = stack[--top];
        Words& a = stack[top - 1];
        if (in.op == Expression::Instruction::Op::kAnd) {
          for (size_t i = 0; i < words; ++i) a[i] &= b[i];
        } else {
          for (size_t i = 0; i < words; ++i) a[i] |= b[i];
        }
        break;
      }
    }
  }
  if (top == 0) {  // an empty program matches nothing (as matches() answers)
    if (stack.empty()) stack.resize(1);
    stack[0].assign(words, 0);
    return stack[0];
  }
  return stack[top - 1];
}

sdk::Status ConstraintsPolicy::on_check_request(const sdk::PlacementQuery& query) {
  if (query.constraints.empty()) return sdk::Status::ok();
  const Expression* expression = nullptr;
  return expression_of(*compile(query.constraints), expression);
}

sdk::Status ConstraintsPolicy::on_filter_rows(const sdk::PlacementQuery& query, const sdk::NodeColumns& nodes,
                                              std::span<const std::uint32_t> rows, std::span<std::uint8_t> reject) {
  if (query.constraints.empty()) {
    std::fill(reject.begin(), reject.end(), 0);
    return sdk::Status::ok();
  }
  const std::shared_ptr<Program> program = compile(query.constraints);
  const Expression* expression = nullptr;
  if (sdk::Status s = expression_of(*program, expression); !s.is_ok()) return s;

  // layout_epoch 0: columns without an epoch (hand-made); nothing is cached for them.
  if (nodes.layout_epoch == 0) {
    ColumnFacts facts(nodes, query);
    for (size_t i = 0; i < rows.size(); ++i) {
      facts.set_row(rows[i]);
      reject[i] = expression->matches(facts) ? 0 : kRejectConstraint;
    }
    return sdk::Status::ok();
  }
  const std::shared_ptr<const LayoutResults> layout = layout_results(*program, nodes, query);
  const Words& result = evaluate(*expression, *layout, nodes, query, rows);
  for (size_t i = 0; i < rows.size(); ++i) reject[i] = test_bit(result, rows[i]) ? 0 : kRejectConstraint;
  return sdk::Status::ok();
}

sdk::Status ConstraintsPolicy::on_explain_row(const sdk::PlacementQuery& query, const sdk::NodeColumns& nodes,
                                              std::uint32_t row, sdk::FilterVerdict& verdict,
                                              sdk::NodeScore& /*score*/) {
  if (row >= nodes.rows) return sdk::invalid_argument("row " + std::to_string(row) + " is not in the node table");
  if (query.constraints.empty()) {
    verdict = {true, "no constraints"};
    return sdk::Status::ok();
  }
  const Expression* expression = nullptr;
  const std::shared_ptr<Program> program = compile(query.constraints);
  if (sdk::Status s = expression_of(*program, expression); !s.is_ok()) return s;
  ColumnFacts facts(nodes, query);
  facts.set_row(row);
  verdict.pass = expression->matches(facts);
  verdict.reason = (verdict.pass ? "matches: " : "does not match: ") + std::string(query.constraints);
  return sdk::Status::ok();
}

}  // namespace novacron::policy::constraints
