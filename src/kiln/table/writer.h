// Writers: rows out as CSV, TSV or JSONL (export, merge results, converted checkouts).
//
// CSV/TSV: header row first; fields that contain the delimiter, a quote, \r or \n, or are empty
// strings, are quoted; nulls are empty unquoted fields; rows end with \n.
// JSONL: one object per row with keys in schema order; values typed by the schema (int64 and
// float64 as numbers, NaN and infinities as the strings "NaN", "Infinity", "-Infinity"; bool as
// true/false; everything else as strings); nulls as null.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "kiln/core/status.h"
#include "kiln/table/format.h"
#include "kiln/table/reader.h"
#include "kiln/table/schema.h"

namespace kiln::table {

class RowWriter {
 public:
  RowWriter(Format format, Schema schema) : format_(format), schema_(std::move(schema)) {}

  // Appends the header (CSV/TSV; nothing for JSONL) to `out`.
  void WriteHeader(std::string* out) const;
  // Appends one row; `cells` has one entry per schema column.
  void WriteRow(const std::vector<Cell>& cells, std::string* out) const;

 private:
  Format format_;
  Schema schema_;
};

}  // namespace kiln::table
