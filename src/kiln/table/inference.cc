#include "kiln/table/inference.h"

#include <fast_float/fast_float.h>

#include <charconv>
#include <cmath>
#include <cstddef>
#include <limits>
#include <unordered_set>

#include "kiln/table/number_text.h"
#include "kiln/table/text_util.h"

namespace kiln::table {
namespace {

bool IsBool(std::string_view text) {
  return text == "true" || text == "false" || text == "True" || text == "False" || text == "TRUE" ||
         text == "FALSE";
}

// Whole-text parses; no allocation, no locale.
bool ParseInt64Text(std::string_view text, int64_t* value) {
  if (text.size() > 1 && text[0] == '+' && text[1] != '-') text.remove_prefix(1);
  if (text.empty()) return false;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, *value);
  return ec == std::errc() && ptr == end;
}

// True if `text` would pass ParseInt64Text: up to 18 digits always fit, so only longer text
// needs the conversion.
bool IsInt64Text(std::string_view text) {
  const char* p = text.data();
  const char* end = p + text.size();
  if (p != end && (*p == '-' || *p == '+')) ++p;
  if (p == end || end - p > 18) {
    int64_t value;
    return ParseInt64Text(text, &value);
  }
  for (; p != end; ++p) {
    if (static_cast<unsigned>(*p - '0') >= 10) return false;
  }
  return true;
}

// ParseInt64Text for the common case of at most 18 digits (which always fit); false for anything
// else, which the caller hands to ParseInt64Text.
inline bool ParseShortInt64Text(std::string_view text, int64_t* value) {
  return internal::ParseInt64Words(text, value) || internal::ParseInt64Serial(text, value);
}

// The value of a decimal like "-12.375" when a correctly rounded parse is one IEEE division
// (Clinger's fast path: the digits as an integer below 2^53, divided by an exact power of ten),
// so it equals ParseFloat64Text's; false for anything else (exponents, '+', long or special
// values), which the caller checks and parses the general way. Everything it accepts passes
// IsFloat64Text. The word parse and the serial one find the same integer and power.
inline bool ParseShortDecimal(std::string_view text, double* value) {
  uint64_t digits;
  int fraction_digits;
  bool negative;
  if (!internal::ParseDecimalWords(text, &digits, &fraction_digits, &negative) &&
      !internal::ParseDecimalSerial(text, &digits, &fraction_digits, &negative)) {
    return false;
  }
  const double result = static_cast<double>(digits) / internal::kExactPowersOfTen[fraction_digits];
  *value = negative ? -result : result;
  return true;
}

bool ParseFloat64Text(std::string_view text, double* value) {
  // fast_float follows std::from_chars and takes no '+'; a leading '+' is accepted here as for
  // int64 (a widened int64 column may hold "+5").
  if (text.size() > 1 && text[0] == '+' && text[1] != '-' && text[1] != '+') text.remove_prefix(1);
  if (text.empty()) return false;
  const char* end = text.data() + text.size();
  auto result = fast_float::from_chars(text.data(), end, *value);
  // Out of range (1e999) is still a decimal number: it reads as an infinity.
  return (result.ec == std::errc() || result.ec == std::errc::result_out_of_range) &&
         result.ptr == end;
}

// True if `text` would pass ParseFloat64Text, without computing the value: a check of the decimal
// grammar is several times faster than a conversion. Text that does not start like a decimal
// number (nan, inf, ...) is left to fast_float.
bool IsFloat64Text(std::string_view text) {
  const char* p = text.data();
  const char* end = p + text.size();
  if (p != end && (*p == '-' || *p == '+')) ++p;
  const char* digits_start = p;
  while (p != end && static_cast<unsigned>(*p - '0') < 10) ++p;
  size_t digits = static_cast<size_t>(p - digits_start);
  if (p != end && *p == '.') {
    ++p;
    const char* fraction_start = p;
    while (p != end && static_cast<unsigned>(*p - '0') < 10) ++p;
    digits += static_cast<size_t>(p - fraction_start);
  }
  if (digits == 0) {
    double value;
    return ParseFloat64Text(text, &value);
  }
  if (p != end && (*p == 'e' || *p == 'E')) {
    ++p;
    if (p != end && (*p == '-' || *p == '+')) ++p;
    const char* exponent_start = p;
    while (p != end && static_cast<unsigned>(*p - '0') < 10) ++p;
    if (p == exponent_start) return false;
  }
  return p == end;
}

// The strings a JSONL writer uses for non-finite floats (MLflow's wire form): in JSONL these
// strings do not stop a column from being float64.
bool IsJsonFloatSpecial(std::string_view text) {
  return text == "NaN" || text == "Infinity" || text == "-Infinity";
}

bool TakeDigits(std::string_view text, size_t at, size_t count, int* value) {
  if (at + count > text.size()) return false;
  int result = 0;
  for (size_t i = at; i < at + count; ++i) {
    if (text[i] < '0' || text[i] > '9') return false;
    result = result * 10 + (text[i] - '0');
  }
  *value = result;
  return true;
}

bool IsLeapYear(int year) { return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0; }

int DaysInMonth(int year, int month) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return month == 2 && IsLeapYear(year) ? 29 : kDays[month - 1];
}

