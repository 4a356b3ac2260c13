// Maps (method, path) to handlers. Exact paths and path prefixes ("/api/2.0/mlflow-artifacts/
// artifacts/" matches everything below it). Exact matches win over prefixes; the longest prefix
// wins among prefixes. Built before the server starts; read-only afterwards (thread-safe reads).
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "kiln/http/message.h"

namespace kiln::http {

class Router {
 public:
  void Add(std::string method, std::string path, Handler handler);
  void AddPrefix(std::string method, std::string prefix, Handler handler);
  // Called when no route matches the path (404), or the path matches with another method (405).
  // `response.status` is already 404 or 405 when the handler runs. The default writes MLflow's
  // {"error_code":"ENDPOINT_NOT_FOUND","message":...}.
  void SetNotFound(Handler handler) { not_found_ = std::move(handler); }

  // Dispatches `request`; always fills `response`. A HEAD request with no HEAD route goes to the
  // GET route (the server drops the body).
  void Dispatch(const Request& request, Response& response) const;

 private:
  // The handler for exactly `method`, or nullptr.
  const Handler* Find(std::string_view method, std::string_view path) const;
  // True when some route (any method) matches `path`: the difference between 404 and 405.
  bool PathKnown(std::string_view path) const;

  std::map<std::pair<std::string, std::string>, Handler> exact_;
  std::vector<std::pair<std::pair<std::string, std::string>, Handler>> prefixes_;
  Handler not_found_;
};

}  // namespace kiln::http
