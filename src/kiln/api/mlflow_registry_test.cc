// The model registry RPCs over real HTTP: a kiln::http::Server on a loopback port serving only
// RegisterRegistryRoutes, driven by kiln::http::Client, on both backends. Expected replies are
// MLflow 2.12's (shared/reference/mlflow/edge_cases_2.12.txt).
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "kiln/api/mlflow_routes.h"
#include "kiln/core/json.h"
#include "kiln/http/client.h"
#include "kiln/http/server.h"
#include "kiln/registry/registry_store.h"
#include "tests/support/test_database.h"

namespace kiln::api {
namespace {

class FixedClock : public Clock {
 public:
  int64_t NowMillis() const override { return 1795720842010; }
  int64_t MonotonicNanos() const override { return 0; }
};

struct Reply {
  int status = 0;
  std::string body;
  Json json;
};

class MlflowRegistryTest : public ::testing::TestWithParam<store::Backend> {
 protected:
  void SetUp() override {
    auto registry = registry::RegistryStore::Open(database_.db(), &clock_);
    ASSERT_TRUE(registry.ok()) << registry.status().ToString();
    registry_ = std::move(*registry);
    http::Router router;
    RegisterRegistryRoutes(router, *registry_);
    http::ServerOptions options;
    options.port = 0;
    options.threads = 2;
    options.access_log = false;
    auto server = http::Server::Start(options, std::move(router));
    ASSERT_TRUE(server.ok()) << server.status().ToString();
    server_ = std::move(*server);
    base_ = "http://127.0.0.1:" + std::to_string(server_->port());
  }

  void TearDown() override {
    if (server_) server_->Stop();
  }

  // `path` is below /api/2.0/mlflow unless it starts with "/ajax-api".
  Reply Send(const std::string& method, const std::string& path, const std::string& body = "",
             const std::string& content_type = "application/json") {
    std::string full = path.rfind("/ajax-api", 0) == 0 ? path : "/api/2.0/mlflow" + path;
    std::vector<std::pair<std::string, std::string>> headers;
    if (!body.empty() && !content_type.empty()) headers.emplace_back("Content-Type", content_type);
    auto response = client_.Send(method, base_ + full, body, headers);
    Reply reply;
    if (!response.ok()) {
      ADD_FAILURE() << method << " " << full << ": " << response.status().ToString();
      return reply;
    }
    reply.status = response->status;
    reply.body = response->body;
    reply.json = Json::parse(reply.body, nullptr, /*allow_exceptions=*/false);
    return reply;
  }
  Reply Send(const std::string& method, const std::string& path, const Json& body) {
    return Send(method, path, body.dump());
  }

  // Sends and expects 200.
  Json Ok(const std::string& method, const std::string& path, const Json& body = Json()) {
    Reply reply = body.is_null() ? Send(method, path) : Send(method, path, body);
    EXPECT_EQ(reply.status, 200) << method << " " << path << " -> " << reply.body;
    return reply.json;
  }

  void ExpectError(const Reply& reply, int status, const std::string& error_code,
                   const std::string& message) {
    EXPECT_EQ(reply.status, status) << reply.body;
    EXPECT_EQ(reply.json, (Json{{"error_code", error_code}, {"message", message}})) << reply.body;
  }

  void CreateModelWithVersion(const std::string& name) {
    Ok("POST", "/registered-models/create", Json{{"name", name}});
    Ok("POST", "/model-versions/create",
       Json{{"name", name}, {"source", "mlflow-artifacts:/x"}});
  }

