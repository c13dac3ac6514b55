// libFuzzer target for the placement constraint language (policies/constraints): any text
// either parses or gives an error with a column inside the text (or just past its end);
// a parsed expression evaluates on a node without crashing, and parsing is deterministic.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <variant>

#include "expression.h"

namespace {

using novacron::policy::constraints::Expression;
using novacron::policy::constraints::NodeFacts;
using novacron::policy::constraints::NumberAttribute;
using novacron::policy::constraints::ParseError;
using novacron::policy::constraints::TextAttribute;

class FixedNode : public NodeFacts {
 public:
  std::optional<std::string_view> label(std::string_view key) const override {
    if (key == "zone") return "eu-1";
    if (key == "rack") return "r3";
    if (key == "gen") return "7";
    return std::nullopt;
  }
  double number(NumberAttribute a) const override { return static_cast<double>(a) * 1024.0; }
  std::string_view text(TextAttribute a) const override { return a == TextAttribute::kName ? "node-a" : "kvm"; }
  bool has_capability(std::string_view c) const override { return c == "live_migration"; }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const auto parsed = Expression::parse(text);
  if (const auto* error = std::get_if<ParseError>(&parsed)) {
    if (error->column == 0 || error->column > size + 1 || error->message.empty()) std::abort();
    const auto again = Expression::parse(text);
    if (!std::holds_alternative<ParseError>(again) || std::get<ParseError>(again).column != error->column) std::abort();
    return 0;
  }
  const FixedNode node;
  (void)std::get<Expression>(parsed).matches(node);
  return 0;
}
