// TrackingStore against real databases: every test runs on SQLite and on PostgreSQL.
#include "kiln/tracking/tracking_store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <bit>
#include <chrono>
#include <cmath>
#include <limits>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "kiln/core/json.h"
#include "kiln/tracking/logged_model_store.h"
#include "tests/support/temp_dir.h"
#include "tests/support/manual_clock.h"
#include "tests/support/test_database.h"

namespace kiln::tracking {
namespace {

using store::Backend;

using kiln::testing::ManualClock;

class TrackingStoreTest : public ::testing::TestWithParam<Backend> {
 protected:
  // The entity, not gtest's Test::Run().
  using Run = ::kiln::tracking::Run;

  void SetUp() override {
    auto opened = TrackingStore::Open(database_.db(), &clock_);
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    store_ = std::move(opened).value();
  }

  std::string NewExperiment(const std::string& name) {
    auto id = store_->CreateExperiment(name, "", {});
    EXPECT_TRUE(id.ok()) << id.status().ToString();
    return id.ok() ? *id : "";
  }

  Run NewRun(const std::string& experiment_id = "0", const std::string& run_name = "") {
    CreateRunRequest request;
    request.experiment_id = experiment_id;
    request.run_name = run_name;
    auto run = store_->CreateRun(request);
    EXPECT_TRUE(run.ok()) << run.status().ToString();
    return run.ok() ? *run : Run{};
  }

  int64_t CountRows(const std::string& sql, const std::vector<store::Value>& params = {}) {
    int64_t count = -1;
    Status read = database_.db()->Read([&](store::Transaction& tx) -> Status {
      KILN_ASSIGN_OR_RETURN(store::Rows rows, tx.Query(sql, params));
      count = rows.Int(0, 0);
      return Status::Ok();
    });
    EXPECT_TRUE(read.ok()) << read.ToString();
    return count;
  }

  static std::optional<std::string> FindTag(const std::vector<Tag>& tags, const std::string& key) {
    for (const Tag& tag : tags) {
      if (tag.key == key) return tag.value;
    }
    return std::nullopt;
  }

  static std::optional<Metric> FindMetric(const Run& run, const std::string& key) {
    for (const Metric& metric : run.metrics) {
      if (metric.key == key) return metric;
    }
    return std::nullopt;
  }

