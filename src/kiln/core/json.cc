#include "kiln/core/json.h"

#include <cmath>
#include <limits>

namespace kiln {
namespace {

std::string TypeError(std::string_view field, std::string_view expected, const Json& value) {
  std::string message = "Invalid value ";
  std::string dumped = value.dump(-1, ' ', false, Json::error_handler_t::replace);
  if (dumped.size() > 100) dumped = dumped.substr(0, 100) + "...";
  message += dumped;
  message += " for parameter '";
  message += field;
  message += "': expected ";
  message += expected;
  return message;
}

}  // namespace

Result<Json> ParseJson(std::string_view text) {
  Json parsed = Json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (!parsed.is_discarded()) return parsed;
  // Parse again with exceptions to learn why and where. nlohmann reports most problems as
  // parse_error (with a byte offset) but some as other exceptions, e.g. out_of_range for a number
  // too large for a double: catch them all.
  size_t offset = 0;
  std::string detail = "malformed JSON";
  try {
    Json reparsed = Json::parse(text.begin(), text.end());
    (void)reparsed;
  } catch (const Json::parse_error& error) {
    offset = error.byte == 0 ? 0 : error.byte - 1;
    detail = error.what();
  } catch (const Json::exception& error) {
    detail = error.what();
  }
  // nlohmann's messages start "[json.exception.parse_error.101] parse error at line 1, column 2:
  // syntax error while parsing value - ..."; keep the part after the first ": ".
  size_t cut = detail.find(": ");
  if (cut != std::string::npos) detail = detail.substr(cut + 2);
  if (offset == 0 && detail.find("number overflow") != std::string::npos) {
    return InvalidArgument("malformed JSON: " + detail);
  }
  size_t line = 1, column = 1;
  for (size_t i = 0; i < offset && i < text.size(); ++i) {
    if (text[i] == '\n') {
      ++line;
      column = 1;
    } else {
      ++column;
    }
  }
  return InvalidArgument("malformed JSON at line " + std::to_string(line) + ", column " +
                         std::to_string(column) + ": " + detail);
}

Result<std::optional<std::string>> GetString(const Json& object, std::string_view field) {
  auto it = object.find(field);
  if (it == object.end() || it->is_null()) return std::optional<std::string>();
  if (it->is_string()) return std::optional<std::string>(it->get<std::string>());
  // protobuf's JSON parser accepts numbers and bools for string fields in MLflow's requests
  // (experiment_id: 1). Keep that leniency for numbers only.
  if (it->is_number_integer()) return std::optional<std::string>(it->dump());
  return InvalidArgument(TypeError(field, "a string", *it));
}

Result<std::optional<int64_t>> GetInt64(const Json& object, std::string_view field) {
  auto it = object.find(field);
  if (it == object.end() || it->is_null()) return std::optional<int64_t>();
  if (it->is_number_integer()) return std::optional<int64_t>(it->get<int64_t>());
  if (it->is_number_float()) {
    double value = it->get<double>();
    if (std::isfinite(value) && value == std::floor(value) && std::fabs(value) < 9.2e18) {
      return std::optional<int64_t>(static_cast<int64_t>(value));
    }
  }
  if (it->is_string()) {
    const std::string& text = it->get_ref<const std::string&>();
    if (!text.empty() && text.size() <= 20) {
      size_t pos = 0;
      bool negative = text[0] == '-';
      if (negative) pos = 1;
      if (pos < text.size()) {
        int64_t value = 0;
        bool good = true;
        for (size_t i = pos; i < text.size(); ++i) {
          char c = text[i];
          if (c < '0' || c > '9') {
            good = false;
            break;
          }
          int digit = c - '0';
          if (value > (std::numeric_limits<int64_t>::max() - digit) / 10) {
            good = false;
            break;
          }
          value = value * 10 + digit;
        }
        if (good) return std::optional<int64_t>(negative ? -value : value);
      }
    }
  }
  return InvalidArgument(TypeError(field, "an integer", *it));
}

Result<std::optional<double>> GetDouble(const Json& object, std::string_view field) {
  auto it = object.find(field);
  if (it == object.end() || it->is_null()) return std::optional<double>();
  if (it->is_number()) return std::optional<double>(it->get<double>());
  if (it->is_string()) {
    const std::string& text = it->get_ref<const std::string&>();
    if (text == "NaN") return std::optional<double>(std::numeric_limits<double>::quiet_NaN());
    if (text == "Infinity") return std::optional<double>(std::numeric_limits<double>::infinity());
    if (text == "-Infinity") {
      return std::optional<double>(-std::numeric_limits<double>::infinity());
    }
    char* end = nullptr;
    double value = std::strtod(text.c_str(), &end);
    if (!text.empty() && end == text.c_str() + text.size()) return std::optional<double>(value);
  }
  return InvalidArgument(TypeError(field, "a number", *it));
}

Result<std::optional<bool>> GetBool(const Json& object, std::string_view field) {
  auto it = object.find(field);
  if (it == object.end() || it->is_null()) return std::optional<bool>();
  if (it->is_boolean()) return std::optional<bool>(it->get<bool>());
  if (it->is_string()) {
    const std::string& text = it->get_ref<const std::string&>();
    if (text == "true" || text == "True") return std::optional<bool>(true);
    if (text == "false" || text == "False") return std::optional<bool>(false);
  }
  return InvalidArgument(TypeError(field, "a boolean", *it));
}

Result<std::vector<std::string>> GetStringList(const Json& object, std::string_view field) {
  std::vector<std::string> out;
  auto it = object.find(field);
  if (it == object.end() || it->is_null()) return out;
  if (it->is_string()) {
    out.push_back(it->get<std::string>());
    return out;
  }
  if (!it->is_array()) return InvalidArgument(TypeError(field, "a list of strings", *it));
  for (const Json& item : *it) {
    if (item.is_string()) {
      out.push_back(item.get<std::string>());
    } else if (item.is_number_integer()) {
      out.push_back(item.dump());
    } else {
      return InvalidArgument(TypeError(field, "a list of strings", *it));
    }
  }
  return out;
}

Json DoubleToJson(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "Infinity" : "-Infinity";
  return value;
}

}  // namespace kiln
