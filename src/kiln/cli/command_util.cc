#include "kiln/cli/command_util.h"

#include "kiln/cli/output.h"

namespace kiln::cli {

std::string Field(const Json& object, std::string_view key) {
  if (!object.is_object()) return "";
  auto it = object.find(key);
  if (it == object.end()) return "";
  return JsonScalarText(*it);
}

int64_t IntField(const Json& object, std::string_view key) {
  if (!object.is_object()) return 0;
  auto it = object.find(key);
  if (it == object.end()) return 0;
  if (it->is_number_integer()) return it->get<int64_t>();
  if (it->is_number()) return static_cast<int64_t>(it->get<double>());
  if (it->is_string() && AllDigits(it->get<std::string>())) {
    return std::stoll(it->get<std::string>());
  }
  return 0;
}

const Json& ArrayField(const Json& object, std::string_view key) {
  static const Json kEmpty = Json::array();
  if (!object.is_object()) return kEmpty;
  auto it = object.find(key);
  if (it == object.end() || !it->is_array()) return kEmpty;
  return *it;
}

std::vector<std::pair<std::string, std::string>> KeyValues(const Json& list) {
  std::vector<std::pair<std::string, std::string>> pairs;
  if (!list.is_array()) return pairs;
  for (const Json& item : list) pairs.emplace_back(Field(item, "key"), Field(item, "value"));
  return pairs;
}

Result<std::pair<std::string, std::string>> ParseKeyValue(std::string_view text,
                                                          std::string_view what) {
  size_t equals = text.find('=');
  if (equals == std::string_view::npos || equals == 0) {
    return InvalidArgument(std::string(what) + " '" + std::string(text) +
                           "': expected KEY=VALUE");
  }
  return std::make_pair(std::string(text.substr(0, equals)), std::string(text.substr(equals + 1)));
}

Result<Json> KeyValueList(const std::vector<std::string>& arguments, std::string_view what) {
  Json list = Json::array();
  for (const std::string& argument : arguments) {
    KILN_ASSIGN_OR_RETURN(auto pair, ParseKeyValue(argument, what));
    list.push_back({{"key", pair.first}, {"value", pair.second}});
  }
  return list;
}

std::string ViewTypeName(std::string_view view) {
  if (view == "deleted") return "DELETED_ONLY";
  if (view == "all") return "ALL";
  return "ACTIVE_ONLY";
}

bool AllDigits(std::string_view text) {
  if (text.empty()) return false;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

Result<Json> ResolveExperiment(MlflowClient& client, const std::string& id_or_name) {
  if (AllDigits(id_or_name)) {
    Result<Json> by_id = client.Call("GET", "/experiments/get", {{"experiment_id", id_or_name}});
    if (by_id.ok()) return (*by_id)["experiment"];
    if (by_id.status().code() != StatusCode::kNotFound) return by_id.status();
  }
  Result<Json> by_name =
      client.Call("GET", "/experiments/get-by-name", {{"experiment_name", id_or_name}});
  if (by_name.ok()) return (*by_name)["experiment"];
  if (by_name.status().code() == StatusCode::kNotFound) {
    return NotFound("no experiment with id or name '" + id_or_name + "'");
  }
  return by_name.status();
}

std::string FilterLiteral(std::string_view text) {
  char quote = text.find('\'') == std::string_view::npos ? '\'' : '"';
  return quote + std::string(text) + quote;
}

}  // namespace kiln::cli