  kiln::testing::TestDatabase database_{GetParam()};
  FixedClock clock_;
  std::unique_ptr<registry::RegistryStore> registry_;
  std::unique_ptr<http::Server> server_;
  http::Client client_;
  std::string base_;
};

TEST_P(MlflowRegistryTest, CreateRegisteredModelReturnsMlflowsShape) {
  Json reply = Ok("POST", "/registered-models/create",
                  Json{{"name", "credit"},
                       {"tags", Json::array({{{"key", "team"}, {"value", "risk"}}})}});
  EXPECT_EQ(reply, Json::parse(R"({"registered_model": {
      "name": "credit", "creation_timestamp": 1795720842010,
      "last_updated_timestamp": 1795720842010, "description": "",
      "tags": [{"key": "team", "value": "risk"}]}})"));
}

TEST_P(MlflowRegistryTest, ExistingNameIs400ResourceAlreadyExists) {
  Ok("POST", "/registered-models/create", Json{{"name", "credit"}});
  ExpectError(Send("POST", "/registered-models/create", Json{{"name", "credit"}}), 400,
              "RESOURCE_ALREADY_EXISTS", "Registered Model (name=credit) already exists.");
}

TEST_P(MlflowRegistryTest, UnknownModelIs404ResourceDoesNotExist) {
  ExpectError(Send("GET", "/registered-models/get?name=nope"), 404, "RESOURCE_DOES_NOT_EXIST",
              "Registered Model with name=nope not found");
  ExpectError(Send("POST", "/model-versions/create", Json{{"name", "nope"}, {"source", "s"}}),
              404, "RESOURCE_DOES_NOT_EXIST", "Registered Model with name=nope not found");
  CreateModelWithVersion("m");
  ExpectError(Send("GET", "/model-versions/get?name=m&version=2"), 404,
              "RESOURCE_DOES_NOT_EXIST", "Model Version (name=m, version=2) not found");
}

TEST_P(MlflowRegistryTest, GetModelVersionMatchesObservedReply) {
  CreateModelWithVersion("edge-m");
  Json reply = Ok("GET", "/model-versions/get?name=edge-m&version=1");
  EXPECT_EQ(reply, Json::parse(R"({"model_version": {
      "name": "edge-m", "version": "1", "creation_timestamp": 1795720842010,
      "last_updated_timestamp": 1795720842010, "current_stage": "None", "description": "",
      "source": "mlflow-artifacts:/x", "run_id": "", "status": "READY", "run_link": ""}})"));
}

TEST_P(MlflowRegistryTest, VersionsAreStringsAndCount) {
  CreateModelWithVersion("m");
  Json second = Ok("POST", "/model-versions/create", Json{{"name", "m"}, {"source", "s3://2"}});
  EXPECT_EQ(second["model_version"]["version"], "2");
  ExpectError(Send("GET", "/model-versions/get?name=m&version=abc"), 400,
              "INVALID_PARAMETER_VALUE", "Model version must be an integer, got 'abc'");
}

TEST_P(MlflowRegistryTest, AliasesSetGetAndShowOnModelAndVersion) {
  CreateModelWithVersion("m");
  EXPECT_EQ(Ok("POST", "/registered-models/alias",
               Json{{"name", "m"}, {"alias", "champion"}, {"version", "1"}}),
            Json::object());
  Json by_alias = Ok("GET", "/registered-models/alias?name=m&alias=champion");
  EXPECT_EQ(by_alias["model_version"]["version"], "1");
  EXPECT_EQ(by_alias["model_version"]["aliases"], Json::array({"champion"}));
  Json model = Ok("GET", "/registered-models/get?name=m");
  EXPECT_EQ(model["registered_model"]["aliases"],
            Json::parse(R"([{"alias": "champion", "version": "1"}])"));
  EXPECT_EQ(model["registered_model"]["latest_versions"][0]["version"], "1");
}

TEST_P(MlflowRegistryTest, ReservedAliasIs400) {
  CreateModelWithVersion("m");
  ExpectError(Send("POST", "/registered-models/alias",
                   Json{{"name", "m"}, {"alias", "v1"}, {"version", "1"}}),
              400, "INVALID_PARAMETER_VALUE", "Version alias name 'v1' is reserved.");
}

TEST_P(MlflowRegistryTest, UnsetAliasIs400AsMlflowAnswers) {
  CreateModelWithVersion("m");
  ExpectError(Send("GET", "/registered-models/alias?name=m&alias=prod"), 400,
              "INVALID_PARAMETER_VALUE", "Registered model alias prod not found.");
  ExpectError(Send("GET", "/registered-models/alias?name=nope&alias=prod"), 404,
              "RESOURCE_DOES_NOT_EXIST", "Registered Model with name=nope not found");
}

