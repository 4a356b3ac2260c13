// LoggedModelStore against real databases: every test runs on SQLite and on PostgreSQL.
#include "kiln/tracking/logged_model_store.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <limits>
#include <optional>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "kiln/tracking/search.h"
#include "kiln/tracking/tracking_store.h"
#include "tests/support/manual_clock.h"
#include "tests/support/test_database.h"

namespace kiln::tracking {
namespace {

using store::Backend;

using kiln::testing::ManualClock;

class LoggedModelStoreTest : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    auto opened = TrackingStore::Open(database_.db(), &clock_);
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    tracking_ = std::move(opened).value();
  }

  std::string NewExperiment(const std::string& name) {
    auto id = tracking_->CreateExperiment(name, "", {});
    EXPECT_TRUE(id.ok()) << id.status().ToString();
    return id.ok() ? *id : "";
  }

  LoggedModel NewModel(const std::string& experiment_id, const std::string& name = "",
                       std::vector<Tag> tags = {}, std::vector<Tag> params = {}) {
    CreateLoggedModelRequest request;
    request.experiment_id = experiment_id;
    request.name = name;
    request.tags = std::move(tags);
    request.params = std::move(params);
    auto model = store_.Create(request);
    EXPECT_TRUE(model.ok()) << model.status().ToString();
    return model.ok() ? *model : LoggedModel{};
  }

  std::vector<std::string> SearchNames(LoggedModelSearchSpec spec) {
    auto page = store_.Search(spec);
    EXPECT_TRUE(page.ok()) << page.status().ToString();
    std::vector<std::string> names;
    if (page.ok()) {
      for (const LoggedModel& model : page->items) names.push_back(model.name);
    }
    return names;
  }

  static std::optional<std::string> FindTag(const std::vector<Tag>& tags, const std::string& key) {
    for (const Tag& tag : tags) {
      if (tag.key == key) return tag.value;
    }
    return std::nullopt;
  }

  kiln::testing::TestDatabase database_{GetParam()};
  ManualClock clock_;
  std::unique_ptr<TrackingStore> tracking_;
  LoggedModelStore store_{database_.db(), &clock_};
};

TEST_P(LoggedModelStoreTest, CreateGivesPendingModelWithIdNameAndArtifactLocation) {
  std::string experiment = NewExperiment("exp");
  CreateLoggedModelRequest request;
  request.experiment_id = experiment;
  request.model_type = "Classifier";
  request.source_run_id = "0123456789abcdef0123456789abcdef";
  request.tags = {{"mlflow.user", "ann"}};
  request.params = {{"alpha", "0.5"}};
  auto model = store_.Create(request);
  ASSERT_TRUE(model.ok()) << model.status().ToString();

  EXPECT_TRUE(std::regex_match(model->model_id, std::regex("m-[0-9a-f]{32}"))) << model->model_id;
  EXPECT_EQ(model->experiment_id, experiment);
  EXPECT_TRUE(std::regex_match(model->name, std::regex("[a-z]+-[a-z]+-[0-9]+"))) << model->name;
  EXPECT_EQ(model->artifact_location,
            "mlflow-artifacts:/" + experiment + "/models/" + model->model_id + "/artifacts");
  EXPECT_EQ(model->status, LoggedModelStatus::kPending);
  EXPECT_EQ(model->creation_timestamp_ms, 1'700'000'000'000);
  EXPECT_EQ(model->last_updated_timestamp_ms, 1'700'000'000'000);
  EXPECT_EQ(model->model_type, "Classifier");
  EXPECT_EQ(model->source_run_id, "0123456789abcdef0123456789abcdef");
  EXPECT_EQ(model->lifecycle_stage, "active");
  EXPECT_EQ(FindTag(model->tags, "mlflow.user"), "ann");
  ASSERT_EQ(model->params.size(), 1u);
  EXPECT_EQ(model->params[0].key, "alpha");
  EXPECT_EQ(model->params[0].value, "0.5");
}

