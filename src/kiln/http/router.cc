#include "kiln/http/router.h"

#include <cassert>

#include "kiln/core/json.h"

namespace kiln::http {
namespace {

bool StartsWith(std::string_view text, std::string_view prefix) {
  return text.size() >= prefix.size() && text.substr(0, prefix.size()) == prefix;
}

// The default not-found handler: MLflow's error shape. `response.status` arrives as 404 or 405.
void DefaultNotFound(const Request& request, Response& response) {
  Json body;
  body["error_code"] = "ENDPOINT_NOT_FOUND";
  if (response.status == 405) {
    body["message"] = "method " + request.method + " is not allowed for " + request.path;
  } else {
    body["message"] = "no endpoint found for " + request.method + " " + request.path;
  }
  response.content_type = "application/json";
  // Paths arrive percent-decoded and may hold any byte; replace invalid UTF-8 rather than throw.
  response.body = body.dump(-1, ' ', false, Json::error_handler_t::replace);
}

}  // namespace

void Router::Add(std::string method, std::string path, Handler handler) {
  assert(handler && "Router::Add needs a handler");
  exact_[{std::move(method), std::move(path)}] = std::move(handler);
}

void Router::AddPrefix(std::string method, std::string prefix, Handler handler) {
  assert(handler && "Router::AddPrefix needs a handler");
  prefixes_.push_back({{std::move(method), std::move(prefix)}, std::move(handler)});
}

const Handler* Router::Find(std::string_view method, std::string_view path) const {
  // The key is reused per thread so that a lookup does not allocate.
  thread_local std::pair<std::string, std::string> key;
  key.first.assign(method);
  key.second.assign(path);
  if (auto it = exact_.find(key); it != exact_.end()) return &it->second;

  const Handler* best = nullptr;
  size_t best_length = 0;
  for (const auto& [route, handler] : prefixes_) {
    if (route.first == method && StartsWith(path, route.second) &&
        (best == nullptr || route.second.size() > best_length)) {
      best = &handler;
      best_length = route.second.size();
    }
  }
  return best;
}

bool Router::PathKnown(std::string_view path) const {
  for (const auto& [route, handler] : exact_) {
    if (route.second == path) return true;
  }
  for (const auto& [route, handler] : prefixes_) {
    if (StartsWith(path, route.second)) return true;
  }
  return false;
}

void Router::Dispatch(const Request& request, Response& response) const {
  const Handler* handler = Find(request.method, request.path);
  // HEAD is GET without a body (the server drops the body), unless a HEAD route exists.
  if (handler == nullptr && request.method == "HEAD") handler = Find("GET", request.path);
  if (handler != nullptr) {
    (*handler)(request, response);
    return;
  }
  response.status = PathKnown(request.path) ? 405 : 404;
  if (not_found_) {
    not_found_(request, response);
  } else {
    DefaultNotFound(request, response);
  }
}

}  // namespace kiln::http
