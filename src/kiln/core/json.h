// JSON helpers over nlohmann::json: typed field access whose errors name the field, and
// parsing that reports line and column instead of throwing.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "kiln/core/status.h"

namespace kiln {

using Json = nlohmann::json;

// Parses `text` as one JSON value. Errors say where: "line 1, column 17: ...".
Result<Json> ParseJson(std::string_view text);

// Field readers for request objects. A missing field yields std::nullopt; a field of the wrong
// type yields InvalidArgument naming the field and the expected type. Numbers given as strings
// ("12") are accepted where protobuf's JSON mapping accepts them (int64 and double).
Result<std::optional<std::string>> GetString(const Json& object, std::string_view field);
Result<std::optional<int64_t>> GetInt64(const Json& object, std::string_view field);
// Accepts numbers and the strings "NaN", "Infinity", "-Infinity" (MLflow's wire form).
Result<std::optional<double>> GetDouble(const Json& object, std::string_view field);
Result<std::optional<bool>> GetBool(const Json& object, std::string_view field);
// A repeated string field: an array of strings, or a single string.
Result<std::vector<std::string>> GetStringList(const Json& object, std::string_view field);

// A double as MLflow writes it: NaN and infinities become strings.
Json DoubleToJson(double value);

}  // namespace kiln