// Days from 1970-01-01 to the given civil date (proleptic Gregorian; Howard Hinnant's
// days_from_civil).
int64_t DaysFromCivil(int64_t year, int64_t month, int64_t day) {
  year -= month <= 2;
  const int64_t era = (year >= 0 ? year : year - 399) / 400;
  const int64_t year_of_era = year - era * 400;
  const int64_t day_of_year = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1;
  const int64_t day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
  return era * 146097 + day_of_era - 719468;
}

// Grammar (timestamp rule of inference.h):
//   date      = YYYY "-" MM "-" DD
//   timestamp = date [ ("T" | " ") hh ":" mm ":" ss [ "." 1*9DIGIT ] [ "Z" | ("+" | "-") hh ":" mm
//   ] ]
bool ParseTimestampText(std::string_view text, int64_t* millis) {
  int year, month, day;
  if (text.size() < 10 || !TakeDigits(text, 0, 4, &year) || text[4] != '-' ||
      !TakeDigits(text, 5, 2, &month) || text[7] != '-' || !TakeDigits(text, 8, 2, &day)) {
    return false;
  }
  if (month < 1 || month > 12 || day < 1 || day > DaysInMonth(year, month)) return false;
  int64_t result = DaysFromCivil(year, month, day) * 86'400'000;
  if (text.size() == 10) {
    *millis = result;
    return true;
  }
  int hour, minute, second;
  if ((text[10] != 'T' && text[10] != ' ') || !TakeDigits(text, 11, 2, &hour) || text.size() < 19 ||
      text[13] != ':' || !TakeDigits(text, 14, 2, &minute) || text[16] != ':' ||
      !TakeDigits(text, 17, 2, &second)) {
    return false;
  }
  if (hour > 23 || minute > 59 || second > 59) return false;
  result += hour * 3'600'000LL + minute * 60'000LL + second * 1'000LL;
  size_t i = 19;
  if (i < text.size() && text[i] == '.') {
    ++i;
    size_t digits = 0;
    int fraction_millis = 0;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
      if (digits < 3) fraction_millis = fraction_millis * 10 + (text[i] - '0');
      ++digits;
      ++i;
    }
    if (digits == 0 || digits > 9) return false;
    for (size_t d = digits; d < 3; ++d) fraction_millis *= 10;
    result += fraction_millis;
  }
  if (i < text.size()) {
    if (text[i] == 'Z') {
      ++i;
    } else if (text[i] == '+' || text[i] == '-') {
      int offset_hours, offset_minutes;
      if (!TakeDigits(text, i + 1, 2, &offset_hours) || i + 3 >= text.size() ||
          text[i + 3] != ':' || !TakeDigits(text, i + 4, 2, &offset_minutes) || offset_hours > 23 ||
          offset_minutes > 59) {
        return false;
      }
      int64_t offset = (offset_hours * 60LL + offset_minutes) * 60'000LL;
      result += text[i] == '+' ? -offset : offset;  // 12:00+02:00 is 10:00 UTC
      i += 6;
    } else {
      return false;
    }
  }
  if (i != text.size()) return false;
  *millis = result;
  return true;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// SchemaInferrer