  ManualClock clock_;
  kiln::testing::TestDatabase database_{GetParam()};
  std::unique_ptr<TrackingStore> store_;
};

#define ASSERT_OK(expr)                                    \
  do {                                                     \
    const auto& assert_ok_ = (expr);                       \
    ASSERT_TRUE(assert_ok_.ok()) << assert_ok_.ToString(); \
  } while (0)

Status StatusOf(const Status& status) { return status; }
template <typename T>
Status StatusOf(const Result<T>& result) {
  return result.status();
}

#define EXPECT_STATUS(expr, status_code, text)                                  \
  do {                                                                          \
    Status expect_status_ = StatusOf(expr);                                     \
    EXPECT_EQ(expect_status_.code(), status_code) << expect_status_.ToString(); \
    EXPECT_EQ(expect_status_.message(), text);                                  \
  } while (0)

// --- Experiments ---------------------------------------------------------------------------------

TEST_P(TrackingStoreTest, DefaultExperimentExists) {
  auto experiment = store_->GetExperiment("0");
  ASSERT_TRUE(experiment.ok()) << experiment.status().ToString();
  EXPECT_EQ(experiment->name, "Default");
  EXPECT_EQ(experiment->artifact_location, "mlflow-artifacts:/0");
  EXPECT_EQ(experiment->lifecycle_stage, "active");
  EXPECT_EQ(experiment->creation_time, 1'700'000'000'000);
}

TEST_P(TrackingStoreTest, OpeningAgainKeepsOneDefaultExperiment) {
  auto again = TrackingStore::Open(database_.db(), &clock_);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(CountRows("SELECT COUNT(*) FROM experiments"), 1);
}

TEST_P(TrackingStoreTest, CreateExperimentAssignsFreshIdsAndDefaultArtifactLocation) {
  std::string first = NewExperiment("first");
  std::string second = NewExperiment("second");
  EXPECT_NE(first, "0");
  EXPECT_NE(first, second);
  auto experiment = store_->GetExperiment(second);
  ASSERT_TRUE(experiment.ok());
  EXPECT_EQ(experiment->name, "second");
  EXPECT_EQ(experiment->artifact_location, "mlflow-artifacts:/" + second);
}

TEST_P(TrackingStoreTest, CreateExperimentKeepsGivenArtifactLocationAndTags) {
  auto id = store_->CreateExperiment("with-tags", "s3://bucket/x", {{"team", "risk"}, {"a", "1"}});
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  auto experiment = store_->GetExperimentByName("with-tags");
  ASSERT_TRUE(experiment.ok());
  EXPECT_EQ(experiment->experiment_id, *id);
  EXPECT_EQ(experiment->artifact_location, "s3://bucket/x");
  ASSERT_EQ(experiment->tags.size(), 2u);
  EXPECT_EQ(FindTag(experiment->tags, "team"), "risk");
}

TEST_P(TrackingStoreTest, CreateExperimentRejectsTakenNameEvenWhenDeleted) {
  std::string id = NewExperiment("edge");
  ASSERT_OK(store_->DeleteExperiment(id));
  EXPECT_STATUS(store_->CreateExperiment("edge", "", {}), StatusCode::kAlreadyExists,
                "Experiment(name=edge) already exists.");
}

TEST_P(TrackingStoreTest, CreateExperimentValidatesNameAndTags) {
  EXPECT_STATUS(store_->CreateExperiment("", "", {}), StatusCode::kInvalidArgument,
                "Invalid experiment name: ''");
  EXPECT_EQ(store_->CreateExperiment(std::string(501, 'n'), "", {}).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_TRUE(store_->CreateExperiment(std::string(500, 'n'), "", {}).ok());
  EXPECT_EQ(store_->CreateExperiment("t", "", {{"k", std::string(5001, 'v')}}).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->CreateExperiment("t", "", {{"bad*key", "v"}}).status().code(),
            StatusCode::kInvalidArgument);
}

TEST_P(TrackingStoreTest, UnknownExperimentIsNotFound) {
  EXPECT_STATUS(store_->GetExperiment("12345"), StatusCode::kNotFound,
                "No Experiment with id=12345 exists");
  EXPECT_STATUS(store_->GetExperiment("abc"), StatusCode::kNotFound,
                "No Experiment with id=abc exists");
  EXPECT_STATUS(store_->GetExperimentByName("nope"), StatusCode::kNotFound,
                "Could not find experiment with name 'nope'");
}

TEST_P(TrackingStoreTest, RenameExperimentUpdatesNameAndLastUpdateTime) {
  std::string id = NewExperiment("old");
  NewExperiment("taken");
  clock_.Set(1'800'000'000'000);
  ASSERT_OK(store_->RenameExperiment(id, "new"));
  auto experiment = store_->GetExperiment(id);
  ASSERT_TRUE(experiment.ok());
  EXPECT_EQ(experiment->name, "new");
  EXPECT_EQ(experiment->last_update_time, 1'800'000'000'000);
  EXPECT_EQ(store_->RenameExperiment(id, "taken").code(), StatusCode::kAlreadyExists);
}

TEST_P(TrackingStoreTest, DeleteExperimentDeletesItsRunsAndRestoreBringsThemBack) {
  std::string id = NewExperiment("doomed");
  Run run = NewRun(id);
  ASSERT_OK(store_->DeleteExperiment(id));
  EXPECT_EQ(store_->GetExperiment(id)->lifecycle_stage, "deleted");
  EXPECT_EQ(store_->GetRun(run.info.run_id)->info.lifecycle_stage, "deleted");
  EXPECT_EQ(store_->DeleteExperiment(id).code(), StatusCode::kNotFound);
  ASSERT_OK(store_->RestoreExperiment(id));
  EXPECT_EQ(store_->GetExperiment(id)->lifecycle_stage, "active");
  EXPECT_EQ(store_->GetRun(run.info.run_id)->info.lifecycle_stage, "active");
}

TEST_P(TrackingStoreTest, ExperimentTagsCanBeSetOverwrittenAndDeleted) {
  std::string id = NewExperiment("tagged");
  ASSERT_OK(store_->SetExperimentTag(id, {"k", "1"}));
  ASSERT_OK(store_->SetExperimentTag(id, {"k", "2"}));
  EXPECT_EQ(FindTag(store_->GetExperiment(id)->tags, "k"), "2");
  ASSERT_OK(store_->DeleteExperimentTag(id, "k"));
  EXPECT_FALSE(FindTag(store_->GetExperiment(id)->tags, "k"));
  EXPECT_STATUS(store_->DeleteExperimentTag(id, "k"), StatusCode::kNotFound,
                "No tag with name: k in experiment with id " + id);
}

TEST_P(TrackingStoreTest, SearchExperimentsFindsByNameAndPages) {
  NewExperiment("alpha");
  NewExperiment("beta");
  ExperimentSearchSpec spec;
  spec.filter = "name = 'beta'";
  auto found = store_->SearchExperiments(spec);
  ASSERT_TRUE(found.ok()) << found.status().ToString();
  ASSERT_EQ(found->items.size(), 1u);
  EXPECT_EQ(found->items[0].name, "beta");

  ExperimentSearchSpec paged;
  paged.max_results = 2;
  auto first = store_->SearchExperiments(paged);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->items.size(), 2u);
  EXPECT_FALSE(first->next_page_token.empty());
  paged.offset = *DecodePageToken(first->next_page_token);
  auto second = store_->SearchExperiments(paged);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->items.size(), 1u);
  EXPECT_TRUE(second->next_page_token.empty());
}

// --- Runs ----------------------------------------------------------------------------------------

TEST_P(TrackingStoreTest, CreateRunUsesExperimentArtifactLocationAndDefaults) {
  auto id = store_->CreateExperiment("located", "s3://bucket/base/", {});
  ASSERT_TRUE(id.ok());
  Run run = NewRun(*id);
  EXPECT_EQ(run.info.run_id.size(), 32u);
  EXPECT_EQ(run.info.artifact_uri, "s3://bucket/base/" + run.info.run_id + "/artifacts");
  EXPECT_EQ(run.info.status, "RUNNING");
  EXPECT_EQ(run.info.start_time, 1'700'000'000'000);
  Run in_default = NewRun("");
  EXPECT_EQ(in_default.info.experiment_id, "0");
  EXPECT_EQ(in_default.info.artifact_uri,
            "mlflow-artifacts:/0/" + in_default.info.run_id + "/artifacts");
  auto fetched = store_->GetRun(run.info.run_id);
  ASSERT_TRUE(fetched.ok());
  EXPECT_EQ(fetched->info.artifact_uri, run.info.artifact_uri);
  EXPECT_FALSE(fetched->info.end_time.has_value());
}

TEST_P(TrackingStoreTest, CreateRunInDeletedOrUnknownExperimentIsRejected) {
  std::string id = NewExperiment("gone");
  ASSERT_OK(store_->DeleteExperiment(id));
  CreateRunRequest request;
  request.experiment_id = id;
  EXPECT_STATUS(
      store_->CreateRun(request), StatusCode::kInvalidArgument,
      "The experiment " + id + " must be in the 'active' state. Current state is deleted.");
  request.experiment_id = "999999";
  EXPECT_EQ(store_->CreateRun(request).status().code(), StatusCode::kNotFound);
}

TEST_P(TrackingStoreTest, RunNameMirrorsTag) {
  Run run = NewRun("0", "first-name");
  EXPECT_EQ(run.info.run_name, "first-name");
  EXPECT_EQ(FindTag(run.tags, "mlflow.runName"), "first-name");

  UpdateRunRequest update;
  update.run_id = run.info.run_id;
  update.run_name = "second-name";
  ASSERT_TRUE(store_->UpdateRun(update).ok());
  auto fetched = store_->GetRun(run.info.run_id);
  EXPECT_EQ(fetched->info.run_name, "second-name");
  EXPECT_EQ(FindTag(fetched->tags, "mlflow.runName"), "second-name");

  ASSERT_OK(store_->SetTag(run.info.run_id, {"mlflow.runName", "third-name"}));
  EXPECT_EQ(store_->GetRun(run.info.run_id)->info.run_name, "third-name");
}

TEST_P(TrackingStoreTest, RunNameComesFromTagOrIsGenerated) {
  CreateRunRequest request;
  request.tags = {{"mlflow.runName", "from-tag"}};
  auto tagged = store_->CreateRun(request);
  ASSERT_TRUE(tagged.ok());
  EXPECT_EQ(tagged->info.run_name, "from-tag");

  request.run_name = "other";
  EXPECT_EQ(store_->CreateRun(request).status().code(), StatusCode::kInvalidArgument);

  Run generated = NewRun();
  EXPECT_TRUE(std::regex_match(generated.info.run_name, std::regex("[a-z]+-[a-z]+-[0-9]{1,3}")))
      << generated.info.run_name;
  EXPECT_EQ(FindTag(generated.tags, "mlflow.runName"), generated.info.run_name);
}

TEST_P(TrackingStoreTest, UpdateRunSetsStatusAndEndTimeAndRejectsUnknownStatus) {
  Run run = NewRun();
  UpdateRunRequest update;
  update.run_id = run.info.run_id;
  update.status = "FINISHED";
  update.end_time = 1'700'000'000'500;
  auto info = store_->UpdateRun(update);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->status, "FINISHED");
  EXPECT_EQ(store_->GetRun(run.info.run_id)->info.end_time, 1'700'000'000'500);
  update.status = "DONE";
  EXPECT_EQ(store_->UpdateRun(update).status().code(), StatusCode::kInvalidArgument);
}

