// Readers for CSV, TSV and JSONL text, over a buffer of complete rows.
//
// Data commits cut files into chunks at row boundaries, so each chunk parses on its own and in
// parallel: a RowReader is given one buffer of whole rows (a chunk, or a whole small file), the
// line number its first row starts on (1-based, counting physical lines of the file) and, for a
// chunk other than the first, the column names found in the file's first chunk.
//
// CSV/TSV (RFC 4180): fields separated by ',' (or '\t'); a field may be double-quoted, with ""
// for a quote inside; quoted fields may hold delimiters and newlines; rows end with \n or \r\n;
// the first row of the file is the header. An empty unquoted field is null; "" (quoted empty) is
// the empty string. Every row must have as many fields as the header.
// JSONL: one JSON object per line; blank lines are skipped. Keys become columns in the order
// first seen; a key absent from a row is null. Values: null, numbers, strings, booleans; arrays
// and objects are kept as their JSON text (a string cell).
//
// Errors are InvalidArgument naming "FILE:LINE:COLUMN: what" (COLUMN is the 1-based byte column
// on that line): ragged rows, a quote in an unquoted field, an unterminated quote, text after a
// closing quote, invalid UTF-8, a field larger than ReadOptions::max_field_bytes, JSON syntax
// errors, a line that is not an object.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "kiln/core/status.h"
#include "kiln/table/format.h"

namespace kiln::table {

// True if `text` is well-formed UTF-8, as every reader requires of a cell (overlong forms,
// surrogates and code points above U+10FFFF are not).
bool IsValidUtf8(std::string_view text);

// One value as read. For CSV `text` is the unquoted, unescaped field. For JSONL, strings are
// unescaped, numbers and booleans keep their JSON spelling ("12", "1.5e3", "true"), arrays and
// objects their JSON text.
struct Cell {
  std::string_view text;
  bool is_null = false;
  // CSV: the field was quoted. JSONL: the value was a JSON string (so "12" stays a string).
  bool quoted = false;
};

struct ReadOptions {
  std::string file_name;   // for error messages
  int64_t first_line = 1;  // line number of the buffer's first byte
  // CSV/TSV: true if the buffer starts with the header row (the file's first chunk).
  bool has_header = true;
  // Column names when the buffer has no header (later chunks). For JSONL, the columns known
  // so far; new keys are appended.
  std::vector<std::string> column_names;
  size_t max_field_bytes = 16 << 20;
};

class RowReader {
 public:
  virtual ~RowReader() = default;

  // `data` must outlive the reader and hold whole rows (a final row without a newline is fine).
  // Reads the header now if the options say there is one (errors there come back from Open).
  static Result<std::unique_ptr<RowReader>> Open(Format format, std::string_view data,
                                                 ReadOptions options);

  // Column names: the header's, or the JSONL keys seen so far (grows while reading).
  virtual const std::vector<std::string>& column_names() const = 0;

  // Advances to the next row: true if there is one, false at the end. After true, cells()
  // holds one Cell per column (JSONL rows are padded with nulls to column_names().size()), valid
  // until the next call.
  virtual Result<bool> Next() = 0;
  virtual const std::vector<Cell>& cells() const = 0;
  // The line the current row starts on, and the byte offset of the row within `data`.
  virtual int64_t line() const = 0;
  virtual size_t row_offset() const = 0;
  // The raw bytes of the current row, including its line terminator.
  virtual std::string_view row_bytes() const = 0;
};

}  // namespace kiln::table
