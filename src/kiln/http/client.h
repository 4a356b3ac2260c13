// A small blocking HTTP client on libcurl, for the CLI talking to a remote kiln server and for
// tests. One Client per thread (a Client reuses its connection: keep-alive).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "kiln/core/status.h"

namespace kiln::http {

struct ClientResponse {
  int status = 0;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // names lowercased
  std::string Header(const std::string& lowercase_name) const;
};

class Client {
 public:
  Client();
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // `url` is absolute ("http://127.0.0.1:5000/api/2.0/mlflow/runs/get?run_id=..").
  // A network failure (refused, timeout) is IoError/Unavailable; any HTTP status is a response.
  Result<ClientResponse> Send(const std::string& method, const std::string& url,
                              const std::string& body = "",
                              const std::vector<std::pair<std::string, std::string>>& headers = {},
                              int timeout_ms = 30000);
  Result<ClientResponse> Get(const std::string& url) { return Send("GET", url); }
  // GET whose body goes to `write` piece by piece as it arrives, never held whole (downloads of
  // any size); the returned response's body is empty. A non-ok Status from `write` aborts the
  // transfer and is returned. Bodies of error replies (status >= 400) are collected instead,
  // so that their JSON can be read.
  Result<ClientResponse> Download(const std::string& url,
                                  const std::function<Status(std::string_view)>& write,
                                  int timeout_ms = 300000);
  Result<ClientResponse> PostJson(const std::string& url, const std::string& json) {
    return Send("POST", url, json, {{"Content-Type", "application/json"}});
  }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kiln::http