TEST_P(TrackingStoreTest, UnknownRunIsNotFound) {
  EXPECT_STATUS(store_->GetRun("0123456789abcdef0123456789abcdef"), StatusCode::kNotFound,
                "Run with id=0123456789abcdef0123456789abcdef not found");
  EXPECT_EQ(store_->LogMetric("0123456789abcdef0123456789abcdef", {"m", 1, 1, 0}).code(),
            StatusCode::kNotFound);
}

TEST_P(TrackingStoreTest, DeletedRunRejectsLoggingUntilRestored) {
  Run run = NewRun();
  const std::string& id = run.info.run_id;
  ASSERT_OK(store_->DeleteRun(id));
  EXPECT_EQ(store_->GetRun(id)->info.lifecycle_stage, "deleted");
  const std::string message =
      "The run " + id + " must be in the 'active' state. Current state is deleted.";
  EXPECT_STATUS(store_->LogMetric(id, {"m", 1, 1, 0}), StatusCode::kInvalidArgument, message);
  EXPECT_STATUS(store_->LogParam(id, {"p", "1"}), StatusCode::kInvalidArgument, message);
  EXPECT_STATUS(store_->SetTag(id, {"t", "1"}), StatusCode::kInvalidArgument, message);
  LogBatchRequest batch;
  batch.run_id = id;
  batch.metrics = {{"m", 1, 1, 0}};
  EXPECT_STATUS(store_->LogBatch(batch), StatusCode::kInvalidArgument, message);
  ASSERT_OK(store_->RestoreRun(id));
  ASSERT_OK(store_->LogBatch(batch));
}

TEST_P(TrackingStoreTest, InvalidNamesAreRejectedWithMlflowMessages) {
  Run run = NewRun();
  const std::string& id = run.info.run_id;
  const std::string kRule =
      "Names may only contain alphanumerics, underscores (_), dashes (-), periods (.), spaces ( ), "
      "and slashes (/).";
  EXPECT_STATUS(store_->LogMetric(id, {"bad*key", 1, 1, 0}), StatusCode::kInvalidArgument,
                "Invalid metric name: 'bad*key'. " + kRule);
  EXPECT_STATUS(store_->LogParam(id, {"bad*key", "v"}), StatusCode::kInvalidArgument,
                "Invalid param name: 'bad*key'. " + kRule);
  EXPECT_STATUS(store_->SetTag(id, {"bad*key", "v"}), StatusCode::kInvalidArgument,
                "Invalid tag name: 'bad*key'. " + kRule);
  struct Case {
    std::string key;
    bool ok;
  };
  const std::vector<Case> cases = {
      {"loss", true},
      {"val/loss", true},
      {"a b:c-d.e_f", true},
      {"../up", false},
      {"/abs", false},
      {"a//b", false},
      {"a/./b", false},
      {"", false},
      {std::string(250, 'k'), true},
      {std::string(251, 'k'), false},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(store_->LogMetric(id, {c.key, 1, 1, 0}).ok(), c.ok) << "key '" << c.key << "'";
  }
}

// --- Params and tags -----------------------------------------------------------------------------

TEST_P(TrackingStoreTest, ParamValueLongerThan6000IsTruncated) {
  Run run = NewRun();
  ASSERT_OK(store_->LogParam(run.info.run_id, {"long", std::string(6001, 'x')}));
  ASSERT_OK(store_->LogParam(run.info.run_id, {"exact", std::string(6000, 'y')}));
  auto fetched = store_->GetRun(run.info.run_id);
  EXPECT_EQ(FindTag(fetched->params, "long"), std::string(6000, 'x'));
  EXPECT_EQ(FindTag(fetched->params, "exact"), std::string(6000, 'y'));
}

TEST_P(TrackingStoreTest, ChangingParamValueIsRejected) {
  Run run = NewRun();
  const std::string& id = run.info.run_id;
  ASSERT_OK(store_->LogParam(id, {"k", "old"}));
  ASSERT_OK(store_->LogParam(id, {"k", "old"}));  // the same value again is fine
  EXPECT_STATUS(store_->LogParam(id, {"k", "new"}), StatusCode::kInvalidArgument,
                "Changing param values is not allowed. Param with key='k' was already logged "
                "with value='old' for run ID='" +
                    id + "'. Attempted logging new value 'new'.");
  EXPECT_EQ(FindTag(store_->GetRun(id)->params, "k"), "old");
}

