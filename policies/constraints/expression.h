// The placement constraint language (docs/design/scheduler.md, 3.4): a small boolean
// expression over a node's labels and attributes, e.g.
//
//   zone == "eu-1" && !(rack in ["r3", "r4"]) && mem_free_mib > 4096
//
//   expr    := or ;   or := and { "||" and } ;   and := unary { "&&" unary } ;
//   unary   := "!" unary | "(" expr ")" | test ;
//   test    := "true" | "false" | "has" "(" key ")" | "has_capability" "(" string ")"
//            | operand ( cmpop operand | ["not"] "in" list ) ;
//   operand := key | attribute | string | number ;   cmpop := == != < <= > >=
//   list    := "[" [ literal { "," literal } ] "]" ;  key := ident | "label" "(" string ")"
//
// Attributes (reserved names; any other identifier is a label key): name, driver (text);
// vcpus, memory_mib, disk_gib, cpu_free, mem_free_mib, disk_free_gib, cpu_used, mem_used_mib
// (numbers). A comparison with a missing label is false, `!=` and `not in` included (as SQL
// NULL), so `!(zone == "x")` is true where zone is missing. A label compared with a number is
// read as a number, and the comparison is false when it is not one.
//
// Parse errors name the 1-based column (in code points) and what was expected. Pure: no I/O.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace novacron::policy::constraints {

inline constexpr size_t kMaxExpressionLength = 4096;
inline constexpr int kMaxNesting = 64;
inline constexpr size_t kMaxListItems = 256;

enum class NumberAttribute : std::uint8_t {
  kVcpus,
  kMemoryMib,
  kDiskGib,
  kCpuFree,
  kMemFreeMib,
  kDiskFreeGib,
  kCpuUsed,
  kMemUsedMib,
};
enum class TextAttribute : std::uint8_t { kName, kDriver };

// What an expression may ask of one node. The engine implements it over its node table.
class NodeFacts {
 public:
  virtual ~NodeFacts() = default;
  virtual std::optional<std::string_view> label(std::string_view key) const = 0;
  virtual double number(NumberAttribute attribute) const = 0;
  virtual std::string_view text(TextAttribute attribute) const = 0;
  virtual bool has_capability(std::string_view capability) const = 0;
};

struct ParseError {
  size_t column = 0;  // 1-based, in code points
  std::string message;
  // "column N: message", the form the API puts after the field's path.
  std::string text() const;
};

// A compiled expression: immutable, cheap to evaluate, safe to share between threads.
class Expression {
 public:
  static std::variant<Expression, ParseError> parse(std::string_view text);

  bool matches(const NodeFacts& node) const;

  // The label keys it reads, sorted and unique (for caching label-only results).
  const std::vector<std::string>& label_keys() const { return label_keys_; }
  // True when it reads only labels and constants (its result changes only with labels).
  bool labels_only() const { return labels_only_; }

  // Implementation types, public so that the parser (in the .cc) can build them.
  enum class OperandKind : std::uint8_t { kLabel, kNumberAttribute, kTextAttribute, kString, kNumber };
  struct Operand {
    OperandKind kind = OperandKind::kString;
    std::string text;  // label key or string literal
    double number = 0;
    NumberAttribute number_attribute = NumberAttribute::kVcpus;
    TextAttribute text_attribute = TextAttribute::kName;
  };
  enum class Compare : std::uint8_t { kEq, kNe, kLt, kLe, kGt, kGe };
  struct Test {
    enum class Kind : std::uint8_t { kConstant, kCompare, kIn, kNotIn, kHas, kHasCapability };
    Kind kind = Kind::kConstant;
    bool constant = false;
    Compare compare = Compare::kEq;
    Operand lhs, rhs;
    std::vector<Operand> list;
    std::string key;  // kHas: the label; kHasCapability: the capability
  };
  // Postfix code: a test pushes its result, AND/OR pop two, NOT flips the top.
  struct Instruction {
    enum class Op : std::uint8_t { kTest, kAnd, kOr, kNot };
    Op op = Op::kTest;
    std::uint32_t test = 0;
  };
  const std::vector<Instruction>& code() const { return code_; }

  // Column-at-a-time evaluation (the constraints policy): the tests, and the postfix code
  // that combines their results. Test i on one node is evaluate_test(i, node).
  enum class Dependence : std::uint8_t {
    kLayout,      // labels, names, capacities, capabilities: fixed for a layout epoch
    kAllocation,  // free and used amounts: change with every placement
    kRequest,     // the driver attribute: depends on the request too
  };
  size_t test_count() const { return tests_.size(); }
  Dependence dependence(size_t test) const;
  // For a test `attribute <op> number` or `number <op> attribute` (number attributes only):
  // the attribute, the constant and the operator with the attribute on the left.
  struct NumberComparison {
    NumberAttribute attribute;
    double constant;
    Compare compare;
  };
  std::optional<NumberComparison> number_comparison(size_t test) const;
  bool evaluate_test(size_t test, const NodeFacts& node) const { return evaluate(tests_[test], node); }

 private:
  friend class Parser;
  bool evaluate(const Test& test, const NodeFacts& node) const;

  std::vector<Test> tests_;
  std::vector<Instruction> code_;
  std::vector<std::string> label_keys_;
  bool labels_only_ = true;
};

// `a <op> b`: what a comparison test means once both sides are values of one type (the
// interpreter's texts and numbers, the constraints policy's column loops).
template <typename T>
bool ordered(const T& a, const T& b, Expression::Compare c) {
  using C = Expression::Compare;
  switch (c) {
    case C::kEq:
      return a == b;
    case C::kNe:
      return a != b;
    case C::kLt:
      return a < b;
    case C::kLe:
      return a <= b;
    case C::kGt:
      return a > b;
    case C::kGe:
      return a >= b;
  }
  return false;
}

}  // namespace novacron::policy::constraints
