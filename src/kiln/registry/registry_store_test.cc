#include "kiln/registry/registry_store.h"

#include <atomic>
#include <set>
#include <thread>

#include <gtest/gtest.h>

#include "tests/support/manual_clock.h"
#include "tests/support/test_database.h"

namespace kiln::registry {
namespace {

using kiln::testing::ManualClock;

class RegistryStoreTest : public ::testing::TestWithParam<store::Backend> {
 protected:
  void SetUp() override {
    auto opened = RegistryStore::Open(database_.db(), &clock_);
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    registry_ = std::move(*opened);
  }

  RegisteredModel MustCreateModel(const std::string& name, std::vector<Tag> tags = {}) {
    auto created = registry_->CreateRegisteredModel({name, std::move(tags), "", std::nullopt});
    EXPECT_TRUE(created.ok()) << created.status().ToString();
    return created.ok() ? *created : RegisteredModel{};
  }

  ModelVersion MustCreateVersion(const std::string& name, const std::string& source = "s3://m",
                                 std::vector<Tag> tags = {}) {
    CreateModelVersionRequest request;
    request.name = name;
    request.source = source;
    request.run_id = "";
    request.run_link = "";
    request.description = "";
    request.tags = std::move(tags);
    auto created = registry_->CreateModelVersion(request);
    EXPECT_TRUE(created.ok()) << created.status().ToString();
    return created.ok() ? *created : ModelVersion{};
  }