TEST_P(LoggedModelStoreTest, CreateKeepsGivenNameAndTwoModelsGetDistinctIds) {
  LoggedModel first = NewModel("0", "my_model");
  LoggedModel second = NewModel("0", "my_model");
  EXPECT_EQ(first.name, "my_model");
  EXPECT_NE(first.model_id, second.model_id);
}

TEST_P(LoggedModelStoreTest, CreateUsesCustomExperimentArtifactLocation) {
  auto id = tracking_->CreateExperiment("custom", "file:///data/art/", {});
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  LoggedModel model = NewModel(*id);
  EXPECT_EQ(model.artifact_location, "file:///data/art/models/" + model.model_id + "/artifacts");
}

TEST_P(LoggedModelStoreTest, CreateRejectsBadInput) {
  struct Case {
    std::string experiment_id;
    std::string name;
    StatusCode code;
    std::string message_part;
  };
  const std::vector<Case> cases = {
      {"", "", StatusCode::kInvalidArgument, "experiment_id"},
      {"999", "", StatusCode::kNotFound, "No Experiment with id=999"},
      {"abc", "", StatusCode::kNotFound, "No Experiment with id=abc"},
      {"0", "a/b", StatusCode::kInvalidArgument, "Invalid model name ('a/b')"},
      {"0", "v1.2", StatusCode::kInvalidArgument, "Invalid model name"},
      {"0", "x:y", StatusCode::kInvalidArgument, "Invalid model name"},
      {"0", std::string(501, 'n'), StatusCode::kInvalidArgument, "exceeded length limit of 500"},
  };
  for (const Case& c : cases) {
    CreateLoggedModelRequest request;
    request.experiment_id = c.experiment_id;
    request.name = c.name;
    auto model = store_.Create(request);
    ASSERT_FALSE(model.ok()) << c.experiment_id << " / " << c.name;
    EXPECT_EQ(model.status().code(), c.code) << model.status().ToString();
    EXPECT_NE(model.status().message().find(c.message_part), std::string::npos)
        << model.status().message();
  }
}

