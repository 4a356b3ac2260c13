#include "kiln/cli/mlflow_client.h"

#include <utility>
#include <vector>

#include "kiln/api/app.h"
#include "kiln/api/errors.h"
#include "kiln/core/log.h"
#include "kiln/http/client.h"
#include "kiln/http/message.h"

namespace kiln::cli {
namespace {

constexpr std::string_view kApiPrefix = "/api/2.0/mlflow";

std::string QueryValue(const Json& value) {
  return value.is_string() ? value.get<std::string>() : value.dump();
}

// The request as MLflow clients send it: GET fields in the query, everything else a JSON body.
http::Request BuildRequest(std::string_view method, std::string_view path, const Json& request) {
  http::Request out;
  out.method = std::string(method);
  out.path = std::string(kApiPrefix) + std::string(path);
  out.target = out.path;
  if (method == "GET") {
    for (const auto& [key, value] : request.items()) {
      if (value.is_array()) {
        for (const Json& element : value) out.query.emplace_back(key, QueryValue(element));
      } else if (!value.is_null()) {
        out.query.emplace_back(key, QueryValue(value));
      }
    }
    std::string query;
    for (const auto& [key, value] : out.query) {
      query += query.empty() ? "?" : "&";
      query += http::PercentEncode(key) + "=" + http::PercentEncode(value);
    }
    out.target += query;
  } else {
    out.body = request.dump(-1, ' ', false, Json::error_handler_t::replace);
    out.headers.emplace_back("Content-Type", "application/json");
  }
  return out;
}

Result<Json> DecodeReply(int http_status, const std::string& body) {
  if (http_status != 200) return StatusFromMlflowError(http_status, body);
  if (body.empty()) return Json::object();
  Result<Json> parsed = ParseJson(body);
  if (!parsed.ok()) return Internal("the store replied with malformed JSON: " + parsed.status().message());
  return parsed;
}

// A local store: kiln server's routes (api::App), dispatched in-process without listening.
class LocalClient : public MlflowClient {
 public:
  static Result<std::unique_ptr<LocalClient>> Open(const StoreLocation& location) {
    api::ServerConfig config;
    config.store_uri = location.uri;
    config.artifact_root = location.artifact_root;
    KILN_ASSIGN_OR_RETURN(std::unique_ptr<api::App> app, api::App::Open(config));
    return std::unique_ptr<LocalClient>(new LocalClient(std::move(app), RedactUri(location.uri)));
  }

  Result<Json> Call(std::string_view method, std::string_view path, const Json& request) override {
    http::Request http_request = BuildRequest(method, path, request);
    http::Response response;
    app_->Dispatch(http_request, response);
    return DecodeReply(response.status, response.body);
  }

  std::string DisplayName() const override { return display_name_; }

 private:
  LocalClient(std::unique_ptr<api::App> app, std::string display_name)
      : app_(std::move(app)), display_name_(std::move(display_name)) {}
  std::unique_ptr<api::App> app_;
  std::string display_name_;
};

// A remote kiln (or MLflow) server.
class RemoteClient : public MlflowClient {
 public:
  explicit RemoteClient(std::string base_url) : base_url_(std::move(base_url)) {}

  Result<Json> Call(std::string_view method, std::string_view path, const Json& request) override {
    http::Request http_request = BuildRequest(method, path, request);
    std::vector<std::pair<std::string, std::string>> headers = http_request.headers;
    Result<http::ClientResponse> response =
        client_.Send(http_request.method, base_url_ + http_request.target, http_request.body,
                     headers);
    if (!response.ok()) {
      return Status(response.status().code(), "cannot reach kiln server at " + RedactUri(base_url_) +
                                                  ": " + response.status().message());
    }
    return DecodeReply(response->status, response->body);
  }

  std::string DisplayName() const override { return RedactUri(base_url_); }

