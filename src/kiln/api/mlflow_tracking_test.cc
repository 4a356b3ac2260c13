// The MLflow tracking REST API end to end: a real kiln server on loopback over SQLite and
// PostgreSQL, driven by kiln's HTTP client. Expected replies and messages are MLflow 2.12's
// (shared/reference/mlflow/edge_cases_2.12.txt).
#include <atomic>
#include <cmath>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "kiln/api/test_server.h"
#include "kiln/http/message.h"

namespace kiln::api {
namespace {

using testing::Reply;
using testing::TestServer;

class MlflowTrackingTest : public ::testing::TestWithParam<store::Backend> {
 protected:
  TestServer server_{GetParam()};

  std::string CreateExperiment(const std::string& name) {
    Json reply = server_.Rpc("POST", "/experiments/create", {{"name", name}});
    return reply.value("experiment_id", "");
  }
  std::string CreateRun(const std::string& experiment_id, const std::string& run_name = "") {
    Json body = {{"experiment_id", experiment_id}, {"start_time", 1000}, {"user_id", "ann"}};
    if (!run_name.empty()) body["run_name"] = run_name;
    Json reply = server_.Rpc("POST", "/runs/create", body);
    return reply["run"]["info"].value("run_id", "");
  }
  Json GetRun(const std::string& run_id) {
    return server_.Rpc("GET", "/runs/get?run_id=" + run_id)["run"];
  }
  void ExpectError(const Reply& reply, int status, const std::string& error_code,
                   const std::string& message = "") {
    EXPECT_EQ(reply.status, status) << reply.body;
    EXPECT_EQ(reply.json.value("error_code", ""), error_code) << reply.body;
    if (!message.empty()) {
      EXPECT_EQ(reply.json.value("message", ""), message);
    }
  }
};

Json Metric(const std::string& key, double value, int64_t timestamp, int64_t step) {
  return {{"key", key}, {"value", value}, {"timestamp", timestamp}, {"step", step}};
}

// ---------------------------------------------------------------------------------------------
// Experiments.

TEST_P(MlflowTrackingTest, CreateAndGetExperimentReturnsMlflowShape) {
  std::string id = CreateExperiment("exp-a");
  ASSERT_FALSE(id.empty());
  Json experiment = server_.Rpc("GET", "/experiments/get?experiment_id=" + id)["experiment"];
  EXPECT_EQ(experiment["experiment_id"], id);
  EXPECT_EQ(experiment["name"], "exp-a");
  EXPECT_EQ(experiment["artifact_location"], "mlflow-artifacts:/" + id);
  EXPECT_EQ(experiment["lifecycle_stage"], "active");
  EXPECT_TRUE(experiment["creation_time"].is_number_integer());
  EXPECT_TRUE(experiment["last_update_time"].is_number_integer());
  EXPECT_FALSE(experiment.contains("tags"));  // empty repeated fields are omitted

  Json by_name = server_.Rpc("GET", "/experiments/get-by-name?experiment_name=exp-a");
  EXPECT_EQ(by_name["experiment"]["experiment_id"], id);
}

TEST_P(MlflowTrackingTest, GetExperimentByUnknownNameIs404) {
  ExpectError(server_.Get("/api/2.0/mlflow/experiments/get-by-name?experiment_name=nope"), 404,
              "RESOURCE_DOES_NOT_EXIST");
  ExpectError(server_.Get("/api/2.0/mlflow/experiments/get?experiment_id=987654"), 404,
              "RESOURCE_DOES_NOT_EXIST");
}

TEST_P(MlflowTrackingTest, ExperimentUpdateTagsDeleteRestore) {
  std::string id = CreateExperiment("exp-b");
  EXPECT_EQ(server_.Rpc("POST", "/experiments/update", {{"experiment_id", id}, {"new_name", "exp-b2"}}),
            Json::object());
  EXPECT_EQ(server_.Rpc("POST", "/experiments/set-experiment-tag",
                        {{"experiment_id", id}, {"key", "team"}, {"value", "risk"}}),
            Json::object());
  Json experiment = server_.Rpc("GET", "/experiments/get?experiment_id=" + id)["experiment"];
  EXPECT_EQ(experiment["name"], "exp-b2");
  EXPECT_EQ(experiment["tags"], Json::parse(R"([{"key":"team","value":"risk"}])"));

  server_.Rpc("POST", "/experiments/delete-experiment-tag", {{"experiment_id", id}, {"key", "team"}});
  experiment = server_.Rpc("GET", "/experiments/get?experiment_id=" + id)["experiment"];
  EXPECT_FALSE(experiment.contains("tags"));

  EXPECT_EQ(server_.Rpc("POST", "/experiments/delete", {{"experiment_id", id}}), Json::object());
  experiment = server_.Rpc("GET", "/experiments/get?experiment_id=" + id)["experiment"];
  EXPECT_EQ(experiment["lifecycle_stage"], "deleted");
  server_.Rpc("POST", "/experiments/restore", {{"experiment_id", id}});
  experiment = server_.Rpc("GET", "/experiments/get?experiment_id=" + id)["experiment"];
  EXPECT_EQ(experiment["lifecycle_stage"], "active");
}

TEST_P(MlflowTrackingTest, DeletedExperimentKeepsItsName) {
  std::string id = CreateExperiment("edge");
  server_.Rpc("POST", "/experiments/delete", {{"experiment_id", id}});
  Reply reply = server_.Post("/api/2.0/mlflow/experiments/create", {{"name", "edge"}});
  ExpectError(reply, 400, "RESOURCE_ALREADY_EXISTS");
}

TEST_P(MlflowTrackingTest, SearchExperimentsByGetAndPost) {
  Json first = server_.Rpc("GET", "/experiments/search?max_results=1");
  ASSERT_EQ(first["experiments"].size(), 1u);
  EXPECT_EQ(first["experiments"][0]["experiment_id"], "0");
  EXPECT_EQ(first["experiments"][0]["name"], "Default");
  EXPECT_EQ(first["experiments"][0]["artifact_location"], "mlflow-artifacts:/0");

  CreateExperiment("search-me");
  Json found = server_.Rpc("POST", "/experiments/search", {{"filter", "name = 'search-me'"}});
  ASSERT_EQ(found["experiments"].size(), 1u);
  EXPECT_EQ(found["experiments"][0]["name"], "search-me");
  EXPECT_FALSE(found.contains("next_page_token"));

  // An empty search is {} exactly (MLflow omits empty fields).
  Reply empty = server_.Post("/api/2.0/mlflow/experiments/search", {{"filter", "name = 'none'"}});
  EXPECT_EQ(empty.status, 200);
  EXPECT_EQ(empty.body, "{}");
}

TEST_P(MlflowTrackingTest, SearchExperimentsRejectsMaxResultsAboveThreshold) {
  ExpectError(server_.Post("/api/2.0/mlflow/experiments/search", {{"max_results", 50001}}), 400,
              "INVALID_PARAMETER_VALUE",
              "Invalid value 50001 for parameter 'max_results' supplied. It must be at most 50000");
}

// ---------------------------------------------------------------------------------------------
// Runs.

TEST_P(MlflowTrackingTest, CreateRunReturnsRunInfoWithRunUuidAndRunNameTag) {
  std::string experiment_id = CreateExperiment("runs");
  Json reply = server_.Rpc("POST", "/runs/create",
                           {{"experiment_id", experiment_id},
                            {"start_time", 1234},
                            {"user_id", "ann"},
                            {"run_name", "first"},
                            {"tags", {{{"key", "t"}, {"value", "v"}}}}});
  Json info = reply["run"]["info"];
  std::string run_id = info["run_id"];
  EXPECT_EQ(run_id.size(), 32u);
  EXPECT_EQ(info["run_uuid"], run_id);
  EXPECT_EQ(info["experiment_id"], experiment_id);
  EXPECT_EQ(info["run_name"], "first");
  EXPECT_EQ(info["user_id"], "ann");
  EXPECT_EQ(info["status"], "RUNNING");
  EXPECT_EQ(info["start_time"], 1234);
  EXPECT_FALSE(info.contains("end_time"));
  EXPECT_EQ(info["artifact_uri"],
            "mlflow-artifacts:/" + experiment_id + "/" + run_id + "/artifacts");
  EXPECT_EQ(info["lifecycle_stage"], "active");
  Json tags = reply["run"]["data"]["tags"];
  bool has_run_name = false, has_t = false;
  for (const Json& tag : tags) {
    if (tag["key"] == "mlflow.runName" && tag["value"] == "first") has_run_name = true;
    if (tag["key"] == "t" && tag["value"] == "v") has_t = true;
  }
  EXPECT_TRUE(has_run_name) << tags.dump();
  EXPECT_TRUE(has_t) << tags.dump();
  EXPECT_TRUE(reply["run"]["inputs"].is_object());
}

TEST_P(MlflowTrackingTest, LogAndGetRunData) {
  std::string run_id = CreateRun(CreateExperiment("data"));
  server_.Rpc("POST", "/runs/log-metric",
              {{"run_id", run_id}, {"key", "loss"}, {"value", 0.5}, {"timestamp", 10}, {"step", 1}});
  server_.Rpc("POST", "/runs/log-metric",
              {{"run_uuid", run_id}, {"key", "loss"}, {"value", 0.25}, {"timestamp", 20}, {"step", 2}});
  server_.Rpc("POST", "/runs/log-parameter", {{"run_id", run_id}, {"key", "lr"}, {"value", "0.1"}});
  server_.Rpc("POST", "/runs/set-tag", {{"run_id", run_id}, {"key", "k"}, {"value", "v"}});
  server_.Rpc("POST", "/runs/set-tag", {{"run_id", run_id}, {"key", "gone"}, {"value", "x"}});
  server_.Rpc("POST", "/runs/delete-tag", {{"run_id", run_id}, {"key", "gone"}});

  Json run = server_.Rpc("GET", "/runs/get?run_uuid=" + run_id)["run"];
  EXPECT_EQ(run["data"]["metrics"], Json::parse(R"([{"key":"loss","value":0.25,"timestamp":20,"step":2}])"));
  EXPECT_EQ(run["data"]["params"], Json::parse(R"([{"key":"lr","value":"0.1"}])"));
  bool has_k = false;
  for (const Json& tag : run["data"]["tags"]) {
    EXPECT_NE(tag["key"], "gone");
    if (tag["key"] == "k") has_k = true;
  }
  EXPECT_TRUE(has_k);

  Json history = server_.Rpc("GET", "/metrics/get-history?run_id=" + run_id + "&metric_key=loss");
  EXPECT_EQ(history, Json::parse(R"({"metrics":[{"key":"loss","value":0.5,"timestamp":10,"step":1},
                                               {"key":"loss","value":0.25,"timestamp":20,"step":2}]})"));
}

TEST_P(MlflowTrackingTest, ChangingParamValueIsRejected) {
  std::string run_id = CreateRun("0");
  server_.Rpc("POST", "/runs/log-parameter", {{"run_id", run_id}, {"key", "p"}, {"value", "1"}});
  server_.Rpc("POST", "/runs/log-parameter", {{"run_id", run_id}, {"key", "p"}, {"value", "1"}});
  Reply reply = server_.Post("/api/2.0/mlflow/runs/log-parameter",
                             {{"run_id", run_id}, {"key", "p"}, {"value", "2"}});
  ExpectError(reply, 400, "INVALID_PARAMETER_VALUE");
  EXPECT_NE(reply.json.value("message", "").find("Changing param values is not allowed"),
            std::string::npos);
}

TEST_P(MlflowTrackingTest, UpdateDeleteRestoreRun) {
  std::string run_id = CreateRun("0");
  Json info = server_.Rpc("POST", "/runs/update",
                          {{"run_id", run_id}, {"status", "FINISHED"}, {"end_time", 5000}})["run_info"];
  EXPECT_EQ(info["status"], "FINISHED");
  EXPECT_EQ(info["end_time"], 5000);
  EXPECT_EQ(info["run_id"], run_id);

  ExpectError(server_.Post("/api/2.0/mlflow/runs/update", {{"run_id", run_id}, {"status", "DONE"}}),
              400, "INVALID_PARAMETER_VALUE");

  server_.Rpc("POST", "/runs/delete", {{"run_id", run_id}});
  EXPECT_EQ(GetRun(run_id)["info"]["lifecycle_stage"], "deleted");
  server_.Rpc("POST", "/runs/restore", {{"run_id", run_id}});
  EXPECT_EQ(GetRun(run_id)["info"]["lifecycle_stage"], "active");
}

TEST_P(MlflowTrackingTest, UnknownRunIs404) {
  std::string missing(32, 'a');
  ExpectError(server_.Get("/api/2.0/mlflow/runs/get?run_id=" + missing), 404,
              "RESOURCE_DOES_NOT_EXIST");
  ExpectError(server_.Post("/api/2.0/mlflow/runs/log-batch",
                           {{"run_id", missing}, {"metrics", {Metric("m", 1, 1, 0)}}}),
              404, "RESOURCE_DOES_NOT_EXIST");
}

TEST_P(MlflowTrackingTest, MissingRunIdUsesMlflowMessage) {
  ExpectError(server_.Get("/api/2.0/mlflow/runs/get"), 400, "INVALID_PARAMETER_VALUE",
              "Missing value for required parameter 'run_id'. See the API docs for more "
              "information about request parameters.");
}

// ---------------------------------------------------------------------------------------------
// Edge cases observed against MLflow 2.12.

TEST_P(MlflowTrackingTest, LogBatchRejectsMoreThan1000Metrics) {
  std::string run_id = CreateRun("0");
  Json metrics = Json::array();
  for (int i = 0; i < 1001; ++i) metrics.push_back(Metric("m" + std::to_string(i), i, 1, 0));
  ExpectError(server_.Post("/api/2.0/mlflow/runs/log-batch", {{"run_id", run_id}, {"metrics", metrics}}),
              400, "INVALID_PARAMETER_VALUE",
              "A batch logging request can contain at most 1000 metrics. Got 1001 metrics. Please "
              "split up metrics across multiple requests and try again.");
  EXPECT_FALSE(GetRun(run_id)["data"].contains("metrics"));  // all or nothing
}

TEST_P(MlflowTrackingTest, LogBatchRejectsMoreThan100Params) {
  std::string run_id = CreateRun("0");
  Json params = Json::array();
  for (int i = 0; i < 101; ++i) params.push_back({{"key", "p" + std::to_string(i)}, {"value", "v"}});
  ExpectError(server_.Post("/api/2.0/mlflow/runs/log-batch", {{"run_id", run_id}, {"params", params}}),
              400, "INVALID_PARAMETER_VALUE",
              "A batch logging request can contain at most 100 params. Got 101 params. Please split "
              "up params across multiple requests and try again.");
}

TEST_P(MlflowTrackingTest, LogBatchStoresEverything) {
  std::string run_id = CreateRun("0");
  Json metrics = Json::array();
  // 998 metrics + 1 param + 1 tag: MLflow's limit of 1000 entities per batch, exactly.
  for (int i = 0; i < 998; ++i) metrics.push_back(Metric("m" + std::to_string(i % 10), i, i, i));
  Json body = {{"run_id", run_id},
               {"metrics", metrics},
               {"params", {{{"key", "a"}, {"value", "1"}}}},
               {"tags", {{{"key", "b"}, {"value", "2"}}}}};
  EXPECT_EQ(server_.Rpc("POST", "/runs/log-batch", body), Json::object());
  Json run = GetRun(run_id);
  EXPECT_EQ(run["data"]["metrics"].size(), 10u);
  EXPECT_EQ(run["data"]["params"], Json::parse(R"([{"key":"a","value":"1"}])"));
  Json history = server_.Rpc("GET", "/metrics/get-history?run_id=" + run_id + "&metric_key=m3");
  EXPECT_EQ(history["metrics"].size(), 100u);
  Json last = server_.Rpc("GET", "/metrics/get-history?run_id=" + run_id + "&metric_key=m9");
  EXPECT_EQ(last["metrics"].size(), 99u);
}

TEST_P(MlflowTrackingTest, LogBatchReadsEveryBodyShapeAlike) {
  // Plain bodies take the simdjson path, the rest the general one; both must log the same point.
  struct Case {
    std::string name;
    std::string metric;  // the one metric object of the batch
    std::string run_field = "run_id";
  };
  const std::vector<Case> cases = {
      {"plain", R"({"key": "m", "value": 2.5, "timestamp": 7, "step": 3})"},
      {"numbers as strings", R"({"key": "m", "value": "2.5", "timestamp": "7", "step": "3"})"},
      {"float step", R"({"key": "m", "value": 2.5, "timestamp": 7.0, "step": 3.0})"},
      {"unknown and null members",
       R"({"key": "m", "value": 2.5, "timestamp": 7, "step": 3, "extra": [1], "model_id": null})"},
      {"repeated member (the last wins)",
       R"({"key": "m", "value": 1, "value": 2.5, "timestamp": 7, "step": 3})"},
      {"run_uuid", R"({"key": "m", "value": 2.5, "timestamp": 7, "step": 3})", "run_uuid"},
  };
  for (const Case& c : cases) {
    std::string run_id = CreateRun("0");
    Reply reply = server_.Send(
        "POST", "/api/2.0/mlflow/runs/log-batch",
        R"({")" + c.run_field + R"(": ")" + run_id + R"(", "metrics": [)" + c.metric + "]}");
    ASSERT_EQ(reply.status, 200) << c.name << ": " << reply.body;
    EXPECT_EQ(GetRun(run_id)["data"]["metrics"],
              Json::parse(R"([{"key": "m", "value": 2.5, "timestamp": 7, "step": 3}])"))
        << c.name;
  }
  // A bad body is answered by the general path, with its message.
  std::string run_id = CreateRun("0");
  Reply bad = server_.Send("POST", "/api/2.0/mlflow/runs/log-batch",
                           R"({"run_id": ")" + run_id + R"(", "metrics": [{"key": "m"}]})");
  ExpectError(bad, 400, "INVALID_PARAMETER_VALUE");
}

TEST_P(MlflowTrackingTest, LogBatchRejectsBodiesOverOneMegabyte) {
  std::string run_id = CreateRun("0");
  std::string padding(1000001, ' ');
  Reply reply = server_.Send("POST", "/api/2.0/mlflow/runs/log-batch",
                             "{\"run_id\": \"" + run_id + "\"}" + padding);
  ExpectError(reply, 400, "INVALID_PARAMETER_VALUE");
  EXPECT_NE(reply.json.value("message", "").find("at most 1000000 bytes"), std::string::npos);
}

TEST_P(MlflowTrackingTest, LongParamValueIsTruncatedNotRejected) {
  std::string run_id = CreateRun("0");
  std::string value(6001, 'x');
  server_.Rpc("POST", "/runs/log-parameter", {{"run_id", run_id}, {"key", "long"}, {"value", value}});
  Json params = GetRun(run_id)["data"]["params"];
  ASSERT_EQ(params.size(), 1u);
  EXPECT_EQ(params[0]["value"].get<std::string>(), std::string(6000, 'x'));
}

TEST_P(MlflowTrackingTest, BadMetricKeyUsesMlflowMessage) {
  std::string run_id = CreateRun("0");
  ExpectError(server_.Post("/api/2.0/mlflow/runs/log-metric",
                           {{"run_id", run_id}, {"key", "bad*key"}, {"value", 1}, {"timestamp", 1}}),
              400, "INVALID_PARAMETER_VALUE",
              "Invalid metric name: 'bad*key'. Names may only contain alphanumerics, underscores "
              "(_), dashes (-), periods (.), spaces ( ), and slashes (/).");
}

TEST_P(MlflowTrackingTest, NanMetricRoundTripsAsString) {
  std::string run_id = CreateRun("0");
  server_.Rpc("POST", "/runs/log-metric",
              {{"run_id", run_id}, {"key", "nanm"}, {"value", "NaN"}, {"timestamp", 1}});
  Json history = server_.Rpc("GET", "/metrics/get-history?run_id=" + run_id + "&metric_key=nanm");
  EXPECT_EQ(history, Json::parse(R"({"metrics":[{"key":"nanm","value":"NaN","timestamp":1,"step":0}]})"));
  EXPECT_EQ(GetRun(run_id)["data"]["metrics"][0]["value"], "NaN");
}

TEST_P(MlflowTrackingTest, SearchRunsPagesWithMlflowToken) {
  std::string experiment_id = CreateExperiment("paging");
  for (int i = 0; i < 3; ++i) CreateRun(experiment_id);
  Json page = server_.Rpc("POST", "/runs/search",
                          {{"experiment_ids", {experiment_id}}, {"max_results", 2}});
  EXPECT_EQ(page["runs"].size(), 2u);
  EXPECT_EQ(page["next_page_token"], "eyJvZmZzZXQiOiAyfQ==");
  Json next = server_.Rpc("POST", "/runs/search",
                          {{"experiment_ids", {experiment_id}},
                           {"max_results", 2},
                           {"page_token", page["next_page_token"]}});
  EXPECT_EQ(next["runs"].size(), 1u);
  EXPECT_FALSE(next.contains("next_page_token"));
}

TEST_P(MlflowTrackingTest, SearchRunsFiltersAndOrders) {
  std::string experiment_id = CreateExperiment("filtering");
  std::vector<std::string> run_ids;
  for (int i = 0; i < 3; ++i) {
    std::string run_id = CreateRun(experiment_id, "r" + std::to_string(i));
    server_.Rpc("POST", "/runs/log-metric",
                {{"run_id", run_id}, {"key", "acc"}, {"value", 0.5 + i * 0.1}, {"timestamp", 1}});
    run_ids.push_back(run_id);
  }
  Json found = server_.Rpc("POST", "/runs/search",
                           {{"experiment_ids", {experiment_id}},
                            {"filter", "metrics.acc > 0.55"},
                            {"order_by", {"metrics.acc DESC"}}});
  ASSERT_EQ(found["runs"].size(), 2u);
  EXPECT_EQ(found["runs"][0]["info"]["run_id"], run_ids[2]);
  EXPECT_EQ(found["runs"][1]["info"]["run_id"], run_ids[1]);

  Reply empty = server_.Post("/api/2.0/mlflow/runs/search",
                             {{"experiment_ids", {experiment_id}}, {"filter", "metrics.acc > 5"}});
  EXPECT_EQ(empty.body, "{}");
}

TEST_P(MlflowTrackingTest, SearchRunsRejectsMaxResultsAboveThreshold) {
  ExpectError(server_.Post("/api/2.0/mlflow/runs/search",
                           {{"experiment_ids", {"0"}}, {"max_results", 50001}}),
              400, "INVALID_PARAMETER_VALUE",
              "Invalid value 50001 for parameter 'max_results' supplied. It must be at most 50000");
}

TEST_P(MlflowTrackingTest, SqlInFilterStringsIsDataNeverA500) {
  std::string experiment_id = CreateExperiment("sqli");
  std::string run_id = CreateRun(experiment_id);
  server_.Rpc("POST", "/runs/set-tag", {{"run_id", run_id}, {"key", "x"}, {"value", "y"}});
  const std::vector<std::string> filters = {
      "tags.x = 'y'' OR ''1''=''1'",
      "tags.x = 'y' OR 1=1",
      "tags.x = 'y'; DROP TABLE runs; --'",
      "tags.`x; DROP TABLE runs` = 'y'",
      "params.\"a\"\" OR 1=1 --\" = 'b'",
      "attributes.run_id IN ('a') OR 1=1",
      "metrics.m > 1 UNION SELECT * FROM runs",
      "attributes.status = 'RUNNING' AND tags.x LIKE '%' --",
      "'",
      "tags.x = \"y\\\"",
  };
  for (const std::string& filter : filters) {
    Reply reply = server_.Post("/api/2.0/mlflow/runs/search",
                               {{"experiment_ids", {experiment_id}}, {"filter", filter}});
    EXPECT_TRUE(reply.status == 200 || reply.status == 400) << filter << " -> " << reply.body;
    if (reply.status == 200 && reply.json.contains("runs")) {
      // Treated as a value: a run matches only if its data equals the literal.
      for (const Json& run : reply.json["runs"]) EXPECT_EQ(run["info"]["run_id"], run_id);
    }
  }
  // The tables are intact.
  EXPECT_EQ(GetRun(run_id)["info"]["run_id"], run_id);
}

TEST_P(MlflowTrackingTest, ContentTypeIsRequiredForPost) {
  Reply reply = server_.Send("POST", "/api/2.0/mlflow/experiments/create", R"({"name":"x"})",
                             /*json_body=*/false);
  ExpectError(reply, 400, "INVALID_PARAMETER_VALUE",
              "Content-Type must be one of ['application/json']");
}

TEST_P(MlflowTrackingTest, MalformedJsonIs400WithPosition) {
  Reply reply = server_.Send("POST", "/api/2.0/mlflow/experiments/create", "{\"name\": \n  oops}");
  ExpectError(reply, 400, "INVALID_PARAMETER_VALUE");
  EXPECT_NE(reply.json.value("message", "").find("line 2, column"), std::string::npos) << reply.body;
  ExpectError(server_.Send("POST", "/api/2.0/mlflow/experiments/create", "[1,2]"), 400,
              "INVALID_PARAMETER_VALUE");
}

TEST_P(MlflowTrackingTest, WrongJsonTypesAre400NamingTheField) {
  std::string run_id = CreateRun("0");
  struct Case {
    std::string path;
    Json body;
    std::string field;
  };
  const std::vector<Case> cases = {
      {"/experiments/create", {{"name", Json::array()}}, "'name'"},
      {"/experiments/create", {{"name", "n"}, {"tags", "x"}}, "'tags'"},
      {"/runs/log-batch", {{"run_id", run_id}, {"metrics", {Metric("m", 1, 1, 0), {{"key", "m"}, {"value", "abc"}, {"timestamp", 1}}}}},
       "'metrics[1].value'"},
      {"/runs/log-batch", {{"run_id", run_id}, {"metrics", {{{"key", "m"}, {"value", 1}, {"timestamp", "soon"}}}}},
       "'metrics[0].timestamp'"},
      {"/runs/log-batch", {{"run_id", run_id}, {"params", {{{"key", 5.5}, {"value", "v"}}}}},
       "'params[0].key'"},
      {"/runs/log-batch", {{"run_id", run_id}, {"tags", {"notanobject"}}}, "'tags[0]'"},
      {"/runs/log-metric", {{"run_id", run_id}, {"key", "m"}, {"value", true}, {"timestamp", 1}}, "'value'"},
      {"/runs/create", {{"start_time", "yesterday"}}, "'start_time'"},
      {"/runs/search", {{"experiment_ids", {{{"a", 1}}}}}, "'experiment_ids'"},
      {"/runs/search", {{"experiment_ids", {"0"}}, {"max_results", "many"}}, "'max_results'"},
  };
  for (const Case& c : cases) {
    Reply reply = server_.Post("/api/2.0/mlflow" + c.path, c.body);
    EXPECT_EQ(reply.status, 400) << c.path << " " << c.body.dump() << " -> " << reply.body;
    EXPECT_NE(reply.json.value("message", "").find(c.field), std::string::npos)
        << c.path << " " << c.body.dump() << " -> " << reply.body;
  }
}

TEST_P(MlflowTrackingTest, AjaxApiPrefixServesTheSameRpcs) {
  std::string run_id = CreateRun("0");
  Reply reply = server_.Get("/ajax-api/2.0/mlflow/runs/get?run_id=" + run_id);
  EXPECT_EQ(reply.status, 200);
  EXPECT_EQ(reply.json["run"]["info"]["run_id"], run_id);
  Reply search = server_.Get("/ajax-api/2.0/mlflow/experiments/search?max_results=5");
  EXPECT_EQ(search.status, 200);
}

TEST_P(MlflowTrackingTest, LogInputsAppearInRun) {
  std::string run_id = CreateRun("0");
  Json body = {{"run_id", run_id},
               {"datasets",
                {{{"tags", {{{"key", "mlflow.data.context"}, {"value", "train"}}}},
                  {"dataset",
                   {{"name", "credit"}, {"digest", "abc123"}, {"source_type", "local"},
                    {"source", "{\"uri\": \"credit.csv\"}"}}}}}}};
  server_.Rpc("POST", "/runs/log-inputs", body);
  Json inputs = GetRun(run_id)["inputs"];
  ASSERT_EQ(inputs["dataset_inputs"].size(), 1u);
  EXPECT_EQ(inputs["dataset_inputs"][0]["dataset"]["name"], "credit");
  EXPECT_EQ(inputs["dataset_inputs"][0]["tags"][0]["value"], "train");

  Json missing_digest = {{"run_id", run_id},
                         {"datasets", {{{"dataset", {{"name", "x"}, {"source_type", "local"}, {"source", "s"}}}}}}};
  ExpectError(server_.Post("/api/2.0/mlflow/runs/log-inputs", missing_digest), 400,
              "INVALID_PARAMETER_VALUE");
}

TEST_P(MlflowTrackingTest, LogModelRecordsHistoryTag) {
  std::string run_id = CreateRun("0");
  Json model = {{"artifact_path", "model"}, {"flavors", {{"sklearn", Json::object()}}},
                {"utc_time_created", "2024-01-01 00:00:00.000000"}, {"run_id", run_id}};
  server_.Rpc("POST", "/runs/log-model", {{"run_id", run_id}, {"model_json", model.dump()}});
  bool found = false;
  Json run = GetRun(run_id);
  for (const Json& tag : run["data"]["tags"]) {
    if (tag["key"] == "mlflow.log-model.history") found = true;
  }
  EXPECT_TRUE(found);
  ExpectError(server_.Post("/api/2.0/mlflow/runs/log-model", {{"run_id", run_id}, {"model_json", "{}"}}),
              400, "INVALID_PARAMETER_VALUE");
}

TEST_P(MlflowTrackingTest, MetricHistoryBulkIntervalSamplesSteps) {
  std::string run_a = CreateRun("0");
  std::string run_b = CreateRun("0");
  for (const std::string& run_id : {run_a, run_b}) {
    Json metrics = Json::array();
    for (int step = 0; step < 10; ++step) metrics.push_back(Metric("loss", step, step, step));
    server_.Rpc("POST", "/runs/log-batch", {{"run_id", run_id}, {"metrics", metrics}});
  }
  Json reply = server_.Rpc("GET", "/metrics/get-history-bulk-interval?run_ids=" + run_a +
                                      "&run_ids=" + run_b + "&metric_key=loss&max_results=4");
  ASSERT_TRUE(reply.contains("metrics"));
  int for_a = 0;
  for (const Json& metric : reply["metrics"]) {
    if (metric["run_id"] == run_a) ++for_a;
  }
  EXPECT_EQ(for_a, 4);
  EXPECT_EQ(reply["metrics"].size(), 8u);
  Json ranged = server_.Rpc("GET", "/metrics/get-history-bulk-interval?run_ids=" + run_a +
                                       "&metric_key=loss&start_step=2&end_step=4");
  EXPECT_EQ(ranged["metrics"].size(), 3u);
}

TEST_P(MlflowTrackingTest, ConcurrentLogBatchesLoseNothing) {
  std::string run_id = CreateRun("0");
  constexpr int kThreads = 8;
  constexpr int kBatchesPerThread = 10;
  constexpr int kMetricsPerBatch = 50;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      http::Client client;
      for (int b = 0; b < kBatchesPerThread; ++b) {
        Json metrics = Json::array();
        for (int m = 0; m < kMetricsPerBatch; ++m) {
          int step = b * kMetricsPerBatch + m;
          metrics.push_back(Metric("thread" + std::to_string(t), step, step, step));
        }
        Json body = {{"run_id", run_id}, {"metrics", metrics}};
        auto reply = client.PostJson(server_.base_url() + "/api/2.0/mlflow/runs/log-batch", body.dump());
        if (!reply.ok() || reply->status != 200) ++failures;
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);
  for (int t = 0; t < kThreads; ++t) {
    Json history = server_.Rpc("GET", "/metrics/get-history?run_id=" + run_id +
                                          "&metric_key=thread" + std::to_string(t));
    EXPECT_EQ(history["metrics"].size(), static_cast<size_t>(kBatchesPerThread * kMetricsPerBatch));
  }
}

// ---------------------------------------------------------------------------------------------
// Server-level routes.

TEST_P(MlflowTrackingTest, HealthVersionAndMetrics) {
  Reply health = server_.Get("/health");
  EXPECT_EQ(health.status, 200);
  EXPECT_EQ(health.body, "OK");
  EXPECT_NE(health.content_type.find("text/plain"), std::string::npos);
  Reply version = server_.Get("/version");
  EXPECT_EQ(version.status, 200);
  EXPECT_FALSE(version.body.empty());

  server_.Get("/api/2.0/mlflow/runs/get?run_id=" + std::string(32, 'b'));
  server_.Get("/no/such/route");
  Reply metrics = server_.Get("/metrics");
  EXPECT_EQ(metrics.status, 200);
  EXPECT_NE(metrics.content_type.find("version=0.0.4"), std::string::npos);
  const std::string& text = metrics.body;
  EXPECT_NE(text.find("# TYPE kiln_http_requests_total counter"), std::string::npos);
  EXPECT_NE(text.find("kiln_http_requests_total{method=\"GET\",route=\"/health\",status=\"200\"} 1"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("route=\"/api/2.0/mlflow/runs/get\",status=\"404\"} 1"), std::string::npos);
  EXPECT_NE(text.find("route=\"unmatched\",status=\"404\"} 1"), std::string::npos);
  EXPECT_NE(text.find("kiln_http_request_duration_seconds_bucket{method=\"GET\",route=\"/health\",le=\"+Inf\"} 1"),
            std::string::npos);
  EXPECT_NE(text.find("kiln_http_request_duration_seconds_count{method=\"GET\",route=\"/health\"} 1"),
            std::string::npos);
  EXPECT_EQ(text.back(), '\n');
}

TEST_P(MlflowTrackingTest, UnknownRouteIsJson404) {
  Reply reply = server_.Get("/api/2.0/mlflow/experiments/list");
  ExpectError(reply, 404, "ENDPOINT_NOT_FOUND");
  Reply wrong_method = server_.Post("/api/2.0/mlflow/runs/get", Json::object());
  EXPECT_EQ(wrong_method.status, 405);
}

INSTANTIATE_TEST_SUITE_P(Backends, MlflowTrackingTest,
                         ::testing::ValuesIn(kiln::testing::AllBackends()),
                         kiln::testing::BackendName);

}  // namespace
}  // namespace kiln::api