TEST_P(TrackingStoreTest, LogBatchWithChangedParamWritesNothing) {
  Run run = NewRun();
  const std::string& id = run.info.run_id;
  ASSERT_OK(store_->LogParam(id, {"k", "old"}));
  LogBatchRequest batch;
  batch.run_id = id;
  batch.metrics = {{"m", 1, 1, 0}};
  batch.params = {{"k", "new"}, {"fresh", "1"}};
  batch.tags = {{"t", "1"}};
  EXPECT_STATUS(store_->LogBatch(batch), StatusCode::kInvalidArgument,
                "Changing param values is not allowed. Params were already logged='[{'key': 'k', "
                "'old_value': 'old', 'new_value': 'new'}]' for run ID='" +
                    id + "'.");
  auto fetched = store_->GetRun(id);
  EXPECT_TRUE(fetched->metrics.empty());
  EXPECT_EQ(fetched->params.size(), 1u);
  EXPECT_FALSE(FindTag(fetched->tags, "t"));
}

TEST_P(TrackingStoreTest, LogBatchRejectsDuplicateParamKeysWithDifferentValues) {
  Run run = NewRun();
  LogBatchRequest batch;
  batch.run_id = run.info.run_id;
  batch.params = {{"k", "1"}, {"k", "1"}};
  ASSERT_OK(store_->LogBatch(batch));
  batch.params = {{"j", "1"}, {"j", "2"}};
  EXPECT_STATUS(store_->LogBatch(batch), StatusCode::kInvalidArgument,
                "Duplicate parameter keys have been submitted: ['j']. Please ensure the request "
                "contains only one param value per param key.");
}

TEST_P(TrackingStoreTest, TagValueLongerThan5000IsTruncatedAndTagsOverwrite) {
  Run run = NewRun();
  const std::string& id = run.info.run_id;
  ASSERT_OK(store_->SetTag(id, {"note", std::string(5001, 'z')}));
  EXPECT_EQ(FindTag(store_->GetRun(id)->tags, "note"), std::string(5000, 'z'));
  ASSERT_OK(store_->SetTag(id, {"note", "short"}));
  EXPECT_EQ(FindTag(store_->GetRun(id)->tags, "note"), "short");
}

TEST_P(TrackingStoreTest, DeleteTagRemovesItAndUnknownKeyIsNotFound) {
  Run run = NewRun();
  const std::string& id = run.info.run_id;
  ASSERT_OK(store_->SetTag(id, {"k", "v"}));
  ASSERT_OK(store_->DeleteTag(id, "k"));
  EXPECT_FALSE(FindTag(store_->GetRun(id)->tags, "k"));
  EXPECT_STATUS(store_->DeleteTag(id, "k"), StatusCode::kNotFound,
                "No tag with name: k in run with id " + id);
}

// --- Log batch -----------------------------------------------------------------------------------

TEST_P(TrackingStoreTest, LogBatchRejectsMoreThan1000Metrics) {
  Run run = NewRun();
  LogBatchRequest batch;
  batch.run_id = run.info.run_id;
  for (int i = 0; i < 1001; ++i) batch.metrics.push_back({"m", double(i), 1, i});
  EXPECT_STATUS(store_->LogBatch(batch), StatusCode::kInvalidArgument,
                "A batch logging request can contain at most 1000 metrics. Got 1001 metrics. "
                "Please split up metrics across multiple requests and try again.");
  EXPECT_EQ(CountRows("SELECT COALESCE(SUM(point_count), 0) FROM metric_chunks"), 0);
}

TEST_P(TrackingStoreTest, LogBatchEnforcesParamTagAndTotalLimits) {
  Run run = NewRun();
  struct Case {
    size_t metrics, params, tags;
    std::string message;  // empty: accepted
  };
  const std::vector<Case> cases = {
      {1000, 0, 0, ""},
      {0, 100, 100, ""},
      {0, 101, 0,
       "A batch logging request can contain at most 100 params. Got 101 params. Please split up "
       "params across multiple requests and try again."},
      {0, 0, 101,
       "A batch logging request can contain at most 100 tags. Got 101 tags. Please split up tags "
       "across multiple requests and try again."},
      {950, 50, 1,
       "A batch logging request can contain at most 1000 metrics, params, and tags. Got 1001 "
       "metrics, params, and tags. Please split up metrics, params, and tags across multiple "
       "requests and try again."},
  };
  int batch_number = 0;
  for (const Case& c : cases) {
    ++batch_number;
    LogBatchRequest batch;
    batch.run_id = run.info.run_id;
    for (size_t i = 0; i < c.metrics; ++i) {
      batch.metrics.push_back({"m", 1.0, batch_number, static_cast<int64_t>(i)});
    }
    for (size_t i = 0; i < c.params; ++i) {
      batch.params.push_back({"p" + std::to_string(batch_number) + "_" + std::to_string(i), "v"});
    }
    for (size_t i = 0; i < c.tags; ++i) batch.tags.push_back({"t" + std::to_string(i), "v"});
    Status status = store_->LogBatch(batch);
    if (c.message.empty()) {
      EXPECT_TRUE(status.ok()) << status.ToString();
    } else {
      EXPECT_EQ(status.message(), c.message);
    }
  }
}

TEST_P(TrackingStoreTest, LogBatchOf1000MetricsIsOneFastTransaction) {
  Run run = NewRun();
  LogBatchRequest batch;
  batch.run_id = run.info.run_id;
  for (int i = 0; i < 1000; ++i) {
    batch.metrics.push_back({"m" + std::to_string(i % 10), i * 0.5, 1'700'000'000'000 + i, i});
  }
  auto start = std::chrono::steady_clock::now();
  ASSERT_OK(store_->LogBatch(batch));
  auto elapsed = std::chrono::steady_clock::now() - start;
  std::printf("log-batch of 1000 metrics: %.2f ms\n",
              std::chrono::duration<double, std::milli>(elapsed).count());
  EXPECT_LT(elapsed, std::chrono::seconds(2));  // a Debug build; release is a few ms
  EXPECT_EQ(CountRows("SELECT COALESCE(SUM(point_count), 0) FROM metric_chunks"), 1000);
  EXPECT_EQ(CountRows("SELECT COUNT(*) FROM latest_metrics"), 10);
  auto latest = FindMetric(*store_->GetRun(run.info.run_id), "m9");
  ASSERT_TRUE(latest);
  EXPECT_EQ(latest->step, 999);
  EXPECT_EQ(latest->value, 499.5);
}

