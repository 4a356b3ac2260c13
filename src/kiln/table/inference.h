// Schema inference and type checking of cells.
//
// The type of a column is inferred from the first rows of a file (the first chunk); every later
// value must fit it, or the commit fails with an error naming file, line and column ("column
// 'age': expected int64, found 'abc'"): a type change mid-file is malformed input. The only
// widening allowed after inference is int64 -> float64 (a column of whole numbers that turns out
// to hold decimals).
//
// Rules for a column's cells (nulls are ignored; a column of only nulls is a nullable string):
//   bool        true/false/True/False/TRUE/FALSE (not 0/1)
//   int64       optional sign and digits that fit in int64
//   float64     decimal or exponent numbers, nan, inf (any case)
//   timestamp   ISO 8601: 2026-11-01, 2026-11-01T12:00:00[.fff][Z|+hh:mm] (or ' ' for 'T')
//   categorical strings with at most kMaxCategories distinct values and fewer distinct values
//               than half the non-null count, decided on the inference rows
//   string      anything else; quoted CSV fields and JSON strings that look like numbers stay
//               numbers in CSV (quoting is not typing there) but are strings in JSONL.
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "kiln/core/status.h"
#include "kiln/table/format.h"
#include "kiln/table/number_text.h"
#include "kiln/table/reader.h"
#include "kiln/table/schema.h"

namespace kiln::table {

inline constexpr size_t kMaxCategories = 64;

// Accumulates the first rows of a file and proposes a schema.
class SchemaInferrer {
 public:
  explicit SchemaInferrer(Format format);
  ~SchemaInferrer();
  SchemaInferrer(const SchemaInferrer&) = delete;
  SchemaInferrer& operator=(const SchemaInferrer&) = delete;

  // Observes the reader's current row (column_names() may have grown since the last row).
  void Observe(const RowReader& reader);
  Schema Finish() const;

 private:
  struct ColumnState;  // defined in inference.cc
  Format format_;
  std::vector<std::string> names_;
  std::vector<std::unique_ptr<ColumnState>> columns_;
};

// Checks one cell against its column type. On mismatch returns InvalidArgument
// "FILE:LINE:COLUMN: column 'age': expected int64, found 'abc'", where COLUMN is the 1-based
// field index. A value of an int64 column that parses as float64 sets *widen_to_float.
Status CheckCell(const Column& column, const Cell& cell, std::string_view file_name, int64_t line,
                 int field_index, bool* widen_to_float);

// A cell's value, as ParseCellValue found it; which members are set depends on the type.
struct CellValue {
  // int64: the integer (unset for a cell that widens); timestamp: milliseconds since the epoch.
  int64_t integer = 0;
  // int64 and float64: the number, bit for bit ParseFloat64's (an int64 cell as a double).
  double number = 0;
  bool boolean = false;  // bool
};

// CheckCell's test for the text of a non-null cell, also returning the value, with each cell read
// once: true if `text` fits `type` (or fits only float64 in an int64 column, which sets
// *widen_to_float), false where CheckCell fails (then CellMismatch gives its error). No
// allocation. For hot loops that need the values: CheckCell then ParseInt64/ParseFloat64 read
// every number twice.
bool ParseCellValue(ColumnType type, std::string_view text, bool* widen_to_float,
                    CellValue* value);
// A float64 cell's text in the form ParseCellValue reads the common short decimals ("-12.375"):
// its value is digits / 10^fraction_digits (one correctly rounded division), negated if negative.
// Split in two steps so that a loop can parse a row's cells first and divide after, letting the
// divisions overlap.
struct ShortDecimal {
  uint64_t digits = 0;
  int fraction_digits = 0;
  bool negative = false;
};
// True if `text` is such a decimal of at most 16 digits (else use ParseCellValue).
inline bool ParseShortDecimalParts(std::string_view text, ShortDecimal* parts) {
  return internal::ParseDecimalWords(text, &parts->digits, &parts->fraction_digits,
                                     &parts->negative);
}
// ParseCellValue's number for text ParseShortDecimalParts accepted.
inline double ShortDecimalValue(const ShortDecimal& parts) {
  const double result =
      static_cast<double>(parts.digits) / internal::kExactPowersOfTen[parts.fraction_digits];
  return parts.negative ? -result : result;
}

// ParseCellValue, with the common short numbers of int64 and float64 columns ("-12.375",
// "40213") parsed inline: for loops over many cells. The same results for every type and text.
inline bool ParseNumericCell(ColumnType type, std::string_view text, bool* widen_to_float,
                             CellValue* value) {
  if (type == ColumnType::kFloat64) {
    ShortDecimal parts;
    if (ParseShortDecimalParts(text, &parts)) [[likely]] {
      value->number = ShortDecimalValue(parts);
      return true;
    }
  } else if (type == ColumnType::kInt64) {
    if (internal::ParseInt64Words(text, &value->integer)) [[likely]] {
      value->number = static_cast<double>(value->integer);
      return true;
    }
  }
  return ParseCellValue(type, text, widen_to_float, value);
}
// CheckCell's error for a cell whose text does not fit its column.
Status CellMismatch(const Column& column, std::string_view text, std::string_view file_name,
                    int64_t line, int field_index);

// Typed parses used by profiles, validation, diff and export. They assume the cell passed
// CheckCell for that type.
Result<int64_t> ParseInt64(std::string_view text);
Result<double> ParseFloat64(std::string_view text);
Result<bool> ParseBool(std::string_view text);
// Milliseconds since the epoch, UTC.
Result<int64_t> ParseTimestampMillis(std::string_view text);

}  // namespace kiln::table
