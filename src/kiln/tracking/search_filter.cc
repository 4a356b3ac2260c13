#include "kiln/tracking/search_filter.h"

#include <cctype>
#include <charconv>
#include <cmath>

namespace kiln::tracking::filter {
namespace {

bool IsBareChar(char c) {
  unsigned char u = static_cast<unsigned char>(c);
  return std::isalnum(u) || c == '_' || c == '-' || c == '/' || c == ':' || u >= 0x80;
}
bool IsOperatorChar(char c) { return c == '=' || c == '!' || c == '<' || c == '>' || c == '~'; }
bool IsQuote(char c) { return c == '\'' || c == '"' || c == '`'; }

std::string Upper(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

// A cursor over one filter or order_by string; errors quote the whole input and the position.
class Scanner {
 public:
  Scanner(std::string_view input, std::string_view what) : input_(input), what_(what) {}

  bool AtEnd() const { return pos_ >= input_.size(); }
  char Peek() const { return AtEnd() ? '\0' : input_[pos_]; }
  size_t pos() const { return pos_; }
  std::string_view Slice(size_t from) const { return input_.substr(from, pos_ - from); }
  std::string_view Rest() const { return input_.substr(pos_); }

  void SkipSpace() {
    while (!AtEnd() && std::isspace(static_cast<unsigned char>(input_[pos_]))) ++pos_;
  }

  Status Error(std::string_view problem) const { return ErrorAt(pos_, problem); }
  Status ErrorAt(size_t at, std::string_view problem) const {
    return InvalidArgument("Invalid " + std::string(what_) + " '" + std::string(input_) +
                           "': " + std::string(problem) + " at position " + std::to_string(at));
  }

  // A maximal run of bare characters (optionally also '.'); empty if none.
  std::string_view ReadBare(bool allow_dots) {
    size_t start = pos_;
    while (!AtEnd() && (IsBareChar(input_[pos_]) || (allow_dots && input_[pos_] == '.'))) ++pos_;
    return input_.substr(start, pos_ - start);
  }

  // Reads a quoted run starting at the current quote character. Inside, the quote doubled or
  // preceded by a backslash stands for itself, and "\\" for one backslash; all else is literal.
  Result<std::string> ReadQuoted() {
    size_t start = pos_;
    char quote = input_[pos_++];
    std::string out;
    while (true) {
      if (AtEnd()) return ErrorAt(start, "unterminated quoted text");
      char c = input_[pos_++];
      if (c == quote) {
        if (Peek() == quote) {
          out.push_back(quote);
          ++pos_;
          continue;
        }
        return out;
      }
      if (c == '\\' && (Peek() == quote || Peek() == '\\')) {
        out.push_back(input_[pos_++]);
        continue;
      }
      out.push_back(c);
    }
  }

  Result<Identifier> ReadIdentifier() {
    size_t start = pos_;
    Identifier identifier;
    std::string first;
    bool first_quoted = IsQuote(Peek());
    if (first_quoted) {
      KILN_ASSIGN_OR_RETURN(first, ReadQuoted());
    } else {
      first = std::string(ReadBare(/*allow_dots=*/false));
      if (first.empty()) return Error("expected an identifier such as metrics.<key>");
    }
    if (Peek() == '.') {
      ++pos_;
      std::string key;
      if (IsQuote(Peek())) {
        KILN_ASSIGN_OR_RETURN(key, ReadQuoted());
      } else {
        key = std::string(ReadBare(/*allow_dots=*/true));
      }
      if (key.empty()) return Error("expected a key after '" + first + ".'");
      identifier.entity = std::move(first);
      identifier.key = std::move(key);
    } else {
      identifier.key = std::move(first);
    }
    identifier.text = std::string(Slice(start));
    return identifier;
  }

  Result<std::string> ReadComparator() {
    size_t start = pos_;
    if (IsOperatorChar(Peek())) {
      while (IsOperatorChar(Peek())) ++pos_;
      return std::string(Slice(start));
    }
    std::string word = Upper(ReadBare(/*allow_dots=*/false));
    if (word.empty()) return Error("expected a comparator");
    if (word == "NOT") {
      SkipSpace();
      size_t in_at = pos_;
      if (Upper(ReadBare(false)) != "IN") return ErrorAt(in_at, "expected IN after NOT");
      return std::string("NOT IN");
    }
    return word;
  }

  Result<Value> ReadValue() {
    size_t start = pos_;
    Value value;
    char c = Peek();
    if (c == '\'' || c == '"') {
      value.kind = Value::Kind::kString;
      KILN_ASSIGN_OR_RETURN(value.string, ReadQuoted());
    } else if (c == '(') {
      value.kind = Value::Kind::kList;
      ++pos_;
      SkipSpace();
      if (Peek() == ')') {
        return ErrorAt(start,
                       "while parsing a list, expected a non-empty list of string values, but "
                       "got an empty list");
      }
      while (true) {
        SkipSpace();
        if (Peek() != '\'' && Peek() != '"') {
          return Error("while parsing a list, expected a quoted string value");
        }
        KILN_ASSIGN_OR_RETURN(std::string item, ReadQuoted());
        value.list.push_back(std::move(item));
        if (value.list.size() > kMaxListValues) {
          return ErrorAt(start, "a list may hold at most " + std::to_string(kMaxListValues) +
                                    " values");
        }
        SkipSpace();
        if (Peek() == ',') {
          ++pos_;
          continue;
        }
        if (Peek() == ')') {
          ++pos_;
          break;
        }
        return Error("while parsing a list, expected ',' or ')'");
      }
    } else if (std::isdigit(static_cast<unsigned char>(c)) || c == '-' || c == '+' || c == '.') {
      value.kind = Value::Kind::kNumber;
      KILN_RETURN_IF_ERROR(ReadNumber(&value));
    } else if (IsBareChar(c)) {
      value.kind = Value::Kind::kWord;
      ReadBare(/*allow_dots=*/true);
    } else if (AtEnd()) {
      return Error("expected a value");
    } else {
      return Error(std::string("expected a value, found '") + c + "'");
    }
    value.text = std::string(Slice(start));
    return value;
  }

 private:
  Status ReadNumber(Value* value) {
    size_t start = pos_;
    auto digits = [&] {
      size_t from = pos_;
      while (std::isdigit(static_cast<unsigned char>(Peek()))) ++pos_;
      return pos_ > from;
    };
    if (Peek() == '+' || Peek() == '-') ++pos_;
    bool integral = true;
    bool whole = digits();
    bool fraction = false;
    if (Peek() == '.') {
      integral = false;
      ++pos_;
      fraction = digits();
    }
    if (!whole && !fraction) return ErrorAt(start, "malformed number");
    if (Peek() == 'e' || Peek() == 'E') {
      integral = false;
      ++pos_;
      if (Peek() == '+' || Peek() == '-') ++pos_;
      if (!digits()) return ErrorAt(start, "malformed number");
    }
    if (IsBareChar(Peek()) || Peek() == '.') return ErrorAt(start, "malformed number");
    std::string_view text = Slice(start);
    // from_chars rejects a leading '+'.
    std::string_view unsigned_text = text.front() == '+' ? text.substr(1) : text;
    const char* first = unsigned_text.data();
    const char* last = first + unsigned_text.size();
    auto [ptr, ec] = std::from_chars(first, last, value->number);
    if (ec == std::errc::result_out_of_range) {
      // Overflow to +-infinity, underflow to zero, as Python's float() does.
      bool negative = text.front() == '-';
      size_t exponent = unsigned_text.find_first_of("eE");
      bool tiny = exponent != std::string_view::npos && exponent + 1 < unsigned_text.size() &&
                  unsigned_text[exponent + 1] == '-';
      value->number = tiny ? 0.0 : (negative ? -HUGE_VAL : HUGE_VAL);
    } else if (ec != std::errc() || ptr != last) {
      return ErrorAt(start, "malformed number");
    }
    if (integral) {
      int64_t integer = 0;
      auto [iptr, iec] = std::from_chars(first, last, integer);
      if (iec == std::errc() && iptr == last) value->integer = integer;
    }
    return Status::Ok();
  }

  std::string_view input_;
  std::string_view what_;
  size_t pos_ = 0;
};

}  // namespace

Result<std::vector<Clause>> ParseFilter(std::string_view filter) {
  Scanner scanner(filter, "filter string");
  std::vector<Clause> clauses;
  scanner.SkipSpace();
  if (scanner.AtEnd()) return clauses;
  while (true) {
    if (clauses.size() >= kMaxClauses) {
      return scanner.Error("a filter may hold at most " + std::to_string(kMaxClauses) +
                           " clauses");
    }
    Clause clause;
    KILN_ASSIGN_OR_RETURN(clause.identifier, scanner.ReadIdentifier());
    scanner.SkipSpace();
    KILN_ASSIGN_OR_RETURN(clause.comparator, scanner.ReadComparator());
    scanner.SkipSpace();
    KILN_ASSIGN_OR_RETURN(clause.value, scanner.ReadValue());
    clauses.push_back(std::move(clause));
    scanner.SkipSpace();
    if (scanner.AtEnd()) return clauses;
    size_t word_at = scanner.pos();
    std::string word = Upper(scanner.ReadBare(/*allow_dots=*/false));
    if (word == "OR") {
      return scanner.ErrorAt(word_at, "OR is not supported; clauses can only be joined by AND");
    }
    if (word != "AND") {
      return scanner.ErrorAt(word_at, "expected AND before '" +
                                          std::string(filter.substr(word_at)) + "'");
    }
    scanner.SkipSpace();
    if (scanner.AtEnd()) return scanner.Error("expected a clause after AND");
  }
}

Result<OrderBy> ParseOrderBy(std::string_view order_by) {
  Scanner scanner(order_by, "order_by clause");
  OrderBy result;
  scanner.SkipSpace();
  if (scanner.AtEnd()) return scanner.Error("expected an identifier");
  KILN_ASSIGN_OR_RETURN(result.identifier, scanner.ReadIdentifier());
  scanner.SkipSpace();
  if (scanner.AtEnd()) return result;
  size_t word_at = scanner.pos();
  std::string direction = Upper(scanner.ReadBare(/*allow_dots=*/false));
  if (direction == "ASC") {
    result.ascending = true;
  } else if (direction == "DESC") {
    result.ascending = false;
  } else {
    return scanner.ErrorAt(word_at, "expected ASC or DESC after the identifier");
  }
  scanner.SkipSpace();
  if (!scanner.AtEnd()) return scanner.Error("unexpected text after " + direction);
  return result;
}

}  // namespace kiln::tracking::filter
