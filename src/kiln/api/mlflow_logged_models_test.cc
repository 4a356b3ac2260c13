// The logged-model RPCs over real HTTP: a real http::Server on a loopback port with only these
// routes, over a fresh database of each backend, spoken to by the real http::Client the way
// MLflow 3.x's Python client does (rest_store.py).
#include "kiln/api/mlflow_logged_models.h"

#include <gtest/gtest.h>

#include <memory>
#include <regex>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "kiln/api/mlflow_routes.h"
#include "kiln/core/file_util.h"
#include "kiln/core/json.h"
#include "kiln/http/client.h"
#include "kiln/http/router.h"
#include "kiln/http/server.h"
#include "kiln/tracking/logged_model_store.h"
#include "kiln/tracking/tracking_store.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_database.h"

namespace kiln::api {
namespace {

using store::Backend;

struct Reply {
  int status = 0;
  Json json;
};

class LoggedModelRoutesTest : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    auto tracking = tracking::TrackingStore::Open(database_.db());
    ASSERT_TRUE(tracking.ok()) << tracking.status().ToString();
    tracking_ = std::move(tracking).value();
    store_ = std::make_unique<tracking::LoggedModelStore>(database_.db());
    http::Router router;
    RegisterLoggedModelRoutes(router, *store_, artifacts_.path());
    // The tracking RPCs too: 3.x clients log a model's metrics through runs/log-batch.
    RegisterTrackingRoutes(router, *tracking_);
    http::ServerOptions options;
    options.port = 0;
    options.threads = 2;
    options.access_log = false;
    auto server = http::Server::Start(options, std::move(router));
    ASSERT_TRUE(server.ok()) << server.status().ToString();
    server_ = std::move(server).value();
    base_url_ = "http://127.0.0.1:" + std::to_string(server_->port());
  }

  void TearDown() override {
    if (server_) server_->Stop();
  }

  // `body` empty: no body and no Content-Type, as the Python client's GET and DELETE-tag.
  Reply Send(const std::string& method, const std::string& path, const std::string& body = "") {
    std::vector<std::pair<std::string, std::string>> headers;
    if (!body.empty()) headers.emplace_back("Content-Type", "application/json");
    auto response = client_.Send(method, base_url_ + path, body, headers);
    Reply reply;
    if (!response.ok()) {
      ADD_FAILURE() << method << " " << path << ": " << response.status().ToString();
      return reply;
    }
    reply.status = response->status;
    Json parsed = Json::parse(response->body, nullptr, /*allow_exceptions=*/false);
    if (!parsed.is_discarded()) reply.json = std::move(parsed);
    return reply;
  }

  // An MLflow RPC under /api/2.0/mlflow; fails the test unless 200.
  Json Ok(const std::string& method, const std::string& path, const Json& body = nullptr) {
    Reply reply = Send(method, "/api/2.0/mlflow" + path, body.is_null() ? "" : body.dump());
    EXPECT_EQ(reply.status, 200) << method << " " << path << " -> " << reply.json.dump();
    return reply.json;
  }

  Json CreateModel(const Json& body) {
    Json reply = Ok("POST", "/logged-models", body);
    return reply.value("model", Json::object());
  }

  std::vector<std::string> SearchNames(const Json& body) {
    Json reply = Ok("POST", "/logged-models/search", body);
    std::vector<std::string> names;
    for (const Json& model : reply.value("models", Json::array())) {
      names.push_back(model["info"]["name"].get<std::string>());
    }
    return names;
  }

  kiln::testing::TestDatabase database_{GetParam()};
  kiln::testing::TempDir artifacts_;
  std::unique_ptr<tracking::TrackingStore> tracking_;
  std::unique_ptr<tracking::LoggedModelStore> store_;
  std::unique_ptr<http::Server> server_;
  http::Client client_;
  std::string base_url_;
};