 private:
  std::string base_url_;
  http::Client client_;
};

}  // namespace

Status StatusFromMlflowError(int http_status, std::string_view body) {
  std::string message;
  std::string error_code;
  Result<Json> parsed = ParseJson(body);
  if (parsed.ok() && parsed->is_object()) {
    if (auto it = parsed->find("message"); it != parsed->end() && it->is_string()) {
      message = it->get<std::string>();
    }
    if (auto it = parsed->find("error_code"); it != parsed->end() && it->is_string()) {
      error_code = it->get<std::string>();
    }
  }
  if (message.empty()) {
    std::string excerpt(body.substr(0, 200));
    message = "the server replied HTTP " + std::to_string(http_status) +
              (excerpt.empty() ? "" : ": " + excerpt);
  }
  // A kiln server may name the exact Status code (StatusCodeName) beside MLflow's error_code,
  // which cannot tell every code apart (ValidationFailed and InvalidArgument are both
  // INVALID_PARAMETER_VALUE).
  if (parsed.ok() && parsed->is_object()) {
    if (auto it = parsed->find("kiln_code"); it != parsed->end() && it->is_string()) {
      for (int code = static_cast<int>(StatusCode::kInvalidArgument);
           code <= static_cast<int>(StatusCode::kInternal); ++code) {
        if (StatusCodeName(static_cast<StatusCode>(code)) == it->get<std::string>()) {
          return Status(static_cast<StatusCode>(code), message);
        }
      }
    }
  }
  if (!error_code.empty()) {
    // kiln's own mapping, inverted: the first StatusCode whose name matches.
    for (int code = static_cast<int>(StatusCode::kInvalidArgument);
         code <= static_cast<int>(StatusCode::kInternal); ++code) {
      if (api::MlflowErrorCode(static_cast<StatusCode>(code)) == error_code) {
        return Status(static_cast<StatusCode>(code), message);
      }
    }
    // Codes a real MLflow server sends that kiln does not.
    if (error_code == "BAD_REQUEST" || error_code == "INVALID_STATE_TRANSITION") {
      return InvalidArgument(message);
    }
    if (error_code == "ALREADY_EXISTS") return AlreadyExists(message);
    if (error_code == "ABORTED") return Conflict(message);
    if (error_code == "ENDPOINT_NOT_FOUND" || error_code == "NOT_FOUND") {
      return NotImplemented("the server does not serve this request: " + message);
    }
  }
  switch (http_status) {
    case 400: return InvalidArgument(message);
    case 401: return Status(StatusCode::kUnauthenticated, message);
    case 403: return Status(StatusCode::kPermissionDenied, message);
    case 404: return NotFound(message);
    case 409: return Conflict(message);
    case 429: return ResourceExhausted(message);
    case 503: return Unavailable(message);
    default: return Internal(message);
  }
}

Result<std::unique_ptr<MlflowClient>> OpenMlflowClient(const StoreLocation& location) {
  if (location.kind == StoreLocation::Kind::kRemote) {
    return std::unique_ptr<MlflowClient>(std::make_unique<RemoteClient>(location.uri));
  }
  KILN_ASSIGN_OR_RETURN(std::unique_ptr<LocalClient> client, LocalClient::Open(location));
  return std::unique_ptr<MlflowClient>(std::move(client));
}

Result<Json> CallAllPages(MlflowClient& client, std::string_view method, std::string_view path,
                          Json request, const std::string& list_field, int64_t max_items,
                          int64_t page_size) {
  Json items = Json::array();
  while (true) {
    int64_t wanted = page_size;
    if (max_items > 0) wanted = std::min<int64_t>(page_size, max_items - static_cast<int64_t>(items.size()));
    request["max_results"] = wanted;
    KILN_ASSIGN_OR_RETURN(Json page, client.Call(method, path, request));
    if (auto it = page.find(list_field); it != page.end() && it->is_array()) {
      for (Json& item : *it) items.push_back(std::move(item));
    }
    if (max_items > 0 && static_cast<int64_t>(items.size()) >= max_items) break;
    auto token = page.find("next_page_token");
    if (token == page.end() || !token->is_string() || token->get<std::string>().empty()) break;
    request["page_token"] = token->get<std::string>();
  }
  Json result = Json::object();
  if (!items.empty()) result[list_field] = std::move(items);
  return result;
}

}  // namespace kiln::cli