// --- Metrics -------------------------------------------------------------------------------------

TEST_P(TrackingStoreTest, NaNMetricRoundTrips) {
  Run run = NewRun();
  ASSERT_OK(
      store_->LogMetric(run.info.run_id, {"nanm", std::numeric_limits<double>::quiet_NaN(), 1, 0}));
  auto latest = FindMetric(*store_->GetRun(run.info.run_id), "nanm");
  ASSERT_TRUE(latest);
  EXPECT_TRUE(std::isnan(latest->value));
  auto history = store_->GetMetricHistory(run.info.run_id, "nanm", 0, "");
  ASSERT_TRUE(history.ok()) << history.status().ToString();
  ASSERT_EQ(history->items.size(), 1u);
  EXPECT_TRUE(std::isnan(history->items[0].value));
}

TEST_P(TrackingStoreTest, InfiniteMetricsRoundTrip) {
  Run run = NewRun();
  const double inf = std::numeric_limits<double>::infinity();
  ASSERT_OK(store_->LogMetric(run.info.run_id, {"up", inf, 1, 0}));
  ASSERT_OK(store_->LogMetric(run.info.run_id, {"down", -inf, 1, 0}));
  auto fetched = store_->GetRun(run.info.run_id);
  EXPECT_EQ(FindMetric(*fetched, "up")->value, inf);
  EXPECT_EQ(FindMetric(*fetched, "down")->value, -inf);
  EXPECT_EQ(store_->GetMetricHistory(run.info.run_id, "up", 0, "")->items.at(0).value, inf);
}

TEST_P(TrackingStoreTest, LatestMetricFollowsMaxStepThenTimestampThenValue) {
  struct Case {
    std::string name;
    std::vector<Metric> points;  // logged one by one
    Metric expected;
  };
  const std::vector<Case> cases = {
      {"higher step wins over later time", {{"m", 1, 200, 5}, {"m", 2, 300, 4}}, {"m", 1, 200, 5}},
      {"later time wins at equal step", {{"m", 1, 100, 5}, {"m", 2, 200, 5}}, {"m", 2, 200, 5}},
      {"earlier time loses at equal step", {{"m", 2, 200, 5}, {"m", 1, 100, 5}}, {"m", 2, 200, 5}},
      {"greater value wins at equal step and time",
       {{"m", 3, 100, 5}, {"m", 1, 100, 5}},
       {"m", 3, 100, 5}},
      {"a new step replaces", {{"m", 9, 100, 0}, {"m", 1, 100, 1}}, {"m", 1, 100, 1}},
  };
  for (const Case& c : cases) {
    Run run = NewRun();
    for (const Metric& point : c.points) ASSERT_OK(store_->LogMetric(run.info.run_id, point));
    auto latest = FindMetric(*store_->GetRun(run.info.run_id), "m");
    ASSERT_TRUE(latest) << c.name;
    EXPECT_EQ(latest->value, c.expected.value) << c.name;
    EXPECT_EQ(latest->timestamp, c.expected.timestamp) << c.name;
    EXPECT_EQ(latest->step, c.expected.step) << c.name;

    // The same points in one batch, in reverse order, give the same latest point.
    Run batched = NewRun();
    LogBatchRequest batch;
    batch.run_id = batched.info.run_id;
    batch.metrics.assign(c.points.rbegin(), c.points.rend());
    ASSERT_OK(store_->LogBatch(batch));
    auto batch_latest = FindMetric(*store_->GetRun(batched.info.run_id), "m");
    EXPECT_EQ(batch_latest->value, c.expected.value) << c.name << " (batch)";
    EXPECT_EQ(batch_latest->step, c.expected.step) << c.name << " (batch)";
  }
}

TEST_P(TrackingStoreTest, IdenticalMetricPointsAreStoredOnce) {
  Run run = NewRun();
  LogBatchRequest batch;
  batch.run_id = run.info.run_id;
  batch.metrics = {{"m", 1, 10, 0}, {"m", 1, 10, 0}, {"m", 2, 10, 0}};
  ASSERT_OK(store_->LogBatch(batch));
  ASSERT_OK(store_->LogBatch(batch));  // a client retry
  EXPECT_EQ(store_->GetMetricHistory(run.info.run_id, "m", 0, "")->items.size(), 2u);
}

TEST_P(TrackingStoreTest, NumberBeatsNaNOnAFullTieInOneBatchWhateverTheOrder) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  for (bool nan_first : {true, false}) {
    Run run = NewRun();
    LogBatchRequest batch;
    batch.run_id = run.info.run_id;
    batch.metrics = {{"m", nan, 10, 1}, {"m", 0, 10, 1}};
    if (!nan_first) std::swap(batch.metrics[0], batch.metrics[1]);
    ASSERT_OK(store_->LogBatch(batch));
    auto latest = FindMetric(*store_->GetRun(run.info.run_id), "m");
    ASSERT_TRUE(latest);
    EXPECT_EQ(latest->value, 0) << "nan_first=" << nan_first;
    EXPECT_EQ(store_->GetMetricHistory(run.info.run_id, "m", 0, "")->items.size(), 2u)
        << "NaN and 0 are different points";
  }
}