TEST_P(LoggedModelRoutesTest, CreateReturnsPendingModelWithGeneratedName) {
  Json model = CreateModel({{"experiment_id", "0"},
                            {"source_run_id", "abc"},
                            {"params", {{{"key", "alpha"}, {"value", "0.1"}}}},
                            {"tags", {{{"key", "mlflow.user"}, {"value", "ann"}}}}});
  const Json& info = model["info"];
  std::string id = info.value("model_id", "");
  EXPECT_TRUE(std::regex_match(id, std::regex("m-[0-9a-f]{32}"))) << id;
  EXPECT_EQ(info["experiment_id"], "0");
  EXPECT_TRUE(std::regex_match(info.value("name", ""), std::regex("[a-z]+-[a-z]+-[0-9]+")))
      << info.dump();
  EXPECT_EQ(info["status"], "LOGGED_MODEL_PENDING");
  EXPECT_EQ(info["artifact_uri"], "mlflow-artifacts:/0/models/" + id + "/artifacts");
  EXPECT_TRUE(info["creation_timestamp_ms"].is_number_integer()) << "int64 as a JSON number";
  EXPECT_EQ(info["creation_timestamp_ms"], info["last_updated_timestamp_ms"]);
  EXPECT_EQ(info["source_run_id"], "abc");
  EXPECT_FALSE(info.contains("model_type")) << "empty fields are omitted";
  EXPECT_EQ(info["tags"], Json::parse(R"([{"key": "mlflow.user", "value": "ann"}])"));
  EXPECT_EQ(model["data"]["params"], Json::parse(R"([{"key": "alpha", "value": "0.1"}])"));
}

TEST_P(LoggedModelRoutesTest, ServedUnderAjaxApiToo) {
  Reply created = Send("POST", "/ajax-api/2.0/mlflow/logged-models",
                       Json{{"experiment_id", "0"}, {"name", "ui"}}.dump());
  ASSERT_EQ(created.status, 200);
  std::string id = created.json["model"]["info"]["model_id"];
  Reply fetched = Send("GET", "/ajax-api/2.0/mlflow/logged-models/" + id);
  EXPECT_EQ(fetched.status, 200);
  EXPECT_EQ(fetched.json["model"]["info"]["name"], "ui");
}

TEST_P(LoggedModelRoutesTest, FinalizeGetTagsAndParamsRoundTrip) {
  Json model = CreateModel({{"experiment_id", "0"}, {"name", "clf"}, {"model_type", "Classifier"}});
  std::string id = model["info"]["model_id"];
  std::string path = "/logged-models/" + id;

  Json finalized = Ok("PATCH", path, {{"model_id", id}, {"status", "LOGGED_MODEL_READY"}});
  EXPECT_EQ(finalized["model"]["info"]["status"], "LOGGED_MODEL_READY");

  Ok("PATCH", path + "/tags",
     {{"tags", {{{"key", "stage"}, {"value", "dev"}}, {{"key", "owner"}, {"value", "bo"}}}}});
  Ok("POST", path + "/params",
     {{"model_id", id}, {"params", {{{"key", "depth"}, {"value", "6"}}}}});
  Ok("DELETE", path + "/tags/owner");  // no body, as the Python client sends it

  Json fetched = Ok("GET", path)["model"];
  EXPECT_EQ(fetched["info"]["status"], "LOGGED_MODEL_READY");
  EXPECT_EQ(fetched["info"]["model_type"], "Classifier");
  EXPECT_EQ(fetched["info"]["tags"], Json::parse(R"([{"key": "stage", "value": "dev"}])"));
  EXPECT_EQ(fetched["data"]["params"], Json::parse(R"([{"key": "depth", "value": "6"}])"));

  Json by_number = Ok("PATCH", path, {{"model_id", id}, {"status", 3}});
  EXPECT_EQ(by_number["model"]["info"]["status"], "LOGGED_MODEL_UPLOAD_FAILED");
}

TEST_P(LoggedModelRoutesTest, LinkedMetricsAppearInModelData) {
  Json model = CreateModel({{"experiment_id", "0"}, {"name", "scored"}});
  std::string id = model["info"]["model_id"];
  ASSERT_TRUE(store_->LogMetrics(id, {{"acc", 0.75, 10, 2, "r1", "test", "abc"}}).ok());
  Json metrics = Ok("GET", "/logged-models/" + id)["model"]["data"]["metrics"];
  EXPECT_EQ(metrics, Json::parse(R"([{"key": "acc", "value": 0.75, "timestamp": 10, "step": 2,
      "model_id": ")" + id + R"(", "run_id": "r1", "dataset_name": "test",
      "dataset_digest": "abc"}])"));
}

