// Human output of the `kiln` command: aligned tables, key/value blocks, timestamps, numbers.
// Machine output (--json) is the MLflow reply object printed with PrintJson.
//
// Widths count UTF-8 code points, not bytes, so names with accents still line up. Cells never
// hold control characters (a newline in a tag would break the table): they become spaces.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "kiln/core/json.h"

namespace kiln::cli {

// Cells longer than this are cut and end with an ellipsis, unless a table says otherwise.
inline constexpr size_t kDefaultMaxCellWidth = 48;

// The number of code points in UTF-8 `text` (what a terminal shows for most scripts).
size_t DisplayWidth(std::string_view text);

// `text` with control characters replaced by spaces, cut to at most `max_width` code points;
// a cut text ends with "…". max_width 0 means no limit.
std::string Truncate(std::string_view text, size_t max_width);

// A table with a header row: columns separated by two spaces, each as wide as its widest cell,
// no trailing spaces. Rows shorter than the header are padded with empty cells.
class Table {
 public:
  explicit Table(std::vector<std::string> headers, size_t max_cell_width = kDefaultMaxCellWidth)
      : headers_(std::move(headers)), max_cell_width_(max_cell_width) {}

  void AddRow(std::vector<std::string> cells);
  size_t row_count() const { return rows_.size(); }
  // Every line ends with '\n'.
  std::string Render() const;

 private:
  std::vector<std::string> headers_;
  std::vector<std::vector<std::string>> rows_;
  size_t max_cell_width_;
};

// "key  value" lines with the values aligned, each line starting with `indent`; values are cut
// at `max_value_width` code points (0: no limit).
std::string RenderKeyValues(const std::vector<std::pair<std::string, std::string>>& pairs,
                            std::string_view indent = "", size_t max_value_width = 0);

// Milliseconds since the epoch as local time "2025-11-26 19:56:01"; 0 or negative gives "".
std::string FormatTimestamp(int64_t millis);
// A duration in milliseconds as "850ms", "12.3s", "4m 05s", "2h 03m".
std::string FormatDuration(int64_t millis);
// The shortest text that reads back as `value` ("0.1", "1e-07", "NaN", "Infinity").
std::string FormatDouble(double value);
// A JSON scalar as a table cell: strings unquoted, numbers as written, null as "".
std::string JsonScalarText(const Json& value);

// Writes `value` to stdout, indented by 2, with a final newline.
void PrintJson(const Json& value);

}  // namespace kiln::cli
