#include "kiln/table/schema.h"

#include <unordered_set>

namespace kiln::table {

std::string_view ColumnTypeName(ColumnType type) {
  switch (type) {
    case ColumnType::kInt64: return "int64";
    case ColumnType::kFloat64: return "float64";
    case ColumnType::kBool: return "bool";
    case ColumnType::kString: return "string";
    case ColumnType::kCategorical: return "categorical";
    case ColumnType::kTimestamp: return "timestamp";
  }
  return "string";
}

std::optional<ColumnType> ColumnTypeFromName(std::string_view name) {
  static constexpr ColumnType kAll[] = {ColumnType::kInt64,       ColumnType::kFloat64,
                                        ColumnType::kBool,        ColumnType::kString,
                                        ColumnType::kCategorical, ColumnType::kTimestamp};
  for (ColumnType type : kAll) {
    if (ColumnTypeName(type) == name) return type;
  }
  return std::nullopt;
}

bool IsNumeric(ColumnType type) {
  return type == ColumnType::kInt64 || type == ColumnType::kFloat64;
}

int Schema::Find(std::string_view name) const {
  for (size_t i = 0; i < columns.size(); ++i) {
    if (columns[i].name == name) return static_cast<int>(i);
  }
  return -1;
}

Json Schema::ToJson() const {
  Json list = Json::array();
  for (const Column& column : columns) {
    list.push_back(Json{{"name", column.name},
                        {"type", std::string(ColumnTypeName(column.type))},
                        {"nullable", column.nullable}});
  }
  return Json{{"columns", std::move(list)}};
}

Result<Schema> Schema::FromJson(const Json& json) {
  if (!json.is_object()) return InvalidArgument("schema: expected a JSON object");
  auto list = json.find("columns");
  if (list == json.end() || !list->is_array()) {
    return InvalidArgument("schema: 'columns' must be an array");
  }
  Schema schema;
  std::unordered_set<std::string> names;
  for (size_t i = 0; i < list->size(); ++i) {
    const Json& entry = (*list)[i];
    std::string where = "schema: column " + std::to_string(i + 1);
    if (!entry.is_object()) return InvalidArgument(where + ": expected a JSON object");
    auto name = entry.find("name");
    if (name == entry.end() || !name->is_string() || name->get<std::string>().empty()) {
      return InvalidArgument(where + ": 'name' must be a non-empty string");
    }
    Column column;
    column.name = name->get<std::string>();
    where = "schema: column '" + column.name + "'";
    auto type = entry.find("type");
    if (type == entry.end() || !type->is_string()) {
      return InvalidArgument(where + ": 'type' must be a string");
    }
    std::optional<ColumnType> parsed = ColumnTypeFromName(type->get<std::string>());
    if (!parsed) {
      return InvalidArgument(where + ": unknown type '" + type->get<std::string>() + "'");
    }
    column.type = *parsed;
    auto nullable = entry.find("nullable");
    if (nullable != entry.end()) {
      if (!nullable->is_boolean()) return InvalidArgument(where + ": 'nullable' must be a bool");
      column.nullable = nullable->get<bool>();
    }
    if (!names.insert(column.name).second) return InvalidArgument(where + ": duplicate name");
    schema.columns.push_back(std::move(column));
  }
  return schema;
}

}  // namespace kiln::table
