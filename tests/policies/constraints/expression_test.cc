// The placement constraint language: evaluation against nodes (labels, attributes, missing
// labels as SQL NULL, numbers in labels, lists, capabilities, precedence) and parse errors
// with their columns and messages (docs/design/scheduler.md 3.4).
#include "expression.h"

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <variant>

namespace novacron::policy::constraints {
namespace {

class TestNode : public NodeFacts {
 public:
  std::map<std::string, std::string, std::less<>> labels;
  std::map<NumberAttribute, double> numbers;
  std::string name = "node-a", driver = "kvm";
  std::vector<std::string> capabilities;

  std::optional<std::string_view> label(std::string_view key) const override {
    const auto it = labels.find(key);
    if (it == labels.end()) return std::nullopt;
    return std::string_view(it->second);
  }
  double number(NumberAttribute a) const override {
    const auto it = numbers.find(a);
    return it == numbers.end() ? 0 : it->second;
  }
  std::string_view text(TextAttribute a) const override { return a == TextAttribute::kName ? name : driver; }
  bool has_capability(std::string_view c) const override {
    for (const auto& x : capabilities) {
      if (x == c) return true;
    }
    return false;
  }
};

Expression compiled(std::string_view text) {
  auto parsed = Expression::parse(text);
  if (auto* e = std::get_if<ParseError>(&parsed)) {
    ADD_FAILURE() << text << ": " << e->text();
    return std::get<Expression>(Expression::parse("false"));
  }
  return std::move(std::get<Expression>(parsed));
}

bool matches(std::string_view text, const NodeFacts& node) { return compiled(text).matches(node); }

ParseError error_of(std::string_view text) {
  auto parsed = Expression::parse(text);
  if (!std::holds_alternative<ParseError>(parsed)) {
    ADD_FAILURE() << text << " parsed";
    return {};
  }
  return std::get<ParseError>(parsed);
}

TestNode eu_node() {
  TestNode n;
  n.labels = {{"zone", "eu-1"}, {"rack", "r2"}, {"gen", "7"}, {"topology.kubernetes.io/zone", "eu-1a"}};
  n.numbers = {{NumberAttribute::kMemFreeMib, 8192}, {NumberAttribute::kVcpus, 32}, {NumberAttribute::kCpuFree, 12.5}};
  n.capabilities = {"live_migration"};
  return n;
}

TEST(ConstraintExpressionTest, TheIssuesExample) {
  const auto expr = compiled(R"(zone == "eu-1" && !(rack in ["r3", "r4"]) && mem_free_mib > 4096)");
  TestNode n = eu_node();
  EXPECT_TRUE(expr.matches(n));
  n.labels["rack"] = "r3";
  EXPECT_FALSE(expr.matches(n));
  n.labels["rack"] = "r2";
  n.numbers[NumberAttribute::kMemFreeMib] = 4096;  // exactly at the boundary: not greater
  EXPECT_FALSE(expr.matches(n));
  EXPECT_FALSE(expr.labels_only());
  EXPECT_EQ(expr.label_keys(), (std::vector<std::string>{"rack", "zone"}));
}

TEST(ConstraintExpressionTest, MissingLabelsCompareFalseEvenWithNotEqual) {
  const TestNode n = eu_node();
  EXPECT_FALSE(matches(R"(region == "x")", n));
  EXPECT_FALSE(matches(R"(region != "x")", n));
  EXPECT_TRUE(matches(R"(!(region == "x"))", n));
  EXPECT_FALSE(matches(R"(region in ["x"])", n));
  EXPECT_FALSE(matches(R"(region not in ["x"])", n));
  EXPECT_FALSE(matches("has(region)", n));
  EXPECT_TRUE(matches("has(zone)", n));
  EXPECT_TRUE(matches(R"(has(label("topology.kubernetes.io/zone")))", n));
}

TEST(ConstraintExpressionTest, LabelsComparedWithNumbersAreReadAsNumbers) {
  TestNode n = eu_node();
  EXPECT_TRUE(matches("gen >= 7", n));
  EXPECT_TRUE(matches("gen < 10", n));  // as text, "7" < "10" would be false
  EXPECT_TRUE(matches("gen in [6, 7]", n));
  n.labels["gen"] = "seven";
  EXPECT_FALSE(matches("gen >= 7", n));
  EXPECT_FALSE(matches("gen != 7", n));  // not a number: the comparison is false
}

TEST(ConstraintExpressionTest, AttributesCapabilitiesAndPrecedence) {
  const TestNode n = eu_node();
  EXPECT_TRUE(matches(R"(name == "node-a" && driver == "kvm")", n));
  EXPECT_TRUE(matches("cpu_free > 12 && cpu_free < 13", n));
  EXPECT_TRUE(matches(R"(has_capability("live_migration"))", n));
  EXPECT_FALSE(matches(R"(has_capability("gpu"))", n));
  // && binds tighter than ||; ! applies to the test after it.
  EXPECT_TRUE(matches(R"(zone == "x" && rack == "r2" || gen == 7)", n));
  EXPECT_FALSE(matches(R"(zone == "x" && (rack == "r2" || gen == 7))", n));
  EXPECT_FALSE(matches(R"(!zone == "eu-1")", n));
  EXPECT_TRUE(matches(R"(zone in [])", n) == false);
  EXPECT_TRUE(matches(R"(label("topology.kubernetes.io/zone") == "eu-1a")", n));
  EXPECT_TRUE(matches(R"(zone == "eu-\"1\"" || true)", n));
  EXPECT_TRUE(compiled(R"(zone == "a" || has(rack))").labels_only());
}

TEST(ConstraintExpressionTest, ParseErrorsNameTheColumnAndWhatWasExpected) {
  struct Case {
    const char* input;
    size_t column;
    const char* message;
  };
  const Case cases[] = {
      {R"(zone = "eu-1")", 6, "unknown operator '=' (did you mean '=='?)"},
      {R"(rack in ["r3", "r4")", 20, "expected ',' or ']' in the list, found end of expression"},
      {R"(zone == "eu-1)", 9, "unterminated string (started here)"},
      {R"(zone == && x)", 9, "expected a value after '==', found '&&'"},
      {R"(mem_free_mib > "big")", 16, "mem_free_mib is a number; it cannot be compared with a string"},
      {R"((zone == "a")", 13, "expected ')' to close the '(' at column 1, found end of expression"},
      {R"(zone == "a" & rack == "b")", 13, "unknown operator '&' (did you mean '&&'?)"},
      {"", 1, "expected a test, found end of expression"},
      {"zone", 5, "expected a comparison (==, !=, <, <=, >, >=) or 'in' after 'zone', found end of expression"},
      {R"(name > 5)", 8, "name is text; it cannot be compared with a number"},
      {R"(zone == "a" rack)", 13, "expected '&&', '||' or the end of the expression, found 'rack'"},
      {R"(zone in ["a", zone])", 15, "expected a string or a number in the list, found 'zone'"},
      {R"(zone == "ü" && x # 1)", 18, "unexpected character '#'"},  // columns count characters, not bytes
  };
  for (const Case& c : cases) {
    const ParseError e = error_of(c.input);
    EXPECT_EQ(e.column, c.column) << c.input << " -> " << e.text();
    EXPECT_EQ(e.message, c.message) << c.input;
  }
  EXPECT_EQ(error_of("zone = 1").text(), "column 6: unknown operator '=' (did you mean '=='?)");
}

TEST(ConstraintExpressionTest, LimitsAreErrorsNotCrashes) {
  const std::string deep = std::string(100, '(') + "true" + std::string(100, ')');
  EXPECT_EQ(error_of(deep).message, "nesting deeper than 64");
  const std::string nots = std::string(100, '!') + "true";
  EXPECT_EQ(error_of(nots).column, 65u);
  std::string list = "zone in [";
  for (int i = 0; i < 300; ++i) list += (i ? ", " : "") + std::to_string(i);
  list += "]";
  EXPECT_EQ(error_of(list).message, "a list holds at most 256 values");
  const std::string long_text(5000, 'a');
  EXPECT_EQ(error_of(long_text).column, 4097u);
  // At the limit, it still parses.
  const std::string nested = std::string(64, '(') + "true" + std::string(64, ')');
  EXPECT_TRUE(matches(nested, eu_node()));
}

}  // namespace
}  // namespace novacron::policy::constraints
