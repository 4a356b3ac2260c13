// Column types and table schemas, with their JSON form (stored with every data commit).
//
// JSON form of a schema:
//   {"columns": [{"name": "age", "type": "int64", "nullable": true}, ...]}
// Types: "int64", "float64", "bool", "string", "categorical", "timestamp".
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kiln/core/json.h"
#include "kiln/core/status.h"

namespace kiln::table {

enum class ColumnType { kInt64, kFloat64, kBool, kString, kCategorical, kTimestamp };

std::string_view ColumnTypeName(ColumnType type);
std::optional<ColumnType> ColumnTypeFromName(std::string_view name);
bool IsNumeric(ColumnType type);  // int64, float64 (timestamps are not)

struct Column {
  std::string name;
  ColumnType type = ColumnType::kString;
  bool nullable = false;  // at least one null was seen
  friend bool operator==(const Column&, const Column&) = default;
};

struct Schema {
  std::vector<Column> columns;

  // Index of the column named `name`, or -1.
  int Find(std::string_view name) const;
  Json ToJson() const;
  static Result<Schema> FromJson(const Json& json);
  friend bool operator==(const Schema&, const Schema&) = default;
};

}  // namespace kiln::table