//
// columns_[0] only counts the rows observed (the header leaves no other place for it); the state
// of names_[i] is columns_[i + 1].

struct SchemaInferrer::ColumnState {
  int64_t nulls = 0;
  int64_t non_null = 0;
  bool maybe_bool = true;
  bool maybe_int = true;
  bool maybe_float = true;
  bool maybe_timestamp = true;
  bool saw_number = false;  // JSONL: a float64 column needs one number, not only "NaN" strings
  bool too_many_distinct = false;
  std::unordered_set<std::string> distinct;
};

SchemaInferrer::SchemaInferrer(Format format) : format_(format) {
  columns_.push_back(std::make_unique<ColumnState>());
}

SchemaInferrer::~SchemaInferrer() = default;

void SchemaInferrer::Observe(const RowReader& reader) {
  const std::vector<std::string>& names = reader.column_names();
  const std::vector<Cell>& cells = reader.cells();
  int64_t rows_before = columns_[0]->non_null;
  while (names_.size() < cells.size() && names_.size() < names.size()) {
    names_.push_back(names[names_.size()]);
    auto state = std::make_unique<ColumnState>();
    state->nulls = rows_before;  // earlier rows did not have this column (JSONL)
    columns_.push_back(std::move(state));
  }
  ++columns_[0]->non_null;
  const bool jsonl = format_ == Format::kJsonl;
  for (size_t i = 0; i < names_.size(); ++i) {
    ColumnState& state = *columns_[i + 1];
    if (i >= cells.size() || cells[i].is_null) {
      ++state.nulls;
      continue;
    }
    const std::string_view text = cells[i].text;
    ++state.non_null;
    // Quoting is not typing in CSV; in JSONL a string is a string.
    const bool json_string = jsonl && cells[i].quoted;
    if (state.maybe_bool) state.maybe_bool = !json_string && IsBool(text);
    if (state.maybe_int || state.maybe_float) {
      if (json_string) {
        state.maybe_int = false;
        state.maybe_float = state.maybe_float && IsJsonFloatSpecial(text);
      } else {
        if (state.maybe_int && !IsInt64Text(text)) state.maybe_int = false;
        if (!state.maybe_int && state.maybe_float) state.maybe_float = IsFloat64Text(text);
        if (state.maybe_float) state.saw_number = true;
      }
    }
    if (state.maybe_timestamp) {
      int64_t millis;
      state.maybe_timestamp = ParseTimestampText(text, &millis);
    }
    if (!state.too_many_distinct) {
      state.distinct.emplace(text);
      if (state.distinct.size() > kMaxCategories) {
        state.too_many_distinct = true;
        state.distinct.clear();
      }
    }
  }
}

Schema SchemaInferrer::Finish() const {
  Schema schema;
  for (size_t i = 0; i < names_.size(); ++i) {
    const ColumnState& state = *columns_[i + 1];
    Column column;
    column.name = names_[i];
    column.nullable = state.nulls > 0;
    if (state.non_null == 0) {
      column.type = ColumnType::kString;
    } else if (state.maybe_bool) {
      column.type = ColumnType::kBool;
    } else if (state.maybe_int) {
      column.type = ColumnType::kInt64;
    } else if (state.maybe_float && (format_ != Format::kJsonl || state.saw_number)) {
      column.type = ColumnType::kFloat64;
    } else if (state.maybe_timestamp) {
      column.type = ColumnType::kTimestamp;
    } else if (!state.too_many_distinct && state.distinct.size() <= kMaxCategories &&
               static_cast<int64_t>(state.distinct.size()) * 2 < state.non_null) {
      column.type = ColumnType::kCategorical;
    } else {
      column.type = ColumnType::kString;
    }
    schema.columns.push_back(std::move(column));
  }
  return schema;
}

// ---------------------------------------------------------------------------------------------
// Cell checks and typed parses