TEST_P(TrackingStoreTest, MetricsWithModelIdAreLinkedToTheLoggedModel) {
  LoggedModelStore models(database_.db(), &clock_);
  CreateLoggedModelRequest create;
  create.experiment_id = "0";
  auto model = models.Create(create);
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  Run run = NewRun();
  LogBatchRequest batch;
  batch.run_id = run.info.run_id;
  batch.metrics = {{"acc", 0.5, 10, 1}, {"acc", 0.7, 20, 2}, {"loss", 0.1, 10, 1}};
  batch.metrics[0].model_id = model->model_id;
  batch.metrics[0].dataset_name = "eval";
  batch.metrics[0].dataset_digest = "abc";
  batch.metrics[1].model_id = model->model_id;
  ASSERT_OK(store_->LogBatch(batch));
  ASSERT_OK(store_->LogBatch(batch));  // a retry links nothing twice
  Metric single{"f1", 0.9, 30, 0};
  single.model_id = model->model_id;
  ASSERT_OK(store_->LogMetric(run.info.run_id, single));

  auto loaded = models.Get(model->model_id);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  ASSERT_EQ(loaded->metrics.size(), 3u);
  EXPECT_EQ(loaded->metrics[0].key, "acc");
  EXPECT_EQ(loaded->metrics[0].run_id, run.info.run_id);
  EXPECT_EQ(loaded->metrics[0].dataset_name, "eval");
  EXPECT_EQ(loaded->metrics[0].dataset_digest, "abc");
  EXPECT_EQ(loaded->metrics[1].value, 0.7);
  EXPECT_EQ(loaded->metrics[1].dataset_name, "");
  EXPECT_EQ(loaded->metrics[2].key, "f1");
  EXPECT_EQ(store_->GetRun(run.info.run_id)->metrics.size(), 3u);

  // An unknown model rejects the whole batch, run metrics included.
  LogBatchRequest unknown;
  unknown.run_id = run.info.run_id;
  unknown.metrics = {{"late", 1, 40, 0}};
  unknown.metrics[0].model_id = "m-00000000000000000000000000000000";
  EXPECT_EQ(store_->LogBatch(unknown).code(), StatusCode::kNotFound);
  EXPECT_FALSE(FindMetric(*store_->GetRun(run.info.run_id), "late"));
}

