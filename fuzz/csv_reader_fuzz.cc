// libFuzzer target for the CSV/TSV reader. The first byte picks the options (CSV or TSV, with a
// header or as a later chunk, a small max_field_bytes, the first line number); the rest is the
// buffer. Beyond "never crash, leak or trip UBSan" it checks what must hold of any input:
//   - an error is InvalidArgument "FILE:LINE:COLUMN: what" with LINE >= first_line;
//   - every row has one cell per column, valid UTF-8, lines never go backwards, and row_bytes()
//     are consecutive slices of the buffer;
//   - every cell fits the schema inferred from all the rows (CheckCell agrees with inference);
//   - written back with RowWriter (same format) and read again, the cells are the same;
//   - written as JSONL, the output reads back as the same number of rows.
//
//   CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DKILN_FUZZ=ON -DKILN_TESTS=OFF
//   ninja -C build-fuzz csv_reader_fuzz
//   build-fuzz/csv_reader_fuzz fuzz/corpus/csv_reader -max_total_time=60
#include <simdjson.h>

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

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

// "FILE:LINE:COLUMN: what" with LINE >= first_line and COLUMN >= 1.
void CheckError(const kiln::Status& status, const ReadOptions& options) {
  REQUIRE(status.code() == kiln::StatusCode::kInvalidArgument);
  std::string_view message = status.message();
  std::string prefix = options.file_name + ":";
  REQUIRE(message.substr(0, prefix.size()) == prefix);
  message.remove_prefix(prefix.size());
  if (message.substr(0, 5) == " no c") return;  // a headerless chunk without column names
  size_t colon = message.find(':');
  REQUIRE(colon != std::string_view::npos && colon > 0);
  int64_t line = std::stoll(std::string(message.substr(0, colon)));
  REQUIRE(line >= options.first_line);
  message.remove_prefix(colon + 1);
  colon = message.find(':');
  REQUIRE(colon != std::string_view::npos && colon > 0);
  REQUIRE(std::stoll(std::string(message.substr(0, colon))) >= 1);
  REQUIRE(message.substr(colon, 2) == ": ");
}

struct Table {
  std::vector<std::string> names;
  std::vector<Row> rows;
};

