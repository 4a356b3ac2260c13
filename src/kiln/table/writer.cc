#include "kiln/table/writer.h"

#include <charconv>
#include <cmath>

#include "kiln/table/inference.h"
#include "kiln/table/text_util.h"

namespace kiln::table {
namespace {

constexpr std::string_view kBom = "\xEF\xBB\xBF";

void AppendDelimited(std::string_view text, bool is_null, char delimiter, std::string* out) {
  if (is_null) return;
  bool quote = text.empty() || text.substr(0, kBom.size()) == kBom;  // a BOM would be skipped
  for (char c : text) {
    if (c == delimiter || c == '"' || c == '\n' || c == '\r') {
      quote = true;
      break;
    }
  }
  if (!quote) {
    out->append(text);
    return;
  }
  out->push_back('"');
  for (char c : text) {
    if (c == '"') out->push_back('"');
    out->push_back(c);
  }
  out->push_back('"');
}

void AppendDouble(double value, std::string* out) {
  if (std::isnan(value)) {
    out->append("\"NaN\"");
  } else if (std::isinf(value)) {
    out->append(value > 0 ? "\"Infinity\"" : "\"-Infinity\"");
  } else {
    char buffer[32];
    auto [end, ec] = std::to_chars(buffer, buffer + sizeof(buffer), value);
    out->append(buffer, ec == std::errc() ? end : buffer);
  }
}

// A JSONL value typed by the column. Numbers keep their spelling when it is already valid JSON
// (so "1.50" reads back as "1.50"); other spellings ("+5", "1.", "inf") are normalized. A cell
// that does not fit its type is written as a string rather than as broken JSON.
void AppendJsonValue(ColumnType type, const Cell& cell, std::string* out) {
  if (cell.is_null) {
    out->append("null");
    return;
  }
  const std::string_view text = cell.text;
  switch (type) {
    case ColumnType::kInt64:
    case ColumnType::kFloat64: {
      Result<double> real = ParseFloat64(text);
      if (internal::IsJsonNumber(text) && real.ok() && std::isfinite(*real)) {
        out->append(text);
        return;
      }
      if (type == ColumnType::kInt64) {
        Result<int64_t> integer = ParseInt64(text);
        if (integer.ok()) {
          out->append(std::to_string(*integer));
          return;
        }
      }
      if (real.ok()) {
        AppendDouble(*real, out);
        return;
      }
      break;
    }
    case ColumnType::kBool: {
      Result<bool> value = ParseBool(text);
      if (value.ok()) {
        out->append(*value ? "true" : "false");
        return;
      }
      break;
    }
    case ColumnType::kString:
    case ColumnType::kCategorical:
    case ColumnType::kTimestamp: break;
  }
  internal::AppendJsonString(text, out);
}

}  // namespace

void RowWriter::WriteHeader(std::string* out) const {
  if (format_ == Format::kJsonl) return;
  const char delimiter = format_ == Format::kTsv ? '\t' : ',';
  for (size_t i = 0; i < schema_.columns.size(); ++i) {
    if (i > 0) out->push_back(delimiter);
    AppendDelimited(schema_.columns[i].name, false, delimiter, out);
  }
  out->push_back('\n');
}

void RowWriter::WriteRow(const std::vector<Cell>& cells, std::string* out) const {
  const size_t count = schema_.columns.size();
  if (format_ == Format::kJsonl) {
    out->push_back('{');
    for (size_t i = 0; i < count; ++i) {
      if (i > 0) out->push_back(',');
      internal::AppendJsonString(schema_.columns[i].name, out);
      out->push_back(':');
      static const Cell kNull{{}, true, false};
      AppendJsonValue(schema_.columns[i].type, i < cells.size() ? cells[i] : kNull, out);
    }
    out->append("}\n");
    return;
  }
  const char delimiter = format_ == Format::kTsv ? '\t' : ',';
  for (size_t i = 0; i < count; ++i) {
    if (i > 0) out->push_back(delimiter);
    if (i < cells.size()) AppendDelimited(cells[i].text, cells[i].is_null, delimiter, out);
  }
  out->push_back('\n');
}

}  // namespace kiln::table