TEST_P(TrackingStoreTest, MetricHistoryPagesInStepOrder) {
  Run run = NewRun();
  LogBatchRequest batch;
  batch.run_id = run.info.run_id;
  for (int step = 6; step >= 0; --step)
    batch.metrics.push_back({"m", step * 1.5, 100 + step, step});
  batch.metrics.push_back({"other", 1, 1, 0});
  ASSERT_OK(store_->LogBatch(batch));

  std::vector<int64_t> steps;
  std::string token;
  int pages = 0;
  do {
    auto page = store_->GetMetricHistory(run.info.run_id, "m", 3, token);
    ASSERT_TRUE(page.ok()) << page.status().ToString();
    for (const Metric& metric : page->items) {
      EXPECT_EQ(metric.key, "m");
      EXPECT_EQ(metric.value, metric.step * 1.5);
      steps.push_back(metric.step);
    }
    token = page->next_page_token;
    ++pages;
  } while (!token.empty() && pages < 10);
  EXPECT_EQ(pages, 3);
  EXPECT_EQ(steps, (std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(store_->GetMetricHistory(run.info.run_id, "m", 0, "not a token").status().code(),
            StatusCode::kInvalidArgument);
}

TEST_P(TrackingStoreTest, MetricHistoryStoresABatchAsOneChunkPerKeyAndRoundTripsEveryValue) {
  const double inf = std::numeric_limits<double>::infinity();
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const std::vector<double> values = {0.1,   -0.0,   1e308, -4.9e-324, 2.2250738585072014e-308,
                                      inf,   -inf,   nan,   123456789012345678.0, 1.0 / 3};
  Run run = NewRun();
  LogBatchRequest batch;
  batch.run_id = run.info.run_id;
  for (size_t i = 0; i < values.size(); ++i) {
    batch.metrics.push_back({"v", values[i], -5 + static_cast<int64_t>(i),
                             static_cast<int64_t>(i) - 3});
    batch.metrics.push_back({"w", 1, 7, static_cast<int64_t>(i)});
  }
  ASSERT_OK(store_->LogBatch(batch));
  EXPECT_EQ(CountRows("SELECT COUNT(*) FROM metric_chunks"), 2);
  EXPECT_EQ(CountRows("SELECT min_step FROM metric_chunks WHERE key = 'v'"), -3);
  EXPECT_EQ(CountRows("SELECT max_step FROM metric_chunks WHERE key = 'v'"), 6);

  auto history = store_->GetFullMetricHistory(run.info.run_id, "v");
  ASSERT_TRUE(history.ok()) << history.status().ToString();
  ASSERT_EQ(history->size(), values.size());
  for (size_t i = 0; i < values.size(); ++i) {
    const Metric& metric = (*history)[i];
    EXPECT_EQ(metric.step, static_cast<int64_t>(i) - 3);
    EXPECT_EQ(metric.timestamp, -5 + static_cast<int64_t>(i));
    if (std::isnan(values[i])) {
      EXPECT_TRUE(std::isnan(metric.value));
    } else {
      EXPECT_EQ(std::bit_cast<uint64_t>(metric.value), std::bit_cast<uint64_t>(values[i]))
          << "point " << i << ": " << metric.value;
    }
  }
  EXPECT_EQ(store_->GetFullMetricHistory("0123456789abcdef0123456789abcdef", "v").status().code(),
            StatusCode::kNotFound);
}

TEST_P(TrackingStoreTest, MetricHistoryMergesPointsLoggedBeforeChunksAndCollapsesRepeats) {
  Run run = NewRun();
  // Points as schema version 4 stored them, one row each (NaN is value 0 with is_nan 1).
  ASSERT_OK(database_.db()->Write([&](store::Transaction& tx) -> Status {
    return tx
        .ExecMany("INSERT INTO metrics (run_uuid, key, value, is_nan, timestamp, step) "
                  "VALUES (?, ?, ?, ?, ?, ?)",
                  {{run.info.run_id, std::string("m"), 2.0, int64_t{0}, int64_t{10}, int64_t{2}},
                   {run.info.run_id, std::string("m"), 0.0, int64_t{1}, int64_t{10}, int64_t{4}},
                   {run.info.run_id, std::string("n"), 9.0, int64_t{0}, int64_t{10}, int64_t{0}}})
        .status();
  }));
  LogBatchRequest batch;
  batch.run_id = run.info.run_id;
  batch.metrics = {{"m", 3, 10, 3},
                   {"m", 2, 10, 2},  // the same point as a stored row
                   {"m", std::numeric_limits<double>::quiet_NaN(), 10, 4},  // ditto
                   {"m", 1, 10, 1},
                   {"m", 1, 10, 1}};  // twice in one batch
  ASSERT_OK(store_->LogBatch(batch));
  ASSERT_OK(store_->LogBatch(batch));  // a client retry

  std::vector<int64_t> steps;
  std::string token;
  int pages = 0;
  do {
    auto page = store_->GetMetricHistory(run.info.run_id, "m", 2, token);
    ASSERT_TRUE(page.ok()) << page.status().ToString();
    for (const Metric& metric : page->items) steps.push_back(metric.step);
    token = page->next_page_token;
    ++pages;
  } while (!token.empty() && pages < 10);
  EXPECT_EQ(steps, (std::vector<int64_t>{1, 2, 3, 4}));
  EXPECT_EQ(pages, 2);
  auto full = store_->GetFullMetricHistory(run.info.run_id, "m");
  ASSERT_TRUE(full.ok()) << full.status().ToString();
  ASSERT_EQ(full->size(), 4u);
  EXPECT_TRUE(std::isnan(full->back().value));
  EXPECT_EQ(store_->GetFullMetricHistory(run.info.run_id, "n")->size(), 1u);
  EXPECT_TRUE(store_->GetFullMetricHistory(run.info.run_id, "absent")->empty());
}

TEST_P(TrackingStoreTest, AMalformedHistoryChunkIsAnErrorNamingRunKeyAndPoint) {
  Run run = NewRun();
  for (const std::string& points : {std::string("1 2 3\n4 5\n"), std::string("1 2 3"),
                                    std::string("x 2 3\n"), std::string("1 2 3x\n"),
                                    std::string("1 2 -nan\n")}) {
    ASSERT_OK(database_.db()->Write([&](store::Transaction& tx) -> Status {
      KILN_RETURN_IF_ERROR(tx.Exec("DELETE FROM metric_chunks").status());
      return tx
          .Exec("INSERT INTO metric_chunks (run_uuid, key, chunk_id, point_count, min_step, "
                "max_step, points) VALUES (?, 'bad', 1, 2, 1, 4, ?)",
                {run.info.run_id, points})
          .status();
    }));
    auto history = store_->GetMetricHistory(run.info.run_id, "bad", 0, "");
    EXPECT_EQ(history.status().code(), StatusCode::kInternal) << points;
    EXPECT_THAT(history.status().message(),
                ::testing::HasSubstr("run '" + run.info.run_id + "', key 'bad'"));
    EXPECT_THAT(history.status().message(), ::testing::HasSubstr("stored point"));
  }
}

// --- Inputs and models ---------------------------------------------------------------------------

TEST_P(TrackingStoreTest, LogInputsShowUpInGetRunOnce) {
  Run run = NewRun();
  DatasetInput input;
  input.dataset = {"credit", "abc123", "local", "/data/credit.csv", "{\"cols\":[]}", "{}"};
  input.tags = {{"mlflow.data.context", "train"}};
  ASSERT_OK(store_->LogInputs(run.info.run_id, {input, input}));
  ASSERT_OK(store_->LogInputs(run.info.run_id, {input}));
  auto fetched = store_->GetRun(run.info.run_id);
  ASSERT_EQ(fetched->inputs.size(), 1u);
  EXPECT_EQ(fetched->inputs[0].dataset.name, "credit");
  EXPECT_EQ(fetched->inputs[0].dataset.digest, "abc123");
  EXPECT_EQ(fetched->inputs[0].dataset.source, "/data/credit.csv");
  EXPECT_EQ(fetched->inputs[0].dataset.schema, "{\"cols\":[]}");
  ASSERT_EQ(fetched->inputs[0].tags.size(), 1u);
  EXPECT_EQ(fetched->inputs[0].tags[0].value, "train");

  // Another run of the same experiment reuses the dataset row.
  Run other = NewRun();
  ASSERT_OK(store_->LogInputs(other.info.run_id, {input}));
  EXPECT_EQ(CountRows("SELECT COUNT(*) FROM datasets"), 1);
  EXPECT_EQ(CountRows("SELECT COUNT(*) FROM inputs"), 2);
}

TEST_P(TrackingStoreTest, LogModelAppendsToHistoryTag) {
  Run run = NewRun();
  const std::string model =
      R"({"artifact_path": "model", "flavors": {"sklearn": {}}, "run_id": ")" + run.info.run_id +
      R"(", "utc_time_created": "2024-01-01 00:00:00"})";
  ASSERT_OK(store_->LogModel(run.info.run_id, model));
  ASSERT_OK(store_->LogModel(run.info.run_id, model));
  auto history = FindTag(store_->GetRun(run.info.run_id)->tags, "mlflow.log-model.history");
  ASSERT_TRUE(history);
  auto parsed = ParseJson(*history);
  ASSERT_TRUE(parsed.ok());
  ASSERT_TRUE(parsed->is_array());
  EXPECT_EQ(parsed->size(), 2u);
  EXPECT_EQ((*parsed)[1]["artifact_path"], "model");
  EXPECT_EQ(store_->LogModel(run.info.run_id, "{not json").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->LogModel(run.info.run_id, "{}").code(), StatusCode::kInvalidArgument);
}

// --- Search --------------------------------------------------------------------------------------

TEST_P(TrackingStoreTest, SearchRunsFiltersAndOrdersAndLoadsWholeRuns) {
  std::string experiment = NewExperiment("search");
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) {
    Run run = NewRun(experiment, "run-" + std::to_string(i));
    ids.push_back(run.info.run_id);
    LogBatchRequest batch;
    batch.run_id = run.info.run_id;
    batch.metrics = {{"auc", 0.5 + i * 0.1, 1, 0}};
    batch.params = {{"depth", std::to_string(i)}};
    batch.tags = {{"parity", i % 2 == 0 ? "even" : "odd"}};
    ASSERT_OK(store_->LogBatch(batch));
  }
  RunSearchSpec spec;
  spec.experiment_ids = {std::stoll(experiment)};
  spec.filter = "metrics.auc > 0.65 AND tags.parity = 'even'";
  spec.order_by = {"metrics.auc DESC"};
  auto found = store_->SearchRuns(spec);
  ASSERT_TRUE(found.ok()) << found.status().ToString();
  ASSERT_EQ(found->items.size(), 2u);
  EXPECT_EQ(found->items[0].info.run_id, ids[4]);
  EXPECT_EQ(found->items[1].info.run_id, ids[2]);
  EXPECT_EQ(FindTag(found->items[0].params, "depth"), "4");
  EXPECT_EQ(FindTag(found->items[0].tags, "parity"), "even");
  EXPECT_NEAR(FindMetric(found->items[0], "auc")->value, 0.9, 1e-12);
  EXPECT_TRUE(found->next_page_token.empty());

  RunSearchSpec paged;
  paged.experiment_ids = {std::stoll(experiment)};
  paged.order_by = {"params.depth ASC"};
  paged.max_results = 2;
  std::vector<std::string> seen;
  for (int page_number = 0; page_number < 5; ++page_number) {
    auto page = store_->SearchRuns(paged);
    ASSERT_TRUE(page.ok()) << page.status().ToString();
    for (const Run& run : page->items) seen.push_back(run.info.run_id);
    if (page->next_page_token.empty()) break;
    paged.offset = *DecodePageToken(page->next_page_token);
  }
  EXPECT_EQ(seen, ids);
}