TEST_P(MlflowRegistryTest, DeleteAliasNeedsAJsonBody) {
  CreateModelWithVersion("m");
  Ok("POST", "/registered-models/alias", Json{{"name", "m"}, {"alias", "prod"}, {"version", "1"}});
  ExpectError(Send("DELETE", "/registered-models/alias?name=m&alias=prod"), 400,
              "INVALID_PARAMETER_VALUE",
              "Missing value for required parameter 'name'. See the API docs for more "
              "information about request parameters.");
  EXPECT_EQ(Ok("DELETE", "/registered-models/alias", Json{{"name", "m"}, {"alias", "prod"}}),
            Json::object());
  EXPECT_EQ(Send("GET", "/registered-models/alias?name=m&alias=prod").status, 400);
}

TEST_P(MlflowRegistryTest, InvalidStageIs400) {
  CreateModelWithVersion("m");
  ExpectError(Send("POST", "/model-versions/transition-stage",
                   Json{{"name", "m"},
                        {"version", "1"},
                        {"stage", "Prod"},
                        {"archive_existing_versions", false}}),
              400, "INVALID_PARAMETER_VALUE",
              "Invalid Model Version stage: Prod. Value must be one of None, Staging, "
              "Production, Archived.");
}

TEST_P(MlflowRegistryTest, TransitionStageAndLatestVersions) {
  CreateModelWithVersion("m");
  Ok("POST", "/model-versions/create", Json{{"name", "m"}, {"source", "s3://2"}});
  Json moved = Ok("POST", "/model-versions/transition-stage",
                  Json{{"name", "m"},
                       {"version", "1"},
                       {"stage", "production"},
                       {"archive_existing_versions", true}});
  EXPECT_EQ(moved["model_version"]["current_stage"], "Production");
  Json latest = Ok("POST", "/registered-models/get-latest-versions",
                   Json{{"name", "m"}, {"stages", Json::array({"Production"})}});
  ASSERT_EQ(latest["model_versions"].size(), 1u);
  EXPECT_EQ(latest["model_versions"][0]["version"], "1");
  Json via_get = Ok("GET", "/registered-models/get-latest-versions?name=m&stages=None");
  ASSERT_EQ(via_get["model_versions"].size(), 1u);
  EXPECT_EQ(via_get["model_versions"][0]["version"], "2");
  ExpectError(Send("POST", "/model-versions/transition-stage",
                   Json{{"name", "m"}, {"version", "1"}, {"stage", "Staging"}}),
              400, "INVALID_PARAMETER_VALUE",
              "Missing value for required parameter 'archive_existing_versions'. See the API "
              "docs for more information about request parameters.");
}

TEST_P(MlflowRegistryTest, WrongContentTypeIs400) {
  ExpectError(Send("POST", "/registered-models/create", R"({"name": "m"})", "text/plain"), 400,
              "INVALID_PARAMETER_VALUE", "Content-Type must be one of ['application/json']");
}

TEST_P(MlflowRegistryTest, MalformedJsonIs400) {
  Reply reply = Send("POST", "/registered-models/create", std::string(R"({"name": )"));
  EXPECT_EQ(reply.status, 400) << reply.body;
  EXPECT_EQ(reply.json["error_code"], "INVALID_PARAMETER_VALUE");
}

TEST_P(MlflowRegistryTest, AjaxApiPrefixServesTheSameRpcs) {
  Reply created = Send("POST", "/ajax-api/2.0/mlflow/registered-models/create",
                       Json{{"name", "ajax"}}.dump());
  EXPECT_EQ(created.status, 200) << created.body;
  Reply got = Send("GET", "/ajax-api/2.0/mlflow/registered-models/get?name=ajax");
  EXPECT_EQ(got.status, 200) << got.body;
  EXPECT_EQ(got.json["registered_model"]["name"], "ajax");
}

