#include "expression.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <utility>

namespace novacron::policy::constraints {

std::string ParseError::text() const { return "column " + std::to_string(column) + ": " + message; }

namespace {

struct Token {
  enum class Kind : std::uint8_t {
    kIdent,
    kString,
    kNumber,
    kAnd,
    kOr,
    kNot,
    kLParen,
    kRParen,
    kLBracket,
    kRBracket,
    kComma,
    kCompare,
    kEnd,
  };
  Kind kind = Kind::kEnd;
  size_t offset = 0;  // byte offset in the text
  std::string text;   // identifier, decoded string, the number's or operator's spelling
  double number = 0;
  Expression::Compare compare = Expression::Compare::kEq;
};

bool ident_start(char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_'; }
bool ident_char(char c) { return ident_start(c) || (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '/'; }
bool digit(char c) { return c >= '0' && c <= '9'; }

struct AttributeName {
  std::string_view name;
  bool number;
  NumberAttribute number_attribute;
  TextAttribute text_attribute;
};
constexpr std::array<AttributeName, 10> kAttributes = {{
    {"name", false, NumberAttribute::kVcpus, TextAttribute::kName},
    {"driver", false, NumberAttribute::kVcpus, TextAttribute::kDriver},
    {"vcpus", true, NumberAttribute::kVcpus, TextAttribute::kName},
    {"memory_mib", true, NumberAttribute::kMemoryMib, TextAttribute::kName},
    {"disk_gib", true, NumberAttribute::kDiskGib, TextAttribute::kName},
    {"cpu_free", true, NumberAttribute::kCpuFree, TextAttribute::kName},
    {"mem_free_mib", true, NumberAttribute::kMemFreeMib, TextAttribute::kName},
    {"disk_free_gib", true, NumberAttribute::kDiskFreeGib, TextAttribute::kName},
    {"cpu_used", true, NumberAttribute::kCpuUsed, TextAttribute::kName},
    {"mem_used_mib", true, NumberAttribute::kMemUsedMib, TextAttribute::kName},
}};

const AttributeName* attribute_named(std::string_view name) {
  for (const auto& a : kAttributes) {
    if (a.name == name) return &a;
  }
  return nullptr;
}

}  // namespace

// Recursive descent straight into postfix code. Every error carries the column of the token
// it is about; the first error ends the parse.
class Parser {
 public:
  explicit Parser(std::string_view text) : text_(text) {}

  std::variant<Expression, ParseError> run() {
    if (text_.size() > kMaxExpressionLength) {
      return ParseError{column_of(kMaxExpressionLength),
                        "the expression is longer than " + std::to_string(kMaxExpressionLength) + " characters"};
    }
    if (!lex()) return error_;
    if (!parse_or()) return error_;
    if (peek().kind != Token::Kind::kEnd) {
      fail(peek(), "expected '&&', '||' or the end of the expression, found " + describe(peek()));
      return error_;
    }
    std::sort(out_.label_keys_.begin(), out_.label_keys_.end());
    out_.label_keys_.erase(std::unique(out_.label_keys_.begin(), out_.label_keys_.end()), out_.label_keys_.end());
    return std::move(out_);
  }

 private:
  // --- lexer -------------------------------------------------------------------------------

  bool lex() {
    size_t i = 0;
    while (true) {
      while (i < text_.size() && (text_[i] == ' ' || text_[i] == '\t' || text_[i] == '\n' || text_[i] == '\r')) ++i;
      Token t;
      t.offset = i;
      if (i == text_.size()) {
        tokens_.push_back(t);
        return true;
      }
      const char c = text_[i];
      const char next = i + 1 < text_.size() ? text_[i + 1] : '\0';
      if (ident_start(c)) {
        size_t end = i + 1;
        while (end < text_.size() && ident_char(text_[end])) ++end;
        t.kind = Token::Kind::kIdent;
        t.text = std::string(text_.substr(i, end - i));
        i = end;
      } else if (digit(c) || (c == '-' && digit(next))) {
        if (!lex_number(i, t)) return false;
      } else if (c == '"') {
        if (!lex_string(i, t)) return false;
      } else if (c == '&' || c == '|') {
        if (next != c) {
          return fail_at(i, std::string("unknown operator '") + c + "' (did you mean '" + c + c + "'?)");
        }
        t.kind = c == '&' ? Token::Kind::kAnd : Token::Kind::kOr;
        t.text = std::string(2, c);
        i += 2;
      } else if (c == '=' || c == '!' || c == '<' || c == '>') {
        lex_operator(i, t);
        if (t.kind == Token::Kind::kEnd) {
          return fail_at(i, "unknown operator '=' (did you mean '=='?)");
        }
      } else if (c == '(' || c == ')' || c == '[' || c == ']' || c == ',') {
        t.kind = c == '('   ? Token::Kind::kLParen
                 : c == ')' ? Token::Kind::kRParen
                 : c == '[' ? Token::Kind::kLBracket
                 : c == ']' ? Token::Kind::kRBracket
                            : Token::Kind::kComma;
        t.text = std::string(1, c);
        ++i;
      } else {
        return fail_at(i, "unexpected character '" + std::string(text_.substr(i, utf8_length(i))) + "'");
      }
      tokens_.push_back(std::move(t));
    }
  }

  size_t utf8_length(size_t i) const {
    size_t n = 1;
    while (i + n < text_.size() && (static_cast<unsigned char>(text_[i + n]) & 0xC0) == 0x80) ++n;
    return n;
  }

  bool lex_number(size_t& i, Token& t) {
    size_t end = i + (text_[i] == '-' ? 1 : 0);
    while (end < text_.size() && digit(text_[end])) ++end;
    if (end < text_.size() && text_[end] == '.') {
      if (end + 1 >= text_.size() || !digit(text_[end + 1])) return fail_at(end, "expected digits after '.'");
      ++end;
      while (end < text_.size() && digit(text_[end])) ++end;
    }
    if (end < text_.size() && ident_start(text_[end])) {
      return fail_at(end, "unexpected '" + std::string(1, text_[end]) + "' after a number");
    }
    t.kind = Token::Kind::kNumber;
    t.text = std::string(text_.substr(i, end - i));
    t.number = std::strtod(t.text.c_str(), nullptr);
    i = end;
    return true;
  }

  bool lex_string(size_t& i, Token& t) {
    const size_t start = i;
    std::string value;
    size_t j = i + 1;
    while (true) {
      if (j >= text_.size()) return fail_at(start, "unterminated string (started here)");
      const char c = text_[j];
      if (c == '"') break;
      if (c == '\\') {
        if (j + 1 >= text_.size()) return fail_at(start, "unterminated string (started here)");
        const char e = text_[j + 1];
        if (e != '"' && e != '\\')
          return fail_at(j, "unknown escape '\\" + std::string(1, e) + "' (only \\\" and \\\\)");
        value.push_back(e);
        j += 2;
        continue;
      }
      value.push_back(c);
      ++j;
    }
    t.kind = Token::Kind::kString;
    t.text = std::move(value);
    i = j + 1;
    return true;
  }

  void lex_operator(size_t& i, Token& t) {
    const char c = text_[i];
    const bool eq_next = i + 1 < text_.size() && text_[i + 1] == '=';
    using C = Expression::Compare;
    if (c == '=') {
      if (!eq_next) return;  // a lone '=': the caller reports it
      t.kind = Token::Kind::kCompare;
      t.compare = C::kEq;
    } else if (c == '!') {
      t.kind = eq_next ? Token::Kind::kCompare : Token::Kind::kNot;
      t.compare = C::kNe;
    } else {
      t.kind = Token::Kind::kCompare;
      t.compare = c == '<' ? (eq_next ? C::kLe : C::kLt) : (eq_next ? C::kGe : C::kGt);
    }
    const size_t len = t.kind == Token::Kind::kNot ? 1 : (eq_next ? 2 : 1);
    t.text = std::string(text_.substr(i, len));
    i += len;
  }

  // --- parser ------------------------------------------------------------------------------

  const Token& peek() const { return tokens_[pos_]; }
  const Token& take() { return tokens_[pos_ < tokens_.size() - 1 ? pos_++ : pos_]; }
  bool at_ident(std::string_view word) const { return peek().kind == Token::Kind::kIdent && peek().text == word; }
  bool next_is(Token::Kind kind) const { return pos_ + 1 < tokens_.size() && tokens_[pos_ + 1].kind == kind; }

  void emit(Expression::Instruction::Op op, std::uint32_t test = 0) { out_.code_.push_back({op, test}); }

  bool parse_or() {
    if (!parse_and()) return false;
    while (peek().kind == Token::Kind::kOr) {
      take();
      if (!parse_and()) return false;
      emit(Expression::Instruction::Op::kOr);
    }
    return true;
  }

  bool parse_and() {
    if (!parse_unary()) return false;
    while (peek().kind == Token::Kind::kAnd) {
      take();
      if (!parse_unary()) return false;
      emit(Expression::Instruction::Op::kAnd);
    }
    return true;
  }

  bool parse_unary() {
    if (peek().kind == Token::Kind::kNot || peek().kind == Token::Kind::kLParen) {
      if (++depth_ > kMaxNesting) return fail(peek(), "nesting deeper than " + std::to_string(kMaxNesting));
      const Token open = take();
      bool ok = false;
      if (open.kind == Token::Kind::kNot) {
        ok = parse_unary();
        if (ok) emit(Expression::Instruction::Op::kNot);
      } else {
        ok = parse_or();
        if (ok && peek().kind != Token::Kind::kRParen) {
          return fail(peek(), "expected ')' to close the '(' at column " + std::to_string(column_of(open.offset)) +
                                  ", found " + describe(peek()));
        }
        if (ok) take();
      }
      --depth_;
      return ok;
    }
    return parse_test();
  }

  bool parse_test() {
    Expression::Test test;
    if (at_ident("true") || at_ident("false")) {
      test.kind = Expression::Test::Kind::kConstant;
      test.constant = take().text == "true";
    } else if (at_ident("has") && next_is(Token::Kind::kLParen)) {
      take();
      take();
      test.kind = Expression::Test::Kind::kHas;
      if (!parse_key(test.key, "has(")) return false;
      if (!expect(Token::Kind::kRParen, "')' after the label of has(")) return false;
      out_.label_keys_.push_back(test.key);
    } else if (at_ident("has_capability") && next_is(Token::Kind::kLParen)) {
      take();
      take();
      test.kind = Expression::Test::Kind::kHasCapability;
      if (peek().kind != Token::Kind::kString) {
        return fail(peek(), "expected a capability name in quotes, found " + describe(peek()));
      }
      test.key = take().text;
      if (!expect(Token::Kind::kRParen, "')' after the capability")) return false;
      out_.labels_only_ = false;
    } else {
      if (!parse_comparison(test)) return false;
    }
    emit(Expression::Instruction::Op::kTest, static_cast<std::uint32_t>(out_.tests_.size()));
    out_.tests_.push_back(std::move(test));
    return true;
  }

  bool parse_comparison(Expression::Test& test) {
    const Token lhs_token = peek();
    if (!parse_operand(test.lhs, "a test")) return false;
    const bool not_in =
        at_ident("not") && tokens_[pos_ + 1].kind == Token::Kind::kIdent && tokens_[pos_ + 1].text == "in";
    if (not_in || at_ident("in")) {
      if (not_in) take();
      take();
      test.kind = not_in ? Expression::Test::Kind::kNotIn : Expression::Test::Kind::kIn;
      return parse_list(test);
    }
    if (peek().kind != Token::Kind::kCompare) {
      return fail(peek(), "expected a comparison (==, !=, <, <=, >, >=) or 'in' after " + describe(lhs_token) +
                              ", found " + describe(peek()));
    }
    const Token op = take();
    test.kind = Expression::Test::Kind::kCompare;
    test.compare = op.compare;
    const Token rhs_token = peek();
    if (!parse_operand(test.rhs, "a value after '" + op.text + "'")) return false;
    return check_types(test.lhs, test.rhs, rhs_token);
  }

  bool parse_list(Expression::Test& test) {
    if (!expect(Token::Kind::kLBracket, "'[' to start the list")) return false;
    if (peek().kind == Token::Kind::kRBracket) {
      take();
      return true;
    }
    while (true) {
      const Token item_token = peek();
      if (item_token.kind != Token::Kind::kString && item_token.kind != Token::Kind::kNumber) {
        return fail(item_token, "expected a string or a number in the list, found " + describe(item_token));
      }
      if (test.list.size() == kMaxListItems) {
        return fail(item_token, "a list holds at most " + std::to_string(kMaxListItems) + " values");
      }
      Expression::Operand item;
      if (!parse_operand(item, "a list value")) return false;
      if (!check_types(test.lhs, item, item_token)) return false;
      test.list.push_back(std::move(item));
      if (peek().kind == Token::Kind::kComma) {
        take();
        continue;
      }
      if (peek().kind == Token::Kind::kRBracket) {
        take();
        return true;
      }
      return fail(peek(), "expected ',' or ']' in the list, found " + describe(peek()));
    }
  }

  bool parse_operand(Expression::Operand& out, const std::string& what) {
    const Token& t = peek();
    using K = Expression::OperandKind;
    switch (t.kind) {
      case Token::Kind::kString:
        out.kind = K::kString;
        out.text = take().text;
        return true;
      case Token::Kind::kNumber:
        out.kind = K::kNumber;
        out.number = take().number;
        return true;
      case Token::Kind::kIdent: {
        if (t.text == "label" && next_is(Token::Kind::kLParen)) {
          take();
          take();
          out.kind = K::kLabel;
          if (peek().kind != Token::Kind::kString) {
            return fail(peek(), "expected the label's name in quotes, found " + describe(peek()));
          }
          out.text = take().text;
          out_.label_keys_.push_back(out.text);
          return expect(Token::Kind::kRParen, "')' after the label's name");
        }
        if (const auto* a = attribute_named(t.text)) {
          out.kind = a->number ? K::kNumberAttribute : K::kTextAttribute;
          out.number_attribute = a->number_attribute;
          out.text_attribute = a->text_attribute;
          out.text = take().text;
          out_.labels_only_ = false;
          return true;
        }
        out.kind = K::kLabel;
        out.text = take().text;
        out_.label_keys_.push_back(out.text);
        return true;
      }
      default:
        return fail(t, "expected " + what + ", found " + describe(t));
    }
  }

  bool parse_key(std::string& key, const char* where) {
    if (at_ident("label") && next_is(Token::Kind::kLParen)) {
      take();
      take();
      if (peek().kind != Token::Kind::kString) {
        return fail(peek(), "expected the label's name in quotes, found " + describe(peek()));
      }
      key = take().text;
      return expect(Token::Kind::kRParen, "')' after the label's name");
    }
    if (peek().kind != Token::Kind::kIdent) {
      return fail(peek(), std::string("expected a label name in ") + where + "), found " + describe(peek()));
    }
    key = take().text;
    return true;
  }

  // Literals must fit what they are compared with: numbers with numbers, text with text.
  bool check_types(const Expression::Operand& lhs, const Expression::Operand& rhs, const Token& at) {
    using K = Expression::OperandKind;
    const auto number_like = [](K k) { return k == K::kNumberAttribute || k == K::kNumber; };
    const auto text_like = [](K k) { return k == K::kTextAttribute || k == K::kString; };
    const Expression::Operand* named = lhs.kind == K::kNumberAttribute || lhs.kind == K::kTextAttribute   ? &lhs
                                       : rhs.kind == K::kNumberAttribute || rhs.kind == K::kTextAttribute ? &rhs
                                                                                                          : nullptr;
    if ((number_like(lhs.kind) && text_like(rhs.kind)) || (text_like(lhs.kind) && number_like(rhs.kind))) {
      if (named != nullptr) {
        const bool number = named->kind == K::kNumberAttribute;
        return fail(at, named->text + (number ? " is a number; it cannot be compared with a string"
                                              : " is text; it cannot be compared with a number"));
      }
      return fail(at, "a string cannot be compared with a number");
    }
    return true;
  }

  bool expect(Token::Kind kind, const std::string& what) {
    if (peek().kind != kind) return fail(peek(), "expected " + what + ", found " + describe(peek()));
    take();
    return true;
  }

  std::string describe(const Token& t) const {
    switch (t.kind) {
      case Token::Kind::kEnd:
        return "end of expression";
      case Token::Kind::kIdent:
        return "'" + t.text + "'";
      case Token::Kind::kString:
        return "the string \"" + t.text + "\"";
      case Token::Kind::kNumber:
        return "the number " + t.text;
      default:
        return "'" + t.text + "'";
    }
  }

  size_t column_of(size_t offset) const {
    size_t column = 1;
    for (size_t i = 0; i < offset && i < text_.size(); ++i) {
      if ((static_cast<unsigned char>(text_[i]) & 0xC0) != 0x80) ++column;
    }
    return column;
  }

  bool fail_at(size_t offset, std::string message) {
    error_ = ParseError{column_of(offset), std::move(message)};
    return false;
  }
  bool fail(const Token& t, std::string message) { return fail_at(t.offset, std::move(message)); }

  std::string_view text_;
  std::vector<Token> tokens_;
  size_t pos_ = 0;
  int depth_ = 0;
  Expression out_;
  ParseError error_;
};

std::variant<Expression, ParseError> Expression::parse(std::string_view text) {
  Parser parser(text);
  return parser.run();
}

namespace {

struct Value {
  bool present = false;
  bool number = false;  // a number attribute or literal
  double n = 0;
  std::string_view text;
};

Value value_of(const Expression::Operand& o, const NodeFacts& node) {
  using K = Expression::OperandKind;
  switch (o.kind) {
    case K::kLabel: {
      const auto v = node.label(o.text);
      if (!v) return {};
      return Value{true, false, 0, *v};
    }
    case K::kNumberAttribute:
      return Value{true, true, node.number(o.number_attribute), {}};
    case K::kTextAttribute:
      return Value{true, false, 0, node.text(o.text_attribute)};
    case K::kString:
      return Value{true, false, 0, o.text};
    case K::kNumber:
      return Value{true, true, o.number, {}};
  }
  return {};
}

// A label's text read as a number: the whole text must be one.
std::optional<double> as_number(const Value& v) {
  if (v.number) return v.n;
  double out = 0;
  const char* begin = v.text.data();
  const char* end = begin + v.text.size();
  const auto [ptr, ec] = std::from_chars(begin, end, out);
  if (ec != std::errc() || ptr != end || !std::isfinite(out)) return std::nullopt;
  return out;
}

// Missing values compare false (even with !=); numbers compare as numbers when either side
// is one, else as text.
bool compare(const Value& a, const Value& b, Expression::Compare c) {
  if (!a.present || !b.present) return false;
  if (a.number || b.number) {
    const auto x = as_number(a);
    const auto y = as_number(b);
    return x && y && ordered(*x, *y, c);
  }
  return ordered(a.text, b.text, c);
}

}  // namespace

bool Expression::evaluate(const Test& test, const NodeFacts& node) const {
  switch (test.kind) {
    case Test::Kind::kConstant:
      return test.constant;
    case Test::Kind::kHas:
      return node.label(test.key).has_value();
    case Test::Kind::kHasCapability:
      return node.has_capability(test.key);
    case Test::Kind::kCompare:
      return compare(value_of(test.lhs, node), value_of(test.rhs, node), test.compare);
    case Test::Kind::kIn:
    case Test::Kind::kNotIn: {
      const Value v = value_of(test.lhs, node);
      if (!v.present) return false;
      const bool found = std::any_of(test.list.begin(), test.list.end(), [&](const Operand& item) {
        return compare(v, value_of(item, node), Compare::kEq);
      });
      return test.kind == Test::Kind::kIn ? found : !found;
    }
  }
  return false;
}

namespace {

bool reads_allocations(const Expression::Operand& o) {
  if (o.kind != Expression::OperandKind::kNumberAttribute) return false;
  switch (o.number_attribute) {
    case NumberAttribute::kVcpus:
    case NumberAttribute::kMemoryMib:
    case NumberAttribute::kDiskGib:
      return false;
    default:
      return true;
  }
}

bool reads_request(const Expression::Operand& o) {
  return o.kind == Expression::OperandKind::kTextAttribute && o.text_attribute == TextAttribute::kDriver;
}

}  // namespace

Expression::Dependence Expression::dependence(size_t index) const {
  const Test& t = tests_[index];
  bool allocation = reads_allocations(t.lhs) || reads_allocations(t.rhs);
  bool request = reads_request(t.lhs) || reads_request(t.rhs);
  for (const Operand& item : t.list) {
    allocation = allocation || reads_allocations(item);
    request = request || reads_request(item);
  }
  if (t.kind != Test::Kind::kCompare && t.kind != Test::Kind::kIn && t.kind != Test::Kind::kNotIn) {
    return Dependence::kLayout;  // constants, has(), has_capability()
  }
  return request ? Dependence::kRequest : allocation ? Dependence::kAllocation : Dependence::kLayout;
}

std::optional<Expression::NumberComparison> Expression::number_comparison(size_t index) const {
  const Test& t = tests_[index];
  if (t.kind != Test::Kind::kCompare) return std::nullopt;
  using K = OperandKind;
  using C = Compare;
  if (t.lhs.kind == K::kNumberAttribute && t.rhs.kind == K::kNumber) {
    return NumberComparison{t.lhs.number_attribute, t.rhs.number, t.compare};
  }
  if (t.lhs.kind == K::kNumber && t.rhs.kind == K::kNumberAttribute) {
    // number <op> attribute  ==  attribute <mirrored op> number
    constexpr C kMirror[] = {C::kEq, C::kNe, C::kGt, C::kGe, C::kLt, C::kLe};
    return NumberComparison{t.rhs.number_attribute, t.lhs.number, kMirror[static_cast<size_t>(t.compare)]};
  }
  return std::nullopt;
}

bool Expression::matches(const NodeFacts& node) const {
  // The stack is never deeper than the code is long: on the stack for any usual expression
  // (this runs once per node per placement; a heap allocation here doubled its cost).
  constexpr size_t kInline = 128;
  std::array<unsigned char, kInline> inline_stack;
  std::vector<unsigned char> heap_stack;
  unsigned char* stack = inline_stack.data();
  if (code_.size() > kInline) {
    heap_stack.resize(code_.size());
    stack = heap_stack.data();
  }
  size_t top = 0;  // elements on the stack
  for (const Instruction& in : code_) {
    switch (in.op) {
      case Instruction::Op::kTest:
        stack[top++] = evaluate(tests_[in.test], node) ? 1 : 0;
        break;
      case Instruction::Op::kNot:
        stack[top - 1] = stack[top - 1] != 0 ? 0 : 1;
        break;
      case Instruction::Op::kAnd:
      case Instruction::Op::kOr: {
        const bool b = stack[--top] != 0;
        const bool a = stack[top - 1] != 0;
        stack[top - 1] = (in.op == Instruction::Op::kAnd ? (a && b) : (a || b)) ? 1 : 0;
        break;
      }
    }
  }
  return top != 0 && stack[top - 1] != 0;
}

}  // namespace novacron::policy::constraints
