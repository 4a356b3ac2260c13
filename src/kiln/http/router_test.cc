#include "kiln/http/router.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "kiln/core/json.h"

namespace kiln::http {
namespace {

Handler Reply(std::string text) {
  return [text](const Request&, Response& response) { response.body = text; };
}

Router SampleRouter() {
  Router router;
  router.Add("GET", "/api/2.0/mlflow/runs/get", Reply("runs-get"));
  router.Add("POST", "/api/2.0/mlflow/runs/create", Reply("runs-create"));
  router.AddPrefix("GET", "/artifacts/", Reply("artifacts"));
  router.AddPrefix("GET", "/artifacts/models/", Reply("models"));
  router.AddPrefix("PUT", "/artifacts/", Reply("artifacts-put"));
  router.AddPrefix("GET", "/static", Reply("static-prefix"));
  router.Add("GET", "/static/index.html", Reply("index-exact"));
  return router;
}

Response DispatchTo(const Router& router, std::string method, std::string path) {
  Request request;
  request.method = std::move(method);
  request.path = std::move(path);
  request.target = request.path;
  Response response;
  router.Dispatch(request, response);
  return response;
}

TEST(Router, DispatchesByMethodExactPathAndLongestPrefix) {
  struct Case {
    std::string method;
    std::string path;
    int status;
    std::string body;  // checked when status is 200
  };
  const std::vector<Case> cases = {
      {"GET", "/api/2.0/mlflow/runs/get", 200, "runs-get"},
      {"POST", "/api/2.0/mlflow/runs/create", 200, "runs-create"},
      {"GET", "/artifacts/a/b.txt", 200, "artifacts"},
      {"GET", "/artifacts/models/m1/MLmodel", 200, "models"},  // longest prefix wins
      {"PUT", "/artifacts/models/x", 200, "artifacts-put"},
      {"GET", "/static/index.html", 200, "index-exact"},  // exact beats prefix
      {"GET", "/static/app.js", 200, "static-prefix"},
      {"HEAD", "/api/2.0/mlflow/runs/get", 200, "runs-get"},  // HEAD falls back to GET
      {"GET", "/api/2.0/mlflow/runs/get/", 404, ""},
      {"GET", "/nothing", 404, ""},
      {"GET", "/artifacts", 404, ""},
      {"POST", "/api/2.0/mlflow/runs/get", 405, ""},
      {"GET", "/api/2.0/mlflow/runs/create", 405, ""},
      {"DELETE", "/artifacts/x", 405, ""},
  };
  Router router = SampleRouter();
  for (const auto& c : cases) {
    Response response = DispatchTo(router, c.method, c.path);
    EXPECT_EQ(response.status, c.status) << c.method << " " << c.path;
    if (c.status == 200) {
      EXPECT_EQ(response.body, c.body) << c.method << " " << c.path;
    }
  }
}

TEST(Router, DefaultNotFoundWritesMlflowErrorJson) {
  Router router = SampleRouter();
  Response response = DispatchTo(router, "GET", "/no/\"such\"/path");
  EXPECT_EQ(response.status, 404);
  EXPECT_EQ(response.content_type, "application/json");
  Json body = Json::parse(response.body);
  EXPECT_EQ(body["error_code"], "ENDPOINT_NOT_FOUND");
  EXPECT_NE(body["message"].get<std::string>().find("/no/\"such\"/path"), std::string::npos);

  Response not_allowed = DispatchTo(router, "DELETE", "/api/2.0/mlflow/runs/get");
  EXPECT_EQ(not_allowed.status, 405);
  EXPECT_EQ(Json::parse(not_allowed.body)["error_code"], "ENDPOINT_NOT_FOUND");
}

TEST(Router, DefaultNotFoundSurvivesInvalidUtf8InPath) {
  Router router;
  Response response = DispatchTo(router, "GET", "/bad\xff\xfe");
  EXPECT_EQ(response.status, 404);
  EXPECT_TRUE(Json::accept(response.body));
}

TEST(Router, CustomNotFoundSeesPresetStatus) {
  Router router = SampleRouter();
  router.SetNotFound([](const Request& request, Response& response) {
    response.body = "custom " + std::to_string(response.status) + " " + request.path;
  });
  EXPECT_EQ(DispatchTo(router, "GET", "/x").body, "custom 404 /x");
  Response response = DispatchTo(router, "PATCH", "/api/2.0/mlflow/runs/get");
  EXPECT_EQ(response.status, 405);
  EXPECT_EQ(response.body, "custom 405 /api/2.0/mlflow/runs/get");
}

}  // namespace
}  // namespace kiln::http