// --- Concurrency ---------------------------------------------------------------------------------

TEST_P(TrackingStoreTest, ConcurrentLogBatchFromEightThreadsLosesNothing) {
  constexpr int kThreads = 8;
  constexpr int kBatches = 20;
  constexpr int kMetricsPerBatch = 100;
  Run shared = NewRun();
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      Run own = NewRun();
      for (int b = 0; b < kBatches; ++b) {
        for (const std::string& run_id : {shared.info.run_id, own.info.run_id}) {
          LogBatchRequest batch;
          batch.run_id = run_id;
          for (int i = 0; i < kMetricsPerBatch; ++i) {
            batch.metrics.push_back(
                {"m" + std::to_string(i % 5), double(t), 1000 + t, b * kMetricsPerBatch + i});
          }
          batch.tags = {{"thread", std::to_string(t)}};
          Status status = store_->LogBatch(batch);
          if (!status.ok()) {
            ADD_FAILURE() << status.ToString();
            ++failures;
          }
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  ASSERT_EQ(failures.load(), 0);
  EXPECT_EQ(CountRows("SELECT COALESCE(SUM(point_count), 0) FROM metric_chunks"),
            int64_t{2} * kThreads * kBatches * kMetricsPerBatch);
  // On the shared run, the latest point per key is the greatest (step, timestamp): the last step
  // of each key, logged by the thread with the greatest timestamp.
  auto latest = FindMetric(*store_->GetRun(shared.info.run_id), "m4");
  ASSERT_TRUE(latest);
  EXPECT_EQ(latest->step, kBatches * kMetricsPerBatch - 1);
  EXPECT_EQ(latest->timestamp, 1000 + kThreads - 1);
}

INSTANTIATE_TEST_SUITE_P(Backends, TrackingStoreTest,
                         ::testing::ValuesIn(kiln::testing::AllBackends()),
                         kiln::testing::BackendName);

// Acceptance: eight processes writing straight into one SQLite file lose nothing and never see
// "database is locked". The children fork before any database is opened, so each has its own
// connections, as separate `kiln` processes would.
TEST(TrackingStoreProcessesTest, EightProcessesLoggingIntoOneSqliteFileLoseNothing) {
  constexpr int kProcesses = 8;
  constexpr int kBatches = 50;
  constexpr int kMetricsPerBatch = 100;
  kiln::testing::TempDir dir;
  const std::string uri = "sqlite://" + dir.Join("kiln.db");

  std::vector<pid_t> children;
  for (int p = 0; p < kProcesses; ++p) {
    pid_t pid = ::fork();
    ASSERT_NE(pid, -1);
    if (pid == 0) {
      // Child: no gtest assertions here; the exit code reports the outcome.
      auto fail = [](const Status& status) {
        std::fprintf(stderr, "child failed: %s\n", status.ToString().c_str());
        std::_Exit(1);
      };
      auto db = store::Database::Open(uri);
      if (!db.ok()) fail(db.status());
      auto tracking = TrackingStore::Open(db->get());
      if (!tracking.ok()) fail(tracking.status());
      auto run = (*tracking)->CreateRun({});
      if (!run.ok()) fail(run.status());
      for (int b = 0; b < kBatches; ++b) {
        LogBatchRequest batch;
        batch.run_id = run->info.run_id;
        for (int i = 0; i < kMetricsPerBatch; ++i) {
          batch.metrics.push_back(
              {"loss" + std::to_string(i % 4), 1.0 / (i + 1), 1000 + b, b * kMetricsPerBatch + i});
        }
        Status status = (*tracking)->LogBatch(batch);
        if (!status.ok()) fail(status);
      }
      std::_Exit(0);
    }
    children.push_back(pid);
  }
  int failed = 0;
  for (pid_t pid : children) {
    int wstatus = 0;
    ASSERT_EQ(::waitpid(pid, &wstatus, 0), pid);
    if (!WIFEXITED(wstatus) || WEXITSTATUS(wstatus) != 0) ++failed;
  }
  ASSERT_EQ(failed, 0) << "see the children's messages above";

  auto db = store::Database::Open(uri);
  ASSERT_TRUE(db.ok()) << db.status().ToString();
  int64_t metrics = -1, runs = -1, experiments = -1;
  ASSERT_TRUE((*db)
                  ->Read([&](store::Transaction& tx) -> Status {
                    KILN_ASSIGN_OR_RETURN(store::Rows m, tx.Query("SELECT COALESCE(SUM(point_count), 0) FROM metric_chunks"));
                    KILN_ASSIGN_OR_RETURN(store::Rows r, tx.Query("SELECT COUNT(*) FROM runs"));
                    KILN_ASSIGN_OR_RETURN(store::Rows e,
                                          tx.Query("SELECT COUNT(*) FROM experiments"));
                    metrics = m.Int(0, 0);
                    runs = r.Int(0, 0);
                    experiments = e.Int(0, 0);
                    return Status::Ok();
                  })
                  .ok());
  EXPECT_EQ(metrics, int64_t{kProcesses} * kBatches * kMetricsPerBatch);
  EXPECT_EQ(runs, kProcesses);
  EXPECT_EQ(experiments, 1);
}

}  // namespace
}  // namespace kiln::tracking
