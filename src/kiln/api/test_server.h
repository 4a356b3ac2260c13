// Test support for the api layer's tests: a real kiln server (api::App) on a loopback port over a
// fresh database of the given backend, and a client that speaks JSON to it.
#pragma once

#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "kiln/api/app.h"
#include "kiln/core/json.h"
#include "kiln/http/client.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_database.h"

namespace kiln::api::testing {

struct Reply {
  int status = 0;
  std::string body;
  Json json;  // the parsed body, or null when it is not JSON
  std::string content_type;
};

class TestServer {
 public:
  explicit TestServer(store::Backend backend) : database_(backend) {
    ServerConfig config;
    config.store_uri = database_.uri();
    config.artifact_root = artifacts_.Join("artifacts");
    config.http.port = 0;
    config.http.threads = 4;
    config.http.access_log = false;
    Result<std::unique_ptr<App>> app = App::Open(config);
    if (!app.ok()) throw std::runtime_error("App::Open: " + app.status().ToString());
    app_ = std::move(*app);
    Status started = app_->Start();
    if (!started.ok()) throw std::runtime_error("App::Start: " + started.ToString());
    base_url_ = "http://127.0.0.1:" + std::to_string(app_->port());
  }

  App& app() { return *app_; }
  const std::string& base_url() const { return base_url_; }
  std::string artifact_root() const { return artifacts_.Join("artifacts"); }

  // Sends a request; `path` includes any query string. JSON content type when `json_body`.
  Reply Send(const std::string& method, const std::string& path, const std::string& body = "",
             bool json_body = true) {
    std::vector<std::pair<std::string, std::string>> headers;
    if (json_body && !body.empty()) headers.emplace_back("Content-Type", "application/json");
    Result<http::ClientResponse> response = client_.Send(method, base_url_ + path, body, headers);
    Reply reply;
    if (!response.ok()) {
      ADD_FAILURE() << method << " " << path << ": " << response.status().ToString();
      return reply;
    }
    reply.status = response->status;
    reply.body = response->body;
    reply.content_type = response->Header("content-type");
    Json parsed = Json::parse(reply.body, nullptr, /*allow_exceptions=*/false);
    if (!parsed.is_discarded()) reply.json = std::move(parsed);
    return reply;
  }
  Reply Post(const std::string& path, const Json& body) { return Send("POST", path, body.dump()); }
  Reply Get(const std::string& path) { return Send("GET", path); }

  // MLflow RPC helpers: /api/2.0/mlflow + path; fail the test unless 200.
  Json Rpc(const std::string& method, const std::string& path, const Json& body = Json::object()) {
    Reply reply = method == "GET" ? Get("/api/2.0/mlflow" + path)
                                  : Send(method, "/api/2.0/mlflow" + path, body.dump());
    EXPECT_EQ(reply.status, 200) << method << " " << path << " -> " << reply.body;
    return reply.json;
  }

 private:
  kiln::testing::TestDatabase database_;
  kiln::testing::TempDir artifacts_;
  std::unique_ptr<App> app_;
  std::string base_url_;
  http::Client client_;
};

}  // namespace kiln::api::testing
