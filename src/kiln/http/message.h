// HTTP request and response values, independent of the server's implementation (Boost.Beast
// stays inside server.cc so that only one translation unit pays its compile time).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kiln::http {

struct Request {
  std::string method;  // "GET", "POST", ... as sent
  std::string target;  // raw target: path plus query
  std::string path;    // percent-decoded path, no query
  // Query parameters in order, percent-decoded ('+' is a space). Repeated keys repeat.
  std::vector<std::pair<std::string, std::string>> query;
  // Header names as sent; look them up with Header(), which ignores case.
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::string remote_address;

  // The first value of a header, case-insensitively, or "" when absent.
  std::string_view Header(std::string_view name) const;
  // The first value of a query parameter.
  std::optional<std::string> QueryParam(std::string_view name) const;
  // All values of a repeated query parameter; also collects MLflow 2.x's `name[0]=v` form.
  std::vector<std::string> QueryParams(std::string_view name) const;
};

struct Response {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  // Extra headers. The server writes Content-Length and Connection itself (a handler's
  // "Connection: close" is honoured) and drops a Content-Type here when content_type is set.
  std::vector<std::pair<std::string, std::string>> headers;

  void SetHeader(std::string name, std::string value) {
    headers.emplace_back(std::move(name), std::move(value));
  }
};

// A handler fills `response`. It runs on one of the server's threads and may block (database
// work); it must not throw (the server turns an escaped exception into a 500 and logs it).
using Handler = std::function<void(const Request& request, Response& response)>;

// Splits "a=1&b=x%20y" into decoded pairs.
std::vector<std::pair<std::string, std::string>> ParseQuery(std::string_view query);
// Percent-decoding; `plus_is_space` for query strings. Invalid escapes are kept literally.
std::string PercentDecode(std::string_view text, bool plus_is_space);
std::string PercentEncode(std::string_view text);

}  // namespace kiln::http