TEST_P(LoggedModelRoutesTest, SearchByExperimentFilterAndPages) {
  auto other = tracking_->CreateExperiment("other", "", {});
  ASSERT_TRUE(other.ok());
  std::string ready_id = CreateModel({{"experiment_id", "0"}, {"name", "one"}})["info"]["model_id"];
  CreateModel({{"experiment_id", "0"}, {"name", "two"}});
  CreateModel({{"experiment_id", "0"}, {"name", "three"}});
  CreateModel({{"experiment_id", *other}, {"name", "elsewhere"}});
  Ok("PATCH", "/logged-models/" + ready_id, {{"status", "LOGGED_MODEL_READY"}});

  EXPECT_EQ(SearchNames({{"experiment_ids", {*other}}}), std::vector<std::string>{"elsewhere"});
  EXPECT_EQ(SearchNames({{"experiment_ids", {"0"}}, {"filter", "name = 'two'"}}),
            std::vector<std::string>{"two"});
  EXPECT_EQ(SearchNames({{"experiment_ids", {"0"}}, {"filter", "status = 'READY'"}}),
            std::vector<std::string>{"one"});
  EXPECT_EQ(SearchNames({{"experiment_ids", {"0"}},
                         {"order_by", {{{"field_name", "name"}, {"ascending", true}}}}}),
            (std::vector<std::string>{"one", "three", "two"}));

  // Pages of two, then one, with no token on the last page.
  Json body = {{"experiment_ids", {"0"}}, {"max_results", 2}};
  Json first = Ok("POST", "/logged-models/search", body);
  ASSERT_EQ(first["models"].size(), 2u);
  ASSERT_TRUE(first.contains("next_page_token"));
  body["page_token"] = first["next_page_token"];
  Json second = Ok("POST", "/logged-models/search", body);
  EXPECT_EQ(second["models"].size(), 1u);
  EXPECT_FALSE(second.contains("next_page_token"));

  EXPECT_EQ(Ok("POST", "/logged-models/search", {{"experiment_ids", {"12345"}}}), Json::object())
      << "an empty search is {}";
}

TEST_P(LoggedModelRoutesTest, DeleteThenGetIsNotFound) {
  std::string id = CreateModel({{"experiment_id", "0"}})["info"]["model_id"];
  Ok("DELETE", "/logged-models/" + id, {{"model_id", id}});
  Reply fetched = Send("GET", "/api/2.0/mlflow/logged-models/" + id);
  EXPECT_EQ(fetched.status, 404);
  EXPECT_EQ(fetched.json["error_code"], "RESOURCE_DOES_NOT_EXIST");
  EXPECT_TRUE(SearchNames({{"experiment_ids", {"0"}}}).empty());
}

TEST_P(LoggedModelRoutesTest, UnknownModelIs404ResourceDoesNotExist) {
  const std::string id = "m-0123456789abcdef0123456789abcdef";
  struct Case {
    std::string method;
    std::string path;
    std::string body;
  };
  const std::vector<Case> cases = {
      {"GET", "", ""},
      {"PATCH", "", R"({"status": "LOGGED_MODEL_READY"})"},
      {"DELETE", "", R"({"model_id": ")" + id + R"("})"},
      {"PATCH", "/tags", R"({"tags": [{"key": "a", "value": "b"}]})"},
      {"DELETE", "/tags/a", ""},
      {"POST", "/params", R"({"params": [{"key": "a", "value": "b"}]})"},
      {"GET", "/artifacts/directories", ""},
  };
  for (const Case& c : cases) {
    Reply reply = Send(c.method, "/api/2.0/mlflow/logged-models/" + id + c.path, c.body);
    EXPECT_EQ(reply.status, 404) << c.method << " " << c.path;
    EXPECT_EQ(reply.json["error_code"], "RESOURCE_DOES_NOT_EXIST") << c.method << " " << c.path;
    EXPECT_EQ(reply.json["message"], "Logged model with ID '" + id + "' not found.");
  }
}