// Reads everything; nullopt if the input is malformed (after checking the error).
std::optional<Table> ReadTable(Format format, std::string_view data, const ReadOptions& options,
                               kiln::table::SchemaInferrer* inferrer) {
  kiln::Result<std::unique_ptr<RowReader>> reader = RowReader::Open(format, data, options);
  if (!reader.ok()) {
    CheckError(reader.status(), options);
    return std::nullopt;
  }
  Table table;
  int64_t last_line = options.first_line;
  size_t last_end = 0;
  while (true) {
    kiln::Result<bool> more = (*reader)->Next();
    if (!more.ok()) {
      CheckError(more.status(), options);
      return std::nullopt;
    }
    if (!*more) break;
    const RowReader& row = **reader;
    REQUIRE(row.cells().size() == row.column_names().size());
    REQUIRE(row.line() >= last_line);
    last_line = row.line();
    REQUIRE(row.row_offset() >= last_end && row.row_offset() < data.size());
    std::string_view bytes = row.row_bytes();
    REQUIRE(bytes.data() == data.data() + row.row_offset() && !bytes.empty());
    last_end = row.row_offset() + bytes.size();
    REQUIRE(last_end <= data.size());
    Row values;
    for (const Cell& cell : row.cells()) {
      REQUIRE(simdjson::validate_utf8(cell.text.data(), cell.text.size()));
      REQUIRE(cell.text.size() <= options.max_field_bytes);
      if (cell.is_null) REQUIRE(cell.text.empty());
      values.push_back(cell.is_null ? std::nullopt : std::optional<std::string>(cell.text));
    }
    if (inferrer != nullptr) inferrer->Observe(row);
    table.rows.push_back(std::move(values));
  }
  table.names = (*reader)->column_names();
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
  const Format format = (mode & 1) != 0 ? Format::kTsv : Format::kCsv;
  ReadOptions options;
  options.file_name = "f.csv";
  if ((mode & 2) != 0) {  // a later chunk: no header, given names
    options.has_header = false;
    options.column_names = {"a", "b", "c"};
    options.column_names.resize(1 + (mode >> 6) % 3);
    options.first_line = 1 + (mode >> 2) % 7;
  }
  if ((mode & 0x20) != 0) options.max_field_bytes = 1 + (mode >> 2) % 8;

  kiln::table::SchemaInferrer inferrer(format);
  std::optional<Table> table = ReadTable(format, data, options, &inferrer);
  if (!table) return 0;

  // Every cell fits the schema inferred from all of them, without widening.
  kiln::table::Schema schema = inferrer.Finish();
  if (table->rows.empty()) {
    // The inferrer sees columns only through rows: a header-only file is the caller's to type.
    REQUIRE(schema.columns.empty());
    for (const std::string& name : table->names) {
      schema.columns.push_back({name, kiln::table::ColumnType::kString, false});
    }
  }
  REQUIRE(schema.columns.size() == table->names.size());
  for (size_t r = 0; r < table->rows.size(); ++r) {
    std::vector<Cell> cells = ToCells(table->rows[r]);
    for (size_t c = 0; c < cells.size(); ++c) {
      bool widen = false;
      REQUIRE(kiln::table::CheckCell(schema.columns[c], cells[c], "f.csv", 1,
                                     static_cast<int>(c + 1), &widen)
                  .ok());
      REQUIRE(!widen);
      if (!cells[c].is_null) {
        switch (schema.columns[c].type) {
          case kiln::table::ColumnType::kInt64:
            REQUIRE(kiln::table::ParseInt64(cells[c].text).ok());
            break;
          case kiln::table::ColumnType::kFloat64:
            REQUIRE(kiln::table::ParseFloat64(cells[c].text).ok());
            break;
          case kiln::table::ColumnType::kBool:
            REQUIRE(kiln::table::ParseBool(cells[c].text).ok());
            break;
          case kiln::table::ColumnType::kTimestamp:
            REQUIRE(kiln::table::ParseTimestampMillis(cells[c].text).ok());
            break;
          default: break;
        }
        // The word-at-a-time number parse agrees with the plain one bit for bit, whatever the
        // text (and reads nothing outside it: the cell's string is its own allocation).
        for (kiln::table::ColumnType type :
             {kiln::table::ColumnType::kInt64, kiln::table::ColumnType::kFloat64}) {
          bool fast_widen = false, plain_widen = false;
          kiln::table::CellValue fast, plain;
          const bool fast_ok =
              kiln::table::ParseNumericCell(type, cells[c].text, &fast_widen, &fast);
          const bool plain_ok =
              kiln::table::ParseCellValue(type, cells[c].text, &plain_widen, &plain);
          REQUIRE(fast_ok == plain_ok && fast_widen == plain_widen);
          if (fast_ok) {
            REQUIRE(std::bit_cast<uint64_t>(fast.number) == std::bit_cast<uint64_t>(plain.number));
            if (type == kiln::table::ColumnType::kInt64 && !plain_widen) {
              REQUIRE(fast.integer == plain.integer);
            }
          }
        }
      }
    }
  }

  // Round trip through the writer in the same format: the same cells come back.
  kiln::table::RowWriter writer(format, schema);
  std::string written;
  writer.WriteHeader(&written);
  for (const Row& row : table->rows) writer.WriteRow(ToCells(row), &written);
  ReadOptions again;
  again.file_name = "again.csv";
  again.max_field_bytes = options.max_field_bytes;
  std::optional<Table> reread = ReadTable(format, written, again, nullptr);
  REQUIRE(reread.has_value());
  REQUIRE(reread->names == table->names);
  REQUIRE(reread->rows == table->rows);

  // JSONL output is always valid and holds every row.
  kiln::table::RowWriter jsonl_writer(Format::kJsonl, schema);
  std::string jsonl;
  for (const Row& row : table->rows) jsonl_writer.WriteRow(ToCells(row), &jsonl);
  ReadOptions jsonl_options;
  jsonl_options.file_name = "again.jsonl";
  std::optional<Table> from_jsonl = ReadTable(Format::kJsonl, jsonl, jsonl_options, nullptr);
  REQUIRE(from_jsonl.has_value());
  REQUIRE(from_jsonl->rows.size() == table->rows.size());
  return 0;
}