TEST_P(LoggedModelStoreTest, CreateRejectsDeletedExperiment) {
  std::string experiment = NewExperiment("gone");
  ASSERT_TRUE(tracking_->DeleteExperiment(experiment).ok());
  CreateLoggedModelRequest request;
  request.experiment_id = experiment;
  auto model = store_.Create(request);
  ASSERT_FALSE(model.ok());
  EXPECT_EQ(model.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(model.status().message().find("must be in the 'active' state"), std::string::npos);
}

TEST_P(LoggedModelStoreTest, CreateRejectsConflictingDuplicateParamsAndWritesNothing) {
  CreateLoggedModelRequest request;
  request.experiment_id = "0";
  request.name = "dup";
  request.params = {{"a", "1"}, {"a", "2"}};
  auto model = store_.Create(request);
  ASSERT_FALSE(model.ok());
  EXPECT_EQ(model.status().code(), StatusCode::kInvalidArgument);
  LoggedModelSearchSpec spec;
  spec.experiment_ids = {"0"};
  EXPECT_TRUE(SearchNames(spec).empty());
}

TEST_P(LoggedModelStoreTest, FinalizeSetsStatusAndLastUpdated) {
  LoggedModel model = NewModel("0");
  clock_.Set(1'700'000'000'500);
  auto ready = store_.Finalize(model.model_id, LoggedModelStatus::kReady);
  ASSERT_TRUE(ready.ok()) << ready.status().ToString();
  EXPECT_EQ(ready->status, LoggedModelStatus::kReady);
  EXPECT_EQ(ready->creation_timestamp_ms, 1'700'000'000'000);
  EXPECT_EQ(ready->last_updated_timestamp_ms, 1'700'000'000'500);
  auto fetched = store_.Get(model.model_id);
  ASSERT_TRUE(fetched.ok());
  EXPECT_EQ(fetched->status, LoggedModelStatus::kReady);

  auto failed = store_.Finalize(model.model_id, LoggedModelStatus::kUploadFailed);
  ASSERT_TRUE(failed.ok());
  EXPECT_EQ(failed->status, LoggedModelStatus::kUploadFailed);
}

TEST_P(LoggedModelStoreTest, UnknownModelIsNotFoundForEveryCall) {
  const std::string id = "m-00000000000000000000000000000000";
  const std::string expected = "Logged model with ID '" + id + "' not found.";
  std::vector<Status> statuses = {
      store_.Get(id).status(),
      store_.Finalize(id, LoggedModelStatus::kReady).status(),
      store_.Delete(id),
      store_.SetTags(id, {{"k", "v"}}),
      store_.DeleteTag(id, "k"),
      store_.LogParams(id, {{"k", "v"}}),
      store_.LogMetrics(id, {{"acc", 0.9, 1, 0, "", "", ""}}),
  };
  for (const Status& status : statuses) {
    EXPECT_EQ(status.code(), StatusCode::kNotFound) << status.ToString();
    EXPECT_EQ(status.message(), expected);
  }
}

TEST_P(LoggedModelStoreTest, DeleteHidesModelFromGetAndSearch) {
  LoggedModel kept = NewModel("0", "kept");
  LoggedModel gone = NewModel("0", "gone");
  ASSERT_TRUE(store_.Delete(gone.model_id).ok());
  auto fetched = store_.Get(gone.model_id);
  ASSERT_FALSE(fetched.ok());
  EXPECT_EQ(fetched.status().code(), StatusCode::kNotFound);
  LoggedModelSearchSpec spec;
  spec.experiment_ids = {"0"};
  EXPECT_EQ(SearchNames(spec), std::vector<std::string>{"kept"});
}

TEST_P(LoggedModelStoreTest, SetTagsOverwritesAndDeleteTagRemoves) {
  LoggedModel model = NewModel("0", "tagged", {{"a", "1"}});
  ASSERT_TRUE(store_.SetTags(model.model_id, {{"a", "2"}, {"b", "x"}, {"b", "y"}}).ok());
  auto fetched = store_.Get(model.model_id);
  ASSERT_TRUE(fetched.ok());
  EXPECT_EQ(FindTag(fetched->tags, "a"), "2");
  EXPECT_EQ(FindTag(fetched->tags, "b"), "y");

  ASSERT_TRUE(store_.DeleteTag(model.model_id, "a").ok());
  fetched = store_.Get(model.model_id);
  ASSERT_TRUE(fetched.ok());
  EXPECT_EQ(FindTag(fetched->tags, "a"), std::nullopt);
  EXPECT_EQ(FindTag(fetched->tags, "b"), "y");

  Status missing = store_.DeleteTag(model.model_id, "a");
  EXPECT_EQ(missing.code(), StatusCode::kNotFound);
  EXPECT_EQ(missing.message(),
            "No tag with key 'a' found for model with ID '" + model.model_id + "'.");
}

TEST_P(LoggedModelStoreTest, SetTagsRejectsEmptyKey) {
  LoggedModel model = NewModel("0");
  EXPECT_EQ(store_.SetTags(model.model_id, {{"", "v"}}).code(), StatusCode::kInvalidArgument);
}

TEST_P(LoggedModelStoreTest, LogParamsAddsNewKeysAndRejectsChangedValues) {
  LoggedModel model = NewModel("0", "p", {}, {{"alpha", "1"}});
  ASSERT_TRUE(store_.LogParams(model.model_id, {{"alpha", "1"}, {"beta", "2"}}).ok());
  auto fetched = store_.Get(model.model_id);
  ASSERT_TRUE(fetched.ok());
  ASSERT_EQ(fetched->params.size(), 2u);
  EXPECT_EQ(fetched->params[1].key, "beta");

  Status changed = store_.LogParams(model.model_id, {{"gamma", "3"}, {"alpha", "9"}});
  EXPECT_EQ(changed.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(changed.message().find("Changing param values is not allowed"), std::string::npos);
  fetched = store_.Get(model.model_id);
  ASSERT_TRUE(fetched.ok());
  EXPECT_EQ(fetched->params.size(), 2u) << "a rejected batch writes nothing";
}

TEST_P(LoggedModelStoreTest, LogMetricsLinksPointsOnceAndKeepsNaN) {
  LoggedModel model = NewModel("0", "scored");
  std::vector<LoggedModelMetric> points = {
      {"accuracy", 0.9, 100, 0, "run1", "test", "d1"},
      {"accuracy", 0.95, 200, 1, "run1", "test", "d1"},
      {"loss", std::numeric_limits<double>::quiet_NaN(), 100, 0, "", "", ""},
  };
  ASSERT_TRUE(store_.LogMetrics(model.model_id, points).ok());
  ASSERT_TRUE(store_.LogMetrics(model.model_id, points).ok()) << "a retry is harmless";
  auto fetched = store_.Get(model.model_id);
  ASSERT_TRUE(fetched.ok());
  ASSERT_EQ(fetched->metrics.size(), 3u);
  EXPECT_EQ(fetched->metrics[0].key, "accuracy");
  EXPECT_EQ(fetched->metrics[0].value, 0.9);
  EXPECT_EQ(fetched->metrics[0].run_id, "run1");
  EXPECT_EQ(fetched->metrics[0].dataset_name, "test");
  EXPECT_EQ(fetched->metrics[0].dataset_digest, "d1");
  EXPECT_EQ(fetched->metrics[1].step, 1);
  EXPECT_TRUE(std::isnan(fetched->metrics[2].value));

  EXPECT_EQ(store_.LogMetrics(model.model_id, {{"bad*name", 1, 1, 0, "", "", ""}}).code(),
            StatusCode::kInvalidArgument);
}

TEST_P(LoggedModelStoreTest, SearchScopesToExperimentsAndOrdersNewestFirst) {
  std::string other = NewExperiment("other");
  NewModel("0", "first");
  clock_.Set(1'700'000'001'000);
  NewModel("0", "second");
  NewModel(other, "elsewhere");

  LoggedModelSearchSpec spec;
  spec.experiment_ids = {"0"};
  EXPECT_EQ(SearchNames(spec), (std::vector<std::string>{"second", "first"}));
  spec.experiment_ids = {"0", other};
  EXPECT_EQ(SearchNames(spec).size(), 3u);
  spec.experiment_ids = {};
  EXPECT_TRUE(SearchNames(spec).empty());
  spec.experiment_ids = {"12345"};
  EXPECT_TRUE(SearchNames(spec).empty());
}

TEST_P(LoggedModelStoreTest, SearchFiltersOnAttributesTagsParamsAndMetrics) {
  LoggedModel a = NewModel("0", "alpha", {{"team", "red"}}, {{"lr", "0.1"}});
  clock_.Set(1'700'000'001'000);
  LoggedModel b = NewModel("0", "beta", {{"team", "blue"}}, {{"lr", "0.2"}});
  clock_.Set(1'700'000'002'000);
  LoggedModel c = NewModel("0", "gamma");
  ASSERT_TRUE(store_.Finalize(b.model_id, LoggedModelStatus::kReady).ok());
  ASSERT_TRUE(store_.LogMetrics(a.model_id, {{"acc", 0.7, 1, 0, "r", "train", ""}}).ok());
  ASSERT_TRUE(store_.LogMetrics(b.model_id, {{"acc", 0.9, 1, 0, "r", "test", ""}}).ok());

  struct Case {
    std::string filter;
    std::vector<std::string> names;
  };
  const std::vector<Case> cases = {
      {"name = 'alpha'", {"alpha"}},
      {"name != 'alpha'", {"gamma", "beta"}},
      {"name LIKE '%a'", {"gamma", "beta", "alpha"}},
      {"name ILIKE 'ALP%'", {"alpha"}},
      {"name IN ('alpha', 'gamma')", {"gamma", "alpha"}},
      {"status = 'READY'", {"beta"}},
      {"status = 'LOGGED_MODEL_PENDING'", {"gamma", "alpha"}},
      {"status != 'READY' AND name = 'gamma'", {"gamma"}},
      {"creation_timestamp > 1700000000000", {"gamma", "beta"}},
      {"creation_time <= 1700000001000", {"beta", "alpha"}},
      {"tags.team = 'red'", {"alpha"}},
      {"tags.team LIKE 'b%'", {"beta"}},
      {"params.lr = '0.2'", {"beta"}},
      {"metrics.acc > 0.8", {"beta"}},
      {"metrics.acc >= 0.7", {"beta", "alpha"}},
      {"model_id = '" + c.model_id + "'", {"gamma"}},
  };
  for (const Case& test_case : cases) {
    LoggedModelSearchSpec spec;
    spec.experiment_ids = {"0"};
    spec.filter = test_case.filter;
    EXPECT_EQ(SearchNames(spec), test_case.names) << test_case.filter;
  }

  LoggedModelSearchSpec on_dataset;
  on_dataset.experiment_ids = {"0"};
  on_dataset.filter = "metrics.acc > 0.5";
  on_dataset.datasets = {{"train", ""}};
  EXPECT_EQ(SearchNames(on_dataset), std::vector<std::string>{"alpha"});
  on_dataset.filter = "";
  on_dataset.datasets = {{"test", ""}};
  EXPECT_EQ(SearchNames(on_dataset), std::vector<std::string>{"beta"});
}

TEST_P(LoggedModelStoreTest, SearchRejectsUnsupportedFilters) {
  NewModel("0", "m");
  struct Case {
    std::string filter;
    std::string message_part;
  };
  const std::vector<Case> cases = {
      {"flavor = 'x'", "Invalid attribute 'flavor'"},
      {"name > 'a'", "Invalid comparison operator"},
      {"metrics.acc LIKE '1'", "Invalid comparison operator"},
      {"metrics.acc > 'high'", "expects a number"},
      {"creation_timestamp > 'soon'", "expects an integer"},
      {"status = 'DONE'", "Invalid logged model status 'DONE'"},
      {"datasets.name = 'x'", "Invalid entity type 'datasets'"},
      {"name = 'a' OR name = 'b'", ""},
  };
  for (const Case& c : cases) {
    LoggedModelSearchSpec spec;
    spec.experiment_ids = {"0"};
    spec.filter = c.filter;
    auto page = store_.Search(spec);
    ASSERT_FALSE(page.ok()) << c.filter;
    EXPECT_EQ(page.status().code(), StatusCode::kInvalidArgument) << c.filter;
    EXPECT_NE(page.status().message().find(c.message_part), std::string::npos)
        << page.status().message();
  }
  LoggedModelSearchSpec bad_id;
  bad_id.experiment_ids = {"x"};
  EXPECT_EQ(store_.Search(bad_id).status().code(), StatusCode::kInvalidArgument);
  LoggedModelSearchSpec bad_order;
  bad_order.experiment_ids = {"0"};
  bad_order.order_by = {{"params.lr", true, "", ""}};
  EXPECT_EQ(store_.Search(bad_order).status().code(), StatusCode::kInvalidArgument);
  LoggedModelSearchSpec bad_max;
  bad_max.experiment_ids = {"0"};
  bad_max.max_results = 0;
  EXPECT_EQ(store_.Search(bad_max).status().code(), StatusCode::kInvalidArgument);
}

TEST_P(LoggedModelStoreTest, SearchOrdersByAttributeAndLatestMetric) {
  LoggedModel a = NewModel("0", "a");
  LoggedModel b = NewModel("0", "b");
  LoggedModel c = NewModel("0", "c");
  // b's latest accuracy (by timestamp) is 0.5 though it once had 0.99; c has none.
  ASSERT_TRUE(store_.LogMetrics(a.model_id, {{"acc", 0.8, 1, 0, "", "", ""}}).ok());
  ASSERT_TRUE(store_.LogMetrics(b.model_id, {{"acc", 0.99, 1, 0, "", "", ""},
                                             {"acc", 0.5, 2, 0, "", "", ""}})
                  .ok());
  LoggedModelSearchSpec spec;
  spec.experiment_ids = {"0"};
  spec.order_by = {{"name", false, "", ""}};
  EXPECT_EQ(SearchNames(spec), (std::vector<std::string>{"c", "b", "a"}));
  spec.order_by = {{"metrics.acc", false, "", ""}};
  EXPECT_EQ(SearchNames(spec), (std::vector<std::string>{"a", "b", "c"}));
  spec.order_by = {{"metrics.acc", true, "", ""}};
  EXPECT_EQ(SearchNames(spec), (std::vector<std::string>{"b", "a", "c"}));
}

TEST_P(LoggedModelStoreTest, SearchPagesWithTokens) {
  for (int i = 0; i < 5; ++i) {
    clock_.Set(1'700'000'000'000 + i);
    NewModel("0", "m" + std::to_string(i));
  }
  LoggedModelSearchSpec spec;
  spec.experiment_ids = {"0"};
  spec.max_results = 2;
  std::vector<std::string> seen;
  int pages = 0;
  while (true) {
    auto page = store_.Search(spec);
    ASSERT_TRUE(page.ok()) << page.status().ToString();
    ++pages;
    for (const LoggedModel& model : page->items) seen.push_back(model.name);
    if (page->next_page_token.empty()) break;
    auto offset = DecodePageToken(page->next_page_token);
    ASSERT_TRUE(offset.ok());
    spec.offset = *offset;
  }
  EXPECT_EQ(pages, 3);
  EXPECT_EQ(seen, (std::vector<std::string>{"m4", "m3", "m2", "m1", "m0"}));
}

TEST(LoggedModelStatusTest, ParsesNamesShortNamesAndNumbers) {
  struct Case {
    std::string text;
    std::optional<LoggedModelStatus> status;
  };
  const std::vector<Case> cases = {
      {"LOGGED_MODEL_READY", LoggedModelStatus::kReady},
      {"READY", LoggedModelStatus::kReady},
      {"ready", LoggedModelStatus::kReady},
      {"2", LoggedModelStatus::kReady},
      {"LOGGED_MODEL_PENDING", LoggedModelStatus::kPending},
      {"1", LoggedModelStatus::kPending},
      {"LOGGED_MODEL_UPLOAD_FAILED", LoggedModelStatus::kUploadFailed},
      {"3", LoggedModelStatus::kUploadFailed},
      {"LOGGED_MODEL_STATUS_UNSPECIFIED", std::nullopt},
      {"0", std::nullopt},
      {"FINISHED", std::nullopt},
      {"", std::nullopt},
  };
  for (const Case& c : cases) {
    auto parsed = ParseLoggedModelStatus(c.text);
    if (c.status.has_value()) {
      ASSERT_TRUE(parsed.ok()) << c.text;
      EXPECT_EQ(*parsed, *c.status) << c.text;
      EXPECT_EQ(ParseLoggedModelStatus(LoggedModelStatusName(*parsed)).value(), *c.status);
    } else {
      EXPECT_FALSE(parsed.ok()) << c.text;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Backends, LoggedModelStoreTest,
                         ::testing::ValuesIn(kiln::testing::AllBackends()),
                         kiln::testing::BackendName);

}  // namespace
}  // namespace kiln::tracking