TEST_P(MlflowRegistryTest, RenameUpdateTagsAndDelete) {
  CreateModelWithVersion("old");
  Json renamed = Ok("POST", "/registered-models/rename", Json{{"name", "old"}, {"new_name", "new"}});
  EXPECT_EQ(renamed["registered_model"]["name"], "new");
  Json updated =
      Ok("PATCH", "/registered-models/update", Json{{"name", "new"}, {"description", "d"}});
  EXPECT_EQ(updated["registered_model"]["description"], "d");
  Json version = Ok("PATCH", "/model-versions/update",
                    Json{{"name", "new"}, {"version", "1"}, {"description", "first"}});
  EXPECT_EQ(version["model_version"]["description"], "first");

  Ok("POST", "/registered-models/set-tag", Json{{"name", "new"}, {"key", "k"}, {"value", "v"}});
  Ok("POST", "/model-versions/set-tag",
     Json{{"name", "new"}, {"version", "1"}, {"key", "vk"}, {"value", ""}});
  EXPECT_EQ(Ok("GET", "/registered-models/get?name=new")["registered_model"]["tags"],
            Json::parse(R"([{"key": "k", "value": "v"}])"));
  EXPECT_EQ(Ok("GET", "/model-versions/get?name=new&version=1")["model_version"]["tags"],
            Json::parse(R"([{"key": "vk", "value": ""}])"));
  Ok("DELETE", "/registered-models/delete-tag", Json{{"name", "new"}, {"key", "k"}});
  Ok("DELETE", "/model-versions/delete-tag", Json{{"name", "new"}, {"version", "1"}, {"key", "vk"}});
  EXPECT_FALSE(Ok("GET", "/registered-models/get?name=new")["registered_model"].contains("tags"));

  EXPECT_EQ(Ok("GET", "/model-versions/get-download-uri?name=new&version=1"),
            (Json{{"artifact_uri", "mlflow-artifacts:/x"}}));
  EXPECT_EQ(Ok("DELETE", "/model-versions/delete", Json{{"name", "new"}, {"version", "1"}}),
            Json::object());
  EXPECT_EQ(Ok("DELETE", "/registered-models/delete", Json{{"name", "new"}}), Json::object());
  EXPECT_EQ(Send("GET", "/registered-models/get?name=new").status, 404);
}

TEST_P(MlflowRegistryTest, SearchesPageAndOmitEmptyFields) {
  EXPECT_EQ(Ok("GET", "/registered-models/search"), Json::object());
  EXPECT_EQ(Ok("GET", "/model-versions/search"), Json::object());
  for (const char* name : {"a", "b", "c"}) CreateModelWithVersion(name);
  Json first = Ok("GET", "/registered-models/search?max_results=2&order_by=name%20ASC");
  ASSERT_EQ(first["registered_models"].size(), 2u);
  EXPECT_EQ(first["registered_models"][0]["name"], "a");
  ASSERT_TRUE(first.contains("next_page_token"));
  Json second = Ok("GET", "/registered-models/search?max_results=2&order_by=name%20ASC&page_token=" +
                              first["next_page_token"].get<std::string>());
  ASSERT_EQ(second["registered_models"].size(), 1u);
  EXPECT_EQ(second["registered_models"][0]["name"], "c");
  EXPECT_FALSE(second.contains("next_page_token"));

  Json versions = Ok("GET", "/model-versions/search?filter=name%3D%27b%27");
  ASSERT_EQ(versions["model_versions"].size(), 1u);
  EXPECT_EQ(versions["model_versions"][0]["name"], "b");

  ExpectError(Send("GET", "/registered-models/search?max_results=1001"), 400,
              "INVALID_PARAMETER_VALUE",
              "Invalid value for request parameter max_results. It must be at most 1000, but got "
              "value 1001");
  EXPECT_EQ(Send("GET", "/model-versions/search?max_results=200001").status, 400);
}

INSTANTIATE_TEST_SUITE_P(Backends, MlflowRegistryTest,
                         ::testing::ValuesIn(kiln::testing::AllBackends()),
                         kiln::testing::BackendName);

}  // namespace
}  // namespace kiln::api