Status CheckCell(const Column& column, const Cell& cell, std::string_view file_name, int64_t line,
                 int field_index, bool* widen_to_float) {
  if (cell.is_null) return Status::Ok();
  const std::string_view text = cell.text;
  bool fits = true;
  switch (column.type) {
    case ColumnType::kInt64: {
      if (IsInt64Text(text)) break;
      if (IsFloat64Text(text)) {
        if (widen_to_float != nullptr) *widen_to_float = true;
        break;
      }
      fits = false;
      break;
    }
    case ColumnType::kFloat64: fits = IsFloat64Text(text); break;
    case ColumnType::kBool: fits = IsBool(text); break;
    case ColumnType::kTimestamp: {
      int64_t millis;
      fits = ParseTimestampText(text, &millis);
      break;
    }
    case ColumnType::kString:
    case ColumnType::kCategorical: break;
  }
  if (fits) return Status::Ok();
  return CellMismatch(column, text, file_name, line, field_index);
}

// Kept out of line (cold): the error path would otherwise weigh on the callers' hot paths.
[[gnu::noinline, gnu::cold]] Status CellMismatch(const Column& column, std::string_view text,
                                                 std::string_view file_name, int64_t line,
                                                 int field_index) {
  std::string message;
  message.reserve(file_name.size() + column.name.size() + text.size() + 64);
  message.append(file_name);
  message += ':';
  message += std::to_string(line);
  message += ':';
  message += std::to_string(field_index);
  message += ": column '";
  message += column.name;
  message += "': expected ";
  message += ColumnTypeName(column.type);
  message += ", found '";
  message += internal::ForMessage(text);
  message += "'";
  return InvalidArgument(std::move(message));
}

bool ParseCellValue(ColumnType type, std::string_view text, bool* widen_to_float,
                    CellValue* value) {
  switch (type) {
    case ColumnType::kInt64: {
      if (ParseShortInt64Text(text, &value->integer) || ParseInt64Text(text, &value->integer)) {
        value->number = static_cast<double>(value->integer);
        return true;
      }
      if (!IsFloat64Text(text)) return false;
      if (widen_to_float != nullptr) *widen_to_float = true;
      if (!ParseFloat64Text(text, &value->number)) {
        value->number = std::numeric_limits<double>::quiet_NaN();  // unreachable (tested)
      }
      return true;
    }
    case ColumnType::kFloat64:
      if (ParseShortDecimal(text, &value->number)) return true;
      if (!IsFloat64Text(text)) return false;
      if (!ParseFloat64Text(text, &value->number)) {
        value->number = std::numeric_limits<double>::quiet_NaN();  // unreachable (tested)
      }
      return true;
    case ColumnType::kBool:
      if (text == "true" || text == "True" || text == "TRUE") {
        value->boolean = true;
        return true;
      }
      value->boolean = false;
      return text == "false" || text == "False" || text == "FALSE";
    case ColumnType::kTimestamp: return ParseTimestampText(text, &value->integer);
    case ColumnType::kString:
    case ColumnType::kCategorical: return true;
  }
  return true;
}

Result<int64_t> ParseInt64(std::string_view text) {
  int64_t value;
  if (!ParseInt64Text(text, &value)) {
    return InvalidArgument("not an int64: '" + internal::ForMessage(text) + "'");
  }
  return value;
}

Result<double> ParseFloat64(std::string_view text) {
  double value;
  if (!ParseFloat64Text(text, &value)) {
    return InvalidArgument("not a float64: '" + internal::ForMessage(text) + "'");
  }
  return value;
}

Result<bool> ParseBool(std::string_view text) {
  if (text == "true" || text == "True" || text == "TRUE") return true;
  if (text == "false" || text == "False" || text == "FALSE") return false;
  return InvalidArgument("not a bool: '" + internal::ForMessage(text) + "'");
}

Result<int64_t> ParseTimestampMillis(std::string_view text) {
  int64_t millis;
  if (!ParseTimestampText(text, &millis)) {
    return InvalidArgument("not an ISO 8601 timestamp: '" + internal::ForMessage(text) + "'");
  }
  return millis;
}

}  // namespace kiln::table