TEST_P(LoggedModelRoutesTest, BadRequestsAre400) {
  std::string id = CreateModel({{"experiment_id", "0"}})["info"]["model_id"];
  struct Case {
    std::string method;
    std::string path;
    std::string body;
    std::string message_part;
  };
  const std::vector<Case> cases = {
      {"PATCH", "/logged-models/" + id, R"({"status": "DONE"})", "Invalid logged model status"},
      {"PATCH", "/logged-models/" + id, R"({"status": "LOGGED_MODEL_STATUS_UNSPECIFIED"})",
       "Invalid logged model status"},
      {"PATCH", "/logged-models/" + id, R"({"model_id": "x"})", "'status'"},
      {"POST", "/logged-models", R"({"name": "x"})", "'experiment_id'"},
      {"POST", "/logged-models", R"({"experiment_id": "0", "name": "a.b"})", "Invalid model name"},
      {"POST", "/logged-models", R"({"experiment_id": "0", "tags": "x"})", "'tags'"},
      {"POST", "/logged-models/search", R"({"filter": "name = 'x'"})", "'experiment_ids'"},
      {"POST", "/logged-models/search", R"({"experiment_ids": ["0"], "filter": "flavor = 'x'"})",
       "Invalid attribute 'flavor'"},
      {"POST", "/logged-models/search", R"({"experiment_ids": ["0"], "page_token": "%%%"})", ""},
      {"POST", "/logged-models/" + id + "/params",
       R"({"params": [{"key": "a", "value": "1"}, {"key": "a", "value": "2"}]})", "Duplicate"},
  };
  for (const Case& c : cases) {
    Reply reply = Send(c.method, "/api/2.0/mlflow" + c.path, c.body);
    EXPECT_EQ(reply.status, 400) << c.method << " " << c.path << " " << c.body;
    EXPECT_EQ(reply.json["error_code"], "INVALID_PARAMETER_VALUE") << reply.json.dump();
    EXPECT_NE(reply.json.value("message", "").find(c.message_part), std::string::npos)
        << reply.json.dump();
  }
  Reply unknown_experiment =
      Send("POST", "/api/2.0/mlflow/logged-models", R"({"experiment_id": "777"})");
  EXPECT_EQ(unknown_experiment.status, 404);
  EXPECT_EQ(unknown_experiment.json["error_code"], "RESOURCE_DOES_NOT_EXIST");
}

TEST_P(LoggedModelRoutesTest, UnknownSubpathsAndMethodsAreEndpointNotFound) {
  std::string id = CreateModel({{"experiment_id", "0"}})["info"]["model_id"];
  Reply sub = Send("GET", "/api/2.0/mlflow/logged-models/" + id + "/nonsense");
  EXPECT_EQ(sub.status, 404);
  EXPECT_EQ(sub.json["error_code"], "ENDPOINT_NOT_FOUND");
  Reply method = Send("POST", "/api/2.0/mlflow/logged-models/" + id, "{}");
  EXPECT_EQ(method.status, 405);
  EXPECT_EQ(method.json["error_code"], "ENDPOINT_NOT_FOUND");
}

