// libFuzzer target for the JSONL reader. The first byte picks the options (known column names,
// a small max_field_bytes, the first line number); the rest is the buffer. Beyond "never crash,
// leak or trip UBSan" it checks what must hold of any input:
//   - an error is InvalidArgument "FILE:LINE:COLUMN: what" with LINE >= first_line;
//   - simdjson's on-demand parser and nlohmann agree: a line the reader accepts is JSON, and a
//     line it calls "malformed JSON" is not;
//   - every row has one cell per column known so far, in valid UTF-8;
//   - every cell fits the schema inferred from all the rows;
//   - written back as JSONL with that schema and read again, rows, names and the text of string
//     columns are the same; written as CSV and read again, every cell is the same.
//
//   CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DKILN_FUZZ=ON -DKILN_TESTS=OFF
//   ninja -C build-fuzz jsonl_reader_fuzz
//   build-fuzz/jsonl_reader_fuzz fuzz/corpus/jsonl_reader -max_total_time=60
#include <simdjson.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kiln/core/json.h"
#include "fuzz_check.h"
#include "kiln/table/inference.h"
#include "kiln/table/reader.h"
#include "kiln/table/writer.h"

namespace {

using kiln::table::Cell;
using kiln::table::Format;
using kiln::table::ReadOptions;
using kiln::table::RowReader;

using Row = std::vector<std::optional<std::string>>;

// The physical line `line` (1-based from first_line) of `data`, without its newline.
std::string_view PhysicalLine(std::string_view data, int64_t first_line, int64_t line) {
  for (int64_t current = first_line; current < line; ++current) {
    size_t newline = data.find('\n');
    if (newline == std::string_view::npos) return {};
    data.remove_prefix(newline + 1);
  }
  return data.substr(0, data.find('\n'));
}

// Checks "FILE:LINE:COLUMN: what"; for a "malformed JSON" error, checks nlohmann rejects the line.
void CheckError(const kiln::Status& status, const ReadOptions& options, std::string_view data) {
  REQUIRE(status.code() == kiln::StatusCode::kInvalidArgument);
  std::string_view message = status.message();
  std::string prefix = options.file_name + ":";
  REQUIRE(message.substr(0, prefix.size()) == prefix);
  message.remove_prefix(prefix.size());
  size_t colon = message.find(':');
  REQUIRE(colon != std::string_view::npos && colon > 0);
  int64_t line = std::stoll(std::string(message.substr(0, colon)));
  REQUIRE(line >= options.first_line);
  message.remove_prefix(colon + 1);
  colon = message.find(':');
  REQUIRE(colon != std::string_view::npos && colon > 0);
  REQUIRE(std::stoll(std::string(message.substr(0, colon))) >= 1);
  std::string_view what = message.substr(colon + 2);
  if (what.substr(0, 14) == "malformed JSON") {
    std::string_view text = PhysicalLine(data, options.first_line, line);
    if (options.first_line == 1 && line == 1 && text.substr(0, 3) == "\xEF\xBB\xBF") {
      text.remove_prefix(3);
    }
    size_t depth = 0;
    for (char c : text) depth += c == '[' || c == '{';
    // simdjson has a nesting limit that nlohmann does not.
    // nlohmann takes a NUL byte for the end of input; JSON has no place for one.
    bool has_nul = text.find('\0') != std::string_view::npos;
    if (depth < 1000 && !has_nul) REQUIRE(!kiln::Json::accept(text.begin(), text.end()));
  }
}

struct Table {
  std::vector<std::string> names;
  std::vector<Row> rows;
};

std::optional<Table> ReadTable(Format format, std::string_view data, const ReadOptions& options,
                               kiln::table::SchemaInferrer* inferrer) {
  kiln::Result<std::unique_ptr<RowReader>> reader = RowReader::Open(format, data, options);
  REQUIRE(reader.ok() || format != Format::kJsonl);
  if (!reader.ok()) return std::nullopt;
  Table table;
  int64_t last_line = options.first_line;
  while (true) {
    kiln::Result<bool> more = (*reader)->Next();
    if (!more.ok()) {
      if (format == Format::kJsonl) CheckError(more.status(), options, data);
      return std::nullopt;
    }
    if (!*more) break;
    const RowReader& row = **reader;
    REQUIRE(row.cells().size() == row.column_names().size());
    REQUIRE(row.line() > last_line || (row.line() == last_line && table.rows.empty()));
    last_line = row.line();
    if (format == Format::kJsonl) {
      std::string_view text = row.row_bytes();
      if (options.first_line == 1 && row.row_offset() == 0 && text.substr(0, 3) == "\xEF\xBB\xBF") {
        text.remove_prefix(3);
      }
      REQUIRE(kiln::Json::accept(text.begin(), text.end()));
      REQUIRE(text.find('\0') == std::string_view::npos);
    }
    Row values;
    for (const Cell& cell : row.cells()) {
      REQUIRE(simdjson::validate_utf8(cell.text.data(), cell.text.size()));
      REQUIRE(cell.text.size() <= options.max_field_bytes);
      values.push_back(cell.is_null ? std::nullopt : std::optional<std::string>(cell.text));
    }
    if (inferrer != nullptr) inferrer->Observe(row);
    table.rows.push_back(std::move(values));
  }
  table.names = (*reader)->column_names();
  // Pad early rows to the final columns, as a consumer would.
  for (Row& row : table.rows) row.resize(table.names.size());
  return table;
}

std::vector<Cell> ToCells(const Row& row) {
  std::vector<Cell> cells;
  for (const std::optional<std::string>& value : row) {
    cells.push_back(value ? Cell{*value, false, false} : Cell{{}, true, false});
  }
  return cells;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* bytes, size_t size) {
  if (size == 0) return 0;
  const uint8_t mode = bytes[0];
  const std::string data(reinterpret_cast<const char*>(bytes + 1), size - 1);
  ReadOptions options;
  options.file_name = "f.jsonl";
  if ((mode & 1) != 0) options.column_names = {"a", "b"};
  if ((mode & 2) != 0) options.first_line = 1 + (mode >> 2) % 9;
  if ((mode & 0x20) != 0) options.max_field_bytes = 1 + (mode >> 2) % 8;

  kiln::table::SchemaInferrer inferrer(Format::kJsonl);
  std::optional<Table> table = ReadTable(Format::kJsonl, data, options, &inferrer);
  if (!table) return 0;

  kiln::table::Schema schema = inferrer.Finish();
  if (table->rows.empty()) {
    // The inferrer sees columns only through rows: a header-only file is the caller's to type.
    REQUIRE(schema.columns.empty());
    for (const std::string& name : table->names) {
      schema.columns.push_back({name, kiln::table::ColumnType::kString, false});
    }
  }
  REQUIRE(schema.columns.size() == table->names.size());
  for (const Row& row : table->rows) {
    std::vector<Cell> cells = ToCells(row);
    for (size_t c = 0; c < cells.size(); ++c) {
      bool widen = false;
      REQUIRE(kiln::table::CheckCell(schema.columns[c], cells[c], "f.jsonl", 1,
                                     static_cast<int>(c + 1), &widen)
                  .ok());
      REQUIRE(!widen);
    }
  }

  // JSONL round trip: always readable, same rows and names; strings keep their text.
  kiln::table::RowWriter writer(Format::kJsonl, schema);
  std::string written;
  for (const Row& row : table->rows) writer.WriteRow(ToCells(row), &written);
  ReadOptions again;
  again.file_name = "again.jsonl";
  std::optional<Table> reread = ReadTable(Format::kJsonl, written, again, nullptr);
  REQUIRE(reread.has_value());
  REQUIRE(reread->rows.size() == table->rows.size());
  if (!table->rows.empty()) REQUIRE(reread->names == table->names);
  for (size_t r = 0; r < table->rows.size(); ++r) {
    for (size_t c = 0; c < schema.columns.size(); ++c) {
      kiln::table::ColumnType type = schema.columns[c].type;
      if (type == kiln::table::ColumnType::kString ||
          type == kiln::table::ColumnType::kCategorical ||
          type == kiln::table::ColumnType::kTimestamp) {
        REQUIRE(reread->rows[r][c] == table->rows[r][c]);
      }
    }
  }

  // CSV round trip: every cell comes back as it was.
  if (table->names.empty()) return 0;
  kiln::table::RowWriter csv_writer(Format::kCsv, schema);
  std::string csv;
  csv_writer.WriteHeader(&csv);
  for (const Row& row : table->rows) csv_writer.WriteRow(ToCells(row), &csv);
  ReadOptions csv_options;
  csv_options.file_name = "again.csv";
  std::optional<Table> from_csv = ReadTable(Format::kCsv, csv, csv_options, nullptr);
  REQUIRE(from_csv.has_value());
  REQUIRE(from_csv->names == table->names);
  REQUIRE(from_csv->rows == table->rows);
  return 0;
}
