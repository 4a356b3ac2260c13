#include "kiln/cli/mlflow_client.h"

#include <gtest/gtest.h>

#include "kiln/api/app.h"
#include "kiln/api/errors.h"
#include "kiln/cli/exit_codes.h"
#include "tests/support/temp_dir.h"

namespace kiln::cli {
namespace {

TEST(StatusFromMlflowErrorTest, RecoversTheExitCodeOfEveryStatusTheServerSends) {
  for (int code = static_cast<int>(StatusCode::kInvalidArgument);
       code <= static_cast<int>(StatusCode::kInternal); ++code) {
    Status sent(static_cast<StatusCode>(code), "message " + std::to_string(code));
    http::Response response;
    api::WriteError(sent, response);
    Status received = StatusFromMlflowError(response.status, response.body);
    EXPECT_EQ(received.message(), sent.message());
    // MLflow's INVALID_PARAMETER_VALUE covers both; telling them apart needs the reply's
    // kiln_code (see the next test), which api::WriteError does not send yet.
    if (sent.code() == StatusCode::kValidationFailed) continue;
    EXPECT_EQ(ExitCodeFor(received.code()), ExitCodeFor(sent.code())) << sent.ToString();
  }
}

TEST(StatusFromMlflowErrorTest, KilnCodeGivesTheExactStatus) {
  Status received = StatusFromMlflowError(
      400, R"({"error_code":"INVALID_PARAMETER_VALUE","kiln_code":"VALIDATION_FAILED","message":"m"})");
  EXPECT_EQ(received.code(), StatusCode::kValidationFailed);
  EXPECT_EQ(ExitCodeValue(ExitCodeFor(received.code())), 5);
}

TEST(StatusFromMlflowErrorTest, FallsBackToTheHttpStatusForOtherBodies) {
  Status not_found = StatusFromMlflowError(404, "<html>Not Found</html>");
  EXPECT_EQ(not_found.code(), StatusCode::kNotFound);
  EXPECT_NE(not_found.message().find("HTTP 404"), std::string::npos);
  EXPECT_EQ(StatusFromMlflowError(500, "").code(), StatusCode::kInternal);
  EXPECT_EQ(StatusFromMlflowError(400, R"({"error_code":"BAD_REQUEST","message":"m"})").code(),
            StatusCode::kInvalidArgument);
}

// The same calls, in-process against a local store and over loopback HTTP against a server on
// another store, must give the same answers.
class MlflowClientTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    if (GetParam()) {
      api::ServerConfig config;
      config.store_uri = "sqlite://" + dir_.Join("server.db");
      config.artifact_root = dir_.Join("server-artifacts");
      config.http.port = 0;
      config.http.threads = 2;
      config.http.access_log = false;
      Result<std::unique_ptr<api::App>> app = api::App::Open(config);
      ASSERT_TRUE(app.ok()) << app.status().ToString();
      server_ = std::move(*app);
      ASSERT_TRUE(server_->Start().ok());
      location_.kind = StoreLocation::Kind::kRemote;
      location_.uri = "http://127.0.0.1:" + std::to_string(server_->port());
    } else {
      location_.uri = "sqlite://" + dir_.Join("kiln.db");
      location_.artifact_root = dir_.Join("artifacts");
    }
    Result<std::unique_ptr<MlflowClient>> client = OpenMlflowClient(location_);
    ASSERT_TRUE(client.ok()) << client.status().ToString();
    client_ = std::move(*client);
  }
  void TearDown() override {
    client_.reset();
    if (server_) server_->Stop();
  }

  kiln::testing::TempDir dir_;
  std::unique_ptr<api::App> server_;
  StoreLocation location_;
  std::unique_ptr<MlflowClient> client_;
};

TEST_P(MlflowClientTest, CreatesAndReadsAnExperiment) {
  Result<Json> created = client_->Call("POST", "/experiments/create", {{"name", "churn"}});
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  std::string id = (*created)["experiment_id"].get<std::string>();
  Result<Json> got = client_->Call("GET", "/experiments/get", {{"experiment_id", id}});
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ((*got)["experiment"]["name"], "churn");
}

TEST_P(MlflowClientTest, ErrorRepliesBecomeStatuses) {
  ASSERT_TRUE(client_->Call("POST", "/experiments/create", {{"name", "dup"}}).ok());
  Result<Json> duplicate = client_->Call("POST", "/experiments/create", {{"name", "dup"}});
  ASSERT_FALSE(duplicate.ok());
  EXPECT_EQ(duplicate.status().code(), StatusCode::kAlreadyExists);
  Result<Json> missing = client_->Call("GET", "/runs/get", {{"run_id", "0123456789abcdef"}});
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
}

TEST_P(MlflowClientTest, CallAllPagesFollowsPageTokensAndStopsAtTheMaximum) {
  for (const char* name : {"a", "b", "c", "d", "e"}) {
    ASSERT_TRUE(client_->Call("POST", "/experiments/create", {{"name", name}}).ok());
  }
  // Five plus the Default experiment, two per page.
  Result<Json> all = CallAllPages(*client_, "POST", "/experiments/search", Json::object(),
                                  "experiments", 0, 2);
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  EXPECT_EQ((*all)["experiments"].size(), 6u);
  Result<Json> some = CallAllPages(*client_, "GET", "/experiments/search", Json::object(),
                                   "experiments", 3, 2);
  ASSERT_TRUE(some.ok()) << some.status().ToString();
  EXPECT_EQ((*some)["experiments"].size(), 3u);
}

TEST_P(MlflowClientTest, GetPercentEncodesQueryValues) {
  Result<Json> created = client_->Call("POST", "/experiments/create", {{"name", "x y&z"}});
  ASSERT_TRUE(created.ok());
  Result<Json> found = client_->Call("GET", "/experiments/get-by-name",
                                     {{"experiment_name", "x y&z"}});
  ASSERT_TRUE(found.ok()) << found.status().ToString();
  EXPECT_EQ((*found)["experiment"]["experiment_id"], (*created)["experiment_id"]);
}

INSTANTIATE_TEST_SUITE_P(LocalAndRemote, MlflowClientTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? "Remote" : "Local";
                         });

}  // namespace
}  // namespace kiln::cli