  kiln::testing::TestDatabase database_{GetParam()};
  ManualClock clock_;
  std::unique_ptr<RegistryStore> registry_;
};

TEST_P(RegistryStoreTest, CreateThenGetReturnsTheModelWithSortedTags) {
  clock_.Set(1000);
  MustCreateModel("credit", {{"team", "risk"}, {"owner", "ana"}, {"team", "fraud"}});
  auto model = registry_->GetRegisteredModel("credit");
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  EXPECT_EQ(model->name, "credit");
  EXPECT_EQ(model->creation_timestamp, 1000);
  EXPECT_EQ(model->last_updated_timestamp, 1000);
  EXPECT_EQ(model->description, std::optional<std::string>(""));
  EXPECT_EQ(model->user_id, std::nullopt);
  EXPECT_EQ(model->tags, (std::vector<Tag>{{"owner", "ana"}, {"team", "fraud"}}));
  EXPECT_TRUE(model->latest_versions.empty());
  EXPECT_TRUE(model->aliases.empty());
}

TEST_P(RegistryStoreTest, CreateRejectsATakenName) {
  MustCreateModel("credit");
  auto again = registry_->CreateRegisteredModel({"credit", {}, "", std::nullopt});
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(again.status().message(), "Registered Model (name=credit) already exists.");
}

TEST_P(RegistryStoreTest, UnknownModelIsNotFoundWithMlflowsWording) {
  auto model = registry_->GetRegisteredModel("nope");
  ASSERT_FALSE(model.ok());
  EXPECT_EQ(model.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(model.status().message(), "Registered Model with name=nope not found");

  CreateModelVersionRequest request;
  request.name = "nope";
  request.source = "s3://x";
  auto version = registry_->CreateModelVersion(request);
  ASSERT_FALSE(version.ok());
  EXPECT_EQ(version.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(version.status().message(), "Registered Model with name=nope not found");
}

TEST_P(RegistryStoreTest, VersionsAreNumberedFromOnePerModel) {
  MustCreateModel("a");
  MustCreateModel("b");
  EXPECT_EQ(MustCreateVersion("a").version, 1);
  EXPECT_EQ(MustCreateVersion("a").version, 2);
  EXPECT_EQ(MustCreateVersion("b").version, 1);
  EXPECT_EQ(MustCreateVersion("a").version, 3);
}

TEST_P(RegistryStoreTest, DeletedVersionNumbersAreNeverReused) {
  MustCreateModel("m");
  MustCreateVersion("m");
  EXPECT_EQ(MustCreateVersion("m").version, 2);
  ASSERT_TRUE(registry_->DeleteModelVersion("m", 2).ok());
  EXPECT_EQ(MustCreateVersion("m").version, 3);
}

TEST_P(RegistryStoreTest, CreatedVersionHasMlflowsDefaultFields) {
  MustCreateModel("m");
  clock_.Set(5000);
  ModelVersion version = MustCreateVersion("m", "mlflow-artifacts:/x", {{"k", "v"}});
  EXPECT_EQ(version.name, "m");
  EXPECT_EQ(version.version, 1);
  EXPECT_EQ(version.creation_timestamp, 5000);
  EXPECT_EQ(version.last_updated_timestamp, 5000);
  EXPECT_EQ(version.current_stage, "None");
  EXPECT_EQ(version.status, "READY");
  EXPECT_EQ(version.source, std::optional<std::string>("mlflow-artifacts:/x"));
  EXPECT_EQ(version.run_id, std::optional<std::string>(""));
  EXPECT_EQ(version.status_message, std::nullopt);
  EXPECT_EQ(version.tags, (std::vector<Tag>{{"k", "v"}}));
  auto model = registry_->GetRegisteredModel("m");
  ASSERT_TRUE(model.ok());
  EXPECT_EQ(model->last_updated_timestamp, 5000);
}

TEST_P(RegistryStoreTest, ConcurrentCreatesGetDistinctConsecutiveVersions) {
  MustCreateModel("busy");
  constexpr int kThreads = 4;
  constexpr int kPerThread = 5;
  std::vector<std::thread> threads;
  std::mutex mutex;
  std::vector<int64_t> versions;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kPerThread; ++i) {
        CreateModelVersionRequest request;
        request.name = "busy";
        request.source = "s3://busy";
        auto created = registry_->CreateModelVersion(request);
        if (!created.ok()) {
          ++failures;
          continue;
        }
        std::lock_guard<std::mutex> lock(mutex);
        versions.push_back(created->version);
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);
  std::set<int64_t> unique(versions.begin(), versions.end());
  ASSERT_EQ(unique.size(), static_cast<size_t>(kThreads * kPerThread));
  EXPECT_EQ(*unique.begin(), 1);
  EXPECT_EQ(*unique.rbegin(), kThreads * kPerThread);
}

TEST_P(RegistryStoreTest, RenameMovesVersionsTagsAliasesAndHistory) {
  MustCreateModel("old", {{"team", "risk"}});
  MustCreateVersion("old", "s3://1", {{"vk", "vv"}});
  MustCreateVersion("old", "s3://2");
  ASSERT_TRUE(registry_->SetRegisteredModelAlias("old", "champion", 2).ok());

  clock_.Set(9000);
  auto renamed = registry_->RenameRegisteredModel("old", "new");
  ASSERT_TRUE(renamed.ok()) << renamed.status().ToString();
  EXPECT_EQ(renamed->name, "new");
  EXPECT_EQ(renamed->last_updated_timestamp, 9000);
  EXPECT_EQ(renamed->tags, (std::vector<Tag>{{"team", "risk"}}));
  EXPECT_EQ(renamed->aliases, (std::vector<ModelAlias>{{"champion", 2}}));

  EXPECT_EQ(registry_->GetRegisteredModel("old").status().code(), StatusCode::kNotFound);
  auto v1 = registry_->GetModelVersion("new", 1);
  ASSERT_TRUE(v1.ok()) << v1.status().ToString();
  EXPECT_EQ(v1->tags, (std::vector<Tag>{{"vk", "vv"}}));
  auto by_alias = registry_->GetModelVersionByAlias("new", "champion");
  ASSERT_TRUE(by_alias.ok());
  EXPECT_EQ(by_alias->version, 2);
  auto history = registry_->GetAliasHistory("new", "champion");
  ASSERT_TRUE(history.ok());
  EXPECT_EQ(history->size(), 1u);
  EXPECT_EQ(MustCreateVersion("new").version, 3);
}

TEST_P(RegistryStoreTest, RenameToATakenNameFailsAndChangesNothing) {
  MustCreateModel("a");
  MustCreateModel("b");
  MustCreateVersion("a");
  auto renamed = registry_->RenameRegisteredModel("a", "b");
  ASSERT_FALSE(renamed.ok());
  EXPECT_EQ(renamed.status().code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(renamed.status().message(), "Registered Model (name=b) already exists.");
  EXPECT_TRUE(registry_->GetModelVersion("a", 1).ok());
}

TEST_P(RegistryStoreTest, DeleteModelRemovesEverythingItOwns) {
  MustCreateModel("m", {{"t", "1"}});
  MustCreateVersion("m", "s3://x", {{"vt", "1"}});
  ASSERT_TRUE(registry_->SetRegisteredModelAlias("m", "prod", 1).ok());
  ASSERT_TRUE(registry_->DeleteRegisteredModel("m").ok());
  EXPECT_EQ(registry_->GetRegisteredModel("m").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(registry_->DeleteRegisteredModel("m").code(), StatusCode::kNotFound);

  MustCreateModel("m");
  ModelVersion fresh = MustCreateVersion("m");
  EXPECT_EQ(fresh.version, 1);
  EXPECT_TRUE(fresh.tags.empty());
  EXPECT_TRUE(fresh.aliases.empty());
  auto model = registry_->GetRegisteredModel("m");
  ASSERT_TRUE(model.ok());
  EXPECT_TRUE(model->tags.empty());
  EXPECT_TRUE(model->aliases.empty());
  auto history = registry_->GetAliasHistory("m", "prod");
  ASSERT_TRUE(history.ok());
  EXPECT_TRUE(history->empty());
}

TEST_P(RegistryStoreTest, UpdateSetsDescriptions) {
  MustCreateModel("m");
  MustCreateVersion("m");
  clock_.Set(7000);
  auto model = registry_->UpdateRegisteredModel("m", "credit scoring");
  ASSERT_TRUE(model.ok());
  EXPECT_EQ(model->description, std::optional<std::string>("credit scoring"));
  EXPECT_EQ(model->last_updated_timestamp, 7000);
  auto version = registry_->UpdateModelVersion("m", 1, std::string("first"));
  ASSERT_TRUE(version.ok());
  EXPECT_EQ(version->description, std::optional<std::string>("first"));
  EXPECT_EQ(version->last_updated_timestamp, 7000);
  auto unknown = registry_->UpdateModelVersion("m", 9, std::string("x"));
  EXPECT_EQ(unknown.status().message(), "Model Version (name=m, version=9) not found");
}

TEST_P(RegistryStoreTest, StagesAreCanonicalisedAndValidated) {
  struct Case {
    std::string input;
    std::string canonical;  // empty: rejected
  };
  for (const Case& c : std::vector<Case>{{"none", "None"},
                                         {"STAGING", "Staging"},
                                         {"Production", "Production"},
                                         {"archived", "Archived"},
                                         {"Prod", ""},
                                         {"", ""}}) {
    auto stage = CanonicalStage(c.input);
    if (c.canonical.empty()) {
      ASSERT_FALSE(stage.ok()) << c.input;
      EXPECT_EQ(stage.status().message(),
                "Invalid Model Version stage: " + c.input +
                    ". Value must be one of None, Staging, Production, Archived.");
    } else {
      ASSERT_TRUE(stage.ok()) << c.input;
      EXPECT_EQ(*stage, c.canonical);
    }
  }
}

TEST_P(RegistryStoreTest, TransitionWithArchiveMovesOtherVersionsInTheStageToArchived) {
  MustCreateModel("m");
  for (int i = 0; i < 3; ++i) MustCreateVersion("m");
  ASSERT_TRUE(registry_->TransitionModelVersionStage("m", 1, "production", false).ok());
  ASSERT_TRUE(registry_->TransitionModelVersionStage("m", 2, "Production", false).ok());
  clock_.Set(8000);
  auto third = registry_->TransitionModelVersionStage("m", 3, "PRODUCTION", true);
  ASSERT_TRUE(third.ok()) << third.status().ToString();
  EXPECT_EQ(third->current_stage, "Production");
  EXPECT_EQ(third->last_updated_timestamp, 8000);
  EXPECT_EQ(registry_->GetModelVersion("m", 1)->current_stage, "Archived");
  EXPECT_EQ(registry_->GetModelVersion("m", 2)->current_stage, "Archived");

  auto invalid = registry_->TransitionModelVersionStage("m", 1, "Prod", false);
  EXPECT_EQ(invalid.status().code(), StatusCode::kInvalidArgument);
  auto archive_from_none = registry_->TransitionModelVersionStage("m", 1, "None", true);
  EXPECT_EQ(archive_from_none.status().code(), StatusCode::kInvalidArgument);
  auto unknown = registry_->TransitionModelVersionStage("m", 4, "Staging", false);
  EXPECT_EQ(unknown.status().code(), StatusCode::kNotFound);
}

TEST_P(RegistryStoreTest, LatestVersionsAreTheHighestPerStage) {
  MustCreateModel("m");
  for (int i = 0; i < 5; ++i) MustCreateVersion("m");
  ASSERT_TRUE(registry_->TransitionModelVersionStage("m", 1, "Production", false).ok());
  ASSERT_TRUE(registry_->TransitionModelVersionStage("m", 2, "Production", false).ok());
  ASSERT_TRUE(registry_->TransitionModelVersionStage("m", 3, "Staging", false).ok());

  auto all = registry_->GetLatestVersions("m", {});
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  std::vector<std::pair<int64_t, std::string>> got;
  for (const auto& v : *all) got.emplace_back(v.version, v.current_stage);
  EXPECT_EQ(got, (std::vector<std::pair<int64_t, std::string>>{
                     {2, "Production"}, {3, "Staging"}, {5, "None"}}));

  auto production = registry_->GetLatestVersions("m", {"production"});
  ASSERT_TRUE(production.ok());
  ASSERT_EQ(production->size(), 1u);
  EXPECT_EQ(production->front().version, 2);

  auto model = registry_->GetRegisteredModel("m");
  ASSERT_TRUE(model.ok());
  ASSERT_EQ(model->latest_versions.size(), 3u);
  EXPECT_EQ(model->latest_versions[0].version, 2);

  EXPECT_EQ(registry_->GetLatestVersions("m", {"Prod"}).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(registry_->GetLatestVersions("nope", {}).status().code(), StatusCode::kNotFound);
}

TEST_P(RegistryStoreTest, AliasNamesAreValidatedAsMlflowDoes) {
  struct Case {
    std::string alias;
    std::string error;  // empty: accepted
  };
  for (const Case& c : std::vector<Case>{
           {"champion", ""},
           {"prod-2024_a", ""},
           {"v1x", ""},
           {"v1", "Version alias name 'v1' is reserved."},
           {"V22", "Version alias name 'V22' is reserved."},
           {"Latest", "'latest' alias name (case insensitive) is reserved."},
           {"a.b", "Invalid alias name: 'a.b'. Names may only contain alphanumerics, "
                   "underscores (_), and dashes (-)."},
           {"", "Registered model alias name cannot be empty."},
           {std::string(256, 'a'), "Registered model alias name '" + std::string(250, 'a') +
                                       "' had length 256, which exceeded length limit of 255"},
       }) {
    Status status = ValidateAliasName(c.alias);
    if (c.error.empty()) {
      EXPECT_TRUE(status.ok()) << c.alias << ": " << status.ToString();
    } else {
      EXPECT_EQ(status.code(), StatusCode::kInvalidArgument) << c.alias;
      EXPECT_EQ(status.message(), c.error);
    }
  }
}

TEST_P(RegistryStoreTest, AliasChangesAreRecordedInOrder) {
  MustCreateModel("m");
  MustCreateVersion("m");
  MustCreateVersion("m");
  clock_.Set(100);
  ASSERT_TRUE(registry_->SetRegisteredModelAlias("m", "prod", 1).ok());
  clock_.Set(200);
  ASSERT_TRUE(registry_->SetRegisteredModelAlias("m", "prod", 2).ok());
  clock_.Set(250);
  ASSERT_TRUE(registry_->SetRegisteredModelAlias("m", "prod", 2).ok());  // no change
  clock_.Set(300);
  ASSERT_TRUE(registry_->DeleteRegisteredModelAlias("m", "prod").ok());
  ASSERT_TRUE(registry_->DeleteRegisteredModelAlias("m", "prod").ok());  // absent: no-op
  clock_.Set(400);
  ASSERT_TRUE(registry_->SetRegisteredModelAlias("m", "prod", 1).ok());

  auto history = registry_->GetAliasHistory("m", "prod");
  ASSERT_TRUE(history.ok()) << history.status().ToString();
  ASSERT_EQ(history->size(), 4u);
  std::vector<std::tuple<std::optional<int64_t>, int64_t, int64_t>> got;
  for (const AliasChange& change : *history) {
    EXPECT_EQ(change.alias, "prod");
    got.emplace_back(change.version, change.changed_at, change.sequence);
  }
  EXPECT_EQ(got, (std::vector<std::tuple<std::optional<int64_t>, int64_t, int64_t>>{
                     {1, 100, 1}, {2, 200, 2}, {std::nullopt, 300, 3}, {1, 400, 4}}));

  auto current = registry_->GetModelVersionByAlias("m", "prod");
  ASSERT_TRUE(current.ok());
  EXPECT_EQ(current->version, 1);
  EXPECT_EQ(current->aliases, (std::vector<std::string>{"prod"}));
}

TEST_P(RegistryStoreTest, AliasErrors) {
  MustCreateModel("m");
  MustCreateVersion("m");
  auto missing = registry_->GetModelVersionByAlias("m", "prod");
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(missing.status().message(), "Registered model alias prod not found.");
  Status unknown_version = registry_->SetRegisteredModelAlias("m", "prod", 7);
  EXPECT_EQ(unknown_version.code(), StatusCode::kNotFound);
  EXPECT_EQ(unknown_version.message(), "Model Version (name=m, version=7) not found");
  EXPECT_EQ(registry_->SetRegisteredModelAlias("m", "v1", 1).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(registry_->SetRegisteredModelAlias("nope", "prod", 1).code(), StatusCode::kNotFound);
}

TEST_P(RegistryStoreTest, DeletingAVersionDeletesItsAliasesAndRecordsIt) {
  MustCreateModel("m");
  MustCreateVersion("m");
  MustCreateVersion("m");
  ASSERT_TRUE(registry_->SetRegisteredModelAlias("m", "prod", 1).ok());
  ASSERT_TRUE(registry_->SetRegisteredModelAlias("m", "canary", 2).ok());
  clock_.Set(500);
  ASSERT_TRUE(registry_->DeleteModelVersion("m", 1).ok());
  EXPECT_EQ(registry_->GetModelVersion("m", 1).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(registry_->GetModelVersionByAlias("m", "prod").status().code(),
            StatusCode::kNotFound);
  auto model = registry_->GetRegisteredModel("m");
  ASSERT_TRUE(model.ok());
  EXPECT_EQ(model->aliases, (std::vector<ModelAlias>{{"canary", 2}}));
  auto history = registry_->GetAliasHistory("m", "prod");
  ASSERT_TRUE(history.ok());
  ASSERT_EQ(history->size(), 2u);
  EXPECT_EQ((*history)[1].version, std::nullopt);
  EXPECT_EQ((*history)[1].changed_at, 500);
  EXPECT_EQ(registry_->DeleteModelVersion("m", 1).code(), StatusCode::kNotFound);
}

TEST_P(RegistryStoreTest, TagsAreSetOverwrittenDeletedAndLimited) {
  MustCreateModel("m");
  MustCreateVersion("m");
  ASSERT_TRUE(registry_->SetRegisteredModelTag("m", {"k", "1"}).ok());
  ASSERT_TRUE(registry_->SetRegisteredModelTag("m", {"k", "2"}).ok());
  ASSERT_TRUE(registry_->SetModelVersionTag("m", 1, {"vk", std::string(100000, 'x')}).ok());
  EXPECT_EQ(registry_->GetRegisteredModel("m")->tags, (std::vector<Tag>{{"k", "2"}}));
  EXPECT_EQ(registry_->GetModelVersion("m", 1)->tags.at(0).value.size(), 100000u);

  EXPECT_EQ(registry_->SetModelVersionTag("m", 1, {"vk", std::string(100001, 'x')}).code(),
            StatusCode::kInvalidArgument);
  Status long_key = registry_->SetRegisteredModelTag("m", {std::string(251, 'k'), "v"});
  EXPECT_EQ(long_key.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(long_key.message().find("exceeded length limit of 250"), std::string::npos);
  EXPECT_EQ(registry_->SetRegisteredModelTag("m", {"bad*key", "v"}).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(registry_->SetModelVersionTag("m", 2, {"k", "v"}).code(), StatusCode::kNotFound);

  ASSERT_TRUE(registry_->DeleteRegisteredModelTag("m", "k").ok());
  ASSERT_TRUE(registry_->DeleteModelVersionTag("m", 1, "vk").ok());
  EXPECT_TRUE(registry_->GetRegisteredModel("m")->tags.empty());
  EXPECT_TRUE(registry_->GetModelVersion("m", 1)->tags.empty());
}

TEST_P(RegistryStoreTest, DownloadUriIsTheStorageLocationElseTheSource) {
  MustCreateModel("m");
  MustCreateVersion("m", "runs:/abc/model");
  CreateModelVersionRequest request;
  request.name = "m";
  request.source = "runs:/def/model";
  request.storage_location = "mlflow-artifacts:/1/def/artifacts/model";
  ASSERT_TRUE(registry_->CreateModelVersion(request).ok());
  EXPECT_EQ(*registry_->GetModelVersionDownloadUri("m", 1), "runs:/abc/model");
  EXPECT_EQ(*registry_->GetModelVersionDownloadUri("m", 2),
            "mlflow-artifacts:/1/def/artifacts/model");
  EXPECT_EQ(registry_->GetModelVersionDownloadUri("m", 3).status().code(),
            StatusCode::kNotFound);
}

TEST_P(RegistryStoreTest, SearchModelsPagesThroughResults) {
  for (const char* name : {"e", "a", "c", "b", "d"}) MustCreateModel(name);
  MustCreateVersion("c");
  SearchRequest request;
  request.max_results = 2;
  request.order_by = {"name ASC"};
  std::vector<std::string> names;
  int pages = 0;
  while (true) {
    auto page = registry_->SearchRegisteredModels(request);
    ASSERT_TRUE(page.ok()) << page.status().ToString();
    ++pages;
    for (const auto& model : page->items) names.push_back(model.name);
    if (page->next_page_token.empty()) break;
    request.page_token = page->next_page_token;
    ASSERT_LT(pages, 10);
  }
  EXPECT_EQ(pages, 3);
  EXPECT_EQ(names, (std::vector<std::string>{"a", "b", "c", "d", "e"}));

  SearchRequest filtered;
  filtered.filter = "name = 'c'";
  auto page = registry_->SearchRegisteredModels(filtered);
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  ASSERT_EQ(page->items.size(), 1u);
  EXPECT_EQ(page->items[0].latest_versions.size(), 1u);
}

TEST_P(RegistryStoreTest, SearchRejectsMaxResultsOutOfRange) {
  SearchRequest request;
  request.max_results = 1001;
  auto models = registry_->SearchRegisteredModels(request);
  EXPECT_EQ(models.status().message(),
            "Invalid value for request parameter max_results. It must be at most 1000, but got "
            "value 1001");
  request.max_results = 200001;
  EXPECT_EQ(registry_->SearchModelVersions(request).status().code(),
            StatusCode::kInvalidArgument);
  request.max_results = 200000;
  EXPECT_TRUE(registry_->SearchModelVersions(request).ok());
  request.max_results = 0;
  EXPECT_EQ(registry_->SearchModelVersions(request).status().code(),
            StatusCode::kInvalidArgument);
}

TEST_P(RegistryStoreTest, SearchVersionsLoadsTagsAndAliases) {
  MustCreateModel("m");
  MustCreateModel("other");
  MustCreateVersion("m", "s3://1", {{"k", "v"}});
  MustCreateVersion("m", "s3://2");
  MustCreateVersion("other");
  ASSERT_TRUE(registry_->SetRegisteredModelAlias("m", "prod", 1).ok());
  SearchRequest request;
  request.filter = "name = 'm'";
  request.order_by = {"version_number ASC"};
  auto page = registry_->SearchModelVersions(request);
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  ASSERT_EQ(page->items.size(), 2u);
  EXPECT_EQ(page->items[0].version, 1);
  EXPECT_EQ(page->items[0].tags, (std::vector<Tag>{{"k", "v"}}));
  EXPECT_EQ(page->items[0].aliases, (std::vector<std::string>{"prod"}));
  EXPECT_EQ(page->items[1].version, 2);
  EXPECT_TRUE(page->next_page_token.empty());
}

TEST_P(RegistryStoreTest, SearchLoadsPagesLargerThanOneLoadingStatement) {
  // Entities are loaded 300 keys per statement; a page of 320 spans two statements.
  constexpr int kVersions = 320;
  MustCreateModel("big");
  for (int i = 0; i < kVersions; ++i) {
    MustCreateVersion("big", "s3://" + std::to_string(i), {{"i", std::to_string(i + 1)}});
  }
  SearchRequest request;
  request.filter = "name = 'big'";
  request.order_by = {"version_number DESC"};
  auto page = registry_->SearchModelVersions(request);
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  ASSERT_EQ(page->items.size(), static_cast<size_t>(kVersions));
  for (int i = 0; i < kVersions; ++i) {
    const ModelVersion& version = page->items[i];
    ASSERT_EQ(version.version, kVersions - i);
    ASSERT_EQ(version.tags, (std::vector<Tag>{{"i", std::to_string(version.version)}}));
  }
}

INSTANTIATE_TEST_SUITE_P(Backends, RegistryStoreTest,
                         ::testing::ValuesIn(kiln::testing::AllBackends()),
                         kiln::testing::BackendName);

}  // namespace
}  // namespace kiln::registry
