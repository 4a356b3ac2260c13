#include "kiln/api/request.h"

#include <map>

namespace kiln::api {
namespace {

bool IsJsonContentType(std::string_view content_type) {
  // "application/json" optionally followed by parameters such as "; charset=utf-8".
  size_t semicolon = content_type.find(';');
  std::string_view media = content_type.substr(0, semicolon);
  while (!media.empty() && media.back() == ' ') media.remove_suffix(1);
  while (!media.empty() && media.front() == ' ') media.remove_prefix(1);
  if (media.size() != 16) return false;
  for (size_t i = 0; i < media.size(); ++i) {
    char c = media[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != "application/json"[i]) return false;
  }
  return true;
}

}  // namespace

Result<Json> DecodeRequest(const http::Request& request) {
  bool has_body = !request.body.empty();
  if (request.method != "GET" && !has_body) {
    // MLflow reads the fields of POST, PATCH and DELETE from the JSON body only: a bodiless
    // DELETE with its fields in the query string gets "Missing value for required parameter".
    return Json::object();
  }
  if (request.method == "GET") {
    Json object = Json::object();
    for (const auto& [raw_key, value] : request.query) {
      std::string key = raw_key;
      bool indexed = false;
      size_t bracket = key.find('[');
      if (bracket != std::string::npos && !key.empty() && key.back() == ']') {
        key = key.substr(0, bracket);
        indexed = true;
      }
      auto it = object.find(key);
      if (it == object.end()) {
        object[key] = indexed ? Json::array({value}) : Json(value);
      } else if (it->is_array()) {
        it->push_back(value);
      } else {
        Json previous = *it;
        *it = Json::array({previous, value});
      }
    }
    return object;
  }
  if (!IsJsonContentType(request.Header("Content-Type"))) {
    return InvalidArgument("Content-Type must be one of ['application/json']");
  }
  KILN_ASSIGN_OR_RETURN(Json parsed, ParseJson(request.body));
  if (!parsed.is_object()) {
    return InvalidArgument("request body must be a JSON object, got " +
                           std::string(parsed.type_name()));
  }
  return parsed;
}

Result<std::string> RequireString(const Json& object, std::string_view field) {
  KILN_ASSIGN_OR_RETURN(auto value, GetString(object, field));
  if (!value.has_value() || value->empty()) {
    return InvalidArgument("Missing value for required parameter '" + std::string(field) +
                           "'. See the API docs for more information about request parameters.");
  }
  return std::move(*value);
}

void WriteJson(const Json& body, http::Response& response) {
  response.status = 200;
  response.content_type = "application/json";
  response.body = body.dump(-1, ' ', false, Json::error_handler_t::replace);
}

}  // namespace kiln::api