TEST_P(LoggedModelRoutesTest, RunMetricsWithModelIdShowUpOnTheModel) {
  std::string id = CreateModel({{"experiment_id", "0"}})["info"]["model_id"];
  std::string run_id = Ok("POST", "/runs/create", {{"experiment_id", "0"}})["run"]["info"]["run_id"];
  // log-batch, as MLflow 3.x's log_metrics(..., model_id=...) sends it; one point has no model.
  Ok("POST", "/runs/log-batch",
     {{"run_id", run_id},
      {"metrics",
       {{{"key", "acc"}, {"value", 0.9}, {"timestamp", 100}, {"step", 1}, {"model_id", id},
         {"dataset_name", "eval"}, {"dataset_digest", "d1"}},
        {{"key", "acc"}, {"value", "NaN"}, {"timestamp", 200}, {"step", 2}, {"model_id", id}},
        {{"key", "loss"}, {"value", 0.5}, {"timestamp", 100}, {"step", 1}}}}});
  Ok("POST", "/runs/log-metric",
     {{"run_id", run_id}, {"key", "f1"}, {"value", 0.7}, {"timestamp", 300}, {"model_id", id}});
  // A retried batch links nothing twice.
  Ok("POST", "/runs/log-batch",
     {{"run_id", run_id},
      {"metrics", {{{"key", "acc"}, {"value", 0.9}, {"timestamp", 100}, {"step", 1},
                    {"model_id", id}, {"dataset_name", "eval"}, {"dataset_digest", "d1"}}}}});

  Json model = Ok("GET", "/logged-models/" + id)["model"];
  EXPECT_EQ(model["data"]["metrics"], Json::parse(R"([
      {"key": "acc", "value": 0.9, "timestamp": 100, "step": 1, "model_id": ")" + id +
                                                   R"(", "run_id": ")" + run_id + R"(",
       "dataset_name": "eval", "dataset_digest": "d1"},
      {"key": "acc", "value": "NaN", "timestamp": 200, "step": 2, "model_id": ")" + id +
                                                   R"(", "run_id": ")" + run_id + R"("},
      {"key": "f1", "value": 0.7, "timestamp": 300, "step": 0, "model_id": ")" + id +
                                                   R"(", "run_id": ")" + run_id + R"("}])"))
      << model.dump();
  // The run has all of them too.
  Json run = Ok("GET", "/runs/get?run_id=" + run_id)["run"];
  EXPECT_EQ(run["data"]["metrics"].size(), 3u) << run.dump();

  // An unknown model fails the whole batch: nothing is logged on the run either.
  Reply unknown = Send("POST", "/api/2.0/mlflow/runs/log-batch",
                       Json({{"run_id", run_id},
                             {"metrics", {{{"key", "late"}, {"value", 1}, {"timestamp", 1},
                                           {"model_id", "m-0123456789abcdef0123456789abcdef"}}}}})
                           .dump());
  EXPECT_EQ(unknown.status, 404) << unknown.json.dump();
  EXPECT_EQ(unknown.json["error_code"], "RESOURCE_DOES_NOT_EXIST");
  Json after = Ok("GET", "/runs/get?run_id=" + run_id)["run"];
  EXPECT_EQ(after["data"]["metrics"].size(), 3u) << after.dump();
}

TEST_P(LoggedModelRoutesTest, ListArtifactsShowsUploadedFiles) {
  std::string id = CreateModel({{"experiment_id", "0"}})["info"]["model_id"];
  std::string path = "/logged-models/" + id + "/artifacts/directories";
  Json empty = Ok("GET", path);
  EXPECT_EQ(empty, Json({{"root_uri", "mlflow-artifacts:/0/models/" + id + "/artifacts"}}));

  std::string folder = artifacts_.Join("0/models/" + id + "/artifacts");
  ASSERT_TRUE(MakeDirs(folder + "/sub").ok());
  ASSERT_TRUE(WriteFileAtomic(folder + "/MLmodel", "flavors: {}\n").ok());
  ASSERT_TRUE(WriteFileAtomic(folder + "/sub/model.json", "{}").ok());

  Json listed = Ok("GET", path);
  EXPECT_EQ(listed["files"], Json::parse(R"([{"path": "MLmodel", "is_dir": false, "file_size": 12},
                                             {"path": "sub", "is_dir": true}])"));
  Json nested = Ok("GET", path + "?artifact_directory_path=sub");
  EXPECT_EQ(nested["files"],
            Json::parse(R"([{"path": "sub/model.json", "is_dir": false, "file_size": 2}])"));

  Reply escape = Send("GET", "/api/2.0/mlflow" + path + "?artifact_directory_path=../../..");
  EXPECT_EQ(escape.status, 400);
}

INSTANTIATE_TEST_SUITE_P(Backends, LoggedModelRoutesTest,
                         ::testing::ValuesIn(kiln::testing::AllBackends()),
                         kiln::testing::BackendName);

}  // namespace
}  // namespace kiln::api
